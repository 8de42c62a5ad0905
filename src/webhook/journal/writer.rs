//! The journal writer: webhook bodies are committed (group commit: concurrent POSTs share one
//! statement, written as one `webhook_arrivals` row) before Meta gets its 200.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc, oneshot};
use uuid::Uuid;

use super::codec::pack;
use crate::clock::Clock;
use crate::db::{Conn, Db};
use crate::error::{Error, Result};
use crate::on_conn;

/// Webhooks committed together at most.
pub const MAX_BATCH: usize = 256;
/// Webhooks waiting for the writer at most; a commit that was held back (see [`Backlog`])
/// takes all of them, so holding delays acknowledgements but never lowers their rate.
const QUEUE: usize = 4096;

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
    /// Set while the writer waits for SQLite's write lock: the processor then ends its
    /// transaction after a slice of work, so acknowledging never waits long behind processing
    /// (SQLite has one writer). See [`Journal::should_yield`].
    wants_lock: Arc<AtomicBool>,
    /// Journaled webhooks this node's processing has not caught up with; the writer holds
    /// commits back while it is large (see [`Backlog`]).
    backlog: Arc<Backlog>,
}

impl Journal {
    /// Starts the writer task. It ends when every `Journal` handle is dropped.
    pub fn start(db: Db) -> (Journal, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let wake = Arc::new(Notify::new());
        let wants_lock = Arc::new(AtomicBool::new(false));
        let backlog = Arc::new(Backlog::default());
        // One writer on both backends. PostgreSQL could commit concurrently, and two writers
        // used to keep a commit in flight while the other gathered; but the second one started
        // with whatever had queued, so commits held ~14 webhooks instead of ~27, and each commit
        // costs the database about as much CPU as a batch's bytes do (docs/benchmarks.md, round eleven).
        let handle = tokio::spawn(writer(db, wake.clone(), wants_lock.clone(), backlog.clone(), rx));
        (Journal { tx, wake, wants_lock, backlog }, handle)
    }

    /// Should a processing transaction that did `worked` of work end now, to let the journal
    /// writer, waiting for the write lock, commit?
    pub fn should_yield(&self, worked: Duration) -> bool {
        worked >= SLICE && self.wants_lock.load(Ordering::Relaxed)
    }

    /// Processing on this node finished `n` journal entries (committed).
    pub fn processed(&self, n: usize) {
        self.backlog.processed(n);
    }

    /// Processing on this node found nothing left to do: whatever it counted as behind was
    /// processed elsewhere (another node) or is not there.
    pub fn caught_up(&self) {
        self.backlog.caught_up();
    }

    /// Webhooks journaled and not yet processed here, as this node counts them.
    pub fn behind(&self) -> u64 {
        self.backlog.behind()
    }

    /// Makes `body` durable; returns once it is committed.
    pub async fn append(&self, clock: &Clock, body: Bytes) -> Result<Uuid> {
        let (committed, done) = oneshot::channel();
        let id = Uuid::now_v7();
        let pending = Pending { id, body, received_at: clock.now(), committed };
        self.tx.send(pending).await.map_err(|_| Error::unavailable("shutting_down", "the server is stopping"))?;
        match done.await {
            Ok(true) => Ok(id),
            _ => Err(Error::internal("journal commit failed")),
        }
    }
}

/// While the journal writer waits for SQLite's write lock, a processing transaction (it holds
/// the lock) ends after this much work. Longer slices process more per commit; acknowledging
/// waits at most about this long.
const SLICE: Duration = Duration::from_millis(20);

/// Journaled webhooks not yet processed above which the writer holds its next commit back
/// until processing catches up (at a few thousand webhooks/s of processing, well under a
/// second of work). Acknowledging then goes at the pace of processing instead of piling up a
/// backlog that agents see later and later: Meta's senders wait for the 200 and retry, the
/// journal stays short, and nothing defers processing.
pub const BACKLOG_HIGH: u64 = 1000;
/// A commit is held back at most this long, so that under overload answers still come within
/// a second (the backlog then grows, and is processed when the load falls). What queued during
/// the hold goes into that one commit (up to the whole queue, not [`MAX_BATCH`]): held commits
/// of 256 allowed at most ~850 acknowledgements a second, below the processing rate, and under
/// overload the requests piled up as open connections.
pub const MAX_HOLD: Duration = Duration::from_millis(300);

/// This node's count of journaled and processed webhooks: backpressure for the writer.
#[derive(Default)]
pub struct Backlog {
    journaled: AtomicU64,
    processed: AtomicU64,
    /// Rung after every processing commit.
    progress: Notify,
}

impl Backlog {
    fn journaled(&self, n: usize) {
        self.journaled.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn processed(&self, n: usize) {
        let journaled = self.journaled.load(Ordering::Relaxed);
        // Never ahead of what was journaled here (replays, what a restart left pending).
        let _ = self
            .processed
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| Some((p + n as u64).min(journaled.max(p))));
        self.progress.notify_one();
    }

    fn caught_up(&self) {
        let journaled = self.journaled.load(Ordering::Relaxed);
        self.processed.fetch_max(journaled, Ordering::Relaxed);
        self.progress.notify_one();
    }

    fn behind(&self) -> u64 {
        self.journaled.load(Ordering::Relaxed).saturating_sub(self.processed.load(Ordering::Relaxed))
    }

    /// Waits until the backlog is at most [`BACKLOG_HIGH`], or [`MAX_HOLD`] has passed; says
    /// whether it waited.
    async fn hold(&self) -> bool {
        if self.behind() <= BACKLOG_HIGH {
            return false;
        }
        let until = tokio::time::Instant::now() + MAX_HOLD;
        while self.behind() > BACKLOG_HIGH {
            if tokio::time::timeout_at(until, self.progress.notified()).await.is_err() {
                break;
            }
        }
        true
    }
}

async fn writer(
    db: Db,
    wake: Arc<Notify>,
    wants_lock: Arc<AtomicBool>,
    backlog: Arc<Backlog>,
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
        // Processing far behind: let it catch up first (what queues meanwhile joins this commit,
        // all of it: holding must not lower the rate of acknowledgements).
        let most = if backlog.hold().await { QUEUE } else { MAX_BATCH };
        // SQLite: once the write lock is ours, take what queued up while processing held it,
        // so that all of it goes in this commit.
        wants_lock.store(true, Ordering::Relaxed);
        let write = db.lock_writes().await;
        wants_lock.store(false, Ordering::Relaxed);
        while batch.len() < most {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let n = batch.len();
        let ok = commit_on(&db, &mut conn, &batch)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "journal batch failed"))
            .is_ok();
        drop(write);
        for p in batch.drain(..) {
            let _ = p.committed.send(ok);
        }
        if ok {
            backlog.journaled(n);
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
/// webhooks. The processor unpacks it.
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

#[cfg(test)]
mod tests {
    use super::super::codec::unpack;
    use super::{BACKLOG_HIGH, Backlog, Pending, by_bytes, commit, insert_arrivals_sql};
    use crate::db::Db;
    use crate::on_conn;
    use bytes::Bytes;
    use chrono::Utc;
    use uuid::Uuid;

    /// A migrated SQLite database in a directory of its own (remove the directory afterwards).
    async fn scratch_db() -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("sb-unit-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::connect(&format!("sqlite://{}/journal.db", dir.display())).await.unwrap();
        db.migrate().await.unwrap();
        (db, dir)
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
        let (db, dir) = scratch_db().await;
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
    fn the_backlog_counts_what_this_node_has_not_processed() {
        let b = Backlog::default();
        b.journaled(10);
        b.processed(4);
        assert_eq!(b.behind(), 6);
        b.processed(100);
        assert_eq!(b.behind(), 0, "never ahead of what was journaled here");
        b.journaled(5);
        assert_eq!(b.behind(), 5, "what was processed beyond does not count later");
        b.caught_up();
        assert_eq!(b.behind(), 0);
    }

    /// Far behind, 600 webhooks arrive at once: the held commit takes everything that queued
    /// meanwhile (one or two arrival rows, one hold), not 256 per hold (three holds, three rows).
    #[tokio::test]
    async fn a_held_commit_takes_everything_that_queued() {
        let (db, dir) = scratch_db().await;
        let (journal, writer) = super::Journal::start(db.clone());
        journal.backlog.journaled(BACKLOG_HIGH as usize + 10);
        let clock = crate::clock::Clock::default();
        let t = std::time::Instant::now();
        let appends = (0..600).map(|i| journal.append(&clock, Bytes::from(format!("{{\"n\":{i}}}"))));
        let ids = futures_util::future::join_all(appends).await;
        assert!(ids.iter().all(Result::is_ok), "every webhook committed");
        let rows: i64 =
            crate::on_db!(&db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM webhook_arrivals").fetch_one(p).await)
                .unwrap();
        assert!(rows <= 2, "{rows} commits for 600 queued webhooks");
        assert!(t.elapsed() < super::MAX_HOLD * 3, "held about once, not once per 256: {:?}", t.elapsed());
        drop(journal);
        writer.await.unwrap();
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_commit_is_held_back_while_far_behind_and_at_most_max_hold() {
        let b = std::sync::Arc::new(Backlog::default());
        b.journaled(BACKLOG_HIGH as usize + 10);
        let t = std::time::Instant::now();
        b.hold().await;
        assert!(t.elapsed() >= super::MAX_HOLD, "held until the limit while nothing was processed");
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.hold().await }
        });
        tokio::task::yield_now().await;
        b.processed(20);
        tokio::time::timeout(super::MAX_HOLD / 2, waiter).await.expect("released by processing").unwrap();
    }
}
