//! The webhook's routes: Meta's handshake and signed POSTs (journaled before the 200), and the
//! journal's admin routes.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use tracing::instrument;
use uuid::Uuid;

use super::journal::{EntryState, admin, processor};
use crate::api::Api;
use crate::auth::CurrentUser;
use crate::db::page_limit;
use crate::error::{Error, Result};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// Meta sends up to ~3 MB; allow a little more.
pub const MAX_BODY: usize = 4 << 20;

/// `/webhooks/whatsapp` (outside `/api/v1`).
pub fn receiver() -> Router<AppState> {
    Router::new().route("/webhooks/whatsapp", get(verify).post(receive))
}

/// The journal's admin routes.
pub fn routes() -> Api {
    Api::new()
        .get("/admin/webhook-events", list)
        .get("/admin/webhook-events/{id}", get_one)
        .post("/admin/webhook-events/{id}/replay", replay)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET /webhooks/whatsapp`: echoes the challenge when the verify token matches.
#[instrument(skip_all)]
pub async fn verify(State(st): State<AppState>, Query(q): Query<Handshake>) -> Response {
    let expected = st.config.verify_token.as_deref().unwrap_or("");
    let given = q.verify_token.as_deref().unwrap_or("");
    let token_ok = !expected.is_empty()
        && expected.len() == given.len()
        && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    match (q.mode.as_deref(), q.challenge) {
        (Some("subscribe"), Some(challenge)) if token_ok => {
            tracing::info!("webhook verification handshake accepted");
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], challenge).into_response()
        }
        _ => {
            tracing::warn!("webhook verification handshake refused");
            Error::forbidden("verification_failed", "verify token does not match").into_response()
        }
    }
}

/// `POST /webhooks/whatsapp`: signature over the raw bytes, then durable, then 200.
#[instrument(skip_all)]
pub async fn receive(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Result<StatusCode> {
    let secrets = st.config.app_secrets();
    if secrets.is_empty() {
        tracing::error!("webhook refused: WHATSAPP_APP_SECRET is not set");
        return Err(Error::unavailable("not_configured", "WHATSAPP_APP_SECRET is not set"));
    }
    let body = crate::extract::read_limited(&headers, body, MAX_BODY, "webhook bodies are limited to 4 MiB").await?;
    let body = Bytes::from(body);
    let sig = headers.get("x-hub-signature-256").and_then(|h| h.to_str().ok());
    if !super::signature::signature_ok(&secrets, &body, sig) {
        tracing::warn!(present = sig.is_some(), bytes = body.len(), "webhook signature rejected");
        return Err(Error::client(StatusCode::UNAUTHORIZED, "invalid_signature", "X-Hub-Signature-256 does not match"));
    }
    let id = st.journal.append(&st.clock, body).await?;
    crate::metrics::webhook_received();
    tracing::debug!(event_id = %id, "webhook journaled");
    Ok(StatusCode::OK)
}

/// Only admins see the journal.
fn may_see_journal(user: &CurrentUser) -> Result<()> {
    crate::policy::chat::may_see_journal(&user.viewer())
        .map_err(|_| Error::forbidden("forbidden", "only admins see the webhook journal"))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListEntries {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// `GET /admin/webhook-events`: the journal, newest first.
#[utoipa::path(
    get,
    path = "/admin/webhook-events",
    tag = "webhook",
    description = "The webhook journal, newest first, optionally filtered by state (admins).",
    params(ListEntries),
    responses((status = 200, description = "OK.", body = admin::EntryPage))
)]
#[instrument(skip_all)]
pub async fn list(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ListEntries>,
) -> Result<Json<admin::EntryPage>> {
    may_see_journal(&user)?;
    let limit = page_limit(q.limit)?;
    let state = q
        .state
        .as_deref()
        .map(|s| {
            EntryState::parse(s)
                .ok_or_else(|| Error::bad_request("invalid_filter", "state must be pending, done or failed"))
        })
        .transpose()?;
    Ok(Json(admin::list(&st.db, user.workspace_id, state, q.cursor.as_deref(), limit).await?))
}

/// `GET /admin/webhook-events/{id}`: one entry with its body.
#[utoipa::path(
    get,
    path = "/admin/webhook-events/{id}",
    tag = "webhook",
    description = "One journal entry with its raw body (admins).",
    responses((status = 200, description = "OK.", body = admin::EntryView))
)]
#[instrument(skip_all)]
pub async fn get_one(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<admin::EntryView>> {
    may_see_journal(&user)?;
    Ok(Json(admin::get(&st.db, user.workspace_id, id, true).await?))
}

/// `POST /admin/webhook-events/{id}/replay`: processes an entry again. Idempotent: storage is
/// keyed by wamid and statuses only advance.
#[utoipa::path(
    post,
    path = "/admin/webhook-events/{id}/replay",
    tag = "webhook",
    description = "Processes a journal entry again; idempotent, so replaying a done entry changes nothing (admins).",
    responses((status = 200, description = "OK.", body = admin::EntryView))
)]
#[instrument(skip_all)]
pub async fn replay(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<admin::EntryView>> {
    may_see_journal(&user)?;
    admin::get(&st.db, user.workspace_id, id, false).await?;
    admin::mark_for_replay(&st.db, id).await?;
    tracing::info!(event_id = %id, "webhook replay requested");
    // Process it now so the answer shows the outcome; the background processor would too.
    let _ = processor::process_next(&st, Some(id)).await;
    Ok(Json(admin::get(&st.db, user.workspace_id, id, false).await?))
}
