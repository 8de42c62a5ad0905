-- Webhooks as they are acknowledged: one row per group commit, holding every body of the batch
-- (PostgreSQL's 0016 says why). The journal writer commits one row per batch; the processor
-- unpacks it into webhook_events rows (pending) in one transaction that also deletes it.
--
-- entries: the batch, encoded by the server (webhook::journal::pack): a version byte, then per
-- webhook its id (16 bytes), received time (µs since the epoch, i64 LE), body length (u32 LE)
-- and body. webhooks: how many it holds.
CREATE TABLE webhook_arrivals (
    id          BLOB PRIMARY KEY,
    received_at TEXT NOT NULL,
    webhooks    INTEGER NOT NULL,
    entries     BLOB NOT NULL
);
