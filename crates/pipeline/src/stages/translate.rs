//! The translate stage: the transcript's cues into one target language's caption
//! files (and, once the package exists, its caption track).

use babelcast_core::{CaptionProfile, Lang, Transcript};
use babelcast_jobs::Video;
use babelcast_store::write_atomic;
use babelcast_translate::Translator as _;
use serde_json::json;

use super::reuse::SentenceCache;
use super::{CACHE_VERSION, StageDone, StageFailure, cache_key};
use crate::graph::Stage;
use crate::{Pipeline, stage};

impl Pipeline {
    pub(super) async fn translate(&self, video: &Video, to: Lang) -> Result<StageDone, StageFailure> {
        let (id, _) = self.source_path(video)?;
        let layout = self.layout();
        let options = Self::options(video);
        let bytes = std::fs::read(layout.transcript(&id))?;
        let transcript: Transcript =
            serde_json::from_slice(&bytes).map_err(|e| StageFailure::transient(e.to_string()))?;
        let from = Lang::from_metadata(&transcript.language).ok_or_else(|| {
            StageFailure::permanent(
                "unknown_language",
                format!("cannot translate from {:?}: babelcast has no such language", transcript.language),
            )
        })?;
        if from == to {
            return Err(StageFailure::permanent(
                "same_language",
                format!("{to} is the spoken language: nothing to translate"),
            ));
        }
        let translators = self.translators();
        let engine = translators.engine(from, to).unwrap_or_default();
        // Cached by everything the result depends on: re-uploading the same
        // content with the same targets and glossary translates nothing again.
        let key = cache_key(&json!({
            "stage": stage::TRANSLATE, "v": CACHE_VERSION, "from": from.tag(), "to": to.tag(),
            "engine": engine, "cues": transcript.cues, "glossary": options.glossary,
        }));
        let cache_file =
            self.config.data_dir.join("cache").join(stage::TRANSLATE).join(format!("{key}.json"));
        let cached = self.db.cached(&key).await?.is_some() && self.fetch_file(&cache_file).await?;
        let mut sentences = json!(null);
        let translation: CachedTranslation = if cached {
            let bytes = std::fs::read(&cache_file)?;
            serde_json::from_slice(&bytes).map_err(|e| StageFailure::transient(e.to_string()))?
        } else {
            let glossary = options.glossary.clone();
            let cues = transcript.cues.clone();
            let data_dir = self.config.data_dir.clone();
            let (done, (asked, translated)) = tokio::task::spawn_blocking(move || {
                // Sentence by sentence: after an edit only the changed ones are new.
                let reuse = SentenceCache::new(&translators, &data_dir);
                babelcast_translate::translate_cues(
                    &reuse,
                    from,
                    to,
                    &cues,
                    &glossary,
                    &CaptionProfile::default(),
                )
                .map(|done| (done, reuse.counts()))
            })
            .await?
            .map_err(|e| StageFailure::from_error(&e))?;
            sentences = json!({ "sentences": asked, "translated": translated });
            let translation = CachedTranslation { cues: done.cues, warnings: done.warnings };
            let json =
                serde_json::to_vec(&translation).map_err(|e| StageFailure::transient(e.to_string()))?;
            write_atomic(&cache_file, &json)?;
            self.store_file(&cache_file).await?;
            self.db.put_cached(&key, stage::TRANSLATE, &cache_file.to_string_lossy()).await?;
            translation
        };
        self.write_captions(&id, to, &translation.cues, &options)?;
        let shown = translation.warnings.len().min(5);
        for warning in &translation.warnings[..shown] {
            self.warn(&video.id, Some(&Stage::Translate(to).to_string()), warning).await?;
        }
        if translation.warnings.len() > shown {
            let more = format!("{to}: {} more caption rule warnings", translation.warnings.len() - shown);
            self.warn(&video.id, None, &more).await?;
        }
        self.replace_subtitles(video, to, &translation.cues).await?;
        Ok(StageDone {
            cached,
            data: json!({
                "from": from.tag(), "to": to.tag(), "cues": translation.cues.len(), "engine": engine,
                "cache_key": key, "reuse": sentences,
            }),
        })
    }
}

/// A translation as the cache keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedTranslation {
    cues: Vec<babelcast_core::Cue>,
    warnings: Vec<String>,
}
