//! Replies: the send API stores the message as `queued` with an outbox row and its events in
//! one transaction; the worker sends it through the Graph API, retrying with backoff on rate
//! limits and transient errors, failing with Meta's code on permanent ones.
//!
//! Delivery is at-least-once: if the process dies after Meta accepted a message but before the
//! returned wamid is stored, the row's claim expires and it is sent again (Meta does not
//! deduplicate sends; `biz_opaque_callback_data` carries our message id so the duplicate can be
//! recognised in status webhooks).

pub mod graph;
pub mod http;
pub mod media;
pub mod throughput;
pub mod worker;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::events::Work;
use crate::inbox::chat::{self, Chat, NewMessage, Recording};
use crate::inbox::conversations::Conversation;
use crate::timeline::NewActivity;
use crate::views::conversation::ConversationView;
use crate::views::message::{Direction, MessageStatus, MessageView};
use crate::views::timeline::ActivityKind;
use crate::{on_db, on_tx, string_enum};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SendBody {
    Text {
        text: String,
        reply_to: Option<Uuid>,
    },
    Template {
        template: Template,
        reply_to: Option<Uuid>,
    },
    Image {
        media: MediaRef,
        /// The caption may also stand beside `media` (as inside it).
        caption: Option<String>,
        reply_to: Option<Uuid>,
    },
    Video {
        media: MediaRef,
        /// The caption may also stand beside `media` (as inside it).
        caption: Option<String>,
        reply_to: Option<Uuid>,
    },
    Audio {
        media: MediaRef,
        /// The caption may also stand beside `media` (as inside it).
        caption: Option<String>,
        reply_to: Option<Uuid>,
    },
    Document {
        media: MediaRef,
        /// The caption may also stand beside `media` (as inside it).
        caption: Option<String>,
        reply_to: Option<Uuid>,
    },
    /// An emoji on a message of the conversation (an empty one removes ours).
    Reaction {
        reaction: ReactionRef,
    },
    /// An item of the content library, resolved to text by the handler before [`validate`].
    Content {
        content_id: Uuid,
        reply_to: Option<Uuid>,
    },
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactionRef {
    message_id: Uuid,
    emoji: String,
}

#[derive(Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct Template {
    name: String,
    language: Value,
    components: Option<Value>,
}

impl Template {
    /// A template send the server makes itself: `language` is its code, `components` the
    /// Graph API's array (body parameters), if any.
    pub fn new(name: &str, language: &str, components: Option<Value>) -> Template {
        Template { name: name.to_owned(), language: Value::String(language.to_owned()), components }
    }
}

#[derive(Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// A file of the media store (`POST /api/v1/media`): the outbox uploads it to Meta.
    #[serde(skip_serializing_if = "Option::is_none")]
    upload_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caption: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<String>,
    /// Filled in from the upload (never taken from the client), for the chat to show.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    mime_type: Option<String>,
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    size: Option<i64>,
}

impl MediaRef {
    /// Media naming upload `upload_id`, with an optional caption.
    pub fn upload(upload_id: Uuid, caption: Option<String>) -> MediaRef {
        MediaRef {
            link: None,
            id: None,
            upload_id: Some(upload_id),
            caption,
            filename: None,
            mime_type: None,
            size: None,
        }
    }

    pub fn upload_id(&self) -> Option<Uuid> {
        self.upload_id
    }

    /// Describes the upload it names: its type and size, and (a document) its file name
    /// unless the sender gave one.
    pub fn attach(&mut self, kind: &str, u: &crate::media::Upload) {
        self.mime_type = Some(u.mime_type.clone());
        self.size = Some(u.size);
        if kind == "document" && self.filename.is_none() {
            self.filename = Some(u.filename.clone());
        }
    }
}

impl SendBody {
    /// A media message of `kind` (`image`, `video`, `audio` or `document`).
    pub fn media(kind: crate::media::MediaKind, media: MediaRef, reply_to: Option<Uuid>) -> SendBody {
        use crate::media::MediaKind;
        match kind {
            MediaKind::Image => SendBody::Image { media, caption: None, reply_to },
            MediaKind::Video => SendBody::Video { media, caption: None, reply_to },
            MediaKind::Audio => SendBody::Audio { media, caption: None, reply_to },
            MediaKind::Document => SendBody::Document { media, caption: None, reply_to },
        }
    }

    /// The media of a media message, with its kind.
    pub fn media_mut(&mut self) -> Option<(&'static str, &mut MediaRef)> {
        match self {
            SendBody::Image { media, .. } => Some(("image", media)),
            SendBody::Video { media, .. } => Some(("video", media)),
            SendBody::Audio { media, .. } => Some(("audio", media)),
            SendBody::Document { media, .. } => Some(("document", media)),
            _ => None,
        }
    }
}

/// A validated outgoing message, ready to store.
pub struct Outgoing {
    pub kind: &'static str,
    pub text: Option<String>,
    pub media: Option<Value>,
    pub content: Option<Value>,
    pub reply_to: Option<Uuid>,
}

impl Outgoing {
    /// Only templates may be sent once the customer service window is closed.
    pub fn is_template(&self) -> bool {
        self.kind == "template"
    }

    /// The message it answers is `wamid` (a reaction names it as its target).
    pub fn target(&mut self, wamid: &str) {
        if let Some(r) = self.content.as_mut().and_then(|c| c.get_mut("reaction")) {
            r["message_id"] = Value::String(wamid.to_owned());
        }
    }

    /// A template's name and language code, as the send names them.
    pub fn template_name(&self) -> Option<(&str, &str)> {
        let t = self.content.as_ref()?.get("template")?;
        let lang = t["language"].as_str().or_else(|| t["language"]["code"].as_str())?;
        Some((t.get("name")?.as_str()?, lang))
    }
}

/// A reaction's stored `content`: the Graph API's `reaction` object.
#[derive(serde::Serialize)]
struct ReactionContent {
    reaction: ReactionPayload,
}

#[derive(serde::Serialize)]
struct ReactionPayload {
    message_id: String,
    emoji: String,
}

/// A template message's stored `content`.
#[derive(serde::Serialize)]
struct TemplateContent {
    template: Template,
}

pub fn validate(body: SendBody) -> Result<Outgoing> {
    let media = |kind: &'static str, mut m: MediaRef, caption: Option<String>, reply_to| -> Result<Outgoing> {
        if caption.is_some() {
            if m.caption.is_some() {
                return Err(Error::unprocessable("invalid_media", "give the caption once, beside media or in it"));
            }
            m.caption = caption.filter(|c| !c.is_empty());
        }
        match (&m.link, &m.id, &m.upload_id) {
            (Some(l), None, None) if (l.starts_with("https://") || l.starts_with("http://")) && l.len() <= 2048 => {}
            (None, Some(id), None) if !id.is_empty() && id.len() <= 128 => {}
            (None, None, Some(_)) if m.mime_type.is_some() => {}
            _ => {
                return Err(Error::unprocessable(
                    "invalid_media",
                    "media needs exactly one of an http(s) link, a media id or an upload_id",
                ));
            }
        }
        if m.filename.as_ref().is_some_and(|f| f.chars().count() > 240) {
            return Err(Error::unprocessable("invalid_media", "a filename has at most 240 characters"));
        }
        if m.caption.as_ref().is_some_and(|c| c.chars().count() > 1024) || (kind == "audio" && m.caption.is_some()) {
            return Err(Error::unprocessable("invalid_media", "captions have at most 1024 characters (none on audio)"));
        }
        let caption = m.caption.clone();
        Ok(Outgoing { kind, text: caption, media: Some(serde_json::to_value(&m)?), content: None, reply_to })
    };
    match body {
        SendBody::Text { text, reply_to } => {
            let n = text.chars().count();
            if text.trim().is_empty() || n > 4096 {
                return Err(Error::unprocessable("invalid_text", "text needs 1 to 4096 characters"));
            }
            Ok(Outgoing { kind: "text", text: Some(text), media: None, content: None, reply_to })
        }
        SendBody::Template { template, reply_to } => {
            let lang_ok = template.language.as_str().is_some_and(|l| !l.is_empty())
                || template.language["code"].as_str().is_some_and(|l| !l.is_empty());
            if template.name.trim().is_empty() || template.name.len() > 512 || !lang_ok {
                return Err(Error::unprocessable("invalid_template", "a template needs a name and a language code"));
            }
            if template.components.as_ref().is_some_and(|c| !c.is_array()) {
                return Err(Error::unprocessable("invalid_template", "components must be an array"));
            }
            let content = serde_json::to_value(TemplateContent { template })?;
            Ok(Outgoing { kind: "template", text: None, media: None, content: Some(content), reply_to })
        }
        SendBody::Image { media: m, caption, reply_to } => media("image", m, caption, reply_to),
        SendBody::Video { media: m, caption, reply_to } => media("video", m, caption, reply_to),
        SendBody::Audio { media: m, caption, reply_to } => media("audio", m, caption, reply_to),
        SendBody::Document { media: m, caption, reply_to } => media("document", m, caption, reply_to),
        SendBody::Reaction { reaction } => {
            if reaction.emoji.chars().count() > 16 {
                return Err(Error::unprocessable("invalid_reaction", "a reaction is one emoji (empty removes it)"));
            }
            // The target's wamid is filled in by [`Outgoing::target`] once it is known.
            let content = serde_json::to_value(ReactionContent {
                reaction: ReactionPayload { message_id: String::new(), emoji: reaction.emoji.clone() },
            })?;
            let text = Some(reaction.emoji).filter(|e| !e.is_empty());
            Ok(Outgoing {
                kind: "reaction",
                text,
                media: None,
                content: Some(content),
                reply_to: Some(reaction.message_id),
            })
        }
        SendBody::Content { .. } => Err(Error::unprocessable("invalid_type", "content is sent as its text")),
    }
}

string_enum! {
    /// What an outbox row asks of the Graph API.
    pub enum JobKind {
        /// Send the stored message `message_id`.
        Message = "message",
        /// Mark the inbound message `payload.wamid` read (blue ticks).
        Read = "read",
    }
}

/// An outbox row's `payload`: `{}` for a message, `{"wamid": …}` for a read receipt.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct JobPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    /// With the read receipt, show the contact "typing…" (until we send or 25 s pass).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub typing: bool,
}

const INSERT_OUTBOX: &str = "INSERT INTO outbox (id, workspace_id, number_id, message_id, kind, payload, state, due_at, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)";

/// Whether the customer service window lets a free-form message through now.
pub fn window_open(conv: &Conversation, now: DateTime<Utc>) -> bool {
    !conv.template_required && conv.window_expires_at().is_some_and(|end| end > now)
}

/// The `phone_number_id` of a number, if it is connected.
pub async fn connected_number(db: &Db, number_id: Uuid) -> Result<Option<String>> {
    Ok(on_db!(db, |p| sqlx::query_scalar(
        "SELECT phone_number_id FROM numbers WHERE id = $1 AND disconnected_at IS NULL"
    )
    .bind(number_id)
    .fetch_optional(p)
    .await)?)
}

/// The wamid of the message `reply_to` of conversation `conv` (a reply quotes it); 422 when
/// it is not a delivered message of this conversation.
pub async fn quoted_wamid(db: &Db, conv: Uuid, reply_to: Uuid) -> Result<String> {
    on_db!(db, |p| sqlx::query_scalar::<_, Option<String>>(
        "SELECT wamid FROM messages WHERE id = $1 AND conversation_id = $2"
    )
    .bind(reply_to)
    .bind(conv)
    .fetch_optional(p)
    .await)?
    .flatten()
    .ok_or_else(|| Error::unprocessable("invalid_reply_to", "reply_to is not a delivered message of this conversation"))
}

/// A member's reply, queued: the message stored as `queued` (through the chat write path,
/// with its events and timeline session), its outbox row, and its `message_sent` activity.
pub async fn queue_reply(
    work: &mut Work,
    conv: &Conversation,
    member: Uuid,
    out: Outgoing,
    context_wamid: Option<String>,
    session_gap: i64,
) -> Result<MessageView> {
    queue(work, conv, Some(member), out, context_wamid, session_gap).await
}

/// [`queue_reply`] of a message sent by `member`, or by the server itself (`None`: a
/// distributed lead's template to its recipient).
pub async fn queue(
    work: &mut Work,
    conv: &Conversation,
    member: Option<Uuid>,
    out: Outgoing,
    context_wamid: Option<String>,
    session_gap: i64,
) -> Result<MessageView> {
    let now = work.now();
    let mut chat = Chat::from(conv);
    let new = NewMessage {
        id: Uuid::now_v7(),
        wamid: None,
        direction: Direction::Out,
        kind: out.kind.to_owned(),
        text: out.text,
        media: out.media,
        content: out.content,
        context_wamid,
        forwarded: false,
        status: MessageStatus::Queued,
        sent_by_user_id: member,
        sent_by_app: false,
        created_at: now,
        sent_at: None,
        error: None,
    };
    let how = Recording { session_gap, newest: true, answer: true, quiet: false };
    let stored = chat::record(work, &mut chat, new, &how).await?;
    let message = stored.and_then(|s| s.view).ok_or_else(|| Error::internal("reply not stored"))?;
    enqueue(
        work.tx(),
        now,
        conv.workspace_id,
        conv.number_id,
        Some(message.id),
        JobKind::Message,
        &JobPayload::default(),
    )
    .await?;
    let activity = ReplyActivity { message_id: message.id, kind: out.kind };
    let data = serde_json::to_value(&activity)?;
    let sent = NewActivity::new(conv.workspace_id, conv.lead_id, ActivityKind::MessageSent, data).conversation(conv.id);
    crate::timeline::record(work, sent.by(member)).await?;
    Ok(message)
}

/// The data of a `message_sent` activity.
#[derive(Serialize)]
struct ReplyActivity {
    message_id: Uuid,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// Ties an `Idempotency-Key` to the message it created; false when the key was taken (by the
/// same request, a moment ago).
pub async fn claim_key(tx: &mut Tx, user: Uuid, key: &str, message_id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    let claimed = on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, message_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(user)
        .bind(key)
        .bind(message_id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(claimed > 0)
}

/// The message an `Idempotency-Key` of `user` created, if any.
pub async fn idempotent_message(db: &Db, user: Uuid, key: &str) -> Result<Option<MessageView>> {
    let existing: Option<Uuid> =
        on_db!(db, |p| sqlx::query_scalar("SELECT message_id FROM idempotency_keys WHERE user_id = $1 AND key = $2")
            .bind(user)
            .bind(key)
            .fetch_optional(p)
            .await)?;
    let Some(id) = existing else { return Ok(None) };
    let sql = format!("{} WHERE m.id = $1", crate::inbox::messages::SELECT);
    let rows: Vec<crate::inbox::messages::MessageRow> =
        on_db!(db, |p| sqlx::query_as(&sql).bind(id).fetch_all(p).await)?;
    Ok(crate::inbox::messages::render(db, &rows).await?.into_iter().next())
}

/// Adds a Graph API call to the outbox (in the caller's transaction).
pub async fn enqueue(
    tx: &mut Tx,
    now: DateTime<Utc>,
    workspace_id: Uuid,
    number_id: Uuid,
    message_id: Option<Uuid>,
    kind: JobKind,
    payload: &JobPayload,
) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(INSERT_OUTBOX)
        .bind(Uuid::now_v7())
        .bind(workspace_id)
        .bind(number_id)
        .bind(message_id)
        .bind(kind.as_str())
        .bind(sqlx::types::Json(payload))
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Marks a conversation read here, and queues the read receipt for its newest unread inbound
/// message (`latest`) when its number is connected.
pub async fn mark_read(work: &mut Work, conv: &Conversation, latest: Option<String>) -> Result<ConversationView> {
    let view = chat::mark_read(work, conv.workspace_id, conv.id).await?;
    let connected: Option<Uuid> =
        on_tx!(work.tx(), |c| sqlx::query_scalar("SELECT id FROM numbers WHERE id = $1 AND disconnected_at IS NULL")
            .bind(conv.number_id)
            .fetch_optional(c)
            .await)?;
    if let (Some(wamid), Some(_)) = (latest, connected) {
        let now = work.now();
        let payload = JobPayload { wamid: Some(wamid), typing: false };
        enqueue(work.tx(), now, conv.workspace_id, conv.number_id, None, JobKind::Read, &payload).await?;
    }
    Ok(view)
}

/// The newest inbound message of a conversation not read yet, if it has a wamid.
pub async fn latest_unread(db: &Db, conv: Uuid) -> Result<Option<String>> {
    let latest: Option<Option<String>> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT wamid FROM messages WHERE conversation_id = $1 AND direction = 'in' AND status <> 'read' \
         ORDER BY created_at DESC, seq DESC LIMIT 1"
    )
    .bind(conv)
    .fetch_optional(p)
    .await)?;
    Ok(latest.flatten())
}

/// The member is typing a reply: queues Meta's typing indicator, with the read receipt of the
/// newest inbound message (Meta shows "typing…" only for a message it can mark read). Nothing
/// to queue when the contact never wrote.
pub async fn typing(work: &mut Work, conv: &Conversation) -> Result<bool> {
    let newest: Option<Option<String>> = on_tx!(work.tx(), |c| sqlx::query_scalar(
        "SELECT wamid FROM messages WHERE conversation_id = $1 AND direction = 'in' AND type <> 'system' \
         ORDER BY created_at DESC, seq DESC LIMIT 1"
    )
    .bind(conv.id)
    .fetch_optional(c)
    .await)?;
    let Some(wamid) = newest.flatten() else { return Ok(false) };
    let now = work.now();
    let payload = JobPayload { wamid: Some(wamid), typing: true };
    enqueue(work.tx(), now, conv.workspace_id, conv.number_id, None, JobKind::Read, &payload).await?;
    Ok(true)
}
