//! `babelcast config`: the effective configuration, layer by layer.

mod common;

use common::{babelcast, one_line_error};

#[test]
fn config_prints_file_env_and_flag_values() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(
        tmp.path().join("babelcast.toml"),
        "python = \"/opt/py/bin/python3\"\n[media]\nffmpeg = \"/opt/ffmpeg\"\n",
    )
    .expect("write");
    let out = babelcast(tmp.path())
        .env("BABELCAST_MEDIA__PROBE_TIMEOUT_SECS", "9")
        .env("BABELCAST_MEDIA__FFMPEG", "/usr/local/bin/ffmpeg")
        .args(["--models-dir", "/srv/models", "config"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config: toml::Table = stdout.parse().expect("TOML");
    assert_eq!(config["models_dir"].as_str(), Some("/srv/models"), "flag");
    assert_eq!(config["python"].as_str(), Some("/opt/py/bin/python3"), "file");
    assert_eq!(config["media"]["ffmpeg"].as_str(), Some("/usr/local/bin/ffmpeg"), "env over file");
    assert_eq!(config["media"]["probe_timeout_secs"].as_integer(), Some(9), "env");
    assert_eq!(config["media"]["ffprobe"].as_str(), Some("ffprobe"), "default");
}

#[test]
fn a_typo_in_the_environment_is_an_error_naming_the_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out =
        babelcast(tmp.path()).env("BABELCAST_MEDIA__FFPORBE", "x").arg("config").output().expect("runs");
    let line = one_line_error(&out);
    assert!(line.contains("ffporbe"), "{line}");
}
