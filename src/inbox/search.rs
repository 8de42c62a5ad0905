//! The search index over messages (text or media caption) and notes, and searching it.
//!
//! Each message or note has one `search_docs` row holding its words ([`terms`]: lower-cased,
//! split on anything neither a letter nor a digit, one space apart), written in the
//! transaction that writes the message or note: [`index_message`] is the one call the chat
//! write path makes (and an edit makes again to re-index), [`index_note`] the notes'. The
//! full-text index over those words is each backend's own (SQLite FTS5, PostgreSQL
//! `to_tsvector('simple', …)` with a GIN index); both see the same words, so a query means the
//! same on both: every word of `q` is a case-insensitive prefix of a word of the text.
//!
//! [`search`] answers `GET /search`: leads whose name or phone match first, then messages and
//! notes, newest first, in conversations the viewer sees (the policy's SQL predicate, in the
//! query itself).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Backend, Db, Tx};
use crate::error::{Error, Result};
use crate::policy::inbox::{ListStrategy, list_strategy};
use crate::policy::{CONV_VISIBLE, LEAD_VISIBLE, Viewer};
use crate::views::mention::{HitKind, SearchHit, SearchPage};
use crate::{bind_viewer, on_db, on_tx};

/// The words of `text` as the index keeps them: lower-cased runs of letters and digits.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// The indexed form of `text`: its [`words`], one space apart.
pub fn terms(text: &str) -> String {
    words(text).collect::<Vec<_>>().join(" ")
}

const INDEX_MESSAGE: &str = "INSERT INTO search_docs (workspace_id, conversation_id, message_id, created_at, terms) \
    SELECT workspace_id, conversation_id, id, created_at, $2 FROM messages WHERE id = $1 \
    ON CONFLICT (message_id) DO UPDATE SET terms = excluded.terms";

/// Indexes (or re-indexes, after an edit) message `message_id` with its searchable text (its
/// text, else its media caption; `None` or no words: not findable). Call it in the
/// transaction that writes the message.
pub async fn index_message(tx: &mut Tx, message_id: Uuid, text: Option<&str>) -> Result<()> {
    let terms = text.map(terms).unwrap_or_default();
    if terms.is_empty() {
        on_tx!(tx, |c| sqlx::query("DELETE FROM search_docs WHERE message_id = $1")
            .bind(message_id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        return Ok(());
    }
    on_tx!(tx, |c| sqlx::query(INDEX_MESSAGE)
        .bind(message_id)
        .bind(&terms)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

const INDEX_NOTE: &str = "INSERT INTO search_docs (workspace_id, conversation_id, note_id, created_at, terms) \
    SELECT workspace_id, conversation_id, id, created_at, $2 FROM notes WHERE id = $1 \
    ON CONFLICT (note_id) DO UPDATE SET terms = excluded.terms";

/// Indexes note `note_id` (written in the same transaction).
pub async fn index_note(tx: &mut Tx, note_id: Uuid, text: &str) -> Result<()> {
    let terms = terms(text);
    if terms.is_empty() {
        return Ok(());
    }
    on_tx!(tx, |c| sqlx::query(INDEX_NOTE).bind(note_id).bind(&terms).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

// ---- Searching ----

/// Longest `q`, in characters.
pub const MAX_QUERY: usize = 200;
/// Most words in `q`.
pub const MAX_WORDS: usize = 8;

/// A parsed `q`.
#[derive(Debug, Clone)]
pub struct Query {
    /// Its words (each matches as a prefix).
    pub words: Vec<String>,
    /// A `LIKE` pattern on lead phones when `q` is a phone number (3 digits or more, only
    /// digits and phone punctuation).
    phone: Option<String>,
}

/// Parses `q`: 400 `invalid_query` when shorter than 2 characters, longer than
/// [`MAX_QUERY`], with more than [`MAX_WORDS`] words, or without a letter or digit.
pub fn parse(q: &str) -> Result<Query> {
    let q = q.trim();
    let n = q.chars().count();
    if n < 2 {
        return Err(Error::bad_request("invalid_query", "q needs at least 2 characters"));
    }
    if n > MAX_QUERY || q.chars().any(char::is_control) {
        return Err(Error::bad_request(
            "invalid_query",
            format!("q must be at most {MAX_QUERY} characters, without control characters"),
        ));
    }
    let words: Vec<String> = words(q).collect();
    if words.is_empty() {
        return Err(Error::bad_request("invalid_query", "q needs a letter or a digit"));
    }
    if words.len() > MAX_WORDS {
        return Err(Error::bad_request("invalid_query", format!("q may hold at most {MAX_WORDS} words")));
    }
    let phone_like = q.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let phone = (phone_like && digits.len() >= 3).then(|| format!("%{digits}%"));
    Ok(Query { words, phone })
}

/// Where a page of results starts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Position {
    /// The first page: leads first.
    Start,
    /// After this lead (created_at, id), still among the leads.
    Leads(DateTime<Utc>, Uuid),
    /// After this index row (created_at, id), among messages and notes.
    Docs(DateTime<Utc>, i64),
}

fn bad_cursor() -> Error {
    Error::bad_request("invalid_cursor", "cursor is not one this server issued")
}

impl Position {
    fn decode(s: &str) -> Result<Position> {
        let mut parts = s.splitn(3, '.');
        let (kind, micros, id) = (parts.next(), parts.next(), parts.next());
        let at =
            micros.and_then(|m| m.parse().ok()).and_then(DateTime::from_timestamp_micros).ok_or_else(bad_cursor)?;
        match (kind, id) {
            (Some("l"), Some(id)) => Ok(Position::Leads(at, Uuid::parse_str(id).map_err(|_| bad_cursor())?)),
            (Some("m"), Some(id)) => Ok(Position::Docs(at, id.parse().map_err(|_| bad_cursor())?)),
            _ => Err(bad_cursor()),
        }
    }

    fn encode(self) -> Option<String> {
        match self {
            Position::Start => None,
            Position::Leads(at, id) => Some(format!("l.{}.{}", at.timestamp_micros(), id.simple())),
            Position::Docs(at, id) => Some(format!("m.{}.{id}", at.timestamp_micros())),
        }
    }
}

/// Lead matches: every word a prefix of a word of the name, or the phone holding the digits.
/// `$6` phone pattern, `$7`/`$8` keyset, `$9` limit, `$10..` the words as `% word%` patterns.
static LEADS: LazyLock<String> = LazyLock::new(|| leads_sql(""));

/// [`LEADS`] for a viewer of the narrow list strategy: among the leads they are named in
/// (assignee of the lead or of one of its chats, a granted label or explicit access on one),
/// the only ones they can see, instead of testing every lead of the workspace.
static LEADS_NAMED: LazyLock<String> = LazyLock::new(|| {
    leads_sql(
        "l.id IN (SELECT own.id FROM leads own WHERE own.workspace_id = $1 AND own.assignee_id = $2 \
         UNION SELECT c.lead_id FROM conversations c WHERE c.workspace_id = $1 AND c.assignee_id = $2 \
         UNION SELECT c.lead_id FROM conversation_labels cl JOIN member_labels ml ON ml.label_id = cl.label_id \
             JOIN conversations c ON c.id = cl.conversation_id WHERE ml.user_id = $2 \
         UNION SELECT c.lead_id FROM conversation_access ca JOIN conversations c ON c.id = ca.conversation_id \
             WHERE ca.user_id = $2) AND ",
    )
});

fn leads_sql(candidates: &str) -> String {
    let words: Vec<String> =
        (0..MAX_WORDS).map(|i| format!("(${n} IS NULL OR ' ' || lower(l.name) LIKE ${n})", n = 10 + i)).collect();
    format!(
        "SELECT l.id, l.name, l.phone, l.created_at, \
         (SELECT c.id FROM conversations c WHERE c.lead_id = l.id AND {conv} \
          ORDER BY c.updated_at DESC, c.id DESC LIMIT 1) AS conversation_id \
         FROM leads l WHERE {candidates}{lead} \
         AND (({words}) OR ($6 IS NOT NULL AND l.phone LIKE $6)) \
         AND ($7 IS NULL OR l.created_at < $7 OR (l.created_at = $7 AND l.id < $8)) \
         ORDER BY l.created_at DESC, l.id DESC LIMIT $9",
        conv = *CONV_VISIBLE,
        lead = *LEAD_VISIBLE,
        words = words.join(" AND "),
    )
}

#[derive(sqlx::FromRow)]
struct LeadRow {
    id: Uuid,
    name: String,
    phone: Option<String>,
    created_at: DateTime<Utc>,
    conversation_id: Option<Uuid>,
}

/// Messages and notes in visible conversations; `{matches}` is how a row is found to match and
/// `{from}` where rows come from. `$7`/`$8` keyset (always bound), `$9` limit.
fn docs_sql(from: &str, matches: &str) -> String {
    format!(
        "SELECT d.id, d.conversation_id, c.lead_id, l.name AS lead_name, d.message_id, d.note_id, d.created_at, \
         COALESCE(n.text, m.text, m.media ->> 'caption') AS body \
         FROM {from} JOIN conversations c ON c.id = d.conversation_id JOIN leads l ON l.id = c.lead_id \
         LEFT JOIN messages m ON m.id = d.message_id LEFT JOIN notes n ON n.id = d.note_id \
         WHERE {matches} AND d.workspace_id = $1 AND {conv} \
         AND (d.created_at, d.id) < ($7, $8) \
         ORDER BY d.created_at DESC, d.id DESC LIMIT $9",
        conv = *CONV_VISIBLE,
    )
}

/// Each word of `q` (`$10..`, as `% word%`, or NULL) a prefix of a word of `d.terms`: the
/// index's own test, row by row (the words are letters and digits only, lower-cased on both
/// sides, so `LIKE` means the same on both databases).
static WORDS_LIKE: LazyLock<String> = LazyLock::new(|| {
    let words: Vec<String> =
        (0..MAX_WORDS).map(|i| format!("(${n} IS NULL OR ' ' || d.terms LIKE ${n})", n = 10 + i)).collect();
    format!("({})", words.join(" AND "))
});

/// The conversations a viewer of the narrow list strategy is named in (their own, granted
/// labels, explicit access): the only ones such a viewer can see.
const NAMED_IN: &str = "d.conversation_id IN (SELECT c.id FROM conversations c WHERE c.workspace_id = $1 AND c.assignee_id = $2 \
     UNION SELECT cl.conversation_id FROM conversation_labels cl JOIN member_labels ml ON ml.label_id = cl.label_id \
     WHERE ml.user_id = $2 UNION SELECT ca.conversation_id FROM conversation_access ca WHERE ca.user_id = $2)";

/// Few matches: the full-text index finds them all (SQLite FTS5, `$6` a query of prefix
/// phrases `"word"* "word"*`), the visible ones are sorted.
/// (`CROSS JOIN` keeps SQLite's join order: from the matches, never a walk of every document
/// testing each against them.)
static DOCS_SQLITE: LazyLock<String> = LazyLock::new(|| {
    docs_sql("search_fts CROSS JOIN search_docs d", "search_fts MATCH $6 AND d.id = search_fts.rowid")
});
/// PostgreSQL: the GIN index's expression, `$6` a tsquery of prefixes (`word:* & word:*`).
static DOCS_POSTGRES: LazyLock<String> =
    LazyLock::new(|| docs_sql("search_docs d", "to_tsvector('simple', d.terms) @@ to_tsquery('simple', $6)"));
/// Many matches, a viewer who sees much: the workspace's documents newest first (the index
/// `search_docs_recent`), each tested by its words, until the page is full (`$6` is there
/// only to be bound alike).
static DOCS_RECENT: LazyLock<String> =
    LazyLock::new(|| docs_sql("search_docs d", &format!("$6 IS NOT NULL AND {}", *WORDS_LIKE)));
/// Many matches, a viewer who sees only where named: the documents of their conversations,
/// each tested by its words.
static DOCS_NAMED: LazyLock<String> =
    LazyLock::new(|| docs_sql("search_docs d", &format!("$6 IS NOT NULL AND {NAMED_IN} AND {}", *WORDS_LIKE)));

/// Up to this many matches the full-text index answers; past it the newest documents are
/// walked instead (a page of a common word is found in the first few thousand).
const FEW: i64 = 2_000;

/// How many documents match (up to `FEW + 1`), counted in the full-text index.
const COUNT_SQLITE: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM search_fts WHERE search_fts MATCH $1 LIMIT $2) x";
const COUNT_POSTGRES: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM search_docs d \
    WHERE to_tsvector('simple', d.terms) @@ to_tsquery('simple', $1) LIMIT $2) x";

#[derive(sqlx::FromRow)]
struct DocRow {
    id: i64,
    conversation_id: Uuid,
    lead_id: Uuid,
    lead_name: String,
    message_id: Option<Uuid>,
    note_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    body: Option<String>,
}

/// A page of what `v` finds for `q` after `cursor`: leads first, then messages and notes,
/// newest first, at most `limit`.
pub async fn search(db: &Db, v: &Viewer, q: &Query, cursor: Option<&str>, limit: i64) -> Result<SearchPage> {
    let from = cursor.map(Position::decode).transpose()?.unwrap_or(Position::Start);
    let mut results = Vec::new();
    let mut next = Position::Start;
    if let Position::Start | Position::Leads(..) = from {
        let after = match from {
            Position::Leads(at, id) => Some((at, id)),
            _ => None,
        };
        let mut rows = leads(db, v, q, after, limit + 1).await?;
        if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            let last = rows.last().expect("a full page");
            next = Position::Leads(last.created_at, last.id);
        }
        results.extend(rows.into_iter().map(|l| SearchHit {
            kind: HitKind::Lead,
            conversation_id: l.conversation_id,
            lead_id: l.id,
            snippet: match &l.phone {
                Some(p) => format!("{} · +{p}", l.name),
                None => l.name.clone(),
            },
            lead_name: l.name,
            message_id: None,
            created_at: l.created_at,
        }));
    }
    let room = limit - results.len() as i64;
    if next == Position::Start && room > 0 {
        let after = match from {
            Position::Docs(at, id) => Some((at, id)),
            _ => None,
        };
        let mut rows = docs(db, v, q, after, room + 1).await?;
        if rows.len() as i64 > room {
            rows.truncate(room as usize);
            let last = rows.last().expect("a full page");
            next = Position::Docs(last.created_at, last.id);
        }
        results.extend(rows.into_iter().map(|d| SearchHit {
            kind: if d.note_id.is_some() { HitKind::Note } else { HitKind::Message },
            conversation_id: Some(d.conversation_id),
            lead_id: d.lead_id,
            lead_name: d.lead_name,
            message_id: d.note_id.or(d.message_id),
            snippet: snippet(d.body.as_deref().unwrap_or_default(), &q.words),
            created_at: d.created_at,
        }));
    } else if next == Position::Start && room == 0 {
        // A page filled by the last leads: messages start on the next one.
        next = Position::Docs(far_future(), i64::MAX);
    }
    Ok(SearchPage { results, next_cursor: next.encode() })
}

/// Keyset position before everything.
fn far_future() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z").expect("valid time").with_timezone(&Utc)
}

async fn leads(db: &Db, v: &Viewer, q: &Query, after: Option<(DateTime<Utc>, Uuid)>, n: i64) -> Result<Vec<LeadRow>> {
    let patterns: Vec<Option<String>> = (0..MAX_WORDS).map(|i| q.words.get(i).map(|w| format!("% {w}%"))).collect();
    Ok(on_db!(db, |p| {
        let sql = if list_strategy(v) == ListStrategy::Narrow { LEADS_NAMED.as_str() } else { LEADS.as_str() };
        let mut query = bind_viewer!(sqlx::query_as(sql), v)
            .bind(q.phone.as_deref())
            .bind(after.map(|a| a.0))
            .bind(after.map(|a| a.1))
            .bind(n);
        for pat in &patterns {
            query = query.bind(pat.as_deref());
        }
        query.fetch_all(p).await
    })?)
}

async fn docs(db: &Db, v: &Viewer, q: &Query, after: Option<(DateTime<Utc>, i64)>, n: i64) -> Result<Vec<DocRow>> {
    let (indexed, matching, count) = match db.backend() {
        Backend::Sqlite => (
            DOCS_SQLITE.as_str(),
            q.words.iter().map(|w| format!("\"{w}\"*")).collect::<Vec<_>>().join(" "),
            COUNT_SQLITE,
        ),
        Backend::Postgres => (
            DOCS_POSTGRES.as_str(),
            q.words.iter().map(|w| format!("{w}:*")).collect::<Vec<_>>().join(" & "),
            COUNT_POSTGRES,
        ),
    };
    let matches: i64 = on_db!(db, |p| sqlx::query_scalar(count).bind(&matching).bind(FEW + 1).fetch_one(p).await)?;
    let sql = if matches <= FEW {
        indexed
    } else if list_strategy(v) == ListStrategy::Narrow {
        DOCS_NAMED.as_str()
    } else {
        DOCS_RECENT.as_str()
    };
    let patterns: Vec<Option<String>> = (0..MAX_WORDS).map(|i| q.words.get(i).map(|w| format!("% {w}%"))).collect();
    let (at, id) = after.unwrap_or((far_future(), i64::MAX));
    Ok(on_db!(db, |p| {
        let mut query = bind_viewer!(sqlx::query_as(sql), v).bind(&matching).bind(at).bind(id).bind(n);
        if sql != indexed {
            for pat in &patterns {
                query = query.bind(pat.as_deref());
            }
        }
        query.fetch_all(p).await
    })?)
}

/// Characters of context a snippet shows before the first match, and in all.
const BEFORE: usize = 40;
const SNIPPET: usize = 160;

/// Plain text of `body` around its first word that starts with one of `words` (the start of
/// `body` when none does), at most [`SNIPPET`] characters, `…` where it was cut.
pub fn snippet(body: &str, words: &[String]) -> String {
    let chars: Vec<char> = body.chars().collect();
    let mut hit = None;
    let mut i = 0;
    while i < chars.len() && hit.is_none() {
        if chars[i].is_alphanumeric() && (i == 0 || !chars[i - 1].is_alphanumeric()) {
            let end = (i..chars.len()).find(|&j| !chars[j].is_alphanumeric()).unwrap_or(chars.len());
            let word: String = chars[i..end].iter().collect::<String>().to_lowercase();
            if words.iter().any(|w| word.starts_with(w.as_str())) {
                hit = Some(i);
            }
            i = end;
        } else {
            i += 1;
        }
    }
    let start = hit.map_or(0, |h| h.saturating_sub(BEFORE));
    let end = (start + SNIPPET).min(chars.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.extend(&chars[start..end]);
    if end < chars.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_cased_runs_of_letters_and_digits() {
        assert_eq!(terms("Hello, WÖRLD! mail: ann@Example.com 1.5 x2"), "hello wörld mail ann example com 1 5 x2");
        assert_eq!(terms(" -- "), "");
    }

    #[test]
    fn short_long_and_wordless_queries_are_refused() {
        for q in ["", "a", " b ", "!!", &"x".repeat(MAX_QUERY + 1), "a b c d e f g h i"] {
            assert!(parse(q).is_err(), "{q:?}");
        }
        let q = parse("Invoice 12").unwrap();
        assert_eq!(q.words, ["invoice", "12"]);
        assert_eq!(q.phone, None);
        assert_eq!(parse("+44 20 7946").unwrap().phone.as_deref(), Some("%44207946%"));
    }

    #[test]
    fn cursors_round_trip() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        for p in [Position::Leads(at, Uuid::new_v4()), Position::Docs(at, 42)] {
            assert_eq!(Position::decode(&p.encode().unwrap()).unwrap(), p);
        }
        assert!(Position::decode("x.1.2").is_err());
        assert!(Position::decode("m.abc.2").is_err());
    }

    #[test]
    fn snippets_show_the_first_match() {
        let words = vec!["inv".to_owned()];
        assert_eq!(snippet("Your invoice is ready", &words), "Your invoice is ready");
        let long = format!("{} the invoice {}", "a".repeat(100), "b".repeat(300));
        let s = snippet(&long, &words);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("invoice"));
        assert_eq!(s.chars().count(), SNIPPET + 2);
        assert_eq!(snippet("no match here", &words), "no match here");
    }
}
