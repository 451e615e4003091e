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

#[test]
fn config_prints_no_secret_and_neither_does_a_verbose_log() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(
        tmp.path().join("babelcast.toml"),
        "[server]\ntoken = \"tok-SECRET\"\nsigning_key = \"key-SECRET\"\n\
         database_url = \"postgres://u:pw-SECRET@db/b\"\n",
    )
    .expect("write");
    let out = babelcast(tmp.path()).args(["-v", "config"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("SECRET"), "{all}");
    assert!(all.contains("token = \"[redacted]\""), "{all}");
}

#[test]
fn keys_are_created_shown_once_listed_without_secrets_and_revoked_and_the_signing_key_rotates() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let run = |args: &[&str]| {
        let out = babelcast(tmp.path()).args(args).arg("--data-dir").arg(&data).output().expect("runs");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    std::fs::create_dir_all(&data).expect("data");
    let created = run(&["keys", "create", "ingest bot", "--scopes", "upload,read"]);
    let key = created.lines().last().expect("the key").trim().to_owned();
    assert!(key.starts_with("bk_"), "{created}");
    let id = key.split('_').nth(1).expect("id").to_owned();
    let listed = run(&["keys", "list"]);
    assert!(listed.contains(&id) && listed.contains("upload,read") && listed.contains("active"), "{listed}");
    assert!(!listed.contains(key.rsplit('_').next().expect("secret")), "no secret listed: {listed}");
    run(&["keys", "revoke", &id]);
    assert!(run(&["keys", "list"]).contains("revoked"));
    let refused = babelcast(tmp.path())
        .args(["keys", "create", "x", "--scopes", "root", "--data-dir"])
        .arg(&data)
        .output()
        .expect("runs");
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("unknown scope"));

    let before = std::fs::read_to_string(data.join("signing-key")).unwrap_or_default();
    run(&["signing-key", "rotate"]);
    let after = std::fs::read_to_string(data.join("signing-key")).expect("new key");
    let retired = std::fs::read_to_string(data.join("signing-key.retired")).expect("retired");
    assert_ne!(before, after);
    let old = retired.lines().last().and_then(|l| l.split(' ').next()).expect("the old key");
    assert!(before.is_empty() || old == before.trim(), "{retired}");
    assert_eq!(old.len(), 64, "the old key is kept for its grace period");
}

#[test]
fn run_names_a_glossary_it_cannot_read_or_parse() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("video.mp4"), b"not read: the glossary is checked first").expect("write");
    let out = babelcast(tmp.path())
        .args(["run", "video.mp4", "--to", "es", "--glossary", "terms.json"])
        .output()
        .expect("runs");
    let line = one_line_error(&out);
    assert!(line.contains("cannot read the glossary terms.json"), "{line}");
    std::fs::write(tmp.path().join("terms.json"), "{\"keep\": \"Dashwood\"}").expect("write");
    let out = babelcast(tmp.path())
        .args(["run", "video.mp4", "--to", "es", "--glossary", "terms.json"])
        .output()
        .expect("runs");
    let line = one_line_error(&out);
    assert!(line.contains("the glossary terms.json is not"), "{line}");
}

#[test]
fn serve_says_where_it_saved_the_admin_token_it_generated_but_never_prints_it() {
    use std::io::{BufRead as _, BufReader};
    let tmp = tempfile::tempdir().expect("tmp");
    let mut child = babelcast(tmp.path())
        .args(["-v", "serve", "--listen", "127.0.0.1:0", "--data-dir", "data"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut said = String::new();
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("utf-8");
        said.push_str(&line);
        said.push('\n');
        if line.starts_with("babelcast is serving on ") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let said = format!("{said}{}", log.join().expect("log"));
    let token = std::fs::read_to_string(tmp.path().join("data/api-token")).expect("the token was saved");
    assert!(token.trim().len() >= 32, "{token}");
    assert!(said.contains("generated the admin token into") && said.contains("api-token"), "{said}");
    assert!(!said.contains(token.trim()), "the token was printed: {said}");
}
