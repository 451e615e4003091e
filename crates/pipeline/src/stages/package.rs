//! The video's HLS package as stages change it: under its lock, caption tracks
//! and dubs added or replaced (the captions stage is one such refresh).

use std::path::Path;
use std::sync::Arc;

use babelcast_core::{Lang, Transcript, VideoId, subtitle};
use babelcast_jobs::Video;
use babelcast_media::{Package, Packager, Repackaged, hls};
use babelcast_store::CaptionFormat;
use babelcast_store::remote::Scope;
use serde_json::json;

use super::{StageDone, StageFailure};
use crate::Pipeline;
use crate::mirror::PACKAGE;
use crate::review::Approvals;

impl Pipeline {
    pub(super) async fn captions(&self, video: &Video) -> Result<StageDone, StageFailure> {
        let added = self.refresh_package(video).await?;
        Ok(StageDone { cached: false, data: json!({ "added": added }) })
    }

    /// Adds to the video's package every caption track (`captions/{lang}.vtt`) and
    /// dub (`dub/{lang}.m4a`) it does not have yet, and labels the original audio
    /// with the spoken language. Nothing to do until the package exists. Returns
    /// what was added.
    pub(crate) async fn refresh_package(&self, video: &Video) -> Result<Vec<String>, StageFailure> {
        let id = Self::id_of(video)?;
        let layout = self.layout();
        let hls = layout.hls_dir(&id);
        let held = self.lock_package(&video.id).await?;
        if !hls.join(hls::STATE).is_file() {
            return Ok(Vec::new());
        }
        let added = self.refresh_locked(video, &id, &hls).await?;
        self.unlock_package(held).await?;
        Ok(added)
    }

    pub(super) async fn refresh_locked(
        &self,
        video: &Video,
        id: &VideoId,
        hls: &Path,
    ) -> Result<Vec<String>, StageFailure> {
        let layout = self.layout();
        // Unreviewed captions are not published: none before the transcript's
        // approval, no translation before the translations' approval.
        let options = Self::options(video);
        let approvals = Approvals::of(&self.db.events(&video.id, 0).await?);
        if approvals.holds_transcript(&options) {
            return Ok(Vec::new());
        }
        let translations_held = approvals.holds_translations(&options);
        let mut package = Package::open(hls)?;
        let spoken = std::fs::read(layout.transcript(id))
            .ok()
            .and_then(|b| serde_json::from_slice::<Transcript>(&b).ok())
            .and_then(|t| Lang::from_metadata(&t.language));
        if let Some(lang) = spoken
            && package.state().audio.iter().any(|a| a.original && a.language != Some(lang))
        {
            package.set_original_language(lang)?;
        }
        let mut added = Vec::new();
        for lang in Lang::all() {
            let vtt = layout.captions(id, lang, CaptionFormat::WebVtt);
            let has_subs = package.state().subtitles.iter().any(|t| t.language == lang);
            let held = translations_held && Some(lang) != spoken;
            if !has_subs && !held && vtt.is_file() {
                let text = std::fs::read_to_string(&vtt)?;
                let cues = subtitle::vtt::read(&text)?;
                if !cues.is_empty() {
                    package.add_subtitles(lang, &cues)?;
                    added.push(format!("captions {lang}"));
                    self.captions_published(&video.id, lang, cues.len()).await?;
                }
            }
            let m4a = layout.dub(id, lang);
            let has_dub = package.state().audio.iter().any(|t| !t.original && t.language == Some(lang));
            // A dub made again (after an edit) is newer than its packaged track.
            let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            let stale = modified(&m4a) > modified(&hls.join(hls::dub_folder(lang)).join(hls::MEDIA_PLAYLIST));
            if (!has_dub || stale) && m4a.is_file() {
                let packager = Packager::new(
                    self.config.ffmpeg.clone(),
                    self.config.ffprobe.clone(),
                    self.config.ladder.clone(),
                );
                let mut p = package.clone();
                let result = tokio::task::spawn_blocking(move || {
                    packager.add_dub(&mut p, lang, &m4a, &mut |_| {}).map(|how| (p, how))
                })
                .await?;
                let how;
                (package, how) = result?;
                added.push(format!("audio {lang}"));
                // After a splice, the fragments of the rendition written again.
                let fragments = match how {
                    Repackaged::Fragments(n) => json!(n),
                    Repackaged::Whole => json!(null),
                };
                self.db
                    .add_event(
                        &video.id,
                        "dub_published",
                        None,
                        &format!("the {} dub is in the master playlist", lang.name()),
                        Some(json!({ "language": lang.tag(), "fragments": fragments })),
                    )
                    .await?;
            }
        }
        Ok(added)
    }

    /// Puts `cues` in the package as the `lang` caption track, replacing an older
    /// one (after an edit); nothing to do before the package exists.
    pub(crate) async fn replace_subtitles(
        &self,
        video: &Video,
        lang: Lang,
        cues: &[babelcast_core::Cue],
    ) -> Result<(), StageFailure> {
        let id = Self::id_of(video)?;
        let hls = self.layout().hls_dir(&id);
        if cues.is_empty() {
            return Ok(());
        }
        let held = self.lock_package(&video.id).await?;
        if !hls.join(hls::STATE).is_file() {
            return Ok(());
        }
        let mut package = Package::open(&hls)?;
        package.add_subtitles(lang, cues)?;
        self.unlock_package(held).await?;
        self.captions_published(&video.id, lang, cues.len()).await?;
        Ok(())
    }

    /// The lock around changes to one video's package: this process's tasks
    /// queue on a mutex, and other processes (workers on this machine, or on
    /// others sharing the data folder) on an exclusive `flock` of
    /// `videos/{id}/.package.lock`, held until the guard is dropped. With a
    /// bucket, machines share no folder: the database's lock is taken too, and the
    /// package is pulled once it is held; [`Pipeline::unlock_package`] pushes it.
    pub(super) async fn lock_package(&self, video_id: &str) -> Result<PackageGuard, StageFailure> {
        let local = {
            let mut locks = self.package_locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(locks.entry(video_id.to_owned()).or_default())
        };
        let local = local.lock_owned().await;
        let path = self.config.data_dir.join("videos").join(video_id).join(".package.lock");
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            let file = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path)?;
            file.lock()?;
            Ok(file)
        })
        .await?
        .map_err(|e| StageFailure::transient(format!("cannot lock the package: {e}")))?;
        let shared = match self.remote {
            Some(_) => Some(self.db.lock(&format!("package {video_id}")).await?),
            None => None,
        };
        self.pull_video(video_id, Scope::Only(PACKAGE)).await?;
        Ok(PackageGuard { _file: file, _local: local, _shared: shared, video_id: video_id.to_owned() })
    }

    /// Publishes the package's changes (to the bucket, if any) and lets go of its
    /// lock. A guard dropped without this (on an error) changes nothing shared.
    pub(super) async fn unlock_package(&self, guard: PackageGuard) -> Result<(), StageFailure> {
        self.push_video(&guard.video_id, Scope::Only(PACKAGE)).await?;
        drop(guard);
        Ok(())
    }

    pub(super) async fn captions_published(
        &self,
        video_id: &str,
        lang: Lang,
        cues: usize,
    ) -> Result<(), StageFailure> {
        self.db
            .add_event(
                video_id,
                "captions_published",
                None,
                &format!("{} captions are in the master playlist", lang.name()),
                Some(json!({ "language": lang.tag(), "cues": cues })),
            )
            .await?;
        Ok(())
    }
}

/// Held while a video's package changes; see `Pipeline::lock_package`.
pub(super) struct PackageGuard {
    _file: std::fs::File,
    _local: tokio::sync::OwnedMutexGuard<()>,
    _shared: Option<babelcast_jobs::DbLock>,
    video_id: String,
}
