//! Signed playback: a token that opens one video's whole output folder until it
//! expires.
//!
//! The token is `{expiry}-{hmac}`, where the HMAC-SHA256 (server key) covers the
//! video id and the expiry, and it travels as a **path segment**:
//! `/v1/play/{id}/{token}/master.m3u8`. Players resolve the playlists' relative URIs
//! (`720p/index.m3u8`, `seg_00001.ts`) against that path, so every request of the
//! package carries the token, where a query string would be dropped.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `{expiry}-{hex}`.
    #[error("malformed playback token")]
    Malformed,
    /// The signature does not match this video and expiry.
    #[error("invalid playback signature")]
    BadSignature,
    /// Past its expiry.
    #[error("the playback link has expired")]
    Expired,
}

/// Signs and checks playback tokens with one server key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { key: <secret> }")
    }
}

impl Signer {
    /// A signer with this secret key.
    pub fn new(key: Vec<u8>) -> Signer {
        Signer { key }
    }

    fn mac(&self, video_id: &str, expiry: i64) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut mac =
            HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("any key length"));
        mac.update(format!("play:{video_id}:{expiry}").as_bytes());
        mac
    }

    /// A token for `video_id` valid until `expiry` (Unix seconds).
    pub fn token(&self, video_id: &str, expiry: i64) -> String {
        format!("{expiry}-{}", hex::encode(self.mac(video_id, expiry).finalize().into_bytes()))
    }

    /// Checks a token for `video_id` at time `now` (Unix seconds).
    pub fn verify(&self, video_id: &str, token: &str, now: i64) -> Result<(), TokenError> {
        let (expiry, sig) = token.split_once('-').ok_or(TokenError::Malformed)?;
        let expiry: i64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        let sig = hex::decode(sig).map_err(|_| TokenError::Malformed)?;
        // Constant-time comparison.
        self.mac(video_id, expiry).verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
        if now > expiry {
            return Err(TokenError::Expired);
        }
        Ok(())
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
    fn webhook_signatures_cover_timestamp_and_body() {
        let a = webhook_signature(b"s", 1, b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, webhook_signature(b"s", 2, b"{}"));
        assert_ne!(a, webhook_signature(b"s", 1, b"{ }"));
        assert_ne!(a, webhook_signature(b"t", 1, b"{}"));
    }
}
