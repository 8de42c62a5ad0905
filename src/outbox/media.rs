//! `GET /api/v1/media/{message_id}`: inbound media, fetched lazily through the Graph API with
//! the number's token, cached in the database, served only to who can see the conversation.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::instrument;
use uuid::Uuid;

use super::graph::CallError;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::extract::Path;
use crate::inbox::conversations;
use crate::on_db;
use crate::state::AppState;

/// Largest media kept in the cache and served (bytes).
pub const MAX_MEDIA: usize = 16 << 20;

#[instrument(skip_all)]
pub async fn get(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Response> {
    let row: Option<(Uuid, Option<sqlx::types::Json<serde_json::Value>>)> =
        on_db!(&st.db, |p| sqlx::query_as("SELECT conversation_id, media FROM messages WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await)?;
    let (conv_id, media) = row.ok_or_else(Error::not_found)?;
    let conv = conversations::get_visible(&st.db, &user.viewer(), conv_id).await?;
    let media_id = media.as_ref().and_then(|m| m.0["id"].as_str().map(str::to_owned)).ok_or_else(Error::not_found)?;
    let cached: Option<(String, Vec<u8>)> =
        on_db!(&st.db, |p| sqlx::query_as("SELECT mime_type, bytes FROM media_cache WHERE message_id = $1")
            .bind(id)
            .fetch_optional(p)
            .await)?;
    let (mime, bytes) = match cached {
        Some(hit) => hit,
        None => {
            let token: String =
                on_db!(&st.db, |p| sqlx::query_scalar("SELECT access_token FROM numbers WHERE id = $1")
                    .bind(conv.number_id)
                    .fetch_one(p)
                    .await)?;
            let (mime, bytes) = st.graph.fetch_media(&media_id, &token, MAX_MEDIA).await.map_err(|e| {
                let why = match e {
                    CallError::Transport(t) => t,
                    CallError::Graph(g) => g.title,
                };
                tracing::warn!(message_id = %id, why, "media fetch failed");
                Error::client(
                    StatusCode::BAD_GATEWAY,
                    "media_unavailable",
                    "the media could not be fetched from WhatsApp",
                )
            })?;
            let now = st.clock.now();
            on_db!(&st.db, |p| {
                sqlx::query(
                "INSERT INTO media_cache (message_id, mime_type, bytes, fetched_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
            )
            .bind(id)
            .bind(&mime)
            .bind(&bytes)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
            })?;
            (mime, bytes)
        }
    };
    Ok(([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "private, max-age=3600".to_owned())], Body::from(bytes))
        .into_response())
}

/// What an upload answers: the media id to send by.
#[derive(Debug, serde::Serialize)]
pub struct Uploaded {
    pub id: String,
    pub mime_type: String,
    pub size: usize,
}

/// Largest upload accepted (Meta: image 5 MB, audio/video 16 MB; documents are capped here too).
pub const MAX_UPLOAD: usize = 16 << 20;

/// `POST /api/v1/conversations/{id}/media` (multipart, field `file`): uploads media to the
/// Graph API through the conversation's number, for the assignee to send by id.
#[instrument(skip_all)]
pub async fn upload(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, crate::extract::Json<Uploaded>)> {
    let conv = conversations::get_visible(&st.db, &user.viewer(), id).await?;
    crate::inbox::ownership::ensure_can_reply(&conv, &user.viewer())?;
    let mut multipart = multipart.map_err(|e| Error::bad_request("invalid_upload", e.body_text()))?;
    let mut file = None;
    while let Some(field) =
        multipart.next_field().await.map_err(|e| Error::bad_request("invalid_upload", e.body_text()))?
    {
        if field.name() == Some("file") {
            let mime = field.content_type().unwrap_or("application/octet-stream").to_owned();
            let name = field.file_name().unwrap_or("upload").to_owned();
            let bytes = field.bytes().await.map_err(|e| Error::bad_request("invalid_upload", e.body_text()))?;
            file = Some((mime, name, bytes));
        }
    }
    let (mime, name, bytes) = file.ok_or_else(|| Error::bad_request("invalid_upload", "a `file` field is required"))?;
    if bytes.is_empty() || bytes.len() > MAX_UPLOAD {
        return Err(Error::client(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "uploads are limited to 16 MiB"));
    }
    let number: Option<(String, String)> = on_db!(&st.db, |p| sqlx::query_as(
        "SELECT phone_number_id, access_token FROM numbers WHERE id = $1 AND disconnected_at IS NULL"
    )
    .bind(conv.number_id)
    .fetch_optional(p)
    .await)?;
    let (pnid, token) = number
        .ok_or_else(|| Error::unprocessable("number_disconnected", "this conversation's number is disconnected"))?;
    let size = bytes.len();
    let media_id = st.graph.upload_media(&pnid, &token, &mime, &name, bytes.to_vec()).await.map_err(|e| {
        let why = match e {
            CallError::Transport(t) => t,
            CallError::Graph(g) => g.title,
        };
        tracing::warn!(why, "media upload failed");
        Error::client(StatusCode::BAD_GATEWAY, "upload_failed", format!("WhatsApp refused the upload: {why}"))
    })?;
    Ok((StatusCode::CREATED, crate::extract::Json(Uploaded { id: media_id, mime_type: mime, size })))
}
