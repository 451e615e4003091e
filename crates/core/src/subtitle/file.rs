//! A subtitle file as a user has it: bytes in whatever encoding their tool wrote
//! (UTF-8 with or without a byte-order mark, UTF-16, or a legacy single-byte
//! encoding such as Windows-1252, still common for SRT), in either format. The
//! encoding comes from the byte-order mark, else UTF-8 if the bytes are valid
//! UTF-8, else UTF-16 if every other byte is zero, else Firefox's detector
//! (`chardetng`) guesses it; the format from the content, not the file name.

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

use super::{SubtitleError, SubtitleFormat, srt, vtt};
use crate::Cue;

/// A subtitle file read.
#[derive(Debug, Clone, PartialEq)]
pub struct SubtitleFile {
    /// Its format, as its content says.
    pub format: SubtitleFormat,
    /// The encoding it was read in (`UTF-8`, `UTF-16LE`, `windows-1252`, ...).
    pub encoding: &'static str,
    /// Its cues, in order, never empty.
    pub cues: Vec<Cue>,
}

/// Reads a subtitle file's bytes: decodes them (see the module header), reads
/// WebVTT when they start with `WEBVTT` and SRT otherwise, and refuses binary
/// data, a file without cues and a plain text without times, each with what to
/// do about it.
pub fn read(bytes: &[u8]) -> Result<SubtitleFile, SubtitleError> {
    let (text, encoding) = decode(bytes)?;
    let text = text.trim_start_matches('\u{feff}');
    let format =
        if text.trim_start().starts_with("WEBVTT") { SubtitleFormat::WebVtt } else { SubtitleFormat::Srt };
    if format == SubtitleFormat::Srt && !text.contains("-->") {
        return Err(if text.trim().is_empty() {
            SubtitleError::Empty { format }
        } else {
            SubtitleError::Untimed
        });
    }
    let cues = match format {
        SubtitleFormat::WebVtt => vtt::read(text.trim_start())?,
        SubtitleFormat::Srt => srt::read(text)?,
    };
    let cues: Vec<Cue> = cues.into_iter().filter(|c| !c.text.trim().is_empty()).collect();
    if cues.is_empty() {
        return Err(SubtitleError::Empty { format });
    }
    Ok(SubtitleFile { format, encoding: encoding.name(), cues })
}

/// The text of `bytes` and the encoding it was in.
pub fn decode(bytes: &[u8]) -> Result<(String, &'static Encoding), SubtitleError> {
    if let Some((encoding, bom)) = Encoding::for_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom..]);
        if had_errors {
            return Err(SubtitleError::NotText {
                why: format!("it starts with a {} byte-order mark but is not {0}", encoding.name()),
            });
        }
        return Ok((text.into_owned(), encoding));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return checked(text.to_owned(), UTF_8);
    }
    if let Some(encoding) = utf16_without_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
        if !had_errors {
            return checked(text.into_owned(), encoding);
        }
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(bytes, true);
    let encoding = detector.guess(None, false);
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(SubtitleError::NotText {
            why: format!(
                "its bytes are not text in any encoding babelcast knows (the best guess, {}, fails)",
                encoding.name()
            ),
        });
    }
    checked(text.into_owned(), encoding)
}

/// Refuses text that holds control characters no subtitle file has (a NUL, a
/// binary file that happened to decode).
fn checked(text: String, encoding: &'static Encoding) -> Result<(String, &'static Encoding), SubtitleError> {
    match text.chars().find(|&c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}')) {
        Some(c) => Err(SubtitleError::NotText {
            why: format!(
                "it holds the control character U+{:04X}, so it is binary data, not a subtitle file",
                c as u32
            ),
        }),
        None => Ok((text, encoding)),
    }
}

/// UTF-16 without a byte-order mark: an even length and the high bytes of
/// ASCII text (every other byte) zero for most characters.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    if bytes.len() < 4 || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let pairs = bytes.len() / 2;
    let zero_at = |offset: usize| bytes.iter().skip(offset).step_by(2).filter(|&&b| b == 0).count();
    let (even, odd) = (zero_at(0), zero_at(1));
    if odd * 10 >= pairs * 7 && even * 10 < pairs {
        Some(UTF_16LE)
    } else if even * 10 >= pairs * 7 && odd * 10 < pairs {
        Some(UTF_16BE)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorCode, Millis};

    const SRT: &str = "1\r\n00:00:01,000 --> 00:00:02,500\r\nCaf\u{e9} cr\u{e8}me, na\u{ef}ve \u{2013} \u{201c}ol\u{e9}\u{201d}\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\nSe\u{f1}or M\u{fc}ller\r\n";

    fn utf16(text: &str, little: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend(if little { [0xff, 0xfe] } else { [0xfe, 0xff] });
        }
        for unit in text.encode_utf16() {
            out.extend(if little { unit.to_le_bytes() } else { unit.to_be_bytes() });
        }
        out
    }

    #[test]
    fn reads_every_encoding_users_have() {
        let (windows_1252, _, unmappable) = encoding_rs::WINDOWS_1252.encode(SRT);
        assert!(!unmappable);
        let mut utf8_bom = vec![0xef, 0xbb, 0xbf];
        utf8_bom.extend(SRT.as_bytes());
        for (bytes, encoding) in [
            (SRT.as_bytes().to_vec(), "UTF-8"),
            (utf8_bom, "UTF-8"),
            (utf16(SRT, true, true), "UTF-16LE"),
            (utf16(SRT, false, true), "UTF-16BE"),
            (utf16(SRT, true, false), "UTF-16LE"),
            (windows_1252.into_owned(), "windows-1252"),
        ] {
            let file = read(&bytes).unwrap_or_else(|e| panic!("{encoding}: {e}"));
            assert_eq!(file.encoding, encoding);
            assert_eq!(file.format, SubtitleFormat::Srt);
            assert_eq!(
                file.cues[0].text,
                "Caf\u{e9} cr\u{e8}me, na\u{ef}ve \u{2013} \u{201c}ol\u{e9}\u{201d}"
            );
            assert_eq!(file.cues[1].text, "Se\u{f1}or M\u{fc}ller");
            assert_eq!((file.cues[1].start, file.cues[1].end), (Millis(3_000), Millis(4_000)));
        }
    }

    #[test]
    fn tells_the_format_by_its_content() {
        let file = read(b"\xef\xbb\xbfWEBVTT\n\n00:01.000 --> 00:02.000\nhello\n").expect("vtt");
        assert_eq!((file.format, file.cues.len()), (SubtitleFormat::WebVtt, 1));
    }

    #[test]
    fn refuses_what_is_no_subtitle_file_and_says_why() {
        let cases: [(&[u8], &str, &str); 5] = [
            (b"", "subtitle_empty", "no cues"),
            (b"WEBVTT\n\nNOTE nothing here\n", "subtitle_empty", "no cues"),
            (b"Hello there.\nThis is a script.\n", "subtitle_untimed", "no cue times"),
            (b"\x00\x01\x02\x03PK\x03\x04binary\xff\xfe\x00", "subtitle_not_text", "not a subtitle file"),
            (b"1\n00:00:01,000 --> 00:00:0X,000\nhi\n", "subtitle_bad_timestamp", "line 2"),
        ];
        for (bytes, code, says) in cases {
            let e = read(bytes).expect_err(code);
            assert_eq!(e.code(), code, "{e}");
            assert!(e.to_string().contains(says), "{e}");
            assert!(e.is_client_error());
        }
    }
}
