//! The route table: every route's path, method and access rule, in one list the
//! router is built from (so a route cannot exist without a rule) and that the
//! OpenAPI description's security, the README's table and the security test
//! read.

use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, delete, get, post, put};

use super::*;
use crate::access::{Guard, Rule, Scope, guard};

/// One route and who may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// axum's syntax: `{id}` one segment, `{*path}` the rest.
    pub path: &'static str,
    /// Its method.
    pub method: Method,
    /// Who may use it.
    pub rule: Rule,
    /// Whether the OpenAPI description lists it (assets and the description
    /// itself are left out).
    pub documented: bool,
}

const fn route(method: Method, path: &'static str, rule: Rule) -> Route {
    Route { path, method, rule, documented: true }
}

const fn asset(path: &'static str) -> Route {
    Route { path, method: Method::GET, rule: Public, documented: false }
}

use Rule::{Key, Public, Signed, Video};
use Scope::{Admin, Metrics, Play, Read, Review, Upload};

/// Every route, with its handler.
fn table() -> Vec<(Route, MethodRouter<AppState>)> {
    vec![
        (route(Method::POST, "/v1/videos", Key(Upload)), post(upload)),
        (route(Method::GET, "/v1/videos", Key(Read)), get(list_videos)),
        (route(Method::GET, "/v1/videos/{id}/files/{*path}", Video(Read)), get(download)),
        (route(Method::POST, "/v1/videos/{id}/stages/{stage}/retry", Key(Admin)), post(retry_stage)),
        (route(Method::POST, "/v1/videos/{id}/cancel", Key(Admin)), post(cancel)),
        (route(Method::DELETE, "/v1/videos/{id}", Key(Admin)), delete(delete_video)),
        (route(Method::GET, "/v1/videos/{id}", Video(Read)), get(video_status)),
        (route(Method::GET, "/v1/videos/{id}/events", Video(Read)), get(video_events)),
        (route(Method::GET, "/v1/videos/{id}/playback", Video(Play)), get(playback)),
        (route(Method::GET, "/v1/play/{id}/{token}/{*path}", Signed), get(play_file)),
        (route(Method::GET, "/v1/videos/{id}/transcript", Video(Read)), get(get_transcript)),
        (route(Method::PUT, "/v1/videos/{id}/transcript", Video(Review)), put(put_transcript)),
        (route(Method::POST, "/v1/videos/{id}/approve", Video(Review)), post(approve)),
        (route(Method::GET, "/v1/videos/{id}/translations/{lang}", Video(Read)), get(get_translation)),
        (route(Method::PUT, "/v1/videos/{id}/translations/{lang}", Video(Review)), put(put_translation)),
        (route(Method::POST, "/v1/videos/{id}/links/view", Key(Read)), post(create_view_link)),
        (route(Method::POST, "/v1/videos/{id}/links/review", Key(Review)), post(create_review_link)),
        (route(Method::POST, "/v1/videos/{id}/links/revoke", Key(Admin)), post(revoke_links)),
        (route(Method::GET, "/v1/keys", Key(Admin)), get(list_keys)),
        (route(Method::POST, "/v1/keys", Key(Admin)), post(create_key)),
        (route(Method::DELETE, "/v1/keys/{key}", Key(Admin)), delete(revoke_key)),
        (route(Method::GET, "/metrics", Key(Metrics)), get(metrics)),
        (route(Method::GET, "/healthz", Public), get(health)),
        (route(Method::GET, "/", Public), get(dashboard_page)),
        (route(Method::GET, "/watch/{id}/{link}", Public), get(watch_page)),
        (route(Method::GET, "/review/{id}", Public), get(review_page)),
        (route(Method::GET, "/review/{id}/{link}", Public), get(review_link_page)),
        (asset("/assets/hls.min.js"), get(hls_js)),
        (asset("/assets/dash.mediaplayer.min.js"), get(dash_js)),
        (asset("/assets/watch.js"), get(watch_js)),
        (asset("/assets/review.js"), get(review_js)),
        (asset("/assets/dashboard.js"), get(dashboard_js)),
        (asset("/openapi.json"), get(openapi_json)),
    ]
}

/// Every route and its rule.
pub fn routes() -> Vec<Route> {
    table().into_iter().map(|(route, _)| route).collect()
}

/// The whole HTTP application.
pub fn router(pipeline: Pipeline, config: ServerConfig) -> Router {
    let cors = config.cors_origins.clone();
    let state = AppState { pipeline, config: Arc::new(config) };
    let mut router = Router::new();
    for (route, handler) in table() {
        let mut handler =
            handler.route_layer(from_fn_with_state(Guard { state: state.clone(), rule: route.rule }, guard));
        if route.rule == Signed && !cors.is_empty() {
            handler = handler.layer(cors_layer(&cors));
        }
        router = router.route(route.path, handler);
    }
    router
        // Uploads are streamed to disk with their own limit; the body limit must
        // not cut them short.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Lets players on the configured sites fetch the signed package's files.
fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    let origins: Vec<header::HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers([header::RANGE])
        .expose_headers([header::CONTENT_LENGTH, header::CONTENT_RANGE])
}

/// What a rule means, for the OpenAPI description and the README.
pub fn describe(rule: Rule) -> String {
    match rule {
        Public => "public".into(),
        Signed => "a signed playback token in the path".into(),
        Key(Admin) => "the admin token or an `admin` key".into(),
        Key(scope) => format!("a key with the `{}` scope (or the admin token)", scope.as_str()),
        Video(Play) => "a key with `read`, or a view or review link to this video".into(),
        Video(Read) => "a key with `read`, or a review link to this video".into(),
        Video(scope) => format!("a key with `{}`, or a review link to this video", scope.as_str()),
    }
}
