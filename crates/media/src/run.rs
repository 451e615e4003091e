//! Long ffmpeg runs (encodes, muxes): reading untrusted input safely, reporting
//! progress, and never hanging.
//!
//! An encode runs for minutes or hours, so one fixed time limit would be wrong for
//! either a short clip or a film. Instead ffmpeg reports its position on stdout
//! (`-progress pipe:1`, a block of `key=value` lines twice a second), which gives
//! both the progress fraction for the caller and a heartbeat: a run that prints
//! nothing for [`STALL_TIMEOUT`] is killed (see [`babelcast_process::StdoutStream`]).
//! On top, a run may not exceed [`time_limit`] of the input's duration, so an
//! encoder that is alive but spinning is stopped too.

use std::path::Path;
use std::time::{Duration, Instant};

use babelcast_process::{Call, ProcessError};

use crate::probe::{ALLOWED_DEMUXERS, file_url};

/// How long ffmpeg may print no progress before it is declared stuck. ffmpeg
/// reports every half second while its loop turns; a minute of silence means it is
/// blocked (a stuck filesystem) or spinning inside one frame.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The most an encode of `duration_secs` of media may take: ten minutes plus 30 ×
/// the duration. The slowest x264 presets at 1080p on two cores run around 0.1×
/// real time, so 30× is far beyond any healthy run.
pub fn time_limit(duration_secs: Option<f64>) -> Duration {
    let media = duration_secs.filter(|d| d.is_finite() && *d > 0.0).unwrap_or(3600.0);
    Duration::from_secs(600) + Duration::from_secs_f64(media * 30.0)
}

/// Adds an untrusted input file to an ffmpeg call: only the `file` protocol, only
/// the demuxers of real containers, the path as `file:<absolute>` so no name is read
/// as an option or a protocol.
pub(crate) fn untrusted_input(call: Call, path: &Path) -> std::io::Result<Call> {
    Ok(call
        .args(["-protocol_whitelist", "file", "-format_whitelist", ALLOWED_DEMUXERS])
        .arg("-i")
        .arg(file_url(path)?))
}

/// The options every ffmpeg run starts with: no stdin, quiet stderr (errors only, so
/// its tail is the reason), progress on stdout.
/// ffmpeg's options for a run whose stdout is its output: errors only, no progress.
pub(crate) const QUIET: [&str; 6] = ["-nostdin", "-hide_banner", "-nostats", "-v", "error", "-y"];

pub(crate) const QUIET_WITH_PROGRESS: [&str; 8] =
    ["-nostdin", "-hide_banner", "-nostats", "-v", "error", "-progress", "pipe:1", "-y"];

/// Runs an ffmpeg call that was given [`QUIET_WITH_PROGRESS`], calling `progress`
/// with the fraction done (0–1) of `duration_secs` as ffmpeg reports it. Returns the
/// end of ffmpeg's stderr (warnings) on success.
pub(crate) fn with_progress(
    call: Call,
    duration_secs: Option<f64>,
    progress: &mut dyn FnMut(f64),
) -> Result<String, ProcessError> {
    let limit = time_limit(duration_secs);
    let started = Instant::now();
    let mut stream = call.spawn_stdout(STALL_TIMEOUT)?;
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read_stdout(&mut buf)?;
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Some(done) = parse_progress(&line, duration_secs) {
                progress(done);
            }
        }
        if started.elapsed() > limit {
            // Dropping the stream kills ffmpeg.
            drop(stream);
            return Err(ProcessError::TimedOut {
                program: "ffmpeg",
                timeout: limit,
                stderr_tail: String::new(),
            });
        }
    }
    let tail = stream.finish()?;
    progress(1.0);
    Ok(tail)
}

/// Runs a short call (ffprobe on one segment) and returns all it printed. The
/// stall timeout bounds it.
pub(crate) fn read_all(call: Call) -> Result<Vec<u8>, ProcessError> {
    call.spawn_stdout(Duration::from_secs(30))?.read_all()
}

/// The fraction done from one `-progress` line, if it is a position line.
fn parse_progress(line: &[u8], duration_secs: Option<f64>) -> Option<f64> {
    let line = std::str::from_utf8(line).ok()?.trim();
    // `out_time_ms` is, despite its name, also microseconds in ffmpeg 5.
    let micros: i64 = line.strip_prefix("out_time_us=")?.parse().ok()?;
    let duration = duration_secs.filter(|d| *d > 0.0)?;
    Some((micros.max(0) as f64 / 1e6 / duration).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_become_fractions() {
        assert_eq!(parse_progress(b"out_time_us=5000000\n", Some(10.0)), Some(0.5));
        assert_eq!(parse_progress(b"out_time_us=-23000\n", Some(10.0)), Some(0.0));
        assert_eq!(parse_progress(b"out_time_us=99000000\n", Some(10.0)), Some(1.0));
        assert_eq!(parse_progress(b"out_time_us=N/A\n", Some(10.0)), None);
        assert_eq!(parse_progress(b"frame=12\n", Some(10.0)), None);
        assert_eq!(parse_progress(b"out_time_us=5000000\n", None), None);
    }

    #[test]
    fn the_time_limit_grows_with_the_media() {
        assert_eq!(time_limit(Some(60.0)), Duration::from_secs(600 + 1800));
        assert_eq!(time_limit(None), Duration::from_secs(600 + 108_000));
    }
}
