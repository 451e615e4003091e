//! Kept-running chains: programs piped one into the next, started once and asked
//! many times, for tools whose start-up costs more than their work. Apertium is
//! the case: a pair's ten programs load their dictionaries in about 0.2 s, then
//! translate a sentence in a few milliseconds, and each flushes what it has when
//! it reads a NUL byte (`-z`), so one request is the bytes plus NUL and its
//! answer is everything up to the next NUL.
//!
//! The guarantees of [`Call`] carry over where they apply:
//! - every program's arguments are a list, never a shell line; the chain is
//!   spawned program by program, each one's stdout the next one's stdin;
//! - a missing program names its Debian package;
//! - instead of a time limit, a **stall timeout** per request: an answer that
//!   stops coming for that long kills the chain and fails with
//!   [`ProcessError::Stalled`];
//! - the chain dies with its [`Chain`]: dropping it closes the first program's
//!   stdin (each one then ends on end of input) and kills and reaps all of them.
//!   If babelcast itself is killed, the OS closes that stdin too. (No
//!   parent-death signal: it fires when the spawning *thread* exits, and a
//!   chain outlives the blocking thread that started it.)
//!
//! A chain answers one request at a time (`&mut self`); its stderr is dropped,
//! since a caller that sees a chain fail runs the work once more as a plain
//! [`Call`], whose error says why.

use std::io::{self, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use crate::stream::{CHUNKS_IN_FLIGHT, pump_stdout};
use crate::{Call, ProcessError, spawn_error};

/// Programs piped one into the next and kept running; see the module notes.
pub struct Chain {
    name: &'static str,
    children: Vec<Child>,
    stdin: Option<ChildStdin>,
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// Bytes read after the last answer's end (none unless a program misbehaves).
    pending: Vec<u8>,
    stall: Duration,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pids: Vec<u32> = self.children.iter().map(Child::id).collect();
        f.debug_struct("Chain").field("program", &self.name).field("pids", &pids).finish()
    }
}

impl Chain {
    /// Starts `calls` (at least one) as a chain: the first reads what
    /// [`Chain::exchange`] writes, each next one reads the one before, the last
    /// one's stdout is the answer. Their stdin bytes and time limits are not used.
    pub fn spawn(calls: Vec<Call>, stall: Duration) -> Result<Chain, ProcessError> {
        let name = calls.first().map(|c| c.program.name).unwrap_or("chain");
        let io_err = |source| ProcessError::Io { program: name, source };
        let mut children: Vec<Child> = Vec::with_capacity(calls.len());
        // The stdout of the program started last: the next one's stdin, and in
        // the end the chain's answer.
        let mut upstream: Option<ChildStdout> = None;
        for call in calls {
            tracing::debug!(program = call.program.name, args = ?call.args, "starting, kept running");
            let spawned = Command::new(&call.program.path)
                .args(&call.args)
                .stdin(upstream.take().map_or_else(Stdio::piped, Stdio::from))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn();
            let mut child = match spawned {
                Ok(child) => child,
                Err(source) => {
                    kill_all(&mut children);
                    return Err(spawn_error(&call.program, source));
                }
            };
            upstream = child.stdout.take();
            children.push(child);
        }
        let stdin = children.first_mut().and_then(|c| c.stdin.take());
        let Some(last) = upstream else {
            kill_all(&mut children);
            return Err(io_err(io::Error::other("a chain needs at least one program")));
        };
        // Bounded: the answer is read while the request is written (`exchange`).
        let (tx, chunks) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let pump = thread::Builder::new().name(format!("{name}-chain")).spawn(move || pump_stdout(last, tx));
        if let Err(e) = pump {
            kill_all(&mut children);
            return Err(io_err(e));
        }
        Ok(Chain { name, children, stdin, chunks, pending: Vec::new(), stall })
    }

    /// Writes `request` to the chain and returns what comes back up to the first
    /// `end` byte (which the request should provoke: Apertium's programs answer a
    /// NUL with everything before it and a NUL). After an error the chain is
    /// stopped and every later exchange fails.
    pub fn exchange(&mut self, request: &[u8], end: u8) -> Result<Vec<u8>, ProcessError> {
        let name = self.name;
        let ended = || ProcessError::Io {
            program: name,
            source: io::Error::other("the kept-running chain has ended"),
        };
        let mut stdin = self.stdin.take().ok_or_else(ended)?;
        let (answer, stdin) = thread::scope(|scope| {
            // Written from its own thread: a long request's answer comes back while
            // it is still being written, and nobody would read it otherwise.
            let writer =
                scope.spawn(move || stdin.write_all(request).and_then(|()| stdin.flush()).map(|()| stdin));
            let answer = self.read_until(end);
            if answer.is_err() {
                // Unblocks a writer stuck on a full pipe.
                self.stop();
            }
            (answer, writer.join().ok().and_then(Result::ok))
        });
        match (answer, stdin) {
            (Ok(answer), Some(stdin)) => {
                self.stdin = Some(stdin);
                Ok(answer)
            }
            (Err(e), _) => Err(e),
            (Ok(_), None) => {
                self.stop();
                Err(ended())
            }
        }
    }

    fn read_until(&mut self, end: u8) -> Result<Vec<u8>, ProcessError> {
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == end) {
                let rest = self.pending.split_off(at + 1);
                let mut answer = std::mem::replace(&mut self.pending, rest);
                answer.pop();
                return Ok(answer);
            }
            match self.chunks.recv_timeout(self.stall) {
                Ok(Ok(chunk)) => self.pending.extend_from_slice(&chunk),
                Ok(Err(source)) => return Err(ProcessError::Io { program: self.name, source }),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(ProcessError::Stalled {
                        program: self.name,
                        stall: self.stall,
                        stderr_tail: String::new(),
                    });
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(ProcessError::Io {
                        program: self.name,
                        source: io::Error::other("the kept-running chain ended before answering"),
                    });
                }
            }
        }
    }

    /// Closes the first program's stdin, kills and reaps every program.
    fn stop(&mut self) {
        self.stdin = None;
        kill_all(&mut self.children);
        self.children.clear();
    }
}

/// Kills and reaps `children` (a chain stopped, or one that could not be completed).
fn kill_all(children: &mut [Child]) {
    for child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        if !self.children.is_empty() {
            tracing::debug!(program = self.name, "stopping a kept-running chain");
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use babelcast_core::ErrorCode;

    fn program(name: &'static str) -> crate::Program {
        crate::Program::known(name, "coreutils")
    }

    #[test]
    fn a_chain_answers_request_after_request_without_restarting() {
        // `cat` writes what it reads as it reads it, NUL included.
        let mut chain =
            Chain::spawn(vec![program("cat").call(), program("cat").call()], Duration::from_secs(10))
                .expect("cat");
        let pids = format!("{chain:?}");
        assert_eq!(chain.exchange(b"first\0", 0).expect("answer"), b"first");
        assert_eq!(chain.exchange(b"second line\nand more\0", 0).expect("answer"), b"second line\nand more");
        // A request larger than a pipe holds, answered while it is written.
        let big = vec![b'x'; 1 << 20];
        let mut request = big.clone();
        request.push(0);
        assert_eq!(chain.exchange(&request, 0).expect("answer"), big);
        assert_eq!(format!("{chain:?}"), pids, "the same processes");
    }

    #[test]
    fn a_chain_that_stops_answering_is_stopped_and_says_so() {
        // `sleep` never reads its input nor writes.
        let mut chain =
            Chain::spawn(vec![program("sleep").call().arg("30")], Duration::from_millis(200)).expect("sleep");
        let err = chain.exchange(b"anything\0", 0).expect_err("stalls");
        assert_eq!(err.code(), "program_stalled", "{err}");
        let err = chain.exchange(b"again\0", 0).expect_err("stopped");
        let why = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
        assert!(why.contains("ended"), "{err}: {why}");

        let mut chain =
            Chain::spawn(vec![program("cat").call(), program("true").call()], Duration::from_secs(5))
                .expect("true");
        let err = chain.exchange(b"anything\0", 0).expect_err("ended");
        assert_eq!(err.code(), "program_io", "{err}");
    }

    #[test]
    fn a_missing_program_names_its_package_and_leaves_nothing_running() {
        let err = Chain::spawn(
            vec![program("cat").call(), crate::Program::known("babelcast-no-such-program", "nowhere").call()],
            Duration::from_secs(1),
        )
        .expect_err("missing");
        assert_eq!(err.code(), "program_not_installed");
        assert!(err.to_string().contains("nowhere"), "{err}");
    }
}
