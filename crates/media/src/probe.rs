//! `babelcast probe`: what a file holds, by running ffprobe on it safely.
//!
//! Uploaded files are untrusted. ffprobe is only allowed to read the one local file
//! it is given (`-protocol_whitelist file`) and only through the demuxers of real
//! media containers ([`ALLOWED_DEMUXERS`]): an `.mp4` that is really an HLS or concat
//! playlist pointing at `/etc/passwd` or a URL is refused, not followed.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use babelcast_core::{ErrorCode, MediaFacts};
use babelcast_process::{ProcessError, Program};

use crate::ffprobe::{self, ParseError};

/// The demuxers babelcast accepts input through: real audio and video containers,
/// and none that reads other files or URLs (hls, concat, image2, tee, ...).
pub const ALLOWED_DEMUXERS: &str = "mov,matroska,avi,mpegts,mpeg,flv,asf,ogg,wav,w64,mp3,flac,aac,aiff,caf";

/// Runs ffprobe with a time limit.
#[derive(Debug, Clone)]
pub struct Prober {
    ffprobe: Program,
    timeout: Duration,
}

/// Why a file could not be probed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Nothing is at the path.
    #[error("no such file: {}", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// The path is a directory or another non-file.
    #[error("not a regular file: {}", path.display())]
    NotAFile {
        /// The path as given.
        path: PathBuf,
    },
    /// The file has no bytes.
    #[error("the file is empty (0 bytes): {}", path.display())]
    Empty {
        /// The path as given.
        path: PathBuf,
    },
    /// The file exists but cannot be read (permissions).
    #[error("cannot read {}", path.display())]
    Unreadable {
        /// The path as given.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// ffprobe could not read it as media.
    #[error("not a media file babelcast can read: {}: {reason}", path.display())]
    NotMedia {
        /// The path as given.
        path: PathBuf,
        /// Why, in ffprobe's words where it gave any.
        reason: String,
    },
    /// ffprobe is missing, failed to start or hung.
    #[error(transparent)]
    Program(ProcessError),
    /// ffprobe's report could not be read.
    #[error("could not read ffprobe's report on {}", path.display())]
    Report {
        /// The path as given.
        path: PathBuf,
        /// The parse failure.
        #[source]
        source: ParseError,
    },
}

impl ErrorCode for ProbeError {
    fn code(&self) -> &'static str {
        match self {
            ProbeError::NotFound { .. } => "file_not_found",
            ProbeError::NotAFile { .. } => "not_a_file",
            ProbeError::Empty { .. } => "file_empty",
            ProbeError::Unreadable { .. } => "file_unreadable",
            ProbeError::NotMedia { .. } => "not_media",
            ProbeError::Program(e) => e.code(),
            ProbeError::Report { .. } => "probe_report_unreadable",
        }
    }

    fn is_client_error(&self) -> bool {
        !matches!(self, ProbeError::Program(_) | ProbeError::Report { .. })
    }
}

impl Prober {
    /// A prober running this ffprobe, giving up on one file after `timeout`.
    pub fn new(ffprobe: Program, timeout: Duration) -> Prober {
        Prober { ffprobe, timeout }
    }

    /// Reads the media facts of one local file.
    pub async fn probe(&self, path: &Path) -> Result<MediaFacts, ProbeError> {
        let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ProbeError::NotFound { path: path.to_owned() },
            _ => ProbeError::Unreadable { path: path.to_owned(), source },
        })?;
        if !meta.is_file() {
            return Err(ProbeError::NotAFile { path: path.to_owned() });
        }
        if meta.len() == 0 {
            return Err(ProbeError::Empty { path: path.to_owned() });
        }
        // Open it ourselves first: a permission problem then reads as one, not as
        // "invalid data" from ffprobe.
        std::fs::File::open(path)
            .map_err(|source| ProbeError::Unreadable { path: path.to_owned(), source })?;

        let input =
            file_url(path).map_err(|source| ProbeError::Unreadable { path: path.to_owned(), source })?;
        let result = self
            .ffprobe
            .call()
            .args(["-v", "error", "-hide_banner", "-print_format", "json"])
            .args(["-show_format", "-show_streams"])
            .args(["-protocol_whitelist", "file", "-format_whitelist", ALLOWED_DEMUXERS])
            .arg(&input)
            .timeout(self.timeout)
            .output()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(ProcessError::Failed { stderr_tail, .. }) => {
                return Err(ProbeError::NotMedia {
                    path: path.to_owned(),
                    reason: failure_reason("ffprobe", &stderr_tail),
                });
            }
            Err(e) => return Err(ProbeError::Program(e)),
        };
        let json = String::from_utf8_lossy(&output.stdout);
        let facts =
            ffprobe::parse(&json).map_err(|source| ProbeError::Report { path: path.to_owned(), source })?;
        if facts.video.is_empty() && facts.audio.is_empty() {
            return Err(ProbeError::NotMedia {
                path: path.to_owned(),
                reason: "it holds no audio or video stream".to_owned(),
            });
        }
        Ok(facts)
    }
}

/// `file:` + the absolute path. The prefix stops ffmpeg from reading a name like
/// `-x.mp4` as an option or `http:a.mp4` / `concat:a|b` as a protocol.
pub fn file_url(path: &Path) -> io::Result<OsString> {
    let mut url = OsString::from("file:");
    url.push(std::path::absolute(path)?);
    Ok(url)
}

/// One line saying why ffprobe or ffmpeg (`program`) gave up, from the end of its
/// stderr: the last line without its `file:/path: ` prefix, with the demuxer's more
/// specific complaint (`moov atom not found`) when it made one.
pub(crate) fn failure_reason(program: &str, stderr_tail: &str) -> String {
    let lines: Vec<&str> = stderr_tail.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // ffmpeg tags library messages as "[demuxer @ 0x55d0…] message".
    let tagged = |line: &str| -> Option<(String, String)> {
        let rest = line.strip_prefix('[')?;
        let (tag, msg) = rest.split_once("] ")?;
        let demuxer = tag.split(" @ ").next().unwrap_or(tag);
        Some((demuxer.to_owned(), msg.to_owned()))
    };
    if let Some((demuxer, _)) =
        lines.iter().filter_map(|l| tagged(l)).find(|(_, msg)| msg.contains("not on whitelist"))
    {
        return format!("its format ({demuxer}) is not an accepted media container");
    }
    let Some(last) = lines.last() else {
        return format!("{program} gave no reason");
    };
    // "file:/some/path.mp4: Invalid data found…": the path may itself hold ": ".
    let last = match last.rfind(": ") {
        Some(i) if last.starts_with("file:") => &last[i + 2..],
        _ => last,
    };
    let detail = lines.iter().rev().skip(1).find_map(|l| tagged(l)).map(|(_, msg)| msg);
    match detail {
        Some(detail) if detail != last => format!("{last} ({detail})"),
        _ => last.to_owned(),
    }
}

/// Whether the first audio stream of `file` is AAC-LC at 48 kHz in stereo, as
/// babelcast's audio tracks are (a dub track is): then it is copied, not
/// encoded again. A file ffprobe cannot read is not: the encode that follows
/// refuses it with its own, clearer, error.
pub(crate) fn is_package_audio(ffprobe: &Program, file: &Path) -> bool {
    let Ok(url) = file_url(file) else { return false };
    let call = ffprobe
        .call()
        .args(["-v", "error", "-protocol_whitelist", "file", "-format_whitelist", ALLOWED_DEMUXERS])
        .args(["-select_streams", "a:0", "-show_entries", "stream=codec_name,profile,sample_rate,channels"])
        .args(["-of", "csv=p=0"])
        .arg(url);
    let Ok(out) = crate::run::read_all(call) else { return false };
    let text = String::from_utf8_lossy(&out);
    let fields: Vec<&str> = text.lines().next().unwrap_or_default().trim().split(',').collect();
    fields == ["aac", "LC", "48000", "2"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_from_a_text_file() {
        let tail = "file:/tmp/a b: c.mp4: Invalid data found when processing input";
        assert_eq!(failure_reason("ffprobe", tail), "Invalid data found when processing input");
    }

    #[test]
    fn reason_from_a_truncated_mp4_names_the_missing_atom() {
        let tail = "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0] moov atom not found\n\
                    file:/tmp/t.mp4: Invalid data found when processing input";
        assert_eq!(
            failure_reason("ffprobe", tail),
            "Invalid data found when processing input (moov atom not found)"
        );
    }

    #[test]
    fn reason_from_a_playlist_in_disguise() {
        let tail = "[hls @ 0x55df] Format not on whitelist 'mov,matroska'\n\
                    file:/tmp/evil.mp4: Invalid argument";
        assert_eq!(failure_reason("ffprobe", tail), "its format (hls) is not an accepted media container");
    }

    #[test]
    fn file_urls_are_absolute_and_prefixed() {
        let url = file_url(Path::new("-x.mp4")).expect("cwd exists");
        let url = url.to_string_lossy();
        assert!(url.starts_with("file:/"), "{url}");
        assert!(url.ends_with("/-x.mp4"), "{url}");
    }
}
