//! WebVTT: writing files that browsers and hls.js accept, and reading the files
//! people and other tools make.

use std::fmt::Write as _;

use super::{SubtitleError, SubtitleFormat, excerpt, lines, parse_time, parse_timing, text_lines};
use crate::cue::Cue;

/// The cues as a WebVTT file: the `WEBVTT` signature, then each cue after a blank
/// line as `HH:MM:SS.mmm --> HH:MM:SS.mmm` and its text lines.
///
/// `&`, `<` and `>` are escaped as entities, which also means the text can never
/// contain `-->`; lines are trimmed and blank ones dropped; cues without text are
/// left out. Cues are written in the order given.
pub fn write(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n");
    for cue in cues {
        let mut text = text_lines(&cue.text).map(escape).peekable();
        if text.peek().is_none() {
            continue;
        }
        // Writing to a String cannot fail.
        let _ = writeln!(out, "\n{} --> {}", cue.start, cue.end);
        for line in text {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

fn escape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Reads a WebVTT file into cues with plain text.
///
/// Accepts a byte-order mark, CRLF or CR line endings, text after `WEBVTT` and
/// header lines (`Kind:`, `X-TIMESTAMP-MAP=`), `NOTE`, `STYLE` and `REGION`
/// blocks, cue identifiers, cue settings after the end time, `MM:SS.mmm` times
/// without hours. Markup (`<i>`, `<v Name>`, `<c.class>`, inline timestamps) is
/// dropped and entities are decoded. Rejects a file that does not start with
/// `WEBVTT`, a block that is not a cue, a bad timestamp or a cue that ends before
/// it starts, naming the 1-based line.
pub fn read(input: &str) -> Result<Vec<Cue>, SubtitleError> {
    let lines = lines(input);
    let blank = |k: usize| lines[k].trim().is_empty();
    let first = lines.first().copied().unwrap_or_default();
    if !first.strip_prefix("WEBVTT").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return Err(SubtitleError::NotWebVtt { found: excerpt(first) });
    }
    let mut k = 1;
    // Header lines run to the first blank line; a timing line there means the
    // author forgot that blank line, and cues begin.
    while k < lines.len() && !blank(k) && !lines[k].contains("-->") {
        k += 1;
    }
    let mut cues = Vec::new();
    loop {
        while k < lines.len() && blank(k) {
            k += 1;
        }
        let Some(&line) = lines.get(k) else { break };
        if ["NOTE", "STYLE", "REGION"].iter().any(|word| starts_block(line, word)) {
            while k < lines.len() && !blank(k) {
                k += 1;
            }
            continue;
        }
        let timing = if line.contains("-->") {
            k
        } else {
            // A cue identifier; its timing line must follow.
            match lines.get(k + 1) {
                Some(next) if next.contains("-->") => k + 1,
                Some(next) if !next.trim().is_empty() => {
                    return Err(expected_timing(k + 2, next));
                }
                _ => return Err(expected_timing(k + 1, line)),
            }
        };
        let (start, end) =
            parse_timing(lines[timing], timing + 1, SubtitleFormat::WebVtt, |s| parse_time(s, &['.'], true))?;
        k = timing + 1;
        let mut text = Vec::new();
        // A line with an arrow ends the text, as in the WebVTT parser: it is the
        // next cue's timing line.
        while k < lines.len() && !blank(k) && !lines[k].contains("-->") {
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

fn expected_timing(line: usize, found: &str) -> SubtitleError {
    SubtitleError::ExpectedTiming { format: SubtitleFormat::WebVtt, line, found: excerpt(found) }
}

/// Whether `line` starts a block introduced by `word`, like `NOTE` or `NOTE this`.
fn starts_block(line: &str, word: &str) -> bool {
    line.strip_prefix(word).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// A cue text line without markup and with entities decoded. A `<` or `&` that
/// starts nothing recognisable is kept as written.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(['<', '&']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let skipped = if tail.starts_with('<') {
            tail.find('>').map(|close| close + 1)
        } else {
            entity(tail).map(|(c, len)| {
                out.push(c);
                len
            })
        };
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

/// The character an entity at the start of `s` (`&amp;`, `&#39;`, `&#x2014;`)
/// stands for, and its length in bytes.
fn entity(s: &str) -> Option<(char, usize)> {
    let semicolon = s.find(';').filter(|&at| at <= 10)?;
    let name = &s[1..semicolon];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "lrm" => '\u{200e}',
        "rlm" => '\u{200f}',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)?
        }
    };
    Some((c, semicolon + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use crate::cue::Millis;

    fn cue(start: u64, end: u64, text: &str) -> Cue {
        Cue { start: Millis(start), end: Millis(end), text: text.into() }
    }

    #[test]
    fn writes_the_expected_file() {
        let cues = [cue(1_000, 2_500, "Hello there.\nHow are you?"), cue(3_723_046, 3_724_000, "Fine")];
        assert_eq!(
            write(&cues),
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello there.\nHow are you?\n\n\
             01:02:03.046 --> 01:02:04.000\nFine\n"
        );
        assert_eq!(write(&[]), "WEBVTT\n");
    }

    #[test]
    fn escapes_markup_and_never_writes_an_arrow_or_a_blank_line_in_text() {
        let out = write(&[cue(0, 1_000, "Tom & Jerry <3\n\n  \nx --> y  "), cue(2_000, 3_000, " \n ")]);
        assert_eq!(out, "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nTom &amp; Jerry &lt;3\nx --&gt; y\n");
        let body = out.split_once("\n\n").map(|(_, b)| b).unwrap_or_default();
        assert_eq!(body.matches("-->").count(), 1, "only the timing line has an arrow");
    }

    #[test]
    fn round_trips() {
        let cues = vec![
            cue(0, 833, "Tom & Jerry <3 > 2"),
            cue(916, 4_000, "x --> y\nsecond line"),
            cue(59_999, 61_000, "&amp; stays literal; «quotes» and émojis 🎬"),
            cue(360_000_000, 360_001_000, "a hundred hours in"),
        ];
        assert_eq!(read(&write(&cues)), Ok(cues));
    }

    #[test]
    fn reads_a_file_with_every_awkward_part() {
        let file = "\u{feff}WEBVTT - Interview, part 1\r\n\
            Kind: captions\r\n\
            Language: en\r\n\
            X-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\r\n\
            \r\n\
            STYLE\r\n\
            ::cue { color: yellow }\r\n\
            \r\n\
            REGION\r\n\
            id:bottom width:40% lines:3\r\n\
            \r\n\
            NOTE This file was written by hand\r\n\
            and this note has two lines\r\n\
            \r\n\
            1\r\n\
            00:01.000 --> 00:04.000 align:start position:10%\r\n\
            <v Roger Bingham>We are in New York City</v>\r\n\
            \r\n\
            \r\n\
            intro-2\r\n\
            00:00:04.500 --> 00:00:06.000 line:0\r\n\
            <i>Fish &amp; chips</i> &lt;3 &gt;&nbsp;&#233;&#x2014;\r\n\
            <c.yellow>second</c> <00:00:05.000>line &unknown; a < b\r\n\
            \r\n\
            NOTE\r\n\
            trailing comment\r\n\
            \r\n\
            00:00:07.000 --> 00:00:07.000\r\n";
        let cues = read(file).expect("reads");
        assert_eq!(
            cues,
            [
                cue(1_000, 4_000, "We are in New York City"),
                cue(4_500, 6_000, "Fish & chips <3 >\u{a0}é—\nsecond line &unknown; a < b"),
                cue(7_000, 7_000, ""),
            ]
        );
    }

    #[test]
    fn tolerates_a_missing_blank_line_after_the_header_and_between_cues() {
        let file = "WEBVTT\n00:00:01.000 --> 00:00:02.000\nA\n00:00:03.000 --> 00:00:04.000\nB\n";
        assert_eq!(read(file), Ok(vec![cue(1_000, 2_000, "A"), cue(3_000, 4_000, "B")]));
    }

    #[test]
    fn rejects_garbage_naming_the_line() {
        let err = |file: &str| read(file).expect_err("garbage");
        let e = err("hello\nworld");
        assert_eq!(e.code(), "subtitle_not_webvtt");
        assert_eq!(e.to_string(), "not a WebVTT file: line 1 must start with \"WEBVTT\", found \"hello\"");
        assert_eq!(err("").code(), "subtitle_not_webvtt");
        assert_eq!(err("WEBVTTX\n").code(), "subtitle_not_webvtt");
        assert_eq!(err("1\n00:00:01,000 --> 00:00:02,000\nSRT\n").code(), "subtitle_not_webvtt");

        let e = err("WEBVTT\n\n00:00:01.000 --> 00:00:xx.000\nhi\n");
        assert_eq!(
            e,
            SubtitleError::BadTimestamp {
                format: SubtitleFormat::WebVtt,
                line: 3,
                found: "00:00:xx.000".into()
            }
        );
        assert!(e.to_string().starts_with("WebVTT line 3: bad timestamp \"00:00:xx.000\""), "{e}");

        let e = err("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nok\n\nsome words\nmore words\n");
        assert_eq!(
            e,
            SubtitleError::ExpectedTiming {
                format: SubtitleFormat::WebVtt,
                line: 7,
                found: "more words".into()
            }
        );

        let e = err("WEBVTT\n\nstray line\n\n00:00:01.000 --> 00:00:02.000\nok\n");
        assert_eq!(
            e,
            SubtitleError::ExpectedTiming {
                format: SubtitleFormat::WebVtt,
                line: 3,
                found: "stray line".into()
            }
        );

        let e = err("WEBVTT\n\n00:00:05.000 --> 00:00:02.000\nback\n");
        assert_eq!(e.code(), "subtitle_end_before_start");
        assert!(e.to_string().starts_with("WebVTT line 3: the cue ends at 00:00:02.000"), "{e}");

        assert_eq!(
            err("WEBVTT\n\n00:00:01,000 --> 00:00:02,000\nsrt commas\n").code(),
            "subtitle_bad_timestamp"
        );
    }

    #[test]
    fn an_empty_file_has_no_cues() {
        assert_eq!(read("WEBVTT"), Ok(vec![]));
        assert_eq!(read("WEBVTT\n\nNOTE nothing here\n"), Ok(vec![]));
    }
}
