-- Agencies (GET/POST /api/v1/agency, /api/v1/agency/clients…), PostgreSQL dialect;
-- migrations/sqlite/0109_agencies.sql is the same.
--
-- A workspace in agency mode has one agencies row; its admins act for the agency.
CREATE TABLE agencies (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL UNIQUE REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

-- An agency's client entries: invited by the email of the client workspace's admin.
-- status: invited (token_hash set, may be accepted until expires_at), not_linked (cancelled,
-- unlinked from either side), managing (client_workspace_id set; the agency reads its data).
CREATE TABLE agency_clients (
    id                  UUID PRIMARY KEY,
    agency_id           UUID NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    email               TEXT NOT NULL,
    name                TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('invited', 'not_linked', 'managing')),
    -- the workspace that accepted (kept after an unlink, for the list)
    client_workspace_id UUID REFERENCES workspaces (id) ON DELETE SET NULL,
    -- SHA-256 of the live accept token; NULL once accepted or cancelled
    token_hash          BYTEA UNIQUE,
    expires_at          TIMESTAMPTZ,
    invited_at          TIMESTAMPTZ NOT NULL,
    linked_at           TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (agency_id, email)
);
CREATE INDEX agency_clients_list ON agency_clients (agency_id, invited_at, id);
-- A workspace is managed by at most one agency at a time.
CREATE UNIQUE INDEX agency_clients_managed ON agency_clients (client_workspace_id) WHERE status = 'managing';
