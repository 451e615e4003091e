//! The poster and the seek previews of a real encode: each preview tile shows the
//! picture of its cue's time, and the track covers the whole video.

use std::path::Path;

use babelcast_core::Millis;
use babelcast_media::ladder::Rung;
use babelcast_media::{LadderConfig, Packager};
use babelcast_process::Program;

mod common;
use common::{ffmpeg, probe};

/// The average RGB of a `w` x `h` region of an image at `x`, `y`.
fn colour(image: &Path, x: u64, y: u64, w: u64, h: u64) -> [u8; 3] {
    let raw = ffmpeg(&[
        "-i",
        image.to_str().expect("utf-8"),
        "-vf",
        &format!("crop={w}:{h}:{x}:{y},scale=1:1:flags=area"),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]);
    [raw[0], raw[1], raw[2]]
}

/// Which of red, green and blue dominates.
fn dominant(rgb: [u8; 3]) -> char {
    let i = (0..3).max_by_key(|&i| rgb[i]).expect("three");
    ['r', 'g', 'b'][i]
}

#[test]
fn each_preview_shows_the_picture_of_its_time_and_the_poster_is_written() {
    let tmp = tempfile::tempdir().expect("tmp");
    // 4 s red, 4 s green, 4 s blue, 1.5 s red: 13.5 s, previews every second.
    let source = tmp.path().join("colours.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=red:size=320x180:rate=25:duration=4",
        "-f",
        "lavfi",
        "-i",
        "color=green:size=320x180:rate=25:duration=4",
        "-f",
        "lavfi",
        "-i",
        "color=blue:size=320x180:rate=25:duration=4",
        "-f",
        "lavfi",
        "-i",
        "color=red:size=320x180:rate=25:duration=1.5",
        "-filter_complex",
        "[0:v][1:v][2:v][3:v]concat=n=4:v=1[v]",
        "-map",
        "[v]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        source.to_str().expect("utf-8"),
    ]);
    let config = LadderConfig {
        rungs: vec![Rung { height: 180, bitrate_kbps: 200, max_kbps: 300 }],
        preset: "ultrafast".into(),
        segment_secs: 2,
        audio_kbps: 64,
        ..LadderConfig::default()
    };
    let packager = Packager::new(Program::ffmpeg(), Program::ffprobe(), config);
    let out = tmp.path().join("hls");
    let package = packager.encode(&source, &probe(&source), &out, None, &mut |_| {}).expect("encodes");

    let thumbs = package.state().thumbnails.clone().expect("previews");
    assert_eq!((thumbs.width, thumbs.height, thumbs.interval_secs), (160, 90, 1.0));
    assert_eq!(thumbs.count, 14, "0, 1, ... 13 s");
    assert_eq!(thumbs.sprites, ["thumbs/sprite-001.jpg"]);
    let track = std::fs::read_to_string(out.join(&thumbs.uri)).expect("the track");
    let cues: Vec<(String, String)> = track
        .split("\n\n")
        .skip(1)
        .map(|c| {
            let (timing, text) = c.trim().split_once('\n').expect("timing and text");
            (timing.to_owned(), text.to_owned())
        })
        .collect();
    assert_eq!(cues.len(), 14);
    let end = Millis::from_secs_f64(package.duration_secs());
    assert_eq!(cues[13].0, format!("00:00:13.000 --> {end}"), "the last cue ends with the video");
    assert!((package.duration_secs() - 13.5).abs() < 0.05, "{}", package.duration_secs());

    // Each tile (inset from its edges, where JPEG blurs the neighbours in) has the
    // colour of the second it stands for; the tile after the last is empty.
    let sprite = out.join(&thumbs.sprites[0]);
    let mut seen = String::new();
    for (k, (_, text)) in cues.iter().enumerate() {
        let xywh = text.split("#xywh=").nth(1).expect("a fragment");
        let v: Vec<u64> = xywh.split(',').map(|n| n.parse().expect("number")).collect();
        assert_eq!((v[0], v[1]), ((k as u64 % 10) * 160, (k as u64 / 10) * 90), "cue {k}");
        seen.push(dominant(colour(&sprite, v[0] + 20, v[1] + 20, v[2] - 40, v[3] - 40)));
    }
    assert_eq!(seen, "rrrrggggbbbbrr", "the colour of each second, in order");

    let poster = out.join(package.state().poster.as_deref().expect("a poster"));
    // A tenth of 13.5 s in: red, at the top rung's size or the source's.
    assert_eq!(dominant(colour(&poster, 100, 50, 100, 50)), 'r');
}
