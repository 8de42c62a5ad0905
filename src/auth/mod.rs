//! Authentication: who a token belongs to ([`CurrentUser`]), sessions, and the credential of a
//! request. The extractor and the login, logout and `me` handlers are in [`http`].

pub mod http;
pub mod password;
pub mod throttle;
pub mod token;

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::error::Result;
use crate::policy::{Permissions, Role, Viewer};
pub use crate::views::auth::UserOut;
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
    pub async fn from_token(db: &Db, token: &str, via_cookie: bool) -> Result<Option<CurrentUser>> {
        let hash = token::digest(token);
        let row: Option<UserRow> = on_db!(db, |p| sqlx::query_as(BY_TOKEN).bind(&hash).fetch_optional(p).await)?;
        let Some(row) = row else { return Ok(None) };
        let label_ids: Vec<Uuid> = on_db!(db, |p| sqlx::query_scalar(LABELS_OF).bind(row.id).fetch_all(p).await)?;
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

/// An active user found by email, with their password hash (for login).
#[derive(sqlx::FromRow)]
pub struct LoginRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: Option<String>,
}

impl LoginRow {
    pub fn public(self) -> UserOut {
        UserOut {
            id: self.id,
            email: self.email,
            name: self.name,
            role: Role::parse(&self.role).unwrap_or(Role::Member),
            workspace_id: self.workspace_id,
        }
    }
}

const LOGIN_LOOKUP: &str = "SELECT id, workspace_id, email, name, role, password_hash FROM users \
    WHERE email = $1 AND status = 'active'";
const INSERT_TOKEN: &str = "INSERT INTO auth_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)";
const REVOKE_TOKEN: &str = "UPDATE auth_tokens SET revoked = TRUE WHERE token_hash = $1";

/// The active user with this (normalised) email.
pub async fn find_active(db: &Db, email: &str) -> Result<Option<LoginRow>> {
    Ok(on_db!(db, |p| sqlx::query_as(LOGIN_LOOKUP).bind(email).fetch_optional(p).await)?)
}

/// Issues a session token for `user_id`; only its digest is stored.
pub async fn issue_token(db: &Db, user_id: Uuid, now: DateTime<Utc>) -> Result<String> {
    let (token, hash) = token::generate();
    on_db!(db, |p| sqlx::query(INSERT_TOKEN)
        .bind(&hash)
        .bind(user_id)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(token)
}

/// Revokes one token (logout).
pub async fn revoke(db: &Db, token_hash: &[u8]) -> Result<()> {
    on_db!(db, |p| sqlx::query(REVOKE_TOKEN).bind(token_hash).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Revokes every token of a user (deactivation signs them out everywhere).
pub async fn revoke_all(tx: &mut Tx, user_id: Uuid) -> Result<()> {
    on_tx!(tx, |c| sqlx::query("UPDATE auth_tokens SET revoked = TRUE WHERE user_id = $1")
        .bind(user_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
