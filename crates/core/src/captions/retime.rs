//! Re-timing given text to the speech: the words of a user's subtitles (or of
//! a plain script) matched to the words a recognition pass heard, so each cue
//! moves to where its words are spoken, however far off its times were.
//!
//! The match is a diff of the two word sequences (the `similar` crate's Myers
//! diff over words lower-cased to their letters and digits): it does not look
//! at the given times at all, so a shift of any size, or a file from another
//! cut, matches as well as a close one, and a misrecognised word is one
//! unmatched word between matched ones. A given word that matches takes the
//! heard word's times (Whisper's own word alignment); the others are placed
//! between their matched neighbours at a speaking rate. A cue too few of whose
//! words were heard keeps its time and is flagged, never dropped. The cues are
//! then timed by the caption rules from their words' span, as recognised cues
//! are.

use serde::{Deserialize, Serialize};
use similar::{Algorithm, DiffOp, capture_diff_slices};

use super::timing::{self, Span};
use super::{CaptionProfile, characters, cues_from_words};
use crate::cue::{Cue, Millis};
use crate::transcript::Word;

/// How long a word that was not heard is taken to last, per character: about
/// 14 characters a second, an ordinary speaking rate.
const MS_PER_CHAR: u64 = 70;

/// Where re-timing moved one cue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CueShift {
    /// The cue's index in the given cues, from 0.
    pub cue: usize,
    /// How far its start moved, in milliseconds (later is positive).
    pub shift_ms: i64,
    /// How many of its words were found in the speech.
    pub heard: usize,
    /// How many words it has.
    pub words: usize,
    /// Whether it was found at all; a cue that was not keeps its time.
    pub found: bool,
}

/// What [`retime`] made of given cues.
#[derive(Debug, Clone, PartialEq)]
pub struct Retimed {
    /// The cues where their words are spoken, in the given segmentation, timed
    /// by the caption rules, in time order.
    pub cues: Vec<Cue>,
    /// Where each given cue moved.
    pub shifts: Vec<CueShift>,
    /// Every given word where it was placed, in the given order.
    pub words: Vec<Word>,
}

/// `cues` moved to where their words are in `heard` (see the module header).
pub fn retime(cues: &[Cue], heard: &[Word], profile: &CaptionProfile) -> Retimed {
    let words: Vec<(usize, &str)> = cues
        .iter()
        .enumerate()
        .flat_map(|(c, cue)| cue.text.split_whitespace().map(move |w| (c, w)))
        .collect();
    let texts: Vec<&str> = words.iter().map(|(_, w)| *w).collect();
    let starts_cue: Vec<bool> =
        words.iter().enumerate().map(|(i, (c, _))| i == 0 || words[i - 1].0 != *c).collect();
    let placed = place(&texts, &starts_cue, heard);

    let mut shifts = Vec::with_capacity(cues.len());
    let mut found = Vec::new();
    let mut kept = Vec::new();
    // The words are in cue order: each cue's are the next run of them.
    let mut next = 0;
    for (c, cue) in cues.iter().enumerate() {
        let count = cue.text.split_whitespace().count();
        let mine = &placed[next..next + count];
        next += count;
        let heard_words = mine.iter().filter(|p| p.heard).count();
        // A word or two of a long cue may match by chance (a "said" of another
        // sentence): a cue is found when a fair share of its words were heard.
        let is_found = heard_words > 0 && heard_words * 10 >= mine.len() * 3;
        if is_found {
            let first = mine.first().map(|p| p.start).unwrap_or(cue.start);
            let last = mine.last().map(|p| p.end).unwrap_or(cue.end);
            found.push((c, first, last.max(first)));
        } else {
            kept.push(c);
        }
        shifts.push(CueShift { cue: c, shift_ms: 0, heard: heard_words, words: mine.len(), found: is_found });
    }
    let spans: Vec<Span> = found
        .iter()
        .map(|&(c, start, end)| Span {
            first_start: start.0 as i64,
            last_end: end.0 as i64,
            chars: characters(&cues[c].text),
        })
        .collect();
    let mut out: Vec<(usize, Cue)> = found
        .iter()
        .zip(timing::time(&spans, profile))
        .map(|(&(c, _, _), (start, end))| {
            let cue = Cue {
                start: Millis(start.max(0) as u64),
                end: Millis(end.max(0) as u64),
                text: cues[c].text.clone(),
            };
            shifts[c].shift_ms = cue.start.0 as i64 - cues[c].start.0 as i64;
            (c, cue)
        })
        .collect();
    out.extend(kept.into_iter().map(|c| (c, cues[c].clone())));
    out.sort_by_key(|(c, cue)| (cue.start, *c));
    let words =
        texts.iter().zip(&placed).map(|(text, p)| Word::new(*text, p.start, p.end.max(p.start))).collect();
    Retimed { cues: out.into_iter().map(|(_, cue)| cue).collect(), shifts, words }
}

/// A plain script's words placed where they are spoken in `heard` and set
/// into cues by `profile`'s rules. Words before the first or after the last
/// one heard are placed next to it. Returns the cues and the placed words.
pub fn time_script(script: &str, heard: &[Word], profile: &CaptionProfile) -> (Vec<Cue>, Vec<Word>) {
    let texts: Vec<&str> = script.split_whitespace().collect();
    // A line of the script starts a new thought: words there are placed before
    // the next heard word, as a cue's first words are.
    let mut starts = Vec::with_capacity(texts.len());
    for line in script.lines() {
        for (k, _) in line.split_whitespace().enumerate() {
            starts.push(k == 0);
        }
    }
    let placed = place(&texts, &starts, heard);
    let words: Vec<Word> =
        texts.iter().zip(&placed).map(|(text, p)| Word::new(*text, p.start, p.end.max(p.start))).collect();
    // A line of the script ends a cue (its author broke it there, with or
    // without punctuation); within a line the rules choose. The cues of all
    // lines are then timed together, so none runs into the next.
    let mut spans = Vec::new();
    let mut lines = Vec::new();
    let mut first = 0;
    for line in script.lines() {
        let n = line.split_whitespace().count();
        if n == 0 {
            continue;
        }
        let mut at = first;
        for cue in cues_from_words(&words[first..first + n], profile) {
            let k = cue.text.split_whitespace().count().clamp(1, first + n - at);
            spans.push(Span {
                first_start: words[at].start.0 as i64,
                last_end: words[at + k - 1].end.0 as i64,
                chars: characters(&cue.text),
            });
            lines.push(cue.text);
            at += k;
            if at >= first + n {
                break;
            }
        }
        first += n;
    }
    let cues = lines
        .into_iter()
        .zip(timing::time(&spans, profile))
        .map(|(text, (start, end))| Cue {
            start: Millis(start.max(0) as u64),
            end: Millis(end.max(0) as u64),
            text,
        })
        .collect();
    (cues, words)
}

/// Where one given word was placed.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Placed {
    start: Millis,
    end: Millis,
    /// Whether it matched a heard word (else it was placed between neighbours).
    heard: bool,
}

/// A word as the match compares it: lower case, letters and digits only.
fn normal(word: &str) -> String {
    word.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Places every given word: a matched word at its heard times, a run of
/// unmatched words between the matched words around it, at [`MS_PER_CHAR`]
/// (squeezed when the room is smaller), before the next matched word when the
/// run starts a cue (`starts_cue`), after the previous one otherwise.
fn place(given: &[&str], starts_cue: &[bool], heard: &[Word]) -> Vec<Placed> {
    let a: Vec<String> = given.iter().map(|w| normal(w)).collect();
    let b: Vec<String> = heard.iter().map(|w| normal(&w.text)).collect();
    let mut matched: Vec<Option<usize>> = vec![None; given.len()];
    for op in capture_diff_slices(Algorithm::Myers, &a, &b) {
        if let DiffOp::Equal { old_index, new_index, len } = op {
            for k in 0..len {
                // An empty word (a dash alone) matches nothing.
                if !a[old_index + k].is_empty() {
                    matched[old_index + k] = Some(new_index + k);
                }
            }
        }
    }
    let mut placed: Vec<Placed> = matched
        .iter()
        .map(|m| match m {
            Some(j) => Placed { start: heard[*j].start, end: heard[*j].end, heard: true },
            None => Placed { start: Millis(0), end: Millis(0), heard: false },
        })
        .collect();
    let mut i = 0;
    while i < given.len() {
        if placed[i].heard {
            i += 1;
            continue;
        }
        let run_end = (i..given.len()).find(|&k| placed[k].heard).unwrap_or(given.len());
        let before = i.checked_sub(1).map(|k| placed[k].end);
        let after = placed.get(run_end).map(|p| p.start);
        let chars: Vec<u64> = given[i..run_end].iter().map(|w| w.chars().count() as u64 + 1).collect();
        let total: u64 = chars.iter().sum();
        let want = Millis(total * MS_PER_CHAR);
        let (from, to) = match (before, after) {
            (Some(a), Some(b)) if b.0.saturating_sub(a.0) <= want.0 => (a, b),
            (Some(_), Some(b)) if starts_cue[i] => (Millis(b.0 - want.0), b),
            (Some(a), Some(_)) => (a, Millis(a.0 + want.0)),
            (None, Some(b)) => (Millis(b.0.saturating_sub(want.0)), b),
            (Some(a), None) => (a, Millis(a.0 + want.0)),
            // Nothing was heard at all: no place to put anything.
            (None, None) => (Millis(0), Millis(0)),
        };
        let span = to.0.saturating_sub(from.0);
        let mut done = 0;
        for (k, c) in chars.iter().enumerate() {
            let at = |n: u64| Millis(from.0 + span * n / total.max(1));
            placed[i + k].start = at(done);
            done += c;
            placed[i + k].end = at(done);
        }
        i = run_end;
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(words: &[(&str, u64, u64)]) -> Vec<Word> {
        words.iter().map(|&(t, s, e)| Word::new(t, Millis(s), Millis(e))).collect()
    }

    fn cue(start: u64, end: u64, text: &str) -> Cue {
        Cue { start: Millis(start), end: Millis(end), text: text.into() }
    }

    /// What a recognition pass heard: two sentences, one word misheard.
    fn speech() -> Vec<Word> {
        heard(&[
            (" The", 1_000, 1_200),
            (" cafe", 1_200, 1_600),
            (" was", 1_600, 1_800),
            (" open.", 1_800, 2_300),
            (" Mister", 3_000, 3_400),
            (" Muller", 3_400, 3_900),
            (" said", 3_900, 4_200),
            (" hello.", 4_200, 4_800),
        ])
    }

    #[test]
    fn cues_far_off_move_to_their_words_and_an_unspoken_cue_keeps_its_time() {
        let profile = CaptionProfile::default();
        let given = [
            cue(21_000, 22_500, "The café was open."),
            cue(22_600, 23_000, "This line is never said."),
            cue(23_100, 24_800, "Mr. Müller said hello."),
        ];
        let Retimed { cues, shifts, words } = retime(&given, &speech(), &profile);
        assert_eq!(words.len(), 13);
        assert_eq!((words[0].text.as_str(), words[0].start), ("The", Millis(1_000)));
        let by_text = |t: &str| cues.iter().find(|c| c.text == t).expect("kept").clone();
        assert_eq!(by_text("The café was open.").start, Millis(1_000), "at its first heard word");
        let second = by_text("Mr. Müller said hello.");
        assert!(second.start.0 + 200 >= 3_000 && second.start.0 <= 3_900, "{second:?}");
        assert_eq!(by_text("This line is never said."), given[1], "kept as it was");
        assert_eq!(
            shifts.iter().map(|s| (s.found, s.words)).collect::<Vec<_>>(),
            [(true, 4), (false, 5), (true, 4)]
        );
        assert_eq!(shifts[0].heard, 3, "the, was, open: café was heard as cafe");
        assert_eq!(shifts[0].shift_ms, 1_000 - 21_000);
        assert!(cues.windows(2).all(|w| w[0].start <= w[1].start), "in time order");
    }

    #[test]
    fn a_plain_script_is_placed_and_set_by_the_caption_rules() {
        let profile = CaptionProfile::default();
        let (cues, words) = time_script("The café was open.\nMr. Müller said hello.\n", &speech(), &profile);
        assert_eq!(words.len(), 8);
        assert!(!cues.is_empty());
        assert_eq!(cues[0].start, Millis(1_000));
        let text: Vec<&str> = cues.iter().flat_map(|c| c.text.split_whitespace()).collect();
        assert_eq!(text, ["The", "café", "was", "open.", "Mr.", "Müller", "said", "hello."]);
        let errors: Vec<_> = super::super::check(&cues, &profile)
            .into_iter()
            .filter(|v| v.severity == super::super::Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn unheard_words_are_placed_next_to_the_heard_ones() {
        let placed = place(
            &["Mr.", "Muller"],
            &[true, false],
            &heard(&[(" said", 500, 600), (" Muller", 3_400, 3_900)]),
        );
        assert!(placed[1].heard && !placed[0].heard);
        assert_eq!(placed[0].end, Millis(3_400), "just before the next heard word");
        assert_eq!(placed[0].start, Millis(3_400 - 4 * MS_PER_CHAR));
        let nothing = place(&["a"], &[true], &[]);
        assert_eq!(nothing, [Placed { start: Millis(0), end: Millis(0), heard: false }]);
    }
}
