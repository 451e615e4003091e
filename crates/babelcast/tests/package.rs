//! `babelcast package`, `package-add` and `mp4` on real encodes of generated clips,
//! checked with ffprobe and by reading the playlists as a player would.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{babelcast, ffmpeg, one_line_error};
use m3u8_rs::{MasterPlaylist, MediaPlaylist};
use serde_json::Value;

/// A small, fast ladder for tests that are not about the default rungs.
// MPEG-TS: these tests read TS timestamps from the segments, and check that TS
// packages (no longer the default) keep working, `package-add` included.
const SMALL_LADDER: &str = "[media.ladder]\npreset = \"ultrafast\"\nsegment_secs = 2\nsegments = \"ts\"\n\
    [[media.ladder.rungs]]\nheight = 360\nbitrate_kbps = 500\nmax_kbps = 600\n\
    [[media.ladder.rungs]]\nheight = 240\nbitrate_kbps = 250\nmax_kbps = 300\n";

/// A clip with a moving test picture and a tone.
fn clip(dir: &Path, name: &str, size: &str, secs: u32) -> PathBuf {
    let path = dir.join(name);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={size}:rate=30"),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        &secs.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        path.to_str().expect("utf-8"),
    ]);
    path
}

fn small_config(dir: &Path) {
    std::fs::write(dir.join("babelcast.toml"), SMALL_LADDER).expect("config");
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("babelcast runs");
    assert!(out.status.success(), "babelcast failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn master(dir: &Path) -> MasterPlaylist {
    let bytes = std::fs::read(dir.join("master.m3u8")).expect("master written");
    m3u8_rs::parse_master_playlist_res(&bytes).expect("a valid master playlist")
}

fn media(path: &Path) -> MediaPlaylist {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    m3u8_rs::parse_media_playlist_res(&bytes).expect("a valid media playlist")
}

fn ffprobe_json(args: &[&str], file: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Every URI in the master and its media playlists names a file that exists.
fn assert_all_uris_resolve(pkg: &Path) -> usize {
    let m = master(pkg);
    let mut playlists: Vec<String> = m.variants.iter().map(|v| v.uri.clone()).collect();
    playlists.extend(m.alternatives.iter().filter_map(|a| a.uri.clone()));
    let mut files = 0;
    for uri in playlists {
        let path = pkg.join(&uri);
        let playlist = media(&path);
        assert!(playlist.end_list, "{uri}: a VOD playlist ends with EXT-X-ENDLIST");
        assert_eq!(playlist.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod), "{uri}");
        for segment in &playlist.segments {
            let file = path.parent().expect("parent").join(&segment.uri);
            assert!(file.is_file(), "{uri} names {} which does not exist", segment.uri);
            files += 1;
        }
    }
    files
}

fn segment_durations(pkg: &Path, uri: &str) -> Vec<f32> {
    media(&pkg.join(uri)).segments.iter().map(|s| s.duration).collect()
}

/// The 90 kHz timestamp of the first packet of `stream` in a segment.
fn first_pts(segment: &Path, stream: &str) -> i64 {
    let v = ffprobe_json(
        &["-select_streams", stream, "-show_entries", "packet=pts", "-read_intervals", "%+#1"],
        segment,
    );
    v["packets"][0]["pts"].as_i64().expect("a pts")
}

#[test]
fn the_default_ladder_from_1080p_has_three_aligned_rungs_and_a_full_master() {
    let tmp = tempfile::tempdir().expect("tmp");
    // The default rungs, in MPEG-TS: the checks below read each segment on its own
    // (CMAF packages are checked in tests/browser.rs and the media crate's tests).
    std::fs::write(tmp.path().join("babelcast.toml"), "[media.ladder]\nsegments = \"ts\"\n").expect("config");
    let src = clip(tmp.path(), "talk.mp4", "1920x1080", 9);
    let pkg = tmp.path().join("pkg");
    let out = run_ok(
        babelcast(tmp.path())
            .args(["package", "--preset", "ultrafast", "--language", "en", "-o"])
            .arg(&pkg)
            .arg(&src),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pkg.join("master.m3u8").to_str().expect("utf-8"));

    let m = master(&pkg);
    let mut heights: Vec<u64> = m.variants.iter().map(|v| v.resolution.expect("RESOLUTION").height).collect();
    heights.sort_unstable();
    assert_eq!(heights, [480, 720, 1080]);
    for v in &m.variants {
        let res = v.resolution.expect("RESOLUTION");
        assert!(v.bandwidth > 0 && v.average_bandwidth.expect("AVERAGE-BANDWIDTH") <= v.bandwidth, "{v:?}");
        assert_eq!(v.frame_rate, Some(30.0));
        assert_eq!(v.audio.as_deref(), Some("audio"));
        // CODECS states the level the rung really has.
        let first = pkg.join(&v.uri).with_file_name("seg_00000.ts");
        let stream = &ffprobe_json(&["-show_streams", "-select_streams", "v:0"], &first)["streams"][0];
        // CODECS names the profile and level the rung really has (ultrafast gives
        // Constrained Baseline).
        let profile = match stream["profile"].as_str() {
            Some("High") => "64",
            Some("Main") => "4d",
            Some("Constrained Baseline" | "Baseline") => "42",
            other => panic!("unexpected profile {other:?}"),
        };
        let level = stream["level"].as_u64().expect("level");
        let codecs = v.codecs.as_deref().expect("CODECS");
        assert!(codecs.starts_with(&format!("avc1.{profile}")), "{codecs} for {profile}");
        assert!(codecs.ends_with(&format!("{level:02x},mp4a.40.2")), "{codecs} for level {level}");
        assert_eq!(
            (stream["width"].as_u64(), stream["height"].as_u64()),
            (Some(res.width), Some(res.height))
        );
        // The rate cap holds: the measured peak is within the configured cap plus
        // container overhead and audio.
        let cap = match res.height {
            1080 => 5_000_000,
            720 => 3_000_000,
            _ => 1_200_000,
        };
        assert!(v.bandwidth < cap * 13 / 10 + 200_000, "{}p peaks at {} bit/s", res.height, v.bandwidth);
    }
    let audio: Vec<_> =
        m.alternatives.iter().filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio).collect();
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0].language.as_deref(), Some("en"));
    assert_eq!(audio[0].name, "English");
    assert!(audio[0].default && audio[0].autoselect);

    // The same segment grid in every rung, and every segment opens on a keyframe,
    // so a player can switch rungs at any segment.
    let grids: Vec<Vec<f32>> = m.variants.iter().map(|v| segment_durations(&pkg, &v.uri)).collect();
    assert_eq!(grids[0], [6.0, 3.0]);
    assert!(grids.iter().all(|g| *g == grids[0]), "{grids:?}");
    for v in &m.variants {
        for k in 0..grids[0].len() {
            let seg = pkg.join(&v.uri).with_file_name(format!("seg_{k:05}.ts"));
            let frames = ffprobe_json(
                &[
                    "-select_streams",
                    "v:0",
                    "-show_entries",
                    "frame=key_frame,pict_type",
                    "-read_intervals",
                    "%+#1",
                ],
                &seg,
            );
            assert_eq!(frames["frames"][0]["key_frame"], 1, "{} starts on a keyframe", seg.display());
        }
    }
    // No scene-cut keyframes between segment boundaries.
    let keys = ffprobe_json(
        &["-select_streams", "v:0", "-skip_frame", "nokey", "-show_entries", "frame=pts_time"],
        &pkg.join(&m.variants[0].uri).with_file_name("seg_00000.ts"),
    );
    assert_eq!(keys["frames"].as_array().expect("frames").len(), 1, "one keyframe in a 6 s segment");

    assert!(assert_all_uris_resolve(&pkg) >= 8);
    // ffprobe opens the master as a player would and finds video and audio.
    let streams = ffprobe_json(&["-show_streams"], &pkg.join("master.m3u8"));
    let types: Vec<&str> = streams["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter_map(|s| s["codec_type"].as_str())
        .collect();
    assert!(types.contains(&"video") && types.contains(&"audio"), "{types:?}");
}

#[test]
fn captions_and_dubs_are_added_later_without_touching_the_video() {
    let tmp = tempfile::tempdir().expect("tmp");
    small_config(tmp.path());
    let src = clip(tmp.path(), "v.mp4", "640x360", 7);
    let pkg = tmp.path().join("pkg");
    run_ok(babelcast(tmp.path()).args(["package", "-o"]).arg(&pkg).arg(&src));
    let video_files = || -> BTreeMap<PathBuf, (std::time::SystemTime, u64)> {
        let mut files = BTreeMap::new();
        for rung in ["360p", "240p"] {
            for entry in std::fs::read_dir(pkg.join(rung)).expect("rung folder") {
                let entry = entry.expect("entry");
                let meta = entry.metadata().expect("meta");
                files.insert(entry.path(), (meta.modified().expect("mtime"), meta.len()));
            }
        }
        files
    };
    let before = video_files();
    let before_master = master(&pkg);
    assert!(
        before_master.alternatives.iter().all(|a| a.media_type != m3u8_rs::AlternativeMediaType::Subtitles)
    );

    let es_vtt = tmp.path().join("es.vtt");
    std::fs::write(
        &es_vtt,
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHola\n\n00:00:03.500 --> 00:00:04.500\nAdiós\n",
    )
    .expect("vtt");
    let en_srt = tmp.path().join("en.srt");
    std::fs::write(&en_srt, "1\n00:00:01,000 --> 00:00:02,500\nHello\n").expect("srt");
    let dub = tmp.path().join("dub.wav");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=880:sample_rate=22050",
        "-t",
        "5",
        dub.to_str().expect("utf-8"),
    ]);
    run_ok(
        babelcast(tmp.path())
            .args(["package-add", "--language", "en", "--captions"])
            .arg(format!("es={}", es_vtt.display()))
            .arg("--captions")
            .arg(format!("en={}", en_srt.display()))
            .arg("--audio")
            .arg(format!("es={}", dub.display()))
            .arg(&pkg),
    );
    assert_eq!(video_files(), before, "the video renditions are untouched");

    let m = master(&pkg);
    let subs: Vec<(String, String)> = m
        .alternatives
        .iter()
        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Subtitles)
        .map(|a| (a.language.clone().expect("LANGUAGE"), a.name.clone()))
        .collect();
    assert_eq!(subs, [("en".into(), "English".into()), ("es".into(), "Español".into())]);
    let audio: Vec<(Option<String>, String, bool)> = m
        .alternatives
        .iter()
        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio)
        .map(|a| (a.language.clone(), a.name.clone(), a.default))
        .collect();
    assert_eq!(
        audio,
        [(Some("en".into()), "English".into(), true), (Some("es".into()), "Español".into(), false)]
    );
    assert!(m.variants.iter().all(|v| v.subtitles.as_deref() == Some("subs")));
    assert_all_uris_resolve(&pkg);

    // Captions follow the video's segment grid, each segment mapped onto the video
    // timeline, and a cue lands in every segment it overlaps.
    let grid = segment_durations(&pkg, "360p/index.m3u8");
    assert_eq!(segment_durations(&pkg, "subs-es/index.m3u8"), grid);
    let video_pts = first_pts(&pkg.join("360p/seg_00000.ts"), "v:0");
    for k in 0..grid.len() {
        let text = std::fs::read_to_string(pkg.join(format!("subs-es/seg_{k:05}.vtt"))).expect("vtt segment");
        assert!(
            text.starts_with(&format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{video_pts},LOCAL:00:00:00.000\n")),
            "{text}"
        );
    }
    let seg0 = std::fs::read_to_string(pkg.join("subs-es/seg_00000.vtt")).expect("vtt");
    let seg1 = std::fs::read_to_string(pkg.join("subs-es/seg_00001.vtt")).expect("vtt");
    assert!(seg0.contains("00:00:01.000 --> 00:00:02.500\nHola"), "{seg0}");
    assert!(seg1.contains("Hola") && seg1.contains("Adiós"), "spans 2 s: in both segments: {seg1}");

    // The dub starts on the same timestamp as the original audio, so it is in sync,
    // and lasts as long as the video (padded with silence).
    assert_eq!(
        first_pts(&pkg.join("dub-es/seg_00000.ts"), "a:0"),
        first_pts(&pkg.join("audio/seg_00000.ts"), "a:0")
    );
    let dub_secs: f32 = segment_durations(&pkg, "dub-es/index.m3u8").iter().sum();
    let video_secs: f32 = grid.iter().sum();
    assert!((dub_secs - video_secs).abs() < 0.1, "dub {dub_secs} s, video {video_secs} s");

    // Replacing a track keeps one per language.
    run_ok(
        babelcast(tmp.path())
            .args(["package-add", "--captions"])
            .arg(format!("es={}", en_srt.display()))
            .arg(&pkg),
    );
    let m = master(&pkg);
    assert_eq!(
        m.alternatives.iter().filter(|a| a.language.as_deref() == Some("es")).count(),
        2,
        "es audio + es subs"
    );
}

#[test]
fn a_video_without_audio_is_packaged_without_an_audio_group() {
    let tmp = tempfile::tempdir().expect("tmp");
    small_config(tmp.path());
    let src = tmp.path().join("silent.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=480x270:rate=25",
        "-t",
        "3",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        src.to_str().expect("utf-8"),
    ]);
    let pkg = tmp.path().join("pkg");
    let out = run_ok(babelcast(tmp.path()).args(["package", "-o"]).arg(&pkg).arg(&src));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no audio stream"));
    let m = master(&pkg);
    assert!(m.alternatives.is_empty());
    assert!(
        m.variants.iter().all(|v| v.audio.is_none() && !v.codecs.as_deref().unwrap_or("").contains("mp4a"))
    );
    // 270 is below the 360 rung: one rung at 240p.
    assert_eq!(m.variants.len(), 1);
    assert_eq!(m.variants[0].resolution.map(|r| (r.width, r.height)), Some((426, 240)));
    assert_eq!(m.variants[0].frame_rate, Some(25.0));
    assert_all_uris_resolve(&pkg);
}

#[test]
fn audio_without_video_is_a_clear_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let wav = tmp.path().join("voice.wav");
    ffmpeg(&["-f", "lavfi", "-i", "sine=frequency=300", "-t", "2", wav.to_str().expect("utf-8")]);
    let out = babelcast(tmp.path()).args(["package", "-o", "pkg"]).arg(&wav).output().expect("runs");
    let line = one_line_error(&out);
    assert!(line.contains("has no video stream"), "{line}");
    assert!(!tmp.path().join("pkg").exists());
}

#[test]
fn odd_portrait_rotated_and_variable_rate_sources_give_playable_packages() {
    let tmp = tempfile::tempdir().expect("tmp");
    small_config(tmp.path());
    let cases = [
        // (name, how to make it, expected (width, height) of the 360p rung)
        ("odd.mp4", vec!["-f", "lavfi", "-i", "testsrc2=size=853x480:rate=30"], (640, 360)),
        ("portrait.mp4", vec!["-f", "lavfi", "-i", "testsrc2=size=1080x1920:rate=30"], (360, 640)),
        (
            "vfr.mkv",
            vec![
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=30,setpts='N/30/TB+0.02*sin(N)/TB'",
                "-fps_mode",
                "vfr",
            ],
            (640, 360),
        ),
    ];
    for (name, make, expected) in cases {
        let src = tmp.path().join(name);
        let mut args = make.clone();
        args.extend(["-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]);
        args.push(src.to_str().expect("utf-8"));
        ffmpeg(&args);
        let pkg = tmp.path().join(format!("pkg-{name}"));
        run_ok(babelcast(tmp.path()).args(["package", "-o"]).arg(&pkg).arg(&src));
        let m = master(&pkg);
        let top = m.variants.iter().find(|v| v.uri.starts_with("360p")).expect("a 360p rung");
        assert_eq!(top.resolution.map(|r| (r.width, r.height)), Some(expected), "{name}");
        let stream = &ffprobe_json(
            &["-show_streams", "-select_streams", "v:0"],
            &pkg.join("360p/seg_00000.ts"),
        )["streams"][0];
        assert_eq!(
            (stream["width"].as_u64(), stream["height"].as_u64()),
            (Some(expected.0), Some(expected.1)),
            "{name}"
        );
        assert_all_uris_resolve(&pkg);
    }

    // A phone video stored landscape with a 90° display matrix plays upright.
    let plain = tmp.path().join("landscape.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=30",
        "-t",
        "3",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        plain.to_str().expect("utf-8"),
    ]);
    let rotated = tmp.path().join("rotated.mp4");
    // (ffmpeg 5.1 writes the display matrix from `rotate` only when copying.)
    ffmpeg(&[
        "-i",
        plain.to_str().expect("utf-8"),
        "-c",
        "copy",
        "-metadata:s:v",
        "rotate=90",
        rotated.to_str().expect("utf-8"),
    ]);
    let pkg = tmp.path().join("pkg-rotated");
    run_ok(babelcast(tmp.path()).args(["package", "-o"]).arg(&pkg).arg(&rotated));
    let stream = &ffprobe_json(&["-show_streams", "-select_streams", "v:0"], &pkg.join("360p/seg_00000.ts"))
        ["streams"][0];
    assert_eq!((stream["width"].as_u64(), stream["height"].as_u64()), (Some(360), Some(640)));
}

#[test]
fn a_truncated_upload_gives_a_shorter_package_or_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    small_config(tmp.path());
    // Matroska cut in half: the first half still plays.
    let mkv = tmp.path().join("whole.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine",
        "-t",
        "6",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        mkv.to_str().expect("utf-8"),
    ]);
    let bytes = std::fs::read(&mkv).expect("read");
    let cut = tmp.path().join("cut.mkv");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let pkg = tmp.path().join("pkg");
    run_ok(babelcast(tmp.path()).args(["package", "-o"]).arg(&pkg).arg(&cut));
    let secs: f32 = segment_durations(&pkg, "360p/index.m3u8").iter().sum();
    assert!(secs > 1.0 && secs < 5.5, "about half of 6 s: {secs}");
    assert_all_uris_resolve(&pkg);

    // An MP4 cut before its index cannot be read at all.
    let mp4 = clip(tmp.path(), "whole.mp4", "320x240", 3);
    let bytes = std::fs::read(&mp4).expect("read");
    let cut = tmp.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let out = babelcast(tmp.path()).args(["package", "-o", "pkg2"]).arg(&cut).output().expect("runs");
    let line = one_line_error(&out);
    assert!(line.contains("moov atom not found"), "{line}");
    assert!(!tmp.path().join("pkg2").exists());
}

#[test]
fn a_playlist_disguised_as_mp4_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let evil = tmp.path().join("evil.mp4");
    std::fs::write(&evil, "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXTINF:1,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n").expect("write");
    let out = babelcast(tmp.path()).args(["package", "-o", "pkg"]).arg(&evil).output().expect("runs");
    let line = one_line_error(&out);
    assert!(line.contains("not an accepted media container"), "{line}");
    assert!(!tmp.path().join("pkg").exists());
}

#[test]
fn bad_ladder_settings_are_refused_before_encoding() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = clip(tmp.path(), "v.mp4", "320x240", 1);
    let out = babelcast(tmp.path())
        .args(["package", "--preset", "turbo", "-o", "pkg"])
        .arg(&src)
        .output()
        .expect("runs");
    assert!(one_line_error(&out).contains("unknown x264 preset \"turbo\""));
    let out = babelcast(tmp.path())
        .args(["package", "--captions", "xx=a.vtt", "-o", "pkg"])
        .arg(&src)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "clap rejects the language");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown language"));
    let out = babelcast(tmp.path())
        .args(["package", "--captions", "es=missing.vtt", "-o", "pkg"])
        .arg(&src)
        .output()
        .expect("runs");
    assert!(one_line_error(&out).contains("missing.vtt"));
    assert!(!tmp.path().join("pkg").exists());
    let out = babelcast(tmp.path())
        .args(["package-add", "--captions", "es=x.vtt", "nowhere"])
        .output()
        .expect("runs");
    assert!(one_line_error(&out).contains("x.vtt"));
    std::fs::write(tmp.path().join("x.vtt"), "WEBVTT\n").expect("vtt");
    let out = babelcast(tmp.path())
        .args(["package-add", "--captions", "es=x.vtt", "nowhere"])
        .output()
        .expect("runs");
    assert!(one_line_error(&out).contains("is not a babelcast HLS package"));
}

#[test]
fn an_mp4_per_language_has_tagged_tracks_and_copies_the_video() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = clip(tmp.path(), "v.mp4", "640x360", 4);
    let dub = tmp.path().join("dub.wav");
    ffmpeg(&["-f", "lavfi", "-i", "sine=frequency=880", "-t", "4", dub.to_str().expect("utf-8")]);
    let es = tmp.path().join("es.vtt");
    std::fs::write(&es, "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHola a todos\n").expect("vtt");
    let en = tmp.path().join("en.srt");
    std::fs::write(&en, "1\n00:00:01,000 --> 00:00:03,000\nHello everyone\n").expect("srt");
    let out = tmp.path().join("mp4/es.mp4");
    run_ok(
        babelcast(tmp.path())
            .args(["mp4", "--language", "en", "--audio"])
            .arg(format!("es={}", dub.display()))
            .arg("--captions")
            .arg(format!("es={}", es.display()))
            .arg("--captions")
            .arg(format!("en={}", en.display()))
            .arg("-o")
            .arg(&out)
            .arg(&src),
    );
    let v = ffprobe_json(&["-show_streams"], &out);
    let streams = v["streams"].as_array().expect("streams");
    let summary: Vec<(String, String, String, i64)> = streams
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_owned(),
                s["codec_name"].as_str().unwrap_or("").to_owned(),
                s["tags"]["language"].as_str().unwrap_or("").to_owned(),
                s["disposition"]["default"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("video".into(), "h264".into(), "und".into(), 1),
            ("audio".into(), "aac".into(), "spa".into(), 1),
            ("audio".into(), "aac".into(), "eng".into(), 0),
            // MP4 enables the first track of each kind; here the dub's language.
            ("subtitle".into(), "mov_text".into(), "spa".into(), 1),
            ("subtitle".into(), "mov_text".into(), "eng".into(), 0),
        ]
    );
    // Stream copy: the same H.264 packets as the source.
    let packets = |file: &Path| {
        ffprobe_json(&["-select_streams", "v:0", "-show_entries", "packet=size"], file)["packets"].clone()
    };
    assert_eq!(packets(&out), packets(&src));
    // The subtitles hold the cue text.
    let text = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&out)
        .args(["-map", "0:s:0", "-f", "srt", "-"])
        .output()
        .expect("ffmpeg");
    assert!(String::from_utf8_lossy(&text.stdout).contains("Hola a todos"));
    let entries: Vec<_> = std::fs::read_dir(out.parent().expect("dir")).expect("list").collect();
    assert_eq!(entries.len(), 1, "no temporary file left beside the MP4");
}

/// Mean absolute difference of the luma of the bottom quarter of two videos' frames
/// at `at` seconds.
fn bottom_difference(a: &Path, b: &Path, at: f64) -> f64 {
    let gray = |file: &Path| {
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-ss", &format!("{at}"), "-i"])
            .arg(file)
            .args(["-frames:v", "1", "-vf", "crop=iw:ih/4:0:ih*3/4,format=gray", "-f", "rawvideo", "-"])
            .output()
            .expect("ffmpeg");
        out.stdout
    };
    let (x, y) = (gray(a), gray(b));
    assert_eq!(x.len(), y.len());
    x.iter().zip(&y).map(|(p, q)| f64::from(p.abs_diff(*q))).sum::<f64>() / x.len() as f64
}

#[test]
fn burned_in_captions_are_in_the_picture_only_while_the_cue_is_on() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("flat.mp4");
    // A flat grey picture: any text drawn on it shows.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine",
        "-t",
        "4",
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
    let es = tmp.path().join("es.srt");
    std::fs::write(&es, "1\n00:00:01,000 --> 00:00:02,000\nSUBTÍTULOS GRANDES\n").expect("srt");
    let out = tmp.path().join("burned.mp4");
    run_ok(
        babelcast(tmp.path())
            .args(["mp4", "--captions"])
            .arg(format!("es={}", es.display()))
            .args(["--burn-in", "es", "-o"])
            .arg(&out)
            .arg(&src),
    );
    let during = bottom_difference(&src, &out, 1.5);
    let after = bottom_difference(&src, &out, 3.0);
    assert!(during > 3.0, "the caption is drawn at 1.5 s (difference {during})");
    assert!(after < 1.0, "nothing is drawn at 3 s (difference {after})");

    let out2 = babelcast(tmp.path())
        .args(["mp4", "--burn-in", "de", "-o", "x.mp4"])
        .arg(&src)
        .output()
        .expect("runs");
    assert!(one_line_error(&out2).contains("--captions de=FILE"));
}
