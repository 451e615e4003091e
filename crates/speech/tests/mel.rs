//! Checks the Whisper front end against `fixtures/whisper_mel_reference.py`, a numpy
//! transcription of openai-whisper's `log_mel_spectrogram` computed in float64, and
//! against the filter bank openai-whisper ships. Both come from
//! `scripts/test-fixtures.sh`; without them these tests fail and say so.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use babelcast_speech::mel::{self, HOP_LENGTH, MelFrontEnd, N_SAMPLES, SAMPLE_RATE};

/// Real speech: a LibriVox reader, 16 kHz mono 16-bit, about 7 s.
const SPEECH: &str =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";

/// Largest difference allowed on the normalised log-mel scale, where the values of
/// speech span about 2.0 (8.0 in log10 units over 4).
///
/// The reference is float64 throughout; the Rust side, like Whisper's torch code,
/// computes in float32. A relative error e in a mel energy moves the output by
/// e / (4 ln 10) ≈ 0.11 e. The float32 FFT's error is absolute, about 1e-7 of the
/// frame's energy, so it is relatively largest in the quietest bins that survive the
/// 80 dB floor; the max and clamp steps are 1-Lipschitz and add nothing. Measured:
/// up to 1.7e-5 on speech and 3.1e-5 on the full-scale chirp (numpy's own float32
/// pipeline is 3.3e-6 off on the speech). 1e-4 is three times that, yet a 0.1% gain
/// error in the filters already exceeds it (1.1e-4), a symmetric instead of periodic
/// Hann window is 0.05 off and zero instead of reflect padding 0.3.
const FEATURE_TOLERANCE: f32 = 1e-4;

/// The Rust filter bank against the float32 values in whisper's `mel_filters.npz`:
/// the same float64 recipe rounded to float32 twice. They are bit-equal here, but a
/// libm whose `ln`/`exp` round differently from numpy's could move a weight by an
/// ulp: an ulp of the largest weight (0.042, in the 128-bin bank) is 3.7e-9, and
/// this allows a few.
const FILTER_TOLERANCE: f32 = 1e-8;

/// The numpy reference and its inputs, prepared by `scripts/test-fixtures.sh`.
struct Reference {
    python: PathBuf,
    npz: PathBuf,
    script: PathBuf,
}

fn reference() -> Reference {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let cache = Path::new(&home).join(".cache/babelcast");
    let reference = Reference {
        python: cache.join("venv/bin/python"),
        npz: cache.join("fixtures/mel_filters.npz"),
        script: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/whisper_mel_reference.py"),
    };
    for path in [&reference.python, &reference.npz] {
        assert!(
            path.exists(),
            "{} is missing: run scripts/test-fixtures.sh to set up the numpy reference",
            path.display()
        );
    }
    reference
}

/// A reference result: its shape and row-major values.
struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Reference {
    fn run(&self, args: &[&OsStr], out: &Path) -> Matrix {
        let output = Command::new(&self.python).arg(&self.script).args(args).output().expect("run python");
        assert!(
            output.status.success(),
            "the numpy reference failed ({}); run scripts/test-fixtures.sh if its set-up is broken:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let shape: Vec<usize> = String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .map(|n| n.parse().expect("shape"))
            .collect();
        let bytes = std::fs::read(out).expect("reference output");
        let data: Vec<f32> =
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        let [rows, cols] = shape[..] else { panic!("shape {shape:?}") };
        assert_eq!(data.len(), rows * cols);
        Matrix { rows, cols, data }
    }

    fn filters(&self, n_mels: usize) -> Matrix {
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("filters.f32");
        let n = n_mels.to_string();
        self.run(&["filters".as_ref(), self.npz.as_os_str(), n.as_ref(), out.as_os_str()], &out)
    }

    fn log_mel(&self, samples: &[f32], n_mels: usize, padding: usize) -> Matrix {
        let tmp = tempfile::tempdir().expect("tmp");
        let input = tmp.path().join("samples.f32");
        let out = tmp.path().join("mel.f32");
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(&input, bytes).expect("write samples");
        let (n, p) = (n_mels.to_string(), padding.to_string());
        let args = [
            "mel".as_ref(),
            self.npz.as_os_str(),
            n.as_ref(),
            p.as_ref(),
            input.as_os_str(),
            out.as_os_str(),
        ];
        self.run(&args, &out)
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Compares Rust's features for `samples` with the reference's, unpadded or padded
/// with 30 s as `transcribe()` does, and returns the largest difference.
fn compare(reference: &Reference, name: &str, samples: &[f32], n_mels: usize, padded: bool) -> f32 {
    let front_end = MelFrontEnd::new(n_mels).expect("front end");
    let ours = if padded {
        let spec = front_end.spectrogram(samples);
        assert_eq!(spec.content_frames(), samples.len() / HOP_LENGTH);
        spec.features().clone()
    } else {
        front_end.log_mel(samples)
    };
    let theirs = reference.log_mel(samples, n_mels, if padded { N_SAMPLES } else { 0 });
    assert_eq!((ours.n_mels(), ours.n_frames()), (theirs.rows, theirs.cols), "{name}: shape");
    let diff = max_abs_diff(ours.as_slice(), &theirs.data);
    eprintln!("{name} ({n_mels} mels, padded: {padded}): max abs difference {diff:e}");
    assert!(
        diff <= FEATURE_TOLERANCE,
        "{name} ({n_mels} mels, padded: {padded}): {diff:e} > {FEATURE_TOLERANCE:e}"
    );
    diff
}

/// 16-bit PCM mono samples of a WAV file, scaled as Whisper's `load_audio` does.
fn read_wav(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(&bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE", "{path}: not a WAV file");
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let mut pos = 12;
    let mut format_ok = false;
    while pos + 8 <= bytes.len() {
        let (id, size) = (&bytes[pos..pos + 4], u32_at(pos + 4) as usize);
        let body = pos + 8;
        match id {
            b"fmt " => {
                let (tag, channels, rate, bits) =
                    (u16_at(body), u16_at(body + 2), u32_at(body + 4), u16_at(body + 14));
                assert_eq!(
                    (tag, channels, rate, bits),
                    (1, 1, SAMPLE_RATE, 16),
                    "{path}: want 16 kHz mono PCM16"
                );
                format_ok = true;
            }
            b"data" => {
                assert!(format_ok, "{path}: data before fmt");
                let end = (body + size).min(bytes.len());
                return bytes[body..end]
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                    .collect();
            }
            _ => {}
        }
        pos = body + size + size % 2;
    }
    panic!("{path}: no data chunk");
}

/// A linear sweep from 20 Hz to 7.9 kHz: every mel bin in turn, at a level near full
/// scale.
fn chirp(seconds: f64) -> Vec<f32> {
    let (f0, f1, sr) = (20.0, 7900.0, f64::from(SAMPLE_RATE));
    let n = (seconds * sr) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / sr;
            (0.8 * (std::f64::consts::TAU * (f0 * t + (f1 - f0) * t * t / (2.0 * seconds))).sin()) as f32
        })
        .collect()
}

/// Deterministic white noise in [-amplitude, amplitude).
fn noise(n: usize, amplitude: f32) -> Vec<f32> {
    let mut state: u32 = 0x2545_f491;
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            amplitude * ((state >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        })
        .collect()
}

#[test]
fn filter_bank_matches_whispers_mel_filters_npz() {
    let reference = reference();
    for n_mels in [80, 128] {
        let theirs = reference.filters(n_mels);
        assert_eq!((theirs.rows, theirs.cols), (n_mels, 201));
        let ours = mel::mel_filter_bank(n_mels);
        let diff = max_abs_diff(&ours, &theirs.data);
        let largest = theirs.data.iter().fold(0.0f32, |m, &w| m.max(w));
        let exact = ours.iter().zip(&theirs.data).filter(|(a, b)| a == b).count();
        eprintln!(
            "filter bank {n_mels}: max abs difference {diff:e} (largest weight {largest}), {exact} of {} bit-equal",
            ours.len()
        );
        assert!(diff <= FILTER_TOLERANCE, "filter bank {n_mels}: {diff:e} > {FILTER_TOLERANCE:e}");
    }
}

#[test]
fn real_speech_matches_the_reference() {
    let reference = reference();
    let speech = read_wav(SPEECH);
    assert!(speech.len() > 5 * SAMPLE_RATE as usize, "{} samples", speech.len());

    let front_end = MelFrontEnd::new(80).expect("front end");
    let started = Instant::now();
    let features = front_end.log_mel(&speech);
    eprintln!(
        "log_mel of {:.2} s of speech: {:?} ({} frames)",
        speech.len() as f64 / f64::from(SAMPLE_RATE),
        started.elapsed(),
        features.n_frames()
    );

    compare(&reference, "speech", &speech, 80, false);
    compare(&reference, "speech", &speech, 80, true);
    compare(&reference, "speech", &speech, 128, true);
}

#[test]
fn synthetic_signals_match_the_reference() {
    let reference = reference();
    compare(&reference, "chirp", &chirp(3.0), 80, false);
    compare(&reference, "chirp", &chirp(3.0), 128, true);
    compare(&reference, "silence", &vec![0.0; SAMPLE_RATE as usize], 80, false);
    compare(&reference, "silence", &vec![0.0; SAMPLE_RATE as usize], 80, true);
    compare(&reference, "quiet noise", &noise(12_345, 1e-3), 80, false);
    // Shorter than the window, and shorter than the 200-sample reflection.
    compare(&reference, "399 samples of noise", &noise(399, 0.5), 80, false);
    compare(&reference, "170 samples of noise", &noise(170, 0.5), 80, false);
}
