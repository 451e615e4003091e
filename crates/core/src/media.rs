use serde::{Deserialize, Serialize};

/// What a media file holds: the facts every later stage plans from (the ladder never
/// upscales past the video height, a file without audio skips speech, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaFacts {
    /// The demuxer that read it, e.g. `mov,mp4,m4a,3gp,3g2,mj2` or `matroska,webm`.
    pub container: String,
    /// A human name of the container, e.g. `QuickTime / MOV`.
    pub container_long_name: Option<String>,
    /// Duration in seconds, when the container knows it.
    pub duration_secs: Option<f64>,
    /// File size in bytes.
    pub size_bytes: Option<u64>,
    /// Overall bit rate in bits per second.
    pub bit_rate: Option<u64>,
    /// Video streams, excluding attached pictures (cover art).
    pub video: Vec<VideoStream>,
    /// Audio streams.
    pub audio: Vec<AudioStream>,
    /// Subtitle streams.
    pub subtitles: Vec<SubtitleStream>,
}

/// One video stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoStream {
    /// The stream index in the container.
    pub index: u32,
    /// Codec name, e.g. `h264`.
    pub codec: String,
    /// Coded width in pixels, before rotation.
    pub width: u32,
    /// Coded height in pixels, before rotation.
    pub height: u32,
    /// Average frame rate, frames per second.
    pub fps: Option<f64>,
    /// The rotation the display applies, in degrees counter-clockwise: 0, 90, 180 or
    /// 270 (the container's display matrix, with the sign ffprobe 5+ reports).
    pub rotation: u16,
    /// Pixel format, e.g. `yuv420p`.
    pub pix_fmt: Option<String>,
    /// Stream bit rate in bits per second, when known.
    pub bit_rate: Option<u64>,
    /// Duration of the stream in seconds, when known.
    pub duration_secs: Option<f64>,
}

impl VideoStream {
    /// Width and height as a viewer sees them, after rotation.
    pub fn display_size(&self) -> (u32, u32) {
        if self.rotation % 180 == 90 { (self.height, self.width) } else { (self.width, self.height) }
    }
}

/// One audio stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioStream {
    /// The stream index in the container.
    pub index: u32,
    /// Codec name, e.g. `aac`.
    pub codec: String,
    /// Number of channels.
    pub channels: u32,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// The language tag from the container, as written there (`eng`, `und`), if any.
    pub language: Option<String>,
    /// Stream bit rate in bits per second, when known.
    pub bit_rate: Option<u64>,
    /// Duration of the stream in seconds, when known.
    pub duration_secs: Option<f64>,
}

/// One subtitle stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtitleStream {
    /// The stream index in the container.
    pub index: u32,
    /// Codec name, e.g. `mov_text`, `subrip`, `webvtt`.
    pub codec: String,
    /// The language tag from the container, as written there, if any.
    pub language: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portrait_phone_video_displays_rotated() {
        let v = VideoStream {
            index: 0,
            codec: "h264".into(),
            width: 1920,
            height: 1080,
            fps: Some(30.0),
            rotation: 90,
            pix_fmt: None,
            bit_rate: None,
            duration_secs: None,
        };
        assert_eq!(v.display_size(), (1080, 1920));
        assert_eq!(VideoStream { rotation: 180, ..v }.display_size(), (1920, 1080));
    }
}
