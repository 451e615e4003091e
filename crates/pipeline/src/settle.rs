//! Settling a video: gathering what is recorded about it, asking the stage graph
//! ([`crate::graph::plan`]) what comes next, and doing that: queuing stages,
//! recording warnings and moving the video's state.

use babelcast_core::Lang;
use babelcast_jobs::{DbError, Event, VideoState};
use babelcast_translate::Translator as _;
use serde_json::json;

use crate::Pipeline;
use crate::graph::{JobFacts, Review, Spoken, Stage, VideoFacts, missing_languages, plan};
use crate::review::Approvals;

/// The last `kind` event (of `stage`, if given).
fn last_event<'a>(events: &'a [Event], kind: &str, stage: Option<Stage>) -> Option<&'a Event> {
    let stage = stage.map(|s| s.to_string());
    events.iter().rev().find(|e| e.kind == kind && (stage.is_none() || e.stage == stage))
}

impl Pipeline {
    /// The video's jobs as the stage graph sees them (jobs of no known stage,
    /// from an older version, are left out).
    async fn job_facts(&self, video_id: &str) -> Result<Vec<JobFacts>, DbError> {
        Ok(self
            .db
            .jobs(video_id)
            .await?
            .into_iter()
            .filter_map(|j| {
                Some(JobFacts {
                    stage: j.stage.parse().ok()?,
                    state: j.state,
                    started_ms: j.started_ms,
                    finished_ms: j.finished_ms,
                    last_error: j.last_error,
                })
            })
            .collect())
    }

    /// Moves a video on once something happened to it (a stage ended, the
    /// transcript was edited or approved): queues what the stage graph says comes
    /// next, records its warnings and gives the video its new state. Safe to call
    /// any number of times, from any node.
    pub async fn settle(&self, video_id: &str) -> Result<(), DbError> {
        let Some(video) = self.db.video(video_id).await? else { return Ok(()) };
        let options = Self::options(&video);
        let targets = options.targets();
        let jobs = self.job_facts(video_id).await?;
        let events = self.db.events(video_id, 0).await?;
        let finished =
            |stage| last_event(&events, "stage_finished", Some(stage)).and_then(|e| e.data.as_ref());
        let audio = finished(Stage::Probe).and_then(|d| d["audio_streams"].as_u64()).map(|n| n > 0);
        let given_transcript = options.transcript.is_some();
        let transcript_stage = if given_transcript { Stage::Import } else { Stage::Transcribe };
        let spoken = finished(transcript_stage).and_then(|d| {
            Some(Spoken { language: d["language"].as_str()?.to_owned(), cues: d["cues"].as_u64()? as usize })
        });
        let approvals = Approvals::of(&events);
        let edited_ms = events
            .iter()
            .rev()
            .find(|e| e.kind == "transcript_edited" && e.data.as_ref().is_some_and(|d| d["changed"] == true))
            .map(|e| e.at_ms);
        let translation_edits: Vec<(Lang, i64)> = events
            .iter()
            .filter(|e| {
                e.kind == "translation_edited" && e.data.as_ref().is_some_and(|d| d["changed"] == true)
            })
            .filter_map(|e| Some((e.stage.as_deref()?.parse::<Stage>().ok()?.language()?, e.at_ms)))
            .collect();
        let translators = self.translators();
        let can_translate =
            |from: Lang, to: Lang| translators.engine(from, to).is_some() || options.translation_given(to);
        let plan = plan(&VideoFacts {
            state: video.state,
            warned: !video.warnings.is_empty(),
            targets: &targets,
            review: options.review,
            audio,
            given_transcript,
            retime: options.retime,
            spoken,
            approved_ms: approvals.transcript_ms,
            edited_ms,
            review_translations: options.review_translations,
            translations_approved_ms: approvals.translations_ms,
            translation_edits: &translation_edits,
            jobs: &jobs,
            can_translate: &can_translate,
        });

        let max = self.config.max_attempts;
        for stage in &plan.queue {
            self.db.enqueue(video_id, &stage.to_string(), max).await?;
        }
        for stage in &plan.rerun {
            self.db.requeue(video_id, &stage.to_string(), max).await?;
        }
        for warning in &plan.warnings {
            if self.db.add_warning(video_id, &warning.message).await? {
                let stage = warning.stage.map(|s| s.to_string());
                self.db.add_event(video_id, "warning", stage.as_deref(), &warning.message, None).await?;
            }
        }
        let moved = match plan.state {
            None => false,
            Some(VideoState::AwaitingReview) => {
                self.db.transition(video_id, VideoState::Processing, VideoState::AwaitingReview).await?
            }
            Some(VideoState::Processing) => {
                self.db.transition(video_id, video.state, VideoState::Processing).await?
            }
            Some(state) => self.db.finish_video(video_id, state, plan.error.as_deref()).await?,
        };
        if let (true, Some(state)) = (moved, plan.state) {
            self.announce(video_id, state, plan.review, plan.error.as_deref()).await?;
            if !self.config.keep_source
                && matches!(state, VideoState::Completed | VideoState::CompletedWithWarnings)
                && let Err(e) = self.remove_source(&video).await
            {
                tracing::warn!(video = video_id, error = %e, "cannot remove the finished video's upload");
            }
        }
        Ok(())
    }

    /// The event of a video's move to `state` (written once: by the settle that
    /// made the move).
    async fn announce(
        &self,
        video_id: &str,
        state: VideoState,
        review: Option<Review>,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        let (kind, stage, message, data) = match state {
            VideoState::AwaitingReview => {
                let (what, name) = match review {
                    Some(Review::Translations) => ("the translations wait", "translations"),
                    _ => ("the transcript waits", "transcript"),
                };
                (
                    "awaiting_review",
                    (name == "transcript").then(|| Stage::Transcribe.to_string()),
                    format!("{what} for review at /review/{video_id}"),
                    json!({ "review_url": format!("/review/{video_id}"), "review": name }),
                )
            }
            VideoState::Processing => {
                ("processing", None, "processing again: its input changed".to_owned(), json!({}))
            }
            VideoState::Failed => {
                ("failed", None, format!("failed: {}", error.unwrap_or_default()), json!({ "state": state }))
            }
            VideoState::CompletedWithWarnings => {
                ("completed", None, "completed with warnings".to_owned(), json!({ "state": state }))
            }
            VideoState::Completed => ("completed", None, "completed".to_owned(), json!({ "state": state })),
            VideoState::Cancelled => ("cancelled", None, "cancelled".to_owned(), json!({ "state": state })),
        };
        self.db.add_event(video_id, kind, stage.as_deref(), &message, Some(data)).await?;
        if state.is_final() {
            tracing::info!(video = video_id, state = state.as_str(), "video settled");
        }
        Ok(())
    }

    /// Cancels a video in progress (see `Db::cancel_video`); false if it was not.
    pub async fn cancel(&self, id: &babelcast_core::VideoId) -> Result<bool, DbError> {
        self.db.cancel_video(id.as_str()).await
    }

    /// Runs a dead stage again, its attempts starting over; false when the stage
    /// has not died (nothing to retry). The video is processing until it settles.
    pub async fn retry(&self, id: &babelcast_core::VideoId, stage: Stage) -> Result<bool, DbError> {
        let jobs = self.job_facts(id.as_str()).await?;
        if !jobs.iter().any(|j| j.stage == stage && j.state == babelcast_jobs::JobState::Dead) {
            return Ok(false);
        }
        self.db.requeue(id.as_str(), &stage.to_string(), self.config.max_attempts).await?;
        // Its failure's warning goes; if it dies again, the graph says so again.
        self.db.remove_warnings(id.as_str(), &format!("{stage} failed:")).await?;
        self.db
            .add_event(
                id.as_str(),
                "stage_retried",
                Some(&stage.to_string()),
                &format!("{stage} runs again"),
                None,
            )
            .await?;
        self.settle(id.as_str()).await?;
        Ok(true)
    }

    /// The languages asked for that the video has no finished dub in.
    pub async fn missing_languages(&self, video_id: &str) -> Result<Vec<Lang>, DbError> {
        let Some(video) = self.db.video(video_id).await? else { return Ok(Vec::new()) };
        let targets = Self::options(&video).targets();
        Ok(missing_languages(&targets, &self.job_facts(video_id).await?))
    }
}
