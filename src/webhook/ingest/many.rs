//! A batch of journaled bodies processed together, in the journal's order. Runs of bodies
//! that hold only plain customer messages to chats that exist and are open — the common case
//! by far — are recorded set-wise ([`inbound::record`]: a handful of statements for the whole
//! run, not a handful per message); every other body goes through [`process`] on its own.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::{Batch, ContactIds, Known, NumberRow, Outcome, Setting, completed, known, new_message, process};
use crate::db::{Tx, push_list};
use crate::error::Result;
use crate::events::Work;
use crate::inbox::chat::{self, Chat, NewMessage};
use crate::inbox::inbound;
use crate::on_tx;
use crate::views::conversation::ConversationStatus;
use crate::webhook::payload::{self, ChangeValue, Envelope, MessageHead};

/// A plain customer message (not a reaction, edit, revoke or system notice) with an id and a
/// time, to a connected number.
struct Plain {
    number: NumberRow,
    gap: i64,
    ids: ContactIds,
    head: MessageHead,
    raw: Value,
    wamid: String,
    at: DateTime<Utc>,
}

/// A journaled body as [`process_many`] sees it.
enum Body {
    /// Nothing but plain customer messages (at least one).
    Plain(Vec<Plain>),
    /// Anything else, for [`process`].
    Other,
}

/// Processes journaled `bodies` in `work`, in order, and returns an outcome for each body it
/// took: all of them, unless `stop` said so (it is asked before each step after the first;
/// the rest stay for later).
pub async fn process_many(
    work: &mut Work,
    batch: &mut Batch,
    setting: Setting<'_>,
    bodies: &[&[u8]],
    stop: impl Fn() -> bool,
) -> Result<Vec<Outcome>> {
    let mut parsed = Vec::with_capacity(bodies.len());
    for body in bodies {
        parsed.push(classify(work.tx(), batch, setting, body).await?);
    }
    let mut outcomes = Vec::with_capacity(bodies.len());
    while outcomes.len() < bodies.len() && (outcomes.is_empty() || !stop()) {
        let next = outcomes.len();
        let rest = &parsed[next..];
        let run = &rest[..rest.iter().take_while(|b| matches!(b, Body::Plain(_))).count()];
        if record_run(work, run, &mut outcomes).await? == 0 {
            outcomes.push(process(work, batch, setting, bodies[next]).await?);
        }
    }
    Ok(outcomes)
}

/// Reads `body` as plain customer messages, if that is all it holds.
async fn classify(tx: &mut Tx, batch: &mut Batch, setting: Setting<'_>, body: &[u8]) -> Result<Body> {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else { return Ok(Body::Other) };
    if envelope.object.as_deref() != Some("whatsapp_business_account") {
        return Ok(Body::Other);
    }
    let mut plain = Vec::new();
    for change in envelope.entry.into_iter().flat_map(|e| e.changes) {
        if change.field.as_deref() != Some("messages") {
            return Ok(Body::Other);
        }
        let Ok(v) = serde_json::from_value::<ChangeValue>(change.value) else { return Ok(Body::Other) };
        let only_messages = v.statuses.is_empty()
            && v.errors.is_empty()
            && v.message_echoes.is_empty()
            && v.user_preferences.is_empty()
            && v.calls.is_empty()
            && v.history.is_empty()
            && v.state_sync.is_empty();
        let pnid = v.metadata.as_ref().and_then(|m| m.phone_number_id.as_deref());
        let (true, Some(pnid)) = (only_messages, pnid) else { return Ok(Body::Other) };
        let Some(number) = batch.number(tx, pnid).await? else { return Ok(Body::Other) };
        let gap = batch.gap(tx, setting, number.workspace_id).await?;
        for raw in v.messages {
            let Ok(head) = MessageHead::deserialize(&raw) else { return Ok(Body::Other) };
            let special = matches!(head.kind.as_deref(), Some("reaction" | "system" | "edit" | "revoke"));
            let (false, Some(wamid), Some(at)) =
                (special, head.id.clone(), payload::timestamp(head.timestamp.as_deref()))
            else {
                return Ok(Body::Other);
            };
            let from = (head.from.as_deref(), head.from_user_id.as_deref(), head.from_parent_user_id.as_deref());
            let ids = completed(&v.contacts, ContactIds::new(from.0, from.1, from.2));
            if ids.is_empty() {
                return Ok(Body::Other);
            }
            plain.push(Plain { number: number.clone(), gap, ids, head, raw, wamid, at });
        }
    }
    Ok(if plain.is_empty() { Body::Other } else { Body::Plain(plain) })
}

/// Records set-wise the longest start of `run` whose messages all go to chats that exist and
/// are open, from contacts known under every identifier they name (nothing to link, import,
/// re-open or re-address), and pushes those bodies' outcomes. Returns how many bodies it took
/// (0: the first needs [`process`]).
async fn record_run(work: &mut Work, run: &[Body], outcomes: &mut Vec<Outcome>) -> Result<usize> {
    fn plain(b: &Body) -> &[Plain] {
        match b {
            Body::Plain(m) => m,
            Body::Other => &[],
        }
    }
    if run.is_empty() {
        return Ok(0);
    }
    let known = known_contacts(work.tx(), run.iter().flat_map(plain)).await?;
    let mut taken = Vec::new();
    for body in run {
        let chats: Option<Vec<Chat>> = plain(body).iter().map(|m| chat_of(&known, m)).collect();
        let Some(chats) = chats else { break };
        taken.push(plain(body).iter().zip(chats).collect::<Vec<_>>());
    }
    if taken.is_empty() {
        return Ok(0);
    }
    let mut outs: Vec<Outcome> = taken.iter().map(|_| Outcome::default()).collect();
    // One call per workspace (its session gap), each in the journal's order.
    let mut body_of: HashMap<Uuid, usize> = HashMap::new();
    let mut by_workspace: Vec<InWorkspace> = Vec::new();
    for (i, msgs) in taken.into_iter().enumerate() {
        for (m, chat) in msgs {
            let ws = m.number.workspace_id;
            outs[i].workspaces.insert(ws);
            let message = new_message(&m.head, &m.raw, &m.wamid, m.at, true, false);
            body_of.insert(message.id, i);
            match by_workspace.iter_mut().find(|w| w.ws == ws) {
                Some(w) => w.items.push((chat, message)),
                None => by_workspace.push(InWorkspace { ws, gap: m.gap, items: vec![(chat, message)] }),
            }
        }
    }
    for InWorkspace { ws, gap, items } in by_workspace {
        for id in inbound::record(work, ws, items, gap).await? {
            outs[body_of[&id]].stored += 1;
        }
    }
    let took = outs.len();
    tracing::debug!(webhooks = took, "plain customer messages recorded set-wise");
    outcomes.extend(outs);
    Ok(took)
}

/// A run's messages to one workspace's numbers, with their chats, in order.
struct InWorkspace<'m> {
    ws: Uuid,
    /// Its session gap.
    gap: i64,
    items: Vec<(Chat, NewMessage<'m>)>,
}

/// The chat `m` goes to, when storing it needs nothing else: the identities it names are all
/// known, the lead they decide has a chat with the number, open, replying to this contact.
fn chat_of(known: &HashMap<Uuid, Vec<Known>>, m: &Plain) -> Option<Chat> {
    let rows = known.get(&m.number.id)?;
    let pairs = m.ids.pairs();
    let is = |k: &Known, (kind, value): &(&str, &str)| k.kind == *kind && k.value == *value;
    if !pairs.iter().all(|p| rows.iter().any(|k| is(k, p))) {
        return None;
    }
    let best = rows.iter().filter(|k| pairs.iter().any(|p| is(k, p))).min_by_key(|k| k.rank())?;
    let chat = best.chat(&m.number)?;
    let contact = chat::Contact { phone: m.ids.phone.as_deref(), bsuid: m.ids.bsuid.as_deref() };
    (chat.status != ConversationStatus::Closed && !chat.contact_is_new(contact)).then_some(chat)
}

/// The known identities among the contacts of `msgs`, per number: [`super::FIND_LEAD`] for
/// many contacts in one statement per number (each probing the identities' key).
async fn known_contacts<'p>(tx: &mut Tx, msgs: impl Iterator<Item = &'p Plain>) -> Result<HashMap<Uuid, Vec<Known>>> {
    let mut wanted: Vec<(&NumberRow, BTreeSet<&str>)> = Vec::new();
    for m in msgs {
        let values = m.ids.pairs().into_iter().map(|(_, v)| v);
        match wanted.iter_mut().find(|w| w.0.id == m.number.id) {
            Some(w) => w.1.extend(values),
            None => wanted.push((&m.number, values.collect())),
        }
    }
    let mut known = HashMap::new();
    for (number, values) in wanted {
        let values: Vec<&str> = values.into_iter().collect();
        let rows: Vec<Known> = on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(known!());
            qb.push_bind(number.id).push(" WHERE li.workspace_id = ").push_bind(number.workspace_id);
            qb.push(" AND li.kind IN ('phone', 'bsuid', 'parent_bsuid') AND li.value IN (");
            push_list(&mut qb, &values);
            qb.push(")");
            qb.build_query_as().fetch_all(c).await
        })?;
        known.insert(number.id, rows);
    }
    Ok(known)
}
