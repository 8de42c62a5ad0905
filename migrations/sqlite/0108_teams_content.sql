-- Teams and the content library (SQLite dialect; migrations/postgres/0108_teams_content.sql is
-- the same in PostgreSQL's types).
--
-- Teams: named sets of members (a member may be in several). They route leads (an assignment
-- route {"type":"team"}) and scope content visibility.
CREATE TABLE teams (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE team_members (
    team_id BLOB NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

-- Content: quick-reply messages, files and pages. kind is message, file or page; visibility
-- is private (the owner, and admins), teams (the teams in content_teams) or workspace.
-- upload_id is an opaque reference to an upload (a file's bytes).
CREATE TABLE content (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    owner_id     BLOB NOT NULL REFERENCES users (id),
    kind         TEXT NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT,
    upload_id    BLOB,
    shortcut     TEXT,
    visibility   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX content_list ON content (workspace_id, created_at, id);

CREATE TABLE content_teams (
    content_id BLOB NOT NULL REFERENCES content (id) ON DELETE CASCADE,
    team_id    BLOB NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    PRIMARY KEY (content_id, team_id)
);
CREATE INDEX content_teams_team ON content_teams (team_id);

-- A page sent to a lead: the personal link GET /p/{token}, stored as the token's SHA-256 (hex).
-- last_viewed_at is the last view that was recorded (at most one content_viewed activity per
-- hour per link).
CREATE TABLE content_links (
    token          TEXT PRIMARY KEY,
    workspace_id   BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    content_id     BLOB NOT NULL REFERENCES content (id) ON DELETE CASCADE,
    lead_id        BLOB NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    sent_by        BLOB REFERENCES users (id),
    created_at     TEXT NOT NULL,
    last_viewed_at TEXT
);
CREATE INDEX content_links_lead ON content_links (lead_id);
