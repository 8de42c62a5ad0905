//! The one chat write path: every write to `messages` and `conversations` that a message, a
//! status or a reply causes, with its events, in the caller's unit of work. Webhook ingest,
//! the outbox (queueing a reply, the sender recording the outcome) and whatever comes later
//! (notes, edits, history import) call these, and only these, to change a chat.
//!
//! - [`open`]: the conversation of (number, lead), created on first contact;
//! - [`record`]: a message stored once per wamid, its conversation touched, its events, its
//!   search index row and its timeline session;
//! - [`receive_status`], [`apply_status`], [`apply_pending_statuses`]: statuses only move
//!   forward, `failed` is final, and those that arrive before their message wait for it;
//! - [`message_sent`], [`message_failed`]: what the Graph API answered a queued reply;
//! - [`mark_read`], [`require_template`], [`contact_changed`]: touching a conversation;
//! - [`lock_chats`]: the per-chat locks that keep PostgreSQL transactions apart.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::events::{Event, NewEvent, Work};
use crate::inbox::conversations::{self, Conversation};
use crate::inbox::{messages, search};
use crate::timeline::sessions::{self, ConvRef, Msg};
use crate::views::conversation::{ConversationStatus, ConversationView};
use crate::views::message::{Context, Direction, Edit, MessageError, MessageStatus, MessageView, Pricing};
use crate::{on_tx, string_enum};

/// Meta's code for "more than 24 hours since the customer's last message": from then on only
/// templates can be sent in the conversation.
pub const REENGAGEMENT_REQUIRED: i64 = 131047;

/// A conversation as the write path needs it (and its lead's name, for its events).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Chat {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub lead_id: Uuid,
    pub number_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub status: ConversationStatus,
    pub contact_phone: Option<String>,
    pub contact_bsuid: Option<String>,
    pub lead_name: String,
}

impl Chat {
    /// Whether `contact` names a phone or BSUID the chat does not reply to yet ([`open`]
    /// updates the chat then).
    pub fn contact_is_new(&self, contact: Contact<'_>) -> bool {
        let phone_changes = contact.phone.is_some() && contact.phone != self.contact_phone.as_deref();
        let bsuid_changes = contact.bsuid.is_some() && contact.bsuid != self.contact_bsuid.as_deref();
        phone_changes || bsuid_changes
    }

    pub(super) fn session_ref(&self) -> ConvRef {
        ConvRef {
            id: self.id,
            workspace_id: self.workspace_id,
            lead_id: self.lead_id,
            number_id: self.number_id,
            assignee_id: self.assignee_id,
        }
    }
}

impl From<&Conversation> for Chat {
    fn from(c: &Conversation) -> Chat {
        Chat {
            id: c.id,
            workspace_id: c.workspace_id,
            lead_id: c.lead_id,
            number_id: c.number_id,
            assignee_id: c.assignee_id,
            status: c.status,
            contact_phone: c.contact_phone.clone(),
            contact_bsuid: c.contact_bsuid.clone(),
            lead_name: c.lead_name.clone(),
        }
    }
}

/// A conversation's view read inside `tx` (its own writes and its labels included).
pub async fn conversation_in(tx: &mut Tx, id: Uuid) -> Result<ConversationView> {
    let c = conversations::load_in(tx, id).await?.ok_or(sqlx::Error::RowNotFound)?;
    Ok(c.view())
}

pub(super) fn conversation_event(kind: fn(ConversationView) -> Event, view: ConversationView, ws: Uuid) -> NewEvent {
    let (id, lead) = (view.id, view.lead_id);
    NewEvent::new(ws, kind(view)).conversation(id).lead(lead)
}

pub(super) fn message_event(kind: fn(MessageView) -> Event, view: MessageView, ws: Uuid, lead: Uuid) -> NewEvent {
    let conv = view.conversation_id;
    NewEvent::new(ws, kind(view)).conversation(conv).lead(lead)
}

// ---- Conversations ----

/// The conversation of (number, lead) with what the write path needs of it and its lead.
const FIND: &str = "SELECT c.id, c.workspace_id, c.lead_id, c.number_id, c.assignee_id, c.status, \
    c.contact_phone, c.contact_bsuid, l.name AS lead_name FROM conversations c JOIN leads l ON l.id = c.lead_id \
    WHERE c.number_id = $1 AND c.lead_id = $2";

const NEW_CONVERSATION: &str = "INSERT INTO conversations (id, workspace_id, number_id, lead_id, contact_phone, \
    contact_bsuid, status, assignee_id, unread_count, template_required, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, 'open', (SELECT assignee_id FROM leads WHERE id = $4), 0, FALSE, $7, $7) \
    ON CONFLICT (number_id, lead_id) DO NOTHING RETURNING id";

/// The conversation of (number, lead), if there is one.
pub async fn find(tx: &mut Tx, number_id: Uuid, lead_id: Uuid) -> Result<Option<Chat>> {
    Ok(on_tx!(tx, |c| sqlx::query_as(FIND).bind(number_id).bind(lead_id).fetch_optional(c).await)?)
}

/// Who a chat is with, as the message that opens or continues it names them.
#[derive(Debug, Clone, Copy)]
pub struct Contact<'a> {
    pub phone: Option<&'a str>,
    pub bsuid: Option<&'a str>,
}

/// The conversation of (number, lead) for a message with `contact` (`known`: the caller
/// found it already), created on first contact (`conversation.created`). Its contact is
/// updated when the message names a new phone or BSUID.
pub async fn open(
    work: &mut Work,
    known: Option<Chat>,
    workspace_id: Uuid,
    number_id: Uuid,
    lead_id: Uuid,
    contact: Contact<'_>,
) -> Result<Chat> {
    let found = match known.filter(|c| c.lead_id == lead_id && c.number_id == number_id) {
        Some(c) => Some(c),
        None => find(work.tx(), number_id, lead_id).await?,
    };
    if let Some(mut chat) = found {
        if chat.contact_is_new(contact) {
            on_tx!(work.tx(), |c| {
                sqlx::query(
                    "UPDATE conversations SET contact_phone = COALESCE($1, contact_phone), \
                     contact_bsuid = COALESCE($2, contact_bsuid) WHERE id = $3",
                )
                .bind(contact.phone)
                .bind(contact.bsuid)
                .bind(chat.id)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
            })?;
            if let Some(p) = contact.phone {
                chat.contact_phone = Some(p.to_owned());
            }
            if let Some(b) = contact.bsuid {
                chat.contact_bsuid = Some(b.to_owned());
            }
        }
        return Ok(chat);
    }
    let now = work.now();
    let created: Option<Uuid> = on_tx!(work.tx(), |c| sqlx::query_scalar(NEW_CONVERSATION)
        .bind(Uuid::now_v7())
        .bind(workspace_id)
        .bind(number_id)
        .bind(lead_id)
        .bind(contact.phone)
        .bind(contact.bsuid)
        .bind(now)
        .fetch_optional(c)
        .await)?;
    if let Some(id) = created {
        // Nothing can have labelled it yet: no label query.
        let c = conversations::find_in(work.tx(), id).await?.ok_or(sqlx::Error::RowNotFound)?;
        work.emit(c.event(Event::ConversationCreated));
        return Ok(Chat::from(&c));
    }
    // Created by a concurrent transaction (another node) a moment ago.
    find(work.tx(), number_id, lead_id).await?.ok_or_else(|| Error::internal("conversation vanished"))
}

/// A contact changed number or WhatsApp user id: the lead's conversations reply to the new
/// one (the old identifiers stay linked to the lead for history).
pub async fn contact_changed(tx: &mut Tx, lead_id: Uuid, contact: Contact<'_>) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE conversations SET contact_phone = COALESCE($1, contact_phone), \
             contact_bsuid = COALESCE($2, contact_bsuid) WHERE lead_id = $3",
        )
        .bind(contact.phone)
        .bind(contact.bsuid)
        .bind(lead_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Marks a conversation's inbound messages read and its unread count zero; returns its view
/// (after `conversation.updated`).
pub async fn mark_read(work: &mut Work, workspace_id: Uuid, conversation_id: Uuid) -> Result<ConversationView> {
    let now = work.now();
    on_tx!(work.tx(), |c| {
        sqlx::query(
            "UPDATE messages SET status = 'read', read_at = $1 \
             WHERE conversation_id = $2 AND direction = 'in' AND status <> 'read'",
        )
        .bind(now)
        .bind(conversation_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    on_tx!(work.tx(), |c| sqlx::query("UPDATE conversations SET unread_count = 0 WHERE id = $1")
        .bind(conversation_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let view = conversation_in(work.tx(), conversation_id).await?;
    work.emit(conversation_event(Event::ConversationUpdated, view.clone(), workspace_id));
    Ok(view)
}

/// The customer service window closed (Meta refused a free-form message): only templates
/// from now on, until the customer writes again.
pub async fn require_template(work: &mut Work, workspace_id: Uuid, conversation_id: Uuid) -> Result<()> {
    let now = work.now();
    on_tx!(work.tx(), |c| sqlx::query(
        "UPDATE conversations SET template_required = TRUE, updated_at = $1 WHERE id = $2"
    )
    .bind(now)
    .bind(conversation_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let view = conversation_in(work.tx(), conversation_id).await?;
    work.emit(conversation_event(Event::ConversationUpdated, view, workspace_id));
    Ok(())
}

// ---- Messages ----

/// A message to record.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub id: Uuid,
    /// Meta's id; `None` for a reply not sent yet.
    pub wamid: Option<&'a str>,
    pub direction: Direction,
    pub kind: String,
    pub text: Option<String>,
    pub media: Option<Value>,
    pub content: Option<Value>,
    pub context_wamid: Option<String>,
    pub forwarded: bool,
    pub status: MessageStatus,
    /// The member who sent it (a reply from the inbox).
    pub sent_by_user_id: Option<Uuid>,
    /// An echo of a message sent from the WhatsApp Business app.
    pub sent_by_app: bool,
    /// When it was written (WhatsApp's time, or now for a reply).
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// What Meta said was wrong with it (an inbound message it could not deliver whole).
    pub error: Option<StatusError>,
}

/// How a message is recorded, beyond the message itself.
pub struct Recording {
    /// The workspace's session gap (seconds), for the timeline session it joins.
    pub session_gap: i64,
    /// The message is the conversation's newest whatever the times say (a reply sent now).
    pub newest: bool,
    /// The caller answers with the message (the API): [`record`] returns its view too.
    pub answer: bool,
    /// Not news (an imported past message, a system row): no unread count, no change to the
    /// customer service window, never re-opens the conversation.
    pub quiet: bool,
}

impl Recording {
    /// As webhooks record messages: the WhatsApp time decides which is newest.
    pub fn ingest(session_gap: i64) -> Recording {
        Recording { session_gap, newest: false, answer: false, quiet: false }
    }
}

/// The type of a system row (the contact changed number, ...): shown in the chat, not part of
/// a WhatsApp session.
pub const SYSTEM: &str = "system";

/// A message [`record`] stored.
#[derive(Debug)]
pub struct Stored {
    pub id: Uuid,
    /// Its view, when [`Recording::answer`] asked for it.
    pub view: Option<MessageView>,
    /// A customer message re-opened the closed conversation: the caller runs the assignment
    /// for it (the inbox never calls the assignment).
    pub reopened: bool,
}

const INSERT_MESSAGES: &str = "INSERT INTO messages (id, workspace_id, conversation_id, wamid, direction, type, \
    text, media, content, context_wamid, forwarded, status, sent_by_user_id, sent_by_app, created_at, sent_at, \
    received_at, error_code, error_title) ";

/// What [`insert_messages`] returns of each message it inserted: whether reactions, and
/// edits or revokes, came before it.
const INSERTED: &str = " ON CONFLICT (wamid) DO NOTHING RETURNING id, \
    EXISTS (SELECT 1 FROM reactions r WHERE r.target_wamid = messages.wamid AND r.emoji <> '') AS reacted, \
    EXISTS (SELECT 1 FROM message_changes x WHERE x.target_wamid = messages.wamid) AS changed";

impl NewMessage<'_> {
    /// The words search finds it by: its text, else its media's caption.
    pub(super) fn searchable(&self) -> Option<&str> {
        self.text.as_deref().or_else(|| self.media.as_ref()?.get("caption")?.as_str())
    }
}

/// Inserts messages (each with the id of its chat) of workspace `ws` in one statement, skipping
/// those whose wamid is known (redeliveries). Returns, for each inserted one, whether reactions
/// and whether edits or revokes were waiting for it.
pub(super) async fn insert_messages(
    tx: &mut Tx,
    ws: Uuid,
    rows: &[(Uuid, &NewMessage<'_>)],
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, (bool, bool)>> {
    let inserted: Vec<(Uuid, bool, bool)> = on_tx!(tx, |c| {
        let mut qb = sqlx::QueryBuilder::new(INSERT_MESSAGES);
        qb.push_values(rows, |mut b, (conversation_id, m)| {
            b.push_bind(m.id)
                .push_bind(ws)
                .push_bind(*conversation_id)
                .push_bind(m.wamid)
                .push_bind(m.direction.as_str())
                .push_bind(&m.kind)
                .push_bind(&m.text)
                .push_bind(m.media.as_ref().map(Json))
                .push_bind(m.content.as_ref().map(Json))
                .push_bind(&m.context_wamid)
                .push_bind(m.forwarded)
                .push_bind(m.status.as_str())
                .push_bind(m.sent_by_user_id)
                .push_bind(m.sent_by_app)
                .push_bind(m.created_at)
                .push_bind(m.sent_at)
                .push_bind(now)
                .push_bind(m.error.as_ref().and_then(|e| e.code))
                .push_bind(m.error.as_ref().and_then(|e| e.title.as_deref()));
        });
        qb.push(INSERTED);
        qb.build_query_as().fetch_all(c).await
    })?;
    Ok(inserted.into_iter().map(|(id, reacted, changed)| (id, (reacted, changed))).collect())
}

/// The one way a conversation learns of a new message: its preview and `last_message_at` (the
/// WhatsApp time lists are ordered by; unless a newer message is there), unread count,
/// customer service window, and a customer message re-opens it.
const TOUCH_CONVERSATION: &str = "UPDATE conversations SET \
    last_message = CASE WHEN $7 OR last_message_at IS NULL OR last_message_at <= $2 THEN $3 ELSE last_message END, \
    last_message_at = CASE WHEN $7 OR last_message_at IS NULL OR last_message_at <= $2 THEN $2 ELSE last_message_at END, \
    unread_count = unread_count + $4, \
    last_inbound_at = CASE WHEN $5 AND (last_inbound_at IS NULL OR last_inbound_at < $2) THEN $2 ELSE last_inbound_at END, \
    template_required = CASE WHEN $5 THEN FALSE ELSE template_required END, \
    status = CASE WHEN $5 THEN 'open' ELSE status END, \
    updated_at = $6 WHERE id = $1 \
    RETURNING id, workspace_id, lead_id, number_id, contact_phone, contact_bsuid, status, assignee_id, last_message, \
    last_message_at, unread_count, last_inbound_at, template_required, created_at, updated_at, \
    EXISTS (SELECT 1 FROM conversation_labels WHERE conversation_id = $1) AS labelled";

/// The conversation's columns after [`TOUCH_CONVERSATION`] (its lead's name is known).
#[derive(sqlx::FromRow)]
pub(super) struct Touched {
    pub(super) id: Uuid,
    lead_id: Uuid,
    number_id: Uuid,
    contact_phone: Option<String>,
    contact_bsuid: Option<String>,
    pub(super) status: ConversationStatus,
    assignee_id: Option<Uuid>,
    last_message: Option<Json<Value>>,
    last_message_at: Option<DateTime<Utc>>,
    unread_count: i64,
    last_inbound_at: Option<DateTime<Utc>>,
    template_required: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Whether it has labels at all (most have none: no second query then).
    pub(super) labelled: bool,
}

impl Touched {
    pub(super) fn view(self, label_ids: Vec<Uuid>, lead_name: String) -> ConversationView {
        ConversationView {
            id: self.id,
            lead_id: self.lead_id,
            lead_name,
            number_id: self.number_id,
            contact_phone: self.contact_phone,
            contact_bsuid: self.contact_bsuid,
            status: self.status,
            assignee_id: self.assignee_id,
            label_ids,
            last_message: self.last_message.map(|m| m.0),
            last_message_at: self.last_message_at,
            unread_count: self.unread_count,
            window_expires_at: self.last_inbound_at.map(|t| t + conversations::WINDOW),
            template_required: self.template_required,
            created_at: self.created_at,
            updated_at: self.updated_at,
            can: None,
        }
    }
}

/// The view of message `m` as just inserted into chat `conversation_id`, with the `reactions`
/// that came before it.
fn as_inserted(conversation_id: Uuid, m: NewMessage<'_>, reactions: &[messages::Reaction]) -> MessageView {
    MessageView {
        id: m.id,
        conversation_id,
        wamid: m.wamid.map(str::to_owned),
        direction: m.direction,
        kind: m.kind,
        status: m.status,
        created_at: m.created_at,
        forwarded: m.forwarded,
        sent_at: m.sent_at,
        delivered_at: None,
        read_at: None,
        failed_at: None,
        reactions: reactions.iter().map(messages::Reaction::view).collect(),
        text: m.text,
        media: m.media,
        content: m.content,
        context: m.context_wamid.map(|wamid| Context { wamid }),
        sent_by: None,
        error: m.error.and_then(|e| Some(MessageError { code: e.code?, title: e.title })),
        edited_at: None,
        edits: Vec::new(),
        revoked_at: None,
        pricing: None,
    }
}

/// The view of message `m` just inserted into `chat`, for its events: the edits and revokes
/// that came before it applied (`changed`: some are waiting) and, for a reply, its statuses;
/// an unchanged customer message is built from what was inserted, plus the reactions that
/// came before it (`reacted`).
pub(super) async fn inserted_view(
    work: &mut Work,
    chat: &Chat,
    m: NewMessage<'_>,
    reacted: bool,
    changed: bool,
) -> Result<MessageView> {
    let inbound = m.direction == Direction::In;
    let changed = match m.wamid {
        Some(w) if changed => apply_pending_changes(work, m.id, w, chat.number_id).await?,
        _ => false,
    };
    if inbound && !changed {
        let reactions = match m.wamid {
            Some(w) if reacted => messages::reactions_in(work.tx(), w).await?,
            _ => Vec::new(),
        };
        return Ok(as_inserted(chat.id, m, &reactions));
    }
    if let (Some(w), false) = (m.wamid, inbound) {
        apply_pending_statuses(work, w).await?;
    }
    messages::view_in(work.tx(), m.id).await
}

/// Records a message in `chat` unless its wamid is known (`None`: a redelivery, nothing
/// changed): inserts it, applies statuses that arrived before it, touches the conversation
/// (a customer message re-opens a closed one, which the assignment rules then place), and
/// places it in its timeline session. Emits `message.created` and `conversation.updated`.
pub async fn record(work: &mut Work, chat: &mut Chat, m: NewMessage<'_>, how: &Recording) -> Result<Option<Stored>> {
    let now = work.now();
    let inbound = m.direction == Direction::In;
    let inserted = insert_messages(work.tx(), chat.workspace_id, &[(chat.id, &m)], now).await?;
    let (created_at, sent_by) = (m.created_at, m.sent_by_user_id);
    let Some(&(reacted, changed)) = inserted.get(&m.id) else {
        tracing::debug!(wamid = m.wamid, "redelivered message ignored");
        return Ok(None);
    };
    search::index_message(work.tx(), m.id, m.searchable()).await?;
    let message = inserted_view(work, chat, m, reacted, changed).await?;
    let news = inbound && !how.quiet;
    let reopens = news && chat.status == ConversationStatus::Closed;
    let touched: Touched = on_tx!(work.tx(), |c| sqlx::query_as(TOUCH_CONVERSATION)
        .bind(chat.id)
        .bind(created_at)
        .bind(Json(message.preview()))
        .bind(i64::from(news))
        .bind(news)
        .bind(now)
        .bind(how.newest)
        .fetch_one(c)
        .await)?;
    let ws = chat.workspace_id;
    let system = message.kind == SYSTEM;
    let stored = Stored { id: message.id, view: how.answer.then(|| message.clone()), reopened: reopens };
    work.emit(message_event(Event::MessageCreated, message, ws, chat.lead_id));
    let label_ids = if touched.labelled { conversations::labels_in(work.tx(), chat.id).await? } else { Vec::new() };
    let conversation = touched.view(label_ids, chat.lead_name.clone());
    chat.status = conversation.status;
    work.emit(conversation_event(Event::ConversationUpdated, conversation, ws));
    if !system {
        let msg = Msg { at: created_at, inbound, member: sent_by };
        sessions::place(work, &chat.session_ref(), &msg, how.session_gap).await?;
    }
    Ok(Some(stored))
}

/// A reaction (or its removal: an empty emoji) by `reactor` on the message `target`; each
/// reactor keeps their newest. Emits `message.updated` when the target is known. Returns
/// whether anything changed.
pub async fn react(
    work: &mut Work,
    workspace_id: Uuid,
    target: &str,
    reactor: &str,
    emoji: &str,
    wamid: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let changed = on_tx!(work.tx(), |c| {
        sqlx::query(
            "INSERT INTO reactions (target_wamid, reactor, emoji, wamid, at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (target_wamid, reactor) DO UPDATE SET emoji = excluded.emoji, wamid = excluded.wamid, at = excluded.at \
             WHERE reactions.at < excluded.at OR (reactions.at = excluded.at AND reactions.wamid < excluded.wamid)",
        )
        .bind(target)
        .bind(reactor)
        .bind(emoji)
        .bind(wamid)
        .bind(at)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    if changed == 0 {
        return Ok(false);
    }
    let target_row: Option<(Uuid, Uuid)> = on_tx!(work.tx(), |c| {
        sqlx::query_as(
            "SELECT m.id, v.lead_id FROM messages m JOIN conversations v ON v.id = m.conversation_id \
             WHERE m.wamid = $1 AND m.workspace_id = $2",
        )
        .bind(target)
        .bind(workspace_id)
        .fetch_optional(c)
        .await
    })?;
    if let Some((id, lead)) = target_row {
        let view = messages::view_in(work.tx(), id).await?;
        work.emit(message_event(Event::MessageUpdated, view, workspace_id, lead));
    }
    Ok(true)
}

// ---- Edits and revokes ----

string_enum! {
    /// What its sender did to a message after sending it.
    pub enum ChangeKind { Edit = "edit", Revoke = "revoke" }
}

/// An edit (new text or caption) or a revoke of the message `target` on a number, by the
/// webhook event `wamid` at WhatsApp time `at`.
#[derive(Debug, Clone)]
pub struct MessageChange<'a> {
    pub wamid: &'a str,
    pub target: &'a str,
    pub kind: ChangeKind,
    pub text: Option<String>,
    pub at: DateTime<Utc>,
}

/// An edit or revoke: kept once per event wamid, and applied to its original when that is
/// stored on this number (`message.updated`); otherwise it waits for the original
/// ([`record`] applies it). Never creates a message. Returns whether a message changed.
pub async fn change_message(
    work: &mut Work,
    workspace_id: Uuid,
    number_id: Uuid,
    change: &MessageChange<'_>,
) -> Result<bool> {
    let now = work.now();
    let kept = on_tx!(work.tx(), |c| {
        sqlx::query(
            "INSERT INTO message_changes (wamid, workspace_id, number_id, target_wamid, kind, text, at, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (wamid) DO NOTHING",
        )
        .bind(change.wamid)
        .bind(workspace_id)
        .bind(number_id)
        .bind(change.target)
        .bind(change.kind.as_str())
        .bind(&change.text)
        .bind(change.at)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    if kept == 0 {
        return Ok(false);
    }
    let target: Option<Uuid> = on_tx!(work.tx(), |c| sqlx::query_scalar(
        "SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id \
         WHERE m.wamid = $1 AND c.number_id = $2"
    )
    .bind(change.target)
    .bind(number_id)
    .fetch_optional(c)
    .await)?;
    let Some(id) = target else {
        tracing::info!(target = change.target, kind = %change.kind, "change of a message not stored yet: kept for it");
        return Ok(false);
    };
    if !apply_change(work.tx(), id, change.kind, change.text.as_deref(), change.at).await? {
        return Ok(false);
    }
    message_updated(work, id).await?;
    Ok(true)
}

/// How long an edit or revoke waits for its original before retention drops it. Meta retries a
/// webhook for up to 7 days and a coexistence history import brings old originals soon after
/// onboarding; an original that has not come by then is not coming.
pub const CHANGE_WAITS_DAYS: i64 = 30;

/// Deletes edits and revokes recorded before `before` whose original is still not stored on
/// their number, `chunk` per statement (see [`Db::delete_in_chunks`]). Applied ones stay: they
/// keep a redelivery from applying twice.
pub async fn prune_waiting_changes(db: &Db, before: DateTime<Utc>, chunk: i64) -> Result<u64> {
    const SQL: &str = "DELETE FROM message_changes WHERE wamid IN (SELECT x.wamid FROM message_changes x \
        WHERE x.recorded_at < $1 AND NOT EXISTS (SELECT 1 FROM messages m JOIN conversations c ON c.id = m.conversation_id \
        WHERE m.wamid = x.target_wamid AND c.number_id = x.number_id) ORDER BY x.recorded_at LIMIT $2)";
    Ok(db.delete_in_chunks(SQL, before, chunk).await?)
}

/// Applies the edits and revokes that arrived before the message `id` (`wamid`, just stored
/// on `number_id`), oldest first. Returns whether it changed.
async fn apply_pending_changes(work: &mut Work, id: Uuid, wamid: &str, number_id: Uuid) -> Result<bool> {
    let rows: Vec<(ChangeKind, Option<String>, DateTime<Utc>)> = on_tx!(work.tx(), |c| sqlx::query_as(
        "SELECT kind, text, at FROM message_changes WHERE target_wamid = $1 AND number_id = $2 ORDER BY at, wamid"
    )
    .bind(wamid)
    .bind(number_id)
    .fetch_all(c)
    .await)?;
    let mut changed = false;
    for (kind, text, at) in rows {
        changed |= apply_change(work.tx(), id, kind, text.as_deref(), at).await?;
    }
    Ok(changed)
}

#[derive(sqlx::FromRow)]
struct Editable {
    text: Option<String>,
    created_at: DateTime<Utc>,
    edited_at: Option<DateTime<Utc>>,
    edits: Option<Json<Vec<Edit>>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Applies one edit or revoke to the message `id`. An edit newer than the current text moves
/// that text into `edits` (with the time it was written) and takes its place; an older one (a
/// late delivery) only joins `edits`. A revoke sets `revoked_at` once and keeps the text.
async fn apply_change(tx: &mut Tx, id: Uuid, kind: ChangeKind, text: Option<&str>, at: DateTime<Utc>) -> Result<bool> {
    let m: Editable = on_tx!(tx, |c| sqlx::query_as(
        "SELECT text, created_at, edited_at, edits, revoked_at FROM messages WHERE id = $1"
    )
    .bind(id)
    .fetch_one(c)
    .await)?;
    match kind {
        ChangeKind::Revoke => {
            if m.revoked_at.is_some() {
                return Ok(false);
            }
            on_tx!(tx, |c| sqlx::query("UPDATE messages SET revoked_at = $1 WHERE id = $2")
                .bind(at)
                .bind(id)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
        }
        ChangeKind::Edit => {
            let mut edits = m.edits.map(|e| e.0).unwrap_or_default();
            let current_at = m.edited_at.unwrap_or(m.created_at);
            let new_text = if at > current_at {
                edits.push(Edit { text: m.text, at: current_at });
                text.map(str::to_owned)
            } else {
                edits.push(Edit { text: text.map(str::to_owned), at });
                edits.sort_by_key(|e| e.at);
                m.text
            };
            let text_changed = at > current_at;
            on_tx!(tx, |c| sqlx::query("UPDATE messages SET text = $1, edited_at = $2, edits = $3 WHERE id = $4")
                .bind(&new_text)
                .bind(m.edited_at.max(Some(at)))
                .bind(Json(&edits))
                .bind(id)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
            if text_changed && new_text.is_some() {
                // Search finds the message by its new text (and no longer by the old one).
                search::index_message(tx, id, new_text.as_deref()).await?;
            }
        }
    }
    Ok(true)
}

// ---- Statuses ----

/// What Meta said went wrong with a message.
#[derive(Debug, Clone, Default)]
pub struct StatusError {
    pub code: Option<i64>,
    pub title: Option<String>,
}

/// A status report for the message `wamid`: kept (once per status and error), and applied
/// if the message is known; otherwise it waits for the message ([`apply_pending_statuses`]).
/// Returns whether the message changed.
pub async fn receive_status(
    work: &mut Work,
    wamid: &str,
    status: MessageStatus,
    at: DateTime<Utc>,
    error: Option<&StatusError>,
    pricing: Option<&Pricing>,
) -> Result<bool> {
    let now = work.now();
    let kept = on_tx!(work.tx(), |c| {
        sqlx::query(
            "INSERT INTO message_statuses (wamid, status, error_code, error_title, at, recorded_at, pricing) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (wamid, status, error_code) DO NOTHING",
        )
        .bind(wamid)
        .bind(status.as_str())
        .bind(error.and_then(|e| e.code).unwrap_or(0))
        .bind(error.and_then(|e| e.title.as_deref()))
        .bind(at)
        .bind(now)
        .bind(pricing.map(Json))
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(kept > 0 && apply_status(work, wamid, status, at, error, pricing).await?)
}

#[derive(sqlx::FromRow)]
struct Outbound {
    id: Uuid,
    workspace_id: Uuid,
    conversation_id: Uuid,
    lead_id: Uuid,
    status: MessageStatus,
}

/// Applies a status to its outbound message, if we know it: never backwards, `failed` final;
/// the first pricing a status carries is kept. A failure because the window closed makes the
/// conversation require a template. Returns whether anything changed (then `message.updated`).
pub async fn apply_status(
    work: &mut Work,
    wamid: &str,
    status: MessageStatus,
    at: DateTime<Utc>,
    error: Option<&StatusError>,
    pricing: Option<&Pricing>,
) -> Result<bool> {
    let row: Option<Outbound> = on_tx!(work.tx(), |c| sqlx::query_as(
        "SELECT m.id, m.workspace_id, m.conversation_id, c.lead_id, m.status FROM messages m \
         JOIN conversations c ON c.id = m.conversation_id WHERE m.wamid = $1 AND m.direction = 'out'"
    )
    .bind(wamid)
    .fetch_optional(c)
    .await)?;
    let Some(m) = row else { return Ok(false) };
    let next = m.status.after(status);
    let failed_now = next == MessageStatus::Failed && m.status != MessageStatus::Failed;
    let stamp = |s: MessageStatus| (status == s).then_some(at);
    let changed = on_tx!(work.tx(), |c| {
        sqlx::query(
        "UPDATE messages SET status = $1, \
         sent_at = COALESCE(sent_at, $2), delivered_at = COALESCE(delivered_at, $3), read_at = COALESCE(read_at, $4), \
         failed_at = CASE WHEN $5 THEN $6 ELSE failed_at END, \
         error_code = CASE WHEN $5 THEN $7 ELSE error_code END, error_title = CASE WHEN $5 THEN $8 ELSE error_title END, \
         pricing = COALESCE(pricing, $10) \
         WHERE id = $9 AND (status <> $1 OR ($2 IS NOT NULL AND sent_at IS NULL) OR ($3 IS NOT NULL AND delivered_at IS NULL) \
         OR ($4 IS NOT NULL AND read_at IS NULL) OR ($10 IS NOT NULL AND pricing IS NULL))"
    )
    .bind(next.as_str())
    .bind(stamp(MessageStatus::Sent))
    .bind(stamp(MessageStatus::Delivered))
    .bind(stamp(MessageStatus::Read))
    .bind(failed_now)
    .bind(at)
    .bind(error.and_then(|e| e.code))
    .bind(error.and_then(|e| e.title.as_deref()))
    .bind(m.id)
    .bind(pricing.map(Json))
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if changed == 0 {
        return Ok(false);
    }
    let view = messages::view_in(work.tx(), m.id).await?;
    work.emit(message_event(Event::MessageUpdated, view, m.workspace_id, m.lead_id));
    if failed_now && error.and_then(|e| e.code) == Some(REENGAGEMENT_REQUIRED) {
        require_template(work, m.workspace_id, m.conversation_id).await?;
    }
    Ok(true)
}

/// Applies the statuses that arrived before their message (call once an outbound message has
/// its wamid), oldest first.
pub async fn apply_pending_statuses(work: &mut Work, wamid: &str) -> Result<()> {
    type Row = (MessageStatus, i64, Option<String>, DateTime<Utc>, Option<Json<Pricing>>);
    let rows: Vec<Row> = on_tx!(work.tx(), |c| sqlx::query_as(
        "SELECT status, error_code, error_title, at, pricing FROM message_statuses WHERE wamid = $1 ORDER BY at"
    )
    .bind(wamid)
    .fetch_all(c)
    .await)?;
    for (status, code, title, at, pricing) in rows {
        let error = (code != 0).then_some(StatusError { code: Some(code), title });
        apply_status(work, wamid, status, at, error.as_ref(), pricing.as_ref().map(|p| &p.0)).await?;
    }
    Ok(())
}

/// The Graph API accepted a queued reply and named it `wamid`: it is `sent` (unless a status
/// got further already), and statuses that arrived before the wamid apply now. Lock its chat
/// first ([`lock_chats`]), as webhook processing does, so a status processed at the same
/// moment either sees the wamid or is seen here.
pub async fn message_sent(work: &mut Work, message_id: Uuid, wamid: Option<&str>) -> Result<()> {
    let now = work.now();
    on_tx!(work.tx(), |c| sqlx::query(
        "UPDATE messages SET wamid = $1, status = CASE WHEN status = 'queued' THEN 'sent' ELSE status END, \
         sent_at = COALESCE(sent_at, $2) WHERE id = $3"
    )
    .bind(wamid)
    .bind(now)
    .bind(message_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if let Some(w) = wamid {
        apply_pending_statuses(work, w).await?;
    }
    message_updated(work, message_id).await
}

/// The Graph API refused a queued reply for good: it is `failed` with Meta's code; a closed
/// window makes the conversation require a template.
pub async fn message_failed(work: &mut Work, message_id: Uuid, code: Option<i64>, title: &str) -> Result<()> {
    let now = work.now();
    on_tx!(work.tx(), |c| sqlx::query(
        "UPDATE messages SET status = 'failed', failed_at = $1, error_code = $2, error_title = $3 WHERE id = $4"
    )
    .bind(now)
    .bind(code)
    .bind(title)
    .bind(message_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let (workspace_id, conversation_id) = message_updated_in(work, message_id).await?;
    if code == Some(REENGAGEMENT_REQUIRED) {
        require_template(work, workspace_id, conversation_id).await?;
    }
    Ok(())
}

async fn message_updated(work: &mut Work, message_id: Uuid) -> Result<()> {
    message_updated_in(work, message_id).await.map(|_| ())
}

/// Emits `message.updated` for a message; returns its (workspace, conversation).
async fn message_updated_in(work: &mut Work, message_id: Uuid) -> Result<(Uuid, Uuid)> {
    let view = messages::view_in(work.tx(), message_id).await?;
    let (ws, lead): (Uuid, Uuid) =
        on_tx!(work.tx(), |c| sqlx::query_as("SELECT workspace_id, lead_id FROM conversations WHERE id = $1")
            .bind(view.conversation_id)
            .fetch_one(c)
            .await)?;
    let conv = view.conversation_id;
    work.emit(message_event(Event::MessageUpdated, view, ws, lead));
    Ok((ws, conv))
}

// ---- Chat locks ----

/// PostgreSQL: locks the chats with these keys (from [`chat_key`], sorted) for the rest of
/// `tx`, in one statement and in ascending order. Take them first in a transaction, before
/// anything that waits for other transactions (rows, the event log). With [`Plans::Generic`]
/// the same statement sets the rest of `tx`'s planning, keys or not. SQLite has one writer,
/// so nothing to do there.
pub async fn lock_chats(tx: &mut Tx, keys: &[i32], plans: Plans) -> Result<()> {
    let Tx::Postgres(t) = tx else { return Ok(()) };
    let sql = match plans {
        Plans::AsUsual if keys.is_empty() => return Ok(()),
        Plans::AsUsual => "SELECT lock_contacts($1)",
        Plans::Generic => "SELECT lock_contacts($1), set_config('plan_cache_mode', 'force_generic_plan', true)",
    };
    sqlx::query(sql).bind(keys).execute(&mut **t).await?;
    Ok(())
}

/// How PostgreSQL plans the rest of a transaction that [`lock_chats`] began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plans {
    /// Its default: a prepared statement gets a custom plan for its parameters until a generic
    /// one looks as cheap.
    AsUsual,
    /// Generic plans only (`plan_cache_mode = force_generic_plan`, local to the transaction).
    /// Webhook processing wants this: the lead lookup otherwise got a custom plan at every
    /// execution (its `IN` list and `OR` of pairs look cheaper with the mostly NULL
    /// parameters folded in), and planning that three-table join at each bind took 0.24 ms
    /// per message, a third of processing's statement time.
    Generic,
}

/// The lock key of one stored chat: its number's `phone_number_id` and the contact's phone
/// (else its WhatsApp user id), as Meta's payloads name them.
pub fn chat_key(phone_number_id: &str, contact_phone: Option<&str>, contact_bsuid: Option<&str>) -> Option<i32> {
    let contact = contact_phone.and_then(crate::phone::normalize).or_else(|| contact_bsuid.map(str::to_owned))?;
    Some(lock_key(phone_number_id, &contact))
}

/// FNV-1a of `number`, a separator and `contact`, folded to 32 bits: the same on every node.
pub fn lock_key(number: &str, contact: &str) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in number.bytes().chain([0]).chain(contact.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32 as i32
}
