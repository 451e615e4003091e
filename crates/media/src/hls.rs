//! The HLS package: the bitrate ladder encoded from one decode, the master playlist
//! written by babelcast, and caption and audio tracks added later without touching
//! the video.
//!
//! Layout of a package folder (relative URIs throughout, so the folder can be served
//! from anywhere, under any path prefix):
//!
//! ```text
//! master.m3u8            written by babelcast from package.json
//! package.json           what the package holds (renditions, rates, timeline)
//! 1080p/index.m3u8 …     one video-only MPEG-TS rendition per rung
//! audio/index.m3u8       the original audio (AAC, 48 kHz stereo)
//! dub-es/index.m3u8      an added audio track
//! subs-en/index.m3u8     WebVTT segments on the video's segment grid
//! poster.jpg             the poster; thumbs/: seek-preview sprites and their
//!                        WebVTT track (see `thumbnails`)
//! manifest.mpd           CMAF packages: the DASH manifest over the same files (`dash`)
//! ```
//!
//! **One decode.** A single ffmpeg run decodes the source once, splits the picture
//! to one scaler per rung, and feeds every rung and the audio to one HLS muxer
//! (`-var_stream_map`). One muxer matters beyond speed: timestamps are shifted by
//! one common offset for all renditions, so audio and video stay in sync (separate
//! muxers shift each output by its own encoder delay, which puts audio 2 frames off).
//!
//! **Switchable at every segment.** Keyframes are forced at every segment boundary
//! (`-force_key_frames`) with scene-cut keyframes off and a fixed GOP, so every
//! rung's segments start at the same instants.
//!
//! **Why babelcast writes the master.** ffmpeg's master playlist cannot hold
//! subtitle groups or audio tracks added later, and guesses BANDWIDTH from the
//! configured rate. Ours states what the files measure: BANDWIDTH is the peak and
//! AVERAGE-BANDWIDTH the mean segment bit rate of the video plus the largest audio
//! track; CODECS carry the level each rung was encoded at. It is rendered from
//! `package.json` by `m3u8-rs`, so adding a track is rewriting two small files.
//!
//! **Captions on the video timeline.** MPEG-TS timestamps do not start at zero
//! (ffmpeg's muxer starts at 1.4 s plus the encoder delay). Each WebVTT segment
//! carries `X-TIMESTAMP-MAP=MPEGTS:<first video PTS>,LOCAL:00:00:00.000`, measured
//! from the first video segment, so a cue at 10.0 s in the captions shows when the
//! player is at 10.0 s of the video.
//!
//! **Tracks added later line up.** A dub encoded on its own would miss the common
//! shift the ladder's muxer applied; it is encoded with that shift
//! (`-output_ts_offset`, recorded in `package.json`) so its first packet has the
//! same timestamp as the original audio's.
//!
//! **Never half a package.** Encodes and track additions write into a staging folder
//! and are renamed into place when complete; the master is replaced atomically, and
//! only after the files it names exist.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use babelcast_core::{Cue, ErrorCode, Lang, MediaFacts, Millis, subtitle::vtt};
use babelcast_process::{ProcessError, Program};
use babelcast_store::{StagedDir, write_atomic};

use crate::thumbnails::{POSTER, THUMBS_DIR, ThumbPlan, Thumbnails, write_poster};
use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, MasterPlaylist, MediaPlaylist, Resolution, VariantStream,
};
use serde::{Deserialize, Serialize};

use crate::ladder::{
    FrameRate, LadderConfig, LadderConfigError, PlanError, PlannedRung, SegmentFormat, plan,
};
use crate::probe::failure_reason;
use crate::run::{self, QUIET_WITH_PROGRESS};

/// The master playlist's file name in a package folder.
pub const MASTER: &str = "master.m3u8";
/// The package description's file name.
pub const STATE: &str = "package.json";
/// The folder of the original audio.
const ORIGINAL_AUDIO: &str = "audio";
/// Each rendition's media playlist, in the rendition's folder.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";
/// A CMAF rendition's init segment, beside its media playlist.
const INIT_SEGMENT: &str = "init.mp4";
/// The audio group's id in the master playlist.
const AUDIO_GROUP: &str = "audio";
/// The subtitle group's id in the master playlist.
const SUBTITLE_GROUP: &str = "subs";
/// The format version of `package.json`.
const STATE_VERSION: u32 = 1;
/// MPEG-TS timestamps tick at 90 kHz.
pub(crate) const TS_HZ: f64 = 90_000.0;
/// The audio every track is encoded to: AAC-LC, 48 kHz, stereo.
const AUDIO_CODECS: &str = "mp4a.40.2";

/// What a package holds; stored as `package.json` beside the playlists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageState {
    /// The format version of this description.
    pub version: u32,
    /// The target segment length, seconds.
    pub segment_secs: u32,
    /// The video frame rate.
    pub frame_rate: FrameRate,
    /// The 90 kHz timestamp of the first video frame: time 0 for captions.
    pub timeline_pts: u64,
    /// Seconds an audio track encoded on its own is shifted by to line up with the
    /// original audio (the shift the ladder's muxer applied).
    pub audio_offset_secs: f64,
    /// AAC bit rate of audio tracks, kbit/s.
    pub audio_kbps: u32,
    /// The duration of each video segment, seconds: the grid captions follow.
    pub segments: Vec<f64>,
    /// The video renditions, tallest first.
    pub video: Vec<VideoRendition>,
    /// The audio tracks: the original first (if the source has audio), then added
    /// ones.
    pub audio: Vec<AudioTrack>,
    /// The caption tracks.
    pub subtitles: Vec<SubtitleTrack>,
    /// The poster image, relative to the package folder (packages made before
    /// posters have none).
    #[serde(default)]
    pub poster: Option<String>,
    /// The seek previews (none in packages made before them).
    #[serde(default)]
    pub thumbnails: Option<Thumbnails>,
    /// The media segments' container (TS in packages made before the choice).
    #[serde(default)]
    pub segment_format: SegmentFormat,
}

/// One video rung as packaged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoRendition {
    /// Its quality name, e.g. `720p`, and folder.
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Its RFC 6381 codec string, read from the encoded stream's parameter set
    /// (`avc1.64001f`: High profile, level 3.1).
    pub codecs: String,
    /// Its media playlist, relative to the package folder.
    pub uri: String,
    /// Bit rates measured from its segments.
    pub rates: Rates,
}

/// One audio track as packaged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioTrack {
    /// The source's own audio (not a dub).
    pub original: bool,
    /// Its language, when known.
    pub language: Option<Lang>,
    /// What a player's menu shows.
    pub name: String,
    /// Its media playlist, relative to the package folder.
    pub uri: String,
    /// Bit rates measured from its segments.
    pub rates: Rates,
}

/// One caption track as packaged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtitleTrack {
    /// Its language.
    pub language: Lang,
    /// What a player's menu shows.
    pub name: String,
    /// Its media playlist, relative to the package folder.
    pub uri: String,
    /// How many cues it holds.
    pub cues: usize,
}

/// Bit rates of a rendition, measured from its segment files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// The highest segment bit rate, bit/s.
    pub peak_bps: u64,
    /// Total bits over total duration, bit/s.
    pub average_bps: u64,
}

/// How a dub reached the package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repackaged {
    /// Its rendition segmented again from the whole track.
    Whole,
    /// Only this many fragments of its rendition written again (a splice).
    Fragments(usize),
}

/// A package folder on disk.
#[derive(Debug, Clone)]
pub struct Package {
    dir: PathBuf,
    state: PackageState,
}

/// Encodes packages and adds audio tracks: the ffmpeg and ffprobe to run, and the
/// ladder settings.
#[derive(Debug, Clone)]
pub struct Packager {
    ffmpeg: Program,
    ffprobe: Program,
    config: LadderConfig,
}

/// Why a package could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The ladder configuration is unusable.
    #[error(transparent)]
    Config(#[from] LadderConfigError),
    /// The source has no video stream.
    #[error("{} has no video stream: an HLS package needs a picture (audio-only files can still be transcribed)", path.display())]
    NoVideo {
        /// The source.
        path: PathBuf,
    },
    /// The video cannot be laddered.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An audio file to add has no audio stream.
    #[error("{} has no audio stream to add as a track", path.display())]
    NoAudio {
        /// The file.
        path: PathBuf,
    },
    /// The output folder's path cannot be handed to ffmpeg.
    #[error("cannot write a package to {}: {reason}", path.display())]
    OutputPath {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// ffmpeg could not encode the input.
    #[error("could not encode {}: {reason}", path.display())]
    Encode {
        /// The input.
        path: PathBuf,
        /// Why, in ffmpeg's words, on one line.
        reason: String,
    },
    /// ffmpeg or ffprobe is missing, stalled or ran past its limit.
    #[error(transparent)]
    Program(ProcessError),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A folder is not a package (no or unreadable `package.json`).
    #[error("{} is not a babelcast HLS package ({reason})", path.display())]
    NotAPackage {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// What ffmpeg wrote is not what was expected (a bug, or a changed ffmpeg).
    #[error("unexpected output in {}: {reason}", path.display())]
    Output {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

impl ErrorCode for PackageError {
    fn code(&self) -> &'static str {
        match self {
            PackageError::Config(_) => "ladder_config_invalid",
            PackageError::NoVideo { .. } => "no_video_stream",
            PackageError::Plan(_) => "video_unsupported",
            PackageError::NoAudio { .. } => "no_audio_stream",
            PackageError::OutputPath { .. } => "output_path_invalid",
            PackageError::Encode { .. } => "encode_failed",
            PackageError::Program(e) => e.code(),
            PackageError::Io { .. } => "io",
            PackageError::NotAPackage { .. } => "not_a_package",
            PackageError::Output { .. } => "encoder_output_unexpected",
        }
    }

    fn is_client_error(&self) -> bool {
        matches!(
            self,
            PackageError::Config(_)
                | PackageError::NoVideo { .. }
                | PackageError::Plan(_)
                | PackageError::NoAudio { .. }
                | PackageError::OutputPath { .. }
                | PackageError::Encode { .. }
                | PackageError::NotAPackage { .. }
        )
    }
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PackageError + '_ {
    move |source| PackageError::Io { path: path.to_owned(), source }
}

/// ffmpeg's failure on `path` as an encode error with its reason, other failures as
/// they are.
pub(crate) fn encode_error(path: &Path, e: ProcessError) -> PackageError {
    match e {
        ProcessError::Failed { stderr_tail, .. } => {
            PackageError::Encode { path: path.to_owned(), reason: failure_reason("ffmpeg", &stderr_tail) }
        }
        e => PackageError::Program(e),
    }
}

impl Packager {
    /// A packager running these programs with this ladder.
    pub fn new(ffmpeg: Program, ffprobe: Program, config: LadderConfig) -> Packager {
        Packager { ffmpeg, ffprobe, config }
    }

    /// The ladder settings.
    pub fn config(&self) -> &LadderConfig {
        &self.config
    }

    /// The renditions `facts`' video would be encoded to, and at what frame rate.
    pub fn plan(
        &self,
        source: &Path,
        facts: &MediaFacts,
    ) -> Result<(Vec<PlannedRung>, FrameRate), PackageError> {
        self.config.validate()?;
        let video = facts.video.first().ok_or_else(|| PackageError::NoVideo { path: source.to_owned() })?;
        let rate = FrameRate::snap(video.fps);
        Ok((plan(video, &self.config, rate)?, rate))
    }

    /// Encodes `source` (probed into `facts`) into a new package at `out`, replacing
    /// any package there once the new one is complete. `original_language` labels
    /// the source's audio (else its container tag is used, if any). `progress` gets
    /// the fraction done. Blocks for the length of the encode: call it from a
    /// blocking thread.
    pub fn encode(
        &self,
        source: &Path,
        facts: &MediaFacts,
        out: &Path,
        original_language: Option<Lang>,
        progress: &mut dyn FnMut(f64),
    ) -> Result<Package, PackageError> {
        let (rungs, rate) = self.plan(source, facts)?;
        let video = &facts.video[0];
        let audio = facts.audio.first();
        let staged = StagedDir::new(out).map_err(io_error(out))?;
        let dir = staged.path();
        // ffmpeg expands `%` patterns in the HLS muxer's file names.
        if dir.to_string_lossy().contains('%') {
            return Err(PackageError::OutputPath { path: out.to_owned(), reason: "the path contains '%'" });
        }

        let seg = self.config.segment_secs;
        let format = self.config.segments;
        let gop = (f64::from(seg) * rate.fps()).round().max(1.0).to_string();
        // One more branch of the decoded picture makes the seek previews.
        let thumbs = ThumbPlan::new(
            facts.duration_secs.or(video.duration_secs).unwrap_or(0.0),
            rungs[0].width,
            rungs[0].height,
        );
        let mut graph = format!("[0:{}]fps=fps={rate},split={}", video.index, rungs.len() + 1);
        for i in 0..rungs.len() {
            let _ = write!(graph, "[s{i}]");
        }
        let _ = write!(graph, "[sthumbs];[sthumbs]{}[thumbs]", thumbs.filter());
        for (i, r) in rungs.iter().enumerate() {
            let _ = write!(
                graph,
                ";[s{i}]scale={}:{}:flags=bicubic,format=yuv420p,setsar=1[v{i}]",
                r.width, r.height
            );
        }
        let mut call = self.ffmpeg.call().args(QUIET_WITH_PROGRESS);
        call = run::untrusted_input(call, source).map_err(io_error(source))?;
        call = call.args(["-filter_complex", &graph]);
        let mut stream_map = Vec::new();
        for (i, r) in rungs.iter().enumerate() {
            call = call
                .args(["-map", &format!("[v{i}]")])
                .arg(format!("-b:v:{i}"))
                .arg(format!("{}k", r.bitrate_kbps))
                .arg(format!("-maxrate:v:{i}"))
                .arg(format!("{}k", r.max_kbps))
                .arg(format!("-bufsize:v:{i}"))
                .arg(format!("{}k", r.max_kbps * 2))
                .arg(format!("-level:v:{i}"))
                .arg(r.level.dotted());
            stream_map.push(format!("v:{i},name:{}", r.name));
        }
        call = call.args(["-c:v", "libx264", "-preset", &self.config.preset, "-profile:v", "high"]).args([
            "-g",
            &gop,
            "-keyint_min",
            &gop,
            "-sc_threshold",
            "0",
            "-force_key_frames",
            &format!("expr:gte(t,n_forced*{seg})"),
        ]);
        if let Some(audio) = audio {
            call = call.args(["-map", &format!("0:{}", audio.index)]).args([
                "-c:a",
                "aac",
                "-b:a",
                &format!("{}k", self.config.audio_kbps),
                "-ar",
                "48000",
                "-ac",
                "2",
            ]);
            stream_map.push(format!("a:0,name:{ORIGINAL_AUDIO}"));
        }
        call = call
            .args(["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"])
            .args(["-max_muxing_queue_size", "4096"])
            .args(["-f", "hls", "-hls_time", &seg.to_string(), "-hls_playlist_type", "vod"])
            .args(["-hls_segment_type", format.hls_segment_type(), "-hls_flags", "independent_segments"])
            .args(["-var_stream_map", &stream_map.join(" ")]);
        if format == SegmentFormat::Cmaf {
            // One init segment per rendition, `init_<n>.mp4` beside its playlist.
            call = call.args(["-hls_fmp4_init_filename", INIT_SEGMENT]);
        }
        call = call
            .arg("-hls_segment_filename")
            .arg(dir.join("%v").join(format!("seg_%05d.{}", format.extension())))
            .arg(dir.join("%v").join(MEDIA_PLAYLIST));
        std::fs::create_dir_all(dir.join(THUMBS_DIR)).map_err(io_error(dir))?;
        call = call
            .args([
                "-map",
                "[thumbs]",
                "-c:v",
                "mjpeg",
                "-q:v",
                "5",
                "-an",
                "-map_metadata",
                "-1",
                "-f",
                "image2",
            ])
            .arg(ThumbPlan::sprite_pattern(dir));

        tracing::info!(source = %source.display(), rungs = rungs.len(), %rate, "encoding the ladder");
        let duration = facts.duration_secs.or(video.duration_secs);
        run::with_progress(call, duration, progress).map_err(|e| encode_error(source, e))?;

        let first = &rungs[0];
        let first_segment = dir.join(&first.name).join(format!("seg_00000.{}", format.extension()));
        // A TS segment holds its own timestamps; a CMAF fragment needs its init
        // segment, so ffprobe reads the rendition's playlist.
        let timed = |rendition: &str, segment: &Path| match format {
            SegmentFormat::Ts => segment.to_owned(),
            SegmentFormat::Cmaf => dir.join(rendition).join(MEDIA_PLAYLIST),
        };
        let (pts, dts) = self.first_packet(&timed(&first.name, &first_segment), "v:0")?;
        // What a track encoded on its own must be shifted by to line up with the
        // original audio: with TS, the shift the ladder's muxer gave the video's
        // first frame over its decode time; with CMAF (where an audio track encoded
        // alone starts at 0), the original audio's own start.
        let audio_offset_secs = match (format, audio) {
            (SegmentFormat::Ts, _) => pts.saturating_sub(dts) as f64 / TS_HZ,
            (SegmentFormat::Cmaf, Some(_)) => {
                let empty = PathBuf::new();
                self.first_packet(&timed(ORIGINAL_AUDIO, &empty), "a:0")?.0 as f64 / TS_HZ
            }
            (SegmentFormat::Cmaf, None) => 0.0,
        };
        let mut video_renditions = Vec::new();
        let mut segments = Vec::new();
        for r in &rungs {
            let uri = format!("{}/index.m3u8", r.name);
            let (rates, durations) = measure(dir, &uri)?;
            if segments.is_empty() {
                segments = durations;
            }
            let segment = dir.join(&r.name).join(format!("seg_00000.{}", format.extension()));
            let codecs = self.codecs(&timed(&r.name, &segment))?;
            video_renditions.push(VideoRendition {
                name: r.name.clone(),
                width: r.width,
                height: r.height,
                codecs,
                uri,
                rates,
            });
        }
        let timeline_secs: f64 = segments.iter().sum();
        let thumbnails = thumbs.finish(dir, timeline_secs)?;
        let started = std::time::Instant::now();
        write_poster(&self.ffmpeg, source, timeline_secs, &dir.join(POSTER))?;
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "poster written");
        let mut tracks = Vec::new();
        if let Some(stream) = audio {
            let uri = format!("{ORIGINAL_AUDIO}/index.m3u8");
            let (rates, _) = measure(dir, &uri)?;
            let language =
                original_language.or_else(|| stream.language.as_deref().and_then(Lang::from_metadata));
            tracks.push(AudioTrack { original: true, language, name: String::new(), uri, rates });
        }
        let mut package = Package {
            dir: dir.to_owned(),
            state: PackageState {
                version: STATE_VERSION,
                segment_secs: seg,
                frame_rate: rate,
                timeline_pts: pts,
                audio_offset_secs,
                audio_kbps: self.config.audio_kbps,
                segments,
                video: video_renditions,
                audio: tracks,
                subtitles: Vec::new(),
                poster: Some(POSTER.to_owned()),
                thumbnails: Some(thumbnails),
                segment_format: format,
            },
        };
        package.name_audio_tracks();
        package.save()?;
        package.dir = staged.publish().map_err(io_error(out))?;
        tracing::info!(package = %package.dir.display(), "package written");
        Ok(package)
    }

    /// Adds (or replaces) the audio track of `language` from the first audio stream
    /// of `file`, without touching the video: the audio is encoded to AAC on the
    /// package's timeline, padded or cut to the video's length (copied as it is,
    /// only cut, when it already is 48 kHz stereo AAC, as a dub track is), and the
    /// master rewritten. Blocks for the encode.
    pub fn add_audio(
        &self,
        package: &mut Package,
        language: Lang,
        file: &Path,
        progress: &mut dyn FnMut(f64),
    ) -> Result<(), PackageError> {
        let copy = crate::probe::is_package_audio(&self.ffprobe, file);
        self.add_audio_track(package, language, file, copy, progress)
    }

    /// [`Packager::add_audio`] for a dub track [`crate::dub_track`] wrote (48 kHz
    /// stereo AAC): copied, only cut, without probing it first (a dub after an
    /// edit is re-packaged in well under a second, and a probe is a tenth of it).
    /// A track spliced after an edit ([`crate::splice_dub_track`]) replaces only
    /// the fragments of its CMAF rendition that it changed ([`crate::fragments`]).
    pub fn add_dub(
        &self,
        package: &mut Package,
        language: Lang,
        file: &Path,
        progress: &mut dyn FnMut(f64),
    ) -> Result<Repackaged, PackageError> {
        if let Some(fragments) = self.patch_dub(package, language, file)? {
            return Ok(Repackaged::Fragments(fragments));
        }
        self.add_audio_track(package, language, file, true, progress)?;
        Ok(Repackaged::Whole)
    }

    /// The dub rendition of `language` patched from `file`, when it is a copy of
    /// a track like it: how many fragments were written again.
    fn patch_dub(
        &self,
        package: &mut Package,
        language: Lang,
        file: &Path,
    ) -> Result<Option<usize>, PackageError> {
        let folder = dub_folder(language);
        let uri = format!("{folder}/{MEDIA_PLAYLIST}");
        let Some(at) = package.state.audio.iter().position(|t| !t.original && t.uri == uri) else {
            return Ok(None);
        };
        if package.state.segment_format != SegmentFormat::Cmaf {
            return Ok(None);
        }
        let dir = package.dir.join(&folder);
        let playlist = dir.join(MEDIA_PLAYLIST);
        let Ok(media) = read_media_playlist(&playlist) else { return Ok(None) };
        // Segment names as ffmpeg wrote them: plain names inside the folder.
        let plain = |uri: &str| !uri.is_empty() && !uri.contains(['/', '\\']) && uri != ".." && uri != ".";
        if !media.segments.iter().all(|s| plain(&s.uri)) {
            return Ok(None);
        }
        let segments: Vec<PathBuf> = media.segments.iter().map(|s| dir.join(&s.uri)).collect();
        let Some(track) = crate::m4a::M4a::parse(std::fs::read(file).map_err(io_error(file))?) else {
            return Ok(None);
        };
        let Some(rewritten) = crate::fragments::patch_rendition(&dir.join(INIT_SEGMENT), &segments, &track)
            .map_err(io_error(&dir))?
        else {
            return Ok(None);
        };
        // The playlist stays as it was; its time says the rendition is the track's.
        std::fs::File::options()
            .write(true)
            .open(&playlist)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()))
            .map_err(io_error(&playlist))?;
        package.state.audio[at].rates = measure(&package.dir, &uri)?.0;
        package.save()?;
        Ok(Some(rewritten))
    }

    fn add_audio_track(
        &self,
        package: &mut Package,
        language: Lang,
        file: &Path,
        copy: bool,
        progress: &mut dyn FnMut(f64),
    ) -> Result<(), PackageError> {
        let folder = dub_folder(language);
        let target = package.dir.join(&folder);
        let staged = StagedDir::new(&target).map_err(io_error(&target))?;
        if staged.path().to_string_lossy().contains('%') {
            return Err(PackageError::OutputPath { path: target, reason: "the path contains '%'" });
        }
        let duration = package.duration_secs();
        // The package's own format, whatever the configuration says now.
        let format = package.state.segment_format;
        let mut call = self.ffmpeg.call().args(QUIET_WITH_PROGRESS);
        call = run::untrusted_input(call, file).map_err(io_error(file))?;
        call = call.args(["-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1"]);
        call = if copy {
            // Already what the package plays (a dub track): segmented as it is,
            // not decoded and encoded again; cut at the video's end.
            call.args(["-t", &format!("{duration:.3}"), "-c:a", "copy"])
        } else {
            call.args(["-af", &format!("apad=whole_dur={duration:.3}"), "-t", &format!("{duration:.3}")])
                .args([
                    "-c:a",
                    "aac",
                    "-b:a",
                    &format!("{}k", package.state.audio_kbps),
                    "-ar",
                    "48000",
                    "-ac",
                    "2",
                ])
        };
        call = call
            .args(["-output_ts_offset", &format!("{:.6}", package.state.audio_offset_secs)])
            .args([
                "-f",
                "hls",
                "-hls_time",
                &package.state.segment_secs.to_string(),
                "-hls_playlist_type",
                "vod",
            ])
            .args(["-hls_segment_type", format.hls_segment_type(), "-hls_flags", "independent_segments"]);
        if format == SegmentFormat::Cmaf {
            call = call.args(["-hls_fmp4_init_filename", INIT_SEGMENT]);
        }
        call = call
            .arg("-hls_segment_filename")
            .arg(staged.path().join(format!("seg_%05d.{}", format.extension())))
            .arg(staged.path().join(MEDIA_PLAYLIST));
        match run::with_progress(call, Some(duration), progress) {
            Ok(_) => {}
            Err(ProcessError::Failed { stderr_tail, .. }) if stderr_tail.contains("matches no streams") => {
                return Err(PackageError::NoAudio { path: file.to_owned() });
            }
            Err(e) => return Err(encode_error(file, e)),
        }
        let (rates, _) = measure(staged.path(), MEDIA_PLAYLIST)?;
        staged.publish().map_err(io_error(&target))?;
        let uri = format!("{folder}/{MEDIA_PLAYLIST}");
        let track = AudioTrack { original: false, language: Some(language), name: String::new(), uri, rates };
        let tracks = &mut package.state.audio;
        match tracks.iter_mut().find(|t| !t.original && t.language == Some(language)) {
            Some(existing) => *existing = track,
            None => tracks.push(track),
        }
        // The original first, then the dubs by language, like the captions: the
        // menus do not depend on which dub happened to finish first.
        tracks.sort_by_key(|t| (!t.original, t.language));
        package.name_audio_tracks();
        package.save()
    }

    /// The codec string of the H.264 stream in a segment, from its sequence parameter
    /// set: what the encoder really wrote (ultrafast, for one, makes Constrained
    /// Baseline whatever profile was asked for), so players never refuse a variant.
    fn codecs(&self, segment: &Path) -> Result<String, PackageError> {
        let call = self
            .ffmpeg
            .call()
            .args(["-nostdin", "-v", "error", "-protocol_whitelist", "file", "-i"])
            .arg(crate::probe::file_url(segment).map_err(io_error(segment))?)
            .args(["-map", "0:v:0", "-c", "copy", "-frames:v", "1", "-f", "h264", "pipe:1"]);
        let annex_b = run::read_all(call).map_err(PackageError::Program)?;
        avc1_codecs(&annex_b).ok_or_else(|| PackageError::Output {
            path: segment.to_owned(),
            reason: "no H.264 sequence parameter set in the first frame".into(),
        })
    }

    /// The PTS and DTS, in 90 kHz ticks, of the first packet of `stream` (`v:0`) in
    /// a TS segment or a CMAF rendition's playlist (read from their times in
    /// seconds: a fragment's time base is its track's, not 90 kHz).
    fn first_packet(&self, segment: &Path, stream: &str) -> Result<(u64, u64), PackageError> {
        let call = self
            .ffprobe
            .call()
            .args(["-v", "error", "-protocol_whitelist", "file", "-select_streams", stream])
            .args(["-show_entries", "packet=pts_time,dts_time", "-read_intervals", "%+#1"])
            .args(["-of", "default=noprint_wrappers=1"])
            .arg(crate::probe::file_url(segment).map_err(io_error(segment))?);
        let out = run::read_all(call).map_err(PackageError::Program)?;
        let text = String::from_utf8_lossy(&out);
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('=')?.parse::<f64>().ok())
                .filter(|t| t.is_finite())
                // A CMAF video track with B-frames decodes its first frame before 0.
                .map(|t| (t.max(0.0) * TS_HZ).round() as u64)
        };
        match (field("pts_time"), field("dts_time")) {
            (Some(pts), Some(dts)) => Ok((pts, dts)),
            _ => Err(PackageError::Output {
                path: segment.to_owned(),
                reason: format!("no packet timestamps in ffprobe's report {:?}", text.trim()),
            }),
        }
    }
}

/// `avc1.PPCCLL` from the first sequence parameter set (NAL type 7) of an H.264
/// Annex B stream: profile, constraint flags and level, the three bytes after the
/// NAL header.
fn avc1_codecs(annex_b: &[u8]) -> Option<String> {
    let start = annex_b.windows(4).position(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 7)?;
    let sps = annex_b.get(start + 4..start + 7)?;
    Some(format!("avc1.{:02x}{:02x}{:02x}", sps[0], sps[1], sps[2]))
}

/// The bit rates of the media playlist at `uri` (relative to `dir`) from its
/// segments' sizes, and its segment durations.
fn measure(dir: &Path, uri: &str) -> Result<(Rates, Vec<f64>), PackageError> {
    let path = dir.join(uri);
    let playlist = read_media_playlist(&path)?;
    conform_target_duration(&path, &playlist)?;
    let base = path.parent().unwrap_or(dir);
    let (mut peak, mut bits, mut secs) = (0.0f64, 0.0f64, 0.0f64);
    let mut durations = Vec::with_capacity(playlist.segments.len());
    for segment in &playlist.segments {
        let file = base.join(&segment.uri);
        let size = std::fs::metadata(&file).map_err(io_error(&file))?.len() as f64 * 8.0;
        let duration = f64::from(segment.duration);
        durations.push(duration);
        bits += size;
        secs += duration;
        // A short last segment says little about the peak rate.
        if duration >= 0.5 {
            peak = peak.max(size / duration);
        }
    }
    if durations.is_empty() {
        return Err(PackageError::Output { path, reason: "the playlist has no segments".into() });
    }
    let average = if secs > 0.0 { bits / secs } else { 0.0 };
    // Bit rates are far below u64::MAX.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rates = Rates { peak_bps: peak.max(average).ceil() as u64, average_bps: average.ceil() as u64 };
    Ok((rates, durations))
}

/// Makes a media playlist ffmpeg wrote keep RFC 8216's rule that every EXTINF,
/// rounded to the nearest integer, is at most the EXT-X-TARGETDURATION (4.3.3.1):
/// ffmpeg's HLS muxer can write a target below its longest segment (5 over a
/// 5.5 s segment), which stream validators reject. Only that line is rewritten,
/// to the longest segment rounded up.
fn conform_target_duration(path: &Path, playlist: &MediaPlaylist) -> Result<(), PackageError> {
    let longest = playlist.segments.iter().map(|s| f64::from(s.duration)).fold(0.0, f64::max);
    // Segment lengths are seconds, far below u64::MAX.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let need = longest.ceil().max(1.0) as u64;
    if playlist.target_duration >= need {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let fixed: String = text
        .lines()
        .map(|line| match line.starts_with("#EXT-X-TARGETDURATION:") {
            true => format!("#EXT-X-TARGETDURATION:{need}\n"),
            false => format!("{line}\n"),
        })
        .collect();
    write_atomic(path, fixed.as_bytes()).map_err(io_error(path))
}

pub(crate) fn read_media_playlist(path: &Path) -> Result<MediaPlaylist, PackageError> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    m3u8_rs::parse_media_playlist_res(&bytes).map_err(|e| PackageError::Output {
        path: path.to_owned(),
        reason: format!("not a media playlist: {e}"),
    })
}

impl Package {
    /// Opens the package in `dir`.
    pub fn open(dir: &Path) -> Result<Package, PackageError> {
        let path = dir.join(STATE);
        let bytes = std::fs::read(&path).map_err(|e| PackageError::NotAPackage {
            path: dir.to_owned(),
            reason: format!("{STATE}: {e}"),
        })?;
        let state: PackageState = serde_json::from_slice(&bytes).map_err(|e| PackageError::NotAPackage {
            path: dir.to_owned(),
            reason: format!("{STATE}: {e}"),
        })?;
        if state.version != STATE_VERSION {
            return Err(PackageError::NotAPackage {
                path: dir.to_owned(),
                reason: format!("{STATE} is format {}, this babelcast reads {STATE_VERSION}", state.version),
            });
        }
        Ok(Package { dir: dir.to_owned(), state })
    }

    /// The package folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The master playlist.
    pub fn master(&self) -> PathBuf {
        self.dir.join(MASTER)
    }

    /// What the package holds.
    pub fn state(&self) -> &PackageState {
        &self.state
    }

    /// The video's duration: the sum of its segments.
    pub fn duration_secs(&self) -> f64 {
        self.state.segments.iter().sum()
    }

    /// Labels the original audio with its language (once speech recognition knows
    /// it) and rewrites the master.
    pub fn set_original_language(&mut self, language: Lang) -> Result<(), PackageError> {
        let Some(original) = self.state.audio.iter_mut().find(|t| t.original) else {
            return Ok(());
        };
        original.language = Some(language);
        self.name_audio_tracks();
        self.save()
    }

    /// Adds (or replaces) the caption track of `language`: WebVTT segments on the
    /// video's segment grid, a media playlist, and the master rewritten. The video
    /// is not touched.
    pub fn add_subtitles(&mut self, language: Lang, cues: &[Cue]) -> Result<(), PackageError> {
        let folder = format!("subs-{}", language.tag());
        let target = self.dir.join(&folder);
        let staged = StagedDir::new(&target).map_err(io_error(&target))?;
        let header =
            format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{},LOCAL:00:00:00.000\n", self.state.timeline_pts);
        let mut playlist = MediaPlaylist {
            version: Some(3),
            target_duration: self.state.segments.iter().fold(0.0f64, |a, &b| a.max(b)).ceil() as u64,
            playlist_type: Some(m3u8_rs::MediaPlaylistType::Vod),
            end_list: true,
            independent_segments: true,
            ..MediaPlaylist::default()
        };
        let mut cues = cues.to_vec();
        cues.sort_by_key(|c| (c.start, c.end));
        let mut start = 0.0;
        for (k, &duration) in self.state.segments.iter().enumerate() {
            let end = start + duration;
            let (from, to) = (Millis::from_secs_f64(start).0, Millis::from_secs_f64(end).0);
            // A cue spanning a boundary is in both segments; players drop the repeat.
            let inside: Vec<Cue> =
                cues.iter().filter(|c| c.start.0 < to && c.end.0 > from).cloned().collect();
            let body = vtt::write(&inside);
            let text = header.clone() + body.strip_prefix("WEBVTT\n").unwrap_or(&body);
            let name = format!("seg_{k:05}.vtt");
            let file = staged.path().join(&name);
            std::fs::write(&file, text).map_err(io_error(&file))?;
            #[allow(clippy::cast_possible_truncation)]
            playlist.segments.push(m3u8_rs::MediaSegment {
                uri: name,
                duration: duration as f32,
                ..Default::default()
            });
            start = end;
        }
        let index = staged.path().join(MEDIA_PLAYLIST);
        let mut bytes = Vec::new();
        playlist.write_to(&mut bytes).map_err(io_error(&index))?;
        std::fs::write(&index, bytes).map_err(io_error(&index))?;
        // The whole track in one file, on the package's clock: what DASH players
        // (and downloads) take.
        let sidecar = staged.path().join(crate::dash::SIDECAR_VTT);
        std::fs::write(&sidecar, vtt::write(&cues)).map_err(io_error(&sidecar))?;
        staged.publish().map_err(io_error(&target))?;

        let track = SubtitleTrack {
            language,
            name: language.name().to_owned(),
            uri: format!("{folder}/{MEDIA_PLAYLIST}"),
            cues: cues.len(),
        };
        let tracks = &mut self.state.subtitles;
        match tracks.iter_mut().find(|t| t.language == language) {
            Some(existing) => *existing = track,
            None => tracks.push(track),
        }
        tracks.sort_by_key(|t| t.language);
        self.save()
    }

    /// Names audio tracks for players' menus: the language's own name, "Original"
    /// where unknown, and which one is the original where two share a language.
    fn name_audio_tracks(&mut self) {
        let languages: Vec<Option<Lang>> = self.state.audio.iter().map(|t| t.language).collect();
        for track in &mut self.state.audio {
            let shared = languages.iter().filter(|l| **l == track.language).count() > 1;
            track.name = match (track.language, track.original) {
                (None, _) => "Original".to_owned(),
                (Some(lang), true) if shared => format!("{} (original)", lang.name()),
                (Some(lang), false) if shared => format!("{} (dubbed)", lang.name()),
                (Some(lang), _) => lang.name().to_owned(),
            };
        }
    }

    /// Writes `package.json`, then the master rendered from it.
    fn save(&self) -> Result<(), PackageError> {
        let state = self.dir.join(STATE);
        let json =
            serde_json::to_vec_pretty(&self.state).map_err(|e| io_error(&state)(io::Error::other(e)))?;
        write_atomic(&state, &json).map_err(io_error(&state))?;
        // The DASH manifest before the master: both name only files that exist.
        if self.state.segment_format == SegmentFormat::Cmaf {
            let manifest = self.dir.join(crate::dash::MANIFEST);
            let mpd = crate::dash::render_manifest(&self.dir, &self.state)?;
            write_atomic(&manifest, mpd.as_bytes()).map_err(io_error(&manifest))?;
        }
        let master = self.dir.join(MASTER);
        write_atomic(&master, render_master(&self.state).as_bytes()).map_err(io_error(&master))
    }
}

/// The folder of the dub rendition in `language`, in a package folder.
pub fn dub_folder(language: Lang) -> String {
    format!("dub-{}", language.tag())
}

/// The master playlist of a package.
pub fn render_master(state: &PackageState) -> String {
    let mut master =
        MasterPlaylist { version: Some(4), independent_segments: true, ..MasterPlaylist::default() };
    for (i, track) in state.audio.iter().enumerate() {
        master.alternatives.push(AlternativeMedia {
            media_type: AlternativeMediaType::Audio,
            uri: Some(track.uri.clone()),
            group_id: AUDIO_GROUP.into(),
            language: track.language.map(|l| l.tag().to_owned()),
            name: track.name.clone(),
            // The original plays unless the viewer (or their language setting) picks
            // another.
            default: i == 0,
            autoselect: true,
            channels: Some("2".into()),
            ..AlternativeMedia::default()
        });
    }
    for track in &state.subtitles {
        master.alternatives.push(AlternativeMedia {
            media_type: AlternativeMediaType::Subtitles,
            uri: Some(track.uri.clone()),
            group_id: SUBTITLE_GROUP.into(),
            language: Some(track.language.tag().to_owned()),
            name: track.name.clone(),
            // Captions are off until turned on, but a player may turn on the one in
            // the viewer's language.
            default: false,
            autoselect: true,
            ..AlternativeMedia::default()
        });
    }
    let audio_peak = state.audio.iter().map(|t| t.rates.peak_bps).max();
    let audio_average = state.audio.iter().map(|t| t.rates.average_bps).max();
    let fps = (state.frame_rate.fps() * 1000.0).round() / 1000.0;
    // Players start with the first variant: the rung nearest 720p, then the others.
    let mut order: Vec<&VideoRendition> = state.video.iter().collect();
    if let Some(start) = order.iter().position(|v| v.width.min(v.height) <= 720) {
        let first = order.remove(start);
        order.insert(0, first);
    }
    for v in order {
        let codecs = match audio_peak {
            Some(_) => format!("{},{AUDIO_CODECS}", v.codecs),
            None => v.codecs.clone(),
        };
        master.variants.push(VariantStream {
            uri: v.uri.clone(),
            bandwidth: v.rates.peak_bps + audio_peak.unwrap_or(0),
            average_bandwidth: Some(v.rates.average_bps + audio_average.unwrap_or(0)),
            codecs: Some(codecs),
            resolution: Some(Resolution { width: u64::from(v.width), height: u64::from(v.height) }),
            frame_rate: Some(fps),
            audio: audio_peak.map(|_| AUDIO_GROUP.to_owned()),
            subtitles: (!state.subtitles.is_empty()).then(|| SUBTITLE_GROUP.to_owned()),
            ..VariantStream::default()
        });
    }
    let mut bytes = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = master.write_to(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::Level;

    fn rendition(name: &str, width: u32, height: u32, level: u8, peak: u64) -> VideoRendition {
        VideoRendition {
            name: name.into(),
            width,
            height,
            codecs: Level(level).codecs_high(),
            uri: format!("{name}/index.m3u8"),
            rates: Rates { peak_bps: peak, average_bps: peak / 2 },
        }
    }

    fn state() -> PackageState {
        PackageState {
            version: STATE_VERSION,
            segment_secs: 6,
            frame_rate: FrameRate { num: 30000, den: 1001 },
            timeline_pts: 132_000,
            audio_offset_secs: 6000.0 / TS_HZ,
            audio_kbps: 128,
            segments: vec![6.0, 6.0, 2.0],
            video: vec![
                rendition("1080p", 1920, 1080, 40, 5_000_000),
                rendition("720p", 1280, 720, 31, 3_000_000),
                rendition("480p", 854, 480, 30, 1_200_000),
            ],
            audio: vec![AudioTrack {
                original: true,
                language: Some("en".parse().expect("en")),
                name: "English".into(),
                uri: "audio/index.m3u8".into(),
                rates: Rates { peak_bps: 140_000, average_bps: 130_000 },
            }],
            subtitles: vec![SubtitleTrack {
                language: "es".parse().expect("es"),
                name: "Español".into(),
                uri: "subs-es/index.m3u8".into(),
                cues: 3,
            }],
            poster: None,
            thumbnails: None,
            segment_format: SegmentFormat::Ts,
        }
    }

    #[test]
    fn the_master_lists_renditions_with_measured_rates_and_both_groups() {
        let text = render_master(&state());
        let master = m3u8_rs::parse_master_playlist_res(text.as_bytes()).expect("parses back");
        assert_eq!(master.variants.len(), 3);
        let first = &master.variants[0];
        assert_eq!(first.uri, "720p/index.m3u8", "players start with the first: 720p");
        assert_eq!(first.bandwidth, 3_140_000);
        assert_eq!(first.average_bandwidth, Some(1_630_000));
        assert_eq!(first.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(first.frame_rate, Some(29.97));
        assert_eq!(first.audio.as_deref(), Some("audio"));
        assert_eq!(first.subtitles.as_deref(), Some("subs"));
        assert!(text.contains("RESOLUTION=1920x1080"), "{text}");
        assert!(
            text.contains(
                "#EXT-X-MEDIA:TYPE=AUDIO,URI=\"audio/index.m3u8\",GROUP-ID=\"audio\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES"
            ),
            "{text}"
        );
        assert!(text.contains("TYPE=SUBTITLES,URI=\"subs-es/index.m3u8\",GROUP-ID=\"subs\",LANGUAGE=\"es\",NAME=\"Español\",AUTOSELECT=YES"), "{text}");
    }

    #[test]
    fn without_audio_there_is_no_audio_group_and_no_audio_codec() {
        let mut s = state();
        s.audio.clear();
        s.subtitles.clear();
        let text = render_master(&s);
        assert!(!text.contains("TYPE=AUDIO"), "{text}");
        assert!(!text.contains("mp4a"), "{text}");
        assert!(!text.contains("AUDIO=") && !text.contains("SUBTITLES="), "{text}");
        let master = m3u8_rs::parse_master_playlist_res(text.as_bytes()).expect("parses back");
        assert_eq!(master.variants[0].bandwidth, 3_000_000);
    }

    #[test]
    fn codec_strings_come_from_the_sequence_parameter_set() {
        // An access unit delimiter, then an SPS of High profile level 3.1.
        let stream = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9];
        assert_eq!(avc1_codecs(&stream).as_deref(), Some("avc1.64001f"));
        // Constrained Baseline with its constraint flags, level 3.0.
        assert_eq!(avc1_codecs(&[0, 0, 1, 0x27, 0x42, 0xc0, 0x1e]).as_deref(), Some("avc1.42c01e"));
        assert_eq!(avc1_codecs(&[0, 0, 1, 0x68, 0xce]), None, "a PPS only");
        assert_eq!(avc1_codecs(&[0, 0, 1, 0x67, 0x64]), None, "cut short");
    }

    #[test]
    fn audio_tracks_are_named_for_menus() {
        let mut p = Package { dir: PathBuf::new(), state: state() };
        let en: Lang = "en".parse().expect("en");
        let es: Lang = "es".parse().expect("es");
        let dub = |language| AudioTrack {
            original: false,
            language: Some(language),
            name: String::new(),
            uri: String::new(),
            rates: Rates { peak_bps: 1, average_bps: 1 },
        };
        p.state.audio.push(dub(es));
        p.name_audio_tracks();
        assert_eq!(p.state.audio[0].name, "English");
        assert_eq!(p.state.audio[1].name, "Español");
        p.state.audio.push(dub(en));
        p.name_audio_tracks();
        assert_eq!(p.state.audio[0].name, "English (original)");
        assert_eq!(p.state.audio[2].name, "English (dubbed)");
        p.state.audio[0].language = None;
        p.name_audio_tracks();
        assert_eq!(p.state.audio[0].name, "Original");
    }
}
