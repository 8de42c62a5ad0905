//! The webhook journal: bodies are committed (group commit: concurrent POSTs share one
//! statement, written as one `webhook_arrivals` row) before Meta gets its 200. The processor
//! unpacks arrivals into `webhook_events` rows, one per webhook, and processes those; it starts
//! with whatever is waiting, so a crash between the 200 and processing loses nothing.
//!
//! - [`writer`]: the group-commit writer and its [`Journal`] handle;
//! - [`codec`]: how one arrival row packs the webhooks of one commit;
//! - [`processor`]: unpacking and processing, with retries, and the retention;
//! - [`admin`]: what the admin routes read and change.

pub mod admin;
pub mod codec;
pub mod processor;
pub mod writer;

pub use codec::{Arrived, pack, unpack};
pub use processor::prune;
pub use writer::Journal;

use crate::string_enum;

string_enum! {
    /// Where a journal entry stands.
    pub enum EntryState {
        /// Not processed yet (or to be processed again).
        Pending = "pending",
        /// Processed.
        Done = "done",
        /// Kept for an admin: its body had an unexpected shape, or processing failed too often.
        Failed = "failed",
    }
}
