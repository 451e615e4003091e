//! Signed playback: a token that opens one video's whole output folder until it
//! expires; and signed per-video links (a viewer's or a reviewer's), checked by
//! the access rules (`crate::access`).
//!
//! The token is `{expiry}-{hmac}`, where the HMAC-SHA256 (server key) covers the
//! video id and the expiry, and it travels as a **path segment**:
//! `/v1/play/{id}/{token}/master.m3u8`. Players resolve the playlists' relative URIs
//! (`720p/index.m3u8`, `seg_00001.ts`) against that path, so every request of the
//! package carries the token, where a query string would be dropped.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the token's form.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match this video and expiry.
    #[error("invalid signature")]
    BadSignature,
    /// Past its expiry.
    #[error("the link has expired")]
    Expired,
}

/// Signs with the server's current key and checks with it and with retired keys
/// until their grace period ends, so rotating the key does not break the links
/// already handed out.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
    /// Retired keys and the Unix second until which each still verifies.
    retired: Vec<(Vec<u8>, i64)>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer {{ key: <secret>, retired: {} keys }}", self.retired.len())
    }
}

/// What a per-video link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// The player page of one video: playback only.
    View,
    /// The review page of one video: its transcript and translations, edits and
    /// approval, and playback.
    Review,
}

impl LinkKind {
    /// Its name in links and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::View => "view",
            LinkKind::Review => "review",
        }
    }
}

/// A verified per-video link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// What it opens.
    pub kind: LinkKind,
    /// The one video it opens.
    pub video_id: String,
    /// The video's link generation it was made in (a revoke bumps it).
    pub generation: i64,
    /// When it stops working, Unix seconds.
    pub expiry: i64,
}

/// How a link token starts: tells it apart from API keys and the admin token.
pub const LINK_PREFIX: &str = "bl_";

fn mac_of(key: &[u8], message: &str) -> HmacSha256 {
    // HMAC takes keys of any length.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(message.as_bytes());
    mac
}

impl Signer {
    /// A signer with this secret key.
    pub fn new(key: Vec<u8>) -> Signer {
        Signer { key, retired: Vec::new() }
    }

    /// Also accepts what `key` signed, until `until` (Unix seconds).
    pub fn with_retired(mut self, key: Vec<u8>, until: i64) -> Signer {
        self.retired.push((key, until));
        self
    }

    fn sign(&self, message: &str) -> String {
        hex::encode(mac_of(&self.key, message).finalize().into_bytes())
    }

    /// Whether `sig` (hex) signs `message` with the current key or a retired key
    /// still in its grace period.
    fn signed(&self, message: &str, sig: &str, now: i64) -> Result<(), TokenError> {
        let sig = hex::decode(sig).map_err(|_| TokenError::Malformed)?;
        let keys = std::iter::once(self.key.as_slice())
            .chain(self.retired.iter().filter(|(_, until)| now <= *until).map(|(k, _)| k.as_slice()));
        for key in keys {
            // Constant-time comparison.
            if mac_of(key, message).verify_slice(&sig).is_ok() {
                return Ok(());
            }
        }
        Err(TokenError::BadSignature)
    }

    /// A token for `video_id` valid until `expiry` (Unix seconds).
    pub fn token(&self, video_id: &str, expiry: i64) -> String {
        format!("{expiry}-{}", self.sign(&format!("play:{video_id}:{expiry}")))
    }

    /// Checks a token for `video_id` at time `now` (Unix seconds).
    pub fn verify(&self, video_id: &str, token: &str, now: i64) -> Result<(), TokenError> {
        let (expiry, sig) = token.split_once('-').ok_or(TokenError::Malformed)?;
        let expiry: i64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        self.signed(&format!("play:{video_id}:{expiry}"), sig, now)?;
        if now > expiry {
            return Err(TokenError::Expired);
        }
        Ok(())
    }

    /// A per-video link token: `bl_{kind}.{video}.{generation}.{expiry}.{hmac}`.
    pub fn link(&self, kind: LinkKind, video_id: &str, generation: i64, expiry: i64) -> String {
        let body = format!("{}.{video_id}.{generation}.{expiry}", kind.as_str());
        format!("{LINK_PREFIX}{body}.{}", self.sign(&format!("link:{body}")))
    }

    /// Checks a link token's signature and expiry at `now` (its generation is the
    /// caller's to check against the video's).
    pub fn verify_link(&self, token: &str, now: i64) -> Result<Link, TokenError> {
        let rest = token.strip_prefix(LINK_PREFIX).ok_or(TokenError::Malformed)?;
        let (body, sig) = rest.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let parts: Vec<&str> = body.split('.').collect();
        let [kind, video_id, generation, expiry] = parts[..] else { return Err(TokenError::Malformed) };
        let kind = match kind {
            "view" => LinkKind::View,
            "review" => LinkKind::Review,
            _ => return Err(TokenError::Malformed),
        };
        let generation: i64 = generation.parse().map_err(|_| TokenError::Malformed)?;
        let expiry: i64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        self.signed(&format!("link:{body}"), sig, now)?;
        if now > expiry {
            return Err(TokenError::Expired);
        }
        Ok(Link { kind, video_id: video_id.to_owned(), generation, expiry })
    }
}

/// The signature of a webhook body: `sha256=` + hex HMAC-SHA256 over
/// `{timestamp}.{body}` with the hook's secret.
pub fn webhook_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_its_video_until_it_expires() {
        let signer = Signer::new(b"k".to_vec());
        let token = signer.token("v1", 1000);
        assert_eq!(signer.verify("v1", &token, 999), Ok(()));
        assert_eq!(signer.verify("v1", &token, 1001), Err(TokenError::Expired));
        assert_eq!(signer.verify("v2", &token, 999), Err(TokenError::BadSignature), "another video");
        let later = token.replacen("1000", "9999", 1);
        assert_eq!(signer.verify("v1", &later, 999), Err(TokenError::BadSignature), "a stretched expiry");
        assert_eq!(Signer::new(b"other".to_vec()).verify("v1", &token, 999), Err(TokenError::BadSignature));
        assert_eq!(signer.verify("v1", "nonsense", 999), Err(TokenError::Malformed));
        assert_eq!(signer.verify("v1", "1000-zz", 999), Err(TokenError::Malformed));
    }

    #[test]
    fn a_link_opens_one_video_until_it_expires_and_survives_a_key_rotation_within_its_grace() {
        let signer = Signer::new(b"k".to_vec());
        let link = signer.link(LinkKind::Review, "v1", 3, 1000);
        let opened = signer.verify_link(&link, 999).expect("valid");
        assert_eq!(
            opened,
            Link { kind: LinkKind::Review, video_id: "v1".into(), generation: 3, expiry: 1000 }
        );
        assert_eq!(signer.verify_link(&link, 1001), Err(TokenError::Expired));
        for tampered in [
            link.replacen("review", "view", 1),
            link.replacen(".v1.", ".v2.", 1),
            link.replacen(".3.", ".4.", 1),
            link.replacen(".1000.", ".9999.", 1),
        ] {
            assert_eq!(signer.verify_link(&tampered, 999), Err(TokenError::BadSignature), "{tampered}");
        }
        assert_eq!(signer.verify_link("bl_view.v1", 0), Err(TokenError::Malformed));
        // Rotated: the new key signs, the old one verifies until its grace ends.
        let rotated = Signer::new(b"new".to_vec()).with_retired(b"k".to_vec(), 500);
        assert!(rotated.verify_link(&link, 400).is_ok());
        assert_eq!(rotated.verify_link(&link, 501), Err(TokenError::BadSignature));
        assert_eq!(rotated.verify("v1", &signer.token("v1", 1000), 400), Ok(()));
        assert_ne!(rotated.link(LinkKind::Review, "v1", 3, 1000), link);
    }

    #[test]
    fn webhook_signatures_cover_timestamp_and_body() {
        let a = webhook_signature(b"s", 1, b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, webhook_signature(b"s", 2, b"{}"));
        assert_ne!(a, webhook_signature(b"s", 1, b"{ }"));
        assert_ne!(a, webhook_signature(b"t", 1, b"{}"));
    }
}
