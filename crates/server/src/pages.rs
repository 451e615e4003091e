//! The web pages: the operator's dashboard (`/`), the player (`/watch/{id}/{link}`)
//! with embedded hls.js, and the review page (`/review/{id}`, `/review/{id}/{link}`). The pages are shells that
//! hold no data (not even the source's name) and no key: their scripts, served
//! as files, read the video and the link from the page's own address and ask
//! the API with it. A content security policy allows scripts from babelcast only.

use super::*;

/// The hls.js build the player page uses, embedded at build time.
pub(crate) const HLS_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js"));
pub(crate) const DASH_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dash.mediaplayer.min.js"));
pub(crate) const WATCH_PAGE: &str = include_str!("watch.html");
pub(crate) const WATCH_JS: &str = include_str!("watch.js");
pub(crate) const REVIEW_PAGE: &str = include_str!("review.html");
pub(crate) const REVIEW_JS: &str = include_str!("review.js");
pub(crate) const DASHBOARD_PAGE: &str = include_str!("dashboard/index.html");
pub(crate) const DASHBOARD_JS: &str = include_str!("dashboard/app.js");

/// The pages' policy: scripts, styles' files, media and API calls from babelcast
/// itself (styles may be inline; scripts may not); hls.js's media come as blobs.
/// With presigned playback from a bucket, its segments come from there.
fn policy(state: &AppState) -> String {
    let media = state
        .pipeline
        .remote()
        .filter(|r| r.presigned_playback())
        .map(|r| format!(" {}", r.origin()))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         media-src 'self' blob:{media}; connect-src 'self'{media}; worker-src 'self' blob:; \
         img-src 'self' data:{media}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
}

fn page(state: &AppState, html: &'static str) -> Response {
    (
        [
            (header::CONTENT_SECURITY_POLICY, policy(state)),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Html(html),
    )
        .into_response()
}

/// The player page of one video, opened by a viewer link.
#[utoipa::path(get, path = "/watch/{id}/{link}", tag = "pages",
    params(("id" = String, Path, description = "The video id"),
        ("link" = String, Path, description = "A viewer link's token")),
    responses((status = 200, description = "HTML", content_type = "text/html")))]
pub(crate) async fn watch_page(State(state): State<AppState>) -> Response {
    page(&state, WATCH_PAGE)
}

/// The review page: the player beside the editable cues, rule checks as you type,
/// save and approve; asks for an API token or key.
#[utoipa::path(get, path = "/review/{id}", tag = "pages",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "HTML", content_type = "text/html")))]
pub(crate) async fn review_page(State(state): State<AppState>) -> Response {
    page(&state, REVIEW_PAGE)
}

/// The review page opened by a review link: needs nothing else.
#[utoipa::path(get, path = "/review/{id}/{link}", tag = "pages",
    params(("id" = String, Path, description = "The video id"),
        ("link" = String, Path, description = "A review link's token")),
    responses((status = 200, description = "HTML", content_type = "text/html")))]
pub(crate) async fn review_link_page(State(state): State<AppState>) -> Response {
    page(&state, REVIEW_PAGE)
}

/// The operator's dashboard: sign in with a key; the videos with their state
/// and progress; upload with options; each video's player, review page or
/// link, downloads, dub quality, cancel, retry and delete.
#[utoipa::path(get, path = "/", tag = "pages",
    responses((status = 200, description = "HTML", content_type = "text/html")))]
pub(crate) async fn dashboard_page(State(state): State<AppState>) -> Response {
    page(&state, DASHBOARD_PAGE)
}

pub(crate) async fn dashboard_js() -> Response {
    script(DASHBOARD_JS.as_bytes())
}

fn script(body: &'static [u8]) -> Response {
    ([(header::CONTENT_TYPE, "text/javascript"), (header::CACHE_CONTROL, "public, max-age=3600")], body)
        .into_response()
}

pub(crate) async fn hls_js() -> Response {
    script(HLS_JS)
}

pub(crate) async fn dash_js() -> Response {
    script(DASH_JS)
}

pub(crate) async fn watch_js() -> Response {
    script(WATCH_JS.as_bytes())
}

pub(crate) async fn review_js() -> Response {
    script(REVIEW_JS.as_bytes())
}
