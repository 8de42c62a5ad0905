-- The media store (SQLite dialect; migrations/postgres/0110_media.sql is the same in
-- PostgreSQL's types). Media bytes live on disk under SWITCHBOARD_DATA_DIR, never in the
-- database: these tables only describe them.
--
-- Uploads (POST /api/v1/media): a member's file, to send as a media message or keep as a
-- content `file`. The bytes are at uploads/<id>. kind is image, video, audio or document
-- (which of Meta's size limits applied); filename is the name the uploader's file had, kept
-- for display and a document's filename only, never used as a path.
CREATE TABLE uploads (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    uploaded_by  BLOB REFERENCES users (id),
    kind         TEXT NOT NULL,
    mime_type    TEXT NOT NULL,
    size         BIGINT NOT NULL,
    filename     TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX uploads_workspace ON uploads (workspace_id, created_at);

-- Inbound media fetched from the Graph API, kept at inbound/<message_id>. What media_cache
-- held before (bytes in the database) is moved here at start-up, row by row.
CREATE TABLE media_files (
    message_id BLOB PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    mime_type  TEXT NOT NULL,
    size       BIGINT NOT NULL,
    fetched_at TEXT NOT NULL
);
