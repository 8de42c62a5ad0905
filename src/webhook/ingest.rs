//! Turns a journaled webhook body into calls of the chat write path ([`crate::inbox::chat`]):
//! every entry, change, message, status and echo, in the caller's unit of work, which gets the
//! events clients need. Here: reading Meta's payloads and finding (or importing) the lead a
//! contact is. Idempotent: messages are keyed by wamid, statuses only move forward, reactions
//! keep the newest per reactor.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::db::Tx;
use crate::error::{Error, Result};
use crate::events::Work;
use crate::events::{Event, NewEvent};
use crate::inbox::chat::{self, ChangeKind, Chat, MessageChange, NewMessage, Recording, StatusError};
use crate::inbox::{leads, numbers, templates};
use crate::live::presence::Presence;
use crate::on_tx;
use crate::timeline::NewActivity;
use crate::views::conversation::ConversationStatus;
use crate::views::message::{Direction, MessageStatus};
use crate::views::timeline::ActivityKind;
use crate::views::timeline::CallNotice;
use crate::webhook::payload::{self, ChangeValue, Contact, Envelope, ErrorObject, MessageHead};

mod many;
pub use many::process_many;

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
    pub display_phone_number: String,
}

/// What the bodies processed in one unit of work looked up that cannot change meanwhile
/// (numbers, session gaps). Their events go to that unit of work, appended once at its commit.
#[derive(Default)]
pub struct Batch {
    numbers: HashMap<String, Option<NumberRow>>,
    gaps: HashMap<Uuid, i64>,
}

impl Batch {
    /// The connected number with Meta's id `pnid` (`None`: not connected).
    async fn number(&mut self, tx: &mut Tx, pnid: &str) -> Result<Option<NumberRow>> {
        if let Some(n) = self.numbers.get(pnid) {
            return Ok(n.clone());
        }
        let n = connected_number(tx, pnid).await?;
        self.numbers.insert(pnid.to_owned(), n.clone());
        Ok(n)
    }

    /// The session gap for workspace `ws` (the operator's, else the workspace's).
    async fn gap(&mut self, tx: &mut Tx, setting: Setting<'_>, ws: Uuid) -> Result<i64> {
        if let Some(g) = setting.session_gap.or_else(|| self.gaps.get(&ws).copied()) {
            return Ok(g);
        }
        let g = session_gap(tx, ws).await?;
        self.gaps.insert(ws, g);
        Ok(g)
    }
}

/// What processing needs besides the body and the unit of work.
#[derive(Clone, Copy)]
pub struct Setting<'a> {
    /// The operator's session gap (seconds), overriding the workspaces'.
    pub session_gap: Option<i64>,
    /// Who is online, for the assignment of new leads and re-opened conversations.
    pub presence: &'a Presence,
    /// What distributing auto-imported leads needs of the server.
    pub distribution: crate::distribution::Setup,
}

/// Processes a journaled body in `work`, which gets its changes and events.
pub async fn process(work: &mut Work, batch: &mut Batch, setting: Setting<'_>, body: &[u8]) -> Result<Outcome> {
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
            match field {
                "messages" | "smb_message_echoes" | "user_preferences" | "calls" | HISTORY | STATE_SYNC => {}
                HEALTH_QUALITY | HEALTH_ACCOUNT | HEALTH_CAPABILITY | TEMPLATE_STATUS | TEMPLATE_QUALITY
                | TEMPLATE_CATEGORY => {
                    let Some(waba) = entry.id.as_deref() else {
                        out.problem(format!("change {field}: no entry id (WABA)"));
                        continue;
                    };
                    if field.starts_with("message_template") || field == TEMPLATE_CATEGORY {
                        template_update(work, &mut out, waba, field, &change.value).await?;
                    } else {
                        health(work, &mut out, waba, field, &change.value).await?;
                    }
                    continue;
                }
                _ => {
                    tracing::info!(field, waba = ?entry.id, "webhook field kept in the journal only");
                    continue;
                }
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
            let Some(number) = batch.number(work.tx(), pnid).await? else {
                tracing::info!(phone_number_id = pnid, "webhook for a number that is not connected: journaled only");
                continue;
            };
            out.workspaces.insert(number.workspace_id);
            let gap = batch.gap(work.tx(), setting, number.workspace_id).await?;
            let mut ctx = Ctx {
                work: &mut *work,
                number: &number,
                contacts: &value.contacts,
                out: &mut out,
                recording: Recording::ingest(gap),
                presence: setting.presence,
                distribution: setting.distribution,
                found: None,
                history: field == HISTORY,
            };
            for raw in &value.messages {
                ctx.inbound(raw).await?;
            }
            for raw in &value.message_echoes {
                ctx.echo(raw).await?;
            }
            // Calls' statuses (business-initiated calls ringing, accepted...) are not receipts.
            for s in value.statuses.iter().filter(|_| field != "calls") {
                ctx.status(s).await?;
            }
            for p in &value.user_preferences {
                ctx.preference(p).await?;
            }
            for c in &value.calls {
                ctx.call(c).await?;
            }
            for h in &value.history {
                ctx.history(h).await?;
            }
            for c in &value.state_sync {
                ctx.contact_sync(c).await?;
            }
            for e in &value.errors {
                tracing::warn!(phone_number_id = pnid, error = %e, "WhatsApp reported an error without a message");
            }
        }
    }
    Ok(out)
}

const HISTORY: &str = "history";
const STATE_SYNC: &str = "smb_app_state_sync";
const HEALTH_QUALITY: &str = "phone_number_quality_update";
const HEALTH_ACCOUNT: &str = "account_update";
const HEALTH_CAPABILITY: &str = "business_capability_update";
const TEMPLATE_STATUS: &str = "message_template_status_update";
const TEMPLATE_QUALITY: &str = "message_template_quality_update";
const TEMPLATE_CATEGORY: &str = "template_category_update";

/// The account status an `account_update` event means (`None`: no change).
fn account_status(event: &str, v: &Value) -> Option<&'static str> {
    Some(match event {
        "ACCOUNT_RESTRICTION" => "restricted",
        "ACCOUNT_VIOLATION" => "warning",
        "DISABLED_UPDATE" => match v.pointer("/ban_info/waba_ban_state").and_then(Value::as_str)? {
            "SCHEDULE_FOR_DISABLE" => "scheduled_for_disable",
            "DISABLE" => "disabled",
            "REINSTATE" => "active",
            _ => return None,
        },
        "ACCOUNT_DELETED" => "deleted",
        "PARTNER_REMOVED" | "ACCOUNT_OFFBOARDED" => "disconnected",
        "ACCOUNT_RECONNECTED" => "active",
        _ => return None,
    })
}

/// A number health webhook (quality, account, portfolio limit) for the numbers of a WABA: the
/// quality one names its number by display number, the others apply to every number.
async fn health(work: &mut Work, out: &mut Outcome, waba: &str, field: &str, v: &Value) -> Result<()> {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let event = s("event").unwrap_or("").to_uppercase();
    let mut h = numbers::Health::default();
    let mut only = None;
    match field {
        HEALTH_QUALITY => {
            only = s("display_phone_number").and_then(crate::phone::normalize);
            h.quality_rating = match event.as_str() {
                "FLAGGED" => Some("FLAGGED".to_owned()),
                "UNFLAGGED" => Some("UNKNOWN".to_owned()),
                _ => s("quality_rating").or(s("new_quality_score")).map(str::to_uppercase),
            };
            h.messaging_limit_tier = numbers::tier(v.get("max_daily_conversations_per_business"))
                .or_else(|| numbers::tier(v.get("current_limit")));
        }
        HEALTH_CAPABILITY => h.messaging_limit_tier = numbers::tier(v.get("max_daily_conversations_per_business")),
        _ => h.account_status = account_status(&event, v).map(str::to_owned),
    }
    let list = numbers::of_waba(work.tx(), waba).await?;
    let mut matched = false;
    for n in list.iter().filter(|n| only.as_ref().is_none_or(|d| *d == n.display_phone_number)) {
        matched = true;
        out.workspaces.insert(n.workspace_id);
        if numbers::set_health(work, n, &h).await? {
            out.stored += 1;
        }
        // Today's quality webhooks carry the event only: the rating, the limit and the
        // number's status are read from the Graph API's phone-number fields (as after any
        // health webhook: Meta's advice).
        let now = work.now();
        numbers::read_health_soon(work.tx(), n.id, now).await?;
    }
    if !matched {
        tracing::info!(field, waba, "health webhook for no connected number: journaled only");
    }
    Ok(())
}

/// A template webhook (status, quality, category) for the templates of a WABA.
async fn template_update(work: &mut Work, out: &mut Outcome, waba: &str, field: &str, v: &Value) -> Result<()> {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let id =
        v.get("message_template_id").and_then(|i| i.as_i64().map(|n| n.to_string()).or(i.as_str().map(str::to_owned)));
    let mut u = templates::Update {
        template_id: id,
        name: s("message_template_name"),
        language: s("message_template_language").map(templates::language),
        ..Default::default()
    };
    match field {
        TEMPLATE_STATUS => {
            let event = s("event").unwrap_or("").to_uppercase();
            let unpaused = v.pointer("/other_info/title").and_then(Value::as_str) == Some("UNPAUSE");
            u.status = match event.as_str() {
                "APPROVED" | "PENDING" | "REJECTED" | "PAUSED" | "DISABLED" | "IN_APPEAL" | "ARCHIVED"
                | "PENDING_DELETION" | "DELETED" => Some(event.clone()),
                "REINSTATED" => Some(templates::APPROVED.to_owned()),
                _ if unpaused => Some(templates::APPROVED.to_owned()),
                // FLAGGED keeps its status; LIMIT_EXCEEDED and LOCKED are notices.
                _ => None,
            };
            if event == "REJECTED" {
                u.rejected_reason = s("reason").map(str::to_owned);
            }
        }
        TEMPLATE_QUALITY => u.quality = s("new_quality_score").map(str::to_uppercase),
        // The announced variant (24 h ahead) has no previous_category: nothing changed yet.
        _ if v.get("previous_category").is_some() => u.category = s("new_category").map(str::to_uppercase),
        _ => {}
    }
    if u.status.is_none() && u.quality.is_none() && u.category.is_none() {
        tracing::info!(field, waba, "template webhook with nothing to apply");
        return Ok(());
    }
    let now = work.now();
    let changed = templates::apply_update(work.tx(), waba, &u, now).await?;
    for n in numbers::of_waba(work.tx(), waba).await? {
        out.workspaces.insert(n.workspace_id);
    }
    if changed > 0 {
        out.stored += 1;
        tracing::info!(waba, name = ?u.name, status = ?u.status, quality = ?u.quality, category = ?u.category, "template changed");
    } else {
        tracing::info!(waba, name = ?u.name, "template webhook for a template not synced: journaled only");
    }
    Ok(())
}

/// An imported outbound message's status, as the phone knew it.
fn history_status(raw: &Value) -> Option<MessageStatus> {
    Some(match raw.pointer("/history_context/status").and_then(Value::as_str)? {
        "DELIVERED" => MessageStatus::Delivered,
        "READ" | "PLAYED" => MessageStatus::Read,
        "ERROR" => MessageStatus::Failed,
        _ => MessageStatus::Sent,
    })
}

/// Meta's integer (or string) Unix-seconds timestamp.
fn any_timestamp(v: Option<&Value>) -> Option<chrono::DateTime<chrono::Utc>> {
    match v? {
        Value::Number(n) => chrono::DateTime::from_timestamp(n.as_i64()?, 0),
        Value::String(s) => payload::timestamp(Some(s)),
        _ => None,
    }
}

/// The contacts journaled bodies are about, as lock keys: one per (receiving number, contact
/// phone or WhatsApp user id) of their messages, echoes and statuses, sorted and without
/// repeats. PostgreSQL processors (several per node, and one per node) lock these before
/// processing, so that two transactions never work on one chat at once and never wait for each
/// other's chats in opposite orders (a deadlock; see [`chat::lock_chats`]). A body that is not
/// a webhook has none.
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
            .chain(items("user_preferences", "wa_id", "user_id"))
            .chain(items("calls", "from", "from_user_id"))
            .chain(items("statuses", "recipient_id", "recipient_user_id"));
        // Address-book entries and history threads name their contact one level down.
        let nested = |list: &str, key: &'static str, phone: &'static str, user: &'static str| {
            let inner = v.get(list).and_then(Value::as_array).into_iter().flatten();
            let inner = inner.flat_map(move |i| match i.get(key) {
                Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
                _ => vec![i],
            });
            inner.filter_map(move |item| {
                let id = item.pointer(phone).and_then(Value::as_str).and_then(crate::phone::normalize);
                id.or_else(|| item.pointer(user).and_then(Value::as_str).map(str::to_owned))
            })
        };
        let contacts = contacts
            .chain(nested("state_sync", "", "/contact/phone_number", "/contact/user_id"))
            .chain(nested("history", "threads", "/context/wa_id", "/context/user_id"));
        keys.extend(contacts.map(|contact| chat::lock_key(number, &contact)));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

async fn connected_number(tx: &mut Tx, phone_number_id: &str) -> Result<Option<NumberRow>> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
            "SELECT id, workspace_id, auto_import_contacts, display_phone_number FROM numbers \
         WHERE phone_number_id = $1 AND disconnected_at IS NULL",
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
            content.insert("original_type".to_owned(), Value::String(other.to_owned()));
            if let Some(o) = obj {
                content.insert(other.to_owned(), o.clone());
            }
            ("unsupported", None, None)
        }
    };
    // An interactive message Meta could not deliver whole (error 131000: no body) is not an
    // empty bubble: it is unsupported, with the error shown.
    let kind = if kind == "interactive" && text.is_none() && first_error(raw).is_some_and(|e| e.code == Some(131000)) {
        content.insert("original_type".to_owned(), Value::String(kind.to_owned()));
        "unsupported"
    } else {
        kind
    };
    for extra in ["referral", "errors"] {
        if let Some(v) = raw.get(extra) {
            content.insert(extra.to_owned(), v.clone());
        }
    }
    Extracted { kind: kind.to_owned(), text, media, content: (!content.is_empty()).then_some(Value::Object(content)) }
}

/// The message a webhook's message (`inbound`) or echo `raw` (with `head`, `wamid` and time
/// `at` read from it) is to the chat; `history`: imported from the phone's past.
fn new_message<'w>(
    head: &MessageHead,
    raw: &Value,
    wamid: &'w str,
    at: chrono::DateTime<chrono::Utc>,
    inbound: bool,
    history: bool,
) -> NewMessage<'w> {
    let x = extract(head.kind.as_deref().unwrap_or("unknown"), raw);
    let ctx = head.context.as_ref();
    let (direction, status, sent_at) = match (inbound, history) {
        (true, false) => (Direction::In, MessageStatus::Received, None),
        // Imported past messages were read on the phone.
        (true, true) => (Direction::In, MessageStatus::Read, None),
        (false, _) => (Direction::Out, history_status(raw).unwrap_or(MessageStatus::Sent), Some(at)),
    };
    NewMessage {
        id: Uuid::now_v7(),
        wamid: Some(wamid),
        direction,
        kind: x.kind,
        text: x.text,
        media: x.media,
        content: x.content,
        context_wamid: ctx.and_then(|c| c.id.clone()),
        forwarded: ctx.is_some_and(|c| c.forwarded || c.frequently_forwarded),
        status,
        sent_by_user_id: None,
        sent_by_app: !inbound,
        created_at: at,
        sent_at,
        error: first_error(raw).filter(|e| e.code.is_some()),
    }
}

/// The first of a message's `errors`, as the chat keeps it.
fn first_error(raw: &Value) -> Option<StatusError> {
    let e: ErrorObject = serde_json::from_value(raw.get("errors")?.get(0)?.clone()).ok()?;
    Some(status_error(&e))
}

/// A contact's identifiers completed from `value.contacts[]`: a BSUID that arrives only
/// there (the message names the phone) is linked to the lead too, and the other way round.
fn completed(contacts: &[Contact], mut ids: ContactIds) -> ContactIds {
    let same = |c: &&Contact| {
        (ids.phone.is_some() && c.wa_id.as_deref().and_then(crate::phone::normalize) == ids.phone)
            || (ids.bsuid.is_some() && c.user_id.as_deref().map(str::trim) == ids.bsuid.as_deref())
    };
    let Some(c) = contacts.iter().find(same) else { return ids };
    let more = ContactIds::new(c.wa_id.as_deref(), c.user_id.as_deref(), c.parent_user_id.as_deref());
    ids.phone = ids.phone.or(more.phone);
    ids.bsuid = ids.bsuid.or(more.bsuid);
    ids.parent_bsuid = ids.parent_bsuid.or(more.parent_bsuid);
    ids
}

struct Ctx<'a> {
    work: &'a mut Work,
    number: &'a NumberRow,
    contacts: &'a [Contact],
    out: &'a mut Outcome,
    recording: Recording,
    /// Who is online, for the assignment of new leads and re-opened conversations.
    presence: &'a Presence,
    /// What distributing auto-imported leads needs of the server.
    distribution: crate::distribution::Setup,
    /// The conversation with this number that [`Ctx::lead_for`] found along with the lead,
    /// for [`chat::open`] right after (one round trip instead of two).
    found: Option<Chat>,
    /// A coexistence history import: past messages, stored quietly (no unread, no window, no
    /// assignment of the leads it creates).
    history: bool,
}

/// The columns of [`Known`]: identities, their leads, and each lead's conversation with the
/// number bound right after this text.
macro_rules! known {
    () => {
        "SELECT li.lead_id, li.kind, li.value, c.id AS conv_id, c.assignee_id, c.status, \
        c.contact_phone, c.contact_bsuid, l.name AS lead_name FROM lead_identities li \
        JOIN leads l ON l.id = li.lead_id \
        LEFT JOIN conversations c ON c.lead_id = li.lead_id AND c.number_id = "
    };
}
use known;

/// The identities of a contact that are already known, with their leads and each lead's
/// conversation with number `$5` (if any).
///
/// The two `IN` lists make both databases probe the primary key `(workspace_id, kind, value)`
/// for at most nine keys; the `OR` then keeps the pairs that match. With the `OR` alone,
/// SQLite read every identity of the workspace for each incoming message (375 µs per message
/// at 2,000 leads, and growing with them). `storage::sqlite_finds_a_contact_by_key` checks the
/// plan.
pub const FIND_LEAD: &str = concat!(
    known!(),
    "$5 WHERE li.workspace_id = $1 AND li.kind IN ('phone', 'bsuid', 'parent_bsuid') AND li.value IN ($2, $3, $4) \
    AND ((li.kind = 'phone' AND li.value = $2) OR (li.kind = 'bsuid' AND li.value = $3) \
    OR (li.kind = 'parent_bsuid' AND li.value = $4))"
);

/// A row of [`FIND_LEAD`].
#[derive(sqlx::FromRow)]
struct Known {
    lead_id: Uuid,
    kind: String,
    value: String,
    conv_id: Option<Uuid>,
    assignee_id: Option<Uuid>,
    status: Option<ConversationStatus>,
    contact_phone: Option<String>,
    contact_bsuid: Option<String>,
    lead_name: String,
}

impl Known {
    /// Which identity of a contact decides its lead when they name several: phone first.
    fn rank(&self) -> u8 {
        match self.kind.as_str() {
            "phone" => 0,
            "bsuid" => 1,
            _ => 2,
        }
    }

    /// The lead's chat with `number`, if it has one.
    fn chat(&self, number: &NumberRow) -> Option<Chat> {
        Some(Chat {
            id: self.conv_id?,
            workspace_id: number.workspace_id,
            lead_id: self.lead_id,
            number_id: number.id,
            assignee_id: self.assignee_id,
            status: self.status?,
            contact_phone: self.contact_phone.clone(),
            contact_bsuid: self.contact_bsuid.clone(),
            lead_name: self.lead_name.clone(),
        })
    }
}

impl Ctx<'_> {
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
    async fn lead_for(&mut self, ids: &ContactIds, referral: Option<&Value>) -> Result<Option<Uuid>> {
        if ids.is_empty() {
            return Ok(None);
        }
        let ws = self.number.workspace_id;
        self.found = None;
        let known: Vec<Known> = on_tx!(self.work.tx(), |c| sqlx::query_as(FIND_LEAD)
            .bind(ws)
            .bind(&ids.phone)
            .bind(&ids.bsuid)
            .bind(&ids.parent_bsuid)
            .bind(self.number.id)
            .fetch_all(c)
            .await)?;
        let best = known.iter().min_by_key(|k| k.rank());
        self.found = best.and_then(|k| k.chat(self.number));
        let mut lead: Option<Uuid> = best.map(|k| k.lead_id);
        if lead.is_none()
            && let Some(phone) = &ids.phone
        {
            lead = on_tx!(self.work.tx(), |c| sqlx::query_scalar(
                "SELECT id FROM leads WHERE workspace_id = $1 AND phone = $2"
            )
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
            // A click-to-WhatsApp ad brought them: the lead says which ad (rules can route on it).
            let ad = referral.filter(|r| r.get("source_type").and_then(Value::as_str) != Some("post"));
            let mut custom_fields = Map::new();
            for (field, key) in
                [("ad_source_id", "source_id"), ("ad_source_url", "source_url"), ("ad_headline", "headline")]
            {
                if let Some(v) = ad.and_then(|r| r.get(key)).and_then(Value::as_str) {
                    custom_fields.insert(field.to_owned(), Value::String(v.chars().take(1000).collect()));
                }
            }
            let new = leads::NewLead {
                workspace_id: ws,
                name: name.chars().take(200).collect(),
                phone: ids.phone.clone(),
                source: Some(if ad.is_some() { "ctwa_ad" } else { "whatsapp" }.to_owned()),
                assignee_id: None,
                custom_fields,
                group_ids: Vec::new(),
            };
            let mut created = leads::insert(self.work, new).await?;
            if !self.history {
                // A new lead: distributed (kept here, its chat is here), then assigned.
                let origin = crate::distribution::Origin::Chat;
                crate::distribution::distribute(self.work, &created, self.distribution, origin).await?;
                let presence = self.presence;
                crate::assignment::run::new_lead(self.work, &|id| presence.availability(id), &mut created).await?;
            }
            tracing::info!(lead_id = %created.id, "lead imported from WhatsApp");
            lead = Some(created.id);
        }
        let Some(lead) = lead else { return Ok(None) };
        for (kind, value) in ids.pairs() {
            if known.iter().any(|k| k.kind == kind && k.value == value) {
                continue;
            }
            on_tx!(self.work.tx(), |c| {
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

    /// Stores one message (inbound or echo) unless its wamid is known; updates the conversation.
    async fn store(&mut self, head: &MessageHead, raw: &Value, ids: &ContactIds, inbound: bool) -> Result<()> {
        let (Some(wamid), Some(at)) = (head.id.as_deref(), payload::timestamp(head.timestamp.as_deref())) else {
            self.out.problem("message without id or timestamp".to_owned());
            return Ok(());
        };
        let Some(lead) = self.lead_for(ids, raw.get("referral")).await? else {
            tracing::debug!("message from a contact who is not a lead: not stored");
            return Ok(());
        };
        let contact = chat::Contact { phone: ids.phone.as_deref(), bsuid: ids.bsuid.as_deref() };
        let (ws, number) = (self.number.workspace_id, self.number.id);
        let mut conv = chat::open(self.work, self.found.take(), ws, number, lead, contact).await?;
        let message = new_message(head, raw, wamid, at, inbound, self.history);
        let quiet = Recording { quiet: true, ..Recording::ingest(self.recording.session_gap) };
        let how = if self.history { &quiet } else { &self.recording };
        let Some(stored) = chat::record(self.work, &mut conv, message, how).await? else { return Ok(()) };
        self.out.stored += 1;
        if stored.reopened {
            let presence = self.presence;
            crate::assignment::run::reopened(self.work, &|id| presence.availability(id), conv.id).await?;
            conv.assignee_id = chat::conversation_in(self.work.tx(), conv.id).await?.assignee_id;
        }
        Ok(())
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
        let ids = self.completed(ids);
        match head.kind.as_deref() {
            Some("reaction") => self.reaction(&head, raw, &ids).await,
            Some("system") => self.system(&head, raw, &ids).await,
            Some("edit" | "revoke") => self.change(&head, raw).await,
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
        let ids = self.completed(ids);
        match head.kind.as_deref() {
            Some("edit" | "revoke") => self.change(&head, raw).await,
            _ => self.store(&head, raw, &ids, false).await,
        }
    }

    /// [`completed`] from this change's contacts.
    fn completed(&self, ids: ContactIds) -> ContactIds {
        completed(self.contacts, ids)
    }

    /// An edit or revoke (inbound or echo) of an earlier message: changes the original, or
    /// waits for it; never a message of its own.
    async fn change(&mut self, head: &MessageHead, raw: &Value) -> Result<()> {
        let Some(kind) = head.kind.as_deref().and_then(ChangeKind::parse) else { return Ok(()) };
        let obj = raw.get(kind.as_str());
        let target = obj.and_then(|o| o.get("original_message_id")).and_then(Value::as_str);
        let (Some(wamid), Some(target), Some(at)) =
            (head.id.as_deref(), target, payload::timestamp(head.timestamp.as_deref()))
        else {
            self.out.problem(format!("{kind} without id, original_message_id or timestamp"));
            return Ok(());
        };
        let text = match kind {
            ChangeKind::Revoke => None,
            ChangeKind::Edit => obj.and_then(|o| o.get("message")).and_then(|m| {
                let t = m.get("type").and_then(Value::as_str).unwrap_or("text");
                let body = if t == "text" { m.pointer("/text/body") } else { m.get(t).and_then(|o| o.get("caption")) };
                body.and_then(Value::as_str).map(str::to_owned)
            }),
        };
        let change = MessageChange { wamid, target, kind, text, at };
        if chat::change_message(self.work, self.number.workspace_id, self.number.id, &change).await? {
            self.out.stored += 1;
        }
        Ok(())
    }

    async fn reaction(&mut self, head: &MessageHead, raw: &Value, ids: &ContactIds) -> Result<()> {
        let target = raw.pointer("/reaction/message_id").and_then(Value::as_str);
        let (Some(wamid), Some(target), Some(at)) =
            (head.id.as_deref(), target, payload::timestamp(head.timestamp.as_deref()))
        else {
            self.out.problem("reaction without id, target or timestamp".to_owned());
            return Ok(());
        };
        if self.lead_for(ids, None).await?.is_none() {
            return Ok(());
        }
        let emoji = raw.pointer("/reaction/emoji").and_then(Value::as_str).unwrap_or("");
        let ws = self.number.workspace_id;
        if chat::react(self.work, ws, target, &ids.key(), emoji, wamid, at).await? {
            self.out.stored += 1;
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
        let now = self.work.now();
        let at = payload::timestamp(head.timestamp.as_deref()).unwrap_or(now);
        let sys = raw.get("system").cloned().unwrap_or(Value::Null);
        let kind = sys.get("type").and_then(Value::as_str).unwrap_or("unknown").to_owned();
        let Some(lead) = self.lead_for(ids, None).await? else { return Ok(()) };
        let inserted = on_tx!(self.work.tx(), |c| {
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
        // Shown in the chat as a system row (quiet: no unread, no window, no session) and on
        // the lead's timeline.
        let contact = chat::Contact { phone: ids.phone.as_deref(), bsuid: ids.bsuid.as_deref() };
        let (ws, number) = (self.number.workspace_id, self.number.id);
        let mut conv = chat::open(self.work, self.found.take(), ws, number, lead, contact).await?;
        let body = sys.get("body").and_then(Value::as_str).map(str::to_owned);
        let row = NewMessage {
            id: Uuid::now_v7(),
            wamid: Some(wamid),
            direction: Direction::In,
            kind: chat::SYSTEM.to_owned(),
            text: body.clone(),
            media: None,
            content: Some(Value::Object(Map::from_iter([("system".to_owned(), sys.clone())]))),
            context_wamid: None,
            forwarded: false,
            status: MessageStatus::Read,
            sent_by_user_id: None,
            sent_by_app: false,
            created_at: at,
            sent_at: None,
            error: None,
        };
        let quiet = Recording { quiet: true, ..Recording::ingest(self.recording.session_gap) };
        chat::record(self.work, &mut conv, row, &quiet).await?;
        let data = SystemActivity { conversation_id: conv.id, kind: &kind, body };
        let activity = NewActivity::new(ws, lead, ActivityKind::System, data).conversation(conv.id);
        crate::timeline::record(self.work, activity).await?;
        if matches!(kind.as_str(), "user_changed_number" | "customer_changed_number" | "user_changed_user_id") {
            let new_ids = ContactIds::new(
                sys.get("wa_id").or_else(|| sys.get("new_wa_id")).and_then(Value::as_str),
                sys.get("user_id").and_then(Value::as_str),
                sys.get("parent_user_id").and_then(Value::as_str),
            );
            for (k, value) in new_ids.pairs() {
                leads::link_identity(self.work.tx(), self.number.workspace_id, k, value, lead).await?;
            }
            if let Some(phone) = &new_ids.phone {
                // The lead keeps its old phone when another lead already owns the new one.
                let taken: Option<Uuid> = on_tx!(self.work.tx(), |c| sqlx::query_scalar(
                    "SELECT id FROM leads WHERE workspace_id = $1 AND phone = $2"
                )
                .bind(self.number.workspace_id)
                .bind(phone)
                .fetch_optional(c)
                .await)?;
                if taken.is_none() {
                    on_tx!(self.work.tx(), |c| sqlx::query(
                        "UPDATE leads SET phone = $1, updated_at = $2 WHERE id = $3"
                    )
                    .bind(phone)
                    .bind(now)
                    .bind(lead)
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected()))?;
                }
            }
            let contact = chat::Contact { phone: new_ids.phone.as_deref(), bsuid: new_ids.bsuid.as_deref() };
            chat::contact_changed(self.work.tx(), lead, contact).await?;
            let lead_row = leads::load_tx(self.work.tx(), lead).await?;
            self.work.emit(leads::updated_event(&lead_row));
            tracing::info!(lead_id = %lead, kind, "contact changed number: identities linked");
        }
        Ok(())
    }

    /// The lead a contact already is (never imports one).
    async fn existing_lead(&mut self, ids: &ContactIds) -> Result<Option<Uuid>> {
        if ids.is_empty() {
            return Ok(None);
        }
        let ws = self.number.workspace_id;
        let known: Vec<Known> = on_tx!(self.work.tx(), |c| sqlx::query_as(FIND_LEAD)
            .bind(ws)
            .bind(&ids.phone)
            .bind(&ids.bsuid)
            .bind(&ids.parent_bsuid)
            .bind(self.number.id)
            .fetch_all(c)
            .await)?;
        if let Some(k) = known.first() {
            return Ok(Some(k.lead_id));
        }
        let Some(phone) = &ids.phone else { return Ok(None) };
        Ok(on_tx!(self.work.tx(), |c| sqlx::query_scalar(
            "SELECT id FROM leads WHERE workspace_id = $1 AND phone = $2"
        )
        .bind(ws)
        .bind(phone)
        .fetch_optional(c)
        .await)?)
    }

    /// A `user_preferences` entry: the contact stopped (or resumed) marketing messages.
    async fn preference(&mut self, raw: &Value) -> Result<()> {
        let s = |k: &str| raw.get(k).and_then(Value::as_str);
        let opt_out = match s("value") {
            Some("stop") => true,
            Some("resume") => false,
            other => {
                tracing::info!(value = ?other, "user preference kept in the journal only");
                return Ok(());
            }
        };
        if s("category").is_some_and(|c| c != "marketing_messages") {
            return Ok(());
        }
        let Some(at) = any_timestamp(raw.get("timestamp")) else {
            self.out.problem("user preference without timestamp".to_owned());
            return Ok(());
        };
        let ids = self.completed(ContactIds::new(s("wa_id"), s("user_id"), s("parent_user_id")));
        let Some(lead) = self.existing_lead(&ids).await? else {
            tracing::info!("marketing preference of a contact who is not a lead: journaled only");
            return Ok(());
        };
        tracing::info!(lead_id = %lead, number_id = %self.number.id, opt_out, "marketing preference received");
        if leads::set_marketing_opt_out(self.work, lead, opt_out, at).await? {
            self.out.stored += 1;
        }
        Ok(())
    }

    /// A `calls` entry: a finished call becomes a `call` activity on the lead's timeline (once
    /// per call id); a missed inbound call alerts the conversation's assignee.
    async fn call(&mut self, raw: &Value) -> Result<()> {
        let s = |k: &str| raw.get(k).and_then(Value::as_str);
        if s("event") != Some("terminate") {
            return Ok(());
        }
        let (Some(call_id), Some(at)) = (s("id"), payload::timestamp(s("timestamp"))) else {
            self.out.problem("call without id or timestamp".to_owned());
            return Ok(());
        };
        let inbound = s("direction") != Some("BUSINESS_INITIATED");
        let ids = if inbound {
            ContactIds::new(s("from"), s("from_user_id"), s("from_parent_user_id"))
        } else {
            ContactIds::new(s("to"), s("to_user_id"), s("to_parent_user_id"))
        };
        let ids = self.completed(ids);
        let Some(lead) = self.lead_for(&ids, None).await? else { return Ok(()) };
        let ws = self.number.workspace_id;
        let inserted = on_tx!(self.work.tx(), |c| {
            sqlx::query(
                "INSERT INTO inbound_notices (wamid, workspace_id, lead_id, kind, data, at) VALUES ($1, $2, $3, 'call', $4, $5) \
                 ON CONFLICT (wamid) DO NOTHING",
            )
            .bind(call_id)
            .bind(ws)
            .bind(lead)
            .bind(sqlx::types::Json(raw))
            .bind(at)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        if inserted == 0 {
            return Ok(());
        }
        self.out.stored += 1;
        let contact = chat::Contact { phone: ids.phone.as_deref(), bsuid: ids.bsuid.as_deref() };
        let conv = chat::open(self.work, self.found.take(), ws, self.number.id, lead, contact).await?;
        let duration = raw.get("duration").and_then(Value::as_i64);
        let missed = inbound && duration.is_none() && raw.get("start_time").is_none();
        let data = CallActivity {
            conversation_id: conv.id,
            call_id,
            direction: if inbound { Direction::In } else { Direction::Out },
            status: s("status").unwrap_or("").to_owned(),
            duration_secs: duration,
            missed,
        };
        let activity = NewActivity::new(ws, lead, ActivityKind::Call, data).conversation(conv.id);
        crate::timeline::record(self.work, activity).await?;
        if missed && let Some(assignee) = conv.assignee_id {
            let notice = CallNotice { call_id: call_id.to_owned(), conversation_id: conv.id, lead_id: lead, at };
            self.work
                .emit(NewEvent::new(ws, Event::CallMissed(notice)).conversation(conv.id).lead(lead).to_user(assignee));
        }
        tracing::info!(lead_id = %lead, call_id, missed, "call recorded");
        Ok(())
    }

    /// A `history` entry (coexistence onboarding): each thread's past messages, stored like
    /// others (idempotent by wamid) but quietly; a declined share is logged.
    async fn history(&mut self, h: &Value) -> Result<()> {
        for e in h.get("errors").and_then(Value::as_array).into_iter().flatten() {
            tracing::warn!(number_id = %self.number.id, error = %e, "history not shared by the business");
        }
        let display = Some(self.number.display_phone_number.clone());
        for thread in h.get("threads").and_then(Value::as_array).into_iter().flatten() {
            let s = |k: &str| thread.pointer(k).and_then(Value::as_str);
            let contact =
                ContactIds::new(s("/context/wa_id").or(s("/id")), s("/context/user_id"), s("/context/parent_user_id"));
            for raw in thread.get("messages").and_then(Value::as_array).into_iter().flatten() {
                let head: MessageHead = match serde_json::from_value(raw.clone()) {
                    Ok(h) => h,
                    Err(e) => {
                        self.out.problem(format!("history message with unexpected shape: {e}"));
                        continue;
                    }
                };
                let ours = head.from.as_deref().and_then(crate::phone::normalize) == display;
                let own = if ours {
                    ContactIds::new(head.to.as_deref(), head.to_user_id.as_deref(), head.to_parent_user_id.as_deref())
                } else {
                    ContactIds::new(
                        head.from.as_deref(),
                        head.from_user_id.as_deref(),
                        head.from_parent_user_id.as_deref(),
                    )
                };
                let ids = ContactIds {
                    phone: own.phone.or(contact.phone.clone()),
                    bsuid: own.bsuid.or(contact.bsuid.clone()),
                    parent_bsuid: own.parent_bsuid.or(contact.parent_bsuid.clone()),
                };
                match head.kind.as_deref() {
                    Some("reaction" | "system" | "edit" | "revoke") => {}
                    _ => self.store(&head, raw, &ids, !ours).await?,
                }
            }
        }
        Ok(())
    }

    /// An `smb_app_state_sync` entry: the business's address book. On numbers that import
    /// contacts, `add` creates the lead (not assigned: an address book is not news) or renames
    /// it to the business's own name for them; `remove` never deletes a lead.
    async fn contact_sync(&mut self, raw: &Value) -> Result<()> {
        let s = |k: &str| raw.pointer(k).and_then(Value::as_str);
        if s("/type") != Some("contact") {
            return Ok(());
        }
        let ids = ContactIds::new(s("/contact/phone_number"), s("/contact/user_id"), None);
        let action = s("/action").unwrap_or("");
        if action != "add" || ids.is_empty() || !self.number.auto_import_contacts {
            tracing::info!(action, "address-book entry kept in the journal only");
            return Ok(());
        }
        let Some(name) = s("/contact/full_name").or(s("/contact/first_name")).map(str::trim).filter(|n| !n.is_empty())
        else {
            return Ok(());
        };
        let name: String = name.chars().take(200).collect();
        let ws = self.number.workspace_id;
        let lead = match self.existing_lead(&ids).await? {
            Some(lead) => {
                if leads::rename(self.work, lead, &name).await? {
                    self.out.stored += 1;
                }
                lead
            }
            None => {
                let new = leads::NewLead {
                    workspace_id: ws,
                    name,
                    phone: ids.phone.clone(),
                    source: Some("whatsapp".to_owned()),
                    assignee_id: None,
                    custom_fields: Map::new(),
                    group_ids: Vec::new(),
                };
                let created = leads::insert(self.work, new).await?;
                self.out.stored += 1;
                tracing::info!(lead_id = %created.id, "lead imported from the business's address book");
                created.id
            }
        };
        for (kind, value) in ids.pairs() {
            leads::link_identity(self.work.tx(), ws, kind, value, lead).await?;
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
        // `played` (a voice message played) counts as read.
        let known = if status == "played" { Some(MessageStatus::Read) } else { MessageStatus::parse(status) };
        let Some(status) = known.filter(|s| s.is_reported()) else {
            tracing::warn!(status, wamid, "unknown status: kept in the journal only");
            return Ok(());
        };
        let error = s.errors.first().map(status_error);
        if chat::receive_status(self.work, wamid, status, at, error.as_ref(), s.pricing.as_ref()).await? {
            self.out.stored += 1;
        }
        Ok(())
    }
}

/// The data of a `call` activity.
#[derive(serde::Serialize)]
struct CallActivity<'a> {
    conversation_id: Uuid,
    call_id: &'a str,
    /// `in`: the contact called; `out`: the business did.
    direction: Direction,
    /// As Meta sent it (`COMPLETED`, `FAILED`).
    status: String,
    duration_secs: Option<i64>,
    missed: bool,
}

/// The data of a `system` activity: what WhatsApp said happened to the contact.
#[derive(serde::Serialize)]
struct SystemActivity<'a> {
    conversation_id: Uuid,
    #[serde(rename = "type")]
    kind: &'a str,
    body: Option<String>,
}

/// Meta's error object as the chat keeps it (its title, else its message).
fn status_error(e: &ErrorObject) -> StatusError {
    StatusError { code: e.code, title: e.title.clone().or_else(|| e.message.clone()) }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal(format!("json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::contact_keys;
    use crate::inbox::chat::lock_key;

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
}
