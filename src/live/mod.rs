//! Live updates: the event log (written with each change) and the wake-up hub that tells
//! readers to look at it again.

pub mod doorbell;
pub mod events;
pub mod filter;
pub mod presence;
pub mod tail;
pub mod ws;

use tokio::sync::watch;

/// In-process wake-up signal: carries no payload, so a lost or doubled bump is harmless.
#[derive(Clone)]
pub struct Hub {
    tx: watch::Sender<()>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub { tx: watch::channel(()).0 }
    }
}

impl Hub {
    /// Something was committed: readers re-read the log.
    pub fn bump(&self) {
        self.tx.send_replace(());
    }

    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.tx.subscribe()
    }
}

/// Resolves once the server is shutting down (the guard `wait_for` returns is not `Send`).
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
