//! The poster and the seek previews of a package.
//!
//! Seek previews are small frames tiled into sprite images (`thumbs/sprite-001.jpg`,
//! ten by ten) with a WebVTT track that maps each stretch of the timeline to its
//! tile (`sprite-001.jpg#xywh=160,0,160,90`), the form players (Video.js, Shaka,
//! JW Player, babelcast's watch page) read. They come out of the ladder's own decode:
//! one more branch of its filter graph (one frame every few seconds, scaled to 160
//! pixels wide), so they cost no second decode of the source. The poster is one frame
//! a little way in (the first is often black), taken by a separate short ffmpeg run
//! that seeks there: cheaper than carrying a full-size branch through the encode.

use std::fmt::Write as _;
use std::path::Path;

use babelcast_core::Millis;
use babelcast_process::Program;
use serde::{Deserialize, Serialize};

use crate::hls::{PackageError, encode_error, io_error};
use crate::run::{self, QUIET_WITH_PROGRESS};

/// The sprites' folder in the package.
pub const THUMBS_DIR: &str = "thumbs";
/// The thumbnails track in [`THUMBS_DIR`].
pub const THUMBS_VTT: &str = "thumbnails.vtt";
/// The poster in the package folder.
pub const POSTER: &str = "poster.jpg";
/// A preview's width in pixels; its height follows the picture.
const THUMB_WIDTH: u32 = 160;
/// Tiles per sprite row and column.
const COLUMNS: u32 = 10;
const ROWS: u32 = 10;
/// The poster's largest width.
const POSTER_WIDTH: u32 = 1280;

/// A package's seek previews, as recorded in its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thumbnails {
    /// The WebVTT track, relative to the package folder.
    pub uri: String,
    /// Seconds of video per preview.
    pub interval_secs: f64,
    /// A preview's size in pixels.
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// How many previews there are.
    pub count: usize,
    /// The sprite images, relative to the package folder, in order.
    pub sprites: Vec<String>,
}

/// What the encode is asked to make: one preview every `interval_secs`, of
/// `width` x `height`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ThumbPlan {
    pub interval_secs: f64,
    pub width: u32,
    pub height: u32,
}

impl ThumbPlan {
    /// About a hundred previews for a short video, one every 10 s at most for a
    /// long one (720 for two hours: seven sprites of a hundred).
    pub(crate) fn new(duration_secs: f64, width: u32, height: u32) -> ThumbPlan {
        let interval_secs = match duration_secs {
            d if d <= 100.0 => 1.0,
            d if d <= 600.0 => 2.0,
            d if d <= 3600.0 => 5.0,
            _ => 10.0,
        };
        // Even, as the JPEG encoder's chroma subsampling wants.
        let h =
            (f64::from(THUMB_WIDTH) * f64::from(height) / f64::from(width.max(1)) / 2.0).round() as u32 * 2;
        ThumbPlan { interval_secs, width: THUMB_WIDTH, height: h.max(2) }
    }

    /// The filter chain from the ladder's (frame-rate normalised) picture to the
    /// sprites.
    pub(crate) fn filter(&self) -> String {
        format!(
            "fps=fps=1/{},scale={}:{}:flags=bicubic,setsar=1,tile={COLUMNS}x{ROWS}",
            self.interval_secs, self.width, self.height
        )
    }

    /// The sprites' file pattern for ffmpeg's image muxer, under the package folder.
    pub(crate) fn sprite_pattern(dir: &Path) -> std::path::PathBuf {
        dir.join(THUMBS_DIR).join("sprite-%03d.jpg")
    }

    /// Writes the WebVTT track over the sprites the encode wrote into `dir`, and
    /// returns what the package records.
    pub(crate) fn finish(&self, dir: &Path, duration_secs: f64) -> Result<Thumbnails, PackageError> {
        let folder = dir.join(THUMBS_DIR);
        let mut sprites: Vec<String> = std::fs::read_dir(&folder)
            .map_err(io_error(&folder))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("sprite-") && n.ends_with(".jpg"))
            .collect();
        sprites.sort();
        // One preview per interval from 0 (the `fps` filter's frames), no more
        // than the sprites hold.
        let expected = (duration_secs / self.interval_secs).ceil().max(1.0) as usize;
        let count = expected.min(sprites.len() * (COLUMNS * ROWS) as usize);
        let vtt = self.track(&sprites, count, duration_secs);
        let track = folder.join(THUMBS_VTT);
        babelcast_store::write_atomic(&track, vtt.as_bytes()).map_err(io_error(&track))?;
        Ok(Thumbnails {
            uri: format!("{THUMBS_DIR}/{THUMBS_VTT}"),
            interval_secs: self.interval_secs,
            width: self.width,
            height: self.height,
            count,
            sprites: sprites.iter().map(|s| format!("{THUMBS_DIR}/{s}")).collect(),
        })
    }

    /// The WebVTT thumbnails track: cue `k` covers `[k, k + 1)` intervals and names
    /// its tile in its sprite (relative to the track).
    fn track(&self, sprites: &[String], count: usize, duration_secs: f64) -> String {
        let per_sprite = (COLUMNS * ROWS) as usize;
        let mut out = String::from("WEBVTT\n");
        for k in 0..count {
            let start = k as f64 * self.interval_secs;
            let end = ((k + 1) as f64 * self.interval_secs).min(duration_secs.max(start + 0.001));
            let tile = (k % per_sprite) as u32;
            let (x, y) = ((tile % COLUMNS) * self.width, (tile / COLUMNS) * self.height);
            let _ = write!(
                out,
                "\n{} --> {}\n{}#xywh={x},{y},{},{}\n",
                Millis::from_secs_f64(start),
                Millis::from_secs_f64(end),
                sprites[k / per_sprite],
                self.width,
                self.height
            );
        }
        out
    }
}

/// Writes the poster: the frame at a tenth of the video (at most 10 s in), at most
/// [`POSTER_WIDTH`] wide.
pub(crate) fn write_poster(
    ffmpeg: &Program,
    source: &Path,
    duration_secs: f64,
    out: &Path,
) -> Result<(), PackageError> {
    let at = if duration_secs.is_finite() { (duration_secs * 0.1).clamp(0.0, 10.0) } else { 0.0 };
    let call = ffmpeg.call().args(QUIET_WITH_PROGRESS).args(["-ss", &format!("{at:.3}")]);
    let call = run::untrusted_input(call, source).map_err(io_error(source))?.args([
        "-map",
        "0:v:0",
        "-frames:v",
        "1",
        "-vf",
        &format!("scale='min({POSTER_WIDTH},iw)':-2:flags=bicubic,setsar=1"),
        "-q:v",
        "3",
        "-f",
        "image2",
    ]);
    run::with_progress(call.arg(out), Some(1.0), &mut |_| {}).map_err(|e| encode_error(source, e))?;
    if !out.is_file() {
        return Err(PackageError::Output {
            path: out.to_owned(),
            reason: "ffmpeg wrote no poster frame".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_grows_with_the_video_and_the_height_follows_the_picture() {
        assert_eq!(ThumbPlan::new(60.0, 1280, 720), ThumbPlan { interval_secs: 1.0, width: 160, height: 90 });
        assert_eq!(ThumbPlan::new(300.0, 640, 480).height, 120);
        assert_eq!(ThumbPlan::new(7200.0, 1920, 1080).interval_secs, 10.0);
        assert_eq!(ThumbPlan::new(1800.0, 1080, 1920).height, 284, "portrait");
    }

    #[test]
    fn each_cue_names_its_tile_row_by_row_and_sprite_by_sprite() {
        let plan = ThumbPlan { interval_secs: 2.0, width: 160, height: 90 };
        let sprites = vec!["sprite-001.jpg".to_owned(), "sprite-002.jpg".to_owned()];
        let vtt = plan.track(&sprites, 103, 205.0);
        let cues: Vec<&str> = vtt.split("\n\n").skip(1).collect();
        assert_eq!(cues.len(), 103);
        assert_eq!(cues[0], "00:00:00.000 --> 00:00:02.000\nsprite-001.jpg#xywh=0,0,160,90");
        assert_eq!(cues[11], "00:00:22.000 --> 00:00:24.000\nsprite-001.jpg#xywh=160,90,160,90");
        assert_eq!(cues[100], "00:03:20.000 --> 00:03:22.000\nsprite-002.jpg#xywh=0,0,160,90");
        assert_eq!(
            cues[102].lines().next(),
            Some("00:03:24.000 --> 00:03:25.000"),
            "the last ends with the video"
        );
    }
}
