//! The review API: read, edit and approve a video's transcript.

use super::*;

/// The transcript's cues and the caption rules they break.
#[utoipa::path(get, path = "/v1/videos/{id}/transcript", tag = "review",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "language, state, cues (start_ms, end_ms, text), violations"),
        (status = 404, body = ErrorBody), (status = 409, description = "Not transcribed yet", body = ErrorBody)))]
pub(crate) async fn get_transcript(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(state.pipeline.transcript(&id).await?).into_response())
}

/// The body of a transcript edit as JSON.
#[derive(Debug, Deserialize)]
pub(crate) struct TranscriptEdit {
    cues: Vec<babelcast_core::Cue>,
}

/// Replaces the transcript's cues: JSON `{"cues": [{"start_ms", "end_ms", "text"}]}`,
/// or a WebVTT (`text/vtt`) or SRT (`application/x-subrip`) file as the body.
#[utoipa::path(put, path = "/v1/videos/{id}/transcript", tag = "review",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "The transcript as now stored, with violations"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_transcript(
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
pub(crate) async fn approve(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_token(&headers, &state.config.token)?;
    let id = parse_id(&id)?;
    state.pipeline.approve(&id).await?;
    Ok(Json(serde_json::json!({ "approved": true })).into_response())
}
