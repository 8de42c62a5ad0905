//! Members: the team directory (every active member may read it, to pick assignees), and
//! changes to roles, flags, granted labels and status. Admins change anyone; members with
//! `manage_members` change other non-admin members; nobody leaves the workspace without an
//! active admin. Every change records `member.updated`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Member, MemberStatus, denied, member_cols, require_manage};
use crate::audit::{self, AuditAction, AuditEntry, AuditTarget, Changes};
use crate::db::{Db, cursor};
use crate::error::Result;
use crate::events::Work;
use crate::policy::team as may;
use crate::policy::{Permissions, Role, Viewer};
use crate::views::team::{MemberView, MembersPage};
use crate::{on_db, on_tx};

const LIST: &str = concat!(
    "SELECT ",
    member_cols!(),
    " FROM users u WHERE u.workspace_id = $1 AND ($2 IS NULL OR u.status = $2) \
     AND NOT (u.status = 'deactivated' AND u.password_hash IS NULL) \
     AND ($3 IS NULL OR u.created_at > $3 OR (u.created_at = $3 AND u.id > $4)) \
     ORDER BY u.created_at, u.id LIMIT $5"
);

/// One page of the directory, oldest first. Someone deactivated who never accepted their
/// invitation (a cancelled invitation) is not listed; inviting the email again brings them back.
pub async fn list(
    db: &Db,
    workspace_id: Uuid,
    status: Option<MemberStatus>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<MembersPage> {
    let mut rows: Vec<Member> = on_db!(db, |p| sqlx::query_as(LIST)
        .bind(workspace_id)
        .bind(status)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit + 1)
        .fetch_all(p)
        .await)?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|m| cursor::encode(m.created_at, m.id))
    } else {
        None
    };
    let ids: Vec<Uuid> = rows.iter().map(|m| m.id).collect();
    let mut labels = super::labels_of(db, &ids).await?;
    let mut teams = super::teams::teams_of(db, &ids).await?;
    let members: Vec<MemberView> = rows
        .iter_mut()
        .map(|m| {
            m.label_ids = labels.remove(&m.id).unwrap_or_default();
            m.team_ids = teams.remove(&m.id).unwrap_or_default();
            m.view()
        })
        .collect();
    Ok(MembersPage { members, next_cursor })
}

/// A change to a member; `None` leaves a part as it is.
#[derive(Debug, Default)]
pub struct Change {
    pub permissions: Option<Permissions>,
    pub role: Option<Role>,
    pub label_ids: Option<Vec<Uuid>>,
    /// Already validated.
    pub name: Option<String>,
}

/// Changes member `id` as `v` asks.
pub async fn change(work: &mut Work, v: &Viewer, id: Uuid, c: Change) -> Result<Member> {
    let Change { permissions, role, label_ids, name } = c;
    let ws = v.workspace_id;
    super::lock_workspace(work.tx(), ws).await?;
    let mut member = super::load_tx(work.tx(), ws, id).await?;
    let before = member.view();
    let asked = may::MemberChange {
        target: id,
        target_role: member.role(),
        new_role: role,
        only_name: permissions.is_none() && role.is_none() && label_ids.is_none(),
    };
    may::may_change_member(v, &asked)
        .map_err(|d| denied(d, "members can't change their own role, permissions or labels"))?;
    if let Some(role) = role {
        if role == Role::Member {
            super::ensure_not_last_admin(work.tx(), &member).await?;
        }
        member.role = role.as_str().to_owned();
    }
    if let Some(p) = permissions {
        member.permissions = sqlx::types::Json(p);
    }
    if let Some(n) = name {
        member.name = n;
    }
    if let Some(labels) = label_ids {
        let labels = super::labels::check_labels(work.tx(), ws, labels).await?;
        super::set_labels(work.tx(), id, &labels).await?;
    }
    let now = work.now();
    on_tx!(work.tx(), |t| sqlx::query(
        "UPDATE users SET name = $1, role = $2, permissions = $3, updated_at = $4 WHERE id = $5"
    )
    .bind(&member.name)
    .bind(&member.role)
    .bind(member.permissions)
    .bind(now)
    .bind(id)
    .execute(t)
    .await
    .map(|r| r.rows_affected()))?;
    let member = super::load_tx(work.tx(), ws, id).await?;
    super::emit_updated(work, &member);
    let changes = Changes::diff(Some(&before), Some(&member.view()));
    if !changes.is_empty() {
        let entry = AuditEntry::new(ws, v.user_id, AuditAction::MemberUpdated).target(AuditTarget::Member, id);
        audit::record(work, entry.changes(changes)).await?;
    }
    Ok(member)
}

/// Records a change of member `m`'s status from `before`.
async fn audit_status(
    work: &mut Work,
    v: &Viewer,
    action: AuditAction,
    before: MemberStatus,
    m: &Member,
) -> Result<()> {
    let entry = AuditEntry::new(v.workspace_id, v.user_id, action)
        .target(AuditTarget::Member, m.id)
        .changes(Changes::new().field("status", before, m.status));
    audit::record(work, entry).await?;
    Ok(())
}

/// Deactivation takes effect at once: every token of the member is revoked in the same
/// transaction (and `CurrentUser` only accepts active members); the live code closes their
/// sockets on the `member.updated` event. Their conversations stay assigned to them.
pub async fn deactivate(work: &mut Work, v: &Viewer, id: Uuid) -> Result<Member> {
    let ws = v.workspace_id;
    super::lock_workspace(work.tx(), ws).await?;
    let member = super::load_tx(work.tx(), ws, id).await?;
    may::may_deactivate(v, id, member.role()).map_err(|d| denied(d, "members can't deactivate themselves"))?;
    if member.status == MemberStatus::Deactivated {
        return Ok(member);
    }
    super::ensure_not_last_admin(work.tx(), &member).await?;
    let now = work.now();
    on_tx!(work.tx(), |t| sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(MemberStatus::Deactivated)
        .bind(now)
        .bind(id)
        .execute(t)
        .await
        .map(|r| r.rows_affected()))?;
    super::invitations::cancel_pending(work.tx(), id).await?;
    crate::auth::revoke_all(work.tx(), id).await?;
    let before = member.status;
    let member = super::load_tx(work.tx(), ws, id).await?;
    super::emit_updated(work, &member);
    audit_status(work, v, AuditAction::MemberDeactivated, before, &member).await?;
    Ok(member)
}

/// Reactivation restores access (the member logs in again). Someone who never accepted their
/// invitation goes back to `invite_sent` and needs a resend.
pub async fn reactivate(work: &mut Work, v: &Viewer, id: Uuid) -> Result<Member> {
    let ws = v.workspace_id;
    let member = super::load_tx(work.tx(), ws, id).await?;
    require_manage(v, member.role())?;
    if member.status != MemberStatus::Deactivated {
        return Ok(member);
    }
    let status = if member.has_password { MemberStatus::Active } else { MemberStatus::InviteSent };
    let now = work.now();
    on_tx!(work.tx(), |t| sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(t)
        .await
        .map(|r| r.rows_affected()))?;
    let before = member.status;
    let member = super::load_tx(work.tx(), ws, id).await?;
    super::emit_updated(work, &member);
    audit_status(work, v, AuditAction::MemberReactivated, before, &member).await?;
    Ok(member)
}
