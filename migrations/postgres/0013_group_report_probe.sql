-- New group memberships -> report_daily: look up each new membership's report rows by the
-- primary key instead of hashing the whole table.
--
-- 0009 joined the transition table to report_lead_members, and the planner answered with a
-- sequential scan and a hash of every report row for each statement. That costs 4–8 ms per
-- imported batch of 500 leads at 100k leads, and more as the table grows. OFFSET 0 keeps the
-- lateral subquery from being flattened into that join: it stays one probe of
-- (lead_id, member_id) per new membership, whatever the estimates. The sums are the same.
CREATE OR REPLACE FUNCTION report_groups_inserted_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_daily_merge(ARRAY(
        SELECT ROW(r.workspace_id, n.group_id, r.member_id, r.day, r.claimed, r.assigned, r.contacted, r.frs_sum,
                   r.frs_count, r.replies, r.activities, r.open_conversations)::report_daily
        FROM new_groups n
        CROSS JOIN LATERAL (SELECT * FROM report_lead_members m WHERE m.lead_id = n.lead_id OFFSET 0) r));
    RETURN NULL;
END $$;
