//! What each stage does, and how a video settles once its stages are over.

use babelcast_translate::Translator as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use babelcast_core::{CaptionProfile, ErrorCode, Lang, MediaFacts, Transcript, VideoId, subtitle};
use babelcast_jobs::{Job, JobState, Video, VideoState};
use babelcast_media::{Package, Packager, Prober};
use babelcast_store::{CaptionFormat, StagedDir, write_atomic};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedSender;

use crate::mirror::PACKAGE;
use crate::speech::{model_identity, transcribe_file};
use crate::{Pipeline, VideoOptions, stage};
use babelcast_store::remote::Scope;

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

    pub(crate) fn transient(message: impl Into<String>) -> StageFailure {
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

/// The installed Piper voice for `lang`: `models/piper-{lang}_*/*.onnx`.
pub fn piper_model(models_dir: &Path, lang: Lang) -> Option<PathBuf> {
    std::fs::read_dir(models_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("piper-{}_", lang.tag())))
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "onnx"))
}

/// The voice for `lang`: an installed Piper voice (`models/piper-{lang}_*/*.onnx`)
/// if it loads, else espeak-ng. When a Piper voice fails to load, the second value
/// says why (a warning: the dub still happens, with espeak-ng).
pub(crate) fn choose_voice(
    models_dir: &Path,
    espeak: babelcast_process::Program,
    lang: Lang,
) -> (Box<dyn babelcast_voice::Voice + Send>, Option<String>) {
    let piper = piper_model(models_dir, lang);
    let library = std::fs::read_dir(models_dir.join("onnxruntime"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so")));
    if let (Some(model), Some(library)) = (piper, library) {
        match babelcast_voice::Piper::load(&model, &library, espeak.clone()) {
            Ok(voice) => return (Box::new(voice), None),
            Err(e) => {
                return (
                    Box::new(babelcast_voice::Espeak::new(espeak, lang)),
                    Some(format!("{e}; the {lang} dub uses espeak-ng instead")),
                );
            }
        }
    }
    (Box::new(babelcast_voice::Espeak::new(espeak, lang)), None)
}

fn parse_lang(tag: &str) -> Result<Lang, StageFailure> {
    tag.parse().map_err(|e: babelcast_core::UnknownLang| StageFailure::permanent(e.to_string()))
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
        match job.stage.as_str() {
            stage::PROBE => self.probe(video).await,
            stage::ENCODE => self.encode(video, progress).await,
            stage::TRANSCRIBE => self.transcribe(video, progress).await,
            stage::CAPTIONS => self.captions(video).await,
            other => match other.split_once('-') {
                Some((stage::TRANSLATE, tag)) => self.translate(video, parse_lang(tag)?).await,
                Some((stage::DUB, tag)) => self.dub(video, parse_lang(tag)?, progress).await,
                _ => Err(StageFailure::permanent(format!("unknown stage {other:?}"))),
            },
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
        // With a bucket, what the next stages read must be there before they are
        // queued: another machine may claim them at once.
        self.push_video(&video.id, Scope::Except(PACKAGE)).await?;
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
        let cached = self.db.cached(&key).await?.is_some()
            && self.pull_cache_dir(&cache_dir, babelcast_media::hls::MASTER).await?;
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
            self.push_cache_dir(&cache_dir).await?;
            self.db.put_cached(&key, stage::ENCODE, &cache_dir.to_string_lossy()).await?;
        }
        // The video's own package: links to the cached files, so adding tracks to
        // it (which replaces files, never edits them) leaves the cache pristine.
        let hls = self.layout().hls_dir(&id);
        let renditions: Vec<String> = {
            // Published and announced under the package lock, so a caption track
            // added by a concurrent stage is announced after `playable`, never before.
            let held = self.lock_package(&video.id).await?;
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
                    Some(
                        json!({ "master": format!("videos/{id}/hls/master.m3u8"), "renditions": renditions }),
                    ),
                )
                .await?;
            self.unlock_package(held).await?;
            renditions
        };
        // Captions or dubs that finished before the video: into the package now.
        self.refresh_package(video).await?;
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
        let cached = self.db.cached(&key).await?.is_some() && self.fetch_file(&cache_file).await?;
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
            self.store_file(&cache_file).await?;
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
                for format in self.write_captions(&id, lang, &transcript.cues, &options)? {
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
        // The transcript and captions reach the bucket before a reviewer or a
        // translation on another machine can ask for them.
        self.push_video(&video.id, Scope::Except(PACKAGE)).await?;
        if options.review {
            if self.db.transition(&video.id, VideoState::Processing, VideoState::AwaitingReview).await? {
                self.db
                    .add_event(
                        &video.id,
                        "awaiting_review",
                        Some(stage::TRANSCRIBE),
                        &format!("the transcript waits for review at /review/{id}"),
                        Some(json!({ "review_url": format!("/review/{id}") })),
                    )
                    .await?;
            }
        } else if !options.to.is_empty() {
            if transcript.cues.is_empty() {
                self.warn(
                    &video.id,
                    Some(stage::TRANSCRIBE),
                    "nothing to translate or dub: the transcript is empty",
                )
                .await?;
            } else {
                for tag in &options.to {
                    self.db
                        .enqueue(&video.id, &format!("{}-{tag}", stage::TRANSLATE), self.config.max_attempts)
                        .await?;
                }
            }
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
        let added = self.refresh_package(video).await?;
        Ok(StageDone { cached: false, data: json!({ "added": added }) })
    }

    /// Adds to the video's package every caption track (`captions/{lang}.vtt`) and
    /// dub (`dub/{lang}.m4a`) it does not have yet, and labels the original audio
    /// with the spoken language. Nothing to do until the package exists. Returns
    /// what was added.
    pub(crate) async fn refresh_package(&self, video: &Video) -> Result<Vec<String>, StageFailure> {
        let (id, _) = self.source_path(video)?;
        let layout = self.layout();
        let hls = layout.hls_dir(&id);
        let held = self.lock_package(&video.id).await?;
        if !hls.join(babelcast_media::hls::STATE).is_file() {
            return Ok(Vec::new());
        }
        let added = self.refresh_locked(video, &id, &hls).await?;
        self.unlock_package(held).await?;
        Ok(added)
    }

    async fn refresh_locked(
        &self,
        video: &Video,
        id: &VideoId,
        hls: &Path,
    ) -> Result<Vec<String>, StageFailure> {
        let layout = self.layout();
        let reviewing =
            self.db.video(&video.id).await?.is_some_and(|v| v.state == VideoState::AwaitingReview);
        if reviewing {
            // Unreviewed captions are not published.
            return Ok(Vec::new());
        }
        let mut package = Package::open(hls).map_err(|e| StageFailure::transient(e.to_string()))?;
        let spoken = std::fs::read(layout.transcript(id))
            .ok()
            .and_then(|b| serde_json::from_slice::<Transcript>(&b).ok())
            .and_then(|t| Lang::from_metadata(&t.language));
        if let Some(lang) = spoken
            && package.state().audio.iter().any(|a| a.original && a.language != Some(lang))
        {
            package.set_original_language(lang).map_err(|e| StageFailure::transient(e.to_string()))?;
        }
        let mut added = Vec::new();
        for lang in Lang::all() {
            let vtt = layout.captions(id, lang, CaptionFormat::WebVtt);
            let has_subs = package.state().subtitles.iter().any(|t| t.language == lang);
            if !has_subs && vtt.is_file() {
                let text = std::fs::read_to_string(&vtt)?;
                let cues = subtitle::vtt::read(&text).map_err(|e| StageFailure::transient(e.to_string()))?;
                if !cues.is_empty() {
                    package.add_subtitles(lang, &cues).map_err(|e| StageFailure::transient(e.to_string()))?;
                    added.push(format!("captions {lang}"));
                    self.captions_published(&video.id, lang, cues.len()).await?;
                }
            }
            let m4a = layout.dub(id, lang);
            let has_dub = package.state().audio.iter().any(|t| !t.original && t.language == Some(lang));
            // A dub made again (after an edit) is newer than its packaged track.
            let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            let stale =
                modified(&m4a) > modified(&hls.join(format!("dub-{}", lang.tag())).join("index.m3u8"));
            if (!has_dub || stale) && m4a.is_file() {
                let packager = Packager::new(
                    self.config.ffmpeg.clone(),
                    self.config.ffprobe.clone(),
                    self.config.ladder.clone(),
                );
                let mut p = package.clone();
                let result = tokio::task::spawn_blocking(move || {
                    packager.add_audio(&mut p, lang, &m4a, &mut |_| {}).map(|()| p)
                })
                .await
                .map_err(|e| StageFailure::transient(e.to_string()))?;
                package = result.map_err(|e| StageFailure::transient(e.to_string()))?;
                added.push(format!("audio {lang}"));
                self.db
                    .add_event(
                        &video.id,
                        "dub_published",
                        None,
                        &format!("the {} dub is in the master playlist", lang.name()),
                        Some(json!({ "language": lang.tag() })),
                    )
                    .await?;
            }
        }
        Ok(added)
    }

    async fn translate(&self, video: &Video, to: Lang) -> Result<StageDone, StageFailure> {
        let (id, _) = self.source_path(video)?;
        let layout = self.layout();
        let options = Self::options(video);
        let bytes = std::fs::read(layout.transcript(&id))?;
        let transcript: Transcript =
            serde_json::from_slice(&bytes).map_err(|e| StageFailure::transient(e.to_string()))?;
        let from = Lang::from_metadata(&transcript.language).ok_or_else(|| {
            StageFailure::permanent(format!(
                "cannot translate from {:?}: babelcast has no such language",
                transcript.language
            ))
        })?;
        if from == to {
            return Err(StageFailure::permanent(format!(
                "{to} is the spoken language: nothing to translate"
            )));
        }
        let translators = self.translators();
        let engine = translators.engine(from, to).unwrap_or_default();
        let glossary = options.glossary.clone();
        let cues = transcript.cues.clone();
        let translation = tokio::task::spawn_blocking(move || {
            babelcast_translate::translate_cues(
                &translators,
                from,
                to,
                &cues,
                &glossary,
                &CaptionProfile::default(),
            )
        })
        .await
        .map_err(|e| StageFailure::transient(e.to_string()))?
        .map_err(|e| StageFailure::from_error(&e))?;
        self.write_captions(&id, to, &translation.cues, &options)?;
        let shown = translation.warnings.len().min(5);
        for warning in &translation.warnings[..shown] {
            self.warn(&video.id, Some(&format!("{}-{to}", stage::TRANSLATE)), warning).await?;
        }
        if translation.warnings.len() > shown {
            let more = format!("{to}: {} more caption rule warnings", translation.warnings.len() - shown);
            self.warn(&video.id, None, &more).await?;
        }
        // Again after an edit: the dub follows the new translation.
        self.push_video(&video.id, Scope::Except(PACKAGE)).await?;
        self.db.requeue(&video.id, &format!("{}-{to}", stage::DUB), self.config.max_attempts).await?;
        self.replace_subtitles(video, to, &translation.cues).await?;
        Ok(StageDone {
            cached: false,
            data: json!({ "from": from.tag(), "to": to.tag(), "cues": translation.cues.len(), "engine": engine }),
        })
    }

    async fn dub(
        &self,
        video: &Video,
        to: Lang,
        progress: UnboundedSender<f64>,
    ) -> Result<StageDone, StageFailure> {
        let (id, source) = self.source_path(video)?;
        let facts = self.read_facts(&id)?;
        let layout = self.layout();
        let options = Self::options(video);
        let text = std::fs::read_to_string(layout.captions(&id, to, CaptionFormat::WebVtt))?;
        let cues = subtitle::vtt::read(&text).map_err(|e| StageFailure::transient(e.to_string()))?;
        let spoken = std::fs::read(layout.transcript(&id))
            .ok()
            .and_then(|b| serde_json::from_slice::<Transcript>(&b).ok());
        let source_lang = spoken.as_ref().and_then(|t| Lang::from_metadata(&t.language));
        let source_cues = spoken.map(|t| t.cues).unwrap_or_default();
        let total_ms = (facts.duration_secs.unwrap_or(0.0) * 1000.0).round().max(0.0) as u64;
        let (espeak, ffmpeg, preset) =
            (self.config.espeak.clone(), self.config.ffmpeg.clone(), self.config.ladder.preset.clone());
        let (m4a, mp4) = (layout.dub(&id, to), layout.mp4(&id, to));
        let qa_path = m4a.with_extension("qa.json");
        let mode = options.dub_mode;
        let models_dir = self.config.models_dir.clone();
        let (summary, fallback) = tokio::task::spawn_blocking(
            move || -> Result<(babelcast_voice::QaSummary, Option<String>), StageFailure> {
                let (voice, fallback) = choose_voice(&models_dir, espeak, to);
                let dub = babelcast_voice::dub(
                    voice.as_ref(),
                    &cues,
                    total_ms,
                    babelcast_voice::FitOptions::default(),
                )
                .map_err(|e| StageFailure::from_error(&e))?;
                let _ = progress.send(0.5);
                let scratch = tempfile::tempdir()?;
                let wav = scratch.path().join("speech.wav");
                dub.write_wav(&wav).map_err(|e| StageFailure::transient(e.to_string()))?;
                babelcast_media::dub_track(&ffmpeg, &source, &facts, &wav, mode, &m4a)
                    .map_err(|e| StageFailure::from_error(&e))?;
                let summary = dub.summary();
                let qa = json!({ "voice": voice.name(), "summary": summary, "cues": dub.fits });
                write_atomic(&qa_path, serde_json::to_string_pretty(&qa).unwrap_or_default().as_bytes())?;
                let _ = progress.send(0.8);
                // The download: the dub first, the original second, both caption tracks.
                let mut subtitles = vec![(to, cues)];
                if let Some(lang) = source_lang {
                    subtitles.push((lang, source_cues));
                }
                let spec = babelcast_media::Mp4Spec {
                    source: &source,
                    facts: &facts,
                    audio: vec![
                        babelcast_media::Mp4Audio::File { path: m4a.clone(), language: to },
                        babelcast_media::Mp4Audio::Original { language: source_lang },
                    ]
                    .into_iter()
                    .filter(|a| {
                        !matches!(a, babelcast_media::Mp4Audio::Original { .. }) || !facts.audio.is_empty()
                    })
                    .collect(),
                    subtitles,
                    burn_in: None,
                };
                babelcast_media::Mp4Writer::new(ffmpeg, preset)
                    .write(&spec, &mp4, &mut |_| {})
                    .map_err(|e| StageFailure::from_error(&e))?;
                Ok((summary, fallback))
            },
        )
        .await
        .map_err(|e| StageFailure::transient(e.to_string()))??;
        if let Some(why) = fallback {
            self.warn(&video.id, Some(&format!("{}-{to}", stage::DUB)), &why).await?;
        }
        self.db
            .add_event(
                &video.id,
                "dub_qa",
                Some(&format!("{}-{to}", stage::DUB)),
                &format!(
                    "{to} dub: {:.0}% of cues fit without speed-up, max speed {:.2}x, {} ran into the following silence, {} cut",
                    summary.fit_without_speedup * 100.0,
                    summary.max_speed,
                    summary.overflowing,
                    summary.cut
                ),
                Some(serde_json::to_value(&summary).unwrap_or_default()),
            )
            .await?;
        // The dub reaches the bucket before the package that plays it.
        self.push_video(&video.id, Scope::Except(PACKAGE)).await?;
        self.refresh_package(video).await?;
        Ok(StageDone {
            cached: false,
            data: json!({
                "language": to.tag(), "qa": summary,
                "outputs": [format!("videos/{id}/dub/{to}.m4a"), format!("videos/{id}/mp4/{to}.mp4")],
            }),
        })
    }

    /// Puts `cues` in the package as the `lang` caption track, replacing an older
    /// one (after an edit); nothing to do before the package exists.
    pub(crate) async fn replace_subtitles(
        &self,
        video: &Video,
        lang: Lang,
        cues: &[babelcast_core::Cue],
    ) -> Result<(), StageFailure> {
        let (id, _) = self.source_path(video)?;
        let hls = self.layout().hls_dir(&id);
        if cues.is_empty() {
            return Ok(());
        }
        let held = self.lock_package(&video.id).await?;
        if !hls.join(babelcast_media::hls::STATE).is_file() {
            return Ok(());
        }
        let mut package = Package::open(&hls).map_err(|e| StageFailure::transient(e.to_string()))?;
        package.add_subtitles(lang, cues).map_err(|e| StageFailure::transient(e.to_string()))?;
        self.unlock_package(held).await?;
        self.captions_published(&video.id, lang, cues.len()).await?;
        Ok(())
    }

    /// The lock around changes to one video's package: this process's tasks
    /// queue on a mutex, and other processes (workers on this machine, or on
    /// others sharing the data folder) on an exclusive `flock` of
    /// `videos/{id}/.package.lock`, held until the guard is dropped. With a
    /// bucket, machines share no folder: the database's lock is taken too, and the
    /// package is pulled once it is held; [`Pipeline::unlock_package`] pushes it.
    async fn lock_package(&self, video_id: &str) -> Result<PackageGuard, StageFailure> {
        let local = {
            let mut locks = self.package_locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(locks.entry(video_id.to_owned()).or_default())
        };
        let local = local.lock_owned().await;
        let path = self.config.data_dir.join("videos").join(video_id).join(".package.lock");
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            let file = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path)?;
            file.lock()?;
            Ok(file)
        })
        .await
        .map_err(|e| StageFailure::transient(e.to_string()))?
        .map_err(|e| StageFailure::transient(format!("cannot lock the package: {e}")))?;
        let shared = match self.remote {
            Some(_) => Some(self.db.lock(&format!("package {video_id}")).await?),
            None => None,
        };
        self.pull_video(video_id, Scope::Only(PACKAGE)).await?;
        Ok(PackageGuard { _file: file, _local: local, _shared: shared, video_id: video_id.to_owned() })
    }

    /// Publishes the package's changes (to the bucket, if any) and lets go of its
    /// lock. A guard dropped without this (on an error) changes nothing shared.
    async fn unlock_package(&self, guard: PackageGuard) -> Result<(), StageFailure> {
        self.push_video(&guard.video_id, Scope::Only(PACKAGE)).await?;
        drop(guard);
        Ok(())
    }

    async fn captions_published(&self, video_id: &str, lang: Lang, cues: usize) -> Result<(), StageFailure> {
        self.db
            .add_event(
                video_id,
                "captions_published",
                None,
                &format!("{} captions are in the master playlist", lang.name()),
                Some(json!({ "language": lang.tag(), "cues": cues })),
            )
            .await?;
        Ok(())
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
        if video.state.is_final() || video.state == VideoState::AwaitingReview {
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

/// Held while a video's package changes; see `Pipeline::lock_package`.
struct PackageGuard {
    _file: std::fs::File,
    _local: tokio::sync::OwnedMutexGuard<()>,
    _shared: Option<babelcast_jobs::DbLock>,
    video_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_models() -> PathBuf {
        babelcast_models::default_dir()
    }

    #[test]
    fn english_gets_the_piper_voice_and_a_broken_one_falls_back_to_espeak_with_a_warning() {
        let espeak = babelcast_process::Program::espeak_ng();
        let en: Lang = "en".parse().expect("en");
        let es: Lang = "es".parse().expect("es");
        let (voice, warning) = choose_voice(&repo_models(), espeak.clone(), en);
        assert_eq!((voice.name().as_str(), warning), ("piper:en_US-joe-medium", None));
        let (voice, _) = choose_voice(&repo_models(), espeak.clone(), es);
        assert_eq!(voice.name(), "espeak-ng:es");

        let models = tempfile::tempdir().expect("tmp");
        std::os::unix::fs::symlink(
            std::path::absolute(repo_models().join("onnxruntime")).expect("abs"),
            models.path().join("onnxruntime"),
        )
        .expect("link");
        let broken = models.path().join("piper-en_US-broken");
        std::fs::create_dir_all(&broken).expect("mkdir");
        std::fs::write(broken.join("broken.onnx"), "not a model").expect("write");
        std::fs::copy(
            repo_models().join("piper-en_US-joe-medium/en_US-joe-medium.onnx.json"),
            broken.join("broken.onnx.json"),
        )
        .expect("copy");
        let (voice, warning) = choose_voice(models.path(), espeak, en);
        assert_eq!(voice.name(), "espeak-ng:en");
        let warning = warning.expect("a warning");
        assert!(warning.contains("broken.onnx") && warning.contains("uses espeak-ng instead"), "{warning}");
    }
}
