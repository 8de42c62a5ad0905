-- Outbound: the durable outbox the Graph API sender works from, idempotency keys for the send
-- API, and a cache of inbound media fetched from the Graph API.

-- One row per Graph API call to make: kind 'message' (send a stored outbound message) or
-- 'read' (mark an inbound message read). A row is claimed by setting claimed_until; a crashed
-- sender's claim expires and the row is sent again (at-least-once).
CREATE TABLE outbox (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    number_id     UUID NOT NULL REFERENCES numbers (id) ON DELETE CASCADE,
    message_id    UUID REFERENCES messages (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('message', 'read')),
    payload       JSONB NOT NULL DEFAULT '{}',
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    due_at        TIMESTAMPTZ NOT NULL,
    claimed_until TIMESTAMPTZ,
    last_error    TEXT,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, due_at);

-- Idempotency-Key of a send request: the same key from the same member gives the same message.
CREATE TABLE idempotency_keys (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    message_id UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- Inbound media bytes fetched lazily from the Graph API (size-limited).
CREATE TABLE media_cache (
    message_id UUID PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    mime_type  TEXT NOT NULL,
    bytes      BYTEA NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL
);
