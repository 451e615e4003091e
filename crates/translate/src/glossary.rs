//! A glossary per job: terms kept as they are (names, products) and forced
//! translations. Terms are swapped for placeholder words before translation (words
//! no engine knows, which Apertium and the like copy through) and swapped back
//! after, so the engine's grammar flows around them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Terms to keep and to force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Glossary {
    /// Terms left untranslated, e.g. `["babelcast", "Dashwood"]`.
    pub keep: Vec<String>,
    /// Forced translations, source term → target term.
    pub force: BTreeMap<String, String>,
}

/// Why a glossary cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlossaryError {
    /// An empty or blank term.
    #[error("the glossary has an empty term")]
    EmptyTerm,
    /// The same term (ignoring case) with conflicting entries.
    #[error("the glossary term {term:?} has conflicting entries: {first} and {second}")]
    Conflict {
        /// The term.
        term: String,
        /// One entry.
        first: String,
        /// The other.
        second: String,
    },
}

/// A text with its glossary terms replaced by placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    /// The text to translate.
    pub text: String,
    /// (placeholder, what goes back in its place), in order.
    pub slots: Vec<(String, String)>,
}

fn placeholder(n: usize) -> String {
    // Letters only: engines split words at digits. "Xqz" starts no word in the
    // languages babelcast translates.
    let a = (b'a' + (n / 26 % 26) as u8) as char;
    let b = (b'a' + (n % 26) as u8) as char;
    format!("Xqz{a}{b}")
}

impl Glossary {
    /// Checks for empty terms and conflicts (the same term, ignoring case, kept and
    /// forced, or forced two different ways).
    pub fn validate(&self) -> Result<(), GlossaryError> {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let entries = self
            .keep
            .iter()
            .map(|k| (k.clone(), format!("keep {k:?}")))
            .chain(self.force.iter().map(|(k, v)| (k.clone(), format!("translate {k:?} as {v:?}"))));
        for (term, entry) in entries {
            if term.trim().is_empty() {
                return Err(GlossaryError::EmptyTerm);
            }
            if let Some(first) = seen.insert(term.to_lowercase(), entry.clone())
                && first != entry
            {
                return Err(GlossaryError::Conflict { term, first, second: entry });
            }
        }
        Ok(())
    }

    /// Whether there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.keep.is_empty() && self.force.is_empty()
    }

    /// Replaces whole-word occurrences of the terms (longest first, case
    /// insensitive) with placeholders.
    pub fn protect(&self, text: &str) -> Protected {
        let mut terms: Vec<(&str, String)> = self
            .keep
            .iter()
            .map(|k| (k.as_str(), k.clone()))
            .chain(self.force.iter().map(|(k, v)| (k.as_str(), v.clone())))
            .collect();
        terms.sort_by_key(|(t, _)| std::cmp::Reverse(t.chars().count()));
        let mut text = text.to_owned();
        let mut slots = Vec::new();
        for (term, replacement) in terms {
            while let Some(at) = find_word(&text, term) {
                let slot = placeholder(slots.len());
                text.replace_range(at..at + term.len(), &slot);
                slots.push((slot, replacement.clone()));
            }
        }
        Protected { text, slots }
    }

    /// Puts the glossary's terms back in a translated text.
    pub fn restore(translated: &str, slots: &[(String, String)]) -> String {
        let mut text = translated.to_owned();
        for (slot, replacement) in slots {
            text = text.replacen(slot.as_str(), replacement, 1);
        }
        text
    }
}

/// The byte offset of `term` in `text` as a whole word, ignoring ASCII case.
fn find_word(text: &str, term: &str) -> Option<usize> {
    let lower = text.to_lowercase();
    let needle = term.to_lowercase();
    if lower.len() != text.len() || needle.is_empty() {
        // Case folding changed byte lengths: match case-sensitively instead.
        return find_exact_word(text, term);
    }
    let mut from = 0;
    while let Some(i) = lower[from..].find(&needle) {
        let at = from + i;
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            return Some(at);
        }
        from = at + needle.len();
    }
    None
}

fn find_exact_word(text: &str, term: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(term) {
        let at = from + i;
        let before = text[..at].chars().next_back();
        let after = text[at + term.len()..].chars().next();
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            return Some(at);
        }
        from = at + term.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glossary() -> Glossary {
        Glossary {
            keep: vec!["babelcast".into(), "New York".into()],
            force: [("river".to_owned(), "río grande".to_owned())].into(),
        }
    }

    #[test]
    fn terms_are_protected_as_whole_words_and_restored() {
        let g = glossary();
        let p = g.protect("Babelcast came to New York by the river, not the riverside.");
        assert_eq!(p.text, "Xqzaa came to Xqzab by the Xqzac, not the riverside.");
        let back = Glossary::restore("Xqzaa vino a Xqzab por el Xqzac.", &p.slots);
        assert_eq!(back, "babelcast vino a New York por el río grande.");
    }

    #[test]
    fn conflicting_entries_are_refused_with_both() {
        assert_eq!(glossary().validate(), Ok(()));
        let mut g = glossary();
        g.force.insert("Babelcast".into(), "Babel".into());
        let err = g.validate().expect_err("kept and forced");
        assert!(err.to_string().contains("keep \"babelcast\"") && err.to_string().contains("Babel"), "{err}");
        let mut g = Glossary::default();
        g.force.insert("API".into(), "interfaz".into());
        g.force.insert("api".into(), "IPA".into());
        assert!(matches!(g.validate(), Err(GlossaryError::Conflict { .. })));
        let g = Glossary { keep: vec![" ".into()], ..Glossary::default() };
        assert_eq!(g.validate(), Err(GlossaryError::EmptyTerm));
    }
}
