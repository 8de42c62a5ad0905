//! Media: what the media routes read (a message's media), and the numbers' credentials they
//! call the Graph API with. The bytes themselves are in the media store (`crate::media`).

use serde::Serialize;
use uuid::Uuid;

use crate::db::Db;
use crate::error::Result;
use crate::on_db;

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

/// A message's conversation and its media object (if it has one).
pub async fn of_message(db: &Db, message_id: Uuid) -> Result<Option<(Uuid, Option<serde_json::Value>)>> {
    let row: Option<(Uuid, Option<sqlx::types::Json<serde_json::Value>>)> =
        on_db!(db, |p| sqlx::query_as("SELECT conversation_id, media FROM messages WHERE id = $1")
            .bind(message_id)
            .fetch_optional(p)
            .await)?;
    Ok(row.map(|(conv, media)| (conv, media.map(|m| m.0))))
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
