//! Live updates: the tail reader, the doorbells, the filter, presence and the sockets. The
//! event log they read is `crate::events`.

pub mod doorbell;
pub mod filter;
pub mod presence;
pub mod tail;
pub mod ws;

use tokio::sync::watch;

/// Resolves once the server is shutting down (the guard `wait_for` returns is not `Send`).
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
