//! `GET/POST /groups`, `PATCH/DELETE /groups/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tracing::instrument;
use uuid::Uuid;

use super::forbidden;
use crate::audit::{self, AuditAction, AuditEntry, AuditTarget, Changes};
use crate::auth::CurrentUser;
use crate::error::Result;
use crate::events::Work;
use crate::extract::{Json, Path};
use crate::inbox::groups;
use crate::policy::inbox as may;
use crate::state::AppState;
use crate::views::number::{GroupView, GroupsPage};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    name: String,
}

fn require_manage(user: &CurrentUser) -> Result<()> {
    may::can_manage_groups(&user.viewer())
        .map_err(|d| forbidden(d, "managing groups needs the manage_groups permission"))
}

#[utoipa::path(
    get,
    path = "/groups",
    tag = "inbox",
    description = "The workspace's lead groups.",
    responses((status = 200, description = "OK.", body = GroupsPage))
)]
#[instrument(skip_all)]
pub async fn list(State(st): State<AppState>, user: CurrentUser) -> Result<Json<GroupsPage>> {
    Ok(Json(GroupsPage { groups: groups::list(&st.db, user.workspace_id).await?, next_cursor: None }))
}

#[utoipa::path(
    post,
    path = "/groups",
    tag = "inbox",
    description = "Creates a lead group.",
    request_body = GroupBody,
    responses((status = 201, description = "Created.", body = GroupView))
)]
#[instrument(skip_all)]
pub async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<GroupBody>,
) -> Result<(StatusCode, Json<GroupView>)> {
    require_manage(&user)?;
    let name = crate::workspace::validate_name(&body.name, "group name")?;
    let group = groups::create(&st.db, user.workspace_id, name, st.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

#[utoipa::path(
    patch,
    path = "/groups/{id}",
    tag = "inbox",
    description = "Changes a lead group.",
    request_body = GroupBody,
    responses((status = 200, description = "OK.", body = GroupView))
)]
#[instrument(skip_all)]
pub async fn patch(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<GroupBody>,
) -> Result<Json<GroupView>> {
    require_manage(&user)?;
    let group = groups::load(&st.db, user.workspace_id, id).await?;
    let name = crate::workspace::validate_name(&body.name, "group name")?;
    Ok(Json(groups::rename(&st.db, &group, name).await?))
}

/// Deleting a group takes it off its leads (each gets a `lead.updated` event).
#[utoipa::path(
    delete,
    path = "/groups/{id}",
    tag = "inbox",
    description = "Deletes a lead group and takes it off its leads.",
    responses((status = 204, description = "Done."))
)]
#[instrument(skip_all)]
pub async fn delete(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    may::can_delete_group(&user.viewer()).map_err(|d| forbidden(d, "only admins delete groups"))?;
    let group = groups::load(&st.db, user.workspace_id, id).await?;
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    groups::delete(&mut work, &group).await?;
    let entry = AuditEntry::new(user.workspace_id, user.id, AuditAction::GroupDeleted)
        .target(AuditTarget::Group, group.id)
        .changes(Changes::diff(Some(&group), None));
    audit::record(&mut work, entry).await?;
    work.commit(&st.hub).await?;
    tracing::info!(group_id = %group.id, "group deleted");
    Ok(StatusCode::NO_CONTENT)
}
