//! A language's MP4 after an edit: the previous MP4 with its dub track's samples
//! and its caption tracks replaced, the picture and the original audio copied
//! over byte for byte, instead of a remux of the whole video by ffmpeg (the
//! longest step left in an edit's dub).
//!
//! What may change in an edit, and how each part is carried over:
//! - The dub track after an in-place splice ([`crate::splice`]): the same frames
//!   in number and timing, of other sizes. Its `stsz` gets the new sizes and its
//!   chunks the new frames; it is taken only when its codec and sample times
//!   are the previous track's. Its description keeps the bit rates it
//!   declares (informational: players do not read them).
//! - The caption tracks: their cues, and so their samples, timing and chunking,
//!   may change in any way; each previous caption `trak` is rebuilt around its
//!   new samples ([`crate::mov_text`]). The sample descriptions keep the bit
//!   rates they declare (informational).
//! - Every chunk keeps its order in the file; the new caption chunks go in by
//!   their time, as ffmpeg interleaves them. Then every track's chunk offsets are
//!   written again.
//!
//! The test (`media/tests/edit.rs`) holds the result to a full write of the
//! same MP4: the same streams, and every packet's times, flags and bytes.
//!
//! Every track must be in the language the new MP4 gives it (after a corrected
//! spoken language the file is written whole), and the tracks keep their headers.
//!
//! The file is streamed: only its header (`ftyp`, `moov`) is held in memory, the
//! rest read front to back in large blocks. A file of another shape (not `ftyp`, `moov`,
//! `mdat` in that order, as `+faststart` writes) is refused and written whole
//! again by ffmpeg. Hand-written for the reason [`crate::m4a`] gives.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

use crate::boxes::{Boxes, SampleTable, boxes, codec_of, find, put_u32, u32_at, u64_at, whole};
use crate::m4a::M4a;
use crate::mov_text::{CaptionSamples, caption_trak};

/// The handler types of caption tracks.
const CAPTIONS: [&[u8; 4]; 3] = [b"sbtl", b"text", b"subt"];

/// One track of a file's `moov`.
pub(crate) struct Track {
    /// The whole `trak` box.
    pub(crate) trak: Range<usize>,
    handler: [u8; 4],
    pub(crate) timescale: u64,
    table: SampleTable,
    /// Its language, as `mdhd` says it (`und` for none).
    language: [u8; 3],
}

impl Track {
    fn parse(b: &[u8], content: Range<usize>) -> Option<Track> {
        let trak = whole(b, &content)?;
        let children = boxes(b, content)?;
        let mdia = boxes(b, find(&children, b"mdia")?)?;
        let mdhd = find(&mdia, b"mdhd")?;
        let (timescale, language) = match b.get(mdhd.start)? {
            0 => (u32_at(b, mdhd.start + 12)?, mdhd.start + 20),
            1 => (u32_at(b, mdhd.start + 20)?, mdhd.start + 32),
            _ => return None,
        };
        // ISO 639-2/T, three letters of five bits each after 0x60.
        let packed = u16::from_be_bytes(b.get(language..language + 2)?.try_into().ok()?);
        let language = [10, 5, 0].map(|shift| ((packed >> shift) & 0x1f) as u8 + 0x60);
        let hdlr = find(&mdia, b"hdlr")?;
        let handler = b.get(hdlr.start + 8..hdlr.start + 12)?.try_into().ok()?;
        let stbl = find(&boxes(b, find(&mdia, b"minf")?)?, b"stbl")?;
        let table = SampleTable::parse(b, stbl)?;
        (timescale > 0).then_some(Track { trak, handler, timescale: u64::from(timescale), table, language })
    }

    fn is_captions(&self) -> bool {
        CAPTIONS.contains(&&self.handler)
    }

    /// Each chunk's byte range in the file and the time of its first sample (s).
    fn chunks(&self) -> Option<Vec<(Range<u64>, f64)>> {
        let mut sample = 0usize;
        self.table
            .chunks
            .iter()
            .map(|&(offset, n)| {
                let n = n as usize;
                let bytes: u64 =
                    self.table.sizes.get(sample..sample + n)?.iter().map(|&s| u64::from(s)).sum();
                let time = *self.table.times.get(sample)? as f64 / self.timescale as f64;
                sample += n;
                Some((offset..offset + bytes, time))
            })
            .collect()
    }
}

/// A `moov`'s tracks, and its other children.
fn tracks(b: &[u8], moov: Range<usize>) -> Option<(Vec<Track>, Boxes)> {
    let children = boxes(b, moov)?;
    let tracks = children
        .iter()
        .filter(|(k, _)| k == b"trak")
        .map(|(_, r)| Track::parse(b, r.clone()))
        .collect::<Option<Vec<_>>>()?;
    Some((tracks, children))
}

/// `mvhd`'s time scale and duration.
fn movie_time(b: &[u8], moov: &Boxes) -> Option<(u64, u64)> {
    let mvhd = find(moov, b"mvhd")?;
    match b.get(mvhd.start)? {
        0 => Some((u64::from(u32_at(b, mvhd.start + 12)?), u64::from(u32_at(b, mvhd.start + 16)?))),
        1 => Some((u64::from(u32_at(b, mvhd.start + 20)?), u64_at(b, mvhd.start + 24)?)),
        _ => None,
    }
}

/// Where `tkhd`'s duration is (its position and width), from the box's content.
pub(crate) fn tkhd_duration(b: &[u8], tkhd: &Range<usize>) -> Option<Range<usize>> {
    match b.get(tkhd.start)? {
        0 => Some(tkhd.start + 20..tkhd.start + 24),
        1 => Some(tkhd.start + 28..tkhd.start + 36),
        _ => None,
    }
}

/// One run of bytes of the new `mdat`.
enum Piece {
    /// Bytes of the previous file.
    Kept(Range<u64>),
    /// The dub's frames with these indices.
    Dub(Range<usize>),
    /// Caption samples: these bytes of them all, one after the other.
    Captions(Range<usize>),
}

/// A chunk offset entry of the new `moov`, and the piece it points at.
struct Offset {
    at: usize,
    wide: bool,
    piece: usize,
}

/// The file's boxes before its `mdat`, read whole, and where the `mdat`'s
/// content is; `None` unless it is `ftyp`, `moov`, free space, `mdat` (the last).
fn read_header(file: &mut File) -> io::Result<Option<(Vec<u8>, Range<u64>)>> {
    let len = file.metadata()?.len();
    let mut at = 0u64;
    let mut kinds = Vec::new();
    let mdat = loop {
        let mut header = [0u8; 16];
        let take = (len - at).min(16) as usize;
        if take < 8 {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut header[..take])?;
        let kind: [u8; 4] = header[4..8].try_into().unwrap_or_default();
        let (size, header_len) = match u32_at(&header, 0).unwrap_or(0) {
            1 if take == 16 => (u64_at(&header, 8).unwrap_or(0), 16),
            0 => (len - at, 8),
            n => (u64::from(n), 8),
        };
        if size < header_len || at + size > len {
            return Ok(None);
        }
        if &kind == b"mdat" {
            if at + size != len {
                return Ok(None);
            }
            break at + header_len..len;
        }
        kinds.push(kind);
        at += size;
        // The header of a long video is a few MB; anything larger is not ours.
        if at > 256 << 20 {
            return Ok(None);
        }
    };
    let known = kinds.len() >= 2
        && &kinds[0] == b"ftyp"
        && &kinds[1] == b"moov"
        && kinds[2..].iter().all(|k| k == b"free" || k == b"skip");
    if !known {
        return Ok(None);
    }
    let mut head = vec![0u8; usize::try_from(at).map_err(io::Error::other)?];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut head)?;
    Ok(Some((head, mdat)))
}

/// Writes to `out` the MP4 `previous` with its first audio track's samples
/// replaced by the frames of `dub`, and the samples of its caption tracks (in
/// order) by `captions`. `Ok(false)`, with `out` not to be used, when
/// `previous` is not such a file.
pub(crate) fn rewrite(
    previous: &Path,
    dub: &M4a,
    captions: &[CaptionSamples],
    languages: &Languages,
    out: &Path,
) -> io::Result<bool> {
    let mut file = File::open(previous)?;
    let Some((head, mdat)) = read_header(&mut file)? else { return Ok(false) };
    let text: Vec<u8> = captions.iter().flatten().flat_map(|(_, bytes)| bytes.iter().copied()).collect();
    match plan(&head, &mdat, dub, captions, languages) {
        Some((header, pieces)) => {
            write(file, &header, &pieces, dub, &text, out)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The languages (ISO 639-2/T, `und` for none) of an MP4's audio tracks and of
/// its caption tracks, each in order.
pub(crate) struct Languages {
    pub audio: Vec<[u8; 3]>,
    pub captions: Vec<[u8; 3]>,
}

/// The new file's boxes up to its `mdat`'s content, and that content's pieces.
fn plan(
    head: &[u8],
    mdat: &Range<u64>,
    dub: &M4a,
    captions: &[CaptionSamples],
    languages: &Languages,
) -> Option<(Vec<u8>, Vec<Piece>)> {
    let top = boxes(head, 0..head.len())?;
    let moov_content = find(&top, b"moov")?;
    let (old, moov) = tracks(head, moov_content.clone())?;
    // Every track in the language the new MP4 gives it: after a corrected
    // spoken language the file is written whole.
    let languages_of = |captions: bool| -> Vec<[u8; 3]> {
        let wanted = |t: &&Track| if captions { t.is_captions() } else { &t.handler == b"soun" };
        old.iter().filter(wanted).map(|t| t.language).collect()
    };
    if languages_of(false) != languages.audio || languages_of(true) != languages.captions {
        return None;
    }

    // The dub: the first audio track, a track like the new one.
    let dub_track = old.iter().position(|t| &t.handler == b"soun")?;
    let d = &old[dub_track].table;
    if d.sizes.len() != dub.len()
        || codec_of(&head[d.description.clone()]).is_none_or(|c| Some(c) != codec_of(dub.description()))
        || head[d.timing.clone()] != *dub.timing()
    {
        return None;
    }
    // The caption tracks, one new sample list for each, within the movie.
    let old_captions: Vec<usize> = (0..old.len()).filter(|&k| old[k].is_captions()).collect();
    let (scale, duration) = movie_time(head, &moov)?;
    if old_captions.len() != captions.len() {
        return None;
    }
    let mut new_traks = Vec::with_capacity(captions.len());
    // Each caption sample: its track, its range in the caption bytes, its time.
    let mut incoming: Vec<(usize, Range<usize>, f64)> = Vec::new();
    let mut text_len = 0;
    for (n, samples) in captions.iter().enumerate() {
        let sizes: Vec<(u64, usize)> = samples.iter().map(|(ms, bytes)| (*ms, bytes.len())).collect();
        let total_ms: u64 = sizes.iter().map(|s| s.0).sum();
        if (total_ms * scale).div_ceil(1000) > duration {
            return None;
        }
        new_traks.push(caption_trak(head, &old[old_captions[n]], &sizes, scale)?);
        let mut t = 0;
        for (ms, bytes) in samples {
            incoming.push((n, text_len..text_len + bytes.len(), t as f64 / 1000.0));
            text_len += bytes.len();
            t += ms;
        }
    }

    // The pieces of the new mdat: every previous chunk in its order (the caption
    // tracks' left out), the new caption samples in by time.
    let mut chunks: Vec<(usize, usize, Range<u64>, f64)> = Vec::new();
    for (k, track) in old.iter().enumerate() {
        for (c, (range, time)) in track.chunks()?.into_iter().enumerate() {
            chunks.push((k, c, range, time));
        }
    }
    chunks.sort_by_key(|c| c.2.start);
    let mut end = mdat.start;
    for (_, _, range, _) in &chunks {
        if range.start != end {
            return None; // not one chunk after the other, as ffmpeg writes them
        }
        end = range.end;
    }
    if end != mdat.end {
        return None;
    }
    incoming.sort_by(|a, b| a.2.total_cmp(&b.2));
    let mut pieces = Vec::new();
    // Which piece each chunk became: by track, in chunk order.
    let mut kept = vec![Vec::new(); old.len()];
    let mut placed = vec![Vec::new(); captions.len()];
    let mut incoming = incoming.into_iter().peekable();
    let mut first_frame = Vec::with_capacity(d.chunks.len());
    let mut sample = 0;
    for &(_, n) in &d.chunks {
        first_frame.push(sample);
        sample += n as usize;
    }
    for (k, c, range, time) in chunks {
        if old[k].is_captions() {
            continue;
        }
        while let Some((n, r, _)) = incoming.next_if(|i| i.2 <= time) {
            placed[n].push(pieces.len());
            pieces.push(Piece::Captions(r));
        }
        kept[k].push((c, pieces.len()));
        pieces.push(if k == dub_track {
            let from = first_frame[c];
            Piece::Dub(from..from + d.chunks[c].1 as usize)
        } else {
            Piece::Kept(range)
        });
    }
    for (n, r, _) in incoming {
        placed[n].push(pieces.len());
        pieces.push(Piece::Captions(r));
    }

    // The new moov: every box as it was, the dub's sizes new, the caption
    // tracks' tables new, with the chunk offsets filled in below.
    let frames: Vec<&[u8]> = dub.frames().collect();
    let mut out = Vec::with_capacity(head.len() + text_len);
    out.extend_from_slice(&head[..whole(head, &moov_content)?.start]);
    let moov_at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(b"moov");
    let mut offsets: Vec<Offset> = Vec::new();
    let mut track_no = 0;
    for (kind, content) in &moov {
        let from = whole(head, content)?;
        if kind != b"trak" {
            out.extend_from_slice(&head[from]);
            continue;
        }
        let k = track_no;
        track_no += 1;
        let track = &old[k];
        if let Some(n) = old_captions.iter().position(|&o| o == k) {
            let (trak, at) = &new_traks[n];
            let first = out.len() + at;
            out.extend_from_slice(trak);
            for (c, &piece) in placed[n].iter().enumerate() {
                offsets.push(Offset { at: first + 4 * c, wide: false, piece });
            }
            continue;
        }
        let trak_at = out.len();
        out.extend_from_slice(&head[track.trak.clone()]);
        let moved = |at: usize| trak_at + (at - track.trak.start);
        if k == dub_track {
            for (s, frame) in frames.iter().enumerate() {
                put_u32(&mut out, moved(track.table.sizes_at) + 4 * s, frame.len())?;
            }
        }
        let width = if track.table.wide_offsets { 8 } else { 4 };
        for &(c, piece) in &kept[k] {
            offsets.push(Offset {
                at: moved(track.table.offsets_at) + width * c,
                wide: track.table.wide_offsets,
                piece,
            });
        }
    }
    let size = out.len() - moov_at;
    put_u32(&mut out, moov_at, size)?;
    // What followed the moov (free space), then the mdat's header.
    out.extend_from_slice(&head[whole(head, &moov_content)?.end..]);
    let lengths: Vec<u64> = pieces
        .iter()
        .map(|p| match p {
            Piece::Kept(r) => r.end - r.start,
            Piece::Dub(r) => frames[r.clone()].iter().map(|f| f.len() as u64).sum(),
            Piece::Captions(r) => r.len() as u64,
        })
        .collect();
    let data: u64 = lengths.iter().sum();
    let large = data + 8 > u64::from(u32::MAX);
    if large {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(b"mdat");
        out.extend_from_slice(&(data + 16).to_be_bytes());
    } else {
        out.extend_from_slice(&u32::try_from(data + 8).ok()?.to_be_bytes());
        out.extend_from_slice(b"mdat");
    }
    let mut at = out.len() as u64;
    let mut starts = Vec::with_capacity(pieces.len());
    for len in &lengths {
        starts.push(at);
        at += len;
    }
    for o in &offsets {
        let start = starts[o.piece];
        if o.wide {
            out[o.at..o.at + 8].copy_from_slice(&start.to_be_bytes());
        } else {
            out[o.at..o.at + 4].copy_from_slice(&u32::try_from(start).ok()?.to_be_bytes());
        }
    }
    Some((out, pieces))
}

/// The previous file read front to back in large blocks: the kept pieces come
/// in the file's order with small gaps (the replaced chunks), so each is sliced
/// from memory instead of a seek and a copy per chunk (thousands in a minute).
struct Forward {
    file: File,
    block: Vec<u8>,
    /// Where `block` starts in the file.
    at: u64,
    /// How much is read at a time, at least.
    read: usize,
}

impl Forward {
    const BLOCK: usize = 4 << 20;

    /// Reads `file` from `at` on.
    fn new(mut file: File, at: u64, read: usize) -> io::Result<Forward> {
        file.seek(SeekFrom::Start(at))?;
        Ok(Forward { file, block: Vec::new(), at, read })
    }

    /// The bytes of `range`, which starts at or after the previous range's start.
    fn bytes(&mut self, range: &Range<u64>) -> io::Result<&[u8]> {
        let block_end = self.at + self.block.len() as u64;
        if range.start < self.at {
            return Err(io::Error::other("the previous MP4's pieces out of order"));
        }
        if range.end > block_end {
            // Drop what is behind the range, then read on to its end.
            let behind = usize::try_from(range.start.min(block_end) - self.at).map_err(io::Error::other)?;
            self.block.drain(..behind);
            self.at += behind as u64;
            if self.at < range.start {
                self.file.seek(SeekFrom::Start(range.start))?;
                self.block.clear();
                self.at = range.start;
            }
            let want = usize::try_from(range.end - self.at).map_err(io::Error::other)?.max(self.read);
            let have = self.block.len();
            self.block.resize(want, 0);
            let mut filled = have;
            while filled < want {
                match self.file.read(&mut self.block[filled..])? {
                    0 => break,
                    n => filled += n,
                }
            }
            self.block.truncate(filled);
            if self.at + (filled as u64) < range.end {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the previous MP4 ended early"));
            }
        }
        let from = usize::try_from(range.start - self.at).map_err(io::Error::other)?;
        let to = usize::try_from(range.end - self.at).map_err(io::Error::other)?;
        Ok(&self.block[from..to])
    }
}

fn write(
    previous: File,
    header: &[u8],
    pieces: &[Piece],
    dub: &M4a,
    captions: &[u8],
    out: &Path,
) -> io::Result<()> {
    let frames: Vec<&[u8]> = dub.frames().collect();
    let first = pieces.iter().find_map(|p| if let Piece::Kept(r) = p { Some(r.start) } else { None });
    let mut reader = Forward::new(previous, first.unwrap_or(0), Forward::BLOCK)?;
    let mut writer = BufWriter::with_capacity(Forward::BLOCK, File::create(out)?);
    writer.write_all(header)?;
    for piece in pieces {
        match piece {
            Piece::Kept(range) => writer.write_all(reader.bytes(range)?)?,
            Piece::Dub(range) => {
                for frame in &frames[range.clone()] {
                    writer.write_all(frame)?;
                }
            }
            Piece::Captions(range) => writer.write_all(&captions[range.clone()])?,
        }
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forward_reader_gives_each_range_across_blocks_and_gaps() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..10_000u32).map(|k| (k * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        let mut reader = Forward::new(File::open(&path).expect("open"), 10, 64).expect("reader");
        // Adjacent, with small and large gaps, within a block and across several.
        for range in [10..20u64, 20..21, 30..200, 201..260, 5_000..5_001, 5_001..9_000, 9_999..10_000] {
            let got = reader.bytes(&range).expect("read").to_vec();
            assert_eq!(got, bytes[range.start as usize..range.end as usize], "{range:?}");
        }
        assert!(reader.bytes(&(9_999..10_001)).is_err(), "past the end");
    }
}
