-- Adopting a SQLite database created by switchboard 0.1.0's migrations 0001-0016 (see
-- src/db/migrate.rs): its report triggers (0007) go, and 0101_report_counters.sql creates
-- their replacements in the same transaction. Everything else in it is already the baseline's
-- schema (0100), but for two foreign keys of lead_identities and activities to workspaces,
-- which stay: both rows cascade from the workspace through their lead anyway.
DROP TRIGGER IF EXISTS report_rows_insert;
DROP TRIGGER IF EXISTS report_rows_delete;
DROP TRIGGER IF EXISTS report_rows_update;
DROP TRIGGER IF EXISTS report_group_added;
DROP TRIGGER IF EXISTS report_group_removed;
DROP TRIGGER IF EXISTS lead_facts_derive;
DROP TRIGGER IF EXISTS lead_facts_to_assignee;
DROP TRIGGER IF EXISTS lead_facts_claimed;
DROP TRIGGER IF EXISTS report_lead_insert;
DROP TRIGGER IF EXISTS report_lead_assignee;
DROP TRIGGER IF EXISTS report_message_insert;
DROP TRIGGER IF EXISTS report_activity_insert;
DROP TRIGGER IF EXISTS report_activity_member;
DROP TRIGGER IF EXISTS report_activity_delete;
DROP TRIGGER IF EXISTS report_conversation_insert;
DROP TRIGGER IF EXISTS report_conversation_update;
DROP TRIGGER IF EXISTS report_conversation_delete;
