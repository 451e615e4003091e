//! Media through ffprobe and ffmpeg: what a file holds ([`probe`]), its audio as
//! streamed 16 kHz mono samples for speech recognition ([`proxy`]) and, later, the
//! encodes and packaging that turn it into a stream.
//!
//! Running a tool and reading its output are kept apart: [`ffprobe`] is a pure parser,
//! tested against recorded ffprobe output named after the ffprobe version, and
//! [`probe`] runs the program through `babelcast-process`.

pub mod ffprobe;
pub mod probe;
pub mod proxy;

pub use probe::{ProbeError, Prober};
pub use proxy::{AudioDecoder, AudioProxy, ProxyError};
