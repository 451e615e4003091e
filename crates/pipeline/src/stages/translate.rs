//! The translate stage: the transcript's cues into one target language's caption
//! files, its translation file (what a reviewer reads and edits, with the words
//! the engine left untranslated) and, once the package exists and unless the
//! translations wait for review, its caption track. A reviewer's edit made
//! against the same transcript is kept: it is that language's translation, as
//! a human translation given with the upload always is.

use babelcast_core::{CaptionProfile, Cue, Lang, Transcript};
use babelcast_jobs::Video;
use babelcast_store::write_atomic;
use babelcast_translate::Translator as _;
use babelcast_translate::Untranslated;
use serde_json::json;

use super::reuse::SentenceCache;
use super::{CACHE_VERSION, StageDone, StageFailure, cache_key};
use crate::graph::Stage;
use crate::review::Approvals;
use crate::{GivenText, Pipeline, stage};

impl Pipeline {
    pub(super) async fn translate(&self, video: &Video, to: Lang) -> Result<StageDone, StageFailure> {
        let id = Self::id_of(video)?;
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
        let source = source_key(&transcript.cues);
        // Before the translations' approval nothing translated is published; after
        // it (a re-run after a transcript edit, say) the track is replaced.
        let publish = !Approvals::of(&self.db.events(&video.id, 0).await?).holds_translations(&options);
        let path = layout.translation(&id, to);
        if let Some(kept) = TranslationFile::read(&path).filter(|t| t.edited && t.source == source) {
            self.write_captions(&id, to, &kept.cues, &options)?;
            if publish {
                self.replace_subtitles(video, to, &kept.cues).await?;
            }
            return Ok(StageDone {
                cached: true,
                data: json!({
                    "from": from.tag(), "to": to.tag(), "cues": kept.cues.len(), "engine": kept.engine,
                    "edited": true, "untranslated": kept.untranslated.len(),
                }),
            });
        }
        // A human translation given with the upload is this language's track;
        // kept through transcript edits, like a reviewer's.
        if let Some(given) = options.translations.iter().find(|t| t.language == to) {
            let GivenText::Cues(cues) = &given.text else {
                return Err(StageFailure::permanent(
                    "script_not_placed",
                    "a given translation needs cue times",
                ));
            };
            let (cues, refitted) = babelcast_core::captions::refit(cues, &CaptionProfile::default());
            self.write_captions(&id, to, &cues, &options)?;
            let engine = format!("given: {}", given.source);
            let file = TranslationFile {
                from: from.tag().to_owned(),
                source,
                engine: engine.clone(),
                cues: cues.clone(),
                untranslated: Vec::new(),
                edited: false,
            };
            file.write(&path)?;
            if publish {
                self.replace_subtitles(video, to, &cues).await?;
            }
            return Ok(StageDone {
                cached: false,
                data: json!({
                    "from": from.tag(), "to": to.tag(), "cues": cues.len(), "engine": engine,
                    "refitted": refitted.len(), "untranslated": 0,
                }),
            });
        }
        let translators = self.translators();
        let engine = translators.engine(from, to).unwrap_or_default();
        // Cached by everything the result depends on: re-uploading the same
        // content with the same targets and glossary translates nothing again.
        let key = cache_key(&json!({
            "stage": stage::TRANSLATE, "v": CACHE_VERSION, "tv": 2, "from": from.tag(), "to": to.tag(),
            "engine": engine, "cues": transcript.cues, "glossary": options.glossary,
        }));
        let cache_file =
            self.config.data_dir.join("cache").join(stage::TRANSLATE).join(format!("{key}.json"));
        // Whether found or made, this video uses the entry (see `deletion`).
        self.use_cache_entry(&key, &video.id, &cache_file).await?;
        let cached = self.db.cached(&key).await?.is_some() && self.fetch_file(&cache_file).await?;
        let mut sentences = json!(null);
        let translation: CachedTranslation = if cached {
            let bytes = std::fs::read(&cache_file)?;
            serde_json::from_slice(&bytes).map_err(|e| StageFailure::transient(e.to_string()))?
        } else {
            let glossary = options.glossary.clone();
            let cues = transcript.cues.clone();
            let data_dir = self.config.data_dir.clone();
            let (done, (asked, translated), used) = tokio::task::spawn_blocking(move || {
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
                .map(|done| (done, reuse.counts(), reuse.used()))
            })
            .await?
            .map_err(|e| StageFailure::from_error(&e))?;
            self.use_cache_files("sentences", &video.id, &used).await?;
            sentences = json!({ "sentences": asked, "translated": translated });
            let translation = CachedTranslation {
                cues: done.cues,
                warnings: done.warnings,
                untranslated: done.untranslated,
            };
            let json =
                serde_json::to_vec(&translation).map_err(|e| StageFailure::transient(e.to_string()))?;
            write_atomic(&cache_file, &json)?;
            self.store_file(&cache_file).await?;
            self.put_cache_entry(&key, stage::TRANSLATE, &video.id, &cache_file).await?;
            translation
        };
        self.write_captions(&id, to, &translation.cues, &options)?;
        let file = TranslationFile {
            from: from.tag().to_owned(),
            source,
            engine: engine.clone(),
            cues: translation.cues.clone(),
            untranslated: translation.untranslated.clone(),
            edited: false,
        };
        file.write(&path)?;
        let shown = translation.warnings.len().min(5);
        for warning in &translation.warnings[..shown] {
            self.warn(&video.id, Some(&Stage::Translate(to).to_string()), warning).await?;
        }
        if translation.warnings.len() > shown {
            let more = format!("{to}: {} more caption rule warnings", translation.warnings.len() - shown);
            self.warn(&video.id, None, &more).await?;
        }
        if publish {
            self.replace_subtitles(video, to, &translation.cues).await?;
        }
        Ok(StageDone {
            cached,
            data: json!({
                "from": from.tag(), "to": to.tag(), "cues": translation.cues.len(), "engine": engine,
                "cache_key": key, "reuse": sentences, "untranslated": translation.untranslated.len(),
            }),
        })
    }
}

/// A translation as the cache keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedTranslation {
    cues: Vec<Cue>,
    warnings: Vec<String>,
    #[serde(default)]
    untranslated: Vec<Untranslated>,
}

/// Which transcript a translation was made from: the hash of its cues.
pub(crate) fn source_key(cues: &[Cue]) -> String {
    cache_key(&json!(cues))
}

/// One language's translation as the video keeps it
/// (`videos/{id}/translations/{lang}.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct TranslationFile {
    /// The spoken language it was translated from.
    pub from: String,
    /// The transcript it was made from ([`source_key`]).
    pub source: String,
    /// The engine that translated it.
    pub engine: String,
    /// Its cues.
    pub cues: Vec<Cue>,
    /// The cues with words the engine left untranslated.
    pub untranslated: Vec<Untranslated>,
    /// Whether a reviewer changed it.
    pub edited: bool,
}

impl TranslationFile {
    pub(crate) fn read(path: &std::path::Path) -> Option<TranslationFile> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    pub(crate) fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(path, &json)
    }
}
