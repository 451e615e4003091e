//! The domain of babelcast, with no I/O: the words every other crate speaks.
//!
//! - [`ErrorCode`]: the stable machine code and client/server split every error carries.
//! - [`Lang`]: a caption or audio language, as a BCP 47 primary tag with a human name.
//! - [`VideoId`]: the id of one uploaded video, safe to use as a path component.
//! - [`MediaFacts`]: what a media file holds, as ffprobe tells it.
//! - [`Cue`] and [`Millis`]: timed subtitle text.
//! - [`Transcript`] and [`Word`]: what speech recognition heard, stored as JSON.
//! - [`captions`]: the caption rules ([`CaptionProfile`]): timed words into cues
//!   ([`captions::cues_from_words`]) and the rule checker ([`captions::check`]).
//! - [`subtitle`]: WebVTT and SRT writers and readers.

pub mod captions;
mod cue;
mod error;
mod id;
mod lang;
mod media;
pub mod secret;
pub mod subtitle;
mod transcript;

pub use captions::{CaptionProfile, Severity, Violation, ViolationKind};
pub use cue::{Cue, Millis};
pub use error::{ErrorCode, Retry};
pub use id::{InvalidVideoId, VideoId};
pub use lang::{Lang, UnknownLang};
pub use media::{AudioStream, MediaFacts, SubtitleStream, VideoStream};
pub use secret::Secret;
pub use subtitle::{SubtitleError, SubtitleFormat};
pub use transcript::{Transcript, Word};
