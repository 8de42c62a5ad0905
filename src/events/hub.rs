//! The in-process wake-up: committed events ring it, the tail reader listens.

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
