//! The review gates: a video submitted with `review: true` waits after transcription
//! (`awaiting_review`) until a person has read, corrected and approved its cues;
//! with `review_translations: true` it waits again after translation, before any
//! dub (the translations' side is `crate::translation_review`). Edits after
//! approval replace the caption track here; what runs again after them (each
//! translation, then its dub; never the encode) is the stage graph's call
//! (`crate::graph`), from the `transcript_edited` event.

use babelcast_core::{CaptionProfile, Cue, ErrorCode, Lang, Transcript, VideoId, Violation, captions};
use babelcast_jobs::{DbError, VideoState};
use babelcast_store::write_atomic;
use serde::Serialize;
use serde_json::json;

use crate::graph::Review;
use crate::mirror::PACKAGE;
use crate::{Pipeline, VideoOptions};
use babelcast_store::remote::Scope;

/// Why a review action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// No such video.
    #[error("no such video")]
    NoVideo,
    /// Not transcribed (yet).
    #[error("the video has no transcript yet")]
    NoTranscript,
    /// Approve on a video that is not waiting for it.
    #[error("the video is {0}, not awaiting review")]
    NotAwaitingReview(&'static str),
    /// The cues sent are unusable.
    #[error("invalid cues: {0}")]
    BadCues(String),
    /// The language is not translated (yet), or not a target of the video.
    #[error("the video has no {0} translation (yet)")]
    NoTranslation(Lang),
    /// Storage failed.
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ErrorCode for ReviewError {
    fn code(&self) -> &'static str {
        match self {
            ReviewError::NoVideo => "not_found",
            ReviewError::NoTranscript => "no_transcript",
            ReviewError::NotAwaitingReview(_) => "not_awaiting_review",
            ReviewError::BadCues(_) => "invalid_cues",
            ReviewError::NoTranslation(_) => "no_translation",
            ReviewError::Io(_) => "storage",
            ReviewError::Db(e) => e.code(),
        }
    }

    fn is_client_error(&self) -> bool {
        !matches!(self, ReviewError::Io(_) | ReviewError::Db(_))
    }
}

/// A transcript as the review page and API show it.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptView {
    /// The spoken language.
    pub language: String,
    /// The video's state.
    pub state: &'static str,
    /// The cues.
    pub cues: Vec<Cue>,
    /// The caption rules they break.
    pub violations: Vec<Violation>,
    /// The target languages translated so far (each can be read and edited).
    pub translations: Vec<String>,
}

/// The event kinds that record the two approvals.
pub(crate) const TRANSCRIPT_APPROVED: &str = "approved";
pub(crate) const TRANSLATIONS_APPROVED: &str = "translations_approved";

/// When each review gate was last approved, read from a video's event log: what
/// the stage graph, the package and the review routes all decide by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Approvals {
    /// The transcript's approval, Unix ms.
    pub transcript_ms: Option<i64>,
    /// The translations' approval, Unix ms.
    pub translations_ms: Option<i64>,
}

impl Approvals {
    pub(crate) fn of(events: &[babelcast_jobs::Event]) -> Approvals {
        let last = |kind: &str| events.iter().rev().find(|e| e.kind == kind).map(|e| e.at_ms);
        Approvals { transcript_ms: last(TRANSCRIPT_APPROVED), translations_ms: last(TRANSLATIONS_APPROVED) }
    }

    /// Whether the transcript still waits for its approval (nothing published).
    pub(crate) fn holds_transcript(&self, options: &VideoOptions) -> bool {
        options.review && self.transcript_ms.is_none()
    }

    /// Whether the translations still wait for theirs (not published, not dubbed).
    pub(crate) fn holds_translations(&self, options: &VideoOptions) -> bool {
        options.review_translations && self.translations_ms.is_none()
    }
}

/// Cues as a reviewer sent them, made usable: empty ones dropped, in time order;
/// refused when one ends before it starts.
pub(crate) fn checked_cues(mut cues: Vec<Cue>) -> Result<Vec<Cue>, ReviewError> {
    cues.retain(|c| !c.text.trim().is_empty());
    cues.sort_by_key(|c| (c.start, c.end));
    if let Some(bad) = cues.iter().find(|c| c.end <= c.start) {
        return Err(ReviewError::BadCues(format!(
            "the cue at {} ends at {}, before it starts",
            bad.start, bad.end
        )));
    }
    Ok(cues)
}

impl Pipeline {
    async fn load_transcript(
        &self,
        id: &VideoId,
    ) -> Result<(babelcast_jobs::Video, Transcript), ReviewError> {
        let video = self.db.video(id.as_str()).await?.ok_or(ReviewError::NoVideo)?;
        let path = self.layout().transcript(id);
        self.fetch_file(&path).await.map_err(std::io::Error::other)?;
        let bytes = std::fs::read(&path).map_err(|_| ReviewError::NoTranscript)?;
        let transcript = serde_json::from_slice(&bytes).map_err(|e| ReviewError::BadCues(e.to_string()))?;
        Ok((video, transcript))
    }

    /// The transcript's cues and their rule violations.
    pub async fn transcript(&self, id: &VideoId) -> Result<TranscriptView, ReviewError> {
        let (video, transcript) = self.load_transcript(id).await?;
        let violations = captions::check(&transcript.cues, &CaptionProfile::default());
        let mut translations = Vec::new();
        for to in Self::options(&video).targets() {
            if self.fetch_file(&self.layout().translation(id, to)).await.unwrap_or(false) {
                translations.push(to.tag().to_owned());
            }
        }
        Ok(TranscriptView {
            language: transcript.language,
            state: video.state.as_str(),
            cues: transcript.cues,
            violations,
            translations,
        })
    }

    /// Replaces the transcript's cues (times and text), rewrites the caption files
    /// and, once approved, re-publishes and re-translates. Returns the rule
    /// violations of the new cues (reported, not refused: the reviewer decides).
    pub async fn edit_transcript(&self, id: &VideoId, cues: Vec<Cue>) -> Result<TranscriptView, ReviewError> {
        let (video, mut transcript) = self.load_transcript(id).await?;
        let cues = checked_cues(cues)?;
        let changed = transcript.cues != cues;
        transcript.cues = cues;
        let layout = self.layout();
        let json = serde_json::to_vec_pretty(&transcript).map_err(|e| ReviewError::BadCues(e.to_string()))?;
        write_atomic(&layout.transcript(id), &json)?;
        let options: VideoOptions = serde_json::from_value(video.options.clone()).unwrap_or_default();
        if let Some(lang) = Lang::from_metadata(&transcript.language) {
            self.write_captions(id, lang, &transcript.cues, &options)?;
        }
        // With a bucket: the edit reaches it before any stage that reads it is queued.
        self.push_video(id.as_str(), Scope::Except(PACKAGE)).await.map_err(std::io::Error::other)?;
        if let Some(lang) = Lang::from_metadata(&transcript.language)
            && changed
            && video.state != VideoState::AwaitingReview
        {
            let _ = self.replace_subtitles(&video, lang, &transcript.cues).await;
        }
        self.db
            .add_event(
                id.as_str(),
                "transcript_edited",
                None,
                &format!("the transcript was edited ({} cues)", transcript.cues.len()),
                Some(json!({ "cues": transcript.cues.len(), "changed": changed })),
            )
            .await?;
        self.settle(id.as_str()).await?;
        self.transcript(id).await
    }

    /// Approves what a video awaits review for: the transcript (translations
    /// start and the captions are published) or, after it, the translations (the
    /// dubs start and the translated captions are published). Says which.
    pub async fn approve(&self, id: &VideoId) -> Result<Review, ReviewError> {
        let video = self.db.video(id.as_str()).await?.ok_or(ReviewError::NoVideo)?;
        if video.state != VideoState::AwaitingReview {
            return Err(ReviewError::NotAwaitingReview(video.state.as_str()));
        }
        let options = Self::options(&video);
        let approvals = Approvals::of(&self.db.events(id.as_str(), 0).await?);
        let gate =
            if approvals.holds_transcript(&options) { Review::Transcript } else { Review::Translations };
        // The approval is recorded first: the stage graph reads it, and a settle
        // running between the two steps must not send the video back to review.
        let (kind, message) = match gate {
            Review::Transcript => (TRANSCRIPT_APPROVED, "the transcript was approved"),
            Review::Translations => (TRANSLATIONS_APPROVED, "the translations were approved"),
        };
        self.db.add_event(id.as_str(), kind, None, message, None).await?;
        if !self.db.transition(id.as_str(), VideoState::AwaitingReview, VideoState::Processing).await? {
            let now = self.db.video(id.as_str()).await?.map_or("gone", |v| v.state.as_str());
            return Err(ReviewError::NotAwaitingReview(now));
        }
        // What the approval lets out (the captions; the translated captions).
        self.refresh_package(&video).await.map_err(|e| std::io::Error::other(e.message))?;
        self.settle(id.as_str()).await?;
        Ok(gate)
    }
}
