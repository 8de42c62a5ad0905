//! Assign, claim, status, labels and explicit access of a conversation. Each handler loads the
//! conversation as the caller sees it (404 otherwise), asks the policy, then changes it; the
//! answer is the conversation as it now is, with `can`.
//!
//! Labels (`PUT .../labels`) may be set by admins, the assignee and members with
//! `view_others_leads` who see the conversation — the people who may assign it.
//! Explicit access (`POST/DELETE .../access`) is changed by admins and the assignee; anyone who
//! sees the conversation may read the access listing.

use std::collections::HashMap;

use axum::extract::State;
use serde::Deserialize;
use tracing::instrument;
use uuid::Uuid;

use crate::audit::{self, AuditAction, AuditEntry, AuditTarget, Changes};
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::events::Work;
use crate::extract::{Json, Path};
use crate::inbox::conversations::{self, Conversation};
use crate::inbox::ownership::{self, denied, load};
use crate::policy::{self, Denied, Viewer};
use crate::state::AppState;
use crate::views::conversation::{AccessListing, AccessMember, ConversationStatus, ConversationView};

/// The conversation as it is after a change by `v`, with `can`.
async fn answer(st: &AppState, v: &Viewer, c: &Conversation) -> Result<Json<ConversationView>> {
    Ok(Json(conversations::answer(&st.db, v, c).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    #[serde(default)]
    assignee_id: Option<Uuid>,
}

#[utoipa::path(
    post,
    path = "/conversations/{id}/assign",
    tag = "inbox",
    description = "Assigns the conversation to a member, or unassigns it.",
    request_body = Assign,
    responses((status = 200, description = "OK.", body = ConversationView))
)]
#[instrument(skip_all)]
pub async fn assign(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<Assign>,
) -> Result<Json<ConversationView>> {
    let v = user.viewer();
    let (conv, facts) = load(&st.db, &v, id).await?;
    policy::can_assign(&v, &facts).map_err(denied)?;
    let assignee = body.assignee_id.ok_or_else(|| {
        Error::unprocessable("cannot_unassign", "assignee_id is required; a conversation never goes back to unassigned")
    })?;
    let mut c = conv.into_inner();
    if c.assignee_id != Some(assignee) {
        let mut work = Work::begin(&st.db, st.clock.now()).await?;
        ownership::assign(&mut work, &mut c, assignee, user.id).await?;
        work.commit(&st.hub).await?;
        tracing::info!(conversation_id = %id, "conversation assigned");
    }
    answer(&st, &v, &c).await
}

#[utoipa::path(
    post,
    path = "/conversations/{id}/claim",
    tag = "inbox",
    description = "The caller takes an unassigned conversation.",
    responses((status = 200, description = "OK.", body = ConversationView))
)]
#[instrument(skip_all)]
pub async fn claim(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<ConversationView>> {
    let v = user.viewer();
    let (conv, facts) = load(&st.db, &v, id).await?;
    policy::can_claim(&v, &facts).map_err(|d| match d {
        Denied::Forbidden => Error::forbidden("forbidden", "claiming needs the view_unassigned permission"),
        other => denied(other),
    })?;
    let mut c = conv.into_inner();
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    ownership::claim(&mut work, &mut c, user.id).await?;
    work.commit(&st.hub).await?;
    tracing::info!(conversation_id = %id, "conversation claimed");
    answer(&st, &v, &c).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStatus {
    status: String,
}

#[utoipa::path(
    post,
    path = "/conversations/{id}/status",
    tag = "inbox",
    description = "Opens or closes the conversation.",
    request_body = SetStatus,
    responses((status = 200, description = "OK.", body = ConversationView))
)]
#[instrument(skip_all)]
pub async fn set_status(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<SetStatus>,
) -> Result<Json<ConversationView>> {
    let v = user.viewer();
    let (conv, facts) = load(&st.db, &v, id).await?;
    policy::inbox::can_change_status(&v, &facts).map_err(denied)?;
    let status = ConversationStatus::parse(&body.status)
        .ok_or_else(|| Error::unprocessable("invalid_status", "status must be open or closed"))?;
    let mut c = conv.into_inner();
    if c.status != status {
        let mut work = Work::begin(&st.db, st.clock.now()).await?;
        ownership::set_status(&mut work, &mut c, status, user.id).await?;
        work.commit(&st.hub).await?;
    }
    answer(&st, &v, &c).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLabels {
    label_ids: Vec<Uuid>,
}

#[utoipa::path(
    put,
    path = "/conversations/{id}/labels",
    tag = "inbox",
    description = "Replaces the conversation's labels.",
    request_body = SetLabels,
    responses((status = 200, description = "OK.", body = ConversationView))
)]
#[instrument(skip_all)]
pub async fn set_labels(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<SetLabels>,
) -> Result<Json<ConversationView>> {
    let v = user.viewer();
    let (conv, facts) = load(&st.db, &v, id).await?;
    policy::can_label(&v, &facts).map_err(denied)?;
    let mut c = conv.into_inner();
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let wanted = crate::team::labels::check_labels(work.tx(), c.workspace_id, body.label_ids).await?;
    let mut names = HashMap::new();
    for l in wanted.iter().chain(&c.label_ids) {
        if let Some(name) = crate::team::labels::name_tx(work.tx(), *l).await? {
            names.insert(*l, name);
        }
    }
    ownership::set_labels(&mut work, &mut c, wanted, &names, user.id).await?;
    work.commit(&st.hub).await?;
    answer(&st, &v, &c).await
}

/// Who can see a conversation and why (`admin`, `assignee`, `granted_label`, `explicit`,
/// `others_flag`, `unassigned_flag`), from the same policy every read path uses.
async fn access_listing(st: &AppState, c: &Conversation) -> Result<Json<AccessListing>> {
    let explicit = conversations::access_ids(&st.db, c.id).await?;
    let facts = c.facts(explicit.clone());
    let members = crate::team::active_members(&st.db, c.workspace_id).await?;
    let members = members
        .iter()
        .filter_map(|m| {
            let reasons = policy::reasons(&m.viewer(), &facts);
            (!reasons.is_empty()).then(|| AccessMember {
                member_id: m.id,
                name: m.name.clone(),
                email: m.email.clone(),
                role: m.role(),
                reasons,
            })
        })
        .collect();
    Ok(Json(AccessListing {
        conversation_id: c.id,
        assignee_id: c.assignee_id,
        label_ids: c.label_ids.clone(),
        explicit_member_ids: explicit,
        members,
    }))
}

#[utoipa::path(
    get,
    path = "/conversations/{id}/access",
    tag = "inbox",
    description = "The members given explicit access to the conversation.",
    responses((status = 200, description = "OK.", body = AccessListing))
)]
#[instrument(skip_all)]
pub async fn get_access(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<AccessListing>> {
    let conv = conversations::get_visible(&st.db, &user.viewer(), id).await?;
    access_listing(&st, &conv).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberIds {
    member_ids: Vec<Uuid>,
}

#[utoipa::path(
    post,
    path = "/conversations/{id}/access",
    tag = "inbox",
    description = "Gives members explicit access to the conversation.",
    request_body = MemberIds,
    responses((status = 200, description = "OK.", body = AccessListing))
)]
#[instrument(skip_all)]
pub async fn add_access(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<MemberIds>,
) -> Result<Json<AccessListing>> {
    change_access(st, user, id, body.member_ids, true).await
}

#[utoipa::path(
    delete,
    path = "/conversations/{id}/access",
    tag = "inbox",
    description = "Takes explicit access to the conversation from members.",
    request_body = MemberIds,
    responses((status = 200, description = "OK.", body = AccessListing))
)]
#[instrument(skip_all)]
pub async fn remove_access(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<MemberIds>,
) -> Result<Json<AccessListing>> {
    change_access(st, user, id, body.member_ids, false).await
}

async fn change_access(
    st: AppState,
    user: CurrentUser,
    id: Uuid,
    ids: Vec<Uuid>,
    grant: bool,
) -> Result<Json<AccessListing>> {
    let v = user.viewer();
    let (conv, facts) = load(&st.db, &v, id).await?;
    policy::can_manage_access(&v, &facts).map_err(|_| {
        Error::forbidden("forbidden", "only admins and the conversation's assignee may change who has access")
    })?;
    let mut c = conv.into_inner();
    let ids = crate::team::dedup(ids);
    let before = facts.access_ids.clone();
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    if ownership::change_access(&mut work, &mut c, &ids, grant, user.id).await? {
        let mut after: Vec<Uuid> = before.iter().copied().filter(|m| grant || !ids.contains(m)).collect();
        if grant {
            after.extend(ids.iter().copied().filter(|m| !before.contains(m)));
        }
        let (before, after) = (crate::team::dedup(before), crate::team::dedup(after));
        let action =
            if grant { AuditAction::ConversationAccessGranted } else { AuditAction::ConversationAccessRevoked };
        let entry = AuditEntry::new(c.workspace_id, user.id, action)
            .target(AuditTarget::Conversation, c.id)
            .changes(Changes::new().field("member_ids", before, after));
        audit::record(&mut work, entry).await?;
        work.commit(&st.hub).await?;
    }
    access_listing(&st, &c).await
}
