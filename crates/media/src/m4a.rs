//! The AAC frames of a one-track `.m4a` as ffmpeg writes a dub track (`ftyp`,
//! `mdat`, then `moov`), read, and written back with some frames replaced by
//! frames of other sizes: the samples are laid out again and only the sample-size
//! and chunk-offset tables are patched, every other byte of the file kept.
//!
//! Written here, not through an MP4 crate: a crate reads the boxes into its own
//! model and writes that model out, dropping what it does not know (the AAC roll
//! group ffmpeg writes, `sgpd`/`sbgp`); patching two tables in place keeps the
//! file what ffmpeg made it, and saves [`crate::splice`] two ffmpeg runs (taking
//! the frames out, putting them back) per edit. A file of another shape is
//! refused, and the splice then goes through ffmpeg.

use std::ops::Range;

use crate::boxes::{SampleTable, boxes, find, u32_at};

/// A one-track `.m4a` held in memory, with where its tables and samples are.
pub(crate) struct M4a {
    bytes: Vec<u8>,
    mdat: Range<usize>,
    /// The entries of `stsz` (one u32 per sample).
    sizes_at: usize,
    /// The entries of `stco` (u32) or `co64` (u64), one per chunk.
    offsets_at: usize,
    wide_offsets: bool,
    /// The samples of each chunk, from `stsc`.
    chunk_samples: Vec<u32>,
    samples: Vec<Range<usize>>,
    /// The content of `stsd` (the codec and its configuration) and of `stts`.
    description: Range<usize>,
    timing: Range<usize>,
}

impl M4a {
    /// The file's frames, if it is one audio track in one `mdat` before its `moov`.
    pub(crate) fn parse(bytes: Vec<u8>) -> Option<M4a> {
        let top = boxes(&bytes, 0..bytes.len())?;
        let mdat = find(&top, b"mdat")?;
        let moov = find(&top, b"moov")?;
        if moov.start < mdat.end {
            return None;
        }
        let trak = find(&boxes(&bytes, moov)?, b"trak")?;
        let mdia = find(&boxes(&bytes, trak)?, b"mdia")?;
        let minf = find(&boxes(&bytes, mdia)?, b"minf")?;
        let table = SampleTable::parse(&bytes, find(&boxes(&bytes, minf)?, b"stbl")?)?;
        // The samples, which must fill the mdat in order (as ffmpeg writes one track).
        let mut samples = Vec::with_capacity(table.sizes.len());
        let mut expected = mdat.start;
        let mut sizes = table.sizes.iter();
        for &(offset, n) in &table.chunks {
            if offset != expected as u64 {
                return None;
            }
            for _ in 0..n {
                let size = *sizes.next()? as usize;
                samples.push(expected..expected + size);
                expected += size;
            }
        }
        (expected == mdat.end).then_some(M4a {
            bytes,
            mdat,
            sizes_at: table.sizes_at,
            offsets_at: table.offsets_at,
            wide_offsets: table.wide_offsets,
            chunk_samples: table.chunks.iter().map(|c| c.1).collect(),
            samples,
            description: table.description,
            timing: table.timing,
        })
    }

    /// The track's frames, in order.
    pub(crate) fn frames(&self) -> impl Iterator<Item = &[u8]> {
        self.samples.iter().map(|r| &self.bytes[r.clone()])
    }

    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }

    /// The track's sample description (`stsd`'s content): its codec and the
    /// codec's configuration.
    pub(crate) fn description(&self) -> &[u8] {
        &self.bytes[self.description.clone()]
    }

    /// The track's sample times (`stts`'s content).
    pub(crate) fn timing(&self) -> &[u8] {
        &self.bytes[self.timing.clone()]
    }

    /// The file with these frames (as many as it has) in place of its own, or
    /// `None` when the count differs or the file would outgrow its offsets.
    pub(crate) fn with_frames(&self, frames: &[&[u8]]) -> Option<Vec<u8>> {
        if frames.len() != self.samples.len() {
            return None;
        }
        let data: usize = frames.iter().map(|f| f.len()).sum();
        let box_start = self.mdat.start - 8;
        // A 32-bit mdat header, as ffmpeg writes for a track this size.
        if u32_at(&self.bytes, box_start)? as usize != self.mdat.len() + 8 {
            return None;
        }
        let mdat_size = u32::try_from(data + 8).ok()?;
        let mut out = Vec::with_capacity(self.bytes.len() - self.mdat.len() + data);
        out.extend_from_slice(&self.bytes[..box_start]);
        out.extend_from_slice(&mdat_size.to_be_bytes());
        out.extend_from_slice(b"mdat");
        for f in frames {
            out.extend_from_slice(f);
        }
        let moov_from = out.len();
        out.extend_from_slice(&self.bytes[self.mdat.end..]);
        // The tables sit at the same places in the moov, moved by the mdat's change.
        let moved = |at: usize| at - self.mdat.end + moov_from;
        for (k, f) in frames.iter().enumerate() {
            let at = moved(self.sizes_at + 4 * k);
            out[at..at + 4].copy_from_slice(&u32::try_from(f.len()).ok()?.to_be_bytes());
        }
        let mut offset = self.mdat.start;
        let mut sample = 0;
        for (c, &n) in self.chunk_samples.iter().enumerate() {
            if self.wide_offsets {
                let at = moved(self.offsets_at + 8 * c);
                out[at..at + 8].copy_from_slice(&(offset as u64).to_be_bytes());
            } else {
                let at = moved(self.offsets_at + 4 * c);
                out[at..at + 4].copy_from_slice(&u32::try_from(offset).ok()?.to_be_bytes());
            }
            for _ in 0..n {
                offset += frames[sample].len();
                sample += 1;
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ffmpeg_track_reads_back_and_rewrites_byte_for_byte_with_only_its_tables_changed() {
        let dir = tempfile::tempdir().expect("tmp");
        let track = dir.path().join("t.m4a");
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-f", "lavfi", "-i", "sine=frequency=440:duration=3"])
            .args(crate::mix::AAC)
            .args(["-ac", "2", "-map_metadata", "-1", "-f", "mp4"])
            .arg(&track)
            .output()
            .expect("ffmpeg");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let bytes = std::fs::read(&track).expect("read");
        let m4a = M4a::parse(bytes.clone()).expect("ffmpeg's shape");
        // 3 s at 48 kHz: 141 frames, and the priming frame.
        assert!((141..=143).contains(&m4a.len()), "{} frames", m4a.len());
        let frames: Vec<&[u8]> = m4a.frames().collect();
        assert_eq!(m4a.with_frames(&frames).expect("same frames"), bytes);

        // One frame longer, one shorter: the file grows by the difference, and
        // ffmpeg reads the new frames where they are.
        let (longer, shorter) =
            ([frames[10], &[0u8; 5][..]].concat(), frames[20][..frames[20].len() - 3].to_vec());
        let mut changed = frames.clone();
        changed[10] = &longer;
        changed[20] = &shorter;
        let file = m4a.with_frames(&changed).expect("rewritten");
        assert_eq!(file.len(), bytes.len() + 2);
        let again = M4a::parse(file).expect("still ffmpeg's shape");
        assert_eq!(again.frames().collect::<Vec<_>>(), changed);
        assert!(m4a.with_frames(&frames[1..]).is_none(), "another frame count");
        assert!(M4a::parse(b"not an mp4 at all".to_vec()).is_none());
    }
}
