//! Streaming calls: a program's stdout read while it runs, for output too large to
//! hold in memory (ffmpeg decoding a two-hour film to raw samples writes about
//! 460 MB).
//!
//! The reads block: the consumer this is for (speech recognition) is CPU-bound
//! synchronous code run on a blocking thread, so a plain `read` is simpler for it
//! than an async stream, and needs no runtime. The guarantees of [`Call::output`] carry
//! over:
//! - arguments are a list, never a shell line (the same [`Call`] builder);
//! - the child is killed (and reaped) when the [`StdoutStream`] is dropped;
//! - instead of an overall time limit, which would be wrong for a stream whose length
//!   is the input's, a **stall timeout**: if the reader waits that long for the next
//!   bytes and none come, the child is killed and the read fails with
//!   [`ProcessError::Stalled`]. Only time spent waiting counts: a slow reader never
//!   trips it, and a steady producer never does either, however long it runs;
//! - a missing program names its Debian package;
//! - stderr is drained on its own thread while the program runs (so the child never
//!   blocks on a full stderr pipe), keeping the last 2 KiB for errors.
//!
//! Memory is bounded: a reader thread moves stdout into a channel of at most
//! [`MAX_BUFFERED_BYTES`]; when it is full the thread stops reading, the pipe fills
//! and the program waits for the consumer.

use std::fmt;
use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Call, ProcessError, Program, Tail, spawn_error};

/// The most bytes one read from the pipe returns.
const CHUNK_BYTES: usize = 32 * 1024;

/// How many chunks may wait in the channel for the consumer.
pub(crate) const CHUNKS_IN_FLIGHT: usize = 8;

/// The most stdout bytes a [`StdoutStream`] holds at once: the chunks waiting in its
/// channel plus the one being read (the kernel's pipe buffer, 64 KiB on Linux, comes
/// on top).
pub const MAX_BUFFERED_BYTES: usize = CHUNK_BYTES * (CHUNKS_IN_FLIGHT + 1);

/// How long to wait for the rest of stderr once the program has exited (a grandchild
/// could hold the pipe open).
const STDERR_GRACE: Duration = Duration::from_secs(2);

/// A running program whose stdout is read as it is produced; see the module notes.
///
/// Read with [`StdoutStream::read_stdout`] (or [`std::io::Read`]) until it returns 0,
/// then call [`StdoutStream::finish`] for the exit status. Dropping it at any point
/// kills the program.
pub struct StdoutStream {
    program: &'static str,
    child: Child,
    stall: Duration,
    chunks: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    state: State,
    /// The child was waited for; nothing is left to clean up.
    reaped: bool,
    stderr: Receiver<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Stdout may have more.
    Reading,
    /// Stdout has ended.
    AtEnd,
    /// A read failed and the child was killed.
    Failed,
}

impl fmt::Debug for StdoutStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdoutStream")
            .field("program", &self.program)
            .field("pid", &self.child.id())
            .field("stall", &self.stall)
            .field("state", &self.state)
            .field("reaped", &self.reaped)
            .finish_non_exhaustive()
    }
}

impl Call {
    /// Starts the program and returns its stdout as a stream (see [`StdoutStream`]),
    /// for output too large to hold. `stall_timeout` replaces the time limit: the
    /// program is killed when a read has waited that long for bytes that do not come.
    /// The limit set with [`Call::timeout`] does not apply.
    pub fn spawn_stdout(self, stall_timeout: Duration) -> Result<StdoutStream, ProcessError> {
        let Call { program, args, timeout: _, stdin } = self;
        let name = program.name;
        tracing::debug!(program = name, ?args, stall_s = stall_timeout.as_secs_f64(), "streaming");
        let mut command = Command::new(&program.path);
        crate::die_with_parent(&mut command);
        let mut child = command
            .args(&args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| spawn_error(&program, source))?;
        match start_threads(&program, &mut child, stdin) {
            Ok((chunks, stderr)) => Ok(StdoutStream {
                program: name,
                child,
                stall: stall_timeout,
                chunks,
                current: Vec::new(),
                pos: 0,
                state: State::Reading,
                reaped: false,
                stderr,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }
}

type Pipes = (Receiver<io::Result<Vec<u8>>>, Receiver<String>);

/// The threads that move stdout into a bounded channel, drain stderr into a tail and
/// feed stdin. They end on their own when the child's pipes close or the stream is
/// dropped.
fn start_threads(
    program: &Program,
    child: &mut Child,
    stdin: Option<Vec<u8>>,
) -> Result<Pipes, ProcessError> {
    let name = program.name;
    let io_err = |source| ProcessError::Io { program: name, source };
    let missing = || io_err(io::Error::other("a pipe to the child was not set up"));
    let stdout = child.stdout.take().ok_or_else(missing)?;
    let stderr = child.stderr.take().ok_or_else(missing)?;

    let (chunk_tx, chunk_rx) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    thread::Builder::new()
        .name(format!("{name}-stdout"))
        .spawn(move || pump_stdout(stdout, chunk_tx))
        .map_err(io_err)?;

    let (tail_tx, tail_rx) = mpsc::sync_channel(1);
    thread::Builder::new()
        .name(format!("{name}-stderr"))
        .spawn(move || {
            let _ = tail_tx.send(read_tail_blocking(stderr));
        })
        .map_err(io_err)?;

    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        thread::Builder::new()
            .name(format!("{name}-stdin"))
            // A program may exit without reading all its input; that is its call.
            .spawn(move || {
                let _ = pipe.write_all(&bytes);
            })
            .map_err(io_err)?;
    }
    Ok((chunk_rx, tail_rx))
}

/// Reads stdout into chunks until it ends, fails, or nobody is listening. End of
/// stream is the channel closing.
pub(crate) fn pump_stdout(mut stdout: impl Read, chunks: SyncSender<io::Result<Vec<u8>>>) {
    loop {
        let mut chunk = vec![0u8; CHUNK_BYTES];
        match stdout.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                chunk.truncate(n);
                if chunks.send(Ok(chunk)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = chunks.send(Err(e));
                return;
            }
        }
    }
}

/// Reads a pipe to its end, keeping only its tail.
fn read_tail_blocking(mut pipe: impl Read) -> String {
    let mut tail = Tail::default();
    let mut chunk = [0u8; 4096];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => tail.push(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    tail.into_string()
}

impl StdoutStream {
    /// The child's process id, for logs.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The stall timeout the stream was started with.
    pub fn stall_timeout(&self) -> Duration {
        self.stall
    }

    /// Reads the next bytes of stdout into `buf`, waiting for them up to the stall
    /// timeout. Returns how many were read, at least one unless `buf` is empty; 0
    /// means stdout has ended (call [`StdoutStream::finish`] for the exit status).
    ///
    /// On a stall the child is killed and [`ProcessError::Stalled`] returned, with the
    /// end of its stderr; later reads return 0.
    pub fn read_stdout(&mut self, buf: &mut [u8]) -> Result<usize, ProcessError> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos == self.current.len() {
            if self.state != State::Reading {
                return Ok(0);
            }
            match self.chunks.recv_timeout(self.stall) {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(source)) => {
                    self.kill();
                    return Err(ProcessError::Io { program: self.program, source });
                }
                Err(RecvTimeoutError::Disconnected) => self.state = State::AtEnd,
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    return Err(self.stalled());
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.current.len() {
            // Don't keep a spent chunk around while the consumer works.
            self.current = Vec::new();
            self.pos = 0;
        }
        Ok(n)
    }

    /// Reads all of stdout, then waits for the program to exit; returns what it
    /// printed if it exited successfully. For output known to be small (a probe
    /// report, a translation): the whole of it is held in memory.
    pub fn read_all(mut self) -> Result<Vec<u8>, ProcessError> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let n = self.read_stdout(&mut buf)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        self.finish()?;
        Ok(out)
    }

    /// Reads what is left of stdout, discarding it, then waits for the program to exit
    /// (each wait bounded by the stall timeout). Returns the end of its stderr (which
    /// may hold warnings) if it exited successfully.
    ///
    /// To stop early, drop the stream instead: that kills the program.
    pub fn finish(mut self) -> Result<String, ProcessError> {
        let mut sink = vec![0u8; CHUNK_BYTES];
        while self.read_stdout(&mut sink)? > 0 {}
        if self.state == State::Failed {
            return Err(ProcessError::Io {
                program: self.program,
                source: io::Error::other("the stream had already failed"),
            });
        }
        let status = self.wait_for_exit()?;
        let stderr_tail = self.stderr.recv_timeout(STDERR_GRACE).unwrap_or_default();
        if status.success() {
            Ok(stderr_tail)
        } else {
            Err(ProcessError::Failed { program: self.program, status, stderr_tail })
        }
    }

    /// Waits for the child to exit after closing its stdout, up to the stall timeout.
    fn wait_for_exit(&mut self) -> Result<ExitStatus, ProcessError> {
        let deadline = Instant::now() + self.stall;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    self.kill();
                    return Err(self.stalled());
                }
                Err(source) => {
                    self.kill();
                    return Err(ProcessError::Io { program: self.program, source });
                }
            }
        }
    }

    /// The stall error, with what the (killed) child wrote to stderr.
    fn stalled(&mut self) -> ProcessError {
        let stderr_tail = self.stderr.recv_timeout(STDERR_GRACE).unwrap_or_default();
        ProcessError::Stalled { program: self.program, stall: self.stall, stderr_tail }
    }

    /// Kills and reaps the child, unless that was done already; reads end.
    fn kill(&mut self) {
        self.state = State::Failed;
        if !self.reaped {
            // Fails only when the child has already exited, which is what we want.
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

impl Read for StdoutStream {
    /// [`StdoutStream::read_stdout`], with a stall as [`io::ErrorKind::TimedOut`]; the
    /// [`ProcessError`] is the error's inner error.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_stdout(buf).map_err(|e| {
            let kind = match e {
                ProcessError::Stalled { .. } => io::ErrorKind::TimedOut,
                _ => io::ErrorKind::Other,
            };
            io::Error::new(kind, e)
        })
    }
}

impl Drop for StdoutStream {
    fn drop(&mut self) {
        if !self.reaped {
            tracing::debug!(program = self.program, pid = self.child.id(), "stopping");
            // Killed then waited for, so no zombie is left either.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use babelcast_core::ErrorCode;

    fn sh(script: &str) -> Call {
        Program::known("sh", "dash").call().args(["-c", script, "sh"])
    }

    fn read_all(stream: &mut StdoutStream) -> Result<Vec<u8>, ProcessError> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            match stream.read_stdout(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn is_running(pid: u32) -> bool {
        // A reaped process has no /proc entry; a zombie would show state Z.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
            Err(_) => false,
        }
    }

    #[test]
    fn stdout_is_streamed_in_full_and_the_status_checked() {
        // 3 MB: far more than the stream buffers, so the program waits on the reader.
        let mut stream = sh("head -c 3000000 /dev/zero | tr '\\0' x; echo done >&2")
            .spawn_stdout(Duration::from_secs(20))
            .expect("sh");
        let out = read_all(&mut stream).expect("reads");
        assert_eq!(out.len(), 3_000_000);
        assert!(out.iter().all(|&b| b == b'x'));
        assert_eq!(stream.finish().expect("exit 0"), "done");
    }

    #[test]
    fn arguments_are_passed_verbatim() {
        let mut stream = Program::known("sh", "dash")
            .call()
            .args(["-c", "printf '%s' \"$1\"", "sh", "a b'c\"$HOME;é"])
            .spawn_stdout(Duration::from_secs(20))
            .expect("sh");
        assert_eq!(read_all(&mut stream).expect("reads"), "a b'c\"$HOME;é".as_bytes());
        stream.finish().expect("exit 0");
    }

    #[test]
    fn a_failure_keeps_the_end_of_stderr() {
        let mut stream = sh("echo partial; i=0; while [ $i -lt 500 ]; do echo noise $i >&2; i=$((i+1)); done; echo 'the real reason' >&2; exit 3")
            .spawn_stdout(Duration::from_secs(20))
            .expect("sh");
        assert_eq!(read_all(&mut stream).expect("reads"), b"partial\n");
        let err = stream.finish().expect_err("exit 3");
        assert_eq!(err.code(), "program_failed");
        let msg = err.to_string();
        assert!(msg.ends_with("the real reason"), "{msg}");
        assert!(msg.len() < crate::STDERR_TAIL_BYTES + 100);
    }

    #[test]
    fn a_missing_program_names_its_package() {
        let err = Program::known("babelcast-no-such-tool", "some-package")
            .call()
            .spawn_stdout(Duration::from_secs(1))
            .expect_err("cannot run");
        assert_eq!(err.code(), "program_not_installed");
        assert!(err.to_string().contains("`some-package`"), "{err}");
    }

    #[test]
    fn a_stalled_program_is_killed() {
        let started = Instant::now();
        let mut stream = sh("printf abc; echo waiting >&2; exec sleep 30")
            .spawn_stdout(Duration::from_millis(300))
            .expect("sh");
        let pid = stream.id();
        let mut buf = [0u8; 10];
        assert_eq!(stream.read_stdout(&mut buf).expect("abc"), 3);
        let err = stream.read_stdout(&mut buf).expect_err("stalls");
        assert_eq!(err.code(), "program_stalled");
        assert!(err.to_string().contains("waiting"), "{err}");
        assert!(!is_running(pid), "the stalled program is gone");
        assert_eq!(stream.read_stdout(&mut buf).expect("ended"), 0);
        // Not a speed assertion: only that the read did not wait for `sleep 30`.
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn a_slow_reader_is_not_a_stall() {
        let mut stream = sh("printf ab").spawn_stdout(Duration::from_millis(200)).expect("sh");
        // Once the program has exited, everything it wrote is waiting to be read.
        while is_running(stream.id()) {
            thread::sleep(Duration::from_millis(10));
        }
        // The reader is busy for longer than the stall timeout between reads; only
        // waiting for bytes counts.
        let mut out = Vec::new();
        let mut buf = [0u8; 1];
        loop {
            thread::sleep(Duration::from_millis(300));
            match stream.read_stdout(&mut buf).expect("no stall") {
                0 => break,
                _ => out.push(buf[0]),
            }
        }
        assert_eq!(out, b"ab");
        stream.finish().expect("exit 0");
    }

    #[test]
    fn a_program_that_closes_stdout_but_keeps_running_is_stopped() {
        let stream = sh("exec >&-; exec sleep 30").spawn_stdout(Duration::from_millis(300)).expect("sh");
        let pid = stream.id();
        let err = stream.finish().expect_err("does not exit");
        assert_eq!(err.code(), "program_stalled");
        assert!(!is_running(pid));
    }

    #[test]
    fn dropping_the_stream_kills_the_program() {
        // An endless producer: it only stops if it is killed.
        let mut stream = sh("exec yes").spawn_stdout(Duration::from_secs(20)).expect("sh");
        let pid = stream.id();
        let mut buf = [0u8; 100];
        assert!(stream.read_stdout(&mut buf).expect("reads") > 0);
        assert!(is_running(pid));
        drop(stream);
        assert!(!is_running(pid), "process {pid} is still there");
    }

    #[test]
    fn stdin_is_fed_and_io_read_works() {
        let mut stream = sh("cat").stdin("hello").spawn_stdout(Duration::from_secs(20)).expect("sh");
        let mut out = String::new();
        stream.read_to_string(&mut out).expect("reads");
        assert_eq!(out, "hello");
        stream.finish().expect("exit 0");
    }
}
