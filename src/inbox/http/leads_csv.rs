//! `GET /leads/export` and `POST /leads/import` (see [`crate::inbox::leads_csv`]).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use tracing::instrument;

use super::forbidden;
use crate::assignment::run;
use crate::auth::CurrentUser;
use crate::distribution::Setup;
use crate::error::{Error, Result};
use crate::extract::Json;
use crate::inbox::leads_csv::{self, Export, IMPORT_MAX_BYTES, Importer, Outcome};
use crate::policy::inbox as may;
use crate::state::AppState;

/// `POST /leads/import`: creates and updates leads from a CSV file.
#[utoipa::path(
    post,
    path = "/leads/import",
    tag = "inbox",
    description = "Creates and updates leads from a CSV file (the request body, text/csv).",
    request_body(content = String, content_type = "text/csv", description = "The CSV file."),
    responses((status = 200, description = "OK.", body = Outcome))
)]
#[instrument(skip_all)]
pub async fn import(
    State(st): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Outcome>> {
    may::can_manage_numbers(&user.viewer())
        .map_err(|d| forbidden(d, "importing leads needs the manage_integrations permission"))?;
    leads_csv::check_content_type(&headers)?;
    let limit = format!("an import may have at most {} MiB", IMPORT_MAX_BYTES >> 20);
    let bytes = crate::extract::read_limited(&headers, body, IMPORT_MAX_BYTES, &limit).await?;
    let text = leads_csv::decode(&bytes)?;
    let presence = st.presence.clone();
    let imp = Importer {
        db: st.db.clone(),
        hub: st.hub.clone(),
        clock: st.clock.clone(),
        presence: Arc::new(move |id| run::availability(presence.availability(id).as_str())),
        workspace_id: user.workspace_id,
        by: user.id,
        distribution: Setup::new(st.config.smtp_url.is_some(), st.config.session_gap_secs),
    };
    let outcome = leads_csv::import(&imp, text).await?;
    // New rows may have been distributed by mail or WhatsApp.
    st.mail_wake.notify_one();
    st.outbox_wake.notify_one();
    Ok(Json(outcome))
}

/// `GET /leads/export`: the leads the caller can see, as a streamed CSV file.
#[utoipa::path(
    get,
    path = "/leads/export",
    tag = "inbox",
    description = "The leads the caller can see, as a streamed CSV file.",
    responses((status = 200, description = "The CSV file.", content_type = "text/csv", body = String))
)]
#[instrument(skip_all)]
pub async fn export(State(st): State<AppState>, user: CurrentUser) -> Result<Response> {
    let export = Export::prepare(st.db.clone(), user.viewer(), st.clock.now()).await?;
    let stream = futures_util::stream::unfold(Some(export), |state| async move {
        let mut export = state?;
        match export.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok::<Bytes, Error>(chunk), Some(export))),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "lead export failed midway");
                Some((Err(e), None))
            }
        }
    });
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
        (header::CONTENT_DISPOSITION, "attachment; filename=\"leads.csv\""),
        (header::CACHE_CONTROL, "no-store"),
    ];
    Ok((headers, Body::from_stream(stream)).into_response())
}
