//! The one place babelcast runs external programs: ffmpeg, ffprobe, espeak-ng,
//! apertium, and pip for model set-up.
//!
//! Every call goes through [`Call`], which guarantees what each caller would otherwise
//! have to remember:
//! - arguments are a list handed to the program, never a shell line, so file names
//!   with spaces, quotes or `$` are just bytes;
//! - the child is killed when the call is dropped or times out (`kill_on_drop`), so a
//!   cancelled job or a hung decoder never leaves a process behind;
//! - every call has a time limit;
//! - a program that is not installed says which Debian package to install;
//! - a failure keeps the tail of the program's stderr, which is where ffmpeg says why.
//!
//! A call runs either to completion ([`Call::output`], async, stdout collected) or as
//! a stream ([`Call::spawn_stdout`], blocking reads, for output too large to hold,
//! like hours of decoded audio): see [`StdoutStream`] for how the guarantees carry
//! over, a stall timeout standing in for the time limit. Programs whose start-up
//! costs more than their work can be kept running, piped into each other, and
//! asked many times: see [`Chain`].

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use babelcast_core::ErrorCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

mod chain;
mod stream;

pub use chain::Chain;
pub use stream::{MAX_BUFFERED_BYTES, StdoutStream};

/// How much of a program's stderr is kept for error messages: enough for ffmpeg's
/// last few lines, small enough to put in a log line or an API response.
const STDERR_TAIL_BYTES: usize = 2048;

/// An external program babelcast drives, and the Debian package that provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    name: &'static str,
    package: &'static str,
    path: PathBuf,
}

impl Program {
    fn known(name: &'static str, package: &'static str) -> Program {
        Program { name, package, path: PathBuf::from(name) }
    }

    /// `ffmpeg`, from the Debian package `ffmpeg`.
    pub fn ffmpeg() -> Program {
        Program::known("ffmpeg", "ffmpeg")
    }

    /// `ffprobe`, from the Debian package `ffmpeg`.
    pub fn ffprobe() -> Program {
        Program::known("ffprobe", "ffmpeg")
    }

    /// `espeak-ng`, from the Debian package `espeak-ng`.
    pub fn espeak_ng() -> Program {
        Program::known("espeak-ng", "espeak-ng")
    }

    /// `apertium`, from the Debian package `apertium`.
    pub fn apertium() -> Program {
        Program::known("apertium", "apertium")
    }

    /// `python3`, used only to run pip when fetching models.
    pub fn python3() -> Program {
        Program::known("python3", "python3-pip")
    }

    /// The same program at another path (from configuration), instead of `$PATH`.
    pub fn at(mut self, path: impl Into<PathBuf>) -> Program {
        self.path = path.into();
        self
    }

    /// The program's short name, e.g. `ffprobe`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The executable that is run: a bare name looked up in `$PATH`, or a path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The Debian package that installs it.
    pub fn package(&self) -> &'static str {
        self.package
    }

    /// Starts building a call of this program.
    pub fn call(&self) -> Call {
        Call { program: self.clone(), args: Vec::new(), timeout: Duration::from_secs(60), stdin: None }
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// One run of a [`Program`]: its arguments, time limit and input.
#[derive(Debug)]
#[must_use = "a call does nothing until it is run with .output() or .spawn_stdout()"]
pub struct Call {
    program: Program,
    args: Vec<OsString>,
    timeout: Duration,
    stdin: Option<Vec<u8>>,
}

/// What a successful call printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// The last part of stderr (at most about 2 KiB), lossily decoded.
    pub stderr_tail: String,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program is not on this machine.
    #[error(
        "{program} is not installed (looked for {path:?}): install the Debian package `{package}` (scripts/setup.sh does)"
    )]
    NotInstalled {
        /// The program's name.
        program: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// The Debian package to install.
        package: &'static str,
    },
    /// The program exists but could not be started, or its pipes failed.
    #[error("could not run {program}")]
    Io {
        /// The program's name.
        program: &'static str,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The program ran past its time limit and was killed.
    #[error("{program} did not finish within {}s and was stopped{}", timeout.as_secs(), tail_suffix(stderr_tail))]
    TimedOut {
        /// The program's name.
        program: &'static str,
        /// The limit it ran into.
        timeout: Duration,
        /// The end of what it wrote to stderr.
        stderr_tail: String,
    },
    /// A streaming call's program wrote nothing for its stall timeout while it was
    /// being read from, and was killed.
    #[error("{program} produced no output for {}s and was stopped{}", stall.as_secs_f64(), tail_suffix(stderr_tail))]
    Stalled {
        /// The program's name.
        program: &'static str,
        /// The stall timeout it ran into.
        stall: Duration,
        /// The end of what it wrote to stderr.
        stderr_tail: String,
    },
    /// The program exited with a failure status.
    #[error("{program} failed ({status}){}", tail_suffix(stderr_tail))]
    Failed {
        /// The program's name.
        program: &'static str,
        /// How it exited.
        status: ExitStatus,
        /// The end of what it wrote to stderr.
        stderr_tail: String,
    },
}

fn tail_suffix(tail: &str) -> String {
    let tail = tail.trim();
    if tail.is_empty() { String::new() } else { format!(": {tail}") }
}

impl ErrorCode for ProcessError {
    fn code(&self) -> &'static str {
        match self {
            ProcessError::NotInstalled { .. } => "program_not_installed",
            ProcessError::Io { .. } => "program_io",
            ProcessError::TimedOut { .. } => "program_timed_out",
            ProcessError::Stalled { .. } => "program_stalled",
            ProcessError::Failed { .. } => "program_failed",
        }
    }

    fn is_client_error(&self) -> bool {
        // A program failing is usually the input's fault, but only the caller knows
        // what it asked for; callers map `Failed` to their own client errors.
        false
    }

    fn retry(&self) -> babelcast_core::Retry {
        match self {
            // The program does not appear by itself.
            ProcessError::NotInstalled { .. } => babelcast_core::Retry::GiveUp,
            _ => babelcast_core::Retry::Backoff,
        }
    }
}

impl Call {
    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Call {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(mut self, args: I) -> Call
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets the time limit of [`Call::output`] (60 s unless set). A streaming call
    /// has a stall timeout instead, given to [`Call::spawn_stdout`].
    pub fn timeout(mut self, timeout: Duration) -> Call {
        self.timeout = timeout;
        self
    }

    /// Feeds these bytes to the program's stdin (otherwise stdin is empty).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Call {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs the program to completion and returns its output, or why it failed.
    pub async fn output(self) -> Result<Output, ProcessError> {
        let Call { program, args, timeout, stdin } = self;
        let name = program.name;
        tracing::debug!(program = name, ?args, timeout_s = timeout.as_secs(), "running");
        let io_err = |source| ProcessError::Io { program: name, source };

        let mut command = Command::new(&program.path);
        die_with_parent(command.as_std_mut());
        let mut child = command
            .args(&args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| spawn_error(&program, source))?;

        // Both pipes are drained while the child runs so it never blocks on a full pipe.
        let stdout = child.stdout.take().map(|out| tokio::spawn(read_all(out)));
        let stderr = child.stderr.take().map(|err| tokio::spawn(read_tail(err)));
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            tokio::spawn(async move {
                // A program may exit without reading all its input; that is its call.
                let _ = pipe.write_all(&bytes).await;
            });
        }

        let status = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => Some(status.map_err(io_err)?),
            Err(_elapsed) => {
                let _ = child.kill().await;
                None
            }
        };
        // A grandchild may still hold stderr open after a kill; don't wait on it long.
        let stderr_tail = match stderr {
            Some(task) => match tokio::time::timeout(Duration::from_secs(2), task).await {
                Ok(Ok(tail)) => tail,
                _ => String::new(),
            },
            None => String::new(),
        };
        let Some(status) = status else {
            return Err(ProcessError::TimedOut { program: name, timeout, stderr_tail });
        };
        if !status.success() {
            return Err(ProcessError::Failed { program: name, status, stderr_tail });
        }
        let stdout = match stdout {
            Some(task) => task.await.map_err(|e| io_err(io::Error::other(e)))?.map_err(io_err)?,
            None => Vec::new(),
        };
        Ok(Output { stdout, stderr_tail })
    }
}

/// Makes the child die with babelcast: if babelcast itself is killed (SIGKILL, the
/// OOM killer), `kill_on_drop` never runs, and an ffmpeg encode would go on for
/// minutes writing into folders nobody will use. Linux's parent-death signal
/// kills it instead. (It fires when the spawning *thread* exits; babelcast's
/// spawning threads live as long as the child: runtime workers, or the blocking
/// thread that reads the child's output until it ends.)
#[allow(unsafe_code)]
pub(crate) fn die_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // prctl(2), which is async-signal-safe, and reads errno.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Why a program did not start: not installed, or another OS error.
fn spawn_error(program: &Program, source: io::Error) -> ProcessError {
    match source.kind() {
        io::ErrorKind::NotFound => ProcessError::NotInstalled {
            program: program.name,
            path: program.path.clone(),
            package: program.package,
        },
        _ => ProcessError::Io { program: program.name, source },
    }
}

async fn read_all(mut pipe: impl AsyncRead + Unpin) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    pipe.read_to_end(&mut buf).await?;
    Ok(buf)
}

/// Reads a pipe to its end, keeping only the last [`STDERR_TAIL_BYTES`].
async fn read_tail(mut pipe: impl AsyncRead + Unpin) -> String {
    let mut tail = Tail::default();
    let mut chunk = [0u8; 4096];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => tail.push(&chunk[..n]),
        }
    }
    tail.into_string()
}

/// The end of a stream of bytes: at most [`STDERR_TAIL_BYTES`] once finished, at most
/// twice that while it is being written.
#[derive(Debug, Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        if self.0.len() > 2 * STDERR_TAIL_BYTES {
            self.0.drain(..self.0.len() - STDERR_TAIL_BYTES);
        }
    }

    fn into_string(mut self) -> String {
        let tail = &mut self.0;
        if tail.len() > STDERR_TAIL_BYTES {
            tail.drain(..tail.len() - STDERR_TAIL_BYTES);
            // Start at a line boundary so the tail does not open mid-word.
            if let Some(nl) = tail.iter().position(|&b| b == b'\n') {
                tail.drain(..=nl);
            }
        }
        String::from_utf8_lossy(tail).trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> Program {
        Program::known("sh", "dash")
    }

    #[tokio::test]
    async fn arguments_are_passed_verbatim_not_through_a_shell() {
        let out = sh()
            .call()
            .args(["-c", "printf '%s' \"$1\"", "sh", "a b'c\"$HOME;é"])
            .output()
            .await
            .expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b'c\"$HOME;é");
    }

    #[tokio::test]
    async fn a_missing_program_names_its_package() {
        let err = Program::known("babelcast-no-such-tool", "some-package")
            .call()
            .output()
            .await
            .expect_err("cannot run");
        assert_eq!(err.code(), "program_not_installed");
        assert!(err.to_string().contains("`some-package`"), "{err}");
    }

    #[tokio::test]
    async fn a_failure_keeps_the_end_of_stderr() {
        let err = sh()
            .call()
            .args(["-c", "i=0; while [ $i -lt 500 ]; do echo noise $i >&2; i=$((i+1)); done; echo 'the real reason' >&2; exit 3"])
            .output()
            .await
            .expect_err("exit 3");
        let msg = err.to_string();
        assert!(msg.ends_with("the real reason"), "{msg}");
        assert!(!msg.contains("noise 0\n"), "the tail should be bounded: {msg}");
        assert!(msg.len() < STDERR_TAIL_BYTES + 100);
    }

    #[tokio::test]
    async fn a_hung_program_is_killed_at_its_time_limit() {
        let started = std::time::Instant::now();
        let err = sh()
            .call()
            .args(["-c", "echo waiting >&2; exec sleep 30"])
            .timeout(Duration::from_millis(300))
            .output()
            .await
            .expect_err("times out");
        assert_eq!(err.code(), "program_timed_out");
        assert!(err.to_string().contains("waiting"), "{err}");
        // Not a speed assertion: only that the call did not wait for `sleep 30`.
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn stdin_is_fed() {
        let out = sh().call().args(["-c", "cat"]).stdin("hello").output().await.expect("cat");
        assert_eq!(out.stdout, b"hello");
    }
}
