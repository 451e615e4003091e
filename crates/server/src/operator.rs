//! The operator's API: the list of videos (newest first, by cursor), downloads of
//! every output a video produced (with ranges), re-running a stage that died,
//! cancelling and deleting.

use axum::extract::{Query, Request};
use tower::ServiceExt as _;

use super::*;

/// A page of the video list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VideoPage {
    /// The videos, newest first.
    pub videos: Vec<VideoSummary>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// One video in the list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VideoSummary {
    /// Its id.
    pub id: String,
    /// Its state.
    pub state: String,
    /// The uploaded file's name.
    pub source_name: String,
    /// When it was uploaded, Unix ms.
    pub created_ms: i64,
}

/// The list's query.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// The videos, newest first, `limit` (default 50, at most 500) at a time;
/// `state` filters, `cursor` continues after the previous page.
#[utoipa::path(get, path = "/v1/videos", tag = "videos",
    params(("state" = Option<String>, Query, description = "Only videos in this state"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("limit" = Option<i64>, Query, description = "Videos per page (default 50, at most 500)")),
    responses((status = 200, body = VideoPage), (status = 400, body = ErrorBody)))]
pub(crate) async fn list_videos(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<VideoPage>, ApiError> {
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", m.to_owned());
    let filter = match query.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse().map_err(|_| bad("unknown state"))?),
    };
    let cursor = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => {
            let (at, id) = c.split_once('-').ok_or_else(|| bad("malformed cursor"))?;
            Some((at.parse::<i64>().map_err(|_| bad("malformed cursor"))?, id.to_owned()))
        }
    };
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let videos = state
        .pipeline
        .db()
        .list_videos(filter, cursor.as_ref().map(|(at, id)| (*at, id.as_str())), limit + 1)
        .await?;
    let more = videos.len() as i64 > limit;
    let videos: Vec<VideoSummary> = videos
        .into_iter()
        .take(limit as usize)
        .map(|v| VideoSummary {
            id: v.id,
            state: v.state.as_str().to_owned(),
            source_name: v.source_name,
            created_ms: v.created_ms,
        })
        .collect();
    let next_cursor = if more { videos.last().map(|v| format!("{}-{}", v.created_ms, v.id)) } else { None };
    Ok(Json(VideoPage { videos, next_cursor }))
}

/// The outputs a video's folder may serve as downloads, and their content types:
/// `mp4/{lang}.mp4`, `captions/{lang}.vtt|srt`, `dub/{lang}.m4a`,
/// `transcript.json`, `translations/{lang}.json`.
pub(crate) fn download_type(path: &str) -> Option<&'static str> {
    let (dir, name) = path.split_once('/').unwrap_or(("", path));
    let (stem, ext) = name.rsplit_once('.')?;
    let lang_ok = stem.parse::<babelcast_core::Lang>().is_ok() && !name.contains('/');
    match (dir, ext) {
        ("", "json") if name == "transcript.json" => Some("application/json"),
        ("mp4", "mp4") if lang_ok => Some("video/mp4"),
        ("dub", "m4a") if lang_ok => Some("audio/mp4"),
        ("captions", "vtt") if lang_ok => Some("text/vtt; charset=utf-8"),
        ("captions", "srt") if lang_ok => Some("application/x-subrip; charset=utf-8"),
        ("translations", "json") if lang_ok => Some("application/json"),
        _ => None,
    }
}

/// A download's file name: the upload's name with the output's language and kind,
/// e.g. `talk.es.mp4`, `talk.es.vtt`, `talk.transcript.json`.
fn file_name(source_name: &str, path: &str) -> String {
    let stem = Path::new(source_name).file_stem().and_then(|s| s.to_str()).unwrap_or("video");
    let stem: String =
        stem.chars().map(|c| if c.is_alphanumeric() || "-_ ".contains(c) { c } else { '_' }).collect();
    let name = path.rsplit('/').next().unwrap_or(path);
    match path.split('/').next() {
        Some("dub") => format!("{stem}.{}", name.replace(".m4a", ".dub.m4a")),
        Some("translations") => format!("{stem}.{}", name.replace(".json", ".translation.json")),
        _ => format!("{stem}.{name}"),
    }
}

/// One output of a video, as a download: HTTP ranges, its content type and a file
/// name; from the bucket by a presigned redirect when playback is presigned.
#[utoipa::path(get, path = "/v1/videos/{id}/files/{path}", tag = "videos",
    params(("id" = String, Path, description = "The video id"),
        ("path" = String, Path, description = "mp4/es.mp4, captions/es.vtt, captions/es.srt, dub/es.m4a, transcript.json, translations/es.json")),
    responses((status = 200, description = "The file"), (status = 206, description = "A range of it"),
        (status = 307, description = "To the bucket"), (status = 404, body = ErrorBody)))]
pub(crate) async fn download(
    State(state): State<AppState>,
    UrlPath((id, path)): UrlPath<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let content_type = download_type(&path).ok_or_else(|| ApiError::not_found("such output"))?;
    let video =
        state.pipeline.db().video(id.as_str()).await?.ok_or_else(|| ApiError::not_found("such video"))?;
    let file = state.pipeline.layout().video_dir(&id).join(&path);
    let disposition = format!("attachment; filename=\"{}\"", file_name(&video.source_name, &path));
    if let Some(remote) = state.pipeline.remote().filter(|r| r.presigned_playback()) {
        let key = remote.key_of(&file).ok_or_else(|| ApiError::not_found("such output"))?;
        if !remote.exists(&key).await? {
            return Err(ApiError::not_found("such output (yet)"));
        }
        let url = remote.presigned_get(&key, state.config.playback_ttl).await?;
        return Ok((StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, url)]).into_response());
    }
    if !state.pipeline.fetch_file(&file).await? {
        return Err(ApiError::not_found("such output (yet)"));
    }
    let mut response = tower_http::services::ServeFile::new(&file)
        .oneshot(request)
        .await
        .map_err(ApiError::internal)?
        .map(Body::new);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    if let Ok(value) = header::HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("private, no-cache"));
    Ok(response)
}

/// Runs a stage that died again (its attempts start over); the video is
/// processing again until the stage graph settles it.
#[utoipa::path(post, path = "/v1/videos/{id}/stages/{stage}/retry", tag = "videos",
    params(("id" = String, Path, description = "The video id"),
        ("stage" = String, Path, description = "A stage, e.g. transcribe or dub-es")),
    responses((status = 202, description = "Queued again"), (status = 404, body = ErrorBody),
        (status = 409, description = "The stage is not dead", body = ErrorBody)))]
pub(crate) async fn retry_stage(
    State(state): State<AppState>,
    UrlPath((id, stage)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let stage: babelcast_pipeline::graph::Stage =
        stage.parse().map_err(|_| ApiError::not_found("such stage"))?;
    match state.pipeline.retry(&id, stage).await? {
        true => Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "retrying": stage.to_string() })))
            .into_response()),
        false => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_dead",
            format!("{stage} has not died: nothing to retry"),
        )),
    }
}

/// Stops a video in progress: its queued and running stages end, it is
/// `cancelled`, and what it made so far stays downloadable.
#[utoipa::path(post, path = "/v1/videos/{id}/cancel", tag = "videos",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "Cancelled"), (status = 404, body = ErrorBody),
        (status = 409, description = "Not in progress", body = ErrorBody)))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let video =
        state.pipeline.db().video(id.as_str()).await?.ok_or_else(|| ApiError::not_found("such video"))?;
    if state.pipeline.cancel(&id).await? {
        Ok(Json(serde_json::json!({ "state": "cancelled" })).into_response())
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_in_progress",
            format!("the video is {}: nothing to cancel", video.state.as_str()),
        ))
    }
}

/// Deletes a video and everything it made: its files, events, transcript and
/// the cache entries no other video uses, here and in the bucket. A stage still
/// running finishes without recording anything, and what it wrote goes too.
/// Deleting a deleted video again answers the same.
#[utoipa::path(delete, path = "/v1/videos/{id}", tag = "videos",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_video(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    if state.pipeline.delete(&id).await? {
        Ok(Json(serde_json::json!({ "deleted": id.to_string() })).into_response())
    } else {
        Err(ApiError::not_found("such video"))
    }
}

/// The downloads a video has now, with their URLs.
pub(crate) async fn downloads(state: &AppState, id: &VideoId) -> Result<Vec<Download>, ApiError> {
    let layout = state.pipeline.layout();
    let dir = layout.video_dir(id);
    let mut found = Vec::new();
    if state.pipeline.has_file(&layout.transcript(id)).await? {
        found.push("transcript.json".to_owned());
    }
    for sub in ["mp4", "captions", "dub", "translations"] {
        let mut names = state.pipeline.list_files(&dir.join(sub)).await?;
        names.sort();
        found.extend(names.into_iter().map(|n| format!("{sub}/{n}")).filter(|p| download_type(p).is_some()));
    }
    Ok(found
        .into_iter()
        .map(|path| Download { url: format!("/v1/videos/{id}/files/{path}"), path })
        .collect())
}

/// One output to download.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Download {
    /// Its path in the video's folder, e.g. `mp4/es.mp4`.
    pub path: String,
    /// Where to fetch it (with a `read` key or a review link).
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_outputs_are_downloads_and_they_are_named_after_the_upload() {
        for ok in [
            "mp4/es.mp4",
            "captions/en.vtt",
            "captions/it.srt",
            "dub/es.m4a",
            "transcript.json",
            "translations/es.json",
        ] {
            assert!(download_type(ok).is_some(), "{ok}");
        }
        for no in [
            "source.mp4",
            "facts.json",
            "hls/master.m3u8",
            "dub/es.qa.json",
            "mp4/../source.mp4",
            "captions/xx.vtt",
            "../x",
        ] {
            assert!(download_type(no).is_none(), "{no}");
        }
        assert_eq!(file_name("My talk.mov", "mp4/es.mp4"), "My talk.es.mp4");
        assert_eq!(file_name("a\"b.mp4", "dub/it.m4a"), "a_b.it.dub.m4a");
    }
}
