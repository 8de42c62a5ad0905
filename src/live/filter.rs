//! Who receives which event: the access policy applied at delivery time.
//!
//! [`visible`] is pure; [`Facts`] holds what it needs about the conversations and leads the
//! events name, loaded from the database just before delivery by [`load`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use uuid::Uuid;

use crate::db::{Db, push_ids};
use crate::error::Result;
use crate::events::log::Logged as Event;
use crate::on_db;
use crate::policy::team::sees_every_event;
use crate::policy::{self, ConvFacts, LeadFacts, Viewer};

/// Access facts of the conversations and leads named by a batch of events. A conversation or
/// lead missing here no longer exists, and is visible to nobody but admins.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub conversations: HashMap<Uuid, Arc<ConvFacts>, ById>,
    pub leads: HashMap<Uuid, Arc<LeadFacts>, ById>,
}

impl Facts {
    pub fn len(&self) -> usize {
        self.conversations.len() + self.leads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Hashes server-generated (random, v4) ids by their own bits: every socket looks facts up for
/// every new event, and SipHash was a visible share of that fan-out. Keys are not chosen by
/// clients, so flooding the map is not a concern.
#[derive(Clone, Copy, Debug, Default)]
pub struct ById;

impl std::hash::BuildHasher for ById {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

#[derive(Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

/// May `v` receive `e` now?
///
/// The event's workspace must be the viewer's; an addressed event (`user_id`) goes only to
/// that member; an event about a conversation needs the conversation to be visible, else an
/// event about a lead needs the lead to be visible; anything else is workspace-wide.
pub fn visible(v: &Viewer, e: &Event, facts: &Facts) -> bool {
    if !v.active || e.workspace_id != v.workspace_id {
        return false;
    }
    if e.user_id.is_some_and(|u| u != v.user_id) {
        return false;
    }
    if sees_every_event(v) {
        return true;
    }
    if let Some(c) = e.conversation_id {
        return facts.conversations.get(&c).is_some_and(|f| policy::can_see(v, f));
    }
    if let Some(l) = e.lead_id {
        return facts.leads.get(&l).is_some_and(|f| policy::can_see_lead(v, f));
    }
    true
}

/// Which members a page of events can reach at all, for a quick "no" before [`visible`].
///
/// A member who sees conversations only where named ([`policy::sees_only_where_named`]: no
/// admin role, no flags, no granted labels; a typical agent) sees an event only when it names them: as the
/// assignee or an explicitly given member of its conversation (of one of its lead's
/// conversations, or of the lead itself), as the member it is addressed to, or when it is
/// workspace-wide. So for such a member `may_reach` is false unless the page names them or
/// holds a workspace-wide event of their workspace; for anyone else it is always true. It is
/// never false where [`visible`] would be true for one of the events.
#[derive(Debug, Default)]
pub struct Reach {
    named: HashSet<Uuid, ById>,
    workspaces: HashSet<Uuid, ById>,
}

impl Reach {
    pub fn of<'a>(events: impl IntoIterator<Item = &'a Arc<Event>>, facts: &Facts) -> Reach {
        let mut r = Reach::default();
        for e in events {
            if let Some(c) = e.conversation_id {
                if let Some(f) = facts.conversations.get(&c) {
                    r.name(f);
                }
            } else if let Some(l) = e.lead_id {
                if let Some(f) = facts.leads.get(&l) {
                    r.named.extend(f.assignee_id);
                    f.conversations.iter().for_each(|c| r.name(c));
                }
            } else if let Some(u) = e.user_id {
                r.named.insert(u);
            } else {
                r.workspaces.insert(e.workspace_id);
            }
        }
        r
    }

    fn name(&mut self, c: &ConvFacts) {
        self.named.extend(c.assignee_id);
        self.named.extend(c.access_ids.iter().copied());
    }

    /// False only when `v` can see none of the events.
    pub fn may_reach(&self, v: &Viewer) -> bool {
        !policy::sees_only_where_named(v)
            || self.named.contains(&v.user_id)
            || self.workspaces.contains(&v.workspace_id)
    }
}

/// Loads the facts for every conversation and lead that `events` name, in a few queries.
pub async fn load<'a>(db: &Db, events: impl IntoIterator<Item = &'a Event>) -> Result<Facts> {
    let mut conv_ids = HashSet::new();
    let mut lead_ids = HashSet::new();
    for e in events {
        if let Some(c) = e.conversation_id {
            conv_ids.insert(c);
        } else if let Some(l) = e.lead_id {
            lead_ids.insert(l);
        }
    }
    let mut facts = Facts::default();
    if conv_ids.is_empty() && lead_ids.is_empty() {
        return Ok(facts);
    }
    let conv_ids: Vec<Uuid> = conv_ids.into_iter().collect();
    let lead_ids: Vec<Uuid> = lead_ids.into_iter().collect();

    // The named conversations, and every conversation of the named leads.
    let rows: Vec<(Uuid, Uuid, Uuid, Option<Uuid>)> = on_db!(db, |p| {
        let mut qb =
            sqlx::QueryBuilder::new("SELECT id, workspace_id, lead_id, assignee_id FROM conversations WHERE id IN (");
        push_ids(&mut qb, &conv_ids);
        qb.push(") OR lead_id IN (");
        push_ids(&mut qb, &lead_ids);
        qb.push(")");
        qb.build_query_as().fetch_all(p).await
    })?;
    let all: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let mut labels = label_ids(db, &all).await?;
    let mut access = access_ids(db, &all).await?;
    let mut by_lead: HashMap<Uuid, Vec<ConvFacts>> = HashMap::new();
    for (id, workspace_id, lead_id, assignee_id) in rows {
        let f = ConvFacts {
            workspace_id,
            assignee_id,
            label_ids: labels.remove(&id).unwrap_or_default(),
            access_ids: access.remove(&id).unwrap_or_default(),
        };
        if lead_ids.contains(&lead_id) {
            by_lead.entry(lead_id).or_default().push(f.clone());
        }
        facts.conversations.insert(id, Arc::new(f));
    }

    if !lead_ids.is_empty() {
        let leads: Vec<(Uuid, Uuid, Option<Uuid>)> = on_db!(db, |p| {
            let mut qb = sqlx::QueryBuilder::new("SELECT id, workspace_id, assignee_id FROM leads WHERE id IN (");
            push_ids(&mut qb, &lead_ids);
            qb.push(")");
            qb.build_query_as().fetch_all(p).await
        })?;
        for (id, workspace_id, assignee_id) in leads {
            let conversations = by_lead.remove(&id).unwrap_or_default();
            facts.leads.insert(id, Arc::new(LeadFacts { workspace_id, assignee_id, conversations }));
        }
    }
    Ok(facts)
}

/// Labels of each conversation, in one query.
async fn label_ids(db: &Db, convs: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    let labels = crate::db::Links { table: "conversation_labels", from: "conversation_id", to: "label_id" };
    Ok(crate::db::linked(db, labels, convs).await?)
}

/// Members given explicit access to each conversation, in one query.
async fn access_ids(db: &Db, convs: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    let access = crate::db::Links { table: "conversation_access", from: "conversation_id", to: "user_id" };
    Ok(crate::db::linked(db, access, convs).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Permissions, Role};

    fn viewer(role: Role, permissions: Permissions) -> Viewer {
        Viewer {
            user_id: Uuid::new_v4(),
            workspace_id: Uuid::nil(),
            role,
            active: true,
            permissions,
            label_ids: vec![],
        }
    }

    fn event(conversation_id: Option<Uuid>, lead_id: Option<Uuid>, user_id: Option<Uuid>) -> Event {
        Event {
            id: 1,
            workspace_id: Uuid::nil(),
            kind: "x".into(),
            conversation_id,
            lead_id,
            user_id,
            member: None,
            frame: "{}".into(),
            created_at: Default::default(),
        }
    }

    #[test]
    fn conversation_events_follow_the_policy() {
        let member = viewer(Role::Member, Permissions::default());
        let admin = viewer(Role::Admin, Permissions::default());
        let c = Uuid::new_v4();
        let mut facts = Facts::default();
        facts.conversations.insert(c, Arc::new(ConvFacts { assignee_id: Some(member.user_id), ..Default::default() }));
        let e = event(Some(c), None, None);
        assert!(visible(&member, &e, &facts));
        assert!(visible(&admin, &e, &facts));
        let other = viewer(Role::Member, Permissions::default());
        assert!(!visible(&other, &e, &facts));
        // Deleted (no facts): only admins.
        let gone = event(Some(Uuid::new_v4()), None, None);
        assert!(!visible(&member, &gone, &facts));
        assert!(visible(&admin, &gone, &facts));
    }

    #[test]
    fn addressed_and_workspace_events() {
        let a = viewer(Role::Member, Permissions::default());
        let admin = viewer(Role::Admin, Permissions::default());
        let facts = Facts::default();
        assert!(visible(&a, &event(None, None, None), &facts));
        assert!(visible(&a, &event(None, None, Some(a.user_id)), &facts));
        assert!(!visible(&admin, &event(None, None, Some(a.user_id)), &facts));
        let mut elsewhere = event(None, None, None);
        elsewhere.workspace_id = Uuid::new_v4();
        assert!(!visible(&admin, &elsewhere, &facts));
        let mut inactive = a.clone();
        inactive.active = false;
        assert!(!visible(&inactive, &event(None, None, None), &facts));
    }

    /// `Reach` never rules out a viewer that `visible` lets through, over every kind of
    /// viewer and event.
    #[test]
    fn reach_is_never_narrower_than_visible() {
        let plain = viewer(Role::Member, Permissions::default());
        let given = viewer(Role::Member, Permissions::default());
        let lead_owner = viewer(Role::Member, Permissions::default());
        let label = Uuid::new_v4();
        let labelled = Viewer { label_ids: vec![label], ..viewer(Role::Member, Permissions::default()) };
        let others = viewer(Role::Member, Permissions { view_others_leads: true, ..Default::default() });
        let unassigned = viewer(Role::Member, Permissions { view_unassigned: true, ..Default::default() });
        let admin = viewer(Role::Admin, Permissions::default());
        let stranger = viewer(Role::Member, Permissions::default());
        let viewers = [&plain, &given, &lead_owner, &labelled, &others, &unassigned, &admin, &stranger];

        let (assigned, open, lead) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut facts = Facts::default();
        let assigned_facts = ConvFacts {
            assignee_id: Some(plain.user_id),
            access_ids: vec![given.user_id],
            label_ids: vec![label],
            ..Default::default()
        };
        facts.conversations.insert(assigned, Arc::new(assigned_facts.clone()));
        facts.conversations.insert(open, Arc::new(ConvFacts::default()));
        facts.leads.insert(
            lead,
            Arc::new(LeadFacts {
                assignee_id: Some(lead_owner.user_id),
                conversations: vec![assigned_facts],
                ..Default::default()
            }),
        );
        let events = [
            event(Some(assigned), None, None),
            event(Some(open), None, None),
            event(Some(Uuid::new_v4()), None, None),
            event(None, Some(lead), None),
            event(None, Some(Uuid::new_v4()), None),
            event(None, None, Some(plain.user_id)),
            event(None, None, Some(stranger.user_id)),
            event(None, None, None),
            event(Some(assigned), None, Some(given.user_id)),
        ];
        let mut ruled_out = 0;
        for e in events {
            let page = [Arc::new(e)];
            let reach = Reach::of(&page, &facts);
            for v in viewers {
                let sees = visible(v, &page[0], &facts);
                assert!(!sees || reach.may_reach(v), "{:?} would miss {:?}", v.user_id, page[0]);
                ruled_out += usize::from(!reach.may_reach(v));
            }
        }
        assert!(ruled_out > 0, "the pre-check rules plain members out of what does not name them");
    }

    #[test]
    fn lead_events_follow_the_lead_rules() {
        let unassigned = viewer(Role::Member, Permissions { view_unassigned: true, ..Default::default() });
        let plain = viewer(Role::Member, Permissions::default());
        let l = Uuid::new_v4();
        let mut facts = Facts::default();
        facts.leads.insert(l, Arc::new(LeadFacts::default()));
        let e = event(None, Some(l), None);
        assert!(visible(&unassigned, &e, &facts));
        assert!(!visible(&plain, &e, &facts));
    }
}
