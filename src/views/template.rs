//! Message templates as clients see them.

use serde::Serialize;
use serde_json::Value;

/// A template a number can send (`GET /numbers/{id}/templates`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    pub name: String,
    /// As the Graph API spells it (`en_US`).
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub category: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, ...: only `APPROVED` sends.
    pub status: String,
    /// Meta's quality score (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`), when known.
    pub quality: Option<String>,
    /// As the Graph API lists them (`HEADER`, `BODY` with its `{{n}}` placeholders, ...).
    pub components: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_reason: Option<String>,
}

/// `GET /numbers/{id}/templates`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TemplatesPage {
    pub templates: Vec<TemplateView>,
}
