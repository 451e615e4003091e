-- API keys: only the SHA-256 of each key's secret is kept; revoked, never deleted.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);

-- A video's links carry its link generation; revoking them bumps it.
ALTER TABLE videos ADD COLUMN link_generation BIGINT NOT NULL DEFAULT 0;
