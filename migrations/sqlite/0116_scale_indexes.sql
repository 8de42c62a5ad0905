-- Indexes for the activity timeline across leads and for search at scale (1 M messages,
-- 100 k leads; see the scale benchmark in docs/benchmarks.md). The same in both dialects.

-- GET /activities?member_id=…: one member's activities newest first, without walking everyone's
-- (activities_workspace serves the unfiltered timeline).
CREATE INDEX activities_member ON activities (workspace_id, member_id, created_at, seq);

-- GET /activities?type=…: one kind newest first (a rare kind, e.g. calls, no longer walks the
-- whole timeline).
CREATE INDEX activities_type ON activities (workspace_id, type, created_at, seq);

-- GET /search with a common word: the workspace's messages and notes newest first, each tested
-- by its words until a page is full (src/inbox/search.rs; few matches go through the full-text
-- index instead).
CREATE INDEX search_docs_recent ON search_docs (workspace_id, created_at, id);
