//! The stages' bodies, one file each, and what they share: how an attempt fails
//! or finishes, the stage cache's keys, and running one job's stage. What runs
//! after what is not decided here but in the stage graph (`crate::graph`).

mod dub;
mod encode;
mod import;
mod package;
mod probe;
mod reuse;
mod transcribe;
mod translate;

pub use dub::piper_model;
pub(crate) use translate::TranslationFile;

use std::path::{Path, PathBuf};

use babelcast_core::{ErrorCode, Lang, MediaFacts, Retry, VideoId, subtitle};
use babelcast_jobs::{Job, Video};
use babelcast_store::{CaptionFormat, write_atomic};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedSender;

use crate::graph::{Stage, UnknownStage};
use crate::mirror::PACKAGE;
use crate::{Pipeline, VideoOptions};
use babelcast_store::remote::Scope;

/// Bumped when a stage's output format or meaning changes, so old cache entries
/// are not reused.
const CACHE_VERSION: u32 = 1;

/// A stage attempt that failed: what went wrong, and whether and when to try
/// again, which comes from the error's own [`ErrorCode`] wherever it has one.
#[derive(Debug)]
pub(crate) struct StageFailure {
    /// What went wrong, on one line.
    pub message: String,
    /// The error's stable code (`model_missing`, `program_timed_out`, ...).
    pub code: &'static str,
    /// Whether to try again, and when.
    pub retry: Retry,
}

impl StageFailure {
    /// The input is at fault in a way no error type says (e.g. a source
    /// without a video stream): give up.
    fn permanent(code: &'static str, message: impl Into<String>) -> StageFailure {
        StageFailure { message: message.into(), code, retry: Retry::GiveUp }
    }

    /// Something of this machine's failed (a task, a file it wrote): back off.
    pub(crate) fn transient(message: impl Into<String>) -> StageFailure {
        StageFailure { message: message.into(), code: "internal", retry: Retry::Backoff }
    }

    /// As the error says.
    pub(crate) fn from_error(e: &(impl ErrorCode + std::fmt::Display)) -> StageFailure {
        StageFailure { message: e.to_string(), code: e.code(), retry: e.retry() }
    }
}

impl From<babelcast_jobs::DbError> for StageFailure {
    fn from(e: babelcast_jobs::DbError) -> StageFailure {
        StageFailure::from_error(&e)
    }
}

impl From<std::io::Error> for StageFailure {
    fn from(e: std::io::Error) -> StageFailure {
        StageFailure { message: e.to_string(), code: "storage", retry: Retry::Backoff }
    }
}

impl From<babelcast_media::PackageError> for StageFailure {
    fn from(e: babelcast_media::PackageError) -> StageFailure {
        StageFailure::from_error(&e)
    }
}

impl From<babelcast_core::SubtitleError> for StageFailure {
    fn from(e: babelcast_core::SubtitleError) -> StageFailure {
        StageFailure::from_error(&e)
    }
}

/// A task that panicked or was cancelled.
impl From<tokio::task::JoinError> for StageFailure {
    fn from(e: tokio::task::JoinError) -> StageFailure {
        StageFailure::transient(e.to_string())
    }
}

/// What a finished stage reports.
#[derive(Debug, Default)]
pub(crate) struct StageDone {
    /// Whether the output came from the cache.
    pub cached: bool,
    /// Details for the `stage_finished` event.
    pub data: serde_json::Value,
}

fn cache_key(parts: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(parts.to_string().as_bytes()))
}

/// Hard-links (or, across file systems, copies) every file under `from` into `to`.
fn link_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            link_tree(&entry.path(), &target)?;
        } else if std::fs::hard_link(entry.path(), &target).is_err() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

impl Pipeline {
    fn id_of(video: &Video) -> Result<VideoId, StageFailure> {
        video.id.parse().map_err(|e| StageFailure::permanent("invalid_video_id", format!("{e}")))
    }

    /// The video's id and its upload, which must still be there.
    fn source_path(&self, video: &Video) -> Result<(VideoId, PathBuf), StageFailure> {
        let id = Self::id_of(video)?;
        let path = self.layout().source(&id, &video.source_ext);
        if !path.is_file() {
            return Err(StageFailure::permanent(
                "source_missing",
                format!(
                    "the video's upload {} is gone (with server.keep_source = false it is removed once the video is done): upload the video again",
                    path.display()
                ),
            ));
        }
        Ok((id, path))
    }

    fn facts_path(&self, id: &VideoId) -> PathBuf {
        self.layout().video_dir(id).join("facts.json")
    }

    fn read_facts(&self, id: &VideoId) -> Result<MediaFacts, StageFailure> {
        let path = self.facts_path(id);
        let bytes = std::fs::read(&path)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| StageFailure::transient(format!("{}: {e}", path.display())))
    }

    pub(crate) fn options(video: &Video) -> VideoOptions {
        serde_json::from_value(video.options.clone()).unwrap_or_default()
    }

    /// Runs one attempt of a job's stage.
    pub(crate) async fn run_stage(
        &self,
        job: &Job,
        progress: UnboundedSender<f64>,
    ) -> Result<StageDone, StageFailure> {
        let video = self
            .db
            .video(&job.video_id)
            .await?
            .ok_or_else(|| StageFailure::permanent("not_found", format!("no video {}", job.video_id)))?;
        // With a bucket: what other machines wrote first, and what this stage
        // wrote after (the package travels only under its lock).
        self.pull_video(&video.id, Scope::Except(PACKAGE)).await?;
        let done = self.run_stage_here(job, &video, progress).await?;
        self.push_video(&video.id, Scope::Except(PACKAGE)).await?;
        Ok(done)
    }

    async fn run_stage_here(
        &self,
        job: &Job,
        video: &Video,
        progress: UnboundedSender<f64>,
    ) -> Result<StageDone, StageFailure> {
        let stage: Stage = job
            .stage
            .parse()
            .map_err(|e: UnknownStage| StageFailure::permanent("unknown_stage", e.to_string()))?;
        match stage {
            Stage::Probe => self.probe(video).await,
            Stage::Encode => self.encode(video, progress).await,
            Stage::Transcribe => self.transcribe(video, progress).await,
            Stage::Import => self.import(video).await,
            Stage::Captions => self.captions(video).await,
            Stage::Translate(to) => self.translate(video, to).await,
            Stage::Dub(to) => self.dub(video, to, progress).await,
        }
    }

    /// Writes `cues` as `lang`'s caption files in the submission's formats (WebVTT
    /// always: the package and the dubs are made from it); returns the formats.
    pub(crate) fn write_captions(
        &self,
        id: &VideoId,
        lang: Lang,
        cues: &[babelcast_core::Cue],
        options: &VideoOptions,
    ) -> std::io::Result<Vec<CaptionFormat>> {
        let layout = self.layout();
        let mut written = Vec::new();
        for format in options.formats() {
            let (format, body) = match format.as_str() {
                "srt" => (CaptionFormat::Srt, subtitle::srt::write(cues)),
                _ => (CaptionFormat::WebVtt, subtitle::vtt::write(cues)),
            };
            write_atomic(&layout.captions(id, lang, format), body.as_bytes())?;
            written.push(format);
        }
        Ok(written)
    }

    /// Records that a video uses the cache entry `key` at `path` (inside the
    /// data folder; recorded relative to it, so any node can remove it).
    pub(crate) async fn use_cache_entry(
        &self,
        key: &str,
        video_id: &str,
        path: &Path,
    ) -> Result<(), StageFailure> {
        let rel = path.strip_prefix(&self.config.data_dir).unwrap_or(path);
        self.db.use_cached(key, video_id, &rel.to_string_lossy()).await?;
        Ok(())
    }

    /// Records that the video uses each of these files of a shared cache
    /// (`cache/{kind}/{name}`, keyed `{kind}/{name}`: sentences, clips), so
    /// deleting it removes the ones no other video uses.
    pub(crate) async fn use_cache_files(
        &self,
        kind: &str,
        video_id: &str,
        files: &[PathBuf],
    ) -> Result<(), StageFailure> {
        let entries: Vec<(String, String)> = files
            .iter()
            .map(|file| {
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let rel = file.strip_prefix(&self.config.data_dir).unwrap_or(file);
                (format!("{kind}/{name}"), rel.to_string_lossy().into_owned())
            })
            .collect();
        self.db.use_cached_all(&entries, video_id).await?;
        Ok(())
    }

    /// Records a complete cache entry, and that the video uses it (again: a
    /// delete while the stage ran took the first record with it).
    pub(crate) async fn put_cache_entry(
        &self,
        key: &str,
        stage: &str,
        video_id: &str,
        path: &Path,
    ) -> Result<(), StageFailure> {
        self.use_cache_entry(key, video_id, path).await?;
        self.db.put_cached(key, stage, &path.to_string_lossy()).await?;
        Ok(())
    }

    /// Records a warning on the video and in its event log.
    pub(crate) async fn warn(
        &self,
        video_id: &str,
        stage: Option<&str>,
        message: &str,
    ) -> Result<(), StageFailure> {
        if self.db.add_warning(video_id, message).await? {
            self.db.add_event(video_id, "warning", stage, message, None).await?;
        }
        Ok(())
    }
}
