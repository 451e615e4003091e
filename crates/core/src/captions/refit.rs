//! Fitting cues someone else wrote to the caption rules: a user's subtitle file
//! keeps its cues where they keep the rules, and only the cues that break them
//! are set again: first on new lines, then, if that is not enough (too much text
//! for the lines, shown too long, read too fast), split into cues by
//! [`cues_from_words`] over the cue's words, each word timed by its share of
//! the cue's characters (the file gives no word times).

use serde::{Deserialize, Serialize};

use super::{CaptionProfile, ViolationKind, check, cues_from_words, set_lines};
use crate::cue::{Cue, Millis};
use crate::transcript::Word;

/// What [`refit`] did to one cue that broke the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refitted {
    /// The cue's index in the input, from 0.
    pub cue: usize,
    /// The rules it broke.
    pub broke: Vec<ViolationKind>,
    /// How many cues it became (1 when only its lines were set again).
    pub into: usize,
}

/// The rules [`refit`] mends by setting lines or splitting; the others (timing
/// against the neighbours, a cue shown too briefly) are the author's choice of
/// times, kept as they are.
fn mendable(kind: ViolationKind) -> bool {
    matches!(
        kind,
        ViolationKind::LineTooLong
            | ViolationKind::TooManyLines
            | ViolationKind::TooLong
            | ViolationKind::TooFast
    )
}

/// `cues` with every cue that breaks a mendable rule of `profile` set again, and
/// what was done to each; cues with no text are dropped.
pub fn refit(cues: &[Cue], profile: &CaptionProfile) -> (Vec<Cue>, Vec<Refitted>) {
    let cues: Vec<Cue> = cues.iter().filter(|c| !c.text.trim().is_empty()).cloned().collect();
    let violations = check(&cues, profile);
    let mut out = Vec::with_capacity(cues.len());
    let mut report = Vec::new();
    for (index, cue) in cues.iter().enumerate() {
        let broke: Vec<ViolationKind> =
            violations.iter().filter(|v| v.cue == index && mendable(v.kind)).map(|v| v.kind).collect();
        if broke.is_empty() {
            out.push(cue.clone());
            continue;
        }
        let relined = Cue { text: set_lines(&cue.text, profile), ..cue.clone() };
        let still = check(std::slice::from_ref(&relined), profile).into_iter().any(|v| mendable(v.kind));
        let parts = if still {
            // Split within the cue's own time: the rules' tails and minimums
            // must not reach into its neighbours'.
            cues_from_words(&timed_words(cue), profile)
                .into_iter()
                .map(|part| {
                    let start = part.start.clamp(cue.start, cue.end);
                    Cue { start, end: part.end.clamp(start, cue.end), ..part }
                })
                .collect()
        } else {
            vec![relined]
        };
        report.push(Refitted { cue: index, broke, into: parts.len() });
        out.extend(parts);
    }
    (out, report)
}

/// The words of a cue, each timed by its share of the cue's characters.
pub fn timed_words(cue: &Cue) -> Vec<Word> {
    let words: Vec<&str> = cue.text.split_whitespace().collect();
    let total: usize = words.iter().map(|w| w.chars().count() + 1).sum();
    let span = cue.end.0.saturating_sub(cue.start.0);
    let mut done = 0;
    words
        .iter()
        .map(|w| {
            let at = |chars: usize| Millis(cue.start.0 + span * chars as u64 / total.max(1) as u64);
            let start = at(done);
            done += w.chars().count() + 1;
            Word::new(*w, start, at(done))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start: u64, end: u64, text: &str) -> Cue {
        Cue { start: Millis(start), end: Millis(end), text: text.into() }
    }

    #[test]
    fn keeps_good_cues_and_mends_only_those_that_break_the_rules() {
        let profile = CaptionProfile::default();
        let long_line = "This single line of the subtitle file is much longer than a caption line may be";
        let wall = "Here the captioner put far too much text into one cue, more than two lines can \
                    hold at any reading speed, so it has to be split into several cues that each keep \
                    the rules and together keep every word in order.";
        let cues = [
            cue(1_000, 3_000, "A fine cue."),
            cue(4_000, 9_000, long_line),
            cue(10_000, 22_000, wall),
            cue(23_000, 23_000, "   "),
            cue(24_000, 26_000, "Another fine one."),
        ];
        let (out, report) = refit(&cues, &profile);
        assert_eq!(out.first(), Some(&cues[0]), "kept as it was");
        assert_eq!(out.last(), Some(&cues[4]));
        assert_eq!(report.len(), 2, "{report:?}");
        assert_eq!((report[0].cue, report[0].into), (1, 1), "only its lines set again");
        assert!(report[0].broke.contains(&ViolationKind::LineTooLong));
        assert_eq!(out[1].start, Millis(4_000));
        assert!(report[1].into > 1, "split: {report:?}");
        let words = |text: &str| text.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let all: Vec<String> = out.iter().flat_map(|c| words(&c.text)).collect();
        let expected: Vec<String> = cues.iter().flat_map(|c| words(&c.text)).collect();
        assert_eq!(all, expected, "every word kept, in order");
        let left = check(&out, &profile);
        assert!(!left.iter().any(|v| mendable(v.kind)), "{left:?}");
        for part in &out[2..out.len() - 1] {
            assert!(part.start >= Millis(10_000) && part.end <= Millis(22_000), "within the cue's time");
        }
    }

    #[test]
    fn words_share_the_cue_by_their_length() {
        let words = timed_words(&cue(1_000, 2_000, "a bbb"));
        assert_eq!(
            words.iter().map(|w| (w.start.0, w.end.0)).collect::<Vec<_>>(),
            [(1_000, 1_333), (1_333, 2_000)]
        );
        assert!(timed_words(&cue(0, 0, "")).is_empty());
    }
}
