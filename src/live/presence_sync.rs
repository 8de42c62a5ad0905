//! The presence sync (PostgreSQL): shares this node's live sockets with the other nodes of the
//! database, so `only_available` assignment on any node counts a member connected to any other.
//! Every [`HEARTBEAT`] (and soon after a change here) the node rewrites its rows of
//! `presence_sockets` and reads the others' rows seen within [`STALE_AFTER`]: the sockets of a
//! node that died stop counting once its last heartbeat is that old. A node that stops cleanly
//! deletes its rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::Clock;
use crate::db::Db;
use crate::live::presence::{Availability, Presence};
use crate::{on_db, on_tx};

/// How often a node writes its rows and reads the others'.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Rows older than this are a dead node's: they no longer count.
pub const STALE_AFTER: chrono::Duration = chrono::Duration::seconds(30);
/// Rows this old are deleted (by any node).
const FORGET_AFTER: chrono::Duration = chrono::Duration::minutes(10);
/// After a change here, wait this long for more before writing (a burst of logins at 9:00).
const COALESCE: Duration = Duration::from_millis(100);

/// Runs until shutdown (PostgreSQL only; one node on SQLite has nobody to share with).
pub async fn run(db: Db, clock: Clock, presence: Arc<Presence>, shutdown: watch::Receiver<bool>) {
    let node = Uuid::now_v7();
    let stop = crate::live::stopped(shutdown);
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = presence.changed_here() => tokio::time::sleep(COALESCE).await,
            _ = &mut stop => break,
        }
        match beat(&db, node, clock.now(), &presence).await {
            Ok(remote) => presence.set_remote(remote),
            Err(e) => tracing::warn!(error = %e, "presence sync failed; trying again at the next heartbeat"),
        }
    }
    let gone = on_db!(&db, |p| sqlx::query("DELETE FROM presence_sockets WHERE node_id = $1")
        .bind(node)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
    if let Err(e) = gone {
        tracing::warn!(error = %e, "presence sync: could not remove this node's rows; they expire on their own");
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    user_id: Uuid,
    away: bool,
}

/// Writes this node's rows, then reads what the other nodes say.
async fn beat(
    db: &Db,
    node: Uuid,
    now: DateTime<Utc>,
    presence: &Presence,
) -> sqlx::Result<HashMap<Uuid, Availability>> {
    let here = presence.connected_here();
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, |c| sqlx::query("DELETE FROM presence_sockets WHERE node_id = $1 OR seen_at < $2")
        .bind(node)
        .bind(now - FORGET_AFTER)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    for chunk in here.chunks(1000) {
        on_tx!(&mut tx, |c| {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO presence_sockets (node_id, user_id, away, seen_at) ");
            qb.push_values(chunk, |mut b, (user, away)| {
                b.push_bind(node).push_bind(*user).push_bind(*away).push_bind(now);
            });
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    let rows: Vec<Row> = on_tx!(&mut tx, |c| sqlx::query_as(
        "SELECT user_id, away FROM presence_sockets WHERE node_id <> $1 AND seen_at > $2"
    )
    .bind(node)
    .bind(now - STALE_AFTER)
    .fetch_all(c)
    .await)?;
    tx.commit().await?;
    let mut remote = HashMap::new();
    for r in rows {
        let a = if r.away { Availability::Away } else { Availability::Available };
        let e = remote.entry(r.user_id).or_insert(a);
        if a == Availability::Available {
            *e = a;
        }
    }
    Ok(remote)
}
