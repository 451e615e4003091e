//! Decoding encoded windows with Whisper's temperature fallback, one window or a
//! batch of them at once.
//!
//! Each window is decoded at temperature 0 with beam search; a result that is too
//! repetitive (gzip compression ratio above the threshold) or too unlikely (average
//! log-probability below it), and not silence, is decoded again by sampling at the
//! next temperature. In a batch only the windows that failed go on to the next
//! temperature: they are encoded again from their features, because CTranslate2's
//! encoder output cannot be sliced (the rerun is rare, and cheaper than decoding
//! the whole batch again).

use std::io::Write;

use ct2rs::sys::{Device, StorageView, WhisperOptions};
use flate2::Compression;
use flate2::write::ZlibEncoder;

use crate::mel::N_FRAMES;
use crate::transcribe::TranscribeOptions;
use crate::{SpeechError, WhisperModel};

/// Whisper's decoder holds 448 positions.
pub(crate) const MAX_LENGTH: usize = 448;

/// One decoding of a window, as chosen by the fallback.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub tokens: Vec<u32>,
    pub avg_logprob: f64,
    pub no_speech_prob: f32,
    pub temperature: f32,
    pub compression_ratio: f64,
}

impl Decoded {
    fn too_repetitive(&self, options: &TranscribeOptions) -> bool {
        self.compression_ratio > options.compression_ratio_threshold
    }

    /// A likely, non-repetitive result, or a non-repetitive one that is silence
    /// (which the caller skips).
    fn acceptable(&self, options: &TranscribeOptions) -> bool {
        let too_unlikely = self.avg_logprob < options.log_prob_threshold;
        let silence = self.no_speech_prob > options.no_speech_threshold;
        !self.too_repetitive(options) && (!too_unlikely || silence)
    }

    /// Of two failed results, prefer one that is not repetitive, then the likelier.
    fn better_than(&self, other: &Decoded, options: &TranscribeOptions) -> bool {
        let (mine, theirs) = (self.too_repetitive(options), other.too_repetitive(options));
        (theirs && !mine) || (mine == theirs && self.avg_logprob > other.avg_logprob)
    }
}

impl WhisperModel {
    /// Decodes every window of `encoded` (the encoder's output for `features`, one
    /// `n_mels x 3000` block per window, in the same order) with `prompt`.
    pub(crate) fn decode_batch(
        &self,
        encoded: &StorageView,
        features: &[Vec<f32>],
        prompt: &[String],
        options: &TranscribeOptions,
    ) -> Result<Vec<Decoded>, SpeechError> {
        let n = features.len();
        let mut chosen: Vec<Option<Decoded>> = (0..n).map(|_| None).collect();
        let mut best: Vec<Option<Decoded>> = (0..n).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..n).collect();
        for &temperature in &options.temperatures {
            if pending.is_empty() {
                break;
            }
            let mut ct2 = WhisperOptions {
                max_length: MAX_LENGTH,
                return_scores: true,
                return_no_speech_prob: true,
                ..WhisperOptions::default()
            };
            if temperature > 0.0 {
                ct2.beam_size = 1;
                ct2.num_hypotheses = options.best_of.max(1);
                ct2.sampling_topk = 0;
                ct2.sampling_temperature = temperature;
            } else {
                ct2.beam_size = options.beam_size.max(1);
            }
            let prompts = vec![prompt.to_vec(); pending.len()];
            let results = if pending.len() == n {
                self.whisper.generate(encoded, &prompts, &ct2)
            } else {
                // CTranslate2 encodes mel features given to `generate` itself.
                let mut data: Vec<f32> = pending.iter().flat_map(|&i| features[i].iter().copied()).collect();
                let view =
                    StorageView::new(&[pending.len(), self.n_mels(), N_FRAMES], &mut data, Device::CPU)
                        .map_err(|e| self.error(format!("{e:#}")))?;
                self.whisper.generate(&view, &prompts, &ct2)
            }
            .map_err(|e| self.error(format!("{e:#}")))?;
            if results.len() != pending.len() {
                return Err(self.error(format!(
                    "generate returned {} results for {} windows",
                    results.len(),
                    pending.len()
                )));
            }
            let mut failed = Vec::new();
            for (&i, result) in pending.iter().zip(results) {
                let tokens: Vec<u32> = result
                    .sequences_ids
                    .first()
                    .map(|s| s.iter().map(|&t| t as u32).collect())
                    .unwrap_or_default();
                let score = result.scores.first().copied().unwrap_or(f32::NEG_INFINITY) as f64;
                // CTranslate2 reports the length-normalised score; undo it, then divide
                // by length + 1 (the end token) as Whisper does.
                let len = tokens.len() as f64;
                let decoded = Decoded {
                    compression_ratio: compression_ratio(&self.vocab.decode(&tokens)),
                    avg_logprob: score * len / (len + 1.0),
                    tokens,
                    no_speech_prob: result.no_speech_prob,
                    temperature,
                };
                if decoded.acceptable(options) {
                    chosen[i] = Some(decoded);
                    continue;
                }
                if best[i].as_ref().is_none_or(|b| decoded.better_than(b, options)) {
                    best[i] = Some(decoded);
                }
                failed.push(i);
            }
            pending = failed;
        }
        chosen
            .into_iter()
            .zip(best)
            .map(|(c, b)| c.or(b).ok_or_else(|| self.error("no temperatures to decode with".into())))
            .collect()
    }
}

/// len(text) / len(zlib(text)): Whisper's measure of repetitiveness.
pub(crate) fn compression_ratio(text: &str) -> f64 {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    let compressed = z.write_all(bytes).and_then(|_| z.finish()).map(|c| c.len()).unwrap_or(bytes.len());
    bytes.len() as f64 / compressed.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition_compresses_well_and_prose_does_not() {
        let loop_text = " I'm sorry. ".repeat(40);
        assert!(compression_ratio(&loop_text) > 2.4);
        let prose = " The quick brown fox jumps over the lazy dog while the cat watches from a sunny window.";
        assert!(compression_ratio(prose) < 2.0);
        assert_eq!(compression_ratio(""), 0.0);
    }

    fn decoded(avg_logprob: f64, compression_ratio: f64, no_speech_prob: f32) -> Decoded {
        Decoded { tokens: Vec::new(), avg_logprob, no_speech_prob, temperature: 0.0, compression_ratio }
    }

    #[test]
    fn the_fallback_accepts_likely_text_and_silence_and_prefers_less_repetition() {
        let o = TranscribeOptions::default();
        assert!(decoded(-0.3, 1.5, 0.1).acceptable(&o));
        assert!(!decoded(-1.5, 1.5, 0.1).acceptable(&o), "unlikely speech is decoded again");
        assert!(decoded(-1.5, 1.5, 0.9).acceptable(&o), "unlikely silence is accepted (and skipped)");
        assert!(!decoded(-0.1, 3.0, 0.9).acceptable(&o), "repetition is never accepted");
        assert!(decoded(-1.8, 1.5, 0.1).better_than(&decoded(-0.2, 3.0, 0.1), &o));
        assert!(decoded(-1.1, 1.5, 0.1).better_than(&decoded(-1.6, 1.5, 0.1), &o));
    }
}
