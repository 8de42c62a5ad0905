//! `GET/PUT /distribution`, `GET /distribution/history` (admins and `manage_integrations`).

use axum::extract::State;
use serde::Deserialize;
use tracing::instrument;

use super::Settings;
use crate::api::Api;
use crate::apikeys::http::denied;
use crate::auth::CurrentUser;
use crate::db::{cursor, page_limit};
use crate::error::Result;
use crate::extract::{Json, Query};
use crate::policy::keys as may;
use crate::state::AppState;
use crate::views::distribution::HistoryPage;

pub fn routes() -> Api {
    Api::new().get("/distribution", get).put("/distribution", put).get("/distribution/history", history)
}

#[utoipa::path(
    get,
    path = "/distribution",
    tag = "distribution",
    description = "The workspace's lead distribution settings.",
    responses((status = 200, description = "OK.", body = Settings))
)]
#[instrument(skip_all)]
pub async fn get(State(st): State<AppState>, user: CurrentUser) -> Result<Json<Settings>> {
    may::may_manage_distribution(&user.viewer()).map_err(denied)?;
    Ok(Json(super::load(&st.db, user.workspace_id).await?))
}

#[utoipa::path(
    put,
    path = "/distribution",
    tag = "distribution",
    description = "Replaces the lead distribution settings.",
    request_body = Settings,
    responses((status = 200, description = "OK.", body = Settings))
)]
#[instrument(skip_all)]
pub async fn put(State(st): State<AppState>, user: CurrentUser, Json(body): Json<Settings>) -> Result<Json<Settings>> {
    may::may_manage_distribution(&user.viewer()).map_err(denied)?;
    let settings = super::validate(body)?;
    let mut tx = st.db.begin().await?;
    super::check_numbers(&mut tx, user.workspace_id, &settings).await?;
    super::save(&mut tx, user.workspace_id, user.id, &settings, st.clock.now()).await?;
    tx.commit().await?;
    tracing::info!(rules = settings.rules.len(), keep_copy = settings.keep_copy, by = %user.id, "distribution settings changed");
    Ok(Json(settings))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/distribution/history",
    tag = "distribution",
    description = "Past distribution settings, newest first, paginated.",
    params(HistoryQuery),
    responses((status = 200, description = "OK.", body = HistoryPage))
)]
#[instrument(skip_all)]
pub async fn history(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<HistoryPage>> {
    may::may_manage_distribution(&user.viewer()).map_err(denied)?;
    let limit = page_limit(q.limit)?;
    let after = q.cursor.as_deref().map(cursor::decode).transpose()?;
    Ok(Json(super::history(&st.db, user.workspace_id, after, limit).await?))
}
