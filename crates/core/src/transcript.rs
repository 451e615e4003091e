//! The transcript of one video as speech recognition left it: timed words and the
//! cues built from them, stored as JSON next to the video.
//!
//! Times are integers of milliseconds ([`Millis`]) in fields named `*_ms`, the same
//! convention as [`Cue`], so the file reads without a schema at hand.

use serde::{Deserialize, Serialize};

use crate::cue::{Cue, Millis};

/// One recognised word with its timing, as Whisper reports it.
///
/// The text keeps Whisper's spacing and punctuation: a word that follows a space
/// carries it (`" hello"`), punctuation stays attached (`" world."`). The caption
/// rules rely on that leading space to tell a new word from a piece of the last one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    /// The word, usually with its leading space.
    pub text: String,
    /// When it starts being spoken.
    #[serde(rename = "start_ms")]
    pub start: Millis,
    /// When it ends; recognisers occasionally report it before `start`.
    #[serde(rename = "end_ms")]
    pub end: Millis,
    /// The recogniser's confidence, 0 to 1.
    pub probability: f32,
}

impl Word {
    /// A word with full confidence, handy for tests and hand-made transcripts.
    pub fn new(text: impl Into<String>, start: Millis, end: Millis) -> Word {
        Word { text: text.into(), start, end, probability: 1.0 }
    }
}

/// What transcription produced for one video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The spoken language as Whisper names it (`en`, `yue`, `haw`). A plain string,
    /// not [`crate::Lang`]: Whisper recognises 99 languages, far more than babelcast
    /// can caption or dub, and a transcript must keep whatever it heard.
    pub language: String,
    /// The model that transcribed it, e.g. `whisper-large-v3-turbo`.
    pub model: String,
    /// The length of the audio that was transcribed.
    #[serde(rename = "duration_ms")]
    pub duration: Millis,
    /// Every recognised word, in order.
    pub words: Vec<Word>,
    /// The cues built from `words` (and later edited by a person).
    pub cues: Vec<Cue>,
    /// For given subtitles re-timed to the speech: where each given cue moved,
    /// and the cues whose words were not found (kept at their time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retimed: Vec<crate::captions::CueShift>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transcript {
        Transcript {
            language: "en".into(),
            model: "whisper-large-v3-turbo".into(),
            duration: Millis(2_500),
            words: vec![
                Word { text: " Hello".into(), start: Millis(0), end: Millis(400), probability: 0.98 },
                Word { text: " world.".into(), start: Millis(450), end: Millis(900), probability: 0.5 },
            ],
            cues: vec![Cue { start: Millis(0), end: Millis(1_400), text: "Hello world.".into() }],
            retimed: Vec::new(),
        }
    }

    #[test]
    fn json_round_trip() {
        let t = sample();
        let json = serde_json::to_string(&t).expect("serialises");
        let back: Transcript = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, t);
    }

    #[test]
    fn times_are_integer_milliseconds_with_ms_names() {
        let value = serde_json::to_value(sample()).expect("serialises");
        assert_eq!(value["duration_ms"], 2_500);
        assert_eq!(value["words"][1]["start_ms"], 450);
        assert_eq!(value["words"][1]["end_ms"], 900);
        assert_eq!(value["words"][1]["text"], " world.");
        assert_eq!(value["cues"][0]["start_ms"], 0);
        assert_eq!(value["cues"][0]["end_ms"], 1_400);
        assert_eq!(value["language"], "en");
    }

    #[test]
    fn reads_a_hand_written_file() {
        let json = r#"{
            "language": "haw", "model": "m", "duration_ms": 10,
            "words": [{"text": " aloha", "start_ms": 1, "end_ms": 9, "probability": 1}],
            "cues": []
        }"#;
        let t: Transcript = serde_json::from_str(json).expect("parses");
        assert_eq!(t.language, "haw");
        assert_eq!(t.words[0], Word::new(" aloha", Millis(1), Millis(9)));
    }
}
