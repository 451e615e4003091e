//! Timing: when each cue appears and disappears, once the words of every cue are
//! chosen.
//!
//! A cue starts with its first word and ends with its last. It then grows, in this
//! order, until it meets each need that the silences around it allow: first the hard
//! ones (the minimum duration and the reading-speed ceiling), then the comfortable
//! reading speed, then a short natural tail. Growing means moving the end later
//! into the following silence and, only when that is not enough, the start earlier
//! into the preceding one, always keeping the minimum gap to the neighbours. The
//! hard needs of every cue are served before any cue's comfort, so one cue's
//! comfort never takes the time another cue must have.

use super::CaptionProfile;
use super::atoms::ms;

/// Where a cue's words are and how much text it shows.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    /// The first word's start, in milliseconds.
    pub first_start: i64,
    /// The last word's end, in milliseconds; not before `first_start`.
    pub last_end: i64,
    /// Characters shown, as the reading speed counts them.
    pub chars: usize,
}

/// No limit: beyond the end of the last cue there is only silence.
const NO_LIMIT: i64 = 1 << 60;

/// Start and end, in milliseconds, of one cue per span. Spans are in order and do
/// not overlap; the result never overlaps, keeps `min_gap` between cues, and every
/// cue lasts between 1 ms and `max_duration` even when the word timings were
/// nonsense.
pub(super) fn time(spans: &[Span], profile: &CaptionProfile) -> Vec<(i64, i64)> {
    let gap = ms(profile.min_gap);
    let min_duration = ms(profile.min_duration);
    let max_duration = ms(profile.max_duration).max(1);
    let n = spans.len();
    let mut t: Vec<(i64, i64)> =
        spans.iter().map(|s| (s.first_start, s.last_end.min(s.first_start + max_duration))).collect();
    let ceiling = |t: &[(i64, i64)], c: usize| if c + 1 < n { t[c + 1].0 - gap } else { NO_LIMIT };
    let floor = |t: &[(i64, i64)], c: usize| if c > 0 { t[c - 1].1 + gap } else { 0 };

    // Words of the next cue may start less than a gap after this cue's last word
    // ends: this cue gives way, since its text has been up the whole time.
    for c in 0..n {
        t[c].1 = t[c].1.min(ceiling(&t, c));
    }
    for rate in [profile.max_cps, profile.target_cps] {
        for c in 0..n {
            let need = needed(spans[c].chars, rate, min_duration).min(max_duration);
            let (start, end) = t[c];
            if end - start >= need {
                continue;
            }
            let end = (start + need).min(ceiling(&t, c)).max(end);
            let start = (end - need).max(floor(&t, c)).min(start);
            t[c] = (start, end);
        }
    }
    let tail = ms(profile.max_tail);
    let chain = ms(profile.chain_below);
    for c in 0..n {
        let (start, end) = t[c];
        let ceiling = ceiling(&t, c);
        let mut new_end = end.max((spans[c].last_end + tail).min(ceiling));
        // A flash of nothing between two cues is more distracting than a cue that
        // stays a little longer, so short gaps close down to the minimum.
        if ceiling < NO_LIMIT && ceiling - new_end < chain {
            new_end = new_end.max(ceiling);
        }
        t[c].1 = new_end.min(start + max_duration).max(end);
    }
    legalise(&mut t, gap, min_duration, max_duration);
    t
}

/// How long `chars` characters must stay up to be read at `rate` characters per
/// second, and at least `min_duration`.
fn needed(chars: usize, rate: f64, min_duration: i64) -> i64 {
    let reading =
        if rate > 0.0 && rate.is_finite() { (chars as f64 * 1000.0 / rate).ceil() as i64 } else { 0 };
    reading.max(min_duration)
}

/// Makes the times well-formed whatever the input was. With sane word timings this
/// changes nothing; with words piled on one instant (all zero, say) it pushes cues
/// apart so that each is at least shown and none overlaps.
fn legalise(t: &mut [(i64, i64)], gap: i64, min_duration: i64, max_duration: i64) {
    let mut prev_end: Option<i64> = None;
    for (start, end) in t.iter_mut() {
        *start = (*start).max(0);
        // Saturating: an absurd profile (gaps of centuries) must not overflow.
        if let Some(prev) = prev_end
            && *start < prev.saturating_add(gap)
        {
            *start = prev.saturating_add(gap);
            *end = (*end).max(start.saturating_add(min_duration));
        }
        if *end <= *start {
            *end = start.saturating_add(min_duration.max(1));
        }
        *end = (*end).min(start.saturating_add(max_duration));
        prev_end = Some(*end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(first_start: i64, last_end: i64, chars: usize) -> Span {
        Span { first_start, last_end, chars }
    }

    fn p() -> CaptionProfile {
        CaptionProfile::default()
    }

    #[test]
    fn a_lone_cue_gets_its_tail_and_comfortable_reading_time() {
        // 34 characters at 17 cps need 2 s; the words take 1.5 s.
        assert_eq!(time(&[span(1_000, 2_500, 34)], &p()), [(1_000, 3_000)]);
        // Short text: only the 0.5 s tail.
        assert_eq!(time(&[span(1_000, 2_500, 10)], &p()), [(1_000, 3_000)]);
        assert_eq!(time(&[span(1_000, 3_000, 10)], &p()), [(1_000, 3_500)]);
    }

    #[test]
    fn a_short_word_lasts_the_minimum() {
        assert_eq!(time(&[span(1_000, 1_100, 3)], &p()), [(1_000, 1_833)]);
    }

    #[test]
    fn extends_backwards_when_the_next_cue_is_close() {
        // 40 characters need 2 s at 20 cps, 2.353 s at 17; only 1.5 s until the next
        // cue's words, and 2 s of silence before.
        let t = time(&[span(0, 500, 5), span(3_000, 4_400, 40), span(4_583, 9_000, 30)], &p());
        assert_eq!(t[1].1, 4_500);
        assert_eq!(t[1].1 - t[1].0, 2_353);
        assert!(t[1].0 >= t[0].1 + 83);
    }

    #[test]
    fn short_gaps_close_to_the_minimum_gap() {
        let t = time(&[span(0, 1_000, 10), span(1_300, 2_400, 10)], &p());
        assert_eq!(t[0].1, 1_217);
    }

    #[test]
    fn piled_up_timings_are_pushed_apart() {
        let t = time(&[span(0, 0, 10), span(0, 0, 10), span(0, 0, 10)], &p());
        for pair in t.windows(2) {
            assert!(pair[1].0 >= pair[0].1 + 83, "{t:?}");
        }
        assert!(t.iter().all(|(s, e)| e > s));
    }
}
