//! Apertium, the rule-based translator Debian packages: which language pairs are
//! installed, routes between languages (direct, or through Spanish, the hub of
//! Apertium's pairs), and running a route on sentences, with the pairs' programs
//! kept running between translations (`warm`).

mod warm;

use std::path::{Path, PathBuf};
use std::time::Duration;

use babelcast_core::Lang;
use babelcast_process::{ProcessError, Program};

use crate::{TranslateError, Translator};
pub use warm::WarmPairs;

/// Where Debian's Apertium packages put their modes.
pub const DEFAULT_MODES_DIR: &str = "/usr/share/apertium/modes";

/// The language every pivot goes through.
pub const PIVOT: &str = "spa";

/// How long a translation may go without output before apertium is stopped.
const STALL: Duration = Duration::from_secs(60);

/// Apertium as installed on this machine.
#[derive(Debug, Clone)]
pub struct Apertium {
    program: Program,
    /// Installed pairs as (from, to) ISO 639-3 codes.
    pairs: Vec<(String, String)>,
    modes_dir: PathBuf,
    /// The pairs kept running, shared with other `Apertium`s given the same.
    warm: WarmPairs,
}

impl Apertium {
    /// Apertium with the pairs installed in `modes_dir` (one `xxx-yyy.mode` file per
    /// pair; variants such as `spa-cat_valencia` are ignored).
    pub fn discover(program: Program, modes_dir: &Path) -> Apertium {
        let mut pairs = Vec::new();
        for entry in std::fs::read_dir(modes_dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(mode) = name.strip_suffix(".mode") else { continue };
            if let Some((from, to)) = mode.split_once('-')
                && from.len() == 3
                && to.len() == 3
                && to.chars().all(|c| c.is_ascii_lowercase())
            {
                pairs.push((from.to_owned(), to.to_owned()));
            }
        }
        pairs.sort();
        Apertium { program, pairs, modes_dir: modes_dir.to_owned(), warm: WarmPairs::default() }
    }

    /// This Apertium keeping its pairs running in `warm` (shared by its clones and
    /// by every `Apertium` given the same), so that later discoveries of the
    /// installed pairs reuse the running ones.
    pub fn keeping_warm(mut self, warm: WarmPairs) -> Apertium {
        self.warm = warm;
        self
    }

    /// The installed pairs, as modes (`eng-spa`).
    pub fn pairs(&self) -> Vec<String> {
        self.pairs.iter().map(|(a, b)| format!("{a}-{b}")).collect()
    }

    fn has(&self, from: &str, to: &str) -> bool {
        self.pairs.iter().any(|(a, b)| a == from && b == to)
    }

    /// The modes that take `from` to `to`: one when the pair is installed, two
    /// through Spanish, none if unreachable.
    pub fn route(&self, from: Lang, to: Lang) -> Option<Vec<String>> {
        let (a, b) = (from.iso639_3(), to.iso639_3());
        if a == b {
            return Some(Vec::new());
        }
        if self.has(a, b) {
            return Some(vec![format!("{a}-{b}")]);
        }
        if a != PIVOT && b != PIVOT && self.has(a, PIVOT) && self.has(PIVOT, b) {
            return Some(vec![format!("{a}-{PIVOT}"), format!("{PIVOT}-{b}")]);
        }
        None
    }

    /// Translates sentences along the route, one sentence per line.
    pub fn translate(
        &self,
        from: Lang,
        to: Lang,
        sentences: &[String],
    ) -> Result<Vec<String>, TranslateError> {
        let route = self.route(from, to).ok_or_else(|| TranslateError::Unreachable {
            from,
            to,
            reachable: Translator::targets(self, from),
            engine: "apertium".into(),
        })?;
        let mut lines: Vec<String> = sentences.iter().map(|s| s.replace(['\n', '\r'], " ")).collect();
        for mode in route {
            lines = self.run(&mode, &lines)?;
        }
        Ok(lines)
    }

    fn run(&self, mode: &str, lines: &[String]) -> Result<Vec<String>, TranslateError> {
        let input = lines.join("\n") + "\n";
        match self.warm.translate(&self.program, &self.modes_dir, mode, &input) {
            Ok(text) => match Self::lines(mode, &text, lines.len()) {
                Ok(translated) => return Ok(translated),
                Err(e) => {
                    tracing::debug!(mode, "the kept-running pair answered wrong ({e}); running apertium once")
                }
            },
            // Not a failure yet: `apertium` itself says whether the pair works.
            Err(e) => {
                tracing::debug!(mode, "the kept-running pair did not answer ({e}); running apertium once")
            }
        }
        // Without -u: Apertium marks the words its dictionaries lack (`*word`, and
        // `#`/`@` for generation and transfer errors); `translate_cues` reports
        // them for review and takes the marks out of the captions.
        let call = self.program.call().arg(mode).stdin(input.into_bytes());
        let out = call.spawn_stdout(STALL).and_then(|s| s.read_all()).map_err(|e| match e {
            ProcessError::Failed { stderr_tail, .. } => {
                TranslateError::Engine(format!("apertium {mode} failed: {}", stderr_tail.trim()))
            }
            e => TranslateError::Program(e),
        })?;
        Self::lines(mode, &String::from_utf8_lossy(&out), lines.len())
    }

    /// The first `count` lines of `mode`'s output, one per sentence.
    fn lines(mode: &str, text: &str, count: usize) -> Result<Vec<String>, TranslateError> {
        let translated: Vec<String> = text.lines().map(|l| l.trim().to_owned()).take(count).collect();
        if translated.len() != count {
            return Err(TranslateError::Engine(format!(
                "apertium {mode} returned {} lines for {count}",
                translated.len()
            )));
        }
        Ok(translated)
    }
}
