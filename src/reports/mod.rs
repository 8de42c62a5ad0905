//! The team report: `GET /api/v1/reports/team?from=&to=&group_id=`.
//!
//! What is counted, per member, over the leads created in `[from, to)` (and in the group):
//! - `assigned`: leads whose assignee is the member;
//! - `contacted`: of those, leads with a business-side message (a reply, a template, an echo
//!   from the phone app) or a member's note;
//! - `avg_first_response_secs`: of those, the mean of whole seconds from the earlier of the
//!   lead's creation and its first inbound message (WhatsApp time) to its first business-side
//!   message (a reply counts from when it was queued), at least 0; `null` when none got one
//!   (`first_responses` says how many did);
//! - `replies`: messages the member sent in those leads' conversations;
//! - `activities`: timeline activities of those leads whose `member_id` is the member;
//! - `open_conversations`: open conversations of those leads assigned to the member.
//!
//! `billable` counts the messages Meta charges for, per pricing category: written in `[from,
//! to)` (unlike the counters, by the message's time), in the leads the caller can see (and in
//! the group), whose status `pricing` has `type == "regular"` (or `billable: true` when it has
//! no `type`).
//!
//! `totals` is the sum of the rows shown (its average is over all their first responses).
//! Admins get a row for every member; members with `view_others_leads` get every member's row,
//! counted over the leads they can see; other members get their own row only.
//!
//! The numbers come from counters the database keeps in the same transactions as the writes
//! (triggers in `migrations/*/0101_report_counters.sql`, the same on both backends): whole days of the range from `report_daily`, the
//! partial days at the ends from the per-lead rows, so the cost does not grow with the data.

use std::collections::HashMap;
use std::sync::LazyLock;

pub mod http;

use chrono::{DateTime, Duration, NaiveDate, SubsecRound, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::policy::team::{ReportScope, report_scope};
use crate::policy::{LEAD_VISIBLE, Viewer};
use crate::views::report::{BillableView, CountsView, ReportRow, TeamReport};
use crate::{bind_viewer, on_db};

/// One member's counters (or a sum of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Counts {
    pub assigned: i64,
    pub contacted: i64,
    pub frs_sum: i64,
    pub frs_count: i64,
    pub replies: i64,
    pub activities: i64,
    pub open_conversations: i64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.assigned += o.assigned;
        self.contacted += o.contacted;
        self.frs_sum += o.frs_sum;
        self.frs_count += o.frs_count;
        self.replies += o.replies;
        self.activities += o.activities;
        self.open_conversations += o.open_conversations;
    }

    fn view(self) -> CountsView {
        CountsView {
            assigned: self.assigned,
            contacted: self.contacted,
            avg_first_response_secs: (self.frs_count > 0).then(|| self.frs_sum as f64 / self.frs_count as f64),
            first_responses: self.frs_count,
            activities: self.activities,
            replies: self.replies,
            open_conversations: self.open_conversations,
        }
    }
}

#[derive(sqlx::FromRow)]
struct MemberCounts {
    member_id: Uuid,
    #[sqlx(flatten)]
    counts: Counts,
}

const SUMS: &str = "CAST(SUM(x.assigned) AS BIGINT) AS assigned, CAST(SUM(x.contacted) AS BIGINT) AS contacted, \
    CAST(SUM(x.frs_sum) AS BIGINT) AS frs_sum, CAST(SUM(x.frs_count) AS BIGINT) AS frs_count, \
    CAST(SUM(x.replies) AS BIGINT) AS replies, CAST(SUM(x.activities) AS BIGINT) AS activities, \
    CAST(SUM(x.open_conversations) AS BIGINT) AS open_conversations";

/// Whole days `[$3, $4)` from the daily counters; `$2` is the group (zero UUID: all leads),
/// `$5` includes unclaimed leads. Open ends are bound as far-away days, so the range is plain.
static BUCKETS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT x.member_id, {SUMS} FROM report_daily x \
         WHERE x.workspace_id = $1 AND x.group_id = $2 AND x.day >= $3 AND x.day < $4 \
         AND (x.claimed OR $5) GROUP BY x.member_id"
    )
});

/// [`BUCKETS`] for one member (`$6`).
static BUCKETS_ONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT x.member_id, {SUMS} FROM report_daily x \
         WHERE x.workspace_id = $1 AND x.group_id = $2 AND x.member_id = $6 AND x.day >= $3 AND x.day < $4 \
         AND (x.claimed OR $5) GROUP BY x.member_id"
    )
});

/// Leads created in `[$2, $3)` (a partial day), from the per-lead rows; `$4` the group or
/// NULL, `$5` includes unclaimed leads, `$6` one member or NULL.
static EDGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT x.member_id, {SUMS} FROM report_lead_members x \
         WHERE x.workspace_id = $1 AND x.lead_created_at >= $2 AND x.lead_created_at < $3 \
         AND ($4 IS NULL OR EXISTS (SELECT 1 FROM lead_groups g WHERE g.lead_id = x.lead_id AND g.group_id = $4)) \
         AND (x.claimed OR $5) AND ($6 IS NULL OR x.member_id = $6) GROUP BY x.member_id"
    )
});

/// Unclaimed leads in `[$6, $7)` that the viewer `$1..$5` can see (a grant or a label).
static UNCLAIMED_VISIBLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT x.member_id, {SUMS} FROM report_lead_members x JOIN leads l ON l.id = x.lead_id \
         WHERE x.workspace_id = $1 AND NOT x.claimed AND {} \
         AND ($6 IS NULL OR x.lead_created_at >= $6) AND ($7 IS NULL OR x.lead_created_at < $7) \
         AND ($8 IS NULL OR EXISTS (SELECT 1 FROM lead_groups g WHERE g.lead_id = x.lead_id AND g.group_id = $8)) \
         GROUP BY x.member_id",
        *LEAD_VISIBLE
    )
});

/// Billable messages per pricing category of the leads the viewer `$1..$5` can see, written
/// in `[$6, $7)` (each end open when NULL), in group `$8` (NULL: all). `->>`/`->` read the
/// JSON on both backends (text on SQLite, JSONB on PostgreSQL).
static BILLABLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT m.pricing ->> 'category' AS category, COUNT(*) AS messages FROM messages m \
         JOIN conversations c ON c.id = m.conversation_id JOIN leads l ON l.id = c.lead_id \
         WHERE m.workspace_id = $1 AND m.pricing IS NOT NULL \
         AND ($6 IS NULL OR m.created_at >= $6) AND ($7 IS NULL OR m.created_at < $7) \
         AND m.pricing ->> 'category' IS NOT NULL \
         AND (CASE WHEN m.pricing ->> 'type' IS NOT NULL THEN m.pricing ->> 'type' = 'regular' \
              ELSE CAST(m.pricing -> 'billable' AS TEXT) = 'true' END) \
         AND ($8 IS NULL OR EXISTS (SELECT 1 FROM lead_groups g WHERE g.lead_id = l.id AND g.group_id = $8)) \
         AND {} GROUP BY m.pricing ->> 'category' ORDER BY category",
        *LEAD_VISIBLE
    )
});

/// Billable messages per pricing category (see the module's documentation).
pub async fn billable(db: &Db, v: &Viewer, f: &Filter) -> Result<Vec<BillableView>> {
    Ok(on_db!(db, |p| bind_viewer!(sqlx::query_as::<_, BillableView>(BILLABLE.as_str()), v)
        .bind(f.from)
        .bind(f.to)
        .bind(f.group_id)
        .fetch_all(p)
        .await)?)
}

/// The report's filters, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub group_id: Option<Uuid>,
}

/// How `[from, to)` splits into whole days (counted from the daily counters) and the partial
/// days at its ends (counted lead by lead).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Split {
    /// `None`: no whole day; else the day range `[lo, hi)`, each end open when `None`.
    days: Option<(Option<NaiveDate>, Option<NaiveDate>)>,
    edges: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

fn split(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Split {
    let lo =
        from.map(|f| if midnight(f.date_naive()) == f { f.date_naive() } else { f.date_naive() + Duration::days(1) });
    let hi = to.map(|t| t.date_naive());
    if let (Some(l), Some(h), Some(f), Some(t)) = (lo, hi, from, to)
        && l >= h
    {
        return Split { days: None, edges: if f < t { vec![(f, t)] } else { vec![] } };
    }
    let mut edges = Vec::new();
    if let (Some(f), Some(l)) = (from, lo)
        && f < midnight(l)
    {
        edges.push((f, midnight(l)));
    }
    if let (Some(t), Some(h)) = (to, hi)
        && midnight(h) < t
    {
        edges.push((midnight(h), t));
    }
    Split { days: Some((lo, hi)), edges }
}

pub fn parse_time(v: &str, what: &str) -> Result<DateTime<Utc>> {
    // A '+' in an unencoded query string arrives as a space.
    let v = v.trim().replace(' ', "+");
    DateTime::parse_from_rfc3339(&v)
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
        .map_err(|_| Error::bad_request("invalid_filter", format!("{what} must be an RFC 3339 time")))
}

/// `from` is not after `to`.
pub fn ordered(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<()> {
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(Error::bad_request("invalid_filter", "from must not be after to"));
    }
    Ok(())
}

/// Checks a parsed filter: an ordered range, and a group of this workspace.
pub async fn filter(
    db: &Db,
    workspace_id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    group_id: Option<Uuid>,
) -> Result<Filter> {
    ordered(from, to)?;
    if let Some(g) = group_id {
        let known: Option<Uuid> =
            on_db!(db, |p| sqlx::query_scalar("SELECT id FROM crm_groups WHERE id = $1 AND workspace_id = $2")
                .bind(g)
                .bind(workspace_id)
                .fetch_optional(p)
                .await)?;
        if known.is_none() {
            return Err(Error::bad_request("invalid_filter", "group_id is not a group of this workspace"));
        }
    }
    Ok(Filter { from, to, group_id })
}

/// Per-member counters over the leads `v` may count (see [`ReportScope`]).
pub async fn compute(db: &Db, v: &Viewer, f: &Filter) -> Result<HashMap<Uuid, Counts>> {
    let scope = report_scope(v);
    let unclaimed = match scope {
        ReportScope::All | ReportScope::Own => true,
        ReportScope::Visible { unassigned } => unassigned,
    };
    let only = (scope == ReportScope::Own).then_some(v.user_id);
    let mut parts: Vec<MemberCounts> = Vec::new();
    let s = split(f.from, f.to);
    if let Some((lo, hi)) = s.days {
        let group = f.group_id.unwrap_or(Uuid::nil());
        let lo = lo.unwrap_or(NaiveDate::from_ymd_opt(1, 1, 1).expect("a day"));
        let hi = hi.unwrap_or(NaiveDate::from_ymd_opt(9999, 12, 31).expect("a day"));
        let rows = match only {
            None => on_db!(db, |p| sqlx::query_as::<_, MemberCounts>(BUCKETS.as_str())
                .bind(v.workspace_id)
                .bind(group)
                .bind(lo)
                .bind(hi)
                .bind(unclaimed)
                .fetch_all(p)
                .await)?,
            Some(member) => on_db!(db, |p| sqlx::query_as::<_, MemberCounts>(BUCKETS_ONE.as_str())
                .bind(v.workspace_id)
                .bind(group)
                .bind(lo)
                .bind(hi)
                .bind(unclaimed)
                .bind(member)
                .fetch_all(p)
                .await)?,
        };
        parts.extend(rows);
    }
    for (a, b) in s.edges {
        parts.extend(on_db!(db, |p| sqlx::query_as::<_, MemberCounts>(EDGE.as_str())
            .bind(v.workspace_id)
            .bind(a)
            .bind(b)
            .bind(f.group_id)
            .bind(unclaimed)
            .bind(only)
            .fetch_all(p)
            .await)?);
    }
    if !unclaimed {
        parts.extend(on_db!(db, |p| bind_viewer!(sqlx::query_as::<_, MemberCounts>(UNCLAIMED_VISIBLE.as_str()), v)
            .bind(f.from)
            .bind(f.to)
            .bind(f.group_id)
            .fetch_all(p)
            .await)?);
    }
    let mut out: HashMap<Uuid, Counts> = HashMap::new();
    for p in parts {
        out.entry(p.member_id).or_default().add(&p.counts);
    }
    Ok(out)
}

/// The team report `v` (named `name`) may read.
pub async fn team(db: &Db, v: &Viewer, name: &str, f: Filter) -> Result<TeamReport> {
    let members: Vec<(Uuid, String)> = if report_scope(v) == ReportScope::Own {
        vec![(v.user_id, name.to_owned())]
    } else {
        on_db!(db, |p| sqlx::query_as("SELECT id, name FROM users WHERE workspace_id = $1 ORDER BY name, id")
            .bind(v.workspace_id)
            .fetch_all(p)
            .await)?
    };
    let counts = compute(db, v, &f).await?;
    let mut totals = Counts::default();
    let rows: Vec<ReportRow> = members
        .into_iter()
        .map(|(member_id, name)| {
            let c = counts.get(&member_id).copied().unwrap_or_default();
            totals.add(&c);
            ReportRow { member_id, name, counts: c.view() }
        })
        .collect();
    let billable = billable(db, v, &f).await?;
    Ok(TeamReport { members: rows, totals: totals.view(), from: f.from, to: f.to, group_id: f.group_id, billable })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }
    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn whole_days_and_partial_ends() {
        let s = split(Some(t("2025-03-01T10:00:00Z")), Some(t("2025-03-05T06:30:00Z")));
        assert_eq!(s.days, Some((Some(d("2025-03-02")), Some(d("2025-03-05")))));
        assert_eq!(
            s.edges,
            vec![
                (t("2025-03-01T10:00:00Z"), t("2025-03-02T00:00:00Z")),
                (t("2025-03-05T00:00:00Z"), t("2025-03-05T06:30:00Z"))
            ]
        );
    }

    #[test]
    fn midnights_need_no_edges() {
        let s = split(Some(t("2025-03-01T00:00:00Z")), Some(t("2025-03-03T00:00:00Z")));
        assert_eq!(s.days, Some((Some(d("2025-03-01")), Some(d("2025-03-03")))));
        assert!(s.edges.is_empty());
        assert_eq!(split(None, None), Split { days: Some((None, None)), edges: vec![] });
    }

    #[test]
    fn within_one_day_is_all_edge() {
        let (a, b) = (t("2025-03-01T10:00:00Z"), t("2025-03-01T12:00:00Z"));
        assert_eq!(split(Some(a), Some(b)), Split { days: None, edges: vec![(a, b)] });
        let (a, b) = (t("2025-03-01T10:00:00Z"), t("2025-03-02T09:00:00Z"));
        assert_eq!(split(Some(a), Some(b)), Split { days: None, edges: vec![(a, b)] });
        assert_eq!(split(Some(a), Some(a)), Split { days: None, edges: vec![] });
    }

    #[test]
    fn open_ends() {
        let s = split(Some(t("2025-03-01T10:00:00Z")), None);
        assert_eq!(s.days, Some((Some(d("2025-03-02")), None)));
        assert_eq!(s.edges, vec![(t("2025-03-01T10:00:00Z"), t("2025-03-02T00:00:00Z"))]);
        let s = split(None, Some(t("2025-03-01T10:00:00Z")));
        assert_eq!(s.days, Some((None, Some(d("2025-03-01")))));
        assert_eq!(s.edges, vec![(t("2025-03-01T00:00:00Z"), t("2025-03-01T10:00:00Z"))]);
    }

    #[test]
    fn times_parse_leniently_but_strictly() {
        assert_eq!(parse_time("2025-03-01T10:00:00 01:00", "from").unwrap(), t("2025-03-01T09:00:00Z"));
        assert!(parse_time("yesterday", "from").is_err());
        assert!(parse_time("2025-03-01", "from").is_err());
    }
}
