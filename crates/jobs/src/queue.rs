//! The queue: stage jobs queued once per video and stage, claimed under a lease,
//! heartbeated, completed or failed with a doubling backoff until dead, and
//! re-queued after an edit; and the counts and durations metrics show.

use crate::*;

pub(crate) fn job_from(row: &AnyRow) -> Result<Job, DbError> {
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

impl Db {
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

    /// A video's jobs, in creation order.
    pub async fn jobs(&self, video_id: &str) -> Result<Vec<Job>, DbError> {
        let rows = sqlx::query("SELECT * FROM jobs WHERE video_id = $1 ORDER BY id")
            .bind(video_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from).collect()
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
}
