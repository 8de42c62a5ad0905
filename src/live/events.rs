//! The event log. Every change clients care about appends its event in the same transaction,
//! so a committed change always has its event and a rolled-back one never does.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::db::{Backend, EVENT_LOCK_KEY, Tx};
use crate::error::Result;
use crate::on_tx;

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

const INSERT: &str = "INSERT INTO events (workspace_id, type, conversation_id, lead_id, user_id, data, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";

/// Appends `e` in `tx`; returns its cursor. On PostgreSQL appends are serialised by an
/// advisory lock (ids then commit in order) and a NOTIFY wakes the other nodes at COMMIT.
pub async fn append(tx: &mut Tx, now: DateTime<Utc>, e: NewEvent) -> Result<i64> {
    if tx.backend() == Backend::Postgres {
        on_tx!(tx, |c| sqlx::query("SELECT pg_advisory_xact_lock($1), pg_notify('sb_events', '')")
            .bind(EVENT_LOCK_KEY)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    let id: i64 = on_tx!(tx, |c| sqlx::query_scalar(INSERT)
        .bind(e.workspace_id)
        .bind(e.kind)
        .bind(e.conversation_id)
        .bind(e.lead_id)
        .bind(e.user_id)
        .bind(sqlx::types::Json(&e.data))
        .bind(now)
        .fetch_one(c)
        .await)?;
    Ok(id)
}
