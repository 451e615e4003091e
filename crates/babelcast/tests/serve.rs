//! The real `babelcast serve` process: killed with SIGKILL in the middle of an
//! encode and restarted, the job completes with complete, valid outputs and no
//! duplicates; then its player page plays in Debian's chromium with captions, a
//! poster and seek previews.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{SPEECH_WAV, curl, ffmpeg, find_partials, repo_models, start};
use serde_json::Value;

/// Starts `babelcast serve` on a free port; returns the process and its URL.
fn serve(dir: &Path) -> (Child, String) {
    let (child, rest) =
        start(dir, &["serve", "--listen", "127.0.0.1:0", "--data-dir", "data"], "babelcast is serving on ");
    (child, rest.split_whitespace().next().expect("url").to_owned())
}

#[test]
fn a_server_killed_mid_encode_finishes_the_job_after_a_restart_and_its_page_plays() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let models = std::path::absolute(repo_models()).expect("models");
    // A slow preset makes the encode last long enough to be interrupted.
    std::fs::write(
        dir.join("babelcast.toml"),
        format!(
            "models_dir = {models:?}\n\
             [speech]\nmodel = \"whisper-tiny.en\"\nbeam_size = 1\n\
             [server]\ntoken = \"secret\"\nlease_secs = 3\nretry_backoff_secs = 1\n\
             [media.ladder]\npreset = \"slower\"\nsegment_secs = 2\n\
             [[media.ladder.rungs]]\nheight = 360\nbitrate_kbps = 600\nmax_kbps = 700\n\
             [[media.ladder.rungs]]\nheight = 240\nbitrate_kbps = 300\nmax_kbps = 350\n"
        ),
    )
    .expect("config");
    let clip = dir.join("talk.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=30",
        "-i",
        SPEECH_WAV,
        "-af",
        "apad",
        "-t",
        "16",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        clip.to_str().expect("utf-8"),
    ]);

    let (mut server, url) = serve(dir);
    let accepted = curl(&[
        "-H",
        "Authorization: Bearer secret",
        "-F",
        &format!("file=@{}", clip.display()),
        &format!("{url}/v1/videos"),
    ]);
    let id = accepted["id"].as_str().unwrap_or_else(|| panic!("accepted: {accepted}")).to_owned();

    // Wait until the encode has written some segments, then kill -9.
    let cache = dir.join("data/cache/encode");
    let started = Instant::now();
    loop {
        let mut partials = Vec::new();
        find_partials(&cache, &mut partials);
        let segments = partials
            .iter()
            .flat_map(|p| std::fs::read_dir(p.join("360p")).into_iter().flatten().flatten())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".m4s"))
            .count();
        if segments >= 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the encode never got going");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");
    let health = Command::new("curl")
        .args(["-s", "--max-time", "5", &format!("{url}/healthz")])
        .status()
        .expect("curl");
    assert!(!health.success(), "the server is gone");
    // Its ffmpeg died with it (no orphan encode writing on).
    std::thread::sleep(Duration::from_millis(300));
    let orphans =
        Command::new("pgrep").args(["-f", &dir.join("data").to_string_lossy()]).output().expect("pgrep");
    assert!(orphans.stdout.is_empty(), "orphaned processes: {}", String::from_utf8_lossy(&orphans.stdout));

    let (mut server, url) = serve(dir);
    let started = Instant::now();
    let video = loop {
        let video = curl(&["-H", "Authorization: Bearer secret", &format!("{url}/v1/videos/{id}")]);
        if video["state"] != "processing" {
            break video;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "not finished: {video}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(video["state"], "completed", "{video}");
    let encode = video["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "encode")
        .expect("encode")
        .clone();
    assert_eq!(encode["attempts"], 2, "claimed again after the lease ran out: {video}");

    // Complete and valid: every playlist URI resolves, every rung has the whole
    // 16 s in 2 s segments, ffprobe reads the master; nothing half-written is left.
    let hls = dir.join(format!("data/videos/{id}/hls"));
    let master = std::fs::read_to_string(hls.join("master.m3u8")).expect("master");
    assert!(master.contains("TYPE=SUBTITLES"), "{master}");
    for rung in ["360p", "240p"] {
        let playlist = std::fs::read_to_string(hls.join(rung).join("index.m3u8")).expect("rung playlist");
        let segments: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".m4s")).collect();
        assert_eq!(segments.len(), 8, "{rung}: {playlist}");
        assert!(playlist.contains("#EXT-X-ENDLIST"));
        for segment in segments {
            assert!(hls.join(rung).join(segment).is_file(), "{rung}/{segment}");
        }
    }
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(hls.join("master.m3u8"))
        .output()
        .expect("ffprobe");
    let duration: f64 = String::from_utf8_lossy(&probe.stdout).trim().parse().expect("a duration");
    assert!((duration - 16.0).abs() < 0.5, "{duration}");
    let mut partials = Vec::new();
    find_partials(&dir.join("data"), &mut partials);
    assert!(partials.is_empty(), "leftovers: {partials:?}");
    assert_eq!(std::fs::read_dir(&cache).expect("cache").count(), 1, "one encode output, no duplicate");
    let sse = Command::new("curl")
        .args(["-s", "--max-time", "30", "-H", "Authorization: Bearer secret"])
        .arg(format!("{url}/v1/videos/{id}/events"))
        .output()
        .expect("curl");
    let sse = String::from_utf8_lossy(&sse.stdout);
    assert_eq!(sse.matches("event: completed\n").count(), 1, "{sse}");
    assert_eq!(sse.matches("event: playable\n").count(), 1, "the interrupted attempt never published: {sse}");

    // The player page, in a real browser: quality levels, the caption track, and
    // cues once CC is on.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/check-watch.mjs");
    // Through the viewer link the status hands out: the page needs nothing else.
    let watch = video["watch_url"].as_str().expect("a viewer link").to_owned();
    let out = Command::new("node").arg(script).arg(format!("{url}{watch}")).output().expect("node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page: Value = serde_json::from_slice(&out.stdout).expect("json");
    let report = serde_json::to_string_pretty(&page).unwrap_or_default();
    assert_eq!(page["status"], 200, "{report}");
    assert_eq!(page["errors"], Value::Array(Vec::new()), "{report}");
    assert_eq!(page["subtitleTracks"][0]["lang"], "en", "{report}");
    assert_eq!(page["captionOptions"], serde_json::json!(["Off", "English"]), "{report}");
    assert_eq!(page["levels"].as_array().map(Vec::len), Some(2), "{report}");
    assert_eq!(page["ccPressed"], "true", "{report}");
    assert_eq!(page["playback"]["advanced"], true, "{report}");
    assert!(page["playback"]["cues"].as_u64().unwrap_or(0) > 0, "captions show: {report}");

    // The poster and the seek previews: listed in the status, shown by the page.
    // 16 s: one 160x90 preview per second, all in one 10x10 sprite.
    assert_eq!(video["outputs"]["poster"], format!("videos/{id}/hls/poster.jpg"), "{video}");
    assert_eq!(video["outputs"]["thumbnails"], format!("videos/{id}/hls/thumbs/thumbnails.vtt"), "{video}");
    let poster = page["poster"].as_str().expect("the page shows a poster");
    let head = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code} %{content_type}"])
        .arg(poster)
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&head.stdout), "200 image/jpeg", "{poster}");
    let track = std::fs::read_to_string(hls.join("thumbs/thumbnails.vtt")).expect("thumbnails track");
    assert_eq!(track.matches("-->").count(), 16, "{track}");
    let shown = &page["seekPreview"];
    assert_eq!(shown["visible"], true, "{report}");
    assert_eq!(shown["loaded"], true, "the sprite loads: {report}");
    assert_eq!(
        (shown["spriteWidth"].as_u64(), shown["spriteHeight"].as_u64()),
        (Some(1600), Some(900)),
        "{report}"
    );
    let time = shown["time"].as_f64().expect("the hovered time");
    assert!((time - 8.0).abs() < 1.0, "the middle of the bar is the middle of 16 s: {report}");
    let tile = time.floor() as u64;
    assert_eq!(
        (shown["x"].as_u64(), shown["y"].as_u64()),
        (Some(tile % 10 * 160), Some(tile / 10 * 90)),
        "{report}"
    );

    // The package is CMAF, so the page offers DASH too; switched, dash.js plays the
    // signed manifest with the same menus, and captions show.
    assert_eq!(page["formatShown"], true, "{report}");
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/check-watch.mjs"))
        .arg(format!("{url}{watch}?format=dash"))
        .output()
        .expect("node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page: Value = serde_json::from_slice(&out.stdout).expect("json");
    let report = serde_json::to_string_pretty(&page).unwrap_or_default();
    assert_eq!(page["player"], "dashjs", "{report}");
    assert_eq!(page["errors"], Value::Array(Vec::new()), "{report}");
    assert_eq!(page["levels"].as_array().map(Vec::len), Some(2), "{report}");
    assert_eq!(page["subtitleTracks"][0]["lang"], "en", "{report}");
    assert_eq!(page["captionOptions"], serde_json::json!(["Off", "English"]), "{report}");
    assert_eq!(page["playback"]["advanced"], true, "{report}");
    assert!(page["playback"]["cues"].as_u64().unwrap_or(0) > 0, "captions show: {report}");

    server.kill().expect("stop");
    let _ = server.wait();
}
