-- The activity timeline across leads for a member who sees only where named (GET /activities as
-- a plain member; see the scale benchmark in docs/benchmarks.md). Such a member's leads are
-- spread over the whole timeline, so the page is chosen from their leads' activities alone, in
-- indexes, before any row is read (src/timeline/read.rs). The same in both dialects.

-- The leads they are named in (`policy::inbox::NAMED_LEADS`): their chats' leads from the index
-- alone. (Their own leads' ids stay a row read each: with `id` in `leads_assignee`, SQLite
-- took that index for a walk of the whole workspace in searches by name.)
DROP INDEX conversations_assignee_recent;
CREATE INDEX conversations_assignee_recent
    ON conversations (workspace_id, assignee_id, (COALESCE(last_message_at, created_at)), id, lead_id);

-- Those leads' activities newest first with the columns the filters test (type, member, chat),
-- so the page's candidates are sorted without reading their rows. Still a lead's timeline too.
DROP INDEX activities_lead;
CREATE INDEX activities_lead ON activities (lead_id, created_at, seq, type, member_id, conversation_id);
