//! The one way to change who a lead or a conversation is assigned to. Every write of
//! `assignee_id` after creation goes through [`of_lead`], [`of_conversation`] or
//! [`of_lead_conversations`], each under a [`Change`]: the first row a change really moves
//! sends `assignment.alert` to the new assignee (addressed to them only), unless they made the
//! change themselves; every conversation that moves sends `access.lost` to whoever stops
//! seeing it ([`lost`]). One change, one alert: a conversation assigned with its lead, or a lead
//! moved with its conversations, alerts once.
//!
//! Callers: assign and claim (`ownership`), `PATCH /leads/{id}` (`leads::update`), the CSV
//! import (`leads_csv`), bulk reassignment and the assignment engine (`assignment::run`).
//! `tests/architecture.rs` fails on an `assignee_id` set anywhere else.

use uuid::Uuid;

use crate::error::Result;
use crate::events::{Event, NewEvent, Work};
use crate::inbox::lost;
use crate::on_tx;
use crate::views::timeline::AssignmentNotice;

/// Why an assignee changes and who changes it: what the alert says.
#[derive(Debug, Clone)]
pub struct Change {
    pub workspace_id: Uuid,
    /// The member who made the change; `None` for the assignment engine.
    pub by: Option<Uuid>,
    /// `assign`, `claim`, `lead_update`, `import`, `bulk_reassign`, `new_lead`, `reopened`.
    pub cause: &'static str,
    /// `member` for a member's change; the engine's reason otherwise.
    pub reason: String,
    /// The engine's rule, if one matched.
    pub rule: Option<String>,
    alerted: bool,
}

impl Change {
    /// A change a member makes (`cause` names the action).
    pub fn by_member(workspace_id: Uuid, by: Uuid, cause: &'static str) -> Change {
        Change { workspace_id, by: Some(by), cause, reason: "member".to_owned(), rule: None, alerted: false }
    }

    /// A change the assignment engine makes.
    pub fn by_engine(workspace_id: Uuid, cause: &'static str, reason: &str, rule: Option<String>) -> Change {
        Change { workspace_id, by: None, cause, reason: reason.to_owned(), rule, alerted: false }
    }

    /// `assignment.alert` to `to`, once per change, unless `to` made it.
    fn alert(&mut self, w: &mut Work, lead_id: Uuid, conversation_id: Option<Uuid>, to: Uuid) {
        if self.alerted || self.by == Some(to) {
            return;
        }
        self.alerted = true;
        let notice = AssignmentNotice {
            lead_id,
            conversation_id,
            cause: self.cause.to_owned(),
            reason: self.reason.clone(),
            rule: self.rule.clone(),
            member_id: Some(to),
            by_member_id: self.by,
        };
        let e = NewEvent::new(self.workspace_id, Event::AssignmentAlert(notice)).to_user(to);
        w.emit(e.conversation(conversation_id).lead(lead_id));
    }
}

/// Which current assignee a change applies to (assignments never go back to unassigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// Whoever has it (nothing happens when it is `to`'s already).
    Anyone,
    /// Only while unassigned (claims, a lead adopting its conversation's assignee).
    Unassigned,
    /// Only while assigned to this member (bulk reassignment).
    Member(Uuid),
}

impl Holder {
    /// The assignee a row held before a change that moved it, when the holder says (`None`
    /// for [`Holder::Anyone`]: read it).
    fn former(self) -> Option<Option<Uuid>> {
        match self {
            Holder::Anyone => None,
            Holder::Unassigned => Some(None),
            Holder::Member(m) => Some(Some(m)),
        }
    }

    /// `(only unassigned, only this member)` as the statements bind them.
    fn binds(self) -> (bool, Option<Uuid>) {
        match self {
            Holder::Anyone => (false, None),
            Holder::Unassigned => (true, None),
            Holder::Member(m) => (false, Some(m)),
        }
    }
}

const LEAD: &str = "UPDATE leads SET assignee_id = $1, updated_at = $2 WHERE id = $3 \
    AND (assignee_id IS NULL OR assignee_id <> $1) \
    AND (NOT $4 OR assignee_id IS NULL) AND ($5 IS NULL OR assignee_id = $5)";

const CONVERSATION: &str = "UPDATE conversations SET assignee_id = $1, updated_at = $2 WHERE id = $3 \
    AND (assignee_id IS NULL OR assignee_id <> $1) \
    AND (NOT $4 OR assignee_id IS NULL) AND ($5 IS NULL OR assignee_id = $5)";

const CONVERSATIONS_OF_LEAD: &str = "UPDATE conversations SET assignee_id = $1, updated_at = $2 WHERE lead_id = $3 \
    AND (assignee_id IS NULL OR assignee_id <> $1) \
    AND (NOT $4 OR assignee_id IS NULL) AND ($5 IS NULL OR assignee_id = $5) RETURNING id";

/// Gives the lead to `to` when its assignee is `from` (and not `to` already). Returns whether
/// it moved; the caller emits `lead.updated` and records the activity.
pub async fn of_lead(w: &mut Work, change: &mut Change, lead_id: Uuid, to: Uuid, from: Holder) -> Result<bool> {
    let now = w.now();
    let (unassigned, member) = from.binds();
    let n = on_tx!(w.tx(), |c| sqlx::query(LEAD)
        .bind(to)
        .bind(now)
        .bind(lead_id)
        .bind(unassigned)
        .bind(member)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if n == 1 {
        change.alert(w, lead_id, None, to);
    }
    Ok(n == 1)
}

/// Gives the conversation to `to` when its assignee is `from` (and not `to` already). Returns
/// whether it moved; the caller emits `conversation.assigned` and records the activity.
pub async fn of_conversation(
    w: &mut Work,
    change: &mut Change,
    conversation_id: Uuid,
    lead_id: Uuid,
    to: Uuid,
    from: Holder,
) -> Result<bool> {
    let now = w.now();
    let (unassigned, member) = from.binds();
    let former = match from.former() {
        Some(f) => f,
        None => on_tx!(w.tx(), |c| sqlx::query_scalar("SELECT assignee_id FROM conversations WHERE id = $1")
            .bind(conversation_id)
            .fetch_optional(c)
            .await)?
        .flatten(),
    };
    let n = on_tx!(w.tx(), |c| sqlx::query(CONVERSATION)
        .bind(to)
        .bind(now)
        .bind(conversation_id)
        .bind(unassigned)
        .bind(member)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if n == 1 {
        change.alert(w, lead_id, Some(conversation_id), to);
        lost::after_reassign(w, &[(conversation_id, former)], change.by).await?;
    }
    Ok(n == 1)
}

/// Gives the lead's conversations whose assignee is `from` to `to`. Returns the ids of those
/// that moved.
pub async fn of_lead_conversations(
    w: &mut Work,
    change: &mut Change,
    lead_id: Uuid,
    to: Uuid,
    from: Holder,
) -> Result<Vec<Uuid>> {
    let now = w.now();
    let (unassigned, member) = from.binds();
    let held: Vec<(Uuid, Option<Uuid>)> = match from.former() {
        Some(_) => Vec::new(),
        None => on_tx!(w.tx(), |c| sqlx::query_as("SELECT id, assignee_id FROM conversations WHERE lead_id = $1")
            .bind(lead_id)
            .fetch_all(c)
            .await)?,
    };
    let moved: Vec<Uuid> = on_tx!(w.tx(), |c| sqlx::query_scalar(CONVERSATIONS_OF_LEAD)
        .bind(to)
        .bind(now)
        .bind(lead_id)
        .bind(unassigned)
        .bind(member)
        .fetch_all(c)
        .await)?;
    if let Some(first) = moved.first() {
        change.alert(w, lead_id, Some(*first), to);
        let formers: Vec<(Uuid, Option<Uuid>)> = moved
            .iter()
            .map(|id| {
                let f = from.former().or_else(|| held.iter().find(|h| h.0 == *id).map(|h| h.1));
                (*id, f.flatten())
            })
            .collect();
        lost::after_reassign(w, &formers, change.by).await?;
    }
    Ok(moved)
}
