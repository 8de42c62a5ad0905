//! Lead distribution: rules that forward new leads to people, in this server or outside it.
//!
//! Every rule whose criteria hold (as assignment criteria; none = every lead) applies,
//! independently: `broadcast` sends the lead to each recipient, `round_robin` to the one whose
//! turn it is (`leads_per_round` each; the position is kept in `distribution_rr`, locked per
//! rule, so concurrent leads take turns exactly). A recipient gets the lead by their channels:
//! `app` creates it in their own workspace assigned to them, with `assignment.alert` (or keeps
//! it waiting in `distribution_pending` until an account with that email is active);
//! `email` queues a mail with the lead's details and who sent it; `whatsapp` queues a template
//! message to the recipient's phone through the outbox, in the sending workspace's chat with
//! them. Each (lead, recipient) makes one history entry, whose deliveries follow their mail or
//! message. With `keep_copy: false` a lead that at least one rule distributed is deleted from
//! the sending workspace (not one that came with a customer's WhatsApp message: its chat is
//! here).
//!
//! It runs for every new lead (intake, `POST /leads`, each CSV row, WhatsApp auto-import),
//! before the assignment, in the transaction that creates the lead. Runs take the event-log
//! lock first, as assignment runs do, so locks are always taken in the same order. The
//! handlers are in [`http`]; [`worker`] delivers leads that waited for an account created by
//! any path (an invitation accepted delivers at once).

pub mod http;
pub mod worker;

use std::collections::{HashMap, HashSet};

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
use crate::inbox::chat::{self, Contact};
use crate::inbox::leads::{self, Lead, NewLead};
use crate::inbox::{conversations, templates};
use crate::mail;
use crate::outbox::{self, SendBody};
use crate::views::distribution::{
    Channel, Delivery, DeliveryStatus, DistributionMode, HistoryEntry, HistoryLead, HistoryPage,
};
use crate::views::message::MessageStatus;
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
    /// The template channel `whatsapp` sends (required with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp_template: Option<TemplateRef>,
    /// The number channel `whatsapp` sends from; none: the workspace's first connected number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp_number_id: Option<Uuid>,
}

/// An approved template of the sending number, by name and language code.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    pub name: String,
    pub language: String,
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
                return Err(bad(
                    "invalid_channels",
                    format!("{at}.channels: give at least one of app, email, whatsapp"),
                ));
            }
            if let Some(phone) = &p.whatsapp_phone {
                let digits = crate::phone::normalize(phone).ok_or_else(|| {
                    bad("invalid_phone", format!("{at}.whatsapp_phone is not a valid international number"))
                })?;
                p.whatsapp_phone = Some(digits);
            }
            if let Some(t) = &mut p.whatsapp_template {
                t.name = t.name.trim().to_owned();
                t.language = templates::language(&t.language);
                if t.name.is_empty() || t.name.len() > 512 || t.language.is_empty() || t.language.len() > 20 {
                    return Err(bad(
                        "invalid_template",
                        format!("{at}.whatsapp_template needs a name and a language code"),
                    ));
                }
            }
            if p.channels.contains(&Channel::Whatsapp) {
                if p.whatsapp_phone.is_none() {
                    return Err(bad("invalid_phone", format!("{at}.whatsapp_phone is needed for channel whatsapp")));
                }
                if p.whatsapp_template.is_none() {
                    return Err(bad(
                        "invalid_template",
                        format!("{at}.whatsapp_template ({{\"name\",\"language\"}}) is needed for channel whatsapp"),
                    ));
                }
            }
            if !(1..=10).contains(&p.leads_per_round) {
                return Err(bad("invalid_leads_per_round", format!("{at}.leads_per_round must be between 1 and 10")));
            }
        }
    }
    Ok(s)
}

/// Checks that the numbers channel `whatsapp` sends from are connected numbers of the
/// workspace (422 naming the recipient otherwise).
pub async fn check_numbers(tx: &mut Tx, workspace_id: Uuid, s: &Settings) -> Result<()> {
    for (i, r) in s.rules.iter().enumerate() {
        for (j, p) in r.recipients.iter().enumerate() {
            if !p.channels.contains(&Channel::Whatsapp) {
                continue;
            }
            if sending_number(tx, workspace_id, p.whatsapp_number_id).await?.is_none() {
                let at = format!("rules[{i}].recipients[{j}]");
                return Err(match p.whatsapp_number_id {
                    Some(_) => bad(
                        "unknown_number",
                        format!("{at}.whatsapp_number_id is not a connected number of this workspace"),
                    ),
                    None => {
                        bad("no_number", format!("{at}.channels: whatsapp needs a connected number in this workspace"))
                    }
                });
            }
        }
    }
    Ok(())
}

/// The connected number `wanted` of the workspace, or its first connected number.
async fn sending_number(tx: &mut Tx, workspace_id: Uuid, wanted: Option<Uuid>) -> Result<Option<Uuid>> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT id FROM numbers WHERE workspace_id = $1 AND disconnected_at IS NULL AND ($2 IS NULL OR id = $2) \
         ORDER BY created_at, id LIMIT 1"
    )
    .bind(workspace_id)
    .bind(wanted)
    .fetch_optional(c)
    .await)?)
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

/// A delivery as stored: the view's fields, the queued mail of an `email` delivery and the
/// queued message of a `whatsapp` one (whose states the history reads).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
struct Stored {
    channel: Channel,
    status: DeliveryStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mail_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_id: Option<Uuid>,
}

impl Stored {
    fn new(channel: Channel, status: DeliveryStatus, reason: Option<&str>) -> Stored {
        Stored { channel, status, reason: reason.map(str::to_owned), mail_id: None, message_id: None }
    }

    fn failed(channel: Channel, reason: impl Into<String>) -> Stored {
        Stored { reason: Some(reason.into()), ..Stored::new(channel, DeliveryStatus::Failed, None) }
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

/// Where a new lead came from, as far as distribution cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Intake, the API, an import: without `keep_copy` a distributed lead leaves.
    Entered,
    /// A customer's WhatsApp message (auto-import): the lead stays whatever `keep_copy` says,
    /// its chat is in this workspace.
    Chat,
}

/// What the channels need of the server's configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct Setup {
    /// SMTP is configured (else email deliveries fail with that reason).
    pub mail_enabled: bool,
    /// The operator's session gap (seconds), overriding the workspaces' (for WhatsApp sends).
    pub session_gap: Option<i64>,
}

impl Setup {
    pub fn new(mail_enabled: bool, session_gap: Option<i64>) -> Setup {
        Setup { mail_enabled, session_gap }
    }
}

/// A workspace's rules and sender, loaded once for any number of new leads (a CSV import
/// distributes each row with the same plan).
pub struct Plan {
    workspace_id: Uuid,
    settings: Settings,
    /// "NAME at WORKSPACE".
    sent_by: String,
}

/// The workspace's plan; `None` when it has no rules.
pub async fn plan(tx: &mut Tx, workspace_id: Uuid) -> Result<Option<Plan>> {
    let row: Option<SettingsRow> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT settings, updated_by FROM distribution_settings WHERE workspace_id = $1"
    )
    .bind(workspace_id)
    .fetch_optional(c)
    .await)?;
    let Some(row) = row.filter(|r| !r.settings.0.rules.is_empty()) else { return Ok(None) };
    let workspace = mail::workspace_name(tx, workspace_id).await?;
    let sender: Option<String> = match row.updated_by {
        Some(id) => {
            on_tx!(tx, |c| sqlx::query_scalar("SELECT name FROM users WHERE id = $1").bind(id).fetch_optional(c).await)?
        }
        None => None,
    };
    let sent_by = format!("{} at {workspace}", sender.as_deref().unwrap_or(&workspace));
    Ok(Some(Plan { workspace_id, settings: row.settings.0, sent_by }))
}

/// Runs the workspace's distribution rules on a new `lead` in `work` (see the module docs).
pub async fn distribute(work: &mut Work, lead: &Lead, setup: Setup, origin: Origin) -> Result<Distributed> {
    match plan(work.tx(), lead.workspace_id).await? {
        Some(plan) => plan.apply(work, lead, setup, origin).await,
        None => Ok(Distributed::No),
    }
}

impl Plan {
    /// Distributes one new lead of the plan's workspace.
    pub async fn apply(&self, work: &mut Work, lead: &Lead, setup: Setup, origin: Origin) -> Result<Distributed> {
        debug_assert_eq!(lead.workspace_id, self.workspace_id);
        let fields =
            LeadFields { source: lead.source.clone(), phone: lead.phone.clone(), custom: lead.custom_fields.0.clone() };
        let matching: Vec<&Rule> =
            self.settings.rules.iter().filter(|r| r.criteria.iter().all(|c| engine::holds(c, &fields))).collect();
        if matching.is_empty() {
            return Ok(Distributed::No);
        }
        // As the assignment engine: the event-log lock first, then the round-robin rows.
        crate::events::log::serialise(work.tx()).await?;
        let snapshot = Snapshot {
            name: lead.name.clone(),
            phone: lead.phone.clone(),
            source: lead.source.clone(),
            custom_fields: lead.custom_fields.0.clone(),
            sent_by: self.sent_by.clone(),
            sender_workspace_id: self.workspace_id,
        };
        for rule in matching {
            let recipients: Vec<&Recipient> = match rule.mode {
                DistributionMode::Broadcast => rule.recipients.iter().collect(),
                DistributionMode::RoundRobin => vec![next_in_turn(work.tx(), self.workspace_id, rule).await?],
            };
            for r in recipients {
                deliver(work, rule, r, &snapshot, setup).await?;
            }
        }
        let keep = self.settings.keep_copy || origin == Origin::Chat;
        tracing::info!(lead_id = %lead.id, keep, "lead distributed");
        if keep {
            Ok(Distributed::Kept)
        } else {
            leads::delete(work, lead).await?;
            Ok(Distributed::Dropped)
        }
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
async fn deliver(work: &mut Work, rule: &Rule, r: &Recipient, lead: &Snapshot, setup: Setup) -> Result<()> {
    let now = work.now();
    let ws = lead.sender_workspace_id;
    let history_id = Uuid::now_v7();
    let mut deliveries = Vec::new();
    let mut waiting = false;
    for channel in &r.channels {
        let d = match channel {
            Channel::App => match account(work.tx(), &r.email).await? {
                Some((_, their_ws)) if their_ws == ws => {
                    Stored::failed(Channel::App, "the recipient is a member of this workspace: assign the lead instead")
                }
                Some((user, their_ws)) => {
                    hand_over(work, user, their_ws, lead, &rule.name).await?;
                    Stored::new(Channel::App, DeliveryStatus::Sent, None)
                }
                None => {
                    waiting = true;
                    Stored::new(Channel::App, DeliveryStatus::Queued, Some(WAITING))
                }
            },
            Channel::Email if !setup.mail_enabled => {
                Stored::failed(Channel::Email, "SMTP is not configured on this server")
            }
            Channel::Email => {
                let (workspace, sender) = lead.sent_by.rsplit_once(" at ").map(|(n, w)| (w, n)).unwrap_or(("", ""));
                let details = lead.details();
                let m = mail::ForwardedLead { to: &r.email, sender, workspace, details: &details }.mail();
                let mail_id = mail::enqueue(work.tx(), Some(ws), &m, now).await?;
                Stored { mail_id: Some(mail_id), ..Stored::new(Channel::Email, DeliveryStatus::Queued, None) }
            }
            Channel::Whatsapp => whatsapp(work, r, lead, setup).await?,
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

/// The text that stands for a template variable: `{{1}}`…`{{4}}` (or `{{name}}`, `{{phone}}`,
/// `{{source}}`, `{{sent_by}}`) are the lead's name, phone, source and who sent it; any other
/// variable is `-`.
fn variable(lead: &Snapshot, key: &str) -> String {
    let or_dash = |v: Option<String>| v.filter(|v| !v.trim().is_empty()).unwrap_or_else(|| "-".to_owned());
    match key {
        "1" | "name" | "lead_name" => lead.name.clone(),
        "2" | "phone" | "lead_phone" => or_dash(lead.phone.as_ref().map(|p| format!("+{p}"))),
        "3" | "source" | "lead_source" => or_dash(lead.source.clone()),
        "4" | "sent_by" => lead.sent_by.clone(),
        _ => "-".to_owned(),
    }
}

/// The variables of a template body, each once, in order of appearance.
fn variables(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let key = after[..end].trim();
        let plain = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !key.is_empty() && key.len() <= 100 && plain && !out.iter().any(|k| k.as_str() == key) {
            out.push(key.to_owned());
        }
        rest = &after[end + 2..];
    }
    out
}

/// A template component of a send, as the Graph API takes it.
#[derive(Serialize)]
struct BodyComponent {
    #[serde(rename = "type")]
    kind: &'static str,
    parameters: Vec<TextParameter>,
}

#[derive(Serialize)]
struct TextParameter {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter_name: Option<String>,
}

/// The body parameters of a template send with `body` (its synced text, if any), and the text
/// the chat shows. An unsynced template is sent without parameters.
fn template_send(body: Option<&str>, lead: &Snapshot) -> Result<(Option<Value>, Option<String>)> {
    let Some(body) = body else { return Ok((None, None)) };
    let keys = variables(body);
    let numbered = keys.iter().filter_map(|k| k.parse::<usize>().ok()).max();
    let params: Vec<TextParameter> = match numbered {
        Some(n) => (1..=n.min(50))
            .map(|i| TextParameter { kind: "text", text: variable(lead, &i.to_string()), parameter_name: None })
            .collect(),
        None => keys
            .iter()
            .map(|k| TextParameter { kind: "text", text: variable(lead, k), parameter_name: Some(k.clone()) })
            .collect(),
    };
    let mut text = body.to_owned();
    for (i, p) in params.iter().enumerate() {
        let key = p.parameter_name.clone().unwrap_or_else(|| (i + 1).to_string());
        text = text.replace(&format!("{{{{{key}}}}}"), &p.text);
    }
    if params.is_empty() {
        return Ok((None, Some(text)));
    }
    let components = serde_json::to_value([BodyComponent { kind: "body", parameters: params }])?;
    Ok((Some(components), Some(text)))
}

/// The workspace's lead with this phone.
async fn lead_by_phone(tx: &mut Tx, ws: Uuid, phone: &str) -> Result<Option<Uuid>> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar("SELECT id FROM leads WHERE workspace_id = $1 AND phone = $2")
        .bind(ws)
        .bind(phone)
        .fetch_optional(c)
        .await)?)
}

/// Channel `whatsapp`: the recipient's template, queued in the outbox from the sending
/// workspace's number, in its chat with the recipient (their lead there, by phone, created
/// when missing: their answers land in this inbox). Checked before anything is queued: a
/// missing number or a template the number can't send fails the delivery with the reason.
async fn whatsapp(work: &mut Work, r: &Recipient, lead: &Snapshot, setup: Setup) -> Result<Stored> {
    let (Some(phone), Some(template)) = (&r.whatsapp_phone, &r.whatsapp_template) else {
        return Ok(Stored::failed(Channel::Whatsapp, "the recipient has no whatsapp_phone or whatsapp_template"));
    };
    let ws = lead.sender_workspace_id;
    let Some(number) = sending_number(work.tx(), ws, r.whatsapp_number_id).await? else {
        return Ok(Stored::failed(Channel::Whatsapp, "no connected WhatsApp number to send from"));
    };
    let existing = lead_by_phone(work.tx(), ws, phone).await?;
    match templates::check_send_in(work.tx(), number, existing, &template.name, &template.language).await {
        Ok(()) => {}
        Err(Error::Client { message, .. }) => return Ok(Stored::failed(Channel::Whatsapp, message)),
        Err(e) => return Err(e),
    }
    let body = templates::body_in(work.tx(), number, &template.name, &template.language).await?;
    let (components, text) = template_send(body.as_deref(), lead)?;
    let send = SendBody::Template {
        template: outbox::Template::new(&template.name, &template.language, components),
        reply_to: None,
    };
    let mut out = outbox::validate(send)?;
    out.text = text;
    let lead_id = match existing {
        Some(id) => id,
        None => {
            let new = NewLead {
                workspace_id: ws,
                name: r.email.clone(),
                phone: Some(phone.clone()),
                source: Some("distribution".to_owned()),
                assignee_id: None,
                custom_fields: Map::new(),
                group_ids: Vec::new(),
            };
            leads::insert(work, new).await?.id
        }
    };
    let contact = Contact { phone: Some(phone), bsuid: None };
    let chat = chat::open(work, None, ws, number, lead_id, contact).await?;
    let conv = conversations::load_in(work.tx(), chat.id).await?.ok_or_else(|| Error::internal("chat vanished"))?;
    let gap = match setup.session_gap {
        Some(g) => g,
        None => on_tx!(work.tx(), |c| sqlx::query_scalar("SELECT session_gap_secs FROM workspaces WHERE id = $1")
            .bind(ws)
            .fetch_one(c)
            .await)?,
    };
    let message = outbox::queue(work, &conv, None, out, None, gap).await?;
    tracing::info!(message_id = %message.id, "distributed lead queued to its recipient on WhatsApp");
    Ok(Stored { message_id: Some(message.id), ..Stored::new(Channel::Whatsapp, DeliveryStatus::Queued, None) })
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
/// `workspace_id`. Returns how many. Each waiting row is claimed by deleting it first, so two
/// deliveries at once (an invitation accepted while [`worker`] sweeps, two nodes) give each
/// lead once.
pub async fn deliver_waiting(work: &mut Work, user: Uuid, workspace_id: Uuid, email: &str) -> Result<usize> {
    let rows: Vec<PendingRow> = on_tx!(work.tx(), |c| {
        sqlx::query_as(
        "SELECT id, history_id, rule, lead FROM distribution_pending WHERE recipient_email = $1 ORDER BY created_at, id"
    )
    .bind(email)
    .fetch_all(c)
    .await
    })?;
    let mut n = 0;
    for row in rows {
        let claimed = on_tx!(work.tx(), |c| sqlx::query("DELETE FROM distribution_pending WHERE id = $1")
            .bind(row.id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        if claimed == 0 {
            continue;
        }
        n += 1;
        let lead = row.lead.0;
        let status = if lead.sender_workspace_id == workspace_id {
            Stored::failed(Channel::App, "the recipient joined the sending workspace: assign the lead instead")
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
    }
    if n > 0 {
        tracing::info!(user_id = %user, leads = n, "distributed leads that waited for this account delivered");
    }
    Ok(n)
}

/// Accounts that became active since leads waited for their email (created by any path:
/// bootstrap, a new workspace, a reactivation): (user, workspace, email), a few at a time.
pub async fn awaited_accounts(db: &Db, limit: i64) -> Result<Vec<(Uuid, Uuid, String)>> {
    Ok(on_db!(db, |p| sqlx::query_as(
        "SELECT DISTINCT u.id, u.workspace_id, u.email FROM distribution_pending p \
         JOIN users u ON u.email = p.recipient_email AND u.status = 'active' LIMIT $1"
    )
    .bind(limit)
    .fetch_all(p)
    .await)?)
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
    let all = || rows.iter().flat_map(|r| r.deliveries.0.iter());
    let mails = mail_states(db, all().filter_map(|d| d.mail_id).collect()).await?;
    let messages = message_states(db, all().filter_map(|d| d.message_id).collect()).await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let mut deliveries = Vec::new();
        for d in row.deliveries.0 {
            let (status, reason) = match (d.mail_id, d.message_id) {
                (Some(id), _) => mails.get(&id).cloned().unwrap_or_else(|| gone("the mail is gone from the queue")),
                (None, Some(id)) => messages.get(&id).cloned().unwrap_or_else(|| gone("the message is gone")),
                (None, None) => (d.status, d.reason),
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

type State = (DeliveryStatus, Option<String>);

fn gone(why: &str) -> State {
    (DeliveryStatus::Failed, Some(why.to_owned()))
}

/// Email deliveries' states: their mails'.
async fn mail_states(db: &Db, ids: Vec<Uuid>) -> Result<HashMap<Uuid, State>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, mail::MailState, Option<String>)> = on_db!(db, |p| {
        let mut qb = sqlx::QueryBuilder::new("SELECT id, state, last_error FROM mail_queue WHERE id IN (");
        crate::db::push_ids(&mut qb, &ids);
        qb.push(")");
        qb.build_query_as().fetch_all(p).await
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, state, e)| {
            let s = match state {
                mail::MailState::Sent => (DeliveryStatus::Sent, None),
                mail::MailState::Failed => (DeliveryStatus::Failed, e),
                mail::MailState::Pending => (DeliveryStatus::Queued, e),
            };
            (id, s)
        })
        .collect())
}

/// WhatsApp deliveries' states: their messages' (sent once Meta took it, failed with Meta's
/// reason, as the outbox and the status webhooks move it).
async fn message_states(db: &Db, ids: Vec<Uuid>) -> Result<HashMap<Uuid, State>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, MessageStatus, Option<i64>, Option<String>)> = on_db!(db, |p| {
        let mut qb = sqlx::QueryBuilder::new("SELECT id, status, error_code, error_title FROM messages WHERE id IN (");
        let mut list = qb.separated(", ");
        for id in &ids {
            list.push_bind(*id);
        }
        qb.push(")");
        qb.build_query_as().fetch_all(p).await
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, status, code, title)| {
            let s = match status {
                MessageStatus::Failed => {
                    let why = match (title, code) {
                        (Some(t), Some(c)) => format!("{t} ({c})"),
                        (Some(t), None) => t,
                        (None, Some(c)) => format!("WhatsApp error {c}"),
                        (None, None) => "WhatsApp refused the message".to_owned(),
                    };
                    (DeliveryStatus::Failed, Some(why))
                }
                MessageStatus::Queued => (DeliveryStatus::Queued, None),
                _ => (DeliveryStatus::Sent, None),
            };
            (id, s)
        })
        .collect())
}
