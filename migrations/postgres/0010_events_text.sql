-- The event log's data becomes plain text, as it already is on SQLite.
--
-- The server writes each event's data once, as serde_json prints it, and reads it back whole
-- to frame it for sockets; nothing queries inside it. 0009 made it `json` (checked on insert,
-- returned as written); `text` skips the check too (~8 us per event: a CSV import appends two
-- events per lead, a webhook message three), and the server now builds each frame around the
-- stored text instead of parsing it into a tree and printing it again.
ALTER TABLE events ALTER COLUMN data TYPE TEXT;
