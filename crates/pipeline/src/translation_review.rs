//! Reviewing one target language: a translator reads the machine translation
//! beside the source, sees the cues where the engine left words untranslated, and
//! fixes them. A saved edit rewrites that language's caption files and track, and
//! re-voices only that language's changed cues: the stage graph re-runs its dub
//! from the `translation_edited` event, and the dub's clip cache speaks only the
//! cues whose text or timing is new. The edit is kept as the language's
//! translation while the transcript stays as it was (`stages::translate`).

use babelcast_core::{CaptionProfile, Cue, Lang, VideoId, Violation, captions};
use babelcast_jobs::VideoState;
use babelcast_store::remote::Scope;
use babelcast_translate::Untranslated;
use serde::Serialize;
use serde_json::json;

use crate::graph::Stage;
use crate::mirror::PACKAGE;
use crate::review::{Approvals, ReviewError, checked_cues};
use crate::stages::TranslationFile;
use crate::{Pipeline, VideoOptions};

/// One language's translation as the review page and API show it.
#[derive(Debug, Clone, Serialize)]
pub struct TranslationView {
    /// The target language.
    pub language: String,
    /// The spoken language it was translated from.
    pub from: String,
    /// The video's state.
    pub state: &'static str,
    /// The engine that translated it.
    pub engine: String,
    /// Whether a reviewer changed it.
    pub edited: bool,
    /// Its cues.
    pub cues: Vec<Cue>,
    /// The cues with words the engine left untranslated (by index into `cues`).
    pub untranslated: Vec<Untranslated>,
    /// The caption rules its cues break.
    pub violations: Vec<Violation>,
    /// The source transcript's cues, to read beside it.
    pub source: Vec<Cue>,
}

/// One translated language, as a video's status counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TranslationSummary {
    /// The target language.
    pub language: String,
    /// How many cues it has.
    pub cues: usize,
    /// How many of them have words the engine left untranslated.
    pub untranslated: usize,
    /// Whether a reviewer changed it.
    pub edited: bool,
}

impl Pipeline {
    /// Each target language translated so far.
    pub async fn translations(
        &self,
        video: &babelcast_jobs::Video,
    ) -> Result<Vec<TranslationSummary>, ReviewError> {
        let id: VideoId = video.id.parse().map_err(|_| ReviewError::NoVideo)?;
        let mut out = Vec::new();
        for to in Self::options(video).targets() {
            let path = self.layout().translation(&id, to);
            self.fetch_file(&path).await.map_err(std::io::Error::other)?;
            if let Some(file) = TranslationFile::read(&path) {
                out.push(TranslationSummary {
                    language: to.tag().to_owned(),
                    cues: file.cues.len(),
                    untranslated: file.untranslated.len(),
                    edited: file.edited,
                });
            }
        }
        Ok(out)
    }

    async fn load_translation(
        &self,
        id: &VideoId,
        to: Lang,
    ) -> Result<(babelcast_jobs::Video, TranslationFile), ReviewError> {
        let video = self.db.video(id.as_str()).await?.ok_or(ReviewError::NoVideo)?;
        if !Self::options(&video).targets().contains(&to) {
            return Err(ReviewError::NoTranslation(to));
        }
        let path = self.layout().translation(id, to);
        self.fetch_file(&path).await.map_err(std::io::Error::other)?;
        let file = TranslationFile::read(&path).ok_or(ReviewError::NoTranslation(to))?;
        Ok((video, file))
    }

    /// One language's cues, what the engine left untranslated, and the source.
    pub async fn translation(&self, id: &VideoId, to: Lang) -> Result<TranslationView, ReviewError> {
        let (video, file) = self.load_translation(id, to).await?;
        let source = self.transcript(id).await?.cues;
        let violations = captions::check(&file.cues, &CaptionProfile::default());
        Ok(TranslationView {
            language: to.tag().to_owned(),
            from: file.from,
            state: video.state.as_str(),
            engine: file.engine,
            edited: file.edited,
            cues: file.cues,
            untranslated: file.untranslated,
            violations,
            source,
        })
    }

    /// Replaces one language's cues (a translator's fix): its caption files and
    /// track now, and, through the stage graph, its dub for the changed cues only.
    pub async fn edit_translation(
        &self,
        id: &VideoId,
        to: Lang,
        cues: Vec<Cue>,
    ) -> Result<TranslationView, ReviewError> {
        let (video, mut file) = self.load_translation(id, to).await?;
        let cues = checked_cues(cues)?;
        let changed = file.cues != cues;
        // A flag stays on a cue the reviewer left as it was.
        file.untranslated = cues
            .iter()
            .enumerate()
            .filter_map(|(index, cue)| {
                let old = file
                    .untranslated
                    .iter()
                    .find(|u| file.cues.get(u.cue).is_some_and(|c| c.text == cue.text))?;
                Some(Untranslated { cue: index, words: old.words.clone() })
            })
            .collect();
        file.cues = cues;
        file.edited |= changed;
        let layout = self.layout();
        file.write(&layout.translation(id, to))?;
        let options: VideoOptions = Self::options(&video);
        self.write_captions(id, to, &file.cues, &options)?;
        self.push_video(id.as_str(), Scope::Except(PACKAGE)).await.map_err(std::io::Error::other)?;
        let published = !Approvals::of(&self.db.events(id.as_str(), 0).await?).holds_translations(&options);
        if changed && published && video.state != VideoState::AwaitingReview {
            self.replace_subtitles(&video, to, &file.cues)
                .await
                .map_err(|e| std::io::Error::other(e.message))?;
        }
        self.db
            .add_event(
                id.as_str(),
                "translation_edited",
                Some(&Stage::Translate(to).to_string()),
                &format!("the {} translation was edited ({} cues)", to.name(), file.cues.len()),
                Some(json!({ "language": to.tag(), "cues": file.cues.len(), "changed": changed })),
            )
            .await?;
        self.settle(id.as_str()).await?;
        self.translation(id, to).await
    }
}
