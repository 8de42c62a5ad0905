//! `AppState`: what the edges (handlers, receivers, workers) share. Only the edges and the
//! wiring see it; domain functions take a transaction and what they need explicitly.

use std::sync::Arc;

use tokio::sync::watch;

use crate::auth::throttle::Throttle;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::events::Hub;
use crate::live::presence::Presence;
use crate::live::tail::TailRx;
use crate::webhook::journal::writer::Journal;

/// Everything a handler or job needs; cheap to clone (one reference count: axum clones the
/// state for every request).
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Clone)]
pub struct Shared {
    pub db: Db,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub hub: Hub,
    pub throttle: Arc<Throttle>,
    /// The newest events of the log, re-read by one task per node after each wake-up.
    pub tail: TailRx,
    /// The sockets' wake-ups, rung by the tail reader.
    pub bells: Arc<crate::live::doorbell::Doorbells>,
    /// Live sockets and declared status per member (this node).
    pub presence: Arc<Presence>,
    /// Flips to true when the server is shutting down; background jobs watch it.
    pub shutdown: watch::Receiver<bool>,
    pub journal: Journal,
    pub graph: crate::outbox::graph::Graph,
    pub throughput: Arc<crate::outbox::throughput::Throughput>,
    /// Wakes the outbox sender when a row was queued.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Seals and opens numbers' access tokens (`SWITCHBOARD_SECRET_KEY`).
    pub secrets: crate::secrets::Secrets,
    /// Wakes the mail sender when a mail was queued.
    pub mail_wake: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// The same state over another pool (a background job's own connections).
    pub fn with_db(&self, db: Db) -> AppState {
        AppState(Arc::new(Shared { db, ..(*self.0).clone() }))
    }
}
