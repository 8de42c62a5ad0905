-- Assignment: per-workspace settings, round-robin positions and the decision log.

-- The workspace's assignment settings as one JSON object (the API's shape). No row: defaults.
CREATE TABLE assignment_settings (
    workspace_id UUID PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    settings     JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- Round-robin position per route ('default' or 'rule:<index>'): the member chosen last and
-- how many leads they got in the current round. Survives restarts and settings changes.
CREATE TABLE assignment_rr (
    workspace_id   UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    route_key      TEXT NOT NULL,
    last_member_id UUID,
    given          BIGINT NOT NULL DEFAULT 0,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, route_key)
);

-- Every automatic decision: why (cause: new_lead / reopened), which rule matched (NULL: the
-- default mode), the candidates in order with why each was skipped, and who was chosen.
CREATE TABLE assignment_decisions (
    id               UUID PRIMARY KEY,
    workspace_id     UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    lead_id          UUID NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    conversation_id  UUID REFERENCES conversations (id) ON DELETE SET NULL,
    cause            TEXT NOT NULL,
    rule             TEXT,
    reason           TEXT NOT NULL,
    candidates       JSONB NOT NULL DEFAULT '[]',
    chosen_member_id UUID,
    at               TIMESTAMPTZ NOT NULL
);
CREATE INDEX assignment_decisions_lead ON assignment_decisions (lead_id, at);
