//! The engine's database part: load the settings and the members' state, decide, store the
//! round-robin position and the decision, apply it (lead / conversation assignee, `assigned`
//! activity, events). Plus the decision log and bulk reassignment routes.
//!
//! Concurrency: every run first takes the event-log lock, then (PostgreSQL) a transaction
//! advisory lock per workspace, so concurrent arrivals read and advance the round-robin
//! position one after the other; SQLite's `BEGIN IMMEDIATE` already serialises writers.

use std::collections::HashMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use super::Settings;
use super::engine::{self, Candidate, Choice, LeadFields, MemberState, Position};
use crate::auth::CurrentUser;
use crate::db::{Backend, Tx};
use crate::error::{Error, Result};
use crate::events::{self, NewEvent};
use crate::extract::{Json, Path};
use crate::inbox::leads::{self, Lead};
use crate::inbox::ownership;
use crate::live::presence::{Availability, Presence};
use crate::state::AppState;
use crate::{on_db, on_tx, timeline};

/// Serialises assignment runs of one workspace (see the module docs).
async fn lock(tx: &mut Tx, workspace_id: Uuid) -> Result<()> {
    events::serialise(tx).await?;
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
async fn states(tx: &mut Tx, presence: &Presence, ws: Uuid, s: &Settings) -> Result<HashMap<Uuid, MemberState>> {
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
                availability: presence.availability(m.member_id),
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
    let choice = match route.kind.as_str() {
        "member" => {
            let order: Vec<Uuid> = route.member_id.into_iter().collect();
            engine::choose(s, &order, states, false, Position::default())
        }
        "round_robin" => {
            let order: Vec<Uuid> =
                route.member_ids.clone().unwrap_or_else(|| s.members.iter().map(|m| m.member_id).collect());
            let key = matched.map(|(i, _)| format!("rule:{i}")).unwrap_or_else(|| "default".to_owned());
            let pos = position(tx, lead.workspace_id, &key).await?;
            let choice = engine::choose(s, &order, states, true, pos);
            if let Some(p) = choice.position {
                save_position(tx, now, lead.workspace_id, &key, p).await?;
            }
            choice
        }
        _ => Choice { candidates: Vec::new(), chosen: None, position: None },
    };
    let reason = if choice.chosen.is_none() { "unassigned" } else { reason };
    Ok(Decision { rule, reason, choice })
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

/// Alerts the chosen member (an addressed event), or the pool (everyone who can see the
/// unassigned lead) when nobody was chosen.
async fn alert(
    tx: &mut Tx,
    now: DateTime<Utc>,
    lead: &Lead,
    conversation_id: Option<Uuid>,
    cause: &str,
    d: &Decision,
) -> Result<()> {
    let data = json!({"lead_id": lead.id, "conversation_id": conversation_id, "cause": cause,
                      "reason": d.reason, "rule": d.rule, "member_id": d.choice.chosen});
    let mut e = match d.choice.chosen {
        Some(m) => NewEvent::raw(lead.workspace_id, "assignment.alert", data).to_user(m),
        None => NewEvent::raw(lead.workspace_id, "assignment.pool", data).lead(lead.id),
    };
    e.conversation_id = conversation_id;
    events::append(tx, now, e).await?;
    Ok(())
}

/// A new lead without an assignee: decide, record, and assign it (before any conversation is
/// created for it, so the conversation starts assigned). Updates `lead` in place.
pub async fn new_lead(tx: &mut Tx, presence: &Presence, now: DateTime<Utc>, lead: &mut Lead) -> Result<()> {
    if lead.assignee_id.is_some() {
        return Ok(());
    }
    lock(tx, lead.workspace_id).await?;
    let s = super::load(tx, lead.workspace_id).await?;
    let states = states(tx, presence, lead.workspace_id, &s).await?;
    let d = decide(tx, now, &s, &states, lead).await?;
    let decision_id = record(tx, now, lead, None, "new_lead", &d).await?;
    if let Some(m) = d.choice.chosen {
        on_tx!(tx, |c| sqlx::query(
            "UPDATE leads SET assignee_id = $1, updated_at = $2 WHERE id = $3 AND assignee_id IS NULL"
        )
        .bind(m)
        .bind(now)
        .bind(lead.id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        lead.assignee_id = Some(m);
        lead.updated_at = now;
        leads::emit_updated(tx, now, lead).await?;
        let data = json!({"from_member_id": null, "to_member_id": m, "reason": d.reason, "rule": d.rule,
                          "decision_id": decision_id});
        timeline::record(tx, now, lead.workspace_id, lead.id, None, "assigned", None, data).await?;
    }
    alert(tx, now, lead, None, "new_lead", &d).await
}

/// A closed conversation re-opened by a customer message: the previous assignee keeps it when
/// they are an active, enabled member (and available, under `only_available`); otherwise the
/// rules decide. An assigned conversation never goes back to unassigned: when nobody is chosen
/// it stays where it was, and the pool is alerted.
pub async fn reopened(tx: &mut Tx, presence: &Presence, now: DateTime<Utc>, conversation_id: Uuid) -> Result<()> {
    let mut c = ownership::load_tx(tx, conversation_id).await?;
    lock(tx, c.workspace_id).await?;
    let s = super::load(tx, c.workspace_id).await?;
    let states = states(tx, presence, c.workspace_id, &s).await?;
    let lead = leads::load_tx(tx, c.lead_id).await?;
    let previous = c.assignee_id.map(|p| {
        let skipped = match states.get(&p) {
            None => Some("disabled"),
            Some(m) if !m.enabled => Some("disabled"),
            Some(m) if s.only_available && m.availability == Availability::Away => Some("away"),
            Some(m) if s.only_available && m.availability == Availability::Offline => Some("offline"),
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
        ownership::set_assignee(tx, now, &mut c, m).await?;
        let data = json!({"from_member_id": from, "to_member_id": m, "reason": d.reason, "rule": d.rule,
                          "decision_id": decision_id});
        timeline::record(tx, now, c.workspace_id, c.lead_id, Some(c.id), "assigned", None, data).await?;
        ownership::emit(tx, now, "conversation.assigned", &c).await?;
    }
    alert(tx, now, &lead, Some(c.id), "reopened", &d).await
}

#[derive(sqlx::FromRow)]
struct DecisionRow {
    at: DateTime<Utc>,
    cause: String,
    rule: Option<String>,
    reason: String,
    conversation_id: Option<Uuid>,
    candidates: sqlx::types::Json<Value>,
    chosen_member_id: Option<Uuid>,
}

/// `GET /leads/{id}/assignment-log`: every decision about a visible lead, oldest first.
#[instrument(skip_all)]
pub async fn log(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<Value>> {
    let lead = leads::get_visible(&st.db, &user.viewer(), id).await?;
    let rows: Vec<DecisionRow> = on_db!(&st.db, |p| sqlx::query_as(
        "SELECT at, cause, rule, reason, conversation_id, candidates, chosen_member_id FROM assignment_decisions \
         WHERE lead_id = $1 ORDER BY at, id"
    )
    .bind(lead.id)
    .fetch_all(p)
    .await)?;
    let decisions: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({"at": r.at, "cause": r.cause, "rule": r.rule, "reason": r.reason,
                   "conversation_id": r.conversation_id, "candidates": r.candidates.0,
                   "chosen_member_id": r.chosen_member_id})
        })
        .collect();
    Ok(Json(json!({"decisions": decisions})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkReassign {
    from_member_id: Uuid,
    to_member_id: Uuid,
    #[serde(default)]
    lead_ids: Option<Vec<Uuid>>,
}

/// `POST /leads/bulk-reassign`: moves `from`'s leads (all, or the listed ones still assigned to
/// them) and their conversations assigned to `from` to `to`, in one transaction.
#[instrument(skip_all)]
pub async fn bulk_reassign(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<BulkReassign>,
) -> Result<Json<Value>> {
    let v = user.viewer();
    if !(v.is_admin() || (v.active && v.permissions.view_others_leads)) {
        return Err(Error::forbidden("forbidden", "bulk reassignment needs admin or the view_others_leads permission"));
    }
    let ws = user.workspace_id;
    let (from, to) = (body.from_member_id, body.to_member_id);
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let from_known: Option<Uuid> =
        on_tx!(&mut tx, |c| sqlx::query_scalar("SELECT id FROM users WHERE id = $1 AND workspace_id = $2")
            .bind(from)
            .bind(ws)
            .fetch_optional(c)
            .await)?;
    if from_known.is_none() {
        return Err(Error::unprocessable("unknown_member", "from_member_id is not a member of this workspace"));
    }
    leads::check_assignee(&mut tx, ws, to).await.map_err(|_| {
        Error::unprocessable("unknown_member", "to_member_id is not an active member of this workspace")
    })?;
    if body.lead_ids.as_ref().is_some_and(|l| l.len() > 10_000) {
        return Err(Error::unprocessable("too_many_leads", "at most 10000 lead_ids"));
    }
    let mut ids: Vec<Uuid> = on_tx!(&mut tx, |c| sqlx::query_scalar(
        "SELECT id FROM leads WHERE workspace_id = $1 AND assignee_id = $2 ORDER BY created_at, id"
    )
    .bind(ws)
    .bind(from)
    .fetch_all(c)
    .await)?;
    if let Some(only) = &body.lead_ids {
        ids.retain(|id| only.contains(id));
    }
    if from == to {
        return Ok(Json(json!({"moved": 0})));
    }
    for id in &ids {
        on_tx!(&mut tx, |c| sqlx::query("UPDATE leads SET assignee_id = $1, updated_at = $2 WHERE id = $3")
            .bind(to)
            .bind(now)
            .bind(*id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        let data = json!({"from_member_id": from, "to_member_id": to, "reason": "bulk_reassign"});
        timeline::record(&mut tx, now, ws, *id, None, "assigned", Some(user.id), data.clone()).await?;
        let lead = leads::load_tx(&mut tx, *id).await?;
        leads::emit_updated(&mut tx, now, &lead).await?;
        let convs: Vec<Uuid> = on_tx!(&mut tx, |c| {
            sqlx::query_scalar(
            "UPDATE conversations SET assignee_id = $1, updated_at = $2 WHERE lead_id = $3 AND assignee_id = $4 RETURNING id"
        )
        .bind(to)
        .bind(now)
        .bind(*id)
        .bind(from)
        .fetch_all(c)
        .await
        })?;
        for conv in convs {
            let c = ownership::load_tx(&mut tx, conv).await?;
            timeline::record(&mut tx, now, ws, *id, Some(conv), "assigned", Some(user.id), data.clone()).await?;
            ownership::emit(&mut tx, now, "conversation.assigned", &c).await?;
        }
    }
    st.commit(tx).await?;
    tracing::info!(moved = ids.len(), "leads reassigned in bulk");
    Ok(Json(json!({"moved": ids.len()})))
}
