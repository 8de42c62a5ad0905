//! Lead distribution: rules that forward new leads to people, in this server or outside it.
//!
//! Every rule whose criteria hold (as assignment criteria; none = every lead) applies,
//! independently: `broadcast` sends the lead to each recipient, `round_robin` to the one whose
//! turn it is (`leads_per_round` each; the position is kept in `distribution_rr`, locked per
//! rule, so concurrent leads take turns exactly). A recipient gets the lead by their channels:
//! `app` creates it in their own workspace assigned to them, with `assignment.alert` (or keeps
//! it waiting in `distribution_pending` until an account with that email is active); `email`
//! queues a mail with the lead's details and who sent it. Each (lead, recipient) makes one
//! history entry. With `keep_copy: false` a lead that at least one rule distributed is deleted
//! from the sending workspace. The handlers are in [`http`].

pub mod http;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::assignment::engine::{self, LeadFields};
use crate::assignment::{Criterion, FIELDS, OPS};
use crate::db::{Db, Tx, cursor};
use crate::error::{Error, Result};
use crate::events::{Event, NewEvent, Work};
use crate::inbox::assignee::Change;
use crate::inbox::leads::{self, Lead, NewLead};
use crate::mail;
use crate::views::distribution::{
    Channel, Delivery, DeliveryStatus, DistributionMode, HistoryEntry, HistoryLead, HistoryPage,
};
use crate::views::timeline::AssignmentNotice;
use crate::{on_db, on_tx};

/// Limits of the settings.
const MAX_RULES: usize = 50;
const MAX_RECIPIENTS: usize = 100;
const MAX_CRITERIA: usize = 20;

fn yes() -> bool {
    true
}

fn one() -> i64 {
    1
}

/// The workspace's distribution settings, as `GET/PUT /distribution` carry them.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DistributionSettings)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Keep a distributed lead in this workspace too.
    #[serde(default = "yes")]
    pub keep_copy: bool,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { keep_copy: true, rules: Vec::new() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DistributionRule)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// All must hold; none: every lead.
    #[serde(default)]
    pub criteria: Vec<Criterion>,
    pub mode: DistributionMode,
    /// In round-robin order.
    pub recipients: Vec<Recipient>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub email: String,
    pub channels: Vec<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp_phone: Option<String>,
    /// Leads in a row in round robin, 1 to 10.
    #[serde(default = "one")]
    pub leads_per_round: i64,
}

fn bad(code: &'static str, message: impl Into<String>) -> Error {
    Error::unprocessable(code, message)
}

/// Checks settings against the contract and normalises them (emails lower-cased, channels
/// without repeats). Errors name the rule and field.
pub fn validate(mut s: Settings) -> Result<Settings> {
    if s.rules.len() > MAX_RULES {
        return Err(bad("too_many_rules", format!("at most {MAX_RULES} rules")));
    }
    let mut names = HashSet::new();
    for (i, r) in s.rules.iter_mut().enumerate() {
        r.name = r.name.trim().to_owned();
        if r.name.is_empty() || r.name.chars().count() > 200 {
            return Err(bad("invalid_rule", format!("rules[{i}].name must have 1 to 200 characters")));
        }
        if !names.insert(r.name.clone()) {
            return Err(bad("invalid_rule", format!("rules[{i}].name: two rules are named {:?}", r.name)));
        }
        if r.criteria.len() > MAX_CRITERIA {
            return Err(bad("invalid_rule", format!("rules[{i}].criteria: at most {MAX_CRITERIA}")));
        }
        for c in &r.criteria {
            let custom = c.field.strip_prefix("custom.").is_some_and(|k| !k.is_empty() && k.len() <= 100);
            if !(FIELDS.contains(&c.field.as_str()) || custom) {
                return Err(bad(
                    "invalid_field",
                    format!(
                        "rules[{i}].criteria: field {:?} must be source, page, form, language, country or custom.<key>",
                        c.field
                    ),
                ));
            }
            if !OPS.contains(&c.op.as_str()) {
                return Err(bad(
                    "invalid_op",
                    format!(
                        "rules[{i}].criteria: op {:?} must be equals, not_equals, contains, starts_with or ends_with",
                        c.op
                    ),
                ));
            }
            if c.value.len() > 500 {
                return Err(bad("invalid_value", format!("rules[{i}].criteria: value is too long")));
            }
        }
        if r.recipients.is_empty() || r.recipients.len() > MAX_RECIPIENTS {
            return Err(bad(
                "invalid_recipients",
                format!("rules[{i}].recipients must have 1 to {MAX_RECIPIENTS} recipients"),
            ));
        }
        let mut emails = HashSet::new();
        for (j, p) in r.recipients.iter_mut().enumerate() {
            let at = format!("rules[{i}].recipients[{j}]");
            p.email = crate::workspace::validate_email(&p.email)
                .map_err(|_| bad("invalid_email", format!("{at}.email is not a valid address")))?;
            if !emails.insert(p.email.clone()) {
                return Err(bad("invalid_recipients", format!("{at}.email: {} is listed twice", p.email)));
            }
            let mut seen = Vec::new();
            for c in &p.channels {
                if !seen.contains(c) {
                    seen.push(*c);
                }
            }
            p.channels = seen;
            if p.channels.is_empty() {
                return Err(bad("invalid_channels", format!("{at}.channels: give at least one of app, email")));
            }
            if p.channels.contains(&Channel::Whatsapp) {
                return Err(bad(
                    "channel_unavailable",
                    format!("{at}.channels: whatsapp delivery is not available on this server yet (use app or email)"),
                ));
            }
            if !(1..=10).contains(&p.leads_per_round) {
                return Err(bad("invalid_leads_per_round", format!("{at}.leads_per_round must be between 1 and 10")));
            }
        }
    }
    Ok(s)
}

#[derive(sqlx::FromRow)]
struct SettingsRow {
    settings: sqlx::types::Json<Settings>,
    updated_by: Option<Uuid>,
}

/// The workspace's settings (the defaults until saved).
pub async fn load(db: &Db, workspace_id: Uuid) -> Result<Settings> {
    let row: Option<SettingsRow> = on_db!(db, |p| sqlx::query_as(
        "SELECT settings, updated_by FROM distribution_settings WHERE workspace_id = $1"
    )
    .bind(workspace_id)
    .fetch_optional(p)
    .await)?;
    Ok(row.map(|r| r.settings.0).unwrap_or_default())
}

/// Stores validated settings, saved by `by` (the sender named in forwarded leads).
pub async fn save(tx: &mut Tx, workspace_id: Uuid, by: Uuid, s: &Settings, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO distribution_settings (workspace_id, settings, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (workspace_id) DO UPDATE SET settings = excluded.settings, updated_by = excluded.updated_by, \
         updated_at = excluded.updated_at"
    )
    .bind(workspace_id)
    .bind(sqlx::types::Json(s))
    .bind(by)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A delivery as stored: the view's fields and the queued mail of an `email` delivery.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
struct Stored {
    channel: Channel,
    status: DeliveryStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mail_id: Option<Uuid>,
}

impl Stored {
    fn new(channel: Channel, status: DeliveryStatus, reason: Option<&str>) -> Stored {
        Stored { channel, status, reason: reason.map(str::to_owned), mail_id: None }
    }
}

/// The lead as forwarded (kept for a recipient who has no account yet).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
struct Snapshot {
    name: String,
    phone: Option<String>,
    source: Option<String>,
    custom_fields: Map<String, Value>,
    /// "NAME at WORKSPACE".
    sent_by: String,
    sender_workspace_id: Uuid,
}

impl Snapshot {
    fn details(&self) -> Vec<(String, String)> {
        let mut d = vec![("Name".to_owned(), self.name.clone())];
        if let Some(p) = &self.phone {
            d.push(("Phone".to_owned(), format!("+{p}")));
        }
        if let Some(s) = &self.source {
            d.push(("Source".to_owned(), s.clone()));
        }
        for (k, v) in &self.custom_fields {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            d.push((k.clone(), v));
        }
        d
    }
}

/// What distributing a lead did to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distributed {
    /// No rule applied (or no settings): the lead goes on as usual.
    No,
    /// At least one rule applied; the lead stays in the workspace.
    Kept,
    /// At least one rule applied and `keep_copy` is off: the lead was deleted here.
    Dropped,
}

/// Runs the workspace's distribution rules on a new `lead` in `work`. `mail_enabled`: SMTP is
/// configured (else email deliveries fail with that reason).
pub async fn distribute(work: &mut Work, lead: &Lead, mail_enabled: bool) -> Result<Distributed> {
    let ws = lead.workspace_id;
    let row: Option<SettingsRow> = on_tx!(work.tx(), |c| sqlx::query_as(
        "SELECT settings, updated_by FROM distribution_settings WHERE workspace_id = $1"
    )
    .bind(ws)
    .fetch_optional(c)
    .await)?;
    let Some(row) = row else { return Ok(Distributed::No) };
    let settings = row.settings.0;
    let fields =
        LeadFields { source: lead.source.clone(), phone: lead.phone.clone(), custom: lead.custom_fields.0.clone() };
    let matching: Vec<&Rule> =
        settings.rules.iter().filter(|r| r.criteria.iter().all(|c| engine::holds(c, &fields))).collect();
    if matching.is_empty() {
        return Ok(Distributed::No);
    }
    let workspace = mail::workspace_name(work.tx(), ws).await?;
    let sender: Option<String> = match row.updated_by {
        Some(id) => on_tx!(work.tx(), |c| sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await)?,
        None => None,
    };
    let snapshot = Snapshot {
        name: lead.name.clone(),
        phone: lead.phone.clone(),
        source: lead.source.clone(),
        custom_fields: lead.custom_fields.0.clone(),
        sent_by: format!("{} at {workspace}", sender.as_deref().unwrap_or(&workspace)),
        sender_workspace_id: ws,
    };
    for rule in matching {
        let recipients: Vec<&Recipient> = match rule.mode {
            DistributionMode::Broadcast => rule.recipients.iter().collect(),
            DistributionMode::RoundRobin => vec![next_in_turn(work.tx(), ws, rule).await?],
        };
        for r in recipients {
            deliver(work, rule, r, &snapshot, mail_enabled).await?;
        }
    }
    tracing::info!(lead_id = %lead.id, keep_copy = settings.keep_copy, "lead distributed");
    if settings.keep_copy {
        Ok(Distributed::Kept)
    } else {
        leads::delete(work, lead).await?;
        Ok(Distributed::Dropped)
    }
}

/// The recipient whose turn it is in `rule`, advancing the position. The row is locked for
/// the rest of the transaction (PostgreSQL; SQLite has one writer), so concurrent leads take
/// their turns one after the other.
async fn next_in_turn<'r>(tx: &mut Tx, ws: Uuid, rule: &'r Rule) -> Result<&'r Recipient> {
    let (position, given): (i64, i64) = on_tx!(tx, |c| sqlx::query_as(
        "INSERT INTO distribution_rr (workspace_id, rule, position, given) VALUES ($1, $2, 0, 0) \
         ON CONFLICT (workspace_id, rule) DO UPDATE SET position = distribution_rr.position \
         RETURNING position, given"
    )
    .bind(ws)
    .bind(&rule.name)
    .fetch_one(c)
    .await)?;
    let n = rule.recipients.len() as i64;
    let (mut position, mut given) = (position.rem_euclid(n), given);
    if given >= rule.recipients[position as usize].leads_per_round {
        position = (position + 1) % n;
        given = 0;
    }
    on_tx!(tx, |c| sqlx::query(
        "UPDATE distribution_rr SET position = $1, given = $2 WHERE workspace_id = $3 AND rule = $4"
    )
    .bind(position)
    .bind(given + 1)
    .bind(ws)
    .bind(&rule.name)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(&rule.recipients[position as usize])
}

/// The active account with this email: (user id, workspace id).
async fn account(tx: &mut Tx, email: &str) -> Result<Option<(Uuid, Uuid)>> {
    Ok(on_tx!(tx, |c| sqlx::query_as("SELECT id, workspace_id FROM users WHERE email = $1 AND status = 'active'")
        .bind(email)
        .fetch_optional(c)
        .await)?)
}

const WAITING: &str = "waiting for an account with this email";

/// Sends `lead` to one recipient by each of their channels, and records the history entry.
async fn deliver(work: &mut Work, rule: &Rule, r: &Recipient, lead: &Snapshot, mail_enabled: bool) -> Result<()> {
    let now = work.now();
    let ws = lead.sender_workspace_id;
    let history_id = Uuid::now_v7();
    let mut deliveries = Vec::new();
    let mut waiting = false;
    for channel in &r.channels {
        let d = match channel {
            Channel::App => match account(work.tx(), &r.email).await? {
                Some((_, their_ws)) if their_ws == ws => Stored::new(
                    Channel::App,
                    DeliveryStatus::Failed,
                    Some("the recipient is a member of this workspace: assign the lead instead"),
                ),
                Some((user, their_ws)) => {
                    hand_over(work, user, their_ws, lead, &rule.name).await?;
                    Stored::new(Channel::App, DeliveryStatus::Sent, None)
                }
                None => {
                    waiting = true;
                    Stored::new(Channel::App, DeliveryStatus::Queued, Some(WAITING))
                }
            },
            Channel::Email if !mail_enabled => {
                Stored::new(Channel::Email, DeliveryStatus::Failed, Some("SMTP is not configured on this server"))
            }
            Channel::Email => {
                let (workspace, sender) = lead.sent_by.rsplit_once(" at ").map(|(n, w)| (w, n)).unwrap_or(("", ""));
                let details = lead.details();
                let m = mail::ForwardedLead { to: &r.email, sender, workspace, details: &details }.mail();
                let mail_id = mail::enqueue(work.tx(), Some(ws), &m, now).await?;
                Stored { mail_id: Some(mail_id), ..Stored::new(Channel::Email, DeliveryStatus::Queued, None) }
            }
            Channel::Whatsapp => Stored::new(
                Channel::Whatsapp,
                DeliveryStatus::Failed,
                Some("whatsapp delivery is not available on this server yet"),
            ),
        };
        deliveries.push(d);
    }
    on_tx!(work.tx(), |c| sqlx::query(
        "INSERT INTO distribution_history (id, workspace_id, at, rule, lead_name, lead_phone, lead_source, \
         recipient_email, deliveries) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )
    .bind(history_id)
    .bind(ws)
    .bind(now)
    .bind(&rule.name)
    .bind(&lead.name)
    .bind(&lead.phone)
    .bind(&lead.source)
    .bind(&r.email)
    .bind(sqlx::types::Json(&deliveries))
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if waiting {
        on_tx!(work.tx(), |c| sqlx::query(
            "INSERT INTO distribution_pending (id, history_id, recipient_email, rule, lead, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(Uuid::now_v7())
        .bind(history_id)
        .bind(&r.email)
        .bind(&rule.name)
        .bind(sqlx::types::Json(lead))
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Puts the lead in the recipient's workspace, assigned to them, and alerts them. A lead with
/// that phone already there is given to them if it has nobody; one assigned to someone else
/// stays with them.
async fn hand_over(work: &mut Work, recipient: Uuid, their_ws: Uuid, lead: &Snapshot, rule: &str) -> Result<()> {
    let existing: Option<Uuid> = match &lead.phone {
        Some(phone) => {
            on_tx!(work.tx(), |c| sqlx::query_scalar("SELECT id FROM leads WHERE workspace_id = $1 AND phone = $2")
                .bind(their_ws)
                .bind(phone)
                .fetch_optional(c)
                .await)?
        }
        None => None,
    };
    let lead_id = match existing {
        Some(id) => {
            // The assignee change alerts the recipient itself.
            let mut change = Change::by_engine(their_ws, "distribution", "distribution", Some(rule.to_owned()));
            leads::adopt(work, &mut change, id, recipient).await?;
            return Ok(());
        }
        None => {
            let mut custom = lead.custom_fields.clone();
            custom.insert("sent_by".to_owned(), Value::String(lead.sent_by.clone()));
            let new = NewLead {
                workspace_id: their_ws,
                name: lead.name.clone(),
                phone: lead.phone.clone(),
                source: lead.source.clone(),
                assignee_id: Some(recipient),
                custom_fields: custom,
                group_ids: Vec::new(),
            };
            leads::insert(work, new).await?.id
        }
    };
    let notice = AssignmentNotice {
        lead_id,
        conversation_id: None,
        cause: "distribution".to_owned(),
        reason: "distribution".to_owned(),
        rule: Some(rule.to_owned()),
        member_id: Some(recipient),
        by_member_id: None,
    };
    work.emit(NewEvent::new(their_ws, Event::AssignmentAlert(notice)).to_user(recipient).lead(lead_id));
    Ok(())
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: Uuid,
    history_id: Uuid,
    rule: String,
    lead: sqlx::types::Json<Snapshot>,
}

/// Delivers the app leads that waited for `email`, now the active account `user` of
/// `workspace_id`. Returns how many.
pub async fn deliver_waiting(work: &mut Work, user: Uuid, workspace_id: Uuid, email: &str) -> Result<usize> {
    let rows: Vec<PendingRow> = on_tx!(work.tx(), |c| {
        sqlx::query_as(
        "SELECT id, history_id, rule, lead FROM distribution_pending WHERE recipient_email = $1 ORDER BY created_at, id"
    )
    .bind(email)
    .fetch_all(c)
    .await
    })?;
    let n = rows.len();
    for row in rows {
        let lead = row.lead.0;
        let status = if lead.sender_workspace_id == workspace_id {
            Stored::new(
                Channel::App,
                DeliveryStatus::Failed,
                Some("the recipient joined the sending workspace: assign the lead instead"),
            )
        } else {
            hand_over(work, user, workspace_id, &lead, &row.rule).await?;
            Stored::new(Channel::App, DeliveryStatus::Sent, None)
        };
        let deliveries: Option<sqlx::types::Json<Vec<Stored>>> =
            on_tx!(work.tx(), |c| sqlx::query_scalar("SELECT deliveries FROM distribution_history WHERE id = $1")
                .bind(row.history_id)
                .fetch_optional(c)
                .await)?;
        if let Some(mut d) = deliveries.map(|d| d.0) {
            for x in d.iter_mut().filter(|x| x.channel == Channel::App) {
                *x = status.clone();
            }
            on_tx!(work.tx(), |c| sqlx::query("UPDATE distribution_history SET deliveries = $1 WHERE id = $2")
                .bind(sqlx::types::Json(&d))
                .bind(row.history_id)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
        }
        on_tx!(work.tx(), |c| sqlx::query("DELETE FROM distribution_pending WHERE id = $1")
            .bind(row.id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    if n > 0 {
        tracing::info!(user_id = %user, leads = n, "distributed leads that waited for this account delivered");
    }
    Ok(n)
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    id: Uuid,
    at: DateTime<Utc>,
    rule: String,
    lead_name: String,
    lead_phone: Option<String>,
    lead_source: Option<String>,
    recipient_email: String,
    deliveries: sqlx::types::Json<Vec<Stored>>,
}

const HISTORY: &str = "SELECT id, at, rule, lead_name, lead_phone, lead_source, recipient_email, deliveries \
    FROM distribution_history WHERE workspace_id = $1 \
    AND ($2 IS NULL OR at < $2 OR (at = $2 AND id < $3)) \
    ORDER BY at DESC, id DESC LIMIT $4";

/// One page of the history, newest first; email deliveries read their mail's state now.
pub async fn history(
    db: &Db,
    workspace_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<HistoryPage> {
    let mut rows: Vec<HistoryRow> = on_db!(db, |p| sqlx::query_as(HISTORY)
        .bind(workspace_id)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit + 1)
        .fetch_all(p)
        .await)?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| cursor::encode(r.at, r.id))
    } else {
        None
    };
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let mut deliveries = Vec::new();
        for d in row.deliveries.0 {
            let (status, reason) = match d.mail_id {
                Some(mail_id) => mail_state(db, mail_id).await?,
                None => (d.status, d.reason),
            };
            deliveries.push(Delivery { channel: d.channel, status, reason });
        }
        let status = if deliveries.iter().any(|d| d.status == DeliveryStatus::Failed) {
            DeliveryStatus::Failed
        } else if deliveries.iter().any(|d| d.status == DeliveryStatus::Queued) {
            DeliveryStatus::Queued
        } else {
            DeliveryStatus::Sent
        };
        entries.push(HistoryEntry {
            id: row.id,
            at: row.at,
            rule: row.rule,
            lead: HistoryLead { name: row.lead_name, phone: row.lead_phone, source: row.lead_source },
            recipient_email: row.recipient_email,
            channels: deliveries.iter().map(|d| d.channel).collect(),
            status,
            deliveries,
        });
    }
    Ok(HistoryPage { entries, next_cursor })
}

/// An email delivery's state: its mail's.
async fn mail_state(db: &Db, mail_id: Uuid) -> Result<(DeliveryStatus, Option<String>)> {
    let row: Option<(mail::MailState, Option<String>)> =
        on_db!(db, |p| sqlx::query_as("SELECT state, last_error FROM mail_queue WHERE id = $1")
            .bind(mail_id)
            .fetch_optional(p)
            .await)?;
    Ok(match row {
        Some((mail::MailState::Sent, _)) => (DeliveryStatus::Sent, None),
        Some((mail::MailState::Failed, e)) => (DeliveryStatus::Failed, e),
        Some((mail::MailState::Pending, e)) => (DeliveryStatus::Queued, e),
        None => (DeliveryStatus::Failed, Some("the mail is gone from the queue".to_owned())),
    })
}
