//! Invitations: an admin (or a member with `manage_members`) invites someone by email; the
//! invited member exists at once with status `invite_sent` and a one-time accept token (only
//! its SHA-256 is stored; it expires after 7 days). Accepting sets the password and makes the
//! member `active`. Resend issues a new token and kills the old one; cancel kills the token.
//! An invitation's `id` is the invited member's id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tracing::instrument;
use uuid::Uuid;

use super::{DEACTIVATED, INVITE_SENT, Member};
use crate::auth::{CurrentUser, UserOut, password, token};
use crate::db::Tx;
use crate::error::{DbResultExt, Error, Result};
use crate::extract::{Json, Path};
use crate::policy::{self, Permissions, Role};
use crate::state::AppState;
use crate::workspace::{validate_email, validate_name};
use crate::{on_db, on_tx};

/// How long an accept token works.
pub const INVITATION_TTL: chrono::Duration = chrono::Duration::days(7);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    email: String,
    name: Option<String>,
    role: Option<String>,
    #[serde(default)]
    permissions: Permissions,
    #[serde(default)]
    label_ids: Vec<Uuid>,
}

fn parse_role(raw: Option<&str>) -> Result<Role> {
    match raw {
        None => Ok(Role::Member),
        Some(r) => Role::parse(r).ok_or_else(|| Error::unprocessable("invalid_role", "role must be admin or member")),
    }
}

/// Only admins invite or change admins; members with `manage_members` manage members.
pub fn require_manage(user: &CurrentUser, target_role: Role) -> Result<()> {
    if policy::can_manage_member(&user.viewer(), target_role) {
        Ok(())
    } else if target_role == Role::Admin && user.permissions.manage_members {
        Err(Error::forbidden("admin_only", "only an admin may invite or change an admin"))
    } else {
        Err(Error::forbidden("forbidden", "managing members needs the manage_members permission"))
    }
}

/// The invitation as answered: the member plus the (new) accept token and its expiry.
fn invitation_json(m: &Member, accept_token: &str, expires_at: DateTime<Utc>) -> Value {
    let mut v = m.to_json();
    v["accept_token"] = Value::String(accept_token.to_owned());
    v["expires_at"] = serde_json::to_value(expires_at).unwrap_or_default();
    v
}

/// Kills any live token of `user_id` and issues a new one; returns (token, expiry).
async fn issue_token(tx: &mut Tx, now: DateTime<Utc>, m: &Member) -> Result<(String, DateTime<Utc>)> {
    on_tx!(tx, |c| sqlx::query("UPDATE invitations SET state = 'cancelled' WHERE user_id = $1 AND state = 'pending'")
        .bind(m.id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let (token, hash) = token::generate();
    let expires_at = now + INVITATION_TTL;
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO invitations (id, workspace_id, user_id, token_hash, state, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $6)"
    )
    .bind(Uuid::now_v7())
    .bind(m.workspace_id)
    .bind(m.id)
    .bind(&hash)
    .bind(expires_at)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok((token, expires_at))
}

#[instrument(skip_all)]
pub async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<Invite>,
) -> Result<(StatusCode, Json<Value>)> {
    let role = parse_role(body.role.as_deref())?;
    require_manage(&user, role)?;
    let email = validate_email(&body.email)?;
    let name = match body.name.as_deref() {
        Some(n) => validate_name(n, "name")?,
        None => email.split('@').next().unwrap_or("member").to_owned(),
    };
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let label_ids = super::labels::check_labels(&mut tx, user.workspace_id, body.label_ids).await?;
    // Someone invited before and never active (pending or cancelled) may be invited again.
    let existing: Option<(Uuid, Uuid, String, bool)> = on_tx!(&mut tx, |c| sqlx::query_as(
        "SELECT id, workspace_id, status, (password_hash IS NOT NULL) FROM users WHERE email = $1"
    )
    .bind(&email)
    .fetch_optional(c)
    .await)?;
    let id = match existing {
        None => {
            let id = Uuid::now_v7();
            on_tx!(&mut tx, |c| sqlx::query(
                "INSERT INTO users (id, workspace_id, email, name, role, status, password_hash, permissions, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'invite_sent', NULL, $6, $7, $7)"
            )
            .bind(id)
            .bind(user.workspace_id)
            .bind(&email)
            .bind(&name)
            .bind(role.as_str())
            .bind(sqlx::types::Json(body.permissions))
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
            .on_unique("email_taken", "a member with that email already exists")?;
            id
        }
        Some((id, ws, status, false))
            if ws == user.workspace_id && (status == INVITE_SENT || status == DEACTIVATED) =>
        {
            let previous = super::load_tx(&mut tx, user.workspace_id, id).await?;
            require_manage(&user, previous.role())?;
            on_tx!(&mut tx, |c| {
                sqlx::query(
                "UPDATE users SET name = $1, role = $2, status = 'invite_sent', permissions = $3, updated_at = $4 WHERE id = $5"
            )
            .bind(&name)
            .bind(role.as_str())
            .bind(sqlx::types::Json(body.permissions))
            .bind(now)
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
            })?;
            id
        }
        Some(_) => return Err(Error::conflict("email_taken", "a member with that email already exists")),
    };
    super::set_labels(&mut tx, id, &label_ids).await?;
    let member = super::load_tx(&mut tx, user.workspace_id, id).await?;
    let (token, expires_at) = issue_token(&mut tx, now, &member).await?;
    super::emit_updated(&mut tx, now, &member).await?;
    st.commit(tx).await?;
    tracing::info!(member_id = %id, "member invited");
    Ok((StatusCode::CREATED, Json(invitation_json(&member, &token, expires_at))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    accept_token: String,
    password: String,
    name: Option<String>,
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: Uuid,
    user_id: Uuid,
    workspace_id: Uuid,
    state: String,
    expires_at: DateTime<Utc>,
}

fn gone() -> Error {
    Error::gone("invitation_gone", "this invitation was cancelled, already used or has expired")
}

/// Accepting answers exactly as login does (201): the invited member is signed in.
#[instrument(skip_all)]
pub async fn accept(State(st): State<AppState>, Json(body): Json<Accept>) -> Result<Response> {
    password::validate(&body.password)?;
    let name = body.name.as_deref().map(|n| validate_name(n, "name")).transpose()?;
    let hash = token::digest(body.accept_token.trim());
    let now = st.clock.now();
    let found: Option<PendingRow> = on_db!(&st.db, |p| sqlx::query_as(
        "SELECT id, user_id, workspace_id, state, expires_at FROM invitations WHERE token_hash = $1"
    )
    .bind(&hash)
    .fetch_optional(p)
    .await)?;
    let inv = found.filter(|i| i.state == "pending" && i.expires_at > now).ok_or_else(gone)?;
    let password_hash = password::hash(body.password).await?;
    let mut tx = st.db.begin().await?;
    let used = on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE invitations SET state = 'accepted' WHERE id = $1 AND state = 'pending'"
    )
    .bind(inv.id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let activated = on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE users SET status = 'active', password_hash = $1, name = COALESCE($2, name), updated_at = $3 \
         WHERE id = $4 AND status = 'invite_sent'"
    )
    .bind(&password_hash)
    .bind(&name)
    .bind(now)
    .bind(inv.user_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if used != 1 || activated != 1 {
        return Err(gone());
    }
    let member = super::load_tx(&mut tx, inv.workspace_id, inv.user_id).await?;
    super::emit_updated(&mut tx, now, &member).await?;
    st.commit(tx).await?;
    tracing::info!(member_id = %member.id, "invitation accepted");
    let user = UserOut {
        id: member.id,
        email: member.email.clone(),
        name: member.name.clone(),
        role: member.role(),
        workspace_id: member.workspace_id,
    };
    crate::auth::issue_session(&st, user, StatusCode::CREATED).await
}

/// The pending invitation of member `id`, for resend and cancel (404 when there is none).
async fn pending_member(tx: &mut Tx, user: &CurrentUser, id: Uuid) -> Result<Member> {
    let member = super::load_tx(tx, user.workspace_id, id).await?;
    require_manage(user, member.role())?;
    if member.status != INVITE_SENT {
        return Err(Error::not_found());
    }
    Ok(member)
}

#[instrument(skip_all)]
pub async fn resend(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<Value>> {
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let member = pending_member(&mut tx, &user, id).await?;
    let (token, expires_at) = issue_token(&mut tx, now, &member).await?;
    st.commit(tx).await?;
    tracing::info!(member_id = %id, "invitation resent");
    Ok(Json(invitation_json(&member, &token, expires_at)))
}

/// Cancelling kills the token; the never-active member is kept as `deactivated` (they may be
/// invited again with the same email).
#[instrument(skip_all)]
pub async fn cancel(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    pending_member(&mut tx, &user, id).await?;
    on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE invitations SET state = 'cancelled' WHERE user_id = $1 AND state = 'pending'"
    )
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    on_tx!(&mut tx, |c| sqlx::query("UPDATE users SET status = 'deactivated', updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let member = super::load_tx(&mut tx, user.workspace_id, id).await?;
    super::emit_updated(&mut tx, now, &member).await?;
    st.commit(tx).await?;
    tracing::info!(member_id = %id, "invitation cancelled");
    Ok(StatusCode::NO_CONTENT)
}
