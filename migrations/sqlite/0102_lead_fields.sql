-- Conversations and leads, more fields (SQLite dialect; migrations/postgres/0102_lead_fields.sql
-- is the same in PostgreSQL's types).
--
-- Conversation lists are ordered by the newest message (last_message_at, WhatsApp's time),
-- newest first, so that a label, status, assignment or read change never moves a conversation.
-- A conversation without a message yet sorts by its creation: the lists order by
-- COALESCE(last_message_at, created_at), and these indexes hold that expression (they replace
-- the ones on updated_at, which no query reads any more).
DROP INDEX conversations_list;
DROP INDEX conversations_assignee;
CREATE INDEX conversations_recent ON conversations (workspace_id, (COALESCE(last_message_at, created_at)), id);
-- A member without view_others_leads / view_unassigned starts from their own conversations.
CREATE INDEX conversations_assignee_recent
    ON conversations (workspace_id, assignee_id, (COALESCE(last_message_at, created_at)), id);

-- Backfill: every message since 0.1.0 went through the one write path, which keeps
-- last_message_at; a conversation that still has none gets its newest message's time.
UPDATE conversations SET last_message_at = (
    SELECT MAX(m.created_at) FROM messages m WHERE m.conversation_id = conversations.id
) WHERE last_message_at IS NULL;

-- A member's own list preferences (GET/PUT /api/v1/me/preferences). No row: the defaults
-- (show everything the member may see). They only ever narrow a list.
CREATE TABLE member_preferences (
    user_id         BLOB PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- team view: conversations and leads assigned to other members
    show_others     BOOLEAN NOT NULL DEFAULT TRUE,
    -- team view: unassigned conversations and leads
    show_unassigned BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at      TEXT NOT NULL
);
