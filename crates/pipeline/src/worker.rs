//! The worker pool: each worker claims a job, heartbeats its lease while the stage
//! runs, records the outcome and events, and settles the video.

use std::sync::Arc;
use std::time::{Duration, Instant};

use babelcast_core::Retry;
use babelcast_jobs::{Failure, Job};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Pipeline, stage};

/// Every stage, for a worker that takes all.
pub const ALL_STAGES: &[&str] = &[
    stage::PROBE,
    stage::ENCODE,
    stage::TRANSCRIBE,
    stage::IMPORT,
    stage::CAPTIONS,
    stage::TRANSLATE,
    stage::DUB,
];

/// How often an idle worker looks for work.
const POLL: Duration = Duration::from_millis(250);

/// How long a staging folder must go untouched before the start-up sweep removes
/// it as a leftover (a live encode writes a segment every few seconds).
const STALE_PARTIAL: Duration = Duration::from_secs(600);

/// Progress events are written at most this often per job...
const PROGRESS_EVERY: Duration = Duration::from_millis(1000);

/// Running workers; dropping the pool does not stop them, [`WorkerPool::shutdown`]
/// does (after their current job).
#[derive(Debug)]
pub struct WorkerPool {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Starts `count` workers taking `stages`, named `{prefix}-{n}`.
    pub fn start(pipeline: &Pipeline, count: usize, stages: &[&'static str], prefix: &str) -> WorkerPool {
        let (stop, stopped) = watch::channel(false);
        let stages: Arc<Vec<&'static str>> = Arc::new(stages.to_vec());
        let handles = (0..count)
            .map(|n| {
                let pipeline = pipeline.clone();
                let stages = Arc::clone(&stages);
                let name = format!("{prefix}-{n}");
                let stopped = stopped.clone();
                tokio::spawn(async move { pipeline.work(name, stages, stopped).await })
            })
            .collect();
        WorkerPool { stop, handles }
    }

    /// Stops the workers once their current job is over, and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

impl Pipeline {
    /// Settles every video that is still processing: after a restart, a video whose
    /// last stage finished just before a crash gets its next step or final state.
    /// Also removes staging folders a killed process left behind (single-node use:
    /// with several nodes, another node may be writing one).
    pub async fn recover(&self, remove_partials: bool) -> Result<(), babelcast_jobs::DbError> {
        if remove_partials {
            for dir in
                [self.config.data_dir.join("cache").join(stage::ENCODE), self.config.data_dir.join("videos")]
            {
                remove_partials_in(&dir, 2);
            }
            sweep_uploads(&self.uploads_dir(), UPLOAD_SWEEP_AGE);
            self.remove_deleted_copies().await?;
        }
        for video in self.db.videos().await? {
            if !video.state.is_final() {
                self.settle(&video.id).await?;
            }
        }
        Ok(())
    }

    async fn work(&self, name: String, stages: Arc<Vec<&'static str>>, mut stopped: watch::Receiver<bool>) {
        tracing::debug!(worker = %name, ?stages, "worker started");
        loop {
            if *stopped.borrow() {
                break;
            }
            match self.db.claim(&name, &stages, self.config.lease).await {
                Ok(Some(job)) => self.run_job(&name, job).await,
                Ok(None) => {
                    // Woken by new work (NOTIFY from any node on PostgreSQL; this
                    // process's own on SQLite), else polling.
                    tokio::select! {
                        _ = self.db.wait_for_work(self.db.idle_poll()) => {}
                        _ = stopped.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(worker = %name, error = %e, "cannot claim a job");
                    tokio::time::sleep(POLL * 4).await;
                }
            }
        }
        tracing::debug!(worker = %name, "worker stopped");
    }

    async fn run_job(&self, worker: &str, job: Job) {
        let started = Instant::now();
        let db = self.db.clone();
        tracing::info!(worker, video = %job.video_id, stage = %job.stage, attempt = job.attempts, "stage started");
        let _ = db
            .add_event(
                &job.video_id,
                "stage_started",
                Some(&job.stage),
                &format!("{} started (attempt {} of {})", job.stage, job.attempts, job.max_attempts),
                Some(json!({ "attempt": job.attempts, "worker": worker })),
            )
            .await;

        // The heartbeat keeps the lease while the stage runs.
        let heartbeat = {
            let db = db.clone();
            let (id, worker, lease) = (job.id, worker.to_owned(), self.config.lease);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(lease / 3);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match db.heartbeat(id, &worker, lease).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(job = id, "lease lost: another worker has the job");
                            break;
                        }
                        Err(e) => tracing::warn!(job = id, error = %e, "heartbeat failed"),
                    }
                }
            })
        };
        // Progress from the stage's blocking thread, written as throttled events.
        let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
        let progress = {
            let db = db.clone();
            let (video, stage) = (job.video_id.clone(), job.stage.clone());
            tokio::spawn(async move {
                let mut last: Option<(Instant, f64)> = None;
                while let Some(fraction) = progress_rx.recv().await {
                    let due = match last {
                        None => true,
                        Some((at, f)) => at.elapsed() >= PROGRESS_EVERY && fraction - f >= 0.01,
                    };
                    if due {
                        last = Some((Instant::now(), fraction));
                        let percent = (fraction * 100.0).round();
                        let _ = db
                            .add_event(
                                &video,
                                "progress",
                                Some(&stage),
                                &format!("{stage} {percent}%"),
                                Some(json!({ "fraction": fraction })),
                            )
                            .await;
                    }
                }
            })
        };

        let outcome = self.run_stage(&job, progress_tx).await;
        heartbeat.abort();
        let _ = progress.await;
        let secs = started.elapsed().as_secs_f64();
        match outcome {
            Ok(done) => match db.complete(job.id, worker).await {
                Ok(true) => {
                    let mut data = done.data;
                    data["secs"] = json!(secs);
                    data["cached"] = json!(done.cached);
                    let how = if done.cached { " (from the cache)" } else { "" };
                    let _ = db
                        .add_event(
                            &job.video_id,
                            "stage_finished",
                            Some(&job.stage),
                            &format!("{} finished in {secs:.1} s{how}", job.stage),
                            Some(data),
                        )
                        .await;
                    tracing::info!(worker, video = %job.video_id, stage = %job.stage, secs, "stage finished");
                }
                Ok(false) => tracing::warn!(
                    job = job.id,
                    "finished after losing the lease; the result is not recorded"
                ),
                Err(e) => tracing::error!(job = job.id, error = %e, "cannot record completion"),
            },
            Err(failure) => {
                let (give_up, backoff) = match failure.retry {
                    Retry::GiveUp => (true, self.config.backoff),
                    Retry::Backoff => (false, self.config.backoff),
                    Retry::After(at_least) => (false, at_least),
                };
                match db.fail(job.id, worker, &failure.message, give_up, backoff).await {
                    Ok(Failure::Retrying { at_ms }) => {
                        let _ = db
                            .add_event(
                                &job.video_id,
                                "stage_retrying",
                                Some(&job.stage),
                                &format!("{} failed, will retry: {}", job.stage, failure.message),
                                Some(json!({
                                    "error": failure.message, "code": failure.code, "retry_at_ms": at_ms,
                                    "attempt": job.attempts,
                                })),
                            )
                            .await;
                    }
                    Ok(Failure::Dead) => {
                        let _ = db
                            .add_event(
                                &job.video_id,
                                "stage_failed",
                                Some(&job.stage),
                                &format!("{} failed: {}", job.stage, failure.message),
                                Some(json!({
                                    "error": failure.message, "code": failure.code, "attempts": job.attempts,
                                    "gave_up": give_up,
                                })),
                            )
                            .await;
                    }
                    Ok(Failure::LeaseLost) => tracing::warn!(job = job.id, "failed after losing the lease"),
                    Err(e) => tracing::error!(job = job.id, error = %e, "cannot record the failure"),
                }
                tracing::warn!(worker, video = %job.video_id, stage = %job.stage, error = %failure.message, "stage failed");
            }
        }
        // Deleted while the stage ran: what it wrote since goes too.
        if db.is_deleted(&job.video_id).await.unwrap_or(false)
            && let Ok(id) = job.video_id.parse()
            && let Err(e) = self.delete(&id).await
        {
            tracing::error!(video = %job.video_id, error = %e, "cannot remove what a deleted video's stage wrote");
        }
        if let Err(e) = self.settle(&job.video_id).await {
            tracing::error!(video = %job.video_id, error = %e, "cannot settle the video");
        }
    }
}

/// Removes `.partial-*` folders and files up to `depth` levels below `dir`.
fn remove_partials_in(dir: &std::path::Path, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let partial = entry.file_name().to_string_lossy().starts_with(".partial-");
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        // Another node sharing the folder may be writing it now: only what nobody
        // has touched for a while is a leftover. (A re-run stage removes its own
        // target's leftovers at once: `babelcast_store::StagedDir`.)
        let untouched = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_PARTIAL);
        if partial && untouched {
            let removed = if is_dir { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            if removed.is_ok() {
                tracing::info!(path = %path.display(), "removed a staging leftover from an interrupted run");
            }
        } else if is_dir && depth > 0 {
            remove_partials_in(&path, depth - 1);
        }
    }
}

/// How long an upload in `uploads/` may go unchanged before a start-up sweep
/// takes it for the leftover of a cut-off upload. A live upload's file grows
/// (its modification time moves) as long as bytes arrive, so another node's
/// upload in a shared folder is never this old.
pub const UPLOAD_SWEEP_AGE: Duration = Duration::from_secs(3600);

/// Removes the `.upload-*` files in `dir` unchanged for `age`; returns how many.
pub fn sweep_uploads(dir: &std::path::Path, age: Duration) -> usize {
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(".upload-") {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| now.duration_since(at).ok())
            .is_some_and(|idle| idle >= age);
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            tracing::info!(file = %entry.path().display(), "removed a leftover upload");
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_takes_old_leftover_uploads_and_leaves_live_ones_and_other_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let old = dir.path().join(".upload-cut-off");
        let live = dir.path().join(".upload-arriving");
        let other = dir.path().join("notes.txt");
        for file in [&old, &live, &other] {
            std::fs::write(file, b"bytes").expect("write");
        }
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
        for file in [&old, &other] {
            std::fs::File::options()
                .write(true)
                .open(file)
                .expect("open")
                .set_modified(long_ago)
                .expect("mtime");
        }
        assert_eq!(sweep_uploads(dir.path(), UPLOAD_SWEEP_AGE), 1);
        assert!(!old.exists() && live.exists() && other.exists());
    }
}
