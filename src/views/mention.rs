//! Mentions of members in notes, and search results, as clients see them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::string_enum;
use crate::views::message::SentBy;

/// A mention of the caller (`GET /mentions`, `POST /mentions/{id}/read`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MentionView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub lead_id: Uuid,
    pub lead_name: String,
    pub note_id: Uuid,
    pub by: SentBy,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// `GET /mentions`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MentionsPage {
    pub mentions: Vec<MentionView>,
    pub next_cursor: Option<String>,
}

/// `mention.created`, addressed to the mentioned member.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MentionNotice {
    pub mention_id: Uuid,
    pub conversation_id: Uuid,
    pub note_id: Uuid,
    pub by: SentBy,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

string_enum! {
    /// What a search result is.
    pub enum HitKind { Lead = "lead", Message = "message", Note = "note" }
}

/// One result of `GET /search`: a lead (no `message_id`), or a message or note (`message_id`
/// is its id in the conversation's messages page).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    pub kind: HitKind,
    /// A lead's newest conversation the caller sees (`null`: none yet).
    pub conversation_id: Option<Uuid>,
    pub lead_id: Uuid,
    pub lead_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    /// Plain text around the first matching word (the client highlights the words of `q`).
    pub snippet: String,
    pub created_at: DateTime<Utc>,
}

/// `GET /search`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    pub results: Vec<SearchHit>,
    pub next_cursor: Option<String>,
}
