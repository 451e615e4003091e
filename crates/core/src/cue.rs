use std::fmt;

use serde::{Deserialize, Serialize};

/// A point on the media timeline in whole milliseconds. Subtitle formats and the
/// caption rules (83 ms gaps, 0.833 s minimum) all work at this resolution.
///
/// It serialises as a bare integer of milliseconds; fields holding one are named
/// with an `_ms` suffix in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Millis(pub u64);

impl Millis {
    /// From seconds, rounded to the nearest millisecond; negative or NaN becomes 0.
    pub fn from_secs_f64(secs: f64) -> Millis {
        if secs.is_finite() && secs > 0.0 { Millis((secs * 1000.0).round() as u64) } else { Millis(0) }
    }

    /// As fractional seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl fmt::Display for Millis {
    /// `HH:MM:SS.mmm`, the WebVTT form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 % 1000;
        let s = self.0 / 1000;
        write!(f, "{:02}:{:02}:{:02}.{ms:03}", s / 3600, (s / 60) % 60, s % 60)
    }
}

/// One subtitle cue: text shown from `start` until `end`. Lines are separated by `\n`.
///
/// In JSON the times are integers of milliseconds named `start_ms` and `end_ms`, so a
/// reader never has to guess the unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cue {
    /// When the text appears.
    #[serde(rename = "start_ms")]
    pub start: Millis,
    /// When it disappears; after `start`.
    #[serde(rename = "end_ms")]
    pub end: Millis,
    /// The text, one or two lines.
    pub text: String,
}

impl Cue {
    /// How long the cue is shown; zero when `end` is not after `start`.
    pub fn duration(&self) -> Millis {
        Millis(self.end.0.saturating_sub(self.start.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip_and_display() {
        assert_eq!(Millis::from_secs_f64(3723.0456), Millis(3_723_046));
        assert_eq!(Millis(3_723_046).to_string(), "01:02:03.046");
        assert_eq!(Millis::from_secs_f64(-1.0), Millis(0));
        assert_eq!(Millis::from_secs_f64(f64::NAN), Millis(0));
    }
}
