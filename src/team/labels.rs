//! Labels: put on conversations, granted to members (a grant lets the member see the
//! conversations carrying the label). Everyone reads them; only admins create, edit, delete.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{self, AuditAction, AuditEntry, AuditTarget, Changes};
use crate::db::{Db, Tx};
use crate::error::{DbResultExt, Error, Result};
use crate::events::{Event, NewEvent, Work};
use crate::policy::Viewer;
use crate::policy::team::may_manage_labels;
use crate::views::Deleted;
use crate::views::team::{LabelView, LabelsPage};
use crate::{on_db, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Label {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub color: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Label {
    pub fn view(&self) -> LabelView {
        LabelView { id: self.id, name: self.name.clone(), color: self.color.clone(), created_at: self.created_at }
    }
}

const COLS: &str = "id, workspace_id, name, color, created_at";

fn require_admin(v: &Viewer) -> Result<()> {
    may_manage_labels(v).map_err(|_| Error::forbidden("forbidden", "only admins manage labels"))
}

fn validate_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::unprocessable("invalid_name", "name must have 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

fn validate_color(raw: Option<String>) -> Result<Option<String>> {
    match raw.map(|c| c.trim().to_owned()) {
        Some(c) if c.is_empty() => Ok(None),
        Some(c) if c.chars().count() > 32 => Err(Error::unprocessable("invalid_color", "color is too long")),
        other => Ok(other),
    }
}

/// Checks that every label exists in the workspace; returns them sorted and deduplicated.
pub async fn check_labels(tx: &mut Tx, workspace_id: Uuid, ids: Vec<Uuid>) -> Result<Vec<Uuid>> {
    let ids = super::dedup(ids);
    for l in &ids {
        let found: Option<Uuid> =
            on_tx!(tx, |c| sqlx::query_scalar("SELECT id FROM labels WHERE id = $1 AND workspace_id = $2")
                .bind(*l)
                .bind(workspace_id)
                .fetch_optional(c)
                .await)?;
        if found.is_none() {
            return Err(Error::unprocessable("unknown_label", format!("label {l} does not exist")));
        }
    }
    Ok(ids)
}

/// Names of labels by id (for timeline details).
pub async fn name_tx(tx: &mut Tx, id: Uuid) -> Result<Option<String>> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar("SELECT name FROM labels WHERE id = $1").bind(id).fetch_optional(c).await)?)
}

fn emit(work: &mut Work, label: &Label) {
    work.emit(NewEvent::new(label.workspace_id, Event::LabelUpdated(label.view())));
}

/// Creates a label in `v`'s workspace.
pub async fn create(work: &mut Work, v: &Viewer, name: &str, color: Option<String>) -> Result<Label> {
    require_admin(v)?;
    let label = Label {
        id: Uuid::now_v7(),
        workspace_id: v.workspace_id,
        name: validate_name(name)?,
        color: validate_color(color)?,
        created_at: work.now(),
    };
    on_tx!(work.tx(), |c| sqlx::query(
        "INSERT INTO labels (id, workspace_id, name, color, created_at) VALUES ($1, $2, $3, $4, $5)"
    )
    .bind(label.id)
    .bind(label.workspace_id)
    .bind(&label.name)
    .bind(&label.color)
    .bind(label.created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .on_unique("label_exists", "a label with that name already exists")?;
    emit(work, &label);
    audit_label(work, v, AuditAction::LabelCreated, None, Some(&label)).await?;
    Ok(label)
}

/// Records a label's creation, change or deletion (`None`: it did not or no longer exists).
async fn audit_label(
    work: &mut Work,
    v: &Viewer,
    action: AuditAction,
    before: Option<&Label>,
    after: Option<&Label>,
) -> Result<()> {
    let id = before.or(after).map(|l| l.id);
    let changes = Changes::diff(before.map(Label::view).as_ref(), after.map(Label::view).as_ref());
    let entry = AuditEntry::new(v.workspace_id, v.user_id, action).target(AuditTarget::Label, id);
    audit::record(work, entry.changes(changes)).await?;
    Ok(())
}

/// Every label of a workspace, by name.
pub async fn list(db: &Db, workspace_id: Uuid) -> Result<LabelsPage> {
    let sql = format!("SELECT {COLS} FROM labels WHERE workspace_id = $1 ORDER BY name, id LIMIT 1000");
    let rows: Vec<Label> = on_db!(db, |p| sqlx::query_as(&sql).bind(workspace_id).fetch_all(p).await)?;
    Ok(LabelsPage { labels: rows.iter().map(Label::view).collect(), next_cursor: None })
}

async fn load_tx(tx: &mut Tx, workspace_id: Uuid, id: Uuid) -> Result<Label> {
    let sql = format!("SELECT {COLS} FROM labels WHERE id = $1 AND workspace_id = $2");
    on_tx!(tx, |c| sqlx::query_as(&sql).bind(id).bind(workspace_id).fetch_optional(c).await)?
        .ok_or_else(Error::not_found)
}

/// Renames or recolours label `id` (an empty color clears it).
pub async fn change(
    work: &mut Work,
    v: &Viewer,
    id: Uuid,
    name: Option<String>,
    color: Option<String>,
) -> Result<Label> {
    require_admin(v)?;
    let mut label = load_tx(work.tx(), v.workspace_id, id).await?;
    let before = label.clone();
    if let Some(name) = name {
        label.name = validate_name(&name)?;
    }
    if color.is_some() {
        label.color = validate_color(color)?;
    }
    on_tx!(work.tx(), |c| sqlx::query("UPDATE labels SET name = $1, color = $2 WHERE id = $3")
        .bind(&label.name)
        .bind(&label.color)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .on_unique("label_exists", "a label with that name already exists")?;
    emit(work, &label);
    let changes = Changes::diff(Some(&before.view()), Some(&label.view()));
    if !changes.is_empty() {
        audit_label(work, v, AuditAction::LabelUpdated, Some(&before), Some(&label)).await?;
    }
    Ok(label)
}

/// Deletes label `id`; returns it and the conversations that carried it (the caller takes it
/// off them, which ends the visibility it granted). The `label.deleted` event is recorded by
/// [`deleted`], after the conversations' own events.
pub async fn delete(work: &mut Work, v: &Viewer, id: Uuid) -> Result<(Label, Vec<Uuid>)> {
    require_admin(v)?;
    let label = load_tx(work.tx(), v.workspace_id, id).await?;
    let convs: Vec<Uuid> = on_tx!(work.tx(), |c| sqlx::query_scalar(
        "SELECT conversation_id FROM conversation_labels WHERE label_id = $1 ORDER BY conversation_id"
    )
    .bind(id)
    .fetch_all(c)
    .await)?;
    on_tx!(work.tx(), |c| sqlx::query("DELETE FROM labels WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    audit_label(work, v, AuditAction::LabelDeleted, Some(&label), None).await?;
    Ok((label, convs))
}

/// Records `label.deleted`.
pub fn deleted(work: &mut Work, label: &Label) {
    work.emit(NewEvent::new(label.workspace_id, Event::LabelDeleted(Deleted { id: label.id })));
}
