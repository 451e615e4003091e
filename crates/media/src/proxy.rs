//! The audio proxy: any file ffmpeg can read, decoded to what Whisper listens to,
//! 16 kHz mono `f32` samples, and **streamed** to the speech stage.
//!
//! Why streaming: inputs are films and lectures, hours long. Two hours of 16 kHz f32
//! is 460 MB; held whole, a few concurrent jobs would exhaust a small server. So
//! ffmpeg writes raw samples to a pipe and [`AudioProxy`] hands them out in chunks
//! the caller sizes; in between, at most [`MAX_BUFFERED_BYTES`] wait in memory (then
//! ffmpeg waits for the reader). Nothing in the API can hold the whole file.
//!
//! Why `-f f32le` on stdout: no temporary file to size, place and clean up, no WAV
//! header to parse (a WAV header cannot even state the length of a stream that is
//! still being written), and the samples arrive in the exact type Whisper takes.
//!
//! What ffmpeg does to the audio: `-ac 1` downmixes the way the reference Whisper
//! implementations do (openai-whisper runs `ffmpeg -ac 1`; faster-whisper asks PyAV,
//! i.e. the same libswresample, for mono). Note it is not a plain average: stereo
//! becomes `(L + R) / √2`. `-ar 16000` resamples with libswresample's default
//! filter, again as those implementations do. Those implementations then read 16-bit
//! samples, clipped to ±1; the proxy clamps to ±1 as well, and turns the NaN and
//! infinity a crafted float file can carry into silence, so nothing downstream sees
//! a sample outside [-1, 1].
//!
//! Untrusted input is read as in [`crate::probe`]: `file:` + absolute path, only the
//! `file` protocol, only the demuxers of real containers ([`ALLOWED_DEMUXERS`]), so
//! a playlist disguised as `.mp4` is refused rather than followed.
//!
//! Never a hang: the stream has a stall timeout ([`DEFAULT_STALL_TIMEOUT`], see
//! [`babelcast_process::StdoutStream`]): if a read waits that long for ffmpeg's next
//! bytes, ffmpeg is killed and the read fails. A damaged file is decoded as far as
//! ffmpeg can; if ffmpeg then exits with an error, the read that reaches the end
//! fails with ffmpeg's reason on one line.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use babelcast_core::{ErrorCode, MediaFacts};
use babelcast_process::{ProcessError, Program, StdoutStream};

pub use babelcast_process::MAX_BUFFERED_BYTES;

use crate::probe::{ALLOWED_DEMUXERS, failure_reason, file_url};

/// The sample rate of the proxy, the one Whisper is trained on.
pub const SAMPLE_RATE: u32 = 16_000;

/// How long a read waits for ffmpeg's next bytes before ffmpeg is declared stuck.
///
/// Decoding runs at hundreds of times real time, and the time ffmpeg spends waiting
/// for a slow reader does not count, so a healthy decode of a local file never comes
/// near this; what does is a decoder spinning on a crafted file, or a file on a
/// storage mount that stopped answering. 30 s leaves room for a loaded machine and a
/// slow disk seeking through a badly interleaved container to find its audio.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes read from the pipe at once: 16384 samples, about 1 s of audio.
const SCRATCH_BYTES: usize = 64 * 1024;

const F32_BYTES: usize = size_of::<f32>();

/// Opens audio proxies: runs ffmpeg with a stall timeout.
#[derive(Debug, Clone)]
pub struct AudioDecoder {
    ffmpeg: Program,
    stall_timeout: Duration,
}

/// A running decode of one audio stream into 16 kHz mono samples; see the module
/// notes. Read it with [`AudioProxy::read`] or [`AudioProxy::next_chunk`] until they
/// report the end. Dropping it at any point stops ffmpeg.
#[derive(Debug)]
pub struct AudioProxy {
    path: PathBuf,
    track: usize,
    duration_secs: Option<f64>,
    state: State,
    samples_read: u64,
    /// Bytes from the pipe; a sample split across two pipe reads waits at the front.
    scratch: Box<[u8]>,
    /// How many bytes of a split sample are at the front of `scratch` (0 to 3).
    carry: usize,
    warnings: Option<String>,
}

#[derive(Debug)]
enum State {
    Decoding(StdoutStream),
    Done,
    Failed,
}

/// Why a file's audio could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The file has no audio stream.
    #[error("no audio stream in {}", path.display())]
    NoAudio {
        /// The path as given.
        path: PathBuf,
    },
    /// An audio stream was asked for by position and the file has fewer.
    #[error("no audio stream #{track} in {} (it has {available})", path.display())]
    NoSuchTrack {
        /// The position asked for, counting audio streams from 0.
        track: usize,
        /// How many audio streams the file has.
        available: usize,
        /// The path as given.
        path: PathBuf,
    },
    /// The file cannot be opened.
    #[error("cannot read {}", path.display())]
    Unreadable {
        /// The path as given.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// ffmpeg could not decode the audio, or stopped with an error part way.
    #[error("could not decode the audio of {}: {reason}", path.display())]
    Decode {
        /// The path as given.
        path: PathBuf,
        /// Why, in ffmpeg's words where it gave any, on one line.
        reason: String,
    },
    /// ffmpeg is missing, failed to start, or stalled.
    #[error(transparent)]
    Program(ProcessError),
}

impl ErrorCode for ProxyError {
    fn code(&self) -> &'static str {
        match self {
            ProxyError::NoAudio { .. } => "no_audio_stream",
            ProxyError::NoSuchTrack { .. } => "audio_track_not_found",
            ProxyError::Unreadable { .. } => "file_unreadable",
            ProxyError::Decode { .. } => "audio_decode_failed",
            ProxyError::Program(e) => e.code(),
        }
    }

    fn is_client_error(&self) -> bool {
        !matches!(self, ProxyError::Program(_))
    }
}

impl AudioDecoder {
    /// A decoder running this ffmpeg, with the [`DEFAULT_STALL_TIMEOUT`].
    pub fn new(ffmpeg: Program) -> AudioDecoder {
        AudioDecoder { ffmpeg, stall_timeout: DEFAULT_STALL_TIMEOUT }
    }

    /// Sets how long a read may wait for ffmpeg's next bytes.
    pub fn stall_timeout(mut self, stall_timeout: Duration) -> AudioDecoder {
        self.stall_timeout = stall_timeout;
        self
    }

    /// Starts decoding one audio stream of a file that was probed into `facts`:
    /// `track` counts the file's audio streams from 0 (`facts.audio[track]`); `None`
    /// is the first. Fails at once when the file has no such stream; errors in the
    /// file's content (not media, damaged) come from the reads.
    pub fn open(
        &self,
        path: &Path,
        facts: &MediaFacts,
        track: Option<usize>,
    ) -> Result<AudioProxy, ProxyError> {
        let track = track.unwrap_or(0);
        if facts.audio.is_empty() {
            return Err(ProxyError::NoAudio { path: path.to_owned() });
        }
        if track >= facts.audio.len() {
            return Err(ProxyError::NoSuchTrack {
                track,
                available: facts.audio.len(),
                path: path.to_owned(),
            });
        }
        let unreadable = |source| ProxyError::Unreadable { path: path.to_owned(), source };
        // Open it ourselves first, so a vanished or unreadable file says so.
        std::fs::File::open(path).map_err(unreadable)?;
        let input = file_url(path).map_err(unreadable)?;
        let stream = self
            .ffmpeg
            .call()
            .args(["-nostdin", "-hide_banner", "-nostats", "-v", "error"])
            .args(["-protocol_whitelist", "file", "-format_whitelist", ALLOWED_DEMUXERS])
            .arg("-i")
            .arg(&input)
            // ffmpeg numbers a file's audio streams in container order, as ffprobe
            // lists them and `facts.audio` keeps them.
            .args(["-map", &format!("0:a:{track}"), "-vn", "-sn", "-dn"])
            .args(["-ac", "1", "-ar", &SAMPLE_RATE.to_string(), "-f", "f32le", "-"])
            .spawn_stdout(self.stall_timeout)
            .map_err(ProxyError::Program)?;
        tracing::debug!(path = %path.display(), track, pid = stream.id(), "decoding audio");
        Ok(AudioProxy {
            path: path.to_owned(),
            track,
            duration_secs: stream_duration(facts, track),
            state: State::Decoding(stream),
            samples_read: 0,
            scratch: vec![0; SCRATCH_BYTES].into_boxed_slice(),
            carry: 0,
            warnings: None,
        })
    }
}

/// The audio stream's duration, else the container's.
fn stream_duration(facts: &MediaFacts, track: usize) -> Option<f64> {
    facts.audio.get(track).and_then(|a| a.duration_secs).or(facts.duration_secs).filter(|d| *d > 0.0)
}

impl AudioProxy {
    /// Fills `out` with the next samples, waiting for ffmpeg as needed. Returns how
    /// many were written: `out.len()` except at the end of the audio, 0 once it is
    /// over (and ffmpeg has exited cleanly: a decode that failed part way returns
    /// its error instead).
    pub fn read(&mut self, out: &mut [f32]) -> Result<usize, ProxyError> {
        let mut filled = 0;
        while filled < out.len() {
            let stream = match &mut self.state {
                State::Decoding(stream) => stream,
                State::Done => break,
                State::Failed => {
                    return Err(ProxyError::Decode {
                        path: self.path.clone(),
                        reason: "the decode had already failed".to_owned(),
                    });
                }
            };
            // Ask for no more bytes than `out` has room for, so nothing but a split
            // sample is left over between calls.
            let room = (out.len() - filled) * F32_BYTES;
            let end = self.scratch.len().min(room);
            let n = match stream.read_stdout(&mut self.scratch[self.carry..end]) {
                Ok(n) => n,
                Err(e) => {
                    self.state = State::Failed;
                    return Err(ProxyError::Program(e));
                }
            };
            if n == 0 {
                self.finish()?;
                break;
            }
            let available = self.carry + n;
            let whole = available / F32_BYTES * F32_BYTES;
            let samples = &mut out[filled..filled + whole / F32_BYTES];
            for (sample, bytes) in samples.iter_mut().zip(self.scratch[..whole].chunks_exact(F32_BYTES)) {
                *sample = sanitize(f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
            }
            filled += samples.len();
            self.scratch.copy_within(whole..available, 0);
            self.carry = available - whole;
        }
        self.samples_read += filled as u64;
        Ok(filled)
    }

    /// The next at most `max` samples (fewer only at the end), or `None` once the
    /// audio is over. Like [`AudioProxy::read`], but allocating the chunk.
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<Vec<f32>>, ProxyError> {
        let mut chunk = vec![0.0; max];
        let n = self.read(&mut chunk)?;
        chunk.truncate(n);
        Ok((n > 0).then_some(chunk))
    }

    /// ffmpeg's stdout has ended: did it exit cleanly?
    fn finish(&mut self) -> Result<(), ProxyError> {
        let State::Decoding(stream) = std::mem::replace(&mut self.state, State::Failed) else {
            return Ok(());
        };
        match stream.finish() {
            Ok(stderr_tail) => {
                if self.carry > 0 {
                    tracing::warn!(path = %self.path.display(), bytes = self.carry, "ffmpeg ended mid-sample");
                    self.carry = 0;
                }
                if !stderr_tail.is_empty() {
                    // Damaged input that ffmpeg got through; the samples are what it could decode.
                    tracing::warn!(path = %self.path.display(), ffmpeg = %stderr_tail, "audio decoded with errors");
                    self.warnings = Some(stderr_tail);
                }
                self.state = State::Done;
                tracing::debug!(path = %self.path.display(), samples = self.samples_read, "audio decoded");
                Ok(())
            }
            Err(ProcessError::Failed { stderr_tail, .. }) if stderr_tail.contains("matches no streams") => {
                Err(ProxyError::NoAudio { path: self.path.clone() })
            }
            Err(ProcessError::Failed { stderr_tail, .. }) => Err(ProxyError::Decode {
                path: self.path.clone(),
                reason: failure_reason("ffmpeg", &stderr_tail),
            }),
            Err(e) => Err(ProxyError::Program(e)),
        }
    }

    /// The file being decoded.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Which audio stream is decoded, counting the file's audio streams from 0.
    pub fn track(&self) -> usize {
        self.track
    }

    /// The audio's duration in seconds, as probed, when the file states it: with
    /// [`AudioProxy::secs_read`], how much is done.
    pub fn duration_secs(&self) -> Option<f64> {
        self.duration_secs
    }

    /// Samples handed out so far.
    pub fn samples_read(&self) -> u64 {
        self.samples_read
    }

    /// Seconds of audio handed out so far.
    pub fn secs_read(&self) -> f64 {
        self.samples_read as f64 / f64::from(SAMPLE_RATE)
    }

    /// The share of the audio handed out so far, from 0 to 1, when the duration is
    /// known (a probed duration is approximate, hence the clamp).
    pub fn progress(&self) -> Option<f64> {
        if matches!(self.state, State::Done) {
            return Some(1.0);
        }
        self.duration_secs.map(|d| (self.secs_read() / d).clamp(0.0, 1.0))
    }

    /// True once all the audio has been read and ffmpeg exited cleanly.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// What ffmpeg complained about in a decode that still succeeded (a damaged or
    /// truncated file: the samples are what it could decode). Known once done.
    pub fn warnings(&self) -> Option<&str> {
        self.warnings.as_deref()
    }

    /// ffmpeg's process id while it runs, for logs.
    pub fn pid(&self) -> Option<u32> {
        match &self.state {
            State::Decoding(stream) => Some(stream.id()),
            _ => None,
        }
    }
}

/// Clamps to [-1, 1] as 16-bit decoding would; NaN and infinities become silence.
fn sanitize(sample: f32) -> f32 {
    if sample.is_finite() { sample.clamp(-1.0, 1.0) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_bounded_and_finite() {
        assert_eq!(sanitize(0.25), 0.25);
        assert_eq!(sanitize(-1.5), -1.0);
        assert_eq!(sanitize(1e30), 1.0);
        assert_eq!(sanitize(f32::NAN), 0.0);
        assert_eq!(sanitize(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn a_file_without_audio_is_refused_before_ffmpeg_runs() {
        let facts = MediaFacts {
            container: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            container_long_name: None,
            duration_secs: Some(2.0),
            size_bytes: None,
            bit_rate: None,
            video: Vec::new(),
            audio: Vec::new(),
            subtitles: Vec::new(),
        };
        // A program that cannot exist: running it would be a different error.
        let decoder = AudioDecoder::new(Program::ffmpeg().at("/nonexistent/ffmpeg"));
        let err = decoder.open(Path::new("/nonexistent/clip.mp4"), &facts, None).expect_err("no audio");
        assert_eq!(err.code(), "no_audio_stream");
        assert!(err.is_client_error());
        assert_eq!(err.to_string(), "no audio stream in /nonexistent/clip.mp4");
    }
}
