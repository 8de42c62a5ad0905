-- The activity timeline across leads for a member who sees only where named, walked newest
-- first on PostgreSQL (GET /activities as a plain member; src/timeline/read.rs): the timeline's
-- indexes carry each activity's lead, so the walk tests it against the member's leads without
-- reading rows, and the filtered walks carry the other filter's column (type with member,
-- member with type), which the timeline's other walks test from the index too.

DROP INDEX activities_workspace;
CREATE INDEX activities_workspace ON activities (workspace_id, created_at, seq, lead_id);

DROP INDEX activities_member;
CREATE INDEX activities_member ON activities (workspace_id, member_id, created_at, seq, lead_id, type);

DROP INDEX activities_type;
CREATE INDEX activities_type ON activities (workspace_id, type, created_at, seq, lead_id, member_id);

-- PostgreSQL's carries the leads' ids (`INCLUDE`); SQLite's can't without making `id` a key of
-- it (see migration 0118), so it is rebuilt as it was, to keep the two trees alike.
DROP INDEX leads_assignee;
CREATE INDEX leads_assignee ON leads (workspace_id, assignee_id);
