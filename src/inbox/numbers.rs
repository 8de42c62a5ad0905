//! Connected WhatsApp Business numbers. The access token is write-only.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::{DbResultExt, Error, Result};
use crate::extract::{Json, Path};
use crate::on_db;
use crate::policy;
use crate::state::AppState;

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Number {
    pub id: Uuid,
    #[serde(skip)]
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
    fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["access_token_set"] = json!(true);
        v["connected"] = json!(self.disconnected_at.is_none());
        v
    }
}

const COLS: &str = "id, workspace_id, phone_number_id, display_phone_number, waba_id, owner_member_id, \
    auto_import_contacts, needs_reauth, created_at, disconnected_at";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateNumber {
    phone_number_id: String,
    display_phone_number: String,
    access_token: String,
    waba_id: Option<String>,
    owner_member_id: Option<Uuid>,
    #[serde(default)]
    auto_import_contacts: bool,
}

fn require_integrations(user: &CurrentUser) -> Result<()> {
    if policy::can_manage_integrations(&user.viewer()) {
        Ok(())
    } else {
        Err(Error::forbidden("forbidden", "connecting numbers needs the manage_integrations permission"))
    }
}

fn validate_graph_id(value: &str, what: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::unprocessable("invalid_number", format!("{what} must be Meta's numeric id")));
    }
    Ok(v.to_owned())
}

async fn check_member(st: &AppState, workspace_id: Uuid, member: Option<Uuid>) -> Result<()> {
    let Some(member) = member else { return Ok(()) };
    let found: Option<Uuid> = on_db!(&st.db, |p| sqlx::query_scalar(
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

#[instrument(skip_all)]
pub async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateNumber>,
) -> Result<(StatusCode, Json<Value>)> {
    require_integrations(&user)?;
    let phone_number_id = validate_graph_id(&body.phone_number_id, "phone_number_id")?;
    let display = crate::phone::normalize(&body.display_phone_number)
        .ok_or_else(|| Error::unprocessable("invalid_phone", "display_phone_number is not a phone number"))?;
    let token = body.access_token.trim();
    if token.is_empty() || token.len() > 4096 {
        return Err(Error::unprocessable("invalid_access_token", "access_token must be a non-empty token"));
    }
    let waba_id = body.waba_id.as_deref().map(|w| validate_graph_id(w, "waba_id")).transpose()?;
    check_member(&st, user.workspace_id, body.owner_member_id).await?;
    let id = Uuid::now_v7();
    let now = st.clock.now();
    on_db!(&st.db, |p| sqlx::query(
        "INSERT INTO numbers (id, workspace_id, phone_number_id, display_phone_number, access_token, waba_id, \
         owner_member_id, auto_import_contacts, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )
    .bind(id)
    .bind(user.workspace_id)
    .bind(&phone_number_id)
    .bind(&display)
    .bind(token)
    .bind(&waba_id)
    .bind(body.owner_member_id)
    .bind(body.auto_import_contacts)
    .bind(now)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
    .on_unique("number_connected", "that phone_number_id is already connected")?;
    tracing::info!(number_id = %id, phone_number_id, "number connected");
    let n = load(&st, user.workspace_id, id).await?;
    Ok((StatusCode::CREATED, Json(n.to_json())))
}

pub async fn load(st: &AppState, workspace_id: Uuid, id: Uuid) -> Result<Number> {
    let sql = format!("SELECT {COLS} FROM numbers WHERE id = $1 AND workspace_id = $2");
    on_db!(&st.db, |p| sqlx::query_as(&sql).bind(id).bind(workspace_id).fetch_optional(p).await)?
        .ok_or_else(Error::not_found)
}

#[instrument(skip_all)]
pub async fn list(State(st): State<AppState>, user: CurrentUser) -> Result<Json<Value>> {
    let sql = format!("SELECT {COLS} FROM numbers WHERE workspace_id = $1 ORDER BY created_at, id LIMIT 1000");
    let rows: Vec<Number> = on_db!(&st.db, |p| sqlx::query_as(&sql).bind(user.workspace_id).fetch_all(p).await)?;
    Ok(Json(json!({"numbers": rows.iter().map(Number::to_json).collect::<Vec<_>>(), "next_cursor": null})))
}

#[instrument(skip_all)]
pub async fn get_one(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<Value>> {
    Ok(Json(load(&st, user.workspace_id, id).await?.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchNumber {
    access_token: Option<String>,
    auto_import_contacts: Option<bool>,
    #[serde(default, with = "serde_with_double_option")]
    owner_member_id: Option<Option<Uuid>>,
}

/// `null` vs absent for optional fields that can be cleared.
mod serde_with_double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[instrument(skip_all)]
pub async fn patch(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchNumber>,
) -> Result<Json<Value>> {
    require_integrations(&user)?;
    let n = load(&st, user.workspace_id, id).await?;
    if let Some(token) = body.access_token {
        let token = token.trim().to_owned();
        if token.is_empty() || token.len() > 4096 {
            return Err(Error::unprocessable("invalid_access_token", "access_token must be a non-empty token"));
        }
        on_db!(&st.db, |p| sqlx::query("UPDATE numbers SET access_token = $1, needs_reauth = FALSE WHERE id = $2")
            .bind(&token)
            .bind(n.id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
    }
    if let Some(auto) = body.auto_import_contacts {
        on_db!(&st.db, |p| sqlx::query("UPDATE numbers SET auto_import_contacts = $1 WHERE id = $2")
            .bind(auto)
            .bind(n.id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
    }
    if let Some(owner) = body.owner_member_id {
        check_member(&st, user.workspace_id, owner).await?;
        on_db!(&st.db, |p| sqlx::query("UPDATE numbers SET owner_member_id = $1 WHERE id = $2")
            .bind(owner)
            .bind(n.id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(Json(load(&st, user.workspace_id, id).await?.to_json()))
}

#[instrument(skip_all)]
pub async fn delete(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    require_integrations(&user)?;
    let n = load(&st, user.workspace_id, id).await?;
    if n.disconnected_at.is_none() {
        let now = st.clock.now();
        on_db!(&st.db, |p| sqlx::query(
            "UPDATE numbers SET disconnected_at = $1 WHERE id = $2 AND disconnected_at IS NULL"
        )
        .bind(now)
        .bind(n.id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        tracing::info!(number_id = %n.id, "number disconnected");
    }
    Ok(StatusCode::NO_CONTENT)
}
