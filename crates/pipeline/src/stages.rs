//! What each stage does, and how a video settles once its stages are over.

use std::path::{Path, PathBuf};

use babelcast_core::{ErrorCode, Lang, MediaFacts, Transcript, VideoId, subtitle};
use babelcast_jobs::{Job, JobState, Video, VideoState};
use babelcast_media::{Package, Packager, Prober};
use babelcast_store::{CaptionFormat, StagedDir, write_atomic};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedSender;

use crate::speech::{model_identity, transcribe_file};
use crate::{Pipeline, VideoOptions, stage};

/// Bumped when a stage's output format or meaning changes, so old cache entries
/// are not reused.
const CACHE_VERSION: u32 = 1;

/// A stage attempt that failed.
#[derive(Debug)]
pub(crate) struct StageFailure {
    /// What went wrong, on one line.
    pub message: String,
    /// Retrying cannot help (the input is at fault).
    pub permanent: bool,
}

impl StageFailure {
    fn permanent(message: impl Into<String>) -> StageFailure {
        StageFailure { message: message.into(), permanent: true }
    }

    fn transient(message: impl Into<String>) -> StageFailure {
        StageFailure { message: message.into(), permanent: false }
    }

    fn from_error(e: &(impl ErrorCode + std::fmt::Display)) -> StageFailure {
        StageFailure { message: e.to_string(), permanent: e.is_client_error() }
    }
}

impl From<babelcast_jobs::DbError> for StageFailure {
    fn from(e: babelcast_jobs::DbError) -> StageFailure {
        StageFailure::transient(e.to_string())
    }
}

impl From<std::io::Error> for StageFailure {
    fn from(e: std::io::Error) -> StageFailure {
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
    fn source_path(&self, video: &Video) -> Result<(VideoId, PathBuf), StageFailure> {
        let id: VideoId = video.id.parse().map_err(|e| StageFailure::permanent(format!("{e}")))?;
        let path = self.layout().source(&id, &video.source_ext);
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

    fn options(video: &Video) -> VideoOptions {
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
            .ok_or_else(|| StageFailure::permanent(format!("no video {}", job.video_id)))?;
        match job.stage.as_str() {
            stage::PROBE => self.probe(&video).await,
            stage::ENCODE => self.encode(&video, progress).await,
            stage::TRANSCRIBE => self.transcribe(&video, progress).await,
            stage::CAPTIONS => self.captions(&video).await,
            other => Err(StageFailure::permanent(format!("unknown stage {other:?}"))),
        }
    }

    async fn probe(&self, video: &Video) -> Result<StageDone, StageFailure> {
        let (id, source) = self.source_path(video)?;
        let prober = Prober::new(self.config.ffprobe.clone(), self.config.probe_timeout);
        let facts = prober.probe(&source).await.map_err(|e| StageFailure::from_error(&e))?;
        if facts.video.is_empty() {
            return Err(StageFailure::permanent("the source has no video stream"));
        }
        let json = serde_json::to_vec_pretty(&facts).map_err(|e| StageFailure::transient(e.to_string()))?;
        write_atomic(&self.facts_path(&id), &json)?;
        let max = self.config.max_attempts;
        self.db.enqueue(&video.id, stage::ENCODE, max).await?;
        if facts.audio.is_empty() {
            self.warn(&video.id, Some(stage::PROBE), "the source has no audio stream: no captions").await?;
        } else {
            self.db.enqueue(&video.id, stage::TRANSCRIBE, max).await?;
        }
        let v = &facts.video[0];
        Ok(StageDone {
            cached: false,
            data: json!({
                "duration_secs": facts.duration_secs,
                "video": { "codec": v.codec, "width": v.width, "height": v.height, "rotation": v.rotation },
                "audio_streams": facts.audio.len(),
            }),
        })
    }

    async fn encode(&self, video: &Video, progress: UnboundedSender<f64>) -> Result<StageDone, StageFailure> {
        let (id, source) = self.source_path(video)?;
        let facts = self.read_facts(&id)?;
        let mut ladder = self.config.ladder.clone();
        if let Some(rungs) = Self::options(video).rungs {
            ladder.rungs.retain(|r| rungs.contains(&r.height));
        }
        let key = cache_key(&json!({
            "stage": stage::ENCODE, "v": CACHE_VERSION, "source": video.source_sha256, "ladder": ladder,
            "engine": "ffmpeg/libx264",
        }));
        let cache_dir = self.config.data_dir.join("cache").join(stage::ENCODE).join(&key);
        let cached =
            self.db.cached(&key).await?.is_some() && cache_dir.join(babelcast_media::hls::MASTER).is_file();
        if !cached {
            let packager = Packager::new(self.config.ffmpeg.clone(), self.config.ffprobe.clone(), ladder);
            let out = cache_dir.clone();
            tokio::task::spawn_blocking(move || {
                packager.encode(&source, &facts, &out, None, &mut |f| {
                    let _ = progress.send(f);
                })
            })
            .await
            .map_err(|e| StageFailure::transient(e.to_string()))?
            .map_err(|e| StageFailure::from_error(&e))?;
            self.db.put_cached(&key, stage::ENCODE, &cache_dir.to_string_lossy()).await?;
        }
        // The video's own package: links to the cached files, so adding tracks to
        // it (which replaces files, never edits them) leaves the cache pristine.
        let hls = self.layout().hls_dir(&id);
        let staged = StagedDir::new(&hls)?;
        link_tree(&cache_dir, staged.path())?;
        staged.publish()?;
        let package = Package::open(&hls).map_err(|e| StageFailure::transient(e.to_string()))?;
        let renditions: Vec<String> = package.state().video.iter().map(|v| v.name.clone()).collect();
        self.db
            .add_event(
                &video.id,
                "playable",
                Some(stage::ENCODE),
                "the video is playable (without captions yet)",
                Some(json!({ "master": format!("videos/{id}/hls/master.m3u8"), "renditions": renditions })),
            )
            .await?;
        Ok(StageDone { cached, data: json!({ "cache_key": key, "renditions": renditions }) })
    }

    async fn transcribe(
        &self,
        video: &Video,
        progress: UnboundedSender<f64>,
    ) -> Result<StageDone, StageFailure> {
        let (id, source) = self.source_path(video)?;
        let facts = self.read_facts(&id)?;
        let options = Self::options(video);
        let mut speech = self.config.speech.clone();
        speech.language = options.language.clone();
        let key = cache_key(&json!({
            "stage": stage::TRANSCRIBE, "v": CACHE_VERSION, "source": video.source_sha256,
            "model": model_identity(&speech), "language": speech.language, "beam_size": speech.beam_size,
            "compute_type": speech.compute_type, "vad": speech.vad,
        }));
        let cache_file =
            self.config.data_dir.join("cache").join(stage::TRANSCRIBE).join(format!("{key}.json"));
        let cached = self.db.cached(&key).await?.is_some() && cache_file.is_file();
        let transcript: Transcript = if cached {
            let bytes = std::fs::read(&cache_file)?;
            serde_json::from_slice(&bytes).map_err(|e| StageFailure::transient(e.to_string()))?
        } else {
            let models = self.config.models_dir.clone();
            let ffmpeg = self.config.ffmpeg.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                transcribe_file(&speech, &models, ffmpeg, &source, &facts, &mut |f| {
                    let _ = progress.send(f);
                })
            })
            .await
            .map_err(|e| StageFailure::transient(e.to_string()))?
            .map_err(|e| StageFailure::transient(e.to_string()))?;
            let json = serde_json::to_vec_pretty(&outcome.transcript)
                .map_err(|e| StageFailure::transient(e.to_string()))?;
            write_atomic(&cache_file, &json)?;
            self.db.put_cached(&key, stage::TRANSCRIBE, &cache_file.to_string_lossy()).await?;
            outcome.transcript
        };
        let layout = self.layout();
        let json =
            serde_json::to_vec_pretty(&transcript).map_err(|e| StageFailure::transient(e.to_string()))?;
        write_atomic(&layout.transcript(&id), &json)?;
        let mut outputs = vec![format!("videos/{id}/transcript.json")];
        match Lang::from_metadata(&transcript.language) {
            Some(lang) => {
                for format in &options.caption_formats {
                    let (format, body) = match format.as_str() {
                        "srt" => (CaptionFormat::Srt, subtitle::srt::write(&transcript.cues)),
                        _ => (CaptionFormat::WebVtt, subtitle::vtt::write(&transcript.cues)),
                    };
                    let path = layout.captions(&id, lang, format);
                    write_atomic(&path, body.as_bytes())?;
                    outputs.push(format!("videos/{id}/captions/{lang}.{}", format.extension()));
                }
            }
            None => {
                self.warn(
                    &video.id,
                    Some(stage::TRANSCRIBE),
                    &format!(
                        "the spoken language {:?} has no caption track in babelcast yet",
                        transcript.language
                    ),
                )
                .await?;
            }
        }
        if transcript.cues.is_empty() {
            self.warn(&video.id, Some(stage::TRANSCRIBE), "no speech was found: the captions are empty")
                .await?;
        }
        Ok(StageDone {
            cached,
            data: json!({
                "cache_key": key, "language": transcript.language, "words": transcript.words.len(),
                "cues": transcript.cues.len(), "outputs": outputs,
            }),
        })
    }

    async fn captions(&self, video: &Video) -> Result<StageDone, StageFailure> {
        let (id, _) = self.source_path(video)?;
        let layout = self.layout();
        let bytes = std::fs::read(layout.transcript(&id))?;
        let transcript: Transcript =
            serde_json::from_slice(&bytes).map_err(|e| StageFailure::transient(e.to_string()))?;
        let Some(lang) = Lang::from_metadata(&transcript.language) else {
            return Ok(StageDone { cached: false, data: json!({ "published": false }) });
        };
        let mut package =
            Package::open(&layout.hls_dir(&id)).map_err(|e| StageFailure::transient(e.to_string()))?;
        package.set_original_language(lang).map_err(|e| StageFailure::transient(e.to_string()))?;
        if transcript.cues.is_empty() {
            return Ok(StageDone { cached: false, data: json!({ "published": false }) });
        }
        package.add_subtitles(lang, &transcript.cues).map_err(|e| StageFailure::transient(e.to_string()))?;
        self.db
            .add_event(
                &video.id,
                "captions_published",
                Some(stage::CAPTIONS),
                &format!("{} captions are in the master playlist", lang.name()),
                Some(json!({ "language": lang.tag(), "cues": transcript.cues.len() })),
            )
            .await?;
        Ok(StageDone { cached: false, data: json!({ "published": true, "language": lang.tag() }) })
    }

    /// Records a warning on the video and in its event log.
    pub(crate) async fn warn(
        &self,
        video_id: &str,
        stage: Option<&str>,
        message: &str,
    ) -> Result<(), StageFailure> {
        self.db.add_warning(video_id, message).await?;
        self.db.add_event(video_id, "warning", stage, message, None).await?;
        Ok(())
    }

    /// Moves a video on once a stage is over: queues `captions` when both the
    /// package and the transcript exist, and gives the video its final state when
    /// no stage is left to run. Safe to call any number of times.
    pub async fn settle(&self, video_id: &str) -> Result<(), babelcast_jobs::DbError> {
        let Some(video) = self.db.video(video_id).await? else { return Ok(()) };
        if video.state.is_final() {
            return Ok(());
        }
        let jobs = self.db.jobs(video_id).await?;
        let state_of = |stage: &str| jobs.iter().find(|j| j.stage == stage).map(|j| j.state);
        if state_of(stage::ENCODE) == Some(JobState::Done)
            && state_of(stage::TRANSCRIBE) == Some(JobState::Done)
            && state_of(stage::CAPTIONS).is_none()
        {
            self.db.enqueue(video_id, stage::CAPTIONS, self.config.max_attempts).await?;
            return Ok(());
        }
        if jobs.iter().any(|j| matches!(j.state, JobState::Queued | JobState::Running)) {
            return Ok(());
        }
        let dead = |stage: &str| jobs.iter().find(|j| j.stage == stage && j.state == JobState::Dead);
        let fatal = dead(stage::PROBE).or_else(|| dead(stage::ENCODE));
        let (state, error) = match fatal {
            Some(job) => (VideoState::Failed, job.last_error.clone()),
            None => {
                for stage in [stage::TRANSCRIBE, stage::CAPTIONS] {
                    if let Some(job) = dead(stage) {
                        let why = job.last_error.clone().unwrap_or_default();
                        let _ = self
                            .warn(
                                video_id,
                                Some(stage),
                                &format!("published without captions: {stage} failed: {why}"),
                            )
                            .await;
                    }
                }
                let warned =
                    !self.db.video(video_id).await?.map(|v| v.warnings).unwrap_or_default().is_empty();
                (if warned { VideoState::CompletedWithWarnings } else { VideoState::Completed }, None)
            }
        };
        if self.db.finish_video(video_id, state, error.as_deref()).await? {
            let (kind, message) = match state {
                VideoState::Failed => ("failed", format!("failed: {}", error.unwrap_or_default())),
                VideoState::CompletedWithWarnings => ("completed", "completed with warnings".to_owned()),
                _ => ("completed", "completed".to_owned()),
            };
            self.db.add_event(video_id, kind, None, &message, Some(json!({ "state": state }))).await?;
            tracing::info!(video = video_id, state = state.as_str(), "video settled");
        }
        Ok(())
    }
}
