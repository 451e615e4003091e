use std::fmt;
use std::str::FromStr;

/// The id of one video. It names the video's folder (`videos/{id}/`), so it is
/// restricted to characters that can never escape that folder: ASCII letters, digits,
/// `-` and `_`, 1 to 64 of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VideoId(String);

/// Why a string is not a [`VideoId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid video id {0:?}: use 1 to 64 ASCII letters, digits, '-' or '_'")]
pub struct InvalidVideoId(pub String);

impl VideoId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for VideoId {
    type Err = InvalidVideoId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok { Ok(VideoId(s.to_owned())) } else { Err(InvalidVideoId(s.to_owned())) }
    }
}

impl fmt::Display for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_ids() {
        assert_eq!("01HZX-a_9".parse::<VideoId>().map(|v| v.to_string()), Ok("01HZX-a_9".into()));
    }

    #[test]
    fn rejects_anything_that_could_leave_its_folder() {
        for bad in ["", "..", "../etc", "a/b", "a\\b", "a b", "é", &"x".repeat(65)] {
            assert!(bad.parse::<VideoId>().is_err(), "{bad:?} was accepted");
        }
    }
}
