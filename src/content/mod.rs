//! The content library: quick-reply messages, files and pages, each private to its owner,
//! shared with teams, or with the whole workspace. Who sees and changes what is decided in
//! `policy::content` (lists filter in SQL with the same rule); the functions here take a
//! transaction or the database and the caller as a [`Viewer`]. The handlers are in [`http`].
//!
//! `file` items reference an upload of the media store (`crate::media`) by `upload_id`; sending
//! one sends that file as a media message of its kind, the item's body as its caption.

pub mod http;
pub mod pages;
pub mod render;

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{self, AuditAction, AuditEntry, AuditTarget, Changes};
use crate::db::{Db, Links, Tx};
use crate::error::{Error, Result};
use crate::events::Work;
use crate::policy::Viewer;
use crate::policy::content::{self as may, ContentDenied, ContentFacts, ContentViewer, Visibility};
use crate::team::teams;
use crate::views::content::{ContentKind, ContentPage, ContentView};
use crate::{on_db, on_tx};

/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest text of a `message` (WhatsApp's limit for a text message).
pub const MAX_MESSAGE: usize = 4096;
/// Longest caption of a `file`.
pub const MAX_CAPTION: usize = 1024;
/// Longest Markdown body of a `page`.
pub const MAX_PAGE: usize = 100_000;
/// Longest shortcut.
pub const MAX_SHORTCUT: usize = 50;
/// The most teams an item may be shared with.
pub const MAX_TEAMS: usize = 100;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Content {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub owner_id: Uuid,
    pub kind: ContentKind,
    pub title: String,
    pub body: Option<String>,
    pub upload_id: Option<Uuid>,
    pub shortcut: Option<String>,
    pub visibility: Visibility,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[sqlx(skip)]
    pub team_ids: Vec<Uuid>,
}

impl Content {
    pub fn view(&self) -> ContentView {
        ContentView {
            id: self.id,
            kind: self.kind,
            title: self.title.clone(),
            body: self.body.clone(),
            upload_id: self.upload_id,
            shortcut: self.shortcut.clone(),
            visibility: self.visibility,
            team_ids: self.team_ids.clone(),
            owner_id: self.owner_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The item as the policy sees it.
    pub fn facts(&self) -> ContentFacts {
        ContentFacts {
            workspace_id: self.workspace_id,
            owner_id: self.owner_id,
            visibility: self.visibility,
            team_ids: self.team_ids.clone(),
        }
    }
}

const SHARED: Links = Links { table: "content_teams", from: "content_id", to: "team_id" };

macro_rules! cols {
    () => {
        "k.id, k.workspace_id, k.owner_id, k.kind, k.title, k.body, k.upload_id, k.shortcut, k.visibility, \
         k.created_at, k.updated_at"
    };
}

static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        concat!(
            "SELECT ",
            cols!(),
            " FROM content k WHERE {} AND ($4 IS NULL OR k.kind = $4) \
             AND ($5 IS NULL OR lower(k.title) LIKE $5 ESCAPE '\\' OR lower(k.shortcut) LIKE $5 ESCAPE '\\') \
             AND ($6 IS NULL OR k.created_at > $6 OR (k.created_at = $6 AND k.id > $7)) \
             ORDER BY k.created_at, k.id LIMIT $8"
        ),
        *may::VISIBLE
    )
});

static ONE: LazyLock<String> =
    LazyLock::new(|| format!(concat!("SELECT ", cols!(), " FROM content k WHERE {} AND k.id = $4"), *may::VISIBLE));

/// The denial in the contract's words.
fn denied(d: ContentDenied) -> Error {
    let message = match d {
        ContentDenied::NeedsCreateContent => "creating content needs the create_content permission",
        ContentDenied::NeedsManageVisibility => "sharing content needs the manage_content_visibility permission",
        ContentDenied::NotInTeam => "content can only be shared with teams you belong to",
        ContentDenied::NeedsEditOthers => "editing another member's content needs the edit_others_content permission",
        ContentDenied::AdminOnly => "only admins delete content",
    };
    Error::forbidden("forbidden", message)
}

/// Filters of a content list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Option<ContentKind>,
    /// Matched against the title and the shortcut, ignoring case.
    pub q: Option<String>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

fn like_pattern(q: &str) -> String {
    let escaped: String = q
        .to_lowercase()
        .chars()
        .flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] })
        .collect();
    format!("%{escaped}%")
}

/// One page of the items `v` sees, oldest first.
pub async fn list(db: &Db, v: &Viewer, f: &Filter) -> Result<ContentPage> {
    let (ws, user, admin) = may::params(v);
    let pattern = f.q.as_deref().map(like_pattern);
    let mut rows: Vec<Content> = on_db!(db, |p| sqlx::query_as(LIST.as_str())
        .bind(ws)
        .bind(user)
        .bind(admin)
        .bind(f.kind)
        .bind(&pattern)
        .bind(f.after.map(|a| a.0))
        .bind(f.after.map(|a| a.1))
        .bind(f.limit + 1)
        .fetch_all(p)
        .await)?;
    let next_cursor = if rows.len() as i64 > f.limit {
        rows.truncate(f.limit as usize);
        rows.last().map(|k| crate::db::cursor::encode(k.created_at, k.id))
    } else {
        None
    };
    let ids: Vec<Uuid> = rows.iter().map(|k| k.id).collect();
    let mut shared = crate::db::linked(db, SHARED, &ids).await?;
    let content = rows
        .iter_mut()
        .map(|k| {
            k.team_ids = shared.remove(&k.id).unwrap_or_default();
            k.view()
        })
        .collect();
    Ok(ContentPage { content, next_cursor })
}

/// Item `id` when `v` sees it; 404 otherwise.
pub async fn get(db: &Db, v: &Viewer, id: Uuid) -> Result<Content> {
    let (ws, user, admin) = may::params(v);
    let mut k: Content =
        on_db!(db, |p| sqlx::query_as(ONE.as_str()).bind(ws).bind(user).bind(admin).bind(id).fetch_optional(p).await)?
            .ok_or_else(Error::not_found)?;
    k.team_ids = crate::db::linked(db, SHARED, &[id]).await?.remove(&id).unwrap_or_default();
    Ok(k)
}

/// Item `id` when `v` sees it, inside a write transaction; 404 otherwise.
pub async fn get_tx(tx: &mut Tx, v: &Viewer, id: Uuid) -> Result<Content> {
    let (ws, user, admin) = may::params(v);
    let mut k: Content =
        on_tx!(tx, |c| sqlx::query_as(ONE.as_str()).bind(ws).bind(user).bind(admin).bind(id).fetch_optional(c).await)?
            .ok_or_else(Error::not_found)?;
    k.team_ids = crate::db::linked_in(tx, SHARED, &[id]).await?.remove(&id).unwrap_or_default();
    Ok(k)
}

/// The teams `v` belongs to, inside a transaction.
async fn my_teams(tx: &mut Tx, v: &Viewer) -> Result<Vec<Uuid>> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar(teams::TEAMS_OF).bind(v.user_id).fetch_all(c).await)?)
}

fn validate_title(raw: &str) -> Result<String> {
    let t = raw.trim();
    if t.is_empty() || t.chars().count() > MAX_TITLE {
        return Err(Error::unprocessable("invalid_title", format!("title must have 1 to {MAX_TITLE} characters")));
    }
    Ok(t.to_owned())
}

/// A shortcut is a word (letters, digits, `-`, `_`), typed after `/`; a leading `/` is
/// dropped, an empty one clears it.
fn validate_shortcut(raw: Option<String>) -> Result<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    let s = raw.trim().trim_start_matches('/');
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > MAX_SHORTCUT || !s.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_') {
        return Err(Error::unprocessable(
            "invalid_shortcut",
            format!("shortcut must be up to {MAX_SHORTCUT} letters, digits, - or _"),
        ));
    }
    Ok(Some(s.to_owned()))
}

/// Checks the body and the upload against the kind.
fn validate_parts(kind: ContentKind, body: &Option<String>, upload_id: Option<Uuid>) -> Result<()> {
    let len = body.as_deref().map_or(0, |b| b.chars().count());
    let blank = body.as_deref().is_none_or(|b| b.trim().is_empty());
    match kind {
        ContentKind::Message if blank || len > MAX_MESSAGE => Err(Error::unprocessable(
            "invalid_body",
            format!("a message needs a body of 1 to {MAX_MESSAGE} characters"),
        )),
        ContentKind::Page if blank || len > MAX_PAGE => Err(Error::unprocessable(
            "invalid_body",
            format!("a page needs a Markdown body of 1 to {MAX_PAGE} characters"),
        )),
        ContentKind::File if len > MAX_CAPTION => {
            Err(Error::unprocessable("invalid_body", format!("a file's caption has at most {MAX_CAPTION} characters")))
        }
        ContentKind::File if upload_id.is_none() => {
            Err(Error::unprocessable("upload_required", "a file needs an upload_id"))
        }
        ContentKind::Message if upload_id.is_some() => {
            Err(Error::unprocessable("invalid_upload", "a message has no upload_id"))
        }
        _ => Ok(()),
    }
}

/// A new item, as asked.
#[derive(Debug, Clone)]
pub struct NewContent {
    pub kind: ContentKind,
    pub title: String,
    pub body: Option<String>,
    pub upload_id: Option<Uuid>,
    pub shortcut: Option<String>,
}

async fn insert_teams(tx: &mut Tx, id: Uuid, team_ids: &[Uuid]) -> Result<()> {
    on_tx!(tx, |c| sqlx::query("DELETE FROM content_teams WHERE content_id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    for t in team_ids {
        on_tx!(tx, |c| sqlx::query("INSERT INTO content_teams (content_id, team_id) VALUES ($1, $2)")
            .bind(id)
            .bind(*t)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Creates a private item owned by `v`.
pub async fn create(work: &mut Work, v: &Viewer, n: NewContent) -> Result<Content> {
    may::may_create(v).map_err(denied)?;
    let title = validate_title(&n.title)?;
    let shortcut = validate_shortcut(n.shortcut)?;
    validate_parts(n.kind, &n.body, n.upload_id)?;
    let now = work.now();
    let k = Content {
        id: Uuid::now_v7(),
        workspace_id: v.workspace_id,
        owner_id: v.user_id,
        kind: n.kind,
        title,
        body: n.body,
        upload_id: n.upload_id,
        shortcut,
        visibility: Visibility::Private,
        created_at: now,
        updated_at: now,
        team_ids: Vec::new(),
    };
    on_tx!(work.tx(), |c| sqlx::query(
        "INSERT INTO content (id, workspace_id, owner_id, kind, title, body, upload_id, shortcut, visibility, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)"
    )
    .bind(k.id)
    .bind(k.workspace_id)
    .bind(k.owner_id)
    .bind(k.kind)
    .bind(&k.title)
    .bind(&k.body)
    .bind(k.upload_id)
    .bind(&k.shortcut)
    .bind(k.visibility)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(k)
}

/// A change to an item; `None` leaves a part as it is (an empty shortcut clears it).
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub title: Option<String>,
    pub body: Option<String>,
    pub upload_id: Option<Uuid>,
    pub shortcut: Option<String>,
    pub visibility: Option<Visibility>,
    pub team_ids: Option<Vec<Uuid>>,
}

/// Changes item `id` as `v` asks: editing needs the policy's yes, and a new visibility (or
/// new teams) the policy's yes for sharing.
pub async fn change(work: &mut Work, v: &Viewer, id: Uuid, c: Change) -> Result<Content> {
    let mut k = get_tx(work.tx(), v, id).await?;
    let mine = my_teams(work.tx(), v).await?;
    let cv = ContentViewer { viewer: v, team_ids: &mine };
    may::may_edit(cv, &k.facts()).map_err(denied)?;
    if let Some(t) = c.title {
        k.title = validate_title(&t)?;
    }
    if let Some(b) = c.body {
        k.body = Some(b).filter(|b| !(k.kind == ContentKind::File && b.is_empty()));
    }
    if c.upload_id.is_some() {
        k.upload_id = c.upload_id;
    }
    if c.shortcut.is_some() {
        k.shortcut = validate_shortcut(c.shortcut)?;
    }
    validate_parts(k.kind, &k.body, k.upload_id)?;
    let visibility = c.visibility.unwrap_or(if c.team_ids.is_some() { Visibility::Teams } else { k.visibility });
    let team_ids = match (visibility, c.team_ids) {
        (Visibility::Teams, Some(ids)) => {
            if ids.is_empty() || ids.len() > MAX_TEAMS {
                return Err(Error::unprocessable(
                    "invalid_teams",
                    format!("team_ids must list 1 to {MAX_TEAMS} teams"),
                ));
            }
            teams::check_teams(work.tx(), v.workspace_id, ids).await?
        }
        (Visibility::Teams, None) if k.visibility == Visibility::Teams => k.team_ids.clone(),
        (Visibility::Teams, None) => {
            return Err(Error::unprocessable("invalid_teams", "visibility teams needs team_ids"));
        }
        (_, Some(ids)) if !ids.is_empty() => {
            return Err(Error::unprocessable("invalid_teams", "team_ids go only with visibility teams"));
        }
        _ => Vec::new(),
    };
    let rescoped = visibility != k.visibility || team_ids != k.team_ids;
    if rescoped {
        may::may_set_visibility(cv, visibility, &team_ids).map_err(denied)?;
        insert_teams(work.tx(), id, &team_ids).await?;
        let entry = AuditEntry::new(v.workspace_id, v.user_id, AuditAction::ContentVisibilityChanged)
            .target(AuditTarget::Content, id)
            .changes(Changes::new().field("visibility", k.visibility.as_str(), visibility.as_str()).field(
                "team_ids",
                &k.team_ids,
                &team_ids,
            ));
        audit::record(work, entry).await?;
        tracing::info!(content_id = %id, visibility = visibility.as_str(), teams = team_ids.len(), "content re-scoped");
    }
    k.visibility = visibility;
    k.team_ids = team_ids;
    k.updated_at = work.now();
    on_tx!(work.tx(), |t| sqlx::query(
        "UPDATE content SET title = $1, body = $2, upload_id = $3, shortcut = $4, visibility = $5, updated_at = $6 \
         WHERE id = $7"
    )
    .bind(&k.title)
    .bind(&k.body)
    .bind(k.upload_id)
    .bind(&k.shortcut)
    .bind(k.visibility)
    .bind(k.updated_at)
    .bind(id)
    .execute(t)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(k)
}

/// Deletes item `id` (admins; an item the caller doesn't see is 404 first).
pub async fn delete(work: &mut Work, v: &Viewer, id: Uuid) -> Result<()> {
    get_tx(work.tx(), v, id).await?;
    may::may_delete(v).map_err(denied)?;
    on_tx!(work.tx(), |c| sqlx::query("DELETE FROM content WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// What sending an item puts in the chat: the text, and for a page the link token to store
/// with the message ([`pages::record_link`]).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub text: String,
    pub page: Option<(Uuid, String)>,
    /// A `file`: the upload to send, as which kind of message, with its caption.
    pub file: Option<PreparedFile>,
}

#[derive(Debug, Clone)]
pub struct PreparedFile {
    pub kind: crate::media::MediaKind,
    pub upload_id: Uuid,
    pub caption: Option<String>,
}

/// Prepares item `content_id` for sending by `v` (named `member_name`) to `lead`: a message
/// with its variables filled in, a page as its title and a personal link under `base_url`.
/// An item `v` doesn't see is 422 `unknown_content`; a file whose upload is gone, 422
/// `unknown_upload`.
pub async fn prepare_send(
    db: &Db,
    v: &Viewer,
    content_id: Uuid,
    lead: &crate::inbox::leads::Lead,
    member_name: &str,
    base_url: &str,
) -> Result<Prepared> {
    let k = get(db, v, content_id).await.map_err(|e| match e {
        Error::Client { status, .. } if status == axum::http::StatusCode::NOT_FOUND => {
            Error::unprocessable("unknown_content", format!("content {content_id} does not exist"))
        }
        other => other,
    })?;
    match k.kind {
        ContentKind::Message => {
            let vars = render::Vars {
                lead_name: &lead.name,
                lead_phone: lead.phone.as_deref(),
                member_name,
                custom: Some(&lead.custom_fields.0),
            };
            Ok(Prepared { text: render::fill(k.body.as_deref().unwrap_or_default(), &vars), page: None, file: None })
        }
        ContentKind::Page => {
            let token = pages::new_token();
            let text = format!("{}\n{}/p/{token}", k.title, base_url.trim_end_matches('/'));
            Ok(Prepared { text, page: Some((k.id, token)), file: None })
        }
        ContentKind::File => {
            let upload = match k.upload_id {
                Some(u) => crate::media::upload(db, u).await?.filter(|u| u.workspace_id == k.workspace_id),
                None => None,
            };
            let upload = upload.ok_or_else(|| Error::unprocessable("unknown_upload", "this file's upload is gone"))?;
            let caption = k.body.filter(|b| !b.trim().is_empty() && upload.kind != crate::media::MediaKind::Audio);
            let file = PreparedFile { kind: upload.kind, upload_id: upload.id, caption };
            Ok(Prepared { text: String::new(), page: None, file: Some(file) })
        }
    }
}
