//! Opening the database: SQLite files or a PostgreSQL server behind one API,
//! the embedded migrations run at every open, the advisory lock, and how idle
//! workers learn that work was queued (PostgreSQL `NOTIFY`, else polling).

use crate::*;

/// The embedded migrations, per backend.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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
    pub(crate) async fn announce_work(&self) -> Result<(), DbError> {
        self.work.notify_waiters();
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')").bind(WORK_CHANNEL).execute(&self.pool).await?;
        }
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
