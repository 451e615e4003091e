//! The HTTP side of babelcast: the API (`/v1/...`), signed playback of packages,
//! the player page (`/watch/{id}`), server-sent events, metrics, the OpenAPI
//! description, webhooks out and the watch folder in.
//!
//! Reads are open; writes (`POST /v1/videos`) need the bearer token. Uploads are
//! streamed to a file inside the data folder (never held in memory) with a size
//! limit, hashed on the way, and then checked by probing their content.
//!
//! One file per concern: `videos` (upload, status, events), `playback`, `review`,
//! `pages`, `operations` (metrics, health, OpenAPI), `error`; this file holds the
//! router, the OpenAPI document and the token check.

mod error;
mod operations;
mod pages;
mod playback;
mod review;
mod signing;
mod videos;
pub mod watch_folder;
pub mod webhooks;

pub use error::*;
use operations::*;
use pages::*;
pub use playback::*;
use review::*;
pub use videos::*;

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
        review_page,
        get_translation,
        put_translation
    ),
    components(schemas(
        Accepted,
        VideoStatus,
        StageStatus,
        TranslationStatus,
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
    "/v1/videos/{id}/translations/{lang}",
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
        translation_route,
    ] = DOCUMENTED_ROUTES
    else {
        unreachable!("twelve routes")
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
        .route(translation_route, get(get_translation).put(put_translation))
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
