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
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: MemberStatus,
    pub permissions: Permissions,
    pub label_ids: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `member.updated` carrying only a presence change.
#[derive(Debug, Clone, Serialize)]
pub struct PresenceView {
    pub id: Uuid,
    pub presence: Availability,
}

/// A label (API answers and `label.updated` events).
#[derive(Debug, Clone, Serialize)]
pub struct LabelView {
    pub id: Uuid,
    pub name: String,
    pub color: Option<String>,
    pub created_at: DateTime<Utc>,
}
