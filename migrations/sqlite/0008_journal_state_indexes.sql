-- The webhook journal's state is indexed only where a query needs it (as in PostgreSQL's
-- 0011 and 0015).
--
-- webhook_events_state (state, seq) cost one index entry per webhook received and another per
-- webhook processed (the change of state writes a new entry), inside the write lock that
-- acknowledging Meta waits for. The queries it served now have partial indexes, small because
-- they hold only the rows whose state is rare:
--   * claims and the admin list of pending rows: webhook_events_pending;
--   * the admin list of failed rows: webhook_events_failed;
--   * the admin list of done rows (nearly all of them) and retention read the rowid (seq) in
--     order, where done rows are what they meet.
CREATE INDEX webhook_events_pending ON webhook_events (seq) WHERE state = 'pending';
CREATE INDEX webhook_events_failed ON webhook_events (seq) WHERE state = 'failed';
DROP INDEX webhook_events_state;
