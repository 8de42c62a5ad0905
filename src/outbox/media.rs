//! `GET /api/v1/media/{message_id}`: inbound media, fetched lazily through the Graph API with
//! the number's token, cached in the database, served only to who can see the conversation.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::instrument;
use uuid::Uuid;

use super::graph::CallError;
use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::extract::Path;
use crate::inbox::conversations;
use crate::on_db;

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
