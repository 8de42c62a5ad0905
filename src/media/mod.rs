//! The media store: members' uploads (`POST /api/v1/media`) and inbound media fetched from the
//! Graph API, their bytes on disk ([`store`]) and their descriptions in the database (`uploads`,
//! `media_files`). Meta's types and size limits are decided here: what may be uploaded, and as
//! which kind of message it goes.
//!
//! Below the inbox, the outbox and the content library, which read uploads through it; it
//! calls nothing but the ground floor.

pub mod http;
pub mod store;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::on_db;
use crate::policy::Viewer;
pub use crate::views::media::MediaKind;
use crate::views::media::UploadView;
use store::Store;

const MIB: u64 = 1024 * 1024;

/// Largest inbound media fetched and kept (Meta's largest, a document).
pub const MAX_INBOUND: u64 = 100 * MIB;

/// Longest upload name kept, in characters.
const MAX_NAME: usize = 200;

impl MediaKind {
    /// Meta's size limit for the kind: image 5 MB, audio and video 16 MB, document 100 MB.
    pub fn max_bytes(self) -> u64 {
        match self {
            MediaKind::Image => 5 * MIB,
            MediaKind::Video | MediaKind::Audio => 16 * MIB,
            MediaKind::Document => 100 * MIB,
        }
    }
}

/// The MIME types Meta accepts, by kind (Cloud API "supported media types"), with the file
/// extensions that name them when a client sends no usable type.
const TYPES: &[(&str, MediaKind, &[&str])] = &[
    ("image/jpeg", MediaKind::Image, &["jpg", "jpeg"]),
    ("image/png", MediaKind::Image, &["png"]),
    ("video/mp4", MediaKind::Video, &["mp4"]),
    ("video/3gpp", MediaKind::Video, &["3gp", "3gpp"]),
    ("audio/aac", MediaKind::Audio, &["aac"]),
    ("audio/amr", MediaKind::Audio, &["amr"]),
    ("audio/mpeg", MediaKind::Audio, &["mp3"]),
    ("audio/mp4", MediaKind::Audio, &["m4a"]),
    ("audio/ogg", MediaKind::Audio, &["ogg", "opus"]),
    ("text/plain", MediaKind::Document, &["txt"]),
    ("application/pdf", MediaKind::Document, &["pdf"]),
    ("application/msword", MediaKind::Document, &["doc"]),
    ("application/vnd.ms-excel", MediaKind::Document, &["xls"]),
    ("application/vnd.ms-powerpoint", MediaKind::Document, &["ppt"]),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", MediaKind::Document, &["docx"]),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", MediaKind::Document, &["xlsx"]),
    ("application/vnd.openxmlformats-officedocument.presentationml.presentation", MediaKind::Document, &["pptx"]),
];

/// The MIME type and kind of an upload: its declared type (parameters dropped, lower case),
/// or, when it declares none or only `application/octet-stream`, its name's extension. `None`:
/// a type Meta refuses.
pub fn classify(declared: Option<&str>, filename: &str) -> Option<(&'static str, MediaKind)> {
    let declared = declared.map(|d| d.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    match declared.as_deref() {
        None | Some("") | Some("application/octet-stream") => {
            let ext = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
            TYPES.iter().find(|(_, _, exts)| exts.contains(&ext.as_str())).map(|(m, k, _)| (*m, *k))
        }
        Some(d) => TYPES.iter().find(|(m, _, _)| *m == d).map(|(m, k, _)| (*m, *k)),
    }
}

/// The usual file extension of a MIME type Meta accepts (for a name to download under).
pub fn extension_of(mime: &str) -> Option<&'static str> {
    let mime = mime.split(';').next().unwrap_or_default().trim();
    TYPES.iter().find(|(m, _, _)| m.eq_ignore_ascii_case(mime)).map(|(_, _, exts)| exts[0])
}

/// Whether a browser may show media of this type in the page (`inline`): pictures, sound and
/// video it can only display. Anything else (documents, text, SVG, HTML…) is `attachment`.
pub fn shown_inline(mime: &str) -> bool {
    let mime = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    matches!(mime.as_str(), "image/jpeg" | "image/png" | "image/webp" | "image/gif")
        || (mime.starts_with("video/") || mime.starts_with("audio/"))
}

/// The name an upload is shown and sent under: the last part of what the client called it
/// (no folders), without control characters, at most 200 characters; "upload" when nothing is
/// left. It is only ever a label: files are stored under ids.
pub fn clean_filename(name: Option<&str>) -> String {
    let last = name.unwrap_or_default().rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).take(MAX_NAME).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() { "upload".to_owned() } else { cleaned.to_owned() }
}

/// An upload as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Upload {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub kind: MediaKind,
    pub mime_type: String,
    pub size: i64,
    pub filename: String,
}

impl Upload {
    pub fn view(&self) -> UploadView {
        UploadView { id: self.id, mime_type: self.mime_type.clone(), size: self.size, filename: self.filename.clone() }
    }
}

/// Records an upload whose bytes are already at `store.upload_path(u.id)`.
pub async fn record_upload(db: &Db, u: &Upload, by: Uuid, now: DateTime<Utc>) -> Result<()> {
    let _write = db.lock_writes().await;
    on_db!(db, |p| sqlx::query(
        "INSERT INTO uploads (id, workspace_id, uploaded_by, kind, mime_type, size, filename, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )
    .bind(u.id)
    .bind(u.workspace_id)
    .bind(by)
    .bind(u.kind)
    .bind(&u.mime_type)
    .bind(u.size)
    .bind(&u.filename)
    .bind(now)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Upload `id`, whatever its workspace (the sender checks it against the message's).
pub async fn upload(db: &Db, id: Uuid) -> Result<Option<Upload>> {
    Ok(on_db!(db, |p| sqlx::query_as(
        "SELECT id, workspace_id, kind, mime_type, size, filename FROM uploads WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(p)
    .await)?)
}

/// Upload `id` for `v` to use (send, attach to content): 422 `unknown_upload` when there is
/// none `v` may use.
pub async fn usable_upload(db: &Db, v: &Viewer, id: Uuid) -> Result<Upload> {
    upload(db, id)
        .await?
        .filter(|u| crate::policy::media::may_use_upload(v, u.workspace_id))
        .ok_or_else(|| Error::unprocessable("unknown_upload", format!("upload {id} does not exist")))
}

/// Inbound media on disk: (MIME type, size) of message `message_id`'s file, if fetched.
pub async fn inbound(db: &Db, message_id: Uuid) -> Result<Option<(String, i64)>> {
    Ok(on_db!(db, |p| sqlx::query_as("SELECT mime_type, size FROM media_files WHERE message_id = $1")
        .bind(message_id)
        .fetch_optional(p)
        .await)?)
}

/// Records inbound media already at `store.inbound_path(message_id)` (the first copy wins).
pub async fn record_inbound(db: &Db, message_id: Uuid, mime: &str, size: i64, now: DateTime<Utc>) -> Result<()> {
    let _write = db.lock_writes().await;
    on_db!(db, |p| sqlx::query(
        "INSERT INTO media_files (message_id, mime_type, size, fetched_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING"
    )
    .bind(message_id)
    .bind(mime)
    .bind(size)
    .bind(now)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Moves message `message_id`'s media from the database (`media_cache`, where it was kept
/// before the store) to disk; returns its (MIME type, size) when there was such a row.
pub async fn move_cached(db: &Db, store: &Store, message_id: Uuid) -> Result<Option<(String, i64)>> {
    let row: Option<(String, Vec<u8>, DateTime<Utc>)> =
        on_db!(db, |p| sqlx::query_as("SELECT mime_type, bytes, fetched_at FROM media_cache WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(p)
            .await)?;
    let Some((mime, bytes, fetched_at)) = row else { return Ok(None) };
    let size = store::write_whole(store, &store.inbound_path(message_id), &bytes)
        .await
        .map_err(|e| Error::internal(format!("media store: {e}")))? as i64;
    drop(bytes);
    record_inbound(db, message_id, &mime, size, fetched_at).await?;
    let _write = db.lock_writes().await;
    on_db!(db, |p| sqlx::query("DELETE FROM media_cache WHERE message_id = $1")
        .bind(message_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(Some((mime, size)))
}

/// Moves everything still cached in the database to disk, one row at a time (at start-up).
pub async fn move_all_cached(db: &Db, store: &Store) -> Result<u64> {
    let mut moved = 0;
    loop {
        let ids: Vec<Uuid> =
            on_db!(db, |p| sqlx::query_scalar("SELECT message_id FROM media_cache LIMIT 64").fetch_all(p).await)?;
        if ids.is_empty() {
            return Ok(moved);
        }
        for id in ids {
            if move_cached(db, store, id).await?.is_some() {
                moved += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_meta() {
        assert_eq!(classify(Some("image/png"), "x"), Some(("image/png", MediaKind::Image)));
        assert_eq!(classify(Some("Audio/OGG; codecs=opus"), "x"), Some(("audio/ogg", MediaKind::Audio)));
        assert_eq!(
            classify(Some("application/octet-stream"), "Quote.PDF"),
            Some(("application/pdf", MediaKind::Document))
        );
        assert_eq!(classify(None, "clip.mp4"), Some(("video/mp4", MediaKind::Video)));
        assert_eq!(classify(Some("image/svg+xml"), "a.png"), None, "a declared type Meta refuses is refused");
        assert_eq!(classify(Some("text/html"), "a.html"), None);
        assert_eq!(classify(None, "noext"), None);
    }

    #[test]
    fn names_are_labels_not_paths() {
        assert_eq!(clean_filename(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_filename(Some("..\\..\\boot.ini")), "boot.ini");
        assert_eq!(clean_filename(Some("/tmp/")), "upload");
        assert_eq!(clean_filename(Some("..")), "upload");
        assert_eq!(clean_filename(Some("a\u{0}b\nc.pdf")), "abc.pdf");
        assert_eq!(clean_filename(None), "upload");
        assert_eq!(clean_filename(Some(&"x".repeat(500))).len(), 200);
    }
}
