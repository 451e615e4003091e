//! Subtitles a user brings as a video's transcript (an SRT or WebVTT file from
//! a human captioner, an earlier release, or with `retime` a plain script):
//! read and checked at upload, kept with the video's options, and made the
//! transcript by the `import` stage instead of speech recognition.

use babelcast_core::{Cue, Lang, SubtitleError, subtitle};
use serde::{Deserialize, Serialize};

use crate::IngestError;

/// A transcript given as subtitles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GivenTranscript {
    /// The language it is in.
    pub language: Lang,
    /// Where it came from, for the events: the file's name, format and encoding.
    pub source: String,
    /// What it holds.
    pub text: GivenText,
}

/// What given subtitles hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GivenText {
    /// Timed cues, as an SRT or WebVTT file has them.
    Cues(Vec<Cue>),
    /// A plain script: words without times, placed by re-timing.
    Script(String),
}

impl GivenTranscript {
    /// Reads a subtitle file `name` of `bytes` in `language` (a babelcast
    /// language; `auto` is refused: the file's language must be said). A file
    /// that does not parse, or has no cues, is refused with what is wrong; a
    /// plain script only when it is to be re-timed (`retime`), since nothing
    /// else can say where its words are.
    pub fn read(
        language: &str,
        name: &str,
        bytes: &[u8],
        retime: bool,
    ) -> Result<GivenTranscript, IngestError> {
        let language = Lang::from_metadata(language).ok_or_else(|| {
            IngestError::Options(format!(
                "the subtitles' language {language:?} is not one babelcast captions and translates: \
                 say it by its code (en, es, de, ...) as the language option"
            ))
        })?;
        let name = crate::display_name(name);
        let refused = |source| IngestError::Subtitles { name: name.clone(), source };
        let (text, what) = match subtitle::file::read(bytes) {
            Ok(file) => (GivenText::Cues(file.cues), format!("{}, {}", file.format, file.encoding)),
            Err(SubtitleError::Untimed) if retime => {
                let (text, encoding) = subtitle::file::decode(bytes).map_err(refused)?;
                (GivenText::Script(text), format!("plain text, {}", encoding.name()))
            }
            Err(e) => return Err(refused(e)),
        };
        Ok(GivenTranscript { language, source: format!("{name} ({what})"), text })
    }
}
