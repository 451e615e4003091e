//! Videos: created with their first job, read, and moved between states;
//! their warnings.

use crate::*;

pub(crate) fn video_from(row: &AnyRow) -> Result<Video, DbError> {
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

impl Db {
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

    /// Cancels a video that is processing or awaiting review: its queued and
    /// running jobs end dead ("cancelled"; a running one's worker then finds its
    /// lease gone and records nothing), the video is `cancelled`, and an event
    /// says so, in one transaction. False if it was not in progress.
    pub async fn cancel_video(&self, id: &str) -> Result<bool, DbError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE videos SET state = 'cancelled', updated_ms = $1
             WHERE id = $2 AND state IN ('processing', 'awaiting_review')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE jobs SET state = 'dead', last_error = 'cancelled', lease_ms = NULL, finished_ms = $1
             WHERE video_id = $2 AND state IN ('queued', 'running')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO events (video_id, at_ms, kind, message, data) VALUES ($1, $2, 'cancelled', $3, $4)",
        )
        .bind(id)
        .bind(now)
        .bind("cancelled by an operator")
        .bind(serde_json::json!({ "state": "cancelled" }).to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One page of videos, newest first: those created before `before` (a
    /// `(created_ms, id)` cursor from the previous page), in `state` if given.
    pub async fn list_videos(
        &self,
        state: Option<VideoState>,
        before: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<Video>, DbError> {
        let (at, id) = before.unwrap_or((i64::MAX, ""));
        let rows = sqlx::query(
            "SELECT * FROM videos
             WHERE ($1 = '' OR state = $1) AND (created_ms < $2 OR (created_ms = $2 AND id < $3) OR $3 = '')
             ORDER BY created_ms DESC, id DESC LIMIT $4",
        )
        .bind(state.map_or("", |s| s.as_str()))
        .bind(at)
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(video_from).collect()
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

    /// Adds a warning to a video (once: the same text is not repeated). True if it
    /// was new.
    pub async fn add_warning(&self, id: &str, warning: &str) -> Result<bool, DbError> {
        self.edit_warnings(id, |warnings| {
            let new = !warnings.iter().any(|w| w == warning);
            if new {
                warnings.push(warning.to_owned());
            }
            new
        })
        .await
    }

    /// Takes back the warnings that contain `text` (their cause was fixed, e.g. a
    /// stage that died ran again); says whether there were any.
    pub async fn remove_warnings(&self, id: &str, text: &str) -> Result<bool, DbError> {
        self.edit_warnings(id, |warnings| {
            let before = warnings.len();
            warnings.retain(|w| !w.contains(text));
            warnings.len() != before
        })
        .await
    }

    /// Changes a video's warnings in one transaction; `edit` says whether it
    /// changed them (only then are they written).
    async fn edit_warnings(
        &self,
        id: &str,
        edit: impl FnOnce(&mut Vec<String>) -> bool,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        hold_video_row(&mut tx, id).await?;
        let row =
            sqlx::query("SELECT warnings FROM videos WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
        let text: String = row.try_get("warnings")?;
        let mut warnings: Vec<String> =
            serde_json::from_str(&text).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let changed = edit(&mut warnings);
        if changed {
            let json = serde_json::to_string(&warnings).map_err(|e| DbError::Corrupt(e.to_string()))?;
            sqlx::query("UPDATE videos SET warnings = $1, updated_ms = $2 WHERE id = $3")
                .bind(json)
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}
