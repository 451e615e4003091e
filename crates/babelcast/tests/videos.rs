//! `babelcast videos` against a real `babelcast serve`: the localization job
//! driven from the command line — upload with targets es and it held for review,
//! list, a review link, approve, wait, download each MP4 (ffprobe reads them) —
//! and the refusals a user meets: a key without the scope, an id that is not one;
//! and `babelcast run --review`, which stops for the reviewer.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{babelcast, curl, repo_models, start, talk_clip};

/// `babelcast videos ARGS` in `dir` with the server's URL and `key` in the
/// environment.
fn videos(dir: &Path, url: &str, key: &str, args: &[&str]) -> Output {
    babelcast(dir)
        .arg("videos")
        .args(args)
        .env("BABELCAST_CLIENT__URL", url)
        .env("BABELCAST_CLIENT__KEY", key)
        .output()
        .expect("babelcast videos")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The stream kinds ffprobe finds in a file, e.g. `["video", "audio", "audio"]`.
fn streams(file: &Path) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn the_localization_job_runs_from_the_command_line_against_a_server() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let models = std::path::absolute(repo_models()).expect("models");
    std::fs::write(
        dir.join("babelcast.toml"),
        format!(
            "models_dir = {models:?}\n\
             [speech]\nmodel = \"whisper-tiny.en\"\nbeam_size = 1\n\
             [server]\ntoken = \"secret\"\nretry_backoff_secs = 1\n\
             [media.ladder]\npreset = \"ultrafast\"\nsegment_secs = 2\n\
             [[media.ladder.rungs]]\nheight = 240\nbitrate_kbps = 300\nmax_kbps = 350\n"
        ),
    )
    .expect("config");
    let clip = dir.join("talk.mp4");
    talk_clip(&clip, 0);
    let (mut server, rest) =
        start(dir, &["serve", "--listen", "127.0.0.1:0", "--data-dir", "data"], "babelcast is serving on ");
    let url = rest.split_whitespace().next().expect("url").to_owned();
    // A producer's key: upload, read and review, not admin.
    let made = curl(&[
        "-H",
        "Authorization: Bearer secret",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"name":"producer","scopes":["upload","review"]}"#,
        &format!("{url}/v1/keys"),
    ]);
    let key = made["key"].as_str().unwrap_or_else(|| panic!("{made}")).to_owned();

    let up = videos(
        dir,
        &url,
        &key,
        &["upload", "talk.mp4", "--language", "en", "--to", "es,it", "--review", "--wait"],
    );
    let printed = stdout(&up);
    assert_eq!(
        up.status.code(),
        Some(4),
        "held for review: {printed} {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let id = printed.lines().next().expect("the id").to_owned();
    assert_eq!(printed.lines().last(), Some("awaiting_review"), "{printed}");

    let list = stdout(&videos(dir, &url, &key, &["list"]));
    let line = list.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{list}"));
    assert!(line.contains("awaiting_review") && line.ends_with("talk.mp4"), "{line}");
    let link = stdout(&videos(dir, &url, &key, &["review-link", &id]));
    assert!(link.trim().starts_with(&format!("{url}/review/{id}/bl_review.")), "{link}");

    let approved = videos(dir, &url, &key, &["approve", &id]);
    assert!(approved.status.success(), "{}", String::from_utf8_lossy(&approved.stderr));
    assert_eq!(stdout(&approved).trim(), "approved: transcript");
    let waited = videos(dir, &url, &key, &["wait", &id]);
    assert_eq!(waited.status.code(), Some(0), "{}", String::from_utf8_lossy(&waited.stderr));
    assert_eq!(stdout(&waited).trim(), "completed");

    let got = videos(dir, &url, &key, &["download", &id, "mp4/es.mp4", "mp4/it.mp4", "--out", "dl"]);
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    let files: Vec<String> = stdout(&got).lines().map(str::to_owned).collect();
    assert_eq!(files, ["dl/talk.es.mp4", "dl/talk.it.mp4"], "named after the upload");
    for file in &files {
        // The dub first, the original second.
        assert_eq!(streams(&dir.join(file)), ["video", "audio", "audio", "subtitle", "subtitle"], "{file}");
    }
    let missing = videos(dir, &url, &key, &["download", &id, "mp4/de.mp4"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("has no mp4/de.mp4"), "{missing:?}");

    // Refusals say what happened, in one line, and change nothing.
    let refused = videos(dir, &url, &key, &["delete", &id]);
    assert_eq!(refused.status.code(), Some(1));
    let why = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(why.contains("403") && why.contains("admin"), "{why}");
    let wrong = videos(dir, &url, "bk_nope_nope", &["list"]);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("401"), "{wrong:?}");
    let odd = videos(dir, &url, &key, &["show", "../keys"]);
    assert!(String::from_utf8_lossy(&odd.stderr).contains("is not a video id"), "{odd:?}");

    let deleted = videos(dir, &url, "secret", &["delete", &id]);
    assert_eq!(stdout(&deleted).trim(), "deleted", "{}", String::from_utf8_lossy(&deleted.stderr));
    let gone = videos(dir, &url, &key, &["show", &id]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("404"), "{gone:?}");
    assert!(!dir.join(format!("data/videos/{id}")).exists());
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn run_with_review_stops_for_the_reviewer_and_says_how_to_go_on() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let models = std::path::absolute(repo_models()).expect("models");
    std::fs::write(
        dir.join("babelcast.toml"),
        format!(
            "models_dir = {models:?}\n[speech]\nmodel = \"whisper-tiny.en\"\nbeam_size = 1\n\
             [[media.ladder.rungs]]\nheight = 240\nbitrate_kbps = 300\nmax_kbps = 350\n\
             [media.ladder]\npreset = \"ultrafast\"\n"
        ),
    )
    .expect("config");
    talk_clip(&dir.join("talk.mp4"), 0);
    let out = babelcast(dir)
        .args(["run", "talk.mp4", "--language", "en", "--to", "es", "--review", "-o", "out"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("awaiting review: the transcript waits"), "{stderr}");
    assert!(stderr.contains("babelcast serve --data-dir out"), "{stderr}");
    // Nothing unreviewed went further: no Spanish yet.
    let videos: Vec<_> = std::fs::read_dir(dir.join("out/videos")).expect("videos").flatten().collect();
    assert_eq!(videos.len(), 1);
    let folder = videos[0].path();
    assert!(folder.join("transcript.json").is_file());
    assert!(!folder.join("captions/es.vtt").exists() && !folder.join("dub").exists());
}
