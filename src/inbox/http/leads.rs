//! `POST/GET /leads`, `GET/PATCH/DELETE /leads/{id}`. Creating a lead runs the distribution
//! rules, then (without an assignee) the assignment engine: the edge calls the inbox, then
//! distribution, then assignment.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::instrument;
use uuid::Uuid;

use super::forbidden;
use crate::assignment::run;
use crate::auth::CurrentUser;
use crate::db::{cursor, page_limit};
use crate::distribution::{self, Distributed, Origin, Setup};
use crate::error::{Error, Result};
use crate::events::Work;
use crate::extract::{Json, Path, Query};
use crate::inbox::leads::{self, LeadChanges, ListFilter, NewLead, dedup, like_pattern, normalize_phone};
use crate::inbox::{parse_bool, parse_id};
use crate::policy::inbox as may;
use crate::state::AppState;
use crate::team::preferences;
use crate::views::lead::LeadView;
use crate::views::preferences::TeamView;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLead {
    name: String,
    phone: String,
    source: Option<String>,
    #[serde(default)]
    group_ids: Vec<Uuid>,
    custom_fields: Option<Map<String, Value>>,
    assignee_id: Option<Uuid>,
}

#[utoipa::path(
    post,
    path = "/leads",
    tag = "inbox",
    description = "Creates a lead (and runs the assignment).",
    request_body = CreateLead,
    responses((status = 201, description = "Created.", body = LeadView))
)]
#[instrument(skip_all)]
pub async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateLead>,
) -> Result<(StatusCode, Json<LeadView>)> {
    let name = crate::workspace::validate_name(&body.name, "name")?;
    let phone = normalize_phone(&body.phone)?;
    let source = leads::validate_source(body.source)?;
    let custom_fields = body.custom_fields.unwrap_or_default();
    leads::validate_custom(&custom_fields)?;
    let v = user.viewer();
    may::can_create_lead_for(&v, body.assignee_id)
        .map_err(|d| forbidden(d, "assigning leads to others needs the view_others_leads permission"))?;
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    leads::check_groups(work.tx(), user.workspace_id, &body.group_ids).await?;
    if let Some(a) = body.assignee_id {
        leads::check_assignee(work.tx(), user.workspace_id, a).await?;
    }
    let new = NewLead {
        workspace_id: user.workspace_id,
        name,
        phone: Some(phone),
        source,
        assignee_id: body.assignee_id,
        custom_fields,
        group_ids: dedup(body.group_ids),
    };
    let mut lead = leads::insert(&mut work, new).await?;
    // A new lead is distributed first, then assigned (unless distribution took it away).
    let setup = Setup::new(st.config.smtp_url.is_some(), st.config.session_gap_secs);
    let distributed = distribution::distribute(&mut work, &lead, setup, Origin::Entered).await?;
    if body.assignee_id.is_none() && distributed != Distributed::Dropped {
        let presence = |id| run::availability(st.presence.availability(id).as_str());
        run::new_lead(&mut work, &presence, &mut lead).await?;
    }
    work.commit(&st.hub).await?;
    if distributed != Distributed::No {
        st.mail_wake.notify_one();
        st.outbox_wake.notify_one();
    }
    tracing::info!(lead_id = %lead.id, ?distributed, "lead created");
    Ok((StatusCode::CREATED, Json(lead.view_for(&v))))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListLeads {
    assignee_id: Option<String>,
    unassigned: Option<String>,
    contacted: Option<String>,
    group_id: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LeadsPage {
    leads: Vec<LeadView>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/leads",
    tag = "inbox",
    description = "The leads the caller can see, filtered and paginated.",
    params(ListLeads),
    responses((status = 200, description = "OK.", body = LeadsPage))
)]
#[instrument(skip_all)]
pub async fn list(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ListLeads>,
) -> Result<Json<LeadsPage>> {
    let limit = page_limit(q.limit)?;
    let search = q.q.as_deref().filter(|s| !s.trim().is_empty()).map(like_pattern);
    if search.as_ref().is_some_and(|s| s.len() > 200) {
        return Err(Error::bad_request("invalid_filter", "q is too long"));
    }
    let assignee = q.assignee_id.as_deref().map(|a| parse_id(a, "assignee_id")).transpose()?;
    let unassigned = q.unassigned.as_deref().map(|u| parse_bool(u, "unassigned")).transpose()?;
    let explicit = assignee.is_some() || unassigned.is_some();
    let filter = ListFilter {
        assignee,
        unassigned,
        group: q.group_id.as_deref().map(|g| parse_id(g, "group_id")).transpose()?,
        search,
        after: q.cursor.as_deref().map(cursor::decode).transpose()?,
        limit,
        contacted: q.contacted.as_deref().map(|c| parse_bool(c, "contacted")).transpose()?,
        team_view: team_view(&st, &user, explicit).await?,
    };
    let v = user.viewer();
    let (rows, next_cursor) = leads::list(&st.db, &v, &filter).await?;
    Ok(Json(LeadsPage { leads: rows.iter().map(|l| l.view_for(&v)).collect(), next_cursor }))
}

/// The caller's team view for a list (everything when the list names an assignee filter).
pub(super) async fn team_view(st: &AppState, user: &CurrentUser, explicit_filter: bool) -> Result<TeamView> {
    if explicit_filter {
        return Ok(TeamView::default());
    }
    Ok(preferences::get(&st.db, user.id).await?.team_view)
}

#[utoipa::path(
    get,
    path = "/leads/{id}",
    tag = "inbox",
    description = "One lead.",
    responses((status = 200, description = "OK.", body = LeadView))
)]
#[instrument(skip_all)]
pub async fn get_one(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<LeadView>> {
    let v = user.viewer();
    Ok(Json(leads::get_visible(&st.db, &v, id).await?.view_for(&v)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchLead {
    name: Option<String>,
    phone: Option<String>,
    source: Option<String>,
    group_ids: Option<Vec<Uuid>>,
    custom_fields: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    assignee_id: Option<Option<Uuid>>,
}

#[utoipa::path(
    patch,
    path = "/leads/{id}",
    tag = "inbox",
    description = "Changes a lead's fields, group or assignee.",
    request_body = PatchLead,
    responses((status = 200, description = "OK.", body = LeadView))
)]
#[instrument(skip_all)]
pub async fn patch(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchLead>,
) -> Result<Json<LeadView>> {
    let v = user.viewer();
    let mut lead = leads::get_visible(&st.db, &v, id).await?.into_inner();
    let to = body.assignee_id.flatten();
    may::can_edit_lead(&v, lead.assignee_id, to).map_err(|_| {
        Error::forbidden("not_assignee", "only who may assign this lead may edit it (claim an unassigned lead first)")
    })?;
    let mut changes = LeadChanges {
        name: body.name.map(|n| crate::workspace::validate_name(&n, "name")).transpose()?,
        phone: body.phone.map(|p| normalize_phone(&p)).transpose()?,
        source: if body.source.is_some() { Some(leads::validate_source(body.source)?) } else { None },
        custom_fields: None,
        group_ids: body.group_ids,
        assignee: None,
    };
    if let Some(fields) = body.custom_fields {
        leads::validate_custom(&fields)?;
        changes.custom_fields = Some(fields);
    }
    changes.assignee = match body.assignee_id {
        None => None,
        Some(None) => {
            return Err(Error::unprocessable("cannot_unassign", "an assigned lead never goes back to unassigned"));
        }
        Some(Some(a)) if Some(a) == lead.assignee_id => None,
        Some(Some(a)) => {
            may::can_assign_lead(&v, lead.assignee_id, Some(a))
                .map_err(|d| forbidden(d, "you may not assign this lead"))?;
            Some(a)
        }
    };
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    leads::update(&mut work, &mut lead, changes, user.id).await?;
    work.commit(&st.hub).await?;
    Ok(Json(lead.view_for(&v)))
}

#[utoipa::path(
    delete,
    path = "/leads/{id}",
    tag = "inbox",
    description = "Deletes a lead with its conversations.",
    responses((status = 204, description = "Done."))
)]
#[instrument(skip_all)]
pub async fn delete(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    let v = user.viewer();
    let lead = leads::get_visible(&st.db, &v, id).await?;
    if !may::can_delete_lead(&v, lead.assignee_id) {
        return Err(Error::forbidden(
            "forbidden",
            "deleting this lead needs delete_leads and the lead assigned to you",
        ));
    }
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    leads::delete(&mut work, &lead).await?;
    work.commit(&st.hub).await?;
    tracing::info!(lead_id = %id, "lead deleted");
    Ok(StatusCode::NO_CONTENT)
}
