//! `babelcast probe` on real files and on the bad input users send.

mod common;

use std::path::{Path, PathBuf};

use common::{babelcast, ffmpeg, one_line_error};
use serde_json::Value;

/// A 2-second 320x240 H.264 + AAC MP4 (moov atom at the end, as ffmpeg writes it).
fn make_av(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-metadata:s:a:0",
        "language=spa",
        path.to_str().expect("utf-8 temp path"),
    ]);
    path
}

fn probe_ok(dir: &Path, file: &Path) -> Value {
    let out = babelcast(dir).arg("probe").arg(file).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "probe {}: {stderr}", file.display());
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn probe_err(dir: &Path, file: &Path) -> String {
    let out = babelcast(dir).arg("probe").arg(file).output().expect("runs");
    one_line_error(&out)
}

#[test]
fn a_video_reports_its_streams() {
    let tmp = tempfile::tempdir().expect("tmp");
    let facts = probe_ok(tmp.path(), &make_av(tmp.path(), "clip.mp4"));
    assert_eq!(facts["container"], "mov,mp4,m4a,3gp,3g2,mj2");
    let duration = facts["duration_secs"].as_f64().expect("duration");
    assert!((duration - 2.0).abs() < 0.1, "{duration}");
    let video = &facts["video"][0];
    assert_eq!(
        (video["codec"].as_str(), video["width"].as_u64(), video["height"].as_u64()),
        (Some("h264"), Some(320), Some(240))
    );
    assert_eq!(video["fps"].as_f64(), Some(25.0));
    let audio = &facts["audio"][0];
    assert_eq!((audio["codec"].as_str(), audio["sample_rate"].as_u64()), (Some("aac"), Some(48000)));
    assert_eq!(audio["language"], "spa");
}

#[test]
fn an_audio_only_file_has_audio_and_no_video() {
    let tmp = tempfile::tempdir().expect("tmp");
    let wav = tmp.path().join("speech.wav");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:sample_rate=16000",
        "-t",
        "1",
        wav.to_str().expect("utf-8"),
    ]);
    let facts = probe_ok(tmp.path(), &wav);
    assert_eq!(facts["video"].as_array().map(Vec::len), Some(0));
    assert_eq!(facts["audio"][0]["sample_rate"].as_u64(), Some(16000));
    assert_eq!(facts["audio"][0]["channels"].as_u64(), Some(1));
}

#[test]
fn awkward_file_names_are_just_names() {
    let tmp = tempfile::tempdir().expect("tmp");
    let source = make_av(tmp.path(), "plain.mp4");
    for name in
        ["my clip (final).mp4", "it's \"quoted\" $HOME;.mp4", "été – 日本語 ü.mp4", "-rf.mp4", "a:b|c.mp4"]
    {
        let renamed = tmp.path().join(name);
        std::fs::copy(&source, &renamed).expect("copy");
        let facts = probe_ok(tmp.path(), &renamed);
        assert_eq!(facts["video"][0]["width"].as_u64(), Some(320), "{name}");
        // A relative path works too; `./` keeps `-rf.mp4` from reading as a flag,
        // as with any command-line tool.
        let facts = probe_ok(tmp.path(), &Path::new(".").join(name));
        assert_eq!(facts["audio"].as_array().map(Vec::len), Some(1), "{name}");
    }
}

#[test]
fn a_missing_file_says_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    let line = probe_err(tmp.path(), &tmp.path().join("nope.mp4"));
    assert!(line.contains("no such file") && line.contains("nope.mp4"), "{line}");
}

#[test]
fn a_zero_byte_file_says_it_is_empty() {
    let tmp = tempfile::tempdir().expect("tmp");
    let empty = tmp.path().join("empty.mp4");
    std::fs::write(&empty, b"").expect("write");
    let line = probe_err(tmp.path(), &empty);
    assert!(line.contains("empty (0 bytes)"), "{line}");
}

#[test]
fn a_text_file_named_mp4_is_not_media() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = tmp.path().join("notes.mp4");
    std::fs::write(&text, "these are my meeting notes, not a video\n".repeat(50)).expect("write");
    let line = probe_err(tmp.path(), &text);
    assert!(line.contains("not a media file") && line.contains("Invalid data"), "{line}");
}

#[test]
fn a_truncated_mp4_names_what_is_missing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let full = std::fs::read(make_av(tmp.path(), "full.mp4")).expect("read");
    let cut = tmp.path().join("cut.mp4");
    std::fs::write(&cut, &full[..full.len() / 2]).expect("write");
    let line = probe_err(tmp.path(), &cut);
    assert!(line.contains("not a media file") && line.contains("moov atom not found"), "{line}");
}

#[test]
fn a_playlist_disguised_as_mp4_is_refused_not_followed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let secret = tmp.path().join("secret.ts");
    std::fs::copy(make_av(tmp.path(), "x.mp4"), &secret).expect("copy");
    let evil = tmp.path().join("evil.mp4");
    let playlist = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{}\n#EXTINF:10,\nfile:/etc/passwd\n#EXT-X-ENDLIST\n",
        secret.display()
    );
    std::fs::write(&evil, playlist).expect("write");
    let line = probe_err(tmp.path(), &evil);
    assert!(line.contains("(hls) is not an accepted media container"), "{line}");

    let concat = tmp.path().join("concat.mkv");
    std::fs::write(&concat, format!("ffconcat version 1.0\nfile '{}'\n", secret.display())).expect("write");
    let line = probe_err(tmp.path(), &concat);
    assert!(line.contains("not a media file"), "{line}");
}

#[test]
fn a_directory_is_not_a_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let line = probe_err(tmp.path(), tmp.path());
    assert!(line.contains("not a regular file"), "{line}");
}

#[test]
fn a_missing_ffprobe_names_the_package_to_install() {
    let tmp = tempfile::tempdir().expect("tmp");
    let clip = make_av(tmp.path(), "clip.mp4");
    let out = babelcast(tmp.path())
        .env("BABELCAST_MEDIA__FFPROBE", "/nonexistent/ffprobe")
        .arg("probe")
        .arg(&clip)
        .output()
        .expect("runs");
    let line = one_line_error(&out);
    assert!(line.contains("ffprobe is not installed") && line.contains("`ffmpeg`"), "{line}");
}
