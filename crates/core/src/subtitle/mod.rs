//! Subtitle files: [`vtt`] (WebVTT, what browsers and HLS players load) and [`srt`]
//! (SubRip, what editors and most other tools exchange), each with a writer and a
//! reader, and [`file`]: a user's file in any common encoding, either format.
//!
//! Both work on plain [`Cue`](crate::Cue) text. Writers make files that every
//! player accepts: lines trimmed, blank lines inside a cue dropped (a blank line ends
//! a cue in both formats), cues with no text left out, `\n` line endings. Readers
//! accept what real files contain (a byte-order mark, CRLF, cue identifiers, cue
//! settings, comments and styles, formatting tags, which they drop) and reject
//! anything else with the 1-based line that is wrong.

pub mod file;
pub mod srt;
pub mod vtt;

pub use file::SubtitleFile;

use std::fmt;

use crate::cue::Millis;
use crate::error::ErrorCode;

/// A subtitle file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubtitleFormat {
    /// WebVTT, `.vtt`.
    WebVtt,
    /// SubRip, `.srt`.
    Srt,
}

impl fmt::Display for SubtitleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubtitleFormat::WebVtt => "WebVTT",
            SubtitleFormat::Srt => "SRT",
        })
    }
}

/// Why a subtitle file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubtitleError {
    /// The file does not start with the `WEBVTT` signature.
    #[error("not a WebVTT file: line 1 must start with \"WEBVTT\", found {found:?}")]
    NotWebVtt {
        /// The start of the first line.
        found: String,
    },
    /// A line where a cue's timing line belongs is something else.
    #[error("{format} line {line}: expected a cue timing line like \"{}\", found {found:?}", example(*format))]
    ExpectedTiming {
        /// The file's format.
        format: SubtitleFormat,
        /// The line, from 1.
        line: usize,
        /// The start of that line.
        found: String,
    },
    /// An SRT cue does not start with its number.
    #[error("SRT line {line}: expected a cue number or a timing line, found {found:?}")]
    ExpectedCueNumber {
        /// The line, from 1.
        line: usize,
        /// The start of that line.
        found: String,
    },
    /// A timing line holds a timestamp that cannot be read.
    #[error("{format} line {line}: bad timestamp {found:?}, expected one like \"{}\"", example_time(*format))]
    BadTimestamp {
        /// The file's format.
        format: SubtitleFormat,
        /// The line, from 1.
        line: usize,
        /// The timestamp as written.
        found: String,
    },
    /// The bytes are not text (binary data, or no encoding fits them).
    #[error("not a subtitle file: {why}")]
    NotText {
        /// What gave it away.
        why: String,
    },
    /// The file holds no cue with text.
    #[error("the {format} file has no cues: nothing to use as a transcript")]
    Empty {
        /// The file's format.
        format: SubtitleFormat,
    },
    /// Text without cue timing lines: a plain script.
    #[error(
        "no cue times (no \"-->\" line): this reads as a plain script; give SRT or WebVTT with a time for each cue"
    )]
    Untimed,
    /// A cue ends before it starts.
    #[error("{format} line {line}: the cue ends at {end}, before it starts at {start}")]
    EndBeforeStart {
        /// The file's format.
        format: SubtitleFormat,
        /// The line, from 1.
        line: usize,
        /// The start as written.
        start: Millis,
        /// The end as written.
        end: Millis,
    },
}

impl ErrorCode for SubtitleError {
    fn code(&self) -> &'static str {
        match self {
            SubtitleError::NotWebVtt { .. } => "subtitle_not_webvtt",
            SubtitleError::ExpectedTiming { .. } => "subtitle_expected_timing",
            SubtitleError::ExpectedCueNumber { .. } => "subtitle_expected_cue_number",
            SubtitleError::BadTimestamp { .. } => "subtitle_bad_timestamp",
            SubtitleError::EndBeforeStart { .. } => "subtitle_end_before_start",
            SubtitleError::NotText { .. } => "subtitle_not_text",
            SubtitleError::Empty { .. } => "subtitle_empty",
            SubtitleError::Untimed => "subtitle_untimed",
        }
    }

    fn is_client_error(&self) -> bool {
        // Subtitle files come from users; a file that cannot be read is theirs to fix.
        true
    }
}

fn example(format: SubtitleFormat) -> &'static str {
    match format {
        SubtitleFormat::WebVtt => "00:00:01.000 --> 00:00:02.500",
        SubtitleFormat::Srt => "00:00:01,000 --> 00:00:02,500",
    }
}

fn example_time(format: SubtitleFormat) -> &'static str {
    match format {
        SubtitleFormat::WebVtt => "00:01:02.500",
        SubtitleFormat::Srt => "00:01:02,500",
    }
}

/// The start of a bad line for an error message: enough to find it, never a whole
/// binary file.
fn excerpt(line: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = line.chars().take(MAX).collect();
    if line.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// The lines of a file without its byte-order mark, split at LF, CRLF or CR.
fn lines(input: &str) -> Vec<&str> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(at) = rest.find(['\r', '\n']) {
        out.push(&rest[..at]);
        let skip = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[at + skip..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The lines of a cue's text as a file may hold them: trimmed, none blank.
fn text_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty())
}

/// Reads `H+:MM:SS<sep>mmm`, or `MM:SS<sep>mmm` when hours are optional.
fn parse_time(s: &str, separators: &[char], hours_optional: bool) -> Option<Millis> {
    let digits = |p: &str, len: Option<usize>| {
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && len.is_none_or(|l| p.len() == l))
            .then(|| p.parse::<u64>().ok())
            .flatten()
    };
    let (clock, fraction) = s.split_once(separators)?;
    let ms = digits(fraction, Some(3))?;
    let parts: Vec<&str> = clock.split(':').collect();
    let (h, m, sec) = match parts[..] {
        [h, m, s] if h.len() <= 9 => (digits(h, None)?, digits(m, Some(2))?, digits(s, Some(2))?),
        [m, s] if hours_optional => (0, digits(m, Some(2))?, digits(s, Some(2))?),
        _ => return None,
    };
    (m < 60 && sec < 60).then_some(Millis(((h * 60 + m) * 60 + sec) * 1000 + ms))
}

/// Splits a timing line `start --> end[ anything]` into its two timestamps, parsed
/// by `parse`; what follows the end (cue settings, SRT coordinates) is ignored.
fn parse_timing(
    line: &str,
    number: usize,
    format: SubtitleFormat,
    parse: impl Fn(&str) -> Option<Millis>,
) -> Result<(Millis, Millis), SubtitleError> {
    let bad = |found: &str| SubtitleError::BadTimestamp { format, line: number, found: excerpt(found) };
    let Some((left, right)) = line.split_once("-->") else {
        return Err(SubtitleError::ExpectedTiming { format, line: number, found: excerpt(line) });
    };
    let start_text = left.trim();
    let end_text = right.split_whitespace().next().unwrap_or_default();
    let start = parse(start_text).ok_or_else(|| bad(start_text))?;
    let end = parse(end_text).ok_or_else(|| bad(end_text))?;
    if end < start {
        return Err(SubtitleError::EndBeforeStart { format, line: number, start, end });
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_every_kind_of_line_ending() {
        assert_eq!(lines("\u{feff}a\r\nb\rc\n\nd"), ["a", "b", "c", "", "d"]);
        assert_eq!(lines("a\n"), ["a"]);
        assert!(lines("").is_empty());
    }

    #[test]
    fn parses_timestamps_strictly() {
        let vtt = |s| parse_time(s, &['.'], true);
        assert_eq!(vtt("01:02:03.456"), Some(Millis(3_723_456)));
        assert_eq!(vtt("102:00:00.000"), Some(Millis(367_200_000)));
        assert_eq!(vtt("02:03.456"), Some(Millis(123_456)));
        for bad in [
            "",
            "1:02:03",
            "00:60:00.000",
            "00:00:60.000",
            "00:0:00.000",
            "00:00:00.00",
            "00:00:00,000",
            "a:00:00.000",
            "00:00:00.0000",
            "-1:00:00.000",
            "9999999999:00:00.000",
        ] {
            assert_eq!(vtt(bad), None, "{bad:?}");
        }
        assert_eq!(parse_time("02:03.456", &[',', '.'], false), None);
        assert_eq!(parse_time("0:00:01,500", &[',', '.'], false), Some(Millis(1_500)));
    }

    #[test]
    fn errors_have_stable_codes_and_point_at_the_line() {
        let e = parse_timing("00:00:01.000 -> 00:00:02.000", 7, SubtitleFormat::WebVtt, |s| {
            parse_time(s, &['.'], true)
        })
        .expect_err("no arrow");
        assert_eq!(e.code(), "subtitle_expected_timing");
        assert!(e.to_string().starts_with("WebVTT line 7: expected a cue timing line"), "{e}");
        assert!(e.is_client_error());
        assert_eq!(excerpt(&"x".repeat(100)).chars().count(), 61);
    }
}
