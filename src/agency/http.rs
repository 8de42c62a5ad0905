//! The agency's routes (`/agency…`), the acceptance of its invitation
//! (`/agency-invitations/accept`) and the client's unlink (`/workspace/unlink-agency`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::instrument;
use uuid::Uuid;

use crate::api::Api;
use crate::auth::http::issue_session;
use crate::auth::{CurrentUser, UserOut, credential, password, same_site_request};
use crate::db::{cursor, page_limit};
use crate::error::{Error, Result};
use crate::extract::{Json, Path, Query};
use crate::inbox::leads::{ListFilter, like_pattern};
use crate::inbox::{parse_bool, parse_id};
use crate::policy::agency::{Removal, founding_admin};
use crate::reports::parse_time;
use crate::state::AppState;
use crate::timeline::read as timeline_read;
use crate::views::agency::{
    AgencyLeadDetail, AgencyLeadsPage, AgencyView, ClientInvitationView, ClientView, ClientsPage, ManagedWorkspace,
};
use crate::views::preferences::TeamView;
use crate::views::report::TeamReport;
use crate::views::timeline::ActivityKind;
use crate::workspace::{validate_email, validate_name};

pub fn routes() -> Api {
    Api::new()
        .post("/agency", make)
        .get("/agency", get)
        .get("/agency/clients", list_clients)
        .post("/agency/clients", invite)
        .post("/agency/clients/{id}/resend", resend)
        .delete("/agency/clients/{id}", delete)
        .post("/agency/clients/{id}/unlink", unlink)
        .get("/agency/clients/{id}/leads", client_leads)
        .get("/agency/clients/{id}/leads/{lead_id}", client_lead)
        .get("/agency/clients/{id}/reports/team", client_report)
        .post("/agency-invitations/accept", accept)
        .post("/workspace/unlink-agency", unlink_from_client)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MakeBody {
    name: String,
}

#[utoipa::path(
    post,
    path = "/agency",
    tag = "agency",
    description = "Makes the caller's workspace an agency (admins; 409 if it already is).",
    request_body = MakeBody,
    responses((status = 201, description = "Created.", body = AgencyView))
)]
#[instrument(skip_all)]
pub async fn make(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<MakeBody>,
) -> Result<(StatusCode, Json<AgencyView>)> {
    let name = validate_name(&body.name, "agency name")?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let agency = super::make(&mut tx, &user.viewer(), &name, now).await?;
    tx.commit().await?;
    tracing::info!(agency_id = %agency.id, workspace_id = %agency.workspace_id, "agency mode on");
    Ok((StatusCode::CREATED, Json(agency)))
}

#[utoipa::path(
    get,
    path = "/agency",
    tag = "agency",
    description = "The caller's agency (404 when the workspace is no agency).",
    responses((status = 200, description = "OK.", body = AgencyView))
)]
#[instrument(skip_all)]
pub async fn get(State(st): State<AppState>, user: CurrentUser) -> Result<Json<AgencyView>> {
    Ok(Json(super::of(&st.db, &user.viewer()).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/agency/clients",
    tag = "agency",
    description = "The agency's clients with their status and, while managing, lead counts and average first response.",
    params(Page),
    responses((status = 200, description = "OK.", body = ClientsPage))
)]
#[instrument(skip_all)]
pub async fn list_clients(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<Page>,
) -> Result<Json<ClientsPage>> {
    let limit = page_limit(q.limit)?;
    let after = q.cursor.as_deref().map(cursor::decode).transpose()?;
    let v = user.viewer();
    let agency = super::of(&st.db, &v).await?;
    Ok(Json(super::clients(&st.db, &v, &agency, after, limit).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    email: String,
    name: Option<String>,
}

/// Queues the invitation mail when SMTP is configured; returns whether it did.
async fn queue_mail(
    st: &AppState,
    tx: &mut crate::db::Tx,
    agency: &AgencyView,
    inv: &ClientInvitationView,
) -> Result<bool> {
    if st.config.smtp_url.is_none() {
        return Ok(false);
    }
    super::queue_mail(tx, agency, inv, &st.config.public_url, st.clock.now()).await?;
    Ok(true)
}

#[utoipa::path(
    post,
    path = "/agency/clients",
    tag = "agency",
    description = "Invites a client by the email of its workspace's admin; answers the accept token (also mailed when SMTP is set).",
    request_body = InviteBody,
    responses((status = 201, description = "Created.", body = ClientInvitationView))
)]
#[instrument(skip_all)]
pub async fn invite(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<InviteBody>,
) -> Result<(StatusCode, Json<ClientInvitationView>)> {
    let email = validate_email(&body.email)?;
    let name = match body.name.as_deref() {
        Some(n) => validate_name(n, "name")?,
        None => email.split('@').next().unwrap_or("client").to_owned(),
    };
    let v = user.viewer();
    let agency = super::of(&st.db, &v).await?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let inv = super::invite(&mut tx, &v, &agency, &email, &name, now).await?;
    let mailed = queue_mail(&st, &mut tx, &agency, &inv).await?;
    tx.commit().await?;
    if mailed {
        st.mail_wake.notify_one();
    }
    tracing::info!(client_entry = %inv.client.id, mailed, "agency client invited");
    Ok((StatusCode::CREATED, Json(inv)))
}

#[utoipa::path(
    post,
    path = "/agency/clients/{id}/resend",
    tag = "agency",
    description = "Sends an invitation again with a fresh token (invited or not_linked entries).",
    responses((status = 200, description = "OK.", body = ClientInvitationView))
)]
#[instrument(skip_all)]
pub async fn resend(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<ClientInvitationView>> {
    let v = user.viewer();
    let agency = super::of(&st.db, &v).await?;
    let mut tx = st.db.begin().await?;
    let inv = super::resend(&mut tx, &v, &agency, id, st.clock.now()).await?;
    let mailed = queue_mail(&st, &mut tx, &agency, &inv).await?;
    tx.commit().await?;
    if mailed {
        st.mail_wake.notify_one();
    }
    tracing::info!(client_entry = %id, mailed, "agency invitation resent");
    Ok(Json(inv))
}

#[utoipa::path(
    delete,
    path = "/agency/clients/{id}",
    tag = "agency",
    description = "Cancels an invitation (invited → not_linked) or removes a not_linked entry.",
    responses((status = 204, description = "Done."))
)]
#[instrument(skip_all)]
pub async fn delete(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    let v = user.viewer();
    let agency = super::of(&st.db, &v).await?;
    let mut tx = st.db.begin().await?;
    let removal = super::delete(&mut tx, &v, &agency, id, st.clock.now()).await?;
    tx.commit().await?;
    match removal {
        Removal::Cancel => tracing::info!(client_entry = %id, "agency invitation cancelled"),
        Removal::Remove => tracing::info!(client_entry = %id, "agency client entry removed"),
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/agency/clients/{id}/unlink",
    tag = "agency",
    description = "Ends the agency's access to a client it manages (managing → not_linked).",
    responses((status = 200, description = "OK.", body = ClientView))
)]
#[instrument(skip_all)]
pub async fn unlink(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<ClientView>> {
    let v = user.viewer();
    let agency = super::of(&st.db, &v).await?;
    let mut tx = st.db.begin().await?;
    let client = super::unlink(&mut tx, &v, &agency, id, st.clock.now()).await?;
    tx.commit().await?;
    tracing::info!(client_entry = %id, "agency unlinked a client");
    Ok(Json(client))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeadsQuery {
    assignee_id: Option<String>,
    contacted: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/agency/clients/{id}/leads",
    tag = "agency",
    description = "A managed client's leads with status, assignee, contacted and first response (read-only).",
    params(LeadsQuery),
    responses((status = 200, description = "OK.", body = AgencyLeadsPage))
)]
#[instrument(skip_all)]
pub async fn client_leads(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Query(q): Query<LeadsQuery>,
) -> Result<Json<AgencyLeadsPage>> {
    let search = q.q.as_deref().filter(|s| !s.trim().is_empty()).map(like_pattern);
    if search.as_ref().is_some_and(|s| s.len() > 200) {
        return Err(Error::bad_request("invalid_filter", "q is too long"));
    }
    let filter = ListFilter {
        assignee: q.assignee_id.as_deref().map(|a| parse_id(a, "assignee_id")).transpose()?,
        search,
        after: q.cursor.as_deref().map(cursor::decode).transpose()?,
        limit: page_limit(q.limit)?,
        contacted: q.contacted.as_deref().map(|c| parse_bool(c, "contacted")).transpose()?,
        team_view: TeamView::default(),
        ..Default::default()
    };
    let v = user.viewer();
    let agency = super::of(&st.db, &v).await?;
    let reader = super::reader(&st.db, &v, &agency, id).await?;
    Ok(Json(super::read_leads(&st.db, &reader, &filter).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeadQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/agency/clients/{id}/leads/{lead_id}",
    tag = "agency",
    description = "A managed client's lead with its timeline (read-only).",
    params(LeadQuery),
    responses((status = 200, description = "OK.", body = AgencyLeadDetail))
)]
#[instrument(skip_all)]
pub async fn client_lead(
    State(st): State<AppState>,
    user: CurrentUser,
    Path((id, lead_id)): Path<(Uuid, Uuid)>,
    Query(q): Query<LeadQuery>,
) -> Result<Json<AgencyLeadDetail>> {
    let kind = match q.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => Some(
            ActivityKind::parse(k).ok_or_else(|| Error::bad_request("invalid_filter", "type is no activity type"))?,
        ),
    };
    let filter = timeline_read::Filter {
        kind,
        member: None,
        from: None,
        to: None,
        after: q.cursor.as_deref().map(cursor::decode_seq).transpose()?,
        limit: page_limit(q.limit)?,
    };
    let v = user.viewer();
    let agency = super::of(&st.db, &v).await?;
    let reader = super::reader(&st.db, &v, &agency, id).await?;
    Ok(Json(super::read_lead(&st.db, &reader, lead_id, &filter, st.clock.now()).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    group_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/agency/clients/{id}/reports/team",
    tag = "agency",
    description = "A managed client's team report (read-only).",
    params(ReportQuery),
    responses((status = 200, description = "OK.", body = TeamReport))
)]
#[instrument(skip_all)]
pub async fn client_report(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Query(q): Query<ReportQuery>,
) -> Result<Json<TeamReport>> {
    let from = q.from.as_deref().map(|f| parse_time(f, "from")).transpose()?;
    let to = q.to.as_deref().map(|t| parse_time(t, "to")).transpose()?;
    let group_id = q.group_id.as_deref().map(|g| parse_id(g, "group_id")).transpose()?;
    let v = user.viewer();
    let agency = super::of(&st.db, &v).await?;
    let reader = super::reader(&st.db, &v, &agency, id).await?;
    Ok(Json(super::read_report(&st.db, &reader, from, to, group_id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    accept_token: String,
    /// Without an account: the new workspace, its admin's name and password.
    workspace_name: Option<String>,
    name: Option<String>,
    password: Option<String>,
}

/// Accepting: a signed-in admin with the invited email grants access to their workspace
/// (200 with the workspace and its `managed_by`); someone without an account sends
/// `workspace_name`, `name` and `password` and gets the workspace, its admin and a session
/// (201, as login answers), already linked.
#[utoipa::path(
    post,
    path = "/agency-invitations/accept",
    tag = "agency",
    description = "Accepts an agency's invitation: a signed-in admin with the invited email links their workspace (200); without an account, `workspace_name`, `name` and `password` create the workspace and its admin, linked (201, answered as login).",
    request_body = AcceptBody,
    responses((status = 200, description = "Linked.", body = crate::views::agency::AcceptedView), (status = 201, description = "Workspace created, linked and signed in.", body = crate::views::auth::SessionView))
)]
#[instrument(skip_all)]
pub async fn accept(State(st): State<AppState>, headers: HeaderMap, Json(body): Json<AcceptBody>) -> Result<Response> {
    let now = st.clock.now();
    if let Some(pass) = body.password {
        let workspace = validate_name(body.workspace_name.as_deref().unwrap_or(""), "workspace name")?;
        password::validate(&pass)?;
        let inv = super::usable(&st.db, &body.accept_token, now).await?;
        let email = inv.email().to_owned();
        let name = match body.name.as_deref() {
            Some(n) => validate_name(n, "name")?,
            None => email.split('@').next().unwrap_or("admin").to_owned(),
        };
        let hash = password::hash(pass).await?;
        let mut tx = st.db.begin().await?;
        let (workspace_id, user_id) =
            crate::workspace::create_with_admin(&mut tx, now, &workspace, &email, &name, &hash).await?;
        let admin = founding_admin(user_id, workspace_id);
        super::accept(&mut tx, &admin, &email, inv, now).await?;
        tx.commit().await?;
        tracing::info!(%workspace_id, "agency invitation accepted by a new workspace");
        let user = UserOut { id: user_id, email, name, role: admin.role, workspace_id };
        return issue_session(&st, user, StatusCode::CREATED).await;
    }
    let (token, via_cookie) = credential(&headers).ok_or_else(Error::unauthorized)?;
    if via_cookie && !same_site_request(&headers) {
        return Err(Error::forbidden("cross_origin", "a cookie-authenticated change must come from this origin"));
    }
    let user = CurrentUser::from_token(&st.db, &token, via_cookie).await?.ok_or_else(Error::unauthorized)?;
    let inv = super::usable(&st.db, &body.accept_token, now).await?;
    let mut tx = st.db.begin().await?;
    let accepted = super::accept(&mut tx, &user.viewer(), &user.email, inv, now).await?;
    tx.commit().await?;
    tracing::info!(workspace_id = %user.workspace_id, agency_id = %accepted.managed_by.agency_id, "agency linked");
    Ok((StatusCode::OK, Json(accepted)).into_response())
}

#[utoipa::path(
    post,
    path = "/workspace/unlink-agency",
    tag = "agency",
    description = "Ends the agency's access to the caller's workspace (admins).",
    responses((status = 200, description = "OK.", body = ManagedWorkspace))
)]
#[instrument(skip_all)]
pub async fn unlink_from_client(State(st): State<AppState>, user: CurrentUser) -> Result<Json<ManagedWorkspace>> {
    let mut tx = st.db.begin().await?;
    super::unlink_from_client(&mut tx, &user.viewer(), st.clock.now()).await?;
    tx.commit().await?;
    tracing::info!(workspace_id = %user.workspace_id, "client unlinked its agency");
    let workspace = crate::workspace::get(&st.db, user.workspace_id).await?;
    Ok(Json(ManagedWorkspace { workspace, managed_by: None }))
}
