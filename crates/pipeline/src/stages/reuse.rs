//! Per-sentence and per-cue reuse, so an edit of one cue costs about one cue:
//! [`SentenceCache`] wraps the translation engines and translates only sentences
//! it has not seen with that engine and language pair; [`ClipCache`] wraps a
//! voice and speaks only (text, speed) pairs it has no clip of. Both sit below
//! the unchanged caption and dub code (they implement its `Translator` and
//! `Voice` traits), and both are plain files under `cache/`, one per sentence
//! or clip, local to the node: a miss only costs the work again. Both say which
//! files a video used, so deleting it removes the ones no other video uses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use babelcast_core::Lang;
use babelcast_store::write_atomic;
use babelcast_translate::{TranslateError, Translator};
use babelcast_voice::{Voice, VoiceError};
use sha2::{Digest, Sha256};

fn digest(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

/// The files in `used`, sorted, each once.
fn each_once(used: &Mutex<Vec<PathBuf>>) -> Vec<PathBuf> {
    let mut used = used.lock().map(|u| u.clone()).unwrap_or_default();
    used.sort();
    used.dedup();
    used
}

/// Translations of single sentences by one engine for one language pair, one
/// JSON string per sentence under `cache/sentences/` (not one file per pair: it
/// would hold every video's text, be read whole for every translation, and lose
/// what two translations wrote at once).
pub(crate) struct SentenceCache<'a> {
    inner: &'a dyn Translator,
    dir: PathBuf,
    translated: AtomicUsize,
    asked: AtomicUsize,
    used: Mutex<Vec<PathBuf>>,
}

impl<'a> SentenceCache<'a> {
    pub(crate) fn new(inner: &'a dyn Translator, data_dir: &Path) -> SentenceCache<'a> {
        SentenceCache {
            inner,
            dir: data_dir.join("cache").join("sentences"),
            translated: AtomicUsize::new(0),
            asked: AtomicUsize::new(0),
            used: Mutex::new(Vec::new()),
        }
    }

    /// Sentences asked for, and of those how many the engine translated (not
    /// found in the cache).
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.asked.load(Ordering::Relaxed), self.translated.load(Ordering::Relaxed))
    }

    /// The files of the sentences translated or found, each once.
    pub(crate) fn used(&self) -> Vec<PathBuf> {
        each_once(&self.used)
    }

    fn file(&self, engine: &str, from: Lang, to: Lang, sentence: &str) -> PathBuf {
        self.dir.join(format!(
            "{}.json",
            // "3": one file per sentence; entries keep the engine's marks of
            // untranslated words.
            digest(&[
                b"3",
                engine.as_bytes(),
                from.tag().as_bytes(),
                to.tag().as_bytes(),
                sentence.as_bytes()
            ])
        ))
    }
}

impl Translator for SentenceCache<'_> {
    fn engine(&self, from: Lang, to: Lang) -> Option<String> {
        self.inner.engine(from, to)
    }

    fn translate(&self, from: Lang, to: Lang, sentences: &[String]) -> Result<Vec<String>, TranslateError> {
        let engine = self.inner.engine(from, to).unwrap_or_default();
        let mut known: HashMap<&str, String> = HashMap::new();
        let mut missing: Vec<(&str, PathBuf)> = Vec::new();
        let mut used = Vec::new();
        for sentence in sentences {
            if known.contains_key(sentence.as_str()) || missing.iter().any(|(s, _)| s == sentence) {
                continue;
            }
            let file = self.file(&engine, from, to, sentence);
            match std::fs::read(&file).ok().and_then(|b| serde_json::from_slice::<String>(&b).ok()) {
                Some(done) => {
                    known.insert(sentence, done);
                    used.push(file);
                }
                None => missing.push((sentence, file)),
            }
        }
        self.asked.fetch_add(sentences.len(), Ordering::Relaxed);
        if !missing.is_empty() {
            let asked: Vec<String> = missing.iter().map(|(s, _)| (*s).to_owned()).collect();
            let done = self.inner.translate(from, to, &asked)?;
            self.translated.fetch_add(missing.len(), Ordering::Relaxed);
            for ((sentence, file), done) in missing.into_iter().zip(done) {
                // A cache: a failed write only costs the work next time.
                if serde_json::to_vec(&done).is_ok_and(|json| write_atomic(&file, &json).is_ok()) {
                    used.push(file);
                }
                known.insert(sentence, done);
            }
        }
        self.used.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(used);
        Ok(sentences.iter().map(|s| known[s.as_str()].clone()).collect())
    }
}

/// Spoken clips of one voice, one file per (text, speed) under `cache/voice/`:
/// 32-bit float samples as the voice gave them.
pub(crate) struct ClipCache {
    inner: Box<dyn Voice + Send>,
    dir: PathBuf,
    spoken: AtomicUsize,
    asked: AtomicUsize,
    used: Mutex<Vec<PathBuf>>,
}

impl ClipCache {
    pub(crate) fn new(inner: Box<dyn Voice + Send>, data_dir: &Path) -> ClipCache {
        ClipCache {
            inner,
            dir: data_dir.join("cache").join("voice"),
            spoken: AtomicUsize::new(0),
            asked: AtomicUsize::new(0),
            used: Mutex::new(Vec::new()),
        }
    }

    /// Clips asked for, and of those how many the voice spoke (not found in the
    /// cache).
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.asked.load(Ordering::Relaxed), self.spoken.load(Ordering::Relaxed))
    }

    /// The clip files this run read or wrote (each once), so the video's use
    /// of them can be recorded.
    pub(crate) fn used(&self) -> Vec<PathBuf> {
        each_once(&self.used)
    }

    /// Where the clip of `text` at `speed` is kept.
    pub(crate) fn clip_path(&self, text: &str, speed: f64) -> PathBuf {
        let name = self.inner.name();
        self.dir.join(format!(
            "{}.f32",
            digest(&[name.as_bytes(), text.as_bytes(), &speed.to_bits().to_le_bytes()])
        ))
    }
}

impl Voice for ClipCache {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn speak(&self, text: &str, speed: f64) -> Result<Vec<f32>, VoiceError> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        let path = self.clip_path(text, speed);
        if let Ok(mut used) = self.used.lock() {
            used.push(path.clone());
        }
        if let Ok(bytes) = std::fs::read(&path)
            && bytes.len() % 4 == 0
        {
            return Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect());
        }
        let samples = self.inner.speak(text, speed)?;
        self.spoken.fetch_add(1, Ordering::Relaxed);
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let _ = write_atomic(&path, &bytes);
        Ok(samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upper-cases, and counts what it was asked.
    struct Shout(AtomicUsize);

    impl Translator for Shout {
        fn engine(&self, _: Lang, _: Lang) -> Option<String> {
            Some("shout".into())
        }

        fn translate(&self, _: Lang, _: Lang, sentences: &[String]) -> Result<Vec<String>, TranslateError> {
            self.0.fetch_add(sentences.len(), Ordering::Relaxed);
            Ok(sentences.iter().map(|s| s.to_uppercase()).collect())
        }
    }

    #[test]
    fn only_new_sentences_reach_the_engine_and_the_cache_outlives_the_run() {
        let data = tempfile::tempdir().expect("tmp");
        let shout = Shout(AtomicUsize::new(0));
        let (en, es): (Lang, Lang) = ("en".parse().expect("en"), "es".parse().expect("es"));
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let first = SentenceCache::new(&shout, data.path());
        assert_eq!(first.translate(en, es, &s(&["a b.", "c d."])).expect("ok"), s(&["A B.", "C D."]));
        assert_eq!(first.counts(), (2, 2));
        let again = SentenceCache::new(&shout, data.path());
        assert_eq!(
            again.translate(en, es, &s(&["a b.", "e f.", "a b."])).expect("ok"),
            s(&["A B.", "E F.", "A B."])
        );
        assert_eq!(again.counts(), (3, 1), "only the new sentence was translated");
        assert_eq!(shout.0.load(Ordering::Relaxed), 3);
        // One file per sentence, and each run says which it used (for deletion).
        let files = |c: &SentenceCache| {
            c.used()
                .iter()
                .map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(std::fs::read_dir(data.path().join("cache/sentences")).expect("dir").count(), 3);
        assert_eq!(first.used().len(), 2);
        assert_eq!(again.used().len(), 2, "a b. and e f.");
        assert_eq!(files(&first).iter().filter(|f| files(&again).contains(f)).count(), 1, "a b. in both");
    }
}
