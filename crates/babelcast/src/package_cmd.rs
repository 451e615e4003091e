//! `babelcast package`, `babelcast package-add` and `babelcast mp4`: the media half
//! of the pipeline by hand. Make the HLS package of a video, add caption and audio
//! tracks to it later (no re-encode), and write a per-language MP4.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context, bail};
use babelcast_core::{Cue, Lang, MediaFacts, subtitle};
use babelcast_media::{Mp4Audio, Mp4Spec, Mp4Writer, Package, Packager, Prober};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;

/// A language and a file: `es=captions/es.vtt`.
#[derive(Debug, Clone)]
pub struct LangFile {
    lang: Lang,
    path: PathBuf,
}

impl FromStr for LangFile {
    type Err = String;

    fn from_str(s: &str) -> Result<LangFile, String> {
        let (lang, path) =
            s.split_once('=').ok_or_else(|| format!("expected LANG=FILE, like es=es.vtt; got {s:?}"))?;
        let lang = lang.parse::<Lang>().map_err(|e| e.to_string())?;
        if path.is_empty() {
            return Err(format!("no file after {lang}="));
        }
        Ok(LangFile { lang, path: path.into() })
    }
}

/// Arguments of `babelcast package`.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The source video.
    pub file: PathBuf,
    /// The package folder to write; its master playlist is DIR/master.m3u8. A package
    /// already there is replaced once the new one is complete.
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
    /// The language spoken in the source, to label its audio track (else the
    /// container's tag, if any).
    #[arg(long, value_name = "LANG")]
    pub language: Option<Lang>,
    /// A caption track from a WebVTT or SRT file. Repeatable.
    #[arg(long, value_name = "LANG=FILE")]
    pub captions: Vec<LangFile>,
    /// An extra audio track (e.g. a dub) from any audio file. Repeatable.
    #[arg(long, value_name = "LANG=FILE")]
    pub audio: Vec<LangFile>,
    /// The x264 preset (overrides media.ladder.preset).
    #[arg(long)]
    pub preset: Option<String>,
    /// Segment length in seconds (overrides media.ladder.segment_secs).
    #[arg(long, value_name = "SECS")]
    pub segment_secs: Option<u32>,
}

/// Arguments of `babelcast package-add`.
#[derive(Debug, Args)]
pub struct PackageAddArgs {
    /// A package folder made by `babelcast package`.
    pub dir: PathBuf,
    /// A caption track from a WebVTT or SRT file; replaces that language's track.
    /// Repeatable.
    #[arg(long, value_name = "LANG=FILE")]
    pub captions: Vec<LangFile>,
    /// An audio track from any audio file; replaces that language's added track.
    /// Repeatable.
    #[arg(long, value_name = "LANG=FILE")]
    pub audio: Vec<LangFile>,
    /// Label the original audio track with this language.
    #[arg(long, value_name = "LANG")]
    pub language: Option<Lang>,
}

/// Arguments of `babelcast mp4`.
#[derive(Debug, Args)]
pub struct Mp4Args {
    /// The source video.
    pub file: PathBuf,
    /// The MP4 to write.
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// The language spoken in the source, to tag its audio track.
    #[arg(long, value_name = "LANG")]
    pub language: Option<Lang>,
    /// An audio track (e.g. a dub), placed before the original audio. Repeatable.
    #[arg(long, value_name = "LANG=FILE")]
    pub audio: Vec<LangFile>,
    /// A soft subtitle track from a WebVTT or SRT file. Repeatable.
    #[arg(long, value_name = "LANG=FILE")]
    pub captions: Vec<LangFile>,
    /// Burn this language's captions (one of --captions) into the picture.
    #[arg(long, value_name = "LANG")]
    pub burn_in: Option<Lang>,
    /// Leave the source's own audio out.
    #[arg(long)]
    pub no_original_audio: bool,
}

/// `babelcast package`.
pub fn package(config: &Config, args: PackageArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let mut ladder = config.media.ladder.clone();
    ladder.preset = args.preset.unwrap_or(ladder.preset);
    ladder.segment_secs = args.segment_secs.unwrap_or(ladder.segment_secs);
    ladder.validate()?;
    // Read the caption files first: a typo fails before minutes of encoding.
    let captions = read_all_captions(&args.captions)?;
    let facts = probe(config, &args.file, runtime)?;
    let packager = Packager::new(config.ffmpeg(), config.ffprobe(), ladder);
    let (rungs, rate) = packager.plan(&args.file, &facts)?;
    let names: Vec<&str> = rungs.iter().map(|r| r.name.as_str()).collect();
    if facts.audio.is_empty() {
        eprintln!("note: {} has no audio stream; the package will have no audio track", args.file.display());
    }

    let started = Instant::now();
    let bar = fraction_bar(format!("encoding {} at {rate} fps", names.join(", ")));
    let mut package =
        packager.encode(&args.file, &facts, &args.out, args.language, &mut |f| bar_at(&bar, f))?;
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    add_tracks(&packager, &mut package, captions, &args.audio)?;

    let duration = package.duration_secs();
    eprintln!(
        "{}: {:.1} s of video encoded in {:.1} s ({:.2}x real time)",
        args.file.display(),
        duration,
        elapsed,
        if elapsed > 0.0 { duration / elapsed } else { 0.0 }
    );
    summarize(&package);
    Ok(())
}

/// `babelcast package-add`.
pub fn package_add(config: &Config, args: PackageAddArgs) -> anyhow::Result<()> {
    let captions = read_all_captions(&args.captions)?;
    let mut package = Package::open(&args.dir)?;
    if let Some(lang) = args.language {
        package.set_original_language(lang)?;
    }
    let packager = Packager::new(config.ffmpeg(), config.ffprobe(), config.media.ladder.clone());
    add_tracks(&packager, &mut package, captions, &args.audio)?;
    summarize(&package);
    Ok(())
}

/// `babelcast mp4`.
pub fn mp4(config: &Config, args: Mp4Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let subtitles = read_all_captions(&args.captions)?;
    let burn_in = match args.burn_in {
        Some(lang) => match subtitles.iter().find(|(l, _)| *l == lang) {
            Some((_, cues)) => Some(cues.clone()),
            None => bail!("--burn-in {lang} needs a caption file for it: add --captions {lang}=FILE"),
        },
        None => None,
    };
    let facts = probe(config, &args.file, runtime)?;
    let mut audio: Vec<Mp4Audio> =
        args.audio.iter().map(|a| Mp4Audio::File { path: a.path.clone(), language: a.lang }).collect();
    if !args.no_original_audio && !facts.audio.is_empty() {
        audio.push(Mp4Audio::Original { language: args.language });
    }
    let spec = Mp4Spec { source: &args.file, facts: &facts, audio, subtitles, burn_in };
    let writer = Mp4Writer::new(config.ffmpeg(), config.ffprobe(), config.media.ladder.preset.clone());
    let bar = fraction_bar(format!("writing {}", args.out.display()));
    writer.write(&spec, &args.out, &mut |f| bar_at(&bar, f))?;
    bar.finish_and_clear();
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

fn probe(config: &Config, file: &Path, runtime: &tokio::runtime::Runtime) -> anyhow::Result<MediaFacts> {
    let prober = Prober::new(config.ffprobe(), config.probe_timeout());
    Ok(runtime.block_on(prober.probe(file))?)
}

fn add_tracks(
    packager: &Packager,
    package: &mut Package,
    captions: Vec<(Lang, Vec<Cue>)>,
    audio: &[LangFile],
) -> anyhow::Result<()> {
    for (lang, cues) in captions {
        package.add_subtitles(lang, &cues)?;
    }
    for track in audio {
        let bar = fraction_bar(format!("adding the {} audio track", track.lang.name()));
        packager
            .add_audio(package, track.lang, &track.path, &mut |f| bar_at(&bar, f))
            .with_context(|| format!("audio track {}", track.lang))?;
        bar.finish_and_clear();
    }
    Ok(())
}

/// Reads WebVTT or SRT files (by extension; anything else is tried as WebVTT, then
/// SRT).
fn read_all_captions(files: &[LangFile]) -> anyhow::Result<Vec<(Lang, Vec<Cue>)>> {
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f.path)
                .with_context(|| format!("cannot read the {} captions {}", f.lang, f.path.display()))?;
            let ext = f.path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
            let cues = match ext.as_str() {
                "srt" => subtitle::srt::read(&text),
                "vtt" => subtitle::vtt::read(&text),
                _ => subtitle::vtt::read(&text).or_else(|_| subtitle::srt::read(&text)),
            }
            .with_context(|| format!("{}", f.path.display()))?;
            Ok((f.lang, cues))
        })
        .collect()
}

fn summarize(package: &Package) {
    let state = package.state();
    println!("{}", package.master().display());
    for v in &state.video {
        eprintln!(
            "  video {:>6} {}x{}  {:.2} Mbit/s average, {:.2} peak",
            v.name,
            v.width,
            v.height,
            v.rates.average_bps as f64 / 1e6,
            v.rates.peak_bps as f64 / 1e6
        );
    }
    for a in &state.audio {
        eprintln!("  audio  {}{}", a.name, if a.original { " (original)" } else { "" });
    }
    for s in &state.subtitles {
        eprintln!("  captions {} ({} cues)", s.name, s.cues);
    }
}

/// A bar over a fraction done, counted in thousandths.
fn fraction_bar(what: String) -> ProgressBar {
    let bar = ProgressBar::new(1000);
    let style = ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {percent}%, {elapsed} (eta {eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what);
    bar
}

fn bar_at(bar: &ProgressBar, fraction: f64) {
    // 0..=1 → 0..=1000.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    bar.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
}
