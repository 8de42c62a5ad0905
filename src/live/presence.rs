//! Presence, in memory on each node: a member with an open live socket is available unless
//! they said they are away; when their last socket closes they are offline. Every change is
//! announced as a `member.updated` event through the event log, by the presence writer job.
//! On PostgreSQL the presence sync (`presence_sync.rs`) shares each node's sockets with the
//! others, so a member connected to any node counts everywhere.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::Notify;
use uuid::Uuid;

pub use crate::views::team::Availability;

#[derive(Debug)]
struct Entry {
    sockets: u32,
    away: bool,
}

/// Open sockets and declared status per member (this node only). Changes are announced by
/// one writer task (`presence_writer`) that coalesces them: a burst of logins (every agent at 9:00)
/// becomes a few transactions, not one per member.
#[derive(Debug, Default)]
pub struct Presence {
    members: Mutex<HashMap<Uuid, Entry>>,
    /// Members whose availability changed since the writer last ran, with their workspace.
    dirty: Mutex<HashMap<Uuid, Uuid>>,
    wake: Notify,
    /// Members connected to other nodes (PostgreSQL), as the presence sync last read them.
    remote: Mutex<HashMap<Uuid, Availability>>,
    /// Wakes the presence sync when a member's availability changed on this node.
    sync: Notify,
}

impl Presence {
    /// What the assignment engine asks: available, away, or offline (no open socket), on any
    /// node: a member available on one node is available.
    pub fn availability(&self, user_id: Uuid) -> Availability {
        let here = self.local(user_id);
        if here == Availability::Available {
            return here;
        }
        match self.remote.lock().expect("presence lock").get(&user_id) {
            Some(&there) if there == Availability::Available || here == Availability::Offline => there,
            _ => here,
        }
    }

    /// This node's view only.
    pub fn local(&self, user_id: Uuid) -> Availability {
        match self.members.lock().expect("presence lock").get(&user_id) {
            None => Availability::Offline,
            Some(e) if e.away => Availability::Away,
            Some(_) => Availability::Available,
        }
    }

    /// Members connected to this node, with whether they are away (for the presence sync).
    pub fn connected_here(&self) -> Vec<(Uuid, bool)> {
        self.members.lock().expect("presence lock").iter().map(|(u, e)| (*u, e.away)).collect()
    }

    /// Replaces what the other nodes say (the presence sync's last read).
    pub fn set_remote(&self, remote: HashMap<Uuid, Availability>) {
        *self.remote.lock().expect("presence lock") = remote;
    }

    /// Waits until a member's availability changed on this node (for the presence sync).
    pub async fn changed_here(&self) {
        self.sync.notified().await
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
            self.sync.notify_one();
        }
        change
    }

    /// Waits until some member's availability changed since the last [`Presence::take_changed`].
    pub async fn changed_since_taken(&self) {
        self.wake.notified().await
    }

    /// The members whose availability changed, with their workspace; the set starts empty again.
    pub fn take_changed(&self) -> HashMap<Uuid, Uuid> {
        std::mem::take(&mut *self.dirty.lock().expect("presence lock"))
    }

    /// Puts back changes that could not be announced (they go with the next ones).
    pub fn put_back(&self, changed: HashMap<Uuid, Uuid>) {
        let mut d = self.dirty.lock().expect("presence lock");
        for (u, w) in changed {
            d.entry(u).or_insert(w);
        }
    }

    /// Open sockets on this node (all members).
    pub fn sockets(&self) -> usize {
        self.members.lock().expect("presence lock").values().map(|e| e.sockets as usize).sum()
    }
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

    #[test]
    fn other_nodes_count() {
        let p = Presence::default();
        let (u, v, w) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::nil());
        p.set_remote(HashMap::from([(u, Availability::Available), (v, Availability::Away)]));
        assert_eq!(p.availability(u), Availability::Available, "connected to another node");
        assert_eq!(p.availability(v), Availability::Away);
        p.opened(w, v);
        assert_eq!(p.availability(v), Availability::Available, "available here beats away there");
        p.declare(w, u, true);
        p.opened(w, u);
        p.declare(w, u, true);
        assert_eq!(p.availability(u), Availability::Available, "away here, available there");
        p.set_remote(HashMap::new());
        assert_eq!(p.availability(u), Availability::Away);
        assert_eq!(p.local(v), Availability::Available);
    }
}
