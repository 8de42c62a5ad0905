//! Members, labels and presence as clients see them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::policy::{Permissions, Role};
use crate::string_enum;

string_enum! {
    /// A member's account state.
    pub enum MemberStatus { InviteSent = "invite_sent", Active = "active", Deactivated = "deactivated" }
}

string_enum! {
    /// Whether a member can take chats now (live sockets and their declared status).
    pub enum Availability { Available = "available", Away = "away", Offline = "offline" }
}

/// A member (API answers and `member.updated` events).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: MemberStatus,
    pub permissions: Permissions,
    pub label_ids: Vec<Uuid>,
    pub team_ids: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// In `GET /members` only: available, away or offline now (this node's view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence: Option<Availability>,
}

/// `member.updated` carrying only a presence change.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PresenceView {
    pub id: Uuid,
    pub presence: Availability,
}

/// A label (API answers and `label.updated` events).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LabelView {
    pub id: Uuid,
    pub name: String,
    pub color: Option<String>,
    pub created_at: DateTime<Utc>,
}

string_enum! {
    /// An invitation's accept token: usable, used, or killed (resent, cancelled, deactivated).
    pub enum InvitationState { Pending = "pending", Accepted = "accepted", Cancelled = "cancelled" }
}

/// An invitation as answered: the invited member plus the (new) accept token and its expiry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    #[serde(flatten)]
    pub member: MemberView,
    pub accept_token: String,
    pub expires_at: DateTime<Utc>,
}

/// `POST /invitations` with several comma-separated emails: one invitation each, in order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InvitationsView {
    pub invitations: Vec<InvitationView>,
}

/// `POST /invitations`: one email answers its invitation, several answer them all.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum InviteAnswer {
    One(InvitationView),
    Many(InvitationsView),
}

/// `GET /members`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MembersPage {
    pub members: Vec<MemberView>,
    pub next_cursor: Option<String>,
}

/// `GET /labels` (one page: `next_cursor` is always null).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LabelsPage {
    pub labels: Vec<LabelView>,
    pub next_cursor: Option<String>,
}

/// A team (API answers).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TeamView {
    pub id: Uuid,
    pub name: String,
    pub member_ids: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `GET /teams` (one page: `next_cursor` is always null).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TeamsPage {
    pub teams: Vec<TeamView>,
    pub next_cursor: Option<String>,
}
