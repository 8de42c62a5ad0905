//! Turns a journaled webhook body into inbox state: every entry, change, message, status and
//! echo, in the caller's transaction, with the events clients need. Idempotent: messages are
//! keyed by wamid, statuses only move forward, reactions keep the newest per reactor.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::db::Tx;
use crate::error::{Error, Result};
use crate::events::{self, NewEvent};
use crate::inbox::{conversations, leads, messages};
use crate::on_tx;
use crate::state::AppState;
use crate::webhook::payload::{self, ChangeValue, Contact, Envelope, ErrorObject, MessageHead};

/// What processing one body did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Workspaces whose connected numbers the body addressed.
    pub workspaces: BTreeSet<Uuid>,
    /// Messages, statuses and reactions that changed something.
    pub stored: usize,
    /// Set when (part of) the body had an unexpected shape: the entry is kept as failed.
    pub problem: Option<String>,
}

impl Outcome {
    fn problem(&mut self, p: String) {
        tracing::warn!(problem = %p, "webhook item skipped");
        match &mut self.problem {
            Some(existing) if existing.len() < 2000 => {
                existing.push_str("; ");
                existing.push_str(&p);
            }
            Some(_) => {}
            None => self.problem = Some(p),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NumberRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub auto_import_contacts: bool,
}

/// State shared by the bodies processed in one transaction: the events they produce (appended
/// together, in order, by [`Batch::flush`]) and what they looked up that cannot change
/// meanwhile (numbers, session gaps).
#[derive(Default)]
pub struct Batch {
    pub events: events::Buffer,
    numbers: HashMap<String, Option<NumberRow>>,
    gaps: HashMap<Uuid, i64>,
}

impl Batch {
    /// Appends the buffered events; call before committing.
    pub async fn flush(&mut self, tx: &mut Tx) -> Result<()> {
        self.events.flush(tx).await
    }
}

/// Processes a journaled body in `tx`. Its events are left in `batch` (see [`Batch::flush`]).
pub async fn process(
    st: &AppState,
    tx: &mut Tx,
    batch: &mut Batch,
    now: DateTime<Utc>,
    body: &[u8],
) -> Result<Outcome> {
    let mut out = Outcome::default();
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => {
            out.problem(format!("not a WhatsApp webhook body: {e}"));
            return Ok(out);
        }
    };
    if envelope.object.as_deref() != Some("whatsapp_business_account") {
        out.problem(format!("unexpected object {:?}", envelope.object));
        return Ok(out);
    }
    for entry in envelope.entry {
        for change in entry.changes {
            let field = change.field.as_deref().unwrap_or("");
            if !matches!(field, "messages" | "smb_message_echoes") {
                tracing::info!(field, waba = ?entry.id, "webhook field kept in the journal only");
                continue;
            }
            let value: ChangeValue = match serde_json::from_value(change.value) {
                Ok(v) => v,
                Err(e) => {
                    out.problem(format!("change {field}: unexpected shape: {e}"));
                    continue;
                }
            };
            let Some(pnid) = value.metadata.as_ref().and_then(|m| m.phone_number_id.as_deref()) else {
                out.problem(format!("change {field}: no metadata.phone_number_id"));
                continue;
            };
            let number = match batch.numbers.get(pnid) {
                Some(n) => n.clone(),
                None => {
                    let n = connected_number(tx, pnid).await?;
                    batch.numbers.insert(pnid.to_owned(), n.clone());
                    n
                }
            };
            let Some(number) = number else {
                tracing::info!(phone_number_id = pnid, "webhook for a number that is not connected: journaled only");
                continue;
            };
            out.workspaces.insert(number.workspace_id);
            let gap = match st.config.session_gap_secs.or_else(|| batch.gaps.get(&number.workspace_id).copied()) {
                Some(g) => g,
                None => {
                    let g = session_gap(tx, number.workspace_id).await?;
                    batch.gaps.insert(number.workspace_id, g);
                    g
                }
            };
            let mut ctx = Ctx {
                tx: &mut *tx,
                events: &mut batch.events,
                now,
                number: &number,
                contacts: &value.contacts,
                out: &mut out,
                gap,
                presence: &st.presence,
                found: None,
            };
            for raw in &value.messages {
                ctx.inbound(raw).await?;
            }
            for raw in &value.message_echoes {
                ctx.echo(raw).await?;
            }
            for s in &value.statuses {
                ctx.status(s).await?;
            }
            for e in &value.errors {
                tracing::warn!(phone_number_id = pnid, error = %e, "WhatsApp reported an error without a message");
            }
        }
    }
    Ok(out)
}

/// The contacts journaled bodies are about, as lock keys: one per (receiving number, contact
/// phone or WhatsApp user id) of their messages, echoes and statuses, sorted and without
/// repeats. PostgreSQL processors (several per node, and one per node) lock these before
/// processing, so that two transactions never work on one chat at once and never wait for each
/// other's chats in opposite orders (a deadlock). A body that is not a webhook has none.
pub fn contact_keys<'a>(bodies: impl IntoIterator<Item = &'a [u8]>) -> Vec<i32> {
    let mut keys = Vec::new();
    let envelopes = bodies.into_iter().filter_map(|b| serde_json::from_slice::<Envelope>(b).ok());
    for change in envelopes.flat_map(|e| e.entry).flat_map(|e| e.changes) {
        let v = &change.value;
        let Some(number) = v.pointer("/metadata/phone_number_id").and_then(Value::as_str) else { continue };
        let items = |list: &str, phone: &'static str, user: &'static str| {
            v.get(list).and_then(Value::as_array).into_iter().flatten().filter_map(move |item| {
                let id = item.get(phone).and_then(Value::as_str).and_then(crate::phone::normalize);
                id.or_else(|| item.get(user).and_then(Value::as_str).map(str::to_owned))
            })
        };
        let contacts = items("messages", "from", "from_user_id")
            .chain(items("message_echoes", "to", "to_user_id"))
            .chain(items("statuses", "recipient_id", "recipient_user_id"));
        keys.extend(contacts.map(|contact| lock_key(number, &contact)));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// PostgreSQL: locks the chats with these keys (from [`contact_keys`] or [`chat_key`], sorted)
/// for the rest of `tx`, in one statement and in ascending order. Take them first in a
/// transaction, before anything that waits for other transactions (rows, the event log).
/// With [`Plans::Generic`] the same statement sets the rest of `tx`'s planning, keys or not.
/// SQLite has one writer, so nothing to do there.
pub async fn lock_chats(tx: &mut Tx, keys: &[i32], plans: Plans) -> Result<()> {
    let Tx::Postgres(t) = tx else { return Ok(()) };
    let sql = match plans {
        Plans::AsUsual if keys.is_empty() => return Ok(()),
        Plans::AsUsual => "SELECT lock_contacts($1)",
        Plans::Generic => "SELECT lock_contacts($1), set_config('plan_cache_mode', 'force_generic_plan', true)",
    };
    sqlx::query(sql).bind(keys).execute(&mut **t).await?;
    Ok(())
}

/// How PostgreSQL plans the rest of a transaction that [`lock_chats`] began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plans {
    /// Its default: a prepared statement gets a custom plan for its parameters until a generic
    /// one looks as cheap.
    AsUsual,
    /// Generic plans only (`plan_cache_mode = force_generic_plan`, local to the transaction).
    /// Webhook processing wants this: the lead lookup ([`FIND_LEAD`]) otherwise got a custom
    /// plan at every execution (its `IN` list and `OR` of pairs look cheaper with the mostly
    /// NULL parameters folded in), and planning that three-table join at each bind took 0.24 ms
    /// per message, a third of processing's statement time (docs/benchmarks.md, round eleven).
    Generic,
}

/// The lock key of one stored chat: its number's `phone_number_id` and the contact's phone
/// (else its WhatsApp user id), as Meta's payloads name them for [`contact_keys`].
pub fn chat_key(phone_number_id: &str, contact_phone: Option<&str>, contact_bsuid: Option<&str>) -> Option<i32> {
    let contact = contact_phone.and_then(crate::phone::normalize).or_else(|| contact_bsuid.map(str::to_owned))?;
    Some(lock_key(phone_number_id, &contact))
}

/// FNV-1a of `number`, a separator and `contact`, folded to 32 bits: the same on every node.
fn lock_key(number: &str, contact: &str) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in number.bytes().chain([0]).chain(contact.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32 as i32
}

async fn find_conversation(tx: &mut Tx, number: Uuid, lead: Uuid) -> Result<Option<ConvRow>> {
    Ok(on_tx!(tx, |c| sqlx::query_as(FIND_CONVERSATION).bind(number).bind(lead).fetch_optional(c).await)?)
}

async fn connected_number(tx: &mut Tx, phone_number_id: &str) -> Result<Option<NumberRow>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
        "SELECT id, workspace_id, auto_import_contacts FROM numbers WHERE phone_number_id = $1 AND disconnected_at IS NULL"
    )
    .bind(phone_number_id)
    .fetch_optional(c)
    .await
    })?)
}

/// The workspace's session gap (when the operator set none).
async fn session_gap(tx: &mut Tx, workspace_id: Uuid) -> Result<i64> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar("SELECT session_gap_secs FROM workspaces WHERE id = $1")
        .bind(workspace_id)
        .fetch_one(c)
        .await)?)
}

/// The identifiers of a WhatsApp contact.
#[derive(Debug, Default, Clone)]
pub struct ContactIds {
    pub phone: Option<String>,
    pub bsuid: Option<String>,
    pub parent_bsuid: Option<String>,
}

impl ContactIds {
    fn new(phone: Option<&str>, bsuid: Option<&str>, parent: Option<&str>) -> ContactIds {
        let clean = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        ContactIds {
            phone: clean(phone).and_then(|p| crate::phone::normalize(&p)),
            bsuid: clean(bsuid),
            parent_bsuid: clean(parent),
        }
    }
    fn is_empty(&self) -> bool {
        self.phone.is_none() && self.bsuid.is_none() && self.parent_bsuid.is_none()
    }
    /// A stable key for this contact (reactions): phone when known, else the BSUID.
    fn key(&self) -> String {
        self.phone.clone().or_else(|| self.bsuid.clone()).or_else(|| self.parent_bsuid.clone()).unwrap_or_default()
    }
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut v = Vec::new();
        if let Some(p) = &self.phone {
            v.push(("phone", p.as_str()));
        }
        if let Some(b) = &self.bsuid {
            v.push(("bsuid", b.as_str()));
        }
        if let Some(b) = &self.parent_bsuid {
            v.push(("parent_bsuid", b.as_str()));
        }
        v
    }
}

/// What a message's raw JSON becomes in our columns.
struct Extracted {
    kind: String,
    text: Option<String>,
    media: Option<Value>,
    content: Option<Value>,
}

const MEDIA_TYPES: [&str; 5] = ["image", "video", "audio", "document", "sticker"];
const CONTENT_TYPES: [&str; 6] = ["location", "contacts", "interactive", "button", "order", "system"];

fn extract(kind: &str, raw: &Value) -> Extracted {
    let obj = raw.get(kind);
    let mut content = Map::new();
    let (kind, text, media) = match kind {
        "text" => ("text", obj.and_then(|o| o.pointer("/body")).and_then(Value::as_str).map(str::to_owned), None),
        k if MEDIA_TYPES.contains(&k) => {
            let o = obj.cloned().unwrap_or(Value::Null);
            let mut media = Map::new();
            for f in ["id", "mime_type", "sha256", "caption", "filename", "voice", "animated", "url"] {
                if let Some(v) = o.get(f) {
                    media.insert(f.to_owned(), v.clone());
                }
            }
            let caption = o.get("caption").and_then(Value::as_str).map(str::to_owned);
            (k, caption, Some(Value::Object(media)))
        }
        k if CONTENT_TYPES.contains(&k) => {
            let o = obj.cloned().unwrap_or(Value::Null);
            let text = match k {
                "interactive" => o
                    .pointer("/button_reply/title")
                    .or_else(|| o.pointer("/list_reply/title"))
                    .or_else(|| o.pointer("/nfm_reply/body"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                "button" => o.get("text").and_then(Value::as_str).map(str::to_owned),
                "order" => o.get("text").and_then(Value::as_str).map(str::to_owned),
                "location" => o.get("name").or_else(|| o.get("address")).and_then(Value::as_str).map(str::to_owned),
                "system" => o.get("body").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            };
            content.insert(k.to_owned(), o);
            (k, text, None)
        }
        other => {
            content.insert("original_type".to_owned(), json!(other));
            if let Some(o) = obj {
                content.insert(other.to_owned(), o.clone());
            }
            ("unsupported", None, None)
        }
    };
    for extra in ["referral", "errors"] {
        if let Some(v) = raw.get(extra) {
            content.insert(extra.to_owned(), v.clone());
        }
    }
    Extracted { kind: kind.to_owned(), text, media, content: (!content.is_empty()).then_some(Value::Object(content)) }
}

struct Ctx<'a> {
    tx: &'a mut Tx,
    /// This transaction's events so far; flushed before anything that appends directly.
    events: &'a mut events::Buffer,
    now: DateTime<Utc>,
    number: &'a NumberRow,
    contacts: &'a [Contact],
    out: &'a mut Outcome,
    gap: i64,
    presence: &'a crate::live::presence::Presence,
    /// The conversation with this number that [`Ctx::lead_for`] found along with the lead,
    /// for [`Ctx::conversation`] right after (one round trip instead of two).
    found: Option<ConvRow>,
}

/// The identities of a contact that are already known, with their leads and each lead's
/// conversation with number `$5` (if any).
///
/// The two `IN` lists make both databases probe the primary key `(workspace_id, kind, value)`
/// for at most nine keys; the `OR` then keeps the pairs that match. With the `OR` alone,
/// SQLite read every identity of the workspace for each incoming message (375 µs per message
/// at 2,000 leads, and growing with them). `storage::sqlite_finds_a_contact_by_key` checks the
/// plan.
pub const FIND_LEAD: &str = "SELECT li.lead_id, li.kind, li.value, c.id AS conv_id, c.assignee_id, c.status, \
    c.contact_phone, c.contact_bsuid, l.name AS lead_name FROM lead_identities li \
    JOIN leads l ON l.id = li.lead_id \
    LEFT JOIN conversations c ON c.lead_id = li.lead_id AND c.number_id = $5 \
    WHERE li.workspace_id = $1 AND li.kind IN ('phone', 'bsuid', 'parent_bsuid') AND li.value IN ($2, $3, $4) \
    AND ((li.kind = 'phone' AND li.value = $2) OR (li.kind = 'bsuid' AND li.value = $3) \
    OR (li.kind = 'parent_bsuid' AND li.value = $4))";

/// A row of [`FIND_LEAD`].
#[derive(sqlx::FromRow)]
struct Known {
    lead_id: Uuid,
    kind: String,
    value: String,
    conv_id: Option<Uuid>,
    assignee_id: Option<Uuid>,
    status: Option<String>,
    contact_phone: Option<String>,
    contact_bsuid: Option<String>,
    lead_name: String,
}

/// The conversation of (number, lead) with what ingest needs of it and its lead.
const FIND_CONVERSATION: &str = "SELECT c.id, c.workspace_id, c.lead_id, c.number_id, c.assignee_id, c.status, \
    c.contact_phone, c.contact_bsuid, l.name AS lead_name FROM conversations c JOIN leads l ON l.id = c.lead_id \
    WHERE c.number_id = $1 AND c.lead_id = $2";

#[derive(Debug, Clone, sqlx::FromRow)]
struct ConvRow {
    id: Uuid,
    workspace_id: Uuid,
    lead_id: Uuid,
    number_id: Uuid,
    assignee_id: Option<Uuid>,
    status: String,
    contact_phone: Option<String>,
    contact_bsuid: Option<String>,
    lead_name: String,
}

impl ConvRow {
    fn as_ref(&self) -> crate::timeline::sessions::ConvRef {
        crate::timeline::sessions::ConvRef {
            id: self.id,
            workspace_id: self.workspace_id,
            lead_id: self.lead_id,
            number_id: self.number_id,
            assignee_id: self.assignee_id,
        }
    }
}

/// The conversation's columns after [`TOUCH_CONVERSATION`] (its lead's name and labels are
/// known already).
#[derive(sqlx::FromRow)]
struct Touched {
    id: Uuid,
    workspace_id: Uuid,
    lead_id: Uuid,
    number_id: Uuid,
    contact_phone: Option<String>,
    contact_bsuid: Option<String>,
    status: crate::views::conversation::ConversationStatus,
    assignee_id: Option<Uuid>,
    last_message: Option<sqlx::types::Json<Value>>,
    unread_count: i64,
    last_inbound_at: Option<DateTime<Utc>>,
    template_required: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Whether it has labels at all (most have none: no second query then).
    labelled: bool,
}

const NEW_CONVERSATION: &str = "INSERT INTO conversations (id, workspace_id, number_id, lead_id, contact_phone, \
    contact_bsuid, status, assignee_id, unread_count, template_required, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, 'open', (SELECT assignee_id FROM leads WHERE id = $4), 0, FALSE, $7, $7) \
    ON CONFLICT (number_id, lead_id) DO NOTHING RETURNING id";

const INSERT_MESSAGE: &str = "INSERT INTO messages (id, workspace_id, conversation_id, wamid, direction, type, text, \
    media, content, context_wamid, forwarded, status, sent_by_app, created_at, sent_at, received_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
    ON CONFLICT (wamid) DO NOTHING \
    RETURNING seq, EXISTS (SELECT 1 FROM reactions WHERE target_wamid = $4 AND emoji <> '') AS reacted";

const TOUCH_CONVERSATION: &str = "UPDATE conversations SET \
    last_message = CASE WHEN last_message_at IS NULL OR last_message_at <= $2 THEN $3 ELSE last_message END, \
    last_message_at = CASE WHEN last_message_at IS NULL OR last_message_at <= $2 THEN $2 ELSE last_message_at END, \
    unread_count = unread_count + $4, \
    last_inbound_at = CASE WHEN $5 AND (last_inbound_at IS NULL OR last_inbound_at < $2) THEN $2 ELSE last_inbound_at END, \
    template_required = CASE WHEN $5 THEN FALSE ELSE template_required END, \
    status = CASE WHEN $5 THEN 'open' ELSE status END, \
    updated_at = $6 WHERE id = $1 \
    RETURNING id, workspace_id, lead_id, number_id, contact_phone, contact_bsuid, status, assignee_id, last_message, \
    unread_count, last_inbound_at, template_required, created_at, updated_at, \
    EXISTS (SELECT 1 FROM conversation_labels WHERE conversation_id = $1) AS labelled";

impl Ctx<'_> {
    /// Appends the buffered events now: before a call that appends its own, so cursors keep
    /// the order in which things happened.
    async fn flush(&mut self) -> Result<()> {
        self.events.flush(self.tx).await
    }

    fn profile(&self, ids: &ContactIds) -> (Option<String>, Option<String>) {
        let c = self.contacts.iter().find(|c| {
            (ids.phone.is_some() && c.wa_id.as_deref().and_then(crate::phone::normalize) == ids.phone)
                || (ids.bsuid.is_some() && c.user_id == ids.bsuid)
        });
        let p = c.and_then(|c| c.profile.as_ref());
        (p.and_then(|p| p.name.clone()), p.and_then(|p| p.username.clone()))
    }

    /// Finds the lead for a contact (linking any identifiers it lacked) or, when the number
    /// imports contacts, creates one. `None`: the contact is not a lead; nothing is stored.
    async fn lead_for(&mut self, ids: &ContactIds) -> Result<Option<Uuid>> {
        if ids.is_empty() {
            return Ok(None);
        }
        let ws = self.number.workspace_id;
        self.found = None;
        let known: Vec<Known> = on_tx!(self.tx, |c| sqlx::query_as(FIND_LEAD)
            .bind(ws)
            .bind(&ids.phone)
            .bind(&ids.bsuid)
            .bind(&ids.parent_bsuid)
            .bind(self.number.id)
            .fetch_all(c)
            .await)?;
        let rank = |kind: &str| match kind {
            "phone" => 0,
            "bsuid" => 1,
            _ => 2,
        };
        let best = known.iter().min_by_key(|k| rank(&k.kind));
        self.found = best.and_then(|k| {
            Some(ConvRow {
                id: k.conv_id?,
                workspace_id: ws,
                lead_id: k.lead_id,
                number_id: self.number.id,
                assignee_id: k.assignee_id,
                status: k.status.clone()?,
                contact_phone: k.contact_phone.clone(),
                contact_bsuid: k.contact_bsuid.clone(),
                lead_name: k.lead_name.clone(),
            })
        });
        let mut lead: Option<Uuid> = best.map(|k| k.lead_id);
        if lead.is_none()
            && let Some(phone) = &ids.phone
        {
            lead =
                on_tx!(self.tx, |c| sqlx::query_scalar("SELECT id FROM leads WHERE workspace_id = $1 AND phone = $2")
                    .bind(ws)
                    .bind(phone)
                    .fetch_optional(c)
                    .await)?;
        }
        if lead.is_none() && self.number.auto_import_contacts {
            let (name, username) = self.profile(ids);
            let name = name
                .or(username)
                .or_else(|| ids.phone.as_ref().map(|p| format!("+{p}")))
                .unwrap_or_else(|| "WhatsApp contact".to_owned());
            let new = leads::NewLead {
                workspace_id: ws,
                name: name.chars().take(200).collect(),
                phone: ids.phone.clone(),
                source: Some("whatsapp".to_owned()),
                assignee_id: None,
                custom_fields: Map::new(),
                group_ids: Vec::new(),
            };
            self.flush().await?;
            let mut unit = events::Buffered { tx: self.tx, events: self.events, now: self.now };
            let mut created = leads::insert(&mut unit, new).await?;
            let presence = |id| crate::assignment::run::availability(self.presence.availability(id).as_str());
            crate::assignment::run::new_lead(&mut unit, &presence, &mut created).await?;
            tracing::info!(lead_id = %created.id, "lead imported from WhatsApp");
            lead = Some(created.id);
        }
        let Some(lead) = lead else { return Ok(None) };
        for (kind, value) in ids.pairs() {
            if known.iter().any(|k| k.kind == kind && k.value == value) {
                continue;
            }
            on_tx!(self.tx, |c| {
                sqlx::query(
                "INSERT INTO lead_identities (workspace_id, kind, value, lead_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
            )
            .bind(ws)
            .bind(kind)
            .bind(value)
            .bind(lead)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
            })?;
        }
        Ok(Some(lead))
    }

    /// The conversation of (this number, lead), created on first contact.
    async fn conversation(&mut self, lead: Uuid, ids: &ContactIds) -> Result<ConvRow> {
        let found = match self.found.take().filter(|c| c.lead_id == lead) {
            Some(c) => Some(c),
            None => find_conversation(self.tx, self.number.id, lead).await?,
        };
        if let Some(mut conv) = found {
            let phone_changes = ids.phone.is_some() && ids.phone != conv.contact_phone;
            let bsuid_changes = ids.bsuid.is_some() && ids.bsuid != conv.contact_bsuid;
            if phone_changes || bsuid_changes {
                on_tx!(self.tx, |c| {
                    sqlx::query(
                    "UPDATE conversations SET contact_phone = COALESCE($1, contact_phone), contact_bsuid = COALESCE($2, contact_bsuid) WHERE id = $3"
                )
                .bind(&ids.phone)
                .bind(&ids.bsuid)
                .bind(conv.id)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
                })?;
                conv.contact_phone = ids.phone.clone().or(conv.contact_phone);
                conv.contact_bsuid = ids.bsuid.clone().or(conv.contact_bsuid);
            }
            return Ok(conv);
        }
        let created: Option<Uuid> = on_tx!(self.tx, |c| sqlx::query_scalar(NEW_CONVERSATION)
            .bind(Uuid::now_v7())
            .bind(self.number.workspace_id)
            .bind(self.number.id)
            .bind(lead)
            .bind(&ids.phone)
            .bind(&ids.bsuid)
            .bind(self.now)
            .fetch_optional(c)
            .await)?;
        if let Some(id) = created {
            let c = conversations::find_in(self.tx, id).await?.ok_or(sqlx::Error::RowNotFound)?;
            self.events.push(
                self.now,
                NewEvent::raw(self.number.workspace_id, "conversation.created", c.to_json())
                    .conversation(id)
                    .lead(lead),
            );
            return Ok(ConvRow {
                id: c.id,
                workspace_id: c.workspace_id,
                lead_id: c.lead_id,
                number_id: c.number_id,
                assignee_id: c.assignee_id,
                status: c.status.to_string(),
                contact_phone: c.contact_phone,
                contact_bsuid: c.contact_bsuid,
                lead_name: c.lead_name,
            });
        }
        // Created by a concurrent transaction (another node) a moment ago.
        find_conversation(self.tx, self.number.id, lead).await?.ok_or_else(|| Error::internal("conversation vanished"))
    }

    /// Stores one message (inbound or echo) unless its wamid is known; updates the conversation.
    async fn store(&mut self, head: &MessageHead, raw: &Value, ids: &ContactIds, inbound: bool) -> Result<()> {
        let (Some(wamid), Some(at)) = (head.id.as_deref(), payload::timestamp(head.timestamp.as_deref())) else {
            self.out.problem("message without id or timestamp".to_owned());
            return Ok(());
        };
        let Some(lead) = self.lead_for(ids).await? else {
            tracing::debug!("message from a contact who is not a lead: not stored");
            return Ok(());
        };
        let mut conv = self.conversation(lead, ids).await?;
        let kind = head.kind.as_deref().unwrap_or("unknown");
        let x = extract(kind, raw);
        let ctx = head.context.as_ref();
        let forwarded = ctx.is_some_and(|c| c.forwarded || c.frequently_forwarded);
        let context_wamid = ctx.and_then(|c| c.id.clone());
        let id = Uuid::now_v7();
        let (direction, status, sent_at) = if inbound { ("in", "received", None) } else { ("out", "sent", Some(at)) };
        let ws = self.number.workspace_id;
        let media = x.media.map(sqlx::types::Json);
        let content = x.content.map(sqlx::types::Json);
        let inserted: Option<(i64, bool)> = on_tx!(self.tx, |c| sqlx::query_as(INSERT_MESSAGE)
            .bind(id)
            .bind(ws)
            .bind(conv.id)
            .bind(wamid)
            .bind(direction)
            .bind(&x.kind)
            .bind(&x.text)
            .bind(&media)
            .bind(&content)
            .bind(&context_wamid)
            .bind(forwarded)
            .bind(status)
            .bind(!inbound)
            .bind(at)
            .bind(sent_at)
            .bind(self.now)
            .fetch_optional(c)
            .await)?;
        let Some((seq, reacted)) = inserted else {
            tracing::debug!(wamid, "redelivered message ignored");
            return Ok(());
        };
        self.out.stored += 1;
        let message = if inbound {
            // Built from what was just inserted (plus reactions that came before it).
            let row = messages::MessageRow {
                seq,
                id,
                conversation_id: conv.id,
                wamid: Some(wamid.to_owned()),
                direction: direction.to_owned(),
                kind: x.kind,
                text: x.text,
                media,
                content,
                context_wamid,
                forwarded,
                status: status.to_owned(),
                error_code: None,
                error_title: None,
                sent_by_user_id: None,
                sent_by_email: None,
                sent_by_name: None,
                sent_by_app: false,
                created_at: at,
                sent_at,
                delivered_at: None,
                read_at: None,
                failed_at: None,
            };
            let reactions = if reacted { messages::reactions_in(self.tx, wamid).await? } else { Vec::new() };
            row.to_json(&reactions)
        } else {
            self.flush().await?;
            apply_pending_statuses(self.tx, self.now, wamid).await?;
            messages::json_in(self.tx, id).await?
        };
        // A customer message re-opens a closed conversation (TOUCH_CONVERSATION sets it open).
        let reopens = inbound && conv.status == "closed";
        let touched: Touched = on_tx!(self.tx, |c| sqlx::query_as(TOUCH_CONVERSATION)
            .bind(conv.id)
            .bind(at)
            .bind(sqlx::types::Json(messages::preview(&message)))
            .bind(i64::from(inbound))
            .bind(inbound)
            .bind(self.now)
            .fetch_one(c)
            .await)?;
        let message = NewEvent::raw(ws, "message.created", message).conversation(conv.id).lead(lead);
        let conv_json = if reopens {
            self.flush().await?;
            let mut unit = events::Buffered { tx: self.tx, events: self.events, now: self.now };
            let presence = |id| crate::assignment::run::availability(self.presence.availability(id).as_str());
            crate::assignment::run::reopened(&mut unit, &presence, conv.id).await?;
            self.events.push(self.now, message);
            let j = conversations::json_in(self.tx, conv.id).await?;
            conv.assignee_id = j.get("assignee_id").and_then(|a| a.as_str()).and_then(|a| a.parse().ok());
            j
        } else {
            self.events.push(self.now, message);
            let label_ids =
                if touched.labelled { conversations::labels_in(self.tx, conv.id).await? } else { Vec::new() };
            conversations::Conversation {
                id: touched.id,
                workspace_id: touched.workspace_id,
                lead_id: touched.lead_id,
                number_id: touched.number_id,
                contact_phone: touched.contact_phone,
                contact_bsuid: touched.contact_bsuid,
                status: touched.status,
                assignee_id: touched.assignee_id,
                label_ids,
                last_message: touched.last_message,
                unread_count: touched.unread_count,
                last_inbound_at: touched.last_inbound_at,
                template_required: touched.template_required,
                lead_name: conv.lead_name.clone(),
                created_at: touched.created_at,
                updated_at: touched.updated_at,
            }
            .to_json()
        };
        self.events
            .push(self.now, NewEvent::raw(ws, "conversation.updated", conv_json).conversation(conv.id).lead(lead));
        let msg = crate::timeline::sessions::Msg { at, inbound, member: None };
        let mut unit = events::Buffered { tx: self.tx, events: self.events, now: self.now };
        crate::timeline::sessions::place(&mut unit, &conv.as_ref(), &msg, self.gap).await
    }

    async fn inbound(&mut self, raw: &Value) -> Result<()> {
        let head: MessageHead = match serde_json::from_value(raw.clone()) {
            Ok(h) => h,
            Err(e) => {
                self.out.problem(format!("message with unexpected shape: {e}"));
                return Ok(());
            }
        };
        let ids =
            ContactIds::new(head.from.as_deref(), head.from_user_id.as_deref(), head.from_parent_user_id.as_deref());
        match head.kind.as_deref() {
            Some("reaction") => self.reaction(&head, raw, &ids).await,
            Some("system") => self.system(&head, raw, &ids).await,
            _ => self.store(&head, raw, &ids, true).await,
        }
    }

    async fn echo(&mut self, raw: &Value) -> Result<()> {
        let head: MessageHead = match serde_json::from_value(raw.clone()) {
            Ok(h) => h,
            Err(e) => {
                self.out.problem(format!("echo with unexpected shape: {e}"));
                return Ok(());
            }
        };
        let ids = ContactIds::new(head.to.as_deref(), head.to_user_id.as_deref(), head.to_parent_user_id.as_deref());
        self.store(&head, raw, &ids, false).await
    }

    async fn reaction(&mut self, head: &MessageHead, raw: &Value, ids: &ContactIds) -> Result<()> {
        let target = raw.pointer("/reaction/message_id").and_then(Value::as_str);
        let (Some(wamid), Some(target), Some(at)) =
            (head.id.as_deref(), target, payload::timestamp(head.timestamp.as_deref()))
        else {
            self.out.problem("reaction without id, target or timestamp".to_owned());
            return Ok(());
        };
        if self.lead_for(ids).await?.is_none() {
            return Ok(());
        }
        let emoji = raw.pointer("/reaction/emoji").and_then(Value::as_str).unwrap_or("");
        let changed = on_tx!(self.tx, |c| {
            sqlx::query(
            "INSERT INTO reactions (target_wamid, reactor, emoji, wamid, at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (target_wamid, reactor) DO UPDATE SET emoji = excluded.emoji, wamid = excluded.wamid, at = excluded.at \
             WHERE reactions.at < excluded.at OR (reactions.at = excluded.at AND reactions.wamid < excluded.wamid)"
        )
        .bind(target)
        .bind(ids.key())
        .bind(emoji)
        .bind(wamid)
        .bind(at)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        })?;
        if changed == 0 {
            return Ok(());
        }
        self.out.stored += 1;
        let target_row: Option<(Uuid, Uuid, Uuid)> = on_tx!(self.tx, |c| {
            sqlx::query_as(
            "SELECT m.id, m.conversation_id, v.lead_id FROM messages m JOIN conversations v ON v.id = m.conversation_id \
             WHERE m.wamid = $1 AND m.workspace_id = $2"
        )
        .bind(target)
        .bind(self.number.workspace_id)
        .fetch_optional(c)
        .await
        })?;
        if let Some((mid, conv, lead)) = target_row {
            let message = messages::json_in(self.tx, mid).await?;
            self.events.push(
                self.now,
                NewEvent::raw(self.number.workspace_id, "message.updated", message).conversation(conv).lead(lead),
            );
        }
        Ok(())
    }

    /// A system message: the contact changed number (or BSUID). New identifiers are linked to
    /// the same lead, old ones kept for history; replies go to the new phone.
    async fn system(&mut self, head: &MessageHead, raw: &Value, ids: &ContactIds) -> Result<()> {
        let Some(wamid) = head.id.as_deref() else {
            self.out.problem("system message without id".to_owned());
            return Ok(());
        };
        let at = payload::timestamp(head.timestamp.as_deref()).unwrap_or(self.now);
        let sys = raw.get("system").cloned().unwrap_or(Value::Null);
        let kind = sys.get("type").and_then(Value::as_str).unwrap_or("unknown").to_owned();
        let Some(lead) = self.lead_for(ids).await? else { return Ok(()) };
        let inserted = on_tx!(self.tx, |c| {
            sqlx::query(
            "INSERT INTO inbound_notices (wamid, workspace_id, lead_id, kind, data, at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (wamid) DO NOTHING"
        )
        .bind(wamid)
        .bind(self.number.workspace_id)
        .bind(lead)
        .bind(&kind)
        .bind(sqlx::types::Json(&sys))
        .bind(at)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        })?;
        if inserted == 0 {
            return Ok(());
        }
        self.out.stored += 1;
        if matches!(kind.as_str(), "user_changed_number" | "customer_changed_number" | "user_changed_user_id") {
            let new_ids = ContactIds::new(
                sys.get("wa_id").or_else(|| sys.get("new_wa_id")).and_then(Value::as_str),
                sys.get("user_id").and_then(Value::as_str),
                sys.get("parent_user_id").and_then(Value::as_str),
            );
            for (k, value) in new_ids.pairs() {
                leads::link_identity(self.tx, self.number.workspace_id, k, value, lead).await?;
            }
            if let Some(phone) = &new_ids.phone {
                // The lead keeps its old phone when another lead already owns the new one.
                let taken: Option<Uuid> = on_tx!(self.tx, |c| sqlx::query_scalar(
                    "SELECT id FROM leads WHERE workspace_id = $1 AND phone = $2"
                )
                .bind(self.number.workspace_id)
                .bind(phone)
                .fetch_optional(c)
                .await)?;
                if taken.is_none() {
                    on_tx!(self.tx, |c| sqlx::query("UPDATE leads SET phone = $1, updated_at = $2 WHERE id = $3")
                        .bind(phone)
                        .bind(self.now)
                        .bind(lead)
                        .execute(c)
                        .await
                        .map(|r| r.rows_affected()))?;
                }
            }
            on_tx!(self.tx, |c| {
                sqlx::query(
                "UPDATE conversations SET contact_phone = COALESCE($1, contact_phone), contact_bsuid = COALESCE($2, contact_bsuid) \
                 WHERE lead_id = $3"
            )
            .bind(&new_ids.phone)
            .bind(&new_ids.bsuid)
            .bind(lead)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
            })?;
            let lead_row = leads::load_tx(self.tx, lead).await?;
            self.flush().await?;
            self.events.push(self.now, leads::updated_event(&lead_row));
            tracing::info!(lead_id = %lead, kind, "contact changed number: identities linked");
        }
        Ok(())
    }

    async fn status(&mut self, s: &payload::Status) -> Result<()> {
        let (Some(wamid), Some(status), Some(at)) =
            (s.id.as_deref(), s.status.as_deref(), payload::timestamp(s.timestamp.as_deref()))
        else {
            self.out.problem("status without id, status or timestamp".to_owned());
            return Ok(());
        };
        if Rank::of(status).is_none() {
            self.out.problem(format!("unknown status {status:?}"));
            return Ok(());
        }
        let error = s.errors.first().cloned();
        self.flush().await?; // apply_status appends its own events
        let recorded = record_status(self.tx, self.now, wamid, status, at, error.as_ref()).await?;
        if recorded && apply_status(self.tx, self.now, wamid, status, at, error.as_ref()).await? {
            self.out.stored += 1;
        }
        Ok(())
    }
}

/// Status order: a status never moves backwards; `failed` is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Queued,
    Sent,
    Delivered,
    Read,
}

impl Rank {
    fn of(status: &str) -> Option<Option<Rank>> {
        Some(match status {
            "queued" => Some(Rank::Queued),
            "sent" => Some(Rank::Sent),
            "delivered" => Some(Rank::Delivered),
            "read" => Some(Rank::Read),
            "failed" => None,
            _ => return None,
        })
    }
}

/// The status after `incoming` arrives on a message in `current`.
pub fn advance(current: &str, incoming: &str) -> String {
    if current == "failed" {
        return current.to_owned();
    }
    let next = match (Rank::of(current).flatten(), Rank::of(incoming)) {
        (_, None) => current,
        (Some(cur), Some(None)) if cur >= Rank::Delivered => current,
        (_, Some(None)) => "failed",
        (Some(cur), Some(Some(new))) if new <= cur => current,
        (_, Some(Some(_))) => incoming,
    };
    next.to_owned()
}

async fn record_status(
    tx: &mut Tx,
    now: DateTime<Utc>,
    wamid: &str,
    status: &str,
    at: DateTime<Utc>,
    error: Option<&ErrorObject>,
) -> Result<bool> {
    let n = on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO message_statuses (wamid, status, error_code, error_title, at, recorded_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (wamid, status, error_code) DO NOTHING"
    )
    .bind(wamid)
    .bind(status)
    .bind(error.and_then(|e| e.code).unwrap_or(0))
    .bind(error.and_then(|e| e.title.clone().or_else(|| e.message.clone())))
    .bind(at)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(n > 0)
}

#[derive(sqlx::FromRow)]
struct OutRow {
    id: Uuid,
    workspace_id: Uuid,
    conversation_id: Uuid,
    status: String,
}

/// Applies a status to its outbound message, if we know it. Returns true if anything changed.
pub async fn apply_status(
    tx: &mut Tx,
    now: DateTime<Utc>,
    wamid: &str,
    status: &str,
    at: DateTime<Utc>,
    error: Option<&ErrorObject>,
) -> Result<bool> {
    let row: Option<OutRow> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT id, workspace_id, conversation_id, status FROM messages WHERE wamid = $1 AND direction = 'out'"
    )
    .bind(wamid)
    .fetch_optional(c)
    .await)?;
    let Some(m) = row else { return Ok(false) };
    let next = advance(&m.status, status);
    let failed_now = next == "failed" && m.status != "failed";
    let stamp = |s: &str| (status == s).then_some(at);
    let changed = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE messages SET status = $1, \
         sent_at = COALESCE(sent_at, $2), delivered_at = COALESCE(delivered_at, $3), read_at = COALESCE(read_at, $4), \
         failed_at = CASE WHEN $5 THEN $6 ELSE failed_at END, \
         error_code = CASE WHEN $5 THEN $7 ELSE error_code END, error_title = CASE WHEN $5 THEN $8 ELSE error_title END \
         WHERE id = $9 AND (status <> $1 OR ($2 IS NOT NULL AND sent_at IS NULL) OR ($3 IS NOT NULL AND delivered_at IS NULL) \
         OR ($4 IS NOT NULL AND read_at IS NULL))"
    )
    .bind(&next)
    .bind(stamp("sent"))
    .bind(stamp("delivered"))
    .bind(stamp("read"))
    .bind(failed_now)
    .bind(at)
    .bind(error.and_then(|e| e.code))
    .bind(error.and_then(|e| e.title.clone().or_else(|| e.message.clone())))
    .bind(m.id)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if changed == 0 {
        return Ok(false);
    }
    let lead: Uuid = on_tx!(tx, |c| sqlx::query_scalar("SELECT lead_id FROM conversations WHERE id = $1")
        .bind(m.conversation_id)
        .fetch_one(c)
        .await)?;
    let message = messages::json_in(tx, m.id).await?;
    events::append(
        tx,
        now,
        NewEvent::raw(m.workspace_id, "message.updated", message).conversation(m.conversation_id).lead(lead),
    )
    .await?;
    if failed_now && error.and_then(|e| e.code) == Some(131047) {
        on_tx!(tx, |c| sqlx::query(
            "UPDATE conversations SET template_required = TRUE, updated_at = $1 WHERE id = $2"
        )
        .bind(now)
        .bind(m.conversation_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        let conv = conversations::json_in(tx, m.conversation_id).await?;
        events::append(
            tx,
            now,
            NewEvent::raw(m.workspace_id, "conversation.updated", conv).conversation(m.conversation_id).lead(lead),
        )
        .await?;
    }
    Ok(true)
}

/// Applies statuses that arrived before their message (call after storing an outbound wamid).
pub async fn apply_pending_statuses(tx: &mut Tx, now: DateTime<Utc>, wamid: &str) -> Result<()> {
    let rows: Vec<(String, i64, Option<String>, DateTime<Utc>)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT status, error_code, error_title, at FROM message_statuses WHERE wamid = $1 ORDER BY at"
    )
    .bind(wamid)
    .fetch_all(c)
    .await)?;
    for (status, code, title, at) in rows {
        let error = (code != 0).then(|| ErrorObject { code: Some(code), title: title.clone(), message: None });
        apply_status(tx, now, wamid, &status, at, error.as_ref()).await?;
    }
    Ok(())
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal(format!("json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::{advance, contact_keys, lock_key};

    #[test]
    fn contact_keys_name_each_chat_once() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
            {"field":"messages","value":{"metadata":{"phone_number_id":"PN1"},
              "messages":[{"from":"15551230001","id":"a"},{"from":"+1 555 123 0001","id":"b"},
                          {"from_user_id":"US.123","id":"c"}],
              "statuses":[{"id":"d","recipient_id":"15551230002","status":"read"}]}},
            {"field":"smb_message_echoes","value":{"metadata":{"phone_number_id":"PN2"},
              "message_echoes":[{"to":"15551230001","id":"e"}]}},
            {"field":"account_update","value":{"event":"x"}}]}]}"#;
        let mut expected = vec![
            lock_key("PN1", "15551230001"),
            lock_key("PN1", "US.123"),
            lock_key("PN1", "15551230002"),
            lock_key("PN2", "15551230001"),
        ];
        expected.sort_unstable();
        assert_eq!(contact_keys([body.as_slice()]), expected);
        assert_ne!(lock_key("PN1", "15551230001"), lock_key("PN2", "15551230001"));
        assert!(contact_keys([b"not json".as_slice()]).is_empty());
    }

    #[test]
    fn statuses_never_regress() {
        assert_eq!(advance("queued", "sent"), "sent");
        assert_eq!(advance("sent", "read"), "read");
        assert_eq!(advance("read", "delivered"), "read");
        assert_eq!(advance("delivered", "sent"), "delivered");
        assert_eq!(advance("sent", "failed"), "failed");
        assert_eq!(advance("failed", "read"), "failed");
        assert_eq!(advance("read", "failed"), "read");
        assert_eq!(advance("sent", "bogus"), "sent");
    }
}
