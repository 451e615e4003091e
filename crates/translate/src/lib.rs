//! Translating captions: cues are joined into sentences ([`align`]), glossary terms
//! protected ([`glossary`]), the sentences translated by an engine ([`Apertium`]),
//! split back over the original cue times by character share, and each cue's text
//! set on lines by the caption rules for the target language.

pub mod align;
pub mod apertium;
pub mod glossary;

use babelcast_core::{CaptionProfile, Cue, ErrorCode, Lang, captions};
use babelcast_process::ProcessError;

pub use apertium::Apertium;
pub use glossary::{Glossary, GlossaryError};

/// Why a translation failed.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// No installed engine goes from one language to the other.
    #[error("{engine} cannot translate {from} to {to}; from {from} it can reach: {}", list(reachable))]
    Unreachable {
        /// Source language.
        from: Lang,
        /// Target language.
        to: Lang,
        /// What it can reach.
        reachable: Vec<Lang>,
        /// The engine.
        engine: &'static str,
    },
    /// The glossary is unusable.
    #[error(transparent)]
    Glossary(#[from] GlossaryError),
    /// The engine failed.
    #[error("translation failed: {0}")]
    Engine(String),
    /// The engine's program is missing, stalled or failed to start.
    #[error(transparent)]
    Program(ProcessError),
}

fn list(langs: &[Lang]) -> String {
    if langs.is_empty() {
        "nothing (install Apertium language pairs, e.g. apertium-eng-spa)".into()
    } else {
        langs.iter().map(|l| l.tag()).collect::<Vec<_>>().join(", ")
    }
}

impl ErrorCode for TranslateError {
    fn code(&self) -> &'static str {
        match self {
            TranslateError::Unreachable { .. } => "translation_unavailable",
            TranslateError::Glossary(_) => "glossary_invalid",
            TranslateError::Engine(_) => "translation_failed",
            TranslateError::Program(e) => e.code(),
        }
    }

    fn is_client_error(&self) -> bool {
        matches!(self, TranslateError::Unreachable { .. } | TranslateError::Glossary(_))
    }
}

/// Translated cues and what to tell the user about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The cues, same times as the source, text in the target language.
    pub cues: Vec<Cue>,
    /// Rule violations or dropped cues, one line each.
    pub warnings: Vec<String>,
}

/// Translates `cues` from `from` to `to` with Apertium, keeping each cue's time
/// slot; see the crate notes.
pub fn translate_cues(
    engine: &Apertium,
    from: Lang,
    to: Lang,
    cues: &[Cue],
    glossary: &Glossary,
    profile: &CaptionProfile,
) -> Result<Translation, TranslateError> {
    glossary.validate()?;
    if engine.route(from, to).is_none() {
        return Err(TranslateError::Unreachable {
            from,
            to,
            reachable: engine.targets(from),
            engine: "apertium",
        });
    }
    let texts = align::translate_texts(cues, |sentences: &[String]| {
        let protected: Vec<glossary::Protected> = sentences.iter().map(|s| glossary.protect(s)).collect();
        let inputs: Vec<String> = protected.iter().map(|p| p.text.clone()).collect();
        let out = engine.translate(from, to, &inputs)?;
        Ok::<_, TranslateError>(
            out.iter().zip(&protected).map(|(t, p)| Glossary::restore(t, &p.slots)).collect::<Vec<String>>(),
        )
    })?;
    let mut warnings = Vec::new();
    let translated: Vec<Cue> = cues
        .iter()
        .zip(texts)
        .filter_map(|(cue, text)| {
            if text.trim().is_empty() {
                if !cue.text.trim().is_empty() {
                    warnings.push(format!(
                        "the cue at {} has no text in {to} (its words moved to a neighbour)",
                        cue.start
                    ));
                }
                return None;
            }
            Some(Cue { start: cue.start, end: cue.end, text: captions::set_lines(&text, profile) })
        })
        .collect();
    for v in captions::check(&translated, profile) {
        let at = translated.get(v.cue).map(|c| c.start.to_string()).unwrap_or_default();
        warnings.push(format!("{to} cue at {at}: {}", v.message));
    }
    Ok(Translation { cues: translated, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use babelcast_core::Millis;
    use babelcast_process::Program;

    fn lang(tag: &str) -> Lang {
        tag.parse().expect("lang")
    }

    fn cue(start: u64, end: u64, text: &str) -> Cue {
        Cue { start: Millis(start), end: Millis(end), text: text.into() }
    }

    fn apertium() -> Apertium {
        Apertium::discover(Program::apertium(), std::path::Path::new(apertium::DEFAULT_MODES_DIR))
    }

    #[test]
    fn english_to_spanish_keeps_cue_times_and_translates_across_cues() {
        let cues = [cue(0, 2500, "The cat is on the table. The dog"), cue(2600, 5000, "is in the garden.")];
        let t = translate_cues(
            &apertium(),
            lang("en"),
            lang("es"),
            &cues,
            &Glossary::default(),
            &CaptionProfile::default(),
        )
        .expect("en→es is installed (scripts/setup.sh)");
        assert_eq!(t.cues.len(), 2);
        assert_eq!((t.cues[0].start, t.cues[1].end), (Millis(0), Millis(5000)));
        let all = format!("{} {}", t.cues[0].text, t.cues[1].text).replace('\n', " ");
        assert!(all.contains("gato") && all.contains("perro") && all.contains("jardín"), "{all}");
        assert!(t.cues[0].text.starts_with("El gato"), "{:?}", t.cues);
    }

    #[test]
    fn italian_is_reached_through_spanish_and_the_glossary_holds() {
        let a = apertium();
        assert_eq!(a.route(lang("en"), lang("it")), Some(vec!["eng-spa".to_owned(), "spa-ita".to_owned()]));
        let glossary = Glossary {
            keep: vec!["Dashwood".into()],
            force: [("garden".to_owned(), "giardino segreto".to_owned())].into(),
        };
        let cues = [cue(0, 3000, "Mister Dashwood is in the garden.")];
        let t = translate_cues(&a, lang("en"), lang("it"), &cues, &glossary, &CaptionProfile::default())
            .expect("en→it");
        let text = t.cues[0].text.replace('\n', " ");
        assert!(text.contains("Dashwood") && text.contains("giardino segreto"), "{text}");
    }

    #[test]
    fn an_unreachable_target_says_what_can_be_reached() {
        let err = translate_cues(
            &apertium(),
            lang("en"),
            lang("ja"),
            &[cue(0, 1000, "Hi.")],
            &Glossary::default(),
            &CaptionProfile::default(),
        )
        .expect_err("no en→ja");
        let message = err.to_string();
        assert!(message.contains("cannot translate en to ja") && message.contains("es"), "{message}");
        assert!(err.is_client_error());
    }
}
