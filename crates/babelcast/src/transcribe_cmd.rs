//! `babelcast transcribe`: a media file in, captions out (WebVTT, SRT, JSON).
//!
//! The audio is decoded by ffmpeg as a stream (never whole in memory), passed
//! through the VAD gate so only speech reaches Whisper, transcribed window by window
//! with a progress bar on the audio done, and turned into cues by the caption rules.

use std::path::{Path, PathBuf};

use anyhow::Context;
use babelcast_core::{Transcript, subtitle};
use babelcast_media::Prober;
use babelcast_pipeline::speech::transcribe_file;
use babelcast_speech::ComputeType;
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
    /// Decoding is then sequential.
    #[arg(long)]
    no_vad: bool,
    /// Windows of speech decoded together; 1 decodes one window at a time
    /// (sequential) [config: speech.batch_size].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    batch_size: Option<u64>,
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
    speech.batch_size = args.batch_size.map_or(speech.batch_size, |b| b as usize);

    let prober = Prober::new(config.ffprobe(), config.probe_timeout());
    let facts = runtime.block_on(prober.probe(&args.file))?;
    let duration = facts.audio.first().and_then(|a| a.duration_secs).or(facts.duration_secs);
    let bar = progress_bar(duration);
    let outcome =
        transcribe_file(&speech, &config.models_dir, config.ffmpeg(), &args.file, &facts, &mut |f| {
            if let Some(d) = duration {
                bar.set_position((f * d * 1000.0) as u64);
            }
        })?;
    bar.finish_and_clear();

    let transcript = &outcome.transcript;
    let written = write_outputs(&args.out, &args.file, &args.format, transcript)?;
    eprintln!(
        "{}: language {} ({:.0}%), {:.1} s of audio{}, {} words, {} cues, {:.1} s ({:.2}x real time)",
        args.file.display(),
        transcript.language,
        outcome.language_probability * 100.0,
        outcome.input_secs,
        outcome.speech_secs.map(|s| format!(" ({s:.1} s of speech)")).unwrap_or_default(),
        transcript.words.len(),
        transcript.cues.len(),
        outcome.elapsed_secs,
        if outcome.input_secs > 0.0 { outcome.elapsed_secs / outcome.input_secs } else { 0.0 },
    );
    if transcript.words.is_empty() {
        eprintln!("warning: no speech was found; the caption files are empty");
    }
    if outcome.dropped_windows > 0 {
        eprintln!(
            "warning: {} window(s) of repeated text were dropped as hallucination",
            outcome.dropped_windows
        );
    }
    for path in written {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
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
