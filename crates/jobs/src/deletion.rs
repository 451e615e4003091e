//! Deleting a video: its rows go, a tombstone stays, and the cache entries only
//! it used are handed back for their files to be removed.

use crate::*;

impl Db {
    /// Deletes a video's row, jobs (a running one's worker then finds its lease
    /// gone and records nothing), events and cache uses, and keeps a tombstone,
    /// in one transaction. Returns the paths of the cache entries no other video
    /// uses (their rows are gone; their files are the caller's to remove), or
    /// `None` if there never was such a video. A second call (or one after a
    /// late stage of the deleted video wrote more) answers the same way, so
    /// deleting is idempotent.
    pub async fn delete_video(&self, id: &str) -> Result<Option<Vec<String>>, DbError> {
        let mut tx = self.pool.begin().await?;
        hold_video_row(&mut tx, id).await?;
        let live =
            sqlx::query("SELECT id FROM videos WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
        let tombstone = sqlx::query("SELECT id FROM deleted_videos WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if live.is_none() && tombstone.is_none() {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO deleted_videos (id, deleted_ms) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let orphans = sqlx::query(
            "SELECT u.key, u.path FROM cache_uses u WHERE u.video_id = $1
             AND NOT EXISTS (SELECT 1 FROM cache_uses o WHERE o.key = u.key AND o.video_id <> $1)",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let mut paths = Vec::with_capacity(orphans.len());
        for row in &orphans {
            let key: String = row.try_get("key")?;
            sqlx::query("DELETE FROM cache WHERE key = $1").bind(&key).execute(&mut *tx).await?;
            paths.push(row.try_get("path")?);
        }
        for table in ["cache_uses", "jobs", "events"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE video_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM videos WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(paths))
    }

    /// Whether a video was deleted.
    pub async fn is_deleted(&self, id: &str) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT id FROM deleted_videos WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The finished videos (completed, with warnings, failed or cancelled) last
    /// changed before `before_ms`, oldest first: what a retention age removes.
    pub async fn finished_before(&self, before_ms: i64, limit: i64) -> Result<Vec<Video>, DbError> {
        let rows = sqlx::query(
            "SELECT * FROM videos WHERE state IN ('completed', 'completed_with_warnings', 'failed', 'cancelled')
             AND updated_ms < $1 ORDER BY updated_ms LIMIT $2",
        )
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(videos::video_from).collect()
    }
}
