//! Lead groups: everyone reads them; creating and renaming needs `manage_groups`, deleting is
//! for admins (the policy decides, the handlers ask). A lead can be in several groups
//! (`group_ids` on the lead).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::Db;
use crate::error::{DbResultExt, Error, Result};
use crate::events::Work;
use crate::inbox::leads;
use crate::views::number::GroupView;
use crate::{on_db, on_tx};

/// A group of the workspace; 404 when there is none.
pub async fn load(db: &Db, workspace_id: Uuid, id: Uuid) -> Result<GroupView> {
    on_db!(db, |p| sqlx::query_as("SELECT id, name FROM crm_groups WHERE id = $1 AND workspace_id = $2")
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(p)
        .await)?
    .ok_or_else(Error::not_found)
}

/// The workspace's groups by name.
pub async fn list(db: &Db, workspace_id: Uuid) -> Result<Vec<GroupView>> {
    Ok(on_db!(db, |p| sqlx::query_as(
        "SELECT id, name FROM crm_groups WHERE workspace_id = $1 ORDER BY name, id LIMIT 1000"
    )
    .bind(workspace_id)
    .fetch_all(p)
    .await)?)
}

/// Creates a group (409 when the name is taken).
pub async fn create(db: &Db, workspace_id: Uuid, name: String, now: DateTime<Utc>) -> Result<GroupView> {
    let id = Uuid::now_v7();
    on_db!(db, |p| sqlx::query("INSERT INTO crm_groups (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(workspace_id)
        .bind(&name)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
    .on_unique("duplicate_group", "a group with that name exists")?;
    Ok(GroupView { id, name })
}

/// Renames a group (409 when the name is taken).
pub async fn rename(db: &Db, group: &GroupView, name: String) -> Result<GroupView> {
    on_db!(db, |p| sqlx::query("UPDATE crm_groups SET name = $1 WHERE id = $2")
        .bind(&name)
        .bind(group.id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
    .on_unique("duplicate_group", "a group with that name exists")?;
    Ok(GroupView { id: group.id, name })
}

/// Deletes a group, taking it off its leads (each gets a `lead.updated` event).
pub async fn delete(w: &mut Work, group: &GroupView) -> Result<()> {
    let members: Vec<Uuid> =
        on_tx!(w.tx(), |c| sqlx::query_scalar("SELECT lead_id FROM lead_groups WHERE group_id = $1")
            .bind(group.id)
            .fetch_all(c)
            .await)?;
    on_tx!(w.tx(), |c| sqlx::query("DELETE FROM crm_groups WHERE id = $1")
        .bind(group.id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    for lead_id in members {
        let lead = leads::load_tx(w.tx(), lead_id).await?;
        leads::emit_updated(w, &lead);
    }
    Ok(())
}
