-- The team report's counters (GET /api/v1/reports/team): the triggers that keep lead_facts,
-- report_lead_members and report_daily (tables in 0100), PostgreSQL dialect.
--
-- migrations/sqlite/0101_report_counters.sql has the same triggers, in the same order, with
-- the same events, conditions and statements: here each body is a plpgsql function of the
-- trigger's name (`BEGIN <the same statements> RETURN NULL; END`, `RETURN OLD` for a BEFORE
-- DELETE, which would otherwise cancel the delete) run `FOR EACH ROW`. The test in
-- src/db/migrate/tests.rs holds the two files to that, up to a short list of spellings (the zero
-- UUID, a timestamp's UTC day and whole epoch seconds, GREATEST/LEAST for two-argument
-- MAX/MIN). Conditions sit in each trigger's WHEN clause, which PostgreSQL checks without
-- calling plpgsql.
--
-- Every write that changes a counter fires them in its own transaction (webhook ingest,
-- replies, notes, assignment, CSV import: every path, since the database does it), so the
-- report answers in milliseconds at 100k leads / 1M messages:
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
-- trigger keeps it for its own change, so cascaded deletes may run in any order. Deletions
-- are counted BEFORE the row goes: on PostgreSQL a cascaded delete of a lead removes its
-- report rows and its group memberships each in one statement, and an AFTER trigger would
-- only run once every row of that statement was gone.
--
-- "claimed": the lead or one of its conversations has (ever had) an assignee. Assignments
-- never go back to unassigned, so it only flips once. A member with view_others_leads sees
-- every claimed lead; the report computes the unclaimed ones they can see exactly.
--
-- Triggers are row by row on both databases, in one text. (Migrations 0008-0013 of 0.1.0
-- counted bulk inserts here per statement, from transition tables, which SQLite has not: a CSV
-- import of 100,000 leads was faster, but the two trees drifted apart. One source won.)

-- report_lead_members -> report_daily. A new row adds itself to its lead's buckets: "all" (the
-- zero UUID) and one per group of the lead.
CREATE FUNCTION report_rows_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_daily (workspace_id, group_id, member_id, day, claimed, assigned, contacted, frs_sum,
                              frs_count, replies, activities, open_conversations)
    SELECT NEW.workspace_id, g.group_id, NEW.member_id, NEW.day, NEW.claimed, NEW.assigned, NEW.contacted,
           NEW.frs_sum, NEW.frs_count, NEW.replies, NEW.activities, NEW.open_conversations
    FROM (SELECT CAST('00000000-0000-0000-0000-000000000000' AS UUID) AS group_id
          UNION ALL SELECT group_id FROM lead_groups WHERE lead_id = NEW.lead_id) g WHERE TRUE
    ON CONFLICT (workspace_id, group_id, member_id, day, claimed) DO UPDATE SET
        assigned = report_daily.assigned + excluded.assigned,
        contacted = report_daily.contacted + excluded.contacted,
        frs_sum = report_daily.frs_sum + excluded.frs_sum,
        frs_count = report_daily.frs_count + excluded.frs_count,
        replies = report_daily.replies + excluded.replies,
        activities = report_daily.activities + excluded.activities,
        open_conversations = report_daily.open_conversations + excluded.open_conversations;
    RETURN NULL;
END $$;
CREATE TRIGGER report_rows_insert AFTER INSERT ON report_lead_members FOR EACH ROW
EXECUTE FUNCTION report_rows_insert();

-- An update that keeps the row in its buckets (only counters move: nearly every update) adds
-- the difference, one upsert per bucket; an update that changes no counter adds nothing.
CREATE FUNCTION report_rows_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_daily (workspace_id, group_id, member_id, day, claimed, assigned, contacted, frs_sum,
                              frs_count, replies, activities, open_conversations)
    SELECT NEW.workspace_id, g.group_id, NEW.member_id, NEW.day, NEW.claimed, NEW.assigned - OLD.assigned,
           NEW.contacted - OLD.contacted, NEW.frs_sum - OLD.frs_sum, NEW.frs_count - OLD.frs_count,
           NEW.replies - OLD.replies, NEW.activities - OLD.activities,
           NEW.open_conversations - OLD.open_conversations
    FROM (SELECT CAST('00000000-0000-0000-0000-000000000000' AS UUID) AS group_id
          UNION ALL SELECT group_id FROM lead_groups WHERE lead_id = NEW.lead_id) g WHERE TRUE
    ON CONFLICT (workspace_id, group_id, member_id, day, claimed) DO UPDATE SET
        assigned = report_daily.assigned + excluded.assigned,
        contacted = report_daily.contacted + excluded.contacted,
        frs_sum = report_daily.frs_sum + excluded.frs_sum,
        frs_count = report_daily.frs_count + excluded.frs_count,
        replies = report_daily.replies + excluded.replies,
        activities = report_daily.activities + excluded.activities,
        open_conversations = report_daily.open_conversations + excluded.open_conversations;
    RETURN NULL;
END $$;
CREATE TRIGGER report_rows_update AFTER UPDATE ON report_lead_members FOR EACH ROW
WHEN (OLD.lead_id = NEW.lead_id AND OLD.member_id = NEW.member_id AND OLD.workspace_id = NEW.workspace_id
      AND OLD.day = NEW.day AND OLD.claimed = NEW.claimed
      AND (OLD.assigned <> NEW.assigned OR OLD.contacted <> NEW.contacted OR OLD.frs_sum <> NEW.frs_sum
           OR OLD.frs_count <> NEW.frs_count OR OLD.replies <> NEW.replies OR OLD.activities <> NEW.activities
           OR OLD.open_conversations <> NEW.open_conversations))
EXECUTE FUNCTION report_rows_update();

-- An update that moves the row to other buckets (claimed flips) takes the old row out of its
-- buckets and puts the new one in.
CREATE FUNCTION report_rows_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_daily (workspace_id, group_id, member_id, day, claimed, assigned, contacted, frs_sum,
                              frs_count, replies, activities, open_conversations)
    SELECT OLD.workspace_id, g.group_id, OLD.member_id, OLD.day, OLD.claimed, -OLD.assigned, -OLD.contacted,
           -OLD.frs_sum, -OLD.frs_count, -OLD.replies, -OLD.activities, -OLD.open_conversations
    FROM (SELECT CAST('00000000-0000-0000-0000-000000000000' AS UUID) AS group_id
          UNION ALL SELECT group_id FROM lead_groups WHERE lead_id = OLD.lead_id) g WHERE TRUE
    ON CONFLICT (workspace_id, group_id, member_id, day, claimed) DO UPDATE SET
        assigned = report_daily.assigned + excluded.assigned,
        contacted = report_daily.contacted + excluded.contacted,
        frs_sum = report_daily.frs_sum + excluded.frs_sum,
        frs_count = report_daily.frs_count + excluded.frs_count,
        replies = report_daily.replies + excluded.replies,
        activities = report_daily.activities + excluded.activities,
        open_conversations = report_daily.open_conversations + excluded.open_conversations;
    INSERT INTO report_daily (workspace_id, group_id, member_id, day, claimed, assigned, contacted, frs_sum,
                              frs_count, replies, activities, open_conversations)
    SELECT NEW.workspace_id, g.group_id, NEW.member_id, NEW.day, NEW.claimed, NEW.assigned, NEW.contacted,
           NEW.frs_sum, NEW.frs_count, NEW.replies, NEW.activities, NEW.open_conversations
    FROM (SELECT CAST('00000000-0000-0000-0000-000000000000' AS UUID) AS group_id
          UNION ALL SELECT group_id FROM lead_groups WHERE lead_id = NEW.lead_id) g WHERE TRUE
    ON CONFLICT (workspace_id, group_id, member_id, day, claimed) DO UPDATE SET
        assigned = report_daily.assigned + excluded.assigned,
        contacted = report_daily.contacted + excluded.contacted,
        frs_sum = report_daily.frs_sum + excluded.frs_sum,
        frs_count = report_daily.frs_count + excluded.frs_count,
        replies = report_daily.replies + excluded.replies,
        activities = report_daily.activities + excluded.activities,
        open_conversations = report_daily.open_conversations + excluded.open_conversations;
    RETURN NULL;
END $$;
CREATE TRIGGER report_rows_move AFTER UPDATE ON report_lead_members FOR EACH ROW
WHEN (OLD.lead_id <> NEW.lead_id OR OLD.member_id <> NEW.member_id OR OLD.workspace_id <> NEW.workspace_id
      OR OLD.day <> NEW.day OR OLD.claimed <> NEW.claimed)
EXECUTE FUNCTION report_rows_move();

-- A deleted row takes itself out of its buckets (BEFORE: its lead's groups are still there,
-- unless their own delete came first and took the row out of them already).
CREATE FUNCTION report_rows_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_daily (workspace_id, group_id, member_id, day, claimed, assigned, contacted, frs_sum,
                              frs_count, replies, activities, open_conversations)
    SELECT OLD.workspace_id, g.group_id, OLD.member_id, OLD.day, OLD.claimed, -OLD.assigned, -OLD.contacted,
           -OLD.frs_sum, -OLD.frs_count, -OLD.replies, -OLD.activities, -OLD.open_conversations
    FROM (SELECT CAST('00000000-0000-0000-0000-000000000000' AS UUID) AS group_id
          UNION ALL SELECT group_id FROM lead_groups WHERE lead_id = OLD.lead_id) g WHERE TRUE
    ON CONFLICT (workspace_id, group_id, member_id, day, claimed) DO UPDATE SET
        assigned = report_daily.assigned + excluded.assigned,
        contacted = report_daily.contacted + excluded.contacted,
        frs_sum = report_daily.frs_sum + excluded.frs_sum,
        frs_count = report_daily.frs_count + excluded.frs_count,
        replies = report_daily.replies + excluded.replies,
        activities = report_daily.activities + excluded.activities,
        open_conversations = report_daily.open_conversations + excluded.open_conversations;
    RETURN OLD;
END $$;
CREATE TRIGGER report_rows_delete BEFORE DELETE ON report_lead_members FOR EACH ROW
EXECUTE FUNCTION report_rows_delete();

-- A lead joins or leaves a group: its rows join or leave that group's buckets (leaving: BEFORE,
-- while its rows are there, unless their own delete came first).
CREATE FUNCTION report_group_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_daily (workspace_id, group_id, member_id, day, claimed, assigned, contacted, frs_sum,
                              frs_count, replies, activities, open_conversations)
    SELECT r.workspace_id, NEW.group_id, r.member_id, r.day, r.claimed, r.assigned, r.contacted, r.frs_sum,
           r.frs_count, r.replies, r.activities, r.open_conversations
    FROM report_lead_members r WHERE r.lead_id = NEW.lead_id
    ON CONFLICT (workspace_id, group_id, member_id, day, claimed) DO UPDATE SET
        assigned = report_daily.assigned + excluded.assigned,
        contacted = report_daily.contacted + excluded.contacted,
        frs_sum = report_daily.frs_sum + excluded.frs_sum,
        frs_count = report_daily.frs_count + excluded.frs_count,
        replies = report_daily.replies + excluded.replies,
        activities = report_daily.activities + excluded.activities,
        open_conversations = report_daily.open_conversations + excluded.open_conversations;
    RETURN NULL;
END $$;
CREATE TRIGGER report_group_added AFTER INSERT ON lead_groups FOR EACH ROW
EXECUTE FUNCTION report_group_added();

CREATE FUNCTION report_group_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_daily (workspace_id, group_id, member_id, day, claimed, assigned, contacted, frs_sum,
                              frs_count, replies, activities, open_conversations)
    SELECT r.workspace_id, OLD.group_id, r.member_id, r.day, r.claimed, -r.assigned, -r.contacted, -r.frs_sum,
           -r.frs_count, -r.replies, -r.activities, -r.open_conversations
    FROM report_lead_members r WHERE r.lead_id = OLD.lead_id
    ON CONFLICT (workspace_id, group_id, member_id, day, claimed) DO UPDATE SET
        assigned = report_daily.assigned + excluded.assigned,
        contacted = report_daily.contacted + excluded.contacted,
        frs_sum = report_daily.frs_sum + excluded.frs_sum,
        frs_count = report_daily.frs_count + excluded.frs_count,
        replies = report_daily.replies + excluded.replies,
        activities = report_daily.activities + excluded.activities,
        open_conversations = report_daily.open_conversations + excluded.open_conversations;
    RETURN OLD;
END $$;
CREATE TRIGGER report_group_removed BEFORE DELETE ON lead_groups FOR EACH ROW
EXECUTE FUNCTION report_group_removed();

-- lead_facts: the derived facts follow the first messages and the notes (whole seconds: the
-- times are cut to the second before they are subtracted) ...
CREATE FUNCTION lead_facts_derive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lead_facts SET
        contacted = (NEW.first_business_at IS NOT NULL OR NEW.notes > 0),
        first_response_secs = CASE WHEN NEW.first_business_at IS NULL THEN NULL ELSE GREATEST(0,
            floor(extract(epoch FROM NEW.first_business_at))
            - floor(extract(epoch FROM LEAST(NEW.created_at, COALESCE(NEW.first_inbound_at, NEW.created_at))))) END
    WHERE lead_id = NEW.lead_id;
    RETURN NULL;
END $$;
CREATE TRIGGER lead_facts_derive AFTER UPDATE OF first_inbound_at, first_business_at, notes ON lead_facts
FOR EACH ROW
EXECUTE FUNCTION lead_facts_derive();

-- ... and are copied to the assignee's row ...
CREATE FUNCTION lead_facts_to_assignee() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE report_lead_members SET
        contacted = CAST(NEW.contacted AS INTEGER),
        frs_sum = COALESCE(NEW.first_response_secs, 0),
        frs_count = CAST(NEW.first_response_secs IS NOT NULL AS INTEGER)
    WHERE lead_id = NEW.lead_id AND assigned = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER lead_facts_to_assignee AFTER UPDATE OF contacted, first_response_secs ON lead_facts FOR EACH ROW
WHEN (OLD.contacted IS DISTINCT FROM NEW.contacted
      OR OLD.first_response_secs IS DISTINCT FROM NEW.first_response_secs)
EXECUTE FUNCTION lead_facts_to_assignee();

-- ... and a lead that becomes claimed claims its rows.
CREATE FUNCTION lead_facts_claimed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE report_lead_members SET claimed = TRUE WHERE lead_id = NEW.lead_id AND NOT claimed;
    RETURN NULL;
END $$;
CREATE TRIGGER lead_facts_claimed AFTER UPDATE OF claimed ON lead_facts FOR EACH ROW
WHEN (NEW.claimed AND NOT OLD.claimed)
EXECUTE FUNCTION lead_facts_claimed();

-- Leads: the facts row on insert (with the lead's UTC day), and the assignee's row when it has
-- one (a trigger of its own, so that the unassigned majority of a CSV import skip it without a
-- statement; it reads nothing the first one writes, so their order does not matter). Then the
-- assignee's row follows the lead's assignee, carrying contacted and first response.
CREATE FUNCTION report_lead_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lead_facts (lead_id, workspace_id, created_at, day, claimed)
    VALUES (NEW.id, NEW.workspace_id, NEW.created_at, CAST(NEW.created_at AT TIME ZONE 'UTC' AS DATE), NEW.assignee_id IS NOT NULL);
    RETURN NULL;
END $$;
CREATE TRIGGER report_lead_insert AFTER INSERT ON leads FOR EACH ROW
EXECUTE FUNCTION report_lead_insert();

CREATE FUNCTION report_lead_insert_assigned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, assigned)
    VALUES (NEW.id, NEW.assignee_id, NEW.workspace_id, NEW.created_at, CAST(NEW.created_at AT TIME ZONE 'UTC' AS DATE), TRUE, 1);
    RETURN NULL;
END $$;
CREATE TRIGGER report_lead_insert_assigned AFTER INSERT ON leads FOR EACH ROW
WHEN (NEW.assignee_id IS NOT NULL)
EXECUTE FUNCTION report_lead_insert_assigned();

CREATE FUNCTION report_lead_assignee() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lead_facts SET claimed = TRUE WHERE lead_id = NEW.id AND NOT claimed AND NEW.assignee_id IS NOT NULL;
    UPDATE report_lead_members SET assigned = 0, contacted = 0, frs_sum = 0, frs_count = 0
    WHERE lead_id = NEW.id AND member_id = OLD.assignee_id;
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, assigned,
                                     contacted, frs_sum, frs_count)
    SELECT f.lead_id, NEW.assignee_id, f.workspace_id, f.created_at, f.day, f.claimed, 1,
           CAST(f.contacted AS INTEGER), COALESCE(f.first_response_secs, 0),
           CAST(f.first_response_secs IS NOT NULL AS INTEGER)
    FROM lead_facts f WHERE f.lead_id = NEW.id AND NEW.assignee_id IS NOT NULL
    ON CONFLICT (lead_id, member_id) DO UPDATE SET
        assigned = 1, contacted = excluded.contacted, frs_sum = excluded.frs_sum, frs_count = excluded.frs_count;
    RETURN NULL;
END $$;
CREATE TRIGGER report_lead_assignee AFTER UPDATE OF assignee_id ON leads FOR EACH ROW
WHEN (OLD.assignee_id IS DISTINCT FROM NEW.assignee_id)
EXECUTE FUNCTION report_lead_assignee();

-- Messages: the first inbound and the first business-side message (most messages change
-- neither: the UPDATE finds nothing to write), and replies by members. One trigger each, so
-- their conditions are checked before any statement runs. Messages are only ever deleted with
-- their conversation, which takes its replies along (below).
CREATE FUNCTION report_message_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lead_facts SET first_inbound_at = NEW.created_at
    WHERE lead_id = (SELECT lead_id FROM conversations WHERE id = NEW.conversation_id)
      AND (first_inbound_at IS NULL OR first_inbound_at > NEW.created_at);
    RETURN NULL;
END $$;
CREATE TRIGGER report_message_in AFTER INSERT ON messages FOR EACH ROW WHEN (NEW.direction = 'in')
EXECUTE FUNCTION report_message_in();

CREATE FUNCTION report_message_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lead_facts SET first_business_at = NEW.created_at
    WHERE lead_id = (SELECT lead_id FROM conversations WHERE id = NEW.conversation_id)
      AND (first_business_at IS NULL OR first_business_at > NEW.created_at);
    RETURN NULL;
END $$;
CREATE TRIGGER report_message_out AFTER INSERT ON messages FOR EACH ROW WHEN (NEW.direction = 'out')
EXECUTE FUNCTION report_message_out();

CREATE FUNCTION report_message_reply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, replies)
    SELECT f.lead_id, NEW.sent_by_user_id, f.workspace_id, f.created_at, f.day, f.claimed, 1
    FROM lead_facts f WHERE f.lead_id = (SELECT lead_id FROM conversations WHERE id = NEW.conversation_id)
    ON CONFLICT (lead_id, member_id) DO UPDATE SET replies = report_lead_members.replies + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER report_message_reply AFTER INSERT ON messages FOR EACH ROW
WHEN (NEW.sent_by_user_id IS NOT NULL)
EXECUTE FUNCTION report_message_reply();

-- Activities: counted for their member_id (which a growing WhatsApp session may change);
-- activities without a member (lead_created, sessions nobody answered) count for nobody. A
-- member's note makes the lead contacted. An activity deleted along with its lead changes
-- nothing: the lead's counter rows go too (and on PostgreSQL an update of a row this
-- transaction wrote checks its foreign key, which the deleted lead would fail).
CREATE FUNCTION report_activity_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, activities)
    SELECT f.lead_id, NEW.member_id, f.workspace_id, f.created_at, f.day, f.claimed, 1
    FROM lead_facts f WHERE f.lead_id = NEW.lead_id
    ON CONFLICT (lead_id, member_id) DO UPDATE SET activities = report_lead_members.activities + 1;
    UPDATE lead_facts SET notes = notes + 1 WHERE NEW.type = 'note' AND lead_id = NEW.lead_id;
    RETURN NULL;
END $$;
CREATE TRIGGER report_activity_insert AFTER INSERT ON activities FOR EACH ROW WHEN (NEW.member_id IS NOT NULL)
EXECUTE FUNCTION report_activity_insert();

CREATE FUNCTION report_activity_member() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE report_lead_members SET activities = activities - 1
    WHERE OLD.member_id IS NOT NULL AND lead_id = OLD.lead_id AND member_id = OLD.member_id;
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, activities)
    SELECT f.lead_id, NEW.member_id, f.workspace_id, f.created_at, f.day, f.claimed, 1
    FROM lead_facts f WHERE NEW.member_id IS NOT NULL AND f.lead_id = NEW.lead_id
    ON CONFLICT (lead_id, member_id) DO UPDATE SET activities = report_lead_members.activities + 1;
    UPDATE lead_facts SET notes = notes + CAST(NEW.member_id IS NOT NULL AS INTEGER)
                                        - CAST(OLD.member_id IS NOT NULL AS INTEGER)
    WHERE NEW.type = 'note' AND lead_id = NEW.lead_id;
    RETURN NULL;
END $$;
CREATE TRIGGER report_activity_member AFTER UPDATE OF member_id ON activities FOR EACH ROW
WHEN (OLD.member_id IS DISTINCT FROM NEW.member_id)
EXECUTE FUNCTION report_activity_member();

CREATE FUNCTION report_activity_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE report_lead_members SET activities = activities - 1
    WHERE lead_id = OLD.lead_id AND member_id = OLD.member_id AND EXISTS (SELECT 1 FROM leads WHERE id = OLD.lead_id);
    UPDATE lead_facts SET notes = notes - 1
    WHERE OLD.type = 'note' AND lead_id = OLD.lead_id AND EXISTS (SELECT 1 FROM leads WHERE id = OLD.lead_id);
    RETURN NULL;
END $$;
CREATE TRIGGER report_activity_delete AFTER DELETE ON activities FOR EACH ROW WHEN (OLD.member_id IS NOT NULL)
EXECUTE FUNCTION report_activity_delete();

-- Conversations: open ones per assignee; an assigned conversation claims its lead. The update
-- trigger fires only when status or assignee change (every message sets its conversation's
-- status). A deleted conversation takes its open count and its members' replies along, BEFORE
-- its messages go; deleted along with its lead, it changes nothing (as activities, above).
CREATE FUNCTION report_conversation_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lead_facts SET claimed = TRUE WHERE lead_id = NEW.lead_id AND NOT claimed;
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed,
                                     open_conversations)
    SELECT f.lead_id, NEW.assignee_id, f.workspace_id, f.created_at, f.day, f.claimed, 1
    FROM lead_facts f WHERE NEW.status = 'open' AND f.lead_id = NEW.lead_id
    ON CONFLICT (lead_id, member_id) DO UPDATE SET open_conversations = report_lead_members.open_conversations + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER report_conversation_insert AFTER INSERT ON conversations FOR EACH ROW
WHEN (NEW.assignee_id IS NOT NULL)
EXECUTE FUNCTION report_conversation_insert();

CREATE FUNCTION report_conversation_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lead_facts SET claimed = TRUE WHERE NEW.assignee_id IS NOT NULL AND lead_id = NEW.lead_id AND NOT claimed;
    UPDATE report_lead_members SET open_conversations = open_conversations - 1
    WHERE OLD.status = 'open' AND OLD.assignee_id IS NOT NULL AND lead_id = OLD.lead_id AND member_id = OLD.assignee_id;
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed,
                                     open_conversations)
    SELECT f.lead_id, NEW.assignee_id, f.workspace_id, f.created_at, f.day, f.claimed, 1
    FROM lead_facts f WHERE NEW.status = 'open' AND NEW.assignee_id IS NOT NULL AND f.lead_id = NEW.lead_id
    ON CONFLICT (lead_id, member_id) DO UPDATE SET open_conversations = report_lead_members.open_conversations + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER report_conversation_update AFTER UPDATE OF status, assignee_id ON conversations FOR EACH ROW
WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id)
EXECUTE FUNCTION report_conversation_update();

CREATE FUNCTION report_conversation_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE report_lead_members SET open_conversations = open_conversations - 1
    WHERE OLD.status = 'open' AND lead_id = OLD.lead_id AND member_id = OLD.assignee_id
      AND EXISTS (SELECT 1 FROM leads WHERE id = OLD.lead_id);
    UPDATE report_lead_members SET replies = replies - (
        SELECT COUNT(*) FROM messages m WHERE m.conversation_id = OLD.id AND m.sent_by_user_id = report_lead_members.member_id)
    WHERE lead_id = OLD.lead_id AND member_id IN (SELECT sent_by_user_id FROM messages WHERE conversation_id = OLD.id)
      AND EXISTS (SELECT 1 FROM leads WHERE id = OLD.lead_id);
    RETURN OLD;
END $$;
CREATE TRIGGER report_conversation_delete BEFORE DELETE ON conversations FOR EACH ROW
EXECUTE FUNCTION report_conversation_delete();
