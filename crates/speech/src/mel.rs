//! Whisper's log-mel spectrogram front end, written by hand.
//!
//! Whisper was trained on features from one exact recipe (openai-whisper's
//! `log_mel_spectrogram`), and its accuracy depends on being fed the same numbers:
//! a different window, padding, filter bank or normalisation shifts every input the
//! encoder sees. ct2rs's high-level helper computes its own, different mel front end,
//! so babelcast computes the features itself and hands them to CTranslate2.
//!
//! The recipe, for 16 kHz mono samples: a periodic Hann window of 400 samples, an
//! STFT every 160 samples with the signal reflect-padded by 200 samples on each side
//! (torch's `center=True`), the power spectrum with the STFT's last frame dropped,
//! the Slaney-style mel filter bank librosa builds (80 bins, 128 for large-v3),
//! `log10` clamped at 1e-10, a floor 8.0 (80 dB) below the largest value, then
//! `(x + 4) / 4`. `tests/mel.rs` checks all of it against a numpy transcription of
//! openai-whisper's own code and its shipped filter bank.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// The sample rate Whisper's features are defined at, in Hz.
pub const SAMPLE_RATE: u32 = 16_000;
/// STFT window and FFT length, in samples (25 ms).
pub const N_FFT: usize = 400;
/// STFT hop, in samples (10 ms): one feature frame per hop.
pub const HOP_LENGTH: usize = 160;
/// Samples in one 30-second window, the fixed input length of Whisper's encoder.
pub const N_SAMPLES: usize = 480_000;
/// Feature frames in one 30-second window.
pub const N_FRAMES: usize = N_SAMPLES / HOP_LENGTH;

/// Frequency bins of the one-sided spectrum.
const N_FREQS: usize = N_FFT / 2 + 1;
/// `log10` clamp: silence maps to -10 rather than minus infinity.
const LOG_CLAMP: f32 = 1e-10;
/// Dynamic range kept below the loudest value, in `log10` units (80 dB).
const DYNAMIC_RANGE: f32 = 8.0;

/// A mel bin count Whisper's front end is not defined for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Whisper's front end has 80 mel bins (128 for large-v3 models), not {n_mels}")]
pub struct UnsupportedMelBins {
    /// The count that was asked for.
    pub n_mels: usize,
}

/// Log-mel features, row-major `[n_mels][n_frames]`: the layout of one item of
/// CTranslate2's `[batch, n_mels, frames]` input, so windows of equal length can be
/// concatenated into a batch as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    n_mels: usize,
    n_frames: usize,
    data: Vec<f32>,
}

impl Features {
    /// The number of mel bins (rows).
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// The number of frames (columns), one per 10 ms.
    pub fn n_frames(&self) -> usize {
        self.n_frames
    }

    /// All values, row-major `[n_mels][n_frames]`.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// All values, row-major `[n_mels][n_frames]`, without a copy.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// One mel bin over time.
    ///
    /// # Panics
    /// If `mel` is not below [`Features::n_mels`].
    pub fn row(&self, mel: usize) -> &[f32] {
        &self.data[mel * self.n_frames..(mel + 1) * self.n_frames]
    }

    /// Whisper's `pad_or_trim(mel, length)`: the first `length` frames, with frames of
    /// zeros after the end. The zeros are in the feature domain, not the features of
    /// silence (the recording's floor, -1.5 or above): that is what Whisper pads a
    /// window with.
    pub fn pad_or_trim(&self, length: usize) -> Features {
        self.frames_padded(0..length, length)
    }

    /// Frames `range` (clipped to the frames there are), followed by zero frames up to
    /// `length` frames in all.
    fn frames_padded(&self, range: Range<usize>, length: usize) -> Features {
        let start = range.start.min(self.n_frames);
        let end = range.end.clamp(start, self.n_frames);
        let taken = (end - start).min(length);
        let mut data = vec![0.0; self.n_mels * length];
        for (out, row) in
            data.chunks_exact_mut(length.max(1)).zip(self.data.chunks_exact(self.n_frames.max(1)))
        {
            out[..taken].copy_from_slice(&row[start..start + taken]);
        }
        Features { n_mels: self.n_mels, n_frames: length, data }
    }
}

/// The features of a whole recording as Whisper's `transcribe()` builds them: the
/// spectrogram of the audio followed by 30 s of zero samples, normalised as one piece.
///
/// Why the padding: the last frames of the audio then see zeros past its end instead
/// of a reflection of it, exactly as in training, and the 80 dB floor is taken over
/// the whole recording, so every window of a file is normalised alike. Windows are
/// cut from it with [`Spectrogram::window`] (decoding) and [`Spectrogram::head`]
/// (language detection), the two ways `transcribe()` does.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrogram {
    features: Features,
    content_frames: usize,
}

impl Spectrogram {
    /// All frames: the audio's, then [`N_FRAMES`] frames of the padding.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The frames that hold audio (Whisper's `content_frames`): one per full hop of
    /// samples.
    pub fn content_frames(&self) -> usize {
        self.content_frames
    }

    /// The 30-second encoder input at frame `seek`, as `transcribe()` cuts it:
    /// `min(N_FRAMES, content_frames - seek, end - seek)` frames of audio, then zero
    /// frames up to [`N_FRAMES`]. `end` is the end of the clip being transcribed; pass
    /// [`Spectrogram::content_frames`] for the whole recording.
    pub fn window(&self, seek: usize, end: usize) -> Features {
        let end = end.min(self.content_frames).min(seek.saturating_add(N_FRAMES));
        self.features.frames_padded(seek..end.max(seek), N_FRAMES)
    }

    /// The first [`N_FRAMES`] frames, padding frames included (not zeros): the input
    /// `transcribe()` detects the language from.
    pub fn head(&self) -> Features {
        self.features.pad_or_trim(N_FRAMES)
    }
}

/// One mel filter: its weights are zero outside `first_bin..first_bin + weights.len()`.
#[derive(Debug, Clone)]
struct MelFilter {
    first_bin: usize,
    weights: Vec<f32>,
}

/// Whisper's front end for one mel bin count: the window, the filter bank and the FFT
/// plan are made once and shared by every call. It is `Send + Sync`; each call
/// allocates its own small scratch buffers.
pub struct MelFrontEnd {
    n_mels: usize,
    window: Vec<f32>,
    filters: Vec<MelFilter>,
    fft: Arc<dyn Fft<f32>>,
}

impl fmt::Debug for MelFrontEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MelFrontEnd").field("n_mels", &self.n_mels).finish_non_exhaustive()
    }
}

impl MelFrontEnd {
    /// The front end for a model with `n_mels` bins: 80, or 128 for large-v3.
    pub fn new(n_mels: usize) -> Result<MelFrontEnd, UnsupportedMelBins> {
        if n_mels != 80 && n_mels != 128 {
            return Err(UnsupportedMelBins { n_mels });
        }
        let filters = mel_filter_bank(n_mels)
            .chunks_exact(N_FREQS)
            .map(|row| {
                // The triangles are a few bins wide: skipping their zeros makes the
                // projection about ten times cheaper than a dense product, and adding
                // zeros changes no sum.
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(first, |i| i + 1);
                MelFilter { first_bin: first, weights: row[first..last].to_vec() }
            })
            .collect();
        Ok(MelFrontEnd {
            n_mels,
            window: hann_window(),
            filters,
            fft: FftPlanner::new().plan_fft_forward(N_FFT),
        })
    }

    /// The number of mel bins this front end produces.
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Whisper's `log_mel_spectrogram(audio, n_mels)`: `samples.len() / HOP_LENGTH`
    /// frames. Input shorter than one hop gives no frames.
    ///
    /// For transcription use [`MelFrontEnd::spectrogram`], which pads the audio the
    /// way Whisper's `transcribe()` does.
    pub fn log_mel(&self, samples: &[f32]) -> Features {
        self.log_mel_padded(samples, 0)
    }

    /// Whisper's `log_mel_spectrogram(audio, n_mels, padding)`: the audio followed by
    /// `padding` zero samples (not copied), `(samples.len() + padding) / HOP_LENGTH`
    /// frames.
    ///
    /// torch refuses to reflect-pad a signal of 200 samples or fewer; here such a
    /// signal is reflected repeatedly, as numpy's `pad(mode="reflect")` does, so short
    /// input still gives well-defined features.
    pub fn log_mel_padded(&self, samples: &[f32], padding: usize) -> Features {
        let len = samples.len() + padding;
        // torch's centred STFT has `1 + len / HOP_LENGTH` frames and Whisper drops the
        // last one.
        let n_frames = len / HOP_LENGTH;
        let mut data = vec![0.0f32; self.n_mels * n_frames];

        let mut frame = [0.0f32; N_FFT];
        let mut spectrum = vec![Complex::new(0.0f32, 0.0); N_FFT];
        let mut scratch = vec![Complex::new(0.0f32, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = [0.0f32; N_FREQS];
        let mut max = f32::NEG_INFINITY;
        for t in 0..n_frames {
            fill_frame(samples, len, t, &mut frame);
            if frame.iter().all(|&x| x == 0.0) {
                // The FFT of zeros is exactly zero: padding costs no FFTs.
                power.fill(0.0);
            } else {
                for ((c, &x), &w) in spectrum.iter_mut().zip(&frame).zip(&self.window) {
                    *c = Complex::new(x * w, 0.0);
                }
                self.fft.process_with_scratch(&mut spectrum, &mut scratch);
                for (p, c) in power.iter_mut().zip(&spectrum) {
                    *p = c.norm_sqr();
                }
            }
            for (m, filter) in self.filters.iter().enumerate() {
                let bins = &power[filter.first_bin..filter.first_bin + filter.weights.len()];
                let mel: f32 = filter.weights.iter().zip(bins).map(|(w, p)| w * p).sum();
                let log = mel.max(LOG_CLAMP).log10();
                max = max.max(log);
                data[m * n_frames + t] = log;
            }
        }

        let floor = max - DYNAMIC_RANGE;
        for v in &mut data {
            *v = (v.max(floor) + 4.0) / 4.0;
        }
        Features { n_mels: self.n_mels, n_frames, data }
    }

    /// The features of a whole recording as Whisper's `transcribe()` computes them:
    /// the audio with [`N_SAMPLES`] zero samples after it. See [`Spectrogram`].
    pub fn spectrogram(&self, samples: &[f32]) -> Spectrogram {
        Spectrogram {
            features: self.log_mel_padded(samples, N_SAMPLES),
            content_frames: samples.len() / HOP_LENGTH,
        }
    }
}

/// `torch.hann_window(N_FFT)`: periodic (the denominator is `N_FFT`, not `N_FFT - 1`),
/// so that overlapping windows sum to a constant.
fn hann_window() -> Vec<f32> {
    (0..N_FFT)
        .map(|n| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32)
        .collect()
}

/// Frame `t` of the centred STFT of `samples` followed by zeros up to `len` samples:
/// signal positions `t * HOP_LENGTH - N_FFT / 2 ..` for `N_FFT` samples, reflected at
/// both ends.
fn fill_frame(samples: &[f32], len: usize, t: usize, frame: &mut [f32; N_FFT]) {
    let centre = t * HOP_LENGTH;
    if let Some(start) = centre.checked_sub(N_FFT / 2) {
        let end = start + N_FFT;
        if end <= samples.len() {
            frame.copy_from_slice(&samples[start..end]);
            return;
        }
        if start >= samples.len() && end <= len {
            frame.fill(0.0);
            return;
        }
    }
    let start = centre as isize - (N_FFT / 2) as isize;
    for (k, x) in frame.iter_mut().enumerate() {
        *x = samples.get(reflect(start + k as isize, len)).copied().unwrap_or(0.0);
    }
}

/// The index that position `i` of a signal of `len` samples, extended by mirroring
/// at both ends without repeating the edge sample (numpy's and torch's "reflect"),
/// reads. Repeats the mirroring for positions more than one length away, as numpy
/// does.
fn reflect(i: isize, len: usize) -> usize {
    if len <= 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let k = i.rem_euclid(period);
    if k < len as isize { k as usize } else { (period - k) as usize }
}

/// The mel filter bank Whisper ships in `assets/mel_filters.npz`:
/// `librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels)` with librosa's defaults
/// (Slaney mel scale, Slaney area normalisation, 0 Hz to 8 kHz), row-major
/// `[n_mels][N_FFT / 2 + 1]`.
///
/// Computed rather than embedded so both sizes come from one short, checkable
/// recipe. The arithmetic follows librosa's step by step, in float64, including its
/// two roundings to float32 (the triangle weights are stored into a float32 array
/// before the normalisation multiplies them), so the result agrees with the shipped
/// file to the last bit or so.
pub fn mel_filter_bank(n_mels: usize) -> Vec<f32> {
    let sr = f64::from(SAMPLE_RATE);
    // np.fft.rfftfreq(n=N_FFT, d=1.0 / sr)
    let val = 1.0 / (N_FFT as f64 * (1.0 / sr));
    let fft_freqs: Vec<f64> = (0..N_FREQS).map(|k| k as f64 * val).collect();

    // mel_frequencies(n_mels + 2, fmin=0, fmax=sr / 2): np.linspace on the mel scale.
    let (min_mel, max_mel) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let n_points = n_mels + 2;
    let step = (max_mel - min_mel) / (n_points - 1) as f64;
    let mel_f: Vec<f64> = (0..n_points)
        .map(|i| if i == n_points - 1 { max_mel } else { i as f64 * step + min_mel })
        .map(mel_to_hz)
        .collect();

    let mut weights = Vec::with_capacity(n_mels * N_FREQS);
    for i in 0..n_mels {
        let (fdiff_lo, fdiff_hi) = (mel_f[i + 1] - mel_f[i], mel_f[i + 2] - mel_f[i + 1]);
        let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        weights.extend(fft_freqs.iter().map(|&f| {
            let lower = -(mel_f[i] - f) / fdiff_lo;
            let upper = (mel_f[i + 2] - f) / fdiff_hi;
            let triangle = 0.0f64.max(lower.min(upper)) as f32;
            (f64::from(triangle) * enorm) as f32
        }));
    }
    weights
}

// librosa's Slaney mel scale: linear below 1 kHz, logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ { MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step() } else { hz / F_SP }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL { MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp() } else { F_SP * mel }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn front_end() -> MelFrontEnd {
        MelFrontEnd::new(80).expect("80 bins")
    }

    fn tone(n: usize, hz: f32) -> Vec<f32> {
        (0..n).map(|i| 0.5 * (std::f32::consts::TAU * hz * i as f32 / SAMPLE_RATE as f32).sin()).collect()
    }

    #[test]
    fn only_whisper_bin_counts_are_accepted() {
        assert_eq!(MelFrontEnd::new(128).expect("128").n_mels(), 128);
        assert_eq!(MelFrontEnd::new(64).expect_err("64"), UnsupportedMelBins { n_mels: 64 });
    }

    #[test]
    fn empty_and_sub_hop_input_give_no_frames() {
        let mel = front_end();
        for n in [0, 1, HOP_LENGTH - 1] {
            let f = mel.log_mel(&vec![0.1; n]);
            assert_eq!((f.n_mels(), f.n_frames(), f.as_slice().len()), (80, 0, 0), "{n} samples");
        }
    }

    #[test]
    fn input_shorter_than_the_window_still_gives_finite_frames() {
        // 170 and 399 samples: shorter than the 200-sample reflection and the window.
        for n in [170, 399] {
            let f = front_end().log_mel(&tone(n, 440.0));
            assert_eq!(f.n_frames(), n / HOP_LENGTH);
            assert!(f.as_slice().iter().all(|v| v.is_finite()), "{n} samples");
        }
    }

    #[test]
    fn thirty_seconds_are_exactly_one_window() {
        let samples = tone(N_SAMPLES, 440.0);
        let mel = front_end();
        assert_eq!(mel.log_mel(&samples).n_frames(), N_FRAMES);
        let spec = mel.spectrogram(&samples);
        assert_eq!((spec.content_frames(), spec.features().n_frames()), (N_FRAMES, 2 * N_FRAMES));
        let window = spec.window(0, spec.content_frames());
        assert_eq!(window.as_slice(), spec.features().pad_or_trim(N_FRAMES).as_slice());
    }

    #[test]
    fn silence_is_the_floor_everywhere() {
        // log10(1e-10) = -10, the maximum too, and (-10 + 4) / 4 = -1.5.
        let f = front_end().log_mel(&[0.0; 16_000]);
        assert_eq!(f.n_frames(), 100);
        assert!(f.as_slice().iter().all(|&v| v == -1.5));
    }

    #[test]
    fn a_tone_peaks_in_the_mel_bin_around_its_frequency() {
        let f = front_end().log_mel(&tone(16_000, 1000.0));
        let loudest = (0..80).max_by(|&a, &b| f.row(a)[50].total_cmp(&f.row(b)[50])).expect("bins");
        // 1 kHz is where the Slaney scale turns logarithmic: mel 15 of 82 points.
        let centre = |i: usize| mel_to_hz((i + 1) as f64 * hz_to_mel(8000.0) / 81.0);
        assert!(centre(loudest - 1) < 1000.0 && 1000.0 < centre(loudest + 1), "bin {loudest}");
    }

    #[test]
    fn windows_are_padded_with_zero_frames_and_head_with_padding_frames() {
        let samples = tone(5 * SAMPLE_RATE as usize, 440.0);
        let spec = front_end().spectrogram(&samples);
        assert_eq!(spec.content_frames(), 500);

        let window = spec.window(100, spec.content_frames());
        assert_eq!(window.n_frames(), N_FRAMES);
        for m in [0, 40, 79] {
            assert_eq!(&window.row(m)[..400], &spec.features().row(m)[100..500]);
            assert!(window.row(m)[400..].iter().all(|&v| v == 0.0));
        }
        // A clip end before the content end shortens the window.
        assert!(spec.window(100, 300).row(0)[200..].iter().all(|&v| v == 0.0));
        // Past the end: nothing but zeros.
        assert!(spec.window(600, spec.content_frames()).as_slice().iter().all(|&v| v == 0.0));

        let head = spec.head();
        assert_eq!(head.as_slice(), spec.features().pad_or_trim(N_FRAMES).as_slice());
        // Frames from 502 on see nothing of the audio: they are the floor, not zeros.
        let floor = spec.features().as_slice().iter().copied().fold(f32::INFINITY, f32::min);
        assert!(floor < 0.0, "floor {floor}");
        assert!((0..80).all(|m| head.row(m)[502..].iter().all(|&v| v == floor)));
    }

    #[test]
    fn reflection_matches_numpy() {
        // np.pad([0, 1, 2], 5, mode="reflect") == [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]
        let got: Vec<usize> = (-5..8).map(|i| reflect(i, 3)).collect();
        assert_eq!(got, [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]);
        assert!((-3..4).all(|i| reflect(i, 1) == 0));
    }

    #[test]
    fn the_hann_window_is_periodic() {
        let w = hann_window();
        assert_eq!(w[0], 0.0);
        assert_eq!(w[N_FFT / 2], 1.0);
        assert!((w[1] - w[N_FFT - 1]).abs() < 1e-7, "symmetric about N_FFT / 2, not (N_FFT - 1) / 2");
    }
}
