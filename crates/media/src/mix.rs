//! The dub track: the dubbed speech over the original audio, which is lowered
//! under the speech (ducking, ffmpeg's `sidechaincompress` keyed by the speech) or
//! replaced, then loudness-normalised (EBU R128, `loudnorm`) so every language's
//! track plays at the same level, and encoded to AAC in an `.m4a`.

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

/// The loudness every dub track is normalised to: -16 LUFS integrated, -1.5 dBTP,
/// the common target for online video.
const LOUDNORM: &str = "loudnorm=I=-16:TP=-1.5:LRA=11";

/// Mixes `speech` (a WAV of the dub at the cue times) with the original audio of
/// `source` (probed into `facts`) into `out` (`.m4a`, AAC 128k, 48 kHz stereo),
/// written under a temporary name and renamed. A source without audio gets the
/// speech alone.
pub fn dub_track(
    ffmpeg: &Program,
    source: &Path,
    facts: &MediaFacts,
    speech: &Path,
    mode: DubMode,
    out: &Path,
) -> Result<(), PackageError> {
    let partial = StagedFile::new(out, ".m4a").map_err(io_error(out))?;
    let mut call = ffmpeg.call().args(QUIET_WITH_PROGRESS);
    call = run::untrusted_input(call, speech).map_err(io_error(speech))?;
    let original = match (mode, facts.audio.first()) {
        (DubMode::Duck, Some(audio)) => Some(audio.index),
        _ => None,
    };
    let graph = match original {
        Some(index) => {
            call = run::untrusted_input(call, source).map_err(io_error(source))?;
            format!(
                "[0:a]aformat=sample_rates=48000:channel_layouts=stereo,asplit=2[key][voice];\
                 [1:{index}]aformat=sample_rates=48000:channel_layouts=stereo[orig];\
                 [orig][key]sidechaincompress=threshold=0.01:ratio=12:attack=20:release=400[ducked];\
                 [ducked][voice]amix=inputs=2:duration=first:normalize=0,{LOUDNORM},aresample=48000,aformat=channel_layouts=stereo[out]"
            )
        }
        None => format!(
            "[0:a]aformat=sample_rates=48000:channel_layouts=stereo,{LOUDNORM},aresample=48000,aformat=channel_layouts=stereo[out]"
        ),
    };
    call = call
        .args(["-filter_complex", &graph, "-map", "[out]", "-c:a", "aac", "-b:a", "128k", "-ar", "48000"])
        .args(["-map_metadata", "-1", "-f", "mp4"])
        .arg(partial.path());
    let duration = facts.duration_secs;
    run::with_progress(call, duration, &mut |_| {}).map_err(|e| encode_error(speech, e))?;
    partial.publish().map_err(io_error(out))
}
