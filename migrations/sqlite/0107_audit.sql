-- The audit trail (GET /api/v1/audit) and the index of the activity timeline across leads
-- (GET /api/v1/activities), SQLite dialect; migrations/postgres/0107_audit.sql is the same.
--
-- audit_log is append-only: every change of who may see or do what writes one row in the
-- transaction of the change (src/audit/), and no route changes or deletes one. The two
-- triggers below refuse an UPDATE or DELETE whoever runs it. workspace_id, actor_id and
-- target_id have no foreign keys: an entry outlives what it names.
CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           BLOB NOT NULL UNIQUE,
    workspace_id BLOB NOT NULL,
    at           TEXT NOT NULL,
    -- the member who made the change (NULL: the server itself)
    actor_id     BLOB,
    -- member.invited, number.updated, … (src/audit/mod.rs AuditAction)
    action       TEXT NOT NULL,
    target_type  TEXT NOT NULL,
    target_id    BLOB,
    -- {"field": {"from": …, "to": …}}; never a secret
    changes      TEXT NOT NULL DEFAULT '{}'
);
-- Newest first per workspace, and per actor.
CREATE INDEX audit_log_list ON audit_log (workspace_id, at, seq);
CREATE INDEX audit_log_actor ON audit_log (workspace_id, actor_id, at, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log FOR EACH ROW BEGIN
    SELECT RAISE(ABORT, 'audit entries are never changed');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log FOR EACH ROW BEGIN
    SELECT RAISE(ABORT, 'audit entries are never deleted');
END;

-- The activity timeline across a workspace's leads, newest first.
CREATE INDEX activities_workspace ON activities (workspace_id, created_at, seq);
