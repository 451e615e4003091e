//! The pipeline: a video goes in, a captioned HLS package comes out, as stages that
//! are durable jobs (see `babelcast-jobs`), run by a pool of workers.
//!
//! ```text
//! ingest ─► probe ─┬─► encode (ladder + package) ─┐──► playable
//!                  └─► transcribe ────────────────┴─► captions (track added to the package)
//! ```
//!
//! - **Ingest** checks an upload by probing its content (never its name), stores it
//!   as `videos/{id}/source.{ext}` with the extension of what it really is, and
//!   queues `probe`.
//! - **encode** and **transcribe** run in parallel on different workers.
//! - **captions** is queued by whichever of the two finishes last (and by
//!   [`Pipeline::settle`], so a crash between the two cannot lose it).
//! - **Idempotent**: `encode` and `transcribe` outputs live in a content-addressed
//!   cache (`cache/{stage}/{key}`), keyed by the SHA-256 of the source, the engine
//!   and model identity and the parameters; a key is computed once, and a video's
//!   folder is assembled from the cache (hard links), so the same upload again is
//!   done at once.
//! - **Graceful**: a transcribe stage that dies leaves a warning and the video is
//!   still published, without captions (`completed_with_warnings`).
//! - **Crash-safe**: every output is written under a temporary name and renamed
//!   into place; the cache row is written only after the output is complete.

mod deletion;
mod given;
pub mod graph;
mod ingest;
mod mirror;
mod review;
mod settle;
pub mod speech;
mod stages;
mod translation_review;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use babelcast_core::Lang;
use babelcast_core::{ErrorCode, VideoId};
use babelcast_jobs::{Db, DbError, NewVideo};
use babelcast_media::{DubMode, LadderConfig, ProbeError, Prober};
use babelcast_process::Program;
use babelcast_store::Layout;
use babelcast_store::remote::{Remote, S3Config};
use babelcast_translate::apertium::WarmPairs;
use babelcast_translate::{Apertium, Engines, Neural, Translator};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use babelcast_translate::Glossary;
pub use deletion::{DeleteError, keep_deleting_expired};
pub use given::{GivenText, GivenTranscript};
pub use graph::Review;
pub use ingest::{IngestError, VideoOptions, display_name};
pub use review::{ReviewError, TranscriptView};
pub use speech::{SpeechConfig, SpeechOutcome};
pub use stages::piper_model;
pub use translation_review::{TranslationSummary, TranslationView};
pub use worker::{ALL_STAGES, UPLOAD_SWEEP_AGE, WorkerPool, sweep_uploads};

/// The stage names.
pub mod stage {
    /// Reads the media facts.
    pub const PROBE: &str = "probe";
    /// Encodes the ladder and packages it.
    pub const ENCODE: &str = "encode";
    /// Speech to transcript and caption files.
    pub const TRANSCRIBE: &str = "transcribe";
    /// Subtitles the user gave become the transcript (instead of transcribe).
    pub const IMPORT: &str = "import";
    /// Adds the caption tracks to the package.
    pub const CAPTIONS: &str = "captions";
    /// Translates the captions into one language: jobs `translate-es`, ...
    pub const TRANSLATE: &str = "translate";
    /// Dubs one language: jobs `dub-es`, ...
    pub const DUB: &str = "dub";
}

/// Everything the stages need.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The data folder: `videos/`, `cache/`, `uploads/`.
    pub data_dir: PathBuf,
    /// Where models live.
    pub models_dir: PathBuf,
    /// ffmpeg.
    pub ffmpeg: Program,
    /// ffprobe.
    pub ffprobe: Program,
    /// The probe time limit.
    pub probe_timeout: Duration,
    /// Speech settings.
    pub speech: SpeechConfig,
    /// The ladder.
    pub ladder: LadderConfig,
    /// How long a claimed job is held without a heartbeat.
    pub lease: Duration,
    /// Attempts per stage before it is dead.
    pub max_attempts: i64,
    /// The first retry's delay; doubled for each further attempt.
    pub backoff: Duration,
    /// Apertium, for translation.
    pub apertium: Program,
    /// espeak-ng, for dubbing.
    pub espeak: Program,
    /// The S3-compatible bucket media live in when nodes share no folder; `None`:
    /// the data folder is the store.
    pub s3: Option<S3Config>,
    /// Keep a video's upload once it is done (`false`: remove it then; its
    /// outputs stay, but stages cannot run again on it).
    pub keep_source: bool,
}

/// The pipeline over one database and data folder.
#[derive(Debug, Clone)]
pub struct Pipeline {
    db: Db,
    config: Arc<PipelineConfig>,
    /// One lock per video around changes to its package (tracks added by several
    /// stages at once must not lose each other's update). In-process: enough for
    /// one node; several nodes need the database's lock (scale-out).
    package_locks: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// The CTranslate2 translation models in `models_dir/translation`, read once
    /// (each loads on first use and stays loaded).
    neural: Neural,
    /// The Apertium pairs kept running between translations (see
    /// `babelcast_translate::apertium::WarmPairs`): an edit's few sentences
    /// then take milliseconds, not the pairs' start-up.
    apertium_warm: WarmPairs,
    /// The bucket, when media live in one (see `mirror`).
    remote: Option<Remote>,
}

/// The installed Apertium pairs, run by the configured program.
fn apertium(config: &PipelineConfig) -> Apertium {
    Apertium::discover(config.apertium.clone(), Path::new(babelcast_translate::apertium::DEFAULT_MODES_DIR))
}

/// The CTranslate2 models installed under the models folder, each problem with
/// one logged and the model left out.
fn neural(config: &PipelineConfig) -> Neural {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let (neural, problems) =
        Neural::discover(&config.models_dir.join(babelcast_translate::neural::MODELS_SUBDIR), threads);
    for problem in problems {
        tracing::warn!("{problem}; it is not used");
    }
    neural
}

/// The translation engines a pipeline with `config` uses, the first that
/// reaches a pair translating it (see [`Pipeline::translators`]), for work
/// outside a pipeline (`babelcast translate`).
pub fn installed_translators(config: &PipelineConfig) -> Engines {
    Engines(vec![Box::new(neural(config)), Box::new(apertium(config))])
}

impl Pipeline {
    /// A pipeline over `db` with `config`; creates the data folder.
    pub fn new(db: Db, config: PipelineConfig) -> std::io::Result<Pipeline> {
        std::fs::create_dir_all(config.data_dir.join("videos"))?;
        std::fs::create_dir_all(config.data_dir.join("cache"))?;
        std::fs::create_dir_all(config.data_dir.join("uploads"))?;
        let neural = neural(&config);
        let remote = match &config.s3 {
            Some(s3) => Some(Remote::s3(s3, &config.data_dir).map_err(std::io::Error::other)?),
            None => None,
        };
        Ok(Pipeline {
            db,
            config: Arc::new(config),
            package_locks: Arc::default(),
            neural,
            apertium_warm: WarmPairs::default(),
            remote,
        })
    }

    /// The translation engines: the CTranslate2 models found at start, then the
    /// Apertium pairs installed now.
    pub fn translators(&self) -> Engines {
        let apertium = apertium(&self.config).keeping_warm(self.apertium_warm.clone());
        Engines(vec![Box::new(self.neural.clone()), Box::new(apertium)])
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The data layout.
    pub fn layout(&self) -> Layout {
        Layout::new(&self.config.data_dir)
    }

    /// Where uploads are staged while they arrive (inside the data folder, so the
    /// final move is a rename).
    pub fn uploads_dir(&self) -> PathBuf {
        self.config.data_dir.join("uploads")
    }
}
