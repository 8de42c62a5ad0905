//! `POST/GET /api-keys`, `DELETE /api-keys/{id}`, and [`KeyCaller`] as an extractor: the
//! caller of a route meant for machines, authenticated by an API key.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use tracing::instrument;
use uuid::Uuid;

use super::KeyCaller;
use crate::api::Api;
use crate::audit::{self, AuditAction, AuditEntry, AuditTarget, Changes};
use crate::auth::{CurrentUser, credential, token};
use crate::db::{cursor, page_limit};
use crate::error::{Error, Result};
use crate::extract::{Json, Path, Query};
use crate::policy::keys::{self as may, KeyDenied};
use crate::state::AppState;
use crate::views::apikey::{ApiKeyCreated, ApiKeysPage, Scope};
use crate::workspace::validate_name;

pub fn routes() -> Api {
    Api::new().post("/api-keys", create).get("/api-keys", list).delete("/api-keys/{id}", revoke)
}

/// The answer to a refused key decision.
pub fn denied(d: KeyDenied) -> Error {
    match d {
        KeyDenied::NeedsManageIntegrations => {
            Error::forbidden("forbidden", "this needs an admin or the manage_integrations permission")
        }
        KeyDenied::MissingScope(s) => {
            Error::forbidden("missing_scope", format!("this API key lacks the {s} scope this route needs"))
        }
    }
}

impl FromRequestParts<AppState> for KeyCaller {
    type Rejection = Error;

    /// An API key in `Authorization: Bearer`; a valid session (token or cookie) is refused
    /// with 403 (these routes are for keys), anything else with 401.
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self> {
        let (presented, via_cookie) = credential(&parts.headers).ok_or_else(Error::unauthorized)?;
        if !token::is_api_key(&presented) {
            return match CurrentUser::from_token(&st.db, &presented, via_cookie).await? {
                Some(_) => Err(Error::forbidden("api_key_required", "this route takes an API key, not a session")),
                None => Err(Error::unauthorized()),
            };
        }
        super::authenticate(&st.db, &presented).await?.ok_or_else(Error::unauthorized)
    }
}

impl KeyCaller {
    /// The key itself, when it carries `scope` (403 otherwise).
    pub fn with_scope(self, scope: Scope) -> Result<KeyCaller> {
        may::key_may(&self.scopes, scope).map_err(denied)?;
        Ok(self)
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    scopes: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/api-keys",
    tag = "apikeys",
    description = "Creates an API key with scopes; its secret is shown only in this answer.",
    request_body = CreateKey,
    responses((status = 201, description = "Created.", body = ApiKeyCreated))
)]
#[instrument(skip_all)]
pub async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateKey>,
) -> Result<(StatusCode, Json<ApiKeyCreated>)> {
    may::may_manage_api_keys(&user.viewer()).map_err(denied)?;
    let name = validate_name(&body.name, "name")?;
    let scopes = super::parse_scopes(&body.scopes)?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let created = super::create(&mut tx, user.workspace_id, user.id, name, scopes, now).await?;
    let k = &created.api_key;
    let entry = AuditEntry::new(user.workspace_id, user.id, AuditAction::ApiKeyCreated)
        .target(AuditTarget::ApiKey, k.id)
        .changes(Changes::new().field("name", None::<&str>, &k.name).field("scopes", None::<&str>, &k.scopes));
    audit::record_tx(&mut tx, now, entry).await?;
    tx.commit().await?;
    tracing::info!(api_key_id = %created.api_key.id, prefix = %created.api_key.prefix, by = %user.id, "API key created");
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListKeys {
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api-keys",
    tag = "apikeys",
    description = "The workspace's API keys (without secrets), paginated.",
    params(ListKeys),
    responses((status = 200, description = "OK.", body = ApiKeysPage))
)]
#[instrument(skip_all)]
pub async fn list(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ListKeys>,
) -> Result<Json<ApiKeysPage>> {
    may::may_manage_api_keys(&user.viewer()).map_err(denied)?;
    let limit = page_limit(q.limit)?;
    let after = q.cursor.as_deref().map(cursor::decode).transpose()?;
    Ok(Json(super::list(&st.db, user.workspace_id, after, limit).await?))
}

#[utoipa::path(
    delete,
    path = "/api-keys/{id}",
    tag = "apikeys",
    description = "Revokes an API key.",
    responses((status = 204, description = "Done."))
)]
#[instrument(skip_all)]
pub async fn revoke(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    may::may_manage_api_keys(&user.viewer()).map_err(denied)?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    if super::revoke(&mut tx, user.workspace_id, id, now).await? {
        let entry = AuditEntry::new(user.workspace_id, user.id, AuditAction::ApiKeyRevoked)
            .target(AuditTarget::ApiKey, id)
            .changes(Changes::new().field("revoked", false, true));
        audit::record_tx(&mut tx, now, entry).await?;
    }
    tx.commit().await?;
    tracing::info!(api_key_id = %id, by = %user.id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
