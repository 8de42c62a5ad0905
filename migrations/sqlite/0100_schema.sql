-- switchboard's schema (tables and indexes), SQLite dialect.
--
-- One schema in two dialects: migrations/postgres/0100_schema.sql is this file statement by
-- statement, in PostgreSQL's types. A test (`trees_differ_only_in_dialect`, in
-- src/db/migrate/tests.rs) maps the few dialect spellings onto each other and fails if the two
-- trees differ in anything else: a table, a column, an index, a constraint or a trigger added
-- on one side only.
--
-- This baseline replaces the migrations 0001-0016 of switchboard 0.1.0 (the versions differed
-- between the two trees, and the report triggers had drifted apart). A fresh database gets
-- the schema those migrations left, with one change that makes the two trees alike:
-- lead_identities and activities have no foreign key to workspaces, as on PostgreSQL since
-- 0.1.0's 0009 there (see the tables). 0101 adds the report counters. A database created by
-- the old migrations is adopted at start-up without running this file (src/db/migrate.rs):
-- its tables are already these (it keeps those two foreign keys, which do no harm).
--
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
-- workspace_id has no foreign key of its own: the row belongs to its lead (which cascades from
-- the workspace), and a second key only cost a check per inserted row (a CSV import inserts
-- 500 identities per statement).
CREATE TABLE lead_identities (
    workspace_id BLOB NOT NULL,
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
-- The conversation list of a member without view_others_leads / view_unassigned starts from
-- their own conversations, newest first: the id completes the keyset order.
CREATE INDEX conversations_assignee ON conversations (workspace_id, assignee_id, updated_at, id);
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

-- The webhook journal: every signed POST body, unpacked from its batch (webhook_arrivals,
-- below) and processed in seq order.
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
-- The state is indexed only where a query needs it: an index on (state, seq) cost an entry per
-- webhook received and another per webhook processed, on the path that answers Meta. These
-- partial indexes hold only the rows whose state is rare:
--   * claims and the admin list of pending rows: webhook_events_pending (on PostgreSQL, a
--     partial index is also chosen whatever the planner's statistics say: with (state, seq),
--     after a flood of webhooks, it walked the whole journal in seq order for every claim);
--   * the admin list of failed rows: webhook_events_failed;
--   * the admin list of done rows (nearly all of them) and retention read seq in order, where
--     done rows are what they meet.
CREATE INDEX webhook_events_pending ON webhook_events (seq) WHERE state = 'pending';
CREATE INDEX webhook_events_failed ON webhook_events (seq) WHERE state = 'failed';

-- The event log behind live updates: appended in the transaction of the change it describes.
-- id is the resume cursor. Addressed events (user_id set) go only to that member.
-- data is the event's JSON as text: the server writes it once and reads it back whole to frame
-- it for sockets; nothing queries inside it (on PostgreSQL, jsonb or json cost a parse or a
-- check per event).
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
-- workspace_id has no foreign key of its own (as in lead_identities): the row belongs to its
-- lead, which cascades from the workspace.
CREATE TABLE activities (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              BLOB NOT NULL UNIQUE,
    workspace_id    BLOB NOT NULL,
    lead_id         BLOB NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    conversation_id BLOB REFERENCES conversations (id) ON DELETE CASCADE,
    type            TEXT NOT NULL,
    member_id       BLOB REFERENCES users (id),
    data            TEXT NOT NULL DEFAULT '{}',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX activities_lead ON activities (lead_id, created_at, seq);

-- Which workspaces a journaled webhook touched (through its connected numbers). Admins see
-- the entries of their workspace, and entries that reached no workspace at all.
CREATE TABLE webhook_event_workspaces (
    event_id     BLOB NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    PRIMARY KEY (event_id, workspace_id)
);
CREATE INDEX webhook_event_workspaces_ws ON webhook_event_workspaces (workspace_id);

-- Inbound WhatsApp items that are not chat bubbles (system messages such as
-- user_changed_number), keyed by wamid so a redelivery records nothing new.
CREATE TABLE inbound_notices (
    wamid        TEXT PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    lead_id      BLOB REFERENCES leads (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    data         TEXT NOT NULL,
    at           TEXT NOT NULL
);

-- Outbound: one row per Graph API call to make: kind 'message' (send a stored outbound
-- message) or 'read' (mark an inbound message read). A row is claimed by setting
-- claimed_until; a crashed sender's claim expires and the row is sent again (at-least-once).
CREATE TABLE outbox (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    number_id     BLOB NOT NULL REFERENCES numbers (id) ON DELETE CASCADE,
    message_id    BLOB REFERENCES messages (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('message', 'read')),
    payload       TEXT NOT NULL DEFAULT '{}',
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    due_at        TEXT NOT NULL,
    claimed_until TEXT,
    last_error    TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, due_at);

-- Idempotency-Key of a send request: the same key from the same member gives the same message.
CREATE TABLE idempotency_keys (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    message_id BLOB NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- Inbound media bytes fetched lazily from the Graph API (size-limited).
CREATE TABLE media_cache (
    message_id BLOB PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    mime_type  TEXT NOT NULL,
    bytes      BLOB NOT NULL,
    fetched_at TEXT NOT NULL
);

-- Assignment: the workspace's settings as one JSON object (the API's shape). No row: defaults.
CREATE TABLE assignment_settings (
    workspace_id BLOB PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    settings     TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- Round-robin position per route ('default' or 'rule:<index>'): the member chosen last and
-- how many leads they got in the current round. Survives restarts and settings changes.
CREATE TABLE assignment_rr (
    workspace_id   BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    route_key      TEXT NOT NULL,
    last_member_id BLOB,
    given          BIGINT NOT NULL DEFAULT 0,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (workspace_id, route_key)
);

-- Every automatic decision: why (cause: new_lead / reopened), which rule matched (NULL: the
-- default mode), the candidates in order with why each was skipped, and who was chosen.
CREATE TABLE assignment_decisions (
    id               BLOB PRIMARY KEY,
    workspace_id     BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    lead_id          BLOB NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    conversation_id  BLOB REFERENCES conversations (id) ON DELETE SET NULL,
    cause            TEXT NOT NULL,
    rule             TEXT,
    reason           TEXT NOT NULL,
    candidates       TEXT NOT NULL DEFAULT '[]',
    chosen_member_id BLOB,
    at               TEXT NOT NULL
);
CREATE INDEX assignment_decisions_lead ON assignment_decisions (lead_id, at);

-- The team report's counters (GET /api/v1/reports/team), kept by the triggers of 0101 in the
-- same transaction as every write that changes them, so the report answers in milliseconds at
-- 100k leads / 1M messages. 0101 says what each layer holds and how it is kept.
--
-- lead_facts: one row per lead: copies of its created_at and UTC day (a lead's creation time
-- never changes), whether it is claimed (it or one of its conversations has had an assignee),
-- the first inbound and first business-side message, notes by members, and the two facts the
-- report counts, derived from those.
CREATE TABLE lead_facts (
    lead_id             BLOB PRIMARY KEY REFERENCES leads (id) ON DELETE CASCADE,
    workspace_id        BLOB NOT NULL,
    created_at          TEXT NOT NULL,
    day                 TEXT NOT NULL,
    claimed             BOOLEAN NOT NULL DEFAULT FALSE,
    -- WhatsApp time of the first inbound message
    first_inbound_at    TEXT,
    -- time of the first business-side message: an echo's WhatsApp time, a reply's queue time
    first_business_at   TEXT,
    -- notes on the lead by members (activities of type note with a member_id)
    notes               BIGINT NOT NULL DEFAULT 0,
    -- derived: a business-side message or a member's note
    contacted           BOOLEAN NOT NULL DEFAULT FALSE,
    -- derived: whole seconds from min(created_at, first_inbound_at) to first_business_at,
    -- at least 0; NULL until a business-side message exists
    first_response_secs BIGINT
) WITHOUT ROWID;

-- report_lead_members: one row per (lead, member) with that member's share of the lead.
CREATE TABLE report_lead_members (
    lead_id            BLOB NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    member_id          BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id       BLOB NOT NULL,
    lead_created_at    TEXT NOT NULL,
    day                TEXT NOT NULL,
    claimed            BOOLEAN NOT NULL,
    -- 1 when the member is the lead's assignee; contacted / first response ride on that row
    assigned           BIGINT NOT NULL DEFAULT 0,
    contacted          BIGINT NOT NULL DEFAULT 0,
    frs_sum            BIGINT NOT NULL DEFAULT 0,
    frs_count          BIGINT NOT NULL DEFAULT 0,
    -- messages the member sent in the lead's conversations
    replies            BIGINT NOT NULL DEFAULT 0,
    -- timeline activities of the lead with member_id = the member
    activities         BIGINT NOT NULL DEFAULT 0,
    -- open conversations of the lead assigned to the member
    open_conversations BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (lead_id, member_id)
) WITHOUT ROWID;
CREATE INDEX report_lead_members_created ON report_lead_members (workspace_id, lead_created_at);
CREATE INDEX report_lead_members_unclaimed ON report_lead_members (workspace_id, lead_created_at) WHERE NOT claimed;

-- report_daily: report_lead_members summed per (workspace, group, member, UTC day of the
-- lead's creation, claimed). group_id is the zero UUID for "all leads"; a lead in groups is
-- also counted under each of them.
CREATE TABLE report_daily (
    workspace_id       BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    group_id           BLOB NOT NULL,
    member_id          BLOB NOT NULL,
    day                TEXT NOT NULL,
    claimed            BOOLEAN NOT NULL,
    assigned           BIGINT NOT NULL DEFAULT 0,
    contacted          BIGINT NOT NULL DEFAULT 0,
    frs_sum            BIGINT NOT NULL DEFAULT 0,
    frs_count          BIGINT NOT NULL DEFAULT 0,
    replies            BIGINT NOT NULL DEFAULT 0,
    activities         BIGINT NOT NULL DEFAULT 0,
    open_conversations BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, group_id, member_id, day, claimed)
) WITHOUT ROWID;

-- Webhooks as they are acknowledged: one row per group commit, holding every body of the
-- batch. Journaling each webhook as a row of webhook_events took a row and three index entries
-- per webhook on the path that answers Meta; now the journal writer commits one row per batch
-- (up to 256 webhooks), and the processor unpacks it into webhook_events rows (pending) in one
-- transaction that also deletes it. A webhook is durable once its batch row is committed; a
-- crash before the unpack loses nothing (the row is unpacked at the next start).
--
-- entries: the batch, encoded by the server (webhook::journal::pack): a version byte, then per
-- webhook its id (16 bytes), received time (µs since the epoch, i64 LE), body length (u32 LE)
-- and body. webhooks: how many it holds.
CREATE TABLE webhook_arrivals (
    id          BLOB PRIMARY KEY,
    received_at TEXT NOT NULL,
    webhooks    INTEGER NOT NULL,
    entries     BLOB NOT NULL
);
