//! The dub track through real ffmpeg: every language's track lands at the same
//! loudness (-16 LUFS, peaks below -1.5 dBFS) whether the original is loud or
//! quiet, ducked or replaced, and keeps the speech's length.

use std::path::{Path, PathBuf};
use std::process::Command;

use babelcast_media::{DubMode, Level, dub_track};
use babelcast_process::Program;

mod common;
use common::{ffmpeg, probe};

const SPEECH_WAV: &str =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";

/// A video whose original sound is a tone at `volume` (0–1).
fn source(dir: &Path, volume: f64) -> PathBuf {
    let path = dir.join(format!("source-{volume}.mp4"));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=10:duration=8",
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=330:duration=8,volume={volume}"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        path.to_str().expect("utf-8"),
    ]);
    path
}

/// Integrated loudness (LUFS) and true peak (dBFS) as ffmpeg's ebur128 reads them.
fn loudness(file: &Path) -> (f64, f64) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-nostdin", "-i"])
        .arg(file)
        .args(["-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = &text[text.rfind("Summary:").expect("summary")..];
    let value = |label: &str| -> f64 {
        let line = summary.lines().find(|l| l.trim_start().starts_with(label)).expect(label);
        line.split_whitespace().nth(1).expect("value").parse().expect("number")
    };
    (value("I:"), value("Peak:"))
}

fn duration(file: &Path) -> f64 {
    probe(file).duration_secs.expect("duration")
}

#[test]
fn every_dub_track_lands_at_the_same_loudness_and_keeps_its_length() {
    let dir = tempfile::tempdir().expect("tmp");
    // The dub's speech: 7 s of a human reader, as the voice stage writes it.
    let speech = dir.path().join("speech.wav");
    ffmpeg(&["-i", SPEECH_WAV, "-t", "8", "-ar", "22050", "-ac", "1", speech.to_str().expect("utf-8")]);
    let length = duration(&speech);
    for (volume, mode) in [(0.9, DubMode::Duck), (0.02, DubMode::Duck), (0.5, DubMode::Replace)] {
        let video = source(dir.path(), volume);
        let out = dir.path().join(format!("dub-{volume}.m4a"));
        dub_track(&Program::ffmpeg(), &video, &probe(&video), &speech, mode, Level::Measure, &out)
            .expect("dub track");
        let (lufs, peak) = loudness(&out);
        assert!((lufs + 16.0).abs() <= 1.0, "{volume} {mode:?}: {lufs} LUFS");
        assert!(peak <= -1.0, "{volume} {mode:?}: peak {peak} dBFS");
        assert!((duration(&out) - length).abs() < 0.1, "{volume} {mode:?}: {} s of {length}", duration(&out));
        let audio = probe(&out).audio.into_iter().next().expect("audio");
        assert_eq!((audio.codec.as_str(), audio.sample_rate, audio.channels), ("aac", 48000, 2));
    }
}

#[test]
fn a_kept_gain_is_applied_without_measuring_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let speech = dir.path().join("speech.wav");
    ffmpeg(&["-i", SPEECH_WAV, "-t", "8", "-ar", "22050", "-ac", "1", speech.to_str().expect("utf-8")]);
    let video = source(dir.path(), 0.3);
    let facts = probe(&video);
    let mix = |level: Level, name: &str| {
        let out = dir.path().join(name);
        let gain = dub_track(&Program::ffmpeg(), &video, &facts, &speech, DubMode::Duck, level, &out)
            .expect("dub track");
        (gain, loudness(&out).0)
    };
    let (gain, measured) = mix(Level::Measure, "measured.m4a");
    assert!((measured + 16.0).abs() <= 1.0, "{measured} LUFS");
    // The same gain kept: the same level, and the gain is the one given back.
    let (kept_gain, kept) = mix(Level::Kept(gain), "kept.m4a");
    assert_eq!(kept_gain, gain);
    assert!((kept - measured).abs() < 0.3, "{kept} vs {measured} LUFS");
    // A gain 6 dB lower is applied as given, not measured over.
    let (_, lower) = mix(Level::Kept(gain - 6.0), "lower.m4a");
    assert!((measured - lower - 6.0).abs() < 0.7, "{lower} vs {measured} LUFS");
}
