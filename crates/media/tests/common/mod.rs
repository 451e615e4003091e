//! What the media tests share: running ffmpeg to make their inputs, and probing.

// Each test file uses a part of this.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use babelcast_core::MediaFacts;
use babelcast_media::Prober;
use babelcast_process::Program;

/// Runs ffmpeg quietly with `args`, which must succeed; its stdout.
pub fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-nostdin"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (scripts/setup.sh)");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The facts babelcast probes from `path`.
pub fn probe(path: &Path) -> MediaFacts {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime
        .block_on(Prober::new(Program::ffprobe(), Duration::from_secs(60)).probe(path))
        .unwrap_or_else(|e| panic!("probe {}: {e}", path.display()))
}
