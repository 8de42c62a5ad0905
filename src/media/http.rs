//! The media store's routes: `POST /api/v1/media` (an upload, streamed to disk) and
//! `GET /api/v1/media/{message_id}` (a message's media, only to who can see its chat).

use std::path::Path as FsPath;

use axum::body::Body;
use axum::extract::State;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tracing::instrument;
use uuid::Uuid;

use super::store::Store;
use super::{MediaKind, Upload};
use crate::api::Api;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::extract::{Json, Path};
use crate::inbox::conversations::{self, Conversation};
use crate::outbox::graph::CallError;
use crate::state::AppState;
use crate::views::media::UploadView;

/// The upload route's body limit: the largest file (a 100 MB document) and room for the
/// multipart framing. Every other route keeps the default.
pub const UPLOAD_BODY_LIMIT: usize = (100 << 20) + (64 << 10);

pub fn routes() -> Api {
    Api::new().post_large("/media", upload, UPLOAD_BODY_LIMIT).get("/media/{id}", get)
}

fn too_large(kind: MediaKind) -> Error {
    Error::client(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("{kind} files are limited to {} MB", kind.max_bytes() >> 20),
    )
}

fn multipart_error(e: MultipartError) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::client(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "uploads are limited to 100 MB")
    } else {
        Error::bad_request("invalid_upload", e.body_text())
    }
}

fn store_error(e: std::io::Error) -> Error {
    Error::internal(format!("media store: {e}"))
}

/// Reads and drops the rest of a refused upload (the body limit bounds it), so the client
/// reads the refusal instead of a reset connection.
async fn drain(mut field: Field<'_>) {
    while let Ok(Some(_)) = field.chunk().await {}
}

/// `POST /media` (multipart, field `file`) → 201 the upload. The file goes to disk a chunk at
/// a time, never whole in memory; it is refused (413) as soon as it passes its kind's limit,
/// and (415) when Meta would refuse its type. Its name is kept as a label only.
#[utoipa::path(
    post,
    path = "/media",
    tag = "media",
    description = "Uploads a file (multipart field `file`) to the media store, streamed to disk, for a media message (`media.upload_id`) or a `file` content item. Meta's limits per kind: image 5 MB, audio and video 16 MB, document 100 MB (413 beyond; 415 for a type WhatsApp refuses).",
    request_body(content = crate::outbox::media::UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, description = "Stored.", body = crate::views::media::UploadView))
)]
#[instrument(skip_all)]
pub async fn upload(
    State(st): State<AppState>,
    user: CurrentUser,
    headers: axum::http::HeaderMap,
    multipart: std::result::Result<axum::extract::Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadView>)> {
    // A body announced larger than the route takes is refused before any of it is read.
    let announced = headers.get(header::CONTENT_LENGTH).and_then(|h| h.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > UPLOAD_BODY_LIMIT as u64) {
        return Err(Error::client(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "uploads are limited to 100 MB"));
    }
    let v = user.viewer();
    let replies = conversations::has_assigned(&st.db, v.workspace_id, v.user_id).await?;
    if !crate::policy::media::may_upload(&v, replies) {
        return Err(Error::forbidden("forbidden", "uploading is for members who reply to chats or create content"));
    }
    let mut multipart = multipart.map_err(|e| Error::bad_request("invalid_upload", e.body_text()))?;
    let store = Store::new(&st.config.data_dir);
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let filename = super::clean_filename(field.file_name());
        let Some((mime, kind)) = super::classify(field.content_type(), &filename) else {
            drain(field).await;
            return Err(Error::client(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "WhatsApp does not take this type of file (images: JPEG, PNG; video: MP4, 3GP; audio: AAC, AMR, MP3, M4A, OGG; documents: PDF, text, Office)",
            ));
        };
        let limit = kind.max_bytes();
        let mut file = store.begin().await.map_err(store_error)?;
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if file.written() + chunk.len() as u64 > limit {
                drop(file);
                drain(field).await;
                return Err(too_large(kind));
            }
            file.write(&chunk).await.map_err(store_error)?;
        }
        if file.written() == 0 {
            return Err(Error::unprocessable("empty_upload", "the file is empty"));
        }
        let id = Uuid::new_v4();
        let size = file.finish(&store.upload_path(id)).await.map_err(store_error)? as i64;
        let up = Upload { id, workspace_id: v.workspace_id, kind, mime_type: mime.to_owned(), size, filename };
        if let Err(e) = super::record_upload(&st.db, &up, user.id, st.clock.now()).await {
            let _ = tokio::fs::remove_file(store.upload_path(id)).await;
            return Err(e);
        }
        tracing::info!(upload_id = %id, kind = %kind, size, "upload stored");
        return Ok((StatusCode::CREATED, Json(up.view())));
    }
    Err(Error::bad_request("invalid_upload", "a `file` field is required"))
}

/// `GET /media/{message_id}`: a message's media, to who can see its conversation (404 to
/// anyone else). An upload we sent is served from the store; inbound media from the store once
/// fetched (through the Graph API with the number's token, streamed to disk), with what was
/// cached in the database before moved to disk on the way.
#[utoipa::path(
    get,
    path = "/media/{id}",
    tag = "media",
    description = "The media of a message (uploaded or inbound), to who can see its conversation, with its content type, `Content-Disposition` and `nosniff`.",
    responses((status = 200, description = "The media bytes, with their content type.", content_type = "application/octet-stream", body = String))
)]
#[instrument(skip_all)]
pub async fn get(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Response> {
    let (conv_id, media) = crate::outbox::media::of_message(&st.db, id).await?.ok_or_else(Error::not_found)?;
    let conv = conversations::get_visible(&st.db, &user.viewer(), conv_id).await?;
    let media = media.ok_or_else(Error::not_found)?;
    let store = Store::new(&st.config.data_dir);
    if let Some(up) = media.get("upload_id").and_then(Value::as_str).and_then(|u| Uuid::parse_str(u).ok()) {
        let up = super::upload(&st.db, up).await?.filter(|u| u.workspace_id == conv.workspace_id);
        let up = up.ok_or_else(Error::not_found)?;
        return serve(&store.upload_path(up.id), &up.mime_type, &up.filename).await?.ok_or_else(Error::not_found);
    }
    let media_id = media.get("id").and_then(Value::as_str).ok_or_else(Error::not_found)?;
    let path = store.inbound_path(id);
    let known = match super::inbound(&st.db, id).await? {
        Some(hit) => Some(hit),
        None => super::move_cached(&st.db, &store, id).await?,
    };
    let name = |mime: &str| match media.get("filename").and_then(Value::as_str) {
        Some(f) => super::clean_filename(Some(f)),
        None => format!("media-{}.{}", &id.simple().to_string()[..12], super::extension_of(mime).unwrap_or("bin")),
    };
    if let Some((mime, _)) = &known
        && let Some(r) = serve(&path, mime, &name(mime)).await?
    {
        return Ok(r);
    }
    let unavailable =
        || Error::client(StatusCode::BAD_GATEWAY, "media_unavailable", "the media could not be fetched from WhatsApp");
    let mime = fetch(&st, &store, &conv, id, media_id).await.ok_or_else(unavailable)?;
    serve(&path, &mime, &name(&mime)).await?.ok_or_else(unavailable)
}

/// Fetches inbound media through the Graph API into the store; its MIME type, or `None` when
/// it could not be had (logged).
async fn fetch(st: &AppState, store: &Store, conv: &Conversation, id: Uuid, media_id: &str) -> Option<String> {
    let fail = |why: String| {
        tracing::warn!(message_id = %id, why, "media fetch failed");
        None
    };
    let token = match crate::outbox::media::access_token(&st.db, conv.number_id).await {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    let token = match st.secrets.open(&token) {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    let (mime, len, mut resp) = match st.graph.open_media(media_id, &token).await {
        Ok(open) => open,
        Err(CallError::Transport(t)) => return fail(t),
        Err(CallError::Graph(g)) => return fail(g.title),
    };
    if len.is_some_and(|l| l > super::MAX_INBOUND) {
        return fail("media larger than the store's limit".to_owned());
    }
    let mut file = match store.begin().await {
        Ok(f) => f,
        Err(e) => return fail(e.to_string()),
    };
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if file.written() + chunk.len() as u64 > super::MAX_INBOUND {
                    return fail("media larger than the store's limit".to_owned());
                }
                if let Err(e) = file.write(&chunk).await {
                    return fail(e.to_string());
                }
            }
            Ok(None) => break,
            Err(e) => return fail(e.without_url().to_string()),
        }
    }
    let size = match file.finish(&store.inbound_path(id)).await {
        Ok(n) => n as i64,
        Err(e) => return fail(e.to_string()),
    };
    if let Err(e) = super::record_inbound(&st.db, id, &mime, size, st.clock.now()).await {
        return fail(e.to_string());
    }
    Some(mime)
}

/// A MIME type fit for a `Content-Type` header: `type/subtype` and parameters of plain
/// characters; anything else is served as `application/octet-stream`.
fn content_type(mime: &str) -> HeaderValue {
    let plain = mime.len() <= 200
        && mime.contains('/')
        && mime.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-/;= ".contains(c));
    if plain {
        HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream"))
    } else {
        HeaderValue::from_static("application/octet-stream")
    }
}

/// `inline` for what a browser can only display, `attachment` for the rest, with the name as an
/// ASCII fallback and in full (RFC 6266 `filename*`).
fn disposition(mime: &str, filename: &str) -> HeaderValue {
    let how = if super::shown_inline(mime) { "inline" } else { "attachment" };
    let ascii: String =
        filename.chars().map(|c| if c.is_ascii_alphanumeric() || " .-_()".contains(c) { c } else { '_' }).collect();
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!("{how}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

/// Streams the file at `path` with its type, disposition, `nosniff` and a CSP that lets it
/// run nothing; `None` when the file is not there.
async fn serve(path: &FsPath, mime: &str, filename: &str) -> Result<Option<Response>> {
    let Some((len, stream)) = super::store::open(path).await.map_err(store_error)? else { return Ok(None) };
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type(mime));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CONTENT_DISPOSITION, disposition(mime, filename));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    Ok(Some(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_never_carry_what_a_client_made_up() {
        assert_eq!(content_type("image/png"), "image/png");
        assert_eq!(content_type("audio/ogg; codecs=opus"), "audio/ogg; codecs=opus");
        assert_eq!(content_type("text/html\r\nX-Evil: 1"), "application/octet-stream");
        assert_eq!(content_type("nonsense"), "application/octet-stream");
        let d = disposition("application/pdf", "quo\"te é.pdf");
        assert_eq!(d, "attachment; filename=\"quo_te _.pdf\"; filename*=UTF-8''quo%22te%20%C3%A9.pdf");
        assert!(disposition("image/png", "a.png").to_str().unwrap().starts_with("inline;"));
        assert!(disposition("image/svg+xml", "a.svg").to_str().unwrap().starts_with("attachment;"));
    }
}
