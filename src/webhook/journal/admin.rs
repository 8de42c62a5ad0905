//! What the journal's admin routes read and change: entries routed to the admin's workspace
//! (or to none), newest first, and replays.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::EntryState;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::on_db;

#[derive(Debug, sqlx::FromRow)]
pub struct EntryRow {
    seq: i64,
    id: Uuid,
    received_at: DateTime<Utc>,
    state: EntryState,
    error: Option<String>,
    attempts: i64,
    processed_at: Option<DateTime<Utc>>,
}

/// A journal entry as admins see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    pub state: EntryState,
    pub attempts: i64,
    pub processed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The raw body (only when one entry is asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// A page of journal entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntryPage {
    pub webhook_events: Vec<EntryView>,
    pub next_cursor: Option<String>,
}

impl EntryRow {
    pub fn view(self) -> EntryView {
        EntryView {
            id: self.id,
            received_at: self.received_at,
            state: self.state,
            attempts: self.attempts,
            processed_at: self.processed_at,
            error: self.error,
            body: None,
        }
    }
}

/// Entries an admin of `$1` may see: those routed to their workspace, and those routed nowhere.
const VISIBLE: &str = "(EXISTS (SELECT 1 FROM webhook_event_workspaces w WHERE w.event_id = e.id AND w.workspace_id = $1) \
    OR NOT EXISTS (SELECT 1 FROM webhook_event_workspaces w WHERE w.event_id = e.id))";

/// The entries of workspace `workspace_id` older than the cursor `before`, newest first.
pub async fn list(
    db: &Db,
    workspace_id: Uuid,
    state: Option<EntryState>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<EntryPage> {
    // The state is written into the statement, so that the planner takes that state's
    // partial index (pending, failed) or reads the primary key newest first (done, all).
    let state = match state {
        None => "",
        Some(EntryState::Pending) => "AND e.state = 'pending'",
        Some(EntryState::Done) => "AND e.state = 'done'",
        Some(EntryState::Failed) => "AND e.state = 'failed'",
    };
    let before: i64 = cursor
        .map(|c| c.parse().map_err(|_| Error::bad_request("invalid_cursor", "cursor is not one this server issued")))
        .transpose()?
        .unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT e.seq, e.id, e.received_at, e.state, e.error, e.attempts, e.processed_at FROM webhook_events e \
         WHERE e.seq < $2 {state} AND {VISIBLE} ORDER BY e.seq DESC LIMIT $3"
    );
    let mut rows: Vec<EntryRow> =
        on_db!(db, |p| sqlx::query_as(&sql).bind(workspace_id).bind(before).bind(limit + 1).fetch_all(p).await)?;
    let next = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.seq.to_string())
    });
    Ok(EntryPage { webhook_events: rows.into_iter().map(EntryRow::view).collect(), next_cursor: next.flatten() })
}

/// One entry of workspace `workspace_id` (404 when not visible), with its body if asked.
pub async fn get(db: &Db, workspace_id: Uuid, id: Uuid, with_body: bool) -> Result<EntryView> {
    let sql = format!(
        "SELECT e.seq, e.id, e.received_at, e.state, e.error, e.attempts, e.processed_at FROM webhook_events e \
         WHERE {VISIBLE} AND e.id = $2"
    );
    let row: EntryRow = on_db!(db, |p| sqlx::query_as(&sql).bind(workspace_id).bind(id).fetch_optional(p).await)?
        .ok_or_else(Error::not_found)?;
    let mut view = row.view();
    if with_body {
        let body: Vec<u8> = on_db!(db, |p| sqlx::query_scalar("SELECT body FROM webhook_events WHERE id = $1")
            .bind(id)
            .fetch_one(p)
            .await)?;
        view.body = Some(String::from_utf8_lossy(&body).into_owned());
    }
    Ok(view)
}

/// Makes an entry pending again, its attempts zero, for the processor to process again.
pub async fn mark_for_replay(db: &Db, id: Uuid) -> Result<()> {
    on_db!(db, |p| sqlx::query("UPDATE webhook_events SET state = $1, error = NULL, attempts = 0 WHERE id = $2")
        .bind(EntryState::Pending.as_str())
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
