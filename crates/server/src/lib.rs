//! The HTTP side of babelcast: the API (`/v1/...`), signed playback of packages,
//! the player and review pages, server-sent events, metrics, the OpenAPI
//! description, webhooks out and the watch folder in.
//!
//! Every route has an access rule in the route table (`routes`), checked before
//! its handler (`access`): API keys with scopes, the admin token, and per-video
//! viewer and review links. Uploads are streamed to a file inside the data folder
//! (never held in memory) with a size limit, hashed on the way, and then checked
//! by probing their content.
//!
//! One file per concern: `routes` (the table and the router), `access` (the
//! rules), `credentials` (keys and links), `operator` (list, downloads, retry,
//! cancel, delete), `videos` (upload, status, events),
//! `playback`, `review`, `pages`, `operations` (metrics, health), `error`; this
//! file holds the configuration and the OpenAPI document.

mod access;
mod credentials;
mod error;
mod operations;
mod operator;
mod pages;
mod playback;
mod review;
mod routes;
mod signing;
mod videos;
pub mod watch_folder;
pub mod webhooks;

pub use access::{Rule, Scope};
use credentials::*;
pub use credentials::{CreatedKey, CreatedLink, new_key};
pub use error::*;
use operations::*;
use operator::*;
pub use operator::{Download, VideoPage, VideoSummary};
use pages::*;
pub use playback::*;
use review::*;
pub use routes::{Route, router, routes};
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
use axum::{Json, Router};
use babelcast_core::{ErrorCode, Secret, VideoId};
use babelcast_jobs::{Event, JobState};
use babelcast_pipeline::{IngestError, Pipeline, VideoOptions};
use babelcast_store::remote::RemoteError;
use futures_util::stream::Stream;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::{OpenApi, ToSchema};

pub use signing::{Link, LinkKind, Signer, TokenError, webhook_signature};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The admin token: everything.
    pub token: Secret,
    /// Signs playback URLs and per-video links.
    pub signer: Signer,
    /// The largest upload accepted, bytes.
    pub max_upload_bytes: u64,
    /// How long a playback URL works.
    pub playback_ttl: Duration,
    /// How long a per-video link works unless its creator says.
    pub link_ttl: Duration,
    /// The longest a per-video link may work.
    pub max_link_ttl: Duration,
    /// Sites whose players may fetch the signed package (CORS); none by default.
    pub cors_origins: Vec<String>,
}

impl ServerConfig {
    /// The defaults for everything but the two secrets.
    pub fn new(token: Secret, signer: Signer) -> ServerConfig {
        ServerConfig {
            token,
            signer,
            max_upload_bytes: 8 << 30,
            playback_ttl: Duration::from_secs(6 * 3600),
            link_ttl: Duration::from_secs(7 * 24 * 3600),
            max_link_ttl: Duration::from_secs(30 * 24 * 3600),
            cors_origins: Vec::new(),
        }
    }
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
        dashboard_page,
        review_link_page,
        get_translation,
        put_translation,
        create_key,
        list_keys,
        revoke_key,
        create_view_link,
        create_review_link,
        revoke_links,
        list_videos,
        download,
        retry_stage,
        cancel,
        delete_video
    ),
    components(schemas(
        Accepted,
        VideoStatus,
        StageStatus,
        DubStatus,
        TranslationStatus,
        Outputs,
        Playback,
        ErrorBody,
        ErrorDetail,
        VideoOptionsDoc,
        CreatedKey,
        CreatedLink,
        NewKey,
        NewLink,
        LinkKind,
        Scope,
        VideoPage,
        VideoSummary,
        Download
    )),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the `bearer` security scheme, and puts each route's access rule from
/// the route table on its operation: its security, and an "Access:" line.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "The admin token, an API key (`bk_...`, with scopes) or a per-video link's token (`bl_...`)",
            ))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        for route in routes().into_iter().filter(|r| r.documented) {
            let path = route.path.replace("{*", "{");
            let Some(item) = openapi.paths.paths.get_mut(&path) else { continue };
            let operation = match route.method.as_str() {
                "GET" => item.get.as_mut(),
                "POST" => item.post.as_mut(),
                "PUT" => item.put.as_mut(),
                "DELETE" => item.delete.as_mut(),
                _ => None,
            };
            let Some(operation) = operation else { continue };
            let access = format!("Access: {}.", routes::describe(route.rule));
            operation.description = Some(match operation.description.take() {
                Some(text) if !text.is_empty() => format!("{text}\n\n{access}"),
                _ => access,
            });
            operation.security = match route.rule {
                Rule::Public | Rule::Signed => None,
                _ => Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]),
            };
        }
    }
}

/// The OpenAPI description of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

fn now_secs() -> i64 {
    babelcast_jobs::now_ms() / 1000
}

fn parse_id(id: &str) -> Result<VideoId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("such video"))
}
