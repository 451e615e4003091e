//! Speech to text: Whisper models in CTranslate2 format, run through `ct2rs`'s
//! low-level `sys::Whisper`.
//!
//! The transcription loop (log-mel front end, prompts, seeking, fallbacks, word
//! timings) is ours, in Rust: ct2rs's high-level helper hard-codes a multilingual
//! prompt, uses a different mel front end and drops words past 30 s.
//!
//! - [`mel`]: Whisper's log-mel front end;
//! - [`vocab`]: token ids, special tokens, byte-level BPE decoding;
//! - [`transcribe`]: the decoding loop over a stream of samples, and `batched`,
//!   its batched form; `decode`: the temperature fallback over a batch of windows;
//! - `words`: word timings from cross-attention alignment;
//! - [`vad`] and [`gate`]: Silero VAD, and the gate that passes only speech on.
//!
//! A model is verified (quick check) before it is loaded, so a missing or damaged
//! file fails with its path and the repair command.

mod batched;
mod decode;
pub mod gate;
pub mod mel;
pub mod transcribe;
pub mod vocab;
mod words;

pub use gate::{SpeechGate, TimeMap};
pub use transcribe::{InMemory, SampleSource, Segment, TranscribeOptions, Transcription};
pub use vocab::{VocabError, Vocabulary};

pub mod vad;

pub use vad::{SpeechDetector, SpeechSpan, Vad, VadError, VadOptions};

pub use mel::{Features, MelFrontEnd, Spectrogram};

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use babelcast_core::ErrorCode;
use babelcast_models::{ModelError, ModelsDir};
use ct2rs::sys::{ComputeType as Ct2ComputeType, Config, Whisper};

// ct2rs's tokenizer; named so that its `static` feature (see Cargo.toml) holds
// whichever crates a build selects.
use sentencepiece as _;

/// The numeric precision inference runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeType {
    /// 8-bit integer weights: fastest on CPUs, accuracy within noise of float32.
    #[default]
    Int8,
    /// Full precision.
    Float32,
}

impl FromStr for ComputeType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "int8" => Ok(ComputeType::Int8),
            "float32" | "f32" => Ok(ComputeType::Float32),
            other => Err(format!("unknown compute type {other:?}: use int8 or float32")),
        }
    }
}

impl fmt::Display for ComputeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ComputeType::Int8 => "int8",
            ComputeType::Float32 => "float32",
        })
    }
}

/// Why a Whisper model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// The model's files are missing, damaged or unknown.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model's vocabulary is missing or not Whisper's.
    #[error(transparent)]
    Vocab(#[from] VocabError),
    /// Inference failed inside CTranslate2.
    #[error("Whisper inference with {model} failed: {message}")]
    Inference {
        /// The model's name.
        model: String,
        /// CTranslate2's words.
        message: String,
    },
    /// A forced language the model does not know.
    #[error("the model has no language {language:?}: use a Whisper language code such as en, es, de")]
    UnknownLanguage {
        /// The code given.
        language: String,
    },
    /// The audio could not be read.
    #[error("could not read the audio: {0}")]
    Audio(String),
    /// CTranslate2 refused the model.
    #[error("CTranslate2 could not load the Whisper model in {}: {message}", path.display())]
    Load {
        /// The model folder.
        path: PathBuf,
        /// CTranslate2's words.
        message: String,
    },
}

impl ErrorCode for SpeechError {
    fn code(&self) -> &'static str {
        match self {
            SpeechError::Model(e) => e.code(),
            SpeechError::Load { .. } => "whisper_load_failed",
            SpeechError::Vocab(_) => "whisper_vocabulary_invalid",
            SpeechError::Inference { .. } => "whisper_inference_failed",
            SpeechError::UnknownLanguage { .. } => "unknown_language",
            SpeechError::Audio(_) => "audio_unreadable",
        }
    }

    fn is_client_error(&self) -> bool {
        match self {
            SpeechError::Model(e) => e.is_client_error(),
            SpeechError::UnknownLanguage { .. } | SpeechError::Audio(_) => true,
            _ => false,
        }
    }

    fn retry(&self) -> babelcast_core::Retry {
        match self {
            SpeechError::Model(e) => e.retry(),
            // A model CTranslate2 refuses, or a vocabulary that is not Whisper's,
            // stays so.
            SpeechError::Load { .. } | SpeechError::Vocab(_) => babelcast_core::Retry::GiveUp,
            SpeechError::UnknownLanguage { .. } | SpeechError::Audio(_) => babelcast_core::Retry::GiveUp,
            SpeechError::Inference { .. } => babelcast_core::Retry::Backoff,
        }
    }
}

/// A loaded Whisper model.
pub struct WhisperModel {
    name: String,
    whisper: Whisper,
    vocab: Vocabulary,
}

impl fmt::Debug for WhisperModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhisperModel").field("name", &self.name).finish_non_exhaustive()
    }
}

impl WhisperModel {
    /// Loads a model from the models directory by name (`whisper-base`), after the
    /// quick check of its files.
    pub fn load(
        models: &ModelsDir,
        name: &str,
        compute: ComputeType,
        threads: usize,
    ) -> Result<WhisperModel, SpeechError> {
        let path = models.require(name)?;
        WhisperModel::load_path(&path, compute, threads)
    }

    /// Loads a model from a folder in CTranslate2 format (a user's own conversion).
    pub fn load_path(path: &Path, compute: ComputeType, threads: usize) -> Result<WhisperModel, SpeechError> {
        let config = Config {
            compute_type: match compute {
                ComputeType::Int8 => Ct2ComputeType::INT8,
                ComputeType::Float32 => Ct2ComputeType::FLOAT32,
            },
            num_threads_per_replica: threads,
            ..Config::default()
        };
        let whisper = Whisper::new(path, config)
            .map_err(|e| SpeechError::Load { path: path.to_owned(), message: format!("{e:#}") })?;
        let vocab = Vocabulary::load(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(WhisperModel { name, whisper, vocab })
    }

    /// The model's vocabulary.
    pub fn vocab(&self) -> &Vocabulary {
        &self.vocab
    }

    /// The model's folder name, e.g. `whisper-base`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True for multilingual models, false for English-only (`.en`) ones; they need
    /// different prompts.
    pub fn is_multilingual(&self) -> bool {
        self.whisper.is_multilingual()
    }

    /// The number of mel bins the model's front end must produce (80, or 128 for
    /// large-v3).
    pub fn n_mels(&self) -> usize {
        self.whisper.n_mels()
    }
}
