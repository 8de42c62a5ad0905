//! The team: invitations, members (roles, permission flags, granted labels, deactivation) and
//! labels. A member's id is their user id. The handlers are in [`http`]; the functions here
//! and in the submodules take a transaction (a [`Work`] when they cause events).

pub mod http;
pub mod invitations;
pub mod labels;
pub mod members;
pub mod preferences;
pub mod teams;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::events::{Event, NewEvent, Work};
use crate::policy::team::{self as may, TeamDenied};
use crate::policy::{Permissions, Role, Viewer};
pub use crate::views::team::MemberStatus;
use crate::views::team::MemberView;
use crate::{on_db, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Member {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub status: MemberStatus,
    pub permissions: sqlx::types::Json<Permissions>,
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[sqlx(skip)]
    pub label_ids: Vec<Uuid>,
    #[sqlx(skip)]
    pub team_ids: Vec<Uuid>,
}

/// The columns a [`Member`] is read from (users aliased `u`), for `concat!`.
macro_rules! member_cols {
    () => {
        "u.id, u.workspace_id, u.email, u.name, u.role, u.status, u.permissions, \
         (u.password_hash IS NOT NULL) AS has_password, u.created_at, u.updated_at"
    };
}
pub(crate) use member_cols;

impl Member {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Member)
    }

    /// The member as the policy sees them.
    pub fn viewer(&self) -> Viewer {
        Viewer {
            user_id: self.id,
            workspace_id: self.workspace_id,
            role: self.role(),
            active: self.status == MemberStatus::Active,
            permissions: self.permissions.0,
            label_ids: self.label_ids.clone(),
        }
    }

    /// The member as answered and announced.
    pub fn view(&self) -> MemberView {
        MemberView {
            id: self.id,
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role(),
            status: self.status,
            permissions: self.permissions.0,
            label_ids: self.label_ids.clone(),
            team_ids: self.team_ids.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            presence: None,
        }
    }
}

const BY_ID: &str = concat!("SELECT ", member_cols!(), " FROM users u WHERE u.id = $1 AND u.workspace_id = $2");
const LABELS_OF: &str = "SELECT label_id FROM member_labels WHERE user_id = $1 ORDER BY label_id";

/// A member of the workspace; 404 when unknown or in another workspace.
pub async fn load(db: &Db, workspace_id: Uuid, id: Uuid) -> Result<Member> {
    let mut m: Member = on_db!(db, |p| sqlx::query_as(BY_ID).bind(id).bind(workspace_id).fetch_optional(p).await)?
        .ok_or_else(Error::not_found)?;
    m.label_ids = on_db!(db, |p| sqlx::query_scalar(LABELS_OF).bind(id).fetch_all(p).await)?;
    m.team_ids = on_db!(db, |p| sqlx::query_scalar(teams::TEAMS_OF).bind(id).fetch_all(p).await)?;
    Ok(m)
}

/// Same, inside a write transaction (sees the transaction's own changes).
pub async fn load_tx(tx: &mut Tx, workspace_id: Uuid, id: Uuid) -> Result<Member> {
    let mut m: Member = on_tx!(tx, |c| sqlx::query_as(BY_ID).bind(id).bind(workspace_id).fetch_optional(c).await)?
        .ok_or_else(Error::not_found)?;
    m.label_ids = on_tx!(tx, |c| sqlx::query_scalar(LABELS_OF).bind(id).fetch_all(c).await)?;
    m.team_ids = on_tx!(tx, |c| sqlx::query_scalar(teams::TEAMS_OF).bind(id).fetch_all(c).await)?;
    Ok(m)
}

/// Every active member of a workspace with their granted labels (the access listing).
pub async fn active_members(db: &Db, workspace_id: Uuid) -> Result<Vec<Member>> {
    let sql = concat!(
        "SELECT ",
        member_cols!(),
        " FROM users u WHERE u.workspace_id = $1 AND u.status = 'active' ORDER BY u.created_at, u.id"
    );
    let mut members: Vec<Member> = on_db!(db, |p| sqlx::query_as(sql).bind(workspace_id).fetch_all(p).await)?;
    let ids: Vec<Uuid> = members.iter().map(|m| m.id).collect();
    let mut labels = labels_of(db, &ids).await?;
    let mut teams = teams::teams_of(db, &ids).await?;
    for m in &mut members {
        m.label_ids = labels.remove(&m.id).unwrap_or_default();
        m.team_ids = teams.remove(&m.id).unwrap_or_default();
    }
    Ok(members)
}

/// Granted label ids of each member (sorted), in one query.
pub async fn labels_of(db: &Db, members: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    let grants = crate::db::Links { table: "member_labels", from: "user_id", to: "label_id" };
    Ok(crate::db::linked(db, grants, members).await?)
}

/// Replaces a member's granted labels (already checked to exist in the workspace).
pub async fn set_labels(tx: &mut Tx, user_id: Uuid, label_ids: &[Uuid]) -> Result<()> {
    on_tx!(tx, |c| sqlx::query("DELETE FROM member_labels WHERE user_id = $1")
        .bind(user_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    for l in label_ids {
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO member_labels (user_id, label_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        )
        .bind(user_id)
        .bind(*l)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Records the workspace-wide `member.updated` event (the live code closes the sockets of a
/// member whose status is no longer `active`).
pub fn emit_updated(work: &mut Work, m: &Member) {
    work.emit(NewEvent::new(m.workspace_id, Event::MemberUpdated(m.view())));
}

/// Serialises changes to a workspace's members (the last-admin rule reads then writes): a row
/// lock on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serialises writers.
pub async fn lock_workspace(tx: &mut Tx, workspace_id: Uuid) -> Result<()> {
    on_tx!(tx, |c| sqlx::query("UPDATE workspaces SET name = name WHERE id = $1")
        .bind(workspace_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Refuses to leave the workspace without an active admin (`target` is about to be demoted
/// or deactivated).
pub async fn ensure_not_last_admin(tx: &mut Tx, target: &Member) -> Result<()> {
    if !may::keeps_the_workspace_administered(&target.viewer()) {
        return Ok(());
    }
    let others: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE workspace_id = $1 AND role = 'admin' AND status = 'active' AND id <> $2"
    )
    .bind(target.workspace_id)
    .bind(target.id)
    .fetch_one(c)
    .await)?;
    if others == 0 {
        return Err(Error::conflict("last_admin", "the workspace's last active admin can't be demoted or deactivated"));
    }
    Ok(())
}

/// The contract's refusal for a member change.
pub fn denied(d: TeamDenied, on_themselves: &'static str) -> Error {
    match d {
        TeamDenied::AdminOnly => Error::forbidden("admin_only", "only an admin may invite or change an admin"),
        TeamDenied::NeedsManageMembers => {
            Error::forbidden("forbidden", "managing members needs the manage_members permission")
        }
        TeamDenied::OnThemselves => Error::forbidden("forbidden", on_themselves),
    }
}

/// Managing a member whose role is `target` (invitations, reactivation).
pub fn require_manage(v: &Viewer, target: Role) -> Result<()> {
    may::may_manage_member(v, target).map_err(|d| denied(d, "members can't manage themselves"))
}

/// Sorted, deduplicated ids.
pub fn dedup(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids.dedup();
    ids
}
