//! Live updates: the tail reader, the doorbells, the filter, presence and the sockets. The
//! event log they read is `crate::events`.

pub mod doorbell;
pub mod filter;
pub mod presence;
pub mod presence_sync;
pub mod presence_writer;
pub mod tail;
pub mod ws;

use tokio::sync::watch;

/// How many recent events the tail keeps in memory.
pub const TAIL_LEN: usize = 4096;

/// Resolves once the server is shutting down (the guard `wait_for` returns is not `Send`).
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
