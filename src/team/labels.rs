//! Labels: put on conversations, granted to members (a grant lets the member see the
//! conversations carrying the label). Everyone reads them; only admins create, edit, delete.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::db::Tx;
use crate::error::{DbResultExt, Error, Result};
use crate::events::{self, NewEvent};
use crate::extract::{Json, Path};
use crate::state::AppState;
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
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "color": self.color, "created_at": self.created_at})
    }
}

const COLS: &str = "id, workspace_id, name, color, created_at";

fn require_admin(user: &CurrentUser) -> Result<()> {
    if user.is_admin() { Ok(()) } else { Err(Error::forbidden("forbidden", "only admins manage labels")) }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateLabel {
    name: String,
    color: Option<String>,
}

#[instrument(skip_all)]
pub async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateLabel>,
) -> Result<(StatusCode, Json<Value>)> {
    require_admin(&user)?;
    let label = Label {
        id: Uuid::now_v7(),
        workspace_id: user.workspace_id,
        name: validate_name(&body.name)?,
        color: validate_color(body.color)?,
        created_at: st.clock.now(),
    };
    let mut tx = st.db.begin().await?;
    on_tx!(&mut tx, |c| sqlx::query(
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
    events::append(&mut tx, label.created_at, NewEvent::raw(label.workspace_id, "label.updated", label.to_json()))
        .await?;
    st.commit(tx).await?;
    tracing::info!(label_id = %label.id, "label created");
    Ok((StatusCode::CREATED, Json(label.to_json())))
}

#[instrument(skip_all)]
pub async fn list(State(st): State<AppState>, user: CurrentUser) -> Result<Json<Value>> {
    let sql = format!("SELECT {COLS} FROM labels WHERE workspace_id = $1 ORDER BY name, id LIMIT 1000");
    let rows: Vec<Label> = on_db!(&st.db, |p| sqlx::query_as(&sql).bind(user.workspace_id).fetch_all(p).await)?;
    Ok(Json(json!({"labels": rows.iter().map(Label::to_json).collect::<Vec<_>>(), "next_cursor": null})))
}

async fn load_tx(tx: &mut Tx, workspace_id: Uuid, id: Uuid) -> Result<Label> {
    let sql = format!("SELECT {COLS} FROM labels WHERE id = $1 AND workspace_id = $2");
    on_tx!(tx, |c| sqlx::query_as(&sql).bind(id).bind(workspace_id).fetch_optional(c).await)?
        .ok_or_else(Error::not_found)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchLabel {
    name: Option<String>,
    color: Option<String>,
}

#[instrument(skip_all)]
pub async fn patch(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchLabel>,
) -> Result<Json<Value>> {
    require_admin(&user)?;
    let mut tx = st.db.begin().await?;
    let mut label = load_tx(&mut tx, user.workspace_id, id).await?;
    if let Some(name) = body.name {
        label.name = validate_name(&name)?;
    }
    if body.color.is_some() {
        label.color = validate_color(body.color)?;
    }
    on_tx!(&mut tx, |c| sqlx::query("UPDATE labels SET name = $1, color = $2 WHERE id = $3")
        .bind(&label.name)
        .bind(&label.color)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .on_unique("label_exists", "a label with that name already exists")?;
    events::append(&mut tx, st.clock.now(), NewEvent::raw(label.workspace_id, "label.updated", label.to_json()))
        .await?;
    st.commit(tx).await?;
    Ok(Json(label.to_json()))
}

/// Deleting a label takes it off every conversation and member (the visibility it granted ends).
#[instrument(skip_all)]
pub async fn delete(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    require_admin(&user)?;
    let mut tx = st.db.begin().await?;
    let label = load_tx(&mut tx, user.workspace_id, id).await?;
    let convs: Vec<Uuid> = on_tx!(&mut tx, |c| sqlx::query_scalar(
        "SELECT conversation_id FROM conversation_labels WHERE label_id = $1 ORDER BY conversation_id"
    )
    .bind(id)
    .fetch_all(c)
    .await)?;
    on_tx!(&mut tx, |c| sqlx::query("DELETE FROM labels WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let now = st.clock.now();
    let mut buffer = events::Buffer::default();
    let mut unit = events::Buffered { tx: &mut tx, events: &mut buffer, now };
    crate::inbox::ownership::label_removed(&mut unit, &convs, (id, &label.name), user.id).await?;
    buffer.flush(&mut tx).await?;
    events::append(&mut tx, now, NewEvent::raw(label.workspace_id, "label.deleted", json!({"id": id}))).await?;
    st.commit(tx).await?;
    tracing::info!(label_id = %id, "label deleted");
    Ok(StatusCode::NO_CONTENT)
}
