//! Events: what happened, typed, and the log that keeps it. A change and its events are
//! committed together by one unit of work ([`Work`]); the live sockets read the log.
//!
//! - [`Event`]: one variant per event kind, serialised as the contract's frame body
//!   (`{"type": "message.created", "data": {...}}`), its data a view from [`crate::views`];
//! - [`NewEvent`]: an event with what routes it (workspace, conversation, lead, addressee);
//! - [`log`]: appending, reading and pruning the `events` table;
//! - [`Work`]: a transaction plus the events it caused, committed and published together;
//! - [`Hub`]: the in-process wake-up rung after each commit.

pub mod hub;
pub mod log;
pub mod work;

pub use hub::Hub;
pub use work::Work;

use serde::Serialize;
use uuid::Uuid;

use crate::views::Deleted;
use crate::views::content::ContentViewedView;
use crate::views::conversation::{AccessLost, ConversationView};
use crate::views::lead::LeadView;
use crate::views::mention::MentionNotice;
use crate::views::message::{MessageView, NoteView};
use crate::views::number::NumberView;
use crate::views::team::{LabelView, MemberView, PresenceView};
use crate::views::timeline::{ActivityDeleted, ActivityView, AssignmentNotice, CallNotice};

macro_rules! events {
    ($($(#[$meta:meta])* $variant:ident($data:ty) = $kind:literal,)+) => {
        /// Every live event. The frame is `{"cursor": "<id>", "type": KIND, "data": DATA}`.
        #[derive(Debug, Clone, Serialize)]
        #[serde(tag = "type", content = "data")]
        pub enum Event {
            $($(#[$meta])* #[serde(rename = $kind)] $variant($data),)+
        }

        impl Event {
            /// The contract's `type` of this event.
            pub fn kind(&self) -> &'static str {
                match self { $(Event::$variant(_) => $kind,)+ }
            }

            /// The `data` of this event as JSON text.
            pub fn data_json(&self) -> String {
                let r = match self { $(Event::$variant(d) => serde_json::to_string(d),)+ };
                r.expect("views serialise")
            }
        }
    };
}

events! {
    ConversationCreated(ConversationView) = "conversation.created",
    ConversationUpdated(ConversationView) = "conversation.updated",
    /// Its assignee changed (assign, claim).
    ConversationAssigned(ConversationView) = "conversation.assigned",
    MessageCreated(MessageView) = "message.created",
    MessageUpdated(MessageView) = "message.updated",
    /// An internal note: `message.created` with the note (`"type": "note"`), so a client
    /// keeps one list for the chat.
    NoteCreated(NoteView) = "message.created",
    /// To the mentioned member only.
    MentionCreated(MentionNotice) = "mention.created",
    LeadUpdated(LeadView) = "lead.updated",
    LeadDeleted(Deleted) = "lead.deleted",
    LabelUpdated(LabelView) = "label.updated",
    LabelDeleted(Deleted) = "label.deleted",
    MemberUpdated(MemberView) = "member.updated",
    /// `member.updated` with only `id` and `presence`.
    MemberPresence(PresenceView) = "member.updated",
    NumberUpdated(NumberView) = "number.updated",
    /// To the chosen member only.
    AssignmentAlert(AssignmentNotice) = "assignment.alert",
    /// To everyone who may claim the unassigned lead.
    AssignmentPool(AssignmentNotice) = "assignment.pool",
    TimelineCreated(ActivityView) = "timeline.created",
    TimelineUpdated(ActivityView) = "timeline.updated",
    TimelineDeleted(ActivityDeleted) = "timeline.deleted",
    /// To the conversation's assignee only.
    CallMissed(CallNotice) = "call.missed",
    /// To a member who no longer sees the conversation after a change.
    AccessLost(AccessLost) = "access.lost",
    /// A lead opened a page sent to them; to the lead's assignee only.
    ContentViewed(ContentViewedView) = "content.viewed",
}

/// An event about to be appended, with what routes it to sockets.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub workspace_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    /// Addressed to one member only (e.g. `assignment.alert`).
    pub user_id: Option<Uuid>,
    pub kind: &'static str,
    /// The `data` as JSON text.
    pub data: String,
}

impl NewEvent {
    pub fn new(workspace_id: Uuid, event: Event) -> Self {
        NewEvent {
            workspace_id,
            conversation_id: None,
            lead_id: None,
            user_id: None,
            kind: event.kind(),
            data: event.data_json(),
        }
    }
    pub fn conversation(mut self, id: impl Into<Option<Uuid>>) -> Self {
        self.conversation_id = id.into();
        self
    }
    pub fn lead(mut self, id: impl Into<Option<Uuid>>) -> Self {
        self.lead_id = id.into();
        self
    }
    pub fn to_user(mut self, id: Uuid) -> Self {
        self.user_id = Some(id);
        self
    }
}

impl NewEvent {
    /// An event of any kind with any data, for tests that exercise the live filter (the
    /// server itself emits only [`Event`]s).
    pub fn raw(workspace_id: Uuid, kind: &'static str, data: serde_json::Value) -> Self {
        NewEvent { workspace_id, conversation_id: None, lead_id: None, user_id: None, kind, data: data.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_the_content_of_the_tagged_frame() {
        let e = Event::LabelDeleted(Deleted { id: Uuid::nil() });
        let whole: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(whole["type"], e.kind());
        assert_eq!(whole["data"], serde_json::from_str::<serde_json::Value>(&e.data_json()).unwrap());
    }
}
