//! AAC in ADTS framing, split into its frames, so a dub track can be spliced frame
//! by frame ([`crate::splice`]). Written here, not taken from a crate: the one
//! field needed is the 13-bit frame length of a fixed 7-byte header, and the
//! crates that parse ADTS bring a streaming parser's API around those few lines.

/// Why bytes are not an ADTS stream.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an ADTS stream: {reason} at byte {offset}")]
pub struct AdtsError {
    /// Where the stream stops making sense.
    pub offset: usize,
    /// What is wrong there.
    pub reason: &'static str,
}

/// The frames of an ADTS stream, each with its header, in order.
pub fn frames(stream: &[u8]) -> Result<Vec<&[u8]>, AdtsError> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let header = stream.get(at..at + 7).ok_or(AdtsError { offset: at, reason: "a truncated header" })?;
        if header[0] != 0xFF || header[1] & 0xF0 != 0xF0 {
            return Err(AdtsError { offset: at, reason: "no sync word" });
        }
        // aac_frame_length: the header's bits 30 to 42, header included.
        let length = (usize::from(header[3] & 0x03) << 11)
            | (usize::from(header[4]) << 3)
            | usize::from(header[5] >> 5);
        if length < 7 {
            return Err(AdtsError { offset: at, reason: "a frame shorter than its header" });
        }
        let frame =
            stream.get(at..at + length).ok_or(AdtsError { offset: at, reason: "a truncated frame" })?;
        frames.push(frame);
        at += length;
    }
    Ok(frames)
}

/// A frame without its header (7 bytes, 9 with a CRC): the raw AAC an MP4 holds.
pub fn payload(frame: &[u8]) -> &[u8] {
    let header = if frame.get(1).is_some_and(|b| b & 0x01 == 1) { 7 } else { 9 };
    frame.get(header..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ADTS frame of `payload` bytes (AAC-LC, 48 kHz, stereo).
    fn frame(payload: usize, fill: u8) -> Vec<u8> {
        let length = payload + 7;
        let mut f = vec![0xFF, 0xF1, 0x4C, 0x80 | ((length >> 11) & 0x03) as u8, (length >> 3) as u8];
        f.push((((length & 0x07) << 5) as u8) | 0x1F);
        f.push(0xFC);
        f.extend(std::iter::repeat_n(fill, payload));
        f
    }

    #[test]
    fn frames_are_split_at_their_lengths_and_garbage_is_refused() {
        let stream: Vec<u8> = [frame(300, 1), frame(2000, 2), frame(0, 3)].concat();
        let split = frames(&stream).expect("frames");
        assert_eq!(split.iter().map(|f| f.len()).collect::<Vec<_>>(), [307, 2007, 7]);
        assert!(split[1][7..].iter().all(|&b| b == 2));
        assert_eq!(payload(split[1]).len(), 2000);
        assert_eq!(frames(&[]).expect("empty"), Vec::<&[u8]>::new());

        assert_eq!(
            frames(&stream[..400]).unwrap_err(),
            AdtsError { offset: 307, reason: "a truncated frame" }
        );
        let mut broken = stream.clone();
        broken[307] = 0;
        assert_eq!(frames(&broken).unwrap_err(), AdtsError { offset: 307, reason: "no sync word" });
        assert_eq!(frames(&stream[..3]).unwrap_err().reason, "a truncated header");
    }
}
