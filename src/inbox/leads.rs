//! Leads: the CRM contacts chats are linked to. Visibility follows the policy's lead rules.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tracing::instrument;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::db::{Db, Links, Tx, cursor, page_limit};
use crate::error::{DbResultExt, Error, Result};
use crate::events::{self, NewEvent};
use crate::extract::{Json, Path, Query};
use crate::inbox::{parse_bool, parse_id};
use crate::policy::{self, LEAD_VISIBLE, Viewer};
use crate::state::AppState;
use crate::{bind_viewer, on_db, on_tx};

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Lead {
    pub id: Uuid,
    #[serde(skip)]
    pub workspace_id: Uuid,
    pub name: String,
    pub phone: Option<String>,
    pub source: Option<String>,
    pub assignee_id: Option<Uuid>,
    #[sqlx(skip)]
    pub group_ids: Vec<Uuid>,
    pub custom_fields: sqlx::types::Json<Map<String, Value>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) const COLS: &str =
    "l.id, l.workspace_id, l.name, l.phone, l.source, l.assignee_id, l.custom_fields, l.created_at, l.updated_at";

/// A lead the viewer may see (only built by the queries below).
pub struct VisibleLead(Lead);

impl std::ops::Deref for VisibleLead {
    type Target = Lead;
    fn deref(&self) -> &Lead {
        &self.0
    }
}

static GET_VISIBLE: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLS} FROM leads l WHERE {} AND l.id = $6", *LEAD_VISIBLE));

/// Loads a lead if the viewer may see it; 404 otherwise.
pub async fn get_visible(db: &Db, v: &Viewer, id: Uuid) -> Result<VisibleLead> {
    let mut lead: Lead =
        on_db!(db, |p| bind_viewer!(sqlx::query_as(GET_VISIBLE.as_str()), v).bind(id).fetch_optional(p).await)?
            .ok_or_else(Error::not_found)?;
    lead.group_ids = group_ids(db, &[id]).await?.remove(&id).unwrap_or_default();
    Ok(VisibleLead(lead))
}

/// Loads a lead inside a write transaction, without a viewer (for changes already authorised
/// through a visible conversation, e.g. assigning it).
pub async fn load_tx(tx: &mut Tx, id: Uuid) -> Result<Lead> {
    let sql = format!("SELECT {COLS} FROM leads l WHERE l.id = $1");
    let mut lead: Lead =
        on_tx!(tx, |c| sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?.ok_or_else(Error::not_found)?;
    lead.group_ids =
        on_tx!(tx, |c| sqlx::query_scalar("SELECT group_id FROM lead_groups WHERE lead_id = $1 ORDER BY group_id")
            .bind(id)
            .fetch_all(c)
            .await)?;
    Ok(lead)
}

const GROUPS: Links = Links { table: "lead_groups", from: "lead_id", to: "group_id" };

/// Group ids of each lead (sorted), in one query.
pub async fn group_ids(db: &Db, leads: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    Ok(crate::db::linked(db, GROUPS, leads).await?)
}

/// [`group_ids`] inside a transaction.
pub async fn group_ids_in(tx: &mut Tx, leads: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    Ok(crate::db::linked_in(tx, GROUPS, leads).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateLead {
    name: String,
    phone: String,
    source: Option<String>,
    #[serde(default)]
    group_ids: Vec<Uuid>,
    custom_fields: Option<Map<String, Value>>,
    assignee_id: Option<Uuid>,
}

const MAX_CUSTOM_BYTES: usize = 16 * 1024;

pub(crate) fn validate_custom(fields: &Map<String, Value>) -> Result<()> {
    let size = serde_json::to_vec(fields).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_CUSTOM_BYTES || fields.keys().any(|k| k.is_empty() || k.len() > 100) {
        return Err(Error::unprocessable(
            "invalid_custom_fields",
            "custom_fields must be a small object with named keys",
        ));
    }
    Ok(())
}

pub(crate) fn validate_source(source: Option<String>) -> Result<Option<String>> {
    match source.map(|s| s.trim().to_owned()) {
        Some(s) if s.len() > 200 => Err(Error::unprocessable("invalid_source", "source is too long")),
        Some(s) if s.is_empty() => Ok(None),
        other => Ok(other),
    }
}

pub fn normalize_phone(raw: &str) -> Result<String> {
    crate::phone::normalize(raw)
        .ok_or_else(|| Error::unprocessable("invalid_phone", "phone is not a valid international number"))
}

/// Checks that every group exists in the workspace.
async fn check_groups(tx: &mut Tx, workspace_id: Uuid, groups: &[Uuid]) -> Result<()> {
    for g in groups {
        let found: Option<Uuid> =
            on_tx!(tx, |c| sqlx::query_scalar("SELECT id FROM crm_groups WHERE id = $1 AND workspace_id = $2")
                .bind(*g)
                .bind(workspace_id)
                .fetch_optional(c)
                .await)?;
        if found.is_none() {
            return Err(Error::unprocessable("unknown_group", format!("group {g} does not exist")));
        }
    }
    Ok(())
}

/// Checks that `member` can hold leads and conversations in the workspace.
pub async fn check_assignee(tx: &mut Tx, workspace_id: Uuid, member: Uuid) -> Result<()> {
    let found: Option<Uuid> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT id FROM users WHERE id = $1 AND workspace_id = $2 AND status <> 'deactivated'"
    )
    .bind(member)
    .bind(workspace_id)
    .fetch_optional(c)
    .await)?;
    found
        .map(|_| ())
        .ok_or_else(|| Error::unprocessable("unknown_member", "assignee_id is not an active member of this workspace"))
}

pub(crate) async fn set_groups(tx: &mut Tx, lead_id: Uuid, groups: &[Uuid]) -> Result<()> {
    on_tx!(tx, |c| sqlx::query("DELETE FROM lead_groups WHERE lead_id = $1")
        .bind(lead_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    for g in groups {
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO lead_groups (lead_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        )
        .bind(lead_id)
        .bind(*g)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Points a WhatsApp identity (`phone`, `bsuid`, `parent_bsuid`) at `lead`, taking it over
/// from any lead that had it.
pub async fn link_identity(tx: &mut Tx, workspace_id: Uuid, kind: &str, value: &str, lead: Uuid) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO lead_identities (workspace_id, kind, value, lead_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (workspace_id, kind, value) DO UPDATE SET lead_id = excluded.lead_id"
    )
    .bind(workspace_id)
    .bind(kind)
    .bind(value)
    .bind(lead)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A new lead to insert (API, import or WhatsApp auto-import).
pub struct NewLead {
    pub workspace_id: Uuid,
    pub name: String,
    pub phone: Option<String>,
    pub source: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub custom_fields: Map<String, Value>,
    pub group_ids: Vec<Uuid>,
}

const INSERT: &str = "INSERT INTO leads (id, workspace_id, name, phone, source, assignee_id, custom_fields, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";

/// Inserts a lead (and its phone identity) in `tx`, with its `lead.updated` event.
pub async fn insert(tx: &mut Tx, now: DateTime<Utc>, new: NewLead) -> Result<Lead> {
    let id = Uuid::now_v7();
    on_tx!(tx, |c| sqlx::query(INSERT)
        .bind(id)
        .bind(new.workspace_id)
        .bind(&new.name)
        .bind(&new.phone)
        .bind(&new.source)
        .bind(new.assignee_id)
        .bind(sqlx::types::Json(&new.custom_fields))
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .on_unique("duplicate_phone", "a lead with that phone already exists")?;
    if let Some(phone) = &new.phone {
        link_identity(tx, new.workspace_id, "phone", phone, id).await?;
    }
    set_groups(tx, id, &new.group_ids).await?;
    let lead = Lead {
        id,
        workspace_id: new.workspace_id,
        name: new.name,
        phone: new.phone,
        source: new.source,
        assignee_id: new.assignee_id,
        group_ids: new.group_ids,
        custom_fields: sqlx::types::Json(new.custom_fields),
        created_at: now,
        updated_at: now,
    };
    emit_updated(tx, now, &lead).await?;
    crate::timeline::record(
        tx,
        now,
        lead.workspace_id,
        lead.id,
        None,
        "lead_created",
        None,
        json!({"source": lead.source}),
    )
    .await?;
    Ok(lead)
}

pub async fn emit_updated(tx: &mut Tx, now: DateTime<Utc>, lead: &Lead) -> Result<()> {
    events::append(tx, now, updated_event(lead)).await?;
    Ok(())
}

/// The `lead.updated` event of `lead`, as it is now.
pub fn updated_event(lead: &Lead) -> NewEvent {
    let data = serde_json::to_value(lead).unwrap_or_default();
    NewEvent::raw(lead.workspace_id, "lead.updated", data).lead(lead.id)
}

#[instrument(skip_all)]
pub async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateLead>,
) -> Result<(StatusCode, Json<Lead>)> {
    let name = crate::workspace::validate_name(&body.name, "name")?;
    let phone = normalize_phone(&body.phone)?;
    let source = validate_source(body.source)?;
    let custom_fields = body.custom_fields.unwrap_or_default();
    validate_custom(&custom_fields)?;
    let viewer = user.viewer();
    if body.assignee_id.is_some_and(|a| a != user.id) && !(viewer.is_admin() || viewer.permissions.view_others_leads) {
        return Err(Error::forbidden("forbidden", "assigning leads to others needs the view_others_leads permission"));
    }
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    check_groups(&mut tx, user.workspace_id, &body.group_ids).await?;
    if let Some(a) = body.assignee_id {
        check_assignee(&mut tx, user.workspace_id, a).await?;
    }
    let new = NewLead {
        workspace_id: user.workspace_id,
        name,
        phone: Some(phone),
        source,
        assignee_id: body.assignee_id,
        custom_fields,
        group_ids: dedup(body.group_ids),
    };
    let mut lead = insert(&mut tx, now, new).await?;
    if body.assignee_id.is_none() {
        crate::assignment::run::new_lead(&mut tx, &st.presence, now, &mut lead).await?;
    }
    st.commit(tx).await?;
    tracing::info!(lead_id = %lead.id, "lead created");
    Ok((StatusCode::CREATED, Json(lead)))
}

fn dedup(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids.dedup();
    ids
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListLeads {
    assignee_id: Option<String>,
    unassigned: Option<String>,
    group_id: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLS} FROM leads l WHERE {} \
         AND ($6 IS NULL OR l.assignee_id = $6) \
         AND ($7 IS NULL OR ($7 AND l.assignee_id IS NULL) OR (NOT $7 AND l.assignee_id IS NOT NULL)) \
         AND ($8 IS NULL OR lower(l.name) LIKE $8 ESCAPE '\\' OR l.phone LIKE $8 ESCAPE '\\') \
         AND ($9 IS NULL OR EXISTS (SELECT 1 FROM lead_groups lg WHERE lg.lead_id = l.id AND lg.group_id = $9)) \
         AND ($10 IS NULL OR l.created_at < $10 OR (l.created_at = $10 AND l.id < $11)) \
         ORDER BY l.created_at DESC, l.id DESC LIMIT $12",
        *LEAD_VISIBLE
    )
});

/// `%term%` for LIKE, with the wildcards in the term escaped.
pub fn like_pattern(q: &str) -> String {
    let escaped = q.trim().to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

#[instrument(skip_all)]
pub async fn list(State(st): State<AppState>, user: CurrentUser, Query(q): Query<ListLeads>) -> Result<Json<Value>> {
    let limit = page_limit(q.limit)?;
    let assignee = q.assignee_id.as_deref().map(|a| parse_id(a, "assignee_id")).transpose()?;
    let unassigned = q.unassigned.as_deref().map(|u| parse_bool(u, "unassigned")).transpose()?;
    let group = q.group_id.as_deref().map(|g| parse_id(g, "group_id")).transpose()?;
    let search = q.q.as_deref().filter(|s| !s.trim().is_empty()).map(like_pattern);
    if search.as_ref().is_some_and(|s| s.len() > 200) {
        return Err(Error::bad_request("invalid_filter", "q is too long"));
    }
    let after = q.cursor.as_deref().map(cursor::decode).transpose()?;
    let v = user.viewer();
    let mut rows: Vec<Lead> = on_db!(&st.db, |p| bind_viewer!(sqlx::query_as(LIST.as_str()), v)
        .bind(assignee)
        .bind(unassigned)
        .bind(&search)
        .bind(group)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit + 1)
        .fetch_all(p)
        .await)?;
    let next = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|l| cursor::encode(l.created_at, l.id))
    });
    let ids: Vec<Uuid> = rows.iter().map(|l| l.id).collect();
    let mut groups = group_ids(&st.db, &ids).await?;
    for l in &mut rows {
        l.group_ids = groups.remove(&l.id).unwrap_or_default();
    }
    Ok(Json(json!({"leads": rows, "next_cursor": next.flatten()})))
}

#[instrument(skip_all)]
pub async fn get_one(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<Lead>> {
    Ok(Json(get_visible(&st.db, &user.viewer(), id).await?.0))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchLead {
    name: Option<String>,
    phone: Option<String>,
    source: Option<String>,
    group_ids: Option<Vec<Uuid>>,
    custom_fields: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "present")]
    assignee_id: Option<Option<Uuid>>,
}

/// Distinguishes `"field": null` (Some(None)) from an absent field (None).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[instrument(skip_all)]
pub async fn patch(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchLead>,
) -> Result<Json<Lead>> {
    let v = user.viewer();
    let current = get_visible(&st.db, &v, id).await?;
    let mut lead = current.0;
    if let Some(name) = body.name {
        lead.name = crate::workspace::validate_name(&name, "name")?;
    }
    if let Some(phone) = body.phone {
        lead.phone = Some(normalize_phone(&phone)?);
    }
    if body.source.is_some() {
        lead.source = validate_source(body.source)?;
    }
    if let Some(fields) = body.custom_fields {
        validate_custom(&fields)?;
        lead.custom_fields = sqlx::types::Json(fields);
    }
    let reassign = match body.assignee_id {
        None => None,
        Some(None) => {
            return Err(Error::unprocessable("cannot_unassign", "an assigned lead never goes back to unassigned"));
        }
        Some(Some(a)) if Some(a) == lead.assignee_id => None,
        Some(Some(a)) => {
            let allowed = v.is_admin()
                || lead.assignee_id == Some(v.user_id)
                || v.permissions.view_others_leads
                || (lead.assignee_id.is_none() && v.permissions.view_unassigned && a == v.user_id);
            if !allowed {
                return Err(Error::forbidden("forbidden", "you may not assign this lead"));
            }
            Some(a)
        }
    };
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    if let Some(groups) = body.group_ids {
        let groups = dedup(groups);
        check_groups(&mut tx, lead.workspace_id, &groups).await?;
        set_groups(&mut tx, lead.id, &groups).await?;
        lead.group_ids = groups;
    }
    if let Some(a) = reassign {
        check_assignee(&mut tx, lead.workspace_id, a).await?;
        let data = json!({"from_member_id": lead.assignee_id, "to_member_id": a});
        crate::timeline::record(&mut tx, now, lead.workspace_id, lead.id, None, "assigned", Some(user.id), data)
            .await?;
        lead.assignee_id = Some(a);
    }
    lead.updated_at = now;
    on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE leads SET name = $1, phone = $2, source = $3, custom_fields = $4, assignee_id = $5, updated_at = $6 WHERE id = $7"
    )
    .bind(&lead.name)
    .bind(&lead.phone)
    .bind(&lead.source)
    .bind(&lead.custom_fields)
    .bind(lead.assignee_id)
    .bind(now)
    .bind(lead.id)
    .execute(c)
    .await.map(|r| r.rows_affected()))
    .on_unique("duplicate_phone", "a lead with that phone already exists")?;
    if let Some(phone) = &lead.phone {
        link_identity(&mut tx, lead.workspace_id, "phone", phone, lead.id).await?;
    }
    emit_updated(&mut tx, now, &lead).await?;
    st.commit(tx).await?;
    Ok(Json(lead))
}

#[instrument(skip_all)]
pub async fn delete(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    let v = user.viewer();
    let lead = get_visible(&st.db, &v, id).await?;
    if !policy::can_delete_lead(&v, lead.assignee_id) {
        return Err(Error::forbidden(
            "forbidden",
            "deleting this lead needs delete_leads and the lead assigned to you",
        ));
    }
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    on_tx!(&mut tx, |c| sqlx::query("DELETE FROM leads WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    events::append(&mut tx, now, NewEvent::raw(lead.workspace_id, "lead.deleted", json!({"id": id})).lead(id)).await?;
    st.commit(tx).await?;
    tracing::info!(lead_id = %id, "lead deleted");
    Ok(StatusCode::NO_CONTENT)
}
