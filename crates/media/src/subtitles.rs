//! Subtitle streams inside a source (mov_text in MP4, SubRip, ASS or WebVTT in
//! MKV and WebM), read out as SRT text for a transcript.

use std::path::Path;

use babelcast_core::SubtitleStream;
use babelcast_process::Program;

use crate::hls::{PackageError, encode_error, io_error};
use crate::run;

/// Whether ffmpeg can turn `stream` into text: text codecs yes; pictures of
/// text (DVD, Blu-ray, DVB bitmaps) no.
pub fn is_text(stream: &SubtitleStream) -> bool {
    !matches!(stream.codec.as_str(), "hdmv_pgs_subtitle" | "dvd_subtitle" | "dvb_subtitle" | "xsub")
}

/// The subtitle stream `index` of `file` as SRT. Blocks for a read of the file.
pub fn extract_srt(ffmpeg: &Program, file: &Path, index: u32) -> Result<Vec<u8>, PackageError> {
    let mut call = ffmpeg.call().args(["-nostdin", "-hide_banner", "-nostats", "-v", "error"]);
    call = run::untrusted_input(call, file).map_err(io_error(file))?;
    let call = call.args(["-map", &format!("0:{index}"), "-c:s", "srt", "-f", "srt", "pipe:1"]);
    run::read_all(call).map_err(|e| encode_error(file, e))
}
