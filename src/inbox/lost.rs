//! Who stops seeing a conversation when it changes, told so: `access.lost`.
//!
//! No event about a conversation reaches a member who can no longer see it (the live filter
//! checks access at delivery), so a member whose open chat is given to someone else, claimed
//! from the pool, stripped of a granted label or of their explicit access would hear nothing.
//! Each change that can end someone's access takes a [`Seen`] snapshot of the conversations
//! before writing ([`before`]) and calls [`after`] once written: every active member of the
//! workspace who saw one of them before and does not now gets `access.lost`, addressed to
//! them alone and naming no conversation for routing (the filter would refuse it otherwise).
//! The same policy functions decide as everywhere else ([`policy::can_see`]).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use uuid::Uuid;

use crate::db::{Links, Tx, linked_in, push_ids};
use crate::error::Result;
use crate::events::{Event, NewEvent, Work};
use crate::on_tx;
use crate::policy::{self, ConvFacts, Permissions, Role, Viewer};
use crate::views::conversation::{AccessLost, LostCause};

/// Conversations as they were before a change (their lead and access facts), and the
/// workspace's members as they were then (a change such as deleting a label also ends grants).
#[derive(Debug, Default)]
pub struct Seen {
    convs: Vec<(Uuid, Uuid, ConvFacts)>,
    viewers: HashMap<Uuid, Vec<Viewer>>,
}

const LABELS: Links = Links { table: "conversation_labels", from: "conversation_id", to: "label_id" };
const ACCESS: Links = Links { table: "conversation_access", from: "conversation_id", to: "user_id" };

/// The access facts of conversations `ids` (with their lead) as `tx` sees them.
async fn facts(tx: &mut Tx, ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid, ConvFacts)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(Uuid, Uuid, Uuid, Option<Uuid>)> = on_tx!(tx, |c| {
        let mut qb =
            sqlx::QueryBuilder::new("SELECT id, workspace_id, lead_id, assignee_id FROM conversations WHERE id IN (");
        push_ids(&mut qb, ids);
        qb.push(")");
        qb.build_query_as().fetch_all(c).await
    })?;
    let mut labels = linked_in(tx, LABELS, ids).await?;
    let mut access = linked_in(tx, ACCESS, ids).await?;
    Ok(rows
        .into_iter()
        .map(|(id, workspace_id, lead_id, assignee_id)| {
            let f = ConvFacts {
                workspace_id,
                assignee_id,
                label_ids: labels.remove(&id).unwrap_or_default(),
                access_ids: access.remove(&id).unwrap_or_default(),
            };
            (id, lead_id, f)
        })
        .collect())
}

/// Snapshot of conversations `ids` before a change (call it in the change's transaction).
pub async fn before(tx: &mut Tx, ids: &[Uuid]) -> Result<Seen> {
    let convs = facts(tx, ids).await?;
    let mut viewers = HashMap::new();
    for (_, _, f) in &convs {
        if let Entry::Vacant(e) = viewers.entry(f.workspace_id) {
            e.insert(members(tx, f.workspace_id).await?);
        }
    }
    Ok(Seen { convs, viewers })
}

/// Snapshot of the conversations that carry label `label_id`, before it is deleted.
pub async fn before_label(tx: &mut Tx, label_id: Uuid) -> Result<Seen> {
    let ids: Vec<Uuid> =
        on_tx!(tx, |c| sqlx::query_scalar("SELECT conversation_id FROM conversation_labels WHERE label_id = $1")
            .bind(label_id)
            .fetch_all(c)
            .await)?;
    before(tx, &ids).await
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    id: Uuid,
    role: String,
    permissions: sqlx::types::Json<Permissions>,
}

/// The active members of workspace `ws` as the policy sees them.
async fn members(tx: &mut Tx, ws: Uuid) -> Result<Vec<Viewer>> {
    let rows: Vec<MemberRow> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT id, role, permissions FROM users WHERE workspace_id = $1 AND status = 'active'"
    )
    .bind(ws)
    .fetch_all(c)
    .await)?;
    let grants: Vec<(Uuid, Uuid)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT ml.user_id, ml.label_id FROM member_labels ml JOIN users u ON u.id = ml.user_id \
         WHERE u.workspace_id = $1 AND u.status = 'active'"
    )
    .bind(ws)
    .fetch_all(c)
    .await)?;
    let mut labels: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (user, label) in grants {
        labels.entry(user).or_default().push(label);
    }
    Ok(rows
        .into_iter()
        .map(|m| Viewer {
            user_id: m.id,
            workspace_id: ws,
            role: Role::parse(&m.role).unwrap_or(Role::Member),
            active: true,
            permissions: m.permissions.0,
            label_ids: labels.remove(&m.id).unwrap_or_default(),
        })
        .collect())
}

/// After the change: `access.lost` to each active member who saw one of the `seen`
/// conversations before and no longer does (`by` made the change; `None`: the engine).
pub async fn after(w: &mut Work, seen: Seen, cause: LostCause, by: Option<Uuid>) -> Result<()> {
    if seen.convs.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = seen.convs.iter().map(|c| c.0).collect();
    let mut now: HashMap<Uuid, ConvFacts> = facts(w.tx(), &ids).await?.into_iter().map(|(id, _, f)| (id, f)).collect();
    let pairs = seen.convs.into_iter().map(|(id, lead, was)| (id, lead, was, now.remove(&id))).collect();
    tell(w, pairs, seen.viewers, cause, by).await
}

/// After conversations moved to another assignee: `access.lost` to each active member who saw
/// one of them under its former assignee (`moved`: id and former assignee) and no longer does.
/// Cheaper than a [`before`] snapshot: nothing is read unless something moved.
pub async fn after_reassign(w: &mut Work, moved: &[(Uuid, Option<Uuid>)], by: Option<Uuid>) -> Result<()> {
    if moved.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = moved.iter().map(|m| m.0).collect();
    let former: HashMap<Uuid, Option<Uuid>> = moved.iter().copied().collect();
    let pairs = facts(w.tx(), &ids)
        .await?
        .into_iter()
        .map(|(id, lead, is)| {
            let was = ConvFacts { assignee_id: former.get(&id).copied().flatten(), ..is.clone() };
            (id, lead, was, Some(is))
        })
        .collect();
    tell(w, pairs, HashMap::new(), LostCause::Assignee, by).await
}

/// (conversation, lead, facts before, facts now: `None` when it is gone)
type Pair = (Uuid, Uuid, ConvFacts, Option<ConvFacts>);

/// `access.lost` for each pair to whoever saw it before (as members were then: `then`, else as
/// they are now) and does not now.
async fn tell(
    w: &mut Work,
    pairs: Vec<Pair>,
    mut then: HashMap<Uuid, Vec<Viewer>>,
    cause: LostCause,
    by: Option<Uuid>,
) -> Result<()> {
    let mut now: HashMap<Uuid, Vec<Viewer>> = HashMap::new();
    for (id, lead_id, was, is) in pairs {
        let ws = was.workspace_id;
        if let Entry::Vacant(e) = now.entry(ws) {
            e.insert(members(w.tx(), ws).await?);
        }
        let current = &now[&ws];
        let before = then.entry(ws).or_insert_with(|| current.clone());
        for v in before.iter() {
            let still = current.iter().find(|c| c.user_id == v.user_id);
            let sees_now = match (still, is.as_ref()) {
                (Some(c), Some(f)) => policy::can_see(c, f),
                _ => false,
            };
            if policy::can_see(v, &was) && !sees_now {
                let notice = AccessLost {
                    conversation_id: id,
                    lead_id,
                    cause,
                    assignee_id: is.as_ref().and_then(|f| f.assignee_id),
                    by_member_id: by,
                };
                w.emit(NewEvent::new(ws, Event::AccessLost(notice)).to_user(v.user_id));
            }
        }
    }
    Ok(())
}
