//! Messages as clients see them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::string_enum;

string_enum! {
    /// Which way a message went; `internal` is a note, which goes nowhere.
    pub enum Direction { In = "in", Out = "out", Internal = "internal" }
}

string_enum! {
    /// Where a message stands. Inbound messages are `received`; outbound ones move
    /// `queued` → `sent` → `delivered` → `read`, or end `failed`.
    pub enum MessageStatus {
        Received = "received",
        Queued = "queued",
        Sent = "sent",
        Delivered = "delivered",
        Read = "read",
        Failed = "failed",
    }
}

impl MessageStatus {
    /// An outbound message's progress: queued < sent < delivered < read (`None`: received,
    /// failed).
    fn progress(self) -> Option<u8> {
        match self {
            MessageStatus::Queued => Some(0),
            MessageStatus::Sent => Some(1),
            MessageStatus::Delivered => Some(2),
            MessageStatus::Read => Some(3),
            MessageStatus::Received | MessageStatus::Failed => None,
        }
    }

    /// Whether Meta's status webhooks report this status (all but `received`).
    pub fn is_reported(self) -> bool {
        self != MessageStatus::Received
    }

    /// The status after `incoming` arrives on a message in `self`: it never moves backwards,
    /// `failed` is final, and a failure after delivery is ignored.
    pub fn after(self, incoming: MessageStatus) -> MessageStatus {
        match (self.progress(), incoming) {
            _ if self == MessageStatus::Failed => self,
            (_, MessageStatus::Received) => self,
            (Some(cur), MessageStatus::Failed) if cur >= 2 => self,
            (_, MessageStatus::Failed) => MessageStatus::Failed,
            (Some(cur), new) if new.progress().is_some_and(|n| n <= cur) => self,
            (_, new) => new,
        }
    }
}

/// A short summary of a message for conversation lists.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessagePreview {
    pub id: Uuid,
    pub direction: Direction,
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub status: MessageStatus,
    pub created_at: DateTime<Utc>,
    /// Who sent an outbound message (as on the message), so lists can say "You", a
    /// teammate's name or the WhatsApp app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_by: Option<SentBy>,
}

/// Who sent an outbound message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum SentBy {
    /// `"whatsapp_app"`: an echo of a message sent from the WhatsApp Business app.
    App(&'static str),
    Member {
        id: Uuid,
        email: Option<String>,
        name: Option<String>,
    },
}

impl SentBy {
    pub const APP: SentBy = SentBy::App("whatsapp_app");
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReactionView {
    pub emoji: String,
    pub from: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Context {
    pub wamid: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageError {
    pub code: i64,
    pub title: Option<String>,
}

/// A message (API answers and `message.*` events).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub wamid: Option<String>,
    pub direction: Direction,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: MessageStatus,
    pub created_at: DateTime<Utc>,
    pub forwarded: bool,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub reactions: Vec<ReactionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_by: Option<SentBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<MessageError>,
    /// When its sender last edited it (the current text is `text`).
    pub edited_at: Option<DateTime<Utc>>,
    /// Its older texts, oldest first.
    pub edits: Vec<Edit>,
    /// When its sender deleted it for everyone (the text stays for those who see the chat).
    pub revoked_at: Option<DateTime<Utc>>,
    /// What Meta charges for it (outbound, from its statuses).
    pub pricing: Option<Pricing>,
}

/// An older text of an edited message, and when it was written.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Edit {
    pub text: Option<String>,
    pub at: DateTime<Utc>,
}

/// A message's pricing as its status webhooks report it.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Pricing {
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub billable: Option<bool>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// The `type` of a note among a conversation's messages.
pub const NOTE: &str = "note";

/// An internal note in a conversation (the answer of `POST /conversations/{id}/notes`, an
/// item of the messages page, and the data of the `message.created` event a note sends):
/// `"type": "note"`, `"direction": "internal"`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NoteView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub direction: Direction,
    pub text: String,
    pub sent_by: SentBy,
    pub mention_ids: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// One item of a conversation's messages page: a WhatsApp message or an internal note.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ChatItem {
    Message(Box<MessageView>),
    Note(NoteView),
}

impl MessageView {
    pub fn preview(&self) -> MessagePreview {
        MessagePreview {
            id: self.id,
            direction: self.direction,
            kind: self.kind.clone(),
            text: self.text.clone().or_else(|| {
                self.media.as_ref().and_then(|m| m.get("caption")).and_then(Value::as_str).map(str::to_owned)
            }),
            status: self.status,
            created_at: self.created_at,
            sent_by: self.sent_by.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::{self, *};

    #[test]
    fn statuses_never_regress() {
        let after = |a: MessageStatus, b: MessageStatus| a.after(b);
        assert_eq!(after(Queued, Sent), Sent);
        assert_eq!(after(Sent, Read), Read);
        assert_eq!(after(Read, Delivered), Read);
        assert_eq!(after(Delivered, Sent), Delivered);
        assert_eq!(after(Sent, Failed), Failed);
        assert_eq!(after(Failed, Read), Failed);
        assert_eq!(after(Read, Failed), Read);
        assert_eq!(after(Sent, Received), Sent);
        assert_eq!(after(Queued, Queued), Queued);
    }
}
