//! The caption tracks of an edited MP4 ([`crate::mp4_edit`]): their `mov_text`
//! samples as ffmpeg makes them from the SRT a full write gives it (a 16-bit
//! length and the text, an empty sample over each gap and one of no length at
//! the end, times in the track's time scale), and each previous caption `trak`
//! rebuilt around them: its boxes as they were (header, sample description,
//! title), new sample tables (one sample per chunk) and its new length in its
//! header, media header and edit list. Plain text only: a cue with markup
//! ffmpeg would read (`<i>`, `{\an8}`), or cues that overlap, and the MP4 is
//! written whole instead.

use babelcast_core::Cue;
use babelcast_core::subtitle::srt;

use crate::boxes::{Boxes, boxes, container, find, put_be, put_u32, table, u32_at, whole};
use crate::mp4_edit::{Track, tkhd_duration};

/// One caption track's samples: each one's duration (ms) and bytes.
pub(crate) type CaptionSamples = Vec<(u64, Vec<u8>)>;

/// A caption track's `mov_text` samples as ffmpeg makes them from the SRT a
/// full write gives it, or `None` when ffmpeg would read markup in the text or
/// the cues overlap (see the module's header).
pub(crate) fn mov_text(cues: &[Cue]) -> Option<CaptionSamples> {
    let mut samples = Vec::with_capacity(cues.len() * 2);
    let mut at = 0u64;
    for cue in cues {
        let lines = srt::cue_lines(cue);
        if lines.is_empty() {
            continue;
        }
        let text = lines.join("\n");
        let (start, end) = (cue.start.0, cue.end.0);
        if text.contains(['<', '>', '{', '}', '\\']) || start < at || end <= start {
            return None;
        }
        if start > at {
            samples.push((start - at, vec![0, 0]));
        }
        let mut bytes = u16::try_from(text.len()).ok()?.to_be_bytes().to_vec();
        bytes.extend_from_slice(text.as_bytes());
        samples.push((end - start, bytes));
        at = end;
    }
    // And an empty sample of no length closing the last cue, as ffmpeg ends a
    // text track.
    (!samples.is_empty()).then(|| samples.push((0, vec![0, 0])));
    Some(samples)
}

/// The whole boxes of `list`, the one of type `replace` swapped for `with`, and
/// which one that is.
fn swapped(b: &[u8], list: &Boxes, replace: &[u8; 4], with: Vec<u8>) -> Option<(Vec<Vec<u8>>, usize)> {
    let mut out = Vec::with_capacity(list.len());
    let mut marked = None;
    let mut with = Some(with);
    for (kind, content) in list {
        if kind == replace {
            marked = Some(out.len());
            out.push(with.take()?);
        } else {
            out.push(b[whole(b, content)?].to_vec());
        }
    }
    Some((out, marked?))
}

/// The caption track `track` of `b` made to hold samples of these durations
/// (ms) and sizes, in a movie of time scale `movie_scale`: its boxes as they
/// were, its sample tables new (one sample per chunk) and its length new in
/// its header, media header and edit list. Also where its first chunk offset
/// entry (u32) is in it.
pub(crate) fn caption_trak(
    b: &[u8],
    track: &Track,
    samples: &[(u64, usize)],
    movie_scale: u64,
) -> Option<(Vec<u8>, usize)> {
    let scale = track.timescale;
    if !scale.is_multiple_of(1000) || samples.is_empty() {
        return None;
    }
    let total_ms: u64 = samples.iter().map(|s| s.0).sum();
    let (media, movie) = (total_ms * (scale / 1000), (total_ms * movie_scale).div_ceil(1000));
    // The sample tables: times (runs of one duration), chunks, sizes, offsets.
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &(ms, _) in samples {
        let delta = u32::try_from(ms * (scale / 1000)).ok()?;
        match runs.last_mut() {
            Some((n, d)) if *d == delta => *n += 1,
            _ => runs.push((1, delta)),
        }
    }
    let stts = table(b"stts", runs.len(), &runs.iter().flat_map(|&(n, d)| [n, d]).collect::<Vec<_>>())?;
    let stsc = table(b"stsc", 1, &[1, 1, 1])?;
    let sizes = samples.iter().map(|s| u32::try_from(s.1).ok()).collect::<Option<Vec<u32>>>()?;
    // stsz: one size for all (0: a table), then the count and the table.
    let mut stsz = table(b"stsz", 0, &[u32::try_from(sizes.len()).ok()?])?;
    sizes.iter().for_each(|s| stsz.extend_from_slice(&s.to_be_bytes()));
    let size = stsz.len();
    put_u32(&mut stsz, 0, size)?;
    let stco = table(b"stco", samples.len(), &vec![0; samples.len()])?;

    let children = boxes(b, track.trak.start + 8..track.trak.end)?;
    let mdia_children = boxes(b, find(&children, b"mdia")?)?;
    let minf_children = boxes(b, find(&mdia_children, b"minf")?)?;
    let stbl_children = boxes(b, find(&minf_children, b"stbl")?)?;
    if stbl_children.len() != 5 {
        return None; // more than ffmpeg writes for a text track
    }
    let stsd = b[whole(b, &find(&stbl_children, b"stsd")?)?].to_vec();
    // The first offset entry: after stco's header, version and count.
    let (stbl, at) = container(b"stbl", &[stsd, stts, stsc, stsz, stco], 4, 16)?;
    let (list, k) = swapped(b, &minf_children, b"stbl", stbl)?;
    let (minf, at) = container(b"minf", &list, k, at)?;
    let (mut list, k) = swapped(b, &mdia_children, b"minf", minf)?;
    // The media header's duration, in the track's time scale.
    let mdhd = mdia_children.iter().position(|(kind, _)| kind == b"mdhd")?;
    match list[mdhd].get(8)? {
        0 => put_be(&mut list[mdhd], 8 + 16, 4, media)?,
        1 => put_be(&mut list[mdhd], 8 + 24, 8, media)?,
        _ => return None,
    }
    let (mdia, at) = container(b"mdia", &list, k, at)?;
    let (mut list, k) = swapped(b, &children, b"mdia", mdia)?;
    for (n, (kind, content)) in children.iter().enumerate() {
        match kind {
            b"tkhd" => {
                let r = tkhd_duration(b, content)?;
                put_be(&mut list[n], r.start - content.start + 8, r.len(), movie)?;
            }
            b"edts" => {
                // One edit, from the media's start: its length is the track's.
                let elst = find(&boxes(b, content.clone())?, b"elst")?;
                let width = if *b.get(elst.start)? == 1 { 8 } else { 4 };
                let media_time = elst.start + 8 + width;
                if u32_at(b, elst.start + 4)? != 1
                    || b.get(media_time..media_time + width)?.iter().any(|&x| x != 0)
                {
                    return None;
                }
                // Inside edts: the elst box's header, its version and count.
                put_be(&mut list[n], 8 + (elst.start - content.start) + 8, width, movie)?;
            }
            _ => {}
        }
    }
    container(b"trak", &list, k, at)
}
