//! `babelcast transcribe`: a media file in, captions out (WebVTT, SRT, JSON).
//!
//! The audio is decoded by ffmpeg as a stream (never whole in memory), passed
//! through the VAD gate so only speech reaches Whisper, transcribed window by window
//! with a progress bar on the audio done, and turned into cues by the caption rules.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use babelcast_core::{CaptionProfile, Millis, Transcript, captions, subtitle};
use babelcast_media::{AudioDecoder, AudioProxy, Prober};
use babelcast_models::ModelsDir;
use babelcast_speech::{
    ComputeType, SampleSource, SpeechError, SpeechGate, TimeMap, TranscribeOptions, Transcription, Vad,
    VadOptions, WhisperModel,
};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;

/// The caption files `transcribe` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// WebVTT (`.vtt`), what browsers and HLS players show.
    Vtt,
    /// SubRip (`.srt`).
    Srt,
    /// The transcript: language, model, words with timings and probabilities, cues.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct TranscribeArgs {
    /// The audio or video file.
    file: PathBuf,
    /// The folder to write `<name>.vtt`, `.srt`, `.json` into.
    #[arg(short, long, default_value = ".")]
    out: PathBuf,
    /// A model name from the models directory, or a CTranslate2 Whisper model folder
    /// [config: speech.model].
    #[arg(long)]
    model: Option<String>,
    /// A Whisper language code (en, es, de, ...) or `auto` [config: speech.language].
    #[arg(long)]
    language: Option<String>,
    /// Which files to write.
    #[arg(long, value_delimiter = ',', default_value = "vtt,srt,json")]
    format: Vec<Format>,
    /// Beam width [config: speech.beam_size].
    #[arg(long)]
    beam_size: Option<usize>,
    /// int8 or float32 [config: speech.compute_type].
    #[arg(long)]
    compute_type: Option<ComputeType>,
    /// Inference threads, 0 for every core [config: speech.threads].
    #[arg(long)]
    threads: Option<usize>,
    /// Transcribe everything, silences included (no VAD) [config: speech.vad].
    #[arg(long)]
    no_vad: bool,
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

pub fn run(config: &Config, args: TranscribeArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let mut speech = config.speech.clone();
    if let Some(model) = args.model {
        speech.model = model;
    }
    if let Some(language) = args.language {
        speech.language = language;
    }
    speech.beam_size = args.beam_size.unwrap_or(speech.beam_size);
    speech.compute_type = args.compute_type.unwrap_or(speech.compute_type);
    speech.threads = args.threads.unwrap_or(speech.threads);
    speech.vad &= !args.no_vad;
    let threads = match speech.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };

    let prober = Prober::new(config.ffprobe(), config.probe_timeout());
    let facts = runtime.block_on(prober.probe(&args.file))?;
    // Opened before the model loads: a file without audio fails at once.
    let proxy = AudioDecoder::new(config.ffmpeg()).open(&args.file, &facts, None)?;
    let duration = proxy.duration_secs();

    let models = ModelsDir::new(&config.models_dir);
    let model = if Path::new(&speech.model).is_dir() {
        WhisperModel::load_path(Path::new(&speech.model), speech.compute_type, threads)?
    } else {
        WhisperModel::load(&models, &speech.model, speech.compute_type, threads)?
    };
    let options = TranscribeOptions {
        language: (speech.language != "auto").then(|| speech.language.clone()),
        beam_size: speech.beam_size,
        ..TranscribeOptions::default()
    };

    let read = Arc::new(AtomicU64::new(0));
    let source = ProxySource { proxy, read: Arc::clone(&read), scratch: Vec::new() };

    let bar = progress_bar(duration);
    let started = Instant::now();
    let mut on_progress = |_: f64| bar.set_position(read.load(Ordering::Relaxed) / 16);
    let (transcription, map) = if speech.vad {
        // Cut long speech spans at their longest pause so the gate holds at most
        // two minutes of audio.
        let vad_options = VadOptions { max_speech_s: Some(120.0), ..VadOptions::default() };
        let detector = Vad::load(&models)?.detector(vad_options)?;
        let mut gate = SpeechGate::new(source, detector);
        let t = model.transcribe(&mut gate, &options, &mut on_progress)?;
        (t, Some(gate.time_map().clone()))
    } else {
        let mut source = source;
        (model.transcribe(&mut source, &options, &mut on_progress)?, None)
    };
    let elapsed = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let input_secs = read.load(Ordering::Relaxed) as f64 / 16_000.0;
    let words = words_on_input_timeline(&transcription, map.as_ref());
    let cues = captions::cues_from_words(&words, &CaptionProfile::default());
    let transcript = Transcript {
        language: transcription.language.clone(),
        model: model.name().to_owned(),
        duration: Millis::from_secs_f64(input_secs),
        words,
        cues,
    };
    let written = write_outputs(&args.out, &args.file, &args.format, &transcript)?;

    eprintln!(
        "{}: language {} ({:.0}%), {:.1} s of audio{}, {} words, {} cues, {:.1} s ({:.2}x real time)",
        args.file.display(),
        transcription.language,
        transcription.language_probability * 100.0,
        input_secs,
        map.map(|m| format!(" ({:.1} s of speech)", m.speech_secs())).unwrap_or_default(),
        transcript.words.len(),
        transcript.cues.len(),
        elapsed,
        if input_secs > 0.0 { elapsed / input_secs } else { 0.0 },
    );
    if transcript.words.is_empty() {
        eprintln!("warning: no speech was found; the caption files are empty");
    }
    if transcription.dropped_windows > 0 {
        eprintln!(
            "warning: {} window(s) of repeated text were dropped as hallucination",
            transcription.dropped_windows
        );
    }
    for path in written {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Words with times on the input's timeline (the VAD gate removed silences).
fn words_on_input_timeline(t: &Transcription, map: Option<&TimeMap>) -> Vec<babelcast_core::Word> {
    let mut words = t.words();
    if let Some(map) = map {
        for w in &mut words {
            w.start = Millis::from_secs_f64(map.to_input_secs(w.start.as_secs_f64()));
            w.end = Millis::from_secs_f64(map.to_input_secs(w.end.as_secs_f64())).max(w.start);
        }
    }
    words
}

fn progress_bar(duration: Option<f64>) -> ProgressBar {
    let bar = match duration {
        // Position and length in milliseconds of audio.
        Some(secs) => ProgressBar::new((secs * 1000.0) as u64),
        None => ProgressBar::new_spinner(),
    };
    let style = ProgressStyle::with_template(
        "{spinner} transcribing [{bar:30}] {percent}% of the audio, {elapsed} (eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

fn write_outputs(
    out: &Path,
    input: &Path,
    formats: &[Format],
    t: &Transcript,
) -> anyhow::Result<Vec<PathBuf>> {
    let stem =
        input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "captions".into());
    let mut written = Vec::new();
    for format in formats {
        let (ext, body) = match format {
            Format::Vtt => ("vtt", subtitle::vtt::write(&t.cues)),
            Format::Srt => ("srt", subtitle::srt::write(&t.cues)),
            Format::Json => ("json", serde_json::to_string_pretty(t)? + "\n"),
        };
        let path = out.join(format!("{stem}.{ext}"));
        babelcast_store::write_atomic(&path, body.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
