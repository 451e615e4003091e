//! A dub track after an edit: only the stretch around the changed speech is mixed
//! and encoded again, and its AAC frames take the place of the previous track's
//! frames there; every other frame is the previous track's, byte for byte. A
//! one-cue edit of a minute's dub re-mixes a few seconds instead of the minute
//! (the mix and its encode were most of an edit's cost).
//!
//! Why this holds together:
//! - AAC-LC frames decode on their own (one frame's output overlaps the next by
//!   half a transform, nothing more), and ffmpeg's encoder puts its frames on the
//!   same 1024-sample grid from the start of every encode, after one frame of
//!   priming. A window encoded from a frame boundary therefore lines up with the
//!   previous track frame for frame.
//! - The window starts [`PREROLL_MS`] before the first frame it replaces, so the
//!   ducking compressor's and the limiter's state and the source decoder have
//!   settled to what they were in the full mix; it is taken up to [`TAIL_MS`]
//!   after the changed speech ends, by which time the ducking has released to
//!   what it was without the change. Both ends of the splice fall where the new
//!   and the previous mix are the same signal.
//! - The window's start is a whole number of samples at 48 kHz, at the speech's
//!   rate and at the source's, so both inputs are seeked to exact samples and
//!   resampled on the full mix's grid.
//!
//! The frames are cut and joined in ADTS framing ([`crate::adts`]) and put back
//! into an `.m4a` with the encoder's priming in its edit list, as the full mix has.

use std::ops::Range;
use std::path::Path;

use babelcast_core::MediaFacts;
use babelcast_process::Program;
use babelcast_store::StagedFile;

use crate::hls::{PackageError, encode_error, io_error};
use crate::mix::{AAC, DubMode, levelled, mix_graph, mix_inputs};
use crate::{adts, run};

/// Samples per AAC frame, and the dub's sample rate.
const FRAME: u64 = 1024;
const RATE: u64 = 48_000;

/// Replaced before the changed speech starts: the limiter looks 5 ms ahead and a
/// frame's transform reaches one frame back.
const LEAD_MS: u64 = 50;
/// Replaced after the changed speech ends: the ducking releases over 400 ms
/// (a time constant); two seconds leave under a hundredth of the difference,
/// which the test below finds within the AAC encoder's own error.
const TAIL_MS: u64 = 2000;
/// Mixed, and thrown away, before the first replaced frame.
const PREROLL_MS: u64 = 2000;
/// Encoded, and thrown away, after the last replaced frame (the encoder's end).
const RUNOUT_FRAMES: u64 = 8;

/// A window mixed again, in frames of the track (frame `f` plays samples
/// `f * 1024 .. (f + 1) * 1024`): `mixed` is encoded, `replaced` taken from it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    mixed: Range<u64>,
    replaced: Range<u64>,
}

/// The windows that cover the `changed` stretches of speech (milliseconds) in a
/// track of `frames` frames, each starting on a multiple of `step` frames;
/// windows that would overlap are one.
fn plan(changed: &[Range<u64>], frames: u64, step: u64) -> Vec<Window> {
    let preroll = PREROLL_MS * RATE / 1000 / FRAME + 1;
    let mut replaced: Vec<Range<u64>> = changed
        .iter()
        .filter(|c| c.start < c.end)
        .map(|c| {
            let start = (c.start.saturating_sub(LEAD_MS) * RATE / 1000 / FRAME).min(frames);
            let end = ((c.end + TAIL_MS) * RATE / 1000).div_ceil(FRAME).min(frames);
            start..end
        })
        .filter(|r| r.start < r.end)
        .collect();
    replaced.sort_by_key(|r| r.start);
    let mixed_from = |start: u64| start.saturating_sub(preroll) / step * step;
    let mut windows: Vec<Window> = Vec::new();
    for r in replaced {
        match windows.last_mut() {
            Some(last) if mixed_from(r.start) < last.mixed.end => {
                last.replaced.end = last.replaced.end.max(r.end);
                last.mixed.end = (last.replaced.end + RUNOUT_FRAMES).min(frames);
            }
            _ => windows.push(Window {
                mixed: mixed_from(r.start)..(r.end + RUNOUT_FRAMES).min(frames),
                replaced: r,
            }),
        }
    }
    windows
}

/// The smallest number of frames that is a whole number of samples at `rate`.
fn frames_per_whole_sample(rate: u64) -> u64 {
    RATE / gcd_u64(FRAME * rate.max(1), RATE)
}

/// Writes to `out` the dub track of `speech` (a WAV at `speech_rate` Hz) mixed
/// as [`crate::dub_track`] mixes it at `gain_db`, made from `previous`, the track
/// of a speech that differs from `speech` only within the `changed` stretches
/// (milliseconds). Returns the seconds mixed again, or `None` (nothing written)
/// when the windows would cover more than half the track: a full mix is then
/// about as fast.
#[allow(clippy::too_many_arguments)]
pub fn splice_dub_track(
    ffmpeg: &Program,
    source: &Path,
    facts: &MediaFacts,
    speech: (&Path, u32),
    mode: DubMode,
    gain_db: f64,
    previous: &Path,
    changed: &[Range<u64>],
    out: &Path,
) -> Result<Option<f64>, PackageError> {
    let (speech, speech_rate) = speech;
    let quiet = ["-nostdin", "-hide_banner", "-nostats", "-v", "error", "-y"];
    let extract = run::untrusted_input(ffmpeg.call().args(quiet), previous)
        .map_err(io_error(previous))?
        .args(["-map", "0:a:0", "-c:a", "copy", "-f", "adts", "pipe:1"]);
    let previous_stream = run::read_all(extract).map_err(|e| encode_error(previous, e))?;
    let unexpected = |path: &Path, e: adts::AdtsError| PackageError::Output {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let old = adts::frames(&previous_stream).map_err(|e| unexpected(previous, e))?;
    // The first frame is the encoder's priming: frame f of the track is old[f + 1].
    let frames = old.len().saturating_sub(1) as u64;

    let (mix, reads_source) = mix_graph(facts, mode);
    let source_rate = facts.audio.first().filter(|_| reads_source).map(|a| u64::from(a.sample_rate));
    let step = [Some(u64::from(speech_rate)), source_rate]
        .into_iter()
        .flatten()
        .map(frames_per_whole_sample)
        .fold(1, |a, b| a / gcd_u64(a, b) * b);
    let windows = plan(changed, frames, step);
    let mixed: u64 = windows.iter().map(|w| w.mixed.end - w.mixed.start).sum();
    if mixed * 2 > frames {
        return Ok(None);
    }

    let mut spliced: Vec<u8> = Vec::with_capacity(previous_stream.len() + previous_stream.len() / 8);
    // The priming frame: the first window's, when it starts at the track's start.
    if windows.first().is_none_or(|w| w.replaced.start > 0) {
        spliced.extend_from_slice(old.first().copied().unwrap_or_default());
    }
    let mut next = 0u64; // the next frame of the track still to be written
    let graph = levelled(&mix, gain_db);
    for window in &windows {
        let secs = |frames: u64| format!("{:.6}", (frames * FRAME) as f64 / RATE as f64);
        let seek = [
            "-ss".to_owned(),
            secs(window.mixed.start),
            "-t".to_owned(),
            secs(window.mixed.end - window.mixed.start),
        ];
        let call = mix_inputs(ffmpeg.call().args(quiet), speech, reads_source.then_some(source), &seek)?
            .args(["-filter_complex", &graph, "-map", "[out]"])
            .args(AAC)
            .args(["-f", "adts", "pipe:1"]);
        let stream = run::read_all(call).map_err(|e| encode_error(speech, e))?;
        let new = adts::frames(&stream).map_err(|e| unexpected(speech, e))?;
        // Frame f of the track is new[f - mixed.start + 1].
        let at = |f: u64| (f - window.mixed.start + 1) as usize;
        // From the track's start, the window's priming frame too.
        let first = if window.replaced.start == 0 { 0 } else { at(window.replaced.start) };
        let to_end = window.replaced.end == frames;
        let wanted = if to_end { new.len() } else { at(window.replaced.end) };
        if new.len() < wanted || first > wanted {
            return Err(PackageError::Output {
                path: speech.to_owned(),
                reason: format!(
                    "the re-mixed window has {} frames, {} were needed",
                    new.len(),
                    at(window.replaced.end)
                ),
            });
        }
        for frame in &old[(next + 1) as usize..(window.replaced.start + 1) as usize] {
            spliced.extend_from_slice(frame);
        }
        for frame in &new[first..wanted] {
            spliced.extend_from_slice(frame);
        }
        next = if to_end { frames + 1 } else { window.replaced.end };
    }
    for frame in old.iter().skip((next + 1) as usize) {
        spliced.extend_from_slice(frame);
    }

    // Back into an .m4a, the priming frame in its edit list as the encoder put it.
    let partial = StagedFile::new(out, ".m4a").map_err(io_error(out))?;
    let remux = ffmpeg
        .call()
        .args(["-hide_banner", "-nostats", "-v", "error", "-y"])
        .args(["-itsoffset", &format!("-{:.6}", FRAME as f64 / RATE as f64)])
        .args(["-f", "aac", "-protocol_whitelist", "pipe", "-i", "pipe:0"])
        .args(["-c:a", "copy", "-map_metadata", "-1", "-f", "mp4"])
        .arg(partial.path())
        .stdin(spliced);
    run::read_all(remux).map_err(|e| encode_error(out, e))?;
    partial.publish().map_err(io_error(out))?;
    Ok(Some((mixed * FRAME) as f64 / RATE as f64))
}

fn gcd_u64(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd_u64(b, a % b) }
}

#[cfg(test)]
// A slice of changed stretches that holds one stretch, not a range made a list.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    const VOICES: &str = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-";

    fn ffmpeg(args: &[&str]) -> Vec<u8> {
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-nostdin"])
            .args(args)
            .output()
            .expect("ffmpeg");
        assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    fn path(p: &Path) -> &str {
        p.to_str().expect("utf-8")
    }

    /// 30 s of dub speech at 22.05 kHz: a reader at 2 s and the clip `second` at 18 s.
    fn speech(dir: &Path, name: &str, second: &str) -> PathBuf {
        let out = dir.join(name);
        ffmpeg(&[
            "-i",
            &format!("{VOICES}0870.wav"),
            "-i",
            &format!("{VOICES}{second}.wav"),
            "-filter_complex",
            "[0:a]adelay=2000,apad[a];[1:a]adelay=18000,apad[b];[a][b]amix=inputs=2:normalize=0,atrim=0:30,aresample=22050",
            "-ac",
            "1",
            path(&out),
        ]);
        out
    }

    fn pcm(bytes: &[u8]) -> Vec<f32> {
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    }

    fn decode(track: &Path) -> Vec<f32> {
        pcm(&ffmpeg(&["-i", path(track), "-f", "f32le", "-ac", "2", "-ar", "48000", "pipe:1"]))
    }

    /// The mix itself, before AAC: what both tracks are an encoding of.
    fn reference(speech: &Path, source: &Path, facts: &MediaFacts, gain_db: f64) -> Vec<f32> {
        let (mix, _) = mix_graph(facts, DubMode::Duck);
        pcm(&ffmpeg(&[
            "-i",
            path(speech),
            "-i",
            path(source),
            "-filter_complex",
            &levelled(&mix, gain_db),
            "-map",
            "[out]",
            "-f",
            "f32le",
            "pipe:1",
        ]))
    }

    /// The energy of `a - b` in each 1024-sample frame (stereo interleaved).
    fn error_per_frame(a: &[f32], b: &[f32]) -> Vec<f64> {
        a.chunks(2048)
            .zip(b.chunks(2048))
            .map(|(x, y)| x.iter().zip(y).map(|(x, y)| f64::from(x - y).powi(2)).sum())
            .collect()
    }

    #[test]
    fn a_spliced_track_is_the_previous_one_outside_the_change_and_a_full_mix_inside() {
        let dir = tempfile::tempdir().expect("tmp");
        // The original sound: another reader and a tone, at 44.1 kHz (so seeks
        // must land on whole samples at two rates).
        let source = dir.path().join("source.mp4");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=10:duration=30",
            "-i",
            &format!("{VOICES}0920.wav"),
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:duration=30:sample_rate=44100",
            "-filter_complex",
            "[1:a]aloop=loop=-1:size=2e6,atrim=0:30,volume=0.6[v];[v][2:a]amix=inputs=2:duration=longest,aresample=44100[a]",
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            path(&source),
        ]);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let facts = runtime
            .block_on(
                crate::Prober::new(Program::ffprobe(), std::time::Duration::from_secs(60)).probe(&source),
            )
            .expect("probe");
        assert_eq!(facts.audio[0].sample_rate, 44_100);
        let (before, after) = (speech(dir.path(), "a.wav", "0880"), speech(dir.path(), "b.wav", "0930"));
        let program = Program::ffmpeg();
        let gain = 3.0;
        let track = |speech: &Path, name: &str| {
            let out = dir.path().join(name);
            crate::dub_track(
                &program,
                &source,
                &facts,
                speech,
                DubMode::Duck,
                crate::Level::Kept(gain),
                &out,
            )
            .expect("dub track");
            out
        };
        let previous = track(&before, "previous.m4a");
        let full = track(&after, "full.m4a");

        // The clip at 18 s changed (2.99 s before, 3.29 s now).
        let spliced = dir.path().join("spliced.m4a");
        let mixed = splice_dub_track(
            &program,
            &source,
            &facts,
            (&after, 22_050),
            DubMode::Duck,
            gain,
            &previous,
            &[18_000..21_290],
            &spliced,
        )
        .expect("splice")
        .expect("a window");
        assert!((7.0..8.0).contains(&mixed), "{mixed} s mixed again");

        // Outside the replaced frames, the previous track's frames, byte for byte.
        let replaced = (17_950 * 48 / 1024) as usize..((21_290 + TAIL_MS) * 48).div_ceil(1024) as usize;
        let frames_of = |track: &Path| {
            let stream = ffmpeg(&["-i", path(track), "-c:a", "copy", "-f", "adts", "pipe:1"]);
            adts::frames(&stream).expect("adts").into_iter().map(<[u8]>::to_vec).collect::<Vec<_>>()
        };
        let (old, new) = (frames_of(&previous), frames_of(&spliced));
        assert_eq!(old.len(), new.len());
        // (The first is the encoder's priming; frame f of the track is f + 1.)
        let differing: Vec<usize> = (1..old.len()).filter(|&k| old[k] != new[k]).map(|k| k - 1).collect();
        assert!(differing.iter().all(|f| replaced.contains(f)), "{differing:?} outside {replaced:?}");
        assert!(differing.len() * 2 > replaced.len(), "{} of {replaced:?} changed", differing.len());

        let (previous, full, spliced) = (decode(&previous), decode(&full), decode(&spliced));
        assert_eq!(spliced.len(), previous.len());
        assert!(
            spliced.len().abs_diff(full.len()) <= 2 * 1024,
            "{} vs {} samples",
            spliced.len(),
            full.len()
        );
        // And they sound the same, at least 50 dB under the signal (what differs
        // is the decoder's noise substitution, whose random state runs on across
        // the splice).
        let same = error_per_frame(&spliced, &previous);
        let energy = error_per_frame(&previous, &vec![0.0; previous.len()]);
        for (f, e) in same.iter().enumerate() {
            if !(replaced.start - 1..replaced.end + 1).contains(&f) {
                assert!(
                    *e <= 1e-5 * energy[f] + 1e-7,
                    "frame {f}: {e:.2e} off the previous track's {:.2e}",
                    energy[f]
                );
            }
        }
        assert!(same[replaced.clone()].iter().sum::<f64>() > 1.0, "the changed speech is in the track");
        // Inside, it is as close to the mix as a full mix's encode is, frame by
        // frame, the splice points included: no click, no shift.
        let mix = reference(&after, &source, &facts, gain);
        let (ours, theirs) = (error_per_frame(&spliced, &mix), error_per_frame(&full, &mix));
        for f in replaced {
            let energy: f64 = mix[f * 2048..(f + 1) * 2048].iter().map(|s| f64::from(*s).powi(2)).sum();
            assert!(
                ours[f] <= 4.0 * theirs[f] + 1e-4 * energy + 1e-6,
                "frame {f}: error {:.2e} spliced vs {:.2e} fully mixed (energy {energy:.2e})",
                ours[f],
                theirs[f]
            );
        }
    }

    #[test]
    fn windows_start_on_whole_samples_cover_the_change_and_merge_when_close() {
        // 22.05 kHz speech and 44.1 kHz sources: five frames are whole samples.
        assert_eq!(frames_per_whole_sample(22_050), 5);
        assert_eq!(frames_per_whole_sample(44_100), 5);
        assert_eq!(frames_per_whole_sample(48_000), 1);
        assert_eq!(frames_per_whole_sample(16_000), 3);

        let frames = 60 * 48_000 / 1024; // a minute
        let one = plan(&[20_000..22_000], frames, 5);
        assert_eq!(one.len(), 1);
        let w = &one[0];
        // Replaced from 50 ms before the change to the ducking's release after it.
        assert_eq!(w.replaced, (19_950 * 48 / 1024)..((22_000 + TAIL_MS) * 48).div_ceil(1024));
        assert_eq!(w.mixed.start % 5, 0);
        assert!(w.mixed.start * 1024 <= (19_950 - PREROLL_MS) * 48, "the pre-roll");
        assert_eq!(w.mixed.end, w.replaced.end + RUNOUT_FRAMES);

        // Close changes share a window; far ones do not; the ends are clamped.
        assert_eq!(plan(&[20_000..21_000, 24_000..25_000], frames, 5).len(), 1);
        let apart = plan(&[5_000..6_000, 40_000..41_000], frames, 5);
        assert_eq!(apart.len(), 2);
        assert!(apart[0].mixed.end <= apart[1].mixed.start);
        let edges = plan(&[0..500, 59_000..60_000], frames, 5);
        assert_eq!((edges[0].mixed.start, edges[0].replaced.start), (0, 0));
        assert_eq!((edges[1].replaced.end, edges[1].mixed.end), (frames, frames));
        assert!(plan(&[], frames, 5).is_empty());
    }
}
