-- switchboard schema, SQLite dialect. migrations/postgres/0001_init.sql is the same schema in
-- PostgreSQL's types; a test compares the two column lists so they cannot drift.
-- Conventions: ids are UUIDs (16-byte BLOBs here), times are RFC 3339 UTC text (sorts in time
-- order), JSON is TEXT, booleans are BOOLEAN (0/1). Integer sequence columns give arrival order.

-- A workspace is one customer's inbox; nothing is shared between workspaces.
CREATE TABLE workspaces (
    id               BLOB PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    -- gap (seconds) that ends a WhatsApp session on the timeline
    session_gap_secs BIGINT NOT NULL DEFAULT 1800,
    created_at       TEXT NOT NULL
);

-- Admins and members. Email is unique across the server because login takes only an email.
CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    status        TEXT NOT NULL CHECK (status IN ('invite_sent', 'active', 'deactivated')),
    -- argon2 PHC string; NULL until an invitation is accepted
    password_hash TEXT,
    -- the contract's permission flags as a JSON object of booleans
    permissions   TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX users_workspace ON users (workspace_id);

-- Bearer tokens: only the SHA-256 of the token is kept.
CREATE TABLE auth_tokens (
    token_hash BLOB PRIMARY KEY,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id);

-- Invitations: one live accept token per invited user (hash only), superseded on resend.
CREATE TABLE invitations (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   BLOB NOT NULL UNIQUE,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'cancelled')),
    expires_at   TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX invitations_user ON invitations (user_id);

-- Labels put on conversations and granted to members (a grant lets the member see them).
CREATE TABLE labels (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    color        TEXT,
    created_at   TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE member_labels (
    user_id  BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label_id BLOB NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, label_id)
);
CREATE INDEX member_labels_label ON member_labels (label_id);

-- Connected WhatsApp Business numbers. A disconnected number keeps its row (history) with
-- disconnected_at set; only one connected row per Meta phone_number_id.
CREATE TABLE numbers (
    id                   BLOB PRIMARY KEY,
    workspace_id         BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    phone_number_id      TEXT NOT NULL,
    display_phone_number TEXT NOT NULL,
    -- Graph API token used to send from this number; never returned by the API
    access_token         TEXT NOT NULL,
    waba_id              TEXT,
    owner_member_id      BLOB REFERENCES users (id) ON DELETE SET NULL,
    auto_import_contacts BOOLEAN NOT NULL DEFAULT FALSE,
    -- set when the Graph API rejected the token (error 190)
    needs_reauth         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at           TEXT NOT NULL,
    disconnected_at      TEXT
);
CREATE UNIQUE INDEX numbers_connected ON numbers (phone_number_id) WHERE disconnected_at IS NULL;
CREATE INDEX numbers_workspace ON numbers (workspace_id);

-- Lead groups.
CREATE TABLE crm_groups (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- Leads: the CRM contacts. phone holds E.164 digits (no plus); NULL for a contact known only
-- by a business-scoped user id.
CREATE TABLE leads (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    phone         TEXT,
    source        TEXT,
    assignee_id   BLOB REFERENCES users (id),
    custom_fields TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (workspace_id, phone)
);
CREATE INDEX leads_list ON leads (workspace_id, created_at, id);
CREATE INDEX leads_assignee ON leads (workspace_id, assignee_id);

CREATE TABLE lead_groups (
    lead_id  BLOB NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    group_id BLOB NOT NULL REFERENCES crm_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (lead_id, group_id)
);
CREATE INDEX lead_groups_group ON lead_groups (group_id);

-- Every WhatsApp identity of a lead: kind 'phone', 'bsuid' or 'parent_bsuid'. Identities of a
-- contact that changed number stay linked, so old and new ids find the same lead.
CREATE TABLE lead_identities (
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    value        TEXT NOT NULL,
    lead_id      BLOB NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    PRIMARY KEY (workspace_id, kind, value)
);
CREATE INDEX lead_identities_lead ON lead_identities (lead_id);

-- One conversation per (number, lead).
CREATE TABLE conversations (
    id                BLOB PRIMARY KEY,
    workspace_id      BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    number_id         BLOB NOT NULL REFERENCES numbers (id) ON DELETE CASCADE,
    lead_id           BLOB NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    -- how to reach the contact: phone digits and/or business-scoped user id
    contact_phone     TEXT,
    contact_bsuid     TEXT,
    status            TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    assignee_id       BLOB REFERENCES users (id),
    -- summary of the newest message (by WhatsApp time), for the list
    last_message      TEXT,
    last_message_at   TEXT,
    unread_count      BIGINT NOT NULL DEFAULT 0,
    -- WhatsApp time of the newest inbound user message (the 24-hour window)
    last_inbound_at   TEXT,
    -- a send failed with 131047: only templates until the customer writes again
    template_required BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (number_id, lead_id)
);
CREATE INDEX conversations_list ON conversations (workspace_id, updated_at, id);
CREATE INDEX conversations_assignee ON conversations (workspace_id, assignee_id, updated_at);
CREATE INDEX conversations_lead ON conversations (lead_id);

CREATE TABLE conversation_labels (
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    label_id        BLOB NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    PRIMARY KEY (conversation_id, label_id)
);
CREATE INDEX conversation_labels_label ON conversation_labels (label_id);

-- Explicit access grants: these members may see the conversation.
CREATE TABLE conversation_access (
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_access_user ON conversation_access (user_id);

-- Messages, both directions. seq is arrival order (ties in WhatsApp's whole-second timestamps);
-- created_at is WhatsApp's own timestamp. wamid is unique: a redelivery inserts nothing.
CREATE TABLE messages (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              BLOB NOT NULL UNIQUE,
    workspace_id    BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    wamid           TEXT UNIQUE,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    type            TEXT NOT NULL,
    text            TEXT,
    -- media metadata (id, mime_type, sha256, caption, filename, voice, animated)
    media           TEXT,
    -- type-specific content: location, contacts, interactive, button, order, system, referral...
    content         TEXT,
    -- wamid of the message this one replies to
    context_wamid   TEXT,
    forwarded       BOOLEAN NOT NULL DEFAULT FALSE,
    status          TEXT NOT NULL,
    error_code      BIGINT,
    error_title     TEXT,
    sent_by_user_id BLOB REFERENCES users (id),
    -- outbound typed in the WhatsApp Business app (coexistence echo)
    sent_by_app     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TEXT NOT NULL,
    sent_at         TEXT,
    delivered_at    TEXT,
    read_at         TEXT,
    failed_at       TEXT,
    received_at     TEXT NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at, seq);

-- Every status receipt seen, keyed as Meta's idempotency key. A receipt for a wamid we do not
-- know yet waits here and is applied when the message appears.
CREATE TABLE message_statuses (
    wamid       TEXT NOT NULL,
    status      TEXT NOT NULL,
    error_code  BIGINT NOT NULL DEFAULT 0,
    error_title TEXT,
    at          TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (wamid, status, error_code)
);

-- Reactions: the latest emoji by one reactor on one target message (target may be unknown yet).
CREATE TABLE reactions (
    target_wamid TEXT NOT NULL,
    reactor      TEXT NOT NULL,
    emoji        TEXT NOT NULL,
    wamid        TEXT NOT NULL,
    at           TEXT NOT NULL,
    PRIMARY KEY (target_wamid, reactor)
);

-- The webhook journal: every signed POST body, committed before Meta gets its 200.
CREATE TABLE webhook_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              BLOB NOT NULL UNIQUE,
    received_at     TEXT NOT NULL,
    signature_valid BOOLEAN NOT NULL,
    body            BLOB NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    error           TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    processed_at    TEXT
);
CREATE INDEX webhook_events_state ON webhook_events (state, seq);

-- The event log behind live updates: appended in the transaction of the change it describes.
-- id is the resume cursor. Addressed events (user_id set) go only to that member.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id    BLOB NOT NULL,
    type            TEXT NOT NULL,
    conversation_id BLOB,
    lead_id         BLOB,
    user_id         BLOB,
    data            TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX events_created ON events (created_at);

-- Timeline activities of leads; whatsapp_session rows are updated as the session grows.
CREATE TABLE activities (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              BLOB NOT NULL UNIQUE,
    workspace_id    BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    lead_id         BLOB NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    conversation_id BLOB REFERENCES conversations (id) ON DELETE CASCADE,
    type            TEXT NOT NULL,
    member_id       BLOB REFERENCES users (id),
    data            TEXT NOT NULL DEFAULT '{}',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX activities_lead ON activities (lead_id, created_at, seq);
