//! Who owns a conversation and who may see it: assign, claim, status, labels, explicit access,
//! and the reply check the send path uses. The callers (handlers, the assignment engine) hold
//! a [`Visible`] conversation and asked the policy; these functions change it, each with its
//! event and a timeline activity in the same unit of work. Only `inbox/` writes conversations.

use serde::Serialize;
use uuid::Uuid;

use crate::db::Tx;
use crate::error::{Error, Result};
use crate::events::{Event, Work};
use crate::inbox::assignee::{self, Change, Holder};
use crate::inbox::conversations::{self, Conversation, Visible};
use crate::inbox::leads;
use crate::inbox::lost;
use crate::policy::{self, Denied, Viewer};
use crate::timeline::{self, AssignedData, NewActivity, NoData};
use crate::views::conversation::{ConversationStatus, LostCause};
use crate::views::timeline::ActivityKind;
use crate::{on_tx, policy::ConvFacts};

/// The reply check for the send path: only the assignee may reply (an admin too, once the
/// conversation is assigned to them). Others who can see it get 403 `not_assignee`.
pub fn ensure_can_reply(conv: &Visible<Conversation>, v: &Viewer) -> Result<()> {
    policy::can_reply(v, &conv.facts(Vec::new())).map_err(denied)
}

/// The contract's error for a refused action on a visible conversation.
pub fn denied(d: Denied) -> Error {
    match d {
        Denied::NotAssignee => Error::forbidden("not_assignee", "only the conversation's assignee may do this"),
        Denied::AlreadyAssigned => Error::conflict("already_assigned", "the conversation is already assigned"),
        Denied::Forbidden => Error::forbidden("forbidden", "you may not do this to the conversation"),
    }
}

/// A visible conversation with everything the policy needs about it.
pub async fn load(db: &crate::db::Db, v: &Viewer, id: Uuid) -> Result<(Visible<Conversation>, ConvFacts)> {
    let conv = conversations::get_visible(db, v, id).await?;
    let facts = conv.facts(conversations::access_ids(db, id).await?);
    Ok((conv, facts))
}

/// Loads a conversation inside a write transaction, without a viewer (internal changes such as
/// deleting a label; sees the transaction's own writes).
pub async fn load_tx(tx: &mut Tx, id: Uuid) -> Result<Conversation> {
    conversations::load_in(tx, id).await?.ok_or_else(Error::not_found)
}

#[derive(Serialize)]
struct LabelData<'a> {
    label_id: Uuid,
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    label_deleted: bool,
}

/// A label left these conversations (deleted by `member_id`): timeline and live event for each.
pub async fn label_removed(w: &mut Work, conversations: &[Uuid], label: (Uuid, &str), member_id: Uuid) -> Result<()> {
    for id in conversations {
        let c = load_tx(w.tx(), *id).await?;
        let data = LabelData { label_id: label.0, name: Some(label.1), label_deleted: true };
        let a = NewActivity::new(c.workspace_id, c.lead_id, ActivityKind::LabelRemoved, data);
        timeline::record(w, a.conversation(c.id).by(member_id)).await?;
        conversations::emit(w, Event::ConversationUpdated, &c);
    }
    Ok(())
}

/// Gives the conversation to `assignee` as part of `change` (an assigned conversation never
/// goes back to unassigned), and its lead too when the lead has none. Returns whether the
/// conversation moved. No event of the conversation (the caller emits).
pub async fn set_assignee(w: &mut Work, c: &mut Conversation, assignee: Uuid, change: &mut Change) -> Result<bool> {
    let moved = assignee::of_conversation(w, change, c.id, c.lead_id, assignee, Holder::Anyone).await?;
    if moved {
        c.assignee_id = Some(assignee);
        c.updated_at = w.now();
    }
    leads::adopt(w, change, c.lead_id, assignee).await?;
    Ok(moved)
}

/// Assigns a conversation to `assignee` (an active member) on `by`'s behalf: activity,
/// `conversation.assigned`, and `assignment.alert` to the assignee unless they are `by`.
/// Nothing happens when it already is theirs.
pub async fn assign(w: &mut Work, c: &mut Conversation, assignee: Uuid, by: Uuid) -> Result<()> {
    if c.assignee_id == Some(assignee) {
        return Ok(());
    }
    leads::check_assignee(w.tx(), c.workspace_id, assignee).await?;
    let from = c.assignee_id;
    let mut change = Change::by_member(c.workspace_id, by, "assign");
    set_assignee(w, c, assignee, &mut change).await?;
    let a =
        NewActivity::new(c.workspace_id, c.lead_id, ActivityKind::Assigned, AssignedData::by_member(from, assignee));
    timeline::record(w, a.conversation(c.id).by(by)).await?;
    conversations::emit(w, Event::ConversationAssigned, c);
    Ok(())
}

/// Claims an unassigned conversation for `by`. Race-safe: a conditional UPDATE takes only an
/// unassigned conversation, so of concurrent claims exactly one wins and the others get
/// [`Denied::AlreadyAssigned`].
pub async fn claim(w: &mut Work, c: &mut Conversation, by: Uuid) -> Result<()> {
    let now = w.now();
    let mut change = Change::by_member(c.workspace_id, by, "claim");
    if !assignee::of_conversation(w, &mut change, c.id, c.lead_id, by, Holder::Unassigned).await? {
        return Err(denied(Denied::AlreadyAssigned));
    }
    c.assignee_id = Some(by);
    c.updated_at = now;
    leads::adopt(w, &mut change, c.lead_id, by).await?;
    let a = NewActivity::new(c.workspace_id, c.lead_id, ActivityKind::Claimed, NoData {});
    timeline::record(w, a.conversation(c.id).by(by)).await?;
    conversations::emit(w, Event::ConversationAssigned, c);
    Ok(())
}

#[derive(Serialize)]
struct StatusData {
    from: ConversationStatus,
    to: ConversationStatus,
}

/// Opens or closes a conversation on `by`'s behalf. Nothing happens when it already is.
pub async fn set_status(w: &mut Work, c: &mut Conversation, status: ConversationStatus, by: Uuid) -> Result<()> {
    if c.status == status {
        return Ok(());
    }
    let now = w.now();
    on_tx!(w.tx(), |x| sqlx::query("UPDATE conversations SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now)
        .bind(c.id)
        .execute(x)
        .await
        .map(|r| r.rows_affected()))?;
    let data = StatusData { from: c.status, to: status };
    c.status = status;
    c.updated_at = now;
    let a = NewActivity::new(c.workspace_id, c.lead_id, ActivityKind::StatusChanged, data);
    timeline::record(w, a.conversation(c.id).by(by)).await?;
    conversations::emit(w, Event::ConversationUpdated, c);
    Ok(())
}

/// Sets a conversation's labels to `wanted` (checked to exist in the workspace; `name` gives
/// a label's name for the timeline). Nothing happens when they already are.
pub async fn set_labels(
    w: &mut Work,
    c: &mut Conversation,
    wanted: Vec<Uuid>,
    names: &std::collections::HashMap<Uuid, String>,
    by: Uuid,
) -> Result<()> {
    let added: Vec<Uuid> = wanted.iter().filter(|l| !c.label_ids.contains(l)).copied().collect();
    let removed: Vec<Uuid> = c.label_ids.iter().filter(|l| !wanted.contains(l)).copied().collect();
    if added.is_empty() && removed.is_empty() {
        return Ok(());
    }
    let id = c.id;
    let seen = if removed.is_empty() { None } else { Some(lost::before(w.tx(), &[id]).await?) };
    for l in &removed {
        on_tx!(w.tx(), |x| sqlx::query(
            "DELETE FROM conversation_labels WHERE conversation_id = $1 AND label_id = $2"
        )
        .bind(id)
        .bind(*l)
        .execute(x)
        .await
        .map(|r| r.rows_affected()))?;
    }
    for l in &added {
        on_tx!(w.tx(), |x| sqlx::query(
            "INSERT INTO conversation_labels (conversation_id, label_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        )
        .bind(id)
        .bind(*l)
        .execute(x)
        .await
        .map(|r| r.rows_affected()))?;
    }
    for (kind, list) in [(ActivityKind::LabelAdded, &added), (ActivityKind::LabelRemoved, &removed)] {
        for l in list {
            let data = LabelData { label_id: *l, name: names.get(l).map(String::as_str), label_deleted: false };
            let a = NewActivity::new(c.workspace_id, c.lead_id, kind, data);
            timeline::record(w, a.conversation(c.id).by(by)).await?;
        }
    }
    let now = w.now();
    conversations::touch(w.tx(), now, id).await?;
    c.label_ids = wanted;
    c.updated_at = now;
    conversations::emit(w, Event::ConversationUpdated, c);
    if let Some(seen) = seen {
        lost::after(w, seen, LostCause::Label, Some(by)).await?;
    }
    Ok(())
}

#[derive(Serialize)]
struct AccessData<'a> {
    member_ids: &'a [Uuid],
}

/// Grants (or revokes) explicit access to the members `ids` (422 when one is not a member of
/// the workspace). Returns whether anything changed.
pub async fn change_access(w: &mut Work, c: &mut Conversation, ids: &[Uuid], grant: bool, by: Uuid) -> Result<bool> {
    let now = w.now();
    let id = c.id;
    let seen = if grant { None } else { Some(lost::before(w.tx(), &[id]).await?) };
    let mut changed = Vec::new();
    for m in ids {
        let known: Option<Uuid> =
            on_tx!(w.tx(), |x| sqlx::query_scalar("SELECT id FROM users WHERE id = $1 AND workspace_id = $2")
                .bind(*m)
                .bind(c.workspace_id)
                .fetch_optional(x)
                .await)?;
        if known.is_none() {
            return Err(Error::unprocessable("unknown_member", format!("member {m} does not exist")));
        }
        let n = if grant {
            on_tx!(w.tx(), |x| sqlx::query(
                "INSERT INTO conversation_access (conversation_id, user_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING"
            )
            .bind(id)
            .bind(*m)
            .bind(now)
            .execute(x)
            .await
            .map(|r| r.rows_affected()))?
        } else {
            on_tx!(w.tx(), |x| sqlx::query(
                "DELETE FROM conversation_access WHERE conversation_id = $1 AND user_id = $2"
            )
            .bind(id)
            .bind(*m)
            .execute(x)
            .await
            .map(|r| r.rows_affected()))?
        };
        if n > 0 {
            changed.push(*m);
        }
    }
    if changed.is_empty() {
        return Ok(false);
    }
    conversations::touch(w.tx(), now, id).await?;
    c.updated_at = now;
    let kind = if grant { ActivityKind::AccessGranted } else { ActivityKind::AccessRevoked };
    let a = NewActivity::new(c.workspace_id, c.lead_id, kind, AccessData { member_ids: &changed });
    timeline::record(w, a.conversation(c.id).by(by)).await?;
    conversations::emit(w, Event::ConversationUpdated, c);
    if let Some(seen) = seen {
        lost::after(w, seen, LostCause::Access, Some(by)).await?;
    }
    Ok(true)
}

/// Bulk reassignment of a lead: its conversations held by `from` go to `to` as part of
/// `change` (activity and `conversation.assigned` each, `data` the lead's activity data).
pub async fn reassign_of_lead(
    w: &mut Work,
    change: &mut Change,
    lead_id: Uuid,
    from: Holder,
    to: Uuid,
    data: &AssignedData,
) -> Result<()> {
    let convs = assignee::of_lead_conversations(w, change, lead_id, to, from).await?;
    for conv in convs {
        let c = load_tx(w.tx(), conv).await?;
        let mut a = NewActivity::new(c.workspace_id, lead_id, ActivityKind::Assigned, data).conversation(conv);
        if let Some(by) = change.by {
            a = a.by(by);
        }
        timeline::record(w, a).await?;
        conversations::emit(w, Event::ConversationAssigned, &c);
    }
    Ok(())
}
