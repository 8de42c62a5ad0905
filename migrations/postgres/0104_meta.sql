-- Everything Meta sends besides messages and statuses, PostgreSQL dialect (the same statements
-- as migrations/sqlite/0104_meta.sql, in PostgreSQL's types): edits, revokes and pricing on
-- messages, number health, marketing preferences on leads, and message templates.

-- A message edited or deleted by its sender: the current text stays in messages.text, older
-- texts in edits (a JSON array of {"text","at"}, oldest first). pricing: the first pricing
-- object a status carried ({"category","billable","type"}).
ALTER TABLE messages ADD COLUMN edited_at TIMESTAMPTZ;
ALTER TABLE messages ADD COLUMN edits JSONB;
ALTER TABLE messages ADD COLUMN revoked_at TIMESTAMPTZ;
ALTER TABLE messages ADD COLUMN pricing JSONB;

-- A status's pricing, kept with it until its message is known.
ALTER TABLE message_statuses ADD COLUMN pricing JSONB;

-- Every edit and revoke seen, keyed by the event's own wamid (a redelivery records nothing).
-- One whose original (target_wamid) is not stored yet waits here and is applied, in time
-- order, when the original lands on that number.
CREATE TABLE message_changes (
    wamid        TEXT PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    number_id    UUID NOT NULL REFERENCES numbers (id) ON DELETE CASCADE,
    target_wamid TEXT NOT NULL,
    -- 'edit' or 'revoke'
    kind         TEXT NOT NULL,
    -- the new text (or caption) of an edit
    text         TEXT,
    at           TIMESTAMPTZ NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX message_changes_target ON message_changes (target_wamid);

-- Number health as Meta reports it: quality (GREEN, YELLOW, RED, FLAGGED, UNKNOWN), the
-- messaging limit tier (TIER_...), the account's status (active, restricted, ...).
-- templates_synced_at: when the WABA's templates were last read from the Graph API (NULL:
-- never; sends are then not checked against a list).
ALTER TABLE numbers ADD COLUMN quality_rating TEXT;
ALTER TABLE numbers ADD COLUMN messaging_limit_tier TEXT;
ALTER TABLE numbers ADD COLUMN account_status TEXT;
ALTER TABLE numbers ADD COLUMN templates_synced_at TIMESTAMPTZ;

-- The lead stopped marketing messages (user_preferences "stop"; "resume" clears it), and the
-- WhatsApp time of the preference applied last (an older one never undoes a newer one).
ALTER TABLE leads ADD COLUMN marketing_opt_out BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE leads ADD COLUMN marketing_pref_at TIMESTAMPTZ;

-- Message templates of a WABA, per workspace, as the Graph API lists them and template
-- webhooks change them. language as the Graph API spells it (en_US).
CREATE TABLE message_templates (
    workspace_id    UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    waba_id         TEXT NOT NULL,
    name            TEXT NOT NULL,
    language        TEXT NOT NULL,
    template_id     TEXT,
    category        TEXT NOT NULL,
    status          TEXT NOT NULL,
    quality         TEXT,
    components      JSONB NOT NULL DEFAULT '[]',
    rejected_reason TEXT,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, waba_id, name, language)
);
