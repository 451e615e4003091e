//! Who may do what. Every route carries a [`Rule`] in the route table
//! (`crate::routes`), and [`guard`] checks it before the handler runs, so a route
//! cannot exist without one. A request's credential is the `Authorization:
//! Bearer` header only, never a query string, and is one of:
//!
//! - the **admin token** (configured, or generated and printed once at first
//!   start): everything;
//! - an **API key** `bk_{id}_{secret}` with scopes (`upload`, `read`, `review`,
//!   `metrics`, `admin`), stored only as the SHA-256 of its secret, revocable;
//! - a **per-video link** `bl_...` (`crate::signing`): a viewer link plays one
//!   video; a review link reads, edits and approves one video's transcript and
//!   translations. A link expires, and revoking a video's links bumps its link
//!   generation, which every link carries.
//!
//! Not authenticated (no, a wrong, a revoked, an expired or a tampered
//! credential): 401. Authenticated but not allowed (a missing scope, another
//! video's link, a link used for anything but its video's pages): 403.

use axum::extract::{RawPathParams, Request};
use axum::middleware::Next;
use babelcast_jobs::ApiKey;

use super::*;
use crate::signing::{LINK_PREFIX, Link, LinkKind};

/// What a credential may do. Keys are given the first five; `Play` comes with
/// `read`, `review` and every link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Upload videos.
    Upload,
    /// Read any video's status, events, transcript and outputs.
    Read,
    /// Edit and approve transcripts and translations (and read them).
    Review,
    /// Scrape `/metrics`.
    Metrics,
    /// Everything, API keys and links included.
    Admin,
    /// Mint playback links (not given to keys by name).
    Play,
}

impl Scope {
    /// The scopes an API key can be given.
    pub const GRANTABLE: [Scope; 5] =
        [Scope::Upload, Scope::Read, Scope::Review, Scope::Metrics, Scope::Admin];

    /// Its name in keys and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Upload => "upload",
            Scope::Read => "read",
            Scope::Review => "review",
            Scope::Metrics => "metrics",
            Scope::Admin => "admin",
            Scope::Play => "play",
        }
    }

    /// Whether holding `self` allows what needs `need`.
    pub fn grants(self, need: Scope) -> bool {
        self == need
            || self == Scope::Admin
            || (matches!(self, Scope::Read | Scope::Review) && need == Scope::Play)
            || (self == Scope::Review && need == Scope::Read)
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Scope, String> {
        Scope::GRANTABLE
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?}: use upload, read, review, metrics or admin"))
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Nothing: the pages' shells (they hold no data), assets, the OpenAPI
    /// description, health.
    Public,
    /// A signed playback token in the path, which the handler checks (the
    /// package's files, so that players can fetch them).
    Signed,
    /// The admin token, or an API key with this scope.
    Key(Scope),
    /// As `Key`, or a link to the route's `{id}` whose kind grants this scope.
    Video(Scope),
}

/// Who is asking.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    /// The admin token.
    Admin,
    /// An API key.
    Key(ApiKey),
    /// A per-video link.
    Link(Link),
}

/// How an API key starts.
pub const KEY_PREFIX: &str = "bk_";

fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

/// The SHA-256 (hex) by which a key's secret is stored.
pub(crate) fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The bearer credential of a request, checked: 401 unless it is a valid one.
pub(crate) async fn authenticate(headers: &HeaderMap, state: &AppState) -> Result<Credential, ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized("token_missing", "send Authorization: Bearer <token, key or link>"))?;
    if let Some(rest) = given.strip_prefix(KEY_PREFIX) {
        let invalid = || unauthorized("key_invalid", "the API key is wrong");
        let (id, secret) = rest.split_once('_').ok_or_else(invalid)?;
        let (key, stored) = state.pipeline.db().api_key(id).await?.ok_or_else(invalid)?;
        // Compare hashes: constant time in the secret's content.
        if Sha256::digest(secret_hash(secret).as_bytes()) != Sha256::digest(stored.as_bytes()) {
            return Err(invalid());
        }
        if key.revoked_ms.is_some() {
            return Err(unauthorized("key_revoked", format!("the API key {id} was revoked")));
        }
        return Ok(Credential::Key(key));
    }
    if given.starts_with(LINK_PREFIX) {
        let link = state.config.signer.verify_link(given, now_secs()).map_err(|e| match e {
            TokenError::Expired => unauthorized("link_expired", "the link has expired: ask for a new one"),
            _ => unauthorized("link_invalid", "the link is not valid"),
        })?;
        let generation = state.pipeline.db().link_generation(&link.video_id).await?;
        if generation != Some(link.generation) {
            return Err(unauthorized("link_revoked", "the link was revoked: ask for a new one"));
        }
        return Ok(Credential::Link(link));
    }
    // Compare hashes: constant time in the token's content. An empty admin token
    // opens nothing.
    if !state.config.token.expose().is_empty()
        && Sha256::digest(given.as_bytes()) == Sha256::digest(state.config.token.expose().as_bytes())
    {
        Ok(Credential::Admin)
    } else {
        Err(unauthorized("token_invalid", "the bearer token is wrong"))
    }
}

/// Whether `credential` may do what `rule` asks on the route's video `video`.
pub(crate) fn authorize(credential: &Credential, rule: Rule, video: Option<&str>) -> Result<(), ApiError> {
    let need = match rule {
        Rule::Public | Rule::Signed => return Ok(()),
        Rule::Key(need) | Rule::Video(need) => need,
    };
    match credential {
        Credential::Admin => Ok(()),
        Credential::Key(key) => {
            let held = key.scopes.iter().filter_map(|s| s.parse::<Scope>().ok());
            if held.clone().any(|s| s.grants(need)) {
                Ok(())
            } else {
                Err(forbidden(
                    "scope_missing",
                    format!("the API key {} lacks the {} scope", key.id, need.as_str()),
                ))
            }
        }
        Credential::Link(link) => {
            let Rule::Video(_) = rule else {
                return Err(forbidden("link_not_allowed", "a link opens only its video's pages"));
            };
            if video != Some(link.video_id.as_str()) {
                return Err(forbidden("link_other_video", "the link is for another video"));
            }
            let grants = match link.kind {
                LinkKind::View => need == Scope::Play,
                LinkKind::Review => Scope::Review.grants(need),
            };
            if grants {
                Ok(())
            } else {
                Err(forbidden("link_not_allowed", format!("a {} link cannot do this", link.kind.as_str())))
            }
        }
    }
}

/// The rule of one route, with the state its check needs.
#[derive(Clone)]
pub(crate) struct Guard {
    pub(crate) state: AppState,
    pub(crate) rule: Rule,
}

/// Checks the route's rule before its handler; the credential goes on in the
/// request's extensions.
pub(crate) async fn guard(
    State(guard): State<Guard>,
    params: RawPathParams,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if matches!(guard.rule, Rule::Public | Rule::Signed) {
        return Ok(next.run(request).await);
    }
    let video = params.iter().find(|(name, _)| *name == "id").map(|(_, value)| value.to_owned());
    let credential = authenticate(request.headers(), &guard.state).await?;
    authorize(&credential, guard.rule, video.as_deref())?;
    request.extensions_mut().insert(credential);
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scopes: &[&str]) -> Credential {
        Credential::Key(ApiKey {
            id: "k1".into(),
            name: "test".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            created_ms: 0,
            revoked_ms: None,
        })
    }

    fn link(kind: LinkKind, video: &str) -> Credential {
        Credential::Link(Link { kind, video_id: video.into(), generation: 0, expiry: 0 })
    }

    #[test]
    fn each_credential_reaches_what_its_scope_or_link_allows() {
        use Scope::*;
        let v = Some("v1");
        let ok = |c: &Credential, rule: Rule| authorize(c, rule, v).is_ok();
        assert!(ok(&Credential::Admin, Rule::Key(Admin)));
        assert!(ok(&key(&["read"]), Rule::Video(Read)) && ok(&key(&["read"]), Rule::Video(Play)));
        assert!(!ok(&key(&["read"]), Rule::Video(Review)) && !ok(&key(&["read"]), Rule::Key(Upload)));
        assert!(ok(&key(&["review"]), Rule::Video(Read)) && !ok(&key(&["review"]), Rule::Key(Admin)));
        assert!(ok(&key(&["upload", "metrics"]), Rule::Key(Metrics)));
        assert!(!ok(&key(&["metrics"]), Rule::Video(Read)), "a scrape key reads no video");
        assert!(ok(&key(&["admin"]), Rule::Key(Admin)));
        assert!(!ok(&key(&["play"]), Rule::Video(Play)), "play is not a key's scope");
        // Links: their own video only, and only what their kind opens.
        assert!(ok(&link(LinkKind::View, "v1"), Rule::Video(Play)));
        assert!(!ok(&link(LinkKind::View, "v1"), Rule::Video(Read)));
        assert!(ok(&link(LinkKind::Review, "v1"), Rule::Video(Review)));
        assert!(!ok(&link(LinkKind::Review, "v2"), Rule::Video(Review)), "another video's link");
        assert!(!ok(&link(LinkKind::Review, "v1"), Rule::Key(Read)), "not the video routes");
        assert!(!ok(&link(LinkKind::Review, "v1"), Rule::Key(Admin)));
        assert_eq!("admin".parse::<Scope>(), Ok(Admin));
        assert!("play".parse::<Scope>().is_err() && "root".parse::<Scope>().is_err());
    }
}
