//! Connected WhatsApp Business numbers. The access token is write-only.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::error::{DbResultExt, Error, Result};
use crate::views::number::NumberView;
use crate::{on_db, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Number {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: Option<String>,
    pub owner_member_id: Option<Uuid>,
    pub auto_import_contacts: bool,
    pub needs_reauth: bool,
    pub created_at: DateTime<Utc>,
    pub disconnected_at: Option<DateTime<Utc>>,
}

impl Number {
    pub fn view(&self) -> NumberView {
        NumberView {
            id: self.id,
            phone_number_id: self.phone_number_id.clone(),
            display_phone_number: self.display_phone_number.clone(),
            waba_id: self.waba_id.clone(),
            owner_member_id: self.owner_member_id,
            auto_import_contacts: self.auto_import_contacts,
            needs_reauth: self.needs_reauth,
            created_at: self.created_at,
            disconnected_at: self.disconnected_at,
            access_token_set: true,
            connected: self.disconnected_at.is_none(),
        }
    }
}

const COLS: &str = "id, workspace_id, phone_number_id, display_phone_number, waba_id, owner_member_id, \
    auto_import_contacts, needs_reauth, created_at, disconnected_at";

/// A number to connect (validated).
pub struct NewNumber {
    pub workspace_id: Uuid,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub access_token: String,
    pub waba_id: Option<String>,
    pub owner_member_id: Option<Uuid>,
    pub auto_import_contacts: bool,
}

/// Checks that `member` (when given) is a member of the workspace who is not deactivated.
pub async fn check_member(tx: &mut Tx, workspace_id: Uuid, member: Option<Uuid>) -> Result<()> {
    let Some(member) = member else { return Ok(()) };
    let found: Option<Uuid> = on_tx!(tx, |p| sqlx::query_scalar(
        "SELECT id FROM users WHERE id = $1 AND workspace_id = $2 AND status <> 'deactivated'"
    )
    .bind(member)
    .bind(workspace_id)
    .fetch_optional(p)
    .await)?;
    found
        .map(|_| ())
        .ok_or_else(|| Error::unprocessable("unknown_member", "owner_member_id is not a member of this workspace"))
}

/// Connects a number (409 when its `phone_number_id` is connected already).
pub async fn connect(tx: &mut Tx, n: NewNumber, now: DateTime<Utc>) -> Result<Number> {
    check_member(tx, n.workspace_id, n.owner_member_id).await?;
    let id = Uuid::now_v7();
    on_tx!(tx, |p| sqlx::query(
        "INSERT INTO numbers (id, workspace_id, phone_number_id, display_phone_number, access_token, waba_id, \
         owner_member_id, auto_import_contacts, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )
    .bind(id)
    .bind(n.workspace_id)
    .bind(&n.phone_number_id)
    .bind(&n.display_phone_number)
    .bind(&n.access_token)
    .bind(&n.waba_id)
    .bind(n.owner_member_id)
    .bind(n.auto_import_contacts)
    .bind(now)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
    .on_unique("number_connected", "that phone_number_id is already connected")?;
    tracing::info!(number_id = %id, phone_number_id = n.phone_number_id, "number connected");
    load_tx(tx, n.workspace_id, id).await
}

/// A number of the workspace; 404 when there is none.
pub async fn load(db: &Db, workspace_id: Uuid, id: Uuid) -> Result<Number> {
    let sql = format!("SELECT {COLS} FROM numbers WHERE id = $1 AND workspace_id = $2");
    on_db!(db, |p| sqlx::query_as(&sql).bind(id).bind(workspace_id).fetch_optional(p).await)?
        .ok_or_else(Error::not_found)
}

/// [`load`] inside a write transaction.
pub async fn load_tx(tx: &mut Tx, workspace_id: Uuid, id: Uuid) -> Result<Number> {
    let sql = format!("SELECT {COLS} FROM numbers WHERE id = $1 AND workspace_id = $2");
    on_tx!(tx, |c| sqlx::query_as(&sql).bind(id).bind(workspace_id).fetch_optional(c).await)?
        .ok_or_else(Error::not_found)
}

/// The workspace's numbers, oldest first.
pub async fn list(db: &Db, workspace_id: Uuid) -> Result<Vec<Number>> {
    let sql = format!("SELECT {COLS} FROM numbers WHERE workspace_id = $1 ORDER BY created_at, id LIMIT 1000");
    Ok(on_db!(db, |p| sqlx::query_as(&sql).bind(workspace_id).fetch_all(p).await)?)
}

/// Changes to a number (validated).
#[derive(Default)]
pub struct NumberChanges {
    pub access_token: Option<String>,
    pub auto_import_contacts: Option<bool>,
    /// `Some(None)` clears the owner.
    pub owner_member_id: Option<Option<Uuid>>,
}

/// Applies `changes` to number `n` (a new token clears `needs_reauth`).
pub async fn change(tx: &mut Tx, n: &Number, changes: NumberChanges) -> Result<Number> {
    if let Some(token) = changes.access_token {
        on_tx!(tx, |p| sqlx::query("UPDATE numbers SET access_token = $1, needs_reauth = FALSE WHERE id = $2")
            .bind(&token)
            .bind(n.id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
    }
    if let Some(auto) = changes.auto_import_contacts {
        on_tx!(tx, |p| sqlx::query("UPDATE numbers SET auto_import_contacts = $1 WHERE id = $2")
            .bind(auto)
            .bind(n.id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
    }
    if let Some(owner) = changes.owner_member_id {
        check_member(tx, n.workspace_id, owner).await?;
        on_tx!(tx, |p| sqlx::query("UPDATE numbers SET owner_member_id = $1 WHERE id = $2")
            .bind(owner)
            .bind(n.id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
    }
    load_tx(tx, n.workspace_id, n.id).await
}

/// Disconnects a number: later webhooks for it are journaled only, nothing more is sent.
pub async fn disconnect(tx: &mut Tx, n: &Number, now: DateTime<Utc>) -> Result<bool> {
    if n.disconnected_at.is_none() {
        on_tx!(tx, |p| sqlx::query(
            "UPDATE numbers SET disconnected_at = $1 WHERE id = $2 AND disconnected_at IS NULL"
        )
        .bind(now)
        .bind(n.id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        tracing::info!(number_id = %n.id, "number disconnected");
        return Ok(true);
    }
    Ok(false)
}
