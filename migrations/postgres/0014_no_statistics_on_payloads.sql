-- Payload columns get no planner statistics.
--
-- No query filters, joins or sorts on these columns; they are only written and read back
-- whole. ANALYZE still sampled them: 30,000 values each, sorted for a histogram. For events.data
-- and the journal's bodies (hundreds of bytes to kilobytes each) that sort was most of each
-- ANALYZE, which runs several times while a webhook flood or a CSV import grows a table (see
-- Db::statistics and the import's refresh). A target of 0 makes ANALYZE skip the column.
ALTER TABLE webhook_events ALTER COLUMN body SET STATISTICS 0;
ALTER TABLE events ALTER COLUMN data SET STATISTICS 0;
ALTER TABLE activities ALTER COLUMN data SET STATISTICS 0;
ALTER TABLE messages ALTER COLUMN media SET STATISTICS 0, ALTER COLUMN content SET STATISTICS 0;
ALTER TABLE leads ALTER COLUMN custom_fields SET STATISTICS 0;
