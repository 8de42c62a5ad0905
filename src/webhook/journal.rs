//! The webhook journal: bodies are committed (group commit: concurrent POSTs share one
//! transaction, written as one `webhook_arrivals` row) before Meta gets its 200. The processor
//! unpacks arrivals into `webhook_events` rows, one per webhook, and processes those; it starts
//! with whatever is waiting, so a crash between the 200 and processing loses nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::instrument;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::clock::Clock;
use crate::db::{Backend, Conn, Db, TRANSIENT_TRIES, page_limit, pause_before_retry, push_ids};
use crate::error::{Error, Result};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use crate::webhook::ingest::{self, Outcome};
use crate::{on_conn, on_db, on_tx};

const MAX_BATCH: usize = 256;
const QUEUE: usize = 4096;
const MAX_ATTEMPTS: i64 = 5;

struct Pending {
    id: Uuid,
    body: Bytes,
    received_at: DateTime<Utc>,
    committed: oneshot::Sender<bool>,
}

/// Handle to the journal writer; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Pending>,
    /// Wakes the processor when rows were journaled or replayed.
    pub wake: Arc<Notify>,
    /// Webhooks appended and not yet committed: the processor ends its transaction early when
    /// some wait, so acknowledging Meta never waits long behind processing (SQLite has one
    /// writer). See [`Journal::should_yield`].
    queued: Arc<AtomicUsize>,
    /// When webhooks last queued up for the journal. See [`run_processor`].
    flood: Arc<Flood>,
}

impl Journal {
    /// Starts the writer task. It ends when every `Journal` handle is dropped.
    pub fn start(db: Db) -> (Journal, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let wake = Arc::new(Notify::new());
        let queued = Arc::new(AtomicUsize::new(0));
        let flood = Arc::new(Flood::new());
        // One writer on both backends. PostgreSQL could commit concurrently, and two writers
        // used to keep a commit in flight while the other gathered; but the second one started
        // with whatever had queued, so commits held ~14 webhooks instead of ~27, and each commit
        // costs the database about as much CPU as a batch's bytes do (docs/benchmarks.md, round eleven).
        let handle = tokio::spawn(writer(db, wake.clone(), flood.clone(), queued.clone(), rx));
        (Journal { tx, wake, queued, flood }, handle)
    }

    /// True while webhooks queue up for the journal ([`FLOOD_STREAK`] commits in a row that
    /// each started with [`FLOOD_BATCH`] waiting, the last within [`FLOOD_QUIET`]).
    pub fn flooded(&self) -> bool {
        self.flood.active()
    }

    /// Should a processing transaction that did `worked` of work end now, to let waiting
    /// webhooks be journaled?
    pub fn should_yield(&self, worked: Duration) -> bool {
        let queued = self.queued.load(Ordering::Relaxed);
        queued > 0 && worked >= SLICE
    }

    /// Makes `body` durable; returns once it is committed.
    pub async fn append(&self, clock: &Clock, body: Bytes) -> Result<Uuid> {
        let (committed, done) = oneshot::channel();
        let id = Uuid::now_v7();
        let pending = Pending { id, body, received_at: clock.now(), committed };
        // Counted until this returns or is dropped (the client went away).
        struct Queued<'a>(&'a AtomicUsize);
        impl Drop for Queued<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        let _queued = Queued(&self.queued);
        self.tx.send(pending).await.map_err(|_| Error::unavailable("shutting_down", "the server is stopping"))?;
        match done.await {
            Ok(true) => Ok(id),
            _ => Err(Error::internal("journal commit failed")),
        }
    }
}

/// This many webhooks waiting for the journal when a commit starts means they queue up faster
/// than they are committed: at 1,000 webhooks/s a commit takes at most the ~20 that arrive
/// during one processing slice.
const FLOOD_BATCH: usize = 48;
/// A flood is that many such commits in a row. One alone is a burst (a client's hiccup, or a
/// commit that waited for a processing slice), which the next commit clears: counting it as a
/// flood held processing back for 100 ms and more at a steady 1,000 webhooks/s.
const FLOOD_STREAK: u32 = 3;
/// The flood is over when no such commit happened for this long.
const FLOOD_QUIET: Duration = Duration::from_millis(100);
/// While webhooks wait to be journaled, a processing transaction (SQLite: it holds the one
/// write lock) ends after this much work. Longer slices process more per commit; acknowledging
/// waits at most about this long.
const SLICE: Duration = Duration::from_millis(20);
/// While flooded, the processor still runs a batch at least this often. Each such batch takes
/// CPU from acknowledging (on PostgreSQL ~1 ms per message); at one batch per second per
/// processor that was a fifth of the machine during a flood (docs/benchmarks.md, round eleven).
const MAX_DEFER: Duration = Duration::from_secs(5);

struct Flood {
    /// When the last commit that started with [`FLOOD_BATCH`] or more webhooks waiting, the
    /// last of a streak of [`FLOOD_STREAK`], happened (ms since `epoch`; 0: never).
    at: AtomicU64,
    /// Such commits in a row, up to now.
    streak: AtomicU32,
    epoch: Instant,
}

impl Flood {
    fn new() -> Flood {
        Flood { at: AtomicU64::new(0), streak: AtomicU32::new(0), epoch: Instant::now() }
    }

    fn active(&self) -> bool {
        let at = self.at.load(Ordering::Relaxed);
        at > 0 && self.now_ms().saturating_sub(at) < FLOOD_QUIET.as_millis() as u64
    }

    fn now_ms(&self) -> u64 {
        (self.epoch.elapsed().as_millis() as u64).max(1)
    }

    /// A commit that started with `waiting` webhooks not yet committed succeeded.
    fn arrived(&self, waiting: usize) {
        if waiting < FLOOD_BATCH {
            self.streak.store(0, Ordering::Relaxed);
        } else if self.streak.fetch_add(1, Ordering::Relaxed).saturating_add(1) >= FLOOD_STREAK {
            self.at.store(self.now_ms(), Ordering::Relaxed);
        }
    }
}

async fn writer(
    db: Db,
    wake: Arc<Notify>,
    flood: Arc<Flood>,
    queued: Arc<AtomicUsize>,
    mut rx: mpsc::Receiver<Pending>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Opened when first needed, and again after a failed commit (it may have broken).
    let mut conn: Option<Conn> = None;
    loop {
        // Take what is queued (at least one).
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            if let Some(c) = conn {
                let _ = c.close().await;
            }
            return;
        }
        // SQLite: once the write lock is ours, take what queued up while processing held it,
        // so that all of it goes in this commit and the batch size shows the queue (a flood).
        let write = db.lock_writes().await;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let n = batch.len();
        // Everything appended and not yet committed: this batch and what waits in the channel.
        let waiting = queued.load(Ordering::Relaxed);
        let ok = commit_on(&db, &mut conn, &batch)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "journal batch failed"))
            .is_ok();
        drop(write);
        for p in batch.drain(..) {
            let _ = p.committed.send(ok);
        }
        if ok {
            flood.arrived(waiting.max(n));
            wake.notify_one();
        }
    }
}

/// Commits `batch` on the writer's own connection, opening one if needed. A commit that fails
/// is tried once more on a new connection (the old one may have broken: a restarted database,
/// a dropped socket), and that try skips the ids already stored, in case the first commit went
/// through and only its answer was lost.
async fn commit_on(db: &Db, conn: &mut Option<Conn>, batch: &[Pending]) -> sqlx::Result<()> {
    if let Some(c) = conn.as_mut() {
        match commit(c, batch, false).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "journal commit failed; trying again on a new connection");
                *conn = None;
            }
        }
    }
    let mut c = db.dedicated().await?;
    commit(&mut c, batch, true).await?;
    *conn = Some(c);
    Ok(())
}

/// One INSERT in autocommit mode: a single statement is its own transaction, as durable as
/// BEGIN … COMMIT (SQLite `synchronous=FULL`, PostgreSQL `synchronous_commit=on`) with one
/// round trip instead of three. The batch goes in as one `webhook_arrivals` row (several
/// only past [`MAX_ARRIVAL_BYTES`]): one tuple and one index entry for up to [`MAX_BATCH`]
/// webhooks. The processor unpacks it ([`unpack_next`]).
/// `again`: skip arrivals already stored (see [`commit_on`]).
/// The caller holds the SQLite write lock.
async fn commit(conn: &mut Conn, batch: &[Pending], again: bool) -> sqlx::Result<()> {
    let arrivals: Vec<_> = by_bytes(batch, |p| p.body.len(), MAX_ARRIVAL_BYTES)
        .map(|chunk| {
            let entries = pack(chunk.iter().map(|p| (p.id, p.received_at, p.body.as_ref())));
            // The arrival is named after its first webhook: unique, in time order, and the
            // same when the commit is tried again.
            (chunk[0].id, chunk[0].received_at, chunk.len() as i32, entries)
        })
        .collect();
    let sql = insert_arrivals_sql(arrivals.len(), again);
    on_conn!(conn, |c| {
        let mut q = sqlx::query(&sql);
        for (id, received_at, webhooks, entries) in &arrivals {
            q = q.bind(id).bind(received_at).bind(webhooks).bind(entries.as_slice());
        }
        q.execute(c).await.map(|_| ())
    })
}

/// A batch's webhooks above this many body bytes go into more than one arrival row, each one
/// well under the databases' limits on one value (1 GB).
const MAX_ARRIVAL_BYTES: usize = 16 << 20;

/// Splits `items` into runs of at most `max` bytes (as `len` counts them); an item larger
/// than that is a run of its own.
fn by_bytes<T>(items: &[T], len: impl Fn(&T) -> usize, max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let n = rest.iter().take_while(|t| {
            bytes += len(t);
            bytes <= max
        });
        let (run, tail) = rest.split_at(n.count().max(1));
        rest = tail;
        Some(run)
    })
}

/// The INSERT of `rows` arrivals; a constant text for the usual single row.
fn insert_arrivals_sql(rows: usize, again: bool) -> std::borrow::Cow<'static, str> {
    const ONE: &str = "INSERT INTO webhook_arrivals (id, received_at, webhooks, entries) VALUES ($1, $2, $3, $4)";
    if rows == 1 && !again {
        return ONE.into();
    }
    let values: Vec<String> =
        (0..rows).map(|r| format!("(${}, ${}, ${}, ${})", 4 * r + 1, 4 * r + 2, 4 * r + 3, 4 * r + 4)).collect();
    let conflict = if again { " ON CONFLICT (id) DO NOTHING" } else { "" };
    format!("INSERT INTO webhook_arrivals (id, received_at, webhooks, entries) VALUES {}{conflict}", values.join(", "))
        .into()
}

/// The version byte that starts an arrival's `entries`.
const PACK_V1: u8 = 1;

/// One webhook in an arrival: its journal id, when it was received, its raw body.
pub type Arrived<'a> = (Uuid, DateTime<Utc>, &'a [u8]);

/// Encodes webhooks as one arrival's `entries`: [`PACK_V1`], then per webhook its id
/// (16 bytes), received time (µs since the epoch, i64 LE), body length (u32 LE) and body.
pub fn pack<'a>(webhooks: impl IntoIterator<Item = Arrived<'a>>) -> Vec<u8> {
    let mut out = vec![PACK_V1];
    for (id, received_at, body) in webhooks {
        out.reserve(28 + body.len());
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&received_at.timestamp_micros().to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
    }
    out
}

/// Decodes what [`pack`] wrote; `None` if it is not that (truncated, another version).
pub fn unpack(entries: &[u8]) -> Option<Vec<Arrived<'_>>> {
    let (&version, mut rest) = entries.split_first()?;
    if version != PACK_V1 {
        return None;
    }
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (id, tail) = rest.split_first_chunk::<16>()?;
        let (micros, tail) = tail.split_first_chunk::<8>()?;
        let (len, tail) = tail.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return None;
        }
        let (body, tail) = tail.split_at(len);
        let received_at = DateTime::from_timestamp_micros(i64::from_le_bytes(*micros))?;
        out.push((Uuid::from_bytes(*id), received_at, body));
        rest = tail;
    }
    Some(out)
}

const TAKE_ARRIVALS_SQLITE: &str = "SELECT id, received_at, entries FROM webhook_arrivals ORDER BY id LIMIT $1";
const TAKE_ARRIVALS_PG: &str =
    "SELECT id, received_at, entries FROM webhook_arrivals ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED";

/// Arrivals unpacked in one transaction. A group commit holds ~10–30 webhooks in a flood at 64
/// connections: one arrival at a time fed processing batches of that size instead of
/// [`PROCESS_BATCH`], and draining was ~20 % slower per webhook.
const UNPACK_ARRIVALS: i64 = 16;

/// Unpacks the oldest arrivals into `webhook_events` rows, pending, and deletes them, in one
/// transaction. An arrival that cannot be decoded (it was not written by [`pack`]) becomes
/// one failed entry holding its bytes, for an admin to see, rather than blocking the ones
/// after it. Returns how many entries it wrote (0: no arrival waiting).
#[instrument(skip_all)]
pub async fn unpack_next(st: &AppState) -> Result<usize> {
    let mut tx = st.db.begin().await?;
    let take = match st.db.backend() {
        Backend::Sqlite => TAKE_ARRIVALS_SQLITE,
        Backend::Postgres => TAKE_ARRIVALS_PG,
    };
    let arrivals: Vec<(Uuid, DateTime<Utc>, Vec<u8>)> =
        on_tx!(&mut tx, |c| sqlx::query_as(take).bind(UNPACK_ARRIVALS).fetch_all(c).await)?;
    if arrivals.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let mut webhooks = Vec::new();
    let mut undecodable = Vec::new();
    for (arrival, received_at, entries) in &arrivals {
        match unpack(entries) {
            Some(w) => webhooks.extend(w),
            None => undecodable.push((*arrival, *received_at, entries.as_slice())),
        }
    }
    insert_pending(&mut tx, &webhooks).await?;
    for (arrival, received_at, entries) in &undecodable {
        tracing::error!(%arrival, bytes = entries.len(), "journal arrival could not be decoded; kept as a failed entry");
        on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO webhook_events (id, received_at, signature_valid, body, state, error, processed_at) \
             VALUES ($1, $2, TRUE, $3, 'failed', 'journal arrival could not be decoded', $4) \
             ON CONFLICT (id) DO NOTHING"
        )
        .bind(*arrival)
        .bind(*received_at)
        .bind(*entries)
        .bind(st.clock.now())
        .execute(c)
        .await
        .map(|_| ()))?;
    }
    let ids: Vec<Uuid> = arrivals.iter().map(|a| a.0).collect();
    on_tx!(&mut tx, |c| {
        let mut qb = sqlx::QueryBuilder::new("DELETE FROM webhook_arrivals WHERE id IN (");
        push_ids(&mut qb, &ids);
        qb.push(")");
        qb.build().execute(c).await.map(|_| ())
    })?;
    st.commit(tx).await?;
    let written = webhooks.len() + undecodable.len();
    tracing::debug!(arrivals = arrivals.len(), webhooks = written, "journal arrivals unpacked");
    Ok(written)
}

/// Inserts unpacked webhooks as pending journal entries. `ON CONFLICT`: an arrival committed
/// twice (see [`commit_on`]) is unpacked twice. PostgreSQL gets three arrays, so that the
/// text is one prepared statement whatever the count; SQLite rows of values.
async fn insert_pending(tx: &mut crate::db::Tx, webhooks: &[Arrived<'_>]) -> sqlx::Result<()> {
    match tx {
        crate::db::Tx::Sqlite(c, _) => {
            for chunk in webhooks.chunks(MAX_BATCH) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO webhook_events (id, received_at, signature_valid, body, state) ",
                );
                qb.push_values(chunk, |mut b, (id, received_at, body)| {
                    b.push_bind(*id).push_bind(*received_at).push_bind(true).push_bind(*body).push_bind("pending");
                });
                qb.push(" ON CONFLICT (id) DO NOTHING");
                qb.build().execute(&mut **c).await?;
            }
            Ok(())
        }
        crate::db::Tx::Postgres(c) => {
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

/// Unpacks arrivals and processes pending rows until none is left, then waits for a wake-up
/// (or a periodic tick).
///
/// During a flood (webhooks queueing up for the journal) processing
/// yields to acknowledging: it runs one batch at least every [`MAX_DEFER`] and catches up once
/// the flood is over. The journal is durable, so nothing waits but the inbox; at ordinary rates
/// (e.g. 1,000 messages/s) there is no flood and processing follows at once.
pub async fn run_processor(st: AppState, wake: Arc<Notify>) {
    let mut shutdown = st.shutdown.clone();
    loop {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let deferred = Instant::now();
            while st.journal.flooded() && deferred.elapsed() < MAX_DEFER {
                tokio::select! {
                    _ = tokio::time::sleep(FLOOD_QUIET / 5) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
            let unpacked = match unpack_next(&st).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "unpacking journal arrivals failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            };
            match process_batch(&st).await {
                Ok(0) if unpacked == 0 => break,
                Ok(_) => continue,
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

const CLAIM_SQLITE: &str = "SELECT id, body, attempts FROM webhook_events WHERE state = 'pending' \
    AND ($1 IS NULL OR id = $1) ORDER BY seq LIMIT $2";
const CLAIM_PG: &str = "SELECT id, body, attempts FROM webhook_events WHERE state = 'pending' \
    AND ($1::uuid IS NULL OR id = $1) ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED";

/// Journal rows processed in one transaction (one fsync) when a backlog builds up.
const PROCESS_BATCH: i64 = 64;

fn claim_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => CLAIM_SQLITE,
        Backend::Postgres => CLAIM_PG,
    }
}

/// Processes up to [`PROCESS_BATCH`] pending rows in one transaction. If any of them hits an
/// error, the batch is rolled back and its rows are processed one by one, so one bad row
/// neither blocks nor fails the others. Returns how many rows were taken.
pub async fn process_batch(st: &AppState) -> Result<usize> {
    let mut tx = st.db.begin().await?;
    let rows: Vec<(Uuid, Vec<u8>, i64)> = on_tx!(&mut tx, |c| sqlx::query_as(claim_sql(st.db.backend()))
        .bind(None::<Uuid>)
        .bind(PROCESS_BATCH)
        .fetch_all(c)
        .await)?;
    if rows.len() <= 1 {
        tx.rollback().await?;
        return Ok(usize::from(process_next(st, rows.first().map(|r| r.0)).await?));
    }
    lock_contacts(&mut tx, rows.iter().map(|r| r.1.as_slice())).await?;
    let now = st.clock.now();
    let mut batch = ingest::Batch::default();
    let mut outcomes = Vec::with_capacity(rows.len());
    let started = Instant::now();
    // SQLite has one writer: after a slice of work, let a waiting journal commit in. (On
    // PostgreSQL the two do not block each other.)
    let yields = st.db.backend() == Backend::Sqlite;
    for (id, body, _) in &rows {
        if yields && !outcomes.is_empty() && st.journal.should_yield(started.elapsed()) {
            break; // the rest stay pending for the next batch
        }
        match ingest::process(st, &mut tx, &mut batch, now, body).await {
            Ok(outcome) => outcomes.push((*id, outcome)),
            Err(e) => {
                tracing::warn!(error = %e, "batch rolled back; processing its rows one by one");
                tx.rollback().await?;
                return one_by_one(st, &rows).await;
            }
        }
    }
    let finished = async {
        batch.flush(&mut tx).await?;
        finish(&mut tx, now, &outcomes).await
    };
    if let Err(e) = finished.await {
        tracing::warn!(error = %e, "batch rolled back; processing its rows one by one");
        tx.rollback().await?;
        return one_by_one(st, &rows).await;
    }
    st.commit(tx).await?;
    Ok(outcomes.len())
}

async fn one_by_one(st: &AppState, rows: &[(Uuid, Vec<u8>, i64)]) -> Result<usize> {
    for (id, _, _) in rows {
        if let Err(e) = process_next(st, Some(*id)).await {
            tracing::error!(event_id = %id, error = %e, "webhook processing failed");
        }
    }
    Ok(rows.len())
}

/// Processes the oldest pending row (or row `only`), in one transaction with everything it
/// stores. Returns false when there was nothing to do.
///
/// A failure counts as one of the row's [`MAX_ATTEMPTS`] unless it is transient
/// ([`Error::is_transient`]: a lost deadlock, a serialization failure, SQLite busy). That says
/// nothing about the row, so the row is processed again after a pause, up to
/// [`TRANSIENT_TRIES`] times in all, and then left pending, its attempts unchanged.
pub async fn process_next(st: &AppState, mut only: Option<Uuid>) -> Result<bool> {
    let mut tries = 1;
    loop {
        let mut tx = st.db.begin().await?;
        let row: Option<(Uuid, Vec<u8>, i64)> = on_tx!(&mut tx, |c| sqlx::query_as(claim_sql(st.db.backend()))
            .bind(only)
            .bind(1i64)
            .fetch_optional(c)
            .await)?;
        // (On a retry the row may have been processed meanwhile by another processor.)
        let Some((id, body, attempts)) = row else { return Ok(tries > 1) };
        let now = st.clock.now();
        let mut batch = ingest::Batch::default();
        let processed = async {
            lock_contacts(&mut tx, std::iter::once(body.as_slice())).await?;
            let outcome = ingest::process(st, &mut tx, &mut batch, now, &body).await?;
            batch.flush(&mut tx).await?;
            finish(&mut tx, now, std::slice::from_ref(&(id, outcome))).await
        };
        let e = match processed.await {
            Ok(()) => {
                st.commit(tx).await?;
                tracing::debug!(event_id = %id, "webhook processed");
                return Ok(true);
            }
            Err(e) => e,
        };
        tx.rollback().await?;
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
        let state = if failed { "failed" } else { "pending" };
        on_db!(&st.db, |p| sqlx::query(
            "UPDATE webhook_events SET attempts = $1, state = $2, error = $3 WHERE id = $4"
        )
        .bind(attempts)
        .bind(state)
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
/// rest of `tx`, and makes the rest of it plan generically ([`ingest::Plans::Generic`]: every
/// statement of processing looks up keys). SQLite has one writer.
async fn lock_contacts<'a>(tx: &mut crate::db::Tx, bodies: impl Iterator<Item = &'a [u8]>) -> Result<()> {
    let keys = if tx.backend() == Backend::Postgres { ingest::contact_keys(bodies) } else { Vec::new() };
    ingest::lock_chats(tx, &keys, ingest::Plans::Generic).await
}

/// Marks processed rows done (one statement for all of them) or failed, and records which
/// workspaces they addressed (one statement).
async fn finish(tx: &mut crate::db::Tx, now: DateTime<Utc>, outcomes: &[(Uuid, Outcome)]) -> Result<()> {
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

/// Deletes processed entries older than the retention, hourly.
pub async fn run_retention(st: AppState) {
    let mut shutdown = st.shutdown.clone();
    loop {
        let cutoff = st.clock.now() - chrono::Duration::days(st.config.journal_retention_days.max(0));
        match prune(&st.db, cutoff, crate::db::DELETE_CHUNK).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned processed webhook journal entries"),
            Err(e) => tracing::warn!(error = %e, "journal retention failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct EventRow {
    seq: i64,
    id: Uuid,
    received_at: DateTime<Utc>,
    state: String,
    error: Option<String>,
    attempts: i64,
    processed_at: Option<DateTime<Utc>>,
}

impl EventRow {
    fn to_json(&self) -> Value {
        let mut v = json!({"id": self.id, "received_at": self.received_at, "state": self.state,
                           "attempts": self.attempts, "processed_at": self.processed_at});
        if let Some(e) = &self.error {
            v["error"] = json!(e);
        }
        v
    }
}

/// Entries an admin of `$1` may see: those routed to their workspace, and those routed nowhere.
const VISIBLE: &str = "(EXISTS (SELECT 1 FROM webhook_event_workspaces w WHERE w.event_id = e.id AND w.workspace_id = $1) \
    OR NOT EXISTS (SELECT 1 FROM webhook_event_workspaces w WHERE w.event_id = e.id))";

fn require_admin(user: &CurrentUser) -> Result<()> {
    if crate::policy::is_admin(&user.viewer()) {
        Ok(())
    } else {
        Err(Error::forbidden("forbidden", "only admins see the webhook journal"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListEvents {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[instrument(skip_all)]
pub async fn list(State(st): State<AppState>, user: CurrentUser, Query(q): Query<ListEvents>) -> Result<Json<Value>> {
    require_admin(&user)?;
    let limit = page_limit(q.limit)?;
    // The state is written into the statement, so that the planner takes that state's
    // partial index (pending, failed) or reads the primary key newest first (done, all).
    let state = match q.state.as_deref() {
        None => "",
        Some("pending") => "AND e.state = 'pending'",
        Some("done") => "AND e.state = 'done'",
        Some("failed") => "AND e.state = 'failed'",
        Some(_) => return Err(Error::bad_request("invalid_filter", "state must be pending, done or failed")),
    };
    let before: i64 = q
        .cursor
        .as_deref()
        .map(|c| c.parse().map_err(|_| Error::bad_request("invalid_cursor", "cursor is not one this server issued")))
        .transpose()?
        .unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT e.seq, e.id, e.received_at, e.state, e.error, e.attempts, e.processed_at FROM webhook_events e \
         WHERE e.seq < $2 {state} AND {VISIBLE} ORDER BY e.seq DESC LIMIT $3"
    );
    let mut rows: Vec<EventRow> = on_db!(&st.db, |p| sqlx::query_as(&sql)
        .bind(user.workspace_id)
        .bind(before)
        .bind(limit + 1)
        .fetch_all(p)
        .await)?;
    let next = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.seq.to_string())
    });
    Ok(Json(
        json!({"webhook_events": rows.iter().map(EventRow::to_json).collect::<Vec<_>>(), "next_cursor": next.flatten()}),
    ))
}

async fn load(st: &AppState, user: &CurrentUser, id: Uuid) -> Result<(EventRow, Vec<u8>)> {
    let sql = format!(
        "SELECT e.seq, e.id, e.received_at, e.state, e.error, e.attempts, e.processed_at FROM webhook_events e \
         WHERE {VISIBLE} AND e.id = $2"
    );
    let row: EventRow =
        on_db!(&st.db, |p| sqlx::query_as(&sql).bind(user.workspace_id).bind(id).fetch_optional(p).await)?
            .ok_or_else(Error::not_found)?;
    let body: Vec<u8> = on_db!(&st.db, |p| sqlx::query_scalar("SELECT body FROM webhook_events WHERE id = $1")
        .bind(id)
        .fetch_one(p)
        .await)?;
    Ok((row, body))
}

#[instrument(skip_all)]
pub async fn get_one(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<Value>> {
    require_admin(&user)?;
    let (row, body) = load(&st, &user, id).await?;
    let mut v = row.to_json();
    v["body"] = json!(String::from_utf8_lossy(&body));
    Ok(Json(v))
}

/// Processes an entry again. Idempotent: storage is keyed by wamid and statuses only advance.
#[instrument(skip_all)]
pub async fn replay(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<Value>> {
    require_admin(&user)?;
    load(&st, &user, id).await?;
    on_db!(&st.db, |p| sqlx::query(
        "UPDATE webhook_events SET state = 'pending', error = NULL, attempts = 0 WHERE id = $1"
    )
    .bind(id)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?;
    tracing::info!(event_id = %id, "webhook replay requested");
    // Process it now so the answer shows the outcome; the background processor would too.
    let _ = process_next(&st, Some(id)).await;
    let (row, _) = load(&st, &user, id).await?;
    Ok(Json(row.to_json()))
}

#[cfg(test)]
mod tests {
    use super::{FLOOD_BATCH, Flood, Pending, by_bytes, commit, insert_arrivals_sql, pack, unpack};
    use crate::db::Db;
    use crate::on_conn;
    use bytes::Bytes;
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    #[test]
    fn a_packed_batch_unpacks_to_the_same_webhooks() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_789_300_000_123_456).unwrap();
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let webhooks = [(a, at, &b"{\"one\":1}"[..]), (b, at, &b""[..]), (c, at, "h\u{e9}llo \u{1f44b}".as_bytes())];
        let packed = pack(webhooks);
        assert_eq!(unpack(&packed).unwrap(), webhooks);
        assert_eq!(unpack(&pack([])).unwrap(), []);
    }

    #[test]
    fn anything_else_does_not_unpack() {
        let packed = pack([(Uuid::now_v7(), Utc::now(), &b"body"[..])]);
        assert!(unpack(&packed[..packed.len() - 1]).is_none(), "truncated body");
        assert!(unpack(&packed[..10]).is_none(), "truncated header");
        assert!(unpack(&[]).is_none(), "empty");
        let mut other = packed.clone();
        other[0] = 2;
        assert!(unpack(&other).is_none(), "another version");
        let mut longer = packed;
        longer[25] = 0xff;
        assert!(unpack(&longer).is_none(), "a length past the end");
    }

    #[test]
    fn a_batch_past_the_byte_limit_becomes_several_arrivals() {
        let runs = |sizes: &[usize]| by_bytes(sizes, |s| *s, 10).map(<[usize]>::to_vec).collect::<Vec<_>>();
        assert_eq!(runs(&[3, 3, 3]), [vec![3, 3, 3]]);
        assert_eq!(runs(&[4, 4, 4, 4]), [vec![4, 4], vec![4, 4]]);
        assert_eq!(runs(&[2, 25, 2]), [vec![2], vec![25], vec![2]], "a large webhook goes alone");
        assert_eq!(runs(&[10, 10]), [vec![10], vec![10]]);
        assert!(runs(&[]).is_empty());
    }

    /// Five webhooks of just over 4 MiB: two arrival rows (3 + 2) in one INSERT; the second
    /// try after a lost answer stores nothing twice.
    #[tokio::test]
    async fn a_batch_above_the_byte_limit_is_stored_as_several_arrivals_once() {
        let dir = std::env::temp_dir().join(format!("sb-unit-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::connect(&format!("sqlite://{}/journal.db", dir.display())).await.unwrap();
        db.migrate().await.unwrap();
        let mut conn = db.dedicated().await.unwrap();
        let body = Bytes::from(vec![b'x'; (4 << 20) + 1]);
        let batch: Vec<Pending> = (0..5)
            .map(|_| Pending {
                id: Uuid::now_v7(),
                body: body.clone(),
                received_at: Utc::now(),
                committed: tokio::sync::oneshot::channel().0,
            })
            .collect();
        commit(&mut conn, &batch, false).await.unwrap();
        commit(&mut conn, &batch, true).await.unwrap();
        let rows: Vec<(Uuid, i64, Vec<u8>)> =
            on_conn!(&mut conn, |c| sqlx::query_as("SELECT id, webhooks, entries FROM webhook_arrivals ORDER BY id")
                .fetch_all(c)
                .await)
            .unwrap();
        assert_eq!(rows.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(), [(batch[0].id, 3), (batch[3].id, 2)]);
        let ids: Vec<Uuid> = rows.iter().flat_map(|r| unpack(&r.2).unwrap()).map(|w| w.0).collect();
        assert_eq!(ids, batch.iter().map(|p| p.id).collect::<Vec<_>>());
        conn.close().await.unwrap();
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_arrival_has_a_constant_insert_and_several_number_their_parameters() {
        assert_eq!(
            insert_arrivals_sql(1, false),
            "INSERT INTO webhook_arrivals (id, received_at, webhooks, entries) VALUES ($1, $2, $3, $4)"
        );
        assert_eq!(
            insert_arrivals_sql(2, true),
            "INSERT INTO webhook_arrivals (id, received_at, webhooks, entries) VALUES ($1, $2, $3, $4), \
             ($5, $6, $7, $8) ON CONFLICT (id) DO NOTHING"
        );
    }

    #[test]
    fn a_burst_is_not_a_flood_but_a_streak_is() {
        let f = Flood::new();
        f.arrived(FLOOD_BATCH * 4);
        f.arrived(3);
        f.arrived(FLOOD_BATCH);
        assert!(!f.active(), "single large commits between small ones");
        f.arrived(FLOOD_BATCH);
        f.arrived(FLOOD_BATCH + 1);
        assert!(f.active(), "three in a row");
        f.arrived(1);
        assert!(f.active(), "it lasts until quiet");
    }
}
