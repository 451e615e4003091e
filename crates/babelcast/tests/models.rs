//! `babelcast models`: listing, verifying and fetching for real.

mod common;

use common::{babelcast, one_line_error, repo_models};
use serde_json::Value;

#[test]
fn the_fetched_models_all_verify() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = babelcast(tmp.path())
        .arg("--models-dir")
        .arg(repo_models())
        .args(["models", "--json"])
        .output()
        .expect("runs");
    let rows: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = rows.as_array().expect("a list");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        ["whisper-base", "whisper-tiny.en", "silero-vad", "onnxruntime", "piper-en_US-joe-medium"]
    );
    for row in rows {
        assert_eq!(row["ok"], true, "run scripts/setup.sh first: {row}");
    }
    assert!(out.status.success());
}

#[test]
fn an_empty_models_dir_lists_everything_missing_and_fails() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = babelcast(tmp.path()).args(["--models-dir", "empty", "models"]).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.ends_with("  missing")).count(), 5, "{stdout}");
    assert!(stdout.contains("run `babelcast models fetch`"), "{stdout}");
}

#[test]
fn fetch_installs_a_model_and_repairs_a_damaged_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fetch = || {
        babelcast(tmp.path())
            .args(["--models-dir", "m", "models", "fetch", "silero-vad"])
            .output()
            .expect("runs")
    };

    let out = fetch();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let onnx = tmp.path().join("m/silero-vad/silero_vad.onnx");
    assert_eq!(std::fs::metadata(&onnx).expect("installed").len(), 2_327_524);

    // Same size, one byte changed: only the sha256 can tell.
    let mut bytes = std::fs::read(&onnx).expect("read");
    bytes[1000] ^= 0xff;
    std::fs::write(&onnx, &bytes).expect("damage");
    let out = babelcast(tmp.path()).args(["--models-dir", "m", "models"]).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("silero_vad.onnx is damaged") && stdout.contains("sha256"), "{stdout}");

    let out = fetch();
    assert!(String::from_utf8_lossy(&out.stderr).contains("silero-vad: fetched silero_vad.onnx"));
    let out = fetch();
    assert!(String::from_utf8_lossy(&out.stderr).contains("silero-vad: up to date"));
    assert!(!tmp.path().join("m/.downloads").exists(), "downloads are cleaned up");
}

#[test]
fn fetching_an_unknown_model_names_the_known_ones() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = babelcast(tmp.path())
        .args(["--models-dir", "m", "models", "fetch", "whisper-huge"])
        .output()
        .expect("runs");
    let line = one_line_error(&out);
    assert!(line.contains("unknown model \"whisper-huge\"") && line.contains("whisper-base"), "{line}");
}

#[test]
fn models_live_in_the_user_data_folder_whichever_folder_a_command_starts_in() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data-home");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let out = babelcast(&elsewhere).env("XDG_DATA_HOME", &data).arg("config").output().expect("runs");
    let config: toml::Table = String::from_utf8_lossy(&out.stdout).parse().expect("TOML");
    let expected = data.join("babelcast/models");
    assert_eq!(config["models_dir"].as_str(), expected.to_str(), "not ./models");
}

#[test]
fn run_without_the_speech_model_stops_at_once_with_the_fix() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Only the VAD: the Whisper model is missing.
    let models = tmp.path().join("m");
    let fetched = babelcast(tmp.path())
        .args(["--models-dir", "m", "models", "fetch", "silero-vad"])
        .output()
        .expect("runs");
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    // The video need not exist: the check comes before anything is read or queued.
    let out = babelcast(tmp.path())
        .arg("--models-dir")
        .arg(&models)
        .args(["run", "talk.mp4", "-o", "out"])
        .output()
        .expect("runs");
    let line = one_line_error(&out);
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert!(line.contains("transcription cannot run with the models in"), "{line}");
    assert!(line.contains("whisper-base") && line.contains("run `babelcast models fetch`"), "{line}");
    assert!(!tmp.path().join("out").exists(), "nothing was started");
}
