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

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Backend, Db, Tx};
use crate::error::{Error, Result};
use crate::policy::inbox::{ListStrategy, NAMED_CONVERSATIONS, NAMED_LEADS, list_strategy};
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

/// A new message's search document.
pub struct Doc<'a> {
    pub message_id: Uuid,
    pub workspace_id: Uuid,
    pub conversation_id: Uuid,
    pub at: DateTime<Utc>,
    /// Its searchable text (see [`index_message`]).
    pub text: Option<&'a str>,
}

/// Indexes messages inserted in this transaction, in one statement ([`index_message`] for many).
pub async fn index_new_messages(tx: &mut Tx, docs: &[Doc<'_>]) -> Result<()> {
    let docs: Vec<(&Doc, String)> =
        docs.iter().map(|d| (d, d.text.map(terms).unwrap_or_default())).filter(|(_, t)| !t.is_empty()).collect();
    if docs.is_empty() {
        return Ok(());
    }
    on_tx!(tx, |c| {
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO search_docs (workspace_id, conversation_id, message_id, created_at, terms) ",
        );
        qb.push_values(&docs, |mut b, (d, terms)| {
            b.push_bind(d.workspace_id)
                .push_bind(d.conversation_id)
                .push_bind(d.message_id)
                .push_bind(d.at)
                .push_bind(terms);
        });
        qb.push(" ON CONFLICT (message_id) DO UPDATE SET terms = excluded.terms");
        qb.build().execute(c).await.map(|r| r.rows_affected())
    })?;
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
    /// Its digits, when `q` is a phone number (3 digits or more, only digits and phone
    /// punctuation): leads whose phone holds them match.
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
    let phone = (phone_like && digits.len() >= 3).then_some(digits);
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

/// Where a lead search takes its candidates from.
#[derive(Debug, Clone, PartialEq)]
enum LeadsFrom {
    /// The workspace's newest [`WALK`] leads (from where the page starts): enough to fill a
    /// page when the words are common, so the index is asked only when they are not.
    Recent,
    /// SQLite: the matches of this query in the trigram index `lead_fts`.
    Index(String),
    /// PostgreSQL: the matches in the trigram indexes (migration 0117).
    Trigrams,
    /// Every lead of the workspace (SQLite, when no word is long enough for the index).
    Workspace,
    /// The leads a narrow viewer is named in ([`NAMED_LEADS`]).
    Named,
}

/// Leads or documents a search walks newest first before it asks the index: a word in one
/// lead or document of 40 (of 200) fills a page from them; rarer words come from the index,
/// which then holds at most about a page × 40 (200) of every 1,000 … matches.
const WALK: i64 = 2_000;
const WALK_DOCS: i64 = 10_000;

/// A value bound to a statement built at run time, in order after the viewer's `$1..$5`.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Text(String),
    Time(DateTime<Utc>),
    Id(Uuid),
    /// A search document's id.
    Id64(i64),
    Int(i64),
}

/// The values of a statement built at run time; [`Params::push`] names the next one.
#[derive(Default)]
struct Params(Vec<Arg>);

impl Params {
    fn push(&mut self, a: Arg) -> String {
        self.0.push(a);
        format!("${}", 5 + self.0.len())
    }

    /// Every word of `q` a prefix of a word of `text` (a column or expression, lower-cased): a
    /// word is what follows a space, `' ' || text LIKE '% word%'`.
    fn words(&mut self, q: &Query, text: &str) -> String {
        let tests: Vec<String> =
            q.words.iter().map(|w| format!("' ' || {text} LIKE {}", self.push(Arg::Text(format!("% {w}%"))))).collect();
        format!("({})", tests.join(" AND "))
    }
}

/// Binds an [`Arg`] to a query of either database.
macro_rules! bind_arg {
    ($arg:expr, $query:expr) => {
        match $arg {
            Arg::Text(s) => $query.bind(s),
            Arg::Time(t) => $query.bind(t),
            Arg::Id(id) => $query.bind(id),
            Arg::Id64(i) | Arg::Int(i) => $query.bind(i),
        }
    };
}

/// The lead search: every word of `q` a prefix of a word of the name (a word: what follows a
/// space, `' ' || lower(name) LIKE '% word%'`), or the phone holding `q`'s digits; the
/// viewer's leads only; newest first after `after`; at most `n`. The text holds just the
/// tests `q` needs, so each is a plain comparison an index can serve.
fn leads_statement(from: &LeadsFrom, q: &Query, after: Option<(DateTime<Utc>, Uuid)>, n: i64) -> (String, Vec<Arg>) {
    let mut p = Params::default();
    let keyset = |p: &mut Params, t: &str| match after {
        Some((at, id)) => {
            format!(" AND ({t}.created_at, {t}.id) < ({}, {})", p.push(Arg::Time(at)), p.push(Arg::Id(id)))
        }
        None => String::new(),
    };
    let (source, candidates) = match from {
        LeadsFrom::Workspace => ("leads l".to_owned(), String::new()),
        LeadsFrom::Named => ("leads l".to_owned(), format!("l.id IN ({NAMED_LEADS}) AND ")),
        LeadsFrom::Recent => (
            format!(
                "(SELECT * FROM leads r WHERE r.workspace_id = $1{} ORDER BY r.created_at DESC, r.id DESC LIMIT {WALK}) l",
                keyset(&mut p, "r")
            ),
            String::new(),
        ),
        // CROSS JOIN keeps SQLite's join order: from the index's matches.
        LeadsFrom::Index(fts) => (
            "lead_fts CROSS JOIN lead_search_ids s CROSS JOIN leads l".to_owned(),
            format!(
                "lead_fts MATCH {} AND s.id = lead_fts.rowid AND l.id = s.lead_id AND ",
                p.push(Arg::Text(fts.clone()))
            ),
        ),
        // OFFSET 0 keeps the matches a query of their own, which PostgreSQL takes from the
        // trigram indexes.
        LeadsFrom::Trigrams => (
            format!("(SELECT * FROM leads r WHERE r.workspace_id = $1 AND {} OFFSET 0) l", lead_test(&mut p, q, "r")),
            String::new(),
        ),
    };
    // The trigram matches were tested inside their own query.
    let test = if *from == LeadsFrom::Trigrams { "TRUE".to_owned() } else { lead_test(&mut p, q, "l") };
    let keyset = keyset(&mut p, "l");
    let limit = p.push(Arg::Int(n));
    let sql = format!(
        "SELECT l.id, l.name, l.phone, l.created_at, \
         (SELECT c.id FROM conversations c WHERE c.lead_id = l.id AND {conv} \
          ORDER BY c.updated_at DESC, c.id DESC LIMIT 1) AS conversation_id \
         FROM {source} WHERE {candidates}{lead} AND {test}{keyset} \
         ORDER BY l.created_at DESC, l.id DESC LIMIT {limit}",
        conv = *CONV_VISIBLE,
        lead = *LEAD_VISIBLE,
    );
    (sql, p.0)
}

/// Every word of `q` a prefix of a word of lead `t`'s name, or its phone holding `q`'s digits.
fn lead_test(p: &mut Params, q: &Query, t: &str) -> String {
    let test = p.words(q, &format!("lower({t}.name)"));
    match &q.phone {
        Some(digits) => format!("({test} OR {t}.phone LIKE {})", p.push(Arg::Text(format!("%{digits}%")))),
        None => test,
    }
}

/// SQLite: `q` as a query of the trigram index `lead_fts`, finding every lead the search's
/// tests accept and few others: `name : " word"` for each word of two characters or more (a
/// phrase of three with its space), `phone : "digits"`. `None` when no word is long enough
/// (the index would have to return everything).
fn lead_fts_query(q: &Query) -> Option<String> {
    let words: Vec<String> =
        q.words.iter().filter(|w| w.chars().count() >= 2).map(|w| format!("name : \" {w}\"")).collect();
    if words.is_empty() {
        return None;
    }
    let words = format!("({})", words.join(" AND "));
    Some(match &q.phone {
        Some(digits) => format!("{words} OR phone : \"{digits}\""),
        None => words,
    })
}

#[derive(sqlx::FromRow)]
struct LeadRow {
    id: Uuid,
    name: String,
    phone: Option<String>,
    created_at: DateTime<Utc>,
    conversation_id: Option<Uuid>,
}

/// Where a search of messages and notes takes its candidates from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DocsFrom {
    /// The workspace's newest [`WALK_DOCS`] documents (from where the page starts), each
    /// tested by its words: enough to fill a page when the words are common.
    Recent,
    /// The full-text index's matches of the query's longest word (SQLite FTS5, PostgreSQL's
    /// GIN index), tested by every word and sorted.
    Index,
    /// A viewer who sees only where named, many matches: the documents of their
    /// conversations ([`NAMED_CONVERSATIONS`]), each tested by its words.
    Named,
}

/// Messages and notes in conversations the viewer sees, every word of `q` a prefix of a word
/// of the document (`' ' || terms LIKE '% word%'`: the words are letters and digits only,
/// lower-cased on both sides, so `LIKE` means the same on both databases), newest first after
/// `after`, at most `n`. `index` is the full-text query of [`DocsFrom::Index`].
fn docs_statement(
    backend: Backend,
    from: DocsFrom,
    q: &Query,
    index: &str,
    after: (DateTime<Utc>, i64),
    n: i64,
) -> (String, Vec<Arg>) {
    let mut p = Params::default();
    let (source, test) = match (from, backend) {
        (DocsFrom::Recent, _) => {
            let walk = format!(
                "(SELECT * FROM search_docs s WHERE s.workspace_id = $1 AND (s.created_at, s.id) < ({}, {}) \
                 ORDER BY s.created_at DESC, s.id DESC LIMIT {WALK_DOCS}) d",
                p.push(Arg::Time(after.0)),
                p.push(Arg::Id64(after.1)),
            );
            (walk, p.words(q, "d.terms"))
        }
        // CROSS JOIN keeps SQLite's join order: from the matches, never a walk of every
        // document testing each against them.
        (DocsFrom::Index, Backend::Sqlite) => {
            let matching = format!("search_fts MATCH {} AND d.id = search_fts.rowid", p.push(Arg::Text(index.into())));
            ("search_fts CROSS JOIN search_docs d".to_owned(), format!("{matching} AND {}", p.words(q, "d.terms")))
        }
        // OFFSET 0 keeps the matches a query of their own, which PostgreSQL takes from the GIN
        // index whatever it guesses of the words' tests.
        (DocsFrom::Index, Backend::Postgres) => {
            let matching = format!(
                "(SELECT * FROM search_docs s WHERE to_tsvector('simple', s.terms) @@ to_tsquery('simple', {}) \
                 AND {} OFFSET 0) d",
                p.push(Arg::Text(index.into())),
                p.words(q, "s.terms"),
            );
            (matching, "TRUE".to_owned())
        }
        // From their conversations (CROSS JOIN keeps SQLite's order), each one's documents by
        // `search_docs_conversation`.
        (DocsFrom::Named, Backend::Sqlite) => (
            format!("({NAMED_CONVERSATIONS}) nc CROSS JOIN search_docs d"),
            format!("d.conversation_id = nc.id AND {}", p.words(q, "d.terms")),
        ),
        // PostgreSQL: the same order through a lateral query of its own (OFFSET 0), whatever
        // it guesses of the words' tests.
        (DocsFrom::Named, Backend::Postgres) => (
            format!(
                "({NAMED_CONVERSATIONS}) nc CROSS JOIN LATERAL \
                 (SELECT * FROM search_docs s WHERE s.conversation_id = nc.id OFFSET 0) d"
            ),
            p.words(q, "d.terms"),
        ),
    };
    let keyset = format!("(d.created_at, d.id) < ({}, {})", p.push(Arg::Time(after.0)), p.push(Arg::Id64(after.1)));
    let limit = p.push(Arg::Int(n));
    // The page is chosen first, and only its rows read their lead and text.
    let sql = format!(
        "SELECT d.id, d.conversation_id, d.lead_id, l.name AS lead_name, d.message_id, d.note_id, d.created_at, \
         COALESCE(n.text, m.text, m.media ->> 'caption') AS body \
         FROM (SELECT d.id, d.conversation_id, c.lead_id, d.message_id, d.note_id, d.created_at \
               FROM {source} JOIN conversations c ON c.id = d.conversation_id \
               WHERE {test} AND d.workspace_id = $1 AND {conv} AND {keyset} \
               ORDER BY d.created_at DESC, d.id DESC LIMIT {limit}) d \
         JOIN leads l ON l.id = d.lead_id \
         LEFT JOIN messages m ON m.id = d.message_id LEFT JOIN notes n ON n.id = d.note_id \
         ORDER BY d.created_at DESC, d.id DESC",
        conv = *CONV_VISIBLE,
    );
    (sql, p.0)
}

/// For a viewer who sees only where named: up to this many matches the full-text index
/// answers; past it their conversations' documents are tested instead.
const FEW: i64 = 2_000;

/// How many documents match (up to `FEW + 1`), counted in the full-text index.
const COUNT_SQLITE: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM search_fts WHERE search_fts MATCH $1 LIMIT $2) x";
const COUNT_POSTGRES: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM search_docs d \
    WHERE to_tsvector('simple', d.terms) @@ to_tsquery('simple', $1) LIMIT $2) x";

/// The newest documents of the workspace a narrow viewer's search tests first, to tell how
/// common its words are.
const SAMPLE: i64 = 1_000;
/// Matches among the [`SAMPLE`] that make the words common: in a workspace of a million
/// documents, about 3,000 of them match, more than [`FEW`].
const COMMON_IN_SAMPLE: i64 = 3;

/// How many of the workspace's newest [`SAMPLE`] documents hold every word of `q`.
async fn sampled(db: &Db, v: &Viewer, q: &Query) -> Result<i64> {
    let mut p = Params::default();
    let test = p.words(q, "d.terms");
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT s.terms FROM search_docs s WHERE s.workspace_id = $1 \
         ORDER BY s.created_at DESC, s.id DESC LIMIT {SAMPLE}) d WHERE {test}"
    );
    let count: Vec<(i64,)> = fetch(db, v, &sql, &p.0).await?;
    Ok(count.first().map_or(0, |c| c.0))
}

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
    if list_strategy(v) == ListStrategy::Narrow {
        return fetch_leads(db, v, &LeadsFrom::Named, q, after, n).await;
    }
    let rows = fetch_leads(db, v, &LeadsFrom::Recent, q, after, n).await?;
    if rows.len() as i64 >= n {
        return Ok(rows);
    }
    let from = match db.backend() {
        Backend::Sqlite => lead_fts_query(q).map_or(LeadsFrom::Workspace, LeadsFrom::Index),
        Backend::Postgres => LeadsFrom::Trigrams,
    };
    fetch_leads(db, v, &from, q, after, n).await
}

async fn fetch_leads(
    db: &Db,
    v: &Viewer,
    from: &LeadsFrom,
    q: &Query,
    after: Option<(DateTime<Utc>, Uuid)>,
    n: i64,
) -> Result<Vec<LeadRow>> {
    let (sql, args) = leads_statement(from, q, after, n);
    fetch(db, v, &sql, &args).await
}

async fn docs(db: &Db, v: &Viewer, q: &Query, after: Option<(DateTime<Utc>, i64)>, n: i64) -> Result<Vec<DocRow>> {
    // The index is asked for the longest word only (the likeliest to be rare: `sku-1234`
    // asks for `1234`, not for `sku` in a third of the messages as well); every word is then
    // tested on what it returns.
    let longest = q.words.iter().max_by_key(|w| w.chars().count()).expect("a parsed query has a word");
    let index = match db.backend() {
        Backend::Sqlite => format!("\"{longest}\"*"),
        Backend::Postgres => format!("{longest}:*"),
    };
    let after = after.unwrap_or((far_future(), i64::MAX));
    if list_strategy(v) == ListStrategy::Narrow {
        // Their documents are few of the newest: the index when the word is rare, else theirs.
        // Common words are told by the newest documents, without counting their matches in
        // the index (PostgreSQL's GIN index builds a bitmap of them all: 25-40 ms for a word
        // in 200,000 of a million documents).
        let from = if sampled(db, v, q).await? >= COMMON_IN_SAMPLE {
            DocsFrom::Named
        } else {
            let count = match db.backend() {
                Backend::Sqlite => COUNT_SQLITE,
                Backend::Postgres => COUNT_POSTGRES,
            };
            let matches: i64 = on_db!(db, |p| sqlx::query_scalar(count).bind(&index).bind(FEW + 1).fetch_one(p).await)?;
            if matches <= FEW { DocsFrom::Index } else { DocsFrom::Named }
        };
        return fetch_docs(db, v, from, q, &index, after, n).await;
    }
    let rows = fetch_docs(db, v, DocsFrom::Recent, q, &index, after, n).await?;
    if rows.len() as i64 >= n {
        return Ok(rows);
    }
    fetch_docs(db, v, DocsFrom::Index, q, &index, after, n).await
}

async fn fetch_docs(
    db: &Db,
    v: &Viewer,
    from: DocsFrom,
    q: &Query,
    index: &str,
    after: (DateTime<Utc>, i64),
    n: i64,
) -> Result<Vec<DocRow>> {
    let (sql, args) = docs_statement(db.backend(), from, q, index, after, n);
    fetch(db, v, &sql, &args).await
}

/// Runs a statement built here (`$1..$5` the viewer, then `args`). PostgreSQL gets it
/// unprepared, so that it is planned with its values (how rare the words are).
async fn fetch<R>(db: &Db, v: &Viewer, sql: &str, args: &[Arg]) -> Result<Vec<R>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    R: Send + Unpin,
{
    let prepared = db.backend() == Backend::Sqlite;
    Ok(on_db!(db, |p| {
        let mut query = bind_viewer!(sqlx::query_as(sql), v);
        for arg in args {
            query = bind_arg!(arg, query);
        }
        query.persistent(prepared).fetch_all(p).await
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
        assert_eq!(parse("+44 20 7946").unwrap().phone.as_deref(), Some("44207946"));
    }

    #[test]
    fn lead_searches_hold_only_the_tests_a_query_needs() {
        let q = parse("Ann 5").unwrap();
        assert_eq!(lead_fts_query(&q).as_deref(), Some("(name : \" ann\")"), "a one-character word is no phrase");
        let q = parse("+44 20 7946").unwrap();
        assert_eq!(
            lead_fts_query(&q).as_deref(),
            Some("(name : \" 44\" AND name : \" 20\" AND name : \" 7946\") OR phone : \"44207946\"")
        );
        assert_eq!(lead_fts_query(&parse("a b").unwrap()), None, "nothing the index can look up");

        let (sql, args) = leads_statement(&LeadsFrom::Workspace, &parse("ann").unwrap(), None, 11);
        assert!(sql.contains("' ' || lower(l.name) LIKE $6") && sql.ends_with("LIMIT $7"), "{sql}");
        assert!(!sql.contains("IS NULL OR"), "{sql}");
        assert_eq!(args, [Arg::Text("% ann%".into()), Arg::Int(11)]);

        let at = DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap();
        let id = Uuid::new_v4();
        let (sql, args) = leads_statement(&LeadsFrom::Index("x".into()), &parse("447 12").unwrap(), Some((at, id)), 3);
        assert!(sql.contains("lead_fts MATCH $6") && sql.contains("l.phone LIKE $9"), "{sql}");
        assert!(sql.contains("(l.created_at, l.id) < ($10, $11)") && sql.ends_with("LIMIT $12"), "{sql}");
        assert_eq!(args.len(), 7);
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
