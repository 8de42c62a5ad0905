//! Uploading straight to the Graph API through a conversation's number, for the assignee to
//! send by media id (the media store's routes are in `crate::media::http`).

use axum::extract::State;
use axum::http::StatusCode;
use tracing::instrument;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::extract::{Json, Path};
use crate::inbox::conversations;
use crate::outbox::graph::CallError;
use crate::outbox::media;
use crate::state::AppState;

/// `POST /api/v1/conversations/{id}/media` (multipart, field `file`): uploads media to the
/// Graph API through the conversation's number, for the assignee to send by id.
#[utoipa::path(
    post,
    path = "/conversations/{id}/media",
    tag = "outbox",
    description = "Uploads a file (multipart field `file`) to the Graph API for sending in this conversation.",
    request_body(content = crate::outbox::media::UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, description = "Created.", body = media::Uploaded))
)]
#[instrument(skip_all)]
pub async fn upload(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<media::Uploaded>)> {
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
    if bytes.is_empty() || bytes.len() > media::MAX_UPLOAD {
        return Err(Error::client(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "uploads are limited to 16 MiB"));
    }
    let (pnid, token) = media::sender(&st.db, conv.number_id)
        .await?
        .ok_or_else(|| Error::unprocessable("number_disconnected", "this conversation's number is disconnected"))?;
    let token = st.secrets.open(&token)?;
    let size = bytes.len();
    let media_id = st.graph.upload_media(&pnid, &token, &mime, &name, bytes.to_vec()).await.map_err(|e| {
        let why = match e {
            CallError::Transport(t) => t,
            CallError::Graph(g) => g.title,
        };
        tracing::warn!(why, "media upload failed");
        Error::client(StatusCode::BAD_GATEWAY, "upload_failed", format!("WhatsApp refused the upload: {why}"))
    })?;
    Ok((StatusCode::CREATED, Json(media::Uploaded { id: media_id, mime_type: mime, size })))
}
