//! The transcribe stage: speech to the transcript (cached by source, model and
//! options) and the spoken language's caption files; and how a transcript,
//! recognised or given (the import stage), is published to the video.

use babelcast_core::{Lang, Transcript, VideoId};
use babelcast_jobs::Video;
use babelcast_store::remote::Scope;
use babelcast_store::write_atomic;
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

use super::{CACHE_VERSION, StageDone, StageFailure, cache_key};
use crate::VideoOptions;
use crate::graph::Stage;
use crate::mirror::PACKAGE;
use crate::speech::{model_identity, transcribe_file};
use crate::{Pipeline, stage};

impl Pipeline {
    pub(super) async fn transcribe(
        &self,
        video: &Video,
        progress: UnboundedSender<f64>,
    ) -> Result<StageDone, StageFailure> {
        let (id, source) = self.source_path(video)?;
        let facts = self.read_facts(&id)?;
        let options = Self::options(video);
        let mut speech = self.config.speech.clone();
        // Re-timing given subtitles: the language is detected, not taken from
        // them, so subtitles in another language than the speech are told apart
        // (the import stage refuses them).
        speech.language =
            if options.transcript.is_some() { "auto".to_owned() } else { options.language.clone() };
        let key = cache_key(&json!({
            "stage": stage::TRANSCRIBE, "v": CACHE_VERSION, "source": video.source_sha256,
            "model": model_identity(&speech), "language": speech.language, "beam_size": speech.beam_size,
            "compute_type": speech.compute_type, "vad": speech.vad,
            "batch_size": speech.effective_batch_size(),
        }));
        let cache_file =
            self.config.data_dir.join("cache").join(stage::TRANSCRIBE).join(format!("{key}.json"));
        // Whether found or made, this video uses the entry (see `deletion`).
        self.use_cache_entry(&key, &video.id, &cache_file).await?;
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
            .await?
            .map_err(|e| StageFailure::from_error(&e))?;
            let json = serde_json::to_vec_pretty(&outcome.transcript)
                .map_err(|e| StageFailure::transient(e.to_string()))?;
            write_atomic(&cache_file, &json)?;
            self.store_file(&cache_file).await?;
            self.put_cache_entry(&key, stage::TRANSCRIBE, &video.id, &cache_file).await?;
            outcome.transcript
        };
        // With subtitles given, what was heard is only what they are re-timed to.
        let outputs = if options.transcript.is_some() {
            let json = serde_json::to_vec(&transcript).map_err(|e| StageFailure::transient(e.to_string()))?;
            write_atomic(&super::import::recognized(&self.layout(), &id), &json)?;
            self.push_video(&video.id, Scope::Except(PACKAGE)).await?;
            Vec::new()
        } else {
            self.publish_transcript(video, &id, &transcript, &options, Stage::Transcribe).await?
        };
        Ok(StageDone {
            cached,
            data: json!({
                "cache_key": key, "language": transcript.language, "words": transcript.words.len(),
                "cues": transcript.cues.len(), "outputs": outputs,
            }),
        })
    }
}

impl Pipeline {
    /// Writes `transcript` into the video (`transcript.json` and the language's
    /// caption files), warns about what it lacks, and sends it to the bucket
    /// before a reviewer or a translation on another machine can ask for it.
    /// Returns the outputs written, relative to the data folder.
    pub(super) async fn publish_transcript(
        &self,
        video: &Video,
        id: &VideoId,
        transcript: &Transcript,
        options: &VideoOptions,
        stage: Stage,
    ) -> Result<Vec<String>, StageFailure> {
        let stage = stage.to_string();
        let json =
            serde_json::to_vec_pretty(transcript).map_err(|e| StageFailure::transient(e.to_string()))?;
        write_atomic(&self.layout().transcript(id), &json)?;
        let mut outputs = vec![format!("videos/{id}/transcript.json")];
        match Lang::from_metadata(&transcript.language) {
            Some(lang) => {
                for format in self.write_captions(id, lang, &transcript.cues, options)? {
                    outputs.push(format!("videos/{id}/captions/{lang}.{}", format.extension()));
                }
            }
            None => {
                self.warn(
                    &video.id,
                    Some(&stage),
                    &format!(
                        "the spoken language {:?} has no caption track in babelcast yet",
                        transcript.language
                    ),
                )
                .await?;
            }
        }
        if transcript.cues.is_empty() {
            self.warn(&video.id, Some(&stage), "no speech was found: the captions are empty").await?;
        }
        self.push_video(&video.id, Scope::Except(PACKAGE)).await?;
        Ok(outputs)
    }
}
