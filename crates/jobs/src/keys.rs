//! API keys and per-video link generations: what the server's access rules read.
//! A key's secret is never stored, only its SHA-256; a revoked key stays listed.

use crate::*;

/// An API key as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Its public id (the part of the key before its secret).
    pub id: String,
    /// What it is for, as its creator named it.
    pub name: String,
    /// What it may do (`upload`, `read`, `review`, `metrics`, `admin`).
    pub scopes: Vec<String>,
    /// When it was created, Unix ms.
    pub created_ms: i64,
    /// When it was revoked, Unix ms.
    pub revoked_ms: Option<i64>,
}

fn key_from(row: &AnyRow) -> Result<(ApiKey, String), DbError> {
    let scopes: String = row.try_get("scopes")?;
    Ok((
        ApiKey {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            scopes: scopes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            created_ms: row.try_get("created_ms")?,
            revoked_ms: row.try_get("revoked_ms")?,
        },
        row.try_get("secret_sha256")?,
    ))
}

impl Db {
    /// Records a new key by the SHA-256 (hex) of its secret.
    pub async fn add_api_key(&self, key: &ApiKey, secret_sha256: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, scopes, secret_sha256, created_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(key.scopes.join(","))
        .bind(secret_sha256)
        .bind(key.created_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A key and the SHA-256 (hex) of its secret.
    pub async fn api_key(&self, id: &str) -> Result<Option<(ApiKey, String)>, DbError> {
        let row =
            sqlx::query("SELECT * FROM api_keys WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(key_from).transpose()
    }

    /// Every key, oldest first, revoked ones too.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, DbError> {
        let rows =
            sqlx::query("SELECT * FROM api_keys ORDER BY created_ms, id").fetch_all(&self.pool).await?;
        rows.iter().map(|r| key_from(r).map(|(k, _)| k)).collect()
    }

    /// Revokes a key; false if there is no such key or it was revoked already.
    pub async fn revoke_api_key(&self, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The generation a video's links must carry; `None` if there is no such video.
    pub async fn link_generation(&self, video_id: &str) -> Result<Option<i64>, DbError> {
        let row = sqlx::query("SELECT link_generation FROM videos WHERE id = $1")
            .bind(video_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("link_generation")).transpose()?)
    }

    /// Revokes every link of a video made so far; returns the new generation.
    pub async fn revoke_links(&self, video_id: &str) -> Result<Option<i64>, DbError> {
        let row = sqlx::query(
            "UPDATE videos SET link_generation = link_generation + 1 WHERE id = $1 RETURNING link_generation",
        )
        .bind(video_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("link_generation")).transpose()?)
    }
}
