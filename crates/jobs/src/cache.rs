//! The stage cache (output path by cache key, recorded once complete) and small
//! named values (e.g. a webhook's position in the event log).

use crate::*;

impl Db {
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

/// One video's use of one cache entry, recorded once.
const USE_CACHED: &str =
    "INSERT INTO cache_uses (key, video_id, path) VALUES ($1, $2, $3) ON CONFLICT (key, video_id) DO NOTHING";

impl Db {
    /// Records that a video uses the cache entry `key` at `path` (found or made
    /// by one of its stages), so that deleting the video keeps the entries other
    /// videos use and removes the rest.
    pub async fn use_cached(&self, key: &str, video_id: &str, path: &str) -> Result<(), DbError> {
        sqlx::query(USE_CACHED).bind(key).bind(video_id).bind(path).execute(&self.pool).await?;
        Ok(())
    }

    /// [`Db::use_cached`] for many entries (`key`, `path`) in one transaction: a
    /// translation's sentences, a dub's clips.
    pub async fn use_cached_all(&self, entries: &[(String, String)], video_id: &str) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        for (key, path) in entries {
            sqlx::query(
                "INSERT INTO cache_uses (key, video_id, path) VALUES ($1, $2, $3) ON CONFLICT (key, video_id) DO NOTHING",
            )
            .bind(key)
            .bind(video_id)
            .bind(path)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
