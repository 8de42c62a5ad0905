//! Replies: the send API stores the message as `queued` with an outbox row and its events in
//! one transaction; the worker sends it through the Graph API, retrying with backoff on rate
//! limits and transient errors, failing with Meta's code on permanent ones.
//!
//! Delivery is at-least-once: if the process dies after Meta accepted a message but before the
//! returned wamid is stored, the row's claim expires and it is sent again (Meta does not
//! deduplicate sends; `biz_opaque_callback_data` carries our message id so the duplicate can be
//! recognised in status webhooks).

pub mod graph;
pub mod media;
pub mod worker;

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::events::{self, NewEvent};
use crate::extract::{Json, Path};
use crate::inbox::conversations::{self, Conversation};
use crate::inbox::messages;
use crate::state::AppState;
use crate::{on_db, on_tx};

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SendBody {
    Text { text: String, reply_to: Option<Uuid> },
    Template { template: Template, reply_to: Option<Uuid> },
    Image { media: MediaRef, reply_to: Option<Uuid> },
    Video { media: MediaRef, reply_to: Option<Uuid> },
    Audio { media: MediaRef, reply_to: Option<Uuid> },
    Document { media: MediaRef, reply_to: Option<Uuid> },
}

#[derive(Debug, Deserialize, serde::Serialize)]
pub struct Template {
    name: String,
    language: Value,
    components: Option<Value>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MediaRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caption: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<String>,
}

/// A validated outgoing message, ready to store.
struct Outgoing {
    kind: &'static str,
    text: Option<String>,
    media: Option<Value>,
    content: Option<Value>,
    reply_to: Option<Uuid>,
}

fn validate(body: SendBody) -> Result<Outgoing> {
    let media = |kind: &'static str, m: MediaRef, reply_to| -> Result<Outgoing> {
        match (&m.link, &m.id) {
            (Some(l), None) if (l.starts_with("https://") || l.starts_with("http://")) && l.len() <= 2048 => {}
            (None, Some(id)) if !id.is_empty() && id.len() <= 128 => {}
            _ => {
                return Err(Error::unprocessable(
                    "invalid_media",
                    "media needs exactly one of an http(s) link or a media id",
                ));
            }
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
            Ok(Outgoing {
                kind: "template",
                text: None,
                media: None,
                content: Some(json!({"template": template})),
                reply_to,
            })
        }
        SendBody::Image { media: m, reply_to } => media("image", m, reply_to),
        SendBody::Video { media: m, reply_to } => media("video", m, reply_to),
        SendBody::Audio { media: m, reply_to } => media("audio", m, reply_to),
        SendBody::Document { media: m, reply_to } => media("document", m, reply_to),
    }
}

const INSERT_MESSAGE: &str = "INSERT INTO messages (id, workspace_id, conversation_id, direction, type, text, media, content, \
    context_wamid, status, sent_by_user_id, created_at, received_at) \
    VALUES ($1, $2, $3, 'out', $4, $5, $6, $7, $8, 'queued', $9, $10, $10)";

const INSERT_OUTBOX: &str = "INSERT INTO outbox (id, workspace_id, number_id, message_id, kind, payload, state, due_at, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)";

static TOUCH: LazyLock<String> = LazyLock::new(|| {
    "UPDATE conversations SET last_message = $2, last_message_at = $3, updated_at = $3 WHERE id = $1".to_owned()
});

fn window_open(conv: &Conversation, now: DateTime<Utc>) -> bool {
    !conv.template_required && conv.window_expires_at().is_some_and(|end| end > now)
}

#[instrument(skip_all)]
pub async fn send(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<SendBody>,
) -> Result<(StatusCode, Json<Value>)> {
    let key = headers.get("idempotency-key").map(|k| k.to_str().map(str::to_owned));
    let key = match key {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= 200 => Some(k),
        Some(_) => {
            return Err(Error::bad_request("invalid_idempotency_key", "Idempotency-Key must be 1 to 200 characters"));
        }
    };
    let conv = conversations::get_visible(&st.db, &user.viewer(), id).await?;
    crate::inbox::ownership::ensure_can_reply(&conv, &user.viewer())?;
    if let Some(k) = &key
        && let Some(existing) = idempotent_message(&st, user.id, k).await?
    {
        return Ok((StatusCode::ACCEPTED, Json(existing)));
    }
    let out = validate(body)?;
    let now = st.clock.now();
    if out.kind != "template" && !window_open(&conv, now) {
        return Err(Error::unprocessable(
            "window_closed",
            "the 24-hour customer service window is closed: only templates can be sent",
        ));
    }
    let connected: Option<String> = on_db!(&st.db, |p| sqlx::query_scalar(
        "SELECT phone_number_id FROM numbers WHERE id = $1 AND disconnected_at IS NULL"
    )
    .bind(conv.number_id)
    .fetch_optional(p)
    .await)?;
    if connected.is_none() {
        return Err(Error::unprocessable("number_disconnected", "this conversation's number is disconnected"));
    }
    let context_wamid = match out.reply_to {
        None => None,
        Some(r) => Some(
            on_db!(&st.db, |p| sqlx::query_scalar::<_, Option<String>>(
                "SELECT wamid FROM messages WHERE id = $1 AND conversation_id = $2"
            )
            .bind(r)
            .bind(conv.id)
            .fetch_optional(p)
            .await)?
            .flatten()
            .ok_or_else(|| {
                Error::unprocessable("invalid_reply_to", "reply_to is not a delivered message of this conversation")
            })?,
        ),
    };
    let message_id = Uuid::now_v7();
    let mut tx = st.db.begin().await?;
    on_tx!(&mut tx, |c| sqlx::query(INSERT_MESSAGE)
        .bind(message_id)
        .bind(conv.workspace_id)
        .bind(conv.id)
        .bind(out.kind)
        .bind(&out.text)
        .bind(out.media.as_ref().map(sqlx::types::Json))
        .bind(out.content.as_ref().map(sqlx::types::Json))
        .bind(&context_wamid)
        .bind(user.id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if let Some(k) = &key {
        let claimed = on_tx!(&mut tx, |c| {
            sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, message_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
        )
        .bind(user.id)
        .bind(k)
        .bind(message_id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        })?;
        if claimed == 0 {
            // The same request won a moment ago: roll back ours and answer with theirs.
            tx.rollback().await?;
            return match idempotent_message(&st, user.id, k).await? {
                Some(existing) => Ok((StatusCode::ACCEPTED, Json(existing))),
                None => {
                    Err(Error::conflict("idempotency_conflict", "a request with this Idempotency-Key is in progress"))
                }
            };
        }
    }
    enqueue(&mut tx, now, conv.workspace_id, conv.number_id, Some(message_id), "message", json!({})).await?;
    let message = messages::json_in(&mut tx, message_id).await?;
    on_tx!(&mut tx, |c| sqlx::query(TOUCH.as_str())
        .bind(conv.id)
        .bind(sqlx::types::Json(messages::preview(&message)))
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let ws = conv.workspace_id;
    events::append(
        &mut tx,
        now,
        NewEvent::raw(ws, "message.created", message.clone()).conversation(conv.id).lead(conv.lead_id),
    )
    .await?;
    let conv_json = conversations::json_in(&mut tx, conv.id).await?;
    events::append(
        &mut tx,
        now,
        NewEvent::raw(ws, "conversation.updated", conv_json).conversation(conv.id).lead(conv.lead_id),
    )
    .await?;
    let gap = crate::workspace::session_gap(&st.db, st.config.session_gap_secs, ws).await?;
    let msg = crate::timeline::sessions::Msg { at: now, inbound: false, member: Some(user.id) };
    let data = json!({"message_id": message_id, "type": out.kind});
    let mut buffer = events::Buffer::default();
    let mut unit = events::Buffered { tx: &mut tx, events: &mut buffer, now };
    crate::timeline::sessions::on_message(&mut unit, conv.id, &msg, gap).await?;
    let sent = crate::views::timeline::ActivityKind::MessageSent;
    let a = crate::timeline::NewActivity::new(ws, conv.lead_id, sent, data).conversation(conv.id).by(user.id);
    crate::timeline::record(&mut unit, a).await?;
    buffer.flush(&mut tx).await?;
    st.commit(tx).await?;
    st.outbox_wake.notify_one();
    tracing::info!(message_id = %message_id, conversation_id = %conv.id, kind = out.kind, "reply queued");
    Ok((StatusCode::ACCEPTED, Json(message)))
}

async fn idempotent_message(st: &AppState, user: Uuid, key: &str) -> Result<Option<Value>> {
    let existing: Option<Uuid> = on_db!(&st.db, |p| sqlx::query_scalar(
        "SELECT message_id FROM idempotency_keys WHERE user_id = $1 AND key = $2"
    )
    .bind(user)
    .bind(key)
    .fetch_optional(p)
    .await)?;
    let Some(id) = existing else { return Ok(None) };
    let sql = format!("{} WHERE m.id = $1", messages::SELECT);
    let rows: Vec<messages::MessageRow> = on_db!(&st.db, |p| sqlx::query_as(&sql).bind(id).fetch_all(p).await)?;
    Ok(messages::render(&st.db, &rows).await?.into_iter().next())
}

/// Adds a Graph API call to the outbox (in the caller's transaction).
pub async fn enqueue(
    tx: &mut Tx,
    now: DateTime<Utc>,
    workspace_id: Uuid,
    number_id: Uuid,
    message_id: Option<Uuid>,
    kind: &str,
    payload: Value,
) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(INSERT_OUTBOX)
        .bind(Uuid::now_v7())
        .bind(workspace_id)
        .bind(number_id)
        .bind(message_id)
        .bind(kind)
        .bind(sqlx::types::Json(&payload))
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// `POST /conversations/{id}/read`: marks inbound messages read here and tells Meta (blue
/// ticks) for the newest one.
#[instrument(skip_all)]
pub async fn mark_read(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<Value>> {
    let conv = conversations::get_visible(&st.db, &user.viewer(), id).await?;
    let now = st.clock.now();
    let latest: Option<Option<String>> = on_db!(&st.db, |p| sqlx::query_scalar(
        "SELECT wamid FROM messages WHERE conversation_id = $1 AND direction = 'in' AND status <> 'read' \
         ORDER BY created_at DESC, seq DESC LIMIT 1"
    )
    .bind(conv.id)
    .fetch_optional(p)
    .await)?;
    let mut tx = st.db.begin().await?;
    on_tx!(&mut tx, |c| {
        sqlx::query(
        "UPDATE messages SET status = 'read', read_at = $1 WHERE conversation_id = $2 AND direction = 'in' AND status <> 'read'"
    )
    .bind(now)
    .bind(conv.id)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    on_tx!(&mut tx, |c| sqlx::query("UPDATE conversations SET unread_count = 0 WHERE id = $1")
        .bind(conv.id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let connected: Option<Uuid> =
        on_tx!(&mut tx, |c| sqlx::query_scalar("SELECT id FROM numbers WHERE id = $1 AND disconnected_at IS NULL")
            .bind(conv.number_id)
            .fetch_optional(c)
            .await)?;
    if let (Some(Some(wamid)), Some(_)) = (latest, connected) {
        enqueue(&mut tx, now, conv.workspace_id, conv.number_id, None, "read", json!({"wamid": wamid})).await?;
    }
    let conv_json = conversations::json_in(&mut tx, conv.id).await?;
    events::append(
        &mut tx,
        now,
        NewEvent::raw(conv.workspace_id, "conversation.updated", conv_json.clone())
            .conversation(conv.id)
            .lead(conv.lead_id),
    )
    .await?;
    st.commit(tx).await?;
    st.outbox_wake.notify_one();
    Ok(Json(conv_json))
}
