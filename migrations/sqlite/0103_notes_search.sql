-- Internal notes in a chat, the mentions they make, and the search index over messages and
-- notes. SQLite dialect; migrations/postgres/0103_notes_search.sql is the same in PostgreSQL's
-- types, except for the full-text index itself, which is each backend's own (see search_docs).

-- A note members write inside a conversation: never sent to Meta, and it changes nothing of
-- the conversation (window, unread count, last message, sessions). It shows among the
-- conversation's messages in time order (created_at, then seq). Written only by src/inbox/.
CREATE TABLE notes (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              BLOB NOT NULL UNIQUE,
    workspace_id    BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    author_id       BLOB NOT NULL REFERENCES users (id),
    text            TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX notes_conversation ON notes (conversation_id, created_at, seq);

-- A member mentioned in a note (one row per note and member), read or not. The mentions list
-- walks a member's rows newest first.
CREATE TABLE mentions (
    id              BLOB PRIMARY KEY,
    workspace_id    BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    note_id         BLOB NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    by_id           BLOB NOT NULL REFERENCES users (id),
    created_at      TEXT NOT NULL,
    read_at         TEXT,
    UNIQUE (note_id, user_id)
);
CREATE INDEX mentions_user ON mentions (user_id, created_at, id);

-- The search index: one row per message (its text or media caption) and per note, written in
-- the transaction that writes the message or note (src/inbox/search.rs). terms holds the
-- words, lower-cased, separated by one space (the server splits on anything neither a letter
-- nor a digit), so both backends see the same words. The full-text index over terms is each
-- backend's own: on SQLite the FTS5 table search_fts (external content, kept by triggers), on
-- PostgreSQL a GIN index over to_tsvector('simple', terms).
CREATE TABLE search_docs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id    BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id      BLOB UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
    note_id         BLOB UNIQUE REFERENCES notes (id) ON DELETE CASCADE,
    created_at      TEXT NOT NULL,
    terms           TEXT NOT NULL
);
CREATE INDEX search_docs_conversation ON search_docs (conversation_id);

-- Words as written (no diacritics folded: PostgreSQL's 'simple' configuration folds none).
CREATE VIRTUAL TABLE search_fts USING fts5 (
    terms,
    content = 'search_docs',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 0'
);

CREATE TRIGGER search_fts_insert AFTER INSERT ON search_docs BEGIN
    INSERT INTO search_fts (rowid, terms) VALUES (NEW.id, NEW.terms);
END;

CREATE TRIGGER search_fts_delete AFTER DELETE ON search_docs BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms) VALUES ('delete', OLD.id, OLD.terms);
END;

CREATE TRIGGER search_fts_update AFTER UPDATE OF terms ON search_docs BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms) VALUES ('delete', OLD.id, OLD.terms);
    INSERT INTO search_fts (rowid, terms) VALUES (NEW.id, NEW.terms);
END;

-- The messages stored so far, oldest first: their text or caption, lower-cased (FTS5's
-- tokenizer splits the words itself).
INSERT INTO search_docs (workspace_id, conversation_id, message_id, created_at, terms)
SELECT workspace_id, conversation_id, id, created_at, lower(COALESCE(text, media ->> 'caption'))
FROM messages WHERE COALESCE(text, media ->> 'caption') IS NOT NULL ORDER BY seq;
