//! The credentials API: API keys (created, listed, revoked; a key's secret is
//! shown once and stored only as its SHA-256) and per-video links (a viewer's and
//! a reviewer's, with an expiry; revoked all at once per video).

use babelcast_core::secret::random_hex;
use babelcast_jobs::ApiKey;

use super::*;
use crate::access::{KEY_PREFIX, Scope, secret_hash};
use crate::signing::LinkKind;

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewKey {
    /// What it is for (shown in the list).
    name: String,
    /// `upload`, `read`, `review`, `metrics`, `admin`.
    scopes: Vec<String>,
}

/// A created key: the only time its secret is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    /// Its id (for listing and revoking).
    pub id: String,
    /// The key to send as `Authorization: Bearer <key>`; not shown again.
    pub key: String,
    /// What it may do.
    pub scopes: Vec<String>,
}

/// Creates an API key with scopes.
#[utoipa::path(post, path = "/v1/keys", tag = "access", request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn create_key(
    State(state): State<AppState>,
    Json(new): Json<NewKey>,
) -> Result<Response, ApiError> {
    let key = new_key(state.pipeline.db(), &new.name, &new.scopes).await?;
    Ok((StatusCode::CREATED, Json(key)).into_response())
}

/// Creates a key in the database: used by the API and by `babelcast keys create`.
pub async fn new_key(db: &babelcast_jobs::Db, name: &str, scopes: &[String]) -> Result<CreatedKey, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_key", m);
    if name.trim().is_empty() {
        return Err(bad("name the key (what it is for)".into()));
    }
    if scopes.is_empty() {
        return Err(bad("give the key at least one scope: upload, read, review, metrics or admin".into()));
    }
    let mut checked: Vec<String> = Vec::new();
    for scope in scopes {
        let scope: Scope = scope.parse().map_err(bad)?;
        if !checked.iter().any(|s| s == scope.as_str()) {
            checked.push(scope.as_str().to_owned());
        }
    }
    let random = |bytes| random_hex(bytes).map_err(ApiError::internal);
    let (id, secret) = (random(8)?, random(32)?);
    let key = ApiKey {
        id: id.clone(),
        name: name.trim().to_owned(),
        scopes: checked.clone(),
        created_ms: babelcast_jobs::now_ms(),
        revoked_ms: None,
    };
    db.add_api_key(&key, &secret_hash(&secret)).await?;
    Ok(CreatedKey { id: id.clone(), key: format!("{KEY_PREFIX}{id}_{secret}"), scopes: checked })
}

/// Every API key (never their secrets), revoked ones too.
#[utoipa::path(get, path = "/v1/keys", tag = "access",
    responses((status = 200, description = "[{id, name, scopes, created_ms, revoked_ms}]"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_keys(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.pipeline.db().api_keys().await?).into_response())
}

/// Revokes an API key at once.
#[utoipa::path(delete, path = "/v1/keys/{key}", tag = "access",
    params(("key" = String, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    UrlPath(key): UrlPath<String>,
) -> Result<Response, ApiError> {
    if state.pipeline.db().revoke_api_key(&key).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("such key (or it was revoked already)"))
    }
}

/// How long a new link works.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct NewLink {
    /// Seconds until it expires; `server.link_ttl_secs` if absent.
    ttl_secs: Option<u64>,
}

/// A per-video link.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedLink {
    /// The page it opens (absolute path on this server).
    pub url: String,
    /// The link's token, for API calls as `Authorization: Bearer <token>`.
    pub token: String,
    /// When it stops working, Unix seconds.
    pub expires_at: i64,
}

/// A link of `kind` to one video, valid for `ttl`.
pub(crate) async fn link(
    state: &AppState,
    id: &VideoId,
    kind: LinkKind,
    ttl: Duration,
) -> Result<CreatedLink, ApiError> {
    let generation = state
        .pipeline
        .db()
        .link_generation(id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("such video"))?;
    let expires_at = now_secs() + ttl.as_secs() as i64;
    let token = state.config.signer.link(kind, id.as_str(), generation, expires_at);
    let page = match kind {
        LinkKind::View => "watch",
        LinkKind::Review => "review",
    };
    Ok(CreatedLink { url: format!("/{page}/{id}/{token}"), token, expires_at })
}

async fn create_link(
    state: &AppState,
    id: &str,
    kind: LinkKind,
    body: Option<Json<NewLink>>,
) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let ttl = body
        .and_then(|Json(b)| b.ttl_secs)
        .map(Duration::from_secs)
        .unwrap_or(state.config.link_ttl)
        .min(state.config.max_link_ttl);
    Ok((StatusCode::CREATED, Json(link(state, &id, kind, ttl).await?)).into_response())
}

/// A viewer link: the player page of this one video, nothing else.
#[utoipa::path(post, path = "/v1/videos/{id}/links/view", tag = "access",
    params(("id" = String, Path, description = "The video id")), request_body(content = Option<NewLink>),
    responses((status = 201, body = CreatedLink), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn create_view_link(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    body: Option<Json<NewLink>>,
) -> Result<Response, ApiError> {
    create_link(&state, &id, LinkKind::View, body).await
}

/// A review link: the review page of this one video, its transcript and
/// translations, edits and approval.
#[utoipa::path(post, path = "/v1/videos/{id}/links/review", tag = "access",
    params(("id" = String, Path, description = "The video id")), request_body(content = Option<NewLink>),
    responses((status = 201, body = CreatedLink), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn create_review_link(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    body: Option<Json<NewLink>>,
) -> Result<Response, ApiError> {
    create_link(&state, &id, LinkKind::Review, body).await
}

/// Revokes every link of the video made so far (viewer and review links).
#[utoipa::path(post, path = "/v1/videos/{id}/links/revoke", tag = "access",
    params(("id" = String, Path, description = "The video id")),
    responses((status = 200, description = "{\"generation\": n}"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_links(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let generation = state
        .pipeline
        .db()
        .revoke_links(id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("such video"))?;
    Ok(Json(serde_json::json!({ "generation": generation })).into_response())
}
