//! Message templates: the approved messages that reopen a closed customer service window.
//! Kept per (workspace, WABA) as the Graph API lists them ([`replace`], on connect and on
//! demand) and as template webhooks change them ([`apply_update`]); a template send is checked
//! against them before any Graph call ([`check_send`]). A number whose WABA was never synced
//! sends as before.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::inbox::numbers::Number;
use crate::views::template::TemplateView;
use crate::{on_db, on_tx};

/// The category Meta charges as marketing (refused to contacts who stopped marketing).
pub const MARKETING: &str = "MARKETING";
/// The only status a template may be sent in.
pub const APPROVED: &str = "APPROVED";

/// Language codes as the Graph API spells them (`en_US`; webhooks may print `en-US`).
pub fn language(code: &str) -> String {
    code.trim().replace('-', "_")
}

/// A template as the Graph API lists it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Listed {
    pub id: Option<String>,
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub components: Option<Value>,
    #[serde(default)]
    pub rejected_reason: Option<String>,
    #[serde(default)]
    pub quality_score: Option<Value>,
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    name: String,
    language: String,
    category: String,
    status: String,
    quality: Option<String>,
    components: Json<Value>,
    rejected_reason: Option<String>,
}

impl Row {
    fn view(self) -> TemplateView {
        TemplateView {
            name: self.name,
            language: self.language,
            category: self.category,
            status: self.status,
            quality: self.quality,
            components: self.components.0,
            rejected_reason: self.rejected_reason.filter(|r| !r.is_empty() && r != "NONE"),
        }
    }
}

const UPSERT: &str = "INSERT INTO message_templates (workspace_id, waba_id, name, language, template_id, category, \
    status, quality, components, rejected_reason, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
    ON CONFLICT (workspace_id, waba_id, name, language) DO UPDATE SET template_id = excluded.template_id, \
    category = excluded.category, status = excluded.status, quality = excluded.quality, \
    components = excluded.components, rejected_reason = excluded.rejected_reason, updated_at = excluded.updated_at";

/// Replaces the templates of a WABA in a workspace with the Graph API's list, and marks its
/// numbers synced. Returns how many templates it has.
pub async fn replace(
    tx: &mut Tx,
    workspace_id: Uuid,
    waba_id: &str,
    list: &[Listed],
    now: DateTime<Utc>,
) -> Result<usize> {
    on_tx!(tx, |c| sqlx::query("DELETE FROM message_templates WHERE workspace_id = $1 AND waba_id = $2")
        .bind(workspace_id)
        .bind(waba_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    for t in list {
        let quality = t.quality_score.as_ref().and_then(|q| q.get("score")).and_then(Value::as_str);
        let components = t.components.clone().filter(Value::is_array).unwrap_or(Value::Array(Vec::new()));
        on_tx!(tx, |c| sqlx::query(UPSERT)
            .bind(workspace_id)
            .bind(waba_id)
            .bind(t.name.chars().take(512).collect::<String>())
            .bind(language(&t.language))
            .bind(&t.id)
            .bind(t.category.as_deref().unwrap_or("UTILITY").to_uppercase())
            .bind(t.status.as_deref().unwrap_or("PENDING").to_uppercase())
            .bind(quality)
            .bind(Json(&components))
            .bind(&t.rejected_reason)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    on_tx!(tx, |c| sqlx::query(
        "UPDATE numbers SET templates_synced_at = $1 WHERE workspace_id = $2 AND waba_id = $3"
    )
    .bind(now)
    .bind(workspace_id)
    .bind(waba_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    tracing::info!(workspace_id = %workspace_id, waba_id, templates = list.len(), "templates synced");
    Ok(list.len())
}

/// The templates a number can send (its WABA's), by name and language.
pub async fn list(db: &Db, number: &Number) -> Result<Vec<TemplateView>> {
    let Some(waba) = &number.waba_id else { return Ok(Vec::new()) };
    let rows: Vec<Row> = on_db!(db, |p| sqlx::query_as(
        "SELECT name, language, category, status, quality, components, rejected_reason FROM message_templates \
         WHERE workspace_id = $1 AND waba_id = $2 ORDER BY name, language LIMIT 1000"
    )
    .bind(number.workspace_id)
    .bind(waba)
    .fetch_all(p)
    .await)?;
    Ok(rows.into_iter().map(Row::view).collect())
}

/// Refuses a template send before any Graph call: a number whose templates were synced sends
/// only an `APPROVED` template it has (422 `unknown_template`, `template_not_approved`), and a
/// `MARKETING` one only to a lead who did not stop marketing messages (422
/// `marketing_opted_out`).
pub async fn check_send(db: &Db, number_id: Uuid, lead_id: Uuid, name: &str, lang: &str) -> Result<()> {
    type Found = (Option<DateTime<Utc>>, bool, Option<String>, Option<String>);
    let (synced, opted_out, status, category): Found = on_db!(db, |p| sqlx::query_as(
        "SELECT n.templates_synced_at, l.marketing_opt_out, t.status, t.category FROM numbers n \
         JOIN leads l ON l.id = $2 \
         LEFT JOIN message_templates t ON t.workspace_id = n.workspace_id AND t.waba_id = n.waba_id \
         AND t.name = $3 AND t.language = $4 WHERE n.id = $1"
    )
    .bind(number_id)
    .bind(lead_id)
    .bind(name)
    .bind(language(lang))
    .fetch_optional(p)
    .await)?
    .ok_or_else(Error::not_found)?;
    verdict(synced, opted_out, status, category, name, lang)
}

/// [`check_send`] inside a transaction, for a send the server makes itself (a distributed
/// lead's template to its recipient) to `lead_id` when that lead exists already.
pub async fn check_send_in(tx: &mut Tx, number_id: Uuid, lead_id: Option<Uuid>, name: &str, lang: &str) -> Result<()> {
    type Found = (Option<DateTime<Utc>>, bool, Option<String>, Option<String>);
    let (synced, opted_out, status, category): Found = on_tx!(tx, |c| sqlx::query_as(
        "SELECT n.templates_synced_at, COALESCE((SELECT l.marketing_opt_out FROM leads l WHERE l.id = $2), FALSE), \
         t.status, t.category FROM numbers n \
         LEFT JOIN message_templates t ON t.workspace_id = n.workspace_id AND t.waba_id = n.waba_id \
         AND t.name = $3 AND t.language = $4 WHERE n.id = $1"
    )
    .bind(number_id)
    .bind(lead_id)
    .bind(name)
    .bind(language(lang))
    .fetch_optional(c)
    .await)?
    .ok_or_else(Error::not_found)?;
    verdict(synced, opted_out, status, category, name, lang)
}

/// The decision of [`check_send`] from what the database knows.
fn verdict(
    synced: Option<DateTime<Utc>>,
    opted_out: bool,
    status: Option<String>,
    category: Option<String>,
    name: &str,
    lang: &str,
) -> Result<()> {
    if synced.is_none() {
        return Ok(());
    }
    let Some(status) = status else {
        return Err(Error::unprocessable(
            "unknown_template",
            format!("this number has no template {name:?} in {lang:?} (sync its templates if it is new)"),
        ));
    };
    if status != APPROVED {
        return Err(Error::unprocessable(
            "template_not_approved",
            format!("template {name:?} is {status}, not APPROVED"),
        ));
    }
    if opted_out && category.as_deref() == Some(MARKETING) {
        return Err(Error::unprocessable(
            "marketing_opted_out",
            "this contact stopped marketing messages: marketing templates are refused",
        ));
    }
    Ok(())
}

/// A change a template webhook reports. Fields not given stay as they are.
#[derive(Debug, Default)]
pub struct Update<'a> {
    pub template_id: Option<String>,
    pub name: Option<&'a str>,
    pub language: Option<String>,
    pub status: Option<String>,
    pub quality: Option<String>,
    pub category: Option<String>,
    pub rejected_reason: Option<String>,
}

/// Applies a template webhook to the templates of a WABA (in every workspace that has it):
/// matched by Meta's template id first, else by name and language. Returns how many rows
/// changed.
pub async fn apply_update(tx: &mut Tx, waba_id: &str, u: &Update<'_>, now: DateTime<Utc>) -> Result<u64> {
    Ok(on_tx!(tx, |c| sqlx::query(
        "UPDATE message_templates SET status = COALESCE($1, status), quality = COALESCE($2, quality), \
         category = COALESCE($3, category), rejected_reason = COALESCE($4, rejected_reason), updated_at = $5 \
         WHERE waba_id = $6 AND ((template_id IS NOT NULL AND template_id = $7) \
         OR (name = $8 AND language = $9))"
    )
    .bind(&u.status)
    .bind(&u.quality)
    .bind(&u.category)
    .bind(&u.rejected_reason)
    .bind(now)
    .bind(waba_id)
    .bind(&u.template_id)
    .bind(u.name)
    .bind(&u.language)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// The text a template send shows in the chat: its synced body with the send's body
/// parameters in place of `{{1}}`, `{{2}}`… (or `{{name}}` for named ones). `None` when the
/// template is not synced.
pub async fn render(
    db: &Db,
    number_id: Uuid,
    name: &str,
    lang: &str,
    components: Option<&Value>,
) -> Result<Option<String>> {
    let stored: Option<Json<Value>> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT t.components FROM message_templates t JOIN numbers n ON n.workspace_id = t.workspace_id \
         AND n.waba_id = t.waba_id WHERE n.id = $1 AND t.name = $2 AND t.language = $3"
    )
    .bind(number_id)
    .bind(name)
    .bind(language(lang))
    .fetch_optional(p)
    .await)?;
    let Some(stored) = stored else { return Ok(None) };
    let kind = |c: &Value, k: &str| c.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(k));
    let Some(body) = stored.0.as_array().into_iter().flatten().find(|c| kind(c, "BODY")) else { return Ok(None) };
    let Some(mut text) = body.get("text").and_then(Value::as_str).map(str::to_owned) else { return Ok(None) };
    let params = components.and_then(Value::as_array).into_iter().flatten().filter(|c| kind(c, "body"));
    for (i, p) in params.flat_map(|c| c.get("parameters").and_then(Value::as_array).into_iter().flatten()).enumerate() {
        let Some(value) = p.get("text").and_then(Value::as_str) else { continue };
        let key =
            p.get("parameter_name").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| (i + 1).to_string());
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    Ok(Some(text))
}

/// The synced body text of a number's template (with its `{{1}}` or `{{name}}` variables),
/// read inside a transaction; `None` when the template is not synced or has no body.
pub async fn body_in(tx: &mut Tx, number_id: Uuid, name: &str, lang: &str) -> Result<Option<String>> {
    let stored: Option<Json<Value>> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT t.components FROM message_templates t JOIN numbers n ON n.workspace_id = t.workspace_id \
         AND n.waba_id = t.waba_id WHERE n.id = $1 AND t.name = $2 AND t.language = $3"
    )
    .bind(number_id)
    .bind(name)
    .bind(language(lang))
    .fetch_optional(c)
    .await)?;
    let Some(stored) = stored else { return Ok(None) };
    let body = stored
        .0
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("BODY")));
    Ok(body.and_then(|b| b.get("text")).and_then(Value::as_str).map(str::to_owned))
}
