//! `GET/POST /numbers`, `GET/PATCH/DELETE /numbers/{id}` (changes: admins and
//! `manage_integrations`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tracing::instrument;
use uuid::Uuid;

use super::forbidden;
use crate::audit::{self, AuditAction, AuditEntry, AuditTarget, Changes};
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::events::Work;
use crate::extract::{Json, Path};
use crate::inbox::numbers::{self, NewNumber, NumberChanges};
use crate::inbox::templates;
use crate::policy::inbox as may;
use crate::state::AppState;
use crate::views::number::{NumberView, NumbersPage};
use crate::views::template::TemplatesPage;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNumber {
    phone_number_id: String,
    display_phone_number: String,
    access_token: String,
    waba_id: Option<String>,
    owner_member_id: Option<Uuid>,
    #[serde(default)]
    auto_import_contacts: bool,
}

fn require_integrations(user: &CurrentUser) -> Result<()> {
    may::can_manage_numbers(&user.viewer())
        .map_err(|d| forbidden(d, "connecting numbers needs the manage_integrations permission"))
}

fn validate_graph_id(value: &str, what: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::unprocessable("invalid_number", format!("{what} must be Meta's numeric id")));
    }
    Ok(v.to_owned())
}

fn validate_token(token: &str) -> Result<String> {
    let token = token.trim();
    if token.is_empty() || token.len() > 4096 {
        return Err(Error::unprocessable("invalid_access_token", "access_token must be a non-empty token"));
    }
    Ok(token.to_owned())
}

#[utoipa::path(
    post,
    path = "/numbers",
    tag = "inbox",
    description = "Connects a WhatsApp number (admins with manage_integrations).",
    request_body = CreateNumber,
    responses((status = 201, description = "Created.", body = NumberView))
)]
#[instrument(skip_all)]
pub async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateNumber>,
) -> Result<(StatusCode, Json<NumberView>)> {
    require_integrations(&user)?;
    let phone_number_id = validate_graph_id(&body.phone_number_id, "phone_number_id")?;
    let display_phone_number = crate::phone::normalize(&body.display_phone_number)
        .ok_or_else(|| Error::unprocessable("invalid_phone", "display_phone_number is not a phone number"))?;
    let access_token = st.secrets.seal(&validate_token(&body.access_token)?);
    let waba_id = body.waba_id.as_deref().map(|w| validate_graph_id(w, "waba_id")).transpose()?;
    let new = NewNumber {
        workspace_id: user.workspace_id,
        phone_number_id,
        display_phone_number,
        access_token,
        waba_id,
        owner_member_id: body.owner_member_id,
        auto_import_contacts: body.auto_import_contacts,
    };
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let mut n = numbers::connect(&mut tx, new, now).await?;
    let entry = AuditEntry::new(user.workspace_id, user.id, AuditAction::NumberConnected)
        .target(AuditTarget::Number, n.id)
        .changes(Changes::diff(None, Some(&n.view())).secret("access_token"));
    audit::record_tx(&mut tx, now, entry).await?;
    tx.commit().await?;
    if n.waba_id.is_some() {
        // Its templates, so that sends can be checked; a failure leaves it unsynced (it sends
        // as before) until an admin syncs it.
        match sync(&st, &n).await {
            Ok(_) => n = numbers::load(&st.db, n.workspace_id, n.id).await?,
            Err(e) => tracing::warn!(number_id = %n.id, error = %e, "templates not synced on connect"),
        }
    }
    Ok((StatusCode::CREATED, Json(n.view())))
}

#[utoipa::path(
    get,
    path = "/numbers",
    tag = "inbox",
    description = "The workspace's WhatsApp numbers.",
    responses((status = 200, description = "OK.", body = NumbersPage))
)]
#[instrument(skip_all)]
pub async fn list(State(st): State<AppState>, user: CurrentUser) -> Result<Json<NumbersPage>> {
    let rows = numbers::list(&st.db, user.workspace_id).await?;
    Ok(Json(NumbersPage { numbers: rows.iter().map(numbers::Number::view).collect(), next_cursor: None }))
}

#[utoipa::path(
    get,
    path = "/numbers/{id}",
    tag = "inbox",
    description = "One WhatsApp number.",
    responses((status = 200, description = "OK.", body = NumberView))
)]
#[instrument(skip_all)]
pub async fn get_one(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<NumberView>> {
    Ok(Json(numbers::load(&st.db, user.workspace_id, id).await?.view()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchNumber {
    access_token: Option<String>,
    auto_import_contacts: Option<bool>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    owner_member_id: Option<Option<Uuid>>,
}

#[utoipa::path(
    patch,
    path = "/numbers/{id}",
    tag = "inbox",
    description = "Changes a number's name, token or settings.",
    request_body = PatchNumber,
    responses((status = 200, description = "OK.", body = NumberView))
)]
#[instrument(skip_all)]
pub async fn patch(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchNumber>,
) -> Result<Json<NumberView>> {
    require_integrations(&user)?;
    let changes = NumberChanges {
        access_token: body.access_token.as_deref().map(validate_token).transpose()?.map(|t| st.secrets.seal(&t)),
        auto_import_contacts: body.auto_import_contacts,
        owner_member_id: body.owner_member_id,
    };
    let new_token = changes.access_token.is_some();
    let mut tx = st.db.begin().await?;
    let n = numbers::load_tx(&mut tx, user.workspace_id, id).await?;
    let after = numbers::change(&mut tx, &n, changes).await?;
    let mut diff = Changes::diff(Some(&n.view()), Some(&after.view()));
    if new_token {
        diff = diff.secret("access_token");
    }
    if !diff.is_empty() {
        let entry = AuditEntry::new(user.workspace_id, user.id, AuditAction::NumberUpdated)
            .target(AuditTarget::Number, id)
            .changes(diff);
        audit::record_tx(&mut tx, st.clock.now(), entry).await?;
    }
    tx.commit().await?;
    Ok(Json(after.view()))
}

#[utoipa::path(
    delete,
    path = "/numbers/{id}",
    tag = "inbox",
    description = "Disconnects a number.",
    responses((status = 204, description = "Done."))
)]
#[instrument(skip_all)]
pub async fn delete(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    require_integrations(&user)?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let n = numbers::load_tx(&mut tx, user.workspace_id, id).await?;
    if numbers::disconnect(&mut tx, &n, now).await? {
        let entry = AuditEntry::new(user.workspace_id, user.id, AuditAction::NumberDisconnected)
            .target(AuditTarget::Number, id)
            .changes(Changes::new().field("connected", true, false));
        audit::record_tx(&mut tx, now, entry).await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads the number's WABA templates from the Graph API and stores them.
async fn sync(st: &AppState, n: &numbers::Number) -> Result<usize> {
    let Some(waba) = &n.waba_id else {
        return Err(Error::unprocessable("no_waba", "this number has no waba_id: it has no templates to sync"));
    };
    let token = st.secrets.open(&numbers::access_token(&st.db, n.id).await?)?;
    let listed = st.graph.list_templates(waba, &token).await.map_err(|e| {
        tracing::warn!(number_id = %n.id, error = ?e, "template list from the Graph API failed");
        Error::client(StatusCode::BAD_GATEWAY, "graph_unavailable", "the Graph API did not list the templates")
    })?;
    let list: Vec<templates::Listed> = listed.into_iter().filter_map(|t| serde_json::from_value(t).ok()).collect();
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let now = work.now();
    let count = templates::replace(work.tx(), n.workspace_id, waba, &list, now).await?;
    work.commit(&st.hub).await?;
    Ok(count)
}

/// `GET /numbers/{id}/templates`: the templates the number can send (anyone in the workspace:
/// the composer offers them).
#[utoipa::path(
    get,
    path = "/numbers/{id}/templates",
    tag = "inbox",
    description = "The message templates the number can send.",
    responses((status = 200, description = "OK.", body = TemplatesPage))
)]
#[instrument(skip_all)]
pub async fn list_templates(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<TemplatesPage>> {
    let n = numbers::load(&st.db, user.workspace_id, id).await?;
    Ok(Json(TemplatesPage { templates: templates::list(&st.db, &n).await? }))
}

/// `POST /numbers/{id}/templates/sync` (admins, `manage_integrations`): reads the templates
/// again from the Graph API; answers the list.
#[utoipa::path(
    post,
    path = "/numbers/{id}/templates/sync",
    tag = "inbox",
    description = "Reads the number's templates from the Graph API again and stores them.",
    responses((status = 200, description = "OK.", body = TemplatesPage))
)]
#[instrument(skip_all)]
pub async fn sync_templates(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<TemplatesPage>> {
    require_integrations(&user)?;
    let n = numbers::load(&st.db, user.workspace_id, id).await?;
    sync(&st, &n).await?;
    Ok(Json(TemplatesPage { templates: templates::list(&st.db, &n).await? }))
}
