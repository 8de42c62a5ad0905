-- Report counters for bulk writes (PostgreSQL only; SQLite's triggers cost little).
--
-- 0007 keeps the report counters with row-level plpgsql triggers. A CSV import inserts leads
-- and activities 500 rows per statement, and a plpgsql call per row was most of its time.
-- Same counters, fewer calls:
--
-- 1. New leads get their lead_facts row (and the assignee's report row) from one
--    statement-level trigger over the inserted rows (a transition table) instead of one call
--    per lead. The row-level trigger stays for assignee changes.
-- 2. lead_facts' derived columns are computed on UPDATE only: a new facts row has no
--    messages and no notes yet, so the defaults (not contacted, no first response) are
--    already right; the insert below writes them explicitly all the same.
-- 3. Activities without a member (lead_created, WhatsApp sessions without a reply) count for
--    nobody: the triggers now skip them in their WHEN clause, without calling plpgsql.

-- The row-level function keeps only its assignee-change half (0007's insert half moves to
-- report_leads_inserted_trg below).
CREATE OR REPLACE FUNCTION report_leads_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.assignee_id IS DISTINCT FROM NEW.assignee_id THEN
        IF NEW.assignee_id IS NOT NULL THEN
            UPDATE lead_facts SET claimed = TRUE WHERE lead_id = NEW.id AND NOT claimed;
        END IF;
        UPDATE report_lead_members SET assigned = 0, contacted = 0, frs_sum = 0, frs_count = 0
        WHERE lead_id = NEW.id AND member_id = OLD.assignee_id;
        INSERT INTO report_lead_members AS r (lead_id, member_id, workspace_id, lead_created_at, day, claimed,
                                              assigned, contacted, frs_sum, frs_count)
        SELECT f.lead_id, NEW.assignee_id, f.workspace_id, f.created_at, f.day, f.claimed, 1, f.contacted::int,
               COALESCE(f.first_response_secs, 0), (f.first_response_secs IS NOT NULL)::int
        FROM lead_facts f WHERE f.lead_id = NEW.id AND NEW.assignee_id IS NOT NULL
        ON CONFLICT (lead_id, member_id) DO UPDATE SET
            assigned = 1, contacted = excluded.contacted, frs_sum = excluded.frs_sum, frs_count = excluded.frs_count;
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER report_leads ON leads;
CREATE TRIGGER report_leads AFTER UPDATE OF assignee_id ON leads
FOR EACH ROW EXECUTE FUNCTION report_leads_trg();

CREATE FUNCTION report_leads_inserted_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lead_facts (lead_id, workspace_id, created_at, day, claimed, contacted, first_response_secs)
    SELECT n.id, n.workspace_id, n.created_at, (n.created_at AT TIME ZONE 'UTC')::date, n.assignee_id IS NOT NULL,
           FALSE, NULL
    FROM new_leads n;
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, assigned)
    SELECT n.id, n.assignee_id, n.workspace_id, n.created_at, (n.created_at AT TIME ZONE 'UTC')::date, TRUE, 1
    FROM new_leads n WHERE n.assignee_id IS NOT NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER report_leads_inserted AFTER INSERT ON leads
REFERENCING NEW TABLE AS new_leads
FOR EACH STATEMENT EXECUTE FUNCTION report_leads_inserted_trg();

DROP TRIGGER lead_facts_derive ON lead_facts;
CREATE TRIGGER lead_facts_derive BEFORE UPDATE ON lead_facts
FOR EACH ROW EXECUTE FUNCTION lead_facts_derive_trg();

DROP TRIGGER report_activities ON activities;
CREATE TRIGGER report_activities AFTER INSERT ON activities
FOR EACH ROW WHEN (NEW.member_id IS NOT NULL) EXECUTE FUNCTION report_activities_trg();
CREATE TRIGGER report_activities_delete AFTER DELETE ON activities
FOR EACH ROW WHEN (OLD.member_id IS NOT NULL) EXECUTE FUNCTION report_activities_trg();
