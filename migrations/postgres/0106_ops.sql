-- Presence shared by the nodes of one database (used on PostgreSQL; the table exists on SQLite
-- too so both trees stay alike). Each node rewrites its own rows every few seconds: who has an
-- open live socket on it and whether they said they are away. A node reads the other nodes'
-- fresh rows; the rows of a node that died stop being fresh and stop counting.
CREATE TABLE presence_sockets (
    node_id      UUID NOT NULL,
    user_id      UUID NOT NULL,
    away         BOOLEAN NOT NULL,
    seen_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (node_id, user_id)
);
CREATE INDEX presence_sockets_seen ON presence_sockets (seen_at);
