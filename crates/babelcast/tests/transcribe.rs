//! `babelcast transcribe` on generated videos with real speech, and on bad input.

mod common;

use std::path::{Path, PathBuf};

use common::{babelcast, ffmpeg, one_line_error, repo_models};

const SPEECH: &str =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";

/// A small video whose sound is a human reader, with 3 s of silence before.
fn speech_video(dir: &Path) -> PathBuf {
    let path = dir.join("talk.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-i",
        SPEECH,
        "-filter_complex",
        "[1:a]adelay=3000,apad=pad_dur=1[a]",
        "-map",
        "0:v",
        "-map",
        "[a]",
        "-shortest",
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

fn transcribe(dir: &Path, file: &Path, extra: &[&str]) -> std::process::Output {
    babelcast(dir)
        .arg("--models-dir")
        .arg(repo_models())
        .arg("transcribe")
        .arg(file)
        .args(["-o", "out", "--model", "whisper-tiny.en"])
        .args(extra)
        .output()
        .expect("runs")
}

#[test]
fn a_video_with_speech_becomes_captions_on_the_video_timeline() {
    let tmp = tempfile::tempdir().expect("tmp");
    let video = speech_video(tmp.path());
    let out = transcribe(tmp.path(), &video, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("language en") && stderr.contains("real time"), "summary: {stderr}");

    let vtt = std::fs::read_to_string(tmp.path().join("out/talk.vtt")).expect("vtt written");
    let cues = babelcast_core::subtitle::vtt::read(&vtt).expect("valid WebVTT");
    let text: String =
        cues.iter().map(|c| c.text.replace('\n', " ") + " ").collect::<String>().to_lowercase();
    assert!(text.contains("dashwood") && text.contains("leisure"), "{text}");
    // The VAD dropped the leading silence, and times were mapped back: the first
    // cue starts near 3 s, where the speech is in the video.
    let first = cues[0].start.as_secs_f64();
    assert!((2.5..4.0).contains(&first), "first cue at {first}");
    let profile = babelcast_core::CaptionProfile::default();
    let broken: Vec<_> = babelcast_core::captions::check(&cues, &profile)
        .into_iter()
        .filter(|v| v.severity == babelcast_core::Severity::Error)
        .collect();
    assert!(broken.is_empty(), "caption rules broken: {broken:?}");

    let srt = std::fs::read_to_string(tmp.path().join("out/talk.srt")).expect("srt written");
    assert_eq!(babelcast_core::subtitle::srt::read(&srt).expect("valid SRT"), cues);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out/talk.json")).expect("json"))
            .expect("JSON");
    assert_eq!(json["language"], "en");
    assert_eq!(json["model"], "whisper-tiny.en");
    assert!(json["words"].as_array().is_some_and(|w| w.len() > 10));
}

#[test]
fn a_video_without_audio_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let video = tmp.path().join("mute.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=10",
        "-t",
        "1",
        "-c:v",
        "libx264",
        video.to_str().expect("utf-8"),
    ]);
    let line = one_line_error(&transcribe(tmp.path(), &video, &[]));
    assert!(line.contains("no audio stream"), "{line}");
}

#[test]
fn silence_gives_empty_captions_and_a_warning() {
    let tmp = tempfile::tempdir().expect("tmp");
    let wav = tmp.path().join("quiet.wav");
    ffmpeg(&["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "5", wav.to_str().expect("utf-8")]);
    let out = transcribe(tmp.path(), &wav, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: no speech was found"), "{stderr}");
    let vtt = std::fs::read_to_string(tmp.path().join("out/quiet.vtt")).expect("vtt");
    assert_eq!(babelcast_core::subtitle::vtt::read(&vtt).expect("valid"), vec![]);
}

#[test]
fn a_one_second_file_and_no_vad_work() {
    let tmp = tempfile::tempdir().expect("tmp");
    let wav = tmp.path().join("short.wav");
    ffmpeg(&["-i", SPEECH, "-t", "1", wav.to_str().expect("utf-8")]);
    let out = transcribe(tmp.path(), &wav, &["--no-vad", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(tmp.path().join("out/short.json").exists());
    assert!(!tmp.path().join("out/short.vtt").exists(), "only the asked formats");
}

#[test]
fn a_missing_model_names_the_file_and_the_fix() {
    let tmp = tempfile::tempdir().expect("tmp");
    let wav = tmp.path().join("short.wav");
    ffmpeg(&["-i", SPEECH, "-t", "1", wav.to_str().expect("utf-8")]);
    let out = babelcast(tmp.path())
        .args(["--models-dir", "nowhere", "transcribe"])
        .arg(&wav)
        .output()
        .expect("runs");
    let line = one_line_error(&out);
    assert!(
        line.contains("nowhere/whisper-base/model.bin") && line.contains("babelcast models fetch"),
        "{line}"
    );
}

/// Spanish speech from espeak-ng, as the unexpected language.
fn spanish_speech(dir: &Path) -> PathBuf {
    let path = dir.join("hola.wav");
    let out = std::process::Command::new("espeak-ng")
        .args(["-v", "es", "-s", "140", "-w"])
        .arg(&path)
        .arg("Buenos días a todos. Hoy vamos a hablar de la historia de la ciudad y de sus calles más antiguas.")
        .output()
        .expect("espeak-ng is installed (scripts/setup.sh)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

#[test]
fn another_language_is_detected_by_a_multilingual_model() {
    let tmp = tempfile::tempdir().expect("tmp");
    let wav = spanish_speech(tmp.path());
    let out = babelcast(tmp.path())
        .arg("--models-dir")
        .arg(repo_models())
        .arg("transcribe")
        .arg(&wav)
        .args(["-o", "out", "--model", "whisper-base", "--format", "json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out/hola.json")).expect("json"))
            .expect("JSON");
    assert_eq!(json["language"], "es", "{json}");
    let text: String =
        json["words"].as_array().expect("words").iter().filter_map(|w| w["text"].as_str()).collect();
    assert!(text.to_lowercase().contains("historia"), "{text}");
}

#[test]
fn another_language_through_an_english_only_model_still_gives_a_clean_result() {
    let tmp = tempfile::tempdir().expect("tmp");
    let wav = spanish_speech(tmp.path());
    let out = transcribe(tmp.path(), &wav, &["--format", "vtt"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vtt = std::fs::read_to_string(tmp.path().join("out/hola.vtt")).expect("vtt");
    babelcast_core::subtitle::vtt::read(&vtt).expect("valid WebVTT, whatever the words");
}
