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
//! Times are Unix milliseconds from the database's point of view of "now", passed
//! in by the caller (tests use their own clock).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use babelcast_core::ErrorCode;
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

/// The embedded migrations, per backend.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
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

/// A URL with its password hidden, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// A path as a `sqlite://` URL, with the characters a URL gives meaning to escaped.
fn sqlite_url(path: &Path) -> String {
    let mut escaped = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => escaped.push_str("%25"),
            '?' => escaped.push_str("%3F"),
            '#' => escaped.push_str("%23"),
            c => escaped.push(c),
        }
    }
    format!("sqlite://{escaped}?mode=rwc")
}

fn video_from(row: &AnyRow) -> Result<Video, DbError> {
    let options: String = row.try_get("options")?;
    let warnings: String = row.try_get("warnings")?;
    let state: String = row.try_get("state")?;
    Ok(Video {
        id: row.try_get("id")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        source_name: row.try_get("source_name")?,
        source_sha256: row.try_get("source_sha256")?,
        source_ext: row.try_get("source_ext")?,
        options: serde_json::from_str(&options).map_err(|e| DbError::Corrupt(e.to_string()))?,
        state: state.parse()?,
        warnings: serde_json::from_str(&warnings).map_err(|e| DbError::Corrupt(e.to_string()))?,
        error: row.try_get("error")?,
    })
}

fn job_from(row: &AnyRow) -> Result<Job, DbError> {
    let state: String = row.try_get("state")?;
    Ok(Job {
        id: row.try_get("id")?,
        video_id: row.try_get("video_id")?,
        stage: row.try_get("stage")?,
        state: state.parse()?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        last_error: row.try_get("last_error")?,
        started_ms: row.try_get("started_ms")?,
        finished_ms: row.try_get("finished_ms")?,
    })
}

fn event_from(row: &AnyRow) -> Result<Event, DbError> {
    let data: Option<String> = row.try_get("data")?;
    Ok(Event {
        id: row.try_get("id")?,
        video_id: row.try_get("video_id")?,
        at_ms: row.try_get("at_ms")?,
        kind: row.try_get("kind")?,
        stage: row.try_get("stage")?,
        message: row.try_get("message")?,
        data: data
            .map(|d| serde_json::from_str(&d))
            .transpose()
            .map_err(|e| DbError::Corrupt(e.to_string()))?,
    })
}

impl Db {
    /// Opens (creating if needed) a SQLite database file and runs the migrations.
    pub async fn open(path: &Path) -> Result<Db, DbError> {
        Db::connect_as(&sqlite_url(path), Backend::Sqlite, &path.display().to_string()).await
    }

    /// Opens the database a URL names, and runs the migrations: `postgres://` or
    /// `postgresql://` for PostgreSQL, `sqlite://PATH` or a plain path for SQLite.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Db::connect_as(url, Backend::Postgres, &redact(url)).await
        } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            Db::open(Path::new(path.split('?').next().unwrap_or(path))).await
        } else if !url.contains("://") && !url.is_empty() {
            Db::open(Path::new(url)).await
        } else {
            Err(DbError::Url(redact(url)))
        }
    }

    async fn connect_as(url: &str, backend: Backend, shown: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let open_error = |source| DbError::Open { path: shown.to_owned(), source };
        let pool = match backend {
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(4)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // WAL + NORMAL: a committed transaction survives a process
                        // crash; only an OS crash may lose the last commits.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            conn.execute(pragma).await?;
                        }
                        Ok(())
                    })
                })
                .connect(url)
                .await
                .map_err(open_error)?,
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(open_error)?,
        };
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        let work = Arc::new(tokio::sync::Notify::new());
        if backend == Backend::Postgres {
            listen_for_work(url, Arc::downgrade(&work)).await.map_err(open_error)?;
        }
        Ok(Db { pool, backend, work })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// An exclusive lock named `name` among every process using this database,
    /// held until the returned guard is dropped. On PostgreSQL a transaction-scoped
    /// advisory lock (released by the rollback when the guard drops, or when the
    /// connection dies with its process); on SQLite, whose users are one machine,
    /// nothing: the caller's file lock serves.
    pub async fn lock(&self, name: &str) -> Result<DbLock, DbError> {
        match self.backend {
            Backend::Sqlite => Ok(DbLock { _tx: None }),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                // Selected through a subquery: the function returns `void`, a type
                // the Any driver cannot decode.
                sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS locked")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                Ok(DbLock { _tx: Some(tx) })
            }
        }
    }

    /// Waits until work may have been queued, or `timeout` passes: PostgreSQL
    /// wakes workers on every machine with `NOTIFY`; SQLite only those of this
    /// process, the others poll.
    pub async fn wait_for_work(&self, timeout: Duration) {
        tokio::select! {
            _ = self.work.notified() => {}
            _ = tokio::time::sleep(timeout) => {}
        }
    }

    /// How long an idle worker waits before looking again on its own: with
    /// `NOTIFY` waking it, polling is only the fallback.
    pub fn idle_poll(&self) -> Duration {
        match self.backend {
            Backend::Sqlite => Duration::from_millis(250),
            Backend::Postgres => Duration::from_secs(2),
        }
    }

    /// Tells idle workers that work was queued.
    async fn announce_work(&self) -> Result<(), DbError> {
        self.work.notify_waiters();
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')").bind(WORK_CHANNEL).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Records a new video, its first stage job and a `received` event, in one
    /// transaction.
    pub async fn create_video(
        &self,
        video: &NewVideo,
        first_stage: &str,
        max_attempts: i64,
    ) -> Result<(), DbError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO videos (id, created_ms, updated_ms, source_name, source_sha256, source_ext, options, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'processing')",
        )
        .bind(&video.id)
        .bind(now)
        .bind(now)
        .bind(&video.source_name)
        .bind(&video.source_sha256)
        .bind(&video.source_ext)
        .bind(video.options.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO jobs (video_id, stage, state, max_attempts, run_after_ms, created_ms)
             VALUES ($1, $2, 'queued', $3, $4, $5)",
        )
        .bind(&video.id)
        .bind(first_stage)
        .bind(max_attempts)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO events (video_id, at_ms, kind, message, data) VALUES ($1, $2, 'received', $3, $4)",
        )
        .bind(&video.id)
        .bind(now)
        .bind(format!("received {}", video.source_name))
        .bind(serde_json::json!({ "sha256": video.source_sha256 }).to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.announce_work().await
    }

    /// Queues a stage of a video unless it is already queued, running or done.
    /// Returns whether a job was added.
    pub async fn enqueue(&self, video_id: &str, stage: &str, max_attempts: i64) -> Result<bool, DbError> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO jobs (video_id, stage, state, max_attempts, run_after_ms, created_ms)
             VALUES ($1, $2, 'queued', $3, $4, $5) ON CONFLICT (video_id, stage) DO NOTHING",
        )
        .bind(video_id)
        .bind(stage)
        .bind(max_attempts)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let added = done.rows_affected() == 1;
        if added {
            self.announce_work().await?;
        }
        Ok(added)
    }

    /// Claims the oldest runnable job of one of `stages` for `worker`, with a lease
    /// of `lease`: a queued job whose backoff is over, or a running job whose lease
    /// ran out (its worker died).
    pub async fn claim(
        &self,
        worker: &str,
        stages: &[&str],
        lease: Duration,
    ) -> Result<Option<Job>, DbError> {
        let now = now_ms();
        if stages.is_empty() {
            return Ok(None);
        }
        // A stage name matches itself and its per-language jobs: `dub` takes `dub-es`.
        // $1 worker, $2 lease end, $3 now, then the stages, then their prefixes.
        let names = (0..stages.len()).map(|i| format!("${}", 4 + i)).collect::<Vec<_>>().join(", ");
        let prefixes = (0..stages.len())
            .map(|i| format!(" OR stage LIKE ${}", 4 + stages.len() + i))
            .collect::<String>();
        // PostgreSQL: take the row locked, and skip rows other claims hold, so
        // concurrent workers never wait on (or take) the same job.
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', worker = $1, lease_ms = $2, attempts = attempts + 1, started_ms = $3
             WHERE id = (
                 SELECT id FROM jobs
                 WHERE (stage IN ({names}){prefixes})
                   AND ((state = 'queued' AND run_after_ms <= $3) OR (state = 'running' AND lease_ms < $3))
                 ORDER BY run_after_ms, id LIMIT 1{lock})
             RETURNING *"
        );
        let mut query = sqlx::query(&sql).bind(worker).bind(now + ms(lease)).bind(now);
        for stage in stages {
            query = query.bind(*stage);
        }
        for stage in stages {
            query = query.bind(format!("{stage}-%"));
        }
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(job_from).transpose()
    }

    /// Extends the lease of a job `worker` holds. False if it no longer holds it.
    pub async fn heartbeat(&self, job_id: i64, worker: &str, lease: Duration) -> Result<bool, DbError> {
        let done =
            sqlx::query("UPDATE jobs SET lease_ms = $1 WHERE id = $2 AND worker = $3 AND state = 'running'")
                .bind(now_ms() + ms(lease))
                .bind(job_id)
                .bind(worker)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a job `worker` holds as done. False if it no longer held it.
    pub async fn complete(&self, job_id: i64, worker: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'done', finished_ms = $1, lease_ms = NULL, last_error = NULL
             WHERE id = $2 AND worker = $3 AND state = 'running'",
        )
        .bind(now_ms())
        .bind(job_id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt: queued again after `backoff × 2^(attempts-1)`, or
    /// dead if no attempts are left or `permanent` (retrying cannot help, e.g. the
    /// upload is not media).
    pub async fn fail(
        &self,
        job_id: i64,
        worker: &str,
        error: &str,
        permanent: bool,
        backoff: Duration,
    ) -> Result<Failure, DbError> {
        let row = sqlx::query(
            "SELECT attempts, max_attempts FROM jobs WHERE id = $1 AND worker = $2 AND state = 'running'",
        )
        .bind(job_id)
        .bind(worker)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(Failure::LeaseLost) };
        let attempts: i64 = row.try_get("attempts")?;
        let max_attempts: i64 = row.try_get("max_attempts")?;
        let now = now_ms();
        let (state, failure) = if permanent || attempts >= max_attempts {
            ("dead", Failure::Dead)
        } else {
            let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(16);
            let at_ms = now + ms(backoff) * (1i64 << exponent);
            ("queued", Failure::Retrying { at_ms })
        };
        let (run_after, finished) = match failure {
            Failure::Retrying { at_ms } => (at_ms, None),
            _ => (now, Some(now)),
        };
        let done = sqlx::query(
            "UPDATE jobs SET state = $1, last_error = $2, run_after_ms = $3, lease_ms = NULL, finished_ms = $4
             WHERE id = $5 AND worker = $6 AND state = 'running'",
        )
        .bind(state)
        .bind(error)
        .bind(run_after)
        .bind(finished)
        .bind(job_id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(if done.rows_affected() == 1 { failure } else { Failure::LeaseLost })
    }

    /// A video.
    pub async fn video(&self, id: &str) -> Result<Option<Video>, DbError> {
        let row =
            sqlx::query("SELECT * FROM videos WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(video_from).transpose()
    }

    /// Every video, newest first.
    pub async fn videos(&self) -> Result<Vec<Video>, DbError> {
        let rows =
            sqlx::query("SELECT * FROM videos ORDER BY created_ms DESC, id").fetch_all(&self.pool).await?;
        rows.iter().map(video_from).collect()
    }

    /// A video's jobs, in creation order.
    pub async fn jobs(&self, video_id: &str) -> Result<Vec<Job>, DbError> {
        let rows = sqlx::query("SELECT * FROM jobs WHERE video_id = $1 ORDER BY id")
            .bind(video_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from).collect()
    }

    /// Sets a video's state (and error).
    pub async fn set_video_state(
        &self,
        id: &str,
        state: VideoState,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query("UPDATE videos SET state = $1, error = $2, updated_ms = $3 WHERE id = $4")
            .bind(state.as_str())
            .bind(error)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives a processing video its final state. False if it was already final
    /// (another worker settled it first), so the final event is written once.
    pub async fn finish_video(
        &self,
        id: &str,
        state: VideoState,
        error: Option<&str>,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE videos SET state = $1, error = $2, updated_ms = $3 WHERE id = $4 AND state = 'processing'",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves a video from `from` to `to` (e.g. awaiting review → processing). False
    /// if it was not in `from`.
    pub async fn transition(&self, id: &str, from: VideoState, to: VideoState) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE videos SET state = $1, updated_ms = $2 WHERE id = $3 AND state = $4")
            .bind(to.as_str())
            .bind(now_ms())
            .bind(id)
            .bind(from.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Queues a stage of a video again (or for the first time): a done or dead job
    /// is reset with its attempts; a queued or running one is left alone.
    pub async fn requeue(&self, video_id: &str, stage: &str, max_attempts: i64) -> Result<(), DbError> {
        if self.enqueue(video_id, stage, max_attempts).await? {
            return Ok(());
        }
        let done = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = 0, last_error = NULL, run_after_ms = $1, lease_ms = NULL,
                 worker = NULL, finished_ms = NULL
             WHERE video_id = $2 AND stage = $3 AND state IN ('done', 'dead')",
        )
        .bind(now_ms())
        .bind(video_id)
        .bind(stage)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            self.announce_work().await?;
        }
        Ok(())
    }

    /// Adds a warning to a video (once: the same text is not repeated).
    pub async fn add_warning(&self, id: &str, warning: &str) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        // PostgreSQL: hold the row, so two workers adding warnings at once do not
        // lose one; SQLite's writer lock does the same.
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(&format!("SELECT warnings FROM videos WHERE id = $1{lock}"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let text: String = row.try_get("warnings")?;
        let mut warnings: Vec<String> =
            serde_json::from_str(&text).map_err(|e| DbError::Corrupt(e.to_string()))?;
        if !warnings.iter().any(|w| w == warning) {
            warnings.push(warning.to_owned());
            let json = serde_json::to_string(&warnings).map_err(|e| DbError::Corrupt(e.to_string()))?;
            sqlx::query("UPDATE videos SET warnings = $1, updated_ms = $2 WHERE id = $3")
                .bind(json)
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends an event; returns its id.
    pub async fn add_event(
        &self,
        video_id: &str,
        kind: &str,
        stage: Option<&str>,
        message: &str,
        data: Option<serde_json::Value>,
    ) -> Result<i64, DbError> {
        let row = sqlx::query(
            "INSERT INTO events (video_id, at_ms, kind, stage, message, data) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(video_id)
        .bind(now_ms())
        .bind(kind)
        .bind(stage)
        .bind(message)
        .bind(data.map(|d| d.to_string()))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// A video's events after `after_id` (0 for all), oldest first.
    pub async fn events(&self, video_id: &str, after_id: i64) -> Result<Vec<Event>, DbError> {
        let rows = sqlx::query("SELECT * FROM events WHERE video_id = $1 AND id > $2 ORDER BY id")
            .bind(video_id)
            .bind(after_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from).collect()
    }

    /// Every video's events after `after_id`, oldest first, at most `limit`.
    pub async fn all_events(&self, after_id: i64, limit: i64) -> Result<Vec<Event>, DbError> {
        let rows = sqlx::query("SELECT * FROM events WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from).collect()
    }

    /// The newest event's id (0 if there is none).
    pub async fn latest_event_id(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS id FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    /// The output recorded under a cache key.
    pub async fn cached(&self, key: &str) -> Result<Option<String>, DbError> {
        let row =
            sqlx::query("SELECT path FROM cache WHERE key = $1").bind(key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("path")).transpose()?)
    }

    /// Records a complete output under its cache key (the first record wins).
    pub async fn put_cached(&self, key: &str, stage: &str, path: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO cache (key, stage, path, created_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(stage)
        .bind(path)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Jobs by stage and state, for metrics.
    pub async fn job_counts(&self) -> Result<Vec<(String, JobState, i64)>, DbError> {
        let rows = sqlx::query(
            "SELECT stage, state, CAST(COUNT(*) AS BIGINT) AS n FROM jobs GROUP BY stage, state ORDER BY stage, state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                Ok((r.try_get("stage")?, state.parse()?, r.try_get("n")?))
            })
            .collect()
    }

    /// Finished jobs by stage: how many, and their total run time in ms (last
    /// attempt), for metrics.
    pub async fn stage_durations(&self) -> Result<Vec<(String, i64, i64)>, DbError> {
        // PostgreSQL sums BIGINTs as NUMERIC: cast back.
        let rows = sqlx::query(
            "SELECT stage, CAST(COUNT(*) AS BIGINT) AS n,
                    CAST(COALESCE(SUM(finished_ms - started_ms), 0) AS BIGINT) AS total
             FROM jobs WHERE state = 'done' AND started_ms IS NOT NULL AND finished_ms IS NOT NULL
             GROUP BY stage ORDER BY stage",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("stage")?, r.try_get("n")?, r.try_get("total")?))).collect()
    }

    /// A stored value.
    pub async fn get_value(&self, key: &str) -> Result<Option<String>, DbError> {
        let row =
            sqlx::query("SELECT value FROM kv WHERE key = $1").bind(key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Stores a value.
    pub async fn set_value(&self, key: &str, value: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Listens on [`WORK_CHANNEL`] and wakes this process's idle workers on every
/// notification, for as long as a `Db` holds `work`. The listener reconnects by
/// itself after a lost connection; meanwhile workers poll.
async fn listen_for_work(url: &str, work: std::sync::Weak<tokio::sync::Notify>) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(WORK_CHANNEL).await?;
    tokio::spawn(async move {
        loop {
            let received = listener.recv().await;
            let Some(work) = work.upgrade() else { break };
            match received {
                Ok(_) => work.notify_waiters(),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the PostgreSQL notification connection; polling meanwhile");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}
