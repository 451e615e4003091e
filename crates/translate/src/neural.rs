//! Neural translation models converted to CTranslate2, run by the `Translator` of
//! the same ct2rs crate that runs Whisper, for users who bring their own models:
//! OPUS-MT (one language pair per model), M2M100 and NLLB (many languages, chosen
//! by language tokens).
//!
//! A model is a folder under the models folder's `translation/`, as the
//! CTranslate2 converters write it with its SentencePiece models copied in:
//!
//! - `model.bin`, and `shared_vocabulary.json` (or `source_vocabulary.json` and
//!   `target_vocabulary.json`; `.txt` vocabularies are read too);
//! - `source.spm` and `target.spm` (OPUS-MT), or one `sentencepiece.bpe.model`
//!   (M2M100, NLLB).
//!
//! Which languages it translates is read from the model itself: a vocabulary with
//! `__es__` tokens is M2M100, one with `spa_Latn` tokens is NLLB, any other is a
//! pair named by the folder, OPUS-MT style (`opus-mt-en-es`). A folder that is
//! missing a file or cannot be read is reported by name when discovered and
//! skipped, so the other engines go on.
//!
//! Tokenization is SentencePiece's own library (the models were trained with it);
//! the ct2rs tokenizer wrappers are not used because enabling them would change
//! ct2rs's features, and with them the 25-minute CTranslate2 build.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use babelcast_core::Lang;
use ct2rs::sys::{Config, TranslationOptions, Translator as Ct2};
use sentencepiece::SentencePieceProcessor;

use crate::TranslateError;

/// The folder under the models folder that holds translation models.
pub const MODELS_SUBDIR: &str = "translation";

/// How a model is told the languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Family {
    /// One pair, from the folder name (OPUS-MT).
    Pair {
        /// Source language.
        from: Lang,
        /// Target language.
        to: Lang,
    },
    /// `__xx__` tokens before the source and the target (M2M100).
    M2m100,
    /// `xxx_Scrp` tokens before the source and the target (NLLB).
    Nllb,
}

/// One model folder.
pub struct Model {
    name: String,
    dir: PathBuf,
    family: Family,
    /// Language → its token, for multilingual models.
    tokens: Vec<(Lang, String)>,
    source_spm: PathBuf,
    target_spm: PathBuf,
    threads: usize,
    loaded: OnceLock<Result<Arc<Loaded>, String>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("name", &self.name).field("family", &self.family).finish()
    }
}

struct Loaded {
    translator: Ct2,
    source: SentencePieceProcessor,
    target: SentencePieceProcessor,
}

/// The CTranslate2 models installed in a folder.
#[derive(Debug, Default, Clone)]
pub struct Neural {
    models: Vec<Arc<Model>>,
}

fn read_vocabulary(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a JSON list of tokens: {e}", path.display()))
    } else {
        Ok(text.lines().map(str::to_owned).collect())
    }
}

fn first_existing(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

impl Model {
    /// Reads a model folder; the error names what is missing or wrong.
    pub fn open(dir: &Path, threads: usize) -> Result<Model, String> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let need = |what: &str| format!("translation model {name}: {what} is missing in {}", dir.display());
        if !dir.join("model.bin").is_file() {
            return Err(need("model.bin"));
        }
        let vocabulary = first_existing(
            dir,
            &[
                "shared_vocabulary.json",
                "shared_vocabulary.txt",
                "target_vocabulary.json",
                "target_vocabulary.txt",
            ],
        )
        .ok_or_else(|| need("shared_vocabulary.json (or target_vocabulary.json)"))?;
        let vocabulary =
            read_vocabulary(&vocabulary).map_err(|e| format!("translation model {name}: {e}"))?;
        let (source_spm, target_spm) = match (
            first_existing(dir, &["source.spm"]),
            first_existing(dir, &["target.spm"]),
            first_existing(dir, &["sentencepiece.bpe.model", "sentencepiece.model", "spm.model"]),
        ) {
            (Some(s), Some(t), _) => (s, t),
            (_, _, Some(both)) => (both.clone(), both),
            _ => return Err(need("source.spm and target.spm (or sentencepiece.bpe.model)")),
        };
        let m2m: Vec<(Lang, String)> = vocabulary
            .iter()
            .filter_map(|t| {
                let code = t.strip_prefix("__")?.strip_suffix("__")?;
                Some((code.parse::<Lang>().ok()?, t.clone()))
            })
            .collect();
        let nllb: Vec<(Lang, String)> = vocabulary
            .iter()
            .filter_map(|t| {
                let (code, script) = t.split_once('_')?;
                let looks = code.len() == 3
                    && script.len() == 4
                    && script.chars().next().is_some_and(|c| c.is_ascii_uppercase());
                if !looks {
                    return None;
                }
                Some((Lang::all().find(|l| l.iso639_3() == code)?, t.clone()))
            })
            .collect();
        let (family, mut tokens) = if m2m.len() >= 2 {
            (Family::M2m100, m2m)
        } else if nllb.len() >= 2 {
            (Family::Nllb, nllb)
        } else {
            let mut parts = name.rsplit('-');
            let (to, from) = (parts.next(), parts.next());
            match (from.and_then(|f| f.parse::<Lang>().ok()), to.and_then(|t| t.parse::<Lang>().ok())) {
                (Some(from), Some(to)) if from != to => (Family::Pair { from, to }, Vec::new()),
                _ => {
                    return Err(format!(
                        "translation model {name}: cannot tell its languages; name a one-pair model's \
                         folder by its pair, as OPUS-MT does (e.g. opus-mt-en-es)"
                    ));
                }
            }
        };
        // NLLB has several scripts for some languages; the first listed is kept.
        tokens.dedup_by(|a, b| a.0 == b.0);
        Ok(Model {
            name,
            dir: dir.to_owned(),
            family,
            tokens,
            source_spm,
            target_spm,
            threads,
            loaded: OnceLock::new(),
        })
    }

    /// The folder's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How languages are chosen.
    pub fn family(&self) -> &Family {
        &self.family
    }

    fn token(&self, lang: Lang) -> Option<&str> {
        self.tokens.iter().find(|(l, _)| *l == lang).map(|(_, t)| t.as_str())
    }

    /// Whether it translates `from` to `to`.
    pub fn covers(&self, from: Lang, to: Lang) -> bool {
        match self.family {
            Family::Pair { from: f, to: t } => f == from && t == to,
            Family::M2m100 | Family::Nllb => {
                from != to && self.token(from).is_some() && self.token(to).is_some()
            }
        }
    }

    fn load(&self) -> Result<Arc<Loaded>, TranslateError> {
        self.loaded
            .get_or_init(|| {
                let spm = |path: &Path| {
                    SentencePieceProcessor::open(path).map_err(|e| {
                        format!("translation model {}: cannot load {}: {e}", self.name, path.display())
                    })
                };
                let config = Config { num_threads_per_replica: self.threads, ..Config::default() };
                let translator = Ct2::new(&self.dir, &config).map_err(|e| {
                    format!(
                        "translation model {}: CTranslate2 cannot load {}: {e}",
                        self.name,
                        self.dir.display()
                    )
                })?;
                Ok(Arc::new(Loaded {
                    translator,
                    source: spm(&self.source_spm)?,
                    target: spm(&self.target_spm)?,
                }))
            })
            .clone()
            .map_err(TranslateError::Engine)
    }

    /// Translates sentences, one result per sentence.
    pub fn translate(
        &self,
        from: Lang,
        to: Lang,
        sentences: &[String],
    ) -> Result<Vec<String>, TranslateError> {
        let loaded = self.load()?;
        let (source_prefix, target_prefix) = match self.family {
            Family::Pair { .. } => (None, None),
            Family::M2m100 | Family::Nllb => (self.token(from), self.token(to)),
        };
        let mut batch: Vec<Vec<String>> = Vec::with_capacity(sentences.len());
        for sentence in sentences {
            let pieces = loaded.source.encode(sentence).map_err(|e| {
                TranslateError::Engine(format!("{}: cannot tokenize {sentence:?}: {e}", self.name))
            })?;
            let mut tokens: Vec<String> = source_prefix.map(str::to_owned).into_iter().collect();
            tokens.extend(pieces.into_iter().map(|p| p.piece));
            tokens.push("</s>".into());
            batch.push(tokens);
        }
        let options =
            TranslationOptions { beam_size: 4, max_decoding_length: 512, ..TranslationOptions::default() };
        let results = match target_prefix {
            None => loaded.translator.translate_batch(&batch, &options, None),
            Some(prefix) => {
                let prefixes = vec![vec![prefix.to_owned()]; batch.len()];
                loaded.translator.translate_batch_with_target_prefix(&batch, &prefixes, &options, None)
            }
        }
        .map_err(|e| TranslateError::Engine(format!("{}: {e}", self.name)))?;
        results
            .iter()
            .map(|r| {
                let mut tokens: Vec<&String> = r.output().map(|o| o.iter().collect()).unwrap_or_default();
                if let (Some(prefix), Some(first)) = (target_prefix, tokens.first())
                    && first.as_str() == prefix
                {
                    tokens.remove(0);
                }
                loaded
                    .target
                    .decode_pieces(&tokens)
                    .map(|text| text.trim().to_owned())
                    .map_err(|e| TranslateError::Engine(format!("{}: cannot detokenize: {e}", self.name)))
            })
            .collect()
    }
}

impl Neural {
    /// The models in `dir` (each subfolder one model), with a message for each
    /// folder that is not a usable model. A missing `dir` has no models.
    pub fn discover(dir: &Path, threads: usize) -> (Neural, Vec<String>) {
        let mut models = Vec::new();
        let mut problems = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        entries.sort();
        for entry in entries {
            match Model::open(&entry, threads) {
                Ok(model) => models.push(Arc::new(model)),
                Err(problem) => problems.push(problem),
            }
        }
        (Neural { models }, problems)
    }

    /// The models found.
    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.models.iter().map(|m| m.as_ref())
    }

    /// The first model that translates `from` to `to`: pair models, which are made
    /// for one direction, before multilingual ones.
    pub fn model(&self, from: Lang, to: Lang) -> Option<&Model> {
        let pair = self.models().find(|m| matches!(m.family, Family::Pair { .. }) && m.covers(from, to));
        pair.or_else(|| self.models().find(|m| m.covers(from, to)))
    }
}
