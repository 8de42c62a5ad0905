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
use crate::inbox::chat::{self, Chat, NewMessage, Recording, StatusError};
use crate::inbox::leads;
use crate::live::presence::Presence;
use crate::on_tx;
use crate::views::conversation::ConversationStatus;
use crate::views::message::{Direction, MessageStatus};
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

/// What the bodies processed in one unit of work looked up that cannot change meanwhile
/// (numbers, session gaps). Their events go to that unit of work, appended once at its commit.
#[derive(Default)]
pub struct Batch {
    numbers: HashMap<String, Option<NumberRow>>,
    gaps: HashMap<Uuid, i64>,
}

/// What processing needs besides the body and the unit of work.
#[derive(Clone, Copy)]
pub struct Setting<'a> {
    /// The operator's session gap (seconds), overriding the workspaces'.
    pub session_gap: Option<i64>,
    /// Who is online, for the assignment of new leads and re-opened conversations.
    pub presence: &'a Presence,
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
                    let n = connected_number(work.tx(), pnid).await?;
                    batch.numbers.insert(pnid.to_owned(), n.clone());
                    n
                }
            };
            let Some(number) = number else {
                tracing::info!(phone_number_id = pnid, "webhook for a number that is not connected: journaled only");
                continue;
            };
            out.workspaces.insert(number.workspace_id);
            let gap = match setting.session_gap.or_else(|| batch.gaps.get(&number.workspace_id).copied()) {
                Some(g) => g,
                None => {
                    let g = session_gap(work.tx(), number.workspace_id).await?;
                    batch.gaps.insert(number.workspace_id, g);
                    g
                }
            };
            let mut ctx = Ctx {
                work: &mut *work,
                number: &number,
                contacts: &value.contacts,
                out: &mut out,
                recording: Recording { session_gap: gap, newest: false, answer: false },
                presence: setting.presence,
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
            .chain(items("statuses", "recipient_id", "recipient_user_id"));
        keys.extend(contacts.map(|contact| chat::lock_key(number, &contact)));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
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
            content.insert("original_type".to_owned(), Value::String(other.to_owned()));
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
    work: &'a mut Work,
    number: &'a NumberRow,
    contacts: &'a [Contact],
    out: &'a mut Outcome,
    recording: Recording,
    /// Who is online, for the assignment of new leads and re-opened conversations.
    presence: &'a Presence,
    /// The conversation with this number that [`Ctx::lead_for`] found along with the lead,
    /// for [`chat::open`] right after (one round trip instead of two).
    found: Option<Chat>,
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
    status: Option<ConversationStatus>,
    contact_phone: Option<String>,
    contact_bsuid: Option<String>,
    lead_name: String,
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
    async fn lead_for(&mut self, ids: &ContactIds) -> Result<Option<Uuid>> {
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
        let rank = |kind: &str| match kind {
            "phone" => 0,
            "bsuid" => 1,
            _ => 2,
        };
        let best = known.iter().min_by_key(|k| rank(&k.kind));
        self.found = best.and_then(|k| {
            Some(Chat {
                id: k.conv_id?,
                workspace_id: ws,
                lead_id: k.lead_id,
                number_id: self.number.id,
                assignee_id: k.assignee_id,
                status: k.status?,
                contact_phone: k.contact_phone.clone(),
                contact_bsuid: k.contact_bsuid.clone(),
                lead_name: k.lead_name.clone(),
            })
        });
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
            let new = leads::NewLead {
                workspace_id: ws,
                name: name.chars().take(200).collect(),
                phone: ids.phone.clone(),
                source: Some("whatsapp".to_owned()),
                assignee_id: None,
                custom_fields: Map::new(),
                group_ids: Vec::new(),
            };
            let mut created = leads::insert(self.work, new).await?;
            let presence = self.presence;
            crate::assignment::run::new_lead(self.work, &|id| presence.availability(id), &mut created).await?;
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
        let Some(lead) = self.lead_for(ids).await? else {
            tracing::debug!("message from a contact who is not a lead: not stored");
            return Ok(());
        };
        let contact = chat::Contact { phone: ids.phone.as_deref(), bsuid: ids.bsuid.as_deref() };
        let (ws, number) = (self.number.workspace_id, self.number.id);
        let mut conv = chat::open(self.work, self.found.take(), ws, number, lead, contact).await?;
        let x = extract(head.kind.as_deref().unwrap_or("unknown"), raw);
        let ctx = head.context.as_ref();
        let (direction, status, sent_at) = if inbound {
            (Direction::In, MessageStatus::Received, None)
        } else {
            (Direction::Out, MessageStatus::Sent, Some(at))
        };
        let message = NewMessage {
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
        };
        let Some(stored) = chat::record(self.work, &mut conv, message, &self.recording).await? else { return Ok(()) };
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
        let Some(lead) = self.lead_for(ids).await? else { return Ok(()) };
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

    async fn status(&mut self, s: &payload::Status) -> Result<()> {
        let (Some(wamid), Some(status), Some(at)) =
            (s.id.as_deref(), s.status.as_deref(), payload::timestamp(s.timestamp.as_deref()))
        else {
            self.out.problem("status without id, status or timestamp".to_owned());
            return Ok(());
        };
        let Some(status) = MessageStatus::parse(status).filter(|s| s.is_reported()) else {
            self.out.problem(format!("unknown status {status:?}"));
            return Ok(());
        };
        let error = s.errors.first().map(status_error);
        if chat::receive_status(self.work, wamid, status, at, error.as_ref()).await? {
            self.out.stored += 1;
        }
        Ok(())
    }
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
