//! Connected WhatsApp Business numbers. The access token is write-only.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::error::{DbResultExt, Error, Result};
use crate::events::{Event, NewEvent, Work};
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
    pub quality_rating: Option<String>,
    pub messaging_limit_tier: Option<String>,
    pub account_status: Option<String>,
    pub templates_synced_at: Option<DateTime<Utc>>,
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
            quality_rating: self.quality_rating.clone(),
            messaging_limit_tier: self.messaging_limit_tier.clone(),
            account_status: self.account_status.clone(),
            templates_synced_at: self.templates_synced_at,
        }
    }
}

const COLS: &str = "id, workspace_id, phone_number_id, display_phone_number, waba_id, owner_member_id, \
    auto_import_contacts, needs_reauth, created_at, disconnected_at, quality_rating, messaging_limit_tier, \
    account_status, templates_synced_at";

/// A number to connect (validated).
pub struct NewNumber {
    pub workspace_id: Uuid,
    pub phone_number_id: String,
    pub display_phone_number: String,
    /// As stored: sealed by the caller with `Secrets::seal` (plaintext without a key).
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
         owner_member_id, auto_import_contacts, created_at, health_due_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)"
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
    /// As stored: sealed by the caller with `Secrets::seal`.
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

/// A number read inside a transaction (for the event written with a change).
pub async fn load_in(tx: &mut Tx, id: Uuid) -> Result<Number> {
    let sql = format!("SELECT {COLS} FROM numbers WHERE id = $1");
    Ok(on_tx!(tx, |c| sqlx::query_as(&sql).bind(id).fetch_one(c).await)?)
}

/// A number of any workspace, by id (for background jobs); 404 when there is none.
pub async fn load_by_id(db: &Db, id: Uuid) -> Result<Number> {
    let sql = format!("SELECT {COLS} FROM numbers WHERE id = $1");
    on_db!(db, |p| sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?.ok_or_else(Error::not_found)
}

/// A number's health as a webhook or the Graph API reports it; fields not given stay as they
/// are.
#[derive(Debug, Default, Clone)]
pub struct Health {
    pub quality_rating: Option<String>,
    pub messaging_limit_tier: Option<String>,
    pub account_status: Option<String>,
}

/// The connected numbers of a WABA.
pub async fn of_waba(tx: &mut Tx, waba_id: &str) -> Result<Vec<Number>> {
    let sql = format!("SELECT {COLS} FROM numbers WHERE waba_id = $1 AND disconnected_at IS NULL ORDER BY id");
    Ok(on_tx!(tx, |c| sqlx::query_as(&sql).bind(waba_id).fetch_all(c).await)?)
}

/// Sets what `h` gives of a number's health; `number.updated` when something changed. Returns
/// whether it did.
pub async fn set_health(w: &mut Work, n: &Number, h: &Health) -> Result<bool> {
    let changes = |new: &Option<String>, old: &Option<String>| new.is_some() && new != old;
    if !changes(&h.quality_rating, &n.quality_rating)
        && !changes(&h.messaging_limit_tier, &n.messaging_limit_tier)
        && !changes(&h.account_status, &n.account_status)
    {
        return Ok(false);
    }
    on_tx!(w.tx(), |c| sqlx::query(
        "UPDATE numbers SET quality_rating = COALESCE($1, quality_rating), \
         messaging_limit_tier = COALESCE($2, messaging_limit_tier), account_status = COALESCE($3, account_status) \
         WHERE id = $4"
    )
    .bind(&h.quality_rating)
    .bind(&h.messaging_limit_tier)
    .bind(&h.account_status)
    .bind(n.id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let now = load_in(w.tx(), n.id).await?;
    let flagged = matches!(now.quality_rating.as_deref(), Some("FLAGGED" | "RED" | "YELLOW"))
        || matches!(
            now.account_status.as_deref(),
            Some("restricted" | "disabled" | "scheduled_for_disable" | "disconnected")
        );
    if flagged {
        tracing::warn!(number_id = %n.id, quality = ?now.quality_rating, status = ?now.account_status, "number flagged by Meta");
    } else {
        tracing::info!(number_id = %n.id, quality = ?now.quality_rating, tier = ?now.messaging_limit_tier, status = ?now.account_status, "number health changed");
    }
    w.emit(NewEvent::new(n.workspace_id, Event::NumberUpdated(now.view())));
    Ok(true)
}

/// A messaging limit as Meta writes it: a tier name, or a number of conversations (-1:
/// unlimited).
pub fn tier(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => {
            let s = s.trim().to_uppercase();
            Some(if s.starts_with("TIER_") { s } else { format!("TIER_{s}") })
        }
        Value::Number(n) => Some(match n.as_i64()? {
            -1 => "TIER_UNLIMITED".to_owned(),
            n if n >= 1000 && n % 1000 == 0 => format!("TIER_{}K", n / 1000),
            n => format!("TIER_{n}"),
        }),
        Value::Object(o) => tier(o.get("current_limit").or_else(|| o.get("limit"))),
        _ => None,
    }
}

// ---- Health read from the Graph API ----

/// How often a number's health is read again after a read (Meta advises a daily poll).
pub const HEALTH_READ_EVERY: chrono::Duration = chrono::Duration::days(1);
/// When a failed read is tried again.
pub const HEALTH_READ_RETRY: chrono::Duration = chrono::Duration::minutes(15);

/// What [`health_from_graph`] asks the Graph API for (`GET /{phone_number_id}?fields=`);
/// [`HEALTH_FIELDS_OLD`] when an API version refuses a field of it.
pub const HEALTH_FIELDS: &str = "quality_rating,whatsapp_business_manager_messaging_limit,status";
pub const HEALTH_FIELDS_OLD: &str = "quality_rating,messaging_limit_tier,status";

/// What the Graph API's phone-number fields say of number `n`'s health: `quality_rating`
/// (`GREEN`, `YELLOW`, `RED`; `NA` and `UNKNOWN` are `UNKNOWN`), the messaging limit
/// (`whatsapp_business_manager_messaging_limit`, else the deprecated `messaging_limit_tier`),
/// and the number's `status` as an account status (a problem it names replaces the stored
/// one; `CONNECTED` only fills in `active` when nothing was reported yet).
pub fn health_from_graph(v: &Value, n: &Number) -> Health {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(|s| s.trim().to_uppercase()).filter(|s| !s.is_empty());
    let mut quality_rating = s("quality_rating").map(|q| match q.as_str() {
        "NA" => "UNKNOWN".to_owned(),
        _ => q,
    });
    let account_status = match s("status").as_deref() {
        // A number stays CONNECTED while its account is restricted or warned: what the account
        // webhooks said stays (they also say when it ends); a number never reported is active.
        Some("CONNECTED") => n.account_status.is_none().then_some("active"),
        Some("FLAGGED") => {
            quality_rating.get_or_insert_with(|| "FLAGGED".to_owned());
            None
        }
        Some("RESTRICTED" | "RATE_LIMITED") => Some("restricted"),
        Some("BANNED") => Some("disabled"),
        Some("DISCONNECTED") => Some("disconnected"),
        Some("DELETED") => Some("deleted"),
        _ => None,
    };
    Health {
        quality_rating,
        messaging_limit_tier: tier(v.get("whatsapp_business_manager_messaging_limit"))
            .or_else(|| tier(v.get("messaging_limit_tier"))),
        account_status: account_status.map(str::to_owned),
    }
}

/// Asks for a read of the number's health from the Graph API as soon as the reader gets to it.
pub async fn read_health_soon(tx: &mut Tx, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, |c| sqlx::query("UPDATE numbers SET health_due_at = $1 WHERE id = $2 AND disconnected_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Connected numbers whose health read is due, at most `limit`, the longest due first.
pub async fn health_due(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>> {
    Ok(on_db!(db, |p| sqlx::query_scalar(
        "SELECT id FROM numbers WHERE health_due_at <= $1 AND disconnected_at IS NULL ORDER BY health_due_at LIMIT $2"
    )
    .bind(now)
    .bind(limit)
    .fetch_all(p)
    .await)?)
}

/// Takes the due read of number `id` (on any node, one caller gets it): its due time moves to
/// `lease`, when it is due again should this reader die. Returns whether the caller got it.
pub async fn claim_health_read(db: &Db, id: Uuid, now: DateTime<Utc>, lease: DateTime<Utc>) -> Result<bool> {
    let _write = db.lock_writes().await;
    let n = on_db!(db, |p| sqlx::query(
        "UPDATE numbers SET health_due_at = $1 WHERE id = $2 AND health_due_at <= $3 AND disconnected_at IS NULL"
    )
    .bind(lease)
    .bind(id)
    .bind(now)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// After a read claimed with `lease`: the next one is due at `next`, unless a webhook asked
/// for one meanwhile (then that stays).
pub async fn health_read_done(tx: &mut Tx, id: Uuid, lease: DateTime<Utc>, next: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, |c| sqlx::query("UPDATE numbers SET health_due_at = $1 WHERE id = $2 AND health_due_at = $3")
        .bind(next)
        .bind(id)
        .bind(lease)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A number's access token, for a Graph API call made on its behalf (never answered to anyone).
pub async fn access_token(db: &Db, id: Uuid) -> Result<String> {
    Ok(on_db!(db, |p| sqlx::query_scalar("SELECT access_token FROM numbers WHERE id = $1")
        .bind(id)
        .fetch_one(p)
        .await)?)
}
