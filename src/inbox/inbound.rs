//! A batch's customer messages recorded set-wise: what [`chat::record`] does for one message
//! from a customer, done for many in a handful of statements — one `INSERT` of the messages,
//! one of their search documents, one `UPDATE` of the chats they touch — instead of a handful
//! per message. Processing a batch of webhooks comes here with the plain customer messages of
//! chats that exist and are open ([`crate::webhook::ingest::process_many`] decides which); the
//! result is what recording them one by one, in order, would store.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::error::Result;
use crate::events::{Event, Work};
use crate::inbox::chat::{self, Chat, NewMessage, Recording, Touched};
use crate::inbox::{conversations, search};
use crate::on_tx;
use crate::timeline::sessions::{self, ConvRef, Msg};
use crate::views::conversation::ConversationStatus;
use crate::views::message::{Direction, MessagePreview};

/// The chats' side of [`TOUCH_CHATS`]: for each chat, its newest message of the batch (time
/// and preview) and how many messages the batch brings.
const TOUCH_CHATS: &str = "WITH v (v_id, v_at, v_preview, v_n) AS (";

/// [`chat::record`]'s conversation update for customer messages (unread, window, preview),
/// applied once per chat for all of the batch's messages: the newest of them is the preview
/// unless a newer message is there, each counts as unread, the window opens at the newest.
const TOUCH_CHATS_SET: &str = ") UPDATE conversations SET \
    last_message = CASE WHEN last_message_at IS NULL OR last_message_at <= v.v_at THEN v.v_preview ELSE last_message END, \
    last_message_at = CASE WHEN last_message_at IS NULL OR last_message_at <= v.v_at THEN v.v_at ELSE last_message_at END, \
    unread_count = unread_count + v.v_n, \
    last_inbound_at = CASE WHEN last_inbound_at IS NULL OR last_inbound_at < v.v_at THEN v.v_at ELSE last_inbound_at END, \
    template_required = FALSE, status = 'open', updated_at = ";

const TOUCH_CHATS_RETURNING: &str = " FROM v WHERE conversations.id = v.v_id \
    RETURNING id, workspace_id, lead_id, number_id, contact_phone, contact_bsuid, status, assignee_id, last_message, \
    last_message_at, unread_count, last_inbound_at, template_required, created_at, updated_at, \
    EXISTS (SELECT 1 FROM conversation_labels l WHERE l.conversation_id = conversations.id) AS labelled";

/// The chats of `items`, each once, in order.
fn unique_chats<'a>(items: &'a [(Chat, NewMessage<'_>)]) -> impl Iterator<Item = &'a Chat> {
    let mut seen = HashSet::new();
    items.iter().map(|(c, _)| c).filter(move |c| seen.insert(c.id))
}

/// One chat's share of a batch.
struct Touch {
    chat: Chat,
    newest: (chrono::DateTime<chrono::Utc>, MessagePreview),
    count: i64,
}

/// Records customer messages, each in its chat (open, of workspace `ws`), unless their wamid
/// is known, as [`chat::record`] would one by one in this order with [`chat::Recording::ingest`]:
/// inserts them and their search documents, applies edits that came before them, touches each
/// chat once and extends its timeline sessions once ([`sessions::extend`]); emits
/// `message.created` for each message, `conversation.updated` and the sessions' timeline events
/// once per chat. A chat with a message older than the end of its newest session (its sessions
/// are recomputed from its messages) is recorded one by one. Returns the ids of the messages
/// it stored.
pub async fn record(
    work: &mut Work,
    ws: Uuid,
    items: Vec<(Chat, NewMessage<'_>)>,
    session_gap: i64,
) -> Result<Vec<Uuid>> {
    debug_assert!(items.iter().all(|(c, m)| {
        c.workspace_id == ws && c.status != ConversationStatus::Closed && m.direction == Direction::In
    }));
    if items.is_empty() {
        return Ok(Vec::new());
    }
    // A chat whose messages come before the end of its newest session (late, out of order)
    // has its sessions recomputed from its messages: recorded one by one.
    let refs: Vec<ConvRef> = unique_chats(&items).map(Chat::session_ref).collect();
    let mut newest = sessions::newest(work.tx(), &refs).await?;
    let late: HashSet<Uuid> = items
        .iter()
        .filter(|(c, m)| newest.get(&c.id).is_some_and(|n| m.created_at < n.ended_at()))
        .map(|(c, _)| c.id)
        .collect();
    let (items, late): (Vec<_>, Vec<_>) = items.into_iter().partition(|(c, _)| !late.contains(&c.id));
    let mut ids = Vec::with_capacity(items.len() + late.len());
    for (mut chat, m) in late {
        ids.extend(chat::record(work, &mut chat, m, &Recording::ingest(session_gap)).await?.map(|s| s.id));
    }
    if items.is_empty() {
        return Ok(ids);
    }
    let now = work.now();
    let rows: Vec<(Uuid, &NewMessage)> = items.iter().map(|(c, m)| (c.id, m)).collect();
    let inserted = chat::insert_messages(work.tx(), ws, &rows, now).await?;
    let stored: Vec<(Chat, NewMessage)> = items
        .into_iter()
        .filter(|(_, m)| {
            let new = inserted.contains_key(&m.id);
            if !new {
                tracing::debug!(wamid = m.wamid, "redelivered message ignored");
            }
            new
        })
        .collect();
    if stored.is_empty() {
        return Ok(ids);
    }
    let docs: Vec<search::Doc> = stored
        .iter()
        .map(|(c, m)| search::Doc {
            message_id: m.id,
            workspace_id: ws,
            conversation_id: c.id,
            at: m.created_at,
            text: m.searchable(),
        })
        .collect();
    search::index_new_messages(work.tx(), &docs).await?;

    let mut views = Vec::with_capacity(stored.len());
    for (chat, m) in stored {
        let (reacted, changed) = inserted[&m.id];
        let view = chat::inserted_view(work, &chat, m, reacted, changed).await?;
        views.push((chat, view));
    }

    // Each chat once: its newest message (a later one wins a tie, as one by one) and count.
    let mut chats: Vec<Touch> = Vec::new();
    for (chat, view) in &views {
        match chats.iter_mut().find(|t| t.chat.id == chat.id) {
            Some(t) => {
                t.count += 1;
                if view.created_at >= t.newest.0 {
                    t.newest = (view.created_at, view.preview());
                }
            }
            None => chats.push(Touch { chat: chat.clone(), newest: (view.created_at, view.preview()), count: 1 }),
        }
    }
    let touched: Vec<Touched> = on_tx!(work.tx(), |c| {
        let mut qb = sqlx::QueryBuilder::new(TOUCH_CHATS);
        qb.push_values(&chats, |mut b, t| {
            b.push_bind(t.chat.id).push_bind(t.newest.0).push_bind(sqlx::types::Json(&t.newest.1)).push_bind(t.count);
        });
        qb.push(TOUCH_CHATS_SET).push_bind(now).push(TOUCH_CHATS_RETURNING);
        qb.build_query_as().fetch_all(c).await
    })?;
    let labelled: Vec<Uuid> = touched.iter().filter(|t| t.labelled).map(|t| t.id).collect();
    let mut labels = conversations::label_ids_in(work.tx(), &labelled).await?;
    let mut touched: HashMap<Uuid, Touched> = touched.into_iter().map(|t| (t.id, t)).collect();

    let mut placed: HashMap<Uuid, Vec<Msg>> = HashMap::new();
    for (chat, view) in views {
        ids.push(view.id);
        placed.entry(chat.id).or_default().push(Msg { at: view.created_at, inbound: true, member: None });
        work.emit(chat::message_event(Event::MessageCreated, view, ws, chat.lead_id));
    }
    let mut extended = Vec::with_capacity(chats.len());
    for t in chats {
        let Some(row) = touched.remove(&t.chat.id) else { continue };
        let view = row.view(labels.remove(&t.chat.id).unwrap_or_default(), t.chat.lead_name.clone());
        work.emit(chat::conversation_event(Event::ConversationUpdated, view, ws));
        let msgs = placed.remove(&t.chat.id).unwrap_or_default();
        extended.push((t.chat.session_ref(), newest.remove(&t.chat.id), msgs));
    }
    sessions::extend(work, extended, session_gap).await?;
    Ok(ids)
}
