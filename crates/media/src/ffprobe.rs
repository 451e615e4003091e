//! Reads ffprobe's JSON (`-print_format json -show_format -show_streams`) into
//! [`MediaFacts`]. Pure: no I/O, so it is tested on recorded output.

use std::collections::BTreeMap;

use babelcast_core::{AudioStream, MediaFacts, SubtitleStream, VideoStream};
use serde::Deserialize;

/// The JSON was not what ffprobe writes.
#[derive(Debug, thiserror::Error)]
#[error("unexpected ffprobe output")]
pub struct ParseError(#[from] serde_json::Error);

#[derive(Deserialize)]
struct Report {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Format {
    format_name: String,
    format_long_name: Option<String>,
    duration: Option<String>,
    size: Option<String>,
    bit_rate: Option<String>,
}

#[derive(Deserialize)]
struct Stream {
    index: u32,
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    pix_fmt: Option<String>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    channels: Option<u32>,
    sample_rate: Option<String>,
    bit_rate: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    disposition: BTreeMap<String, i64>,
    #[serde(default)]
    side_data_list: Vec<SideData>,
}

#[derive(Deserialize)]
struct SideData {
    side_data_type: Option<String>,
    rotation: Option<f64>,
}

/// Parses ffprobe's JSON report. A report without a `format` section (ffprobe found
/// no container) is an error; streams of unknown type (data, attachments) are skipped.
pub fn parse(json: &str) -> Result<MediaFacts, ParseError> {
    let report: Report = serde_json::from_str(json)?;
    let format = report
        .format
        .ok_or_else(|| ParseError(serde::de::Error::custom("the report has no \"format\" section")))?;
    let mut facts = MediaFacts {
        container: format.format_name,
        container_long_name: format.format_long_name,
        duration_secs: number(&format.duration),
        size_bytes: number(&format.size),
        bit_rate: number(&format.bit_rate),
        video: Vec::new(),
        audio: Vec::new(),
        subtitles: Vec::new(),
    };
    for s in report.streams {
        let codec = s.codec_name.clone().unwrap_or_else(|| "unknown".to_owned());
        match s.codec_type.as_deref() {
            // Cover art in audio files is a one-frame "video" stream; it is not video.
            Some("video") if s.disposition.get("attached_pic") != Some(&1) => facts.video.push(VideoStream {
                index: s.index,
                codec,
                width: s.width.unwrap_or(0),
                height: s.height.unwrap_or(0),
                fps: frame_rate(&s.avg_frame_rate).or_else(|| frame_rate(&s.r_frame_rate)),
                rotation: rotation(&s),
                pix_fmt: s.pix_fmt,
                bit_rate: number(&s.bit_rate),
                duration_secs: number(&s.duration),
            }),
            Some("audio") => facts.audio.push(AudioStream {
                index: s.index,
                codec,
                channels: s.channels.unwrap_or(0),
                sample_rate: number(&s.sample_rate).unwrap_or(0),
                language: language(&s.tags),
                bit_rate: number(&s.bit_rate),
                duration_secs: number(&s.duration),
            }),
            Some("subtitle") => {
                facts.subtitles.push(SubtitleStream { index: s.index, codec, language: language(&s.tags) })
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// ffprobe writes most numbers as strings, and `N/A` when it does not know.
fn number<T: std::str::FromStr>(field: &Option<String>) -> Option<T> {
    field.as_deref().and_then(|s| s.trim().parse().ok())
}

/// `30000/1001` → 29.97; `0/0` (unknown) → None.
fn frame_rate(field: &Option<String>) -> Option<f64> {
    let (num, den) = field.as_deref()?.split_once('/')?;
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    (num > 0.0 && den > 0.0).then(|| num / den)
}

/// The display matrix's rotation (ffprobe 5+), else the legacy `rotate` tag (which
/// counts clockwise), normalised to 0, 90, 180 or 270 degrees counter-clockwise.
fn rotation(s: &Stream) -> u16 {
    let ccw = s
        .side_data_list
        .iter()
        .find(|d| d.side_data_type.as_deref() == Some("Display Matrix"))
        .and_then(|d| d.rotation)
        .or_else(|| s.tags.get("rotate").and_then(|r| r.parse::<f64>().ok()).map(|cw| -cw))
        .unwrap_or(0.0);
    let quarter_turns = (ccw / 90.0).round() as i64;
    (quarter_turns.rem_euclid(4) * 90) as u16
}

/// The stream's language tag, unless it is ffmpeg's "undetermined".
fn language(tags: &BTreeMap<String, String>) -> Option<String> {
    tags.get("language").filter(|l| !l.is_empty() && l.as_str() != "und").cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> MediaFacts {
        let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let json = std::fs::read_to_string(&path).expect("fixture exists");
        parse(&json).expect("fixture parses")
    }

    #[test]
    fn mp4_with_video_and_english_audio() {
        let f = fixture("ffprobe_5_1_mp4_h264_aac");
        assert_eq!(f.container, "mov,mp4,m4a,3gp,3g2,mj2");
        assert_eq!(f.duration_secs, Some(4.0));
        assert!(f.size_bytes.is_some_and(|s| s > 1000));
        let [v] = f.video.as_slice() else { panic!("one video stream: {:?}", f.video) };
        assert_eq!(
            (v.codec.as_str(), v.width, v.height, v.fps, v.rotation),
            ("h264", 640, 360, Some(25.0), 0)
        );
        let [a] = f.audio.as_slice() else { panic!("one audio stream") };
        assert_eq!((a.codec.as_str(), a.channels, a.sample_rate), ("aac", 1, 16000));
        assert_eq!(a.language.as_deref(), Some("eng"));
        assert!(f.subtitles.is_empty());
    }

    #[test]
    fn rotated_ntsc_video() {
        let f = fixture("ffprobe_5_1_mp4_rotated_ntsc");
        let v = &f.video[0];
        assert_eq!((v.width, v.height, v.rotation), (1920, 1080, 90));
        assert_eq!(v.display_size(), (1080, 1920));
        let fps = v.fps.expect("fps");
        assert!((fps - 29.97).abs() < 0.01, "{fps}");
        assert!(f.audio.is_empty());
    }

    #[test]
    fn audio_only_ogg_has_no_video_and_no_language() {
        let f = fixture("ffprobe_5_1_ogg_opus_audio_only");
        assert_eq!(f.container, "ogg");
        assert!(f.video.is_empty());
        assert_eq!(f.audio.len(), 1);
        assert_eq!(f.audio[0].sample_rate, 48000);
        assert_eq!(f.audio[0].language, None);
    }

    #[test]
    fn mkv_subtitle_stream_keeps_its_language() {
        let f = fixture("ffprobe_5_1_mkv_with_subtitles");
        assert_eq!(f.container, "matroska,webm");
        assert_eq!(f.subtitles.len(), 1);
        assert_eq!(f.subtitles[0].codec, "subrip");
        assert_eq!(f.subtitles[0].language.as_deref(), Some("spa"));
        assert_eq!(f.video.len() + f.audio.len(), 2);
    }

    #[test]
    fn legacy_rotate_tag_counts_clockwise() {
        let json = r#"{"format":{"format_name":"mov"},"streams":[{"index":0,"codec_type":"video",
            "codec_name":"h264","width":1920,"height":1080,"tags":{"rotate":"90"}}]}"#;
        assert_eq!(parse(json).expect("parses").video[0].rotation, 270);
    }

    #[test]
    fn cover_art_is_not_video_and_na_is_unknown() {
        let json = r#"{"format":{"format_name":"mp3","duration":"N/A"},"streams":[
            {"index":0,"codec_type":"audio","codec_name":"mp3","channels":2,"sample_rate":"44100"},
            {"index":1,"codec_type":"video","codec_name":"mjpeg","width":500,"height":500,
             "disposition":{"attached_pic":1}}]}"#;
        let f = parse(json).expect("parses");
        assert!(f.video.is_empty());
        assert_eq!(f.duration_secs, None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse("").is_err());
        assert!(parse("{}").is_err());
        assert!(parse(r#"{"streams":"nope"}"#).is_err());
    }
}
