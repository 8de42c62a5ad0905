//! Presence, in memory on each node: a member with an open live socket is available unless
//! they said they are away; when their last socket closes they are offline. Every change is
//! announced as a `member.updated` event through the event log.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::json;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::Result;
use crate::live::events::{self, NewEvent};

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

/// Open sockets and declared status per member (this node only).
#[derive(Debug, Default)]
pub struct Presence {
    members: Mutex<HashMap<Uuid, Entry>>,
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

    /// A socket opened; returns the new availability when it changed.
    pub fn opened(&self, user_id: Uuid) -> Option<Availability> {
        let mut m = self.members.lock().expect("presence lock");
        let e = m.entry(user_id).or_insert(Entry { sockets: 0, away: false });
        e.sockets += 1;
        (e.sockets == 1).then_some(Availability::Available)
    }

    /// The member declared a status on one of their sockets; returns it when it changed.
    pub fn declare(&self, user_id: Uuid, away: bool) -> Option<Availability> {
        let mut m = self.members.lock().expect("presence lock");
        let e = m.get_mut(&user_id)?;
        if e.away == away {
            return None;
        }
        e.away = away;
        Some(if away { Availability::Away } else { Availability::Available })
    }

    /// A socket closed; returns `Offline` when it was the member's last.
    pub fn closed(&self, user_id: Uuid) -> Option<Availability> {
        let mut m = self.members.lock().expect("presence lock");
        let e = m.get_mut(&user_id)?;
        e.sockets -= 1;
        if e.sockets > 0 {
            return None;
        }
        m.remove(&user_id);
        Some(Availability::Offline)
    }

    /// Open sockets on this node (all members).
    pub fn sockets(&self) -> usize {
        self.members.lock().expect("presence lock").values().map(|e| e.sockets as usize).sum()
    }
}

/// Appends `{"id","presence"}` as a workspace-wide `member.updated` and wakes the readers.
/// The availability is read under the append lock, so the last event always tells the current
/// state even when a member's sockets open and close concurrently.
pub async fn announce(st: &AppState, workspace_id: Uuid, user_id: Uuid) -> Result<()> {
    let mut tx = st.db.begin().await?;
    events::serialise(&mut tx).await?;
    let a = st.presence.availability(user_id);
    let data = json!({"id": user_id, "presence": a.as_str()});
    events::append(&mut tx, st.clock.now(), NewEvent::new(workspace_id, "member.updated", data)).await?;
    st.commit(tx).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sockets_and_status() {
        let p = Presence::default();
        let u = Uuid::new_v4();
        assert_eq!(p.availability(u), Availability::Offline);
        assert_eq!(p.opened(u), Some(Availability::Available));
        assert_eq!(p.opened(u), None);
        assert_eq!(p.declare(u, true), Some(Availability::Away));
        assert_eq!(p.declare(u, true), None);
        assert_eq!(p.availability(u), Availability::Away);
        assert_eq!(p.closed(u), None);
        assert_eq!(p.availability(u), Availability::Away);
        assert_eq!(p.closed(u), Some(Availability::Offline));
        assert_eq!(p.availability(u), Availability::Offline);
        assert_eq!(p.declare(u, false), None);
        // Reconnecting starts available again.
        assert_eq!(p.opened(u), Some(Availability::Available));
        assert_eq!(p.sockets(), 1);
    }
}
