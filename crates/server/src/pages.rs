//! The web pages: the player (`/watch/{id}`) with embedded hls.js, and the
//! transcript review page.

use super::*;

/// The hls.js build the player page uses, embedded at build time.
pub(crate) const HLS_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js"));
pub(crate) const WATCH_PAGE: &str = include_str!("watch.html");
pub(crate) const REVIEW_PAGE: &str = include_str!("review.html");

/// The player page: hls.js with quality, audio-language and caption selection.
#[utoipa::path(get, path = "/watch/{id}", tag = "pages",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "HTML", content_type = "text/html"), (status = 404, body = ErrorBody)))]
pub(crate) async fn watch_page(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Html<String>, ApiError> {
    page(&state, &id, WATCH_PAGE).await
}

/// A page template with the video's id and (escaped) name filled in.
pub(crate) async fn page(state: &AppState, id: &str, template: &str) -> Result<Html<String>, ApiError> {
    let id = parse_id(id)?;
    let video =
        state.pipeline.db().video(id.as_str()).await?.ok_or_else(|| ApiError::not_found("such video"))?;
    let title = html_escape(&video.source_name);
    Ok(Html(template.replace("{{ID}}", id.as_str()).replace("{{TITLE}}", &title)))
}

pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub(crate) async fn hls_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript"), (header::CACHE_CONTROL, "public, max-age=86400")], HLS_JS)
}

/// The review page: the player beside the editable cues, rule checks as you type,
/// save and approve.
#[utoipa::path(get, path = "/review/{id}", tag = "pages",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "HTML", content_type = "text/html"), (status = 404, body = ErrorBody)))]
pub(crate) async fn review_page(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Html<String>, ApiError> {
    page(&state, &id, REVIEW_PAGE).await
}
