//! The journal processor: unpacks arrivals into `webhook_events` rows, one per webhook, and
//! processes those (batched: one unit of work per batch, its events appended once at commit),
//! retrying transient failures; and the retention that prunes processed entries. It starts with
//! whatever is waiting, so a crash between the 200 and processing loses nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tracing::instrument;
use uuid::Uuid;

use super::EntryState;
use super::codec::{Arrived, unpack as unpack_arrival};
use super::writer::MAX_BATCH;
use crate::db::{Backend, Db, TRANSIENT_TRIES, Tx, pause_before_retry, push_ids};
use crate::error::Result;
use crate::events::Work;
use crate::inbox::chat::{self, Plans};
use crate::state::AppState;
use crate::webhook::ingest::{self, Outcome, Setting};
use crate::{on_db, on_tx};

/// Attempts of one entry before it is kept as failed.
const MAX_ATTEMPTS: i64 = 5;

const TAKE_ARRIVALS_SQLITE: &str = "SELECT id, received_at, entries FROM webhook_arrivals ORDER BY id LIMIT $1";
const TAKE_ARRIVALS_PG: &str =
    "SELECT id, received_at, entries FROM webhook_arrivals ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED";

/// Arrivals unpacked in one transaction. A group commit holds ~10–30 webhooks in a flood at 64
/// connections: one arrival at a time fed processing batches of that size instead of
/// [`PROCESS_BATCH`], and draining was ~20 % slower per webhook.
const UNPACK_ARRIVALS: i64 = 16;

/// Unpacks the oldest arrivals into `webhook_events` rows, pending, and deletes them, in `tx`.
/// An arrival that cannot be decoded (it was not written by [`super::pack`]) becomes one failed
/// entry holding its bytes, for an admin to see, rather than blocking the ones after it.
/// Returns how many entries it wrote (0: no arrival waiting).
async fn unpack(tx: &mut Tx, now: DateTime<Utc>) -> Result<usize> {
    let take = match tx.backend() {
        Backend::Sqlite => TAKE_ARRIVALS_SQLITE,
        Backend::Postgres => TAKE_ARRIVALS_PG,
    };
    let arrivals: Vec<(Uuid, DateTime<Utc>, Vec<u8>)> =
        on_tx!(tx, |c| sqlx::query_as(take).bind(UNPACK_ARRIVALS).fetch_all(c).await)?;
    if arrivals.is_empty() {
        return Ok(0);
    }
    let mut webhooks = Vec::new();
    let mut undecodable = Vec::new();
    for (arrival, received_at, entries) in &arrivals {
        match unpack_arrival(entries) {
            Some(w) => webhooks.extend(w),
            None => undecodable.push((*arrival, *received_at, entries.as_slice())),
        }
    }
    insert_pending(tx, &webhooks).await?;
    for (arrival, received_at, entries) in &undecodable {
        tracing::error!(%arrival, bytes = entries.len(), "journal arrival could not be decoded; kept as a failed entry");
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO webhook_events (id, received_at, signature_valid, body, state, error, processed_at) \
             VALUES ($1, $2, TRUE, $3, 'failed', 'journal arrival could not be decoded', $4) \
             ON CONFLICT (id) DO NOTHING"
        )
        .bind(*arrival)
        .bind(*received_at)
        .bind(*entries)
        .bind(now)
        .execute(c)
        .await
        .map(|_| ()))?;
    }
    let ids: Vec<Uuid> = arrivals.iter().map(|a| a.0).collect();
    on_tx!(tx, |c| {
        let mut qb = sqlx::QueryBuilder::new("DELETE FROM webhook_arrivals WHERE id IN (");
        push_ids(&mut qb, &ids);
        qb.push(")");
        qb.build().execute(c).await.map(|_| ())
    })?;
    let written = webhooks.len() + undecodable.len();
    tracing::debug!(arrivals = arrivals.len(), webhooks = written, "journal arrivals unpacked");
    Ok(written)
}

/// [`unpack`] in a transaction of its own: PostgreSQL's way (see [`process_batch`]), and before
/// the rows of a round that failed are processed one by one (the round, which had unpacked
/// them, was rolled back).
async fn unpack_alone(st: &AppState) -> Result<usize> {
    let mut tx = st.db.begin().await?;
    let written = unpack(&mut tx, st.clock.now()).await?;
    tx.commit().await?;
    Ok(written)
}

/// Inserts unpacked webhooks as pending journal entries. `ON CONFLICT`: an arrival committed
/// twice (see the writer) is unpacked twice. PostgreSQL gets three arrays, so that the
/// text is one prepared statement whatever the count; SQLite rows of values.
async fn insert_pending(tx: &mut Tx, webhooks: &[Arrived<'_>]) -> sqlx::Result<()> {
    match tx {
        Tx::Sqlite(c, _) => {
            for chunk in webhooks.chunks(MAX_BATCH) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO webhook_events (id, received_at, signature_valid, body, state) ",
                );
                qb.push_values(chunk, |mut b, (id, received_at, body)| {
                    b.push_bind(*id)
                        .push_bind(*received_at)
                        .push_bind(true)
                        .push_bind(*body)
                        .push_bind(EntryState::Pending.as_str());
                });
                qb.push(" ON CONFLICT (id) DO NOTHING");
                qb.build().execute(&mut **c).await?;
            }
            Ok(())
        }
        Tx::Postgres(c) => {
            let ids: Vec<Uuid> = webhooks.iter().map(|w| w.0).collect();
            let received: Vec<DateTime<Utc>> = webhooks.iter().map(|w| w.1).collect();
            let bodies: Vec<&[u8]> = webhooks.iter().map(|w| w.2).collect();
            sqlx::query(
                "INSERT INTO webhook_events (id, received_at, signature_valid, body, state) \
                 SELECT id, received_at, TRUE, body, 'pending' FROM UNNEST($1::uuid[], $2::timestamptz[], $3::bytea[]) \
                 WITH ORDINALITY AS w (id, received_at, body, n) ORDER BY n ON CONFLICT (id) DO NOTHING",
            )
            .bind(ids)
            .bind(received)
            .bind(bodies)
            .execute(&mut **c)
            .await
            .map(|_| ())
        }
    }
}

/// Processes pending rows and unpacks arrivals (one transaction a round, [`process_batch`])
/// until none is left, then waits for a wake-up (or a periodic tick). Nothing defers
/// processing: when webhooks come in faster than they are processed, the journal writer holds
/// acknowledgements back instead ([`super::writer::BACKLOG_HIGH`]), so the journal stays short
/// and agents see messages within a second rather than after the load.
pub async fn run_processor(st: AppState, wake: Arc<Notify>) {
    let mut shutdown = st.shutdown.clone();
    loop {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match process_batch(&st).await {
                Ok(Round { unpacked: 0, processed: 0, .. }) => {
                    st.journal.caught_up();
                    break;
                }
                Ok(round) => {
                    st.journal.processed(round.processed);
                    if round.retry_later {
                        // A row failed and stays pending: not again at once.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "webhook processing failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// What one round of [`process_batch`] did.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// Journal entries unpacked from arrivals.
    pub unpacked: usize,
    /// Pending entries taken (stored, kept as failed, or failed and left pending).
    pub processed: usize,
    /// An entry failed and stays pending for another attempt.
    pub retry_later: bool,
}

const CLAIM_SQLITE: &str = "SELECT seq, id, body, attempts FROM webhook_events WHERE state = 'pending' \
    AND ($1 IS NULL OR id = $1) AND seq > $3 ORDER BY seq LIMIT $2";
const CLAIM_PG: &str = "SELECT seq, id, body, attempts FROM webhook_events WHERE state = 'pending' \
    AND ($1::uuid IS NULL OR id = $1) AND seq > $3 ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED";

/// Journal rows processed in one transaction (one fsync) when a backlog builds up.
const PROCESS_BATCH: i64 = 64;

/// A pending journal entry taken for processing.
#[derive(sqlx::FromRow)]
struct Claimed {
    seq: i64,
    id: Uuid,
    body: Vec<u8>,
    attempts: i64,
}

/// Up to `limit` pending entries (or entry `only`) after position `after`, oldest first,
/// locked for `tx` on PostgreSQL (skipping those another processor holds).
async fn claim(tx: &mut Tx, only: Option<Uuid>, after: i64, limit: i64) -> Result<Vec<Claimed>> {
    let sql = match tx.backend() {
        Backend::Sqlite => CLAIM_SQLITE,
        Backend::Postgres => CLAIM_PG,
    };
    Ok(on_tx!(tx, |c| sqlx::query_as(sql).bind(only).bind(limit).bind(after).fetch_all(c).await)?)
}

/// One round of processing, in one transaction: up to [`PROCESS_BATCH`] pending rows, oldest
/// first. On SQLite, when fewer are pending, the oldest arrivals are unpacked in the same
/// transaction and their webhooks fill the batch: one commit where unpacking and processing
/// took one each, on the way from a webhook's 200 to the agent's screen. PostgreSQL's
/// processors (two) unpack first, in a transaction of their own ([`unpack_alone`]): rows unpacked
/// inside one processor's round stay hidden from the other until that round commits, and
/// the saturated rate fell by a fifth. If any row hits an error, the round is rolled back,
/// its arrivals are unpacked on their own, and the rows are processed one by one, so one bad
/// row neither blocks nor fails the others.
#[instrument(skip_all)]
pub async fn process_batch(st: &AppState) -> Result<Round> {
    let in_round = st.db.backend() == Backend::Sqlite;
    let unpacked_apart = if in_round { 0 } else { unpack_alone(st).await? };
    let now = st.clock.now();
    let mut work = Work::begin(&st.db, now).await?;
    let mut rows = claim(work.tx(), None, 0, PROCESS_BATCH).await?;
    let mut in_round_unpacked = 0;
    if (rows.len() as i64) < PROCESS_BATCH && in_round {
        in_round_unpacked = unpack(work.tx(), now).await?;
        if in_round_unpacked > 0 {
            // Unpacked rows come after every pending one.
            let after = rows.last().map_or(0, |r| r.seq);
            let more = claim(work.tx(), None, after, PROCESS_BATCH - rows.len() as i64).await?;
            rows.extend(more);
        }
    }
    let unpacked = unpacked_apart + in_round_unpacked;
    if rows.is_empty() {
        if in_round_unpacked > 0 {
            work.commit_quietly().await?; // only undecodable arrivals, kept as failed
        } else {
            work.rollback().await?;
        }
        return Ok(Round { unpacked, processed: 0, retry_later: false });
    }
    let processed = async {
        lock_contacts(work.tx(), rows.iter().map(|r| r.body.as_slice())).await?;
        let mut batch = ingest::Batch::default();
        let started = Instant::now();
        // SQLite has one writer: after a slice of work, let a waiting journal commit in (the
        // rest stay pending for the next round). On PostgreSQL the two do not block each other.
        let yields = st.db.backend() == Backend::Sqlite;
        let stop = || yields && st.journal.should_yield(started.elapsed());
        let bodies: Vec<&[u8]> = rows.iter().map(|r| r.body.as_slice()).collect();
        let outcomes = ingest::process_many(&mut work, &mut batch, setting(st), &bodies, stop).await?;
        let outcomes: Vec<_> = rows.iter().map(|r| r.id).zip(outcomes).collect();
        finish(work.tx(), now, &outcomes).await?;
        Ok::<_, crate::error::Error>(outcomes.len())
    };
    match processed.await {
        Ok(processed) => {
            commit(st, work).await?;
            Ok(Round { unpacked, processed, retry_later: false })
        }
        Err(e) => {
            tracing::warn!(error = %e, rows = rows.len(), "round rolled back; processing its rows one by one");
            work.rollback().await?;
            if in_round_unpacked > 0 {
                unpack_alone(st).await?;
            }
            let retry_later = one_by_one(st, &rows).await;
            Ok(Round { unpacked, processed: rows.len(), retry_later })
        }
    }
}

/// What processing needs of the server's settings.
fn setting(st: &AppState) -> Setting<'_> {
    let distribution = crate::distribution::Setup::new(st.config.smtp_url.is_some(), st.config.session_gap_secs);
    Setting { session_gap: st.config.session_gap_secs, presence: &st.presence, distribution }
}

/// Commits a processing unit of work (its events appended once) and wakes the live readers.
async fn commit(st: &AppState, work: Work) -> Result<()> {
    work.commit_quietly().await?;
    st.hub.bump();
    Ok(())
}

/// Processes `rows` each in a transaction of its own; true when one failed and stays pending.
async fn one_by_one(st: &AppState, rows: &[Claimed]) -> bool {
    let mut retry_later = false;
    for row in rows {
        if let Err(e) = process_next(st, Some(row.id)).await {
            tracing::error!(event_id = %row.id, error = %e, "webhook processing failed");
            retry_later = true;
        }
    }
    retry_later
}

/// Processes the oldest pending row (or row `only`), in one transaction with everything it
/// stores. Returns false when there was nothing to do.
///
/// A failure counts as one of the row's [`MAX_ATTEMPTS`] unless it is transient
/// ([`crate::error::Error::is_transient`]: a lost deadlock, a serialization failure, SQLite busy). That says
/// nothing about the row, so the row is processed again after a pause, up to
/// [`TRANSIENT_TRIES`] times in all, and then left pending, its attempts unchanged.
pub async fn process_next(st: &AppState, mut only: Option<Uuid>) -> Result<bool> {
    let mut tries = 1;
    loop {
        let now = st.clock.now();
        let mut work = Work::begin(&st.db, now).await?;
        let row = claim(work.tx(), only, 0, 1).await?.pop();
        // (On a retry the row may have been processed meanwhile by another processor.)
        let Some(Claimed { id, body, attempts, .. }) = row else { return Ok(tries > 1) };
        let mut batch = ingest::Batch::default();
        let processed = async {
            lock_contacts(work.tx(), std::iter::once(body.as_slice())).await?;
            let outcomes = ingest::process_many(&mut work, &mut batch, setting(st), &[&body], || false).await?;
            let outcomes: Vec<_> = std::iter::once(id).zip(outcomes).collect();
            finish(work.tx(), now, &outcomes).await
        };
        let e = match processed.await {
            Ok(()) => {
                commit(st, work).await?;
                tracing::debug!(event_id = %id, "webhook processed");
                return Ok(true);
            }
            Err(e) => e,
        };
        work.rollback().await?;
        if e.is_transient() {
            if tries >= TRANSIENT_TRIES {
                return Err(e);
            }
            tracing::warn!(event_id = %id, error = %e, tries, "webhook processing rolled back; processing it again");
            pause_before_retry(tries).await;
            (only, tries) = (Some(id), tries + 1);
            continue;
        }
        let attempts = attempts + 1;
        let failed = attempts >= MAX_ATTEMPTS;
        let state = if failed { EntryState::Failed } else { EntryState::Pending };
        on_db!(&st.db, |p| sqlx::query(
            "UPDATE webhook_events SET attempts = $1, state = $2, error = $3 WHERE id = $4"
        )
        .bind(attempts)
        .bind(state.as_str())
        .bind(format!("processing error: {e}"))
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        if failed {
            tracing::error!(event_id = %id, error = %e, "webhook failed after {attempts} attempts");
            return Ok(true);
        }
        return Err(e);
    }
}

/// PostgreSQL: locks the chats that `bodies` are about (see [`ingest::contact_keys`]) for the
/// rest of `tx`, and makes the rest of it plan generically ([`Plans::Generic`]: every
/// statement of processing looks up keys). SQLite has one writer.
async fn lock_contacts<'a>(tx: &mut Tx, bodies: impl Iterator<Item = &'a [u8]>) -> Result<()> {
    let keys = if tx.backend() == Backend::Postgres { ingest::contact_keys(bodies) } else { Vec::new() };
    chat::lock_chats(tx, &keys, Plans::Generic).await
}

/// Marks processed rows done (one statement for all of them) or failed, and records which
/// workspaces they addressed (one statement).
async fn finish(tx: &mut Tx, now: DateTime<Utc>, outcomes: &[(Uuid, Outcome)]) -> Result<()> {
    let done: Vec<Uuid> = outcomes.iter().filter(|(_, o)| o.problem.is_none()).map(|(id, _)| *id).collect();
    if !done.is_empty() {
        on_tx!(tx, |c| {
            let mut qb =
                sqlx::QueryBuilder::new("UPDATE webhook_events SET state = 'done', error = NULL, processed_at = ");
            qb.push_bind(now).push(" WHERE id IN (");
            push_ids(&mut qb, &done);
            qb.push(")");
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    for (id, outcome) in outcomes {
        let Some(problem) = &outcome.problem else { continue };
        tracing::warn!(event_id = %id, problem = %problem, "webhook kept as failed");
        on_tx!(tx, |c| sqlx::query(
            "UPDATE webhook_events SET state = 'failed', error = $1, processed_at = $2 WHERE id = $3"
        )
        .bind(problem)
        .bind(now)
        .bind(*id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    let routed: Vec<(Uuid, Uuid)> =
        outcomes.iter().flat_map(|(id, o)| o.workspaces.iter().map(move |ws| (*id, *ws))).collect();
    if !routed.is_empty() {
        on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO webhook_event_workspaces (event_id, workspace_id) ");
            qb.push_values(&routed, |mut b, (id, ws)| {
                b.push_bind(*id).push_bind(*ws);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Deletes processed (`done`) entries received before `before`, `chunk` per statement (see
/// [`Db::delete_in_chunks`]); pending and failed ones stay.
pub async fn prune(db: &Db, before: DateTime<Utc>, chunk: i64) -> Result<u64> {
    const SQL: &str = "DELETE FROM webhook_events WHERE seq IN (SELECT seq FROM webhook_events \
                       WHERE state = 'done' AND received_at < $1 ORDER BY seq LIMIT $2)";
    Ok(db.delete_in_chunks(SQL, before, chunk).await?)
}

/// Deletes processed entries older than the retention, and edits and revokes that waited too
/// long for their original ([`chat::CHANGE_WAITS_DAYS`]), hourly.
pub async fn run_retention(st: AppState) {
    let mut shutdown = st.shutdown.clone();
    loop {
        let cutoff = st.clock.now() - chrono::Duration::days(st.config.journal_retention_days.max(0));
        match prune(&st.db, cutoff, crate::db::DELETE_CHUNK).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned processed webhook journal entries"),
            Err(e) => tracing::warn!(error = %e, "journal retention failed"),
        }
        let waited = st.clock.now() - chrono::Duration::days(chat::CHANGE_WAITS_DAYS);
        match chat::prune_waiting_changes(&st.db, waited, crate::db::DELETE_CHUNK).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned edits and revokes whose original never came"),
            Err(e) => tracing::warn!(error = %e, "retention of waiting edits and revokes failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}
