//! The workspace's settings, and the server's health.

use serde::Serialize;
use uuid::Uuid;

use crate::string_enum;

/// `GET /workspace`.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct WorkspaceView {
    pub id: Uuid,
    pub name: String,
    pub session_gap_secs: i64,
}

string_enum! {
    /// Whether the server can reach its database.
    pub enum HealthStatus { Ok = "ok", Unavailable = "unavailable" }
}

/// `GET /healthz`.
#[derive(Clone, Copy, Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: HealthStatus,
}
