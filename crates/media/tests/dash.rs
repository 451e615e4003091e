//! The DASH manifest of a CMAF package follows the DASH-IF interoperability rules
//! babelcast relies on (no conformance tool ships here, so each rule is an
//! assertion), checked on a package with two rungs, a dub and two caption tracks;
//! every file it names exists.

use std::collections::{HashMap, HashSet};

use babelcast_core::{Cue, Lang, Millis};
use babelcast_media::ladder::{Rung, SegmentFormat};
use babelcast_media::{LadderConfig, Packager};
use babelcast_process::Program;
use quick_xml::events::Event;

mod common;
use common::{ffmpeg, probe};

/// An element of the manifest: name, attributes, children and text.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: HashMap<String, String>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn one<'a>(&'a self, name: &'a str) -> &'a Node {
        let found: Vec<&Node> = self.all(name).collect();
        assert_eq!(found.len(), 1, "exactly one <{name}> in <{}>", self.name);
        found[0]
    }

    fn attr(&self, key: &str) -> &str {
        self.attrs.get(key).map(String::as_str).unwrap_or_else(|| panic!("<{}> has no @{key}", self.name))
    }
}

/// Parses XML into a tree (quick-xml is already in the build's tree).
fn parse(xml: &str) -> Node {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack = vec![Node::default()];
    let element = |e: &quick_xml::events::BytesStart| Node {
        name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.expect("attribute");
                (
                    String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                    a.unescape_value().expect("value").into_owned(),
                )
            })
            .collect(),
        ..Node::default()
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(element(&e)),
            Event::Empty(e) => {
                let node = element(&e);
                stack.last_mut().expect("parent").children.push(node);
            }
            Event::End(_) => {
                let node = stack.pop().expect("open element");
                stack.last_mut().expect("parent").children.push(node);
            }
            Event::Text(t) => {
                let text = t.decode().expect("text").into_owned();
                stack.last_mut().expect("node").text.push_str(text.trim());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut root = stack.pop().expect("document");
    assert_eq!(root.children.len(), 1, "one root element");
    root.children.remove(0)
}

/// `PT12.345S` in seconds.
fn iso_secs(d: &str) -> f64 {
    d.strip_prefix("PT").and_then(|d| d.strip_suffix('S')).and_then(|d| d.parse().ok()).expect("PTnS")
}

#[test]
fn the_dash_manifest_follows_the_dash_if_rules_and_names_only_files_that_exist() {
    let tmp = tempfile::tempdir().expect("tmp");
    let source = tmp.path().join("talk.mp4");
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
        "13.3",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        source.to_str().expect("utf-8"),
    ]);
    let config = LadderConfig {
        rungs: vec![
            Rung { height: 360, bitrate_kbps: 500, max_kbps: 600 },
            Rung { height: 240, bitrate_kbps: 250, max_kbps: 300 },
        ],
        // B-frames: the video's first frame is not at 0, which the offset must carry.
        preset: "veryfast".into(),
        segment_secs: 4,
        audio_kbps: 64,
        segments: SegmentFormat::Cmaf,
    };
    let packager = Packager::new(Program::ffmpeg(), Program::ffprobe(), config);
    let (en, es) = (Lang::from_metadata("en").expect("en"), Lang::from_metadata("es").expect("es"));
    let out = tmp.path().join("pkg");
    let mut package =
        packager.encode(&source, &probe(&source), &out, Some(en), &mut |_| {}).expect("encodes");
    let cue = |s, e, t: &str| Cue { start: Millis(s), end: Millis(e), text: t.into() };
    package.add_subtitles(en, &[cue(1_000, 2_000, "One"), cue(10_000, 11_000, "Ten")]).expect("en");
    package.add_subtitles(es, &[cue(1_000, 2_000, "Uno")]).expect("es");
    packager.add_audio(&mut package, es, &source, &mut |_| {}).expect("a dub");
    let duration = package.duration_secs();

    let mpd = parse(&std::fs::read_to_string(out.join("manifest.mpd")).expect("the manifest"));
    assert_eq!(mpd.name, "MPD");
    assert_eq!(mpd.attr("xmlns"), "urn:mpeg:dash:schema:mpd:2011");
    // On-demand content with separate segment files: static, the live profile's
    // SegmentTemplate addressing, its length and buffer stated.
    assert_eq!(mpd.attr("type"), "static");
    assert!(mpd.attr("profiles").split(',').any(|p| p == "urn:mpeg:dash:profile:isoff-live:2011"));
    assert!((iso_secs(mpd.attr("mediaPresentationDuration")) - duration).abs() < 0.01);
    assert!(iso_secs(mpd.attr("minBufferTime")) > 0.0);
    let period = mpd.one("Period");
    assert_eq!(iso_secs(period.attr("start")), 0.0);

    let sets: Vec<&Node> = period.all("AdaptationSet").collect();
    let ids: HashSet<&str> = sets.iter().map(|s| s.attr("id")).collect();
    assert_eq!(ids.len(), sets.len(), "AdaptationSet ids are unique");
    let representation_ids: Vec<&str> =
        sets.iter().flat_map(|s| s.all("Representation")).map(|r| r.attr("id")).collect();
    assert_eq!(
        representation_ids.iter().collect::<HashSet<_>>().len(),
        representation_ids.len(),
        "Representation ids are unique in the period"
    );
    let of = |t: &str| sets.iter().filter(|s| s.attr("contentType") == t).copied().collect::<Vec<_>>();

    // Video: one set, every rung, switchable at every segment.
    let video = of("video");
    assert_eq!(video.len(), 1);
    let video = video[0];
    assert_eq!(video.attr("mimeType"), "video/mp4");
    assert_eq!((video.attr("segmentAlignment"), video.attr("startWithSAP")), ("true", "1"));
    let rungs: Vec<&Node> = video.all("Representation").collect();
    assert_eq!(rungs.iter().map(|r| r.attr("height")).collect::<Vec<_>>(), ["360", "240"]);
    for r in &rungs {
        assert!(r.attr("codecs").starts_with("avc1."), "{:?}", r.attrs);
        assert!(r.attr("bandwidth").parse::<u64>().expect("bandwidth") > 0);
        assert_eq!(r.attr("sar"), "1:1");
    }

    // Audio: one set per track, with its language and one role, one of them main.
    let audio = of("audio");
    assert_eq!(audio.iter().map(|a| a.attr("lang")).collect::<Vec<_>>(), ["en", "es"]);
    let roles: Vec<(&str, &str)> = audio
        .iter()
        .map(|a| {
            let role = a.one("Role");
            (role.attr("schemeIdUri"), role.attr("value"))
        })
        .collect();
    assert_eq!(roles, [("urn:mpeg:dash:role:2011", "main"), ("urn:mpeg:dash:role:2011", "dub")]);
    for a in &audio {
        assert_eq!(a.attr("mimeType"), "audio/mp4");
        let r = a.one("Representation");
        assert_eq!((r.attr("codecs"), r.attr("audioSamplingRate")), ("mp4a.40.2", "48000"));
        assert_eq!(r.one("AudioChannelConfiguration").attr("value"), "2");
    }

    // Media segments: the same offset everywhere (one clock), every file there,
    // the timeline as long as the content, no segment over 1.5 x the target.
    let mut offsets = HashSet::new();
    for set in std::iter::once(video).chain(audio.iter().copied()) {
        for r in set.all("Representation") {
            let template = r.one("SegmentTemplate");
            let timescale: f64 = template.attr("timescale").parse().expect("timescale");
            offsets.insert(template.attr("presentationTimeOffset").to_owned());
            assert!(out.join(template.attr("initialization")).is_file(), "{:?}", template.attrs);
            let (mut number, mut total, mut first) =
                (template.attr("startNumber").parse::<u32>().expect("n"), 0.0, None);
            for s in template.one("SegmentTimeline").all("S") {
                if first.is_none() {
                    first = Some(s.attr("t").parse::<u64>().expect("t"));
                }
                let d: f64 = s.attr("d").parse().expect("d");
                let repeat: u32 = s.attrs.get("r").map_or(0, |r| r.parse().expect("r"));
                assert!(d / timescale <= 4.0 * 1.5, "a {} s segment", d / timescale);
                for _ in 0..=repeat {
                    let media = template.attr("media").replace("$Number%05d$", &format!("{number:05}"));
                    assert!(out.join(&media).is_file(), "{media} is named but missing");
                    number += 1;
                    total += d / timescale;
                }
            }
            let media = template.attr("media").replace("$Number%05d$", &format!("{number:05}"));
            assert!(!out.join(&media).is_file(), "{media} exists but is not in the timeline");
            assert!((total - duration).abs() < 0.1, "{} s of segments for {duration} s", total);
            assert!(first.is_some(), "the timeline states where it starts");
        }
    }
    assert_eq!(offsets.len(), 1, "one presentationTimeOffset for every track: {offsets:?}");
    let offset: u64 = offsets.iter().next().expect("one").parse().expect("ticks");
    assert!(offset > 0, "veryfast's B-frames put the first video frame after 0");

    // Captions: a WebVTT sidecar per language, with its cues.
    let text = of("text");
    assert_eq!(text.iter().map(|t| t.attr("lang")).collect::<Vec<_>>(), ["en", "es"]);
    for t in &text {
        assert_eq!(t.attr("mimeType"), "text/vtt");
        let file = out.join(&t.one("Representation").one("BaseURL").text);
        let vtt = std::fs::read_to_string(&file).expect("the sidecar");
        assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    }
    let en_vtt = std::fs::read_to_string(out.join("subs-en/captions.vtt")).expect("en");
    assert!(en_vtt.contains("00:00:10.000 --> 00:00:11.000\nTen"), "package time, unshifted: {en_vtt}");

    // Seek previews as DASH-IF thumbnails: tiles named, the sprite there.
    let images = of("image");
    assert_eq!(images.len(), 1);
    let tile = images[0].one("Representation").one("EssentialProperty");
    assert_eq!((tile.attr("schemeIdUri"), tile.attr("value")), ("http://dashif.org/thumbnail_tile", "10x10"));
    let sprite = images[0].one("SegmentTemplate").attr("media").replace("$Number%03d$", "001");
    assert!(out.join(sprite).is_file());
}
