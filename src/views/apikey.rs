//! API keys as answered: never the key itself, except once, when it is created.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::string_enum;

string_enum! {
    /// What an API key may do; each scope opens its own routes and no others.
    pub enum Scope {
        /// `POST /intake/leads`.
        LeadsWrite = "leads:write",
    }
}

/// An API key in a list: its name, scopes and first characters, never its secret.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// `POST /api-keys`: the key, shown this once.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyCreated {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    pub key: String,
}

/// `GET /api-keys`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeysPage {
    pub api_keys: Vec<ApiKeyView>,
    pub next_cursor: Option<String>,
}
