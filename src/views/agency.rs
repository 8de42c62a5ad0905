//! Agencies as clients see them: the agency, its client entries, what it reads of a client,
//! and the client's `managed_by`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub use crate::policy::agency::ClientStatus;
use crate::views::conversation::ConversationStatus;
use crate::views::lead::LeadView;
use crate::views::timeline::TimelinePage;

/// `POST`/`GET /agency`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AgencyView {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A workspace named in an answer: its id and name only.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkspaceRef {
    pub id: Uuid,
    pub name: String,
}

/// How a managed client is doing (only while `managing`).
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct ClientStats {
    pub leads: i64,
    pub uncontacted: i64,
    pub avg_first_response_secs: Option<i64>,
}

/// One client entry of `GET /agency/clients`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub status: ClientStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<WorkspaceRef>,
    pub invited_at: DateTime<Utc>,
    pub linked_at: Option<DateTime<Utc>>,
    /// Counts of the client's leads, while `managing`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub stats: Option<ClientStats>,
}

/// An invitation as answered to the agency: the entry and its (new) accept token.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientInvitationView {
    #[serde(flatten)]
    pub client: ClientView,
    pub accept_token: String,
    pub expires_at: DateTime<Utc>,
}

/// `GET /agency/clients`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientsPage {
    pub clients: Vec<ClientView>,
    pub next_cursor: Option<String>,
}

/// A client workspace's `managed_by`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ManagedBy {
    pub agency_id: Uuid,
    pub name: String,
}

/// A lead as the agency reads it: the lead (without `can`: the agency does nothing with it)
/// and the status of its newest conversation (`null` without one).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgencyLeadView {
    #[serde(flatten)]
    pub lead: LeadView,
    pub status: Option<ConversationStatus>,
}

/// `GET /agency/clients/{id}/leads`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgencyLeadsPage {
    pub leads: Vec<AgencyLeadView>,
    pub next_cursor: Option<String>,
}

/// `GET /agency/clients/{id}/leads/{lead_id}`: the lead and a page of its timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgencyLeadDetail {
    #[serde(flatten)]
    pub lead: AgencyLeadView,
    pub timeline: TimelinePage,
}

/// `POST /agency-invitations/accept` by a signed-in admin: their workspace, now managed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AcceptedView {
    pub workspace: WorkspaceRef,
    pub managed_by: ManagedBy,
}

/// `GET /workspace` (and `POST /workspace/unlink-agency`): the settings and who manages the
/// workspace.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ManagedWorkspace {
    #[serde(flatten)]
    pub workspace: crate::views::workspace::WorkspaceView,
    pub managed_by: Option<ManagedBy>,
}
