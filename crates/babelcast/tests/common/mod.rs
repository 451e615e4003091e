//! Helpers for tests that run the real `babelcast` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's models folder, filled by `scripts/setup.sh`.
pub fn repo_models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// `babelcast` with a clean environment: no BABELCAST_* from the caller, run in
/// `dir` so no stray babelcast.toml is read.
pub fn babelcast(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_babelcast"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BABELCAST_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir);
    cmd
}

/// Runs ffmpeg to make a fixture; panics with its stderr if it fails.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-nostdin"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (scripts/setup.sh)");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The single line a failed command printed on stderr, after checking that it
/// failed cleanly: exit status 1, exactly one line, no panic.
pub fn one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected exit 1; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_owned()
}
