//! The watch folder: video files that appear in a folder are ingested, once each,
//! once they have stopped growing.
//!
//! Why polling rather than file-system notifications: a notification says a file
//! was written to, not that its writer is done, so "stopped growing" needs the size
//! and modification time compared over time anyway; polling does that, works on
//! network mounts where notifications do not, and costs one directory listing a
//! second.
//!
//! - Only names ending in a video extension (`.mp4 .mov .avi .mkv .webm`), no hidden
//!   files, no subfolders.
//! - A file is ingested when its size and modification time are unchanged for
//!   `settle` and it is not empty.
//! - Each (path, size, mtime) is recorded in the database when ingested, so a file
//!   is never ingested twice, across restarts too.
//! - The watched folder may not be inside the data folder, and files inside the
//!   data folder are never ingested: babelcast's own outputs cannot loop back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use babelcast_pipeline::{Pipeline, VideoOptions};
use tokio::sync::watch;

use crate::VIDEO_EXTENSIONS;

/// Why a folder cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The folder does not exist.
    #[error("cannot watch {}: {source}", path.display())]
    Missing {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The folder is babelcast's own data folder or inside it.
    #[error("cannot watch {}: it is inside the data folder {}, whose outputs would be ingested again", path.display(), data.display())]
    InsideData {
        /// The folder.
        path: PathBuf,
        /// The data folder.
        data: PathBuf,
    },
}

/// Checks that `dir` can be watched, returning its canonical path.
pub fn check(dir: &Path, data_dir: &Path) -> Result<PathBuf, WatchError> {
    let canonical =
        dir.canonicalize().map_err(|source| WatchError::Missing { path: dir.to_owned(), source })?;
    let data = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_owned());
    if canonical.starts_with(&data) {
        return Err(WatchError::InsideData { path: canonical, data });
    }
    Ok(canonical)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    size: u64,
    modified: SystemTime,
}

/// Watches `dir` until `stop`, ingesting settled video files with `options`.
pub async fn run(
    pipeline: Pipeline,
    dir: PathBuf,
    settle: Duration,
    options: VideoOptions,
    mut stop: watch::Receiver<bool>,
) {
    let data =
        pipeline.config().data_dir.canonicalize().unwrap_or_else(|_| pipeline.config().data_dir.clone());
    let mut pending: HashMap<PathBuf, (Seen, Instant)> = HashMap::new();
    tracing::info!(folder = %dir.display(), "watching for videos");
    loop {
        if *stop.borrow() {
            return;
        }
        for (path, seen) in candidates(&dir, &data) {
            let key = format!("watch:{}:{}:{}", path.display(), seen.size, mtime_ms(seen.modified));
            if matches!(pipeline.db().get_value(&key).await, Ok(Some(_))) {
                continue;
            }
            let settled = match pending.get(&path) {
                Some((before, since)) if *before == seen => since.elapsed() >= settle,
                _ => {
                    pending.insert(path.clone(), (seen, Instant::now()));
                    false
                }
            };
            if !settled {
                continue;
            }
            pending.remove(&path);
            // Recorded first: a file that cannot be ingested is reported once, not
            // retried every second.
            if let Err(e) = pipeline.db().set_value(&key, "ingesting").await {
                tracing::error!(error = %e, "watch folder: cannot record a file");
                continue;
            }
            match pipeline.ingest_path(&path, options.clone()).await {
                Ok(id) => {
                    tracing::info!(file = %path.display(), video = %id, "watch folder: ingested");
                    let _ = pipeline.db().set_value(&key, id.as_str()).await;
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "watch folder: not ingested");
                    let _ = pipeline.db().set_value(&key, &format!("refused: {e}")).await;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => {}
        }
    }
}

fn mtime_ms(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

/// The video files directly in `dir` that are not hidden, not empty and not inside
/// `data`.
fn candidates(dir: &Path, data: &Path) -> Vec<(PathBuf, Seen)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ext = Path::new(&name).extension()?.to_str()?.to_ascii_lowercase();
            if name.starts_with('.') || !VIDEO_EXTENSIONS.contains(&ext.as_str()) {
                return None;
            }
            let path = entry.path().canonicalize().ok()?;
            if path.starts_with(data) {
                return None;
            }
            let meta = std::fs::metadata(&path).ok()?;
            let modified = meta.modified().ok()?;
            (meta.is_file() && meta.len() > 0).then_some((path, Seen { size: meta.len(), modified }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_video_files_outside_the_data_folder_are_candidates() {
        let root = tempfile::tempdir().expect("tmp");
        let watched = root.path().join("in");
        let data = root.path().join("data");
        std::fs::create_dir_all(&watched).expect("mkdir");
        std::fs::create_dir_all(data.join("videos")).expect("mkdir");
        for name in ["a.mp4", "b.MOV", "c.txt", ".hidden.mp4", "empty.mkv"] {
            std::fs::write(watched.join(name), if name == "empty.mkv" { "" } else { "x" }).expect("write");
        }
        std::os::unix::fs::symlink(data.join("out.mp4"), watched.join("link.mp4")).expect("symlink");
        std::fs::write(data.join("out.mp4"), "x").expect("write");
        let data = data.canonicalize().expect("canonical");
        let mut names: Vec<String> = candidates(&watched, &data)
            .into_iter()
            .map(|(p, _)| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a.mp4", "b.MOV"], "a link into the data folder is not followed");
        assert!(matches!(check(&data, &data), Err(WatchError::InsideData { .. })));
        assert!(matches!(check(&data.join("videos").join(".."), &data), Err(WatchError::InsideData { .. })));
        assert!(check(&watched, &data).is_ok());
    }
}
