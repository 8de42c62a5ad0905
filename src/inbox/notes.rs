//! Internal notes in a conversation, and the mentions they make.
//!
//! A note is written by [`add`]: its row, a mention per mentioned member (each told by a
//! `mention.created` event addressed to them), its search index row, a `note` activity on the
//! lead's timeline and its `message.created` event (the note's view, `"type": "note"`), all in
//! the caller's unit of work. A note never touches the conversation: not its window, unread
//! count, last message or WhatsApp sessions, and nothing goes to Meta.
//!
//! Mentions are read by their member: [`mentions`] (the caller's own, newest first, only in
//! conversations they still see) and [`mark_read`].

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::db::{Db, Tx, cursor};
use crate::error::{Error, Result};
use crate::events::{Event, NewEvent, Work};
use crate::inbox::conversations::{Conversation, Visible};
use crate::inbox::search;
use crate::policy::{CONV_VISIBLE, Viewer};
use crate::timeline::{self, NewActivity};
use crate::views::mention::{MentionNotice, MentionView, MentionsPage};
use crate::views::message::{Direction, NOTE, NoteView, SentBy};
use crate::views::timeline::ActivityKind;
use crate::{bind_viewer, on_db, on_tx};

/// Longest note, in characters.
pub const MAX_TEXT: usize = 4096;
/// Most members one note may mention.
pub const MAX_MENTIONS: usize = 50;

/// A note's text, checked: 422 `invalid_note` when empty (or only spaces) or longer than
/// [`MAX_TEXT`] characters.
pub fn check_text(text: &str) -> Result<&str> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > MAX_TEXT {
        return Err(Error::unprocessable("invalid_note", format!("a note needs 1 to {MAX_TEXT} characters")));
    }
    Ok(t)
}

/// Who writes a note.
#[derive(Debug, Clone)]
pub struct Author {
    pub id: Uuid,
    pub email: String,
    pub name: String,
}

impl Author {
    fn sent_by(&self) -> SentBy {
        SentBy::Member { id: self.id, email: Some(self.email.clone()), name: Some(self.name.clone()) }
    }
}

/// A note's data on the timeline.
#[derive(Serialize)]
struct NoteData<'a> {
    note_id: Uuid,
    text: &'a str,
    mention_ids: &'a [Uuid],
}

const INSERT_NOTE: &str = "INSERT INTO notes (id, workspace_id, conversation_id, author_id, text, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6)";
const INSERT_MENTION: &str = "INSERT INTO mentions (id, workspace_id, note_id, conversation_id, user_id, by_id, \
    created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Writes a note by `author` in `conv` (which they see), mentioning `mentioned` (members the
/// policy let be mentioned: [`crate::policy::inbox::can_be_mentioned`]; sorted, no repeats),
/// with its events, index row and timeline activity. `text` is [`check_text`]'s.
pub async fn add(
    work: &mut Work,
    conv: &Visible<Conversation>,
    author: &Author,
    text: &str,
    mentioned: &[Uuid],
) -> Result<NoteView> {
    let id = Uuid::now_v7();
    let now = work.now();
    let (ws, lead) = (conv.workspace_id, conv.lead_id);
    on_tx!(work.tx(), |c| sqlx::query(INSERT_NOTE)
        .bind(id)
        .bind(ws)
        .bind(conv.id)
        .bind(author.id)
        .bind(text)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    for member in mentioned {
        let mention_id = Uuid::now_v7();
        on_tx!(work.tx(), |c| sqlx::query(INSERT_MENTION)
            .bind(mention_id)
            .bind(ws)
            .bind(id)
            .bind(conv.id)
            .bind(*member)
            .bind(author.id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        let notice = MentionNotice {
            mention_id,
            conversation_id: conv.id,
            note_id: id,
            by: author.sent_by(),
            text: text.to_owned(),
            created_at: now,
        };
        work.emit(NewEvent::new(ws, Event::MentionCreated(notice)).conversation(conv.id).lead(lead).to_user(*member));
    }
    search::index_note(work.tx(), id, text).await?;
    let data = NoteData { note_id: id, text, mention_ids: mentioned };
    let activity = NewActivity::new(ws, lead, ActivityKind::Note, data).conversation(conv.id).by(author.id);
    timeline::record(work, activity).await?;
    let view = NoteView {
        id,
        conversation_id: conv.id,
        kind: NOTE,
        direction: Direction::Internal,
        text: text.to_owned(),
        sent_by: author.sent_by(),
        mention_ids: mentioned.to_vec(),
        created_at: now,
    };
    work.emit(NewEvent::new(ws, Event::NoteCreated(view.clone())).conversation(conv.id).lead(lead));
    Ok(view)
}

// ---- Mentions ----

#[derive(Debug, sqlx::FromRow)]
struct MentionRow {
    id: Uuid,
    conversation_id: Uuid,
    lead_id: Uuid,
    lead_name: String,
    note_id: Uuid,
    by_id: Uuid,
    by_email: Option<String>,
    by_name: Option<String>,
    text: String,
    created_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
}

impl MentionRow {
    fn view(self) -> MentionView {
        MentionView {
            id: self.id,
            conversation_id: self.conversation_id,
            lead_id: self.lead_id,
            lead_name: self.lead_name,
            note_id: self.note_id,
            by: SentBy::Member { id: self.by_id, email: self.by_email, name: self.by_name },
            text: self.text,
            created_at: self.created_at,
            read_at: self.read_at,
        }
    }
}

/// The viewer's mentions (`mt.user_id = $2`) in conversations they see.
fn mentions_sql(tail: &str) -> String {
    format!(
        "SELECT mt.id, mt.conversation_id, c.lead_id, l.name AS lead_name, mt.note_id, mt.by_id, \
         u.email AS by_email, u.name AS by_name, n.text, mt.created_at, mt.read_at \
         FROM mentions mt JOIN notes n ON n.id = mt.note_id JOIN conversations c ON c.id = mt.conversation_id \
         JOIN leads l ON l.id = c.lead_id LEFT JOIN users u ON u.id = mt.by_id \
         WHERE mt.user_id = $2 AND {} {tail}",
        *CONV_VISIBLE
    )
}

/// `$6` unread only (NULL: all, else read_at IS NULL = $6), `$7`/`$8` keyset, `$9` limit.
static LIST: LazyLock<String> = LazyLock::new(|| {
    mentions_sql(
        "AND ($6 IS NULL OR (mt.read_at IS NULL) = $6) \
         AND ($7 IS NULL OR mt.created_at < $7 OR (mt.created_at = $7 AND mt.id < $8)) \
         ORDER BY mt.created_at DESC, mt.id DESC LIMIT $9",
    )
});

static ONE: LazyLock<String> = LazyLock::new(|| mentions_sql("AND mt.id = $6"));

/// A page of `v`'s own mentions, newest first (`unread`: only unread ones, or only read ones).
pub async fn mentions(
    db: &Db,
    v: &Viewer,
    unread: Option<bool>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<MentionsPage> {
    let mut rows: Vec<MentionRow> = on_db!(db, |p| bind_viewer!(sqlx::query_as(LIST.as_str()), v)
        .bind(unread)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit + 1)
        .fetch_all(p)
        .await)?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|m| cursor::encode(m.created_at, m.id))
    } else {
        None
    };
    Ok(MentionsPage { mentions: rows.into_iter().map(MentionRow::view).collect(), next_cursor })
}

/// Marks `v`'s mention `id` read (the first time counts) and returns it; 404 when it is not
/// theirs or its conversation is no longer visible to them.
pub async fn mark_read(tx: &mut Tx, v: &Viewer, id: Uuid, now: DateTime<Utc>) -> Result<MentionView> {
    let visible: Option<MentionRow> =
        on_tx!(tx, |c| bind_viewer!(sqlx::query_as(ONE.as_str()), v).bind(id).fetch_optional(c).await)?;
    let mut m = visible.ok_or_else(Error::not_found)?;
    if m.read_at.is_none() {
        on_tx!(tx, |c| sqlx::query("UPDATE mentions SET read_at = $1 WHERE id = $2 AND read_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        m.read_at = Some(now);
    }
    Ok(m.view())
}
