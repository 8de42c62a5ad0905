//! The event log. Every change clients care about appends its event in the same transaction,
//! so a committed change always has its event and a rolled-back one never does.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::db::{Backend, Db, EVENT_LOCK_KEY, Tx};
use crate::error::Result;
use crate::{on_db, on_tx};

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub workspace_id: Uuid,
    pub kind: &'static str,
    pub conversation_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    /// Addressed to one member only (e.g. their own `member.updated`).
    pub user_id: Option<Uuid>,
    pub data: Value,
}

impl NewEvent {
    pub fn new(workspace_id: Uuid, kind: &'static str, data: Value) -> Self {
        NewEvent { workspace_id, kind, conversation_id: None, lead_id: None, user_id: None, data }
    }
    pub fn conversation(mut self, id: Uuid) -> Self {
        self.conversation_id = Some(id);
        self
    }
    pub fn lead(mut self, id: Uuid) -> Self {
        self.lead_id = Some(id);
        self
    }
    pub fn to_user(mut self, id: Uuid) -> Self {
        self.user_id = Some(id);
        self
    }
}

/// Takes the append lock of `tx` now (PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds the
/// write lock) and queues the NOTIFY sent at COMMIT. Appends after it, in this transaction and
/// others, commit in cursor order. Re-entrant: [`append`] calls it for every event.
pub async fn serialise(tx: &mut Tx) -> Result<()> {
    if tx.backend() == Backend::Postgres {
        on_tx!(tx, |c| sqlx::query("SELECT pg_advisory_xact_lock($1), pg_notify('sb_events', '')")
            .bind(EVENT_LOCK_KEY)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

const INSERT: &str = "INSERT INTO events (workspace_id, type, conversation_id, lead_id, user_id, data, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";

/// Appends `e` in `tx`; returns its cursor. On PostgreSQL appends are serialised by an
/// advisory lock (ids then commit in order) and a NOTIFY wakes the other nodes at COMMIT.
pub async fn append(tx: &mut Tx, now: DateTime<Utc>, e: NewEvent) -> Result<i64> {
    serialise(tx).await?;
    let id: i64 = on_tx!(tx, |c| sqlx::query_scalar(INSERT)
        .bind(e.workspace_id)
        .bind(e.kind)
        .bind(e.conversation_id)
        .bind(e.lead_id)
        .bind(e.user_id)
        .bind(e.data.to_string())
        .bind(now)
        .fetch_one(c)
        .await)?;
    Ok(id)
}

/// Appends several events in multi-row INSERTs (bulk changes such as a CSV import), in list
/// order, with the same ordering guarantees as [`append`].
pub async fn append_many(tx: &mut Tx, now: DateTime<Utc>, list: &[NewEvent]) -> Result<()> {
    let mut buffer = Buffer::default();
    for e in list {
        buffer.push(now, e.clone());
    }
    buffer.flush(tx).await
}

/// Events collected during a transaction and appended together by [`Buffer::flush`]: one
/// multi-row INSERT (and on PostgreSQL one lock round trip) instead of one per event. Their
/// cursors follow the order they were pushed in. Flush before anything else appends in the
/// same transaction, and before committing.
#[derive(Debug, Default)]
pub struct Buffer {
    events: Vec<(DateTime<Utc>, NewEvent)>,
}

/// Rows per INSERT statement (7 binds each; SQLite allows 32,766).
const ROWS_PER_INSERT: usize = 512;

impl Buffer {
    pub fn push(&mut self, now: DateTime<Utc>, e: NewEvent) {
        self.events.push((now, e));
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Appends every buffered event in `tx`, in push order, and empties the buffer.
    pub async fn flush(&mut self, tx: &mut Tx) -> Result<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        serialise(tx).await?;
        for chunk in self.events.chunks(ROWS_PER_INSERT) {
            on_tx!(tx, |c| {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO events (workspace_id, type, conversation_id, lead_id, user_id, data, created_at) ",
                );
                qb.push_values(chunk, |mut b, (now, e)| {
                    b.push_bind(e.workspace_id)
                        .push_bind(e.kind)
                        .push_bind(e.conversation_id)
                        .push_bind(e.lead_id)
                        .push_bind(e.user_id)
                        .push_bind(e.data.to_string())
                        .push_bind(*now);
                });
                qb.build().execute(c).await.map(|r| r.rows_affected())
            })?;
        }
        self.events.clear();
        Ok(())
    }
}

/// A stored event as live sockets deliver it, with its frame serialised once.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub workspace_id: Uuid,
    pub kind: String,
    pub conversation_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    /// For `member.updated`: what sockets check about it (read from its data once).
    pub member: Option<MemberChange>,
    /// `{"cursor":"<id>","type":"...","data":{...}}`, ready to send.
    pub frame: axum::extract::ws::Utf8Bytes,
}

/// What a `member.updated` event says that sockets act on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberChange {
    /// The member it is about.
    pub id: Option<Uuid>,
    /// `status` became `deactivated`.
    pub deactivated: bool,
    /// It changes more than presence (role, permissions, labels, status): what the member
    /// may see may have changed.
    pub beyond_presence: bool,
}

impl MemberChange {
    fn of(data: &Value) -> MemberChange {
        MemberChange {
            id: data.get("id").and_then(|v| v.as_str()).and_then(|s| Uuid::parse_str(s).ok()),
            deactivated: data.get("status").and_then(|s| s.as_str()) == Some("deactivated"),
            beyond_presence: data.as_object().is_some_and(|o| o.keys().any(|k| k != "id" && k != "presence")),
        }
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    workspace_id: Uuid,
    #[sqlx(rename = "type")]
    kind: String,
    conversation_id: Option<Uuid>,
    lead_id: Option<Uuid>,
    user_id: Option<Uuid>,
    /// The JSON text as appended (a TEXT column on both backends).
    data: String,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Event {
        // The frame is assembled around the stored text: appends write it with serde_json, so
        // it is valid JSON, and parsing it only to print it again cost every event a tree of
        // allocations. Only `member.updated` is read, for what sockets check.
        let member = (r.kind == "member.updated")
            .then(|| MemberChange::of(&serde_json::from_str(&r.data).unwrap_or(Value::Null)));
        let frame = format!(r#"{{"cursor":"{}","type":{},"data":{}}}"#, r.id, Value::from(r.kind.as_str()), r.data);
        Event {
            id: r.id,
            workspace_id: r.workspace_id,
            kind: r.kind,
            conversation_id: r.conversation_id,
            lead_id: r.lead_id,
            user_id: r.user_id,
            member,
            frame: frame.into(),
        }
    }
}

const AFTER: &str = "SELECT id, workspace_id, type, conversation_id, lead_id, user_id, data \
    FROM events WHERE id > $1 ORDER BY id LIMIT $2";

/// Up to `limit` committed events after `cursor`, in cursor order.
pub async fn read_after(db: &Db, cursor: i64, limit: i64) -> Result<Vec<Event>> {
    let rows: Vec<EventRow> = on_db!(db, |p| sqlx::query_as(AFTER).bind(cursor).bind(limit).fetch_all(p).await)?;
    Ok(rows.into_iter().map(Event::from).collect())
}

/// The smallest retained and the largest cursor of the log (`None` when it is empty).
pub async fn bounds(db: &Db) -> Result<Option<(i64, i64)>> {
    let (min, max): (Option<i64>, Option<i64>) =
        on_db!(db, |p| sqlx::query_as("SELECT MIN(id), MAX(id) FROM events").fetch_one(p).await)?;
    Ok(min.zip(max))
}

/// How long the log keeps events; a resume cursor older than that gets `{"type":"reset"}`.
pub const RETENTION: chrono::Duration = chrono::Duration::days(3);

/// Deletes events created before `before`, always keeping the newest one (so the log's end,
/// and with it the answer to "is this cursor too old?", survives a quiet period).
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    prune_by(db, before, crate::db::DELETE_CHUNK).await
}

/// [`prune`], `chunk` events per statement.
pub async fn prune_by(db: &Db, before: DateTime<Utc>, chunk: i64) -> Result<u64> {
    const SQL: &str = "DELETE FROM events WHERE id IN (SELECT id FROM events \
                       WHERE created_at < $1 AND id < (SELECT MAX(id) FROM events) ORDER BY id LIMIT $2)";
    Ok(db.delete_in_chunks(SQL, before, chunk).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(kind: &str, data: Value) -> EventRow {
        EventRow {
            id: 42,
            workspace_id: Uuid::nil(),
            kind: kind.to_owned(),
            conversation_id: None,
            lead_id: None,
            user_id: None,
            data: data.to_string(),
        }
    }

    #[test]
    fn frames_wrap_the_stored_text() {
        let data = json!({"id": "x", "name": "Zoë \"Z\"", "n": [1, 2]});
        let e = Event::from(row("lead.updated", data.clone()));
        let frame: Value = serde_json::from_str(e.frame.as_str()).unwrap();
        assert_eq!(frame, json!({"cursor": "42", "type": "lead.updated", "data": data}));
        assert_eq!(e.member, None);
    }

    #[test]
    fn member_changes_are_read_once() {
        let me = Uuid::now_v7();
        let presence = Event::from(row("member.updated", json!({"id": me, "presence": "away"})));
        assert_eq!(presence.member, Some(MemberChange { id: Some(me), deactivated: false, beyond_presence: false }));
        let gone = Event::from(row("member.updated", json!({"id": me, "status": "deactivated", "name": "A"})));
        assert_eq!(gone.member, Some(MemberChange { id: Some(me), deactivated: true, beyond_presence: true }));
    }
}
