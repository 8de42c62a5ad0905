//! Authentication: login, logout, and the `CurrentUser` extractor every `/api/v1` handler takes.

pub mod password;
pub mod throttle;
pub mod token;

use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::extract::Json;
use crate::policy::{Permissions, Role, Viewer};
use crate::state::AppState;
use crate::{on_db, on_tx};

pub const SESSION_COOKIE: &str = "sb_session";

/// The authenticated caller. Taking it as an argument is what makes a handler authenticated.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub permissions: Permissions,
    pub label_ids: Vec<Uuid>,
    pub token_hash: Vec<u8>,
    /// The credential came from the session cookie (the browser UI), not a bearer header.
    pub via_cookie: bool,
}

impl CurrentUser {
    pub fn viewer(&self) -> Viewer {
        Viewer {
            user_id: self.id,
            workspace_id: self.workspace_id,
            role: self.role,
            active: true,
            permissions: self.permissions,
            label_ids: self.label_ids.clone(),
        }
    }
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
    pub fn public(&self) -> UserOut {
        UserOut {
            id: self.id,
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            workspace_id: self.workspace_id,
        }
    }
}

/// The user object of login answers.
#[derive(Clone, Debug, Serialize)]
pub struct UserOut {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub workspace_id: Uuid,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    workspace_id: Uuid,
    email: String,
    name: String,
    role: String,
    permissions: sqlx::types::Json<Permissions>,
}

const BY_TOKEN: &str = "SELECT u.id, u.workspace_id, u.email, u.name, u.role, u.permissions \
    FROM auth_tokens t JOIN users u ON u.id = t.user_id \
    WHERE t.token_hash = $1 AND NOT t.revoked AND u.status = 'active'";
const LABELS_OF: &str = "SELECT label_id FROM member_labels WHERE user_id = $1";

/// The credential of a request: the bearer header first, else the session cookie.
pub fn credential(headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(h) = headers.get(AUTHORIZATION) {
        let t = h.to_str().ok()?.strip_prefix("Bearer ")?.trim();
        return (!t.is_empty()).then(|| (t.to_owned(), false));
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == SESSION_COOKIE && !v.is_empty())
        .map(|(_, v)| (v.to_owned(), true))
}

impl CurrentUser {
    /// Resolves a token to its active user, or `None`.
    pub async fn from_token(st: &AppState, token: &str, via_cookie: bool) -> Result<Option<CurrentUser>> {
        let hash = token::digest(token);
        let row: Option<UserRow> = on_db!(&st.db, |p| sqlx::query_as(BY_TOKEN).bind(&hash).fetch_optional(p).await)?;
        let Some(row) = row else { return Ok(None) };
        let label_ids: Vec<Uuid> = on_db!(&st.db, |p| sqlx::query_scalar(LABELS_OF).bind(row.id).fetch_all(p).await)?;
        Ok(Some(CurrentUser {
            id: row.id,
            workspace_id: row.workspace_id,
            email: row.email,
            name: row.name,
            role: Role::parse(&row.role).unwrap_or(Role::Member),
            permissions: row.permissions.0,
            label_ids,
            token_hash: hash,
            via_cookie,
        }))
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self> {
        let (token, via_cookie) = credential(&parts.headers).ok_or_else(Error::unauthorized)?;
        if via_cookie && !parts.method.is_safe() && !same_site_request(&parts.headers) {
            return Err(Error::forbidden("cross_origin", "a cookie-authenticated change must come from this origin"));
        }
        CurrentUser::from_token(st, &token, via_cookie).await?.ok_or_else(Error::unauthorized)
    }
}

/// CSRF check for cookie-authenticated changes (on top of `SameSite=Strict`): an `Origin`
/// header must name this host; without one, a `Sec-Fetch-Site` other than same-origin fails.
pub fn same_site_request(headers: &HeaderMap) -> bool {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    match get("origin") {
        Some(origin) => get("host").is_some_and(|host| {
            origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host))
        }),
        None => get("sec-fetch-site").is_none_or(|s| s == "same-origin" || s == "none"),
    }
}

#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[derive(sqlx::FromRow)]
struct LoginRow {
    id: Uuid,
    workspace_id: Uuid,
    email: String,
    name: String,
    role: String,
    password_hash: Option<String>,
}

const LOGIN_LOOKUP: &str = "SELECT id, workspace_id, email, name, role, password_hash FROM users \
    WHERE email = $1 AND status = 'active'";
const INSERT_TOKEN: &str = "INSERT INTO auth_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)";
const REVOKE_TOKEN: &str = "UPDATE auth_tokens SET revoked = TRUE WHERE token_hash = $1";

/// Issues a token for `user_id` and answers as login does (also used by invitation accept).
pub async fn issue_session(st: &AppState, user: UserOut, status: StatusCode) -> Result<Response> {
    let (token, hash) = token::generate();
    let now = st.clock.now();
    on_db!(&st.db, |p| sqlx::query(INSERT_TOKEN)
        .bind(&hash)
        .bind(user.id)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    let cookie = format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    Ok((status, [(SET_COOKIE, cookie)], axum::Json(json!({"token": token, "user": user}))).into_response())
}

#[instrument(skip_all)]
pub async fn login(State(st): State<AppState>, Json(body): Json<LoginBody>) -> Result<Response> {
    let email = body.email.trim().to_lowercase();
    if let Some(wait) = st.throttle.retry_after(&email) {
        tracing::warn!(retry_after = wait, "login throttled");
        return Err(Error::too_many(wait));
    }
    let row: Option<LoginRow> = on_db!(&st.db, |p| sqlx::query_as(LOGIN_LOOKUP).bind(&email).fetch_optional(p).await)?;
    let phc = row.as_ref().and_then(|r| r.password_hash.clone());
    if body.password.len() > password::MAX_LEN || !password::verify(body.password, phc).await {
        st.throttle.failed(&email);
        tracing::info!("login failed");
        return Err(Error::client(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong email or password"));
    }
    let Some(row) = row else { return Err(Error::unauthorized()) };
    st.throttle.succeeded(&email);
    tracing::info!(user_id = %row.id, "login");
    let user = UserOut {
        id: row.id,
        email: row.email,
        name: row.name,
        role: Role::parse(&row.role).unwrap_or(Role::Member),
        workspace_id: row.workspace_id,
    };
    issue_session(&st, user, StatusCode::OK).await
}

#[instrument(skip_all)]
pub async fn logout(State(st): State<AppState>, user: CurrentUser) -> Result<Response> {
    on_db!(&st.db, |p| sqlx::query(REVOKE_TOKEN).bind(&user.token_hash).execute(p).await.map(|r| r.rows_affected()))?;
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, clear)]).into_response())
}

#[instrument(skip_all)]
pub async fn me(user: CurrentUser) -> Json<serde_json::Value> {
    Json(json!({"user": user.public(), "permissions": user.permissions, "label_ids": user.label_ids}))
}

/// Revokes every token of a user (deactivation signs them out everywhere).
pub async fn revoke_all(tx: &mut crate::db::Tx, user_id: Uuid) -> Result<()> {
    on_tx!(tx, |c| sqlx::query("UPDATE auth_tokens SET revoked = TRUE WHERE user_id = $1")
        .bind(user_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
