//! Apertium pairs kept running between translations.
//!
//! `apertium eng-spa` starts the pair's ten or so programs, each loading its
//! dictionaries or rules: about 0.2 s before the first word, then a few
//! milliseconds a sentence. After an edit of one cue that start-up was most of
//! a language's translation (twice for Italian, through Spanish). So a pair's
//! programs are started once and kept: each flushes on a NUL byte (`-z`), the
//! way Apertium's own translation server runs them.
//!
//! - The programs are the mode's, as `apertium-wblank-mode -z` writes them out
//!   for the `apertium` script: the same programs with the same files and
//!   options, with `$1` = `-g` and `$2` empty as the script sets them for plain
//!   text. They are spawned one by one as a [`Chain`], no shell in between.
//! - Each request is deformatted by `apertium-destxt` and the answer reformatted
//!   by `apertium-retxt`, as the script does; those two start in milliseconds.
//! - A pair unused for [`IDLE`] is stopped (about 200 MB of dictionaries).
//! - Anything unexpected (a mode line with shell syntax, a program missing, a
//!   chain that dies or stalls) stops the chain and returns an error; the
//!   caller then runs `apertium` once, whose error, if it fails too, says why.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use babelcast_process::{Chain, ProcessError, Program};

/// How long a pair stays running without being asked.
pub(crate) const IDLE: Duration = Duration::from_secs(300);

/// How long a kept pair may take to answer without writing anything.
const STALL: Duration = Duration::from_secs(60);

/// The pairs kept running; clones share them.
#[derive(Debug, Clone, Default)]
pub struct WarmPairs {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    slots: Mutex<HashMap<String, Arc<Mutex<Slot>>>>,
    reaper: AtomicBool,
}

#[derive(Debug)]
struct Slot {
    chain: Option<Chain>,
    used: Instant,
}

/// Why a kept pair could not translate (the caller falls back to `apertium`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum WarmError {
    #[error(transparent)]
    Program(#[from] ProcessError),
    #[error("{0}")]
    Mode(String),
}

impl WarmPairs {
    /// Translates plain `text` with `mode` (`eng-spa`, read from `modes_dir`),
    /// starting the pair's programs if they are not running; `apertium` is the
    /// configured script, beside which its helper programs are looked for. A
    /// pair that fails is stopped (dropped), to be started afresh next time.
    pub(crate) fn translate(
        &self,
        apertium: &Program,
        modes_dir: &Path,
        mode: &str,
        text: &str,
    ) -> Result<String, WarmError> {
        let slot = {
            let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots
                .entry(mode.to_owned())
                .or_insert_with(|| Arc::new(Mutex::new(Slot { chain: None, used: Instant::now() })))
                .clone()
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        let mut chain = match slot.chain.take() {
            Some(chain) => chain,
            None => self.start(apertium, modes_dir, mode)?,
        };
        let translated = ask(apertium, &mut chain, text)?;
        slot.chain = Some(chain);
        slot.used = Instant::now();
        Ok(translated)
    }

    /// Starts `mode`'s programs.
    fn start(&self, apertium: &Program, modes_dir: &Path, mode: &str) -> Result<Chain, WarmError> {
        let started = Instant::now();
        let chain = Chain::spawn(mode_programs(apertium, modes_dir, mode)?, STALL)?;
        tracing::debug!(
            mode,
            ms = started.elapsed().as_millis() as u64,
            "apertium pair started, kept running"
        );
        self.start_reaper();
        Ok(chain)
    }

    /// The modes whose programs are running now.
    pub fn running(&self) -> Vec<String> {
        let slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut modes: Vec<String> = slots
            .iter()
            .filter(|(_, slot)| slot.lock().map(|s| s.chain.is_some()).unwrap_or(false))
            .map(|(mode, _)| mode.clone())
            .collect();
        modes.sort();
        modes
    }

    /// Once per set of pairs: a thread that stops pairs idle for [`IDLE`], and
    /// ends when the pairs are dropped.
    fn start_reaper(&self) {
        if self.inner.reaper.swap(true, Ordering::SeqCst) {
            return;
        }
        let inner: Weak<Inner> = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new().name("apertium-idle".into()).spawn(move || {
            loop {
                std::thread::sleep(IDLE / 5);
                let Some(inner) = inner.upgrade() else { return };
                let slots = inner.slots.lock().unwrap_or_else(|p| p.into_inner());
                for (mode, slot) in slots.iter() {
                    // A pair being asked is busy, not idle.
                    if let Ok(mut slot) = slot.try_lock()
                        && slot.chain.is_some()
                        && slot.used.elapsed() >= IDLE
                    {
                        tracing::debug!(mode, "apertium pair idle, stopped");
                        slot.chain = None;
                    }
                }
            }
        });
        if spawned.is_err() {
            // Without the thread, pairs stay until the process ends; next time, try again.
            self.inner.reaper.store(false, Ordering::SeqCst);
        }
    }
}

/// `text` deformatted by `apertium-destxt`, through `chain` (up to the NUL
/// that flushes it), reformatted by `apertium-retxt`: what the `apertium`
/// script does for plain text.
fn ask(apertium: &Program, chain: &mut Chain, text: &str) -> Result<String, WarmError> {
    let mut request =
        helper(apertium, "apertium-destxt").stdin(text.as_bytes()).spawn_stdout(STALL)?.read_all()?;
    request.push(0);
    let answer = chain.exchange(&request, 0)?;
    let text = helper(apertium, "apertium-retxt").stdin(answer).spawn_stdout(STALL)?.read_all()?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// One of Apertium's programs beside the configured `apertium` script (on the
/// `PATH` when the script is).
fn helper(apertium: &Program, name: &str) -> babelcast_process::Call {
    let dir = apertium.path().parent().filter(|d| !d.as_os_str().is_empty());
    let path = dir.map_or_else(|| PathBuf::from(name), |d| d.join(name));
    apertium.clone().at(path).call()
}

/// The programs of `mode` with their arguments, each flushing on NUL.
fn mode_programs(
    apertium: &Program,
    modes_dir: &Path,
    mode: &str,
) -> Result<Vec<babelcast_process::Call>, WarmError> {
    let file = modes_dir.join(format!("{mode}.mode"));
    let line =
        helper(apertium, "apertium-wblank-mode").arg("-z").arg(&file).spawn_stdout(STALL)?.read_all()?;
    let line = String::from_utf8_lossy(&line);
    let words = shlex::split(&line)
        .ok_or_else(|| WarmError::Mode(format!("{}: unbalanced quotes", file.display())))?;
    let mut programs = Vec::new();
    for command in words.split(|w| w == "|") {
        let mut args = Vec::with_capacity(command.len());
        for word in command {
            match word.as_str() {
                // What the `apertium` script passes for plain text.
                "$1" => args.push("-g".to_owned()),
                "$2" => {}
                w if w.contains(['$', '`', ';', '&', '<', '>', '(', ')']) => {
                    return Err(WarmError::Mode(format!(
                        "{}: shell syntax {w:?} in the mode",
                        file.display()
                    )));
                }
                w => args.push(w.to_owned()),
            }
        }
        let Some((program, args)) = args.split_first() else {
            return Err(WarmError::Mode(format!("{}: an empty command in the mode", file.display())));
        };
        programs.push(apertium.clone().at(program).call().args(args));
    }
    if programs.is_empty() {
        return Err(WarmError::Mode(format!("{}: no programs in the mode", file.display())));
    }
    Ok(programs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apertium::{Apertium, DEFAULT_MODES_DIR};
    use babelcast_core::Lang;

    /// What `apertium MODE` prints for `text`, run once the ordinary way.
    fn once(mode: &str, text: &str) -> String {
        let out = Program::apertium()
            .call()
            .arg(mode)
            .stdin(text.as_bytes())
            .spawn_stdout(STALL)
            .and_then(|s| s.read_all());
        String::from_utf8_lossy(&out.expect("apertium is installed (scripts/setup.sh)")).into_owned()
    }

    fn lang(tag: &str) -> Lang {
        tag.parse().expect("lang")
    }

    #[test]
    fn a_kept_pair_translates_as_apertium_does_and_keeps_running() {
        let warm = WarmPairs::default();
        let program = Program::apertium();
        let modes = Path::new(DEFAULT_MODES_DIR);
        // Unknown words, Apertium's own special characters, several lines, twice.
        let texts = [
            "He was not an ill-disposed young man.\nThe zorblax flew over the house.\n",
            "Prices: $5 ^ 3 / 2 <tags> [brackets] {braces} \\ back*slash @home #1.\nNo!\n",
        ];
        for text in texts {
            assert_eq!(
                warm.translate(&program, modes, "eng-spa", text).expect("kept pair"),
                once("eng-spa", text)
            );
            assert_eq!(warm.running(), ["eng-spa"]);
        }
        // Through Apertium's routing: both hops kept.
        let apertium = Apertium::discover(program, modes).keeping_warm(warm.clone());
        let italian =
            apertium.translate(lang("en"), lang("it"), &["The cat is on the table.".into()]).expect("en→it");
        let by_hand = once("spa-ita", &once("eng-spa", "The cat is on the table.\n"));
        assert_eq!(italian, [by_hand.trim()]);
        assert_eq!(warm.running(), ["eng-spa", "spa-ita"]);
    }

    #[test]
    fn a_mode_with_shell_syntax_is_not_kept_and_apertium_runs_once_instead() {
        let modes = tempfile::tempdir().expect("tempdir");
        std::fs::write(modes.path().join("eng-spa.mode"), "lt-proc $(touch /tmp/never) x.bin\n")
            .expect("mode");
        let warm = WarmPairs::default();
        let err =
            warm.translate(&Program::apertium(), modes.path(), "eng-spa", "Hello.\n").expect_err("refused");
        assert!(err.to_string().contains("shell syntax"), "{err}");
        assert!(warm.running().is_empty());
        // The pair's translation still happens, by `apertium` itself.
        let apertium = Apertium::discover(Program::apertium(), modes.path()).keeping_warm(warm.clone());
        let t =
            apertium.translate(lang("en"), lang("es"), &["The cat is on the table.".into()]).expect("once");
        assert_eq!(t, ["El gato es en la mesa."]);
        assert!(warm.running().is_empty());
    }
}
