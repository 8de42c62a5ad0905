//! Leads as clients see them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// What the caller may do with a lead now (computed by `policy::lead_can`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LeadCan {
    pub edit: bool,
    pub delete: bool,
    pub assign: bool,
}

/// Where a lead stands: `contacted` (a business-side message or a member's note exists),
/// `first_response_secs` (as the team report defines it; `None` until there is one) and
/// `last_activity_at` (the newest of its creation, its newest message and its newest timeline
/// activity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LeadProgress {
    pub contacted: bool,
    pub first_response_secs: Option<i64>,
    pub last_activity_at: DateTime<Utc>,
}

/// A lead (API answers and `lead.updated` events).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LeadView {
    pub id: Uuid,
    pub name: String,
    pub phone: Option<String>,
    pub source: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub group_ids: Vec<Uuid>,
    pub custom_fields: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Always in answers; in events when the writer loaded it.
    #[serde(flatten)]
    pub progress: Option<LeadProgress>,
    /// The contact stopped marketing messages: marketing templates are refused.
    pub marketing_opt_out: bool,
    /// Only in answers to a caller (events go to many viewers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can: Option<LeadCan>,
}
