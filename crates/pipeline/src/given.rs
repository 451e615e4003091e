//! Subtitles a user brings as a video's transcript (an SRT or WebVTT file from
//! a human captioner, an earlier release, or with `retime` a plain script):
//! read and checked at upload, kept with the video's options, and made the
//! transcript by the `import` stage instead of speech recognition.

use std::path::Path;

use babelcast_core::{Cue, Lang, MediaFacts, SubtitleError, subtitle};
use babelcast_process::Program;
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

    /// The source's own subtitle stream as the transcript: stream `index` if
    /// given, else the first text stream in `language` (unless `auto`), else the
    /// first text stream. Its language is the stream's tag, else `language`.
    pub(crate) async fn embedded(
        ffmpeg: &Program,
        source: &Path,
        facts: &MediaFacts,
        index: Option<u32>,
        language: &str,
        retime: bool,
    ) -> Result<GivenTranscript, IngestError> {
        let listed = || {
            let streams: Vec<String> = facts
                .subtitles
                .iter()
                .map(|s| {
                    format!(
                        "{} ({}{})",
                        s.index,
                        s.codec,
                        s.language.as_deref().map(|l| format!(", {l}")).unwrap_or_default()
                    )
                })
                .collect();
            if streams.is_empty() {
                "it has none".to_owned()
            } else {
                format!("it has {}", streams.join(", "))
            }
        };
        let wanted = Lang::from_metadata(language);
        let stream = match index {
            Some(index) => facts.subtitles.iter().find(|s| s.index == index),
            None => {
                let text = || facts.subtitles.iter().filter(|s| babelcast_media::subtitles::is_text(s));
                text()
                    .find(|s| {
                        wanted.is_some() && s.language.as_deref().and_then(Lang::from_metadata) == wanted
                    })
                    .or_else(|| text().next())
            }
        }
        .ok_or_else(|| {
            IngestError::Options(format!("no such subtitle stream to use as the transcript: {}", listed()))
        })?;
        if !babelcast_media::subtitles::is_text(stream) {
            return Err(IngestError::Options(format!(
                "subtitle stream {} is {}: pictures of text, not text; {}",
                stream.index,
                stream.codec,
                listed()
            )));
        }
        let language = stream
            .language
            .as_deref()
            .filter(|l| Lang::from_metadata(l).is_some())
            .unwrap_or(language)
            .to_owned();
        let (ffmpeg, source_path, stream_index) = (ffmpeg.clone(), source.to_owned(), stream.index);
        let bytes = tokio::task::spawn_blocking(move || {
            babelcast_media::subtitles::extract_srt(&ffmpeg, &source_path, stream_index)
        })
        .await
        .map_err(|e| IngestError::Io(std::io::Error::other(e)))?
        .map_err(|e| IngestError::Options(format!("subtitle stream {stream_index} cannot be read: {e}")))?;
        let name = format!("subtitle stream {} ({})", stream.index, stream.codec);
        GivenTranscript::read(&language, &name, &bytes, retime)
    }
}
