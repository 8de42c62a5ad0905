//! Lead groups: everyone reads them; creating and renaming needs `manage_groups`, deleting is
//! for admins. A lead can be in several groups (`group_ids` on the lead).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::{DbResultExt, Error, Result};
use crate::extract::{Json, Path};
use crate::inbox::leads;
use crate::state::AppState;
use crate::{on_db, on_tx, policy};

#[derive(Debug, Clone, sqlx::FromRow)]
struct Group {
    id: Uuid,
    name: String,
}

impl Group {
    fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name})
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    name: String,
}

fn require_manage(user: &CurrentUser) -> Result<()> {
    if policy::can_manage_groups(&user.viewer()) {
        Ok(())
    } else {
        Err(Error::forbidden("forbidden", "managing groups needs the manage_groups permission"))
    }
}

async fn load(st: &AppState, workspace_id: Uuid, id: Uuid) -> Result<Group> {
    on_db!(&st.db, |p| sqlx::query_as("SELECT id, name FROM crm_groups WHERE id = $1 AND workspace_id = $2")
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(p)
        .await)?
    .ok_or_else(Error::not_found)
}

#[instrument(skip_all)]
pub async fn list(State(st): State<AppState>, user: CurrentUser) -> Result<Json<Value>> {
    let rows: Vec<Group> = on_db!(&st.db, |p| sqlx::query_as(
        "SELECT id, name FROM crm_groups WHERE workspace_id = $1 ORDER BY name, id LIMIT 1000"
    )
    .bind(user.workspace_id)
    .fetch_all(p)
    .await)?;
    Ok(Json(json!({"groups": rows.iter().map(Group::to_json).collect::<Vec<_>>(), "next_cursor": null})))
}

#[instrument(skip_all)]
pub async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<GroupBody>,
) -> Result<(StatusCode, Json<Value>)> {
    require_manage(&user)?;
    let name = crate::workspace::validate_name(&body.name, "group name")?;
    let id = Uuid::now_v7();
    on_db!(&st.db, |p| sqlx::query(
        "INSERT INTO crm_groups (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4)"
    )
    .bind(id)
    .bind(user.workspace_id)
    .bind(&name)
    .bind(st.clock.now())
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
    .on_unique("duplicate_group", "a group with that name exists")?;
    Ok((StatusCode::CREATED, Json(Group { id, name }.to_json())))
}

#[instrument(skip_all)]
pub async fn patch(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<GroupBody>,
) -> Result<Json<Value>> {
    require_manage(&user)?;
    let group = load(&st, user.workspace_id, id).await?;
    let name = crate::workspace::validate_name(&body.name, "group name")?;
    on_db!(&st.db, |p| sqlx::query("UPDATE crm_groups SET name = $1 WHERE id = $2")
        .bind(&name)
        .bind(group.id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
    .on_unique("duplicate_group", "a group with that name exists")?;
    Ok(Json(Group { id, name }.to_json()))
}

/// Deleting a group takes it off its leads (each gets a `lead.updated` event).
#[instrument(skip_all)]
pub async fn delete(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    if !crate::policy::is_admin(&user.viewer()) {
        return Err(Error::forbidden("forbidden", "only admins delete groups"));
    }
    let group = load(&st, user.workspace_id, id).await?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let members: Vec<Uuid> =
        on_tx!(&mut tx, |c| sqlx::query_scalar("SELECT lead_id FROM lead_groups WHERE group_id = $1")
            .bind(group.id)
            .fetch_all(c)
            .await)?;
    on_tx!(&mut tx, |c| sqlx::query("DELETE FROM crm_groups WHERE id = $1")
        .bind(group.id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    for lead_id in members {
        let lead = leads::load_tx(&mut tx, lead_id).await?;
        leads::emit_updated(&mut tx, now, &lead).await?;
    }
    st.commit(tx).await?;
    tracing::info!(group_id = %group.id, "group deleted");
    Ok(StatusCode::NO_CONTENT)
}
