//! The pipeline's side of object storage ([`babelcast_store::remote`]): with an
//! `[s3]` bucket configured, the bucket is the shared home of every video and cache
//! entry and the data folder only this node's working copy. A stage pulls its
//! video's folder before it runs and pushes what it wrote after (the package,
//! `hls/`, is pulled and pushed only under the package lock, so concurrent track
//! additions on different machines never lose one another). Without a bucket every
//! call here is a no-op and the data folder is the store.

use std::path::Path;

use babelcast_store::remote::{Remote, RemoteError, Scope};

use crate::Pipeline;
use crate::stages::StageFailure;

/// The package's folder inside a video's folder.
pub(crate) const PACKAGE: &str = "hls";

impl From<RemoteError> for StageFailure {
    fn from(e: RemoteError) -> StageFailure {
        // The bucket is away or refused: the next attempt may find it back.
        StageFailure { message: e.to_string(), code: "object_store", retry: babelcast_core::Retry::Backoff }
    }
}

/// `videos/{id}`: the mirrored folder of a video.
pub(crate) fn video_folder(video_id: &str) -> String {
    format!("videos/{video_id}")
}

impl Pipeline {
    /// The object store media live in, if one is configured.
    pub fn remote(&self) -> Option<&Remote> {
        self.remote.as_ref()
    }

    /// Brings the working copy of a video's folder up to date (within `scope`).
    pub(crate) async fn pull_video(&self, video_id: &str, scope: Scope<'_>) -> Result<(), RemoteError> {
        if let Some(remote) = &self.remote {
            let moved = remote.pull(&video_folder(video_id), scope).await?;
            if moved.files > 0 {
                tracing::debug!(video = video_id, files = moved.files, bytes = moved.bytes, "pulled");
            }
        }
        Ok(())
    }

    /// Sends what changed in the working copy of a video's folder (within `scope`).
    pub(crate) async fn push_video(&self, video_id: &str, scope: Scope<'_>) -> Result<(), RemoteError> {
        if let Some(remote) = &self.remote {
            let moved = remote.push(&video_folder(video_id), scope).await?;
            if moved.files + moved.deleted > 0 {
                tracing::debug!(video = video_id, files = moved.files, bytes = moved.bytes, "pushed");
            }
        }
        Ok(())
    }

    /// Makes sure the working copy has `path` (a file in the data folder) as the
    /// store has it; returns whether it exists. Without a bucket: whether it is a file.
    pub async fn fetch_file(&self, path: &Path) -> Result<bool, RemoteError> {
        match (&self.remote, self.split(path)) {
            (Some(remote), Some((folder, rel))) => remote.pull_file(&folder, &rel).await,
            _ => Ok(path.is_file()),
        }
    }

    /// Whether the store has `path` (a file in the data folder), without fetching it.
    pub async fn has_file(&self, path: &Path) -> Result<bool, RemoteError> {
        match (&self.remote, self.remote.as_ref().and_then(|r| r.key_of(path))) {
            (Some(remote), Some(key)) => remote.exists(&key).await,
            _ => Ok(path.is_file()),
        }
    }

    /// Sends `path` (a file in the data folder, just written) to the store.
    pub async fn store_file(&self, path: &Path) -> Result<(), RemoteError> {
        match (&self.remote, self.split(path)) {
            (Some(remote), Some((folder, rel))) => remote.push_file(&folder, &rel).await,
            _ => Ok(()),
        }
    }

    /// The names of the files in a folder of the store (e.g. `videos/{id}/captions`).
    pub async fn list_files(&self, dir: &Path) -> Result<Vec<String>, RemoteError> {
        match &self.remote {
            Some(remote) => {
                let Some(prefix) = remote.key_of(dir) else { return Ok(Vec::new()) };
                Ok(remote.list(&prefix).await?.into_iter().filter(|n| !n.contains('/')).collect())
            }
            None => {
                let Ok(entries) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
                Ok(entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_owned)).collect())
            }
        }
    }

    /// A file's mirrored folder (`videos/{id}`, `cache/{stage}`) and its path in it.
    fn split(&self, path: &Path) -> Option<(String, String)> {
        let key = self.remote.as_ref()?.key_of(path)?;
        let mut parts = key.splitn(3, '/');
        let (top, second, rest) = (parts.next()?, parts.next()?, parts.next()?);
        Some((format!("{top}/{second}"), rest.to_owned()))
    }

    /// Mirrors a cache entry folder (`cache/encode/{key}`) down; whether it has `marker`.
    pub(crate) async fn pull_cache_dir(&self, dir: &Path, marker: &str) -> Result<bool, RemoteError> {
        if let Some(remote) = &self.remote
            && let Some(folder) = remote.key_of(dir)
        {
            remote.pull(&folder, Scope::All).await?;
        }
        Ok(dir.join(marker).is_file())
    }

    /// Mirrors a cache entry folder up.
    pub(crate) async fn push_cache_dir(&self, dir: &Path) -> Result<(), RemoteError> {
        if let Some(remote) = &self.remote
            && let Some(folder) = remote.key_of(dir)
        {
            remote.push(&folder, Scope::All).await?;
        }
        Ok(())
    }
}
