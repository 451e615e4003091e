//! Deleting videos: on an operator's request, by the retention age, and the
//! upload alone once a video is done (`keep_source = false`).
//!
//! A delete removes the database's record first (in one transaction, leaving a
//! tombstone), then the files: the video's folder, and the cache entries no
//! other video uses, here and in the bucket. A stage that was running keeps
//! running until it ends (its job row is gone, so nothing it returns is
//! recorded), and the worker then deletes again what it wrote meanwhile (see
//! `worker`): nothing comes back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use babelcast_core::VideoId;
use babelcast_jobs::{DbError, now_ms};
use babelcast_store::remote::RemoteError;

use crate::Pipeline;
use crate::mirror::video_folder;

/// Why a delete could not finish (what is recorded is gone already; calling it
/// again removes the rest).
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A file could not be removed.
    #[error("cannot remove {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bucket refused.
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl babelcast_core::ErrorCode for DeleteError {
    fn code(&self) -> &'static str {
        match self {
            DeleteError::Db(e) => e.code(),
            DeleteError::Io { .. } => "storage",
            DeleteError::Remote(_) => "object_store",
        }
    }

    fn is_client_error(&self) -> bool {
        false
    }
}

/// Removes a file or a folder with everything in it; gone already is fine.
fn remove_path(path: &Path) -> Result<(), DeleteError> {
    let removed = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(DeleteError::Io { path: path.to_owned(), source: e })
        }
        _ => Ok(()),
    }
}

impl Pipeline {
    /// Deletes a video and everything it made; false if there never was one.
    /// Idempotent: deleting a deleted video removes whatever a late stage wrote
    /// and answers true again.
    pub async fn delete(&self, id: &VideoId) -> Result<bool, DeleteError> {
        let Some(orphans) = self.db.delete_video(id.as_str()).await? else { return Ok(false) };
        // Only paths inside the cache folder: a row is data, not an instruction.
        let orphans: Vec<PathBuf> = orphans
            .into_iter()
            .map(PathBuf::from)
            .filter(|p| {
                p.starts_with("cache") && p.components().all(|c| matches!(c, std::path::Component::Normal(_)))
            })
            .map(|p| self.config.data_dir.join(p))
            .collect();
        remove_path(&self.layout().video_dir(id))?;
        for path in &orphans {
            remove_path(path)?;
        }
        if let Some(remote) = &self.remote {
            remote.remove_all(&video_folder(id.as_str())).await?;
            for key in orphans.iter().filter_map(|p| remote.key_of(p)) {
                remote.remove_all(&key).await?;
            }
        }
        if let Ok(mut locks) = self.package_locks.lock() {
            locks.remove(id.as_str());
        }
        tracing::info!(video = %id, cache_entries = orphans.len(), "deleted");
        Ok(true)
    }

    /// Removes this node's working copies of videos deleted elsewhere (another
    /// node took the delete and removed only its own copy and the bucket's).
    pub(crate) async fn remove_deleted_copies(&self) -> Result<(), DbError> {
        let videos = self.config.data_dir.join("videos");
        for entry in std::fs::read_dir(&videos).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.parse::<VideoId>().is_ok()
                && self.db.is_deleted(&name).await?
                && std::fs::remove_dir_all(entry.path()).is_ok()
            {
                tracing::info!(video = name, "removed the working copy of a deleted video");
            }
        }
        Ok(())
    }

    /// Deletes the finished videos (completed, with warnings, failed or
    /// cancelled) unchanged for `age`; returns how many.
    pub async fn delete_expired(&self, age: Duration) -> Result<usize, DeleteError> {
        let before = now_ms().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        let mut deleted = 0;
        loop {
            let batch = self.db.finished_before(before, 100).await?;
            if batch.is_empty() {
                return Ok(deleted);
            }
            for video in batch {
                let Ok(id) = video.id.parse::<VideoId>() else { continue };
                if self.delete(&id).await? {
                    tracing::info!(video = %id, age_secs = age.as_secs(), "deleted by the retention age");
                    deleted += 1;
                }
            }
        }
    }

    /// Removes a finished video's upload (`keep_source = false`), here and in
    /// the bucket; its outputs stay.
    pub(crate) async fn remove_source(&self, video: &babelcast_jobs::Video) -> Result<(), DeleteError> {
        let Ok(id) = video.id.parse::<VideoId>() else { return Ok(()) };
        let source = self.layout().source(&id, &video.source_ext);
        remove_path(&source)?;
        if let Some(remote) = &self.remote
            && let Some(key) = remote.key_of(&source)
        {
            remote.remove_all(&key).await?;
        }
        tracing::info!(video = %id, "removed the upload: the video is done and keep_source is off");
        Ok(())
    }
}

/// Deletes finished videos older than `age` now and then (every quarter of the
/// age, at least every second, at most hourly) until `stop` says so.
pub async fn keep_deleting_expired(
    pipeline: Pipeline,
    age: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let every = (age / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    loop {
        if let Err(e) = pipeline.delete_expired(age).await {
            tracing::error!(error = %e, "cannot delete the expired videos");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}
