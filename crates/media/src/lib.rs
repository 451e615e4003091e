//! Media through ffprobe and ffmpeg: what a file holds ([`probe`]), its audio as
//! streamed 16 kHz mono samples for speech recognition ([`proxy`]), the bitrate
//! ladder ([`ladder`]), the HLS package with its caption and audio tracks ([`hls`]),
//! its poster and seek previews ([`thumbnails`]), the DASH manifest of a CMAF package
//! ([`dash`]) and the per-language MP4 ([`mp4`]).
//!
//! Running a tool and reading its output are kept apart: [`ffprobe`] is a pure parser,
//! tested against recorded ffprobe output named after the ffprobe version, and
//! [`probe`] runs the program through `babelcast-process`.

pub mod adts;
mod boxes;
pub mod dash;
pub mod ffprobe;
mod fragments;
pub mod hls;
pub mod ladder;
mod m4a;
pub mod mix;
mod mov_text;
pub mod mp4;
mod mp4_edit;
pub mod probe;
pub mod proxy;
mod run;
pub mod splice;
pub mod subtitles;
pub mod thumbnails;

pub use hls::{Package, PackageError, Packager, Repackaged};
pub use ladder::LadderConfig;
pub use mix::{DubMode, Level, dub_track};
pub use mp4::{Mp4Audio, Mp4Spec, Mp4Writer};
pub use probe::{ProbeError, Prober};
pub use proxy::{AudioDecoder, AudioProxy, ProxyError};
pub use run::time_limit;
pub use splice::splice_dub_track;
pub use thumbnails::Thumbnails;
