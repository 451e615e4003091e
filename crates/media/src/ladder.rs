//! The bitrate ladder: which H.264 renditions to make of a source, planned from its
//! media facts before anything is encoded. Pure, so every rule is unit-tested.
//!
//! Rules:
//! - A rung is named after the **short side** of the picture as a viewer sees it
//!   (after rotation): `720p` is 1280×720 for landscape and 720×1280 for a portrait
//!   phone video. This is how players and people name qualities, whatever the
//!   orientation.
//! - Never upscale: rungs taller than the source are left out. A source smaller than
//!   every rung still gets one rung, at its own size, with the smallest rung's rates.
//! - The aspect ratio is kept; the long side is rounded to an even number (4:2:0
//!   chroma needs even sizes), so 853×480 becomes 854×480.
//! - One frame rate for all rungs: the source's, snapped to the standard rate it
//!   means (29.97 → 30000/1001), capped at 60; variable-frame-rate input is made
//!   constant by the encoder's `fps` filter.
//! - Each rung gets the lowest H.264 level that holds its size, frame rate and
//!   peak bit rate, so the `CODECS` string in the master playlist is exact and
//!   players that check levels accept the stream.

use std::fmt;

use babelcast_core::VideoStream;
use serde::{Deserialize, Serialize};

/// One rung as configured: a quality and its rates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    /// The short side in pixels: 1080, 720, 480.
    pub height: u32,
    /// The average video bit rate the encoder aims at, in kbit/s.
    pub bitrate_kbps: u32,
    /// The cap: the encoder's VBV max rate, in kbit/s.
    pub max_kbps: u32,
}

/// The encoder settings every rung shares, plus the rungs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LadderConfig {
    /// The rungs, any order; they are encoded tallest first.
    pub rungs: Vec<Rung>,
    /// The x264 preset (`ultrafast` … `veryslow`): speed against compression.
    pub preset: String,
    /// Segment length in seconds; also the keyframe interval.
    pub segment_secs: u32,
    /// AAC bit rate of every audio track, in kbit/s.
    pub audio_kbps: u32,
    /// The segments' container: `cmaf` (the default: fragmented MP4, an init
    /// segment and `.m4s` fragments, which DASH players read too) or `ts` (MPEG-TS).
    pub segments: SegmentFormat,
}

/// The container of a package's media segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentFormat {
    /// MPEG-TS segments (`.ts`); what packages made before the choice existed are.
    #[default]
    Ts,
    /// CMAF: fragmented MP4, an init segment per rendition (`EXT-X-MAP`) and
    /// `.m4s` fragments, served as HLS and as DASH (`manifest.mpd`).
    Cmaf,
}

impl SegmentFormat {
    /// What new encodes use unless configured otherwise: CMAF, one set of files
    /// for HLS and DASH players. (`Default` stays TS: it is what a package that
    /// records no format is.)
    pub const NEW_PACKAGES: SegmentFormat = SegmentFormat::Cmaf;
}

impl SegmentFormat {
    /// The media segments' file extension.
    pub fn extension(self) -> &'static str {
        match self {
            SegmentFormat::Ts => "ts",
            SegmentFormat::Cmaf => "m4s",
        }
    }

    /// ffmpeg's HLS muxer's `-hls_segment_type`.
    pub(crate) fn hls_segment_type(self) -> &'static str {
        match self {
            SegmentFormat::Ts => "mpegts",
            SegmentFormat::Cmaf => "fmp4",
        }
    }
}

impl Default for LadderConfig {
    fn default() -> Self {
        LadderConfig {
            rungs: vec![
                Rung { height: 1080, bitrate_kbps: 4500, max_kbps: 5000 },
                Rung { height: 720, bitrate_kbps: 2700, max_kbps: 3000 },
                Rung { height: 480, bitrate_kbps: 1100, max_kbps: 1200 },
            ],
            preset: "veryfast".into(),
            segment_secs: 6,
            audio_kbps: 128,
            segments: SegmentFormat::NEW_PACKAGES,
        }
    }
}

/// The x264 presets, fastest first.
pub const X264_PRESETS: &[&str] = &[
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Why a ladder configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LadderConfigError {
    /// No rungs at all.
    #[error("the ladder has no rungs: configure at least one (height, bitrate_kbps, max_kbps)")]
    NoRungs,
    /// A rung with a zero or odd height, or rates that make no sense.
    #[error(
        "ladder rung {height}p is invalid: the height must be even and at least 144, and 0 < bitrate_kbps <= max_kbps (got {bitrate_kbps} / {max_kbps})"
    )]
    BadRung {
        /// The rung's height.
        height: u32,
        /// Its target rate.
        bitrate_kbps: u32,
        /// Its cap.
        max_kbps: u32,
    },
    /// Two rungs with the same height.
    #[error("ladder rung {0}p appears twice")]
    DuplicateRung(u32),
    /// An x264 preset that does not exist.
    #[error("unknown x264 preset {0:?}: use one of {presets}", presets = X264_PRESETS.join(", "))]
    UnknownPreset(String),
    /// A segment length outside 1–30 s.
    #[error("segment length {0}s is out of range: use 1 to 30 seconds (6 is usual)")]
    BadSegmentLength(u32),
    /// An audio rate outside what AAC-LC stereo does.
    #[error("audio bit rate {0} kbit/s is out of range: use 32 to 512")]
    BadAudioRate(u32),
}

impl LadderConfig {
    /// Checks the configuration once, so a typo is reported before an encode starts.
    pub fn validate(&self) -> Result<(), LadderConfigError> {
        if self.rungs.is_empty() {
            return Err(LadderConfigError::NoRungs);
        }
        for (i, r) in self.rungs.iter().enumerate() {
            if r.height < 144 || r.height % 2 != 0 || r.bitrate_kbps == 0 || r.bitrate_kbps > r.max_kbps {
                return Err(LadderConfigError::BadRung {
                    height: r.height,
                    bitrate_kbps: r.bitrate_kbps,
                    max_kbps: r.max_kbps,
                });
            }
            if self.rungs[..i].iter().any(|o| o.height == r.height) {
                return Err(LadderConfigError::DuplicateRung(r.height));
            }
        }
        if !X264_PRESETS.contains(&self.preset.as_str()) {
            return Err(LadderConfigError::UnknownPreset(self.preset.clone()));
        }
        if !(1..=30).contains(&self.segment_secs) {
            return Err(LadderConfigError::BadSegmentLength(self.segment_secs));
        }
        if !(32..=512).contains(&self.audio_kbps) {
            return Err(LadderConfigError::BadAudioRate(self.audio_kbps));
        }
        Ok(())
    }
}

/// A frame rate as a fraction, as ffmpeg and HLS want it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRate {
    /// Frames…
    pub num: u32,
    /// …per this many seconds.
    pub den: u32,
}

impl FrameRate {
    /// Frames per second.
    pub fn fps(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// The rate babelcast encodes a source of `fps` at: NTSC rates stay exact
    /// fractions, others are rounded to whole frames (VFR averages like 29.4 become
    /// 29), capped at 60; an unknown or absurd rate becomes 30.
    pub fn snap(fps: Option<f64>) -> FrameRate {
        let Some(fps) = fps.filter(|f| f.is_finite() && *f >= 1.0) else {
            return FrameRate { num: 30, den: 1 };
        };
        for ntsc in [24, 30, 60] {
            let exact = f64::from(ntsc * 1000) / 1001.0;
            if (fps - exact).abs() < 0.01 {
                return FrameRate { num: ntsc * 1000, den: 1001 };
            }
        }
        let whole = fps.round().clamp(1.0, 60.0);
        // Clamped to 1..=60 above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        FrameRate { num: whole as u32, den: 1 }
    }
}

impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 { write!(f, "{}", self.num) } else { write!(f, "{}/{}", self.num, self.den) }
    }
}

/// An H.264 level, e.g. 4.0 is `Level(40)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Level(pub u8);

impl Level {
    /// The lowest level that holds `width`×`height` at `fps` with a peak rate of
    /// `max_kbps` in the High profile. `None` if even 5.2 does not.
    pub fn for_stream(width: u32, height: u32, fps: f64, max_kbps: u32) -> Option<Level> {
        // H.264 Table A-1: level, max frame size and max rate in macroblocks, and
        // max bit rate (kbit/s, Baseline/Main; High allows 1.25×).
        const LEVELS: &[(u8, u64, f64, u64)] = &[
            (30, 1_620, 40_500.0, 10_000),
            (31, 3_600, 108_000.0, 14_000),
            (32, 5_120, 216_000.0, 20_000),
            (40, 8_192, 245_760.0, 20_000),
            (41, 8_192, 245_760.0, 50_000),
            (42, 8_704, 522_240.0, 50_000),
            (50, 22_080, 589_824.0, 135_000),
            (51, 36_864, 983_040.0, 240_000),
            (52, 36_864, 2_073_600.0, 240_000),
        ];
        let mbs = u64::from(width.div_ceil(16)) * u64::from(height.div_ceil(16));
        // x264 also checks the frame's width and height against sqrt(8 × MaxFS).
        let side = u64::from(width.div_ceil(16).max(height.div_ceil(16)));
        let mbps = mbs as f64 * fps;
        LEVELS
            .iter()
            .find(|&&(_, max_fs, max_mbps, max_br)| {
                mbs <= max_fs
                    && side * side <= 8 * max_fs
                    && mbps <= max_mbps
                    && u64::from(max_kbps) * 4 <= max_br * 5
            })
            .map(|&(level, ..)| Level(level))
    }

    /// As ffmpeg's `-level:v` takes it: `3.1`.
    pub fn dotted(self) -> String {
        format!("{}.{}", self.0 / 10, self.0 % 10)
    }

    /// The RFC 6381 codec string of High profile at this level: `avc1.64001f`.
    pub fn codecs_high(self) -> String {
        format!("avc1.6400{:02x}", self.0)
    }
}

/// One rendition to encode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRung {
    /// The quality name, `720p`; also its folder in the package.
    pub name: String,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Target video rate, kbit/s.
    pub bitrate_kbps: u32,
    /// Video rate cap, kbit/s.
    pub max_kbps: u32,
    /// Its H.264 level.
    pub level: Level,
}

/// Why a source cannot be laddered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The video's size is zero or unknown.
    #[error("the video has no usable picture size ({width}×{height})")]
    NoSize {
        /// Coded width.
        width: u32,
        /// Coded height.
        height: u32,
    },
    /// Larger than H.264 level 5.2 (8K and up, or very high frame rates).
    #[error(
        "a {width}×{height} rendition at {fps:.2} fps is beyond H.264 level 5.2; configure smaller rungs"
    )]
    TooLarge {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Frame rate.
        fps: f64,
    },
}

/// The ladder for `video`: see the module notes for the rules. Rungs come tallest
/// first; `rate` is the frame rate every rung is encoded at.
pub fn plan(
    video: &VideoStream,
    config: &LadderConfig,
    rate: FrameRate,
) -> Result<Vec<PlannedRung>, PlanError> {
    let (dw, dh) = video.display_size();
    if dw == 0 || dh == 0 {
        return Err(PlanError::NoSize { width: video.width, height: video.height });
    }
    let (short, long) = (dw.min(dh), dw.max(dh));
    let portrait = dh > dw;
    let mut rungs: Vec<&Rung> = config.rungs.iter().collect();
    rungs.sort_by_key(|r| std::cmp::Reverse(r.height));
    let smallest = rungs.last().copied();

    let mut chosen: Vec<(u32, &Rung)> =
        rungs.iter().filter(|r| r.height <= short).map(|r| (r.height, *r)).collect();
    if chosen.is_empty()
        && let Some(smallest) = smallest
    {
        // Smaller than every rung: one rendition at the source's own size.
        chosen.push((even_floor(short).max(2), smallest));
    }

    chosen
        .into_iter()
        .map(|(rung_short, rung)| {
            let rung_long = even_round(f64::from(rung_short) * f64::from(long) / f64::from(short));
            let (width, height) = if portrait { (rung_short, rung_long) } else { (rung_long, rung_short) };
            let level = Level::for_stream(width, height, rate.fps(), rung.max_kbps)
                .ok_or(PlanError::TooLarge { width, height, fps: rate.fps() })?;
            Ok(PlannedRung {
                name: format!("{rung_short}p"),
                width,
                height,
                bitrate_kbps: rung.bitrate_kbps,
                max_kbps: rung.max_kbps,
                level,
            })
        })
        .collect()
}

fn even_round(x: f64) -> u32 {
    // Sizes are far below u32::MAX; at least 2 pixels.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let half = (x / 2.0).round().max(1.0) as u32;
    half * 2
}

fn even_floor(x: u32) -> u32 {
    x - x % 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(width: u32, height: u32, rotation: u16) -> VideoStream {
        VideoStream {
            index: 0,
            codec: "h264".into(),
            width,
            height,
            fps: Some(30.0),
            rotation,
            pix_fmt: None,
            bit_rate: None,
            duration_secs: None,
        }
    }

    fn sizes(v: &VideoStream) -> Vec<(String, u32, u32)> {
        plan(v, &LadderConfig::default(), FrameRate { num: 30, den: 1 })
            .expect("plans")
            .into_iter()
            .map(|r| (r.name, r.width, r.height))
            .collect()
    }

    #[test]
    fn a_1080p_source_gets_the_whole_default_ladder() {
        assert_eq!(
            sizes(&video(1920, 1080, 0)),
            [("1080p".into(), 1920, 1080), ("720p".into(), 1280, 720), ("480p".into(), 854, 480)]
        );
    }

    #[test]
    fn rungs_above_the_source_are_left_out() {
        assert_eq!(sizes(&video(1280, 720, 0)), [("720p".into(), 1280, 720), ("480p".into(), 854, 480)]);
    }

    #[test]
    fn odd_sizes_keep_the_aspect_with_even_dimensions() {
        assert_eq!(sizes(&video(853, 480, 0)), [("480p".into(), 854, 480)]);
        let four_three = sizes(&video(1440, 1080, 0));
        assert_eq!(four_three[0], ("1080p".into(), 1440, 1080));
        assert_eq!(four_three[2], ("480p".into(), 640, 480));
    }

    #[test]
    fn portrait_video_is_named_by_its_short_side() {
        assert_eq!(
            sizes(&video(1080, 1920, 0)),
            [("1080p".into(), 1080, 1920), ("720p".into(), 720, 1280), ("480p".into(), 480, 854)]
        );
    }

    #[test]
    fn rotation_metadata_is_applied_before_planning() {
        // A phone's portrait video is often stored landscape with a 90° display matrix.
        assert_eq!(sizes(&video(1280, 720, 90)), [("720p".into(), 720, 1280), ("480p".into(), 480, 854)]);
    }

    #[test]
    fn a_source_smaller_than_every_rung_gets_one_rung_at_its_own_size() {
        let rungs = plan(&video(321, 241, 0), &LadderConfig::default(), FrameRate { num: 30, den: 1 })
            .expect("plans");
        assert_eq!(rungs.len(), 1);
        assert_eq!((rungs[0].width, rungs[0].height), (320, 240));
        assert_eq!(rungs[0].name, "240p");
        assert_eq!(rungs[0].bitrate_kbps, 1100, "the smallest configured rung's rates");
    }

    #[test]
    fn a_zero_sized_video_is_an_error() {
        assert!(matches!(
            plan(&video(0, 0, 0), &LadderConfig::default(), FrameRate { num: 30, den: 1 }),
            Err(PlanError::NoSize { .. })
        ));
    }

    #[test]
    fn levels_are_the_lowest_that_fit() {
        assert_eq!(Level::for_stream(720, 480, 30.0, 1200), Some(Level(30)));
        // 854×480 is 1620 macroblocks: at 30 fps past level 3.0's 40500 per second.
        assert_eq!(Level::for_stream(854, 480, 30.0, 1200), Some(Level(31)));
        assert_eq!(Level::for_stream(854, 480, 25.0, 1200), Some(Level(30)));
        assert_eq!(Level::for_stream(1280, 720, 30.0, 3000), Some(Level(31)));
        assert_eq!(Level::for_stream(1280, 720, 60.0, 3000), Some(Level(32)));
        assert_eq!(Level::for_stream(1920, 1080, 30.0, 5000), Some(Level(40)));
        assert_eq!(Level::for_stream(1920, 1080, 60.0, 6000), Some(Level(42)));
        // Portrait 1080×1920 is as many macroblocks as landscape, but a taller frame.
        assert_eq!(Level::for_stream(1080, 1920, 30.0, 5000), Some(Level(40)));
        // A cap above level 4.0's 25 Mbit/s (High) needs 4.1.
        assert_eq!(Level::for_stream(1920, 1080, 30.0, 30_000), Some(Level(41)));
        assert_eq!(Level::for_stream(15360, 8640, 30.0, 5000), None);
        assert_eq!(Level(31).codecs_high(), "avc1.64001f");
        assert_eq!(Level(40).dotted(), "4.0");
    }

    #[test]
    fn frame_rates_snap_to_what_they_mean() {
        assert_eq!(FrameRate::snap(Some(29.97)), FrameRate { num: 30000, den: 1001 });
        assert_eq!(FrameRate::snap(Some(23.976)), FrameRate { num: 24000, den: 1001 });
        assert_eq!(FrameRate::snap(Some(25.0)), FrameRate { num: 25, den: 1 });
        assert_eq!(FrameRate::snap(Some(29.4)), FrameRate { num: 29, den: 1 }, "a VFR average");
        assert_eq!(FrameRate::snap(Some(120.0)), FrameRate { num: 60, den: 1 });
        assert_eq!(FrameRate::snap(None), FrameRate { num: 30, den: 1 });
        assert_eq!(FrameRate::snap(Some(f64::NAN)), FrameRate { num: 30, den: 1 });
        assert_eq!(FrameRate { num: 30000, den: 1001 }.to_string(), "30000/1001");
    }

    #[test]
    fn bad_configurations_are_refused_with_the_reason() {
        assert_eq!(LadderConfig::default().validate(), Ok(()));
        let mut c = LadderConfig::default();
        c.rungs.clear();
        assert_eq!(c.validate(), Err(LadderConfigError::NoRungs));
        let mut c = LadderConfig::default();
        c.rungs[1].height = 1080;
        assert_eq!(c.validate(), Err(LadderConfigError::DuplicateRung(1080)));
        let mut c = LadderConfig::default();
        c.rungs[0].bitrate_kbps = 9000;
        assert!(matches!(c.validate(), Err(LadderConfigError::BadRung { height: 1080, .. })));
        let c = LadderConfig { preset: "turbo".into(), ..LadderConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("veryfast"));
        let c = LadderConfig { segment_secs: 0, ..LadderConfig::default() };
        assert_eq!(c.validate(), Err(LadderConfigError::BadSegmentLength(0)));
    }
}
