-- Report rows -> report_daily on UPDATE: one upsert of the difference instead of two.
--
-- 0007 counts an updated report row as the old row taken out of its buckets and the new one
-- put in: two report_bump calls, each an upsert per bucket. Nearly every update keeps the row
-- in the same buckets (same lead, member, workspace, day and claimed; only a counter moves: a
-- new open conversation, a new WhatsApp session with a member, a first reply), so the
-- difference is added once. An update that changes nothing adds nothing. Updates that move
-- the row (claimed flips) and deletes keep 0007's way. The sums are the same; the team report
-- tests compare them with a brute-force recount on both backends.
CREATE OR REPLACE FUNCTION report_rows_trg() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d report_lead_members;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.lead_id = NEW.lead_id AND OLD.member_id = NEW.member_id
       AND OLD.workspace_id = NEW.workspace_id AND OLD.day = NEW.day AND OLD.claimed = NEW.claimed THEN
        d := NEW;
        d.assigned := NEW.assigned - OLD.assigned;
        d.contacted := NEW.contacted - OLD.contacted;
        d.frs_sum := NEW.frs_sum - OLD.frs_sum;
        d.frs_count := NEW.frs_count - OLD.frs_count;
        d.replies := NEW.replies - OLD.replies;
        d.activities := NEW.activities - OLD.activities;
        d.open_conversations := NEW.open_conversations - OLD.open_conversations;
        IF (d.assigned, d.contacted, d.frs_sum, d.frs_count, d.replies, d.activities, d.open_conversations)
           IS DISTINCT FROM (0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint) THEN
            PERFORM report_bump(d, 1, NULL);
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM report_bump(OLD, -1, NULL);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM report_bump(NEW, 1, NULL);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NULL;
END $$;
