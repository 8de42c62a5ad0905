//! `GET` and `PATCH /workspace`.

use axum::extract::State;
use serde::Deserialize;
use tracing::instrument;

use super::Settings;
use crate::api::Api;
use crate::audit::{self, AuditAction, AuditEntry, Changes};
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::extract::Json;
use crate::policy::team::may_change_workspace;
use crate::state::AppState;
use crate::views::agency::ManagedWorkspace;
use crate::views::workspace::WorkspaceView;

pub fn routes() -> Api {
    Api::new().get("/workspace", get).patch("/workspace", patch)
}

#[utoipa::path(
    get,
    path = "/workspace",
    tag = "workspace",
    description = "The caller's workspace and its settings, with the agency managing it (`managed_by`, or null).",
    responses((status = 200, description = "OK.", body = crate::views::agency::ManagedWorkspace))
)]
#[instrument(skip_all)]
pub async fn get(State(st): State<AppState>, user: CurrentUser) -> Result<Json<ManagedWorkspace>> {
    let workspace = super::get(&st.db, user.workspace_id).await?;
    let managed_by = crate::agency::managed_by(&st.db, user.workspace_id).await?;
    Ok(Json(ManagedWorkspace { workspace, managed_by }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWorkspace {
    session_gap_secs: Option<i64>,
    name: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/workspace",
    tag = "workspace",
    description = "Changes workspace settings (admins).",
    request_body = PatchWorkspace,
    responses((status = 200, description = "OK.", body = WorkspaceView))
)]
#[instrument(skip_all)]
pub async fn patch(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<PatchWorkspace>,
) -> Result<Json<WorkspaceView>> {
    may_change_workspace(&user.viewer())
        .map_err(|_| Error::forbidden("forbidden", "only admins change workspace settings"))?;
    let settings = Settings { session_gap_secs: body.session_gap_secs, name: body.name };
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let (before, after) = super::update(&mut tx, user.workspace_id, settings).await?;
    let changes = Changes::diff(Some(&before), Some(&after));
    if !changes.is_empty() {
        let entry = AuditEntry::new(user.workspace_id, user.id, AuditAction::WorkspaceUpdated).changes(changes);
        audit::record_tx(&mut tx, now, entry).await?;
    }
    tx.commit().await?;
    Ok(Json(after))
}
