//! Connected numbers and lead groups as clients see them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A connected WhatsApp number (the access token is write-only: only `access_token_set`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NumberView {
    pub id: Uuid,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: Option<String>,
    pub owner_member_id: Option<Uuid>,
    pub auto_import_contacts: bool,
    pub needs_reauth: bool,
    pub created_at: DateTime<Utc>,
    pub disconnected_at: Option<DateTime<Utc>>,
    pub access_token_set: bool,
    pub connected: bool,
    /// As Meta reports it: `GREEN`, `YELLOW`, `RED`, `FLAGGED`, `UNKNOWN` (`null`: not yet).
    pub quality_rating: Option<String>,
    /// `TIER_250` … `TIER_UNLIMITED`.
    pub messaging_limit_tier: Option<String>,
    /// `active`, `warning`, `restricted`, `scheduled_for_disable`, `disabled`, `deleted`,
    /// `disconnected`.
    pub account_status: Option<String>,
    /// When its WABA's templates were last synced (`null`: never).
    pub templates_synced_at: Option<DateTime<Utc>>,
}

/// `GET /numbers`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NumbersPage {
    pub numbers: Vec<NumberView>,
    pub next_cursor: Option<String>,
}

/// A lead group.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct GroupView {
    pub id: Uuid,
    pub name: String,
}

/// `GET /groups`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupsPage {
    pub groups: Vec<GroupView>,
    pub next_cursor: Option<String>,
}
