//! The engine's database part: load the settings and the members' state, decide, store the
//! round-robin position and the decision, apply it through the inbox (lead / conversation
//! assignee, `assigned` activity, events). Plus the decision log and bulk reassignment.
//!
//! Concurrency: every run first takes the event-log lock, then (PostgreSQL) a transaction
//! advisory lock per workspace, so concurrent arrivals read and advance the round-robin
//! position one after the other; SQLite's `BEGIN IMMEDIATE` already serialises writers.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::engine::{self, Candidate, Choice, LeadFields, MemberState, Position};
use super::{RouteKind, Settings};
use crate::db::{Backend, Db, Tx};
use crate::error::{Error, Result};
use crate::events::{self, Event, NewEvent, Work};
use crate::inbox::assignee::{self, Change, Holder};
use crate::inbox::conversations;
use crate::inbox::leads::{self, Lead};
use crate::inbox::ownership;
use crate::timeline::{self, AssignedData, NewActivity};
use crate::views::team::Availability;
use crate::views::timeline::{ActivityKind, AssignmentNotice};
use crate::{on_db, on_tx};

/// Who is available now: a snapshot of presence, given by the edge that runs the engine.
pub type Presence<'a> = &'a (dyn Fn(Uuid) -> Availability + Sync);

/// A presence state as the engine reads it, from its contract name (`available`, `away`,
/// `offline`); anything else counts as offline.
pub fn availability(state: &str) -> Availability {
    Availability::parse(state).unwrap_or(Availability::Offline)
}

/// Serialises assignment runs of one workspace (see the module docs).
async fn lock(tx: &mut Tx, workspace_id: Uuid) -> Result<()> {
    events::log::serialise(tx).await?;
    if tx.backend() == Backend::Postgres {
        let b = workspace_id.as_bytes();
        let key = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) ^ 0x5b_0002;
        on_tx!(tx, |c| sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Each active member's toggle, presence and open conversations.
async fn states(tx: &mut Tx, presence: Presence<'_>, ws: Uuid, s: &Settings) -> Result<HashMap<Uuid, MemberState>> {
    let open: HashMap<Uuid, i64> = if s.max_open_per_member.is_some() {
        let rows: Vec<(Uuid, i64)> = on_tx!(tx, |c| sqlx::query_as(
            "SELECT assignee_id, COUNT(*) FROM conversations WHERE workspace_id = $1 AND status = 'open' \
             AND assignee_id IS NOT NULL GROUP BY assignee_id"
        )
        .bind(ws)
        .fetch_all(c)
        .await)?;
        rows.into_iter().collect()
    } else {
        HashMap::new()
    };
    Ok(s.members
        .iter()
        .map(|m| {
            let state = MemberState {
                enabled: m.enabled,
                availability: presence(m.member_id),
                open: open.get(&m.member_id).copied().unwrap_or(0),
            };
            (m.member_id, state)
        })
        .collect())
}

async fn position(tx: &mut Tx, ws: Uuid, key: &str) -> Result<Position> {
    let row: Option<(Option<Uuid>, i64)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT last_member_id, given FROM assignment_rr WHERE workspace_id = $1 AND route_key = $2"
    )
    .bind(ws)
    .bind(key)
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|(last, given)| Position { last, given }).unwrap_or_default())
}

async fn save_position(tx: &mut Tx, now: DateTime<Utc>, ws: Uuid, key: &str, p: Position) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO assignment_rr (workspace_id, route_key, last_member_id, given, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (workspace_id, route_key) DO UPDATE SET last_member_id = excluded.last_member_id, \
         given = excluded.given, updated_at = excluded.updated_at"
    )
    .bind(ws)
    .bind(key)
    .bind(p.last)
    .bind(p.given)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A decision before it is applied.
struct Decision {
    rule: Option<String>,
    reason: &'static str,
    choice: Choice,
}

/// Runs the rules (or the mode) for `lead` and advances the round-robin position.
async fn decide(
    tx: &mut Tx,
    now: DateTime<Utc>,
    s: &Settings,
    states: &HashMap<Uuid, MemberState>,
    lead: &Lead,
) -> Result<Decision> {
    let fields =
        LeadFields { source: lead.source.clone(), phone: lead.phone.clone(), custom: lead.custom_fields.0.clone() };
    let (matched, route) = engine::route_for(s, &fields);
    let rule = matched.map(|(_, name)| name.to_owned());
    let reason = if matched.is_some() { "rule" } else { "round_robin" };
    let choice = match RouteKind::parse(&route.kind) {
        Some(RouteKind::Member) => {
            let order: Vec<Uuid> = route.member_id.into_iter().collect();
            engine::choose(s, &order, states, false, Position::default())
        }
        Some(RouteKind::RoundRobin) => {
            let order: Vec<Uuid> =
                route.member_ids.clone().unwrap_or_else(|| s.members.iter().map(|m| m.member_id).collect());
            round_robin(
                tx,
                now,
                s,
                states,
                lead.workspace_id,
                &order,
                &engine::position_key(&route, matched.map(|m| m.0)),
            )
            .await?
        }
        Some(RouteKind::Team) => {
            let team = route.team_id.unwrap_or_default();
            let order = engine::team_order(s, &crate::team::teams::members_tx(tx, team).await?);
            round_robin(
                tx,
                now,
                s,
                states,
                lead.workspace_id,
                &order,
                &engine::position_key(&route, matched.map(|m| m.0)),
            )
            .await?
        }
        _ => Choice { candidates: Vec::new(), chosen: None, position: None },
    };
    let reason = if choice.chosen.is_none() { "unassigned" } else { reason };
    Ok(Decision { rule, reason, choice })
}

/// Round robin over `order` from the position stored under `key`, which it advances.
async fn round_robin(
    tx: &mut Tx,
    now: DateTime<Utc>,
    s: &Settings,
    states: &HashMap<Uuid, MemberState>,
    ws: Uuid,
    order: &[Uuid],
    key: &str,
) -> Result<Choice> {
    let pos = position(tx, ws, key).await?;
    let choice = engine::choose(s, order, states, true, pos);
    if let Some(p) = choice.position {
        save_position(tx, now, ws, key, p).await?;
    }
    Ok(choice)
}

/// Stores the decision row; returns its id.
#[allow(clippy::too_many_arguments)]
async fn record(
    tx: &mut Tx,
    now: DateTime<Utc>,
    lead: &Lead,
    conversation_id: Option<Uuid>,
    cause: &str,
    d: &Decision,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO assignment_decisions (id, workspace_id, lead_id, conversation_id, cause, rule, reason, candidates, \
         chosen_member_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )
    .bind(id)
    .bind(lead.workspace_id)
    .bind(lead.id)
    .bind(conversation_id)
    .bind(cause)
    .bind(&d.rule)
    .bind(d.reason)
    .bind(sqlx::types::Json(&d.choice.candidates))
    .bind(d.choice.chosen)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(id)
}

/// The assignee change a decision makes (its alert goes to the chosen member).
fn change(ws: Uuid, cause: &'static str, d: &Decision) -> Change {
    Change::by_engine(ws, cause, d.reason, d.rule.clone())
}

/// Nobody was chosen: alerts the pool (everyone who can see the unassigned lead). The chosen
/// member's alert comes with the change itself ([`Change`]).
fn alert_pool(w: &mut Work, lead: &Lead, conversation_id: Option<Uuid>, cause: &str, d: &Decision) {
    if d.choice.chosen.is_some() {
        return;
    }
    let notice = AssignmentNotice {
        lead_id: lead.id,
        conversation_id,
        cause: cause.to_owned(),
        reason: d.reason.to_owned(),
        rule: d.rule.clone(),
        member_id: None,
        by_member_id: None,
    };
    let e = NewEvent::new(lead.workspace_id, Event::AssignmentPool(notice)).lead(lead.id);
    w.emit(e.conversation(conversation_id));
}

fn decided(d: &Decision, from: Option<Uuid>, to: Uuid, decision_id: Uuid) -> AssignedData {
    AssignedData {
        from_member_id: from,
        to_member_id: to,
        reason: Some(d.reason),
        rule: Some(d.rule.clone()),
        decision_id: Some(decision_id),
    }
}

/// A new lead without an assignee: decide, record, and assign it (before any conversation is
/// created for it, so the conversation starts assigned). Updates `lead` in place.
pub async fn new_lead(w: &mut Work, presence: Presence<'_>, lead: &mut Lead) -> Result<()> {
    if lead.assignee_id.is_some() {
        return Ok(());
    }
    let now = w.now();
    let tx = w.tx();
    lock(tx, lead.workspace_id).await?;
    let s = super::load(tx, lead.workspace_id).await?;
    let states = states(tx, presence, lead.workspace_id, &s).await?;
    let d = decide(tx, now, &s, &states, lead).await?;
    let decision_id = record(tx, now, lead, None, "new_lead", &d).await?;
    if let Some(m) = d.choice.chosen
        && leads::adopt(w, &mut change(lead.workspace_id, "new_lead", &d), lead.id, m).await?
    {
        lead.assignee_id = Some(m);
        lead.updated_at = now;
        let data = decided(&d, None, m, decision_id);
        timeline::record(w, NewActivity::new(lead.workspace_id, lead.id, ActivityKind::Assigned, data)).await?;
    }
    alert_pool(w, lead, None, "new_lead", &d);
    Ok(())
}

/// A closed conversation re-opened by a customer message: the previous assignee keeps it when
/// they are an active, enabled member (and available, under `only_available`); otherwise the
/// rules decide. An assigned conversation never goes back to unassigned: when nobody is chosen
/// it stays where it was, and the pool is alerted.
pub async fn reopened(w: &mut Work, presence: Presence<'_>, conversation_id: Uuid) -> Result<()> {
    let now = w.now();
    let tx = w.tx();
    let mut c = ownership::load_tx(tx, conversation_id).await?;
    lock(tx, c.workspace_id).await?;
    let s = super::load(tx, c.workspace_id).await?;
    let states = states(tx, presence, c.workspace_id, &s).await?;
    let lead = leads::load_tx(tx, c.lead_id).await?;
    let previous = c.assignee_id.map(|p| {
        let skipped = match states.get(&p) {
            None => Some("disabled"),
            Some(m) if !m.enabled => Some("disabled"),
            Some(m) if s.only_available && m.availability != Availability::Available => Some(m.availability.as_str()),
            Some(_) => None,
        };
        Candidate { member_id: p, skipped }
    });
    let d = match &previous {
        Some(p) if p.skipped.is_none() => Decision {
            rule: None,
            reason: "previous_assignee",
            choice: Choice { candidates: vec![p.clone()], chosen: Some(p.member_id), position: None },
        },
        _ => {
            let mut d = decide(tx, now, &s, &states, &lead).await?;
            if let Some(p) = previous
                && !d.choice.candidates.iter().any(|c| c.member_id == p.member_id)
            {
                d.choice.candidates.insert(0, p);
            }
            d
        }
    };
    let decision_id = record(tx, now, &lead, Some(c.id), "reopened", &d).await?;
    if let Some(m) = d.choice.chosen
        && c.assignee_id != Some(m)
    {
        let from = c.assignee_id;
        let mut change = change(c.workspace_id, "reopened", &d);
        ownership::set_assignee(w, &mut c, m, &mut change).await?;
        let data = decided(&d, from, m, decision_id);
        let a = NewActivity::new(c.workspace_id, c.lead_id, ActivityKind::Assigned, data).conversation(c.id);
        timeline::record(w, a).await?;
        conversations::emit(w, Event::ConversationAssigned, &c);
    }
    alert_pool(w, &lead, Some(c.id), "reopened", &d);
    Ok(())
}

/// A decision as `GET /leads/{id}/assignment-log` shows it.
#[derive(Debug, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    at: DateTime<Utc>,
    cause: String,
    rule: Option<String>,
    reason: String,
    conversation_id: Option<Uuid>,
    #[schema(value_type = Vec<Object>)]
    candidates: sqlx::types::Json<Value>,
    chosen_member_id: Option<Uuid>,
}

/// Every decision about a lead, oldest first.
pub async fn decisions(db: &Db, lead_id: Uuid) -> Result<Vec<DecisionView>> {
    Ok(on_db!(db, |p| sqlx::query_as(
        "SELECT at, cause, rule, reason, conversation_id, candidates, chosen_member_id FROM assignment_decisions \
         WHERE lead_id = $1 ORDER BY at, id"
    )
    .bind(lead_id)
    .fetch_all(p)
    .await)?)
}

/// Moves `from`'s leads (all, or those of `only` still assigned to them) and their
/// conversations assigned to `from` to `to`, on `by`'s behalf; `from: None` gives the
/// unassigned leads of `only` (required then) and their unassigned conversations. Each lead
/// moved alerts `to` (unless `to` is `by`). Returns how many leads moved.
pub async fn bulk_reassign(
    w: &mut Work,
    workspace_id: Uuid,
    from: Option<Uuid>,
    to: Uuid,
    only: Option<&[Uuid]>,
    by: Uuid,
) -> Result<usize> {
    let ws = workspace_id;
    if let Some(from) = from {
        let from_known: Option<Uuid> =
            on_tx!(w.tx(), |c| sqlx::query_scalar("SELECT id FROM users WHERE id = $1 AND workspace_id = $2")
                .bind(from)
                .bind(ws)
                .fetch_optional(c)
                .await)?;
        if from_known.is_none() {
            return Err(Error::unprocessable("unknown_member", "from_member_id is not a member of this workspace"));
        }
    }
    leads::check_assignee(w.tx(), ws, to).await.map_err(|_| {
        Error::unprocessable("unknown_member", "to_member_id is not an active member of this workspace")
    })?;
    if only.is_some_and(|l| l.len() > 10_000) {
        return Err(Error::unprocessable("too_many_leads", "at most 10000 lead_ids"));
    }
    let mut ids: Vec<Uuid> = match (from, only) {
        (Some(from), _) => on_tx!(w.tx(), |c| sqlx::query_scalar(
            "SELECT id FROM leads WHERE workspace_id = $1 AND assignee_id = $2 ORDER BY created_at, id"
        )
        .bind(ws)
        .bind(from)
        .fetch_all(c)
        .await)?,
        (None, Some(only)) => {
            let mut found = Vec::with_capacity(only.len());
            for id in only {
                let unassigned: Option<Uuid> = on_tx!(w.tx(), |c| sqlx::query_scalar(
                    "SELECT id FROM leads WHERE id = $1 AND workspace_id = $2 AND assignee_id IS NULL"
                )
                .bind(*id)
                .bind(ws)
                .fetch_optional(c)
                .await)?;
                found.extend(unassigned);
            }
            found.sort();
            found.dedup();
            found
        }
        (None, None) => {
            return Err(Error::unprocessable(
                "lead_ids_required",
                "lead_ids: required when from_member_id is null (which unassigned leads to assign)",
            ));
        }
    };
    if let (Some(_), Some(only)) = (from, only) {
        ids.retain(|id| only.contains(id));
    }
    if from == Some(to) {
        return Ok(0);
    }
    let holder = from.map_or(Holder::Unassigned, Holder::Member);
    let mut moved = 0;
    for id in &ids {
        let mut change = Change::by_member(ws, by, "bulk_reassign");
        if !assignee::of_lead(w, &mut change, *id, to, holder).await? {
            continue;
        }
        moved += 1;
        let data = AssignedData { reason: Some("bulk_reassign"), ..AssignedData::by_member(from, to) };
        timeline::record(w, NewActivity::new(ws, *id, ActivityKind::Assigned, &data).by(by)).await?;
        let lead = leads::load_tx(w.tx(), *id).await?;
        leads::emit_updated(w, &lead);
        ownership::reassign_of_lead(w, &mut change, *id, holder, to, &data).await?;
    }
    Ok(moved)
}
