//! The per-language MP4: one file a viewer can download and play anywhere, with
//! the source's picture, the chosen audio tracks and soft subtitles, each tagged
//! with its language, or a variant with one language's captions burned in.
//!
//! - The video is stream-copied when MP4 can hold its codec (H.264, HEVC, AV1,
//!   MPEG-4 Part 2), which keeps the source's quality and rotation and takes
//!   seconds; anything else, and every burned-in variant, is encoded with x264.
//! - Audio is copied when it is already AAC, otherwise encoded to AAC. The first
//!   audio track is the default one.
//! - Subtitles are written by babelcast as SRT into a private temporary folder and
//!   muxed as `mov_text` (the MP4 text track players show). Burning in goes through
//!   ffmpeg's `subtitles` filter (libass); the filter reads the temporary file, whose
//!   path babelcast chose, so no user-controlled name reaches the filter graph.
//! - The file is written under a temporary name beside the target and renamed when
//!   complete, with the index at the front (`+faststart`) so it plays while
//!   downloading.
//! - After an edit that spliced the dub, [`Mp4Writer::write_edited`] makes it from
//!   the previous MP4 instead ([`crate::mp4_edit`]): no remux of the picture.

use std::path::{Path, PathBuf};

use babelcast_core::{Cue, Lang, MediaFacts, subtitle::srt};
use babelcast_process::Program;

use babelcast_store::StagedFile;

use crate::hls::{PackageError, encode_error, io_error};
use crate::probe::file_url;
use crate::run::{self, QUIET_WITH_PROGRESS};

/// Video codecs an MP4 holds and players play, copied as they are.
const COPYABLE_VIDEO: &[&str] = &["h264", "hevc", "av1", "mpeg4"];

/// One audio track of an MP4.
#[derive(Debug, Clone)]
pub enum Mp4Audio {
    /// The source's first audio stream, labelled with its language if known.
    Original {
        /// The language spoken, if known.
        language: Option<Lang>,
    },
    /// A dub track [`crate::dub_track`] wrote (AAC), in `language`: copied
    /// without probing it first.
    Dub {
        /// The audio file.
        path: PathBuf,
        /// Its language.
        language: Lang,
    },
    /// The first audio stream of another file, in `language`: copied when it is
    /// already AAC, otherwise encoded.
    File {
        /// The audio file.
        path: PathBuf,
        /// Its language.
        language: Lang,
    },
}

/// What goes into one MP4.
#[derive(Debug, Clone)]
pub struct Mp4Spec<'a> {
    /// The source video.
    pub source: &'a Path,
    /// Its probed facts.
    pub facts: &'a MediaFacts,
    /// Audio tracks, the default first.
    pub audio: Vec<Mp4Audio>,
    /// Soft subtitle tracks.
    pub subtitles: Vec<(Lang, Vec<Cue>)>,
    /// Cues to burn into the picture, if any.
    pub burn_in: Option<Vec<Cue>>,
}

/// Writes MP4s with this ffmpeg; x264 settings for when the video is encoded.
#[derive(Debug, Clone)]
pub struct Mp4Writer {
    ffmpeg: Program,
    ffprobe: Program,
    preset: String,
}

impl Mp4Writer {
    /// A writer running this ffmpeg (and ffprobe, to see which audio files it
    /// can copy), encoding (when it must) with this x264 preset.
    pub fn new(ffmpeg: Program, ffprobe: Program, preset: impl Into<String>) -> Mp4Writer {
        Mp4Writer { ffmpeg, ffprobe, preset: preset.into() }
    }

    /// Writes the MP4 described by `spec` to `out`. Blocks for the length of the
    /// mux (seconds) or encode (minutes, when burning in).
    pub fn write(
        &self,
        spec: &Mp4Spec<'_>,
        out: &Path,
        progress: &mut dyn FnMut(f64),
    ) -> Result<(), PackageError> {
        let video =
            spec.facts.video.first().ok_or_else(|| PackageError::NoVideo { path: spec.source.to_owned() })?;
        let scratch = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
        let partial = StagedFile::new(out, ".mp4").map_err(io_error(out))?;

        let mut call = self.ffmpeg.call().args(QUIET_WITH_PROGRESS);
        call = run::untrusted_input(call, spec.source).map_err(io_error(spec.source))?;
        let mut inputs = 1;
        let mut audio_maps = Vec::new();
        let mut audio_languages = Vec::new();
        for track in &spec.audio {
            match track {
                Mp4Audio::Original { language } => {
                    let stream = spec
                        .facts
                        .audio
                        .first()
                        .ok_or_else(|| PackageError::NoAudio { path: spec.source.to_owned() })?;
                    audio_maps.push((format!("0:{}", stream.index), stream.codec == "aac"));
                    audio_languages.push(*language);
                }
                Mp4Audio::File { path, language } | Mp4Audio::Dub { path, language } => {
                    call = run::untrusted_input(call, path).map_err(io_error(path))?;
                    // A dub track is AAC already: copied, not encoded again.
                    let copy = matches!(track, Mp4Audio::Dub { .. })
                        || crate::probe::is_package_audio(&self.ffprobe, path);
                    audio_maps.push((format!("{inputs}:a:0"), copy));
                    audio_languages.push(Some(*language));
                    inputs += 1;
                }
            }
        }
        let subtitle_inputs;
        (call, subtitle_inputs) = caption_inputs(call, &spec.subtitles, scratch.path(), inputs)?;

        let encode_video = spec.burn_in.is_some() || !COPYABLE_VIDEO.contains(&video.codec.as_str());
        match &spec.burn_in {
            Some(cues) => {
                let file = scratch.path().join("burn-in.srt");
                std::fs::write(&file, srt::write(cues)).map_err(io_error(&file))?;
                let path = file.to_string_lossy();
                // The filter graph has its own quoting; babelcast's temporary path
                // never needs it, and anything else is refused rather than escaped.
                if !path.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c)) {
                    return Err(PackageError::OutputPath {
                        path: file.clone(),
                        reason: "the temporary folder's path has characters the subtitles filter cannot take (set TMPDIR)",
                    });
                }
                call = call
                    .args([
                        "-filter_complex",
                        &format!("[0:{}]subtitles=filename={path}:charenc=UTF-8[v]", video.index),
                    ])
                    .args(["-map", "[v]"]);
            }
            None => call = call.args(["-map", &format!("0:{}", video.index)]),
        }
        if encode_video {
            call =
                call.args(["-c:v", "libx264", "-preset", &self.preset, "-crf", "20", "-pix_fmt", "yuv420p"]);
        } else {
            call = call.args(["-c:v", "copy"]);
            if video.codec == "hevc" {
                // Apple players want HEVC tagged hvc1.
                call = call.args(["-tag:v", "hvc1"]);
            }
        }
        for (k, ((map, copy), language)) in audio_maps.iter().zip(&audio_languages).enumerate() {
            call = call.args(["-map", map]).arg(format!("-c:a:{k}"));
            call =
                if *copy { call.arg("copy") } else { call.arg("aac").arg(format!("-b:a:{k}")).arg("128k") };
            if let Some(lang) = language {
                call = call.arg(format!("-metadata:s:a:{k}")).arg(format!("language={}", lang.iso639_2()));
                call = call.arg(format!("-metadata:s:a:{k}")).arg(format!("title={}", lang.name()));
            }
            call = call.arg(format!("-disposition:a:{k}")).arg(if k == 0 { "default" } else { "0" });
        }
        call = caption_outputs(call, &subtitle_inputs)
            .args(["-map_metadata", "-1", "-map_chapters", "-1", "-movflags", "+faststart", "-f", "mp4"])
            .arg(partial.path());
        let duration = spec.facts.duration_secs.or(video.duration_secs);
        run::with_progress(call, duration, progress).map_err(|e| encode_error(spec.source, e))?;
        partial.publish().map_err(io_error(out))
    }

    /// Writes `spec`'s MP4 to `out` from `previous`, the MP4 of the same video
    /// before an edit, when the edit changed only its dub track by a splice (the
    /// first audio track, [`Mp4Audio::Dub`]) and its captions: the picture and
    /// the original audio are carried over as they are ([`crate::mp4_edit`]).
    /// Returns `false`, nothing written, when `previous` is not such a file; a
    /// full [`Mp4Writer::write`] is then needed.
    pub fn write_edited(
        &self,
        spec: &Mp4Spec<'_>,
        previous: &Path,
        out: &Path,
    ) -> Result<bool, PackageError> {
        let Some(Mp4Audio::Dub { path: dub, .. }) = spec.audio.first() else { return Ok(false) };
        if spec.burn_in.is_some() {
            return Ok(false);
        }
        let Some(track) = crate::m4a::M4a::parse(std::fs::read(dub).map_err(io_error(dub))?) else {
            return Ok(false);
        };
        // The caption tracks' samples, as ffmpeg makes them from these cues.
        let Some(captions) = spec
            .subtitles
            .iter()
            .map(|(_, cues)| crate::mov_text::mov_text(cues))
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(false);
        };
        let code = |lang: Option<Lang>| -> [u8; 3] {
            let code = lang.map_or("und", |l| l.iso639_2()).as_bytes();
            code.try_into().unwrap_or(*b"und")
        };
        let languages = crate::mp4_edit::Languages {
            audio: spec
                .audio
                .iter()
                .map(|a| match a {
                    Mp4Audio::Original { language } => code(*language),
                    Mp4Audio::Dub { language, .. } | Mp4Audio::File { language, .. } => code(Some(*language)),
                })
                .collect(),
            captions: spec.subtitles.iter().map(|(lang, _)| code(Some(*lang))).collect(),
        };
        let partial = StagedFile::new(out, ".mp4").map_err(io_error(out))?;
        if !crate::mp4_edit::rewrite(previous, &track, &captions, &languages, partial.path())
            .map_err(io_error(previous))?
        {
            return Ok(false);
        }
        partial.publish().map_err(io_error(out))?;
        Ok(true)
    }
}

/// Writes each caption track as SRT into `scratch` and adds it to `call` as an
/// input, numbered from `first`: the inputs' numbers and languages.
fn caption_inputs(
    mut call: babelcast_process::Call,
    subtitles: &[(Lang, Vec<Cue>)],
    scratch: &Path,
    first: usize,
) -> Result<(babelcast_process::Call, Vec<(usize, Lang)>), PackageError> {
    let mut inputs = Vec::new();
    for (k, (lang, cues)) in subtitles.iter().enumerate() {
        let file = scratch.join(format!("{k}.srt"));
        std::fs::write(&file, srt::write(cues)).map_err(io_error(&file))?;
        call = call
            .args(["-f", "srt", "-protocol_whitelist", "file", "-i"])
            .arg(file_url(&file).map_err(io_error(&file))?);
        inputs.push((first + k, *lang));
    }
    Ok((call, inputs))
}

/// The caption tracks' output options: each input mapped as a `mov_text` track
/// tagged with its language, none shown by default.
fn caption_outputs(mut call: babelcast_process::Call, inputs: &[(usize, Lang)]) -> babelcast_process::Call {
    for (k, (input, lang)) in inputs.iter().enumerate() {
        call = call
            .args(["-map", &format!("{input}:0")])
            .arg(format!("-metadata:s:s:{k}"))
            .arg(format!("language={}", lang.iso639_2()))
            .arg(format!("-metadata:s:s:{k}"))
            .arg(format!("title={}", lang.name()))
            .arg(format!("-disposition:s:{k}"))
            .arg("0");
    }
    if inputs.is_empty() { call } else { call.args(["-c:s", "mov_text"]) }
}
