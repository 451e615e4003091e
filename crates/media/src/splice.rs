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
//!   and the previous mix are the same signal. The pre-roll is mixed but not
//!   encoded: the encoder starts [`ENCODE_LEAD_FRAMES`] before the first frame
//!   replaced (the encode was most of a window's time).
//! - The window's start is a whole number of samples at 48 kHz, at the speech's
//!   rate and at the source's, so both inputs are seeked to exact samples and
//!   resampled on the full mix's grid.
//!
//! The previous track's frames are read from its `.m4a` and the spliced frames
//! written back into a copy of it, only its sample tables changed ([`crate::m4a`]).
//! A track of another shape, or a splice that reaches the track's end (and may
//! change its length), goes through ffmpeg instead: the frames taken out in ADTS
//! framing ([`crate::adts`]), joined, and put back into an `.m4a` with the
//! encoder's priming in its edit list, as the full mix has.

use std::ops::Range;
use std::path::Path;

use babelcast_core::MediaFacts;
use babelcast_process::Program;
use babelcast_store::StagedFile;

use crate::adts;
use crate::hls::{PackageError, encode_error, io_error};
use crate::m4a::M4a;
use crate::mix::{AAC, DubMode, levelled, mix_graph, mix_inputs};
use crate::run::{self, QUIET};

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
/// Encoded, and thrown away, before the first replaced frame: a frame's
/// transform overlaps the one before it, and the encoder's first frames after
/// its priming spend their bits differently.
const ENCODE_LEAD_FRAMES: u64 = 4;

/// A window mixed again, in frames of the track (frame `f` plays samples
/// `f * 1024 .. (f + 1) * 1024`): `mixed` is mixed, from its start to its end
/// the part that is encoded, and `replaced` taken from that.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    mixed: Range<u64>,
    replaced: Range<u64>,
}

impl Window {
    /// The first frame encoded.
    fn encoded_from(&self) -> u64 {
        self.replaced.start.saturating_sub(ENCODE_LEAD_FRAMES).max(self.mixed.start)
    }
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
    let unexpected = |path: &Path, e: adts::AdtsError| PackageError::Output {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    // The previous track's frames, read from the file itself when it has the shape
    // ffmpeg gives a dub track (see `m4a`); else through ffmpeg, in ADTS framing.
    let in_place = M4a::parse(std::fs::read(previous).map_err(io_error(previous))?);
    let mut previous_stream = match in_place {
        Some(_) => Vec::new(),
        None => extract_adts(ffmpeg, previous)?,
    };
    // The first frame is the encoder's priming: frame f of the track is old[f + 1].
    let frames = match &in_place {
        Some(m4a) => m4a.len(),
        None => adts::frames(&previous_stream).map_err(|e| unexpected(previous, e))?.len(),
    }
    .saturating_sub(1) as u64;

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
    // A window to the track's end may change its length: that goes through ffmpeg.
    let in_place = in_place.filter(|_| windows.last().is_none_or(|w| w.replaced.end < frames));
    if in_place.is_none() && previous_stream.is_empty() {
        previous_stream = extract_adts(ffmpeg, previous)?;
    }
    let old: Vec<&[u8]> = match &in_place {
        Some(m4a) => m4a.frames().collect(),
        None => adts::frames(&previous_stream).map_err(|e| unexpected(previous, e))?,
    };

    let graph = levelled(&mix, gain_db);
    let mut streams = Vec::with_capacity(windows.len());
    for window in &windows {
        let secs = |frames: u64| format!("{:.6}", (frames * FRAME) as f64 / RATE as f64);
        let seek = [
            "-ss".to_owned(),
            secs(window.mixed.start),
            "-t".to_owned(),
            secs(window.mixed.end - window.mixed.start),
        ];
        // The pre-roll only sets the filters' state: trimmed before the encoder.
        let trim = (window.encoded_from() - window.mixed.start) * FRAME;
        let graph = format!("{graph};[out]atrim=start_sample={trim},asetpts=N/SR/TB[encoded]");
        let call = mix_inputs(ffmpeg.call().args(QUIET), speech, reads_source.then_some(source), &seek)?
            .args(["-filter_complex", &graph, "-map", "[encoded]"])
            .args(AAC)
            .args(["-f", "adts", "pipe:1"]);
        streams.push(run::read_all(call).map_err(|e| encode_error(speech, e))?);
    }

    let mut spliced: Vec<&[u8]> = Vec::with_capacity(old.len() + 8);
    // The priming frame: the first window's, when it starts at the track's start.
    if windows.first().is_none_or(|w| w.replaced.start > 0) {
        spliced.extend(old.first());
    }
    let mut next = 0u64; // the next frame of the track still to be taken
    for (window, stream) in windows.iter().zip(&streams) {
        let new = adts::frames(stream).map_err(|e| unexpected(speech, e))?;
        // Frame f of the track is new[f - encoded_from + 1].
        let at = |f: u64| (f - window.encoded_from() + 1) as usize;
        // From the track's start, the window's priming frame too.
        let first = if window.replaced.start == 0 { 0 } else { at(window.replaced.start) };
        let to_end = window.replaced.end == frames;
        let wanted = if to_end { new.len() } else { at(window.replaced.end) };
        if new.len() < wanted || first > wanted {
            return Err(PackageError::Output {
                path: speech.to_owned(),
                reason: format!("the re-mixed window has {} frames, {wanted} were needed", new.len()),
            });
        }
        spliced.extend(&old[(next + 1) as usize..(window.replaced.start + 1) as usize]);
        // An MP4 holds the frames without their ADTS headers.
        spliced
            .extend(new[first..wanted].iter().map(|f| if in_place.is_some() { adts::payload(f) } else { f }));
        next = if to_end { frames + 1 } else { window.replaced.end };
    }
    spliced.extend(old.iter().skip((next + 1) as usize));

    let partial = StagedFile::new(out, ".m4a").map_err(io_error(out))?;
    match &in_place {
        Some(m4a) => {
            let file = m4a.with_frames(&spliced).ok_or_else(|| PackageError::Output {
                path: previous.to_owned(),
                reason: "the spliced frames do not fit the track's tables".to_owned(),
            })?;
            std::fs::write(partial.path(), file).map_err(io_error(out))?;
        }
        None => {
            // Back into an .m4a, the priming frame in its edit list as the encoder put it.
            let remux = ffmpeg
                .call()
                .args(["-hide_banner", "-nostats", "-v", "error", "-y"])
                .args(["-itsoffset", &format!("-{:.6}", FRAME as f64 / RATE as f64)])
                .args(["-f", "aac", "-protocol_whitelist", "pipe", "-i", "pipe:0"])
                .args(["-c:a", "copy", "-map_metadata", "-1", "-f", "mp4"])
                .arg(partial.path())
                .stdin(spliced.concat());
            run::read_all(remux).map_err(|e| encode_error(out, e))?;
        }
    }
    partial.publish().map_err(io_error(out))?;
    Ok(Some((mixed * FRAME) as f64 / RATE as f64))
}

/// The track's frames in ADTS framing, through ffmpeg.
fn extract_adts(ffmpeg: &Program, track: &Path) -> Result<Vec<u8>, PackageError> {
    let extract = run::untrusted_input(ffmpeg.call().args(QUIET), track)
        .map_err(io_error(track))?
        .args(["-map", "0:a:0", "-c:a", "copy", "-f", "adts", "pipe:1"]);
    run::read_all(extract).map_err(|e| encode_error(track, e))
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

    /// 30 s of dub speech at 22.05 kHz: a reader at 2 s and the clip `second` at `at_ms`.
    fn speech(dir: &Path, name: &str, second: &str, at_ms: u64) -> PathBuf {
        let out = dir.join(name);
        ffmpeg(&[
            "-i",
            &format!("{VOICES}0870.wav"),
            "-i",
            &format!("{VOICES}{second}.wav"),
            "-filter_complex",
            &format!(
                "[0:a]adelay=2000,apad[a];[1:a]adelay={at_ms},apad[b];[a][b]amix=inputs=2:normalize=0,atrim=0:30,aresample=22050"
            ),
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
        // The clip at `at` changed (2.99 s before, 3.29 s now): in the middle of
        // the track (spliced in a copy of its file), and at its end (which may
        // change its length, so through ffmpeg).
        for at in [18_000, 26_000] {
            splice_matches_the_mix(dir.path(), &source, &facts, at);
        }
    }

    fn splice_matches_the_mix(dir: &Path, source: &Path, facts: &MediaFacts, at: u64) {
        let before = speech(dir, &format!("a-{at}.wav"), "0880", at);
        let after = speech(dir, &format!("b-{at}.wav"), "0930", at);
        let program = Program::ffmpeg();
        let gain = 3.0;
        let track = |speech: &Path, name: &str| {
            let out = dir.join(format!("{name}-{at}.m4a"));
            crate::dub_track(&program, source, facts, speech, DubMode::Duck, crate::Level::Kept(gain), &out)
                .expect("dub track");
            out
        };
        let previous = track(&before, "previous");
        let full = track(&after, "full");
        let spliced = dir.join(format!("spliced-{at}.m4a"));
        let changed = at..at + 3290;
        let mixed = splice_dub_track(
            &program,
            source,
            facts,
            (&after, 22_050),
            DubMode::Duck,
            gain,
            &previous,
            std::slice::from_ref(&changed),
            &spliced,
        )
        .expect("splice")
        .expect("a window");
        assert!((5.0..8.0).contains(&mixed), "{at}: {mixed} s mixed again");

        // Outside the replaced frames, the previous track's frames, byte for byte.
        let frames_of = |track: &Path| {
            let stream = ffmpeg(&["-i", path(track), "-c:a", "copy", "-f", "adts", "pipe:1"]);
            adts::frames(&stream).expect("adts").into_iter().map(<[u8]>::to_vec).collect::<Vec<_>>()
        };
        let (old, new) = (frames_of(&previous), frames_of(&spliced));
        assert!(old.len().abs_diff(new.len()) <= 2, "{at}: {} frames, were {}", new.len(), old.len());
        let end = ((changed.end + TAIL_MS) * 48).div_ceil(1024).min(old.len() as u64 - 1);
        let replaced = ((changed.start - LEAD_MS) * 48 / 1024) as usize..end as usize;
        let to_end = replaced.end + 1 == old.len();
        assert_eq!(to_end, at == 26_000);
        // (The first is the encoder's priming; frame f of the track is f + 1.)
        let differing: Vec<usize> =
            (1..old.len().min(new.len())).filter(|&k| old[k] != new[k]).map(|k| k - 1).collect();
        assert!(differing.iter().all(|f| replaced.contains(f)), "{at}: {differing:?} outside {replaced:?}");
        assert!(differing.len() * 2 > replaced.len(), "{at}: {} of {replaced:?} changed", differing.len());

        let (previous, full, spliced) = (decode(&previous), decode(&full), decode(&spliced));
        if !to_end {
            assert_eq!(spliced.len(), previous.len());
        }
        assert!(
            spliced.len().abs_diff(full.len()) <= 2 * 1024,
            "{at}: {} vs {} samples",
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
                    "{at}: frame {f}: {e:.2e} off the previous track's {:.2e}",
                    energy[f]
                );
            }
        }
        assert!(same[replaced.clone()].iter().sum::<f64>() > 1.0, "the changed speech is in the track");
        // Inside, it is as close to the mix as a full mix's encode is, frame by
        // frame, the splice points included: no click, no shift (up to the last
        // frame, the encoder's padding).
        let mix = reference(&after, source, facts, gain);
        let (ours, theirs) = (error_per_frame(&spliced, &mix), error_per_frame(&full, &mix));
        let last = ours.len().min(theirs.len()).min(mix.len() / 2048) - 1;
        for f in replaced.start..replaced.end.min(last) {
            let energy: f64 = mix[f * 2048..(f + 1) * 2048].iter().map(|s| f64::from(*s).powi(2)).sum();
            assert!(
                ours[f] <= 4.0 * theirs[f] + 1e-4 * energy + 1e-6,
                "{at}: frame {f}: error {:.2e} spliced vs {:.2e} fully mixed (energy {energy:.2e})",
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
