//! The encode stage: the ladder, its poster and seek previews (cached by source
//! and ladder) linked into the video's HLS package, which is then playable.

use babelcast_jobs::Video;
use babelcast_media::{Package, Packager};
use babelcast_store::StagedDir;
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

use super::{CACHE_VERSION, StageDone, StageFailure, cache_key, link_tree};
use crate::{Pipeline, stage};

impl Pipeline {
    pub(super) async fn encode(
        &self,
        video: &Video,
        progress: UnboundedSender<f64>,
    ) -> Result<StageDone, StageFailure> {
        let (id, source) = self.source_path(video)?;
        let facts = self.read_facts(&id)?;
        let mut ladder = self.config.ladder.clone();
        if let Some(rungs) = Self::options(video).rungs {
            ladder.rungs.retain(|r| rungs.contains(&r.height));
        }
        let key = cache_key(&json!({
            "stage": stage::ENCODE, "v": CACHE_VERSION, "source": video.source_sha256, "ladder": ladder,
            "engine": "ffmpeg/libx264",
            // 1: with the poster and the seek previews.
            "previews": 1,
        }));
        let cache_dir = self.config.data_dir.join("cache").join(stage::ENCODE).join(&key);
        // Whether found or made, this video uses the entry (see `deletion`).
        self.use_cache_entry(&key, &video.id, &cache_dir).await?;
        let cached = self.db.cached(&key).await?.is_some()
            && self.pull_cache_dir(&cache_dir, babelcast_media::hls::MASTER).await?;
        if !cached {
            let packager = Packager::new(self.config.ffmpeg.clone(), self.config.ffprobe.clone(), ladder);
            let out = cache_dir.clone();
            tokio::task::spawn_blocking(move || {
                packager.encode(&source, &facts, &out, None, &mut |f| {
                    let _ = progress.send(f);
                })
            })
            .await?
            .map_err(|e| StageFailure::from_error(&e))?;
            self.push_cache_dir(&cache_dir).await?;
            self.put_cache_entry(&key, stage::ENCODE, &video.id, &cache_dir).await?;
        }
        // The video's own package: links to the cached files, so adding tracks to
        // it (which replaces files, never edits them) leaves the cache pristine.
        let hls = self.layout().hls_dir(&id);
        let renditions: Vec<String> = {
            // Published and announced under the package lock, so a caption track
            // added by a concurrent stage is announced after `playable`, never before.
            let held = self.lock_package(&video.id).await?;
            let staged = StagedDir::new(&hls)?;
            link_tree(&cache_dir, staged.path())?;
            staged.publish()?;
            let package = Package::open(&hls)?;
            let renditions: Vec<String> = package.state().video.iter().map(|v| v.name.clone()).collect();
            self.db
                .add_event(
                    &video.id,
                    "playable",
                    Some(stage::ENCODE),
                    "the video is playable (without captions yet)",
                    Some(
                        json!({ "master": format!("videos/{id}/hls/master.m3u8"), "renditions": renditions }),
                    ),
                )
                .await?;
            self.unlock_package(held).await?;
            renditions
        };
        // Captions or dubs that finished before the video: into the package now.
        self.refresh_package(video).await?;
        Ok(StageDone { cached, data: json!({ "cache_key": key, "renditions": renditions }) })
    }
}
