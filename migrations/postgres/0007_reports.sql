-- The team report (GET /api/v1/reports/team), kept incrementally so it answers in
-- milliseconds at 100k leads / 1M messages. Three layers, all maintained by the triggers below
-- in the same transaction as the write that changes them (ingest, replies, notes, assignment,
-- CSV import: every path, since the database does it):
--
--   lead_facts           one row per lead: when it was created, first inbound / first
--                        business-side message, whether a member wrote a note, and the two
--                        derived facts the report counts (contacted, first response seconds).
--   report_lead_members  one row per (lead, member) with that member's share of the lead:
--                        assigned (the lead's assignee; carries contacted and first response),
--                        replies, activities, open conversations.
--   report_daily         report_lead_members summed per (workspace, group, member, UTC day of
--                        the lead's creation, claimed). group_id is the zero UUID for "all
--                        leads"; a lead in groups is also counted under each of them.
--
-- The report sums report_daily for whole days of [from, to) and report_lead_members for the
-- partial days at either end. Invariant: every report_daily counter equals the sum, over
-- report_lead_members rows of that key, of the row's value times (1 + its lead's groups). Each
-- trigger keeps it for its own change, so cascaded deletes may run in any order.
--
-- "claimed": the lead or one of its conversations has (ever had) an assignee. Assignments
-- never go back to unassigned, so it only flips once. A member with view_others_leads sees
-- every claimed lead; the report computes the unclaimed ones they can see exactly.
--
-- Same tables and semantics as migrations/sqlite/0007_reports.sql, with plpgsql triggers.

CREATE TABLE lead_facts (
    lead_id             UUID PRIMARY KEY REFERENCES leads (id) ON DELETE CASCADE,
    workspace_id        UUID NOT NULL,
    -- copies of the lead's created_at and its UTC date (a lead's creation time never changes)
    created_at          TIMESTAMPTZ NOT NULL,
    day                 DATE NOT NULL,
    claimed             BOOLEAN NOT NULL DEFAULT FALSE,
    -- WhatsApp time of the first inbound message
    first_inbound_at    TIMESTAMPTZ,
    -- time of the first business-side message: an echo's WhatsApp time, a reply's queue time
    first_business_at   TIMESTAMPTZ,
    -- notes on the lead by members (activities of type note with a member_id)
    notes               BIGINT NOT NULL DEFAULT 0,
    -- derived: a business-side message or a member's note
    contacted           BOOLEAN NOT NULL DEFAULT FALSE,
    -- derived: whole seconds from min(created_at, first_inbound_at) to first_business_at,
    -- at least 0; NULL until a business-side message exists
    first_response_secs BIGINT
);

CREATE TABLE report_lead_members (
    lead_id            UUID NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    member_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id       UUID NOT NULL,
    lead_created_at    TIMESTAMPTZ NOT NULL,
    day                DATE NOT NULL,
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
);
CREATE INDEX report_lead_members_created ON report_lead_members (workspace_id, lead_created_at);
CREATE INDEX report_lead_members_unclaimed ON report_lead_members (workspace_id, lead_created_at) WHERE NOT claimed;

CREATE TABLE report_daily (
    workspace_id       UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    group_id           UUID NOT NULL,
    member_id          UUID NOT NULL,
    day                DATE NOT NULL,
    claimed            BOOLEAN NOT NULL,
    assigned           BIGINT NOT NULL DEFAULT 0,
    contacted          BIGINT NOT NULL DEFAULT 0,
    frs_sum            BIGINT NOT NULL DEFAULT 0,
    frs_count          BIGINT NOT NULL DEFAULT 0,
    replies            BIGINT NOT NULL DEFAULT 0,
    activities         BIGINT NOT NULL DEFAULT 0,
    open_conversations BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, group_id, member_id, day, claimed)
);

-- The conversation list of a member without view_others_leads / view_unassigned starts from
-- their own conversations, newest first: the assignee index gets the id for the keyset order.
DROP INDEX conversations_assignee;
CREATE INDEX conversations_assignee ON conversations (workspace_id, assignee_id, updated_at, id);

-- Adds k * r to the buckets of r's lead: "all" (zero UUID) and each of its groups, or only
-- group only_group when given.
CREATE FUNCTION report_bump(r report_lead_members, k BIGINT, only_group UUID) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_daily AS d (workspace_id, group_id, member_id, day, claimed, assigned, contacted, frs_sum,
                                   frs_count, replies, activities, open_conversations)
    SELECT r.workspace_id, g.group_id, r.member_id, r.day, r.claimed, k * r.assigned, k * r.contacted,
           k * r.frs_sum, k * r.frs_count, k * r.replies, k * r.activities, k * r.open_conversations
    FROM (SELECT only_group AS group_id WHERE only_group IS NOT NULL
          UNION ALL SELECT '00000000-0000-0000-0000-000000000000'::uuid WHERE only_group IS NULL
          UNION ALL SELECT lg.group_id FROM lead_groups lg WHERE only_group IS NULL AND lg.lead_id = r.lead_id) g
    ON CONFLICT (workspace_id, group_id, member_id, day, claimed) DO UPDATE SET
        assigned = d.assigned + excluded.assigned,
        contacted = d.contacted + excluded.contacted,
        frs_sum = d.frs_sum + excluded.frs_sum,
        frs_count = d.frs_count + excluded.frs_count,
        replies = d.replies + excluded.replies,
        activities = d.activities + excluded.activities,
        open_conversations = d.open_conversations + excluded.open_conversations;
END $$;

-- report_lead_members -> report_daily. An update is a delete of the old row and an insert of
-- the new one (claimed may move it). Deletions are counted BEFORE the row goes: a cascaded
-- delete of a lead removes its rows and its group memberships in one statement, and AFTER
-- triggers would only run once both were gone (each would find the other side missing).
CREATE FUNCTION report_rows_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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
CREATE TRIGGER report_rows AFTER INSERT OR UPDATE ON report_lead_members
FOR EACH ROW EXECUTE FUNCTION report_rows_trg();
CREATE TRIGGER report_rows_delete BEFORE DELETE ON report_lead_members
FOR EACH ROW EXECUTE FUNCTION report_rows_trg();

-- A lead joins or leaves a group: its rows join or leave that group's buckets.
CREATE FUNCTION report_groups_trg() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r report_lead_members;
BEGIN
    IF TG_OP = 'INSERT' THEN
        FOR r IN SELECT * FROM report_lead_members WHERE lead_id = NEW.lead_id LOOP
            PERFORM report_bump(r, 1, NEW.group_id);
        END LOOP;
        RETURN NULL;
    END IF;
    FOR r IN SELECT * FROM report_lead_members WHERE lead_id = OLD.lead_id LOOP
        PERFORM report_bump(r, -1, OLD.group_id);
    END LOOP;
    RETURN OLD;
END $$;
CREATE TRIGGER report_groups AFTER INSERT ON lead_groups
FOR EACH ROW EXECUTE FUNCTION report_groups_trg();
CREATE TRIGGER report_groups_delete BEFORE DELETE ON lead_groups
FOR EACH ROW EXECUTE FUNCTION report_groups_trg();

-- Whole seconds from min(created, first inbound) to the first business-side message, >= 0.
CREATE FUNCTION report_frs(created TIMESTAMPTZ, inbound TIMESTAMPTZ, business TIMESTAMPTZ) RETURNS BIGINT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN business IS NULL THEN NULL ELSE GREATEST(0,
        floor(extract(epoch FROM business)) - floor(extract(epoch FROM LEAST(created, COALESCE(inbound, created)))))::bigint END
$$;

-- lead_facts: derive contacted and first response before the row is written.
CREATE FUNCTION lead_facts_derive_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.contacted := NEW.first_business_at IS NOT NULL OR NEW.notes > 0;
    NEW.first_response_secs := report_frs(NEW.created_at, NEW.first_inbound_at, NEW.first_business_at);
    RETURN NEW;
END $$;
CREATE TRIGGER lead_facts_derive BEFORE INSERT OR UPDATE ON lead_facts
FOR EACH ROW EXECUTE FUNCTION lead_facts_derive_trg();

-- ... and copy them to the assignee's row; a claimed lead claims its rows.
CREATE FUNCTION lead_facts_after_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.claimed AND NOT OLD.claimed THEN
        UPDATE report_lead_members SET claimed = TRUE WHERE lead_id = NEW.lead_id AND NOT claimed;
    END IF;
    IF OLD.contacted IS DISTINCT FROM NEW.contacted OR OLD.first_response_secs IS DISTINCT FROM NEW.first_response_secs THEN
        UPDATE report_lead_members SET
            contacted = NEW.contacted::int,
            frs_sum = COALESCE(NEW.first_response_secs, 0),
            frs_count = (NEW.first_response_secs IS NOT NULL)::int
        WHERE lead_id = NEW.lead_id AND assigned = 1;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER lead_facts_after AFTER UPDATE ON lead_facts
FOR EACH ROW EXECUTE FUNCTION lead_facts_after_trg();

-- Adds n to one counter (what: replies, activities or open_conversations) of (lead, member),
-- creating the row from the lead's facts. A negative n only takes back what was added.
CREATE FUNCTION report_add(lead UUID, member UUID, what TEXT, n BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    dr BIGINT := CASE WHEN what = 'replies' THEN n ELSE 0 END;
    da BIGINT := CASE WHEN what = 'activities' THEN n ELSE 0 END;
    dopen BIGINT := CASE WHEN what = 'open_conversations' THEN n ELSE 0 END;
BEGIN
    IF lead IS NULL OR member IS NULL THEN
        RETURN;
    END IF;
    IF n < 0 THEN
        UPDATE report_lead_members SET replies = replies + dr, activities = activities + da,
            open_conversations = open_conversations + dopen
        WHERE lead_id = lead AND member_id = member;
        RETURN;
    END IF;
    INSERT INTO report_lead_members AS r (lead_id, member_id, workspace_id, lead_created_at, day, claimed,
                                          replies, activities, open_conversations)
    SELECT f.lead_id, member, f.workspace_id, f.created_at, f.day, f.claimed, dr, da, dopen
    FROM lead_facts f WHERE f.lead_id = lead
    ON CONFLICT (lead_id, member_id) DO UPDATE SET replies = r.replies + excluded.replies,
        activities = r.activities + excluded.activities,
        open_conversations = r.open_conversations + excluded.open_conversations;
END $$;

-- Leads: facts row on insert; the assignee's row follows the lead's assignee.
CREATE FUNCTION report_leads_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lead_facts (lead_id, workspace_id, created_at, day, claimed)
        VALUES (NEW.id, NEW.workspace_id, NEW.created_at, (NEW.created_at AT TIME ZONE 'UTC')::date,
                NEW.assignee_id IS NOT NULL);
        IF NEW.assignee_id IS NOT NULL THEN
            INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, assigned)
            VALUES (NEW.id, NEW.assignee_id, NEW.workspace_id, NEW.created_at,
                    (NEW.created_at AT TIME ZONE 'UTC')::date, TRUE, 1);
        END IF;
    ELSIF OLD.assignee_id IS DISTINCT FROM NEW.assignee_id THEN
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
CREATE TRIGGER report_leads AFTER INSERT OR UPDATE OF assignee_id ON leads
FOR EACH ROW EXECUTE FUNCTION report_leads_trg();

-- Messages: first inbound / first business-side message, and replies by members. Messages
-- are only ever deleted with their conversation, which takes its replies along (below).
CREATE FUNCTION report_messages_trg() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lead UUID;
BEGIN
    SELECT lead_id INTO lead FROM conversations WHERE id = NEW.conversation_id;
    IF NEW.direction = 'in' THEN
        UPDATE lead_facts SET first_inbound_at = NEW.created_at
        WHERE lead_id = lead AND (first_inbound_at IS NULL OR first_inbound_at > NEW.created_at);
    ELSE
        UPDATE lead_facts SET first_business_at = NEW.created_at
        WHERE lead_id = lead AND (first_business_at IS NULL OR first_business_at > NEW.created_at);
    END IF;
    PERFORM report_add(lead, NEW.sent_by_user_id, 'replies', 1);
    RETURN NULL;
END $$;
CREATE TRIGGER report_messages AFTER INSERT ON messages
FOR EACH ROW EXECUTE FUNCTION report_messages_trg();

-- Activities: counted for their member_id (which a growing WhatsApp session may change);
-- a member's note makes the lead contacted.
CREATE FUNCTION report_activities_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Deleted along with its lead: nothing of the lead is left to count.
    IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM leads WHERE id = OLD.lead_id) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.member_id IS NOT NULL THEN
        PERFORM report_add(OLD.lead_id, OLD.member_id, 'activities', -1);
        IF OLD.type = 'note' THEN
            UPDATE lead_facts SET notes = notes - 1 WHERE lead_id = OLD.lead_id;
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.member_id IS NOT NULL THEN
        PERFORM report_add(NEW.lead_id, NEW.member_id, 'activities', 1);
        IF NEW.type = 'note' THEN
            UPDATE lead_facts SET notes = notes + 1 WHERE lead_id = NEW.lead_id;
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER report_activities AFTER INSERT OR DELETE ON activities
FOR EACH ROW EXECUTE FUNCTION report_activities_trg();
CREATE TRIGGER report_activities_member AFTER UPDATE OF member_id ON activities
FOR EACH ROW WHEN (OLD.member_id IS DISTINCT FROM NEW.member_id) EXECUTE FUNCTION report_activities_trg();

-- Conversations: open ones per assignee; an assigned conversation claims its lead. A deleted
-- conversation takes its open count and its members' replies along (before its messages go).
CREATE FUNCTION report_conversations_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- Deleted along with its lead: the lead's counter rows go too (and would fail their
        -- foreign key if touched here).
        IF NOT EXISTS (SELECT 1 FROM leads WHERE id = OLD.lead_id) THEN
            RETURN OLD;
        END IF;
        IF OLD.status = 'open' THEN
            PERFORM report_add(OLD.lead_id, OLD.assignee_id, 'open_conversations', -1);
        END IF;
        UPDATE report_lead_members r SET replies = r.replies - m.n
        FROM (SELECT sent_by_user_id, COUNT(*) AS n FROM messages
              WHERE conversation_id = OLD.id AND sent_by_user_id IS NOT NULL GROUP BY sent_by_user_id) m
        WHERE r.lead_id = OLD.lead_id AND r.member_id = m.sent_by_user_id;
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status
       AND OLD.assignee_id IS NOT DISTINCT FROM NEW.assignee_id THEN
        RETURN NULL;
    END IF;
    IF NEW.assignee_id IS NOT NULL THEN
        UPDATE lead_facts SET claimed = TRUE WHERE lead_id = NEW.lead_id AND NOT claimed;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = 'open' THEN
        PERFORM report_add(OLD.lead_id, OLD.assignee_id, 'open_conversations', -1);
    END IF;
    IF NEW.status = 'open' THEN
        PERFORM report_add(NEW.lead_id, NEW.assignee_id, 'open_conversations', 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER report_conversations AFTER INSERT OR UPDATE OF status, assignee_id ON conversations
FOR EACH ROW EXECUTE FUNCTION report_conversations_trg();
CREATE TRIGGER report_conversations_delete BEFORE DELETE ON conversations
FOR EACH ROW EXECUTE FUNCTION report_conversations_trg();

-- Backfill what existed before this migration (the triggers above fill report_daily).

INSERT INTO lead_facts (lead_id, workspace_id, created_at, day, claimed, first_inbound_at, first_business_at, notes)
SELECT l.id, l.workspace_id, l.created_at, (l.created_at AT TIME ZONE 'UTC')::date,
       l.assignee_id IS NOT NULL
           OR EXISTS (SELECT 1 FROM conversations c WHERE c.lead_id = l.id AND c.assignee_id IS NOT NULL),
       (SELECT MIN(m.created_at) FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE c.lead_id = l.id AND m.direction = 'in'),
       (SELECT MIN(m.created_at) FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE c.lead_id = l.id AND m.direction = 'out'),
       (SELECT COUNT(*) FROM activities a WHERE a.lead_id = l.id AND a.type = 'note' AND a.member_id IS NOT NULL)
FROM leads l;

INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, assigned,
                                 contacted, frs_sum, frs_count, replies, activities, open_conversations)
SELECT x.lead_id, x.member_id, f.workspace_id, f.created_at, f.day, f.claimed,
       SUM(x.assigned), SUM(x.assigned * f.contacted::int), SUM(x.assigned * COALESCE(f.first_response_secs, 0)),
       SUM(x.assigned * (f.first_response_secs IS NOT NULL)::int), SUM(x.replies), SUM(x.activities), SUM(x.opened)
FROM (
    SELECT id AS lead_id, assignee_id AS member_id, 1 AS assigned, 0 AS replies, 0 AS activities, 0 AS opened
    FROM leads WHERE assignee_id IS NOT NULL
    UNION ALL
    SELECT c.lead_id, m.sent_by_user_id, 0, 1, 0, 0
    FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.sent_by_user_id IS NOT NULL
    UNION ALL
    SELECT lead_id, member_id, 0, 0, 1, 0 FROM activities WHERE member_id IS NOT NULL
    UNION ALL
    SELECT lead_id, assignee_id, 0, 0, 0, 1 FROM conversations WHERE status = 'open' AND assignee_id IS NOT NULL
) x JOIN lead_facts f ON f.lead_id = x.lead_id
GROUP BY x.lead_id, x.member_id, f.workspace_id, f.created_at, f.day, f.claimed;
