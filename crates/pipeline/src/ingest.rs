//! Taking a video in: the submission's options and their checks, the upload
//! probed by its content and stored under the extension of what it really
//! is, the source's own subtitles read when they are the transcript, and the
//! first job queued.

use super::*;

/// The options of one submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VideoOptions {
    /// The spoken language (a Whisper code such as `en`), or `auto`.
    pub language: String,
    /// Caption files to write: `vtt`, `srt`.
    pub caption_formats: Vec<String>,
    /// Only these configured rungs (by height), e.g. `[720, 480]`; all if absent.
    pub rungs: Option<Vec<u32>>,
    /// Languages to translate the captions into and dub, e.g. `["es", "it"]`.
    pub to: Vec<String>,
    /// Terms to keep and forced translations.
    pub glossary: Glossary,
    /// What happens to the original audio under a dub: `duck` or `replace`.
    pub dub_mode: DubMode,
    /// Wait after transcription until a person approves the transcript.
    pub review: bool,
    /// Wait after translation, before any dub, until a person approves the
    /// translations.
    pub review_translations: bool,
    /// Subtitles given as the transcript: speech recognition is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<GivenTranscript>,
    /// Move the given subtitles' cues to where their words are spoken: the
    /// speech is recognised and the text matched to it.
    #[serde(default)]
    pub retime: bool,
    /// Human translations given with the upload, one per target language: each
    /// is that language's track (and what its dub speaks) instead of a machine
    /// translation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub translations: Vec<GivenTranscript>,
    /// `embedded`: the source's own subtitle stream is the transcript (read at
    /// upload into [`VideoOptions::transcript`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_from: Option<String>,
    /// Which subtitle stream, by its index in the container, with
    /// `transcript_from: embedded`; else the first text stream (in the
    /// `language`, when one is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_stream: Option<u32>,
}

impl VideoOptions {
    /// Whether a human translation into `lang` came with the upload.
    pub fn translation_given(&self, lang: Lang) -> bool {
        self.translations.iter().any(|t| t.language == lang)
    }
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            language: "auto".into(),
            caption_formats: vec!["vtt".into(), "srt".into()],
            rungs: None,
            to: Vec::new(),
            glossary: Glossary::default(),
            dub_mode: DubMode::default(),
            review: false,
            review_translations: false,
            transcript: None,
            retime: false,
            translations: Vec::new(),
            transcript_from: None,
            transcript_stream: None,
        }
    }
}

impl VideoOptions {
    /// The target languages (checked at ingest, so every tag parses).
    pub fn targets(&self) -> Vec<Lang> {
        self.to.iter().filter_map(|t| t.parse().ok()).collect()
    }

    /// The caption formats to write: the ones asked for, and always WebVTT, which
    /// the package and the dubs are made from.
    pub fn formats(&self) -> Vec<String> {
        let mut formats = self.caption_formats.clone();
        if !formats.iter().any(|f| f == "vtt") {
            formats.push("vtt".into());
        }
        formats
    }
}

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The upload is not usable media.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// It has no picture.
    #[error("the upload has no video stream: babelcast makes video packages")]
    NoVideo,
    /// An option is invalid.
    #[error("invalid option: {0}")]
    Options(String),
    /// The subtitles given for the transcript cannot be read.
    #[error("the subtitles {name}: {source}")]
    Subtitles {
        /// The file's name.
        name: String,
        /// Why.
        source: babelcast_core::SubtitleError,
    },
    /// Storage failed.
    #[error("cannot store the upload: {0}")]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ErrorCode for IngestError {
    fn code(&self) -> &'static str {
        match self {
            IngestError::Probe(e) => e.code(),
            IngestError::NoVideo => "no_video_stream",
            IngestError::Options(_) => "invalid_options",
            IngestError::Subtitles { source, .. } => source.code(),
            IngestError::Io(_) => "storage",
            IngestError::Db(e) => e.code(),
        }
    }

    fn is_client_error(&self) -> bool {
        match self {
            IngestError::Probe(e) => e.is_client_error(),
            IngestError::NoVideo | IngestError::Options(_) | IngestError::Subtitles { .. } => true,
            IngestError::Io(_) | IngestError::Db(_) => false,
        }
    }
}

/// The extension a source is stored under, from the demuxer that read it.
fn extension_for(container: &str) -> &'static str {
    let first = container.split(',').next().unwrap_or_default();
    match first {
        "mov" => "mp4",
        "matroska" => "mkv",
        "avi" => "avi",
        "mpegts" => "ts",
        "flv" => "flv",
        "asf" => "wmv",
        "ogg" => "ogv",
        "mpeg" => "mpg",
        _ => "media",
    }
}

/// A new video id: 32 hex digits from the operating system's random generator
/// (ids are in links: the next ones must not be guessable from earlier ones).
fn new_video_id() -> std::io::Result<VideoId> {
    let hex = babelcast_core::secret::random_hex(16).map_err(std::io::Error::other)?;
    Ok(hex.parse().unwrap_or_else(|_| unreachable!("hex digits are a valid id")))
}

impl Pipeline {
    /// Checks submission options before anything is stored.
    pub fn check_options(&self, options: &VideoOptions) -> Result<(), IngestError> {
        if options.language != "auto"
            && !babelcast_speech::vocab::LANGUAGES.contains(&options.language.as_str())
        {
            return Err(IngestError::Options(format!(
                "unknown language {:?}: use auto or a language Whisper knows, by its code (en, es, de, ...)",
                options.language
            )));
        }
        for format in &options.caption_formats {
            if format != "vtt" && format != "srt" {
                return Err(IngestError::Options(format!(
                    "unknown caption format {format:?}: use vtt or srt"
                )));
            }
        }
        options.glossary.validate().map_err(|e| IngestError::Options(e.to_string()))?;
        match options.transcript_from.as_deref() {
            None | Some("embedded") => {}
            Some(other) => {
                return Err(IngestError::Options(format!(
                    "transcript_from {other:?}: the one source is \"embedded\" (the video's own subtitle stream)"
                )));
            }
        }
        if options.transcript_from.is_some() && options.transcript.is_some() {
            return Err(IngestError::Options(
                "give a transcript file or transcript_from: embedded, not both".into(),
            ));
        }
        if options.retime && options.transcript.is_none() && options.transcript_from.is_none() {
            return Err(IngestError::Options(
                "retime moves given subtitles to the speech: give them as the transcript".into(),
            ));
        }
        if let Some(GivenTranscript { text: GivenText::Script(_), .. }) = &options.transcript
            && !options.retime
        {
            return Err(IngestError::Options(
                "a plain script has no times: ask for retime to place it on the speech".into(),
            ));
        }
        let source = match &options.transcript {
            Some(given) => {
                if options.language != "auto"
                    && Lang::from_metadata(&options.language) != Some(given.language)
                {
                    return Err(IngestError::Options(format!(
                        "the subtitles are in {} but the language option says {:?}",
                        given.language, options.language
                    )));
                }
                Some(given.language)
            }
            None => Lang::from_metadata(&options.language),
        };
        let translators = self.translators();
        let mut targets: Vec<Lang> = Vec::new();
        for tag in &options.to {
            let lang: Lang =
                tag.parse().map_err(|e: babelcast_core::UnknownLang| IngestError::Options(e.to_string()))?;
            if targets.contains(&lang) {
                return Err(IngestError::Options(format!("target language {lang} is listed twice")));
            }
            if let Some(from) = source {
                if from == lang {
                    return Err(IngestError::Options(format!("{lang} is the source language")));
                }
                if translators.engine(from, lang).is_none() && !options.translation_given(lang) {
                    let reachable: Vec<&str> = translators.targets(from).iter().map(|l| l.tag()).collect();
                    return Err(IngestError::Options(format!(
                        "cannot translate {from} to {lang} with the installed Apertium pairs or CTranslate2 models; from {from} these can be reached: {}",
                        if reachable.is_empty() { "none".to_owned() } else { reachable.join(", ") }
                    )));
                }
            }
            targets.push(lang);
        }
        for given in &options.translations {
            if !targets.contains(&given.language) {
                return Err(IngestError::Options(format!(
                    "a translation is given for {}, which is not a target: add it to \"to\"",
                    given.language
                )));
            }
            if matches!(given.text, GivenText::Script(_)) {
                return Err(IngestError::Options(format!(
                    "the {} translation has no cue times: give it as SRT or WebVTT",
                    given.language
                )));
            }
            if options.translations.iter().filter(|t| t.language == given.language).count() > 1 {
                return Err(IngestError::Options(format!(
                    "two translations are given for {}",
                    given.language
                )));
            }
        }
        if let Some(rungs) = &options.rungs {
            let known: Vec<u32> = self.config.ladder.rungs.iter().map(|r| r.height).collect();
            if rungs.is_empty() {
                return Err(IngestError::Options("rungs is empty: leave it out for the whole ladder".into()));
            }
            if let Some(bad) = rungs.iter().find(|h| !known.contains(h)) {
                return Err(IngestError::Options(format!(
                    "no configured rung {bad}p: configured are {known:?}"
                )));
            }
        }
        Ok(())
    }

    /// Takes in a file already inside the data folder (an upload staged in
    /// [`Pipeline::uploads_dir`]), with its SHA-256: probes its content, moves it to
    /// `videos/{id}/source.{ext}` and queues the pipeline. On error the file is
    /// removed.
    pub async fn ingest_staged(
        &self,
        staged: &Path,
        source_name: &str,
        sha256: &str,
        options: VideoOptions,
    ) -> Result<VideoId, IngestError> {
        let result = self.ingest_inner(staged, source_name, sha256, options).await;
        if result.is_err() {
            let _ = std::fs::remove_file(staged);
        }
        result
    }

    async fn ingest_inner(
        &self,
        staged: &Path,
        source_name: &str,
        sha256: &str,
        options: VideoOptions,
    ) -> Result<VideoId, IngestError> {
        self.check_options(&options)?;
        let prober = Prober::new(self.config.ffprobe.clone(), self.config.probe_timeout);
        let facts = prober.probe(staged).await?;
        if facts.video.is_empty() {
            return Err(IngestError::NoVideo);
        }
        let mut options = options;
        if options.transcript_from.is_some() {
            let given = GivenTranscript::embedded(
                &self.config.ffmpeg,
                staged,
                &facts,
                options.transcript_stream,
                &options.language,
                options.retime,
            )
            .await?;
            options.transcript_from = None;
            options.transcript = Some(given);
            self.check_options(&options)?;
        }
        let id = new_video_id()?;
        let ext = extension_for(&facts.container);
        let layout = self.layout();
        let target = layout.source(&id, ext);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::rename(staged, &target)?;
        if let Err(e) = self.store_file(&target).await {
            let _ = std::fs::remove_file(&target);
            return Err(IngestError::Io(std::io::Error::other(e)));
        }
        if self.remote.is_some() {
            // In the bucket now; the workers fetch it from there, and an API node
            // keeps no media.
            let _ = std::fs::remove_file(&target);
        }
        let video = NewVideo {
            id: id.to_string(),
            source_name: display_name(source_name),
            source_sha256: sha256.to_owned(),
            source_ext: ext.to_owned(),
            options: serde_json::to_value(&options).map_err(|e| IngestError::Options(e.to_string()))?,
        };
        self.db.create_video(&video, &graph::Stage::FIRST.to_string(), self.config.max_attempts).await?;
        tracing::info!(video = %id, source = %video.source_name, "ingested");
        Ok(id)
    }

    /// Copies a local file into the uploads folder (hashing it on the way) and
    /// ingests it.
    pub async fn ingest_path(&self, path: &Path, options: VideoOptions) -> Result<VideoId, IngestError> {
        let name =
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "upload".into());
        let uploads = self.uploads_dir();
        let path = path.to_owned();
        let (staged, sha) = tokio::task::spawn_blocking(move || -> std::io::Result<(PathBuf, String)> {
            let mut input = std::fs::File::open(&path)?;
            let mut tmp = tempfile::Builder::new().prefix(".upload-").tempfile_in(&uploads)?;
            let mut hasher = HashingWriter { inner: tmp.as_file_mut(), hasher: Sha256::new() };
            std::io::copy(&mut input, &mut hasher)?;
            let sha = hex::encode(hasher.hasher.finalize());
            let (_, staged) = tmp.keep().map_err(|e| e.error)?;
            Ok((staged, sha))
        })
        .await
        .map_err(|e| IngestError::Io(std::io::Error::other(e)))??;
        self.ingest_staged(&staged, &name, &sha, options).await
    }
}

/// A writer that hashes what passes through.
struct HashingWriter<'a> {
    inner: &'a mut std::fs::File,
    hasher: Sha256,
}

impl std::io::Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The file name to show for an upload: its last path component, control
/// characters removed, at most 200 characters. Display only; never a path.
pub fn display_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = last.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() || clean == "." || clean == ".." { "upload".into() } else { clean }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_keep_only_the_last_component() {
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("/abs/path/talk.mp4"), "talk.mp4");
        assert_eq!(display_name("C:\\x\\talk.mp4"), "talk.mp4");
        assert_eq!(display_name(".."), "upload");
        assert_eq!(display_name("a\u{7}b.mp4"), "ab.mp4");
    }

    #[test]
    fn sources_are_stored_by_what_they_are() {
        assert_eq!(extension_for("mov,mp4,m4a,3gp,3g2,mj2"), "mp4");
        assert_eq!(extension_for("matroska,webm"), "mkv");
        assert_eq!(extension_for("avi"), "avi");
    }
}
