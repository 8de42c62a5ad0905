//! Who owns a conversation and who may see it: assign, claim, status, labels, explicit access,
//! and the reply check the send path uses. Every action first loads the conversation as a
//! [`Visible`] value (404 when the caller can't see it), then asks the policy; every change
//! appends its event and a timeline activity in the same transaction.
//!
//! Labels (`PUT .../labels`) may be set by admins, the assignee and members with
//! `view_others_leads` who see the conversation — the people who may assign it.
//! Explicit access (`POST/DELETE .../access`) is changed by admins and the assignee; anyone who
//! sees the conversation may read the access listing.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::events::{self, NewEvent};
use crate::extract::{Json, Path};
use crate::inbox::conversations::{self, Conversation, Visible};
use crate::inbox::leads;
use crate::policy::{self, ConvFacts, Denied, Viewer};
use crate::state::AppState;
use crate::{on_db, on_tx, timeline};

/// The reply check for the send path: only the assignee may reply (an admin too, once the
/// conversation is assigned to them). Others who can see it get 403 `not_assignee`.
pub fn ensure_can_reply(conv: &Visible<Conversation>, v: &Viewer) -> Result<()> {
    policy::can_reply(v, &conv.facts(Vec::new())).map_err(denied)
}

fn denied(d: Denied) -> Error {
    match d {
        Denied::NotAssignee => Error::forbidden("not_assignee", "only the conversation's assignee may do this"),
        Denied::AlreadyAssigned => Error::conflict("already_assigned", "the conversation is already assigned"),
        Denied::Forbidden => Error::forbidden("forbidden", "you may not do this to the conversation"),
    }
}

/// Members explicitly given access to a conversation.
pub async fn access_ids(db: &Db, conversation_id: Uuid) -> Result<Vec<Uuid>> {
    Ok(on_db!(db, |p| sqlx::query_scalar(
        "SELECT user_id FROM conversation_access WHERE conversation_id = $1 ORDER BY user_id"
    )
    .bind(conversation_id)
    .fetch_all(p)
    .await)?)
}

/// Loads a visible conversation with everything the policy needs about it.
async fn load(st: &AppState, v: &Viewer, id: Uuid) -> Result<(Visible<Conversation>, ConvFacts)> {
    let conv = conversations::get_visible(&st.db, v, id).await?;
    let facts = conv.facts(access_ids(&st.db, id).await?);
    Ok((conv, facts))
}

/// Loads a conversation inside a write transaction, without a viewer (internal changes such as
/// deleting a label; sees the transaction's own writes).
pub async fn load_tx(tx: &mut Tx, id: Uuid) -> Result<Conversation> {
    conversations::load_in(tx, id).await?.ok_or_else(Error::not_found)
}

/// A label left these conversations (deleted by `member_id`): timeline and live event for each.
pub async fn label_removed(
    tx: &mut Tx,
    now: DateTime<Utc>,
    conversations: &[Uuid],
    label: (Uuid, &str),
    member_id: Uuid,
) -> Result<()> {
    for id in conversations {
        let c = load_tx(tx, *id).await?;
        let data = json!({"label_id": label.0, "name": label.1, "label_deleted": true});
        timeline::record(tx, now, c.workspace_id, c.lead_id, Some(c.id), "label_removed", Some(member_id), data)
            .await?;
        emit(tx, now, "conversation.updated", &c).await?;
    }
    Ok(())
}

pub(crate) async fn emit(tx: &mut Tx, now: DateTime<Utc>, kind: &'static str, c: &Conversation) -> Result<()> {
    let e = NewEvent::raw(c.workspace_id, kind, c.to_json()).conversation(c.id).lead(c.lead_id);
    events::append(tx, now, e).await?;
    Ok(())
}

/// Sets the assignee (an assigned conversation never goes back to unassigned) and gives the
/// lead the same assignee when it has none.
pub(crate) async fn set_assignee(tx: &mut Tx, now: DateTime<Utc>, c: &mut Conversation, assignee: Uuid) -> Result<()> {
    on_tx!(tx, |x| sqlx::query("UPDATE conversations SET assignee_id = $1, updated_at = $2 WHERE id = $3")
        .bind(assignee)
        .bind(now)
        .bind(c.id)
        .execute(x)
        .await
        .map(|r| r.rows_affected()))?;
    c.assignee_id = Some(assignee);
    c.updated_at = now;
    adopt_lead(tx, now, c).await
}

async fn adopt_lead(tx: &mut Tx, now: DateTime<Utc>, c: &Conversation) -> Result<()> {
    let n = on_tx!(tx, |x| sqlx::query(
        "UPDATE leads SET assignee_id = $1, updated_at = $2 WHERE id = $3 AND assignee_id IS NULL"
    )
    .bind(c.assignee_id)
    .bind(now)
    .bind(c.lead_id)
    .execute(x)
    .await
    .map(|r| r.rows_affected()))?;
    if n == 1 {
        let lead = leads::load_tx(tx, c.lead_id).await?;
        leads::emit_updated(tx, now, &lead).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    #[serde(default)]
    assignee_id: Option<Uuid>,
}

#[instrument(skip_all)]
pub async fn assign(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<Assign>,
) -> Result<Json<Value>> {
    let v = user.viewer();
    let (conv, facts) = load(&st, &v, id).await?;
    policy::can_assign(&v, &facts).map_err(denied)?;
    let assignee = body.assignee_id.ok_or_else(|| {
        Error::unprocessable("cannot_unassign", "assignee_id is required; a conversation never goes back to unassigned")
    })?;
    let mut c = conv.into_inner();
    if c.assignee_id == Some(assignee) {
        return Ok(Json(c.to_json()));
    }
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    leads::check_assignee(&mut tx, c.workspace_id, assignee).await?;
    let from = c.assignee_id;
    set_assignee(&mut tx, now, &mut c, assignee).await?;
    let data = json!({"from_member_id": from, "to_member_id": assignee});
    timeline::record(&mut tx, now, c.workspace_id, c.lead_id, Some(c.id), "assigned", Some(user.id), data).await?;
    emit(&mut tx, now, "conversation.assigned", &c).await?;
    st.commit(tx).await?;
    tracing::info!(conversation_id = %id, "conversation assigned");
    Ok(Json(c.to_json()))
}

/// Claiming is race-safe: a conditional UPDATE takes only an unassigned conversation, so of
/// concurrent claims exactly one wins and the others get 409 `already_assigned`.
#[instrument(skip_all)]
pub async fn claim(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<Value>> {
    let v = user.viewer();
    let (conv, facts) = load(&st, &v, id).await?;
    policy::can_claim(&v, &facts).map_err(|d| match d {
        Denied::Forbidden => Error::forbidden("forbidden", "claiming needs the view_unassigned permission"),
        other => denied(other),
    })?;
    let mut c = conv.into_inner();
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let won = on_tx!(&mut tx, |x| sqlx::query(
        "UPDATE conversations SET assignee_id = $1, updated_at = $2 WHERE id = $3 AND assignee_id IS NULL"
    )
    .bind(user.id)
    .bind(now)
    .bind(id)
    .execute(x)
    .await
    .map(|r| r.rows_affected()))?;
    if won != 1 {
        return Err(denied(Denied::AlreadyAssigned));
    }
    c.assignee_id = Some(user.id);
    c.updated_at = now;
    adopt_lead(&mut tx, now, &c).await?;
    timeline::record(&mut tx, now, c.workspace_id, c.lead_id, Some(c.id), "claimed", Some(user.id), json!({})).await?;
    emit(&mut tx, now, "conversation.assigned", &c).await?;
    st.commit(tx).await?;
    tracing::info!(conversation_id = %id, "conversation claimed");
    Ok(Json(c.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetStatus {
    status: String,
}

#[instrument(skip_all)]
pub async fn set_status(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<SetStatus>,
) -> Result<Json<Value>> {
    let v = user.viewer();
    let (conv, facts) = load(&st, &v, id).await?;
    policy::can_reply(&v, &facts).map_err(denied)?;
    let status = match body.status.as_str() {
        s @ ("open" | "closed") => s,
        _ => return Err(Error::unprocessable("invalid_status", "status must be open or closed")),
    };
    let mut c = conv.into_inner();
    if c.status == status {
        return Ok(Json(c.to_json()));
    }
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    on_tx!(&mut tx, |x| sqlx::query("UPDATE conversations SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(x)
        .await
        .map(|r| r.rows_affected()))?;
    let data = json!({"from": c.status, "to": status});
    c.status = status.to_owned();
    c.updated_at = now;
    timeline::record(&mut tx, now, c.workspace_id, c.lead_id, Some(c.id), "status_changed", Some(user.id), data)
        .await?;
    emit(&mut tx, now, "conversation.updated", &c).await?;
    st.commit(tx).await?;
    Ok(Json(c.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLabels {
    label_ids: Vec<Uuid>,
}

#[instrument(skip_all)]
pub async fn set_labels(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<SetLabels>,
) -> Result<Json<Value>> {
    let v = user.viewer();
    let (conv, facts) = load(&st, &v, id).await?;
    policy::can_label(&v, &facts).map_err(denied)?;
    let mut c = conv.into_inner();
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let wanted = crate::team::labels::check_labels(&mut tx, c.workspace_id, body.label_ids).await?;
    let added: Vec<Uuid> = wanted.iter().filter(|l| !c.label_ids.contains(l)).copied().collect();
    let removed: Vec<Uuid> = c.label_ids.iter().filter(|l| !wanted.contains(l)).copied().collect();
    if added.is_empty() && removed.is_empty() {
        return Ok(Json(c.to_json()));
    }
    for l in &removed {
        on_tx!(&mut tx, |x| sqlx::query(
            "DELETE FROM conversation_labels WHERE conversation_id = $1 AND label_id = $2"
        )
        .bind(id)
        .bind(*l)
        .execute(x)
        .await
        .map(|r| r.rows_affected()))?;
    }
    for l in &added {
        on_tx!(&mut tx, |x| sqlx::query(
            "INSERT INTO conversation_labels (conversation_id, label_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        )
        .bind(id)
        .bind(*l)
        .execute(x)
        .await
        .map(|r| r.rows_affected()))?;
    }
    for (kind, list) in [("label_added", &added), ("label_removed", &removed)] {
        for l in list {
            let name = crate::team::labels::name_tx(&mut tx, *l).await?;
            let data = json!({"label_id": l, "name": name});
            timeline::record(&mut tx, now, c.workspace_id, c.lead_id, Some(c.id), kind, Some(user.id), data).await?;
        }
    }
    on_tx!(&mut tx, |x| sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(x)
        .await
        .map(|r| r.rows_affected()))?;
    c.label_ids = wanted;
    c.updated_at = now;
    emit(&mut tx, now, "conversation.updated", &c).await?;
    st.commit(tx).await?;
    Ok(Json(c.to_json()))
}

/// Who can see a conversation and why (`admin`, `assignee`, `granted_label`, `explicit`,
/// `others_flag`, `unassigned_flag`), from the same policy every read path uses.
async fn access_listing(st: &AppState, c: &Conversation) -> Result<Value> {
    let explicit = access_ids(&st.db, c.id).await?;
    let facts = c.facts(explicit.clone());
    let members = crate::team::active_members(&st.db, c.workspace_id).await?;
    let rows: Vec<Value> = members
        .iter()
        .filter_map(|m| {
            let reasons = policy::reasons(&m.viewer(), &facts);
            (!reasons.is_empty()).then(
                || json!({"member_id": m.id, "name": m.name, "email": m.email, "role": m.role, "reasons": reasons}),
            )
        })
        .collect();
    Ok(json!({
        "conversation_id": c.id,
        "assignee_id": c.assignee_id,
        "label_ids": c.label_ids,
        "explicit_member_ids": explicit,
        "members": rows,
    }))
}

#[instrument(skip_all)]
pub async fn get_access(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<Value>> {
    let conv = conversations::get_visible(&st.db, &user.viewer(), id).await?;
    Ok(Json(access_listing(&st, &conv).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberIds {
    member_ids: Vec<Uuid>,
}

#[instrument(skip_all)]
pub async fn add_access(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<MemberIds>,
) -> Result<Json<Value>> {
    change_access(st, user, id, body.member_ids, true).await
}

#[instrument(skip_all)]
pub async fn remove_access(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<MemberIds>,
) -> Result<Json<Value>> {
    change_access(st, user, id, body.member_ids, false).await
}

async fn change_access(st: AppState, user: CurrentUser, id: Uuid, ids: Vec<Uuid>, grant: bool) -> Result<Json<Value>> {
    let v = user.viewer();
    let (conv, facts) = load(&st, &v, id).await?;
    policy::can_manage_access(&v, &facts).map_err(|_| {
        Error::forbidden("forbidden", "only admins and the conversation's assignee may change who has access")
    })?;
    let mut c = conv.into_inner();
    let ids = crate::team::dedup(ids);
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let mut changed = Vec::new();
    for m in &ids {
        let known: Option<Uuid> =
            on_tx!(&mut tx, |x| sqlx::query_scalar("SELECT id FROM users WHERE id = $1 AND workspace_id = $2")
                .bind(*m)
                .bind(c.workspace_id)
                .fetch_optional(x)
                .await)?;
        if known.is_none() {
            return Err(Error::unprocessable("unknown_member", format!("member {m} does not exist")));
        }
        let n = if grant {
            on_tx!(&mut tx, |x| sqlx::query(
                "INSERT INTO conversation_access (conversation_id, user_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING"
            )
            .bind(id)
            .bind(*m)
            .bind(now)
            .execute(x)
            .await
            .map(|r| r.rows_affected()))?
        } else {
            on_tx!(&mut tx, |x| sqlx::query(
                "DELETE FROM conversation_access WHERE conversation_id = $1 AND user_id = $2"
            )
            .bind(id)
            .bind(*m)
            .execute(x)
            .await
            .map(|r| r.rows_affected()))?
        };
        if n > 0 {
            changed.push(*m);
        }
    }
    if !changed.is_empty() {
        on_tx!(&mut tx, |x| sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(x)
            .await
            .map(|r| r.rows_affected()))?;
        c.updated_at = now;
        let kind = if grant { "access_granted" } else { "access_revoked" };
        let data = json!({"member_ids": changed});
        timeline::record(&mut tx, now, c.workspace_id, c.lead_id, Some(c.id), kind, Some(user.id), data).await?;
        emit(&mut tx, now, "conversation.updated", &c).await?;
        st.commit(tx).await?;
    }
    Ok(Json(access_listing(&st, &c).await?))
}
