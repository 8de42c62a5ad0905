//! `GET /api/v1/reports/team?from=&to=&group_id=`.

use axum::extract::State;
use serde::Deserialize;
use tracing::instrument;

use super::parse_time;
use crate::api::Api;
use crate::auth::CurrentUser;
use crate::error::Result;
use crate::extract::{Json, Query};
use crate::inbox::parse_id;
use crate::state::AppState;
use crate::views::report::TeamReport;

pub fn routes() -> Api {
    Api::new().get("/reports/team", team)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TeamQuery {
    from: Option<String>,
    to: Option<String>,
    group_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/reports/team",
    tag = "reports",
    description = "The team report over a period: per member counts and response times.",
    params(TeamQuery),
    responses((status = 200, description = "OK.", body = TeamReport))
)]
#[instrument(skip_all)]
pub async fn team(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<TeamQuery>,
) -> Result<Json<TeamReport>> {
    let from = q.from.as_deref().map(|f| parse_time(f, "from")).transpose()?;
    let to = q.to.as_deref().map(|t| parse_time(t, "to")).transpose()?;
    super::ordered(from, to)?;
    let group_id = q.group_id.as_deref().map(|g| parse_id(g, "group_id")).transpose()?;
    let f = super::filter(&st.db, user.workspace_id, from, to, group_id).await?;
    Ok(Json(super::team(&st.db, &user.viewer(), &user.name, f).await?))
}
