-- Videos: one row per upload.
CREATE TABLE videos (
    id            TEXT PRIMARY KEY,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    source_name   TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    source_ext    TEXT NOT NULL,
    options       TEXT NOT NULL,
    state         TEXT NOT NULL,
    warnings      TEXT NOT NULL DEFAULT '[]',
    error         TEXT
);

-- Stage jobs: at most one per video and stage, so enqueueing twice is harmless.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id     TEXT NOT NULL REFERENCES videos (id),
    stage        TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_after_ms INTEGER NOT NULL,
    lease_ms     INTEGER,
    worker       TEXT,
    last_error   TEXT,
    created_ms   INTEGER NOT NULL,
    started_ms   INTEGER,
    finished_ms  INTEGER,
    UNIQUE (video_id, stage)
);
CREATE INDEX jobs_claimable ON jobs (state, run_after_ms);

-- The event log: what happened to each video, in order.
CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    stage    TEXT,
    message  TEXT NOT NULL,
    data     TEXT
);
CREATE INDEX events_by_video ON events (video_id, id);

-- Stage outputs by cache key: a row exists only once the output is complete.
CREATE TABLE cache (
    key        TEXT PRIMARY KEY,
    stage      TEXT NOT NULL,
    path       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

-- Small durable values: webhook delivery cursors.
CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
