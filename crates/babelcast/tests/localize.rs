//! End to end: English speech over a generated picture → captions en, es, it and
//! dubs es, it in one HLS package that hls.js plays in chromium, per-language MP4s,
//! dub tracks with speech where their cues are, and translated cues that keep the
//! caption rules.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use babelcast_core::{CaptionProfile, Millis, Severity, captions, subtitle};
use common::{babelcast, ffmpeg, repo_models};
use serde_json::Value;

const SPEECH: &str = "/usr/share/pocketsphinx/test/data/librivox";

fn speech_clip(dir: &Path) -> PathBuf {
    let clip = dir.join("lecture.mp4");
    let a = format!("{SPEECH}/sense_and_sensibility_01_austen_64kb-0870.wav");
    let b = format!("{SPEECH}/sense_and_sensibility_01_austen_64kb-0880.wav");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=426x240:rate=25",
        "-i",
        &a,
        "-i",
        &b,
        "-filter_complex",
        "[1:a][2:a]concat=n=2:v=0:a=1[speech]",
        "-map",
        "0:v",
        "-map",
        "[speech]",
        "-shortest",
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
    clip
}

/// A file's first audio stream as 16 kHz mono samples.
fn samples(file: &Path) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "f32le", "-"])
        .output()
        .expect("ffmpeg");
    out.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn rms(s: &[f32], from: Millis, to: Millis) -> f64 {
    let (a, b) = ((from.0 * 16) as usize, ((to.0 * 16) as usize).min(s.len()));
    if b <= a {
        return 0.0;
    }
    (s[a..b].iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / (b - a) as f64).sqrt()
}

#[test]
fn english_speech_becomes_one_package_with_spanish_and_italian_captions_and_dubs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let models = std::path::absolute(repo_models()).expect("models");
    std::fs::write(
        dir.join("babelcast.toml"),
        format!(
            "models_dir = {models:?}\n[speech]\nmodel = \"whisper-tiny.en\"\nbeam_size = 1\n\
             [media.ladder]\npreset = \"ultrafast\"\nsegment_secs = 2\n\
             [[media.ladder.rungs]]\nheight = 240\nbitrate_kbps = 300\nmax_kbps = 400\n"
        ),
    )
    .expect("config");
    let clip = speech_clip(dir);
    let out = babelcast(dir)
        .args(["run", "--language", "en", "--to", "es,it", "--replace-audio", "-o", "data"])
        .arg(&clip)
        .output()
        .expect("babelcast run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let master = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let hls = master.parent().expect("hls").to_owned();
    let video = hls.parent().expect("video").to_owned();

    // Every translated cue keeps the caption rules (reading-speed hints aside).
    let profile = CaptionProfile::default();
    for lang in ["en", "es", "it"] {
        let text = std::fs::read_to_string(video.join(format!("captions/{lang}.vtt"))).expect("captions");
        let cues = subtitle::vtt::read(&text).expect("valid WebVTT");
        assert!(cues.len() >= 3, "{lang}: {text}");
        let errors: Vec<_> =
            captions::check(&cues, &profile).into_iter().filter(|v| v.severity == Severity::Error).collect();
        assert!(errors.is_empty(), "{lang}: {errors:?}\n{text}");
    }
    let es = std::fs::read_to_string(video.join("captions/es.vtt")).expect("es");
    assert!(es.contains("Dashwood") && es.contains("para") && !es.contains("leisure"), "Spanish: {es}");

    // Each dub speaks where its cues are and is near silent elsewhere.
    for lang in ["es", "it"] {
        let cues = subtitle::vtt::read(
            &std::fs::read_to_string(video.join(format!("captions/{lang}.vtt"))).expect("vtt"),
        )
        .expect("cues");
        let track = samples(&video.join(format!("dub/{lang}.m4a")));
        let spoken = cues.iter().filter(|c| rms(&track, c.start, c.end) > 0.02).count();
        assert!(spoken * 10 >= cues.len() * 8, "{lang}: speech in {spoken} of {} cue windows", cues.len());
        let mut quiet = Vec::new();
        for pair in cues.windows(2) {
            // The silence after a cue's speech and before the next cue (speech may
            // borrow a little of it).
            let (from, to) = (Millis(pair[0].end.0 + 400), pair[1].start);
            if to.0 > from.0 + 200 {
                quiet.push(rms(&track, from, to));
            }
        }
        let total = track.len() as u64 / 16;
        let tail = rms(&track, Millis(cues.last().expect("cues").end.0 + 400), Millis(total));
        quiet.push(tail);
        assert!(quiet.iter().all(|r| *r < 0.01), "{lang}: sound between cues: {quiet:?}");
        let qa: Value =
            serde_json::from_slice(&std::fs::read(video.join(format!("dub/{lang}.qa.json"))).expect("qa"))
                .expect("json");
        assert!(qa["summary"]["max_speed"].as_f64().expect("max speed") <= 1.35, "{qa}");
        assert_eq!(qa["summary"]["cues"].as_u64(), Some(cues.len() as u64));
    }

    // The per-language MP4: dub first, original second, both caption tracks.
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type:stream_tags=language", "-of", "csv=p=0"])
        .arg(video.join("mp4/it.mp4"))
        .output()
        .expect("ffprobe");
    let streams = String::from_utf8_lossy(&probe.stdout).replace('\n', " ");
    assert_eq!(streams.trim(), "video,und audio,ita audio,eng subtitle,ita subtitle,eng", "{streams}");

    // One master, played by hls.js in chromium: 3 caption and 3 audio tracks, each
    // audio track plays, captions load.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/check-hls.mjs");
    let out = Command::new("node").arg(script).arg(&hls).arg("master.m3u8").output().expect("node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).expect("json");
    let report = serde_json::to_string_pretty(&seen).unwrap_or_default();
    let langs = |key: &str| -> Vec<String> {
        seen[key]
            .as_array()
            .expect("tracks")
            .iter()
            .map(|t| t["lang"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(langs("subtitleTracks"), ["en", "es", "it"], "{report}");
    assert_eq!(langs("audioTracks"), ["en", "es", "it"], "{report}");
    // hls.js may note a non-fatal buffer hiccup while tracks switch; nothing fatal.
    let fatal = seen["errors"].as_array().expect("errors").iter().filter(|e| e["fatal"] != false).count();
    assert_eq!(fatal, 0, "{report}");
    for switch in seen["audioSwitch"].as_array().expect("switches") {
        assert_eq!(switch["ok"], true, "{report}");
    }
    for track in seen["subtitleCues"].as_array().expect("cues") {
        assert_eq!(track["ok"], true, "{report}");
        assert!(track["cueCount"].as_u64().unwrap_or(0) >= 3, "{report}");
    }
}

/// A models folder like the fetched one, plus a Spanish Piper voice that loads
/// but cannot speak: its config names an espeak-ng voice that does not exist.
fn models_with_a_broken_spanish_voice(dir: &Path) -> PathBuf {
    let models = dir.join("models");
    std::fs::create_dir_all(&models).expect("mkdir");
    let fetched = std::path::absolute(repo_models()).expect("models");
    for entry in std::fs::read_dir(&fetched).expect("models folder").flatten() {
        std::os::unix::fs::symlink(entry.path(), models.join(entry.file_name())).expect("link");
    }
    let voice = models.join("piper-es_ES-broken");
    std::fs::create_dir_all(&voice).expect("mkdir");
    let joe = fetched.join("piper-en_US-joe-medium");
    std::os::unix::fs::symlink(joe.join("en_US-joe-medium.onnx"), voice.join("es_ES-broken.onnx"))
        .expect("link");
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(joe.join("en_US-joe-medium.onnx.json")).expect("voice config"))
            .expect("json");
    config["espeak"]["voice"] = "qaa".into();
    std::fs::write(voice.join("es_ES-broken.onnx.json"), config.to_string()).expect("write");
    models
}

#[test]
fn a_dub_that_fails_leaves_its_language_out_with_a_warning_and_exit_code_3() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let models = models_with_a_broken_spanish_voice(dir);
    std::fs::write(
        dir.join("babelcast.toml"),
        format!(
            "models_dir = {models:?}\n[server]\nmax_attempts = 1\n\
             [speech]\nmodel = \"whisper-tiny.en\"\nbeam_size = 1\n\
             [media.ladder]\npreset = \"ultrafast\"\nsegment_secs = 2\n\
             [[media.ladder.rungs]]\nheight = 240\nbitrate_kbps = 300\nmax_kbps = 400\n"
        ),
    )
    .expect("config");
    let clip = speech_clip(dir);
    let out = babelcast(dir)
        .args(["run", "--language", "en", "--to", "es,it", "-o", "data"])
        .arg(&clip)
        .output()
        .expect("babelcast run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("completed_with_warnings"), "{stderr}");
    let warning =
        stderr.lines().find(|l| l.starts_with("warning: Español (es)")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        warning.contains("dub-es failed") && warning.contains("voice does not exist"),
        "the error is named: {warning}"
    );
    assert!(stderr.contains("missing: Español (es)"), "{stderr}");
    assert!(!stderr.contains("Italiano (it)"), "Italian is complete: {stderr}");

    let master = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let video = master.parent().and_then(Path::parent).expect("video").to_owned();
    assert!(video.join("mp4/it.mp4").is_file() && !video.join("mp4/es.mp4").exists());
    let playlist = std::fs::read_to_string(&master).expect("master");
    assert!(
        playlist.contains("LANGUAGE=\"it\"") && playlist.contains("LANGUAGE=\"es\""),
        "es keeps its captions"
    );
}
