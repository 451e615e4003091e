//! The DASH manifest (`manifest.mpd`) of a CMAF package: the same init segments
//! and fragments the HLS playlists name, described for DASH players (dash.js,
//! Shaka Player, ExoPlayer, smart TVs). Rewritten with the master playlist whenever
//! a track is added, so it never names a file that is not there.
//!
//! Written here as text rather than through an MPD library: the manifest is one
//! fixed shape of a dozen elements (the `dash-mpd` crate models the whole schema and
//! brings an HTTP client with it by default), and the rules it follows are spelled
//! out below and checked by `tests/dash.rs`.
//!
//! - **One period, static** (`type="static"`, the DASH-IF "live" profile's
//!   SegmentTemplate addressing, which on-demand content with separate segment files
//!   uses): one video AdaptationSet with every rung (`segmentAlignment`,
//!   `startWithSAP="1"`: every rung is cut on the same keyframes), one audio
//!   AdaptationSet per track with its `lang` and a `Role` (`main` for the original,
//!   `dub` for a dub), one text AdaptationSet per caption language (a WebVTT
//!   sidecar file) and the seek previews as a DASH-IF thumbnails AdaptationSet.
//! - **Segment times from the playlists** (`SegmentTimeline` at 90 kHz): the
//!   EXTINF of each fragment, so the timeline matches the files, short last
//!   segments included.
//! - **Timing**: the package's time 0 is the first video frame (HLS captions map to
//!   it with `X-TIMESTAMP-MAP`). Every media AdaptationSet gets the same
//!   `presentationTimeOffset`, that frame's media time, so video, audio and the
//!   sidecar captions (whose cue times are package time) share one clock; audio
//!   tracks start at their own first packet (`S@t`), as the files do.

use std::fmt::Write as _;
use std::path::Path;

use m3u8_rs::MediaPlaylist;

use crate::hls::{PackageError, PackageState, TS_HZ, read_media_playlist};

/// The manifest's file name in a package folder.
pub const MANIFEST: &str = "manifest.mpd";
/// A caption track's whole WebVTT file, beside its HLS segments.
pub const SIDECAR_VTT: &str = "captions.vtt";

/// Escapes text for an XML attribute value.
fn attr(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// An ISO 8601 duration, `PT12.345S`.
fn duration(secs: f64) -> String {
    format!("PT{:.3}S", secs.max(0.0))
}

/// A rendition's segments as the MPD addresses them: the init segment and the
/// `$Number$` pattern (folder-relative to the package), and the timeline.
struct Addressing {
    initialization: String,
    media: String,
    /// `(duration in 90 kHz ticks, repeat count)` runs.
    runs: Vec<(u64, u32)>,
}

fn addressing(dir: &Path, uri: &str) -> Result<Addressing, PackageError> {
    let path = dir.join(uri);
    let playlist: MediaPlaylist = read_media_playlist(&path)?;
    let folder = uri.rsplit_once('/').map(|(f, _)| f).unwrap_or("");
    let prefix = if folder.is_empty() { String::new() } else { format!("{folder}/") };
    let init =
        playlist.segments.iter().find_map(|s| s.map.as_ref()).map(|m| m.uri.clone()).ok_or_else(|| {
            PackageError::Output { path: path.clone(), reason: "a CMAF playlist without EXT-X-MAP".into() }
        })?;
    let extension = playlist
        .segments
        .first()
        .and_then(|s| s.uri.rsplit_once('.').map(|(_, e)| e.to_owned()))
        .unwrap_or_else(|| "m4s".into());
    let mut runs: Vec<(u64, u32)> = Vec::new();
    for segment in &playlist.segments {
        let ticks = (f64::from(segment.duration) * TS_HZ).round() as u64;
        match runs.last_mut() {
            Some((d, r)) if *d == ticks => *r += 1,
            _ => runs.push((ticks, 0)),
        }
    }
    Ok(Addressing {
        initialization: format!("{prefix}{init}"),
        media: format!("{prefix}seg_$Number%05d$.{extension}"),
        runs,
    })
}

/// `<SegmentTemplate>` with its timeline, the first segment at media time `start`.
fn segment_template(out: &mut String, a: &Addressing, start: u64, offset: u64, indent: &str) {
    let _ = writeln!(
        out,
        "{indent}<SegmentTemplate timescale=\"90000\" presentationTimeOffset=\"{offset}\" startNumber=\"0\" \
         initialization=\"{}\" media=\"{}\">",
        attr(&a.initialization),
        attr(&a.media)
    );
    let _ = writeln!(out, "{indent}  <SegmentTimeline>");
    for (k, (d, r)) in a.runs.iter().enumerate() {
        let t = if k == 0 { format!(" t=\"{start}\"") } else { String::new() };
        let r = if *r > 0 { format!(" r=\"{r}\"") } else { String::new() };
        let _ = writeln!(out, "{indent}    <S{t} d=\"{d}\"{r}/>");
    }
    let _ = writeln!(out, "{indent}  </SegmentTimeline>");
    let _ = writeln!(out, "{indent}</SegmentTemplate>");
}

/// The MPD of the CMAF package in `dir` described by `state`.
pub fn render_manifest(dir: &Path, state: &PackageState) -> Result<String, PackageError> {
    let total: f64 = state.segments.iter().sum();
    let offset = state.timeline_pts;
    let mut out = String::new();
    let _ = writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        out,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\" \
         profiles=\"urn:mpeg:dash:profile:isoff-live:2011,http://dashif.org/guidelines/dash-if-simple\" \
         mediaPresentationDuration=\"{}\" minBufferTime=\"PT{}S\">",
        duration(total),
        state.segment_secs.min(4)
    );
    let _ = writeln!(out, "  <Period id=\"0\" start=\"PT0S\">");

    // Video: every rung in one set.
    let (num, den) = (state.frame_rate.num, state.frame_rate.den);
    let frame_rate = if den == 1 { num.to_string() } else { format!("{num}/{den}") };
    let max = state.video.first();
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"video\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" \
         startWithSAP=\"1\" frameRate=\"{frame_rate}\" par=\"{}\" maxWidth=\"{}\" maxHeight=\"{}\">",
        max.map(|v| aspect(v.width, v.height)).unwrap_or_else(|| "16:9".into()),
        max.map_or(0, |v| v.width),
        max.map_or(0, |v| v.height),
    );
    for v in &state.video {
        let a = addressing(dir, &v.uri)?;
        let _ = writeln!(
            out,
            "      <Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{}\" width=\"{}\" height=\"{}\" sar=\"1:1\">",
            attr(&v.name),
            attr(&v.codecs),
            v.rates.peak_bps,
            v.width,
            v.height
        );
        segment_template(&mut out, &a, offset, offset, "        ");
        let _ = writeln!(out, "      </Representation>");
    }
    let _ = writeln!(out, "    </AdaptationSet>");

    // Audio: a set per track, the original first.
    let audio_start = (state.audio_offset_secs * TS_HZ).round() as u64;
    for track in &state.audio {
        let a = addressing(dir, &track.uri)?;
        let lang = track.language.map(|l| format!(" lang=\"{}\"", l.tag())).unwrap_or_default();
        let role = if track.original { "main" } else { "dub" };
        let id = track.uri.split('/').next().unwrap_or("audio");
        let _ = writeln!(
            out,
            "    <AdaptationSet id=\"{}\" contentType=\"audio\" mimeType=\"audio/mp4\"{lang} segmentAlignment=\"true\" \
             startWithSAP=\"1\">",
            attr(id)
        );
        let _ = writeln!(out, "      <Label>{}</Label>", attr(&track.name));
        let _ = writeln!(out, "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{role}\"/>");
        let _ = writeln!(
            out,
            "      <Representation id=\"{}\" codecs=\"mp4a.40.2\" bandwidth=\"{}\" audioSamplingRate=\"48000\">",
            attr(id),
            track.rates.peak_bps.max(1)
        );
        let _ = writeln!(
            out,
            "        <AudioChannelConfiguration \
             schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"2\"/>"
        );
        segment_template(&mut out, &a, audio_start, offset, "        ");
        let _ = writeln!(out, "      </Representation>");
        let _ = writeln!(out, "    </AdaptationSet>");
    }

    // Captions: a WebVTT sidecar per language, cue times on the package's clock.
    for track in &state.subtitles {
        let folder = track.uri.rsplit_once('/').map(|(f, _)| f).unwrap_or("");
        let _ = writeln!(
            out,
            "    <AdaptationSet id=\"{}\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"{}\">",
            attr(folder),
            track.language.tag()
        );
        let _ = writeln!(out, "      <Label>{}</Label>", attr(&track.name));
        let _ = writeln!(out, "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>");
        let _ = writeln!(out, "      <Representation id=\"{}\" bandwidth=\"256\">", attr(folder));
        let _ = writeln!(out, "        <BaseURL>{}/{SIDECAR_VTT}</BaseURL>", attr(folder));
        let _ = writeln!(out, "      </Representation>");
        let _ = writeln!(out, "    </AdaptationSet>");
    }

    // Seek previews, as DASH-IF thumbnails: one sprite per "segment".
    if let Some(t) = &state.thumbnails {
        let per_sprite = 100.0 * t.interval_secs;
        let _ = writeln!(
            out,
            "    <AdaptationSet id=\"thumbnails\" contentType=\"image\" mimeType=\"image/jpeg\">"
        );
        let _ = writeln!(
            out,
            "      <SegmentTemplate media=\"thumbs/sprite-$Number%03d$.jpg\" startNumber=\"1\" \
             duration=\"{}\" timescale=\"1000\"/>",
            (per_sprite * 1000.0).round() as u64
        );
        let _ = writeln!(
            out,
            "      <Representation id=\"thumbnails\" bandwidth=\"{}\" width=\"{}\" height=\"{}\">",
            1000,
            t.width * 10,
            t.height * 10
        );
        let _ = writeln!(
            out,
            "        <EssentialProperty schemeIdUri=\"http://dashif.org/thumbnail_tile\" value=\"10x10\"/>"
        );
        let _ = writeln!(out, "      </Representation>");
        let _ = writeln!(out, "    </AdaptationSet>");
    }
    let _ = writeln!(out, "  </Period>");
    let _ = writeln!(out, "</MPD>");
    Ok(out)
}

/// The picture aspect ratio `w:h` in lowest terms.
fn aspect(width: u32, height: u32) -> String {
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let g = gcd(width, height).max(1);
    format!("{}:{}", width / g, height / g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_escaped_and_ratios_reduced() {
        assert_eq!(attr("a\"b<c>&'"), "a&quot;b&lt;c&gt;&amp;&apos;");
        assert_eq!(aspect(1920, 1080), "16:9");
        assert_eq!(aspect(854, 480), "427:240");
        assert_eq!(duration(13.52), "PT13.520S");
    }
}
