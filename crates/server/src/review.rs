//! The review API: read, edit and approve a video's transcript, and read and edit
//! each target language's translation.

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
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn put_transcript(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let cues = cues_from_body(&headers, &body)?;
    Ok(Json(state.pipeline.edit_transcript(&id, cues).await?).into_response())
}

/// Cues sent as JSON `{"cues": [...]}`, WebVTT or SRT, by their content type.
fn cues_from_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<babelcast_core::Cue>, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_cues", m);
    let kind = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8".into()))?;
    if kind.starts_with("application/json") {
        Ok(serde_json::from_str::<TranscriptEdit>(text).map_err(|e| bad(e.to_string()))?.cues)
    } else if kind.starts_with("text/vtt") {
        babelcast_core::subtitle::vtt::read(text).map_err(|e| bad(e.to_string()))
    } else if kind.starts_with("application/x-subrip") || kind.starts_with("text/srt") {
        babelcast_core::subtitle::srt::read(text).map_err(|e| bad(e.to_string()))
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            "send application/json, text/vtt or application/x-subrip",
        ))
    }
}

fn parse_lang(lang: &str) -> Result<babelcast_core::Lang, ApiError> {
    lang.parse().map_err(|_| ApiError::not_found("such language"))
}

/// One target language's translation: its cues, the cues with words the engine
/// left untranslated, the caption rules they break, and the source cues.
#[utoipa::path(get, path = "/v1/videos/{id}/translations/{lang}", tag = "review",
    params(("id" = String, Path, description = "The video id"),
        ("lang" = String, Path, description = "A target language, e.g. es")),
    responses((status = 200, description = "language, from, engine, edited, cues, untranslated, violations, source"),
        (status = 404, body = ErrorBody), (status = 409, description = "Not translated yet", body = ErrorBody)))]
pub(crate) async fn get_translation(
    State(state): State<AppState>,
    UrlPath((id, lang)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    let (id, lang) = (parse_id(&id)?, parse_lang(&lang)?);
    Ok(Json(state.pipeline.translation(&id, lang).await?).into_response())
}

/// Replaces one language's cues (a translator's fix), sent like a transcript edit;
/// only that language's changed cues are voiced again.
#[utoipa::path(put, path = "/v1/videos/{id}/translations/{lang}", tag = "review",
    params(("id" = String, Path, description = "The video id"),
        ("lang" = String, Path, description = "A target language, e.g. es")),
    responses((status = 200, description = "The translation as now stored"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn put_translation(
    State(state): State<AppState>,
    UrlPath((id, lang)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (id, lang) = (parse_id(&id)?, parse_lang(&lang)?);
    let cues = cues_from_body(&headers, &body)?;
    Ok(Json(state.pipeline.edit_translation(&id, lang, cues).await?).into_response())
}

/// Approves what a video awaits review for: its transcript, or (with
/// `review_translations`) its translations; the pipeline continues.
#[utoipa::path(post, path = "/v1/videos/{id}/approve", tag = "review",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "Approved"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "Not awaiting review", body = ErrorBody)))]
pub(crate) async fn approve(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let approved = match state.pipeline.approve(&id).await? {
        babelcast_pipeline::Review::Transcript => "transcript",
        babelcast_pipeline::Review::Translations => "translations",
    };
    Ok(Json(serde_json::json!({ "approved": approved })).into_response())
}
