//! After an edit, a spliced dub track reaches the package by rewriting only the
//! fragments of its rendition that changed, and the result is byte for byte what
//! segmenting the whole track again gives; the language's MP4 is made from the
//! previous one, and holds what a full write holds. A track that is not a splice
//! of the previous one is packaged, and its MP4 written, whole.

use std::path::{Path, PathBuf};
use std::process::Command;

use babelcast_core::{Cue, Lang, MediaFacts, Millis};
use babelcast_media::ladder::{Rung, SegmentFormat};
use babelcast_media::{
    DubMode, LadderConfig, Level, Mp4Audio, Mp4Spec, Mp4Writer, Package, Packager, Repackaged,
};
use babelcast_process::Program;

mod common;
use common::{ffmpeg, probe};

const VOICES: &str = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-";

fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

/// 24 s of dub speech at 22.05 kHz: a reader from 1 s and the clip `second` at 12 s.
fn speech(dir: &Path, name: &str, second: &str) -> PathBuf {
    let out = dir.join(name);
    ffmpeg(&[
        "-i",
        &format!("{VOICES}0870.wav"),
        "-i",
        &format!("{VOICES}{second}.wav"),
        "-filter_complex",
        "[0:a]adelay=1000,apad[a];[1:a]adelay=12000,apad[b];[a][b]amix=inputs=2:normalize=0,atrim=0:24,aresample=22050",
        "-ac",
        "1",
        utf8(&out),
    ]);
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// The files of a folder, by name, with their bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).expect("read"))
        })
        .collect();
    out.sort();
    out
}

/// A 24 s video (B-frames, so the picture has an edit list), its dub, and the
/// dub with the clip at 12 s spoken otherwise, spliced.
struct Edited {
    source: PathBuf,
    facts: MediaFacts,
    previous: PathBuf,
    spliced: PathBuf,
}

fn edited(dir: &Path) -> Edited {
    let source = dir.join("talk.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=220:sample_rate=48000",
        "-t",
        "24",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        utf8(&source),
    ]);
    let facts = probe(&source);
    let ffmpeg_program = Program::ffmpeg();
    let (before, after) = (speech(dir, "before.wav", "0880"), speech(dir, "after.wav", "0930"));
    let previous = dir.join("previous.m4a");
    let gain = babelcast_media::dub_track(
        &ffmpeg_program,
        &source,
        &facts,
        &before,
        DubMode::Duck,
        Level::Kept(2.0),
        &previous,
    )
    .expect("dub");
    let spliced = dir.join("spliced.m4a");
    babelcast_media::splice_dub_track(
        &ffmpeg_program,
        &source,
        &facts,
        (&after, 22_050),
        DubMode::Duck,
        gain,
        &previous,
        std::slice::from_ref(&(12_000..15_290)),
        &spliced,
    )
    .expect("splice")
    .expect("a window");
    Edited { source, facts, previous, spliced }
}

#[test]
fn a_spliced_dub_rewrites_only_its_changed_fragments_as_segmenting_it_whole_would() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let Edited { source, facts, previous, spliced } = edited(dir);
    let config = LadderConfig {
        rungs: vec![Rung { height: 180, bitrate_kbps: 300, max_kbps: 400 }],
        preset: "ultrafast".into(),
        segment_secs: 4,
        audio_kbps: 64,
        segments: SegmentFormat::Cmaf,
    };
    let packager = Packager::new(Program::ffmpeg(), Program::ffprobe(), config);
    let (en, es) = (Lang::from_metadata("en").expect("en"), Lang::from_metadata("es").expect("es"));
    let out = dir.join("pkg");
    let mut package = packager.encode(&source, &facts, &out, Some(en), &mut |_| {}).expect("encodes");

    assert_eq!(packager.add_dub(&mut package, es, &previous, &mut |_| {}).expect("dub"), Repackaged::Whole);
    let rendition = out.join("dub-es");
    let old = files(&rendition);
    // What segmenting the spliced track whole gives, in a copy of the package.
    let whole = dir.join("whole");
    copy_dir(&out, &whole);
    let mut reference = Package::open(&whole).expect("opens");
    packager.add_audio(&mut reference, es, &spliced, &mut |_| {}).expect("whole");

    let how = packager.add_dub(&mut package, es, &spliced, &mut |_| {}).expect("patched");
    let new = files(&rendition);
    let expected = files(&whole.join("dub-es"));
    assert_eq!(
        new.iter().map(|f| &f.0).collect::<Vec<_>>(),
        expected.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, ours), (_, theirs)) in new.iter().zip(&expected) {
        if name == "init.mp4" {
            // Kept as it was: a fresh segmenting differs only in the bit rates
            // the sample description declares (informational; players go by the
            // playlists' measured rates), inside `stsd`.
            let stsd = ours.windows(4).position(|w| w == b"stsd").expect("stsd") - 4;
            let size = u32::from_be_bytes(ours[stsd..stsd + 4].try_into().expect("4 bytes")) as usize;
            let differ: Vec<usize> = (0..ours.len()).filter(|&i| ours.get(i) != theirs.get(i)).collect();
            assert!(ours.len() == theirs.len() && differ.len() <= 12, "{name}: {differ:?}");
            assert!(
                differ.iter().all(|i| (stsd..stsd + size).contains(i)),
                "{name}: {differ:?} outside stsd"
            );
            continue;
        }
        let first = (0..ours.len()).find(|&i| ours.get(i) != theirs.get(i));
        assert!(
            ours == theirs,
            "{name}: differs from byte {first:?} ({} bytes patched, {})",
            ours.len(),
            theirs.len()
        );
    }
    // Only the fragments around 12-17 s (4 s each) changed.
    let changed: Vec<&str> =
        old.iter().zip(&new).filter(|(a, b)| a.1 != b.1).map(|(a, _)| a.0.as_str()).collect();
    assert_eq!(how, Repackaged::Fragments(changed.len()));
    assert!((1..=3).contains(&changed.len()), "{changed:?}");
    assert!(changed.iter().all(|n| n.ends_with(".m4s")), "{changed:?}");
    // The bit rates in the master are the new segments'.
    assert_eq!(package.state().audio, reference.state().audio);
    assert_eq!(
        std::fs::read_to_string(out.join("master.m3u8")).expect("master"),
        std::fs::read_to_string(whole.join("master.m3u8")).expect("master")
    );

    // A track that is not a splice of the packaged one (another length) is
    // segmented whole.
    let shorter = dir.join("shorter.m4a");
    ffmpeg(&["-i", utf8(&spliced), "-t", "20", "-c", "copy", utf8(&shorter)]);
    assert_eq!(packager.add_dub(&mut package, es, &shorter, &mut |_| {}).expect("whole"), Repackaged::Whole);
}

/// What a player reads from an MP4: each stream (codec, language, default) and
/// every packet (stream, times, size, flags, a hash of its bytes).
fn contents(file: &Path) -> (String, Vec<String>) {
    let ffprobe = |args: &[&str]| {
        let out =
            Command::new("ffprobe").args(["-v", "error"]).args(args).arg(file).output().expect("ffprobe");
        assert!(out.status.success(), "ffprobe {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let streams = ffprobe(&[
        "-show_entries",
        "stream=index,codec_name,codec_tag_string,start_time,duration,nb_frames:stream_tags=language:stream_disposition=default",
        "-of",
        "compact",
    ]);
    let mut packets: Vec<String> = ffprobe(&[
        "-show_entries",
        "packet=stream_index,pts,dts,duration,size,flags,data_hash",
        "-show_data_hash",
        "md5",
        "-of",
        "csv=p=0",
    ])
    .lines()
    .map(str::to_owned)
    .collect();
    // By stream, in each stream's order: the interleaving is the writer's choice.
    packets.sort_by_key(|p| p.split(',').next().and_then(|s| s.parse::<u32>().ok()));
    (streams, packets)
}

#[test]
fn an_edited_mp4_carries_the_picture_over_and_plays_as_a_full_write_of_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let Edited { source, facts, previous, spliced } = edited(dir);
    let (en, es) = (Lang::from_metadata("en").expect("en"), Lang::from_metadata("es").expect("es"));
    let cue = |s, e, t: &str| Cue { start: Millis(s), end: Millis(e), text: t.into() };
    let before = vec![
        (
            es,
            vec![
                cue(1_000, 4_000, "Hola."),
                cue(12_000, 14_000, "Era un hombre."),
                cue(20_000, 22_000, "Fin."),
            ],
        ),
        (en, vec![cue(1_000, 4_000, "Hello."), cue(12_000, 14_000, "He was a man.")]),
    ];
    // The edit: the Spanish cue at 12 s reworded and re-timed, one more English cue.
    let after = vec![
        (
            es,
            vec![
                cue(1_000, 4_000, "Hola."),
                cue(12_000, 15_300, "Era un joven amable y bueno."),
                cue(20_000, 22_000, "Fin."),
            ],
        ),
        (
            en,
            vec![
                cue(1_000, 4_000, "Hello."),
                cue(12_000, 15_300, "He was a kind young man."),
                cue(16_000, 17_000, "Yes."),
            ],
        ),
    ];
    let spec = |dub: &Path, subtitles: &[(Lang, Vec<Cue>)]| Mp4Spec {
        source: &source,
        facts: &facts,
        audio: vec![
            Mp4Audio::Dub { path: dub.to_owned(), language: es },
            Mp4Audio::Original { language: Some(en) },
        ],
        subtitles: subtitles.to_vec(),
        burn_in: None,
    };
    let writer = Mp4Writer::new(Program::ffmpeg(), Program::ffprobe(), "ultrafast");
    let (old, edited, full) = (dir.join("old.mp4"), dir.join("edited.mp4"), dir.join("full.mp4"));
    writer.write(&spec(&previous, &before), &old, &mut |_| {}).expect("the previous MP4");
    assert!(writer.write_edited(&spec(&spliced, &after), &old, &edited).expect("edited"), "taken as an edit");
    writer.write(&spec(&spliced, &after), &full, &mut |_| {}).expect("the full MP4");

    let (ours, theirs) = (contents(&edited), contents(&full));
    assert_eq!(ours.0, theirs.0, "the same streams");
    assert_eq!(ours.1.len(), theirs.1.len(), "as many packets");
    for (a, b) in ours.1.iter().zip(&theirs.1) {
        assert_eq!(a, b, "the same packet");
    }
    // The change is in it: the new cues, as text.
    let text = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&edited)
        .args(["-map", "0:s:0", "-f", "srt", "pipe:1"])
        .output()
        .expect("ffmpeg");
    assert!(String::from_utf8_lossy(&text.stdout).contains("Era un joven amable y bueno."));
    // Not copied from the previous file: the picture's bytes, kept, are most of it.
    let sizes = [&old, &edited, &full].map(|f| std::fs::metadata(f).expect("size").len());
    assert!(sizes[1].abs_diff(sizes[2]) < 4096, "{sizes:?}");

    // Cues with markup ffmpeg reads (styles) are left to a full write.
    let mut styled = after.clone();
    styled[0].1[1].text = "<i>Era</i> un joven.".into();
    assert!(!writer.write_edited(&spec(&spliced, &styled), &old, &dir.join("styled.mp4")).expect("refused"));

    // Nor one whose original audio is in another language (the spoken language
    // was corrected): its tracks' languages are the previous file's.
    let mut french = spec(&spliced, &after);
    french.audio[1] = Mp4Audio::Original { language: Lang::from_metadata("fr") };
    assert!(!writer.write_edited(&french, &old, &dir.join("french.mp4")).expect("refused"));

    // A previous MP4 of another dub (another length) is not edited.
    let shorter = dir.join("shorter.m4a");
    ffmpeg(&["-i", utf8(&spliced), "-t", "20", "-c", "copy", utf8(&shorter)]);
    let other = dir.join("other.mp4");
    writer.write(&spec(&shorter, &before), &other, &mut |_| {}).expect("another MP4");
    assert!(!writer.write_edited(&spec(&spliced, &after), &other, &dir.join("no.mp4")).expect("refused"));
    assert!(!dir.join("no.mp4").exists());
}
