//! Reading a lead's timeline: the activities of a lead, newest first, leaving out those of
//! conversations the viewer can't see.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::db::{self, Backend, Db, cursor};
use crate::error::{Error, Result};
use crate::policy::inbox::{ListStrategy, NAMED_LEADS, list_strategy};
use crate::policy::{CONV_VISIBLE, LEAD_VISIBLE, Viewer};
use crate::views::timeline::{ActivitiesPage, ActivityKind, ActivityRow as ActivityOut, TimelineEntry, TimelinePage};
use crate::{bind_viewer, on_db};

#[derive(Debug, sqlx::FromRow)]
struct ActivityRow {
    seq: i64,
    id: Uuid,
    conversation_id: Option<Uuid>,
    #[sqlx(rename = "type")]
    kind: ActivityKind,
    member_id: Option<Uuid>,
    data: sqlx::types::Json<Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A WhatsApp session's `data` with `open` as of `now`.
fn with_open(kind: ActivityKind, mut data: Value, now: DateTime<Utc>) -> Value {
    if kind == ActivityKind::WhatsappSession
        && let (Some(end), Some(gap)) =
            (data["ended_at"].as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok()), data["gap_secs"].as_i64())
    {
        data["open"] = Value::Bool((now - end).num_seconds() <= gap);
    }
    data
}

impl ActivityRow {
    fn entry(self, now: DateTime<Utc>) -> TimelineEntry {
        let data = with_open(self.kind, self.data.0, now);
        TimelineEntry {
            id: self.id,
            kind: self.kind,
            member_id: self.member_id,
            conversation_id: self.conversation_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
            data,
        }
    }
}

/// The filters and position of a timeline page.
pub struct Filter {
    pub kind: Option<ActivityKind>,
    pub member: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<(DateTime<Utc>, i64)>,
    pub limit: i64,
}

static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT a.seq, a.id, a.conversation_id, a.type, a.member_id, a.data, a.created_at, a.updated_at FROM activities a \
         WHERE a.lead_id = $6 \
         AND (a.conversation_id IS NULL OR EXISTS (SELECT 1 FROM conversations c WHERE c.id = a.conversation_id AND {})) \
         AND ($7 IS NULL OR a.type = $7) AND ($8 IS NULL OR a.member_id = $8) \
         AND ($9 IS NULL OR a.created_at >= $9) AND ($10 IS NULL OR a.created_at < $10) \
         AND ($11 IS NULL OR a.created_at < $11 OR (a.created_at = $11 AND a.seq < $12)) \
         ORDER BY a.created_at DESC, a.seq DESC LIMIT $13",
        *CONV_VISIBLE
    )
});

/// A lead whose timeline `v` may read.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct TimelineOf {
    pub workspace_id: Uuid,
    pub lead_id: Uuid,
}

static LEAD: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT l.workspace_id, l.id AS lead_id FROM leads l WHERE {} AND l.id = $6", *LEAD_VISIBLE)
});

/// The lead `id` when `v` sees it (the policy's lead predicate); 404 otherwise.
pub async fn visible_lead(db: &Db, v: &Viewer, id: Uuid) -> Result<TimelineOf> {
    on_db!(db, |p| bind_viewer!(sqlx::query_as(LEAD.as_str()), v).bind(id).fetch_optional(p).await)?
        .ok_or_else(Error::not_found)
}

/// A page of lead `lead_id`'s timeline (the caller checked that `v` sees the lead).
pub async fn page(db: &Db, v: &Viewer, lead_id: Uuid, f: &Filter, now: DateTime<Utc>) -> Result<TimelinePage> {
    let mut rows: Vec<ActivityRow> = on_db!(db, |p| bind_viewer!(sqlx::query_as(LIST.as_str()), v)
        .bind(lead_id)
        .bind(f.kind)
        .bind(f.member)
        .bind(f.from)
        .bind(f.to)
        .bind(f.after.map(|a| a.0))
        .bind(f.after.map(|a| a.1))
        .bind(f.limit + 1)
        .fetch_all(p)
        .await)?;
    let next_cursor = if rows.len() as i64 > f.limit {
        rows.truncate(f.limit as usize);
        rows.last().map(|a| cursor::encode_seq(a.created_at, a.seq))
    } else {
        None
    };
    Ok(TimelinePage { activities: rows.into_iter().map(|a| a.entry(now)).collect(), next_cursor })
}

/// The filters and position of a page of the timeline across leads.
#[derive(Debug, Default)]
pub struct AcrossFilter {
    pub kind: Option<ActivityKind>,
    pub member: Option<Uuid>,
    pub lead: Option<Uuid>,
    pub number: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<(DateTime<Utc>, i64)>,
    pub limit: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct AcrossRow {
    seq: i64,
    id: Uuid,
    lead_id: Uuid,
    lead_name: String,
    conversation_id: Option<Uuid>,
    #[sqlx(rename = "type")]
    kind: ActivityKind,
    member_id: Option<Uuid>,
    data: sqlx::types::Json<Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Whether the viewer sees it (the policy's predicates, [`VISIBLE`]) and the chat filter
    /// holds.
    kept: bool,
    /// The last activity a [`walk_sql`] reads: the timeline goes on past it, untested.
    at_cap: bool,
}

/// The filters of `f` over activities aliased `a` (`$6` on, in the order of
/// [`AcrossFilter`]'s fields), each a plain comparison but the chat's number, and the page
/// position as a row value; then the placeholder of the row limit, bound last.
fn across_filters(f: &AcrossFilter) -> Filters {
    let mut n = 5;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    let mut filters = String::new();
    if f.kind.is_some() {
        filters += &format!(" AND a.type = {}", next());
    }
    if f.member.is_some() {
        filters += &format!(" AND a.member_id = {}", next());
    }
    if f.lead.is_some() {
        filters += &format!(" AND a.lead_id = {}", next());
    }
    let number = match f.number {
        Some(_) => format!(
            " AND EXISTS (SELECT 1 FROM conversations n WHERE n.id = a.conversation_id AND n.number_id = {})",
            next()
        ),
        None => String::new(),
    };
    if f.from.is_some() {
        filters += &format!(" AND a.created_at >= {}", next());
    }
    if f.to.is_some() {
        filters += &format!(" AND a.created_at < {}", next());
    }
    if f.after.is_some() {
        filters += &format!(" AND (a.created_at, a.seq) < ({}, {})", next(), next());
    }
    Filters { filters, number, limit: next() }
}

/// [`across_filters`]' text: the tests of the activity's own columns and position, the chat
/// filter's test (a lookup of the activity's conversation), and the limit's placeholder.
struct Filters {
    filters: String,
    number: String,
    limit: String,
}

/// Activities of the viewer's workspace newest first, kept in SQL to those on leads the
/// viewer sees (the policy's lead predicate) and, for an activity of a conversation, to
/// conversations they see (its conversation predicate): the same rules as single reads.
///
/// The text holds only the filters given ([`across_filters`]), so both databases walk an
/// index newest first from where the page starts (`activities_workspace`, or with a member
/// or type filter the indexes of migration 0116) instead of testing `$n IS NULL OR …` on
/// every row. The activity's conversation is a join, not an `EXISTS` beside `IS NULL` (which
/// PostgreSQL answered by hashing every conversation of the workspace first).
///
/// Every row it returns is kept (`kept` is true).
fn across_sql(f: &AcrossFilter) -> String {
    let Filters { filters, number, limit } = across_filters(f);
    format!(
        "SELECT {COLUMNS}, TRUE AS kept, FALSE AS at_cap FROM activities a LEFT JOIN conversations c ON c.id = a.conversation_id \
         WHERE a.workspace_id = $1{filters}{number} AND {visible} ORDER BY a.created_at DESC, a.seq DESC LIMIT {limit}",
        visible = *VISIBLE,
    )
}

/// The page's rows for a viewer who sees only what names them (the policy's narrow list
/// strategy) when their leads are rare in the timeline (a [`walk_sql`] found less than a page)
/// or for one lead: the newest `$n` activities of the leads they are named in (assignee of the
/// lead or of one of its chats, a granted label or explicit access on one of its chats), chosen
/// from `activities_lead` alone, then the policy's predicates and the chat filter on those rows
/// only, each row saying whether it is kept. It reads every one of their leads' timelines in
/// that index, however few activities the page needs; testing every activity of their leads
/// before sorting cost ~20 ms (SQLite) to ~100 ms (PostgreSQL) for a member named in 1,700 of
/// 100,000 chats.
fn narrow_sql(f: &AcrossFilter) -> String {
    let Filters { filters, number, limit } = across_filters(f);
    // The candidates are chosen from `activities_lead` alone (migration 0118 holds the columns
    // the filters test); they are of the workspace's leads (`NAMED_LEADS` is), and the policy's
    // predicates check the workspace again. The chat's number is tested with the policy, on the
    // candidates only (as a filter of the candidates, PostgreSQL hashed every conversation).
    // CROSS JOIN keeps SQLite's join order: from the page.
    format!(
        "SELECT {COLUMNS}, {visible}{number} AS kept, FALSE AS at_cap \
         FROM (SELECT a.seq FROM activities a WHERE a.lead_id IN ({NAMED_LEADS}){filters} \
               ORDER BY a.created_at DESC, a.seq DESC LIMIT {limit}) page \
         CROSS JOIN activities a LEFT JOIN conversations c ON c.id = a.conversation_id \
         WHERE a.seq = page.seq ORDER BY a.created_at DESC, a.seq DESC",
        visible = *VISIBLE,
    )
}

/// How many activities a [`walk_sql`] reads at most before the page is chosen from the
/// viewer's leads instead ([`narrow_sql`]).
const WALK: i64 = 10_000;

/// The page's rows for a viewer who sees only what names them, when their leads are many in
/// the timeline: the workspace's activities newest first (the filters' index, which holds each
/// activity's lead: migration 0119), the first `$n` of those of the leads they are named in,
/// then the policy's predicates and the chat filter on those rows only, each row saying
/// whether it is kept. The walk reads at most [`WALK`] activities; the last of those is
/// returned too, `at_cap`, so the caller knows the walk stopped short of the timeline's end.
///
/// A member named in 1,700 of 100,000 leads finds a page in the newest ~3,000 activities
/// (~1 ms); [`narrow_sql`] looks up all 1,700 leads' timelines first (~4 ms on PostgreSQL).
/// The set of leads is tested as a whole (`OR` keeps PostgreSQL from joining it, which sorted
/// the walk's every row after it: a hash of the set, probed as the walk goes).
///
/// PostgreSQL only: SQLite sorts the capped walk's rows again before taking the first (it
/// does not carry the subquery's order out of it), reading all [`WALK`] of them every time
/// (~2-3x slower than [`narrow_sql`], which runs in-process without a planning cost).
fn walk_sql(f: &AcrossFilter) -> String {
    let Filters { filters, number, limit } = across_filters(f);
    format!(
        "SELECT {COLUMNS}, {visible}{number} AS kept, page.rn = {WALK} AS at_cap \
         FROM (SELECT w.seq, w.rn, w.created_at FROM \
               (SELECT a.seq, a.lead_id, a.created_at, ROW_NUMBER() OVER (ORDER BY a.created_at DESC, a.seq DESC) AS rn \
                FROM activities a WHERE a.workspace_id = $1{filters} ORDER BY a.created_at DESC, a.seq DESC LIMIT {WALK}) w \
               WHERE w.rn = {WALK} OR w.lead_id IN ({NAMED_LEADS}) \
               ORDER BY w.created_at DESC, w.seq DESC LIMIT {limit}) page \
         CROSS JOIN activities a LEFT JOIN conversations c ON c.id = a.conversation_id \
         WHERE a.seq = page.seq ORDER BY a.created_at DESC, a.seq DESC",
        visible = *VISIBLE,
    )
}

/// An activity's columns with its lead's name. The lead is a correlated lookup, not a join:
/// joined, SQLite first built a Bloom filter over every lead of the workspace (~10 ms at 100 k
/// leads) for a walk that stops after a page.
const COLUMNS: &str = "a.seq, a.id, a.lead_id, (SELECT l.name FROM leads l WHERE l.id = a.lead_id) AS lead_name, \
    a.conversation_id, a.type, a.member_id, a.data, a.created_at, a.updated_at";

/// Activity `a` (its conversation joined as `c`) is one the viewer sees: the policy's lead
/// predicate and, for an activity of a conversation, its conversation predicate.
static VISIBLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(EXISTS (SELECT 1 FROM leads l WHERE l.id = a.lead_id AND {}) AND (a.conversation_id IS NULL OR {}))",
        *LEAD_VISIBLE, *CONV_VISIBLE
    )
});

/// Runs an [`across_sql`], [`walk_sql`] or [`narrow_sql`] statement: the viewer, the filters
/// of `f`, then `limit`. On PostgreSQL in a transaction begun by `begin`: the wide statement
/// without Memoize ([`db::PG_BEGIN_NO_MEMOIZE`]: its walk stops after a page, so a cache of
/// every lead and chat is all cost), the narrow ones planned once per connection
/// ([`db::PG_BEGIN_GENERIC`]): their plans are the same whatever the values (the walk or the
/// viewer's leads), and planning them cost as much as running them.
async fn across_rows(
    db: &Db,
    v: &Viewer,
    sql: &str,
    f: &AcrossFilter,
    limit: i64,
    begin: &'static str,
) -> Result<Vec<AcrossRow>> {
    macro_rules! bound {
        () => {{
            let mut q = bind_viewer!(sqlx::query_as(sql), v);
            if let Some(kind) = f.kind {
                q = q.bind(kind);
            }
            for id in [f.member, f.lead, f.number].into_iter().flatten() {
                q = q.bind(id);
            }
            for at in [f.from, f.to].into_iter().flatten() {
                q = q.bind(at);
            }
            if let Some((at, seq)) = f.after {
                q = q.bind(at).bind(seq);
            }
            q.bind(limit)
        }};
    }
    Ok(match db {
        Db::Postgres(p) => {
            let mut tx = p.begin_with(begin).await?;
            let rows = bound!().fetch_all(&mut *tx).await?;
            tx.commit().await?;
            rows
        }
        Db::Sqlite(s) => bound!().fetch_all(&s.pool).await?,
    })
}

/// The kept rows of a [`walk_sql`] or [`narrow_sql`] statement, a page and one more: more
/// candidates each time until enough of them are kept (an activity of a chat of their lead
/// they don't see is left out, as one of another number under a chat filter) or none are left.
/// `None` when the walk reached its cap first.
async fn candidates(db: &Db, v: &Viewer, sql: &str, f: &AcrossFilter) -> Result<Option<Vec<AcrossRow>>> {
    let want = f.limit + 1;
    let mut candidates = want;
    loop {
        let rows = across_rows(db, v, sql, f, candidates, db::PG_BEGIN_GENERIC).await?;
        if rows.iter().any(|r| r.at_cap) {
            return Ok(None);
        }
        let exhausted = (rows.len() as i64) < candidates;
        let kept: Vec<AcrossRow> = rows.into_iter().filter(|r| r.kept).collect();
        if exhausted || kept.len() as i64 >= want {
            return Ok(Some(kept));
        }
        candidates *= 8;
    }
}

/// A page of the activity timeline across the leads `v` may see.
pub async fn across(db: &Db, v: &Viewer, f: &AcrossFilter, now: DateTime<Utc>) -> Result<ActivitiesPage> {
    let want = f.limit + 1;
    let mut rows = if list_strategy(v) == ListStrategy::Narrow {
        // On PostgreSQL, the newest activities first, kept to the leads they are named in;
        // when that walk ends short of a page (their leads are rare in it), from their leads'
        // timelines, as on SQLite (see `walk_sql`). One lead's timeline is read directly.
        let walked = match (f.lead, db.backend()) {
            (None, Backend::Postgres) => candidates(db, v, &walk_sql(f), f).await?,
            _ => None,
        };
        match walked {
            Some(rows) => rows,
            None => candidates(db, v, &narrow_sql(f), f).await?.unwrap_or_default(),
        }
    } else {
        across_rows(db, v, &across_sql(f), f, want, db::PG_BEGIN_NO_MEMOIZE).await?
    };
    let next_cursor = if rows.len() as i64 > f.limit {
        rows.truncate(f.limit as usize);
        rows.last().map(|a| cursor::encode_seq(a.created_at, a.seq))
    } else {
        None
    };
    let activities = rows
        .into_iter()
        .map(|a| ActivityOut {
            id: a.id,
            kind: a.kind,
            lead_id: a.lead_id,
            lead_name: a.lead_name,
            conversation_id: a.conversation_id,
            member_id: a.member_id,
            created_at: a.created_at,
            updated_at: a.updated_at,
            data: with_open(a.kind, a.data.0, now),
        })
        .collect();
    Ok(ActivitiesPage { activities, next_cursor })
}

/// A filter's id, or 400.
pub fn parse_id(value: &str, what: &str) -> Result<Uuid> {
    Uuid::parse_str(value.trim()).map_err(|_| Error::bad_request("invalid_filter", format!("{what} is not a valid id")))
}

/// A filter's RFC 3339 time, or 400.
pub fn parse_time(v: &str, what: &str) -> Result<DateTime<Utc>> {
    v.trim().parse().map_err(|_| Error::bad_request("invalid_filter", format!("{what} must be an RFC 3339 time")))
}
