//! Reading ISO-BMFF (MP4) boxes in place, and writing the few that are made
//! anew: what [`crate::m4a`], [`crate::fragments`] and [`crate::mp4_edit`] need to
//! find and patch their tables. Each box is its
//! type and the byte range of its content inside the file's bytes; nothing is
//! copied or decoded beyond that (see `m4a` for why no MP4 crate does this).

use std::ops::Range;

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Writes `value` as a big-endian u32 at `at`, if it fits there.
pub(crate) fn put_u32(b: &mut [u8], at: usize, value: usize) -> Option<()> {
    b.get_mut(at..at + 4)?.copy_from_slice(&u32::try_from(value).ok()?.to_be_bytes());
    Some(())
}

/// Boxes by type, each with the range of its content.
pub(crate) type Boxes = Vec<([u8; 4], Range<usize>)>;

/// The boxes in `b[range]`.
pub(crate) fn boxes(b: &[u8], range: Range<usize>) -> Option<Boxes> {
    let mut out = Vec::new();
    let mut at = range.start;
    while at < range.end {
        let size = u32_at(b, at)? as usize;
        let kind: [u8; 4] = b.get(at + 4..at + 8)?.try_into().ok()?;
        let (size, header) = match size {
            1 => (usize::try_from(u64_at(b, at + 8)?).ok()?, 16),
            0 => (range.end - at, 8),
            n => (n, 8),
        };
        if size < header || at + size > range.end {
            return None;
        }
        out.push((kind, at + header..at + size));
        at += size;
    }
    Some(out)
}

/// The content of the one box of this type in `list` (none, or several: `None`).
pub(crate) fn find(list: &Boxes, kind: &[u8; 4]) -> Option<Range<usize>> {
    let mut found = list.iter().filter(|(k, _)| k == kind);
    let first = found.next()?.1.clone();
    found.next().is_none().then_some(first)
}

/// The content of the one box at this path of types below `range`.
pub(crate) fn find_path(b: &[u8], range: Range<usize>, path: &[&[u8; 4]]) -> Option<Range<usize>> {
    path.iter().try_fold(range, |range, kind| find(&boxes(b, range)?, kind))
}

/// The range of a whole box (its header too) from the range of its content, for
/// a box with a 32-bit size.
pub(crate) fn whole(b: &[u8], content: &Range<usize>) -> Option<Range<usize>> {
    let start = content.start.checked_sub(8)?;
    (u32_at(b, start)? as usize == content.len() + 8).then_some(start..content.end)
}

/// Where one track's samples are, from its sample table (`stbl`): the tables
/// as read, and where the size and offset entries sit (to be patched).
#[derive(Debug, Clone)]
pub(crate) struct SampleTable {
    /// The first `stsz` entry (one u32 per sample).
    pub sizes_at: usize,
    /// The first `stco` (u32) or `co64` (u64) entry, one per chunk.
    pub offsets_at: usize,
    pub wide_offsets: bool,
    /// Each sample's size.
    pub sizes: Vec<u32>,
    /// Each chunk's offset in the file, and its number of samples.
    pub chunks: Vec<(u64, u32)>,
    /// Each sample's decoding time, in the track's time scale (from `stts`).
    pub times: Vec<u64>,
    /// The content of `stsd` and of `stts`.
    pub description: Range<usize>,
    pub timing: Range<usize>,
}

impl SampleTable {
    /// The table in `b[stbl]` (the content of an `stbl` box), if it lists every
    /// sample's size (no one size for all).
    pub(crate) fn parse(b: &[u8], stbl: Range<usize>) -> Option<SampleTable> {
        let stbl = boxes(b, stbl)?;
        let description = find(&stbl, b"stsd")?;
        // stsz: version and flags, one size for all (0: a table), count, table.
        let stsz = find(&stbl, b"stsz")?;
        let count = u32_at(b, stsz.start + 8)? as usize;
        if u32_at(b, stsz.start + 4)? != 0 || stsz.len() != 12 + 4 * count {
            return None;
        }
        let sizes_at = stsz.start + 12;
        let sizes = (0..count).map(|k| u32_at(b, sizes_at + 4 * k)).collect::<Option<Vec<u32>>>()?;
        let (offsets, wide_offsets) = match (find(&stbl, b"stco"), find(&stbl, b"co64")) {
            (Some(stco), None) => (stco, false),
            (None, Some(co64)) => (co64, true),
            _ => return None,
        };
        let chunks = u32_at(b, offsets.start + 4)? as usize;
        let width = if wide_offsets { 8 } else { 4 };
        if offsets.len() != 8 + width * chunks {
            return None;
        }
        // stsc: runs of (first chunk, samples per chunk, description).
        let stsc = find(&stbl, b"stsc")?;
        let runs = u32_at(b, stsc.start + 4)? as usize;
        if stsc.len() != 8 + 12 * runs {
            return None;
        }
        let mut per_chunk = Vec::with_capacity(chunks);
        for r in 0..runs {
            let first = u32_at(b, stsc.start + 8 + 12 * r)? as usize;
            let n = u32_at(b, stsc.start + 12 + 12 * r)?;
            let next = match r + 1 < runs {
                true => u32_at(b, stsc.start + 8 + 12 * (r + 1))? as usize,
                false => chunks + 1,
            };
            if first != per_chunk.len() + 1 || next <= first {
                return None;
            }
            per_chunk.extend(std::iter::repeat_n(n, next - first));
        }
        if per_chunk.len() != chunks || per_chunk.iter().map(|&n| n as usize).sum::<usize>() != count {
            return None;
        }
        let offsets_at = offsets.start + 8;
        let chunks = per_chunk
            .iter()
            .enumerate()
            .map(|(c, &n)| {
                let at = offsets_at + width * c;
                let offset = if wide_offsets { u64_at(b, at)? } else { u64::from(u32_at(b, at)?) };
                Some((offset, n))
            })
            .collect::<Option<Vec<_>>>()?;
        // stts: runs of (samples, duration).
        let timing = find(&stbl, b"stts")?;
        let runs = u32_at(b, timing.start + 4)? as usize;
        if timing.len() != 8 + 8 * runs {
            return None;
        }
        let mut times = Vec::with_capacity(count);
        let mut t = 0u64;
        for r in 0..runs {
            let n = u32_at(b, timing.start + 8 + 8 * r)?;
            let delta = u64::from(u32_at(b, timing.start + 12 + 8 * r)?);
            for _ in 0..n {
                times.push(t);
                t += delta;
            }
        }
        (times.len() == count).then_some(SampleTable {
            sizes_at,
            offsets_at,
            wide_offsets,
            sizes,
            chunks,
            times,
            description,
            timing,
        })
    }
}

/// A sample description (`stsd`'s content) with what a muxer fills in on its
/// own zeroed: an MPEG-4 audio entry's stream id and declared bit rates (in
/// `esds` and `btrt`). Two tracks with the same result hold the same codec in
/// the same configuration. `None` if the description is not one such entry.
pub(crate) fn codec_of(stsd: &[u8]) -> Option<Vec<u8>> {
    let mut out = stsd.to_vec();
    let entries = boxes(stsd, 8..stsd.len())?;
    let [(kind, entry)] = entries.as_slice() else { return None };
    if kind != b"mp4a" {
        return None;
    }
    // The audio sample entry's 28 bytes, then its boxes.
    for (kind, content) in boxes(stsd, entry.start + 28..entry.end)? {
        match &kind {
            b"btrt" if content.len() == 12 => out[content].fill(0),
            b"esds" => {
                // ES descriptor (3): its id; in it the decoder config (4): its
                // buffer size and bit rates, after the object and stream types.
                let mut at = content.start + 4;
                let descriptor = |at: &mut usize| -> Option<u8> {
                    let tag = *stsd.get(*at)?;
                    *at += 1;
                    for _ in 0..4 {
                        let byte = *stsd.get(*at)?;
                        *at += 1;
                        if byte & 0x80 == 0 {
                            break;
                        }
                    }
                    Some(tag)
                };
                if descriptor(&mut at)? != 3 {
                    return None;
                }
                out.get_mut(at..at + 2)?.fill(0);
                let flags = *stsd.get(at + 2)?;
                at += 3;
                at += 2 * usize::from(flags & 0x80 != 0) + 2 * usize::from(flags & 0x20 != 0);
                if flags & 0x40 != 0 {
                    at += 1 + usize::from(*stsd.get(at)?);
                }
                if descriptor(&mut at)? != 4 {
                    return None;
                }
                out.get_mut(at + 2..at + 13)?.fill(0);
            }
            _ => {}
        }
    }
    Some(out)
}

/// A box of `kind` around `children` (each a whole box), and where byte `mark`
/// of child `marked` lands in it.
pub(crate) fn container(
    kind: &[u8; 4],
    children: &[Vec<u8>],
    marked: usize,
    mark: usize,
) -> Option<(Vec<u8>, usize)> {
    let mut out = vec![0, 0, 0, 0];
    out.extend_from_slice(kind);
    let mut landed = None;
    for (k, child) in children.iter().enumerate() {
        if k == marked {
            landed = Some(out.len() + mark);
        }
        out.extend_from_slice(child);
    }
    let size = out.len();
    put_u32(&mut out, 0, size)?;
    Some((out, landed?))
}

/// A full box (version 0, no flags) of `kind`: its entry count, then `entries`.
pub(crate) fn table(kind: &[u8; 4], count: usize, entries: &[u32]) -> Option<Vec<u8>> {
    let mut content = vec![0, 0, 0, 0];
    content.extend_from_slice(&u32::try_from(count).ok()?.to_be_bytes());
    for e in entries {
        content.extend_from_slice(&e.to_be_bytes());
    }
    let mut out = u32::try_from(content.len() + 8).ok()?.to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(&content);
    Some(out)
}

/// Writes `value` into the `width` (4 or 8) bytes at `at`.
pub(crate) fn put_be(b: &mut [u8], at: usize, width: usize, value: u64) -> Option<()> {
    match width {
        4 => b.get_mut(at..at + 4)?.copy_from_slice(&u32::try_from(value).ok()?.to_be_bytes()),
        8 => b.get_mut(at..at + 8)?.copy_from_slice(&value.to_be_bytes()),
        _ => return None,
    }
    Some(())
}
