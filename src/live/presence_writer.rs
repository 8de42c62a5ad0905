//! The presence writer: announces [`Presence`] changes as workspace-wide `member.updated`
//! `{"id","presence"}` events. Whatever changed while the previous transaction committed goes
//! into the next one, so a burst of logins (every agent at 9:00) becomes a few transactions.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::Clock;
use crate::db::Db;
use crate::error::Result;
use crate::events::{Event, Hub, NewEvent, Work};
use crate::live::presence::Presence;
use crate::views::team::PresenceView;

/// Runs until shutdown, then announces what changed last (sockets close on shutdown).
pub async fn run(db: Db, clock: Clock, hub: Hub, presence: Arc<Presence>, shutdown: watch::Receiver<bool>) {
    let stop = crate::live::stopped(shutdown);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = presence.changed_since_taken() => {}
            _ = &mut stop => {
                // Sockets close on shutdown: announce them offline, best effort.
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = flush(&db, &clock, &hub, &presence).await;
                return;
            }
        }
        if let Err(e) = flush(&db, &clock, &hub, &presence).await {
            tracing::warn!(error = %e, "announcing presence failed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Writes one event per changed member, in one transaction. Availability is read under the
/// append lock, so the newest event always tells the current state.
async fn flush(db: &Db, clock: &Clock, hub: &Hub, presence: &Presence) -> Result<()> {
    let changed = presence.take_changed();
    if changed.is_empty() {
        return Ok(());
    }
    let done = async {
        let mut work = Work::begin(db, clock.now()).await?;
        work.serialise().await?;
        for (user_id, workspace_id) in &changed {
            let view = PresenceView { id: *user_id, presence: presence.availability(*user_id) };
            work.emit(NewEvent::new(*workspace_id, Event::MemberPresence(view)));
        }
        work.commit(hub).await
    }
    .await;
    if done.is_err() {
        // Try again with the next change.
        presence.put_back(changed);
    }
    done
}
