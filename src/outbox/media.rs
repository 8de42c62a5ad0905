//! Media: what the media routes read and keep (inbound media cached in the database), and
//! the numbers' credentials they call the Graph API with.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::db::Db;
use crate::error::Result;
use crate::on_db;

/// Largest media kept in the cache and served (bytes).
pub const MAX_MEDIA: usize = 16 << 20;

/// What an upload answers: the media id to send by.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    pub id: String,
    pub mime_type: String,
    pub size: usize,
}

/// The multipart form of an upload (the OpenAPI document's request body).
#[derive(utoipa::ToSchema)]
pub struct UploadForm {
    /// The file, with its content type and name.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Largest upload accepted (Meta: image 5 MB, audio/video 16 MB; documents are capped here too).
pub const MAX_UPLOAD: usize = 16 << 20;

/// A message's conversation and the Graph API id of its media (if it has any).
pub async fn of_message(db: &Db, message_id: Uuid) -> Result<Option<(Uuid, Option<String>)>> {
    let row: Option<(Uuid, Option<sqlx::types::Json<serde_json::Value>>)> =
        on_db!(db, |p| sqlx::query_as("SELECT conversation_id, media FROM messages WHERE id = $1")
            .bind(message_id)
            .fetch_optional(p)
            .await)?;
    Ok(row.map(|(conv, media)| (conv, media.and_then(|m| m.0["id"].as_str().map(str::to_owned)))))
}

/// A message's media from the cache: (MIME type, bytes).
pub async fn cached(db: &Db, message_id: Uuid) -> Result<Option<(String, Vec<u8>)>> {
    Ok(on_db!(db, |p| sqlx::query_as("SELECT mime_type, bytes FROM media_cache WHERE message_id = $1")
        .bind(message_id)
        .fetch_optional(p)
        .await)?)
}

/// Keeps a message's media in the cache (the first copy wins).
pub async fn cache(db: &Db, message_id: Uuid, mime: &str, bytes: &[u8], now: DateTime<Utc>) -> Result<()> {
    on_db!(db, |p| {
        sqlx::query(
            "INSERT INTO media_cache (message_id, mime_type, bytes, fetched_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(message_id)
        .bind(mime)
        .bind(bytes)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A number's access token.
pub async fn access_token(db: &Db, number_id: Uuid) -> Result<String> {
    Ok(on_db!(db, |p| sqlx::query_scalar("SELECT access_token FROM numbers WHERE id = $1")
        .bind(number_id)
        .fetch_one(p)
        .await)?)
}

/// A connected number's `phone_number_id` and access token, to upload through.
pub async fn sender(db: &Db, number_id: Uuid) -> Result<Option<(String, String)>> {
    Ok(on_db!(db, |p| sqlx::query_as(
        "SELECT phone_number_id, access_token FROM numbers WHERE id = $1 AND disconnected_at IS NULL"
    )
    .bind(number_id)
    .fetch_optional(p)
    .await)?)
}
