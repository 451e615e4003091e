//! Helpers for tests that run the real `babelcast` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The repository's models folder, filled by `scripts/setup.sh`.
pub fn repo_models() -> PathBuf {
    babelcast_models::default_dir()
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

/// Starts `babelcast ARGS` in `dir` and waits for the line starting with `ready`;
/// returns the process and the rest of that line. Its stdout is read to the end
/// in the background, so it never blocks on a full pipe.
pub fn start(dir: &Path, args: &[&str], ready: &str) -> (Child, String) {
    let mut child = babelcast(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("babelcast starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let rest = loop {
        let line = lines.next().unwrap_or_else(|| panic!("{args:?} exited before {ready:?}")).expect("utf-8");
        if let Some(rest) = line.strip_prefix(ready) {
            break rest.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, rest)
}

/// curl with a 60 s limit; the reply as JSON (`Null` if it is not JSON).
pub fn curl(args: &[&str]) -> Value {
    let out = Command::new("curl").args(["-s", "--max-time", "60"]).args(args).output().expect("curl");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Every `.partial-*` staging entry below `dir`.
pub fn find_partials(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(".partial-") {
            found.push(entry.path());
        }
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            find_partials(&entry.path(), found);
        }
    }
}

/// Real speech: a human reader from Debian's `pocketsphinx-testdata` (setup installs it).
pub const SPEECH_WAV: &str =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";

/// The scale-out tests' PostgreSQL server, started by `scripts/test-services.sh`.
pub const PG: &str = "postgres://postgres@127.0.0.1:54329";

/// Runs `sql` on `database` of the test server; the rows, unaligned (`|` between
/// fields), trimmed.
pub fn psql(database: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", &format!("{PG}/{database}"), "-c", sql])
        .output()
        .expect("psql (scripts/test-services.sh installs PostgreSQL)");
    assert!(
        out.status.success(),
        "psql {sql}: {} (is the test server up? scripts/test-services.sh)",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Writes an 8 s 426x240 H.264/AAC clip to `path`: a test picture over the speech
/// from `offset_secs` on, padded with silence.
pub fn talk_clip(path: &Path, offset_secs: u32) {
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=426x240:rate=25",
        "-ss",
        &offset_secs.to_string(),
        "-i",
        SPEECH_WAV,
        "-af",
        "apad",
        "-t",
        "8",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        path.to_str().expect("utf-8"),
    ]);
}
