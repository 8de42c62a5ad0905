//! Invitations: an admin (or a member with `manage_members`) invites someone by email; the
//! invited member exists at once with status `invite_sent` and a one-time accept token (only
//! its SHA-256 is stored; it expires after 7 days). Accepting sets the password and makes the
//! member `active`. Resend issues a new token and kills the old one; cancel kills the token.
//! An invitation's `id` is the invited member's id.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Member, MemberStatus, require_manage};
use crate::audit::{self, AuditAction, AuditEntry, AuditTarget, Changes};
use crate::auth::token;
use crate::db::{Db, Tx};
use crate::error::{DbResultExt, Error, Result};
use crate::events::Work;
use crate::policy::{Permissions, Role, Viewer};
use crate::views::team::{InvitationState, InvitationView};
use crate::{on_db, on_tx};

/// How long an accept token works.
pub const INVITATION_TTL: chrono::Duration = chrono::Duration::days(7);

/// Whom to invite, validated.
#[derive(Debug)]
pub struct Invite {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub permissions: Permissions,
    pub label_ids: Vec<Uuid>,
}

/// The invitation as answered: the member plus the (new) accept token and its expiry.
fn view(m: &Member, accept_token: String, expires_at: DateTime<Utc>) -> InvitationView {
    InvitationView { member: m.view(), accept_token, expires_at }
}

/// Kills the live accept token of `user_id`, if any.
pub async fn cancel_pending(tx: &mut Tx, user_id: Uuid) -> Result<()> {
    on_tx!(tx, |c| sqlx::query("UPDATE invitations SET state = $1 WHERE user_id = $2 AND state = $3")
        .bind(InvitationState::Cancelled.as_str())
        .bind(user_id)
        .bind(InvitationState::Pending.as_str())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Kills any live token of `m` and issues a new one; returns (token, expiry).
async fn issue_token(tx: &mut Tx, now: DateTime<Utc>, m: &Member) -> Result<(String, DateTime<Utc>)> {
    cancel_pending(tx, m.id).await?;
    let (token, hash) = token::generate();
    let expires_at = now + INVITATION_TTL;
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO invitations (id, workspace_id, user_id, token_hash, state, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )
    .bind(Uuid::now_v7())
    .bind(m.workspace_id)
    .bind(m.id)
    .bind(&hash)
    .bind(InvitationState::Pending.as_str())
    .bind(expires_at)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok((token, expires_at))
}

/// Invites someone into `v`'s workspace (or invites again someone never active there).
pub async fn invite(work: &mut Work, v: &Viewer, i: Invite) -> Result<InvitationView> {
    require_manage(v, i.role)?;
    let ws = v.workspace_id;
    let now = work.now();
    let label_ids = super::labels::check_labels(work.tx(), ws, i.label_ids).await?;
    // Someone invited before and never active (pending or cancelled) may be invited again.
    let existing: Option<(Uuid, Uuid, MemberStatus, bool)> = on_tx!(work.tx(), |c| sqlx::query_as(
        "SELECT id, workspace_id, status, (password_hash IS NOT NULL) FROM users WHERE email = $1"
    )
    .bind(&i.email)
    .fetch_optional(c)
    .await)?;
    let mut before = None;
    let id = match existing {
        None => {
            let id = Uuid::now_v7();
            on_tx!(work.tx(), |c| sqlx::query(
                "INSERT INTO users (id, workspace_id, email, name, role, status, password_hash, permissions, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $8)"
            )
            .bind(id)
            .bind(ws)
            .bind(&i.email)
            .bind(&i.name)
            .bind(i.role.as_str())
            .bind(MemberStatus::InviteSent.as_str())
            .bind(sqlx::types::Json(i.permissions))
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
            .on_unique("email_taken", "a member with that email already exists")?;
            id
        }
        Some((id, w, MemberStatus::InviteSent | MemberStatus::Deactivated, false)) if w == ws => {
            let previous = super::load_tx(work.tx(), ws, id).await?;
            require_manage(v, previous.role())?;
            before = Some(previous.view());
            on_tx!(work.tx(), |c| {
                sqlx::query(
                "UPDATE users SET name = $1, role = $2, status = $3, permissions = $4, updated_at = $5 WHERE id = $6"
            )
            .bind(&i.name)
            .bind(i.role.as_str())
            .bind(MemberStatus::InviteSent.as_str())
            .bind(sqlx::types::Json(i.permissions))
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
    super::set_labels(work.tx(), id, &label_ids).await?;
    let member = super::load_tx(work.tx(), ws, id).await?;
    let (token, expires_at) = issue_token(work.tx(), now, &member).await?;
    super::emit_updated(work, &member);
    let changes = Changes::diff(before.as_ref(), Some(&member.view()));
    let entry = AuditEntry::new(ws, v.user_id, AuditAction::MemberInvited).target(AuditTarget::Member, id);
    audit::record(work, entry.changes(changes)).await?;
    Ok(view(&member, token, expires_at))
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: Uuid,
    user_id: Uuid,
    workspace_id: Uuid,
    state: InvitationState,
    expires_at: DateTime<Utc>,
}

fn gone() -> Error {
    Error::gone("invitation_gone", "this invitation was cancelled, already used or has expired")
}

/// A live invitation by its accept token.
pub struct Usable(PendingRow);

/// The invitation whose token this is, while it may be accepted at `now` (410 otherwise).
pub async fn usable(db: &Db, accept_token: &str, now: DateTime<Utc>) -> Result<Usable> {
    let hash = token::digest(accept_token.trim());
    let found: Option<PendingRow> = on_db!(db, |p| sqlx::query_as(
        "SELECT id, user_id, workspace_id, state, expires_at FROM invitations WHERE token_hash = $1"
    )
    .bind(&hash)
    .fetch_optional(p)
    .await)?;
    found.filter(|i| i.state == InvitationState::Pending && i.expires_at > now).map(Usable).ok_or_else(gone)
}

/// Accepts: the member becomes active with this password hash (and name, when given).
pub async fn accept(work: &mut Work, inv: Usable, password_hash: &str, name: Option<&str>) -> Result<Member> {
    let inv = inv.0;
    let now = work.now();
    let used = on_tx!(work.tx(), |c| sqlx::query("UPDATE invitations SET state = $1 WHERE id = $2 AND state = $3")
        .bind(InvitationState::Accepted.as_str())
        .bind(inv.id)
        .bind(InvitationState::Pending.as_str())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let activated = on_tx!(work.tx(), |c| sqlx::query(
        "UPDATE users SET status = $1, password_hash = $2, name = COALESCE($3, name), updated_at = $4 \
         WHERE id = $5 AND status = $6"
    )
    .bind(MemberStatus::Active.as_str())
    .bind(password_hash)
    .bind(name)
    .bind(now)
    .bind(inv.user_id)
    .bind(MemberStatus::InviteSent.as_str())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if used != 1 || activated != 1 {
        return Err(gone());
    }
    let member = super::load_tx(work.tx(), inv.workspace_id, inv.user_id).await?;
    super::emit_updated(work, &member);
    Ok(member)
}

/// The pending invitation of member `id`, for resend and cancel (404 when there is none).
async fn pending_member(tx: &mut Tx, v: &Viewer, id: Uuid) -> Result<Member> {
    let member = super::load_tx(tx, v.workspace_id, id).await?;
    require_manage(v, member.role())?;
    if member.status != MemberStatus::InviteSent {
        return Err(Error::not_found());
    }
    Ok(member)
}

/// A new accept token for member `id` (the old one stops working).
pub async fn resend(work: &mut Work, v: &Viewer, id: Uuid) -> Result<InvitationView> {
    let now = work.now();
    let member = pending_member(work.tx(), v, id).await?;
    let old: Option<DateTime<Utc>> = on_tx!(work.tx(), |c| sqlx::query_scalar(
        "SELECT MAX(expires_at) FROM invitations WHERE user_id = $1 AND state = $2"
    )
    .bind(id)
    .bind(InvitationState::Pending.as_str())
    .fetch_one(c)
    .await)?;
    let (token, expires_at) = issue_token(work.tx(), now, &member).await?;
    let entry = AuditEntry::new(v.workspace_id, v.user_id, AuditAction::InvitationResent)
        .target(AuditTarget::Member, id)
        .changes(Changes::new().field("expires_at", old, expires_at));
    audit::record(work, entry).await?;
    Ok(view(&member, token, expires_at))
}

/// Cancelling kills the token; the never-active member is kept as `deactivated` (they may be
/// invited again with the same email).
pub async fn cancel(work: &mut Work, v: &Viewer, id: Uuid) -> Result<()> {
    let now = work.now();
    let before = pending_member(work.tx(), v, id).await?;
    cancel_pending(work.tx(), id).await?;
    on_tx!(work.tx(), |c| sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(MemberStatus::Deactivated.as_str())
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let member = super::load_tx(work.tx(), v.workspace_id, id).await?;
    super::emit_updated(work, &member);
    let entry = AuditEntry::new(v.workspace_id, v.user_id, AuditAction::InvitationCancelled)
        .target(AuditTarget::Member, id)
        .changes(Changes::new().field("status", before.status, member.status));
    audit::record(work, entry).await?;
    Ok(())
}
