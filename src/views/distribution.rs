//! Lead distribution as answered: the history of who got which lead, by which channels.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::string_enum;

string_enum! {
    /// How a recipient gets a distributed lead.
    pub enum Channel {
        /// As a lead in their own workspace on this server, assigned to them.
        App = "app",
        /// As a mail with the lead's details.
        Email = "email",
        /// As a WhatsApp template message.
        Whatsapp = "whatsapp",
    }
}

string_enum! {
    /// Whom a rule sends each lead to.
    pub enum DistributionMode {
        Broadcast = "broadcast",
        RoundRobin = "round_robin",
    }
}

string_enum! {
    /// Where one delivery stands.
    pub enum DeliveryStatus {
        /// On its way (a mail in the queue; an app lead waiting for the recipient's account).
        Queued = "queued",
        Sent = "sent",
        Failed = "failed",
    }
}

/// One channel's delivery of one entry.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    pub channel: Channel,
    pub status: DeliveryStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

/// The lead as it was sent.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryLead {
    pub name: String,
    pub phone: Option<String>,
    pub source: Option<String>,
}

/// `GET /distribution/history`: one lead sent to one recipient.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub rule: String,
    pub lead: HistoryLead,
    pub recipient_email: String,
    pub channels: Vec<Channel>,
    /// `failed` if a channel failed, else `queued` while one is on its way, else `sent`.
    pub status: DeliveryStatus,
    /// Each channel's state, with the reason of a failure.
    pub deliveries: Vec<Delivery>,
}

/// `GET /distribution/history`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    pub next_cursor: Option<String>,
}
