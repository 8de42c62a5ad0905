//! The tail reader: one task per node re-reads the event log after each wake-up and publishes
//! the newest events (frames serialised once, access facts loaded once) to every socket.
//! Sockets only page the database themselves when resuming from further back.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::Clock;
use crate::db::Db;
use crate::error::Result;
use crate::events::Hub;
use crate::events::log::{self as events, Logged as Event};
use crate::live::doorbell::Doorbells;
use crate::live::filter::{self, Facts};

pub use crate::live::TAIL_LEN;
/// Events read from the database per query.
pub const PAGE: i64 = 1000;
/// Re-read even without a wake-up this often (a missed bump costs at most this much latency).
const POLL: Duration = Duration::from_secs(1);
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The newest events of the log: every event with `start < id <= end`, in order.
#[derive(Debug, Default)]
pub struct Tail {
    pub start: i64,
    pub end: i64,
    pub events: Vec<Arc<Event>>,
    /// Access facts for the conversations and leads these events name, as of the last read
    /// that saw an event about them.
    pub facts: Facts,
}

impl Tail {
    /// The events after `cursor`, or `None` when `cursor` is older than the tail holds.
    pub fn after(&self, cursor: i64) -> Option<&[Arc<Event>]> {
        if cursor < self.start {
            return None;
        }
        let from = self.events.partition_point(|e| e.id <= cursor);
        Some(&self.events[from..])
    }

    /// A new tail with `batch` (read after `self.end`) appended and the oldest events dropped.
    fn extend(&self, batch: Vec<Event>, fresh: Facts) -> Tail {
        let Some(last) = batch.last() else {
            return Tail { start: self.start, end: self.end, events: self.events.clone(), facts: self.facts.clone() };
        };
        let end = last.id;
        let mut all: Vec<Arc<Event>> = Vec::with_capacity((self.events.len() + batch.len()).min(TAIL_LEN));
        let keep_old = TAIL_LEN.saturating_sub(batch.len()).min(self.events.len());
        let skip_new = batch.len().saturating_sub(TAIL_LEN);
        let dropped_old = self.events.len() - keep_old;
        all.extend(self.events[dropped_old..].iter().cloned());
        all.extend(batch.into_iter().skip(skip_new).map(Arc::new));
        let start = match (dropped_old, skip_new) {
            (0, 0) => self.start,
            _ => all.first().map_or(end, |e| e.id - 1),
        };
        // Fresh facts win. Facts of conversations the window no longer names are dropped only
        // when they pile up (a full rebuild per read cost more than all sockets' lookups).
        let mut facts = self.facts.clone();
        facts.conversations.extend(fresh.conversations);
        facts.leads.extend(fresh.leads);
        if facts.len() > 2 * TAIL_LEN {
            let mut kept = Facts::default();
            for e in &all {
                if let Some(c) = e.conversation_id {
                    if let Some(f) = facts.conversations.get(&c) {
                        kept.conversations.insert(c, f.clone());
                    }
                } else if let Some(l) = e.lead_id
                    && let Some(f) = facts.leads.get(&l)
                {
                    kept.leads.insert(l, f.clone());
                }
            }
            facts = kept;
        }
        Tail { start, end, events: all, facts }
    }
}

/// The tail as sockets see it.
pub type TailRx = watch::Receiver<Arc<Tail>>;

/// Creates the tail at the current end of the log.
pub async fn init(db: &Db) -> Result<(watch::Sender<Arc<Tail>>, TailRx)> {
    let end = events::bounds(db).await?.map_or(0, |(_, max)| max);
    Ok(watch::channel(Arc::new(Tail { start: end, end, ..Default::default() })))
}

/// Reads new events after every bump of `hub` (and every [`POLL`]), publishes them and rings
/// the bells of the sockets they concern.
pub async fn run(
    db: Db,
    hub: Hub,
    tx: watch::Sender<Arc<Tail>>,
    bells: Arc<Doorbells>,
    shutdown: watch::Receiver<bool>,
) {
    let mut bumps = hub.subscribe();
    loop {
        let current = tx.borrow().clone();
        match read(&db, &current).await {
            Ok(Some(next)) => {
                let next = Arc::new(next);
                tx.send_replace(next.clone());
                if let Some(new) = next.after(current.end) {
                    bells.ring(new, &next.facts, next.end);
                }
                continue; // maybe more than a page: read again at once
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "live tail read failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        tokio::select! {
            _ = bumps.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = crate::live::stopped(shutdown.clone()) => return,
        }
    }
}

/// The next tail when there are new events (at most a page).
async fn read(db: &Db, current: &Tail) -> Result<Option<Tail>> {
    let batch = events::read_after(db, current.end, PAGE).await?;
    if batch.is_empty() {
        return Ok(None);
    }
    let facts = filter::load(db, &batch).await?;
    Ok(Some(current.extend(batch, facts)))
}

/// PostgreSQL: bumps the hub on every `NOTIFY sb_events` from any node, and after reconnecting
/// (notifications may have been lost meanwhile).
pub async fn listen(pool: sqlx::PgPool, hub: Hub, shutdown: watch::Receiver<bool>) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "live: LISTEN connection failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = crate::live::stopped(shutdown.clone()) => return,
                }
            }
        };
        if let Err(e) = listener.listen("sb_events").await {
            tracing::warn!(error = %e, "live: LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        hub.bump(); // anything committed while we were not listening
        loop {
            tokio::select! {
                r = listener.try_recv() => match r {
                    Ok(_) => hub.bump(), // Some: a notification; None: reconnected, some may be lost
                    Err(e) => {
                        tracing::warn!(error = %e, "live: LISTEN connection lost; reconnecting");
                        break;
                    }
                },
                _ = crate::live::stopped(shutdown.clone()) => return,
            }
        }
    }
}

/// Deletes events older than [`events::RETENTION`], hourly.
pub async fn prune(db: Db, clock: Clock, shutdown: watch::Receiver<bool>) {
    loop {
        match events::prune(&db, clock.now() - events::RETENTION).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned old live events"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning live events failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = crate::live::stopped(shutdown.clone()) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ConvFacts;
    use uuid::Uuid;

    fn ev(id: i64) -> Event {
        Event {
            id,
            workspace_id: Uuid::nil(),
            kind: "x".into(),
            conversation_id: None,
            lead_id: None,
            user_id: None,
            member: None,
            frame: "{}".into(),
            created_at: Default::default(),
        }
    }

    #[test]
    fn window_slides_and_answers_cursors() {
        let t = Tail { start: 10, end: 10, ..Default::default() };
        let t = t.extend((11..=13).map(ev).collect(), Facts::default());
        assert_eq!((t.start, t.end), (10, 13));
        assert_eq!(t.after(10).unwrap().len(), 3);
        assert_eq!(t.after(12).unwrap().iter().map(|e| e.id).collect::<Vec<_>>(), vec![13]);
        assert!(t.after(13).unwrap().is_empty());
        assert!(t.after(9).is_none());
        let t = t.extend((14..14 + TAIL_LEN as i64).map(ev).collect(), Facts::default());
        assert_eq!(t.events.len(), TAIL_LEN);
        assert_eq!(t.start, 13);
        assert_eq!(t.end, 13 + TAIL_LEN as i64);
        assert!(t.after(12).is_none());
        assert_eq!(t.after(13).unwrap().len(), TAIL_LEN);
        // Facts: the newest load wins, for every event naming the conversation.
        let c = Uuid::new_v4();
        let about = |id| Event { conversation_id: Some(c), ..ev(id) };
        let facts = |a| {
            let mut f = Facts::default();
            f.conversations.insert(c, Arc::new(ConvFacts { assignee_id: Some(a), ..Default::default() }));
            f
        };
        let (old, new) = (Uuid::new_v4(), Uuid::new_v4());
        let t = Tail::default().extend(vec![about(1)], facts(old));
        let t = t.extend(vec![about(2)], facts(new));
        assert_eq!(t.facts.conversations[&c].assignee_id, Some(new));
        let t = t.extend(vec![ev(3)], Facts::default());
        assert_eq!(t.facts.conversations[&c].assignee_id, Some(new));
        // Gaps in ids (rolled-back appends on PostgreSQL) are fine.
        let t = Tail { start: 0, end: 0, ..Default::default() }.extend(vec![ev(5), ev(9)], Facts::default());
        assert_eq!(t.after(6).unwrap().iter().map(|e| e.id).collect::<Vec<_>>(), vec![9]);
    }
}
