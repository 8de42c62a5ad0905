//! The event log: the `events` table. Every change clients care about appends its events in
//! the same transaction (through [`super::Work`]), so a committed change always has its events
//! and a rolled-back one never does.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::db::{Backend, Db, EVENT_LOCK_KEY, Tx};
use crate::error::Result;
use crate::{on_db, on_tx};

use super::NewEvent;
use crate::views::team::MemberStatus;

/// Takes the append lock of `tx` now (PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds the
/// write lock) and queues the NOTIFY sent at COMMIT. Appends after it, in this transaction and
/// others, commit in cursor order. Re-entrant.
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

/// Rows per INSERT statement (7 binds each; SQLite allows 32,766).
const ROWS_PER_INSERT: usize = 512;

/// Appends `list` in `tx`, in list order, in multi-row INSERTs (one lock round trip on
/// PostgreSQL). Cursors follow list order, and appends commit in cursor order across
/// transactions. Only [`super::Work`] calls it, at commit.
pub(super) async fn append_all(tx: &mut Tx, now: DateTime<Utc>, list: &[NewEvent]) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    serialise(tx).await?;
    for chunk in list.chunks(ROWS_PER_INSERT) {
        on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO events (workspace_id, type, conversation_id, lead_id, user_id, data, created_at) ",
            );
            qb.push_values(chunk, |mut b, e| {
                b.push_bind(e.workspace_id)
                    .push_bind(e.kind)
                    .push_bind(e.conversation_id)
                    .push_bind(e.lead_id)
                    .push_bind(e.user_id)
                    .push_bind(e.data.as_str())
                    .push_bind(now);
            });
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// A stored event as live sockets deliver it, with its frame serialised once.
#[derive(Debug, Clone)]
pub struct Logged {
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
    /// When it was appended (for the delivery lag metric).
    pub created_at: DateTime<Utc>,
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
            deactivated: data.get("status").and_then(|s| s.as_str()).and_then(MemberStatus::parse)
                == Some(MemberStatus::Deactivated),
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
    created_at: DateTime<Utc>,
}

impl From<EventRow> for Logged {
    fn from(r: EventRow) -> Logged {
        // The frame is assembled around the stored text: appends write it with serde_json, so
        // it is valid JSON, and parsing it only to print it again cost every event a tree of
        // allocations. Only `member.updated` is read, for what sockets check.
        let member = (r.kind == "member.updated")
            .then(|| MemberChange::of(&serde_json::from_str(&r.data).unwrap_or(Value::Null)));
        let frame = format!(r#"{{"cursor":"{}","type":{},"data":{}}}"#, r.id, Value::from(r.kind.as_str()), r.data);
        Logged {
            id: r.id,
            workspace_id: r.workspace_id,
            kind: r.kind,
            conversation_id: r.conversation_id,
            lead_id: r.lead_id,
            user_id: r.user_id,
            member,
            frame: frame.into(),
            created_at: r.created_at,
        }
    }
}

const AFTER: &str = "SELECT id, workspace_id, type, conversation_id, lead_id, user_id, data, created_at \
    FROM events WHERE id > $1 ORDER BY id LIMIT $2";

/// Up to `limit` committed events after `cursor`, in cursor order.
pub async fn read_after(db: &Db, cursor: i64, limit: i64) -> Result<Vec<Logged>> {
    let rows: Vec<EventRow> = on_db!(db, |p| sqlx::query_as(AFTER).bind(cursor).bind(limit).fetch_all(p).await)?;
    Ok(rows.into_iter().map(Logged::from).collect())
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
            created_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn frames_wrap_the_stored_text() {
        let data = json!({"id": "x", "name": "Zoë \"Z\"", "n": [1, 2]});
        let e = Logged::from(row("lead.updated", data.clone()));
        let frame: Value = serde_json::from_str(e.frame.as_str()).unwrap();
        assert_eq!(frame, json!({"cursor": "42", "type": "lead.updated", "data": data}));
        assert_eq!(e.member, None);
    }

    #[test]
    fn member_changes_are_read_once() {
        let me = Uuid::now_v7();
        let presence = Logged::from(row("member.updated", json!({"id": me, "presence": "away"})));
        assert_eq!(presence.member, Some(MemberChange { id: Some(me), deactivated: false, beyond_presence: false }));
        let gone = Logged::from(row("member.updated", json!({"id": me, "status": "deactivated", "name": "A"})));
        assert_eq!(gone.member, Some(MemberChange { id: Some(me), deactivated: true, beyond_presence: true }));
    }
}
