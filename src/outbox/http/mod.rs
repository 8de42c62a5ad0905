//! The outbox's routes: sending a reply, marking a conversation read, and media.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tracing::instrument;
use uuid::Uuid;

pub mod media;

use crate::api::Api;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::events::Work;
use crate::extract::{Json, Path};
use crate::inbox::conversations;
use crate::outbox::{MediaRef, SendBody};
use crate::state::AppState;
use crate::views::conversation::ConversationView;
use crate::views::message::MessageView;

pub fn routes() -> Api {
    Api::new()
        .post("/conversations/{id}/messages", send)
        .post("/conversations/{id}/read", mark_read)
        .post("/conversations/{id}/typing", typing)
        .post("/conversations/{id}/media", media::upload)
}

/// `POST /conversations/{id}/messages`: stores the reply as `queued` with its outbox row and
/// events in one transaction, and wakes the sender. An `Idempotency-Key` answers a repeated
/// request with the message the first one created.
#[utoipa::path(
    post,
    path = "/conversations/{id}/messages",
    tag = "outbox",
    description = "Queues a reply (text, template or media) for the outbox; an idempotency key makes retries safe.",
    request_body = SendBody,
    responses((status = 202, description = "Queued for sending (or the message an earlier request with the same idempotency key queued).", body = MessageView))
)]
#[instrument(skip_all)]
pub async fn send(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<SendBody>,
) -> Result<(StatusCode, Json<MessageView>)> {
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
        && let Some(existing) = crate::outbox::idempotent_message(&st.db, user.id, k).await?
    {
        return Ok((StatusCode::ACCEPTED, Json(existing)));
    }
    let now = st.clock.now();
    let (mut body, page) = match body {
        SendBody::Content { content_id, reply_to } => {
            let lead = crate::inbox::leads::get_visible(&st.db, &user.viewer(), conv.lead_id).await?;
            let p = crate::content::prepare_send(
                &st.db,
                &user.viewer(),
                content_id,
                &lead,
                &user.name,
                &st.config.public_url,
            )
            .await?;
            match p.file {
                Some(f) => (SendBody::media(f.kind, MediaRef::upload(f.upload_id, f.caption), reply_to), None),
                None => (SendBody::Text { text: p.text, reply_to }, p.page),
            }
        }
        other => (other, None),
    };
    if let Some((kind, media)) = body.media_mut()
        && let Some(upload_id) = media.upload_id()
    {
        let upload = crate::media::usable_upload(&st.db, &user.viewer(), upload_id).await?;
        if upload.kind.as_str() != kind {
            return Err(Error::unprocessable(
                "media_type_mismatch",
                format!("upload {upload_id} is a {} file, not {kind}", upload.kind),
            ));
        }
        media.attach(kind, &upload);
    }
    let mut out = crate::outbox::validate(body)?;
    if !out.is_template() && !crate::outbox::window_open(&conv, now) {
        return Err(Error::unprocessable(
            "window_closed",
            "the 24-hour customer service window is closed: only templates can be sent",
        ));
    }
    if crate::outbox::connected_number(&st.db, conv.number_id).await?.is_none() {
        return Err(Error::unprocessable("number_disconnected", "this conversation's number is disconnected"));
    }
    if let Some((name, language)) = out.template_name() {
        crate::inbox::templates::check_send(&st.db, conv.number_id, conv.lead_id, name, language).await?;
        // The chat shows what the contact reads.
        let components = out.content.as_ref().and_then(|c| c.pointer("/template/components"));
        let rendered = crate::inbox::templates::render(&st.db, conv.number_id, name, language, components).await?;
        out.text = rendered;
    }
    let context_wamid = match out.reply_to {
        None => None,
        Some(r) => Some(crate::outbox::quoted_wamid(&st.db, conv.id, r).await?),
    };
    if let Some(w) = &context_wamid {
        out.target(w);
    }
    let gap = crate::workspace::session_gap(&st.db, st.config.session_gap_secs, conv.workspace_id).await?;
    let kind = out.kind;
    let mut work = Work::begin(&st.db, now).await?;
    let message = crate::outbox::queue_reply(&mut work, &conv, user.id, out, context_wamid, gap).await?;
    if let Some((content_id, token)) = &page {
        crate::content::pages::record_link(
            work.tx(),
            conv.workspace_id,
            *content_id,
            conv.lead_id,
            user.id,
            token,
            now,
        )
        .await?;
    }
    if let Some(k) = &key
        && !crate::outbox::claim_key(work.tx(), user.id, k, message.id, now).await?
    {
        // The same request won a moment ago: roll back ours and answer with theirs.
        work.rollback().await?;
        return match crate::outbox::idempotent_message(&st.db, user.id, k).await? {
            Some(existing) => Ok((StatusCode::ACCEPTED, Json(existing))),
            None => Err(Error::conflict("idempotency_conflict", "a request with this Idempotency-Key is in progress")),
        };
    }
    work.commit(&st.hub).await?;
    st.outbox_wake.notify_one();
    tracing::info!(message_id = %message.id, conversation_id = %conv.id, kind, "reply queued");
    Ok((StatusCode::ACCEPTED, Json(message)))
}

/// `POST /conversations/{id}/read`: marks inbound messages read here and tells Meta (blue
/// ticks) for the newest one.
#[utoipa::path(
    post,
    path = "/conversations/{id}/read",
    tag = "outbox",
    description = "Marks the conversation's inbound messages read and tells Meta (blue ticks).",
    responses((status = 200, description = "OK.", body = ConversationView))
)]
#[instrument(skip_all)]
pub async fn mark_read(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<ConversationView>> {
    let conv = conversations::get_visible(&st.db, &user.viewer(), id).await?;
    let latest = crate::outbox::latest_unread(&st.db, conv.id).await?;
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let view = crate::outbox::mark_read(&mut work, &conv, latest).await?;
    work.commit(&st.hub).await?;
    st.outbox_wake.notify_one();
    Ok(Json(view))
}

/// `POST /conversations/{id}/typing` (the assignee): Meta shows the contact "typing…", with the
/// read receipt of their newest message. 202: it is queued.
#[utoipa::path(
    post,
    path = "/conversations/{id}/typing",
    tag = "outbox",
    description = "Shows the contact a typing indicator (the assignee only).",
    responses((status = 202, description = "The indicator was sent (or is still showing)."))
)]
#[instrument(skip_all)]
pub async fn typing(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    let conv = conversations::get_visible(&st.db, &user.viewer(), id).await?;
    crate::inbox::ownership::ensure_can_reply(&conv, &user.viewer())?;
    if crate::outbox::connected_number(&st.db, conv.number_id).await?.is_none() {
        return Err(Error::unprocessable("number_disconnected", "this conversation's number is disconnected"));
    }
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    if crate::outbox::typing(&mut work, &conv).await? {
        work.commit(&st.hub).await?;
        st.outbox_wake.notify_one();
    } else {
        work.rollback().await?;
    }
    Ok(StatusCode::ACCEPTED)
}
