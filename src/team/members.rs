//! Members: the team directory (every active member may read it, to pick assignees), and
//! changes to roles, flags, granted labels and status. Admins change anyone; members with
//! `manage_members` change other non-admin members; nobody leaves the workspace without an
//! active admin. Every change appends `member.updated`.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use super::invitations::require_manage;
use super::{ACTIVE, DEACTIVATED, INVITE_SENT, Member, member_cols};
use crate::auth::CurrentUser;
use crate::db::{cursor, page_limit};
use crate::error::{Error, Result};
use crate::extract::{Json, Path, Query};
use crate::policy::{Permissions, Role};
use crate::state::AppState;
use crate::{on_db, on_tx};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListMembers {
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

const LIST: &str = concat!(
    "SELECT ",
    member_cols!(),
    " FROM users u WHERE u.workspace_id = $1 AND ($2 IS NULL OR u.status = $2) \
     AND ($3 IS NULL OR u.created_at > $3 OR (u.created_at = $3 AND u.id > $4)) \
     ORDER BY u.created_at, u.id LIMIT $5"
);

#[instrument(skip_all)]
pub async fn list(State(st): State<AppState>, user: CurrentUser, Query(q): Query<ListMembers>) -> Result<Json<Value>> {
    let limit = page_limit(q.limit)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s @ (INVITE_SENT | ACTIVE | DEACTIVATED)) => Some(s.to_owned()),
        Some(_) => {
            return Err(Error::bad_request("invalid_filter", "status must be invite_sent, active or deactivated"));
        }
    };
    let after = q.cursor.as_deref().map(cursor::decode).transpose()?;
    let mut rows: Vec<Member> = on_db!(&st.db, |p| sqlx::query_as(LIST)
        .bind(user.workspace_id)
        .bind(&status)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit + 1)
        .fetch_all(p)
        .await)?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|m| cursor::encode(m.created_at, m.id))
    } else {
        None
    };
    let ids: Vec<Uuid> = rows.iter().map(|m| m.id).collect();
    let mut labels = super::labels_of(&st.db, &ids).await?;
    let out: Vec<Value> = rows
        .iter_mut()
        .map(|m| {
            m.label_ids = labels.remove(&m.id).unwrap_or_default();
            m.to_json()
        })
        .collect();
    Ok(Json(json!({"members": out, "next_cursor": next})))
}

#[instrument(skip_all)]
pub async fn get_one(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<Value>> {
    Ok(Json(super::load(&st.db, user.workspace_id, id).await?.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchMember {
    permissions: Option<Permissions>,
    role: Option<String>,
    label_ids: Option<Vec<Uuid>>,
    name: Option<String>,
}

#[instrument(skip_all)]
pub async fn patch(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchMember>,
) -> Result<Json<Value>> {
    let role = body
        .role
        .as_deref()
        .map(|r| Role::parse(r).ok_or_else(|| Error::unprocessable("invalid_role", "role must be admin or member")))
        .transpose()?;
    let name = body.name.as_deref().map(|n| crate::workspace::validate_name(n, "name")).transpose()?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    super::lock_workspace(&mut tx, user.workspace_id).await?;
    let mut member = super::load_tx(&mut tx, user.workspace_id, id).await?;
    let only_name = body.permissions.is_none() && role.is_none() && body.label_ids.is_none();
    // Anyone may rename themselves; everything else is managing members.
    if !(id == user.id && only_name) {
        require_manage(&user, member.role())?;
        if role == Some(Role::Admin) {
            require_manage(&user, Role::Admin)?;
        }
        if id == user.id && !user.is_admin() {
            return Err(Error::forbidden("forbidden", "members can't change their own role, permissions or labels"));
        }
    }
    if let Some(role) = role {
        if role == Role::Member {
            super::ensure_not_last_admin(&mut tx, &member).await?;
        }
        member.role = role.as_str().to_owned();
    }
    if let Some(p) = body.permissions {
        member.permissions = sqlx::types::Json(p);
    }
    if let Some(n) = name {
        member.name = n;
    }
    if let Some(labels) = body.label_ids {
        let labels = super::labels::check_labels(&mut tx, user.workspace_id, labels).await?;
        super::set_labels(&mut tx, id, &labels).await?;
    }
    on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE users SET name = $1, role = $2, permissions = $3, updated_at = $4 WHERE id = $5"
    )
    .bind(&member.name)
    .bind(&member.role)
    .bind(member.permissions)
    .bind(now)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let member = super::load_tx(&mut tx, user.workspace_id, id).await?;
    super::emit_updated(&mut tx, now, &member).await?;
    st.commit(tx).await?;
    tracing::info!(member_id = %id, "member updated");
    Ok(Json(member.to_json()))
}

/// Deactivation takes effect at once: every token of the member is revoked in the same
/// transaction (and `CurrentUser` only accepts active members); the live code closes their
/// sockets on the `member.updated` event. Their conversations stay assigned to them.
#[instrument(skip_all)]
pub async fn deactivate(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<Value>> {
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    super::lock_workspace(&mut tx, user.workspace_id).await?;
    let member = super::load_tx(&mut tx, user.workspace_id, id).await?;
    require_manage(&user, member.role())?;
    if id == user.id && !user.is_admin() {
        return Err(Error::forbidden("forbidden", "members can't deactivate themselves"));
    }
    if member.status == DEACTIVATED {
        return Ok(Json(member.to_json()));
    }
    super::ensure_not_last_admin(&mut tx, &member).await?;
    on_tx!(&mut tx, |c| sqlx::query("UPDATE users SET status = 'deactivated', updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE invitations SET state = 'cancelled' WHERE user_id = $1 AND state = 'pending'"
    )
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    crate::auth::revoke_all(&mut tx, id).await?;
    let member = super::load_tx(&mut tx, user.workspace_id, id).await?;
    super::emit_updated(&mut tx, now, &member).await?;
    st.commit(tx).await?;
    tracing::info!(member_id = %id, "member deactivated");
    Ok(Json(member.to_json()))
}

/// Reactivation restores access (the member logs in again). Someone who never accepted their
/// invitation goes back to `invite_sent` and needs a resend.
#[instrument(skip_all)]
pub async fn reactivate(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<Value>> {
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let member = super::load_tx(&mut tx, user.workspace_id, id).await?;
    require_manage(&user, member.role())?;
    if member.status != DEACTIVATED {
        return Ok(Json(member.to_json()));
    }
    let status = if member.has_password { ACTIVE } else { INVITE_SENT };
    on_tx!(&mut tx, |c| sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let member = super::load_tx(&mut tx, user.workspace_id, id).await?;
    super::emit_updated(&mut tx, now, &member).await?;
    st.commit(tx).await?;
    tracing::info!(member_id = %id, "member reactivated");
    Ok(Json(member.to_json()))
}
