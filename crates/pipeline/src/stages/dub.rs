//! The dub stage: one language's voice track fitted to its cues, mixed with the
//! original, and its MP4; and which voice speaks each language.

use std::path::{Path, PathBuf};

use babelcast_core::{Lang, Transcript, subtitle};
use babelcast_jobs::Video;
use babelcast_store::remote::Scope;
use babelcast_store::{CaptionFormat, write_atomic};
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

use super::reuse::ClipCache;
use super::{CACHE_VERSION, StageDone, StageFailure, cache_key};
use crate::graph::Stage;
use crate::mirror::PACKAGE;
use crate::{Pipeline, stage};
use babelcast_voice::Voice as _;

/// The installed Piper voice for `lang`: `models/piper-{lang}_*/*.onnx`.
pub fn piper_model(models_dir: &Path, lang: Lang) -> Option<PathBuf> {
    std::fs::read_dir(models_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("piper-{}_", lang.tag())))
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "onnx"))
}

/// The voice for `lang`: an installed Piper voice (`models/piper-{lang}_*/*.onnx`)
/// if it loads, else espeak-ng. When a Piper voice fails to load, the second value
/// says why (a warning: the dub still happens, with espeak-ng).
pub(crate) fn choose_voice(
    models_dir: &Path,
    espeak: babelcast_process::Program,
    lang: Lang,
) -> (Box<dyn babelcast_voice::Voice + Send>, Option<String>) {
    let piper = piper_model(models_dir, lang);
    let library = std::fs::read_dir(models_dir.join("onnxruntime"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so")));
    if let (Some(model), Some(library)) = (piper, library) {
        match babelcast_voice::Piper::load(&model, &library, espeak.clone()) {
            Ok(voice) => return (Box::new(voice), None),
            Err(e) => {
                return (
                    Box::new(babelcast_voice::Espeak::new(espeak, lang)),
                    Some(format!("{e}; the {lang} dub uses espeak-ng instead")),
                );
            }
        }
    }
    (Box::new(babelcast_voice::Espeak::new(espeak, lang)), None)
}

impl Pipeline {
    pub(super) async fn dub(
        &self,
        video: &Video,
        to: Lang,
        progress: UnboundedSender<f64>,
    ) -> Result<StageDone, StageFailure> {
        let (id, source) = self.source_path(video)?;
        let facts = self.read_facts(&id)?;
        let layout = self.layout();
        let options = Self::options(video);
        let text = std::fs::read_to_string(layout.captions(&id, to, CaptionFormat::WebVtt))?;
        let cues = subtitle::vtt::read(&text)?;
        let spoken = std::fs::read(layout.transcript(&id))
            .ok()
            .and_then(|b| serde_json::from_slice::<Transcript>(&b).ok());
        let source_lang = spoken.as_ref().and_then(|t| Lang::from_metadata(&t.language));
        let source_cues = spoken.map(|t| t.cues).unwrap_or_default();
        let total_ms = (facts.duration_secs.unwrap_or(0.0) * 1000.0).round().max(0.0) as u64;
        let (espeak, ffmpeg, ffprobe, preset) = (
            self.config.espeak.clone(),
            self.config.ffmpeg.clone(),
            self.config.ffprobe.clone(),
            self.config.ladder.preset.clone(),
        );
        let (m4a, mp4) = (layout.dub(&id, to), layout.mp4(&id, to));
        let qa_path = m4a.with_extension("qa.json");
        let mode = options.dub_mode;
        let models_dir = self.config.models_dir.clone();
        let (voice, fallback) = {
            let espeak = espeak.clone();
            tokio::task::spawn_blocking(move || choose_voice(&models_dir, espeak, to)).await?
        };
        // Cached by everything the dub and its MP4 are made from ("mix": the way
        // the track is mixed and levelled, 2 since one measured gain): the same content
        // with the same translation and voice is not voiced again.
        let key = cache_key(&json!({
            "stage": stage::DUB, "v": CACHE_VERSION, "mix": 2, "source": video.source_sha256, "to": to.tag(),
            "cues": cues, "voice": voice.name(), "mode": mode, "preset": preset, "total_ms": total_ms,
            "spoken": source_lang, "spoken_cues": source_cues,
        }));
        let cache_dir = self.config.data_dir.join("cache").join(stage::DUB).join(&key);
        let (cached_m4a, cached_mp4, cached_qa) = (
            cache_dir.join(format!("{}.m4a", to.tag())),
            cache_dir.join(format!("{}.mp4", to.tag())),
            cache_dir.join("qa.json"),
        );
        // Whether found or made, this video uses the entry (see `deletion`).
        self.use_cache_entry(&key, &video.id, &cache_dir).await?;
        let cached =
            self.db.cached(&key).await?.is_some() && self.pull_cache_dir(&cache_dir, "qa.json").await?;
        let mut clips = json!(null);
        let summary = if !cached {
            // This video's previous mix in this language: its level is kept when
            // only a few cues changed since it was measured, and then only the
            // stretches whose speech changed are mixed again (see below).
            let previous = PreviousDub::read(&qa_path, &voice.name(), mode, total_ms);
            let previous_m4a = m4a.clone();
            // Cue by cue: after an edit only the changed cues are spoken again.
            let voice = ClipCache::new(voice, &self.config.data_dir);
            let mut download = Download {
                source: source.clone(),
                facts: facts.clone(),
                to,
                cues: cues.clone(),
                spoken: source_lang.map(|lang| (lang, source_cues.clone())),
                writer: babelcast_media::Mp4Writer::new(ffmpeg.clone(), ffprobe, preset),
                track: cached_m4a.clone(),
                out: cached_mp4.clone(),
                previous: None,
            };
            let out_m4a = cached_m4a.clone();
            let (asked, spoken, used, level, remixed_secs, qa, summary) =
                tokio::task::spawn_blocking(move || -> Result<_, StageFailure> {
                    std::fs::create_dir_all(out_m4a.parent().unwrap_or(Path::new(".")))?;
                    // The speech track is streamed to the file, never held whole.
                    let scratch = tempfile::tempdir()?;
                    let wav = scratch.path().join("speech.wav");
                    let fits = babelcast_voice::dub_to_wav(
                        &voice,
                        &cues,
                        total_ms,
                        babelcast_voice::FitOptions::default(),
                        &wav,
                    )
                    .map_err(|e| StageFailure::from_error(&e))?;
                    let _ = progress.send(0.5);
                    // Edits that re-voiced at most a fifth of the cues since the
                    // last measurement keep its level; more, and the mix is
                    // measured again (so a run of small edits cannot drift).
                    let (asked, spoken) = voice.counts();
                    let (level, revoiced) = match &previous {
                        Some(p) if (p.revoiced + spoken) * 5 <= asked => {
                            (babelcast_media::Level::Kept(p.gain_db), p.revoiced + spoken)
                        }
                        _ => (babelcast_media::Level::Measure, 0),
                    };
                    // With the level kept, the previous track is spliced: only the
                    // windows around the changed speech are mixed again. Any
                    // trouble there, and the whole track is mixed as at first.
                    let spliced = match (level, &previous) {
                        (babelcast_media::Level::Kept(gain_db), Some(p)) if p.is_track(&previous_m4a) => {
                            babelcast_media::splice_dub_track(
                                &ffmpeg,
                                &source,
                                &facts,
                                (&wav, babelcast_voice::SAMPLE_RATE),
                                mode,
                                gain_db,
                                &previous_m4a,
                                &changed_speech(&p.fits, &fits),
                                &out_m4a,
                            )
                            .unwrap_or_else(|e| {
                                tracing::warn!(error = %e, "the {to} dub is mixed whole: splicing failed");
                                None
                            })
                            .map(|secs| (gain_db, secs))
                        }
                        _ => None,
                    };
                    let (gain_db, remixed_secs) = match spliced {
                        Some(done) => done,
                        None => (
                            babelcast_media::dub_track(&ffmpeg, &source, &facts, &wav, mode, level, &out_m4a)
                                .map_err(|e| StageFailure::from_error(&e))?,
                            total_ms as f64 / 1000.0,
                        ),
                    };
                    let _ = progress.send(0.8);
                    // The track's size pairs the QA file with its track in the
                    // video's folder (a later splice starts from that track).
                    let track_bytes = std::fs::metadata(&out_m4a)?.len();
                    let summary = babelcast_voice::summary(&fits);
                    let qa = json!({
                        "voice": voice.name(), "mode": mode, "total_ms": total_ms, "gain_db": gain_db,
                        "revoiced_since_measure": revoiced, "track_bytes": track_bytes,
                        "summary": summary, "cues": fits,
                    });
                    let level =
                        if matches!(level, babelcast_media::Level::Kept(_)) { "kept" } else { "measured" };
                    Ok((asked, spoken, voice.used(), level, remixed_secs, qa, summary))
                })
                .await??;
            // A spliced track's download is the previous one with the new dub and
            // captions; written while the package takes the new track.
            if remixed_secs * 1000.0 < total_ms as f64 && mp4.is_file() {
                download.previous = Some(mp4.clone());
            }
            let writing = tokio::task::spawn_blocking(move || download.write());
            place(&cached_m4a, &m4a, Place::Copy)?;
            let published = self.publish_dub(video, to, fallback.as_deref(), &summary).await;
            let edited = writing.await??;
            published?;
            // Written last: its presence marks the entry complete.
            write_atomic(&cached_qa, serde_json::to_string_pretty(&qa).unwrap_or_default().as_bytes())?;
            self.use_cache_files("voice", &video.id, &used).await?;
            let remixed_secs = (remixed_secs * 10.0).round() / 10.0;
            let download = if edited { "edited" } else { "whole" };
            clips = json!({
                "clips": asked, "voiced": spoken, "level": level, "remixed_secs": remixed_secs, "mp4": download,
            });
            self.push_cache_dir(&cache_dir).await?;
            self.put_cache_entry(&key, stage::DUB, &video.id, &cache_dir).await?;
            place(&cached_mp4, &mp4, Place::Link)?;
            place(&cached_qa, &qa_path, Place::Link)?;
            self.push_video(&video.id, Scope::Except(PACKAGE)).await?;
            summary
        } else {
            let qa: serde_json::Value = serde_json::from_slice(&std::fs::read(&cached_qa)?)
                .map_err(|e| StageFailure::transient(format!("{}: {e}", cached_qa.display())))?;
            let summary: babelcast_voice::QaSummary = serde_json::from_value(qa["summary"].clone())
                .map_err(|e| StageFailure::transient(format!("{}: {e}", cached_qa.display())))?;
            // Into the video's folder: the track copied, so its new modification
            // time tells the package to take it (a cached one may be older than
            // the track it replaces); the rest linked.
            place(&cached_m4a, &m4a, Place::Copy)?;
            place(&cached_mp4, &mp4, Place::Link)?;
            place(&cached_qa, &qa_path, Place::Link)?;
            self.publish_dub(video, to, fallback.as_deref(), &summary).await?;
            summary
        };
        Ok(StageDone {
            cached,
            data: json!({
                "language": to.tag(), "qa": summary, "reuse": clips,
                "outputs": [format!("videos/{id}/dub/{to}.m4a"), format!("videos/{id}/mp4/{to}.mp4")],
            }),
        })
    }

    /// Tells what the dub is (a voice that fell back, its QA) and puts its track
    /// in the package; the track is in the video's folder.
    async fn publish_dub(
        &self,
        video: &Video,
        to: Lang,
        fallback: Option<&str>,
        summary: &babelcast_voice::QaSummary,
    ) -> Result<(), StageFailure> {
        if let Some(why) = fallback {
            self.warn(&video.id, Some(&Stage::Dub(to).to_string()), why).await?;
        }
        self.db
            .add_event(
                &video.id,
                "dub_qa",
                Some(&Stage::Dub(to).to_string()),
                &format!(
                    "{to} dub: {:.0}% of cues fit without speed-up, max speed {:.2}x, {} ran into the following silence, {} cut",
                    summary.fit_without_speedup * 100.0,
                    summary.max_speed,
                    summary.overflowing,
                    summary.cut
                ),
                Some(serde_json::to_value(summary).unwrap_or_default()),
            )
            .await?;
        // The dub reaches the bucket before the package that plays it.
        self.push_video(&video.id, Scope::Except(PACKAGE)).await?;
        self.refresh_package(video).await?;
        Ok(())
    }
}

/// One language's MP4 download: the dub first, the original second, both
/// caption tracks.
struct Download {
    source: PathBuf,
    facts: babelcast_core::MediaFacts,
    to: Lang,
    cues: Vec<babelcast_core::Cue>,
    spoken: Option<(Lang, Vec<babelcast_core::Cue>)>,
    writer: babelcast_media::Mp4Writer,
    track: PathBuf,
    out: PathBuf,
    /// The MP4 before an edit that only spliced the dub, to be made from.
    previous: Option<PathBuf>,
}

impl Download {
    /// Writes the MP4; whether it was made from the previous one.
    fn write(self) -> Result<bool, StageFailure> {
        let mut audio = vec![babelcast_media::Mp4Audio::Dub { path: self.track, language: self.to }];
        if !self.facts.audio.is_empty() {
            audio.push(babelcast_media::Mp4Audio::Original { language: self.spoken.as_ref().map(|s| s.0) });
        }
        let spec = babelcast_media::Mp4Spec {
            source: &self.source,
            facts: &self.facts,
            audio,
            subtitles: std::iter::once((self.to, self.cues)).chain(self.spoken).collect(),
            burn_in: None,
        };
        if let Some(previous) = &self.previous {
            match self.writer.write_edited(&spec, previous, &self.out) {
                Ok(true) => return Ok(true),
                Ok(false) => tracing::info!(
                    "the {} MP4 is written whole: the previous one is not of this dub",
                    self.to
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "the {} MP4 is written whole: editing the previous one failed", self.to)
                }
            }
        }
        self.writer.write(&spec, &self.out, &mut |_| {}).map_err(|e| StageFailure::from_error(&e))?;
        Ok(false)
    }
}

/// The mix a video's `dub/{lang}.qa.json` describes: its gain, how many cues
/// were re-voiced since that gain was measured, what each cue spoke, and the
/// size of its track.
struct PreviousDub {
    gain_db: f64,
    revoiced: usize,
    fits: Vec<babelcast_voice::CueFit>,
    track_bytes: Option<u64>,
}

impl PreviousDub {
    /// The previous mix, if it was made with this voice, mode and length.
    fn read(qa: &Path, voice: &str, mode: babelcast_media::DubMode, total_ms: u64) -> Option<PreviousDub> {
        let qa: serde_json::Value = serde_json::from_slice(&std::fs::read(qa).ok()?).ok()?;
        let same = qa["voice"] == voice && qa["mode"] == json!(mode) && qa["total_ms"] == total_ms;
        let revoiced = qa["revoiced_since_measure"].as_u64().unwrap_or(0) as usize;
        let fits = serde_json::from_value(qa["cues"].clone()).unwrap_or_default();
        let track_bytes = qa["track_bytes"].as_u64();
        same.then(|| {
            qa["gain_db"].as_f64().map(|gain_db| PreviousDub { gain_db, revoiced, fits, track_bytes })
        })
        .flatten()
    }

    /// Whether `m4a` is the track this mix made (not one a dub stopped between
    /// placing its track and its QA file left behind).
    fn is_track(&self, m4a: &Path) -> bool {
        std::fs::metadata(m4a).is_ok_and(|m| Some(m.len()) == self.track_bytes)
    }
}

/// The stretches of the dub's speech (milliseconds) that differ between two dubs
/// of a video: where a cue was spoken in one and not, or not the same, in the
/// other (a cue that moved counts at both places).
fn changed_speech(
    before: &[babelcast_voice::CueFit],
    after: &[babelcast_voice::CueFit],
) -> Vec<std::ops::Range<u64>> {
    let spoken =
        |f: &babelcast_voice::CueFit| (f.start_ms, f.speech_ms, f.cut_ms, f.speed.to_bits(), f.text.clone());
    let old: std::collections::HashSet<_> = before.iter().map(spoken).collect();
    let new: std::collections::HashSet<_> = after.iter().map(spoken).collect();
    let gone = before.iter().filter(|f| !new.contains(&spoken(f)));
    let came = after.iter().filter(|f| !old.contains(&spoken(f)));
    gone.chain(came).map(|f| f.start_ms..f.start_ms + f.speech_ms).collect()
}

/// How [`place`] puts a file.
enum Place {
    Copy,
    Link,
}

/// Puts `from` at `to`, replacing what is there in one rename: a hard link (a
/// copy across file systems) or a copy.
fn place(from: &Path, to: &Path, how: Place) -> std::io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let staged =
        dir.join(format!(".partial-{}", to.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
    let _ = std::fs::remove_file(&staged);
    match how {
        Place::Link if std::fs::hard_link(from, &staged).is_ok() => {}
        _ => {
            std::fs::copy(from, &staged)?;
        }
    }
    std::fs::rename(&staged, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_changed_speech_is_where_a_cue_spoke_otherwise_before_or_after() {
        let fit = |start_ms, text: &str, speech_ms| babelcast_voice::CueFit {
            start_ms,
            end_ms: start_ms + 2000,
            speed: 1.0,
            speech_ms,
            overflow_ms: 0,
            cut_ms: 0,
            text: text.to_owned(),
        };
        let before = [fit(0, "uno", 800), fit(3000, "dos", 900), fit(6000, "tres", 700)];
        assert!(changed_speech(&before, &before).is_empty());
        // One cue's text: its stretch, before and after.
        let after = [fit(0, "uno", 800), fit(3000, "dos y medio", 1500), fit(6000, "tres", 700)];
        assert_eq!(changed_speech(&before, &after), [3000..3900, 3000..4500]);
        // A cue moved: where it was and where it is; a cue gone: where it was.
        let after = [fit(0, "uno", 800), fit(3500, "dos", 900)];
        assert_eq!(changed_speech(&before, &after), [3000..3900, 6000..6700, 3500..4400]);
        // A dub from before the fits said what they spoke: all of it.
        let old = before.clone().map(|f| babelcast_voice::CueFit { text: String::new(), ..f });
        assert_eq!(changed_speech(&old, &before).len(), 6);
    }

    fn repo_models() -> PathBuf {
        babelcast_models::default_dir()
    }

    #[test]
    fn english_gets_the_piper_voice_and_a_broken_one_falls_back_to_espeak_with_a_warning() {
        let espeak = babelcast_process::Program::espeak_ng();
        let en: Lang = "en".parse().expect("en");
        let es: Lang = "es".parse().expect("es");
        let (voice, warning) = choose_voice(&repo_models(), espeak.clone(), en);
        assert_eq!((voice.name().as_str(), warning), ("piper:en_US-joe-medium", None));
        let (voice, _) = choose_voice(&repo_models(), espeak.clone(), es);
        assert_eq!(voice.name(), "espeak-ng:es");

        let models = tempfile::tempdir().expect("tmp");
        std::os::unix::fs::symlink(
            std::path::absolute(repo_models().join("onnxruntime")).expect("abs"),
            models.path().join("onnxruntime"),
        )
        .expect("link");
        let broken = models.path().join("piper-en_US-broken");
        std::fs::create_dir_all(&broken).expect("mkdir");
        std::fs::write(broken.join("broken.onnx"), "not a model").expect("write");
        std::fs::copy(
            repo_models().join("piper-en_US-joe-medium/en_US-joe-medium.onnx.json"),
            broken.join("broken.onnx.json"),
        )
        .expect("copy");
        let (voice, warning) = choose_voice(models.path(), espeak, en);
        assert_eq!(voice.name(), "espeak-ng:en");
        let warning = warning.expect("a warning");
        assert!(warning.contains("broken.onnx") && warning.contains("uses espeak-ng instead"), "{warning}");
    }
}
