-- Meta, the rest, PostgreSQL dialect (the same statements as migrations/sqlite/0115_meta_health.sql,
-- in PostgreSQL's types): number health read from the Graph API, billable messages for the team
-- report, and the retention of edits and revokes whose original never came.

-- When the number's health (quality rating, messaging limit, status) is next read from the
-- Graph API's phone-number fields: now on connect and after every health webhook, a day after
-- each read. NULL: never (a disconnected number). Numbers connected before this migration are
-- read once at the next start.
ALTER TABLE numbers ADD COLUMN health_due_at TIMESTAMPTZ;
UPDATE numbers SET health_due_at = created_at WHERE disconnected_at IS NULL;

-- The team report counts priced (billable) messages by the time they were written.
CREATE INDEX messages_priced ON messages (workspace_id, created_at) WHERE pricing IS NOT NULL;

-- Retention finds edits and revokes that waited too long for their original by age.
CREATE INDEX message_changes_recorded ON message_changes (recorded_at);
