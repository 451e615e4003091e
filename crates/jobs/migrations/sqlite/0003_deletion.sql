-- Which videos use each cache entry (a stage's output folder or file, a voice
-- clip), so deleting a video removes the entries only it used.
CREATE TABLE cache_uses (
    key      TEXT NOT NULL,
    video_id TEXT NOT NULL,
    path     TEXT NOT NULL,
    PRIMARY KEY (key, video_id)
);
CREATE INDEX cache_uses_by_video ON cache_uses (video_id);

-- Deleted videos, kept so that a stage still running when its video was deleted
-- removes what it wrote when it ends, and a second delete is answered the same.
CREATE TABLE deleted_videos (
    id         TEXT PRIMARY KEY,
    deleted_ms INTEGER NOT NULL
);
