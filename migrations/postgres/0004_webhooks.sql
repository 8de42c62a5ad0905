-- Webhook journal routing and contact notices.

-- Which workspaces a journaled webhook touched (through its connected numbers). Admins see
-- the entries of their workspace, and entries that reached no workspace at all.
CREATE TABLE webhook_event_workspaces (
    event_id     UUID NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    PRIMARY KEY (event_id, workspace_id)
);
CREATE INDEX webhook_event_workspaces_ws ON webhook_event_workspaces (workspace_id);

-- Inbound WhatsApp items that are not chat bubbles (system messages such as
-- user_changed_number), keyed by wamid so a redelivery records nothing new.
CREATE TABLE inbound_notices (
    wamid        TEXT PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    lead_id      UUID REFERENCES leads (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    data         JSONB NOT NULL,
    at           TIMESTAMPTZ NOT NULL
);
