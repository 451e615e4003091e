//! Caption rules: timed words in, subtitle cues a professional captioner would accept
//! out, and a checker that says which cues break which rule.
//!
//! The rules are the common core of broadcast and streaming style guides (BBC,
//! Netflix, EBU): short lines, at most two of them, broken at sentence and clause
//! boundaries and balanced; cues long enough to notice and short enough to stay in
//! step with the speech; a reading speed people can follow; a visible gap between
//! cues. They are written here by hand because no maintained crate implements them:
//! subtitle crates parse and write formats, and text-wrapping crates fill lines
//! greedily, with no notion of reading speed, frame gaps or balanced lines.
//!
//! [`cues_from_words`] works in three steps:
//! 1. words become atoms, the pieces a break may fall between (a contraction split
//!    by the recogniser is glued back; see `atoms`);
//! 2. a dynamic programme over the atoms chooses where cues end: every possible cue
//!    is scored for its line layout (`layout`), the kind of boundary it ends at
//!    (sentence, clause, word; a pause helps), and the reading speed and duration
//!    the surrounding silence allows, and the cheapest sequence wins. A pause longer
//!    than [`CaptionProfile::max_pause`] always ends a cue, and no cue holds more
//!    text than its lines fit or more speech than [`CaptionProfile::max_duration`];
//! 3. each cue is timed (`timing`).
//!
//! Speech faster than the reading-speed ceiling over a whole stretch cannot be
//! fixed by timing or splitting (splitting does not create time); only editing the
//! text can, so such cues come out as fast as the speech and [`check`] reports them.

mod atoms;
mod check;
mod layout;
mod refit;
mod retime;
mod timing;

use serde::{Deserialize, Serialize};

pub use check::{Severity, Violation, ViolationKind, check};
pub use refit::{Refitted, refit, timed_words};
pub use retime::{CueShift, Retimed, retime, time_script};

use crate::cue::{Cue, Millis};
use crate::transcript::Word;
use atoms::{Boundary, atoms, ms};
use layout::{Layout, Text, layout};
use timing::Span;

/// The caption rules for one kind of output. Languages or clients with other
/// conventions get their own profile; [`CaptionProfile::broadcast`] is the default.
///
/// In JSON the durations are integers of milliseconds named `*_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionProfile {
    /// The most characters on one line.
    pub max_line_chars: usize,
    /// The most lines in one cue.
    pub max_lines: usize,
    /// The shortest a cue may be shown.
    #[serde(rename = "min_duration_ms")]
    pub min_duration: Millis,
    /// The longest a cue may be shown.
    #[serde(rename = "max_duration_ms")]
    pub max_duration: Millis,
    /// The comfortable reading speed, characters per second: met wherever the
    /// silences around a cue allow it.
    pub target_cps: f64,
    /// The reading-speed ceiling, characters per second.
    pub max_cps: f64,
    /// The least time between one cue's end and the next cue's start.
    #[serde(rename = "min_gap_ms")]
    pub min_gap: Millis,
    /// How long a cue may stay up after its last word when nothing else needs it to.
    #[serde(rename = "max_tail_ms")]
    pub max_tail: Millis,
    /// Gaps between cues shorter than this are closed down to `min_gap`.
    #[serde(rename = "chain_below_ms")]
    pub chain_below: Millis,
    /// A silence between words longer than this always ends the cue.
    #[serde(rename = "max_pause_ms")]
    pub max_pause: Millis,
}

impl CaptionProfile {
    /// Broadcast rules: 42 characters by 2 lines, 0.833 to 7 s, 17 characters per
    /// second where possible and never over 20, 2 frames (83 ms at 24 fps) between
    /// cues, a tail of up to 0.5 s, a new cue after a pause of over 1 s.
    pub const fn broadcast() -> CaptionProfile {
        CaptionProfile {
            max_line_chars: 42,
            max_lines: 2,
            min_duration: Millis(833),
            max_duration: Millis(7_000),
            target_cps: 17.0,
            max_cps: 20.0,
            min_gap: Millis(83),
            max_tail: Millis(500),
            chain_below: Millis(500),
            max_pause: Millis(1_000),
        }
    }
}

impl Default for CaptionProfile {
    fn default() -> CaptionProfile {
        CaptionProfile::broadcast()
    }
}

/// The characters of `text` as reading speed counts them: letters, digits, spaces
/// and punctuation, but not line breaks.
pub fn characters(text: &str) -> usize {
    text.chars().filter(|c| !matches!(c, '\n' | '\r')).count()
}

/// The reading speed a cue asks of its viewer, in characters per second; infinite
/// when the cue has text but no duration.
pub fn chars_per_second(cue: &Cue) -> f64 {
    let chars = characters(&cue.text) as f64;
    let secs = cue.duration().as_secs_f64();
    if chars == 0.0 { 0.0 } else { chars / secs }
}

/// Sets the text of one cue on lines by the profile's rules: one line if it fits,
/// else the fewest balanced lines up to `max_lines`, broken at sentence and clause
/// boundaries where possible. Text too long for `max_lines` lines is wrapped at
/// `max_line_chars` on as many lines as it needs (the rule checker reports it).
pub fn set_lines(text: &str, profile: &CaptionProfile) -> String {
    let words: Vec<Word> = text
        .split_whitespace()
        .map(|w| Word { text: w.to_owned(), start: Millis(0), end: Millis(0), probability: 1.0 })
        .collect();
    let set = Text::new(atoms(&words));
    let n = set.atoms.len();
    if n == 0 {
        return String::new();
    }
    if let Some(layout) = layout(&set, 0, n, profile) {
        return layout.render(&set, 0, n);
    }
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if characters(line) + 1 + characters(word) <= profile.max_line_chars => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines.join("\n")
}

/// Turns recognised words into cues that follow `profile`.
///
/// Never panics, whatever the words: empty input gives no cues, words without text
/// are skipped, timings that go backwards are repaired, and a word longer than a
/// line (a URL) gets a cue of its own. The text of the cues, lines joined by
/// spaces, is the words' text in order.
pub fn cues_from_words(words: &[Word], profile: &CaptionProfile) -> Vec<Cue> {
    let text = Text::new(atoms(words));
    let n = text.atoms.len();
    if n == 0 {
        return Vec::new();
    }
    let parts = segment(&text, profile);
    let texts: Vec<String> = parts.iter().map(|(a, b, l)| l.render(&text, *a, *b)).collect();
    let spans: Vec<Span> = parts
        .iter()
        .zip(&texts)
        .map(|((a, b, _), t)| Span {
            first_start: text.atoms[*a].start,
            last_end: text.atoms[b - 1].end,
            chars: characters(t),
        })
        .collect();
    let times = timing::time(&spans, profile);
    texts
        .into_iter()
        .zip(times)
        .map(|(text, (start, end))| Cue {
            start: Millis(start.max(0) as u64),
            end: Millis(end.max(0) as u64),
            text,
        })
        .collect()
}

/// Every cue costs this much, so that text is not cut into more cues than it needs.
const CUE: f64 = 10.0;

/// The cost of ending a cue after each kind of boundary.
fn cue_break_cost(b: Boundary) -> f64 {
    match b {
        Boundary::Sentence => 0.0,
        Boundary::Clause => 15.0,
        Boundary::Word => 40.0,
    }
}

/// A pause in speech is a natural place for a new cue, worth this much per 100 ms,
/// up to a second.
const PAUSE_BONUS_PER_100_MS: f64 = 1.0;

/// Reading speed over the comfortable target, per character per second.
const OVER_TARGET_PER_CPS: f64 = 20.0;

/// Reading speed over the ceiling, and per character per second beyond it: higher
/// than anything a layout or a boundary costs, so only unavoidable.
const OVER_CEILING: f64 = 1_000.0;
const OVER_CEILING_PER_CPS: f64 = 100.0;

/// A cue that cannot be shown for the minimum duration, and per 100 ms short.
const TOO_SHORT: f64 = 500.0;
const TOO_SHORT_PER_100_MS: f64 = 10.0;

/// Chooses where cues end: the cheapest sequence of cues `(first atom, end atom,
/// layout)` covering all atoms.
fn segment(text: &Text, profile: &CaptionProfile) -> Vec<(usize, usize, Layout)> {
    let n = text.atoms.len();
    let single = Layout { cost: 0.0, breaks: Vec::new() };
    let mut best = vec![f64::INFINITY; n + 1];
    best[0] = 0.0;
    // A one-atom cue always fits, so every position is reachable from the one
    // before; that is also the fallback should a profile make every cost NaN.
    let mut choice: Vec<(usize, Layout)> = (0..=n).map(|j| (j.saturating_sub(1), single.clone())).collect();
    let max_pause = ms(profile.max_pause);
    let max_duration = ms(profile.max_duration);
    let most_chars = profile.max_lines.max(1).saturating_mul(profile.max_line_chars.saturating_add(1));
    for i in 0..n {
        if !best[i].is_finite() {
            continue;
        }
        for j in (i + 1)..=n {
            let last = &text.atoms[j - 1];
            if j > i + 1
                && (last.start - text.atoms[j - 2].end > max_pause
                    || last.end - text.atoms[i].start > max_duration
                    || text.len(i, j) > most_chars)
            {
                break;
            }
            // Adding an atom never makes text fit in fewer lines, so once a run
            // does not fit no longer run will.
            let Some(layout) = layout(text, i, j, profile) else { break };
            let cost = best[i] + cue_cost(text, i, j, &layout, profile);
            if cost < best[j] {
                best[j] = cost;
                choice[j] = (i, layout);
            }
        }
    }
    let mut parts = Vec::new();
    let mut j = n;
    while j > 0 {
        let (i, layout) = std::mem::replace(&mut choice[j], (0, single.clone()));
        parts.push((i, j, layout));
        j = i;
    }
    parts.reverse();
    parts
}

/// How bad a cue of atoms `i..j` set as `layout` is.
///
/// The reading speed is judged on the longest time the cue could be shown without
/// crowding its neighbours: from its first word (or earlier, into the silence
/// before, less the previous cue's tail) to a gap before the next cue's first word.
fn cue_cost(text: &Text, i: usize, j: usize, layout: &Layout, profile: &CaptionProfile) -> f64 {
    let atoms = &text.atoms;
    let n = atoms.len();
    let gap = ms(profile.min_gap);
    let start = atoms[i].start;
    let lead = if i == 0 { start } else { (start - atoms[i - 1].end - gap - ms(profile.max_tail)).max(0) };
    let available_end = if j < n { atoms[j].start - gap } else { i64::MAX / 4 };
    let window = (available_end - (start - lead)).min(ms(profile.max_duration));

    let mut cost = CUE + layout.cost;
    if j < n {
        let pause = atoms[j].start - atoms[j - 1].end;
        if pause <= ms(profile.max_pause) {
            let bonus = PAUSE_BONUS_PER_100_MS * (pause.clamp(0, 1_000) as f64 / 100.0);
            cost += cue_break_cost(atoms[j - 1].after) - bonus;
        }
    }
    // Line breaks replace a space, which reading speed does not count.
    let chars = text.len(i, j).saturating_sub(layout.breaks.len()) as f64;
    let cps = if window > 0 { chars * 1000.0 / window as f64 } else { f64::INFINITY };
    if cps > profile.max_cps {
        cost += OVER_CEILING + OVER_CEILING_PER_CPS * (cps - profile.max_cps).min(1_000.0);
    } else if cps > profile.target_cps {
        cost += OVER_TARGET_PER_CPS * (cps - profile.target_cps);
    }
    let min_duration = ms(profile.min_duration);
    if window < min_duration {
        cost += TOO_SHORT + TOO_SHORT_PER_100_MS * ((min_duration - window).min(100_000) as f64 / 100.0);
    }
    cost
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod set_lines_tests {
    use super::*;

    #[test]
    fn one_cue_is_set_on_balanced_lines_or_wrapped_when_too_long() {
        let p = CaptionProfile::default();
        assert_eq!(set_lines("Hola a todos.", &p), "Hola a todos.");
        let two = set_lines("Esta es una frase bastante larga que no cabe en una sola línea.", &p);
        let lines: Vec<&str> = two.lines().collect();
        assert_eq!(lines.len(), 2, "{two}");
        assert!(lines.iter().all(|l| characters(l) <= 42), "{two}");
        let long = "palabra ".repeat(20);
        let wrapped = set_lines(&long, &p);
        assert!(wrapped.lines().count() > 2 && wrapped.lines().all(|l| characters(l) <= 42), "{wrapped}");
        assert_eq!(set_lines("  ", &p), "");
    }
}
