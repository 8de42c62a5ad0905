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
-- PostgreSQL keeps the same tables and semantics with plpgsql trigger functions (0007 there).

CREATE TABLE lead_facts (
    lead_id           BLOB PRIMARY KEY REFERENCES leads (id) ON DELETE CASCADE,
    workspace_id      BLOB NOT NULL,
    -- copies of the lead's created_at and its UTC date (a lead's creation time never changes)
    created_at        TEXT NOT NULL,
    day               TEXT NOT NULL,
    claimed           BOOLEAN NOT NULL DEFAULT FALSE,
    -- WhatsApp time of the first inbound message
    first_inbound_at  TEXT,
    -- time of the first business-side message: an echo's WhatsApp time, a reply's queue time
    first_business_at TEXT,
    -- notes on the lead by members (activities of type note with a member_id)
    notes             BIGINT NOT NULL DEFAULT 0,
    -- derived: a business-side message or a member's note
    contacted         BOOLEAN NOT NULL DEFAULT FALSE,
    -- derived: whole seconds from min(created_at, first_inbound_at) to first_business_at,
    -- at least 0; NULL until a business-side message exists
    first_response_secs BIGINT
) WITHOUT ROWID;

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

-- The conversation list of a member without view_others_leads / view_unassigned starts from
-- their own conversations, newest first: the assignee index gets the id for the keyset order.
DROP INDEX conversations_assignee;
CREATE INDEX conversations_assignee ON conversations (workspace_id, assignee_id, updated_at, id);

-- report_lead_members -> report_daily (the lead's "all" bucket and one per group).

CREATE TRIGGER report_rows_insert AFTER INSERT ON report_lead_members BEGIN
    INSERT INTO report_daily (workspace_id, group_id, member_id, day, claimed, assigned, contacted, frs_sum,
                              frs_count, replies, activities, open_conversations)
    SELECT NEW.workspace_id, g.group_id, NEW.member_id, NEW.day, NEW.claimed, NEW.assigned, NEW.contacted,
           NEW.frs_sum, NEW.frs_count, NEW.replies, NEW.activities, NEW.open_conversations
    FROM (SELECT X'00000000000000000000000000000000' AS group_id
          UNION ALL SELECT group_id FROM lead_groups WHERE lead_id = NEW.lead_id) g WHERE TRUE
    ON CONFLICT (workspace_id, group_id, member_id, day, claimed) DO UPDATE SET
        assigned = report_daily.assigned + excluded.assigned,
        contacted = report_daily.contacted + excluded.contacted,
        frs_sum = report_daily.frs_sum + excluded.frs_sum,
        frs_count = report_daily.frs_count + excluded.frs_count,
        replies = report_daily.replies + excluded.replies,
        activities = report_daily.activities + excluded.activities,
        open_conversations = report_daily.open_conversations + excluded.open_conversations;
END;

CREATE TRIGGER report_rows_delete AFTER DELETE ON report_lead_members BEGIN
    INSERT INTO report_daily (workspace_id, group_id, member_id, day, claimed, assigned, contacted, frs_sum,
                              frs_count, replies, activities, open_conversations)
    SELECT OLD.workspace_id, g.group_id, OLD.member_id, OLD.day, OLD.claimed, -OLD.assigned, -OLD.contacted,
           -OLD.frs_sum, -OLD.frs_count, -OLD.replies, -OLD.activities, -OLD.open_conversations
    FROM (SELECT X'00000000000000000000000000000000' AS group_id
          UNION ALL SELECT group_id FROM lead_groups WHERE lead_id = OLD.lead_id) g WHERE TRUE
    ON CONFLICT (workspace_id, group_id, member_id, day, claimed) DO UPDATE SET
        assigned = report_daily.assigned + excluded.assigned,
        contacted = report_daily.contacted + excluded.contacted,
        frs_sum = report_daily.frs_sum + excluded.frs_sum,
        frs_count = report_daily.frs_count + excluded.frs_count,
        replies = report_daily.replies + excluded.replies,
        activities = report_daily.activities + excluded.activities,
        open_conversations = report_daily.open_conversations + excluded.open_conversations;
END;

-- An update is a delete of the old row and an insert of the new one (claimed may move it).
CREATE TRIGGER report_rows_update AFTER UPDATE ON report_lead_members BEGIN
    INSERT INTO report_daily (workspace_id, group_id, member_id, day, claimed, assigned, contacted, frs_sum,
                              frs_count, replies, activities, open_conversations)
    SELECT OLD.workspace_id, g.group_id, OLD.member_id, OLD.day, OLD.claimed, -OLD.assigned, -OLD.contacted,
           -OLD.frs_sum, -OLD.frs_count, -OLD.replies, -OLD.activities, -OLD.open_conversations
    FROM (SELECT X'00000000000000000000000000000000' AS group_id
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
    FROM (SELECT X'00000000000000000000000000000000' AS group_id
          UNION ALL SELECT group_id FROM lead_groups WHERE lead_id = NEW.lead_id) g WHERE TRUE
    ON CONFLICT (workspace_id, group_id, member_id, day, claimed) DO UPDATE SET
        assigned = report_daily.assigned + excluded.assigned,
        contacted = report_daily.contacted + excluded.contacted,
        frs_sum = report_daily.frs_sum + excluded.frs_sum,
        frs_count = report_daily.frs_count + excluded.frs_count,
        replies = report_daily.replies + excluded.replies,
        activities = report_daily.activities + excluded.activities,
        open_conversations = report_daily.open_conversations + excluded.open_conversations;
END;

-- A lead joins or leaves a group: its rows join or leave that group's buckets.

CREATE TRIGGER report_group_added AFTER INSERT ON lead_groups BEGIN
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
END;

CREATE TRIGGER report_group_removed AFTER DELETE ON lead_groups BEGIN
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
END;

-- lead_facts: derived facts, and their copy on the assignee's row.

CREATE TRIGGER lead_facts_derive AFTER UPDATE OF first_inbound_at, first_business_at, notes ON lead_facts BEGIN
    UPDATE lead_facts SET
        contacted = (NEW.first_business_at IS NOT NULL OR NEW.notes > 0),
        first_response_secs = CASE WHEN NEW.first_business_at IS NULL THEN NULL ELSE MAX(0,
            unixepoch(substr(NEW.first_business_at, 1, 19))
            - unixepoch(substr(MIN(NEW.created_at, COALESCE(NEW.first_inbound_at, NEW.created_at)), 1, 19))) END
    WHERE lead_id = NEW.lead_id;
END;

CREATE TRIGGER lead_facts_to_assignee AFTER UPDATE OF contacted, first_response_secs ON lead_facts
WHEN OLD.contacted IS NOT NEW.contacted OR OLD.first_response_secs IS NOT NEW.first_response_secs BEGIN
    UPDATE report_lead_members SET
        contacted = NEW.contacted,
        frs_sum = COALESCE(NEW.first_response_secs, 0),
        frs_count = (NEW.first_response_secs IS NOT NULL)
    WHERE lead_id = NEW.lead_id AND assigned = 1;
END;

CREATE TRIGGER lead_facts_claimed AFTER UPDATE OF claimed ON lead_facts WHEN NEW.claimed AND NOT OLD.claimed BEGIN
    UPDATE report_lead_members SET claimed = TRUE WHERE lead_id = NEW.lead_id AND NOT claimed;
END;

-- Leads: facts row on insert; the assignee's row follows the lead's assignee.

CREATE TRIGGER report_lead_insert AFTER INSERT ON leads BEGIN
    INSERT INTO lead_facts (lead_id, workspace_id, created_at, day, claimed)
    VALUES (NEW.id, NEW.workspace_id, NEW.created_at, substr(NEW.created_at, 1, 10), NEW.assignee_id IS NOT NULL);
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, assigned)
    SELECT NEW.id, NEW.assignee_id, NEW.workspace_id, NEW.created_at, substr(NEW.created_at, 1, 10), TRUE, 1
    WHERE NEW.assignee_id IS NOT NULL;
END;

CREATE TRIGGER report_lead_assignee AFTER UPDATE OF assignee_id ON leads
WHEN OLD.assignee_id IS NOT NEW.assignee_id BEGIN
    UPDATE lead_facts SET claimed = TRUE WHERE lead_id = NEW.id AND NOT claimed AND NEW.assignee_id IS NOT NULL;
    UPDATE report_lead_members SET assigned = 0, contacted = 0, frs_sum = 0, frs_count = 0
    WHERE lead_id = NEW.id AND member_id = OLD.assignee_id;
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, assigned,
                                     contacted, frs_sum, frs_count)
    SELECT f.lead_id, NEW.assignee_id, f.workspace_id, f.created_at, f.day, f.claimed, 1, f.contacted,
           COALESCE(f.first_response_secs, 0), (f.first_response_secs IS NOT NULL)
    FROM lead_facts f WHERE f.lead_id = NEW.id AND NEW.assignee_id IS NOT NULL
    ON CONFLICT (lead_id, member_id) DO UPDATE SET
        assigned = 1, contacted = excluded.contacted, frs_sum = excluded.frs_sum, frs_count = excluded.frs_count;
END;

-- Messages: first inbound / first business-side message, and replies by members. Messages
-- are only ever deleted with their conversation, which takes its replies along (below).

CREATE TRIGGER report_message_insert AFTER INSERT ON messages BEGIN
    UPDATE lead_facts SET first_inbound_at = NEW.created_at
    WHERE NEW.direction = 'in'
      AND lead_id = (SELECT lead_id FROM conversations WHERE id = NEW.conversation_id)
      AND (first_inbound_at IS NULL OR first_inbound_at > NEW.created_at);
    UPDATE lead_facts SET first_business_at = NEW.created_at
    WHERE NEW.direction = 'out'
      AND lead_id = (SELECT lead_id FROM conversations WHERE id = NEW.conversation_id)
      AND (first_business_at IS NULL OR first_business_at > NEW.created_at);
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, replies)
    SELECT f.lead_id, NEW.sent_by_user_id, f.workspace_id, f.created_at, f.day, f.claimed, 1
    FROM lead_facts f
    WHERE NEW.sent_by_user_id IS NOT NULL
      AND f.lead_id = (SELECT lead_id FROM conversations WHERE id = NEW.conversation_id)
    ON CONFLICT (lead_id, member_id) DO UPDATE SET replies = report_lead_members.replies + 1;
END;

-- Activities: counted for their member_id (which a growing WhatsApp session may change);
-- a member's note makes the lead contacted.

CREATE TRIGGER report_activity_insert AFTER INSERT ON activities WHEN NEW.member_id IS NOT NULL BEGIN
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, activities)
    SELECT f.lead_id, NEW.member_id, f.workspace_id, f.created_at, f.day, f.claimed, 1
    FROM lead_facts f WHERE f.lead_id = NEW.lead_id
    ON CONFLICT (lead_id, member_id) DO UPDATE SET activities = report_lead_members.activities + 1;
    UPDATE lead_facts SET notes = notes + 1 WHERE NEW.type = 'note' AND lead_id = NEW.lead_id;
END;

CREATE TRIGGER report_activity_member AFTER UPDATE OF member_id ON activities
WHEN OLD.member_id IS NOT NEW.member_id BEGIN
    UPDATE report_lead_members SET activities = activities - 1
    WHERE OLD.member_id IS NOT NULL AND lead_id = OLD.lead_id AND member_id = OLD.member_id;
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, activities)
    SELECT f.lead_id, NEW.member_id, f.workspace_id, f.created_at, f.day, f.claimed, 1
    FROM lead_facts f WHERE NEW.member_id IS NOT NULL AND f.lead_id = NEW.lead_id
    ON CONFLICT (lead_id, member_id) DO UPDATE SET activities = report_lead_members.activities + 1;
    UPDATE lead_facts SET notes = notes + (NEW.member_id IS NOT NULL) - (OLD.member_id IS NOT NULL)
    WHERE NEW.type = 'note' AND lead_id = NEW.lead_id;
END;

CREATE TRIGGER report_activity_delete AFTER DELETE ON activities WHEN OLD.member_id IS NOT NULL BEGIN
    UPDATE report_lead_members SET activities = activities - 1
    WHERE lead_id = OLD.lead_id AND member_id = OLD.member_id;
    UPDATE lead_facts SET notes = notes - 1 WHERE OLD.type = 'note' AND lead_id = OLD.lead_id;
END;

-- Conversations: open ones per assignee; an assigned conversation claims its lead. A deleted
-- conversation takes its open count and its members' replies along (before its messages go).

CREATE TRIGGER report_conversation_insert AFTER INSERT ON conversations WHEN NEW.assignee_id IS NOT NULL BEGIN
    UPDATE lead_facts SET claimed = TRUE WHERE lead_id = NEW.lead_id AND NOT claimed;
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed,
                                     open_conversations)
    SELECT f.lead_id, NEW.assignee_id, f.workspace_id, f.created_at, f.day, f.claimed, 1
    FROM lead_facts f WHERE NEW.status = 'open' AND f.lead_id = NEW.lead_id
    ON CONFLICT (lead_id, member_id) DO UPDATE SET open_conversations = report_lead_members.open_conversations + 1;
END;

CREATE TRIGGER report_conversation_update AFTER UPDATE OF status, assignee_id ON conversations
WHEN OLD.status IS NOT NEW.status OR OLD.assignee_id IS NOT NEW.assignee_id BEGIN
    UPDATE lead_facts SET claimed = TRUE WHERE NEW.assignee_id IS NOT NULL AND lead_id = NEW.lead_id AND NOT claimed;
    UPDATE report_lead_members SET open_conversations = open_conversations - 1
    WHERE OLD.status = 'open' AND OLD.assignee_id IS NOT NULL AND lead_id = OLD.lead_id AND member_id = OLD.assignee_id;
    INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed,
                                     open_conversations)
    SELECT f.lead_id, NEW.assignee_id, f.workspace_id, f.created_at, f.day, f.claimed, 1
    FROM lead_facts f WHERE NEW.status = 'open' AND NEW.assignee_id IS NOT NULL AND f.lead_id = NEW.lead_id
    ON CONFLICT (lead_id, member_id) DO UPDATE SET open_conversations = report_lead_members.open_conversations + 1;
END;

CREATE TRIGGER report_conversation_delete BEFORE DELETE ON conversations BEGIN
    UPDATE report_lead_members SET open_conversations = open_conversations - 1
    WHERE OLD.status = 'open' AND lead_id = OLD.lead_id AND member_id = OLD.assignee_id;
    UPDATE report_lead_members SET replies = replies - (
        SELECT COUNT(*) FROM messages m WHERE m.conversation_id = OLD.id AND m.sent_by_user_id = report_lead_members.member_id)
    WHERE lead_id = OLD.lead_id;
END;

-- Backfill what existed before this migration (the triggers above fill report_daily).

INSERT INTO lead_facts (lead_id, workspace_id, created_at, day, claimed, first_inbound_at, first_business_at, notes)
SELECT l.id, l.workspace_id, l.created_at, substr(l.created_at, 1, 10),
       l.assignee_id IS NOT NULL
           OR EXISTS (SELECT 1 FROM conversations c WHERE c.lead_id = l.id AND c.assignee_id IS NOT NULL),
       (SELECT MIN(m.created_at) FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE c.lead_id = l.id AND m.direction = 'in'),
       (SELECT MIN(m.created_at) FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE c.lead_id = l.id AND m.direction = 'out'),
       (SELECT COUNT(*) FROM activities a WHERE a.lead_id = l.id AND a.type = 'note' AND a.member_id IS NOT NULL)
FROM leads l;

UPDATE lead_facts SET
    contacted = (first_business_at IS NOT NULL OR notes > 0),
    first_response_secs = CASE WHEN first_business_at IS NULL THEN NULL ELSE MAX(0,
        unixepoch(substr(first_business_at, 1, 19))
        - unixepoch(substr(MIN(created_at, COALESCE(first_inbound_at, created_at)), 1, 19))) END;

INSERT INTO report_lead_members (lead_id, member_id, workspace_id, lead_created_at, day, claimed, assigned,
                                 contacted, frs_sum, frs_count, replies, activities, open_conversations)
SELECT x.lead_id, x.member_id, f.workspace_id, f.created_at, f.day, f.claimed,
       SUM(x.assigned), SUM(x.assigned * f.contacted), SUM(x.assigned * COALESCE(f.first_response_secs, 0)),
       SUM(x.assigned * (f.first_response_secs IS NOT NULL)), SUM(x.replies), SUM(x.activities), SUM(x.opened)
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
GROUP BY x.lead_id, x.member_id;
