//! Leads: the CRM contacts chats are linked to. Visibility follows the policy's lead rules.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::db::{Db, Links, Tx, cursor};
use crate::error::{DbResultExt, Error, Result};
use crate::events::{Event, NewEvent, Work};
use crate::inbox::assignee::{self, Change, Holder};
use crate::policy::{self, LEAD_VISIBLE, Viewer};
use crate::timeline::{self, AssignedData, NewActivity};
use crate::views::Deleted;
use crate::views::lead::{LeadProgress, LeadView};
use crate::views::preferences::TeamView;
use crate::views::timeline::ActivityKind;
use crate::{bind_viewer, on_db, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Lead {
    pub id: Uuid,
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
    /// Contacted, first response, last activity: loaded with the lead by [`PROGRESS`] queries.
    #[sqlx(skip)]
    pub progress: Option<LeadProgress>,
}

/// A lead row read with [`PROGRESS`]'s columns.
#[derive(sqlx::FromRow)]
struct LeadRow {
    #[sqlx(flatten)]
    lead: Lead,
    contacted: bool,
    first_response_secs: Option<i64>,
    message_at: Option<DateTime<Utc>>,
    activity_at: Option<DateTime<Utc>>,
}

impl From<LeadRow> for Lead {
    fn from(r: LeadRow) -> Lead {
        let mut lead = r.lead;
        let last = [r.message_at, r.activity_at].into_iter().flatten().fold(lead.created_at, DateTime::max);
        lead.progress = Some(LeadProgress {
            contacted: r.contacted,
            first_response_secs: r.first_response_secs,
            last_activity_at: last,
        });
        lead
    }
}

/// The columns of [`LeadRow`] beyond [`COLS`]: contacted and first response are the report's
/// own counters (`lead_facts`, kept by the triggers of 0101 in the transaction of every write);
/// the newest message and activity are one index probe each (`conversations_lead`,
/// `activities_lead`).
pub(crate) const PROGRESS: &str = "COALESCE((SELECT f.contacted FROM lead_facts f WHERE f.lead_id = l.id), FALSE) AS contacted, \
    (SELECT f.first_response_secs FROM lead_facts f WHERE f.lead_id = l.id) AS first_response_secs, \
    (SELECT MAX(c.last_message_at) FROM conversations c WHERE c.lead_id = l.id) AS message_at, \
    (SELECT MAX(a.created_at) FROM activities a WHERE a.lead_id = l.id) AS activity_at";

impl Lead {
    /// The lead as events carry it (no `can`: events go to many viewers).
    pub fn view(&self) -> LeadView {
        LeadView {
            id: self.id,
            name: self.name.clone(),
            phone: self.phone.clone(),
            source: self.source.clone(),
            assignee_id: self.assignee_id,
            group_ids: self.group_ids.clone(),
            custom_fields: self.custom_fields.0.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            progress: self.progress,
            can: None,
        }
    }

    /// The lead as answered to `v` (who sees it), with what they may do with it.
    pub fn view_for(&self, v: &Viewer) -> LeadView {
        LeadView { can: Some(policy::inbox::lead_can(v, self.assignee_id)), ..self.view() }
    }

    /// Something happened on the lead's timeline at `at`.
    pub fn active_at(&mut self, at: DateTime<Utc>) {
        if let Some(p) = &mut self.progress {
            p.last_activity_at = p.last_activity_at.max(at);
        }
    }
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

impl VisibleLead {
    pub fn into_inner(self) -> Lead {
        self.0
    }
}

static GET_VISIBLE: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLS}, {PROGRESS} FROM leads l WHERE {} AND l.id = $6", *LEAD_VISIBLE));

/// Loads a lead if the viewer may see it; 404 otherwise.
pub async fn get_visible(db: &Db, v: &Viewer, id: Uuid) -> Result<VisibleLead> {
    let row: LeadRow =
        on_db!(db, |p| bind_viewer!(sqlx::query_as(GET_VISIBLE.as_str()), v).bind(id).fetch_optional(p).await)?
            .ok_or_else(Error::not_found)?;
    let mut lead = Lead::from(row);
    lead.group_ids = group_ids(db, &[id]).await?.remove(&id).unwrap_or_default();
    Ok(VisibleLead(lead))
}

/// Loads a lead inside a write transaction, without a viewer (for changes already authorised
/// through a visible conversation, e.g. assigning it).
pub async fn load_tx(tx: &mut Tx, id: Uuid) -> Result<Lead> {
    static SQL: LazyLock<String> = LazyLock::new(|| format!("SELECT {COLS}, {PROGRESS} FROM leads l WHERE l.id = $1"));
    let row: LeadRow =
        on_tx!(tx, |c| sqlx::query_as(SQL.as_str()).bind(id).fetch_optional(c).await)?.ok_or_else(Error::not_found)?;
    let mut lead = Lead::from(row);
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

const MAX_CUSTOM_BYTES: usize = 16 * 1024;

pub fn validate_custom(fields: &Map<String, Value>) -> Result<()> {
    let size = serde_json::to_vec(fields).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_CUSTOM_BYTES || fields.keys().any(|k| k.is_empty() || k.len() > 100) {
        return Err(Error::unprocessable(
            "invalid_custom_fields",
            "custom_fields must be a small object with named keys",
        ));
    }
    Ok(())
}

pub fn validate_source(source: Option<String>) -> Result<Option<String>> {
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
pub async fn check_groups(tx: &mut Tx, workspace_id: Uuid, groups: &[Uuid]) -> Result<()> {
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

pub async fn set_groups(tx: &mut Tx, lead_id: Uuid, groups: &[Uuid]) -> Result<()> {
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

#[derive(Serialize)]
struct CreatedData<'a> {
    source: &'a Option<String>,
}

/// Inserts a lead (and its phone identity), with its `lead.updated` event and its
/// `lead_created` activity.
pub async fn insert(w: &mut Work, new: NewLead) -> Result<Lead> {
    let id = Uuid::now_v7();
    let now = w.now();
    let tx = w.tx();
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
        progress: Some(LeadProgress { contacted: false, first_response_secs: None, last_activity_at: now }),
    };
    emit_updated(w, &lead);
    timeline::record(w, created_activity(&lead)).await?;
    Ok(lead)
}

/// The `lead_created` activity of a new lead.
pub fn created_activity(lead: &Lead) -> NewActivity {
    NewActivity::new(lead.workspace_id, lead.id, ActivityKind::LeadCreated, CreatedData { source: &lead.source })
}

/// Emits `lead.updated` of `lead` as it is now.
pub fn emit_updated(w: &mut Work, lead: &Lead) {
    w.emit(updated_event(lead));
}

/// The `lead.updated` event of `lead`, as it is now.
pub fn updated_event(lead: &Lead) -> NewEvent {
    NewEvent::new(lead.workspace_id, Event::LeadUpdated(lead.view())).lead(lead.id)
}

/// Gives an unassigned lead to `assignee` (with its `lead.updated`) as part of `change`; a
/// lead that has one keeps it. Returns whether it was unassigned.
pub async fn adopt(w: &mut Work, change: &mut Change, lead_id: Uuid, assignee: Uuid) -> Result<bool> {
    let moved = assignee::of_lead(w, change, lead_id, assignee, Holder::Unassigned).await?;
    if moved {
        let lead = load_tx(w.tx(), lead_id).await?;
        emit_updated(w, &lead);
    }
    Ok(moved)
}

pub fn dedup(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids.dedup();
    ids
}

/// `$13`: contacted or not; `$14`/`$15`: the viewer's team view (show others' / unassigned).
static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLS}, {PROGRESS} FROM leads l WHERE {} \
         AND ($6 IS NULL OR l.assignee_id = $6) \
         AND ($7 IS NULL OR ($7 AND l.assignee_id IS NULL) OR (NOT $7 AND l.assignee_id IS NOT NULL)) \
         AND ($8 IS NULL OR lower(l.name) LIKE $8 ESCAPE '\\' OR l.phone LIKE $8 ESCAPE '\\') \
         AND ($9 IS NULL OR EXISTS (SELECT 1 FROM lead_groups lg WHERE lg.lead_id = l.id AND lg.group_id = $9)) \
         AND ($10 IS NULL OR l.created_at < $10 OR (l.created_at = $10 AND l.id < $11)) \
         AND ($13 IS NULL OR COALESCE((SELECT f.contacted FROM lead_facts f WHERE f.lead_id = l.id), FALSE) = $13) \
         AND ($14 OR l.assignee_id IS NULL OR l.assignee_id = $2) \
         AND ($15 OR l.assignee_id IS NOT NULL) \
         ORDER BY l.created_at DESC, l.id DESC LIMIT $12",
        *LEAD_VISIBLE
    )
});

/// `%term%` for LIKE, with the wildcards in the term escaped.
pub fn like_pattern(q: &str) -> String {
    let escaped = q.trim().to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// The filters of a lead list.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub assignee: Option<Uuid>,
    pub unassigned: Option<bool>,
    pub group: Option<Uuid>,
    /// From [`like_pattern`].
    pub search: Option<String>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
    /// Contacted (`true`) or not yet (`false`).
    pub contacted: Option<bool>,
    /// The viewer's team view (only ever narrows the list).
    pub team_view: TeamView,
}

/// A page of the leads `v` sees, newest first, with their groups, and the next cursor.
pub async fn list(db: &Db, v: &Viewer, f: &ListFilter) -> Result<(Vec<Lead>, Option<String>)> {
    let search = f.search.clone();
    let rows: Vec<LeadRow> = on_db!(db, |p| bind_viewer!(sqlx::query_as(LIST.as_str()), v)
        .bind(f.assignee)
        .bind(f.unassigned)
        .bind(search)
        .bind(f.group)
        .bind(f.after.map(|a| a.0))
        .bind(f.after.map(|a| a.1))
        .bind(f.limit + 1)
        .bind(f.contacted)
        .bind(f.team_view.show_others)
        .bind(f.team_view.show_unassigned)
        .fetch_all(p)
        .await)?;
    let mut rows: Vec<Lead> = rows.into_iter().map(Lead::from).collect();
    let next = (rows.len() as i64 > f.limit).then(|| {
        rows.truncate(f.limit as usize);
        rows.last().map(|l| cursor::encode(l.created_at, l.id))
    });
    let ids: Vec<Uuid> = rows.iter().map(|l| l.id).collect();
    let mut groups = group_ids(db, &ids).await?;
    for l in &mut rows {
        l.group_ids = groups.remove(&l.id).unwrap_or_default();
    }
    Ok((rows, next.flatten()))
}

/// Changes to a lead (`PATCH`), validated and allowed by the caller.
#[derive(Debug, Default)]
pub struct LeadChanges {
    pub name: Option<String>,
    pub phone: Option<String>,
    /// `Some(None)` clears it.
    pub source: Option<Option<String>>,
    pub custom_fields: Option<Map<String, Value>>,
    pub group_ids: Option<Vec<Uuid>>,
    /// A new assignee (the caller checked the policy).
    pub assignee: Option<Uuid>,
}

/// Applies `changes` to `lead` on `by`'s behalf: 422 for unknown groups or an assignee who is
/// not an active member, 409 for a phone another lead has. Emits `lead.updated`.
pub async fn update(w: &mut Work, lead: &mut Lead, changes: LeadChanges, by: Uuid) -> Result<()> {
    let now = w.now();
    if let Some(name) = changes.name {
        lead.name = name;
    }
    if let Some(phone) = changes.phone {
        lead.phone = Some(phone);
    }
    if let Some(source) = changes.source {
        lead.source = source;
    }
    if let Some(fields) = changes.custom_fields {
        lead.custom_fields = sqlx::types::Json(fields);
    }
    if let Some(groups) = changes.group_ids {
        let groups = dedup(groups);
        check_groups(w.tx(), lead.workspace_id, &groups).await?;
        set_groups(w.tx(), lead.id, &groups).await?;
        lead.group_ids = groups;
    }
    if let Some(a) = changes.assignee.filter(|a| Some(*a) != lead.assignee_id) {
        check_assignee(w.tx(), lead.workspace_id, a).await?;
        let mut change = Change::by_member(lead.workspace_id, by, "lead_update");
        if assignee::of_lead(w, &mut change, lead.id, a, Holder::Anyone).await? {
            let data = AssignedData::by_member(lead.assignee_id, a);
            let activity = NewActivity::new(lead.workspace_id, lead.id, ActivityKind::Assigned, data).by(by);
            timeline::record(w, activity).await?;
            lead.assignee_id = Some(a);
            lead.active_at(now);
        }
    }
    lead.updated_at = now;
    on_tx!(w.tx(), |c| sqlx::query(
        "UPDATE leads SET name = $1, phone = $2, source = $3, custom_fields = $4, updated_at = $5 WHERE id = $6"
    )
    .bind(&lead.name)
    .bind(&lead.phone)
    .bind(&lead.source)
    .bind(&lead.custom_fields)
    .bind(now)
    .bind(lead.id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .on_unique("duplicate_phone", "a lead with that phone already exists")?;
    if let Some(phone) = &lead.phone {
        link_identity(w.tx(), lead.workspace_id, "phone", phone, lead.id).await?;
    }
    emit_updated(w, lead);
    Ok(())
}

/// Deletes a lead (its conversations and activities go with it), with `lead.deleted`.
pub async fn delete(w: &mut Work, lead: &Lead) -> Result<()> {
    let id = lead.id;
    on_tx!(w.tx(), |c| sqlx::query("DELETE FROM leads WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    w.emit(NewEvent::new(lead.workspace_id, Event::LeadDeleted(Deleted { id })).lead(id));
    Ok(())
}
