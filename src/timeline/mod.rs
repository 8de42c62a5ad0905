//! The lead's activity timeline: WhatsApp session summaries, notes, and who did what to a
//! lead or its chats. Writing an activity also emits its event, in the same unit of work.
//! Below inbox and assignment: it never imports them.

pub mod http;
pub mod read;
pub mod sessions;

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::db::Tx;
use crate::error::Result;
use crate::events::{Event, NewEvent, Work};
use crate::on_tx;
use crate::views::timeline::{ActivityKind, ActivityView};

/// An activity to record: on lead `lead_id` (and its conversation), by `member_id`.
#[derive(Debug, Clone)]
pub struct NewActivity {
    pub workspace_id: Uuid,
    pub lead_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub kind: ActivityKind,
    pub member_id: Option<Uuid>,
    pub data: Value,
}

impl NewActivity {
    /// An activity with `data` as its JSON object.
    pub fn new(workspace_id: Uuid, lead_id: Uuid, kind: ActivityKind, data: impl Serialize) -> NewActivity {
        NewActivity {
            workspace_id,
            lead_id,
            conversation_id: None,
            kind,
            member_id: None,
            data: serde_json::to_value(data).expect("activity data serialises"),
        }
    }
    pub fn conversation(mut self, id: impl Into<Option<Uuid>>) -> Self {
        self.conversation_id = id.into();
        self
    }
    pub fn by(mut self, member: impl Into<Option<Uuid>>) -> Self {
        self.member_id = member.into();
        self
    }
}

/// `{}`: an activity that says nothing beyond its type.
#[derive(Serialize)]
pub struct NoData {}

/// `from_member_id` → `to_member_id` (`assigned`), with the engine's decision when it chose.
#[derive(Debug, Clone, Serialize)]
pub struct AssignedData {
    pub from_member_id: Option<Uuid>,
    pub to_member_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Present (possibly null) when the engine decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<Uuid>,
}

impl AssignedData {
    pub fn by_member(from: Option<Uuid>, to: Uuid) -> AssignedData {
        AssignedData { from_member_id: from, to_member_id: to, reason: None, rule: None, decision_id: None }
    }
}

const INSERT: &str = "INSERT INTO activities \
    (id, workspace_id, lead_id, conversation_id, type, member_id, data, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";

fn event(a: &NewActivity, id: Uuid, at: chrono::DateTime<chrono::Utc>) -> NewEvent {
    let view = ActivityView {
        id,
        kind: a.kind,
        lead_id: a.lead_id,
        conversation_id: a.conversation_id,
        member_id: a.member_id,
        created_at: at,
        data: a.data.clone(),
    };
    NewEvent::new(a.workspace_id, Event::TimelineCreated(view)).lead(a.lead_id).conversation(a.conversation_id)
}

/// Records an activity on a lead's timeline and emits its `timeline.created` event. Returns
/// the activity id.
pub async fn record(w: &mut Work, a: NewActivity) -> Result<Uuid> {
    let id = Uuid::now_v7();
    let now = w.now();
    on_tx!(w.tx(), |c| sqlx::query(INSERT)
        .bind(id)
        .bind(a.workspace_id)
        .bind(a.lead_id)
        .bind(a.conversation_id)
        .bind(a.kind)
        .bind(a.member_id)
        .bind(sqlx::types::Json(a.data.clone()))
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    w.emit(event(&a, id, now));
    Ok(id)
}

/// [`record`] for many activities at once (bulk changes such as a CSV import): multi-row
/// INSERTs, and a `timeline.created` event each.
pub async fn record_many(w: &mut Work, list: &[NewActivity]) -> Result<()> {
    let now = w.now();
    let ids: Vec<Uuid> = list.iter().map(|_| Uuid::now_v7()).collect();
    insert_many(w.tx(), now, list, &ids).await?;
    for (a, id) in list.iter().zip(&ids) {
        w.emit(event(a, *id, now));
    }
    Ok(())
}

async fn insert_many(
    tx: &mut Tx,
    now: chrono::DateTime<chrono::Utc>,
    list: &[NewActivity],
    ids: &[Uuid],
) -> Result<()> {
    // 9 parameters a row.
    for (chunk, chunk_ids) in list.chunks(500).zip(ids.chunks(500)) {
        on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO activities \
                 (id, workspace_id, lead_id, conversation_id, type, member_id, data, created_at, updated_at) ",
            );
            qb.push_values(chunk.iter().zip(chunk_ids), |mut b, (a, id)| {
                b.push_bind(*id)
                    .push_bind(a.workspace_id)
                    .push_bind(a.lead_id)
                    .push_bind(a.conversation_id)
                    .push_bind(a.kind)
                    .push_bind(a.member_id)
                    .push_bind(sqlx::types::Json(a.data.clone()))
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}
