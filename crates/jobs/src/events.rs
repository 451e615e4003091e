//! The event log: what happened to each video, in order (the SSE stream and
//! webhooks read it by id).

use crate::*;

pub(crate) fn event_from(row: &AnyRow) -> Result<Event, DbError> {
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
}
