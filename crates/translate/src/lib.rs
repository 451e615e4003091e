//! Translating captions: cues are joined into sentences ([`align`]), glossary terms
//! protected ([`glossary`]), the sentences translated by an engine (a
//! [`Translator`]: [`Apertium`], or CTranslate2 models in [`Neural`]), split back
//! over the original cue times by character share, and each cue's text set on
//! lines by the caption rules for the target language.

pub mod align;
pub mod apertium;
pub mod glossary;
pub mod neural;

use babelcast_core::{CaptionProfile, Cue, ErrorCode, Lang, Millis, Severity, captions};
use babelcast_process::ProcessError;

pub use apertium::Apertium;
pub use glossary::{Glossary, GlossaryError};
pub use neural::Neural;

/// A translation engine: translates whole sentences between the languages it
/// reaches.
pub trait Translator: Send + Sync {
    /// What would translate `from` to `to`, for events and logs (`apertium
    /// eng-spa`, `ctranslate2 opus-mt-en-es`); `None` when it cannot.
    fn engine(&self, from: Lang, to: Lang) -> Option<String>;

    /// Translates sentences, one result per sentence, in order. A word the engine
    /// could not translate may carry Apertium's marks (`*word`, `#word`, `@word`):
    /// [`translate_cues`] reports and removes them.
    fn translate(&self, from: Lang, to: Lang, sentences: &[String]) -> Result<Vec<String>, TranslateError>;

    /// The languages reachable from `from`.
    fn targets(&self, from: Lang) -> Vec<Lang> {
        Lang::all().filter(|&to| to != from && self.engine(from, to).is_some()).collect()
    }
}

impl Translator for Apertium {
    fn engine(&self, from: Lang, to: Lang) -> Option<String> {
        self.route(from, to).map(|modes| format!("apertium {}", modes.join(" → ")))
    }

    fn translate(&self, from: Lang, to: Lang, sentences: &[String]) -> Result<Vec<String>, TranslateError> {
        Apertium::translate(self, from, to, sentences)
    }
}

impl Translator for Neural {
    fn engine(&self, from: Lang, to: Lang) -> Option<String> {
        self.model(from, to).map(|m| format!("ctranslate2 {}", m.name()))
    }

    fn translate(&self, from: Lang, to: Lang, sentences: &[String]) -> Result<Vec<String>, TranslateError> {
        let model = self.model(from, to).ok_or_else(|| TranslateError::Unreachable {
            from,
            to,
            reachable: Translator::targets(self, from),
            engine: "the CTranslate2 models".into(),
        })?;
        model.translate(from, to, sentences)
    }
}

/// Several engines, the first that reaches a pair translates it: the user's own
/// CTranslate2 models before Apertium's rules.
#[derive(Default)]
pub struct Engines(pub Vec<Box<dyn Translator>>);

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Engines({} engines)", self.0.len())
    }
}

impl Translator for Engines {
    fn engine(&self, from: Lang, to: Lang) -> Option<String> {
        self.0.iter().find_map(|e| e.engine(from, to))
    }

    fn translate(&self, from: Lang, to: Lang, sentences: &[String]) -> Result<Vec<String>, TranslateError> {
        match self.0.iter().find(|e| e.engine(from, to).is_some()) {
            Some(engine) => engine.translate(from, to, sentences),
            None => Err(TranslateError::Unreachable {
                from,
                to,
                reachable: self.targets(from),
                engine: "the installed engines".into(),
            }),
        }
    }
}

/// Why a translation failed.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// No installed engine goes from one language to the other.
    #[error("cannot translate {from} to {to} with {engine}; from {from} they can reach: {}", list(reachable))]
    Unreachable {
        /// Source language.
        from: Lang,
        /// Target language.
        to: Lang,
        /// What it can reach.
        reachable: Vec<Lang>,
        /// The engine (or engines) asked.
        engine: String,
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
        "nothing (install Apertium language pairs, e.g. apertium-eng-spa, or put CTranslate2 models in the models folder's translation/)".into()
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
    /// The cues with words the engine left untranslated, for a reviewer.
    pub untranslated: Vec<Untranslated>,
}

/// Words of one translated cue that the engine could not translate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Untranslated {
    /// The cue's index in [`Translation::cues`].
    pub cue: usize,
    /// The words, as they stand in the cue.
    pub words: Vec<String>,
}

/// Translates `cues` from `from` to `to`, keeping each cue's time slot; see the
/// crate notes.
pub fn translate_cues(
    engine: &dyn Translator,
    from: Lang,
    to: Lang,
    cues: &[Cue],
    glossary: &Glossary,
    profile: &CaptionProfile,
) -> Result<Translation, TranslateError> {
    glossary.validate()?;
    if engine.engine(from, to).is_none() {
        return Err(TranslateError::Unreachable {
            from,
            to,
            reachable: engine.targets(from),
            engine: "the installed engines".into(),
        });
    }
    let mut warnings = Vec::new();
    let texts = align::translate_texts(cues, |sentences: &[String]| {
        let protected: Vec<glossary::Protected> = sentences.iter().map(|s| glossary.protect(s)).collect();
        let inputs: Vec<String> = protected.iter().map(|p| p.text.clone()).collect();
        let out = engine.translate(from, to, &inputs)?;
        // An engine may drop or mangle a placeholder (a neural model can); the
        // term is then missing, which the user should hear about.
        for (t, p) in out.iter().zip(&protected) {
            for (slot, term) in &p.slots {
                if !t.contains(slot.as_str()) {
                    warnings
                        .push(format!("the glossary term {term:?} was lost in translation to {to}: {t:?}"));
                }
            }
        }
        Ok::<_, TranslateError>(
            out.iter().zip(&protected).map(|(t, p)| Glossary::restore(t, &p.slots)).collect::<Vec<String>>(),
        )
    })?;
    let mut translated: Vec<Cue> = Vec::new();
    let mut untranslated = Vec::new();
    for (cue, text) in cues.iter().zip(texts) {
        let (text, words) = take_marks(&text);
        if text.trim().is_empty() {
            if !cue.text.trim().is_empty() {
                warnings.push(format!(
                    "the cue at {} has no text in {to} (its words moved to a neighbour)",
                    cue.start
                ));
            }
            continue;
        }
        let first = translated.len();
        translated.extend(fit_cue(cue.start, cue.end, &text, profile));
        for (index, part) in translated.iter().enumerate().skip(first) {
            let here: Vec<String> =
                words.iter().filter(|w| part.text.contains(w.as_str())).cloned().collect();
            if !here.is_empty() {
                untranslated.push(Untranslated { cue: index, words: here });
            }
        }
    }
    // Reading speed above the comfortable target is a hint, not a broken rule.
    for v in captions::check(&translated, profile).into_iter().filter(|v| v.severity == Severity::Error) {
        let at = translated.get(v.cue).map(|c| c.start.to_string()).unwrap_or_default();
        warnings.push(format!("{to} cue at {at}: {}", v.message));
    }
    Ok(Translation { cues: translated, warnings, untranslated })
}

/// A translated text without the engine's marks, and the words that carried one
/// (left as they were in the source: the engine did not know them).
pub fn take_marks(text: &str) -> (String, Vec<String>) {
    let mut words = Vec::new();
    let clean: Vec<String> = text
        .split(' ')
        .map(|token| {
            let bare = token.trim_start_matches(['*', '#', '@']);
            if bare.len() == token.len() || !bare.starts_with(char::is_alphabetic) {
                return token.to_owned();
            }
            let word = bare.trim_end_matches(|c: char| !c.is_alphanumeric());
            if !words.iter().any(|w: &String| w == word) {
                words.push(word.to_owned());
            }
            bare.to_owned()
        })
        .collect();
    (clean.join(" "), words)
}

/// One cue's translated text set on lines; when it needs more lines than a cue
/// may have (translations run longer than their source), split into consecutive
/// cues over the same time, each a share of the words and of the time by
/// characters, as long as each part stays on screen long enough.
fn fit_cue(start: Millis, end: Millis, text: &str, profile: &CaptionProfile) -> Vec<Cue> {
    let single = vec![Cue { start, end, text: captions::set_lines(text, profile) }];
    if single[0].text.lines().count() <= profile.max_lines {
        return single;
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let duration = end.0.saturating_sub(start.0);
    for parts in 2..=words.len().min(4) {
        let gaps = profile.min_gap.0 * (parts as u64 - 1);
        let usable = duration.saturating_sub(gaps);
        if usable / (parts as u64) < profile.min_duration.0 {
            break;
        }
        // Words into `parts` groups of about equal characters.
        let total: usize = words.iter().map(|w| w.chars().count() + 1).sum();
        let mut groups: Vec<Vec<&str>> = vec![Vec::new(); parts];
        let mut seen = 0usize;
        for (i, w) in words.iter().enumerate() {
            let remaining_words = words.len() - i;
            let mut g = (seen * parts / total.max(1)).min(parts - 1);
            // Leave a word for each later group.
            let later_empty = groups[g + 1..].iter().filter(|x| x.is_empty()).count();
            if remaining_words <= later_empty && !groups[g].is_empty() {
                g += 1;
            }
            groups[g].push(w);
            seen += w.chars().count() + 1;
        }
        if groups.iter().any(Vec::is_empty) {
            continue;
        }
        let texts: Vec<String> = groups.iter().map(|g| captions::set_lines(&g.join(" "), profile)).collect();
        if texts.iter().any(|t| t.lines().count() > profile.max_lines) {
            continue;
        }
        let chars: Vec<u64> = groups.iter().map(|g| g.join(" ").chars().count() as u64).collect();
        let all: u64 = chars.iter().sum::<u64>().max(1);
        let mut at = start.0;
        let mut out = Vec::new();
        for (k, (t, c)) in texts.into_iter().zip(&chars).enumerate() {
            let length = if k + 1 == parts { end.0 - at } else { usable * c / all };
            if length < profile.min_duration.0 {
                out.clear();
                break;
            }
            out.push(Cue { start: Millis(at), end: Millis(at + length), text: t });
            at += length + profile.min_gap.0;
        }
        if out.len() == parts {
            return out;
        }
    }
    single
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
    fn words_the_dictionaries_lack_are_flagged_and_unmarked_on_every_hop() {
        let cues = [cue(0, 3000, "The zorblax flew over the house.")];
        for to in ["es", "it"] {
            let t = translate_cues(
                &apertium(),
                lang("en"),
                lang(to),
                &cues,
                &Glossary::default(),
                &CaptionProfile::default(),
            )
            .expect("installed");
            assert!(!t.cues[0].text.contains('*') && t.cues[0].text.contains("zorblax"), "{to}: {t:?}");
            assert_eq!(t.untranslated, [Untranslated { cue: 0, words: vec!["zorblax".into()] }], "{to}");
        }
        assert_eq!(
            take_marks("El **gato, #casa @ 50 #1"),
            ("El gato, casa @ 50 #1".into(), s(&["gato", "casa"]))
        );
    }

    fn s(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn a_translation_too_long_for_its_cue_is_split_over_its_time() {
        let p = CaptionProfile::default();
        let text = "ocio para considerar cuánto podría haber prudentemente en su poder de hacer para ellos y para todos los demás";
        let cues = fit_cue(Millis(2000), Millis(8500), text, &p);
        assert_eq!(cues.len(), 2, "{cues:?}");
        assert_eq!((cues[0].start, cues[1].end), (Millis(2000), Millis(8500)));
        assert!(cues[1].start.0 - cues[0].end.0 >= p.min_gap.0);
        assert!(captions::check(&cues, &p).iter().all(|v| v.severity != Severity::Error), "{cues:?}");
        assert_eq!(cues.iter().map(|c| c.text.replace('\n', " ")).collect::<Vec<_>>().join(" "), text);
        // Too short to split: kept whole (the checker reports it).
        assert_eq!(fit_cue(Millis(0), Millis(1000), text, &p).len(), 1);
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
