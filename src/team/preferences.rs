//! A member's own preferences, one row per member (none: the defaults).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, Tx};
use crate::error::Result;
use crate::views::preferences::{Preferences, TeamView};
use crate::{on_db, on_tx};

/// The member's preferences (the defaults when they never set any).
pub async fn get(db: &Db, user_id: Uuid) -> Result<Preferences> {
    let row: Option<(bool, bool)> = on_db!(db, |p| sqlx::query_as(
        "SELECT show_others, show_unassigned FROM member_preferences WHERE user_id = $1"
    )
    .bind(user_id)
    .fetch_optional(p)
    .await)?;
    Ok(row
        .map(|(show_others, show_unassigned)| Preferences { team_view: TeamView { show_others, show_unassigned } })
        .unwrap_or_default())
}

/// Stores the member's preferences whole.
pub async fn put(tx: &mut Tx, user_id: Uuid, p: &Preferences, now: DateTime<Utc>) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO member_preferences (user_id, show_others, show_unassigned, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET show_others = excluded.show_others, \
         show_unassigned = excluded.show_unassigned, updated_at = excluded.updated_at"
    )
    .bind(user_id)
    .bind(p.team_view.show_others)
    .bind(p.team_view.show_unassigned)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
