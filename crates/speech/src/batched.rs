//! Batched decoding: the stretches of speech the VAD gate passes on are packed into
//! windows of up to 30 s, cut only where one stretch ends and the next begins, and
//! several windows are encoded and decoded in one CTranslate2 call.
//!
//! Written here, like the sequential loop, because it is that loop's procedure
//! reorganised, not a library feature: ct2rs offers batching only as tensors. What
//! changes against sequential decoding, and why:
//!
//! - a window ends at a pause, so no word is cut at its edge and there is nothing to
//!   seek back to: each window is decoded once, whole, without timestamp tokens
//!   (the segment is the window; word timings come from alignment as before);
//! - one encoder pass and one beam search serve the whole batch, which is where the
//!   time goes: on a CPU the decoder's matrix products are far more efficient over
//!   `batch x beam` rows than over `beam` rows;
//! - the temperature fallback, the no-speech skip and the repetition guard apply
//!   per window, exactly as in the sequential loop; only the windows that fail go on
//!   to the next temperature ([`WhisperModel::decode_batch`]);
//! - previous-text context does not apply (windows are decoded together); it is
//!   off by default anyway.
//!
//! Memory: one batch of samples (`batch x 30 s`, 15 MB at 8) and its features.

use ct2rs::sys::StorageView;

use crate::decode::Decoded;
use crate::mel::{HOP_LENGTH, MelFrontEnd, N_FRAMES, N_SAMPLES, SAMPLE_RATE};
use crate::transcribe::{
    ALIGN_FRAMES_PER_SECOND, SILENCE_PEAK, SampleSource, Segment, TranscribeOptions, Transcription,
};
use crate::{SpeechError, WhisperModel};

/// A window shorter than this is joined to the next when it can be: a lone
/// half-second of speech is where Whisper invents text.
const MIN_WINDOW_SAMPLES: usize = RATE;
/// Samples per second.
const RATE: usize = SAMPLE_RATE as usize;

/// Cuts `[start, available)` into windows of at most 30 s: each ends at the last
/// join of the source within 30 s of its start, or at 30 s when a stretch is longer
/// (a word may be cut there), or at `available` when the stream has ended there.
/// Returns at most `max` windows as absolute `(start, end)` sample indices.
pub(crate) fn pack_windows(
    source: &dyn SampleSource,
    start: usize,
    available: usize,
    ended: bool,
    max: usize,
) -> Vec<(usize, usize)> {
    let mut windows = Vec::with_capacity(max);
    let mut at = start;
    while windows.len() < max && at < available {
        let limit = at + N_SAMPLES;
        let end = if ended && available <= limit {
            available
        } else {
            source
                .join_before((at + MIN_WINDOW_SAMPLES) as u64, limit as u64)
                .or_else(|| source.join_before(at as u64, limit as u64))
                .map(|j| j as usize)
                .unwrap_or(limit)
                .min(available)
        };
        windows.push((at, end));
        at = end;
    }
    windows
}

impl WhisperModel {
    /// The batched loop (see the module header); `options.batch_size` windows at a
    /// time.
    pub(crate) fn transcribe_batched(
        &self,
        source: &mut dyn SampleSource,
        options: &TranscribeOptions,
        progress: &mut dyn FnMut(f64),
    ) -> Result<Transcription, SpeechError> {
        let mel = MelFrontEnd::new(self.n_mels()).map_err(|e| self.error(e.to_string()))?;
        let batch = options.batch_size.max(1);
        let mut language = self.given_language(options);
        let mut segments: Vec<Segment> = Vec::new();
        let mut dropped_windows = 0;

        // Samples from absolute index `base` on.
        let mut buffer: Vec<f32> = Vec::with_capacity(batch * N_SAMPLES);
        let mut base = 0usize;
        let mut ended = false;
        let mut at = 0usize;
        loop {
            buffer.drain(..(at - base).min(buffer.len()));
            base = at;
            while !ended && buffer.len() < batch * N_SAMPLES {
                let want = batch * N_SAMPLES - buffer.len();
                if source.read(&mut buffer, want)? == 0 {
                    ended = true;
                }
            }
            let windows = pack_windows(source, at, base + buffer.len(), ended, batch);
            let Some(&(_, last_end)) = windows.last() else { break };
            // Windows under one mel frame hold nothing a model could hear, and
            // digital silence (nothing above -80 dBFS) no speech.
            let heard: Vec<(usize, usize)> = windows
                .iter()
                .copied()
                .filter(|&(s, e)| {
                    (e - s) / HOP_LENGTH > 0
                        && buffer[s - base..e - base].iter().any(|x| x.abs() >= SILENCE_PEAK)
                })
                .collect();
            if !heard.is_empty() {
                let window_samples = |&(s, e): &(usize, usize)| &buffer[s - base..e - base];
                segments.extend(self.decode_windows(
                    &heard.iter().map(window_samples).collect::<Vec<_>>(),
                    &heard.iter().map(|&(s, _)| s as f64 / RATE as f64).collect::<Vec<_>>(),
                    &mel,
                    &mut language,
                    options,
                    &mut dropped_windows,
                )?);
            }
            at = last_end;
            progress(at as f64 / RATE as f64);
            if ended && at >= base + buffer.len() {
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

    /// Encodes, decodes and aligns one batch of windows (`offsets`: each window's
    /// start, seconds). Returns the kept windows' segments in order.
    fn decode_windows(
        &self,
        windows: &[&[f32]],
        offsets: &[f64],
        mel: &MelFrontEnd,
        language: &mut Option<(String, f32)>,
        options: &TranscribeOptions,
        dropped_windows: &mut usize,
    ) -> Result<Vec<Segment>, SpeechError> {
        let vocab = &self.vocab;
        let features: Vec<Vec<f32>> = windows
            .iter()
            .map(|w| mel.log_mel_padded(w, N_SAMPLES - w.len()).pad_or_trim(N_FRAMES).into_vec())
            .collect();
        let started = std::time::Instant::now();
        let encoded = self.encode(&features)?;
        let encoded_at = started.elapsed();
        if language.is_none() {
            // The first window decides, as in the sequential loop.
            *language = Some(self.detect_language(&encoded)?);
        }
        let (lang_code, _) = language.as_ref().expect("set above");
        let sot_sequence = self.sot_sequence(lang_code)?;
        let mut prompt = self.prompt(&[], &sot_sequence);
        prompt.push(vocab.token(vocab.no_timestamps).to_owned());
        let decoded = self.decode_batch(&encoded, &features, &prompt, options)?;
        let decoded_at = started.elapsed();

        let mut segments = Vec::new();
        // Per window: its text tokens if kept (empty if skipped), for the alignment.
        let mut kept_tokens: Vec<Vec<u32>> = Vec::with_capacity(windows.len());
        for (i, d) in decoded.iter().enumerate() {
            let frames = windows[i].len() / HOP_LENGTH;
            let text: Vec<u32> = d.tokens.iter().copied().filter(|&t| t < vocab.eot).collect();
            if self.skipped(d, offsets[i], options, dropped_windows) || text.is_empty() {
                kept_tokens.push(Vec::new());
                continue;
            }
            segments.push(Segment {
                start: offsets[i],
                end: offsets[i] + (frames * HOP_LENGTH) as f64 / RATE as f64,
                text: vocab.decode(&text),
                words: Vec::new(),
                avg_logprob: d.avg_logprob,
                no_speech_prob: d.no_speech_prob,
                temperature: d.temperature,
            });
            kept_tokens.push(text);
        }
        if options.word_timestamps && !segments.is_empty() {
            self.align_windows(&encoded, &sot_sequence, &kept_tokens, windows, offsets, &mut segments)?;
        }
        tracing::debug!(
            windows = windows.len(),
            seconds = windows.iter().map(|w| w.len()).sum::<usize>() as f64 / RATE as f64,
            tokens = kept_tokens.iter().map(Vec::len).sum::<usize>(),
            fallbacks = decoded.iter().filter(|d| d.temperature > 0.0).count(),
            encode_ms = encoded_at.as_millis() as u64,
            decode_ms = (decoded_at - encoded_at).as_millis() as u64,
            align_ms = (started.elapsed() - decoded_at).as_millis() as u64,
            "decoded a batch"
        );
        Ok(segments)
    }

    /// The no-speech skip and the repetition guard, as in the sequential loop.
    fn skipped(&self, d: &Decoded, at: f64, options: &TranscribeOptions, dropped: &mut usize) -> bool {
        let silent =
            d.no_speech_prob > options.no_speech_threshold && d.avg_logprob < options.log_prob_threshold;
        let looping = d.compression_ratio > options.compression_ratio_threshold;
        if looping {
            *dropped += 1;
            tracing::warn!(at, "dropped a window of repeated text (hallucination)");
        }
        silent || looping
    }

    /// Word timings for the kept windows, one alignment call for the batch (a
    /// skipped window is aligned with no text, and its result ignored: the encoder
    /// output must stay whole).
    fn align_windows(
        &self,
        encoded: &StorageView,
        sot_sequence: &[u32],
        tokens: &[Vec<u32>],
        windows: &[&[f32]],
        offsets: &[f64],
        segments: &mut [Segment],
    ) -> Result<(), SpeechError> {
        let start: Vec<usize> = sot_sequence.iter().map(|&t| t as usize).collect();
        let text: Vec<Vec<usize>> = tokens.iter().map(|t| t.iter().map(|&x| x as usize).collect()).collect();
        let frames: Vec<usize> = windows.iter().map(|w| w.len() / HOP_LENGTH).collect();
        let aligned = self
            .whisper
            .align(encoded, &start, &text, &frames, 7)
            .map_err(|e| self.error(format!("{e:#}")))?;
        let mut segments = segments.iter_mut();
        for ((window_tokens, alignment), &offset) in tokens.iter().zip(aligned).zip(offsets) {
            if window_tokens.is_empty() {
                continue;
            }
            let Some(segment) = segments.next() else { break };
            let path: Vec<(i64, i64)> = alignment.alignments.iter().map(|a| (a.token_x, a.frame_x)).collect();
            let mut words = crate::words::timed_words(
                &self.vocab,
                window_tokens,
                &path,
                &alignment.text_token_probs,
                ALIGN_FRAMES_PER_SECOND,
            );
            for w in &mut words {
                w.start += offset;
                w.end += offset;
            }
            crate::words::assign_to_segments(
                words,
                std::slice::from_ref(window_tokens),
                std::slice::from_mut(segment),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output with joins at fixed places.
    struct Joins(Vec<u64>);

    impl SampleSource for Joins {
        fn read(&mut self, _: &mut Vec<f32>, _: usize) -> Result<usize, SpeechError> {
            Ok(0)
        }

        fn join_before(&self, after: u64, limit: u64) -> Option<u64> {
            self.0.iter().rev().copied().find(|&j| j > after && j <= limit)
        }
    }

    const S: usize = RATE;

    #[test]
    fn windows_end_at_the_last_join_within_30_s() {
        let src = Joins(vec![10 * S as u64, 25 * S as u64, 40 * S as u64, 58 * S as u64]);
        let w = pack_windows(&src, 0, 70 * S, true, 8);
        assert_eq!(w, vec![(0, 25 * S), (25 * S, 40 * S), (40 * S, 70 * S)], "the rest fits one window");
        assert_eq!(pack_windows(&src, 0, 70 * S, true, 2).len(), 2, "at most a batch");
    }

    #[test]
    fn a_stretch_over_30_s_is_cut_at_30_s_and_the_stream_end_closes_the_last() {
        let src = Joins(vec![]);
        let w = pack_windows(&src, 0, 65 * S, true, 8);
        assert_eq!(w, vec![(0, 30 * S), (30 * S, 60 * S), (60 * S, 65 * S)]);
        // Not ended: the last window stops where the samples do.
        assert_eq!(pack_windows(&src, 0, 20 * S, false, 8), vec![(0, 20 * S)]);
    }

    #[test]
    fn a_join_in_the_first_second_is_passed_over_for_a_later_one() {
        let src = Joins(vec![S as u64 / 2, 20 * S as u64]);
        assert_eq!(pack_windows(&src, 0, 40 * S, true, 1), vec![(0, 20 * S)]);
        // Only an early join: it is still better than cutting a word.
        let src = Joins(vec![S as u64 / 2]);
        assert_eq!(pack_windows(&src, 0, 40 * S, true, 1), vec![(0, S / 2)]);
    }
}
