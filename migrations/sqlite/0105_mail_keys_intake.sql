-- Email, API keys and lead intake.

-- Mail waiting to go out through SMTP: a durable queue worked by the mail sender, which claims
-- a due row (claimed_until), sends it and marks it sent, or retries it later with backoff
-- (due_at), or gives up (failed, with the last error). A server restart loses nothing.
CREATE TABLE mail_queue (
    id            BLOB PRIMARY KEY,
    -- the workspace the mail is about (NULL for server mail)
    workspace_id  BLOB REFERENCES workspaces (id) ON DELETE CASCADE,
    to_addr       TEXT NOT NULL,
    subject       TEXT NOT NULL,
    body_text     TEXT NOT NULL,
    body_html     TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    due_at        TEXT NOT NULL,
    claimed_until TEXT,
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    sent_at       TEXT
);
CREATE INDEX mail_queue_due ON mail_queue (state, due_at);

-- API keys for machines (intake from web forms and automation tools). The key is shown once;
-- only its SHA-256 is stored, with its first characters to tell keys apart in a list.
CREATE TABLE api_keys (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     BLOB NOT NULL UNIQUE,
    -- JSON array of scope names, e.g. ["leads:write"]
    scopes       TEXT NOT NULL DEFAULT '[]',
    created_by   BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, created_at);

-- Lead distribution: the workspace's rules (one JSON document, as the contract's PUT body),
-- and who saved them last (the sender named in forwarded leads).
CREATE TABLE distribution_settings (
    workspace_id BLOB PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    settings     TEXT NOT NULL,
    updated_by   BLOB REFERENCES users (id) ON DELETE SET NULL,
    updated_at   TEXT NOT NULL
);

-- Where each round-robin rule stands: the recipient whose turn it is and how many leads they
-- got in this round. Keyed by the rule's name; survives restarts and settings changes.
CREATE TABLE distribution_rr (
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    rule         TEXT NOT NULL,
    position     BIGINT NOT NULL,
    given        BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, rule)
);

-- One entry per distributed lead and recipient: the lead as it was sent (it may be gone from
-- the workspace since), and each channel's delivery (JSON: channel, status, reason, mail_id).
CREATE TABLE distribution_history (
    id              BLOB PRIMARY KEY,
    workspace_id    BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    at              TEXT NOT NULL,
    rule            TEXT NOT NULL,
    lead_name       TEXT NOT NULL,
    lead_phone      TEXT,
    lead_source     TEXT,
    recipient_email TEXT NOT NULL,
    deliveries      TEXT NOT NULL
);
CREATE INDEX distribution_history_list ON distribution_history (workspace_id, at, id);

-- App deliveries waiting for an account with the recipient's email: the lead to create in
-- that account's workspace once it is active.
CREATE TABLE distribution_pending (
    id              BLOB PRIMARY KEY,
    history_id      BLOB NOT NULL REFERENCES distribution_history (id) ON DELETE CASCADE,
    recipient_email TEXT NOT NULL,
    rule            TEXT NOT NULL,
    lead            TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX distribution_pending_email ON distribution_pending (recipient_email);
