//! `GET /api/v1/audit`: the trail, for admins. No route changes or deletes an entry.

use axum::extract::State;
use serde::Deserialize;
use tracing::instrument;

use super::{AuditAction, Filter};
use crate::api::Api;
use crate::auth::CurrentUser;
use crate::db::{cursor, page_limit};
use crate::error::{Error, Result};
use crate::extract::{Json, Query};
use crate::policy::team::may_read_audit;
use crate::state::AppState;
use crate::timeline::read::{parse_id, parse_time};
use crate::views::audit::AuditPage;

pub fn routes() -> Api {
    Api::new().get("/audit", list)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    actor_id: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    description = "The audit trail of admin actions, newest first, filtered by actor, action and time (admins).",
    params(AuditQuery),
    responses((status = 200, description = "OK.", body = AuditPage))
)]
#[instrument(skip_all)]
pub async fn list(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>> {
    may_read_audit(&user.viewer()).map_err(|_| Error::forbidden("forbidden", "only admins read the audit trail"))?;
    let action = match q.action.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(AuditAction::parse(a.trim()).ok_or_else(|| {
            let all: Vec<_> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
            Error::bad_request("invalid_filter", format!("action must be one of {}", all.join(", ")))
        })?),
    };
    let filter = Filter {
        actor: q.actor_id.as_deref().filter(|a| !a.is_empty()).map(|a| parse_id(a, "actor_id")).transpose()?,
        action,
        from: q.from.as_deref().filter(|f| !f.is_empty()).map(|f| parse_time(f, "from")).transpose()?,
        to: q.to.as_deref().filter(|t| !t.is_empty()).map(|t| parse_time(t, "to")).transpose()?,
        after: q.cursor.as_deref().map(cursor::decode_seq).transpose()?,
        limit: page_limit(q.limit)?,
    };
    Ok(Json(super::list(&st.db, user.workspace_id, &filter).await?))
}
