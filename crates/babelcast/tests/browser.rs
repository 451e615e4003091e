//! The package as viewers meet it: served on localhost and played by hls.js in
//! Debian's chromium (driven by playwright-core through `tests/browser/check-hls.mjs`,
//! installed by `scripts/test-fixtures.sh`), and a CMAF package's DASH manifest by
//! dash.js and Shaka Player (`tests/browser/check-dash.mjs`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{babelcast, ffmpeg};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the browser checker on a package and returns what the player saw.
fn play(pkg: &Path, extra: &[&str]) -> Value {
    let script = repo().join("tests/browser/check-hls.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(pkg)
        .arg("master.m3u8")
        .args(extra)
        .output()
        .expect("node is installed (scripts/test-fixtures.sh)");
    assert!(
        out.status.success(),
        "the browser checker could not run (run scripts/test-fixtures.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the checker prints JSON")
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.as_array().expect("array").iter().map(|t| t[key].as_str().unwrap_or("").to_owned()).collect()
}

#[test]
fn hls_js_in_chromium_plays_every_rung_audio_track_and_caption_track() {
    plays_every_rung_audio_track_and_caption_track("ts");
}

#[test]
fn hls_js_in_chromium_plays_a_cmaf_package_with_the_same_tracks_and_timing() {
    let pkg = plays_every_rung_audio_track_and_caption_track("cmaf");
    let playlist = std::fs::read_to_string(pkg.path().join("pkg/360p/index.m3u8")).expect("playlist");
    assert!(playlist.contains("#EXT-X-MAP:URI=\"init_0.mp4\""), "{playlist}");
    assert!(playlist.lines().any(|l| l.ends_with(".m4s")), "{playlist}");
    let dub = std::fs::read_to_string(pkg.path().join("pkg/dub-es/index.m3u8")).expect("dub playlist");
    assert!(dub.contains("#EXT-X-MAP:URI=\"init.mp4\""), "the dub is CMAF too: {dub}");
    // The same files as DASH: ffprobe reads the manifest, and dash.js and Shaka
    // Player play it with every track, the 10 s cue on screen at 10 s.
    let mpd = pkg.path().join("pkg/manifest.mpd");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-allowed_extensions", "ALL", "-show_entries", "stream=codec_name,height"])
        .args(["-of", "csv=p=0"])
        .arg(&mpd)
        .output()
        .expect("ffprobe");
    let streams = String::from_utf8_lossy(&probe.stdout);
    // Each stream is listed under its program too; "N/A": a text stream has no height.
    let mut streams: Vec<&str> = streams.lines().filter(|l| !l.is_empty()).collect();
    streams.sort_unstable();
    streams.dedup();
    assert_eq!(streams, ["aac", "h264,240", "h264,360", "webvtt,N/A"], "ffprobe reads the MPD: {streams:?}");
    for player in ["dashjs", "shaka"] {
        let seen = play_dash(&pkg.path().join("pkg"), player);
        let report = serde_json::to_string_pretty(&seen).unwrap_or_default();
        assert_eq!(seen["errors"], Value::Array(Vec::new()), "{player}: {report}");
        assert_eq!(seen["http"]["notFound"], serde_json::json!(["/favicon.ico"]), "{player}: {report}");
        assert_eq!(seen["heights"], serde_json::json!([240, 360]), "{player}: {report}");
        assert_eq!(strings(&seen["audioTracks"], "lang"), ["en", "es"], "{player}: {report}");
        assert_eq!(seen["audioTracks"][0]["roles"], serde_json::json!(["main"]), "{player}: {report}");
        assert_eq!(seen["audioTracks"][1]["roles"], serde_json::json!(["dub"]), "{player}: {report}");
        let mut text = strings(&seen["textTracks"], "lang");
        text.sort();
        assert_eq!(text, ["en", "es"], "{player}: {report}");
        assert_eq!(seen["playback"]["advanced"], true, "{player}: {report}");
        for switch in seen["audioSwitch"].as_array().expect("audioSwitch") {
            assert_eq!(switch["ok"], true, "{player}: audio track {} plays: {report}", switch["lang"]);
        }
        let shown = seen["cueTiming"]["shownAt"].as_f64().unwrap_or_else(|| panic!("{player}: {report}"));
        eprintln!("{player}: the 10.0 s cue was on screen at {shown} s");
        assert!((shown - 10.0).abs() <= 0.1, "{player}: the 10 s cue is on screen at {shown} s: {report}");
        assert_eq!(seen["cueTiming"]["text"], "Ten seconds in", "{player}: {report}");
    }

    // The dub, encoded on its own, starts when the original audio does.
    let (original, dubbed) =
        (first_audio_secs(&pkg.path().join("pkg/audio")), first_audio_secs(&pkg.path().join("pkg/dub-es")));
    assert!((original - dubbed).abs() < 0.03, "original audio from {original} s, the dub from {dubbed} s");
}

/// Plays `pkg/manifest.mpd` with a DASH player in chromium (`tests/browser/check-dash.mjs`).
fn play_dash(pkg: &Path, player: &str) -> Value {
    let out = Command::new("node")
        .arg(repo().join("tests/browser/check-dash.mjs"))
        .arg(pkg)
        .args(["manifest.mpd", "--player", player, "--cue-at", "10", "--cue-lang", "en"])
        .output()
        .expect("node is installed (scripts/test-fixtures.sh)");
    assert!(out.status.success(), "check-dash could not run: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the checker prints JSON")
}

/// The time of the first audio packet of a CMAF rendition (read through its playlist).
fn first_audio_secs(rendition: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-protocol_whitelist", "file", "-select_streams", "a:0"])
        .args(["-show_entries", "packet=pts_time", "-read_intervals", "%+#1", "-of", "csv=p=0"])
        .arg(rendition.join("index.m3u8"))
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a packet time")
}

/// Packages a clip with two caption tracks and a second audio track in `segments`
/// format and checks what hls.js plays; returns the folder (`pkg/` inside).
fn plays_every_rung_audio_track_and_caption_track(segments: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    // veryfast: x264 with B-frames, so video timestamps start after the audio's and
    // the caption time map must account for it.
    std::fs::write(
        tmp.path().join("babelcast.toml"),
        format!(
            "[media.ladder]\npreset = \"veryfast\"\nsegments = \"{segments}\"\n\
             [[media.ladder.rungs]]\nheight = 360\nbitrate_kbps = 600\nmax_kbps = 700\n\
             [[media.ladder.rungs]]\nheight = 240\nbitrate_kbps = 300\nmax_kbps = 350\n"
        ),
    )
    .expect("config");
    let src = tmp.path().join("talk.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "14",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        src.to_str().expect("utf-8"),
    ]);
    let dub = tmp.path().join("dub-es.wav");
    ffmpeg(&["-f", "lavfi", "-i", "sine=frequency=660", "-t", "14", dub.to_str().expect("utf-8")]);
    let en = tmp.path().join("en.vtt");
    // A cue spanning the 6 s segment boundary, and one at exactly 10.0 s.
    std::fs::write(
        &en,
        "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello there\n\n\
         00:00:05.000 --> 00:00:07.000\nAcross the boundary\n\n\
         00:00:10.000 --> 00:00:11.500\nTen seconds in\n",
    )
    .expect("vtt");
    let es = tmp.path().join("es.srt");
    std::fs::write(
        &es,
        "1\n00:00:01,000 --> 00:00:03,000\nHola\n\n2\n00:00:10,000 --> 00:00:11,500\nDiez segundos\n",
    )
    .expect("srt");
    let pkg = tmp.path().join("pkg");
    let out = babelcast(tmp.path())
        .args(["package", "--language", "en", "--captions"])
        .arg(format!("en={}", en.display()))
        .arg("--captions")
        .arg(format!("es={}", es.display()))
        .arg("--audio")
        .arg(format!("es={}", dub.display()))
        .arg("-o")
        .arg(&pkg)
        .arg(&src)
        .output()
        .expect("babelcast runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let seen = play(&pkg, &["--cue-at", "10", "--cue-lang", "en", "--cue-tolerance", "0.1"]);
    let report = serde_json::to_string_pretty(&seen).unwrap_or_default();
    assert_eq!(seen["hlsSupported"], true, "{report}");
    assert_eq!(seen["errors"], Value::Array(Vec::new()), "no player errors: {report}");
    assert_eq!(seen["http"]["notFound"], Value::Array(Vec::new()), "every URI resolves: {report}");

    let mut heights: Vec<u64> =
        seen["levels"].as_array().expect("levels").iter().filter_map(|l| l["height"].as_u64()).collect();
    heights.sort_unstable();
    assert_eq!(heights, [240, 360], "{report}");

    assert_eq!(strings(&seen["audioTracks"], "lang"), ["en", "es"], "{report}");
    assert_eq!(strings(&seen["audioTracks"], "name"), ["English", "Español"], "{report}");
    assert_eq!(strings(&seen["subtitleTracks"], "lang"), ["en", "es"], "{report}");
    assert_eq!(strings(&seen["subtitleTracks"], "name"), ["English", "Español"], "{report}");

    assert_eq!(seen["playback"]["advanced"], true, "{report}");
    for switch in seen["audioSwitch"].as_array().expect("audioSwitch") {
        assert_eq!(switch["ok"], true, "audio track {} plays: {report}", switch["lang"]);
    }
    let cues = seen["subtitleCues"].as_array().expect("subtitleCues");
    assert_eq!(cues.len(), 2, "{report}");
    for (track, expected) in cues.iter().zip([3, 2]) {
        assert_eq!(track["ok"], true, "{report}");
        // The cue repeated in two segments is shown once.
        assert_eq!(track["cueCount"], expected, "{} cues of {}: {report}", expected, track["lang"]);
    }
    let timing = &seen["cueTiming"];
    let shown = timing["shownAt"].as_f64().unwrap_or_else(|| panic!("the 10 s cue was shown: {report}"));
    assert!((shown - 10.0).abs() <= 0.1, "the cue at 10.0 s is on screen at {shown} s: {report}");
    assert_eq!(timing["text"], "Ten seconds in", "{report}");
    eprintln!("{segments}: the 10.0 s cue was on screen at {shown} s");
    tmp
}
