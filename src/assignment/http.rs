//! `GET/PUT /assignment`, `GET /leads/{id}/assignment-log`, `POST /leads/bulk-reassign`.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use tracing::instrument;
use uuid::Uuid;

use super::Settings;
use super::run::{self, DecisionView};
use crate::api::Api;
use crate::audit::{self, AuditAction, AuditEntry, AuditTarget, Changes};
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::events::Work;
use crate::extract::{Json, Path};
use crate::inbox::leads;
use crate::policy::inbox as may;
use crate::state::AppState;

pub fn routes() -> Api {
    Api::new()
        .get("/assignment", get)
        .put("/assignment", put)
        .get("/leads/{id}/assignment-log", log)
        .post("/leads/bulk-reassign", bulk_reassign)
}

#[utoipa::path(
    get,
    path = "/assignment",
    tag = "assignment",
    description = "The workspace's assignment settings (mode, rules).",
    responses((status = 200, description = "OK.", body = Settings))
)]
#[instrument(skip_all)]
pub async fn get(State(st): State<AppState>, user: CurrentUser) -> Result<Json<Settings>> {
    let mut tx = st.db.begin().await?;
    let s = super::load(&mut tx, user.workspace_id).await?;
    tx.commit().await?;
    Ok(Json(s))
}

#[utoipa::path(
    put,
    path = "/assignment",
    tag = "assignment",
    description = "Replaces the workspace's assignment settings.",
    request_body = Settings,
    responses((status = 200, description = "OK.", body = Settings))
)]
#[instrument(skip_all)]
pub async fn put(State(st): State<AppState>, user: CurrentUser, Json(body): Json<Settings>) -> Result<Json<Settings>> {
    may::can_change_assignment(&user.viewer()).map_err(|_| {
        Error::forbidden("forbidden", "changing assignment settings needs admin or the manage_members permission")
    })?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let before = super::load(&mut tx, user.workspace_id).await?;
    let s = super::save(&mut tx, user.workspace_id, &body, now).await?;
    let changes = Changes::diff(Some(&before), Some(&s));
    if !changes.is_empty() {
        let entry = AuditEntry::new(user.workspace_id, user.id, AuditAction::AssignmentUpdated)
            .target(AuditTarget::AssignmentSettings, None)
            .changes(changes);
        audit::record_tx(&mut tx, now, entry).await?;
    }
    tx.commit().await?;
    tracing::info!(mode = %s.mode, rules = s.rules.len(), "assignment settings changed");
    Ok(Json(s))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DecisionLog {
    decisions: Vec<DecisionView>,
}

/// Every decision about a visible lead, oldest first.
#[utoipa::path(
    get,
    path = "/leads/{id}/assignment-log",
    tag = "assignment",
    description = "Every assignment decision about a visible lead, oldest first.",
    responses((status = 200, description = "OK.", body = DecisionLog))
)]
#[instrument(skip_all)]
pub async fn log(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<DecisionLog>> {
    let lead = leads::get_visible(&st.db, &user.viewer(), id).await?;
    Ok(Json(DecisionLog { decisions: run::decisions(&st.db, lead.id).await? }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkReassign {
    /// `null`: unassigned leads (then `lead_ids` is required).
    #[serde(default, deserialize_with = "crate::extract::present")]
    from_member_id: Option<Option<Uuid>>,
    to_member_id: Uuid,
    #[serde(default)]
    lead_ids: Option<Vec<Uuid>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Moved {
    moved: usize,
}

/// Moves `from`'s leads (all, or the listed ones still assigned to them) and their
/// conversations assigned to `from` to `to`, in one transaction; `from_member_id: null` gives
/// the listed unassigned leads (and their unassigned conversations) to `to`.
#[utoipa::path(
    post,
    path = "/leads/bulk-reassign",
    tag = "assignment",
    description = "Moves a member's leads (all, or the listed ones) and their conversations to another member.",
    request_body = BulkReassign,
    responses((status = 200, description = "OK.", body = Moved))
)]
#[instrument(skip_all)]
pub async fn bulk_reassign(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<BulkReassign>,
) -> Result<Json<Moved>> {
    let from = body
        .from_member_id
        .ok_or_else(|| Error::unprocessable("invalid_body", "from_member_id: required (a member id, or null)"))?;
    let v = user.viewer();
    match from {
        Some(_) => may::can_bulk_reassign(&v).map_err(|_| {
            Error::forbidden("forbidden", "bulk reassignment needs admin or the view_others_leads permission")
        })?,
        None => may::can_bulk_assign_unassigned(&v).map_err(|_| {
            Error::forbidden(
                "forbidden",
                "assigning unassigned leads in bulk needs admin or both view_unassigned and view_others_leads",
            )
        })?,
    }
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let to = body.to_member_id;
    let moved = run::bulk_reassign(&mut work, user.workspace_id, from, to, body.lead_ids.as_deref(), user.id).await?;
    if from == Some(to) {
        return Ok(Json(Moved { moved: 0 }));
    }
    work.commit(&st.hub).await?;
    tracing::info!(moved, "leads reassigned in bulk");
    Ok(Json(Moved { moved }))
}
