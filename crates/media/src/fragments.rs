//! A dub's CMAF rendition after a splice: only the fragments whose frames changed
//! are written again, from the spliced track, instead of segmenting the whole
//! track again with ffmpeg.
//!
//! The package's dub rendition is the dub track copied into fragments (see
//! [`crate::Packager::add_dub`]), so its samples are the track's frames, in
//! order, and a splice ([`crate::splice`]) keeps every frame's place and
//! duration: only sizes and bytes change, and only within the spliced windows. A
//! fragment that holds a changed frame gets its new frames, its `trun` sample
//! sizes and `tfhd`'s default size (ffmpeg's is the first sample's; a one-frame
//! fragment lists no other) and the sizes of its `mdat` and `sidx` reference; every other byte, and every other fragment,
//! stays as it is. Sample times, the playlist and the init segment are untouched.
//!
//! The rendition is taken as a copy of the track only when that holds up: the
//! same codec configuration as the init segment's, as many samples as the track
//! has frames, and fewer than half the fragments differing (a track mixed whole
//! again differs everywhere). Anything else, and the caller segments the track
//! with ffmpeg as before. Hand-written, like [`crate::m4a`], for the same reason.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use babelcast_store::write_atomic;

use crate::boxes::{boxes, codec_of, find, find_path, put_u32, u32_at, u64_at, whole};
use crate::m4a::M4a;

/// Where a fragment keeps its sample sizes.
#[derive(Debug)]
enum Sizes {
    /// One u32 per sample in `trun`, the first at `at`, each `stride` bytes on;
    /// `tfhd`'s default size at `first`, when it is the first sample's (as
    /// ffmpeg writes it, sizes listed or not).
    Each { at: usize, stride: usize, first: Option<usize> },
    /// One size for every sample: `tfhd`'s default, at `at`.
    Default { at: usize },
}

/// One media segment of one fragment: `[styp] [sidx] moof mdat`.
#[derive(Debug)]
struct Fragment {
    bytes: Vec<u8>,
    sizes: Sizes,
    /// The `sidx` reference's size field (it counts the `moof` and the `mdat`).
    referenced_at: Option<usize>,
    /// The whole `moof` box.
    moof: Range<usize>,
    /// The `mdat`'s content, the file's last bytes.
    mdat: Range<usize>,
    samples: Vec<Range<usize>>,
}

impl Fragment {
    /// The fragment in `bytes`, if it has the one shape ffmpeg writes for a track.
    fn parse(bytes: Vec<u8>) -> Option<Fragment> {
        let top = boxes(&bytes, 0..bytes.len())?;
        let kinds: Vec<&[u8; 4]> = top.iter().map(|(k, _)| k).collect();
        let known = [
            [b"styp", b"sidx", b"moof", b"mdat"].as_slice(),
            &[b"sidx", b"moof", b"mdat"],
            &[b"styp", b"moof", b"mdat"],
        ];
        if !known.contains(&kinds.as_slice()) {
            return None;
        }
        let moof = whole(&bytes, &find(&top, b"moof")?)?;
        let mdat = find(&top, b"mdat")?;
        let mdat_box = whole(&bytes, &mdat)?;
        if mdat.end != bytes.len() {
            return None;
        }
        let traf = find_path(&bytes, moof.start + 8..moof.end, &[b"traf"])?;
        let traf = boxes(&bytes, traf)?;
        let (tfhd, trun) = (find(&traf, b"tfhd")?, find(&traf, b"trun")?);

        // tfhd: flags, track, then the fields its flags name, in this order.
        let tfhd_flags = u32_at(&bytes, tfhd.start)? & 0x00ff_ffff;
        if tfhd_flags & 0x1 != 0 {
            return None; // a base offset of its own
        }
        let mut at = tfhd.start + 8;
        at += 4 * usize::from(tfhd_flags & 0x2 != 0) + 4 * usize::from(tfhd_flags & 0x8 != 0);
        let default_size = (tfhd_flags & 0x10 != 0).then_some(at);

        // trun: flags, count, data offset (required here), first flags, entries.
        let flags = u32_at(&bytes, trun.start)? & 0x00ff_ffff;
        let count = u32_at(&bytes, trun.start + 4)? as usize;
        if flags & 0x1 == 0 {
            return None;
        }
        let data_offset = u32_at(&bytes, trun.start + 8)? as usize;
        let entries = trun.start + 12 + 4 * usize::from(flags & 0x4 != 0);
        let stride = 4 * ((flags >> 8) & 0xf).count_ones() as usize;
        if trun.end != entries + stride * count || moof.start + data_offset != mdat.start {
            return None;
        }
        let sizes = match (flags & 0x200 != 0, default_size) {
            (true, default) => {
                let at = entries + 4 * usize::from(flags & 0x100 != 0);
                let first = default.filter(|&d| count > 0 && u32_at(&bytes, d) == u32_at(&bytes, at));
                Sizes::Each { at, stride, first }
            }
            (false, Some(at)) => Sizes::Default { at },
            (false, None) => return None,
        };
        let size_of = |k: usize| match sizes {
            Sizes::Each { at, stride, .. } => u32_at(&bytes, at + stride * k),
            Sizes::Default { at } => u32_at(&bytes, at),
        };
        let mut samples = Vec::with_capacity(count);
        let mut from = mdat.start;
        for k in 0..count {
            let size = size_of(k)? as usize;
            samples.push(from..from + size);
            from += size;
        }
        if from != mdat.end {
            return None;
        }

        // sidx: one reference, to the moof and mdat that follow it.
        let referenced_at = match find(&top, b"sidx") {
            None => None,
            Some(sidx) => {
                let version = *bytes.get(sidx.start)?;
                let times = if version == 0 { 8 } else { 16 };
                let first_offset_at = sidx.start + 12 + times / 2;
                let first_offset = if version == 0 {
                    u64::from(u32_at(&bytes, first_offset_at)?)
                } else {
                    u64_at(&bytes, first_offset_at)?
                };
                let count_at = sidx.start + 12 + times + 2;
                let references = u16::from_be_bytes(bytes.get(count_at..count_at + 2)?.try_into().ok()?);
                let at = count_at + 2;
                let reference = u32_at(&bytes, at)?;
                let size = (reference & 0x7fff_ffff) as usize;
                let media = reference >> 31 == 0;
                if references != 1 || first_offset != 0 || !media || size != moof.len() + mdat_box.len() {
                    return None;
                }
                Some(at)
            }
        };
        Some(Fragment { bytes, sizes, referenced_at, moof, mdat, samples })
    }

    fn samples(&self) -> impl Iterator<Item = &[u8]> {
        self.samples.iter().map(|r| &self.bytes[r.clone()])
    }

    /// The fragment with these samples (as many as it has) in place of its own.
    fn with_samples(&self, samples: &[&[u8]]) -> Option<Vec<u8>> {
        if samples.len() != self.samples.len() {
            return None;
        }
        let data: usize = samples.iter().map(|s| s.len()).sum();
        let mut out = Vec::with_capacity(self.mdat.start + data);
        out.extend_from_slice(&self.bytes[..self.mdat.start]);
        match self.sizes {
            Sizes::Each { at, stride, first } => {
                for (k, s) in samples.iter().enumerate() {
                    put_u32(&mut out, at + stride * k, s.len())?;
                }
                if let (Some(first), Some(sample)) = (first, samples.first()) {
                    put_u32(&mut out, first, sample.len())?;
                }
            }
            Sizes::Default { at } => {
                let size = samples.first().map_or(0, |s| s.len());
                if samples.iter().any(|s| s.len() != size) {
                    return None;
                }
                put_u32(&mut out, at, size)?;
            }
        }
        put_u32(&mut out, self.mdat.start - 8, data + 8)?;
        if let Some(at) = self.referenced_at {
            let size = self.moof.len() + 8 + data;
            if size > 0x7fff_ffff {
                return None;
            }
            put_u32(&mut out, at, size)?;
        }
        for s in samples {
            out.extend_from_slice(s);
        }
        Some(out)
    }
}

/// Rewrites the fragments of the rendition made of `init` and `segments` (in
/// order) whose samples differ from the frames of `track`, and returns how many
/// it rewrote; `None`, and nothing written, when the rendition is not a copy of
/// a track like this one (see the module's header).
pub(crate) fn patch_rendition(init: &Path, segments: &[PathBuf], track: &M4a) -> io::Result<Option<usize>> {
    let init_bytes = std::fs::read(init)?;
    let stsd =
        find_path(&init_bytes, 0..init_bytes.len(), &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]);
    let codec = stsd.and_then(|stsd| codec_of(&init_bytes[stsd]));
    if codec.is_none() || codec != codec_of(track.description()) {
        return Ok(None);
    }
    let mut fragments = Vec::with_capacity(segments.len());
    for segment in segments {
        match Fragment::parse(std::fs::read(segment)?) {
            Some(f) => fragments.push(f),
            None => return Ok(None),
        }
    }
    let frames: Vec<&[u8]> = track.frames().collect();
    if fragments.iter().map(|f| f.samples.len()).sum::<usize>() != frames.len() {
        return Ok(None);
    }
    let mut rewritten = Vec::new();
    let mut next = 0;
    for (fragment, segment) in fragments.iter().zip(segments) {
        let new = &frames[next..next + fragment.samples.len()];
        next += fragment.samples.len();
        if !fragment.samples().eq(new.iter().copied()) {
            match fragment.with_samples(new) {
                Some(bytes) => rewritten.push((segment, bytes)),
                None => return Ok(None),
            }
        }
    }
    if rewritten.len() * 2 > fragments.len() {
        return Ok(None);
    }
    for (segment, bytes) in &rewritten {
        write_atomic(segment, bytes)?;
    }
    Ok(Some(rewritten.len()))
}
