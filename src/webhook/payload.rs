//! The webhook payload, typed where we rely on it. Every field is optional and unknown fields
//! are ignored; message bodies stay raw JSON next to the typed common fields.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub object: Option<String>,
    pub entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
pub struct Entry {
    pub id: Option<String>,
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
pub struct Change {
    pub field: Option<String>,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChangeValue {
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub messages: Vec<Value>,
    #[serde(default)]
    pub statuses: Vec<Status>,
    #[serde(default)]
    pub errors: Vec<Value>,
    #[serde(default)]
    pub message_echoes: Vec<Value>,
    #[serde(default)]
    pub user_preferences: Vec<Value>,
    #[serde(default)]
    pub calls: Vec<Value>,
    #[serde(default)]
    pub history: Vec<Value>,
    #[serde(default)]
    pub state_sync: Vec<Value>,
}

#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub display_phone_number: Option<String>,
    pub phone_number_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Contact {
    pub profile: Option<Profile>,
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub parent_user_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Profile {
    pub name: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Status {
    pub id: Option<String>,
    pub status: Option<String>,
    pub timestamp: Option<String>,
    pub recipient_id: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorObject>,
    /// What Meta charges (on `sent` and one of `delivered`/`read`).
    pub pricing: Option<crate::views::message::Pricing>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorObject {
    pub code: Option<i64>,
    pub title: Option<String>,
    pub message: Option<String>,
}

/// Common fields of an inbound message or echo, read from its raw JSON.
#[derive(Debug, Default, Deserialize)]
pub struct MessageHead {
    pub id: Option<String>,
    pub from: Option<String>,
    pub from_user_id: Option<String>,
    pub from_parent_user_id: Option<String>,
    pub to: Option<String>,
    pub to_user_id: Option<String>,
    pub to_parent_user_id: Option<String>,
    pub timestamp: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub context: Option<Context>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Context {
    pub id: Option<String>,
    pub from: Option<String>,
    #[serde(default)]
    pub forwarded: bool,
    #[serde(default)]
    pub frequently_forwarded: bool,
}

/// Parses Meta's string Unix-seconds timestamp.
pub fn timestamp(raw: Option<&str>) -> Option<chrono::DateTime<chrono::Utc>> {
    let secs: i64 = raw?.trim().parse().ok()?;
    chrono::DateTime::from_timestamp(secs, 0)
}
