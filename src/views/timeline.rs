//! Timeline activities and assignment notices as clients see them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::string_enum;

string_enum! {
    /// What an activity on a lead's timeline records.
    pub enum ActivityKind {
        WhatsappSession = "whatsapp_session",
        LeadCreated = "lead_created",
        Assigned = "assigned",
        Claimed = "claimed",
        StatusChanged = "status_changed",
        LabelAdded = "label_added",
        LabelRemoved = "label_removed",
        Note = "note",
        MessageSent = "message_sent",
        AccessGranted = "access_granted",
        AccessRevoked = "access_revoked",
        /// WhatsApp said something happened to the contact (changed number, ...).
        System = "system",
        /// A WhatsApp call (`data`: conversation_id, direction, status, duration_secs).
        Call = "call",
        ContentViewed = "content_viewed",
    }
}

/// An activity on a lead's timeline (`timeline.created` / `timeline.updated`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActivityView {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: ActivityKind,
    pub lead_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub member_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub data: Value,
}

/// An activity in `GET /leads/{id}/timeline` (and the answer of `POST /leads/{id}/notes`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: ActivityKind,
    pub member_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub data: Value,
}

/// `GET /leads/{id}/timeline`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelinePage {
    pub activities: Vec<TimelineEntry>,
    pub next_cursor: Option<String>,
}

/// An activity in `GET /activities`: the timeline across leads, with the lead's name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActivityRow {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: ActivityKind,
    pub lead_id: Uuid,
    pub lead_name: String,
    pub conversation_id: Option<Uuid>,
    pub member_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub data: Value,
}

/// `GET /activities`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActivitiesPage {
    pub activities: Vec<ActivityRow>,
    pub next_cursor: Option<String>,
}

/// `timeline.deleted`: an activity merged into another (session summaries).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActivityDeleted {
    pub id: Uuid,
    pub lead_id: Uuid,
    pub merged_into: Option<Uuid>,
}

/// `assignment.alert` (to the chosen member) and `assignment.pool` (to those who may claim).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AssignmentNotice {
    pub lead_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub cause: String,
    pub reason: String,
    pub rule: Option<String>,
    pub member_id: Option<Uuid>,
    /// The member who made the change (`null`: the assignment engine).
    pub by_member_id: Option<Uuid>,
}

/// `call.missed`, to the conversation's assignee only: the contact called and nobody answered.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallNotice {
    pub call_id: String,
    pub conversation_id: Uuid,
    pub lead_id: Uuid,
    pub at: DateTime<Utc>,
}
