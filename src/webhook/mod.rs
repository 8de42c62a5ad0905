//! Meta's webhook: the verification handshake and signed POSTs, journaled before the 200, then
//! processed into the inbox.
//!
//! - [`http`]: the receiving routes and the journal's admin routes;
//! - [`journal`]: the durable journal, its processor and its admin queries;
//! - [`ingest`]: a journaled body turned into calls of the chat write path;
//! - [`payload`], [`signature`]: Meta's shapes and signatures.

pub mod http;
pub mod ingest;
pub mod journal;
pub mod payload;
pub mod signature;
