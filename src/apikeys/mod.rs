//! API keys: created by admins (and members with `manage_integrations`) for machines that
//! push leads in. A key is 32 random bytes shown once; only its SHA-256 is stored, with its
//! first characters for lists. Revoking takes effect on the next request. A key authenticates
//! only the routes of its scopes ([`crate::policy::keys`]). The handlers and the extractor of
//! key callers are in [`http`].

pub mod http;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::token;
use crate::db::{Db, Tx, cursor};
use crate::error::{Error, Result};
use crate::views::apikey::{ApiKeyCreated, ApiKeyView, ApiKeysPage, Scope};
use crate::{on_db, on_tx};

/// Live keys a workspace may hold at once.
pub const MAX_ACTIVE_KEYS: i64 = 100;
/// How many characters of a key a list shows.
const PREFIX_LEN: usize = 12;
/// `last_used_at` is written at most this often per key (a write per request would be waste).
const TOUCH_EVERY_SECS: i64 = 60;

/// A caller authenticated by an API key: the workspace it acts in and what it may do.
#[derive(Clone, Debug)]
pub struct KeyCaller {
    pub key_id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    prefix: String,
    scopes: sqlx::types::Json<Vec<Scope>>,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl Row {
    fn view(self) -> ApiKeyView {
        ApiKeyView {
            id: self.id,
            name: self.name,
            scopes: self.scopes.0,
            prefix: self.prefix,
            created_by: self.created_by,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        }
    }
}

const LIST: &str = "SELECT id, name, prefix, scopes, created_by, created_at, last_used_at, revoked_at \
    FROM api_keys WHERE workspace_id = $1 \
    AND ($2 IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
    ORDER BY created_at DESC, id DESC LIMIT $4";

/// Scope names as given, checked: at least one, all known (422 naming the unknown one).
pub fn parse_scopes(raw: &[String]) -> Result<Vec<Scope>> {
    if raw.is_empty() {
        return Err(Error::unprocessable("invalid_scopes", "scopes: give at least one (e.g. \"leads:write\")"));
    }
    let mut scopes = Vec::new();
    for s in raw {
        let scope = Scope::parse(s.trim()).ok_or_else(|| {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            Error::unprocessable("invalid_scopes", format!("scopes: unknown scope {s:?} (known: {})", known.join(", ")))
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes)
}

/// Creates a key in `workspace_id` by `by`; the answer is the only place the key appears.
pub async fn create(
    tx: &mut Tx,
    workspace_id: Uuid,
    by: Uuid,
    name: String,
    scopes: Vec<Scope>,
    now: DateTime<Utc>,
) -> Result<ApiKeyCreated> {
    let active: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_keys WHERE workspace_id = $1 AND revoked_at IS NULL"
    )
    .bind(workspace_id)
    .fetch_one(c)
    .await)?;
    if active >= MAX_ACTIVE_KEYS {
        return Err(Error::unprocessable(
            "too_many_api_keys",
            format!("a workspace holds at most {MAX_ACTIVE_KEYS} live API keys: revoke one first"),
        ));
    }
    let (key, hash) = token::generate_api_key();
    let id = Uuid::now_v7();
    let prefix: String = key.chars().take(PREFIX_LEN).collect();
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO api_keys (id, workspace_id, name, prefix, key_hash, scopes, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )
    .bind(id)
    .bind(workspace_id)
    .bind(&name)
    .bind(&prefix)
    .bind(&hash)
    .bind(sqlx::types::Json(&scopes))
    .bind(by)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let api_key = ApiKeyView {
        id,
        name,
        scopes,
        prefix,
        created_by: Some(by),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    Ok(ApiKeyCreated { api_key, key })
}

/// The workspace's keys, newest first (revoked ones too, with `revoked_at`).
pub async fn list(
    db: &Db,
    workspace_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<ApiKeysPage> {
    let mut rows: Vec<Row> = on_db!(db, |p| sqlx::query_as(LIST)
        .bind(workspace_id)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit + 1)
        .fetch_all(p)
        .await)?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| cursor::encode(r.created_at, r.id))
    } else {
        None
    };
    Ok(ApiKeysPage { api_keys: rows.into_iter().map(Row::view).collect(), next_cursor })
}

/// Revokes a key of `workspace_id` (404 for any other); revoking twice is no error.
/// Revokes a key; returns whether it was live until now (a second revoke changes nothing).
pub async fn revoke(tx: &mut Tx, workspace_id: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    let found: Option<Option<DateTime<Utc>>> =
        on_tx!(tx, |c| sqlx::query_scalar("SELECT revoked_at FROM api_keys WHERE id = $1 AND workspace_id = $2")
            .bind(id)
            .bind(workspace_id)
            .fetch_optional(c)
            .await)?;
    match found {
        None => Err(Error::not_found()),
        Some(Some(_)) => Ok(false),
        Some(None) => {
            on_tx!(tx, |c| sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
            Ok(true)
        }
    }
}

#[derive(sqlx::FromRow)]
struct CallerRow {
    id: Uuid,
    workspace_id: Uuid,
    name: String,
    scopes: sqlx::types::Json<Vec<Scope>>,
}

/// The live key this is, or `None` (unknown or revoked).
pub async fn authenticate(db: &Db, key: &str) -> Result<Option<KeyCaller>> {
    let hash = token::digest(key.trim());
    let row: Option<CallerRow> = on_db!(db, |p| sqlx::query_as(
        "SELECT id, workspace_id, name, scopes FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
    )
    .bind(&hash)
    .fetch_optional(p)
    .await)?;
    Ok(row.map(|r| KeyCaller { key_id: r.id, workspace_id: r.workspace_id, name: r.name, scopes: r.scopes.0 }))
}

/// Notes that `key_id` was used at `now` (at most once a minute per key).
pub async fn touch(tx: &mut Tx, key_id: Uuid, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)"
    )
    .bind(now)
    .bind(key_id)
    .bind(now - chrono::Duration::seconds(TOUCH_EVERY_SECS))
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
