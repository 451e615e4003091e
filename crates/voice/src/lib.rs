//! Voice dubbing: each translated cue is spoken by a voice and fitted into its time
//! slot, and the speech is laid on a track at the cue times.
//!
//! **Timing fit** (ours: it is the dubbing rule itself, no library has it). A
//! cue's speech should fit between its start and end. It is synthesised at normal
//! speed and measured; if it overflows, it is synthesised again faster, up to
//! [`FitOptions::max_speed`] (1.35× by default: faster stops sounding natural); if
//! it still overflows, it borrows the silence after the cue, up to the next cue's
//! start; it never overlaps the next cue (what would is cut, with a short fade).
//! Each cue records its speed factor and the milliseconds it ran past its end, and
//! [`QaSummary`] sums them up.
//!
//! Engines: Piper voices ([`Piper`], neural, where a voice is installed: English
//! here) and espeak-ng for every other language ([`Espeak`], whose rate is words
//! per minute, so the speed factor scales `-s`).

mod piper;

use std::path::Path;
use std::time::Duration;

use babelcast_core::{Cue, ErrorCode, Lang, Millis};
use babelcast_process::{ProcessError, Program};
use serde::{Deserialize, Serialize};

pub use piper::Piper;

/// The sample rate of the speech track.
pub const SAMPLE_RATE: u32 = 22_050;

/// Why speech could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// No voice for the language.
    #[error("no voice for {0}: install espeak-ng (scripts/setup.sh)")]
    NoVoice(Lang),
    /// The engine failed.
    #[error("speech synthesis failed: {0}")]
    Engine(String),
    /// The engine's program is missing, stalled or failed.
    #[error(transparent)]
    Program(ProcessError),
    /// A temporary file could not be used.
    #[error("speech synthesis: {0}")]
    Io(#[from] std::io::Error),
}

impl ErrorCode for VoiceError {
    fn code(&self) -> &'static str {
        match self {
            VoiceError::NoVoice(_) => "no_voice",
            VoiceError::Engine(_) => "synthesis_failed",
            VoiceError::Program(e) => e.code(),
            VoiceError::Io(_) => "io",
        }
    }

    fn is_client_error(&self) -> bool {
        matches!(self, VoiceError::NoVoice(_))
    }
}

/// A voice: text in a language at a speed factor → mono samples at [`SAMPLE_RATE`].
pub trait Voice {
    /// The voice's name, for QA records and cache keys.
    fn name(&self) -> String;
    /// Speaks `text` at `speed` (1 = normal).
    fn speak(&self, text: &str, speed: f64) -> Result<Vec<f32>, VoiceError>;
}

/// espeak-ng, which has a voice for every language babelcast knows.
#[derive(Debug, Clone)]
pub struct Espeak {
    program: Program,
    voice: String,
}

/// espeak-ng's normal rate, words per minute.
const ESPEAK_WPM: f64 = 175.0;

impl Espeak {
    /// espeak-ng speaking `lang`.
    pub fn new(program: Program, lang: Lang) -> Espeak {
        Espeak { program, voice: lang.tag().to_owned() }
    }

    /// The voices espeak-ng has, as `(language, name)`.
    pub fn list(program: &Program) -> Result<Vec<(String, String)>, VoiceError> {
        let text = run_to_end(program.call().arg("--voices"))?;
        Ok(text
            .lines()
            .skip(1)
            .filter_map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                Some((cols.get(1)?.to_string(), cols.get(3)?.to_string()))
            })
            .collect())
    }
}

pub(crate) fn run_to_end(call: babelcast_process::Call) -> Result<String, VoiceError> {
    let out =
        call.spawn_stdout(Duration::from_secs(60)).and_then(|s| s.read_all()).map_err(VoiceError::Program)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

impl Voice for Espeak {
    fn name(&self) -> String {
        format!("espeak-ng:{}", self.voice)
    }

    fn speak(&self, text: &str, speed: f64) -> Result<Vec<f32>, VoiceError> {
        let dir = tempfile::tempdir()?;
        let wav = dir.path().join("speech.wav");
        // Rounded to whole words per minute, the unit espeak-ng takes.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let wpm = (ESPEAK_WPM * speed).round().clamp(80.0, 450.0) as u32;
        let call = self
            .program
            .call()
            .args(["-v", &self.voice, "-s", &wpm.to_string(), "-w"])
            .arg(&wav)
            // The text goes on stdin: never an option, whatever it starts with.
            .arg("--stdin")
            .stdin(text.as_bytes().to_vec());
        run_to_end(call)?;
        read_wav(&wav)
    }
}

/// Reads a mono 16-bit WAV at [`SAMPLE_RATE`] into samples.
fn read_wav(path: &Path) -> Result<Vec<f32>, VoiceError> {
    let mut reader = hound::WavReader::open(path).map_err(|e| VoiceError::Engine(e.to_string()))?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE || spec.channels != 1 {
        return Err(VoiceError::Engine(format!("unexpected speech format {spec:?}")));
    }
    reader
        .samples::<i16>()
        .map(|s| s.map(|v| f32::from(v) / 32768.0).map_err(|e| VoiceError::Engine(e.to_string())))
        .collect()
}

/// How speech is fitted to cues.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitOptions {
    /// The fastest speech may be made, as a factor of normal.
    pub max_speed: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { max_speed: 1.35 }
    }
}

/// What happened to one cue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CueFit {
    /// The cue's start.
    pub start_ms: u64,
    /// The cue's end.
    pub end_ms: u64,
    /// The speed it was spoken at.
    pub speed: f64,
    /// How long the speech is, after fitting.
    pub speech_ms: u64,
    /// How far past the cue's end it runs (borrowed silence).
    pub overflow_ms: u64,
    /// How much was cut so as not to overlap the next cue.
    pub cut_ms: u64,
    /// What was spoken (with the speed and times, what the speech is made of:
    /// a later dub of the same cues tells from these which stretches changed).
    #[serde(default)]
    pub text: String,
}

/// The QA summary of a dub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaSummary {
    /// Cues spoken.
    pub cues: usize,
    /// Share of cues that fit at normal speed, 0–1.
    pub fit_without_speedup: f64,
    /// The highest speed factor used.
    pub max_speed: f64,
    /// Cues that ran past their end (into the silence after).
    pub overflowing: usize,
    /// Cues cut short at the next cue.
    pub cut: usize,
}

/// A dub's speech track and its QA record.
#[derive(Debug, Clone)]
pub struct Dub {
    /// Mono samples at [`SAMPLE_RATE`], speech at the cue times, silence elsewhere.
    pub samples: Vec<f32>,
    /// Per cue.
    pub fits: Vec<CueFit>,
}

/// The QA summary of a dub's cue fits.
pub fn summary(fits: &[CueFit]) -> QaSummary {
    let n = fits.len();
    let plain = fits.iter().filter(|f| f.speed <= 1.0).count();
    QaSummary {
        cues: n,
        fit_without_speedup: if n == 0 { 1.0 } else { plain as f64 / n as f64 },
        max_speed: fits.iter().map(|f| f.speed).fold(1.0, f64::max),
        overflowing: fits.iter().filter(|f| f.overflow_ms > 0).count(),
        cut: fits.iter().filter(|f| f.cut_ms > 0).count(),
    }
}

impl Dub {
    /// The QA summary.
    pub fn summary(&self) -> QaSummary {
        summary(&self.fits)
    }

    /// Writes the speech track as a 16-bit mono WAV.
    pub fn write_wav(&self, path: &Path) -> Result<(), VoiceError> {
        let mut writer = wav_writer(path)?;
        write_samples(&mut writer, &self.samples)?;
        writer.finalize().map_err(|e| VoiceError::Engine(e.to_string()))
    }
}

/// A 16-bit mono WAV at [`SAMPLE_RATE`] being written.
type Wav = hound::WavWriter<std::io::BufWriter<std::fs::File>>;

fn wav_writer(path: &Path) -> Result<Wav, VoiceError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(path, spec).map_err(|e| VoiceError::Engine(e.to_string()))
}

fn write_samples(writer: &mut Wav, samples: &[f32]) -> Result<(), VoiceError> {
    for s in samples {
        // Clamped to ±1 first, so the product fits.
        #[allow(clippy::cast_possible_truncation)]
        let v = (s.clamp(-1.0, 1.0) * 32767.0) as i16;
        writer.write_sample(v).map_err(|e| VoiceError::Engine(e.to_string()))?;
    }
    Ok(())
}

/// Where the fitted speech is laid: the whole track in memory (a [`Dub`]'s
/// samples) or a WAV written as it goes ([`dub_to_wav`]).
trait Track {
    /// Adds `speech` from sample `at` on.
    fn add(&mut self, at: usize, speech: &[f32]) -> Result<(), VoiceError>;
}

impl Track for Vec<f32> {
    fn add(&mut self, at: usize, speech: &[f32]) -> Result<(), VoiceError> {
        for (k, s) in speech.iter().enumerate() {
            if let Some(slot) = self.get_mut(at + k) {
                *slot += s;
            }
        }
        Ok(())
    }
}

/// A speech track streamed to a WAV file: only the speech not yet written is
/// held (about one cue's), not the whole track (0.6 GB for two hours).
struct WavTrack {
    writer: Wav,
    /// Samples written so far.
    written: usize,
    /// The samples from `written` on that speech was added to.
    pending: Vec<f32>,
    /// The track's length in samples.
    total: usize,
}

impl WavTrack {
    /// Writes everything before sample `to` (speech pending, then silence).
    fn flush_to(&mut self, to: usize) -> Result<(), VoiceError> {
        let to = to.min(self.total);
        if to <= self.written {
            return Ok(());
        }
        let from_pending = (to - self.written).min(self.pending.len());
        write_samples(&mut self.writer, &self.pending[..from_pending])?;
        self.pending.drain(..from_pending);
        let silence = to - self.written - from_pending;
        for _ in 0..silence {
            self.writer.write_sample(0i16).map_err(|e| VoiceError::Engine(e.to_string()))?;
        }
        self.written = to;
        Ok(())
    }

    fn finish(mut self) -> Result<(), VoiceError> {
        self.flush_to(self.total)?;
        self.writer.finalize().map_err(|e| VoiceError::Engine(e.to_string()))
    }
}

impl Track for WavTrack {
    fn add(&mut self, at: usize, speech: &[f32]) -> Result<(), VoiceError> {
        // Cues come in time order and each is cut at the next one's start, so no
        // speech starts before what is written; any that would is left out there.
        let skip = self.written.saturating_sub(at).min(speech.len());
        let at = at.max(self.written);
        let speech = &speech[skip..];
        self.flush_to(at)?;
        let offset = at - self.written;
        let end = (offset + speech.len()).min(self.total.saturating_sub(self.written));
        if end > self.pending.len() {
            self.pending.resize(end, 0.0);
        }
        for (slot, s) in self.pending[offset.min(end)..end].iter_mut().zip(speech) {
            *slot += s;
        }
        Ok(())
    }
}

fn samples_at(ms: u64) -> usize {
    (ms as usize) * SAMPLE_RATE as usize / 1000
}

fn ms_of(samples: usize) -> u64 {
    (samples as u64) * 1000 / u64::from(SAMPLE_RATE)
}

/// Removes leading and trailing near-silence (engines pad their output).
fn trim(samples: &[f32]) -> &[f32] {
    let loud = |s: &&f32| s.abs() > 0.01;
    let start = samples.iter().position(|s| loud(&s)).unwrap_or(samples.len());
    let end = samples.iter().rposition(|s| loud(&s)).map(|i| i + 1).unwrap_or(start);
    &samples[start..end.max(start)]
}

/// Speaks every cue and fits it to its slot (see the crate notes). `total_ms` is
/// the track's length (the video's).
pub fn dub(voice: &dyn Voice, cues: &[Cue], total_ms: u64, options: FitOptions) -> Result<Dub, VoiceError> {
    let mut samples = vec![0.0f32; samples_at(total_ms)];
    let fits = fit(voice, cues, total_ms, options, &mut samples)?;
    Ok(Dub { samples, fits })
}

/// [`dub`], the speech track written to `path` (a 16-bit mono WAV) as it is
/// made instead of held whole; returns the cue fits.
pub fn dub_to_wav(
    voice: &dyn Voice,
    cues: &[Cue],
    total_ms: u64,
    options: FitOptions,
    path: &Path,
) -> Result<Vec<CueFit>, VoiceError> {
    let mut track =
        WavTrack { writer: wav_writer(path)?, written: 0, pending: Vec::new(), total: samples_at(total_ms) };
    let fits = fit(voice, cues, total_ms, options, &mut track)?;
    track.finish()?;
    Ok(fits)
}

fn fit(
    voice: &dyn Voice,
    cues: &[Cue],
    total_ms: u64,
    options: FitOptions,
    track: &mut dyn Track,
) -> Result<Vec<CueFit>, VoiceError> {
    let mut fits = Vec::new();
    for (i, cue) in cues.iter().enumerate() {
        let text = cue.text.replace('\n', " ");
        if text.trim().is_empty() || !text.chars().any(char::is_alphanumeric) {
            // Music symbols and the like are not spoken.
            continue;
        }
        let next_start = cues.get(i + 1).map(|c| c.start.0).unwrap_or(total_ms).min(total_ms);
        let slot = cue.end.0.saturating_sub(cue.start.0).max(1);
        let mut speed = 1.0;
        let mut speech = trim(&voice.speak(&text, speed)?).to_vec();
        let needed = ms_of(speech.len());
        if needed > slot {
            speed = (needed as f64 / slot as f64).min(options.max_speed);
            speech = trim(&voice.speak(&text, speed)?).to_vec();
        }
        let room = next_start.saturating_sub(cue.start.0);
        let mut cut_ms = 0;
        if ms_of(speech.len()) > room {
            cut_ms = ms_of(speech.len()) - room;
            speech.truncate(samples_at(room));
            // A 20 ms fade instead of a click.
            let fade = samples_at(20).min(speech.len());
            let len = speech.len();
            for (k, s) in speech[len - fade..].iter_mut().enumerate() {
                *s *= 1.0 - (k as f32 + 1.0) / fade as f32;
            }
        }
        track.add(samples_at(cue.start.0), &speech)?;
        let speech_ms = ms_of(speech.len());
        fits.push(CueFit {
            start_ms: cue.start.0,
            end_ms: cue.end.0,
            speed: (speed * 1000.0).round() / 1000.0,
            speech_ms,
            overflow_ms: (cue.start.0 + speech_ms).saturating_sub(cue.end.0),
            cut_ms,
            text,
        });
    }
    Ok(fits)
}

/// The root-mean-square level of `samples` between two times.
pub fn rms(samples: &[f32], from: Millis, to: Millis) -> f64 {
    let (a, b) = (samples_at(from.0).min(samples.len()), samples_at(to.0).min(samples.len()));
    if b <= a {
        return 0.0;
    }
    (samples[a..b].iter().map(|s| f64::from(*s) * f64::from(*s)).sum::<f64>() / (b - a) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake voice whose speech lasts 100 ms per character at normal speed, so the
    /// fitting rules can be checked exactly.
    struct Metronome;

    impl Voice for Metronome {
        fn name(&self) -> String {
            "metronome".into()
        }

        fn speak(&self, text: &str, speed: f64) -> Result<Vec<f32>, VoiceError> {
            let ms = (text.chars().count() as f64 * 100.0 / speed) as u64;
            Ok(vec![0.5; samples_at(ms)])
        }
    }

    fn cue(start: u64, end: u64, text: &str) -> Cue {
        Cue { start: Millis(start), end: Millis(end), text: text.into() }
    }

    #[test]
    fn speech_is_sped_up_then_borrows_silence_and_never_overlaps_the_next_cue() {
        let cues = [
            cue(0, 2000, "abcdefghij"),                  // 1.0 s: fits at normal speed
            cue(3000, 4000, "abcdefghijkl"),             // 1.2 s in 1 s: 1.2x
            cue(5000, 6000, "abcdefghijklmnop"),         // 1.6 s in 1 s: 1.35x, 1.185 s, borrows 185 ms
            cue(6500, 7000, "abcdefghijklmnopqrstuvwx"), // 2.4 s → 1.78 s at 1.35x, cut at 8000
            cue(8000, 9000, "♪ ♪"),                      // music: not spoken
        ];
        let d = dub(&Metronome, &cues, 10_000, FitOptions::default()).expect("dub");
        let f = &d.fits;
        assert_eq!(f.len(), 4);
        assert_eq!((f[0].speed, f[0].overflow_ms, f[0].cut_ms), (1.0, 0, 0));
        assert_eq!((f[1].speed, f[1].overflow_ms), (1.2, 0));
        assert_eq!(f[2].speed, 1.35);
        assert!(f[2].overflow_ms > 150 && f[2].overflow_ms < 200 && f[2].cut_ms == 0, "{:?}", f[2]);
        assert!(f[3].cut_ms > 0 && f[3].start_ms + f[3].speech_ms <= 8000, "{:?}", f[3]);
        let s = d.summary();
        assert_eq!((s.cues, s.max_speed, s.overflowing, s.cut), (4, 1.35, 2, 1));
        assert!((s.fit_without_speedup - 0.25).abs() < 1e-9);
        // Speech where the cues are, silence elsewhere.
        assert!(rms(&d.samples, Millis(0), Millis(900)) > 0.4);
        assert!(rms(&d.samples, Millis(2100), Millis(2900)) < 1e-6);
        assert!(rms(&d.samples, Millis(8000), Millis(10_000)) < 1e-6);
    }

    #[test]
    fn the_streamed_track_is_the_same_as_the_one_held_whole() {
        let cues = [
            cue(0, 2000, "abcdefghij"),
            cue(3000, 4000, "abcdefghijkl"),
            cue(5000, 6000, "abcdefghijklmnop"),
            cue(6500, 7000, "abcdefghijklmnopqrstuvwx"),
            cue(9500, 9900, "abcdefghijklmnop"), // runs past the track's end
        ];
        let tmp = tempfile::tempdir().expect("tmp");
        let (whole, streamed) = (tmp.path().join("whole.wav"), tmp.path().join("streamed.wav"));
        let held = dub(&Metronome, &cues, 10_000, FitOptions::default()).expect("dub");
        held.write_wav(&whole).expect("write");
        let fits = dub_to_wav(&Metronome, &cues, 10_000, FitOptions::default(), &streamed).expect("stream");
        assert_eq!(fits, held.fits);
        assert_eq!(std::fs::read(&streamed).expect("read"), std::fs::read(&whole).expect("read"));
        assert_eq!(read_wav(&streamed).expect("wav").len(), samples_at(10_000));
    }

    #[test]
    fn espeak_speaks_spanish_faster_when_asked() {
        let voice = Espeak::new(Program::espeak_ng(), "es".parse().expect("es"));
        let normal =
            voice.speak("Hola a todos, bienvenidos al programa.", 1.0).expect("espeak-ng (scripts/setup.sh)");
        let fast = voice.speak("Hola a todos, bienvenidos al programa.", 1.35).expect("espeak-ng");
        assert!(normal.len() > samples_at(1000), "about two seconds of speech");
        let ratio = trim(&normal).len() as f64 / trim(&fast).len() as f64;
        assert!(ratio > 1.2 && ratio < 1.5, "1.35x faster: {ratio}");
        assert!(
            Espeak::list(&Program::espeak_ng()).expect("voices").iter().any(|(l, _)| l.starts_with("es"))
        );
    }
}
