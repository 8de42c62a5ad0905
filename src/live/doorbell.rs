//! Which sockets to wake for new events.
//!
//! The tail reader publishes each new page of events once; waking every socket for every
//! page made 2,000 idle agents cost 2,000 task wake-ups per page and delayed everything else
//! on the runtime (webhook processing included). Instead each socket registers a [`Bell`]
//! with its viewer, and [`Doorbells::ring`] wakes only the sockets that may see at least one
//! of the new events — plus, now and then, the ones that saw nothing for a long while, so
//! that their cursor moves along inside the in-memory tail instead of falling behind it.
//!
//! The ringing decision is only a hint: a woken socket still filters every event through the
//! policy as of delivery. A socket whose viewer changes (a refresh after `member.updated` or
//! its periodic re-check) stores the new viewer and rings itself, so a page judged with the
//! old viewer is looked at again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::events::log::Logged as Event;
use crate::live::TAIL_LEN;
use crate::live::filter::{self, Facts};
use crate::policy::Viewer;

/// A socket that saw nothing for this many events is woken anyway to move its cursor on.
const CATCH_UP: i64 = (TAIL_LEN / 2) as i64;

/// Every socket's bell on this node.
#[derive(Default)]
pub struct Doorbells {
    next: AtomicU64,
    bells: Mutex<HashMap<u64, Arc<Bell>>>,
}

/// One socket's wake-up, with what the ringer needs to decide.
pub struct Bell {
    viewer: Mutex<Viewer>,
    notify: Notify,
    /// The tail end when this bell last rang (or the socket's start cursor).
    rung_at: AtomicI64,
}

impl Bell {
    /// Waits until rung (a ring while not waiting is kept, never lost).
    pub async fn rung(&self) {
        self.notify.notified().await
    }

    /// Makes the next [`Bell::rung`] return at once.
    pub fn ring(&self) {
        self.notify.notify_one();
    }

    /// The socket's viewer changed: judge future pages with it, and look again now.
    pub fn set_viewer(&self, viewer: Viewer) {
        *self.viewer.lock().unwrap_or_else(|p| p.into_inner()) = viewer;
        self.ring();
    }
}

/// A registered bell; unregisters when dropped (the socket ended).
pub struct Registration {
    bells: Arc<Doorbells>,
    id: u64,
    pub bell: Arc<Bell>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.bells.lock().remove(&self.id);
    }
}

impl Doorbells {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Bell>>> {
        self.bells.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a socket that has delivered everything up to `cursor`; its bell is rung once
    /// so that it delivers what is already after the cursor.
    pub fn register(self: &Arc<Self>, viewer: Viewer, cursor: i64) -> Registration {
        let bell =
            Arc::new(Bell { viewer: Mutex::new(viewer), notify: Notify::new(), rung_at: AtomicI64::new(cursor) });
        bell.ring();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, bell.clone());
        Registration { bells: self.clone(), id, bell }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tail was just published with `new` events (with their `facts`), the newest being
    /// `end`: rings every bell that may see one of them, or that has not rung for
    /// [`CATCH_UP`] events.
    pub fn ring(&self, new: &[Arc<Event>], facts: &Facts, end: i64) {
        if new.is_empty() {
            return;
        }
        // Most agents can only see what names them: rule them out without a policy check
        // per event (2,000 agents × thousands of events a second add up).
        let reach = filter::Reach::of(new, facts);
        for bell in self.lock().values() {
            let due = end - bell.rung_at.load(Ordering::Relaxed) >= CATCH_UP || {
                let v = bell.viewer.lock().unwrap_or_else(|p| p.into_inner());
                reach.may_reach(&v) && new.iter().any(|e| filter::visible(&v, e, facts))
            };
            if due {
                bell.rung_at.store(end, Ordering::Relaxed);
                bell.ring();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::tail::Tail;
    use crate::policy::{ConvFacts, Permissions, Role};
    use std::time::Duration;
    use uuid::Uuid;

    fn viewer(ws: Uuid, role: Role) -> Viewer {
        Viewer {
            user_id: Uuid::new_v4(),
            workspace_id: ws,
            role,
            active: true,
            permissions: Permissions::default(),
            label_ids: vec![],
        }
    }

    fn about(id: i64, ws: Uuid, conv: Uuid) -> Event {
        Event {
            id,
            workspace_id: ws,
            kind: "message.created".into(),
            conversation_id: Some(conv),
            lead_id: None,
            user_id: None,
            member: None,
            frame: "{}".into(),
            created_at: Default::default(),
        }
    }

    fn ring(bells: &Doorbells, tail: &Tail, from: i64) {
        bells.ring(tail.after(from).unwrap(), &tail.facts, tail.end);
    }

    async fn rang(bell: &Bell) -> bool {
        tokio::time::timeout(Duration::from_millis(20), bell.rung()).await.is_ok()
    }

    #[tokio::test]
    async fn only_sockets_that_may_see_an_event_are_woken() {
        let ws = Uuid::new_v4();
        let bells = Arc::new(Doorbells::default());
        let admin = bells.register(viewer(ws, Role::Admin), 0);
        let assignee_view = viewer(ws, Role::Member);
        let assignee = bells.register(assignee_view.clone(), 0);
        let other = bells.register(viewer(ws, Role::Member), 0);
        let elsewhere = bells.register(viewer(Uuid::new_v4(), Role::Admin), 0);
        for r in [&admin, &assignee, &other, &elsewhere] {
            assert!(rang(&r.bell).await, "registering rings once");
        }

        let conv = Uuid::new_v4();
        let mut tail = Tail::default();
        tail.facts.conversations.insert(
            conv,
            Arc::new(ConvFacts { workspace_id: ws, assignee_id: Some(assignee_view.user_id), ..Default::default() }),
        );
        tail.events.push(Arc::new(about(1, ws, conv)));
        tail.end = 1;
        ring(&bells, &tail, 0);
        assert!(rang(&admin.bell).await);
        assert!(rang(&assignee.bell).await);
        assert!(!rang(&other.bell).await, "no access, no wake-up");
        assert!(!rang(&elsewhere.bell).await, "another workspace");

        // After CATCH_UP events nobody woke for, everyone is woken once to move on.
        tail.end = CATCH_UP + 1;
        ring(&bells, &tail, 0);
        assert!(rang(&other.bell).await);
        assert!(rang(&elsewhere.bell).await);

        // A changed viewer rings at once and is used from then on.
        let mut granted = assignee_view.clone();
        granted.user_id = Uuid::new_v4();
        other.bell.set_viewer(Viewer { role: Role::Admin, ..granted });
        assert!(rang(&other.bell).await);
        tail.end = CATCH_UP + 2;
        tail.events.push(Arc::new(about(CATCH_UP + 2, ws, conv)));
        ring(&bells, &tail, CATCH_UP + 1);
        assert!(rang(&other.bell).await);

        drop(elsewhere);
        assert_eq!(bells.len(), 3);
    }
}
