//! The durable state of the pipeline: videos, stage jobs, the event log and the
//! stage cache, in one database: a SQLite file (WAL mode) for one machine, or
//! PostgreSQL for many, chosen by the database URL. Migrations are embedded and
//! run at open, one set per backend with the same schema.
//!
//! **Two backends, one text.** Queries go through sqlx's `Any` driver and are
//! written once, with `$1`-style parameters and SQL both databases speak (`ON
//! CONFLICT`, `RETURNING`). The differences are confined to three places: the
//! claim (PostgreSQL locks the chosen row with `FOR UPDATE SKIP LOCKED`, so
//! concurrent workers skip each other's rows instead of waiting; SQLite has one
//! writer at a time anyway), the migrations, and waking idle workers
//! (PostgreSQL's `LISTEN/NOTIFY` across machines, with polling as the fallback;
//! SQLite polls). The conformance suite (`tests/conformance.rs`) runs the same
//! tests on both.
//!
//! **The queue.** A stage of a video is one row in `jobs` (unique per video and
//! stage, so enqueueing twice is harmless). A worker *claims* a job in one
//! statement, which sets a lease; while it works it *heartbeats* to extend the
//! lease. A worker that dies (kill -9, a lost machine) stops heartbeating, the lease
//! runs out and any worker claims the job again. A failed attempt is retried after
//! a backoff that doubles each time; once `max_attempts` are used up the job is
//! **dead**, its last error kept. A job's outcome only counts if the worker still
//! holds the lease (a worker that lost its lease cannot overwrite the new owner's
//! result).
//!
//! **The cache.** A stage's output is recorded under its cache key only once it is
//! complete on disk, so a crash never leaves a key pointing at half a file.
//!
//! **Where the SQL is.** `queue` (jobs), `videos` (videos and their warnings),
//! `deletion` (deleting a video, its tombstone and the cache entries only it used),
//! `events` (the event log), `cache` (the stage cache and small values), `keys`
//! (API keys and per-video link generations); this file
//! holds the types, opening and migrating, locks and wake-ups.
//!
//! **Why not a queue crate.** apalis 1.0 (apalis-postgres / apalis-sqlite 1.0.0)
//! was weighed against the conformance suite by reading its source (not by an
//! adapter: it could not be built beside this crate, as its backends need sqlx 0.9,
//! whose libsqlite3-sys 0.37 clashes with sqlx 0.8's `links = "sqlite3"`, and their
//! queries take typed `Postgres`/`Sqlite` executors, not `Any`). Cases it cannot
//! pass: `failures_back_off_then_the_job_dies_with_its_error` (no stored retry
//! time: the backoff waits inside the worker; no requeue of a done or dead job, which
//! re-runs after an edit need), `a_dead_workers_job_is_claimed_again_when_its_lease_runs_out`
//! (leases per worker in whole seconds, freed by another worker's sweep, no per-job
//! heartbeat) and `only_the_stages_a_worker_takes_are_claimed` (one job type per
//! fetch, no claim across stage kinds); and its two backends have different schemas.
//! River's Rust port is MPL-2.0, before 1.0, and needs sqlx 0.9 too.
//!
//! Times are Unix milliseconds from the database's point of view of "now", passed
//! in by the caller (tests use their own clock).

mod cache;
mod connect;
mod deletion;
mod events;
mod keys;
mod queue;
mod videos;

pub use keys::ApiKey;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use babelcast_core::ErrorCode;
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

/// The PostgreSQL channel a `NOTIFY` goes to when work is queued.
pub const WORK_CHANNEL: &str = "babelcast_jobs";

/// Why the database failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database URL names no supported database.
    #[error(
        "unsupported database URL {0:?}: use a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB"
    )]
    Url(String),
    /// The database could not be opened or migrated.
    #[error("cannot open the database {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored value could not be read back.
    #[error("corrupt value in the database: {0}")]
    Corrupt(String),
}

impl ErrorCode for DbError {
    fn code(&self) -> &'static str {
        match self {
            DbError::Url(_) => "database_url",
            DbError::Open { .. } => "database_open",
            DbError::Migrate(_) => "database_migrate",
            DbError::Query(_) => "database_query",
            DbError::Corrupt(_) => "database_corrupt",
        }
    }

    fn is_client_error(&self) -> bool {
        false
    }

    fn retry(&self) -> babelcast_core::Retry {
        match self {
            // Busy or briefly away (a pool timeout, a restart): soon again.
            DbError::Query(_) => babelcast_core::Retry::After(Duration::from_secs(1)),
            DbError::Corrupt(_) => babelcast_core::Retry::GiveUp,
            _ => babelcast_core::Retry::Backoff,
        }
    }
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Starts a transaction's writing at once by a write that changes nothing to
/// the video's row, before it reads what it will change. On SQLite a
/// transaction that reads first and writes later fails with `SQLITE_BUSY` at
/// once, without waiting, when another connection wrote in between (a worker
/// claiming a job); a write first waits for the writer lock like any other.
/// On PostgreSQL the same statement holds the row until the commit.
async fn hold_video_row(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE videos SET updated_ms = updated_ms WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Where a video stands as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoState {
    /// Stages are queued or running.
    Processing,
    /// Every stage finished.
    Completed,
    /// Published, but something was left out (e.g. captions); see the warnings.
    CompletedWithWarnings,
    /// The transcript waits for a person to review and approve it.
    AwaitingReview,
    /// Nothing could be published; see the error.
    Failed,
    /// An operator stopped it; what it made so far stays.
    Cancelled,
}

impl VideoState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            VideoState::Processing => "processing",
            VideoState::Completed => "completed",
            VideoState::CompletedWithWarnings => "completed_with_warnings",
            VideoState::AwaitingReview => "awaiting_review",
            VideoState::Failed => "failed",
            VideoState::Cancelled => "cancelled",
        }
    }

    /// Whether nothing more will happen (until someone edits or approves).
    pub fn is_final(self) -> bool {
        !matches!(self, VideoState::Processing | VideoState::AwaitingReview)
    }
}

impl FromStr for VideoState {
    type Err = DbError;

    fn from_str(s: &str) -> Result<VideoState, DbError> {
        Ok(match s {
            "processing" => VideoState::Processing,
            "completed" => VideoState::Completed,
            "completed_with_warnings" => VideoState::CompletedWithWarnings,
            "awaiting_review" => VideoState::AwaitingReview,
            "failed" => VideoState::Failed,
            "cancelled" => VideoState::Cancelled,
            other => return Err(DbError::Corrupt(format!("video state {other:?}"))),
        })
    }
}

/// Where one stage job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting to be claimed (possibly after a backoff).
    Queued,
    /// Claimed by a worker holding a lease.
    Running,
    /// Finished.
    Done,
    /// Failed every attempt; its last error is kept.
    Dead,
}

impl JobState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }
}

impl FromStr for JobState {
    type Err = DbError;

    fn from_str(s: &str) -> Result<JobState, DbError> {
        Ok(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            other => return Err(DbError::Corrupt(format!("job state {other:?}"))),
        })
    }
}

/// A video as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Video {
    /// Its id.
    pub id: String,
    /// When it was received, Unix ms.
    pub created_ms: i64,
    /// When it last changed, Unix ms.
    pub updated_ms: i64,
    /// The uploaded file's name, for display only.
    pub source_name: String,
    /// SHA-256 of the upload, hex.
    pub source_sha256: String,
    /// The extension the source is stored under (`mp4`).
    pub source_ext: String,
    /// The submission options, JSON.
    pub options: serde_json::Value,
    /// Where it stands.
    pub state: VideoState,
    /// Warnings: what was left out and why.
    pub warnings: Vec<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// A new video to record.
#[derive(Debug, Clone)]
pub struct NewVideo {
    /// Its id.
    pub id: String,
    /// The uploaded file's name.
    pub source_name: String,
    /// SHA-256 of the upload, hex.
    pub source_sha256: String,
    /// The stored source's extension.
    pub source_ext: String,
    /// The submission options.
    pub options: serde_json::Value,
}

/// A stage job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: i64,
    /// The video.
    pub video_id: String,
    /// The stage name (`probe`, `encode`, ...).
    pub stage: String,
    /// Where it stands.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the current or last attempt started.
    pub started_ms: Option<i64>,
    /// When it finished.
    pub finished_ms: Option<i64>,
}

/// One entry of a video's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Increasing id (the SSE event id).
    pub id: i64,
    /// The video.
    pub video_id: String,
    /// When, Unix ms.
    pub at_ms: i64,
    /// What kind: `received`, `stage_started`, `stage_finished`, `stage_failed`,
    /// `stage_retrying`, `progress`, `warning`, `playable`, `captions_published`,
    /// `completed`, `failed`, ...
    pub kind: String,
    /// The stage it is about, if any.
    pub stage: Option<String>,
    /// A human sentence.
    pub message: String,
    /// Details (outputs, progress fraction, ...).
    pub data: Option<serde_json::Value>,
}

/// What became of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Queued again, to run after this Unix ms.
    Retrying {
        /// When.
        at_ms: i64,
    },
    /// No attempts left: the job is dead.
    Dead,
    /// The worker no longer held the job (its lease ran out and another took it).
    LeaseLost,
}

/// Which database holds the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file: one machine (any number of processes on it).
    Sqlite,
    /// A PostgreSQL server: any number of machines.
    Postgres,
}

impl Backend {
    /// Its name, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The database.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// Woken when work is queued: by this process, or (PostgreSQL) by a `NOTIFY`
    /// from any process.
    work: Arc<tokio::sync::Notify>,
}

/// Held while a [`Db::lock`] is held.
#[derive(Debug)]
pub struct DbLock {
    _tx: Option<sqlx::Transaction<'static, sqlx::Any>>,
}
