-- Bulk writes, continued (PostgreSQL only; SQLite keeps its row-level triggers).
--
-- 1. report_lead_members -> report_daily on INSERT: one aggregated upsert per statement
--    (a transition table) instead of one plpgsql call and one upsert per new row. A CSV import
--    creates a report row for every lead it assigns, 500 leads per statement; the row-level
--    trigger was 9 ms of each 25 ms leads INSERT. Updates and deletes stay row-level (0007).
-- 2. lead_groups -> report_daily on INSERT: the same, for leads joining groups.
--    Same sums as 0007: a new report row adds itself to the "all" bucket (zero UUID) and to
--    each group of its lead; a new membership adds each report row of its lead to that group.
--    Both go through report_daily_merge, which upserts in key order, so two concurrent
--    statements lock buckets in one order.
-- 3. events.data is json, not jsonb: the log is written once and read back whole, never
--    queried inside. jsonb parsed every event into its binary form on insert and printed it
--    back to text on every read; json only checks the text.
-- 4. lead_identities and activities lose their foreign key to workspaces. Both rows belong
--    to a lead (their lead_id key cascades from leads, and leads from workspaces), so the
--    second key only added a check per inserted row (~7 us each; 1,000 checks per imported
--    batch of 500 leads) and a second cascade path to the same rows.

-- Adds deltas to report_daily: summed per bucket, then one upsert in key order (two
-- concurrent statements lock buckets in the same order).
CREATE FUNCTION report_daily_merge(deltas report_daily[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO report_daily AS d
    SELECT x.workspace_id, x.group_id, x.member_id, x.day, x.claimed, SUM(x.assigned)::bigint,
           SUM(x.contacted)::bigint, SUM(x.frs_sum)::bigint, SUM(x.frs_count)::bigint, SUM(x.replies)::bigint,
           SUM(x.activities)::bigint, SUM(x.open_conversations)::bigint
    FROM unnest(deltas) x
    GROUP BY x.workspace_id, x.group_id, x.member_id, x.day, x.claimed
    ORDER BY x.workspace_id, x.group_id, x.member_id, x.day, x.claimed
    ON CONFLICT (workspace_id, group_id, member_id, day, claimed) DO UPDATE SET
        assigned = d.assigned + excluded.assigned,
        contacted = d.contacted + excluded.contacted,
        frs_sum = d.frs_sum + excluded.frs_sum,
        frs_count = d.frs_count + excluded.frs_count,
        replies = d.replies + excluded.replies,
        activities = d.activities + excluded.activities,
        open_conversations = d.open_conversations + excluded.open_conversations
$$;

CREATE FUNCTION report_rows_inserted_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_daily_merge(ARRAY(
        SELECT ROW(r.workspace_id, g.group_id, r.member_id, r.day, r.claimed, r.assigned, r.contacted, r.frs_sum,
                   r.frs_count, r.replies, r.activities, r.open_conversations)::report_daily
        FROM new_rows r
        CROSS JOIN LATERAL (SELECT '00000000-0000-0000-0000-000000000000'::uuid AS group_id
                            UNION ALL SELECT lg.group_id FROM lead_groups lg WHERE lg.lead_id = r.lead_id) g));
    RETURN NULL;
END $$;

DROP TRIGGER report_rows ON report_lead_members;
CREATE TRIGGER report_rows AFTER UPDATE ON report_lead_members
FOR EACH ROW EXECUTE FUNCTION report_rows_trg();
CREATE TRIGGER report_rows_inserted AFTER INSERT ON report_lead_members
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION report_rows_inserted_trg();

CREATE FUNCTION report_groups_inserted_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_daily_merge(ARRAY(
        SELECT ROW(r.workspace_id, n.group_id, r.member_id, r.day, r.claimed, r.assigned, r.contacted, r.frs_sum,
                   r.frs_count, r.replies, r.activities, r.open_conversations)::report_daily
        FROM new_groups n
        JOIN report_lead_members r ON r.lead_id = n.lead_id));
    RETURN NULL;
END $$;

DROP TRIGGER report_groups ON lead_groups;
CREATE TRIGGER report_groups_inserted AFTER INSERT ON lead_groups
REFERENCING NEW TABLE AS new_groups
FOR EACH STATEMENT EXECUTE FUNCTION report_groups_inserted_trg();

ALTER TABLE events ALTER COLUMN data TYPE JSON USING data::json;

ALTER TABLE lead_identities DROP CONSTRAINT lead_identities_workspace_id_fkey;
ALTER TABLE activities DROP CONSTRAINT activities_workspace_id_fkey;
