//! Presence, in memory on each node: a member with an open live socket is available unless
//! they said they are away; when their last socket closes they are offline. Every change is
//! announced as a `member.updated` event through the event log.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::Notify;

use serde_json::json;
use uuid::Uuid;

use crate::error::Result;
use crate::events::{self, NewEvent};
use crate::state::AppState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    Available,
    Away,
    Offline,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Available => "available",
            Availability::Away => "away",
            Availability::Offline => "offline",
        }
    }
}

#[derive(Debug)]
struct Entry {
    sockets: u32,
    away: bool,
}

/// Open sockets and declared status per member (this node only). Changes are announced by
/// one writer task ([`writer`]) that coalesces them: a burst of logins (every agent at 9:00)
/// becomes a few transactions, not one per member.
#[derive(Debug, Default)]
pub struct Presence {
    members: Mutex<HashMap<Uuid, Entry>>,
    /// Members whose availability changed since the writer last ran, with their workspace.
    dirty: Mutex<HashMap<Uuid, Uuid>>,
    wake: Notify,
}

impl Presence {
    /// What the assignment engine asks: available, away, or offline (no open socket).
    pub fn availability(&self, user_id: Uuid) -> Availability {
        match self.members.lock().expect("presence lock").get(&user_id) {
            None => Availability::Offline,
            Some(e) if e.away => Availability::Away,
            Some(_) => Availability::Available,
        }
    }

    /// A socket of `user_id` opened.
    pub fn opened(&self, workspace_id: Uuid, user_id: Uuid) -> Option<Availability> {
        let mut m = self.members.lock().expect("presence lock");
        let e = m.entry(user_id).or_insert(Entry { sockets: 0, away: false });
        e.sockets += 1;
        self.changed(workspace_id, user_id, (e.sockets == 1).then_some(Availability::Available))
    }

    /// The member declared a status on one of their sockets.
    pub fn declare(&self, workspace_id: Uuid, user_id: Uuid, away: bool) -> Option<Availability> {
        let mut m = self.members.lock().expect("presence lock");
        let e = m.get_mut(&user_id)?;
        let change = (e.away != away).then_some(if away { Availability::Away } else { Availability::Available });
        e.away = away;
        self.changed(workspace_id, user_id, change)
    }

    /// A socket closed; the member is offline when it was their last.
    pub fn closed(&self, workspace_id: Uuid, user_id: Uuid) -> Option<Availability> {
        let mut m = self.members.lock().expect("presence lock");
        let e = m.get_mut(&user_id)?;
        e.sockets -= 1;
        if e.sockets > 0 {
            return None;
        }
        m.remove(&user_id);
        self.changed(workspace_id, user_id, Some(Availability::Offline))
    }

    fn changed(&self, workspace_id: Uuid, user_id: Uuid, change: Option<Availability>) -> Option<Availability> {
        if change.is_some() {
            self.dirty.lock().expect("presence lock").insert(user_id, workspace_id);
            self.wake.notify_one();
        }
        change
    }

    /// Open sockets on this node (all members).
    pub fn sockets(&self) -> usize {
        self.members.lock().expect("presence lock").values().map(|e| e.sockets as usize).sum()
    }
}

/// Announces presence changes as workspace-wide `member.updated` `{"id","presence"}` events:
/// whatever changed while the previous transaction committed goes into the next one.
pub async fn writer(st: AppState) {
    let stop = crate::live::stopped(st.shutdown.clone());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = st.presence.wake.notified() => {}
            _ = &mut stop => {
                // Sockets close on shutdown: announce them offline, best effort.
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                let _ = flush(&st).await;
                return;
            }
        }
        if let Err(e) = flush(&st).await {
            tracing::warn!(error = %e, "announcing presence failed");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// Writes one event per changed member, in one transaction. Availability is read under the
/// append lock, so the newest event always tells the current state.
async fn flush(st: &AppState) -> Result<()> {
    let dirty = std::mem::take(&mut *st.presence.dirty.lock().expect("presence lock"));
    if dirty.is_empty() {
        return Ok(());
    }
    let mut tx = st.db.begin().await?;
    events::serialise(&mut tx).await?;
    let now = st.clock.now();
    for (user_id, workspace_id) in &dirty {
        let a = st.presence.availability(*user_id);
        let data = json!({"id": user_id, "presence": a.as_str()});
        events::append(&mut tx, now, NewEvent::raw(*workspace_id, "member.updated", data)).await?;
    }
    let done = st.commit(tx).await;
    if done.is_err() {
        // Try again with the next change.
        let mut d = st.presence.dirty.lock().expect("presence lock");
        for (u, w) in dirty {
            d.entry(u).or_insert(w);
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sockets_and_status() {
        let p = Presence::default();
        let u = Uuid::new_v4();
        let w = Uuid::nil();
        assert_eq!(p.availability(u), Availability::Offline);
        assert_eq!(p.opened(w, u), Some(Availability::Available));
        assert_eq!(p.opened(w, u), None);
        assert_eq!(p.declare(w, u, true), Some(Availability::Away));
        assert_eq!(p.declare(w, u, true), None);
        assert_eq!(p.availability(u), Availability::Away);
        assert_eq!(p.closed(w, u), None);
        assert_eq!(p.availability(u), Availability::Away);
        assert_eq!(p.closed(w, u), Some(Availability::Offline));
        assert_eq!(p.availability(u), Availability::Offline);
        assert_eq!(p.declare(w, u, false), None);
        // Reconnecting starts available again.
        assert_eq!(p.opened(w, u), Some(Availability::Available));
        assert_eq!(p.sockets(), 1);
    }
}
