//! ffmpeg itself, not only ffprobe, refuses inputs that would make it read other
//! files or URLs: these tests hand the encoders a malicious file directly, with the
//! facts of a harmless one, as if the probe had been fooled or skipped.

use std::path::Path;

use babelcast_core::{ErrorCode, Lang, MediaFacts};
use babelcast_media::{LadderConfig, Mp4Audio, Mp4Spec, Mp4Writer, PackageError, Packager};
use babelcast_process::Program;

mod common;
use common::{ffmpeg, probe};

/// An `.mp4` that is an HLS playlist naming a local secret and a URL.
fn playlist_in_disguise(dir: &Path) -> std::path::PathBuf {
    let evil = dir.join("evil.mp4");
    std::fs::write(
        &evil,
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXTINF:1,\nhttp://127.0.0.1:9/a.ts\n#EXT-X-ENDLIST\n",
    )
    .expect("write");
    evil
}

fn harmless_facts(dir: &Path) -> MediaFacts {
    let real = dir.join("real.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine",
        "-t",
        "1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        real.to_str().expect("utf-8"),
    ]);
    probe(&real)
}

#[test]
fn the_ladder_encoder_refuses_a_playlist_in_disguise() {
    let tmp = tempfile::tempdir().expect("tmp");
    let facts = harmless_facts(tmp.path());
    let evil = playlist_in_disguise(tmp.path());
    let packager = Packager::new(Program::ffmpeg(), Program::ffprobe(), LadderConfig::default());
    let out = tmp.path().join("pkg");
    let err = packager.encode(&evil, &facts, &out, None, &mut |_| {}).expect_err("refused");
    assert!(matches!(err, PackageError::Encode { .. }), "{err:?}");
    assert!(err.to_string().contains("not an accepted media container"), "{err}");
    assert!(err.is_client_error());
    assert!(!out.exists(), "no package is left behind");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("list").filter_map(Result::ok).collect();
    assert_eq!(left.len(), 2, "only the two inputs remain, no staging folder: {left:?}");
}

#[test]
fn the_mp4_writer_and_audio_tracks_refuse_a_playlist_in_disguise() {
    let tmp = tempfile::tempdir().expect("tmp");
    let facts = harmless_facts(tmp.path());
    let evil = playlist_in_disguise(tmp.path());
    let writer = Mp4Writer::new(Program::ffmpeg(), Program::ffprobe(), "ultrafast");
    let out = tmp.path().join("out.mp4");

    let spec =
        Mp4Spec { source: &evil, facts: &facts, audio: Vec::new(), subtitles: Vec::new(), burn_in: None };
    let err = writer.write(&spec, &out, &mut |_| {}).expect_err("refused");
    assert!(err.to_string().contains("not an accepted media container"), "{err}");

    // A harmless source with an evil "dub".
    let real = tmp.path().join("real.mp4");
    let spec = Mp4Spec {
        source: &real,
        facts: &facts,
        audio: vec![Mp4Audio::File { path: evil.clone(), language: Lang::from_metadata("es").expect("es") }],
        subtitles: Vec::new(),
        burn_in: None,
    };
    let err = writer.write(&spec, &out, &mut |_| {}).expect_err("refused");
    assert!(err.to_string().contains("not an accepted media container"), "{err}");
    assert!(!out.exists());
}
