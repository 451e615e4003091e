//! The rule checker: which cues break which caption rule, in words a person editing
//! them can act on. The review page runs it as the user types.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{CaptionProfile, characters, chars_per_second};
use crate::cue::{Cue, Millis};

/// How much a violation matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The cue breaks a rule of the profile.
    Error,
    /// The cue keeps the rules but could be better.
    Warning,
}

/// Which rule a cue breaks. Serialises as a stable snake_case string (the same as
/// [`ViolationKind::as_str`]), which clients may match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// The cue has no text.
    EmptyText,
    /// A line inside the text is blank; writers drop it, since a blank line ends a
    /// cue in WebVTT and SRT.
    BlankLine,
    /// A line has more characters than the profile allows.
    LineTooLong,
    /// The cue has more lines than the profile allows.
    TooManyLines,
    /// The cue does not end after it starts.
    InvalidTiming,
    /// The cue is shown for less than the minimum duration.
    TooShort,
    /// The cue is shown for longer than the maximum duration.
    TooLong,
    /// The cue asks for a reading speed over the ceiling.
    TooFast,
    /// The cue asks for a reading speed over the comfortable target, still under
    /// the ceiling.
    AboveTargetSpeed,
    /// The cue starts before the previous one ends.
    Overlap,
    /// The cue starts less than the minimum gap after the previous one ends.
    GapTooSmall,
}

impl ViolationKind {
    /// The stable machine name, e.g. `line_too_long`.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::EmptyText => "empty_text",
            ViolationKind::BlankLine => "blank_line",
            ViolationKind::LineTooLong => "line_too_long",
            ViolationKind::TooManyLines => "too_many_lines",
            ViolationKind::InvalidTiming => "invalid_timing",
            ViolationKind::TooShort => "too_short",
            ViolationKind::TooLong => "too_long",
            ViolationKind::TooFast => "too_fast",
            ViolationKind::AboveTargetSpeed => "above_target_speed",
            ViolationKind::Overlap => "overlap",
            ViolationKind::GapTooSmall => "gap_too_small",
        }
    }

    /// How much it matters: everything is an error except what only a comfortable
    /// reading speed or tidy text would avoid.
    pub fn severity(self) -> Severity {
        match self {
            ViolationKind::AboveTargetSpeed | ViolationKind::BlankLine => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken rule of one cue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The index of the cue in the checked slice, from 0.
    pub cue: usize,
    /// Which rule.
    pub kind: ViolationKind,
    /// How much it matters; always `kind.severity()`.
    pub severity: Severity,
    /// What is wrong, for people, e.g. `line 2 has 47 characters; at most 42 fit`.
    /// It does not name the cue: it is shown next to it.
    pub message: String,
}

/// Every rule of `profile` that `cues` break, in cue order. Gaps and overlaps are
/// judged between each cue and the one before it in the slice, and reported on the
/// later cue.
pub fn check(cues: &[Cue], profile: &CaptionProfile) -> Vec<Violation> {
    let mut out = Vec::new();
    for (index, cue) in cues.iter().enumerate() {
        let mut report = |kind: ViolationKind, message: String| {
            out.push(Violation { cue: index, kind, severity: kind.severity(), message });
        };
        check_text(cue, profile, &mut report);
        check_timing(cue, profile, &mut report);
        if let Some(prev) = index.checked_sub(1).map(|i| &cues[i]) {
            if cue.start < prev.end {
                report(
                    ViolationKind::Overlap,
                    format!("starts at {}, before the previous cue ends at {}", cue.start, prev.end),
                );
            } else if cue.start.0 - prev.end.0 < profile.min_gap.0 {
                report(
                    ViolationKind::GapTooSmall,
                    format!(
                        "starts {} ms after the previous cue ends; leave at least {} ms",
                        cue.start.0 - prev.end.0,
                        profile.min_gap.0
                    ),
                );
            }
        }
    }
    out
}

fn check_text(cue: &Cue, profile: &CaptionProfile, report: &mut impl FnMut(ViolationKind, String)) {
    if cue.text.trim().is_empty() {
        report(ViolationKind::EmptyText, "the cue has no text".into());
        return;
    }
    let lines: Vec<&str> = cue.text.trim_matches(['\n', '\r']).lines().collect();
    if lines.iter().any(|l| l.trim().is_empty()) {
        report(ViolationKind::BlankLine, "a blank line inside the text will be dropped".into());
    }
    let lines: Vec<&str> = lines.into_iter().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > profile.max_lines {
        report(
            ViolationKind::TooManyLines,
            format!("{} lines; at most {} fit", lines.len(), profile.max_lines),
        );
    }
    for (n, line) in lines.iter().enumerate() {
        let chars = line.trim().chars().count();
        if chars > profile.max_line_chars {
            report(
                ViolationKind::LineTooLong,
                format!("line {} has {chars} characters; at most {} fit", n + 1, profile.max_line_chars),
            );
        }
    }
}

fn check_timing(cue: &Cue, profile: &CaptionProfile, report: &mut impl FnMut(ViolationKind, String)) {
    if cue.end <= cue.start {
        report(
            ViolationKind::InvalidTiming,
            format!("ends at {}, not after it starts at {}", cue.end, cue.start),
        );
        return;
    }
    let duration = cue.duration();
    if duration < profile.min_duration {
        report(
            ViolationKind::TooShort,
            format!("shown for {}; at least {} is needed", secs(duration), secs(profile.min_duration)),
        );
    }
    if duration > profile.max_duration {
        report(
            ViolationKind::TooLong,
            format!("shown for {}; at most {} is allowed", secs(duration), secs(profile.max_duration)),
        );
    }
    if characters(&cue.text) == 0 {
        return;
    }
    // A hair of tolerance: timings are whole milliseconds, speeds are not.
    let cps = chars_per_second(cue);
    if cps > profile.max_cps + 1e-9 {
        report(
            ViolationKind::TooFast,
            format!(
                "{cps:.1} characters per second; at most {} can be read: show it longer or shorten the text",
                profile.max_cps
            ),
        );
    } else if cps > profile.target_cps + 1e-9 {
        report(
            ViolationKind::AboveTargetSpeed,
            format!("{cps:.1} characters per second; {} or fewer reads comfortably", profile.target_cps),
        );
    }
}

/// `1.250 s`.
fn secs(m: Millis) -> String {
    format!("{:.3} s", m.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start: u64, end: u64, text: &str) -> Cue {
        Cue { start: Millis(start), end: Millis(end), text: text.into() }
    }

    fn kinds(cues: &[Cue]) -> Vec<(usize, ViolationKind)> {
        check(cues, &CaptionProfile::default()).into_iter().map(|v| (v.cue, v.kind)).collect()
    }

    #[test]
    fn a_good_cue_passes() {
        assert_eq!(kinds(&[cue(0, 2_000, "Hello there.\nHow are you?")]), []);
    }

    #[test]
    fn reports_each_broken_rule() {
        use ViolationKind::*;
        let long = "x".repeat(43);
        let cues = [
            cue(0, 4_900, &format!("{long}\nb\nc")),
            cue(5_000, 5_500, "Hi"),
            cue(5_550, 13_000, "fine"),
            cue(12_000, 12_000, "oops"),
            cue(20_000, 21_000, "This line has thirty-two chars.."),
            cue(30_000, 32_000, "Thirty-six characters in two seconds"),
            cue(40_000, 41_000, " \n "),
            cue(50_000, 52_000, "one\n\ntwo"),
        ];
        assert_eq!(
            kinds(&cues),
            [
                (0, TooManyLines),
                (0, LineTooLong),
                (1, TooShort),
                (2, TooLong),
                (2, GapTooSmall),
                (3, InvalidTiming),
                (3, Overlap),
                (4, TooFast),
                (5, AboveTargetSpeed),
                (6, EmptyText),
                (7, BlankLine),
            ]
        );
    }

    #[test]
    fn violations_serialise_with_a_stable_kind_and_a_message() {
        let v = &check(&[cue(0, 500, "Hi")], &CaptionProfile::default())[0];
        let json = serde_json::to_value(v).expect("serialises");
        assert_eq!(json["kind"], "too_short");
        assert_eq!(json["severity"], "error");
        assert_eq!(json["cue"], 0);
        assert_eq!(json["message"], "shown for 0.500 s; at least 0.833 s is needed");
        let back: Violation = serde_json::from_value(json).expect("deserialises");
        assert_eq!(&back, v);
        for kind in [ViolationKind::AboveTargetSpeed, ViolationKind::GapTooSmall] {
            assert_eq!(serde_json::to_value(kind).expect("serialises"), kind.as_str());
        }
    }
}
