//! `/v1/videos`: uploads (streamed to storage, checked by probing), a video's
//! status and its event stream.

use super::*;

/// The most of a refused upload's remaining body read before the reply.
pub(crate) const DRAIN_LIMIT: u64 = 16 << 20;

/// `202 Accepted` for an upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// The new video's id.
    pub id: String,
    /// Where its state is.
    pub status_url: String,
}

/// A video's state and outputs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VideoStatus {
    /// Its id.
    pub id: String,
    /// `processing`, `completed`, `completed_with_warnings` or `failed`.
    pub state: String,
    /// The uploaded file's name.
    pub source_name: String,
    /// SHA-256 of the upload.
    pub source_sha256: String,
    /// Each stage.
    pub stages: Vec<StageStatus>,
    /// What was left out and why.
    pub warnings: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Outputs that exist, as paths relative to the data folder.
    pub outputs: Outputs,
    /// The player page, once playable: a fresh viewer link (`server.link_ttl_secs`).
    pub watch_url: Option<String>,
    /// Each target language translated so far.
    pub translations: Vec<TranslationStatus>,
    /// Every output there is to download, with its URL.
    pub downloads: Vec<Download>,
    /// Each dub's quality figures.
    pub dubs: Vec<DubStatus>,
}

/// One translated language of a video.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TranslationStatus {
    /// The target language, e.g. `es`.
    pub language: String,
    /// How many cues it has.
    pub cues: usize,
    /// How many cues have words the engine left untranslated (to review).
    pub untranslated: usize,
    /// Whether a reviewer changed it.
    pub edited: bool,
}

/// One stage of a video.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StageStatus {
    /// `probe`, `encode`, `transcribe`, `captions`.
    pub stage: String,
    /// `queued`, `running`, `done` or `dead`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error.
    pub error: Option<String>,
    /// While it runs: how far it is, 0 to 1 (its latest progress report).
    pub progress: Option<f64>,
}

/// One dubbed language's quality figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DubStatus {
    /// The language, e.g. `es`.
    pub language: String,
    /// `fit_without_speedup` (share of cues), `max_speed`, `overflowing`, `cut`.
    #[schema(value_type = Object)]
    pub qa: serde_json::Value,
}

/// A video's outputs.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Outputs {
    /// The master playlist.
    pub master: Option<String>,
    /// Caption files.
    pub captions: Vec<String>,
    /// The transcript JSON.
    pub transcript: Option<String>,
    /// The poster image.
    pub poster: Option<String>,
    /// The seek previews' WebVTT thumbnails track (its cues point into sprite
    /// images beside it with `#xywh=`).
    pub thumbnails: Option<String>,
}

/// The `options` part of an upload (documentation of
/// `babelcast_pipeline::VideoOptions`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = VideoOptions)]
#[allow(dead_code)]
pub(crate) struct VideoOptionsDoc {
    /// The spoken language: `auto` (default) or a Whisper code such as `en`.
    language: String,
    /// Caption files to write: `vtt`, `srt` (default both).
    caption_formats: Vec<String>,
    /// Only these configured rungs, by height, e.g. `[720, 480]`; all if absent.
    rungs: Option<Vec<u32>>,
    /// Languages to translate into and dub, e.g. `["es", "it"]`.
    to: Vec<String>,
    /// `{"keep": ["Term"], "force": {"source": "target"}}`.
    glossary: serde_json::Value,
    /// `duck` (default: the original lowered under the dub) or `replace`.
    dub_mode: String,
    /// Wait after transcription until the transcript is approved (default false).
    review: bool,
    /// Wait after translation, before dubbing, until the translations are
    /// approved (default false).
    review_translations: bool,
    /// With a `transcript` part: move its cues to where their words are spoken
    /// (the speech is recognised and the text matched to it); a plain script
    /// is then accepted too (default false).
    retime: bool,
    /// `embedded`: the video's own subtitle stream is the transcript (the
    /// first text stream, in `language` when one is given).
    transcript_from: Option<String>,
    /// With `transcript_from`: which subtitle stream, by its index in the
    /// container.
    transcript_stream: Option<u32>,
}

/// The largest subtitle file an upload may give as its transcript.
const MAX_SUBTITLE_BYTES: u64 = 16 << 20;

/// The video file extensions uploads may be named with.
pub const VIDEO_EXTENSIONS: &[&str] = &["mp4", "mov", "avi", "mkv", "webm"];

/// Upload a video.
///
/// `multipart/form-data` with a `file` part (the video, streamed to storage), an
/// optional `options` part (JSON, see `VideoOptions`) and an optional
/// `transcript` part: an SRT or WebVTT file (UTF-8, UTF-16 or a legacy encoding
/// such as Windows-1252) in the language the `language` option names, used as
/// the transcript instead of speech recognition; with `"retime": true` its cues
/// are moved to where their words are spoken, and a plain text script is
/// accepted too. A transcript that cannot be read is refused with 400 and what
/// is wrong in it. A `translation-{lang}` part (e.g. `translation-es`, SRT or
/// WebVTT) is a human translation for that target: its track and what its dub
/// speaks, instead of a machine translation.
#[utoipa::path(post, path = "/v1/videos", tag = "videos",
    responses(
        (status = 202, description = "Accepted; processing has started", body = Accepted),
        (status = 400, description = "Bad form, options, or an upload cut off", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 413, description = "Larger than the configured limit", body = ErrorBody),
        (status = 415, description = "Not a video file name", body = ErrorBody),
        (status = 422, description = "Not a usable video", body = ErrorBody)))]
pub(crate) async fn upload(State(state): State<AppState>, mut form: Multipart) -> Result<Response, ApiError> {
    let pipeline = &state.pipeline;
    let mut options = VideoOptions::default();
    let mut stored: Option<(tempfile::TempPath, String, String)> = None;
    let mut subtitles: Option<(String, Vec<u8>)> = None;
    let mut translations: Vec<(String, String, Vec<u8>)> = Vec::new();
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_upload", m);
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(bad(format!("the upload could not be read (cut off?): {e}"))),
        };
        match field.name() {
            Some("options") => {
                let text = field.text().await.map_err(|e| bad(format!("options: {e}")))?;
                options = serde_json::from_str(&text).map_err(|e| {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_options", format!("options: {e}"))
                })?;
            }
            Some(part) if part == "transcript" || part.starts_with("translation-") => {
                let part = part.to_owned();
                let name = field.file_name().unwrap_or(&part).to_owned();
                let bytes = field.bytes().await.map_err(|e| bad(format!("{part}: {e}")))?;
                if bytes.len() as u64 > MAX_SUBTITLE_BYTES {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        format!(
                            "{part} is over {} MB: a subtitle file is far smaller",
                            MAX_SUBTITLE_BYTES >> 20
                        ),
                    ));
                }
                match part.strip_prefix("translation-") {
                    Some(lang) => translations.push((lang.to_owned(), name, bytes.to_vec())),
                    None => subtitles = Some((name, bytes.to_vec())),
                }
            }
            Some("file") => {
                let name = babelcast_pipeline::display_name(field.file_name().unwrap_or("upload"));
                let ext =
                    Path::new(&name).extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
                if !VIDEO_EXTENSIONS.contains(&ext.as_str()) {
                    return Err(ApiError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported_file_name",
                        format!("{name:?}: upload a video named .{}", VIDEO_EXTENSIONS.join(", .")),
                    ));
                }
                let (path, sha) =
                    receive(field, &pipeline.uploads_dir(), state.config.max_upload_bytes).await?;
                stored = Some((path, name, sha));
            }
            _ => {}
        }
    }
    let Some((path, name, sha)) = stored else {
        return Err(bad("no `file` part in the form".into()));
    };
    if let Some((file_name, bytes)) = subtitles {
        options.transcript = Some(babelcast_pipeline::GivenTranscript::read(
            &options.language,
            &file_name,
            &bytes,
            options.retime,
        )?);
    }
    for (lang, file_name, bytes) in translations {
        options
            .translations
            .push(babelcast_pipeline::GivenTranscript::read(&lang, &file_name, &bytes, false)?);
    }
    pipeline.check_options(&options)?;
    // Ingest renames the file into the video's folder; it is ours from here on.
    let staged = path.keep().map_err(ApiError::internal)?;
    let id = pipeline.ingest_staged(&staged, &name, &sha, options).await?;
    let body = Accepted { id: id.to_string(), status_url: format!("/v1/videos/{id}") };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Streams one multipart field to a temporary file in `dir`, hashing it, up to
/// `limit` bytes. The file is removed if anything goes wrong.
pub(crate) async fn receive(
    mut field: axum::extract::multipart::Field<'_>,
    dir: &Path,
    limit: u64,
) -> Result<(tempfile::TempPath, String), ApiError> {
    let tmp = tempfile::Builder::new().prefix(".upload-").tempfile_in(dir).map_err(ApiError::internal)?;
    let (file, path) = tmp.into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "upload_incomplete",
                    format!("the upload was cut off after {size} bytes: {e}"),
                ));
            }
        };
        size += chunk.len() as u64;
        if size > limit {
            // Read (and drop) a bounded rest of the body, so a client that sends it
            // all before reading the reply still gets this answer rather than a
            // reset connection.
            let mut drained: u64 = 0;
            while let Ok(Some(chunk)) = field.chunk().await {
                drained += chunk.len() as u64;
                if drained > DRAIN_LIMIT {
                    break;
                }
            }
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "upload_too_large",
                format!("the upload is larger than the limit of {limit} bytes (server.max_upload_bytes)"),
            ));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    file.flush().await.map_err(ApiError::internal)?;
    file.sync_all().await.map_err(ApiError::internal)?;
    Ok((path, hex::encode(hasher.finalize())))
}

/// A video's state, stages, warnings and outputs.
#[utoipa::path(get, path = "/v1/videos/{id}", tag = "videos",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, body = VideoStatus), (status = 404, body = ErrorBody)))]
pub(crate) async fn video_status(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<VideoStatus>, ApiError> {
    let id = parse_id(&id)?;
    let db = state.pipeline.db();
    let video = db.video(id.as_str()).await?.ok_or_else(|| ApiError::not_found("such video"))?;
    let jobs = db.jobs(id.as_str()).await?;
    let events = db.events(id.as_str(), 0).await?;
    let latest = |kind: &str, stage: &str| {
        events
            .iter()
            .rev()
            .find(|e| e.kind == kind && e.stage.as_deref() == Some(stage))
            .and_then(|e| e.data.clone())
    };
    let mut dubs: Vec<DubStatus> = jobs
        .iter()
        .filter_map(|j| {
            let language = j.stage.strip_prefix("dub-")?.to_owned();
            Some(DubStatus { language, qa: latest("dub_qa", &j.stage)? })
        })
        .collect();
    dubs.sort_by(|a, b| a.language.cmp(&b.language));
    let layout = state.pipeline.layout();
    let rel = |p: PathBuf| p.strip_prefix(layout.root()).map(|p| p.to_string_lossy().into_owned()).ok();
    let master = layout.master_playlist(&id);
    let pipeline = &state.pipeline;
    let hls = layout.hls_dir(&id);
    let (poster, thumbnails) = (
        hls.join(babelcast_media::thumbnails::POSTER),
        hls.join(babelcast_media::thumbnails::THUMBS_DIR).join(babelcast_media::thumbnails::THUMBS_VTT),
    );
    let mut outputs = Outputs {
        master: pipeline.has_file(&master).await?.then(|| rel(master)).flatten(),
        poster: pipeline.has_file(&poster).await?.then(|| rel(poster)).flatten(),
        thumbnails: pipeline.has_file(&thumbnails).await?.then(|| rel(thumbnails)).flatten(),
        ..Outputs::default()
    };
    // One look at the folder: the downloads, and the outputs' paths from them.
    let downloads = downloads(&state, &id).await?;
    let video_dir = layout.video_dir(&id);
    let in_folder = |path: &str| rel(video_dir.join(path));
    outputs.transcript =
        downloads.iter().find(|d| d.path == "transcript.json").and_then(|d| in_folder(&d.path));
    outputs.captions = downloads
        .iter()
        .filter(|d| d.path.starts_with("captions/"))
        .filter_map(|d| in_folder(&d.path))
        .collect();
    let watch_url = match outputs.master {
        Some(_) => Some(link(&state, &id, LinkKind::View, state.config.link_ttl).await?.url),
        None => None,
    };
    let translations = pipeline
        .translations(&video)
        .await?
        .into_iter()
        .map(|t| TranslationStatus {
            language: t.language,
            cues: t.cues,
            untranslated: t.untranslated,
            edited: t.edited,
        })
        .collect();
    Ok(Json(VideoStatus {
        id: video.id,
        state: video.state.as_str().to_owned(),
        source_name: video.source_name,
        source_sha256: video.source_sha256,
        stages: jobs
            .into_iter()
            .map(|j| StageStatus {
                progress: (j.state == JobState::Running)
                    .then(|| latest("progress", &j.stage).and_then(|d| d["fraction"].as_f64()))
                    .flatten(),
                stage: j.stage,
                state: j.state.as_str().to_owned(),
                attempts: j.attempts,
                error: j.last_error.filter(|_| j.state != JobState::Done),
            })
            .collect(),
        warnings: video.warnings,
        error: video.error,
        outputs,
        watch_url,
        translations,
        downloads,
        dubs,
    }))
}

/// A video's event log as server-sent events, from the start (or after
/// `Last-Event-ID`), ending once the video is completed or failed.
#[utoipa::path(get, path = "/v1/videos/{id}/events", tag = "videos",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "text/event-stream of events", content_type = "text/event-stream"),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn video_events(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let id = parse_id(&id)?;
    let db = state.pipeline.db().clone();
    db.video(id.as_str()).await?.ok_or_else(|| ApiError::not_found("such video"))?;
    let after: i64 =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    struct Cursor {
        db: babelcast_jobs::Db,
        id: String,
        after: i64,
        pending: std::collections::VecDeque<Event>,
        done: bool,
    }
    let cursor = Cursor { db, id: id.to_string(), after, pending: Default::default(), done: false };
    let stream = futures_util::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(event) = c.pending.pop_front() {
                c.after = event.id;
                if matches!(event.kind.as_str(), "completed" | "failed") && c.pending.is_empty() {
                    c.done = true;
                }
                let sse = SseEvent::default()
                    .id(event.id.to_string())
                    .event(event.kind.clone())
                    .data(serde_json::to_string(&event).unwrap_or_default());
                return Some((Ok(sse), c));
            }
            if c.done {
                return None;
            }
            match c.db.events(&c.id, c.after).await {
                Ok(events) if !events.is_empty() => c.pending.extend(events),
                Ok(_) => tokio::time::sleep(Duration::from_millis(300)).await,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: database error");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
