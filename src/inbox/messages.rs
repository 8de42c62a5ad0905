//! Messages as clients see them: one row shape, one JSON shape, for pages and live events; and
//! the notes that show among them (written by `inbox/notes.rs`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::error::Result;
use crate::views::message::{
    Context, Direction, MessageError, MessageStatus, MessageView, NOTE, NoteView, ReactionView, SentBy,
};
use crate::{on_db, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub seq: i64,
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub wamid: Option<String>,
    pub direction: Direction,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub media: Option<sqlx::types::Json<Value>>,
    pub content: Option<sqlx::types::Json<Value>>,
    pub context_wamid: Option<String>,
    pub forwarded: bool,
    pub status: MessageStatus,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    pub sent_by_user_id: Option<Uuid>,
    pub sent_by_email: Option<String>,
    pub sent_by_name: Option<String>,
    pub sent_by_app: bool,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

pub const SELECT: &str = "SELECT m.seq, m.id, m.conversation_id, m.wamid, m.direction, m.type, m.text, m.media, m.content, \
    m.context_wamid, m.forwarded, m.status, m.error_code, m.error_title, m.sent_by_user_id, \
    u.email AS sent_by_email, u.name AS sent_by_name, m.sent_by_app, m.created_at, m.sent_at, \
    m.delivered_at, m.read_at, m.failed_at FROM messages m LEFT JOIN users u ON u.id = m.sent_by_user_id";

/// A reaction shown on its target message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Reaction {
    pub target_wamid: String,
    pub reactor: String,
    pub emoji: String,
    pub at: DateTime<Utc>,
}

impl MessageRow {
    /// The message as clients see it, with its reactions.
    pub fn view(&self, reactions: &[Reaction]) -> MessageView {
        let sent_by = if self.sent_by_app {
            Some(SentBy::APP)
        } else {
            self.sent_by_user_id.map(|id| SentBy::Member {
                id,
                email: self.sent_by_email.clone(),
                name: self.sent_by_name.clone(),
            })
        };
        MessageView {
            id: self.id,
            conversation_id: self.conversation_id,
            wamid: self.wamid.clone(),
            direction: self.direction,
            kind: self.kind.clone(),
            status: self.status,
            created_at: self.created_at,
            forwarded: self.forwarded,
            sent_at: self.sent_at,
            delivered_at: self.delivered_at,
            read_at: self.read_at,
            failed_at: self.failed_at,
            reactions: reactions.iter().map(Reaction::view).collect(),
            text: self.text.clone(),
            media: self.media.as_ref().map(|m| m.0.clone()),
            content: self.content.as_ref().map(|c| c.0.clone()),
            context: self.context_wamid.clone().map(|wamid| Context { wamid }),
            sent_by,
            error: self.error_code.map(|code| MessageError { code, title: self.error_title.clone() }),
        }
    }
}

impl Reaction {
    pub fn view(&self) -> ReactionView {
        ReactionView { emoji: self.emoji.clone(), from: self.reactor.clone(), at: self.at }
    }
}

/// Reactions on the given target wamids (removed ones are not returned).
pub async fn reactions(db: &Db, wamids: &[&str]) -> Result<HashMap<String, Vec<Reaction>>> {
    if wamids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<Reaction> = on_db!(db, |p| {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT target_wamid, reactor, emoji, at FROM reactions WHERE emoji <> '' AND target_wamid IN (",
        );
        let mut sep = qb.separated(", ");
        for w in wamids {
            sep.push_bind(*w);
        }
        qb.push(") ORDER BY at");
        qb.build_query_as().fetch_all(p).await
    })?;
    let mut map: HashMap<String, Vec<Reaction>> = HashMap::new();
    for r in rows {
        map.entry(r.target_wamid.clone()).or_default().push(r);
    }
    Ok(map)
}

/// Renders rows with their reactions.
pub async fn render(db: &Db, rows: &[MessageRow]) -> Result<Vec<MessageView>> {
    let wamids: Vec<&str> = rows.iter().filter_map(|m| m.wamid.as_deref()).collect();
    let reactions = reactions(db, &wamids).await?;
    Ok(rows
        .iter()
        .map(|m| m.view(m.wamid.as_ref().and_then(|w| reactions.get(w)).map(Vec::as_slice).unwrap_or(&[])))
        .collect())
}

/// Loads one message inside a transaction (for the event written with a change).
pub async fn load_in(tx: &mut Tx, id: Uuid) -> Result<MessageRow> {
    let sql = format!("{SELECT} WHERE m.id = $1");
    Ok(on_tx!(tx, |c| sqlx::query_as(&sql).bind(id).fetch_one(c).await)?)
}

/// One message in a transaction, with its reactions, for an event.
pub async fn view_in(tx: &mut Tx, id: Uuid) -> Result<MessageView> {
    let m = load_in(tx, id).await?;
    let reactions = match &m.wamid {
        Some(w) => reactions_in(tx, w).await?,
        None => Vec::new(),
    };
    Ok(m.view(&reactions))
}

/// The reactions on one message, read inside a transaction.
pub async fn reactions_in(tx: &mut Tx, wamid: &str) -> Result<Vec<Reaction>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT target_wamid, reactor, emoji, at FROM reactions WHERE emoji <> '' AND target_wamid = $1 ORDER BY at",
        )
        .bind(wamid)
        .fetch_all(c)
        .await
    })?)
}

// ---- Notes, read among a conversation's messages ----

/// A note as the messages page reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    pub seq: i64,
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub author_id: Uuid,
    pub author_email: Option<String>,
    pub author_name: Option<String>,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

impl NoteRow {
    pub fn view(&self, mention_ids: Vec<Uuid>) -> NoteView {
        NoteView {
            id: self.id,
            conversation_id: self.conversation_id,
            kind: NOTE,
            direction: Direction::Internal,
            text: self.text.clone(),
            sent_by: SentBy::Member {
                id: self.author_id,
                email: self.author_email.clone(),
                name: self.author_name.clone(),
            },
            mention_ids,
            created_at: self.created_at,
        }
    }
}

/// A conversation's notes before a position, newest first: `$2` time (NULL: from the newest),
/// `$3` seq and `$4` whether the position is a note (notes sort after messages of the same
/// time), `$5` how many.
const NOTES_BEFORE: &str = "SELECT n.seq, n.id, n.conversation_id, n.author_id, u.email AS author_email, \
    u.name AS author_name, n.text, n.created_at FROM notes n LEFT JOIN users u ON u.id = n.author_id \
    WHERE n.conversation_id = $1 \
    AND ($2 IS NULL OR n.created_at < $2 OR (n.created_at = $2 AND $4 AND n.seq < $3)) \
    ORDER BY n.created_at DESC, n.seq DESC LIMIT $5";

/// Up to `n` notes of `conversation` older than `before` ((time, seq, is a note)), newest
/// first, with their mentions, each with its seq.
pub async fn notes_page(
    db: &Db,
    conversation: Uuid,
    before: Option<(DateTime<Utc>, i64, bool)>,
    n: i64,
) -> Result<Vec<(i64, NoteView)>> {
    let rows: Vec<NoteRow> = on_db!(db, |p| sqlx::query_as(NOTES_BEFORE)
        .bind(conversation)
        .bind(before.map(|b| b.0))
        .bind(before.map(|b| b.1))
        .bind(before.is_some_and(|b| b.2))
        .bind(n)
        .fetch_all(p)
        .await)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mentions =
        crate::db::linked(db, crate::db::Links { table: "mentions", from: "note_id", to: "user_id" }, &ids).await?;
    Ok(rows.iter().map(|r| (r.seq, r.view(mentions.get(&r.id).cloned().unwrap_or_default()))).collect())
}

/// Where note `id` of `conversation` stands among its messages: (time, seq); `None` when it is
/// not one of its notes.
pub async fn note_position(db: &Db, conversation: Uuid, id: Uuid) -> Result<Option<(DateTime<Utc>, i64)>> {
    Ok(on_db!(db, |p| sqlx::query_as("SELECT created_at, seq FROM notes WHERE id = $1 AND conversation_id = $2")
        .bind(id)
        .bind(conversation)
        .fetch_optional(p)
        .await)?)
}
