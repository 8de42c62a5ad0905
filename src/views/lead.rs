//! Leads as clients see them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// What the caller may do with a lead now (computed by `policy::lead_can`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LeadCan {
    pub edit: bool,
    pub delete: bool,
    pub assign: bool,
}

/// A lead (API answers and `lead.updated` events).
#[derive(Debug, Clone, Serialize)]
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
    /// The contact stopped marketing messages: marketing templates are refused.
    pub marketing_opt_out: bool,
    /// Only in answers to a caller (events go to many viewers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can: Option<LeadCan>,
}
