//! The inbox: numbers, leads, conversations and messages. The domain (queries and changes over
//! a transaction) is in the files here; the handlers are in [`http`]. Only `inbox/` writes
//! conversations and messages. Below assignment: the inbox never calls it (the edges call the
//! inbox, then assignment).

pub mod assignee;
pub mod chat;
pub mod conversations;
pub mod groups;
pub mod http;
pub mod inbound;
pub mod jobs;
pub mod leads;
pub mod leads_csv;
pub mod lost;
pub mod messages;
pub mod notes;
pub mod numbers;
pub mod ownership;
pub mod search;
pub mod templates;

use uuid::Uuid;

use crate::error::{Error, Result};

/// Parses an id given as a filter value (400 when malformed).
pub fn parse_id(value: &str, what: &str) -> Result<Uuid> {
    Uuid::parse_str(value.trim()).map_err(|_| Error::bad_request("invalid_filter", format!("{what} is not a valid id")))
}

/// Parses a boolean filter value (400 when malformed).
pub fn parse_bool(value: &str, what: &str) -> Result<bool> {
    match value.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::bad_request("invalid_filter", format!("{what} must be true or false"))),
    }
}
