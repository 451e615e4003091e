use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A language babelcast can caption, translate or dub, written as its BCP 47
/// primary language tag (`en`, `es`), which is what HLS `LANGUAGE=` and WebVTT want.
///
/// The set is closed on purpose: each language needs a human name for players and,
/// later, subtitle rules and engines. Adding one is adding a row to [`LANGS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct Lang(&'static str);

/// Why a string is not a [`Lang`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {0:?}: use a BCP 47 tag such as en, es, de, fr, it, pt, pl, ca, gl")]
pub struct UnknownLang(pub String);

/// Tag, ISO 639-2/B code (what ffmpeg's `language=` metadata holds), name in the
/// language itself (what a viewer picks from a menu).
const LANGS: &[(&str, &str, &str)] = &[
    ("ca", "cat", "Català"),
    ("de", "ger", "Deutsch"),
    ("en", "eng", "English"),
    ("es", "spa", "Español"),
    ("fr", "fre", "Français"),
    ("gl", "glg", "Galego"),
    ("it", "ita", "Italiano"),
    ("ja", "jpn", "日本語"),
    ("nl", "dut", "Nederlands"),
    ("pl", "pol", "Polski"),
    ("pt", "por", "Português"),
    ("ru", "rus", "Русский"),
    ("zh", "chi", "中文"),
];

impl Lang {
    /// The BCP 47 tag, e.g. `es`.
    pub fn tag(self) -> &'static str {
        self.0
    }

    /// The name of the language in that language, e.g. `Español`.
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// The ISO 639-2 code that container metadata uses, e.g. `spa`.
    pub fn iso639_2(self) -> &'static str {
        self.row().1
    }

    /// The ISO 639-3 code (what Apertium names its language pairs with), e.g. `spa`,
    /// `fra`, `deu`.
    pub fn iso639_3(self) -> &'static str {
        match self.row().1 {
            "fre" => "fra",
            "ger" => "deu",
            "dut" => "nld",
            "chi" => "zho",
            same => same,
        }
    }

    /// Every language babelcast knows.
    pub fn all() -> impl Iterator<Item = Lang> {
        LANGS.iter().map(|row| Lang(row.0))
    }

    /// Reads a tag (`es`, `es-MX`: the region is dropped) or an ISO 639-2 code as
    /// found in container metadata (`spa`, `eng`, also the /T forms `deu`, `fra`).
    pub fn from_metadata(code: &str) -> Option<Lang> {
        let lower = code.to_ascii_lowercase();
        let primary = lower.split(['-', '_']).next().unwrap_or_default();
        let alias = match primary {
            "deu" => "ger",
            "fra" => "fre",
            "nld" => "dut",
            "zho" => "chi",
            other => other,
        };
        LANGS.iter().find(|(tag, iso, _)| *tag == alias || *iso == alias).map(|(tag, _, _)| Lang(tag))
    }

    fn row(self) -> &'static (&'static str, &'static str, &'static str) {
        LANGS.iter().find(|(tag, _, _)| *tag == self.0).expect("a Lang is only ever built from a LANGS row")
    }
}

impl FromStr for Lang {
    type Err = UnknownLang;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lang::from_metadata(s.trim()).ok_or_else(|| UnknownLang(s.to_owned()))
    }
}

impl TryFrom<String> for Lang {
    type Error = UnknownLang;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

// By hand: derived with `try_from`, serde would still tie the input's lifetime to the
// `&'static str` inside, and no struct holding a `Lang` could be read from a buffer.
impl<'de> Deserialize<'de> for Lang {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Lang, D::Error> {
        let tag = String::deserialize(deserializer)?;
        Lang::try_from(tag).map_err(serde::de::Error::custom)
    }
}

impl From<Lang> for String {
    fn from(lang: Lang) -> String {
        lang.0.to_owned()
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tags_regions_and_container_codes() {
        let es: Lang = "es".parse().expect("es");
        assert_eq!(es.name(), "Español");
        assert_eq!(es.iso639_2(), "spa");
        assert_eq!("es-MX".parse::<Lang>(), Ok(es));
        assert_eq!(Lang::from_metadata("spa"), Some(es));
        assert_eq!(Lang::from_metadata("deu").map(Lang::tag), Some("de"));
        assert_eq!(Lang::from_metadata("ENG").map(Lang::tag), Some("en"));
    }

    #[test]
    fn unknown_codes_are_refused_not_guessed() {
        assert!("und".parse::<Lang>().is_err());
        assert!("xx".parse::<Lang>().is_err());
        assert!("".parse::<Lang>().is_err());
    }
}
