//! The Whisper transcription loop, written here rather than taken from ct2rs's
//! high-level helper (which hard-codes a multilingual prompt, uses another mel front
//! end and loses words past 30 s). It follows the decoding procedure of the original
//! Whisper and of faster-whisper, so accuracy matches theirs on the same model:
//!
//! - audio is read as a stream and cut into 30 s windows starting at `seek`; only
//!   one window plus the unread part of the stream is ever held, so memory does not
//!   grow with the length of the input;
//! - each window is encoded once; language detection, decoding (and its fallbacks)
//!   and word alignment all reuse the encoder output;
//! - the prompt is `<|startofprev|>` + the previous text (context), then
//!   `<|startoftranscript|>`, and for multilingual models the language and the task;
//!   English-only (`.en`) models take `<|startoftranscript|>` alone;
//! - the model's timestamp tokens cut a window into segments, and `seek` moves to the
//!   last complete segment's end, so a word cut by the window edge is decoded again in
//!   the next window rather than lost or repeated;
//! - temperature fallback: a result that is too repetitive (gzip compression ratio
//!   above 2.4) or too unlikely (average log-probability below -1) is decoded again
//!   at rising temperatures; a window whose no-speech probability is high and whose
//!   text is unlikely is skipped as silence; a window that stays repetitive at the
//!   highest temperature is dropped (a hallucination loop, not speech);
//! - with a batch size above 1 the loop in [`crate::batched`] runs instead: the
//!   VAD's stretches of speech packed into windows decoded several at a time;
//! - word timings come from cross-attention alignment (`align`, dynamic time warping
//!   over the alignment heads), with the usual guards on over-long words.

use babelcast_core::Word;
use ct2rs::sys::{Device, StorageView};

use crate::decode::MAX_LENGTH;
use crate::mel::{HOP_LENGTH, MelFrontEnd, N_FRAMES, N_SAMPLES, SAMPLE_RATE};
use crate::vocab::Vocabulary;
use crate::{SpeechError, WhisperModel};

/// Seconds of audio per mel frame.
pub(crate) const SECONDS_PER_FRAME: f64 = HOP_LENGTH as f64 / SAMPLE_RATE as f64;
/// Seconds per timestamp token step (the encoder halves the frame rate).
const TIME_PRECISION: f64 = 0.02;
/// Encoder frames per second, the unit of the alignment path.
pub(crate) const ALIGN_FRAMES_PER_SECOND: f64 = 50.0;
/// The context prompt gets at most half of the decoder's positions.
const MAX_PROMPT_TOKENS: usize = MAX_LENGTH / 2 - 1;
/// -80 dBFS: below this everywhere, a window is silence.
pub(crate) const SILENCE_PEAK: f32 = 1e-4;

/// How to decode.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscribeOptions {
    /// A Whisper language code (`en`, `es`) to force, or None to detect it from the
    /// first window (multilingual models; English-only models are always `en`).
    pub language: Option<String>,
    /// Beam width at temperature 0.
    pub beam_size: usize,
    /// Candidates sampled at each fallback temperature.
    pub best_of: usize,
    /// The temperatures tried in order until a result passes the checks.
    pub temperatures: Vec<f32>,
    /// Above this gzip compression ratio a result is too repetitive.
    pub compression_ratio_threshold: f64,
    /// Below this average log-probability a result is too unlikely.
    pub log_prob_threshold: f64,
    /// Above this no-speech probability (with an unlikely result) a window is silence.
    pub no_speech_threshold: f32,
    /// Give the previous window's text as context (reset after a high-temperature
    /// fallback so a derailed window does not poison the next). Off by default:
    /// measured on LibriVox speech crossing a window boundary, whisper-base made 10
    /// word errors in 142 with context and 3 without; context is also what lets one
    /// hallucination repeat through a long file.
    pub condition_on_previous_text: bool,
    /// Compute word timings.
    pub word_timestamps: bool,
    /// Windows encoded and decoded together. 1 decodes one 30 s window at a time,
    /// seeking to where the last complete segment ended. More packs the source's
    /// stretches of speech ([`SampleSource::join_before`]) into windows of up to
    /// 30 s that are decoded whole and independently, several per CTranslate2 call
    /// (faster; previous-text context does not apply).
    pub batch_size: usize,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        TranscribeOptions {
            language: None,
            beam_size: 5,
            best_of: 5,
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            compression_ratio_threshold: 2.4,
            log_prob_threshold: -1.0,
            no_speech_threshold: 0.6,
            condition_on_previous_text: false,
            word_timestamps: true,
            batch_size: 1,
        }
    }
}

/// Where the samples come from: 16 kHz mono f32, read in pieces.
pub trait SampleSource {
    /// Appends up to `max` samples to `buf`; returns how many, 0 at the end.
    fn read(&mut self, buf: &mut Vec<f32>, max: usize) -> Result<usize, SpeechError>;

    /// The last place in this source's output (a sample index from its start)
    /// after `after` and at or before `limit` where one stretch of speech ends and
    /// the next begins, so that a window cut there cuts no word. `None` when there
    /// is none there, or the source does not know (plain audio).
    fn join_before(&self, after: u64, limit: u64) -> Option<u64> {
        let _ = (after, limit);
        None
    }
}

/// A whole signal already in memory (tests, short clips).
#[derive(Debug)]
pub struct InMemory<'a> {
    samples: &'a [f32],
}

impl<'a> InMemory<'a> {
    /// Reads from these samples.
    pub fn new(samples: &'a [f32]) -> InMemory<'a> {
        InMemory { samples }
    }
}

impl SampleSource for InMemory<'_> {
    fn read(&mut self, buf: &mut Vec<f32>, max: usize) -> Result<usize, SpeechError> {
        let n = max.min(self.samples.len());
        buf.extend_from_slice(&self.samples[..n]);
        self.samples = &self.samples[n..];
        Ok(n)
    }
}

/// A stretch of text the model put between two timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Start, seconds from the beginning of the input.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The text, with Whisper's leading space.
    pub text: String,
    /// Its words with timings (empty without word timestamps).
    pub words: Vec<Word>,
    /// The average log-probability of the window's decoding.
    pub avg_logprob: f64,
    /// The probability the window holds no speech.
    pub no_speech_prob: f32,
    /// The temperature that produced it.
    pub temperature: f32,
}

/// What a transcription found.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcription {
    /// The language code spoken (detected or forced).
    pub language: String,
    /// The detection's probability (1.0 when forced).
    pub language_probability: f32,
    /// The length of the audio read, seconds.
    pub duration: f64,
    /// The segments in time order.
    pub segments: Vec<Segment>,
    /// Windows dropped as hallucinated repetition.
    pub dropped_windows: usize,
}

impl Transcription {
    /// All words in order.
    pub fn words(&self) -> Vec<Word> {
        self.segments.iter().flat_map(|s| s.words.iter().cloned()).collect()
    }

    /// All text.
    pub fn text(&self) -> String {
        self.segments.iter().map(|s| s.text.as_str()).collect::<String>().trim().to_owned()
    }
}

impl WhisperModel {
    /// Transcribes a stream of 16 kHz mono samples. `progress` is called after each
    /// window with the seconds of audio done so far.
    pub fn transcribe(
        &self,
        source: &mut dyn SampleSource,
        options: &TranscribeOptions,
        progress: &mut dyn FnMut(f64),
    ) -> Result<Transcription, SpeechError> {
        // A forced language is checked before any audio is read.
        if let Some(lang) = &options.language {
            if !self.is_multilingual() && lang != "en" {
                return Err(SpeechError::UnknownLanguage { language: lang.clone() });
            }
            self.sot_sequence(lang)?;
        }
        if options.batch_size > 1 {
            return self.transcribe_batched(source, options, progress);
        }
        let vocab = &self.vocab;
        let mel = MelFrontEnd::new(self.n_mels()).map_err(|e| self.error(e.to_string()))?;

        // Samples from absolute index `base` on; the stream past them is unread.
        let mut buffer: Vec<f32> = Vec::with_capacity(2 * N_SAMPLES);
        let mut base: usize = 0;
        let mut ended = false;
        let mut seek: usize = 0; // in mel frames from the start
        let mut language = self.given_language(options);
        let mut segments: Vec<Segment> = Vec::new();
        let mut context: Vec<u32> = Vec::new();
        let mut dropped_windows = 0;

        loop {
            let start_sample = seek * HOP_LENGTH;
            if start_sample > base {
                buffer.drain(..(start_sample - base).min(buffer.len()));
                base = start_sample;
            }
            while !ended && buffer.len() < N_SAMPLES {
                let want = N_SAMPLES - buffer.len();
                if source.read(&mut buffer, want)? == 0 {
                    ended = true;
                }
            }
            let chunk = &buffer[..buffer.len().min(N_SAMPLES)];
            let segment_frames = chunk.len() / HOP_LENGTH;
            // Less than one frame left: nothing a model could hear.
            if segment_frames == 0 {
                break;
            }
            let time_offset = seek as f64 * SECONDS_PER_FRAME;
            let segment_duration = segment_frames as f64 * SECONDS_PER_FRAME;

            // Where the next window starts: past a skipped window, or where decoding
            // says the last complete segment ended.
            let next_seek = 'window: {
                // Digital silence (nothing above -80 dBFS) holds no speech; decoding it
                // costs time and invites the model's stock hallucinations ("You").
                if chunk.iter().all(|s| s.abs() < SILENCE_PEAK) {
                    break 'window seek + segment_frames;
                }

                let features =
                    vec![mel.log_mel_padded(chunk, N_SAMPLES - chunk.len()).pad_or_trim(N_FRAMES).into_vec()];
                let encoded = self.encode(&features)?;

                if language.is_none() {
                    language = Some(self.detect_language(&encoded)?);
                }
                let (lang_code, _) = language.as_ref().expect("set above");
                let sot_sequence = self.sot_sequence(lang_code)?;

                let prompt = self.prompt(&context, &sot_sequence);
                let decoded = self.decode_batch(&encoded, &features, &prompt, options)?.remove(0);

                let silent = decoded.no_speech_prob > options.no_speech_threshold
                    && decoded.avg_logprob < options.log_prob_threshold;
                let looping = decoded.compression_ratio > options.compression_ratio_threshold;
                if silent || looping {
                    if looping {
                        dropped_windows += 1;
                        tracing::warn!(at = time_offset, "dropped a window of repeated text (hallucination)");
                    }
                    break 'window seek + segment_frames;
                }

                let (window_segments, timestamp_seek) = split_segments(
                    vocab,
                    &decoded.tokens,
                    time_offset,
                    segment_duration,
                    seek,
                    segment_frames,
                );
                let kept_tokens: Vec<Vec<u32>> = window_segments.iter().map(|(_, _, t)| t.clone()).collect();
                let mut new_segments: Vec<Segment> = window_segments
                    .into_iter()
                    .filter(|(_, _, tokens)| tokens.iter().any(|&t| t < vocab.eot))
                    .map(|(start, end, tokens)| Segment {
                        start,
                        end,
                        text: vocab.decode(&tokens),
                        words: Vec::new(),
                        avg_logprob: decoded.avg_logprob,
                        no_speech_prob: decoded.no_speech_prob,
                        temperature: decoded.temperature,
                    })
                    .collect();
                let mut seek_next = timestamp_seek;

                if options.word_timestamps && !new_segments.is_empty() {
                    let text_tokens: Vec<Vec<u32>> = kept_tokens
                        .iter()
                        .map(|t| t.iter().copied().filter(|&x| x < vocab.eot).collect::<Vec<u32>>())
                        .filter(|t| !t.is_empty())
                        .collect();
                    self.add_word_timings(
                        &encoded,
                        &sot_sequence,
                        &text_tokens,
                        segment_frames,
                        time_offset,
                        &mut new_segments,
                    )?;
                    // Seek to the end of the last word when the window did not end on a
                    // timestamp: the model's last timestamp can lag the speech.
                    if let Some(last) = new_segments.last().and_then(|s| s.words.last()) {
                        let last_end = last.end.as_secs_f64();
                        let last_end_frame = (last_end / SECONDS_PER_FRAME).round() as usize;
                        if timestamp_seek < seek + segment_frames
                            && last_end_frame > seek
                            && last_end_frame < timestamp_seek
                        {
                            seek_next = last_end_frame;
                        }
                    }
                }

                if options.condition_on_previous_text && decoded.temperature <= 0.5 {
                    // Only the segments kept: the incomplete tail is decoded again in the
                    // next window, and having it in the prompt too makes the model skip
                    // or paraphrase it.
                    // Timestamps stay in: the model was trained on context that has them.
                    for kept in &kept_tokens {
                        context.extend(kept.iter().copied().filter(|&t| t != vocab.eot));
                    }
                    let excess = context.len().saturating_sub(MAX_PROMPT_TOKENS);
                    context.drain(..excess);
                } else {
                    context.clear();
                }
                segments.extend(new_segments);

                seek_next
            };

            // Always move forward, even if the model's timestamps say otherwise.
            seek = next_seek.max(seek + 1);
            progress(((seek * HOP_LENGTH) as f64 / SAMPLE_RATE as f64).min(self.read_seconds(base, &buffer)));
            if ended && seek * HOP_LENGTH >= base + buffer.len() {
                break;
            }
        }

        let (language, language_probability) = language.unwrap_or_else(|| ("en".to_owned(), 0.0));
        Ok(Transcription {
            language,
            language_probability,
            duration: self.read_seconds(base, &buffer),
            segments,
            dropped_windows,
        })
    }

    /// The language when it needs no detection: forced, or English for `.en` models.
    pub(crate) fn given_language(&self, options: &TranscribeOptions) -> Option<(String, f32)> {
        match (&options.language, self.is_multilingual()) {
            (_, false) => Some(("en".to_owned(), 1.0)),
            (Some(code), true) => Some((code.clone(), 1.0)),
            (None, true) => None,
        }
    }

    /// Runs the encoder over windows of features (`n_mels x 3000` each).
    pub(crate) fn encode(&self, features: &[Vec<f32>]) -> Result<StorageView<'static>, SpeechError> {
        let mut data: Vec<f32> = features.iter().flatten().copied().collect();
        let view = StorageView::new(&[features.len(), self.n_mels(), N_FRAMES], &mut data, Device::CPU)
            .map_err(|e| self.error(format!("{e:#}")))?;
        self.whisper.encode(&view, false).map_err(|e| self.error(format!("{e:#}")))
    }

    pub(crate) fn read_seconds(&self, base: usize, buffer: &[f32]) -> f64 {
        (base + buffer.len()) as f64 / SAMPLE_RATE as f64
    }

    pub(crate) fn error(&self, message: String) -> SpeechError {
        SpeechError::Inference { model: self.name.clone(), message }
    }

    /// `<|startoftranscript|>` (+ `<|xx|>` `<|transcribe|>` for multilingual models).
    pub(crate) fn sot_sequence(&self, lang: &str) -> Result<Vec<u32>, SpeechError> {
        let vocab = &self.vocab;
        if !self.is_multilingual() {
            return Ok(vec![vocab.sot]);
        }
        let lang_token = vocab
            .id(&format!("<|{lang}|>"))
            .ok_or_else(|| SpeechError::UnknownLanguage { language: lang.to_owned() })?;
        let transcribe = vocab.transcribe.ok_or_else(|| self.error("no <|transcribe|> token".into()))?;
        Ok(vec![vocab.sot, lang_token, transcribe])
    }

    pub(crate) fn prompt(&self, context: &[u32], sot_sequence: &[u32]) -> Vec<String> {
        let vocab = &self.vocab;
        let mut prompt = Vec::with_capacity(context.len() + 4);
        if !context.is_empty() {
            prompt.push(vocab.token(vocab.sot_prev).to_owned());
            prompt.extend(context.iter().map(|&t| vocab.token(t).to_owned()));
        }
        prompt.extend(sot_sequence.iter().map(|&t| vocab.token(t).to_owned()));
        prompt
    }

    pub(crate) fn detect_language(&self, encoded: &StorageView) -> Result<(String, f32), SpeechError> {
        let results = self.whisper.detect_language(encoded).map_err(|e| self.error(format!("{e:#}")))?;
        let best = results
            .first()
            .and_then(|r| r.first())
            .ok_or_else(|| self.error("language detection returned nothing".into()))?;
        parse_detection(&format!("{best:?}"))
            .ok_or_else(|| self.error(format!("unreadable detection {best:?}")))
    }

    fn add_word_timings(
        &self,
        encoded: &StorageView,
        sot_sequence: &[u32],
        segment_tokens: &[Vec<u32>],
        num_frames: usize,
        time_offset: f64,
        segments: &mut [Segment],
    ) -> Result<(), SpeechError> {
        let text_tokens: Vec<u32> = segment_tokens.iter().flatten().copied().collect();
        if text_tokens.is_empty() {
            return Ok(());
        }
        let start: Vec<usize> = sot_sequence.iter().map(|&t| t as usize).collect();
        let tokens: Vec<usize> = text_tokens.iter().map(|&t| t as usize).collect();
        let aligned = self
            .whisper
            .align(encoded, &start, &[tokens], &[num_frames], 7)
            .map_err(|e| self.error(format!("{e:#}")))?;
        let Some(alignment) = aligned.into_iter().next() else { return Ok(()) };
        let path: Vec<(i64, i64)> = alignment.alignments.iter().map(|a| (a.token_x, a.frame_x)).collect();
        let mut words = crate::words::timed_words(
            &self.vocab,
            &text_tokens,
            &path,
            &alignment.text_token_probs,
            ALIGN_FRAMES_PER_SECOND,
        );
        for w in &mut words {
            w.start += time_offset;
            w.end += time_offset;
        }
        crate::words::assign_to_segments(words, segment_tokens, segments);
        Ok(())
    }
}

/// Cuts a window's tokens into segments at consecutive timestamp pairs. Returns the
/// segments `(start s, end s, tokens with their timestamps)` and the next seek.
fn split_segments(
    vocab: &Vocabulary,
    tokens: &[u32],
    time_offset: f64,
    segment_duration: f64,
    seek: usize,
    segment_frames: usize,
) -> (Vec<(f64, f64, Vec<u32>)>, usize) {
    let ts = |t: u32| (t - vocab.timestamp_begin) as f64 * TIME_PRECISION;
    let n = tokens.len();
    let single_timestamp_ending =
        n >= 2 && !vocab.is_timestamp(tokens[n - 2]) && vocab.is_timestamp(tokens[n - 1]);
    let mut cuts: Vec<usize> =
        (1..n).filter(|&i| vocab.is_timestamp(tokens[i]) && vocab.is_timestamp(tokens[i - 1])).collect();
    let mut out = Vec::new();
    if !cuts.is_empty() {
        if single_timestamp_ending {
            cuts.push(n);
        }
        let mut last = 0;
        for &cut in &cuts {
            let slice = &tokens[last..cut];
            if let (Some(&first), Some(&end)) = (slice.first(), slice.last())
                && vocab.is_timestamp(first)
                && vocab.is_timestamp(end)
            {
                out.push((time_offset + ts(first), time_offset + ts(end), slice.to_vec()));
            }
            last = cut;
        }
        let next_seek = if single_timestamp_ending {
            seek + segment_frames
        } else {
            // Resume at the last complete segment's end timestamp.
            let last_ts = tokens[last - 1];
            seek + ((last_ts - vocab.timestamp_begin) as usize) * 2
        };
        (out, next_seek)
    } else {
        let mut duration = segment_duration;
        if let Some(&last_ts) = tokens.iter().rev().find(|&&t| vocab.is_timestamp(t))
            && last_ts != vocab.timestamp_begin
        {
            duration = ts(last_ts);
        }
        out.push((time_offset, time_offset + duration, tokens.to_vec()));
        (out, seek + segment_frames)
    }
}

/// Reads `DetectionResult { language: "<|de|>", probability: 0.97 }`: ct2rs 0.10.3
/// (pinned) keeps these fields private and offers no accessor, only `Debug`.
fn parse_detection(debug: &str) -> Option<(String, f32)> {
    let lang = debug.split("<|").nth(1)?.split("|>").next()?.to_owned();
    let prob = debug.split("probability:").nth(1)?.trim().trim_end_matches('}').trim().parse().ok()?;
    Some((lang, prob))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_debug_output_is_read() {
        let s = r#"DetectionResult { language: "<|de|>", probability: 0.9731 }"#;
        assert_eq!(parse_detection(s), Some(("de".to_owned(), 0.9731)));
        assert_eq!(parse_detection("garbage"), None);
    }

    fn vocab() -> Vocabulary {
        let mut tokens: Vec<String> = (0..10).map(|i| format!("Ġw{i}")).collect();
        for s in ["<|endoftext|>", "<|startoftranscript|>", "<|startofprev|>", "<|notimestamps|>"] {
            tokens.push(s.into());
        }
        for i in 0..1501 {
            tokens.push(format!("<|{:.2}|>", i as f64 * 0.02));
        }
        Vocabulary::from_tokens(tokens).expect("vocab")
    }

    #[test]
    fn segments_are_cut_at_timestamp_pairs_and_seek_resumes_after_the_last_complete_one() {
        let v = vocab();
        let t = |secs: f64| v.timestamp_begin + (secs / 0.02).round() as u32;
        // <0.00> w1 w2 <2.00><2.00> w3 <4.00><4.00> w4   (the last segment is incomplete)
        let tokens = vec![t(0.0), 1, 2, t(2.0), t(2.0), 3, t(4.0), t(4.0), 4];
        let (segs, next) = split_segments(&v, &tokens, 10.0, 30.0, 1000, 3000);
        let spans: Vec<(f64, f64)> = segs.iter().map(|s| (s.0, s.1)).collect();
        assert_eq!(spans, vec![(10.0, 12.0), (12.0, 14.0)]);
        assert_eq!(next, 1000 + 400, "resume at 4.00 s into the window, 400 frames");
    }

    #[test]
    fn a_window_ending_on_a_single_timestamp_is_complete() {
        let v = vocab();
        let t = |secs: f64| v.timestamp_begin + (secs / 0.02).round() as u32;
        let tokens = vec![t(0.0), 1, t(3.0), t(3.0), 2, t(5.0)];
        let (segs, next) = split_segments(&v, &tokens, 0.0, 30.0, 0, 3000);
        assert_eq!(segs.len(), 2);
        assert_eq!(next, 3000);
    }

    #[test]
    fn a_window_without_timestamp_pairs_is_one_segment() {
        let v = vocab();
        let t = |secs: f64| v.timestamp_begin + (secs / 0.02).round() as u32;
        let (segs, next) = split_segments(&v, &[t(0.0), 1, 2, t(6.0)], 0.0, 8.0, 0, 800);
        assert_eq!(segs.len(), 1);
        assert_eq!((segs[0].0, segs[0].1), (0.0, 6.0));
        assert_eq!(next, 800);
    }
}
