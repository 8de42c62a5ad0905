-- Adopting a PostgreSQL database created by switchboard 0.1.0's migrations 0001-0016 (see
-- src/db/migrate.rs): its report triggers and their functions (0007-0013) go, and
-- 0101_report_counters.sql creates their replacements in the same transaction. Everything
-- else in it (lock_contacts included) is already the baseline's schema (0100).
DROP TRIGGER IF EXISTS report_rows ON report_lead_members;
DROP TRIGGER IF EXISTS report_rows_inserted ON report_lead_members;
DROP TRIGGER IF EXISTS report_rows_delete ON report_lead_members;
DROP TRIGGER IF EXISTS report_groups_inserted ON lead_groups;
DROP TRIGGER IF EXISTS report_groups_delete ON lead_groups;
DROP TRIGGER IF EXISTS lead_facts_derive ON lead_facts;
DROP TRIGGER IF EXISTS lead_facts_after ON lead_facts;
DROP TRIGGER IF EXISTS report_leads ON leads;
DROP TRIGGER IF EXISTS report_leads_inserted ON leads;
DROP TRIGGER IF EXISTS report_messages ON messages;
DROP TRIGGER IF EXISTS report_activities ON activities;
DROP TRIGGER IF EXISTS report_activities_member ON activities;
DROP TRIGGER IF EXISTS report_activities_delete ON activities;
DROP TRIGGER IF EXISTS report_conversations ON conversations;
DROP TRIGGER IF EXISTS report_conversations_changed ON conversations;
DROP TRIGGER IF EXISTS report_conversations_delete ON conversations;
DROP FUNCTION IF EXISTS report_rows_trg();
DROP FUNCTION IF EXISTS report_rows_inserted_trg();
DROP FUNCTION IF EXISTS report_groups_trg();
DROP FUNCTION IF EXISTS report_groups_inserted_trg();
DROP FUNCTION IF EXISTS lead_facts_derive_trg();
DROP FUNCTION IF EXISTS lead_facts_after_trg();
DROP FUNCTION IF EXISTS report_leads_trg();
DROP FUNCTION IF EXISTS report_leads_inserted_trg();
DROP FUNCTION IF EXISTS report_messages_trg();
DROP FUNCTION IF EXISTS report_activities_trg();
DROP FUNCTION IF EXISTS report_conversations_trg();
DROP FUNCTION IF EXISTS report_bump(report_lead_members, BIGINT, UUID);
DROP FUNCTION IF EXISTS report_add(UUID, UUID, TEXT, BIGINT);
DROP FUNCTION IF EXISTS report_frs(TIMESTAMPTZ, TIMESTAMPTZ, TIMESTAMPTZ);
DROP FUNCTION IF EXISTS report_daily_merge(report_daily[]);
