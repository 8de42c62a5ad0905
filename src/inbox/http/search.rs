//! `GET /search`.

use axum::extract::State;
use serde::Deserialize;
use tracing::instrument;

use crate::auth::CurrentUser;
use crate::db::page_limit;
use crate::error::{Error, Result};
use crate::extract::{Json, Query};
use crate::inbox::search;
use crate::state::AppState;
use crate::views::mention::SearchPage;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/search",
    tag = "inbox",
    description = "Full-text search over the messages and notes the caller can see.",
    params(SearchQuery),
    responses((status = 200, description = "OK.", body = SearchPage))
)]
#[instrument(skip_all)]
pub async fn search(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<SearchQuery>,
) -> Result<Json<SearchPage>> {
    let limit = page_limit(q.limit)?;
    let query = search::parse(q.q.as_deref().ok_or_else(|| Error::bad_request("invalid_query", "q is required"))?)?;
    Ok(Json(search::search(&st.db, &user.viewer(), &query, q.cursor.as_deref(), limit).await?))
}
