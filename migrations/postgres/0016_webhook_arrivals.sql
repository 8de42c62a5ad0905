-- Webhooks as they are acknowledged: one row per group commit, holding every body of the batch.
--
-- Journaling each webhook as a row of webhook_events took a heap tuple and three index entries
-- per webhook (primary key, id, the pending index) on the path that answers Meta: ~20 µs of
-- server CPU each, most of what a durable 200 cost. Now the journal writer commits one row per
-- batch (one index entry for up to 256 webhooks), and the processor unpacks it into
-- webhook_events rows (pending, as before) in one transaction that also deletes it, before it
-- processes them. A webhook is durable once its batch row is committed; a crash before the
-- unpack loses nothing (the row is unpacked at the next start).
--
-- entries: the batch, encoded by the server (webhook::journal::pack): a version byte, then per
-- webhook its id (16 bytes), received time (µs since the epoch, i64 LE), body length (u32 LE)
-- and body. webhooks: how many it holds.
CREATE TABLE webhook_arrivals (
    id          UUID PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL,
    webhooks    INTEGER NOT NULL,
    entries     BYTEA NOT NULL
);
-- Stored out of line without compression: compressing a batch (pglz) cost more CPU than the
-- rows it replaced, and the row lives only until the processor unpacks it. No statistics (0014).
ALTER TABLE webhook_arrivals ALTER COLUMN entries SET STORAGE EXTERNAL, ALTER COLUMN entries SET STATISTICS 0;
