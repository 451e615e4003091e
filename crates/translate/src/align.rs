//! Sentences, not cue fragments: cues are joined into sentences for translation,
//! and each translated sentence is split back across the cues it came from.
//!
//! Why by hand: this is the caption-specific part of translation, with no library
//! for it. A cue often holds the end of one sentence and the start of the next;
//! translating fragments breaks grammar (word order moves across the cut). So the
//! words of all cues are read as one stream, cut at sentence ends, and each
//! sentence remembers how many characters each cue gave it. The translation is
//! cut at the word boundaries nearest to the same character shares, so each cue
//! keeps its time slot and gets about its share of the translated text.

use babelcast_core::Cue;

/// One sentence of the source and the cues it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// The sentence text, words joined by single spaces.
    pub text: String,
    /// The cues it spans, in order, with the characters each contributed.
    pub parts: Vec<(usize, usize)>,
}

fn ends_sentence(word: &str) -> bool {
    let trimmed = word.trim_end_matches(['"', '\'', ')', '»', '”', '’']);
    trimmed.ends_with(['.', '!', '?', '…'])
}

/// The sentences of the cues' text. A sentence that never ends (no final
/// punctuation) ends with the last cue.
pub fn sentences(cues: &[Cue]) -> Vec<Sentence> {
    let mut out = Vec::new();
    let mut words: Vec<&str> = Vec::new();
    let mut parts: Vec<(usize, usize)> = Vec::new();
    let mut close = |words: &mut Vec<&str>, parts: &mut Vec<(usize, usize)>| {
        if !words.is_empty() {
            out.push(Sentence { text: words.join(" "), parts: std::mem::take(parts) });
            words.clear();
        }
    };
    for (index, cue) in cues.iter().enumerate() {
        for word in cue.text.split_whitespace() {
            words.push(word);
            match parts.last_mut() {
                Some((i, chars)) if *i == index => *chars += word.chars().count() + 1,
                _ => parts.push((index, word.chars().count() + 1)),
            }
            if ends_sentence(word) {
                close(&mut words, &mut parts);
            }
        }
    }
    close(&mut words, &mut parts);
    out
}

/// Splits a translated sentence over the cues of `parts` by their character
/// shares, at word boundaries. Each cue gets at least one word while there are
/// words enough.
pub fn distribute(translation: &str, parts: &[(usize, usize)]) -> Vec<(usize, String)> {
    let words: Vec<&str> = translation.split_whitespace().collect();
    if parts.is_empty() {
        return Vec::new();
    }
    let total_source: usize = parts.iter().map(|p| p.1).sum::<usize>().max(1);
    let lengths: Vec<usize> = words.iter().map(|w| w.chars().count() + 1).collect();
    let total_target: usize = lengths.iter().sum::<usize>().max(1);
    // cumulative[k]: characters of words ..k.
    let mut cumulative = vec![0usize];
    for l in &lengths {
        cumulative.push(cumulative.last().copied().unwrap_or(0) + l);
    }
    let mut pieces = Vec::with_capacity(parts.len());
    let mut start = 0usize;
    let mut source_so_far = 0usize;
    for (k, &(cue, chars)) in parts.iter().enumerate() {
        let remaining_parts = parts.len() - k - 1;
        let end = if remaining_parts == 0 {
            words.len()
        } else {
            source_so_far += chars;
            let goal = source_so_far as f64 / total_source as f64 * total_target as f64;
            // The word boundary nearest the goal, leaving a word for each later cue
            // and taking at least one here, when possible.
            let lo = (start + 1).min(words.len());
            let hi = words.len().saturating_sub(remaining_parts).max(lo);
            (lo..=hi)
                .min_by(|&a, &b| {
                    let da = (cumulative[a] as f64 - goal).abs();
                    let db = (cumulative[b] as f64 - goal).abs();
                    da.total_cmp(&db)
                })
                .unwrap_or(lo)
        };
        pieces.push((cue, words[start..end.max(start)].join(" ")));
        start = end.max(start);
    }
    pieces
}

/// Translates cues: `translate` gets every sentence at once and returns one
/// translation per sentence; the result has one text per cue (empty where a cue
/// got no words).
pub fn translate_texts<E>(
    cues: &[Cue],
    translate: impl FnOnce(&[String]) -> Result<Vec<String>, E>,
) -> Result<Vec<String>, E> {
    let sentences = sentences(cues);
    let texts: Vec<String> = sentences.iter().map(|s| s.text.clone()).collect();
    let translated = translate(&texts)?;
    let mut out = vec![String::new(); cues.len()];
    for (sentence, translation) in sentences.iter().zip(&translated) {
        for (cue, piece) in distribute(translation, &sentence.parts) {
            if piece.is_empty() {
                continue;
            }
            let text = &mut out[cue];
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&piece);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use babelcast_core::Millis;

    fn cue(text: &str) -> Cue {
        Cue { start: Millis(0), end: Millis(1000), text: text.into() }
    }

    #[test]
    fn sentences_cross_cue_boundaries() {
        let cues = [cue("Good morning everyone. Today we"), cue("talk about rivers."), cue("And lakes")];
        let s = sentences(&cues);
        let texts: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["Good morning everyone.", "Today we talk about rivers.", "And lakes"]);
        assert_eq!(s[1].parts, vec![(0, 9), (1, 19)]);
        assert_eq!(s[2].parts, vec![(2, 10)]);
    }

    #[test]
    fn a_translation_is_shared_by_character_share_at_word_boundaries() {
        // 9 source characters in cue 0, 19 in cue 1: about a third and two thirds.
        let pieces = distribute("Hoy hablamos de los ríos.", &[(0, 9), (1, 19)]);
        assert_eq!(pieces, vec![(0, "Hoy".to_owned()), (1, "hablamos de los ríos.".to_owned())]);
        // Every cue gets a word while there are enough.
        let pieces = distribute("Uno dos", &[(0, 1), (1, 1), (2, 100)]);
        assert_eq!(pieces.iter().map(|p| p.1.as_str()).collect::<Vec<_>>(), ["Uno", "dos", ""]);
        assert!(distribute("x", &[]).is_empty());
    }

    #[test]
    fn translated_texts_keep_one_text_per_cue_and_every_word() {
        let cues = [cue("Good morning everyone. Today we"), cue("talk about rivers.")];
        let out = translate_texts(&cues, |s: &[String]| -> Result<Vec<String>, ()> {
            Ok(s.iter().map(|t| t.to_uppercase()).collect())
        })
        .expect("translates");
        assert_eq!(out.len(), 2);
        assert_eq!(out.join(" "), "GOOD MORNING EVERYONE. TODAY WE TALK ABOUT RIVERS.");
        assert!(out[0].starts_with("GOOD MORNING EVERYONE."));
    }
}
