//! A Whisper model's vocabulary: token ids ↔ token strings, the special tokens the
//! decoding loop steers with, and turning byte-level BPE tokens back into text.
//!
//! CTranslate2 takes prompts as token *strings* and returns ids, so the vocabulary
//! file it loads (`vocabulary.txt` or `vocabulary.json`) is the one source of truth
//! here. Special ids are looked up by name rather than hard-coded: English-only and
//! multilingual models number them differently (`<|endoftext|>` is 50256 in
//! tiny.en, 50257 in base).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The languages multilingual Whisper models know, as their language tokens name
/// them (`<|en|>`, `<|haw|>`), in token order. Written out so that a node without
/// the model (an API node) can refuse an unknown spoken language at upload; the
/// tests check it against a real model's vocabulary.
pub const LANGUAGES: &[&str] = &[
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id",
    "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg",
    "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br",
    "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so",
    "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt",
    "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue",
];

/// Why a vocabulary could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    /// Neither vocabulary file is there, or it cannot be read.
    #[error("cannot read the vocabulary in {}: {reason}", path.display())]
    Unreadable {
        /// The model folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A token Whisper decoding needs is not in the vocabulary.
    #[error("the vocabulary has no {token} token: is this a Whisper model?")]
    MissingToken {
        /// The token.
        token: &'static str,
    },
}

/// The vocabulary and the special tokens of one model.
#[derive(Debug)]
pub struct Vocabulary {
    tokens: Vec<String>,
    ids: HashMap<String, u32>,
    /// `<|endoftext|>`: ends a sequence; every id at or above it is special.
    pub eot: u32,
    /// `<|startoftranscript|>`.
    pub sot: u32,
    /// `<|startofprev|>`: introduces the previous window's text as context.
    pub sot_prev: u32,
    /// `<|transcribe|>` (multilingual models only).
    pub transcribe: Option<u32>,
    /// `<|notimestamps|>`.
    pub no_timestamps: u32,
    /// `<|0.00|>`: the first timestamp token; each next id is 0.02 s later.
    pub timestamp_begin: u32,
}

impl Vocabulary {
    /// Reads `vocabulary.json` (a JSON list) or `vocabulary.txt` (one per line).
    pub fn load(model_dir: &Path) -> Result<Vocabulary, VocabError> {
        let unreadable = |reason: String| VocabError::Unreadable { path: model_dir.to_owned(), reason };
        let json = model_dir.join("vocabulary.json");
        let tokens: Vec<String> = if json.is_file() {
            let text = std::fs::read_to_string(&json).map_err(|e| unreadable(e.to_string()))?;
            serde_json::from_str(&text).map_err(|e| unreadable(format!("vocabulary.json: {e}")))?
        } else {
            let text = std::fs::read_to_string(model_dir.join("vocabulary.txt"))
                .map_err(|e| unreadable(format!("vocabulary.json or vocabulary.txt: {e}")))?;
            text.lines().map(str::to_owned).collect()
        };
        Vocabulary::from_tokens(tokens)
    }

    /// Builds the vocabulary from its tokens in id order.
    pub fn from_tokens(tokens: Vec<String>) -> Result<Vocabulary, VocabError> {
        let ids: HashMap<String, u32> =
            tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let need = |token: &'static str| ids.get(token).copied().ok_or(VocabError::MissingToken { token });
        Ok(Vocabulary {
            eot: need("<|endoftext|>")?,
            sot: need("<|startoftranscript|>")?,
            sot_prev: need("<|startofprev|>")?,
            transcribe: ids.get("<|transcribe|>").copied(),
            no_timestamps: need("<|notimestamps|>")?,
            timestamp_begin: need("<|0.00|>")?,
            tokens,
            ids,
        })
    }

    /// The string of a token id, as CTranslate2 wants it in a prompt.
    pub fn token(&self, id: u32) -> &str {
        self.tokens.get(id as usize).map(String::as_str).unwrap_or("")
    }

    /// The id of a token string, e.g. `<|es|>`.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// True for timestamp tokens.
    pub fn is_timestamp(&self, id: u32) -> bool {
        id >= self.timestamp_begin
    }

    /// The bytes a text token stands for (empty for special tokens).
    pub fn bytes(&self, id: u32) -> Vec<u8> {
        if id >= self.eot {
            return Vec::new();
        }
        self.token(id).chars().filter_map(byte_of_char).collect()
    }

    /// The text of a sequence of ids; special tokens are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| self.bytes(id)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// GPT-2's byte-level BPE writes every byte as a printable character: the printable
/// Latin-1 bytes stand for themselves, the others (controls, space, 0x7f-0xa0, 0xad)
/// are shifted to U+0100 and up, in byte order. This is the inverse.
fn byte_of_char(c: char) -> Option<u8> {
    let printable =
        |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    let code = c as u32;
    if code < 0x100 {
        return printable(code).then_some(code as u8);
    }
    let shifted = (code - 0x100) as usize;
    (0u32..0x100).filter(|&b| !printable(b)).nth(shifted).map(|b| b as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_characters_map_back_to_bytes() {
        assert_eq!(byte_of_char('a'), Some(b'a'));
        assert_eq!(byte_of_char('Ġ'), Some(b' '), "U+0120 is the space");
        assert_eq!(byte_of_char('Ċ'), Some(b'\n'));
        assert_eq!(byte_of_char('\u{100}'), Some(0));
        assert_eq!(byte_of_char('é'), Some(0xe9));
        // "é" in UTF-8 is C3 A9, written as the two characters Ã ©.
        assert_eq!(
            String::from_utf8(vec![byte_of_char('Ã').unwrap_or(0), byte_of_char('©').unwrap_or(0)]).ok(),
            Some("é".into())
        );
    }

    #[test]
    fn specials_are_found_by_name_and_skipped_in_text() {
        let mut tokens: Vec<String> = ["ĠHello", ",", "Ġworld"].iter().map(|s| s.to_string()).collect();
        for special in
            ["<|endoftext|>", "<|startoftranscript|>", "<|startofprev|>", "<|notimestamps|>", "<|0.00|>"]
        {
            tokens.push(special.into());
        }
        let v = Vocabulary::from_tokens(tokens).expect("complete");
        assert_eq!((v.eot, v.timestamp_begin, v.transcribe), (3, 7, None));
        assert_eq!(v.decode(&[4, 0, 1, 2, 3, 7]), " Hello, world");
    }

    #[test]
    fn a_vocabulary_without_whisper_tokens_is_refused() {
        let err = Vocabulary::from_tokens(vec!["a".into()]).expect_err("not whisper");
        assert!(err.to_string().contains("<|endoftext|>"));
    }
}
