//! Playback: signed links to a video's package, and the files they serve.

use super::*;

use babelcast_media::dash::MANIFEST;
use babelcast_media::thumbnails::{POSTER, THUMBS_DIR, THUMBS_VTT};

/// A signed playback link.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Playback {
    /// The master playlist's URL (absolute path on this server).
    pub url: String,
    /// The DASH manifest's URL under the same signature, if the package is CMAF
    /// (its segments are then both HLS and DASH).
    pub dash: Option<String>,
    /// When it stops working, Unix seconds.
    pub expires_at: i64,
    /// The poster image's URL under the same signature, if the package has one.
    pub poster: Option<String>,
    /// The seek previews' WebVTT track (cues name tiles of sprite images,
    /// `sprite-001.jpg#xywh=x,y,w,h`) under the same signature, if it has them.
    pub thumbnails: Option<String>,
}

/// A signed link to the video's master playlist.
#[utoipa::path(get, path = "/v1/videos/{id}/playback", tag = "playback",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, body = Playback),
        (status = 404, description = "No such video, or not playable yet", body = ErrorBody)))]
pub(crate) async fn playback(
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
    let hls = state.pipeline.layout().hls_dir(&id);
    let signed = |file: &str| format!("/v1/play/{id}/{token}/{file}");
    let poster = state.pipeline.has_file(&hls.join(POSTER)).await?.then(|| signed(POSTER));
    let track = format!("{THUMBS_DIR}/{THUMBS_VTT}");
    let thumbnails = state.pipeline.has_file(&hls.join(&track)).await?.then(|| signed(&track));
    let dash = state.pipeline.has_file(&hls.join(MANIFEST)).await?.then(|| signed(MANIFEST));
    Ok(Json(Playback { url: signed("master.m3u8"), dash, expires_at, poster, thumbnails }))
}

/// A file of the video's HLS package, under a signed token.
#[utoipa::path(get, path = "/v1/play/{id}/{token}/{path}", tag = "playback",
    params(("id" = String, Path, description = "The video id"),
        ("token" = String, Path, description = "The signed token from /playback"),
        ("path" = String, Path, description = "A file of the package, e.g. master.m3u8")),
    responses((status = 200, description = "The file"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn play_file(
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
        "mpd" => "application/dash+xml",
        "ts" => "video/mp2t",
        "m4s" => "video/iso.segment",
        "mp4" => "video/mp4",
        "vtt" => "text/vtt; charset=utf-8",
        "jpg" => "image/jpeg",
        "json" => "application/json",
        _ => "application/octet-stream",
    };
    let headers = [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "private, max-age=60")];
    let Some(remote) = state.pipeline.remote() else {
        let bytes = tokio::fs::read(&file).await.map_err(|_| ApiError::not_found("such file"))?;
        return Ok((headers, Body::from(bytes)).into_response());
    };
    // From the bucket. Playlists and the DASH manifest always through babelcast:
    // their relative links must resolve against babelcast's signed path, not the
    // store's.
    let key = remote.key_of(&file).ok_or_else(|| ApiError::not_found("such file"))?;
    let media = !matches!(extension.as_str(), "m3u8" | "mpd" | "json");
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
