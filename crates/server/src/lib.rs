//! The HTTP side of babelcast: the API (`/v1/...`), signed playback of packages,
//! the player page (`/watch/{id}`), server-sent events, metrics, the OpenAPI
//! description, webhooks out and the watch folder in.
//!
//! Reads are open; writes (`POST /v1/videos`) need the bearer token. Uploads are
//! streamed to a file inside the data folder (never held in memory) with a size
//! limit, hashed on the way, and then checked by probing their content.

mod signing;
pub mod watch_folder;
pub mod webhooks;

use std::convert::Infallible;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use babelcast_core::{ErrorCode, VideoId};
use babelcast_jobs::{Event, JobState};
use babelcast_pipeline::{IngestError, Pipeline, VideoOptions};
use babelcast_store::remote::RemoteError;
use futures_util::stream::Stream;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::{OpenApi, ToSchema};

pub use signing::{Signer, TokenError, webhook_signature};

/// The hls.js build the player page uses, embedded at build time.
const HLS_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js"));
const WATCH_PAGE: &str = include_str!("watch.html");
const REVIEW_PAGE: &str = include_str!("review.html");

/// The most of a refused upload's remaining body read before the reply.
const DRAIN_LIMIT: u64 = 16 << 20;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The bearer token write endpoints require.
    pub token: String,
    /// Signs playback links.
    pub signer: Signer,
    /// The largest upload accepted, bytes.
    pub max_upload_bytes: u64,
    /// How long a playback link works.
    pub playback_ttl: Duration,
}

#[derive(Debug, Clone)]
struct AppState {
    pipeline: Pipeline,
    config: Arc<ServerConfig>,
}

/// An API error: an HTTP status and a JSON body `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The JSON body of an error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// One error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine code, e.g. `not_media`.
    pub code: String,
    /// A sentence saying what to fix.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no {what}"))
    }

    fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        (self.status, Json(body)).into_response()
    }
}

impl From<RemoteError> for ApiError {
    fn from(e: RemoteError) -> ApiError {
        tracing::error!(error = %e, "object store");
        ApiError::new(StatusCode::BAD_GATEWAY, "storage_unavailable", e.to_string())
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> ApiError {
        let status = match &e {
            IngestError::Options(_) => StatusCode::BAD_REQUEST,
            _ if e.is_client_error() => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<babelcast_jobs::DbError> for ApiError {
    fn from(e: babelcast_jobs::DbError) -> ApiError {
        ApiError::internal(e)
    }
}

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
    /// The player page, once playable.
    pub watch_url: Option<String>,
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
}

/// A signed playback link.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Playback {
    /// The master playlist's URL (absolute path on this server).
    pub url: String,
    /// When it stops working, Unix seconds.
    pub expires_at: i64,
}

/// The `options` part of an upload (documentation of
/// `babelcast_pipeline::VideoOptions`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = VideoOptions)]
#[allow(dead_code)]
struct VideoOptionsDoc {
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
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "babelcast",
        description = "Caption, translate and dub videos into one adaptive HLS package."
    ),
    paths(
        upload,
        video_status,
        video_events,
        playback,
        play_file,
        watch_page,
        metrics,
        health,
        get_transcript,
        put_transcript,
        approve,
        review_page
    ),
    components(schemas(
        Accepted,
        VideoStatus,
        StageStatus,
        Outputs,
        Playback,
        ErrorBody,
        ErrorDetail,
        VideoOptionsDoc
    )),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the upload route names.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    }
}

/// The OpenAPI description of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The routes the OpenAPI description documents (axum's syntax: `{*path}` is the
/// rest of the path). The router is built from these names, and a test checks the
/// description lists exactly them.
pub const DOCUMENTED_ROUTES: &[&str] = &[
    "/v1/videos",
    "/v1/videos/{id}",
    "/v1/videos/{id}/events",
    "/v1/videos/{id}/playback",
    "/v1/play/{id}/{token}/{*path}",
    "/watch/{id}",
    "/metrics",
    "/healthz",
    "/v1/videos/{id}/transcript",
    "/v1/videos/{id}/approve",
    "/review/{id}",
];

/// The whole HTTP application.
pub fn router(pipeline: Pipeline, config: ServerConfig) -> Router {
    let state = AppState { pipeline, config: Arc::new(config) };
    let [
        videos,
        video,
        events,
        playback_route,
        play,
        watch,
        metrics_route,
        health_route,
        transcript_route,
        approve_route,
        review_route,
    ] = DOCUMENTED_ROUTES
    else {
        unreachable!("eleven routes")
    };
    Router::new()
        .route(videos, post(upload))
        .route(video, get(video_status))
        .route(events, get(video_events))
        .route(playback_route, get(playback))
        .route(play, get(play_file))
        .route(watch, get(watch_page))
        .route(metrics_route, get(metrics))
        .route(health_route, get(health))
        .route(transcript_route, get(get_transcript).put(put_transcript))
        .route(approve_route, post(approve))
        .route(review_route, get(review_page))
        .route("/assets/hls.min.js", get(hls_js))
        .route("/openapi.json", get(openapi_json))
        // Uploads are streamed to disk with their own limit; the body limit must not
        // cut them short.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

fn now_secs() -> i64 {
    babelcast_jobs::now_ms() / 1000
}

fn check_token(headers: &HeaderMap, token: &str) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_missing",
            "send Authorization: Bearer <token>",
        )),
        // Compare hashes: constant time in the token's content.
        Some(given) if Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "token_invalid", "the bearer token is wrong")),
    }
}

fn parse_id(id: &str) -> Result<VideoId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("such video"))
}

/// The video file extensions uploads may be named with.
pub const VIDEO_EXTENSIONS: &[&str] = &["mp4", "mov", "avi", "mkv", "webm"];

/// Upload a video.
///
/// `multipart/form-data` with a `file` part (the video, streamed to storage) and an
/// optional `options` part (JSON: `language`, `caption_formats`, `rungs`).
#[utoipa::path(post, path = "/v1/videos", tag = "videos",
    responses(
        (status = 202, description = "Accepted; processing has started", body = Accepted),
        (status = 400, description = "Bad form, options, or an upload cut off", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 413, description = "Larger than the configured limit", body = ErrorBody),
        (status = 415, description = "Not a video file name", body = ErrorBody),
        (status = 422, description = "Not a usable video", body = ErrorBody)),
    security(("bearer" = [])))]
async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    check_token(&headers, &state.config.token)?;
    let pipeline = &state.pipeline;
    let mut options = VideoOptions::default();
    let mut stored: Option<(tempfile::TempPath, String, String)> = None;
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
                pipeline.check_options(&options)?;
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
    // Ingest renames the file into the video's folder; it is ours from here on.
    let staged = path.keep().map_err(ApiError::internal)?;
    let id = pipeline.ingest_staged(&staged, &name, &sha, options).await?;
    let body = Accepted { id: id.to_string(), status_url: format!("/v1/videos/{id}") };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Streams one multipart field to a temporary file in `dir`, hashing it, up to
/// `limit` bytes. The file is removed if anything goes wrong.
async fn receive(
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
async fn video_status(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<VideoStatus>, ApiError> {
    let id = parse_id(&id)?;
    let db = state.pipeline.db();
    let video = db.video(id.as_str()).await?.ok_or_else(|| ApiError::not_found("such video"))?;
    let jobs = db.jobs(id.as_str()).await?;
    let layout = state.pipeline.layout();
    let rel = |p: PathBuf| p.strip_prefix(layout.root()).map(|p| p.to_string_lossy().into_owned()).ok();
    let master = layout.master_playlist(&id);
    let pipeline = &state.pipeline;
    let mut outputs = Outputs {
        master: pipeline.has_file(&master).await?.then(|| rel(master)).flatten(),
        ..Outputs::default()
    };
    let transcript = layout.transcript(&id);
    outputs.transcript = pipeline.has_file(&transcript).await?.then(|| rel(transcript)).flatten();
    let captions_dir = layout.video_dir(&id).join("captions");
    let mut captions: Vec<String> = pipeline
        .list_files(&captions_dir)
        .await?
        .into_iter()
        .filter(|name| !name.starts_with('.'))
        .filter_map(|name| rel(captions_dir.join(name)))
        .collect();
    captions.sort();
    outputs.captions = captions;
    let watch_url = outputs.master.is_some().then(|| format!("/watch/{id}"));
    Ok(Json(VideoStatus {
        id: video.id,
        state: video.state.as_str().to_owned(),
        source_name: video.source_name,
        source_sha256: video.source_sha256,
        stages: jobs
            .into_iter()
            .map(|j| StageStatus {
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
    }))
}

/// A video's event log as server-sent events, from the start (or after
/// `Last-Event-ID`), ending once the video is completed or failed.
#[utoipa::path(get, path = "/v1/videos/{id}/events", tag = "videos",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "text/event-stream of events", content_type = "text/event-stream"),
        (status = 404, body = ErrorBody)))]
async fn video_events(
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

/// A signed link to the video's master playlist.
#[utoipa::path(get, path = "/v1/videos/{id}/playback", tag = "playback",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, body = Playback),
        (status = 404, description = "No such video, or not playable yet", body = ErrorBody)))]
async fn playback(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Playback>, ApiError> {
    let id = parse_id(&id)?;
    state.pipeline.db().video(id.as_str()).await?.ok_or_else(|| ApiError::not_found("such video"))?;
    if !state.pipeline.has_file(&state.pipeline.layout().master_playlist(&id)).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_playable_yet",
            "the video is not packaged yet",
        ));
    }
    let expires_at = now_secs() + state.config.playback_ttl.as_secs() as i64;
    let token = state.config.signer.token(id.as_str(), expires_at);
    Ok(Json(Playback { url: format!("/v1/play/{id}/{token}/master.m3u8"), expires_at }))
}

/// A file of the video's HLS package, under a signed token.
#[utoipa::path(get, path = "/v1/play/{id}/{token}/{path}", tag = "playback",
    params(("id" = String, Path, description = "The video id"),
        ("token" = String, Path, description = "The signed token from /playback"),
        ("path" = String, Path, description = "A file of the package, e.g. master.m3u8")),
    responses((status = 200, description = "The file"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn play_file(
    State(state): State<AppState>,
    UrlPath((id, token, path)): UrlPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)
        .map_err(|_| ApiError::new(StatusCode::FORBIDDEN, "forbidden", "invalid playback link"))?;
    state
        .config
        .signer
        .verify(id.as_str(), &token, now_secs())
        .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()))?;
    // Only plain relative components: no `..`, no absolute paths, no hidden files.
    let rel = Path::new(&path);
    let safe =
        rel.components().all(|c| matches!(c, Component::Normal(s) if !s.to_string_lossy().starts_with('.')));
    if !safe || path.is_empty() {
        return Err(ApiError::not_found("such file"));
    }
    let file = state.pipeline.layout().hls_dir(&id).join(rel);
    let extension = file.extension().and_then(|e| e.to_str()).unwrap_or_default().to_owned();
    let content_type = match extension.as_str() {
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "vtt" => "text/vtt; charset=utf-8",
        "json" => "application/json",
        _ => "application/octet-stream",
    };
    let headers = [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "private, max-age=60")];
    let Some(remote) = state.pipeline.remote() else {
        let bytes = tokio::fs::read(&file).await.map_err(|_| ApiError::not_found("such file"))?;
        return Ok((headers, Body::from(bytes)).into_response());
    };
    // From the bucket. Playlists always through babelcast: their relative links
    // must resolve against babelcast's signed path, not the store's.
    let key = remote.key_of(&file).ok_or_else(|| ApiError::not_found("such file"))?;
    let media = !matches!(extension.as_str(), "m3u8" | "json");
    if media && remote.presigned_playback() {
        if !remote.exists(&key).await? {
            return Err(ApiError::not_found("such file"));
        }
        let url = remote.presigned_get(&key, state.config.playback_ttl).await?;
        return Ok((StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, url)]).into_response());
    }
    let (size, stream) = remote.get_stream(&key).await?.ok_or_else(|| ApiError::not_found("such file"))?;
    Ok((headers, [(header::CONTENT_LENGTH, size.to_string())], Body::from_stream(stream)).into_response())
}

/// The player page: hls.js with quality, audio-language and caption selection.
#[utoipa::path(get, path = "/watch/{id}", tag = "pages",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "HTML", content_type = "text/html"), (status = 404, body = ErrorBody)))]
async fn watch_page(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Html<String>, ApiError> {
    page(&state, &id, WATCH_PAGE).await
}

/// A page template with the video's id and (escaped) name filled in.
async fn page(state: &AppState, id: &str, template: &str) -> Result<Html<String>, ApiError> {
    let id = parse_id(id)?;
    let video =
        state.pipeline.db().video(id.as_str()).await?.ok_or_else(|| ApiError::not_found("such video"))?;
    let title = html_escape(&video.source_name);
    Ok(Html(template.replace("{{ID}}", id.as_str()).replace("{{TITLE}}", &title)))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn hls_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript"), (header::CACHE_CONTROL, "public, max-age=86400")], HLS_JS)
}

/// Prometheus metrics: jobs by stage and state, stage durations.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct JobLabels {
        stage: String,
        state: String,
    }
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct StageLabels {
        stage: String,
    }
    let db = state.pipeline.db();
    let mut registry = Registry::with_prefix("babelcast");
    let jobs = Family::<JobLabels, Gauge>::default();
    for (stage, job_state, n) in db.job_counts().await? {
        jobs.get_or_create(&JobLabels { stage, state: job_state.as_str().to_owned() }).set(n);
    }
    registry.register("jobs", "Stage jobs by stage and state", jobs);
    let seconds = Family::<StageLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let count = Family::<StageLabels, Gauge>::default();
    for (stage, n, total_ms) in db.stage_durations().await? {
        seconds.get_or_create(&StageLabels { stage: stage.clone() }).set(total_ms as f64 / 1000.0);
        count.get_or_create(&StageLabels { stage }).set(n);
    }
    registry.register("stage_duration_seconds_sum", "Total seconds spent in finished stage jobs", seconds);
    registry.register("stage_duration_count", "Finished stage jobs", count);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

async fn openapi_json() -> impl IntoResponse {
    Json(openapi())
}

/// Liveness: the server answers and its database does.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "ok")))]
async fn health(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.pipeline.db().job_counts().await?;
    Ok("ok")
}

impl From<babelcast_pipeline::ReviewError> for ApiError {
    fn from(e: babelcast_pipeline::ReviewError) -> ApiError {
        use babelcast_pipeline::ReviewError as R;
        let status = match &e {
            R::NoVideo => StatusCode::NOT_FOUND,
            R::NoTranscript | R::NotAwaitingReview(_) => StatusCode::CONFLICT,
            R::BadCues(_) => StatusCode::BAD_REQUEST,
            R::Io(_) | R::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// The transcript's cues and the caption rules they break.
#[utoipa::path(get, path = "/v1/videos/{id}/transcript", tag = "review",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "language, state, cues (start_ms, end_ms, text), violations"),
        (status = 404, body = ErrorBody), (status = 409, description = "Not transcribed yet", body = ErrorBody)))]
async fn get_transcript(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(state.pipeline.transcript(&id).await?).into_response())
}

/// The body of a transcript edit as JSON.
#[derive(Debug, Deserialize)]
struct TranscriptEdit {
    cues: Vec<babelcast_core::Cue>,
}

/// Replaces the transcript's cues: JSON `{"cues": [{"start_ms", "end_ms", "text"}]}`,
/// or a WebVTT (`text/vtt`) or SRT (`application/x-subrip`) file as the body.
#[utoipa::path(put, path = "/v1/videos/{id}/transcript", tag = "review",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "The transcript as now stored, with violations"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn put_transcript(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    check_token(&headers, &state.config.token)?;
    let id = parse_id(&id)?;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_cues", m);
    let kind = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let text = std::str::from_utf8(&body).map_err(|_| bad("the body is not UTF-8".into()))?;
    let cues = if kind.starts_with("application/json") {
        serde_json::from_str::<TranscriptEdit>(text).map_err(|e| bad(e.to_string()))?.cues
    } else if kind.starts_with("text/vtt") {
        babelcast_core::subtitle::vtt::read(text).map_err(|e| bad(e.to_string()))?
    } else if kind.starts_with("application/x-subrip") || kind.starts_with("text/srt") {
        babelcast_core::subtitle::srt::read(text).map_err(|e| bad(e.to_string()))?
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            "send application/json, text/vtt or application/x-subrip",
        ));
    };
    Ok(Json(state.pipeline.edit_transcript(&id, cues).await?).into_response())
}

/// Approves a transcript that awaits review; the pipeline continues.
#[utoipa::path(post, path = "/v1/videos/{id}/approve", tag = "review",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "Approved"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "Not awaiting review", body = ErrorBody)),
    security(("bearer" = [])))]
async fn approve(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_token(&headers, &state.config.token)?;
    let id = parse_id(&id)?;
    state.pipeline.approve(&id).await?;
    Ok(Json(serde_json::json!({ "approved": true })).into_response())
}

/// The review page: the player beside the editable cues, rule checks as you type,
/// save and approve.
#[utoipa::path(get, path = "/review/{id}", tag = "pages",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "HTML", content_type = "text/html"), (status = 404, body = ErrorBody)))]
async fn review_page(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Html<String>, ApiError> {
    page(&state, &id, REVIEW_PAGE).await
}
