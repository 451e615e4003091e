//! SubRip (SRT): numbered cues with comma-decimal times, the format most editors
//! and tools exchange.

use std::fmt::Write as _;

use super::{SubtitleError, SubtitleFormat, excerpt, lines, parse_time, parse_timing, text_lines};
use crate::cue::{Cue, Millis};

/// The cues as an SRT file: each numbered from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`,
/// its text lines, and a blank line between cues.
///
/// SRT has no escaping, so text is written as it is, except that `-->` becomes
/// `->` (a reader could take the line for a timing line); lines are trimmed and
/// blank ones dropped; cues without text are left out and the numbering closes up.
pub fn write(cues: &[Cue]) -> String {
    let mut out = String::new();
    let mut number = 0;
    for cue in cues {
        let text = cue_lines(cue);
        if text.is_empty() {
            continue;
        }
        number += 1;
        if number > 1 {
            out.push('\n');
        }
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{number}\n{} --> {}", time(cue.start), time(cue.end));
        for line in text {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The lines of a cue's text as [`write`] writes them: trimmed, blank ones left
/// out, no arrow that would read as a timing line. None: the cue is left out.
pub fn cue_lines(cue: &Cue) -> Vec<String> {
    text_lines(&cue.text).map(|l| l.replace("-->", "->")).collect()
}

/// `HH:MM:SS,mmm`.
fn time(m: Millis) -> String {
    m.to_string().replace('.', ",")
}

/// Reads an SRT file into cues with plain text.
///
/// Accepts a byte-order mark, CRLF or CR line endings, cues without their number,
/// a missing blank line before a cue's number, `.` as well as `,` before the
/// milliseconds and one-digit hours (both common in the wild), and coordinates after
/// the end time. Formatting tags (`<i>`, `<b>`, `<u>`, `<s>`, `<font …>`) and
/// `{\an8}`-style overrides are dropped. Rejects anything else with the 1-based
/// line that is wrong.
pub fn read(input: &str) -> Result<Vec<Cue>, SubtitleError> {
    let lines = lines(input);
    let blank = |k: usize| lines[k].trim().is_empty();
    let timing_at = |k: usize| lines.get(k).is_some_and(|l| l.contains("-->"));
    let mut cues = Vec::new();
    let mut k = 0;
    loop {
        while k < lines.len() && blank(k) {
            k += 1;
        }
        let Some(&line) = lines.get(k) else { break };
        let timing = if timing_at(k) {
            k
        } else if is_number(line) {
            if !timing_at(k + 1) {
                let found = lines.get(k + 1).copied().unwrap_or_default();
                return Err(SubtitleError::ExpectedTiming {
                    format: SubtitleFormat::Srt,
                    line: k + 2,
                    found: excerpt(found),
                });
            }
            k + 1
        } else {
            return Err(SubtitleError::ExpectedCueNumber { line: k + 1, found: excerpt(line) });
        };
        let (start, end) = parse_timing(lines[timing], timing + 1, SubtitleFormat::Srt, |s| {
            parse_time(s, &[',', '.'], false)
        })?;
        k = timing + 1;
        let mut text = Vec::new();
        // The text ends at a blank line or, in files that forgot it, where the next
        // cue's number and timing line (or its timing line alone) begin.
        let text_ends = |k: usize| {
            k >= lines.len() || blank(k) || timing_at(k) || (is_number(lines[k]) && timing_at(k + 1))
        };
        while !text_ends(k) {
            let line = plain(lines[k]);
            let line = line.trim();
            if !line.is_empty() {
                text.push(line.to_owned());
            }
            k += 1;
        }
        cues.push(Cue { start, end, text: text.join("\n") });
    }
    Ok(cues)
}

fn is_number(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit())
}

/// A text line without formatting tags. Anything else in angle brackets or braces
/// is text: SRT has no escaping, so `a < b` means what it says.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(['<', '{']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let skipped = if tail.starts_with("{\\") { tail.find('}').map(|close| close + 1) } else { tag(tail) };
        match skipped {
            Some(len) => rest = &tail[len..],
            None => {
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The length of a formatting tag at the start of `s`, if there is one.
fn tag(s: &str) -> Option<usize> {
    let close = s.find('>')?;
    let inner = s[1..close].strip_prefix('/').unwrap_or(&s[1..close]);
    let name = inner.split([' ', '\t']).next().unwrap_or_default().to_ascii_lowercase();
    matches!(name.as_str(), "i" | "b" | "u" | "s" | "font").then_some(close + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn cue(start: u64, end: u64, text: &str) -> Cue {
        Cue { start: Millis(start), end: Millis(end), text: text.into() }
    }

    #[test]
    fn writes_the_expected_file() {
        let cues = [
            cue(1_000, 2_500, "Hello there.\nHow are you?"),
            cue(2_600, 2_600, "  "),
            cue(3_723_046, 3_724_000, "Fine"),
        ];
        assert_eq!(
            write(&cues),
            "1\n00:00:01,000 --> 00:00:02,500\nHello there.\nHow are you?\n\n\
             2\n01:02:03,046 --> 01:02:04,000\nFine\n"
        );
        assert_eq!(write(&[]), "");
    }

    #[test]
    fn never_writes_an_arrow_or_a_blank_line_in_text() {
        assert_eq!(
            write(&[cue(0, 1_000, "a --> b\n\n c ")]),
            "1\n00:00:00,000 --> 00:00:01,000\na -> b\nc\n"
        );
    }

    #[test]
    fn round_trips() {
        let cues = vec![
            cue(0, 833, "Tom & Jerry <3 > 2"),
            cue(916, 4_000, "first line\nsecond line"),
            cue(59_999, 61_000, "«quotes», émojis 🎬 and {braces}"),
            cue(360_000_000, 360_001_000, "a hundred hours in"),
        ];
        assert_eq!(read(&write(&cues)), Ok(cues));
    }

    #[test]
    fn reads_a_file_with_every_awkward_part() {
        let file = "\u{feff}1\r\n\
            00:00:01,000 --> 00:00:04,000\r\n\
            <i>We are in</i> <font color=\"#ffff00\">New York</font>\r\n\
            \r\n\
            \r\n\
            2\r\n\
            00:00:04.500 --> 00:00:06.000 X1:40 X2:600 Y1:20 Y2:50\r\n\
            {\\an8}Top of the screen, a < b\r\n\
            <B>loud</B>\r\n\
            3\r\n\
            0:00:07,000 --> 0:00:08,000\r\n\
            no blank line before my number\r\n\
            \r\n\
            00:00:09,000 --> 00:00:10,000\r\n\
            no number at all\r\n";
        assert_eq!(
            read(file),
            Ok(vec![
                cue(1_000, 4_000, "We are in New York"),
                cue(4_500, 6_000, "Top of the screen, a < b\nloud"),
                cue(7_000, 8_000, "no blank line before my number"),
                cue(9_000, 10_000, "no number at all"),
            ])
        );
    }

    #[test]
    fn rejects_garbage_naming_the_line() {
        let err = |file: &str| read(file).expect_err("garbage");
        let e = err("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n");
        assert_eq!(e, SubtitleError::ExpectedCueNumber { line: 1, found: "WEBVTT".into() });
        assert_eq!(e.code(), "subtitle_expected_cue_number");
        assert_eq!(e.to_string(), "SRT line 1: expected a cue number or a timing line, found \"WEBVTT\"");

        let e = err("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\nhello\n");
        assert_eq!(
            e,
            SubtitleError::ExpectedTiming { format: SubtitleFormat::Srt, line: 6, found: "hello".into() }
        );
        assert!(
            e.to_string().starts_with("SRT line 6: expected a cue timing line like \"00:00:01,000 --> "),
            "{e}"
        );

        let e = err("1\n00:00:01,000 --> 00:00:61,000\n");
        assert_eq!(
            e,
            SubtitleError::BadTimestamp {
                format: SubtitleFormat::Srt,
                line: 2,
                found: "00:00:61,000".into()
            }
        );

        assert_eq!(err("1\n").code(), "subtitle_expected_timing");
        assert_eq!(err("1\n00:00:02,000 --> 00:00:01,000\nx\n").code(), "subtitle_end_before_start");
        assert_eq!(err("1\n01:00,000 --> 02:00,000\nno hours\n").code(), "subtitle_bad_timestamp");
        assert_eq!(err("\u{0}\u{1}PK\u{3}\u{4}binary").code(), "subtitle_expected_cue_number");
    }

    #[test]
    fn an_empty_file_has_no_cues() {
        assert_eq!(read(""), Ok(vec![]));
        assert_eq!(read("\u{feff}\r\n\r\n"), Ok(vec![]));
    }
}
