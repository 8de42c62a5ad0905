//! The team report.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// One member's counters (or their sum).
#[derive(Clone, Copy, Debug, Serialize, utoipa::ToSchema)]
pub struct CountsView {
    pub assigned: i64,
    pub contacted: i64,
    /// `null` when no lead got a first response.
    pub avg_first_response_secs: Option<f64>,
    pub first_responses: i64,
    pub activities: i64,
    pub replies: i64,
    pub open_conversations: i64,
}

/// A member's row.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ReportRow {
    pub member_id: Uuid,
    pub name: String,
    #[serde(flatten)]
    pub counts: CountsView,
}

/// `GET /reports/team`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TeamReport {
    pub members: Vec<ReportRow>,
    pub totals: CountsView,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub group_id: Option<Uuid>,
    /// Billable messages per pricing category, by category.
    pub billable: Vec<BillableView>,
}

/// Messages Meta charges for in one pricing category (`marketing`, `utility`, ...): those
/// written in the range, in the leads the report counts, whose status pricing has
/// `type == "regular"` (or `billable` when it has no type).
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BillableView {
    pub category: String,
    pub messages: i64,
}
