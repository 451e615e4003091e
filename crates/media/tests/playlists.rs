//! Every playlist babelcast writes or keeps from ffmpeg follows RFC 8216 (HLS),
//! checked rule by rule on packages of a short, an odd-length and a longer
//! input, in MPEG-TS and in CMAF, with a caption track and a second audio track added: stream
//! validators and strict players reject what breaks these rules.

use std::collections::HashMap;
use std::path::Path;

use babelcast_core::{Cue, Lang, Millis};
use babelcast_media::ladder::{Rung, SegmentFormat};
use babelcast_media::{LadderConfig, Packager};
use babelcast_process::Program;

mod common;
use common::{ffmpeg, probe};

/// A video of `secs` seconds with a tone, at 30 frames a second (5.5 s is then
/// a whole number of frames, which ffmpeg gave a target duration of 5).
fn clip(dir: &Path, name: &str, secs: f64) -> std::path::PathBuf {
    let path = dir.join(name);
    let secs = format!("{secs}");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=426x240:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440",
        "-t",
        &secs,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        path.to_str().expect("utf-8"),
    ]);
    path
}

/// The attributes of a tag line `#TAG:A=1,B="x,y"`.
fn attributes(line: &str) -> HashMap<String, String> {
    let list = line.split_once(':').map(|(_, rest)| rest).unwrap_or_default();
    let mut out = HashMap::new();
    let (mut key, mut value, mut in_key, mut quoted) = (String::new(), String::new(), true, false);
    for c in list.chars().chain([',']) {
        match c {
            '=' if in_key => in_key = false,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.insert(std::mem::take(&mut key), std::mem::take(&mut value));
                in_key = true;
            }
            c if in_key => key.push(c),
            c => value.push(c),
        }
    }
    out
}

/// The RFC 8216 rules of a VOD media playlist; returns each broken rule.
fn check_media(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("playlist");
    let name = path.display();
    let mut broken = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    if lines.first() != Some(&"#EXTM3U") {
        broken.push(format!("{name}: the first line is not #EXTM3U (4.3.1.1)"));
    }
    let targets: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .map(|v| {
            v.parse().unwrap_or_else(|_| panic!("{name}: TARGETDURATION {v:?} is not a decimal-integer"))
        })
        .collect();
    if targets.len() != 1 {
        broken.push(format!(
            "{name}: {} EXT-X-TARGETDURATION tags, must be exactly one (4.3.3.1)",
            targets.len()
        ));
    }
    let target = targets.first().copied().unwrap_or(0);
    let version: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("#EXT-X-VERSION:"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut segments = 0;
    for (k, line) in lines.iter().enumerate() {
        let Some(extinf) = line.strip_prefix("#EXTINF:") else { continue };
        segments += 1;
        let duration: f64 = extinf.split(',').next().and_then(|d| d.parse().ok()).expect("EXTINF duration");
        if duration.round() as u64 > target {
            broken.push(format!(
                "{name}: EXTINF {duration} rounds to more than the target duration {target} (4.3.3.1)"
            ));
        }
        if duration.fract() != 0.0 && version < 3 {
            broken
                .push(format!("{name}: a decimal EXTINF needs EXT-X-VERSION 3 or more, it is {version} (7)"));
        }
        let uri = lines[k + 1..].iter().find(|l| !l.starts_with('#') && !l.trim().is_empty());
        match uri {
            Some(uri) if path.parent().expect("dir").join(uri).is_file() => {}
            other => broken.push(format!("{name}: segment {other:?} is missing")),
        }
    }
    if segments == 0 {
        broken.push(format!("{name}: no segments"));
    }
    // Fragmented MP4 segments need their init segment named by EXT-X-MAP before
    // the first of them (3.3, 4.3.2.5), which needs version 6 in a playlist
    // that is not I-frames only (7), and the file must be there.
    let maps: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("#EXT-X-MAP:")).collect();
    let fragments = lines.iter().any(|l| l.ends_with(".m4s") || l.ends_with(".mp4"));
    if fragments && maps.is_empty() {
        broken.push(format!("{name}: fMP4 segments without EXT-X-MAP (3.3)"));
    }
    for map in &maps {
        if version < 6 {
            broken.push(format!("{name}: EXT-X-MAP needs EXT-X-VERSION 6 or more, it is {version} (7)"));
        }
        let uri = attributes(&format!("#EXT-X-MAP:{map}")).get("URI").cloned().unwrap_or_default();
        if uri.is_empty() || !path.parent().expect("dir").join(&uri).is_file() {
            broken.push(format!("{name}: the EXT-X-MAP URI {uri:?} is missing (4.3.2.5)"));
        }
    }
    let first_map = lines.iter().position(|l| l.starts_with("#EXT-X-MAP:"));
    let first_segment = lines.iter().position(|l| l.starts_with("#EXTINF:"));
    if let (Some(m), Some(f)) = (first_map, first_segment)
        && m > f
    {
        broken.push(format!("{name}: EXT-X-MAP after the first segment (4.3.2.5)"));
    }
    if !lines.contains(&"#EXT-X-ENDLIST") {
        broken.push(format!("{name}: a VOD playlist must end with EXT-X-ENDLIST (4.3.3.4)"));
    }
    if !lines.contains(&"#EXT-X-PLAYLIST-TYPE:VOD") {
        broken.push(format!("{name}: no EXT-X-PLAYLIST-TYPE:VOD"));
    }
    broken
}

/// The RFC 8216 rules of a master playlist, and those of every media playlist
/// it names.
fn check_master(master: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(master).expect("master");
    let dir = master.parent().expect("dir");
    let lines: Vec<&str> = text.lines().collect();
    let mut broken = Vec::new();
    if lines.first() != Some(&"#EXTM3U") {
        broken.push("master: the first line is not #EXTM3U (4.3.1.1)".to_owned());
    }
    let mut groups: HashMap<(String, String), Vec<HashMap<String, String>>> = HashMap::new();
    let mut media_uris = Vec::new();
    for line in lines.iter().filter(|l| l.starts_with("#EXT-X-MEDIA:")) {
        let a = attributes(line);
        for required in ["TYPE", "GROUP-ID", "NAME"] {
            if !a.contains_key(required) {
                broken.push(format!("master: EXT-X-MEDIA without {required} (4.3.4.1): {line}"));
            }
        }
        if a.get("TYPE").map(String::as_str) == Some("SUBTITLES") && !a.contains_key("URI") {
            broken.push(format!("master: SUBTITLES media without a URI (4.3.4.1): {line}"));
        }
        if a.get("DEFAULT").map(String::as_str) == Some("YES")
            && a.get("AUTOSELECT").map(String::as_str) == Some("NO")
        {
            broken.push(format!("master: DEFAULT=YES needs AUTOSELECT=YES (4.3.4.1): {line}"));
        }
        if let Some(uri) = a.get("URI") {
            media_uris.push(uri.clone());
        }
        groups.entry((a["TYPE"].clone(), a["GROUP-ID"].clone())).or_default().push(a);
    }
    for ((kind, group), members) in &groups {
        let names: std::collections::HashSet<&String> = members.iter().map(|m| &m["NAME"]).collect();
        if names.len() != members.len() {
            broken.push(format!("master: two {kind} renditions named alike in group {group} (4.3.4.1.1)"));
        }
        if members.iter().filter(|m| m.get("DEFAULT").map(String::as_str) == Some("YES")).count() > 1 {
            broken.push(format!("master: more than one DEFAULT=YES in {kind} group {group} (4.3.4.1.1)"));
        }
    }
    let mut variants = 0;
    for (k, line) in lines.iter().enumerate() {
        if !line.starts_with("#EXT-X-STREAM-INF:") {
            continue;
        }
        variants += 1;
        let a = attributes(line);
        if a.get("BANDWIDTH").is_none_or(|b| b.parse::<u64>().is_err()) {
            broken.push(format!("master: EXT-X-STREAM-INF without a BANDWIDTH (4.3.4.2): {line}"));
        }
        if !a.contains_key("CODECS") {
            broken.push(format!("master: EXT-X-STREAM-INF without CODECS (SHOULD, 4.3.4.2): {line}"));
        }
        for (attribute, kind) in [("AUDIO", "AUDIO"), ("SUBTITLES", "SUBTITLES")] {
            if let Some(group) = a.get(attribute)
                && !groups.contains_key(&(kind.to_owned(), group.clone()))
            {
                broken.push(format!("master: {attribute}={group} names no {kind} group (4.3.4.2)"));
            }
        }
        match lines.get(k + 1) {
            Some(uri) if !uri.starts_with('#') => media_uris.push((*uri).to_owned()),
            _ => broken.push(format!("master: EXT-X-STREAM-INF not followed by its URI (4.3.4.2): {line}")),
        }
    }
    if variants == 0 {
        broken.push("master: no variant streams".to_owned());
    }
    for uri in media_uris {
        broken.extend(check_media(&dir.join(uri)));
    }
    broken
}

#[test]
fn every_playlist_follows_rfc_8216_on_short_odd_and_long_inputs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = LadderConfig {
        rungs: vec![
            Rung { height: 240, bitrate_kbps: 300, max_kbps: 400 },
            Rung { height: 144, bitrate_kbps: 150, max_kbps: 200 },
        ],
        preset: "ultrafast".into(),
        segment_secs: 6,
        audio_kbps: 64,
        segments: SegmentFormat::Ts,
    };
    let es = Lang::from_metadata("es").expect("es");
    let en = Lang::from_metadata("en").expect("en");
    let mut all = Vec::new();
    // Shorter than a segment, an odd length (one segment of 5.5 s at the default
    // 6 s), and many segments with a short last one.
    // Each in both segment formats.
    let inputs = [("short.mp4", 1.3, 6), ("odd.mp4", 5.5, 6), ("odd2.mp4", 5.5, 2), ("long.mp4", 23.7, 6)];
    for (format, (name, secs, segment_secs)) in
        [SegmentFormat::Ts, SegmentFormat::Cmaf].into_iter().flat_map(|f| inputs.map(|i| (f, i)))
    {
        let packager = Packager::new(
            Program::ffmpeg(),
            Program::ffprobe(),
            LadderConfig { segment_secs, segments: format, ..config.clone() },
        );
        let source = tmp.path().join(name);
        if !source.exists() {
            clip(tmp.path(), name, secs);
        }
        let facts = probe(&source);
        let out = tmp.path().join(format!("{name}.{}.hls", format.extension()));
        let mut package = packager.encode(&source, &facts, &out, Some(en), &mut |_| {}).expect("encodes");
        let cues = [Cue { start: Millis(200), end: Millis(1_100), text: "Hola.".into() }];
        package.add_subtitles(es, &cues).expect("captions");
        packager.add_audio(&mut package, es, &source, &mut |_| {}).expect("a second audio track");
        let broken = check_master(&package.master());
        all.extend(broken.into_iter().map(|b| format!("{name} ({format:?}): {b}")));
    }
    assert!(all.is_empty(), "{}", all.join("\n"));
}
