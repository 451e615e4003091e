//! Reading ISO-BMFF (MP4) boxes in place: what [`crate::m4a`], [`crate::fragments`]
//! and [`crate::download`] need to find the tables they patch. Each box is its
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
