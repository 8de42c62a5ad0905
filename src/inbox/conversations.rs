//! Conversations: one per (number, lead). Reads go through the policy: a conversation can only
//! be loaded for a viewer as a [`Visible`] value.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::db::{Db, Links, Tx, cursor};
use crate::error::{Error, Result};
use crate::events::{Event, NewEvent, Work};
use crate::inbox::messages::{self, MessageRow};
use crate::policy::inbox::{ListStrategy, list_strategy};
use crate::policy::{self, CONV_VISIBLE, ConvFacts, Viewer};
use crate::views::conversation::{ConversationStatus, ConversationView};
use crate::views::message::{ChatItem, NoteView};
use crate::views::preferences::TeamView;
use crate::{bind_viewer, on_db, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Conversation {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub lead_id: Uuid,
    pub number_id: Uuid,
    pub contact_phone: Option<String>,
    pub contact_bsuid: Option<String>,
    pub status: ConversationStatus,
    pub assignee_id: Option<Uuid>,
    #[sqlx(skip)]
    pub label_ids: Vec<Uuid>,
    pub last_message: Option<sqlx::types::Json<Value>>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub unread_count: i64,
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub template_required: bool,
    pub lead_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// 24 hours after the customer's last message: free-form replies are allowed until then.
pub const WINDOW: chrono::Duration = chrono::Duration::hours(24);

impl Conversation {
    /// Where the conversation stands in lists: its newest message, else its creation.
    pub fn list_at(&self) -> DateTime<Utc> {
        self.last_message_at.unwrap_or(self.created_at)
    }

    pub fn window_expires_at(&self) -> Option<DateTime<Utc>> {
        self.last_inbound_at.map(|t| t + WINDOW)
    }

    pub fn facts(&self, access_ids: Vec<Uuid>) -> ConvFacts {
        ConvFacts {
            workspace_id: self.workspace_id,
            assignee_id: self.assignee_id,
            label_ids: self.label_ids.clone(),
            access_ids,
        }
    }

    /// The conversation as events carry it (no `can`: events go to many viewers).
    pub fn view(&self) -> ConversationView {
        ConversationView {
            id: self.id,
            lead_id: self.lead_id,
            lead_name: self.lead_name.clone(),
            number_id: self.number_id,
            contact_phone: self.contact_phone.clone(),
            contact_bsuid: self.contact_bsuid.clone(),
            status: self.status,
            assignee_id: self.assignee_id,
            label_ids: self.label_ids.clone(),
            last_message: self.last_message.as_ref().map(|m| m.0.clone()),
            last_message_at: self.last_message_at,
            unread_count: self.unread_count,
            window_expires_at: self.window_expires_at(),
            template_required: self.template_required,
            created_at: self.created_at,
            updated_at: self.updated_at,
            can: None,
        }
    }

    /// The conversation as answered to `v`, with what they may do with it (`access_ids`: the
    /// members given explicit access).
    pub fn view_for(&self, v: &Viewer, access_ids: Vec<Uuid>) -> ConversationView {
        let can = policy::inbox::conversation_can(v, &self.facts(access_ids));
        ConversationView { can: Some(can), ..self.view() }
    }

    /// `conversation.created|updated|assigned` of this conversation as it is now.
    pub fn event(&self, e: fn(ConversationView) -> Event) -> NewEvent {
        NewEvent::new(self.workspace_id, e(self.view())).conversation(self.id).lead(self.lead_id)
    }
}

pub const COLS: &str = "c.id, c.workspace_id, c.lead_id, c.number_id, c.contact_phone, c.contact_bsuid, c.status, \
    c.assignee_id, c.last_message, c.last_message_at, c.unread_count, c.last_inbound_at, c.template_required, \
    l.name AS lead_name, c.created_at, c.updated_at";

/// A conversation the viewer may see. Only the queries in this module build one, so holding
/// it is proof the policy passed.
pub struct Visible<T>(T);

impl<T> std::ops::Deref for Visible<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Visible<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

static GET_VISIBLE: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {COLS} FROM conversations c JOIN leads l ON l.id = c.lead_id WHERE {} AND c.id = $6", *CONV_VISIBLE)
});

/// Loads a conversation for a viewer; 404 when it does not exist or is not visible.
pub async fn get_visible(db: &Db, v: &Viewer, id: Uuid) -> Result<Visible<Conversation>> {
    let mut c: Conversation =
        on_db!(db, |p| bind_viewer!(sqlx::query_as(GET_VISIBLE.as_str()), v).bind(id).fetch_optional(p).await)?
            .ok_or_else(Error::not_found)?;
    c.label_ids = label_ids(db, &[id]).await?.remove(&id).unwrap_or_default();
    Ok(Visible(c))
}

/// Loads a conversation without a viewer (internal jobs: ingest, outbox, live filtering).
pub async fn get_internal(db: &Db, id: Uuid) -> Result<Option<Conversation>> {
    let sql = format!("SELECT {COLS} FROM conversations c JOIN leads l ON l.id = c.lead_id WHERE c.id = $1");
    let Some(mut c) = on_db!(db, |p| sqlx::query_as::<_, Conversation>(&sql).bind(id).fetch_optional(p).await)? else {
        return Ok(None);
    };
    c.label_ids = label_ids(db, &[id]).await?.remove(&id).unwrap_or_default();
    Ok(Some(c))
}

/// A conversation with its labels, as `tx` sees it (its own writes included).
pub async fn load_in(tx: &mut crate::db::Tx, id: Uuid) -> Result<Option<Conversation>> {
    let Some(mut c) = find_in(tx, id).await? else { return Ok(None) };
    c.label_ids = labels_in(tx, id).await?;
    Ok(Some(c))
}

/// A conversation as `tx` sees it (its own writes included), without its labels: all of it
/// for one created in `tx` (nothing can have labelled it yet).
pub async fn find_in(tx: &mut crate::db::Tx, id: Uuid) -> Result<Option<Conversation>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {COLS} FROM conversations c JOIN leads l ON l.id = c.lead_id WHERE c.id = $1")
    });
    Ok(crate::on_tx!(tx, |e| sqlx::query_as(SQL.as_str()).bind(id).fetch_optional(e).await)?)
}

/// A conversation's label ids (sorted), as `tx` sees them.
pub async fn labels_in(tx: &mut crate::db::Tx, id: Uuid) -> Result<Vec<Uuid>> {
    Ok(crate::on_tx!(tx, |e| sqlx::query_scalar(
        "SELECT label_id FROM conversation_labels WHERE conversation_id = $1 ORDER BY label_id"
    )
    .bind(id)
    .fetch_all(e)
    .await)?)
}

/// Label ids of each conversation (sorted), in one query.
pub async fn label_ids(db: &Db, convs: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    Ok(crate::db::linked(db, LABELS, convs).await?)
}

/// [`label_ids`] inside a transaction.
pub async fn label_ids_in(tx: &mut Tx, convs: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    Ok(crate::db::linked_in(tx, LABELS, convs).await?)
}

const LABELS: Links = Links { table: "conversation_labels", from: "conversation_id", to: "label_id" };

const ACCESS: Links = Links { table: "conversation_access", from: "conversation_id", to: "user_id" };

/// Members explicitly given access to each conversation (sorted), in one query.
pub async fn access_ids_of(db: &Db, convs: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    Ok(crate::db::linked(db, ACCESS, convs).await?)
}

/// Members explicitly given access to a conversation.
pub async fn access_ids(db: &Db, id: Uuid) -> Result<Vec<Uuid>> {
    Ok(access_ids_of(db, &[id]).await?.remove(&id).unwrap_or_default())
}

/// A visible conversation as answered to `v` (with `can`).
pub async fn answer(db: &Db, v: &Viewer, c: &Conversation) -> Result<ConversationView> {
    Ok(c.view_for(v, access_ids(db, c.id).await?))
}

/// Conversations as answered to `v` (with `can`), their labels loaded.
pub async fn answers(db: &Db, v: &Viewer, mut rows: Vec<Conversation>) -> Result<Vec<ConversationView>> {
    let ids: Vec<Uuid> = rows.iter().map(|c| c.id).collect();
    let mut labels = label_ids(db, &ids).await?;
    let mut access = access_ids_of(db, &ids).await?;
    Ok(rows
        .iter_mut()
        .map(|c| {
            c.label_ids = labels.remove(&c.id).unwrap_or_default();
            c.view_for(v, access.remove(&c.id).unwrap_or_default())
        })
        .collect())
}

/// Emits `conversation.*` of `c` as it is now.
pub fn emit(w: &mut Work, e: fn(ConversationView) -> Event, c: &Conversation) {
    w.emit(c.event(e));
}

/// Moves the conversation's `updated_at` to now.
pub async fn touch(tx: &mut Tx, now: DateTime<Utc>, id: Uuid) -> Result<()> {
    on_tx!(tx, |x| sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(x)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Longest accepted search text (`q`).
pub const MAX_SEARCH: usize = 100;

/// `q`: (a LIKE pattern on the lower-cased lead name, and one on phone digits when `q` has
/// at least three digits and nothing but digits and phone punctuation). 400 when empty, too
/// long or holding control characters.
pub fn search_patterns(q: &str) -> Result<(String, Option<String>)> {
    let q = q.trim();
    if q.is_empty() || q.chars().count() > MAX_SEARCH || q.chars().any(char::is_control) {
        return Err(Error::bad_request(
            "invalid_filter",
            format!("q must be 1 to {MAX_SEARCH} characters without control characters"),
        ));
    }
    let escape = |s: &str| s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let name = format!("%{}%", escape(&q.to_lowercase()));
    let phone_like = q.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let phone = (phone_like && digits.len() >= 3).then(|| format!("%{digits}%"));
    Ok((name, phone))
}

/// The list's filters, keyset position and order: newest message first (`COALESCE(last_message_at, created_at)`, the
/// expression the `conversations_recent` indexes hold), so a label, status, assignment or read
/// change never moves a conversation. `($11, $12)` is a row-value keyset (a far-future sentinel
/// on the first page); the plain `<= $11` beside it is what makes later pages an index range
/// (SQLite does not take a row value over an expression as one) instead of a scan from the
/// newest row. `$17`/`$18`: the viewer's team view (show others' / unassigned ones).
const LIST_TAIL: &str = "AND ($6 IS NULL OR c.status = $6) \
     AND ($7 IS NULL OR c.assignee_id = $7) \
     AND ($8 IS NULL OR EXISTS (SELECT 1 FROM conversation_labels f WHERE f.conversation_id = c.id AND f.label_id = $8)) \
     AND ($9 IS NULL OR ($9 AND c.assignee_id IS NULL) OR (NOT $9 AND c.assignee_id IS NOT NULL)) \
     AND ($10 IS NULL OR c.lead_id = $10) \
     AND COALESCE(c.last_message_at, c.created_at) <= $11 \
     AND (COALESCE(c.last_message_at, c.created_at), c.id) < ($11, $12) \
     AND ($14 IS NULL OR EXISTS (SELECT 1 FROM lead_groups g WHERE g.lead_id = c.lead_id AND g.group_id = $14)) \
     AND ($15 IS NULL OR lower(l.name) LIKE $15 ESCAPE '\\' \
          OR ($16 IS NOT NULL AND (l.phone LIKE $16 OR c.contact_phone LIKE $16))) \
     AND ($17 OR c.assignee_id IS NULL OR c.assignee_id = $2) \
     AND ($18 OR c.assignee_id IS NOT NULL) \
     ORDER BY COALESCE(c.last_message_at, c.created_at) DESC, c.id DESC LIMIT $13";

/// Walks the workspace's conversations newest first, keeping the visible ones: right for
/// viewers who see much of the inbox (admins, `view_others_leads`, `view_unassigned`).
static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLS} FROM conversations c JOIN leads l ON l.id = c.lead_id \
         WHERE c.workspace_id = $1 AND {} {LIST_TAIL}",
        *CONV_VISIBLE
    )
});

/// For a member without those flags only their own, label-granted and explicitly shared
/// conversations can be visible. Their own are the next page of the same query restricted to
/// them (an index walk on `conversations_assignee`), the granted and shared ones are usually
/// few; the page is taken from those candidates instead of walking the whole inbox to find
/// one conversation in fifty. The policy predicate still decides.
static LIST_NARROW: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLS} FROM conversations c JOIN leads l ON l.id = c.lead_id \
         WHERE c.id IN (SELECT own.id FROM (SELECT c.id FROM conversations c JOIN leads l ON l.id = c.lead_id \
                 WHERE c.workspace_id = $1 AND c.assignee_id = $2 {LIST_TAIL}) own \
             UNION SELECT cl.conversation_id FROM conversation_labels cl \
                 JOIN member_labels ml ON ml.label_id = cl.label_id WHERE ml.user_id = $2 \
             UNION SELECT ca.conversation_id FROM conversation_access ca WHERE ca.user_id = $2) \
         AND {} {LIST_TAIL}",
        *CONV_VISIBLE
    )
});

/// Keyset position of the first page: after everything.
fn list_start() -> (DateTime<Utc>, Uuid) {
    (DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z").expect("valid time").with_timezone(&Utc), Uuid::max())
}

/// The filters of a conversation list.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub status: Option<ConversationStatus>,
    pub assignee: Option<Uuid>,
    pub label: Option<Uuid>,
    pub unassigned: Option<bool>,
    pub lead: Option<Uuid>,
    pub group: Option<Uuid>,
    /// From [`search_patterns`].
    pub name_pattern: Option<String>,
    pub phone_pattern: Option<String>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
    /// The viewer's team view (only ever narrows the list).
    pub team_view: TeamView,
}

/// A page of the conversations `v` sees, newest message first, and the next cursor.
pub async fn list(db: &Db, v: &Viewer, f: &ListFilter) -> Result<(Vec<Conversation>, Option<String>)> {
    let after = f.after.unwrap_or_else(list_start);
    let (name_pattern, phone_pattern) = (f.name_pattern.clone(), f.phone_pattern.clone());
    let sql = match list_strategy(v) {
        ListStrategy::Narrow => LIST_NARROW.as_str(),
        ListStrategy::Wide => LIST.as_str(),
    };
    let mut rows: Vec<Conversation> = on_db!(db, |p| bind_viewer!(sqlx::query_as(sql), v)
        .bind(f.status)
        .bind(f.assignee)
        .bind(f.label)
        .bind(f.unassigned)
        .bind(f.lead)
        .bind(after.0)
        .bind(after.1)
        .bind(f.limit + 1)
        .bind(f.group)
        .bind(name_pattern)
        .bind(phone_pattern)
        .bind(f.team_view.show_others)
        .bind(f.team_view.show_unassigned)
        .fetch_all(p)
        .await)?;
    let next = if rows.len() as i64 > f.limit {
        rows.truncate(f.limit as usize);
        rows.last().map(|c| cursor::encode(c.list_at(), c.id))
    } else {
        None
    };
    Ok((rows, next))
}

/// Messages before a position, newest first: `$2` time (NULL: from the newest), `$3` seq and
/// `$5` whether the position is a note (a note sorts after the messages of its time).
const PAGE: &str = " WHERE m.conversation_id = $1 \
    AND ($2 IS NULL OR m.created_at < $2 OR (m.created_at = $2 AND ($5 OR m.seq < $3))) \
    ORDER BY m.created_at DESC, m.seq DESC LIMIT $4";

/// A page of a visible conversation's messages and notes, oldest first: the latest `limit`, or
/// those just older than the message or note `before`. They are in time order, a message
/// before a note of the same time, then in arrival order.
pub async fn message_page(
    db: &Db,
    conv: &Visible<Conversation>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<(Vec<ChatItem>, Option<String>)> {
    let anchor: Option<(DateTime<Utc>, i64, bool)> = match before {
        None => None,
        Some(b) => {
            let message: Option<(DateTime<Utc>, i64)> = on_db!(db, |p| sqlx::query_as(
                "SELECT created_at, seq FROM messages WHERE id = $1 AND conversation_id = $2"
            )
            .bind(b)
            .bind(conv.id)
            .fetch_optional(p)
            .await)?;
            let found = match message {
                Some((at, seq)) => Some((at, seq, false)),
                None => messages::note_position(db, conv.id, b).await?.map(|(at, seq)| (at, seq, true)),
            };
            Some(found.ok_or_else(|| {
                Error::bad_request("invalid_cursor", "before is not a message or note of this conversation")
            })?)
        }
    };
    let sql = format!("{}{PAGE}", messages::SELECT);
    let rows: Vec<MessageRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(conv.id)
        .bind(anchor.map(|a| a.0))
        .bind(anchor.map(|a| a.1))
        .bind(limit + 1)
        .bind(anchor.is_some_and(|a| a.2))
        .fetch_all(p)
        .await)?;
    let notes = messages::notes_page(db, conv.id, anchor, limit + 1).await?;
    // Newest first by (time, message before note, seq), the two lists merged.
    let mut keyed: Vec<(PageKey, Item)> = rows
        .into_iter()
        .map(|m| ((m.created_at, false, m.seq), Item::Message(Box::new(m))))
        .chain(notes.into_iter().map(|(seq, n)| ((n.created_at, true, seq), Item::Note(n))))
        .collect();
    keyed.sort_by_key(|(key, _)| std::cmp::Reverse(*key));
    let more = keyed.len() as i64 > limit;
    keyed.truncate(limit as usize);
    keyed.reverse();
    let next = if more { keyed.first().map(|(_, i)| i.id().to_string()) } else { None };
    let message_rows: Vec<MessageRow> = keyed
        .iter()
        .filter_map(|(_, i)| match i {
            Item::Message(m) => Some((**m).clone()),
            Item::Note(_) => None,
        })
        .collect();
    let mut rendered = messages::render(db, &message_rows).await?.into_iter();
    let items = keyed
        .into_iter()
        .map(|(_, i)| match i {
            Item::Message(_) => ChatItem::Message(Box::new(rendered.next().expect("one view per message row"))),
            Item::Note(n) => ChatItem::Note(n),
        })
        .collect();
    Ok((items, next))
}

/// Where an item stands in a conversation: its time, whether it is a note (after the messages
/// of its time), its seq.
type PageKey = (DateTime<Utc>, bool, i64);

/// A message row or a note, while a page is merged.
enum Item {
    Message(Box<MessageRow>),
    Note(NoteView),
}

impl Item {
    fn id(&self) -> Uuid {
        match self {
            Item::Message(m) => m.id,
            Item::Note(n) => n.id,
        }
    }
}

/// Whether member `user` of `workspace` is the assignee of any conversation (so may reply
/// somewhere: uploading files is for them).
pub async fn has_assigned(db: &Db, workspace: Uuid, user: Uuid) -> Result<bool> {
    Ok(on_db!(db, |p| sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM conversations WHERE workspace_id = $1 AND assignee_id = $2)"
    )
    .bind(workspace)
    .bind(user)
    .fetch_one(p)
    .await)?)
}
