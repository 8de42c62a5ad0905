//! Conversations as clients see them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::string_enum;

string_enum! {
    /// A conversation's state.
    pub enum ConversationStatus { Open = "open", Closed = "closed" }
}

/// What the caller may do with a conversation now (computed by `policy::conversation_can`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConversationCan {
    pub reply: bool,
    pub assign: bool,
    pub claim: bool,
    pub change_status: bool,
    pub label: bool,
    pub manage_access: bool,
    pub note: bool,
}

/// A conversation (API answers and `conversation.*` events).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConversationView {
    pub id: Uuid,
    pub lead_id: Uuid,
    pub lead_name: String,
    pub number_id: Uuid,
    pub contact_phone: Option<String>,
    pub contact_bsuid: Option<String>,
    pub status: ConversationStatus,
    pub assignee_id: Option<Uuid>,
    pub label_ids: Vec<Uuid>,
    /// The newest message's summary ([`MessagePreview`]), as stored with the conversation.
    pub last_message: Option<Value>,
    /// WhatsApp's time of the newest message (what lists are ordered by); `None` before any.
    pub last_message_at: Option<DateTime<Utc>>,
    pub unread_count: i64,
    pub window_expires_at: Option<DateTime<Utc>>,
    pub template_required: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Only in answers to a caller (events go to many viewers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can: Option<ConversationCan>,
}

string_enum! {
    /// What ended a member's access to a conversation (`access.lost`): its assignee changed
    /// (assigned, claimed, reassigned), a label they were granted left it, or their explicit
    /// access was revoked.
    pub enum LostCause { Assignee = "assignee", Label = "label", Access = "access" }
}

/// `access.lost`, addressed to a member who saw the conversation before a change and no
/// longer does: a client drops it from its lists and closes it if open.
#[derive(Debug, Clone, Serialize)]
pub struct AccessLost {
    pub conversation_id: Uuid,
    pub lead_id: Uuid,
    pub cause: LostCause,
    /// The conversation's assignee now.
    pub assignee_id: Option<Uuid>,
    /// The member who made the change (`null`: the assignment engine).
    pub by_member_id: Option<Uuid>,
}

/// Who can see a conversation and why (`GET/POST/DELETE /conversations/{id}/access`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessListing {
    pub conversation_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub label_ids: Vec<Uuid>,
    pub explicit_member_ids: Vec<Uuid>,
    pub members: Vec<AccessMember>,
}

/// A member who sees a conversation, with the policy's reasons.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessMember {
    pub member_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: crate::policy::Role,
    pub reasons: Vec<crate::policy::Rule>,
}
