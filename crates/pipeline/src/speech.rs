//! Speech to a transcript, for `babelcast transcribe` and the pipeline's transcribe
//! stage alike: ffmpeg streams the audio, the VAD gate passes only speech, the
//! Whisper loop transcribes it, times are mapped back to the input's timeline and
//! the caption rules make cues.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use babelcast_core::{CaptionProfile, MediaFacts, Millis, Transcript, Word, captions};
use babelcast_media::{AudioDecoder, AudioProxy};
use babelcast_models::{ModelError, ModelsDir};
use babelcast_process::Program;
use babelcast_speech::{
    ComputeType, SampleSource, SpeechError, SpeechGate, TimeMap, TranscribeOptions, Transcription, Vad,
    VadOptions, WhisperModel,
};
use serde::{Deserialize, Serialize};

/// Speech-to-text settings (each also a `babelcast transcribe` flag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpeechConfig {
    /// A model name from the models directory (`whisper-base`), or a path to a
    /// CTranslate2 Whisper model folder.
    pub model: String,
    /// A Whisper language code (`en`, `es`), or `auto` to detect it.
    pub language: String,
    /// Beam width.
    pub beam_size: usize,
    /// `int8` (fast) or `float32`.
    pub compute_type: ComputeType,
    /// Inference threads; 0 uses every core.
    pub threads: usize,
    /// Skip non-speech with Silero VAD before Whisper.
    pub vad: bool,
    /// Windows of speech decoded together (see `TranscribeOptions::batch_size`);
    /// 1 is sequential decoding. Batching needs the VAD's pauses to cut windows
    /// at, so without VAD decoding is sequential whatever this says.
    pub batch_size: usize,
}

/// Measured with `bench/speech.sh` on 2 cores (see the README).
pub const DEFAULT_BATCH_SIZE: usize = 8;

impl SpeechConfig {
    /// The batch size decoding really uses: sequential without the VAD.
    pub fn effective_batch_size(&self) -> usize {
        if self.vad { self.batch_size.max(1) } else { 1 }
    }
}

impl Default for SpeechConfig {
    fn default() -> Self {
        SpeechConfig {
            model: "whisper-base".into(),
            language: "auto".into(),
            beam_size: 5,
            compute_type: ComputeType::Int8,
            threads: 0,
            vad: true,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

/// A finished transcription and how it went.
#[derive(Debug, Clone)]
pub struct SpeechOutcome {
    /// Words and cues on the input's timeline.
    pub transcript: Transcript,
    /// How sure language detection was (1 when the language was given).
    pub language_probability: f32,
    /// Seconds of input audio read.
    pub input_secs: f64,
    /// Seconds of it that the VAD passed as speech, when VAD was on.
    pub speech_secs: Option<f64>,
    /// Windows dropped as hallucination loops.
    pub dropped_windows: usize,
    /// Wall time of the transcription, seconds.
    pub elapsed_secs: f64,
}

/// Why speech recognition failed.
#[derive(Debug, thiserror::Error)]
pub enum SpeechStageError {
    /// The audio could not be decoded.
    #[error(transparent)]
    Audio(#[from] babelcast_media::ProxyError),
    /// A model is missing or damaged.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Whisper or the VAD failed.
    #[error(transparent)]
    Speech(#[from] SpeechError),
    /// The VAD failed.
    #[error(transparent)]
    Vad(#[from] babelcast_speech::VadError),
}

impl babelcast_core::ErrorCode for SpeechStageError {
    fn code(&self) -> &'static str {
        match self {
            SpeechStageError::Audio(e) => e.code(),
            SpeechStageError::Model(e) => e.code(),
            SpeechStageError::Speech(e) => e.code(),
            SpeechStageError::Vad(e) => e.code(),
        }
    }

    fn is_client_error(&self) -> bool {
        match self {
            SpeechStageError::Audio(e) => e.is_client_error(),
            SpeechStageError::Model(e) => e.is_client_error(),
            SpeechStageError::Speech(e) => e.is_client_error(),
            SpeechStageError::Vad(e) => e.is_client_error(),
        }
    }

    fn retry(&self) -> babelcast_core::Retry {
        match self {
            SpeechStageError::Audio(e) => e.retry(),
            SpeechStageError::Model(e) => e.retry(),
            SpeechStageError::Speech(e) => e.retry(),
            SpeechStageError::Vad(e) => e.retry(),
        }
    }
}

/// Reads the proxy as a sample source and counts the input read, for progress.
struct ProxySource {
    proxy: AudioProxy,
    read: Arc<AtomicU64>,
    scratch: Vec<f32>,
}

impl SampleSource for ProxySource {
    fn read(&mut self, buf: &mut Vec<f32>, max: usize) -> Result<usize, SpeechError> {
        self.scratch.resize(max.min(1 << 16), 0.0);
        let n = self.proxy.read(&mut self.scratch).map_err(|e| SpeechError::Audio(e.to_string()))?;
        buf.extend_from_slice(&self.scratch[..n]);
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The model name and the identity of its weights, for cache keys.
pub fn model_identity(config: &SpeechConfig) -> String {
    match babelcast_models::manifest::find(&config.model) {
        Some(spec) => {
            let hashes: Vec<&str> = spec.files.iter().map(|f| f.sha256).collect();
            format!("{}@{}", config.model, hashes.join("+"))
        }
        None => format!("path:{}", config.model),
    }
}

/// Checks that the models transcription loads (the Whisper model, and Silero VAD
/// with ONNX Runtime when VAD is on) are in place, without loading them: a process
/// that will run transcription checks this at start, so a missing model fails at
/// once with the command that fetches it, not as a stage retried until it is dead.
pub fn require_models(config: &SpeechConfig, models_dir: &Path) -> Result<(), ModelError> {
    let models = ModelsDir::new(models_dir);
    let folder = Path::new(&config.model);
    if folder.is_dir() {
        let weights = folder.join("model.bin");
        if !weights.is_file() {
            return Err(ModelError::Missing { path: weights });
        }
    } else {
        models.require(&config.model)?;
    }
    if config.vad {
        models.require(babelcast_speech::vad::VAD_MODEL)?;
        models.require(babelcast_speech::vad::RUNTIME_MODEL)?;
    }
    Ok(())
}

/// Batched windows are 30 s at most; a span no longer than that is never cut
/// inside. (The VAD widens spans by their padding within this limit.)
const BATCHED_MAX_SPEECH_S: f64 = 30.0;
/// Batched, a pause this long already separates two spans, so windows can be
/// filled close to 30 s (each window costs a whole 30 s encoder pass). The
/// padding keeps the audio of pauses shorter than twice it: only where the
/// windows may be cut changes, not what Whisper hears.
const BATCHED_MIN_SILENCE_MS: u32 = 160;

/// Transcribes the first audio stream of `path` (probed into `facts`). `progress`
/// gets the fraction of the audio done. Blocks: run it on a blocking thread.
pub fn transcribe_file(
    config: &SpeechConfig,
    models_dir: &Path,
    ffmpeg: Program,
    path: &Path,
    facts: &MediaFacts,
    progress: &mut dyn FnMut(f64),
) -> Result<SpeechOutcome, SpeechStageError> {
    let threads = match config.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };
    // Opened before the model loads: a file without audio fails at once.
    let proxy = AudioDecoder::new(ffmpeg).open(path, facts, None)?;
    let duration = proxy.duration_secs();
    let models = ModelsDir::new(models_dir);
    let model = if Path::new(&config.model).is_dir() {
        WhisperModel::load_path(Path::new(&config.model), config.compute_type, threads)?
    } else {
        WhisperModel::load(&models, &config.model, config.compute_type, threads)?
    };
    let options = TranscribeOptions {
        language: (config.language != "auto").then(|| config.language.clone()),
        beam_size: config.beam_size,
        batch_size: config.effective_batch_size(),
        ..TranscribeOptions::default()
    };
    let read = Arc::new(AtomicU64::new(0));
    let source = ProxySource { proxy, read: Arc::clone(&read), scratch: Vec::new() };
    let started = Instant::now();
    let mut on_progress = |_: f64| {
        if let Some(d) = duration.filter(|d| *d > 0.0) {
            progress((read.load(Ordering::Relaxed) as f64 / 16_000.0 / d).min(1.0));
        }
    };
    let (transcription, map) = if config.vad {
        // Cut long speech spans at their longest pause so the gate holds at most
        // two minutes of audio, or, batched, so every span fits a 30 s window.
        let vad_options = if options.batch_size > 1 {
            VadOptions {
                max_speech_s: Some(BATCHED_MAX_SPEECH_S),
                min_silence_ms: BATCHED_MIN_SILENCE_MS,
                ..VadOptions::default()
            }
        } else {
            VadOptions { max_speech_s: Some(120.0), ..VadOptions::default() }
        };
        let detector = Vad::load(&models)?.detector(vad_options)?;
        let mut gate = SpeechGate::new(source, detector);
        let t = model.transcribe(&mut gate, &options, &mut on_progress)?;
        (t, Some(gate.time_map().clone()))
    } else {
        let mut source = source;
        (model.transcribe(&mut source, &options, &mut on_progress)?, None)
    };
    let elapsed_secs = started.elapsed().as_secs_f64();
    let input_secs = read.load(Ordering::Relaxed) as f64 / 16_000.0;
    let words = words_on_input_timeline(&transcription, map.as_ref());
    let cues = captions::cues_from_words(&words, &CaptionProfile::default());
    let transcript = Transcript {
        language: transcription.language.clone(),
        model: model.name().to_owned(),
        duration: Millis::from_secs_f64(input_secs),
        words,
        cues,
        retimed: Vec::new(),
    };
    progress(1.0);
    Ok(SpeechOutcome {
        transcript,
        language_probability: transcription.language_probability,
        input_secs,
        speech_secs: map.map(|m| m.speech_secs()),
        dropped_windows: transcription.dropped_windows,
        elapsed_secs,
    })
}

/// Words with times on the input's timeline (the VAD gate removed silences).
fn words_on_input_timeline(t: &Transcription, map: Option<&TimeMap>) -> Vec<Word> {
    let mut words = t.words();
    if let Some(map) = map {
        for w in &mut words {
            w.start = Millis::from_secs_f64(map.to_input_secs(w.start.as_secs_f64()));
            w.end = Millis::from_secs_f64(map.to_input_secs(w.end.as_secs_f64())).max(w.start);
        }
    }
    words
}
