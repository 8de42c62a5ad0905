//! The team's routes: invitations, members, labels.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tracing::instrument;
use uuid::Uuid;

use super::invitations::{self, Invite};
use super::members::{self, Change};
use super::{MemberStatus, labels, preferences, teams};
use crate::api::Api;
use crate::auth::http::issue_session;
use crate::auth::{CurrentUser, password};
use crate::db::{cursor, page_limit};
use crate::distribution;
use crate::error::{Error, Result};
use crate::events::Work;
use crate::extract::{Json, Path, Query};
use crate::mail;
use crate::policy::{Permissions, Role};
use crate::state::AppState;
use crate::views::auth::UserOut;
use crate::views::conversation::LostCause;
use crate::views::preferences::Preferences;
use crate::views::team::{
    InvitationView, InvitationsView, InviteAnswer, LabelView, LabelsPage, MemberView, MembersPage, TeamView, TeamsPage,
};
use crate::workspace::{validate_email, validate_name};

pub fn routes() -> Api {
    Api::new()
        .post("/invitations", invite)
        .post("/invitations/accept", accept)
        .post("/invitations/{id}/resend", resend)
        .delete("/invitations/{id}", cancel)
        .get("/members", list_members)
        .get("/members/{id}", get_member)
        .patch("/members/{id}", patch_member)
        .post("/members/{id}/deactivate", deactivate)
        .post("/members/{id}/reactivate", reactivate)
        .get("/labels", list_labels)
        .post("/labels", create_label)
        .patch("/labels/{id}", patch_label)
        .delete("/labels/{id}", delete_label)
        .get("/teams", list_teams)
        .post("/teams", create_team)
        .patch("/teams/{id}", patch_team)
        .delete("/teams/{id}", delete_team)
        .get("/me/preferences", get_preferences)
        .put("/me/preferences", put_preferences)
}

fn parse_role(raw: Option<&str>) -> Result<Option<Role>> {
    raw.map(|r| Role::parse(r).ok_or_else(|| Error::unprocessable("invalid_role", "role must be admin or member")))
        .transpose()
}

// ---- Invitations ----

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    email: String,
    name: Option<String>,
    role: Option<String>,
    #[serde(default)]
    permissions: Permissions,
    #[serde(default)]
    label_ids: Vec<Uuid>,
}

/// At most this many comma-separated emails in one `POST /invitations`.
const MAX_EMAILS: usize = 50;

/// The emails of an invitation: one, or several separated by commas (each validated,
/// duplicates dropped, order kept).
fn parse_emails(raw: &str) -> Result<Vec<String>> {
    let mut emails: Vec<String> = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let email = validate_email(part)
            .map_err(|_| Error::unprocessable("invalid_email", format!("{part} is not a valid address")))?;
        if !emails.contains(&email) {
            emails.push(email);
        }
    }
    if emails.is_empty() {
        return Err(Error::unprocessable("invalid_email", "email is not a valid address"));
    }
    if emails.len() > MAX_EMAILS {
        return Err(Error::unprocessable("too_many_emails", format!("at most {MAX_EMAILS} emails at once")));
    }
    Ok(emails)
}

/// Invites one member, or several at once (`"email": "a@x.com, b@y.com"`: all or none, each
/// with the same role, permissions and labels; a `name` is then refused, as it would be
/// everyone's).
#[utoipa::path(
    post,
    path = "/invitations",
    tag = "team",
    description = "Invites one member, or several at once (comma-separated emails: all or none), and mails each an invitation link.",
    request_body = InviteBody,
    responses((status = 201, description = "Created.", body = InviteAnswer))
)]
#[instrument(skip_all)]
pub async fn invite(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<InviteBody>,
) -> Result<(StatusCode, Json<InviteAnswer>)> {
    let v = user.viewer();
    let role = parse_role(body.role.as_deref())?.unwrap_or(Role::Member);
    super::require_manage(&v, role)?;
    let emails = parse_emails(&body.email)?;
    let name = body.name.as_deref().map(|n| validate_name(n, "name")).transpose()?;
    if name.is_some() && emails.len() > 1 {
        return Err(Error::unprocessable("name_with_several_emails", "a name goes with one email only"));
    }
    let several = emails.len() > 1;
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let mut answers = Vec::with_capacity(emails.len());
    let mut mailed = false;
    for email in emails {
        let name = name.clone().unwrap_or_else(|| email.split('@').next().unwrap_or("member").to_owned());
        let i = Invite { email, name, role, permissions: body.permissions, label_ids: body.label_ids.clone() };
        let answer = invitations::invite(&mut work, &v, i).await?;
        mailed |= queue_invitation_mail(&st, &mut work, &user, &answer).await?;
        answers.push(answer);
    }
    work.commit(&st.hub).await?;
    if mailed {
        st.mail_wake.notify_one();
    }
    for a in &answers {
        tracing::info!(member_id = %a.member.id, mailed, "member invited");
    }
    let answer = if several {
        InviteAnswer::Many(InvitationsView { invitations: answers })
    } else {
        InviteAnswer::One(answers.pop().expect("one email at least"))
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

/// With SMTP configured, queues the invitation mail with its accept link in `work` (the API
/// still answers the token to the inviter). Returns whether a mail was queued.
async fn queue_invitation_mail(
    st: &AppState,
    work: &mut Work,
    inviter: &CurrentUser,
    answer: &InvitationView,
) -> Result<bool> {
    if st.config.smtp_url.is_none() {
        return Ok(false);
    }
    let workspace = mail::workspace_name(work.tx(), inviter.workspace_id).await?;
    let link = mail::public_link(&st.config.public_url, &format!("#/accept/{}", answer.accept_token));
    let message = mail::Invitation {
        to: &answer.member.email,
        workspace: &workspace,
        inviter: &inviter.name,
        accept_url: &link,
        valid_days: invitations::INVITATION_TTL.num_days(),
    }
    .mail();
    let now = work.now();
    mail::enqueue(work.tx(), Some(inviter.workspace_id), &message, now).await?;
    Ok(true)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    accept_token: String,
    password: String,
    name: Option<String>,
}

/// Accepting answers exactly as login does (201): the invited member is signed in.
#[utoipa::path(
    post,
    path = "/invitations/accept",
    tag = "team",
    description = "Accepts an invitation with its token, sets the password and signs the new member in (answers as login does).",
    request_body = AcceptBody,
    responses((status = 201, description = "Accepted and signed in.", body = crate::views::auth::SessionView))
)]
#[instrument(skip_all)]
pub async fn accept(State(st): State<AppState>, Json(body): Json<AcceptBody>) -> Result<Response> {
    password::validate(&body.password)?;
    let name = body.name.as_deref().map(|n| validate_name(n, "name")).transpose()?;
    let now = st.clock.now();
    let inv = invitations::usable(&st.db, &body.accept_token, now).await?;
    let password_hash = password::hash(body.password).await?;
    let mut work = Work::begin(&st.db, now).await?;
    let member = invitations::accept(&mut work, inv, &password_hash, name.as_deref()).await?;
    // Leads distributed to this email before it had an account arrive now.
    let waited = distribution::deliver_waiting(&mut work, member.id, member.workspace_id, &member.email).await?;
    work.commit(&st.hub).await?;
    tracing::info!(member_id = %member.id, distributed_leads = waited, "invitation accepted");
    let user = UserOut {
        id: member.id,
        email: member.email.clone(),
        name: member.name.clone(),
        role: member.role(),
        workspace_id: member.workspace_id,
    };
    issue_session(&st, user, StatusCode::CREATED).await
}

#[utoipa::path(
    post,
    path = "/invitations/{id}/resend",
    tag = "team",
    description = "Sends a pending invitation again with a fresh token.",
    responses((status = 200, description = "OK.", body = InvitationView))
)]
#[instrument(skip_all)]
pub async fn resend(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<InvitationView>> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let answer = invitations::resend(&mut work, &user.viewer(), id).await?;
    let mailed = queue_invitation_mail(&st, &mut work, &user, &answer).await?;
    work.commit(&st.hub).await?;
    if mailed {
        st.mail_wake.notify_one();
    }
    tracing::info!(member_id = %id, mailed, "invitation resent");
    Ok(Json(answer))
}

#[utoipa::path(
    delete,
    path = "/invitations/{id}",
    tag = "team",
    description = "Cancels a pending invitation.",
    responses((status = 204, description = "Done."))
)]
#[instrument(skip_all)]
pub async fn cancel(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    invitations::cancel(&mut work, &user.viewer(), id).await?;
    work.commit(&st.hub).await?;
    tracing::info!(member_id = %id, "invitation cancelled");
    Ok(StatusCode::NO_CONTENT)
}

// ---- Members ----

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListMembers {
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/members",
    tag = "team",
    description = "The workspace's members, filtered by status, paginated.",
    params(ListMembers),
    responses((status = 200, description = "OK.", body = MembersPage))
)]
#[instrument(skip_all)]
pub async fn list_members(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ListMembers>,
) -> Result<Json<MembersPage>> {
    let limit = page_limit(q.limit)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            MemberStatus::parse(s).ok_or_else(|| {
                Error::bad_request("invalid_filter", "status must be invite_sent, active or deactivated")
            })
        })
        .transpose()?;
    let after = q.cursor.as_deref().map(cursor::decode).transpose()?;
    let mut page = members::list(&st.db, user.workspace_id, status, after, limit).await?;
    for m in &mut page.members {
        m.presence = Some(st.presence.availability(m.id));
    }
    Ok(Json(page))
}

#[utoipa::path(
    get,
    path = "/members/{id}",
    tag = "team",
    description = "One member.",
    responses((status = 200, description = "OK.", body = MemberView))
)]
#[instrument(skip_all)]
pub async fn get_member(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<MemberView>> {
    Ok(Json(super::load(&st.db, user.workspace_id, id).await?.view()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMember {
    permissions: Option<Permissions>,
    role: Option<String>,
    label_ids: Option<Vec<Uuid>>,
    name: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/members/{id}",
    tag = "team",
    description = "Changes a member's name, role, permissions, labels or team (admins).",
    request_body = PatchMember,
    responses((status = 200, description = "OK.", body = MemberView))
)]
#[instrument(skip_all)]
pub async fn patch_member(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchMember>,
) -> Result<Json<MemberView>> {
    let role = parse_role(body.role.as_deref())?;
    let name = body.name.as_deref().map(|n| validate_name(n, "name")).transpose()?;
    let change = Change { permissions: body.permissions, role, label_ids: body.label_ids, name };
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let member = members::change(&mut work, &user.viewer(), id, change).await?;
    work.commit(&st.hub).await?;
    tracing::info!(member_id = %id, "member updated");
    Ok(Json(member.view()))
}

#[utoipa::path(
    post,
    path = "/members/{id}/deactivate",
    tag = "team",
    description = "Deactivates a member: their sessions end and they can no longer sign in.",
    responses((status = 200, description = "OK.", body = MemberView))
)]
#[instrument(skip_all)]
pub async fn deactivate(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<MemberView>> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let member = members::deactivate(&mut work, &user.viewer(), id).await?;
    work.commit(&st.hub).await?;
    tracing::info!(member_id = %id, "member deactivated");
    Ok(Json(member.view()))
}

#[utoipa::path(
    post,
    path = "/members/{id}/reactivate",
    tag = "team",
    description = "Reactivates a deactivated member.",
    responses((status = 200, description = "OK.", body = MemberView))
)]
#[instrument(skip_all)]
pub async fn reactivate(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<MemberView>> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let member = members::reactivate(&mut work, &user.viewer(), id).await?;
    work.commit(&st.hub).await?;
    tracing::info!(member_id = %id, "member reactivated");
    Ok(Json(member.view()))
}

// ---- Labels ----

#[utoipa::path(
    get,
    path = "/labels",
    tag = "team",
    description = "The workspace's labels.",
    responses((status = 200, description = "OK.", body = LabelsPage))
)]
#[instrument(skip_all)]
pub async fn list_labels(State(st): State<AppState>, user: CurrentUser) -> Result<Json<LabelsPage>> {
    Ok(Json(labels::list(&st.db, user.workspace_id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLabel {
    name: String,
    color: Option<String>,
}

#[utoipa::path(
    post,
    path = "/labels",
    tag = "team",
    description = "Creates a label.",
    request_body = CreateLabel,
    responses((status = 201, description = "Created.", body = LabelView))
)]
#[instrument(skip_all)]
pub async fn create_label(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateLabel>,
) -> Result<(StatusCode, Json<LabelView>)> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let label = labels::create(&mut work, &user.viewer(), &body.name, body.color).await?;
    work.commit(&st.hub).await?;
    tracing::info!(label_id = %label.id, "label created");
    Ok((StatusCode::CREATED, Json(label.view())))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchLabel {
    name: Option<String>,
    color: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/labels/{id}",
    tag = "team",
    description = "Renames or recolours a label.",
    request_body = PatchLabel,
    responses((status = 200, description = "OK.", body = LabelView))
)]
#[instrument(skip_all)]
pub async fn patch_label(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchLabel>,
) -> Result<Json<LabelView>> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let label = labels::change(&mut work, &user.viewer(), id, body.name, body.color).await?;
    work.commit(&st.hub).await?;
    Ok(Json(label.view()))
}

/// Deleting a label takes it off every conversation and member (the visibility it granted ends).
#[utoipa::path(
    delete,
    path = "/labels/{id}",
    tag = "team",
    description = "Deletes a label and takes it off every conversation and member.",
    responses((status = 204, description = "Done."))
)]
#[instrument(skip_all)]
pub async fn delete_label(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let seen = crate::inbox::lost::before_label(work.tx(), id).await?;
    let (label, convs) = labels::delete(&mut work, &user.viewer(), id).await?;
    crate::inbox::ownership::label_removed(&mut work, &convs, (id, &label.name), user.id).await?;
    crate::inbox::lost::after(&mut work, seen, LostCause::Label, Some(user.id)).await?;
    labels::deleted(&mut work, &label);
    work.commit(&st.hub).await?;
    tracing::info!(label_id = %id, "label deleted");
    Ok(StatusCode::NO_CONTENT)
}

// ---- Teams ----

#[utoipa::path(
    get,
    path = "/teams",
    tag = "team",
    description = "The workspace's teams.",
    responses((status = 200, description = "OK.", body = TeamsPage))
)]
#[instrument(skip_all)]
pub async fn list_teams(State(st): State<AppState>, user: CurrentUser) -> Result<Json<TeamsPage>> {
    Ok(Json(teams::list(&st.db, user.workspace_id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    name: String,
    #[serde(default)]
    member_ids: Vec<Uuid>,
}

#[utoipa::path(
    post,
    path = "/teams",
    tag = "team",
    description = "Creates a team.",
    request_body = CreateTeam,
    responses((status = 201, description = "Created.", body = TeamView))
)]
#[instrument(skip_all)]
pub async fn create_team(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateTeam>,
) -> Result<(StatusCode, Json<TeamView>)> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let team = teams::create(&mut work, &user.viewer(), &body.name, body.member_ids).await?;
    work.commit(&st.hub).await?;
    tracing::info!(team_id = %team.id, members = team.member_ids.len(), "team created");
    Ok((StatusCode::CREATED, Json(team.view())))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTeam {
    name: Option<String>,
    member_ids: Option<Vec<Uuid>>,
}

#[utoipa::path(
    patch,
    path = "/teams/{id}",
    tag = "team",
    description = "Changes a team.",
    request_body = PatchTeam,
    responses((status = 200, description = "OK.", body = TeamView))
)]
#[instrument(skip_all)]
pub async fn patch_team(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchTeam>,
) -> Result<Json<TeamView>> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let team = teams::change(&mut work, &user.viewer(), id, body.name, body.member_ids).await?;
    work.commit(&st.hub).await?;
    tracing::info!(team_id = %id, members = team.member_ids.len(), "team updated");
    Ok(Json(team.view()))
}

#[utoipa::path(
    delete,
    path = "/teams/{id}",
    tag = "team",
    description = "Deletes a team.",
    responses((status = 204, description = "Done."))
)]
#[instrument(skip_all)]
pub async fn delete_team(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    teams::delete(&mut work, &user.viewer(), id).await?;
    work.commit(&st.hub).await?;
    tracing::info!(team_id = %id, "team deleted");
    Ok(StatusCode::NO_CONTENT)
}

// ---- The caller's own preferences ----

#[utoipa::path(
    get,
    path = "/me/preferences",
    tag = "team",
    description = "The caller's own preferences (the team view the lists apply).",
    responses((status = 200, description = "OK.", body = Preferences))
)]
#[instrument(skip_all)]
pub async fn get_preferences(State(st): State<AppState>, user: CurrentUser) -> Result<Json<Preferences>> {
    Ok(Json(preferences::get(&st.db, user.id).await?))
}

/// The whole object; a missing or mistyped field answers 422 naming it.
#[utoipa::path(
    put,
    path = "/me/preferences",
    tag = "team",
    description = "Replaces the caller's preferences (the whole object).",
    request_body = Preferences,
    responses((status = 200, description = "OK.", body = Preferences))
)]
#[instrument(skip_all)]
pub async fn put_preferences(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<Preferences>,
) -> Result<Json<Preferences>> {
    let mut tx = st.db.begin().await?;
    preferences::put(&mut tx, user.id, &body, st.clock.now()).await?;
    tx.commit().await?;
    tracing::info!(member_id = %user.id, show_others = body.team_view.show_others,
        show_unassigned = body.team_view.show_unassigned, "preferences changed");
    Ok(Json(body))
}
