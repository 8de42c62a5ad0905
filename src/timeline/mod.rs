//! The lead's activity timeline: WhatsApp session summaries, notes, and who did what to a
//! lead or its chats. Writing an activity also appends its event, in the same transaction.

pub mod routes;
pub mod sessions;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::db::Tx;
use crate::error::Result;
use crate::events::{self, NewEvent};
use crate::on_tx;

const INSERT: &str = "INSERT INTO activities \
    (id, workspace_id, lead_id, conversation_id, type, member_id, data, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";

/// The activity as clients see it.
pub fn activity_json(
    id: Uuid,
    kind: &str,
    lead_id: Uuid,
    conversation_id: Option<Uuid>,
    member_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    data: &Value,
) -> Value {
    json!({
        "id": id,
        "type": kind,
        "lead_id": lead_id,
        "conversation_id": conversation_id,
        "member_id": member_id,
        "created_at": created_at,
        "data": data,
    })
}

/// Records an activity on a lead's timeline (with `member_id` = who did it) and appends its
/// `timeline.created` event. Returns the activity id.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    tx: &mut Tx,
    now: DateTime<Utc>,
    workspace_id: Uuid,
    lead_id: Uuid,
    conversation_id: Option<Uuid>,
    kind: &str,
    member_id: Option<Uuid>,
    data: Value,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    on_tx!(tx, |c| sqlx::query(INSERT)
        .bind(id)
        .bind(workspace_id)
        .bind(lead_id)
        .bind(conversation_id)
        .bind(kind)
        .bind(member_id)
        .bind(sqlx::types::Json(&data))
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let body = activity_json(id, kind, lead_id, conversation_id, member_id, now, &data);
    let mut event = NewEvent::raw(workspace_id, "timeline.created", body).lead(lead_id);
    event.conversation_id = conversation_id;
    events::append(tx, now, event).await?;
    Ok(id)
}

/// An activity for [`record_many`].
pub struct NewActivity {
    pub workspace_id: Uuid,
    pub lead_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub kind: &'static str,
    pub member_id: Option<Uuid>,
    pub data: Value,
}

/// [`record`] for many activities at once (bulk changes such as a CSV import): multi-row
/// INSERTs for the activities and their `timeline.created` events.
pub async fn record_many(tx: &mut Tx, now: DateTime<Utc>, list: &[NewActivity]) -> Result<()> {
    let mut events = events::Buffer::default();
    record_many_into(tx, now, list, &mut events).await?;
    events.flush(tx).await
}

/// [`record_many`] that leaves the `timeline.created` events in `events`, for the caller to
/// append later in the transaction (appending takes the event log's lock until commit).
pub async fn record_many_into(
    tx: &mut Tx,
    now: DateTime<Utc>,
    list: &[NewActivity],
    events: &mut events::Buffer,
) -> Result<()> {
    let ids: Vec<Uuid> = list.iter().map(|_| Uuid::now_v7()).collect();
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
                    .push_bind(sqlx::types::Json(&a.data))
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    for (a, id) in list.iter().zip(&ids) {
        let body = activity_json(*id, a.kind, a.lead_id, a.conversation_id, a.member_id, now, &a.data);
        let mut e = NewEvent::raw(a.workspace_id, "timeline.created", body).lead(a.lead_id);
        e.conversation_id = a.conversation_id;
        events.push(now, e);
    }
    Ok(())
}
