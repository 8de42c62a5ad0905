//! Timeline activities and assignment notices as clients see them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// An activity on a lead's timeline (`timeline.created` / `timeline.updated`).
#[derive(Debug, Clone, Serialize)]
pub struct ActivityView {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub lead_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub member_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub data: Value,
}

/// `timeline.deleted`: an activity merged into another (session summaries).
#[derive(Debug, Clone, Serialize)]
pub struct ActivityDeleted {
    pub id: Uuid,
    pub lead_id: Uuid,
    pub merged_into: Option<Uuid>,
}

/// `assignment.alert` (to the chosen member) and `assignment.pool` (to those who may claim).
#[derive(Debug, Clone, Serialize)]
pub struct AssignmentNotice {
    pub lead_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub cause: String,
    pub reason: String,
    pub rule: Option<String>,
    pub member_id: Option<Uuid>,
}
