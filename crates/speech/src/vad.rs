//! Voice-activity detection with Silero VAD (v6, ONNX), run through ONNX Runtime.
//!
//! Why: Whisper spends the same time on a 30 s window of silence or music as on one
//! of speech, and on such windows it is prone to hallucinate ("Thank you for
//! watching."). The transcription loop asks this module where speech is and skips
//! the long stretches without it.
//!
//! What: Silero scores each 32 ms frame (512 samples at 16 kHz) with a speech
//! probability; a small state machine turns those scores into speech spans, with
//! hysteresis (enter at `threshold`, leave below `threshold - 0.15`), a minimum
//! silence before a span is closed, optional limits on span length, and padding.
//! Both halves follow the reference Python package (`silero-vad` 6.2.3,
//! `OnnxWrapper` and `get_speech_timestamps`) so that its spans and ours agree
//! sample for sample; the defaults are faster-whisper's, tuned to skip only long
//! silences (see [`VadOptions`]).
//!
//! Audio arrives from ffmpeg in chunks and may be hours long, so detection is a
//! stream: [`SpeechDetector::push`] takes any number of samples and hands back the
//! spans that can no longer change. Memory is bounded by a few frames plus, only
//! when `max_speech_s` is set, one entry per pause inside the current span; no
//! per-frame probabilities are kept.
//!
//! Units: every position is a sample index at 16 kHz mono ([`SAMPLE_RATE`]),
//! counted from the first sample pushed; spans are half-open `[start, end)`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use babelcast_core::{ErrorCode, Millis};
use babelcast_models::{FETCH_COMMAND, ModelError, ModelsDir};
use ort::environment::Environment;
use ort::session::Session;
use ort::value::{Tensor, TensorRef};

/// The sample rate the detector works at: 16 kHz mono, what Whisper takes too.
pub const SAMPLE_RATE: u32 = 16_000;

/// Samples per frame: Silero v6 scores 512-sample (32 ms) frames at 16 kHz.
pub const FRAME_SAMPLES: usize = 512;

/// Samples of the previous frame that Silero sees before each frame; without them
/// the model's probabilities drift from the reference.
const CONTEXT_SAMPLES: usize = 64;

/// The recurrent state Silero carries from frame to frame: `[2, batch = 1, 128]`.
const STATE_LEN: usize = 2 * 128;

/// Samples per millisecond at [`SAMPLE_RATE`]: every whole-millisecond option is a
/// whole number of samples.
const SAMPLES_PER_MS: u64 = 16;

/// When a span must be cut for length, only pauses longer than this are candidate
/// cut points (the reference's `min_silence_at_max_speech`).
const MIN_PAUSE_AT_MAX_SPEECH_MS: u64 = 98;

/// The model folder of Silero VAD in the models directory.
pub const VAD_MODEL: &str = "silero-vad";
const VAD_FILE: &str = "silero_vad.onnx";
/// The model folder of the ONNX Runtime library that runs it.
pub const RUNTIME_MODEL: &str = "onnxruntime";
const RUNTIME_FILE: &str = "libonnxruntime.so.1.31.1";

/// How speech probabilities become spans.
///
/// The defaults are faster-whisper's `VadOptions`, not the Silero package's: for
/// captioning we only want to skip *long* silences (2 s or more) and keep generous
/// padding, so Whisper still hears breaths, short pauses and word onsets.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VadOptions {
    /// A frame whose probability is at or above this starts (or continues) speech.
    pub threshold: f64,
    /// Inside speech, a frame below this counts as silence. `None`: the reference's
    /// `max(threshold - 0.15, 0.01)`; the gap between the two avoids flapping.
    pub neg_threshold: Option<f64>,
    /// Spans closed by silence that are not longer than this are dropped.
    pub min_speech_ms: u32,
    /// Silence must last this long before a span ends; shorter pauses stay inside.
    pub min_silence_ms: u32,
    /// Each span is widened by this much on both sides (less where two spans are
    /// closer than twice this: then the gap is split between them).
    pub speech_pad_ms: u32,
    /// Spans longer than this are cut, at the longest pause over 98 ms inside them
    /// if there is one, else hard. `None`: no limit.
    pub max_speech_s: Option<f64>,
}

impl Default for VadOptions {
    fn default() -> Self {
        VadOptions {
            threshold: 0.5,
            neg_threshold: None,
            min_speech_ms: 0,
            min_silence_ms: 2000,
            speech_pad_ms: 400,
            max_speech_s: None,
        }
    }
}

impl VadOptions {
    /// The exit threshold actually used.
    pub fn effective_neg_threshold(&self) -> f64 {
        self.neg_threshold.unwrap_or_else(|| (self.threshold - 0.15).max(0.01))
    }

    fn validate(&self) -> Result<(), VadError> {
        let invalid = |reason: String| Err(VadError::InvalidOptions { reason });
        if !(0.0..=1.0).contains(&self.threshold) {
            return invalid(format!("threshold must be between 0 and 1, not {}", self.threshold));
        }
        let neg = self.effective_neg_threshold();
        if !(0.0..=self.threshold).contains(&neg) {
            return invalid(format!("neg_threshold must be between 0 and threshold, not {neg}"));
        }
        if let Some(max) = self.max_speech_s
            && !(max.is_finite() && max > 0.0)
        {
            return invalid(format!("max_speech_s must be a positive number of seconds, not {max}"));
        }
        Ok(())
    }
}

/// A stretch of speech, as sample indices at 16 kHz: `[start, end)`, padding
/// included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct SpeechSpan {
    /// The first sample.
    pub start: u64,
    /// One past the last sample.
    pub end: u64,
}

impl SpeechSpan {
    /// Where it starts on the timeline (rounded down to the millisecond).
    pub fn start_time(&self) -> Millis {
        Millis(self.start / SAMPLES_PER_MS)
    }

    /// Where it ends on the timeline (rounded up to the millisecond, so the span
    /// in milliseconds still covers every sample).
    pub fn end_time(&self) -> Millis {
        Millis(self.end.div_ceil(SAMPLES_PER_MS))
    }

    /// Its length in samples.
    pub fn samples(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
}

/// Why voice-activity detection could not run.
#[derive(Debug, thiserror::Error)]
pub enum VadError {
    /// The model or the ONNX Runtime library is missing, damaged or unknown.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The ONNX Runtime library is there but could not be loaded.
    #[error(
        "could not load ONNX Runtime from {}: {message}; run `{FETCH_COMMAND}` to fetch it again",
        path.display()
    )]
    Runtime {
        /// The library file.
        path: PathBuf,
        /// What the loader said.
        message: String,
    },
    /// ONNX Runtime refused the model file, or it is not the Silero v6 graph.
    #[error(
        "ONNX Runtime could not load the Silero VAD model {}: {message}; run `{FETCH_COMMAND}` to fetch it again",
        path.display()
    )]
    Load {
        /// The model file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Running the model on a frame failed.
    #[error("Silero VAD failed on the frame at sample {sample}: {message}")]
    Inference {
        /// The first sample of the frame.
        sample: u64,
        /// ONNX Runtime's words.
        message: String,
    },
    /// The options make no sense.
    #[error("invalid VAD options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
}

impl ErrorCode for VadError {
    fn code(&self) -> &'static str {
        match self {
            VadError::Model(e) => e.code(),
            VadError::Runtime { .. } => "onnxruntime_load_failed",
            VadError::Load { .. } => "vad_load_failed",
            VadError::Inference { .. } => "vad_inference_failed",
            VadError::InvalidOptions { .. } => "vad_options_invalid",
        }
    }

    fn is_client_error(&self) -> bool {
        match self {
            VadError::Model(e) => e.is_client_error(),
            VadError::InvalidOptions { .. } => true,
            VadError::Runtime { .. } | VadError::Load { .. } | VadError::Inference { .. } => false,
        }
    }
}

/// Loads ONNX Runtime from `library` (once per process, shared with the voices).
fn runtime(library: &Path) -> Result<Environment, VadError> {
    babelcast_onnx::environment(library)
        .map_err(|message| VadError::Runtime { path: library.to_owned(), message })
}

/// The Silero VAD model, loaded and ready.
///
/// Cloning is cheap and clones share one ONNX Runtime session; detectors made from
/// it take turns on that session frame by frame (a frame takes well under a
/// millisecond). Each detector carries its own recurrent state, so streams never
/// mix.
#[derive(Clone)]
pub struct Vad {
    model: Arc<Mutex<Model>>,
}

impl fmt::Debug for Vad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vad").finish_non_exhaustive()
    }
}

/// The session and the one input that never changes.
struct Model {
    session: Session,
    /// The `sr` input: a scalar int64 16000.
    sample_rate: Tensor<i64>,
}

impl Vad {
    /// Loads Silero VAD and ONNX Runtime from the models directory, after the quick
    /// check of their files; a missing file fails with its path and the fetch
    /// command.
    pub fn load(models: &ModelsDir) -> Result<Vad, VadError> {
        let model_dir = models.require(VAD_MODEL)?;
        let runtime_dir = models.require(RUNTIME_MODEL)?;
        Vad::load_files(&model_dir.join(VAD_FILE), &runtime_dir.join(RUNTIME_FILE))
    }

    /// Loads a Silero VAD v6 ONNX file with the given ONNX Runtime library.
    pub fn load_files(model: &Path, library: &Path) -> Result<Vad, VadError> {
        let env = runtime(library)?;
        let failed = |message: String| VadError::Load { path: model.to_owned(), message };
        // One thread each, like the reference: a frame is tiny, so more threads only
        // add synchronisation, and the cores are better left to Whisper.
        let build = || -> ort::Result<Session> {
            Session::builder(&env)?.with_intra_threads(1)?.with_inter_threads(1)?.commit_from_file(model)
        };
        let session = build().map_err(|e| failed(e.to_string()))?;

        // Inputs are passed by position in `Model::score`; make sure the positions
        // mean what we think, so another model fails here and not with odd numbers.
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        if inputs != ["input", "state", "sr"] || outputs != ["output", "stateN"] {
            return Err(failed(format!(
                "inputs {inputs:?} and outputs {outputs:?} are not Silero v6's \
                 [\"input\", \"state\", \"sr\"] and [\"output\", \"stateN\"]"
            )));
        }
        let sample_rate =
            Tensor::from_array(((), vec![i64::from(SAMPLE_RATE)])).map_err(|e| failed(e.to_string()))?;
        Ok(Vad { model: Arc::new(Mutex::new(Model { session, sample_rate })) })
    }

    /// A detector for one stream of 16 kHz mono samples.
    pub fn detector(&self, options: VadOptions) -> Result<SpeechDetector, VadError> {
        options.validate()?;
        Ok(SpeechDetector {
            vad: self.clone(),
            segmenter: Segmenter::new(&options),
            state: [0.0; STATE_LEN],
            window: [0.0; CONTEXT_SAMPLES + FRAME_SAMPLES],
            filled: 0,
            pushed: 0,
        })
    }

    /// The speech spans of a whole signal of 16 kHz mono samples in `[-1, 1]`.
    pub fn speech_spans(&self, samples: &[f32], options: &VadOptions) -> Result<Vec<SpeechSpan>, VadError> {
        let mut detector = self.detector(*options)?;
        let mut spans = detector.push(samples)?;
        spans.extend(detector.finish()?);
        Ok(spans)
    }
}

impl Model {
    /// Runs one frame (`window` = context + frame) and updates `state` in place;
    /// returns the speech probability.
    fn score(
        &mut self,
        window: &[f32; CONTEXT_SAMPLES + FRAME_SAMPLES],
        state: &mut [f32; STATE_LEN],
    ) -> ort::Result<f32> {
        let Model { session, sample_rate } = self;
        let input = TensorRef::from_array_view(([1usize, CONTEXT_SAMPLES + FRAME_SAMPLES], &window[..]))?;
        let state_in = TensorRef::from_array_view(([2usize, 1, 128], &state[..]))?;
        let outputs = session.run(ort::inputs![input, state_in, &*sample_rate])?;
        let (_, probability) = outputs[0].try_extract_tensor::<f32>()?;
        let (_, next_state) = outputs[1].try_extract_tensor::<f32>()?;
        let probability = *probability.first().ok_or_else(|| ort::Error::new("empty `output`"))?;
        if next_state.len() != STATE_LEN {
            return Err(ort::Error::new(format!(
                "`stateN` has {} values, not {STATE_LEN}",
                next_state.len()
            )));
        }
        state.copy_from_slice(next_state);
        Ok(probability)
    }
}

/// Finds speech in one stream of 16 kHz mono samples pushed in chunks of any size.
///
/// Spans come back as soon as they are final: once the silence after a span has
/// lasted both `min_silence_ms` and twice `speech_pad_ms` (its end padding depends
/// on where the next span starts), or at [`SpeechDetector::finish`]. With the
/// defaults that is about 2 s after the speech stops. The spans of a stream are the
/// same however it is cut into chunks.
///
/// After an error the detector is in an unknown state: drop it.
pub struct SpeechDetector {
    vad: Vad,
    segmenter: Segmenter,
    /// Silero's recurrent state, carried from frame to frame.
    state: [f32; STATE_LEN],
    /// The last [`CONTEXT_SAMPLES`] of the previous frame (zeros at first),
    /// then the frame being filled.
    window: [f32; CONTEXT_SAMPLES + FRAME_SAMPLES],
    /// How many samples of the current frame are in `window`.
    filled: usize,
    /// Samples pushed so far.
    pushed: u64,
}

impl fmt::Debug for SpeechDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpeechDetector")
            .field("pushed", &self.pushed)
            .field("segmenter", &self.segmenter)
            .finish_non_exhaustive()
    }
}

impl SpeechDetector {
    /// Feeds the next samples of the stream (16 kHz mono, `[-1, 1]`) and returns
    /// the spans that became final, in order.
    pub fn push(&mut self, mut samples: &[f32]) -> Result<Vec<SpeechSpan>, VadError> {
        let mut done = Vec::new();
        while !samples.is_empty() {
            let take = (FRAME_SAMPLES - self.filled).min(samples.len());
            let at = CONTEXT_SAMPLES + self.filled;
            self.window[at..at + take].copy_from_slice(&samples[..take]);
            self.filled += take;
            self.pushed += take as u64;
            samples = &samples[take..];
            if self.filled == FRAME_SAMPLES {
                self.run_frame(&mut done)?;
            }
        }
        Ok(done)
    }

    /// Ends the stream and returns the remaining spans. A last partial frame is
    /// scored padded with silence, as the reference does.
    pub fn finish(mut self) -> Result<Vec<SpeechSpan>, VadError> {
        let mut done = Vec::new();
        if self.filled > 0 {
            self.window[CONTEXT_SAMPLES + self.filled..].fill(0.0);
            self.run_frame(&mut done)?;
        }
        self.segmenter.finish(self.pushed, &mut done);
        Ok(done)
    }

    /// How many samples have been pushed.
    pub fn samples_pushed(&self) -> u64 {
        self.pushed
    }

    /// The earliest sample that a span not returned yet can include. A caller
    /// that gates audio by speech never needs the samples before it again.
    pub fn keep_from(&self) -> u64 {
        let s = &self.segmenter;
        // A span may start at the next frame, padded back (and a close may move a
        // start back by at most one pad).
        let mut earliest = s.next_frame.saturating_sub(s.pad);
        if let Some(current) = s.current {
            earliest = earliest.min(current.saturating_sub(s.pad));
        }
        if let Some(pending) = s.pending {
            earliest = earliest.min(pending.start);
        }
        earliest
    }

    fn run_frame(&mut self, done: &mut Vec<SpeechSpan>) -> Result<(), VadError> {
        let probability = {
            let mut model = self.vad.model.lock().unwrap_or_else(PoisonError::into_inner);
            model.score(&self.window, &mut self.state).map_err(|e| VadError::Inference {
                sample: self.segmenter.next_frame,
                message: e.to_string(),
            })?
        };
        // The next frame sees the end of this one as its context.
        self.window.copy_within(FRAME_SAMPLES.., 0);
        self.filled = 0;
        self.segmenter.frame(probability, self.pushed, done);
        Ok(())
    }
}

/// Frame probabilities to speech spans: the reference's `get_speech_timestamps`
/// state machine (with its default of cutting over-long spans at the longest
/// pause), made incremental. The reference pads all spans at the end, once every
/// span is known; here the last closed span waits in `pending` until the start of
/// the next kept span is known or can no longer come close enough to matter.
#[derive(Debug)]
struct Segmenter {
    threshold: f64,
    neg_threshold: f64,
    min_speech: u64,
    min_silence: u64,
    pad: u64,
    /// The reference's `max_speech_samples`, a float it compares against; infinite
    /// without a limit.
    max_speech: f64,
    min_pause_at_max_speech: u64,
    /// First sample of the next frame to be scored.
    next_frame: u64,
    /// Start of the span being read, while in speech.
    current: Option<u64>,
    /// Where the silence now running inside the current span began.
    silence_start: Option<u64>,
    /// Pauses inside the current span, `(start, length)`, as cut points for
    /// `max_speech`; only recorded when there is a limit.
    pauses: Vec<(u64, u64)>,
    /// The last closed span, its start already padded, its end not yet.
    pending: Option<Pending>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    start: u64,
    raw_end: u64,
}

impl Segmenter {
    fn new(options: &VadOptions) -> Segmenter {
        let pad = u64::from(options.speech_pad_ms) * SAMPLES_PER_MS;
        let max_speech = match options.max_speech_s {
            Some(s) => f64::from(SAMPLE_RATE) * s - FRAME_SAMPLES as f64 - 2.0 * pad as f64,
            None => f64::INFINITY,
        };
        Segmenter {
            threshold: options.threshold,
            neg_threshold: options.effective_neg_threshold(),
            min_speech: u64::from(options.min_speech_ms) * SAMPLES_PER_MS,
            min_silence: u64::from(options.min_silence_ms) * SAMPLES_PER_MS,
            pad,
            max_speech,
            min_pause_at_max_speech: MIN_PAUSE_AT_MAX_SPEECH_MS * SAMPLES_PER_MS,
            next_frame: 0,
            current: None,
            silence_start: None,
            pauses: Vec::new(),
            pending: None,
        }
    }

    /// Takes the probability of the next frame. `known_len` is how many samples
    /// the stream has at least (it bounds padding, as the stream's end does).
    fn frame(&mut self, probability: f32, known_len: u64, done: &mut Vec<SpeechSpan>) {
        // Compared as f64, as the reference does after `.item()`; an f32 threshold
        // of 0.35 is not the same number.
        let p = f64::from(probability);
        let at = self.next_frame;
        self.next_frame += FRAME_SAMPLES as u64;
        self.step(p, at, done);
        self.release_if_settled(known_len, done);
    }

    fn step(&mut self, p: f64, at: u64, done: &mut Vec<SpeechSpan>) {
        let speech = p >= self.threshold;

        // Speech again after a pause inside a span: remember the pause as a cut point.
        if speech && let Some(silence_start) = self.silence_start.take() {
            let length = at - silence_start;
            if length > self.min_pause_at_max_speech && self.max_speech.is_finite() {
                self.pauses.push((silence_start, length));
            }
        }

        let Some(start) = self.current else {
            if speech {
                self.current = Some(at);
            }
            return;
        };

        if (at - start) as f64 > self.max_speech {
            // Too long: cut at the longest pause (the first of equals), and go on
            // with the speech after it; with no pause, cut here and start afresh.
            let longest = self.pauses.iter().copied().reduce(|a, b| if b.1 > a.1 { b } else { a });
            self.silence_start = None;
            self.pauses.clear();
            match longest {
                Some((pause_start, length)) => {
                    self.close(start, pause_start, done);
                    self.current = Some(pause_start + length);
                }
                None => {
                    self.close(start, at, done);
                    self.current = None;
                    return;
                }
            }
        }

        if p < self.neg_threshold
            && let Some(start) = self.current
        {
            let silence_start = *self.silence_start.get_or_insert(at);
            if at - silence_start >= self.min_silence {
                if silence_start - start > self.min_speech {
                    self.close(start, silence_start, done);
                }
                self.current = None;
                self.silence_start = None;
                self.pauses.clear();
            }
        }
    }

    /// A span `[start, end)` before padding is final: pad the previous one, whose
    /// end padding depended on this start, and keep this one pending.
    fn close(&mut self, start: u64, end: u64, done: &mut Vec<SpeechSpan>) {
        let start = match self.pending.take() {
            None => start.saturating_sub(self.pad),
            Some(prev) => {
                let gap = start.saturating_sub(prev.raw_end);
                // Closer than two pads: split the gap between the two spans.
                let share = if gap < 2 * self.pad { gap / 2 } else { self.pad };
                done.push(SpeechSpan { start: prev.start, end: prev.raw_end + share });
                start.saturating_sub(share)
            }
        };
        self.pending = Some(Pending { start, raw_end: end });
    }

    /// Emits the pending span once no later span can start within two pads of its
    /// end, so its full end padding is certain.
    fn release_if_settled(&mut self, known_len: u64, done: &mut Vec<SpeechSpan>) {
        let Some(prev) = self.pending else { return };
        // A later kept span starts no earlier than the span being read, or than the
        // next frame when none is.
        let earliest_next = self.current.unwrap_or(self.next_frame);
        if earliest_next.saturating_sub(prev.raw_end) >= 2 * self.pad {
            done.push(SpeechSpan { start: prev.start, end: (prev.raw_end + self.pad).min(known_len) });
            self.pending = None;
        }
    }

    /// The stream ended after `len` samples.
    fn finish(&mut self, len: u64, done: &mut Vec<SpeechSpan>) {
        if let Some(start) = self.current.take()
            && len.saturating_sub(start) > self.min_speech
        {
            self.close(start, len, done);
        }
        if let Some(prev) = self.pending.take() {
            done.push(SpeechSpan { start: prev.start, end: (prev.raw_end + self.pad).min(len) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the segmenter over probabilities for a stream of `len` samples.
    fn spans(probs: &[f32], len: u64, options: &VadOptions) -> Vec<(u64, u64)> {
        let mut seg = Segmenter::new(options);
        let mut done = Vec::new();
        for (i, &p) in probs.iter().enumerate() {
            let known = ((i as u64 + 1) * FRAME_SAMPLES as u64).min(len);
            seg.frame(p, known, &mut done);
        }
        seg.finish(len, &mut done);
        done.iter().map(|s| (s.start, s.end)).collect()
    }

    fn frames(pattern: &[(f32, usize)]) -> Vec<f32> {
        pattern.iter().flat_map(|&(p, n)| std::iter::repeat_n(p, n)).collect()
    }

    #[test]
    fn the_reference_defaults_pad_and_split_close_gaps() {
        // Silero's own defaults: 250 ms min speech, 100 ms min silence, 30 ms pad.
        let options = VadOptions {
            threshold: 0.5,
            neg_threshold: None,
            min_speech_ms: 250,
            min_silence_ms: 100,
            speech_pad_ms: 30,
            max_speech_s: None,
        };
        // 10 frames of silence, 20 of speech, 5 of silence (160 ms: closes the
        // span), 20 speech, 3 in between (hysteresis keeps speech), 10 speech,
        // then silence to the end.
        let probs = frames(&[(0.1, 10), (0.9, 20), (0.1, 5), (0.8, 20), (0.4, 3), (0.7, 10), (0.0, 30)]);
        let len = probs.len() as u64 * 512;
        // Raw spans: [5120, 15360) and [17920, 34816); the gap of 2560 is more
        // than two pads of 480, so each side gets a full pad.
        assert_eq!(spans(&probs, len, &options), vec![(4640, 15840), (17440, 35296)]);
    }

    #[test]
    fn spans_too_short_are_dropped_and_a_close_pair_shares_its_gap() {
        let options =
            VadOptions { min_speech_ms: 100, min_silence_ms: 0, speech_pad_ms: 100, ..VadOptions::default() };
        // 2 frames of speech (64 ms, dropped), then two spans 2 frames apart:
        // 1024 samples is less than two pads of 1600, so each side gets 512.
        let probs = frames(&[(0.0, 4), (0.9, 2), (0.0, 4), (0.9, 6), (0.0, 2), (0.9, 6), (0.0, 4)]);
        let len = probs.len() as u64 * 512;
        assert_eq!(
            spans(&probs, len, &options),
            vec![(10 * 512 - 1600, 16 * 512 + 512), (17 * 512, 24 * 512 + 1600)]
        );
    }

    #[test]
    fn speech_to_the_end_ends_at_the_stream_end_and_padding_stops_there() {
        let probs = frames(&[(0.0, 100), (0.9, 10)]);
        let len = 100 * 512 + 9 * 512 + 100; // the last frame is partial
        assert_eq!(spans(&probs, len, &VadOptions::default()), vec![(100 * 512 - 6400, len)]);
    }

    #[test]
    fn over_long_speech_is_cut_at_its_longest_pause() {
        let options = VadOptions {
            min_silence_ms: 500,
            speech_pad_ms: 0,
            max_speech_s: Some(3.0),
            ..VadOptions::default()
        };
        // 3 s is 93.75 frames. Pauses of 4 frames (128 ms) and 6 frames (192 ms).
        let probs = frames(&[(0.9, 30), (0.1, 4), (0.9, 30), (0.1, 6), (0.9, 40), (0.0, 70)]);
        let len = probs.len() as u64 * 512;
        // Cut at the 6-frame pause when frame 93 passes the limit: [0, 64 frames),
        // and on from 70 frames; that span closes after 500 ms of silence.
        assert_eq!(spans(&probs, len, &options), vec![(0, 64 * 512), (70 * 512, 110 * 512)]);
    }

    #[test]
    fn over_long_speech_without_a_pause_is_cut_hard() {
        let options = VadOptions { speech_pad_ms: 0, max_speech_s: Some(1.0), ..VadOptions::default() };
        let probs = frames(&[(0.9, 100)]);
        let len = probs.len() as u64 * 512;
        // max_speech_samples = 16000 - 512 = 15488: the cut comes at the first frame
        // past it (frame 31, 15872), and the next span starts at the frame after.
        let got = spans(&probs, len, &options);
        assert_eq!(got[0], (0, 31 * 512));
        assert_eq!(got[1], (32 * 512, 63 * 512));
    }

    #[test]
    fn spans_are_released_once_the_next_cannot_come_close() {
        let options = VadOptions { min_silence_ms: 100, speech_pad_ms: 400, ..VadOptions::default() };
        let mut seg = Segmenter::new(&options);
        let mut done = Vec::new();
        let mut feed = |done: &mut Vec<SpeechSpan>, p: f32, n: usize| {
            for _ in 0..n {
                let known = seg.next_frame + 512;
                seg.frame(p, known, done);
            }
        };
        feed(&mut done, 0.9, 50);
        feed(&mut done, 0.0, 5); // silence from frame 50; closed at frame 54
        assert!(done.is_empty(), "the end padding waits for the next span");
        // Released once the next frame is two pads (12800 samples) past the raw end
        // (frame 50): after frame 74.
        feed(&mut done, 0.0, 19);
        assert!(done.is_empty());
        feed(&mut done, 0.0, 1);
        assert_eq!(done, vec![SpeechSpan { start: 0, end: 50 * 512 + 6400 }]);
    }

    #[test]
    fn options_are_checked() {
        let bad = VadOptions { threshold: 1.5, ..VadOptions::default() };
        let err = bad.validate().expect_err("threshold");
        assert_eq!(err.code(), "vad_options_invalid");
        assert!(err.is_client_error());
        assert!(VadOptions { max_speech_s: Some(0.0), ..VadOptions::default() }.validate().is_err());
        assert!(VadOptions { neg_threshold: Some(0.7), ..VadOptions::default() }.validate().is_err());
        assert_eq!(VadOptions::default().effective_neg_threshold(), 0.35);
    }

    #[test]
    fn a_library_that_is_not_onnx_runtime_fails_with_its_path_and_the_fix() {
        let tmp = tempfile::tempdir().expect("tmp");
        let fake = tmp.path().join("libonnxruntime.so.1.31.1");
        std::fs::write(&fake, b"not a shared library").expect("write");
        match runtime(&fake) {
            // Another test in this binary may have loaded the real library first;
            // then there is nothing left to load and the fake is never opened.
            Ok(_) => {}
            Err(err) => {
                assert_eq!(err.code(), "onnxruntime_load_failed");
                let msg = err.to_string();
                assert!(msg.contains(&fake.display().to_string()), "{msg}");
                assert!(msg.contains(FETCH_COMMAND), "{msg}");
            }
        }
    }

    #[test]
    fn spans_convert_to_milliseconds_covering_every_sample() {
        let span = SpeechSpan { start: 17, end: 33 };
        assert_eq!((span.start_time(), span.end_time(), span.samples()), (Millis(1), Millis(3), 16));
    }
}
