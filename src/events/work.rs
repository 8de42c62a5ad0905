//! The unit of work: a write transaction and the events its changes caused. Domain functions
//! take `&mut Work`, write through [`Work::tx`] and record events with [`Work::emit`]; the edge
//! that began it calls [`Work::commit`], which appends the events, commits, and wakes the live
//! readers — so no change commits without its events, and no event outlives a rollback.

use chrono::{DateTime, Utc};

use crate::db::{Db, Tx};
use crate::error::Result;

use super::{Hub, NewEvent, log};

pub struct Work {
    tx: Tx,
    now: DateTime<Utc>,
    events: Vec<NewEvent>,
}

impl Work {
    /// Begins a write transaction; `now` is the time of everything it records.
    pub async fn begin(db: &Db, now: DateTime<Utc>) -> Result<Work> {
        Ok(Work::on(db.begin().await?, now))
    }

    /// A unit of work over a transaction already begun.
    pub fn on(tx: Tx, now: DateTime<Utc>) -> Work {
        Work { tx, now, events: Vec::new() }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Records an event, appended at commit in the order emitted.
    pub fn emit(&mut self, e: NewEvent) {
        self.events.push(e);
    }

    /// Takes the event log's append lock now (PostgreSQL), for work that must read state
    /// under it so that its events tell the newest state (presence).
    pub async fn serialise(&mut self) -> Result<()> {
        log::serialise(&mut self.tx).await
    }

    /// Appends the events, commits, and wakes the live readers.
    pub async fn commit(mut self, hub: &Hub) -> Result<()> {
        log::append_all(&mut self.tx, self.now, &self.events).await?;
        self.tx.commit().await?;
        if !self.events.is_empty() {
            hub.bump();
        }
        Ok(())
    }

    /// Commits without waking anyone (callers that ring the hub themselves once for many
    /// units, e.g. a batch of webhooks).
    pub async fn commit_quietly(mut self) -> Result<bool> {
        log::append_all(&mut self.tx, self.now, &self.events).await?;
        self.tx.commit().await?;
        Ok(!self.events.is_empty())
    }

    /// Rolls the transaction back; its events are dropped.
    pub async fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback().await?)
    }
}
