-- Searching leads by name or phone (GET /search: leads first) through an index instead of
-- testing every lead of the workspace (~40 ms at 100 k leads, on every search).
--
-- Trigram indexes (pg_trgm, in PostgreSQL's contrib and trusted since PostgreSQL 13: a
-- database owner may create it) serve the search's own tests as they are written:
-- `' ' || lower(name) LIKE '% ann%'` (a word of the name starting with "ann") and
-- `phone LIKE '%4477%'`. The planner sees each search's words (src/inbox/search.rs sends the
-- statement unprepared), so a rare word goes through the index and a common one walks the
-- newest leads instead.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX leads_name_trgm ON leads USING GIN ((' ' || lower(name)) gin_trgm_ops);
CREATE INDEX leads_phone_trgm ON leads USING GIN (phone gin_trgm_ops);
