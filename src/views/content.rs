//! Content items (quick-reply messages, files, pages) as clients see them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub use crate::policy::content::Visibility;
use crate::string_enum;

string_enum! {
    /// What a content item is: text to send, a file, or a page sent as a personal link.
    pub enum ContentKind { Message = "message", File = "file", Page = "page" }
}

/// A content item (API answers).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContentView {
    pub id: Uuid,
    pub kind: ContentKind,
    pub title: String,
    pub body: Option<String>,
    pub upload_id: Option<Uuid>,
    pub shortcut: Option<String>,
    pub visibility: Visibility,
    pub team_ids: Vec<Uuid>,
    pub owner_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `GET /content`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContentPage {
    pub content: Vec<ContentView>,
    pub next_cursor: Option<String>,
}

/// A lead opened a page sent to them (`content.viewed`, to the lead's assignee; the
/// `content_viewed` activity's data without `lead_id`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContentViewedView {
    pub content_id: Uuid,
    pub lead_id: Uuid,
    pub title: String,
    pub viewed_at: DateTime<Utc>,
}
