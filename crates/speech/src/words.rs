//! Word timings from Whisper's cross-attention alignment.
//!
//! CTranslate2's `align` returns the dynamic-time-warping path through the
//! alignment heads' attention: pairs (text token index, encoder frame). A token's
//! time is the frame where the path first reaches it; a word starts at its first
//! token's time and ends where the next word starts. Tokens are grouped into words
//! the way Whisper does for space-separated languages (a token that begins with a
//! space or is punctuation starts a new word; bytes that are not yet valid UTF-8 wait
//! for the next token), and punctuation is then attached to its neighbour.

use babelcast_core::{Millis, Word};

use crate::transcribe::Segment;
use crate::vocab::Vocabulary;

/// Attached to the following word (opening quotes, brackets, ¿).
const PREPEND: &str = "\"'“¿([{-";
/// Attached to the preceding word.
const APPEND: &str = "\"'.。,，!！?？:：”)]}、";
const SENTENCE_END: &str = ".。!！?？";

/// A word with times in seconds, before it is attached to a segment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimedWord {
    pub text: String,
    pub start: f64,
    pub end: f64,
    pub probability: f32,
    /// How many text tokens it spans.
    pub tokens: usize,
}

/// Groups text tokens into words: `(text, number of tokens)`.
pub(crate) fn split_words(vocab: &Vocabulary, tokens: &[u32]) -> Vec<(String, usize)> {
    // First, the smallest token runs that decode to whole UTF-8 text.
    let mut subwords: Vec<(String, usize)> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut count = 0;
    for &t in tokens {
        pending.extend(vocab.bytes(t));
        count += 1;
        if let Ok(text) = std::str::from_utf8(&pending) {
            subwords.push((text.to_owned(), count));
            pending.clear();
            count = 0;
        }
    }
    if count > 0 {
        subwords.push((String::from_utf8_lossy(&pending).into_owned(), count));
    }
    let mut words: Vec<(String, usize)> = Vec::new();
    for (text, n) in subwords {
        let trimmed = text.trim();
        let punctuation = !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_punctuation());
        match words.last_mut() {
            Some(last) if !text.starts_with(' ') && !punctuation => {
                last.0.push_str(&text);
                last.1 += n;
            }
            _ => words.push((text, n)),
        }
    }
    words
}

/// Times each word from the alignment path. `path` is (text token index, frame),
/// `probs` each text token's probability, `frames_per_second` the path's frame rate.
pub(crate) fn timed_words(
    vocab: &Vocabulary,
    tokens: &[u32],
    path: &[(i64, i64)],
    probs: &[f32],
    frames_per_second: f64,
) -> Vec<TimedWord> {
    let words = split_words(vocab, tokens);
    if words.is_empty() || path.is_empty() {
        return Vec::new();
    }
    // The time at which the path first reaches each text index.
    let mut jump_times: Vec<f64> = Vec::new();
    let mut previous: Option<i64> = None;
    for &(text_index, frame) in path {
        if previous != Some(text_index) {
            jump_times.push(frame as f64 / frames_per_second);
            previous = Some(text_index);
        }
    }
    let last_time = jump_times.last().copied().unwrap_or(0.0);
    let time_at = |i: usize| jump_times.get(i).copied().unwrap_or(last_time);

    let mut out = Vec::with_capacity(words.len());
    let mut boundary = 0;
    for (text, n) in words {
        let (start, end) = (time_at(boundary), time_at(boundary + n));
        let p = &probs[boundary.min(probs.len())..(boundary + n).min(probs.len())];
        let probability = if p.is_empty() { 0.0 } else { p.iter().sum::<f32>() / p.len() as f32 };
        out.push(TimedWord { text, start, end: end.max(start), probability, tokens: n });
        boundary += n;
    }
    clamp_long_words(&mut out);
    merge_punctuation(out)
}

/// Alignment gives over-long words at sentence edges (the path lingers in pauses):
/// cap them at twice the median word length, at most 1.4 s.
fn clamp_long_words(words: &mut [TimedWord]) {
    let mut durations: Vec<f64> = words.iter().map(|w| w.end - w.start).filter(|d| *d > 0.0).collect();
    if durations.is_empty() {
        return;
    }
    durations.sort_by(f64::total_cmp);
    let median = durations[durations.len() / 2].min(0.7);
    let max = median * 2.0;
    for i in 1..words.len() {
        if words[i].end - words[i].start > max {
            let ends_sentence =
                |w: &TimedWord| w.text.trim().chars().last().is_some_and(|c| SENTENCE_END.contains(c));
            if ends_sentence(&words[i]) {
                words[i].end = words[i].start + max;
            } else if ends_sentence(&words[i - 1]) {
                words[i].start = words[i].end - max;
            }
        }
    }
    // The first word of a stretch often absorbs the silence before it.
    if let Some(first) = words.first_mut()
        && first.end - first.start > max
    {
        first.start = first.end - max;
    }
}

/// Attaches punctuation-only words to their neighbours.
fn merge_punctuation(words: Vec<TimedWord>) -> Vec<TimedWord> {
    let is = |w: &TimedWord, set: &str| {
        let t = w.text.trim();
        !t.is_empty() && t.chars().all(|c| set.contains(c))
    };
    let mut out: Vec<TimedWord> = Vec::with_capacity(words.len());
    let mut carry: Option<TimedWord> = None;
    for mut w in words {
        if let Some(prefix) = carry.take() {
            w.text = format!("{}{}", prefix.text, w.text.trim_start());
            if prefix.text.starts_with(' ') || !w.text.starts_with(' ') {
                w.text = format!(" {}", w.text.trim_start());
            }
            w.start = w.start.min(prefix.start);
            w.tokens += prefix.tokens;
        }
        if is(&w, APPEND) && !out.is_empty() {
            let last = out.last_mut().expect("not empty");
            last.text.push_str(w.text.trim());
            last.tokens += w.tokens;
            continue;
        }
        if is(&w, PREPEND) {
            carry = Some(w);
            continue;
        }
        out.push(w);
    }
    if let Some(w) = carry {
        out.push(w);
    }
    out
}

/// Gives each segment the words whose tokens fall in it, and tightens the segment
/// to its words.
pub(crate) fn assign_to_segments(
    words: Vec<TimedWord>,
    segment_tokens: &[Vec<u32>],
    segments: &mut [Segment],
) {
    let mut words = words.into_iter().peekable();
    for (segment, tokens) in segments.iter_mut().zip(segment_tokens) {
        let mut budget = tokens.len();
        while words.peek().is_some() {
            if budget == 0 {
                break;
            }
            let w = words.next().expect("peeked");
            budget = budget.saturating_sub(w.tokens);
            segment.words.push(Word {
                text: w.text.clone(),
                start: Millis::from_secs_f64(w.start),
                end: Millis::from_secs_f64(w.end),
                probability: w.probability,
            });
        }
        if let (Some(first), Some(last)) = (segment.words.first(), segment.words.last()) {
            segment.start = first.start.as_secs_f64();
            segment.end = last.end.as_secs_f64().max(segment.start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(words: &[&str]) -> Vocabulary {
        let mut tokens: Vec<String> = words.iter().map(|w| w.replace(' ', "Ġ")).collect();
        for s in ["<|endoftext|>", "<|startoftranscript|>", "<|startofprev|>", "<|notimestamps|>", "<|0.00|>"]
        {
            tokens.push(s.into());
        }
        Vocabulary::from_tokens(tokens).expect("vocab")
    }

    #[test]
    fn tokens_group_into_words_and_punctuation_joins_its_neighbour() {
        let v = vocab(&[" Hel", "lo", ",", " world", ".", " \""]);
        let words = split_words(&v, &[0, 1, 2, 3, 4]);
        assert_eq!(words, vec![(" Hello".into(), 2), (",".into(), 1), (" world".into(), 1), (".".into(), 1)]);
        // path: each token index reached at frames 0, 10, 20, 30, 40, end at 50.
        let path: Vec<(i64, i64)> = (0..6).map(|i| (i, i * 10)).collect();
        let timed = timed_words(&v, &[0, 1, 2, 3, 4], &path, &[0.9, 0.9, 0.8, 0.7, 0.6], 50.0);
        let texts: Vec<&str> = timed.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, [" Hello,", " world."]);
        assert_eq!((timed[0].start, timed[1].start), (0.0, 0.6));
        assert_eq!(timed[0].tokens + timed[1].tokens, 5);
    }

    #[test]
    fn a_character_split_across_tokens_waits_for_its_last_byte() {
        // "é" is C3 A9: two byte-level tokens "Ã" and "©".
        let v = vocab(&[" caf", "Ã", "©"]);
        assert_eq!(split_words(&v, &[0, 1, 2]), vec![(" café".into(), 3)]);
    }

    #[test]
    fn empty_inputs_give_no_words() {
        let v = vocab(&[" a"]);
        assert!(timed_words(&v, &[], &[], &[], 50.0).is_empty());
        assert!(timed_words(&v, &[0], &[], &[], 50.0).is_empty());
    }
}
