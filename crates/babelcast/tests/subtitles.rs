//! Subtitles brought by the user, from the command line: `babelcast translate`
//! (subtitles in, translated subtitles out) and `babelcast run --transcript`
//! (the file is the transcript; no speech recognition, no Whisper model needed).

mod common;

use babelcast_core::{Millis, subtitle};
use common::{babelcast, ffmpeg, one_line_error};

/// An SRT as an older Windows tool writes it: Windows-1252, CRLF.
fn windows_1252_srt() -> Vec<u8> {
    let text = "1\r\n00:00:00,400 --> 00:00:02,400\r\nThe caf\u{e9} was open.\r\n\r\n\
                2\r\n00:00:02,700 --> 00:00:04,600\r\nMr. M\u{fc}ller said hello to the children.\r\n";
    text.chars().map(|c| u8::try_from(u32::from(c)).expect("latin-1")).collect()
}

#[test]
fn translate_reads_a_legacy_srt_and_writes_each_language_at_the_same_times() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    std::fs::write(dir.join("talk.en.srt"), windows_1252_srt()).expect("srt");
    std::fs::write(dir.join("glossary.json"), r#"{"keep": ["Müller"]}"#).expect("glossary");
    let out = babelcast(dir)
        .args(["translate", "talk.en.srt", "--from", "en", "--to", "es", "--glossary", "glossary.json"])
        .args(["--format", "vtt", "-o", "out"])
        .output()
        .expect("babelcast translate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("windows-1252"), "says how it read the file: {stderr}");
    let written = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(written.ends_with("out/talk.es.vtt"), "{written}");
    let cues =
        subtitle::vtt::read(&std::fs::read_to_string(dir.join(&written)).expect("written")).expect("vtt");
    assert_eq!(
        cues.iter().map(|c| (c.start, c.end)).collect::<Vec<_>>(),
        [(Millis(400), Millis(2_400)), (Millis(2_700), Millis(4_600))],
        "each cue at its time"
    );
    assert!(cues[1].text.contains("M\u{fc}ller"), "{cues:?}");
    assert!(!cues[1].text.contains("children"), "translated: {cues:?}");

    // A language no engine reaches fails before anything is written; so does a
    // file that does not parse, naming the line.
    let out = babelcast(dir)
        .args(["translate", "talk.en.srt", "--from", "en", "--to", "es,ja", "-o", "none"])
        .output()
        .expect("run");
    let error = one_line_error(&out);
    assert!(error.contains("no installed engine translates en to ja"), "{error}");
    assert!(!dir.join("none").exists(), "nothing written");
    std::fs::write(dir.join("bad.srt"), "1\n00:00:01,000 --> soon\nhi\n").expect("bad");
    let out =
        babelcast(dir).args(["translate", "bad.srt", "--from", "en", "--to", "es"]).output().expect("run");
    let error = one_line_error(&out);
    assert!(error.contains("bad.srt") && error.contains("line 2"), "{error}");
}

#[test]
fn run_with_a_transcript_captions_and_dubs_from_it_without_a_speech_model() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    // An empty models folder: transcription could not run.
    std::fs::create_dir_all(dir.join("no-models")).expect("models");
    std::fs::write(
        dir.join("babelcast.toml"),
        "models_dir = \"no-models\"\n[media.ladder]\npreset = \"ultrafast\"\nsegment_secs = 2\n\
         [[media.ladder.rungs]]\nheight = 240\nbitrate_kbps = 300\nmax_kbps = 400\n",
    )
    .expect("config");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=5",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:duration=5",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        dir.join("clip.mp4").to_str().expect("utf-8"),
    ]);
    std::fs::write(dir.join("talk.srt"), windows_1252_srt()).expect("srt");
    let out = babelcast(dir)
        .args(["run", "clip.mp4", "--transcript", "en=talk.srt", "--to", "es", "-o", "data"])
        .output()
        .expect("babelcast run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let master = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let video = master.parent().and_then(|p| p.parent()).expect("video folder").to_owned();
    let en = std::fs::read_to_string(video.join("captions/en.vtt")).expect("en captions");
    assert!(en.contains("The caf\u{e9} was open."), "{en}");
    let es = std::fs::read_to_string(video.join("captions/es.vtt")).expect("es captions");
    assert!(es.contains("00:00:02.700 -->"), "{es}");
    assert!(video.join("mp4/es.mp4").is_file() && video.join("dub/es.m4a").is_file(), "the es dub");

    // A transcript that is not LANG=FILE, or not subtitles, stops before any work.
    let out = babelcast(dir).args(["run", "clip.mp4", "--transcript", "talk.srt"]).output().expect("run");
    assert!(one_line_error(&out).contains("en=talk.srt"));
    std::fs::write(dir.join("script.txt"), "Just some lines\nwith no times.\n").expect("script");
    let out =
        babelcast(dir).args(["run", "clip.mp4", "--transcript", "en=script.txt"]).output().expect("run");
    assert!(one_line_error(&out).contains("no cue times"));
}

const LIBRIVOX: &str = "/usr/share/pocketsphinx/test/data/librivox";

/// The 25 s sample the demo makes (five LibriVox clips one after another, a
/// small picture), and the reference text of each clip with the time it
/// starts at in the sample.
fn librivox_sample(dir: &std::path::Path) -> (std::path::PathBuf, Vec<(String, u64)>) {
    let text = std::fs::read_to_string(format!("{LIBRIVOX}/transcription")).expect("transcription");
    let mut clips = Vec::new();
    let mut offset_ms = 0;
    let mut args: Vec<String> =
        vec!["-f".into(), "lavfi".into(), "-i".into(), "testsrc2=size=320x240:rate=25".into()];
    for line in text.lines() {
        let (words, id) = line.rsplit_once(" (").expect("id");
        let words = words.trim_start_matches("<s>").trim_end_matches("</s>").trim();
        let wav = format!("{LIBRIVOX}/{}.wav", id.trim_end_matches(')'));
        let bytes = std::fs::metadata(&wav).expect("wav").len();
        clips.push((words.to_owned(), offset_ms));
        // 16 kHz mono 16-bit, a 44-byte header.
        offset_ms += (bytes - 44) * 1000 / 32_000;
        args.extend(["-i".into(), wav]);
    }
    let n = clips.len();
    let inputs: String = (1..=n).map(|k| format!("[{k}:a]")).collect();
    args.extend([
        "-filter_complex".into(),
        format!("{inputs}concat=n={n}:v=0:a=1[speech]"),
        "-map".into(),
        "0:v".into(),
        "-map".into(),
        "[speech]".into(),
        "-shortest".into(),
        "-c:v".into(),
        "libx264".into(),
        "-preset".into(),
        "ultrafast".into(),
        "-pix_fmt".into(),
        "yuv420p".into(),
        "-c:a".into(),
        "aac".into(),
    ]);
    let path = dir.join("sample.mp4");
    args.push(path.to_str().expect("utf-8").into());
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
    (path, clips)
}

fn srt_time(ms: u64) -> String {
    format!("{:02}:{:02}:{:02},{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// `babelcast run` of the sample with `transcript` (LANG=FILE) re-timed; the
/// video's folder.
fn run_retimed(dir: &std::path::Path, sample: &std::path::Path, transcript: &str) -> std::path::PathBuf {
    let out = babelcast(dir)
        .args(["run", "--retime", "--transcript", transcript, "-o", "data"])
        .arg(sample)
        .output()
        .expect("babelcast run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let master = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    master.parent().and_then(|p| p.parent()).expect("video folder").to_owned()
}

/// Where each clip's first word is spoken, by the recognition pass's own word
/// times: the first word heard after the clip begins.
fn spoken_starts(video: &std::path::Path, clips: &[(String, u64)]) -> Vec<u64> {
    let heard: serde_json::Value =
        serde_json::from_slice(&std::fs::read(video.join("recognized.json")).expect("what was heard"))
            .expect("json");
    let words = heard["words"].as_array().expect("words");
    clips
        .iter()
        .map(|(_, offset)| {
            words
                .iter()
                .filter_map(|w| w["start_ms"].as_u64())
                .find(|&s| s + 150 >= *offset)
                .expect("a word after the clip starts")
        })
        .collect()
}

fn transcript_cues(video: &std::path::Path) -> (Vec<babelcast_core::Cue>, serde_json::Value) {
    let transcript: serde_json::Value =
        serde_json::from_slice(&std::fs::read(video.join("transcript.json")).expect("transcript"))
            .expect("json");
    let cues = serde_json::from_value(transcript["cues"].clone()).expect("cues");
    (cues, transcript)
}

#[test]
fn subtitles_far_off_and_a_plain_script_are_moved_to_where_they_are_spoken() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let models = std::path::absolute(common::repo_models()).expect("models");
    std::fs::write(
        dir.join("babelcast.toml"),
        format!(
            "models_dir = {models:?}\n[speech]\nmodel = \"whisper-tiny.en\"\nbeam_size = 1\n\
             [media.ladder]\npreset = \"ultrafast\"\nsegment_secs = 2\n\
             [[media.ladder.rungs]]\nheight = 240\nbitrate_kbps = 300\nmax_kbps = 400\n"
        ),
    )
    .expect("config");
    let (sample, clips) = librivox_sample(dir);

    // The reference as an SRT, every cue 20 s late (past a whole window), and
    // one cue whose text is never spoken, between the second and third.
    let never = "Nobody ever reads this sentence aloud.";
    let mut srt = String::new();
    let mut given = Vec::new();
    for (k, (words, offset)) in clips.iter().enumerate() {
        given.push((words.clone(), offset + 20_000, offset + 21_500));
        if k == 1 {
            let at = clips[2].1 + 20_000 - 700;
            given.push((never.to_owned(), at, at + 2_500));
        }
    }
    for (n, (text, start, end)) in given.iter().enumerate() {
        srt.push_str(&format!("{}\n{} --> {}\n{text}\n\n", n + 1, srt_time(*start), srt_time(*end)));
    }
    std::fs::write(dir.join("shifted.srt"), &srt).expect("srt");
    let video = run_retimed(dir, &sample, "en=shifted.srt");
    let spoken = spoken_starts(&video, &clips);
    let (cues, transcript) = transcript_cues(&video);
    for ((words, _), at) in clips.iter().zip(&spoken) {
        // Long sentences are split by the caption rules: the cue it begins.
        let head: Vec<&str> = words.split_whitespace().take(3).collect();
        let cue = cues
            .iter()
            .find(|c| c.text.split_whitespace().take(3).collect::<Vec<_>>() == head)
            .unwrap_or_else(|| panic!("a cue starting {head:?}: {cues:?}"));
        assert!(
            cue.start.0.abs_diff(*at) <= 200,
            "{words:?} starts at {} but is spoken at {at}",
            cue.start.0
        );
    }
    let unspoken = cues.iter().find(|c| c.text == never).expect("the unspoken cue is kept");
    let (_, at, end) = &given[2];
    assert_eq!((unspoken.start.0, unspoken.end.0), (*at, *end), "it keeps its time");
    let shifts = transcript["retimed"].as_array().expect("each cue's shift");
    assert_eq!(shifts.len(), given.len());
    assert_eq!(
        shifts.iter().filter(|s| s["found"] == false).map(|s| s["cue"].as_u64()).collect::<Vec<_>>(),
        [Some(2)]
    );
    assert!(
        shifts
            .iter()
            .filter(|s| s["found"] == true)
            .all(|s| s["shift_ms"].as_i64().is_some_and(|ms| ms < -18_000)),
        "{shifts:?}"
    );

    // The same text as a plain script: placed the same, set by the caption rules.
    let script: String = clips.iter().map(|(words, _)| format!("{words}\n")).collect();
    std::fs::write(dir.join("script.txt"), script).expect("script");
    let video = run_retimed(dir, &sample, "en=script.txt");
    let spoken = spoken_starts(&video, &clips);
    let (cues, _) = transcript_cues(&video);
    for ((words, _), at) in clips.iter().zip(&spoken) {
        let nearest = cues.iter().map(|c| c.start.0.abs_diff(*at)).min().expect("cues");
        assert!(nearest <= 200, "no cue starts within 0.2 s of {words:?} at {at}: {cues:?}");
    }
    let profile = babelcast_core::CaptionProfile::default();
    let errors: Vec<_> = babelcast_core::captions::check(&cues, &profile)
        .into_iter()
        .filter(|v| v.severity == babelcast_core::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let all: Vec<String> = cues.iter().flat_map(|c| c.text.split_whitespace().map(str::to_owned)).collect();
    let expected: Vec<String> =
        clips.iter().flat_map(|(w, _)| w.split_whitespace().map(str::to_owned)).collect();
    assert_eq!(all, expected, "every word of the script, in order");

    // Subtitles said to be Spanish over English speech: refused, with what was heard.
    let out = babelcast(dir)
        .args(["run", "--retime", "--transcript", "es=shifted.srt", "-o", "data"])
        .arg(&sample)
        .output()
        .expect("babelcast run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the subtitles are in Español (es) but the speech is in \"en\""), "{stderr}");
}
