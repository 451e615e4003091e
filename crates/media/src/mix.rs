//! The dub track: the dubbed speech over the original audio, which is lowered
//! under the speech (ducking, ffmpeg's `sidechaincompress` keyed by the speech) or
//! replaced, then brought to one loudness (EBU R128 measured, one gain, a peak
//! limiter) so every language's track plays at the same level, and encoded to
//! AAC in an `.m4a`.

use std::path::Path;

use babelcast_core::MediaFacts;
use babelcast_process::Program;
use serde::{Deserialize, Serialize};

use babelcast_store::StagedFile;

use crate::hls::{PackageError, encode_error, io_error};
use crate::run::{self, QUIET_WITH_PROGRESS};

/// What happens to the original audio under the dub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DubMode {
    /// The original stays, lowered while the dub speaks.
    #[default]
    Duck,
    /// Only the dub is heard.
    Replace,
}

/// The loudness every dub track is brought to: -16 LUFS integrated, the common
/// target for online video, with sample peaks held at -1.5 dBFS.
const TARGET_LUFS: f64 = -16.0;
const PEAK_LIMIT: f64 = 0.841; // -1.5 dBFS

/// The largest gain applied to reach the target: a near-silent mix is not
/// boosted into noise.
const MAX_GAIN_DB: f64 = 20.0;

/// How the dub track's level is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Level {
    /// Measure the mix and bring it to the target (a first pass over the mix).
    Measure,
    /// Apply this gain (dB), measured on an earlier mix of the same track: a
    /// mix that differs from that one in a few cues is within a fraction of a
    /// LU of it, and the measuring pass is a third of a re-mix's time.
    Kept(f64),
}

/// Mixes `speech` (a WAV of the dub at the cue times) with the original audio of
/// `source` (probed into `facts`) into `out` (`.m4a`, AAC 128k, 48 kHz stereo),
/// written under a temporary name and renamed, at `level`. A source without
/// audio gets the speech alone. Returns the gain applied (dB), for a later
/// [`Level::Kept`].
///
/// Two passes over the mix, not `loudnorm`: the mix itself is cheap, and
/// `loudnorm` resamples to 192 kHz to normalise dynamically, which cost more than
/// everything else in a dub. The first pass measures the mix's integrated
/// loudness (EBU R128, ffmpeg's `ebur128`); the second applies the one gain that
/// brings it to the target, a limiter for the peaks, and encodes AAC with the
/// encoder's fast coder and without its mid/side search (together a quarter of
/// the default's time, measured on a 60 s track: 3.4 s → 0.8 s; speech at
/// 128 kb/s has bits to spare for left and right coded apart).
pub fn dub_track(
    ffmpeg: &Program,
    source: &Path,
    facts: &MediaFacts,
    speech: &Path,
    mode: DubMode,
    level: Level,
    out: &Path,
) -> Result<f64, PackageError> {
    let (mix, original) = mix_graph(facts, mode);
    let inputs = |call: babelcast_process::Call| mix_inputs(call, speech, original.then_some(source), &[]);
    let duration = facts.duration_secs;

    // Pass 1: the loudness of the mix (the summary is printed at the info level;
    // the per-frame lines are kept below it), unless a gain is kept.
    let gain_db = match level {
        Level::Kept(gain_db) if gain_db.is_finite() => gain_db.min(MAX_GAIN_DB),
        _ => {
            let measure = inputs(ffmpeg.call().args(MEASURE_WITH_PROGRESS))?
                .args(["-filter_complex", &format!("{mix},ebur128=framelog=verbose[out]"), "-map", "[out]"])
                .args(["-f", "null", "-"]);
            let report =
                run::with_progress(measure, duration, &mut |_| {}).map_err(|e| encode_error(speech, e))?;
            gain_to_target(integrated_loudness(&report))
        }
    };

    // Pass 2: the same mix at the target loudness, encoded.
    let partial = StagedFile::new(out, ".m4a").map_err(io_error(out))?;
    let encode = inputs(ffmpeg.call().args(QUIET_WITH_PROGRESS))?
        .args(["-filter_complex", &levelled(&mix, gain_db), "-map", "[out]"])
        .args(AAC)
        .args(["-map_metadata", "-1", "-f", "mp4"])
        .arg(partial.path());
    run::with_progress(encode, duration, &mut |_| {}).map_err(|e| encode_error(speech, e))?;
    partial.publish().map_err(io_error(out))?;
    Ok(gain_db)
}

/// The filter graph that mixes the speech (input 0) with the original audio of
/// the source (input 1) for `mode`, up to its output pad, and whether it reads
/// the source at all (not for [`DubMode::Replace`], nor a source without audio).
pub(crate) fn mix_graph(facts: &MediaFacts, mode: DubMode) -> (String, bool) {
    match (mode, facts.audio.first()) {
        (DubMode::Duck, Some(audio)) => (
            format!(
                "[0:a]aformat=sample_rates=48000:channel_layouts=stereo,asplit=2[key][voice];\
                 [1:{}]aformat=sample_rates=48000:channel_layouts=stereo[orig];\
                 [orig][key]sidechaincompress=threshold=0.01:ratio=12:attack=20:release=400[ducked];\
                 [ducked][voice]amix=inputs=2:duration=first:normalize=0",
                audio.index
            ),
            true,
        ),
        _ => ("[0:a]aformat=sample_rates=48000:channel_layouts=stereo".to_owned(), false),
    }
}

/// The mix brought to its level by `gain_db` and held under the peak limit, on
/// the pad `[out]`.
pub(crate) fn levelled(mix: &str, gain_db: f64) -> String {
    format!(
        "{mix},volume={gain_db:.2}dB,alimiter=limit={PEAK_LIMIT}:level=false:latency=true,\
         aresample=48000,aformat=channel_layouts=stereo[out]"
    )
}

/// The mix's inputs: the speech, and the source when the mix reads it, each
/// after the input options `each` (a seek).
pub(crate) fn mix_inputs(
    mut call: babelcast_process::Call,
    speech: &Path,
    source: Option<&Path>,
    each: &[String],
) -> Result<babelcast_process::Call, PackageError> {
    call = run::untrusted_input(call.args(each), speech).map_err(io_error(speech))?;
    if let Some(source) = source {
        call = run::untrusted_input(call.args(each), source).map_err(io_error(source))?;
    }
    Ok(call)
}

/// The dub's encoding: AAC-LC at 128 kb/s, 48 kHz, with the encoder's fast coder
/// and without its mid/side search (see [`dub_track`]).
pub(crate) const AAC: [&str; 10] =
    ["-c:a", "aac", "-aac_coder", "fast", "-aac_ms", "0", "-b:a", "128k", "-ar", "48000"];

/// [`QUIET_WITH_PROGRESS`] with the info level, for a filter's summary.
const MEASURE_WITH_PROGRESS: [&str; 8] =
    ["-nostdin", "-hide_banner", "-nostats", "-v", "info", "-progress", "pipe:1", "-y"];

/// The integrated loudness (LUFS) in the summary `ebur128` prints at the end.
fn integrated_loudness(stderr: &str) -> Option<f64> {
    let summary = &stderr[stderr.rfind("Integrated loudness:")?..];
    let line = summary.lines().find(|l| l.trim_start().starts_with("I:"))?;
    line.trim_start().strip_prefix("I:")?.trim().strip_suffix("LUFS")?.trim().parse().ok()
}

/// The gain (dB) from `measured` loudness to the target: none for silence or an
/// unreadable measure, at most [`MAX_GAIN_DB`] up.
fn gain_to_target(measured: Option<f64>) -> f64 {
    match measured {
        Some(lufs) if lufs.is_finite() && lufs > -60.0 => (TARGET_LUFS - lufs).min(MAX_GAIN_DB),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gain_comes_from_the_summary_and_silence_is_not_boosted() {
        let stderr = "[Parsed_ebur128_5 @ 0x1] Summary:\n\n  Integrated loudness:\n    I:         -19.4 LUFS\n    Threshold: -29.6 LUFS\n\n  Loudness range:\n    LRA:         1.4 LU\n";
        assert_eq!(integrated_loudness(stderr), Some(-19.4));
        assert!((gain_to_target(integrated_loudness(stderr)) - 3.4).abs() < 1e-9);
        assert_eq!(gain_to_target(Some(-70.0)), 0.0, "silence");
        assert_eq!(gain_to_target(None), 0.0);
        assert_eq!(gain_to_target(Some(-50.0)), MAX_GAIN_DB);
        assert_eq!(integrated_loudness("no summary"), None);
    }
}
