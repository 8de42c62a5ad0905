//! The audit trail: every change of who may see or do what (invitations, members, explicit
//! access, numbers, assignment and workspace settings, labels, groups…), one append-only entry
//! written in the transaction of the change, with the fields changed before and after. The
//! domain function or handler that makes a change calls [`record`]; `GET /audit` reads it.
//! Below every feature module: it imports only the ground floor.

pub mod http;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::error::Result;
use crate::events::Work;
pub use crate::views::audit::{AuditAction, AuditTarget};
use crate::views::audit::{AuditEntryView, AuditPage};
use crate::{on_db, on_tx};

/// The fields of a view never written to the trail: bookkeeping, and nothing secret may get
/// in even if a view grows one.
const SKIPPED: &[&str] = &["id", "created_at", "updated_at", "access_token", "accept_token", "password", "key"];

/// What changed: `{"field": {"from", "to"}}`, fields in name order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Changes(BTreeMap<String, FromTo>);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FromTo {
    pub from: Value,
    pub to: Value,
}

impl Changes {
    pub fn new() -> Changes {
        Changes::default()
    }

    /// Adds `field` when `from` and `to` differ.
    pub fn field(mut self, field: &str, from: impl Serialize, to: impl Serialize) -> Changes {
        let (from, to) = (to_value(from), to_value(to));
        if from != to {
            self.0.insert(field.to_owned(), FromTo { from, to });
        }
        self
    }

    /// A secret that changed, without its value: `{"from": "[hidden]", "to": "[hidden]"}`.
    pub fn secret(mut self, field: &str) -> Changes {
        let hidden = Value::String("[hidden]".into());
        self.0.insert(field.to_owned(), FromTo { from: hidden.clone(), to: hidden });
        self
    }

    /// The top-level fields of two views (JSON objects; `None` is "did not exist") that differ,
    /// leaving out ids, times and anything secret.
    pub fn diff<T: Serialize>(before: Option<&T>, after: Option<&T>) -> Changes {
        let object = |v: Option<&T>| match v.map(to_value) {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let (before, after) = (object(before), object(after));
        let mut changes = Changes::new();
        for key in before.keys().chain(after.keys()) {
            if SKIPPED.contains(&key.as_str()) || changes.0.contains_key(key) {
                continue;
            }
            let from = before.get(key).cloned().unwrap_or(Value::Null);
            let to = after.get(key).cloned().unwrap_or(Value::Null);
            changes = changes.field(key, from, to);
        }
        changes
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn to_value(v: impl Serialize) -> Value {
    serde_json::to_value(v).expect("audit values serialise")
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub workspace_id: Uuid,
    /// Who made it (`None`: the server itself).
    pub actor: Option<Uuid>,
    pub action: AuditAction,
    pub target: (AuditTarget, Option<Uuid>),
    pub changes: Changes,
}

impl AuditEntry {
    pub fn new(workspace_id: Uuid, actor: impl Into<Option<Uuid>>, action: AuditAction) -> AuditEntry {
        AuditEntry {
            workspace_id,
            actor: actor.into(),
            action,
            target: (AuditTarget::Workspace, Some(workspace_id)),
            changes: Changes::new(),
        }
    }
    pub fn target(mut self, kind: AuditTarget, id: impl Into<Option<Uuid>>) -> AuditEntry {
        self.target = (kind, id.into());
        self
    }
    pub fn changes(mut self, changes: Changes) -> AuditEntry {
        self.changes = changes;
        self
    }
}

const INSERT: &str = "INSERT INTO audit_log (id, workspace_id, at, actor_id, action, target_type, target_id, changes) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Records `e` in the unit of work of the change it describes.
pub async fn record(w: &mut Work, e: AuditEntry) -> Result<Uuid> {
    let at = w.now();
    record_tx(w.tx(), at, e).await
}

/// [`record`] in a plain transaction (changes that cause no event).
pub async fn record_tx(tx: &mut Tx, at: DateTime<Utc>, e: AuditEntry) -> Result<Uuid> {
    let id = Uuid::now_v7();
    on_tx!(tx, |c| sqlx::query(INSERT)
        .bind(id)
        .bind(e.workspace_id)
        .bind(at)
        .bind(e.actor)
        .bind(e.action)
        .bind(e.target.0)
        .bind(e.target.1)
        .bind(sqlx::types::Json(&e.changes))
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    tracing::info!(audit_id = %id, action = %e.action, target_id = ?e.target.1, "audit entry recorded");
    Ok(id)
}

/// The filters and position of a page of the trail.
#[derive(Debug, Default)]
pub struct Filter {
    pub actor: Option<Uuid>,
    pub action: Option<AuditAction>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<(DateTime<Utc>, i64)>,
    pub limit: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    id: Uuid,
    at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    action: AuditAction,
    target_type: AuditTarget,
    target_id: Option<Uuid>,
    changes: sqlx::types::Json<Value>,
}

const LIST: &str = "SELECT seq, id, at, actor_id, action, target_type, target_id, changes FROM audit_log \
    WHERE workspace_id = $1 AND ($2 IS NULL OR actor_id = $2) AND ($3 IS NULL OR action = $3) \
    AND ($4 IS NULL OR at >= $4) AND ($5 IS NULL OR at < $5) \
    AND ($6 IS NULL OR at < $6 OR (at = $6 AND seq < $7)) \
    ORDER BY at DESC, seq DESC LIMIT $8";

/// A page of workspace `workspace_id`'s trail, newest first (the caller checked the reader).
pub async fn list(db: &Db, workspace_id: Uuid, f: &Filter) -> Result<AuditPage> {
    let mut rows: Vec<Row> = on_db!(db, |p| sqlx::query_as(LIST)
        .bind(workspace_id)
        .bind(f.actor)
        .bind(f.action)
        .bind(f.from)
        .bind(f.to)
        .bind(f.after.map(|a| a.0))
        .bind(f.after.map(|a| a.1))
        .bind(f.limit + 1)
        .fetch_all(p)
        .await)?;
    let next_cursor = if rows.len() as i64 > f.limit {
        rows.truncate(f.limit as usize);
        rows.last().map(|r| crate::db::cursor::encode_seq(r.at, r.seq))
    } else {
        None
    };
    let entries = rows
        .into_iter()
        .map(|r| AuditEntryView {
            id: r.id,
            at: r.at,
            actor_id: r.actor_id,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            changes: r.changes.0,
        })
        .collect();
    Ok(AuditPage { entries, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct View {
        id: u32,
        name: &'static str,
        role: &'static str,
        access_token: &'static str,
    }

    #[test]
    fn diff_keeps_changed_fields_and_never_a_secret() {
        let a = View { id: 1, name: "Ann", role: "member", access_token: "s1" };
        let b = View { id: 2, name: "Ann", role: "admin", access_token: "s2" };
        let c = serde_json::to_value(Changes::diff(Some(&a), Some(&b))).unwrap();
        assert_eq!(c, serde_json::json!({"role": {"from": "member", "to": "admin"}}));
        let created = serde_json::to_value(Changes::diff(None, Some(&a))).unwrap();
        assert_eq!(
            created,
            serde_json::json!({"name": {"from": null, "to": "Ann"}, "role": {"from": null, "to": "member"}})
        );
        assert!(Changes::diff(Some(&a), Some(&a)).is_empty());
    }
}
