//! An upload in the media store, as `POST /api/v1/media` answers it.

use serde::Serialize;
use uuid::Uuid;

use crate::string_enum;

string_enum! {
    /// Which of Meta's media types a file is sent as (and so which size limit applies).
    pub enum MediaKind { Image = "image", Video = "video", Audio = "audio", Document = "document" }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UploadView {
    pub id: Uuid,
    pub mime_type: String,
    pub size: i64,
    pub filename: String,
}
