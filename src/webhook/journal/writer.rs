//! The journal writer: webhook bodies are committed (group commit: concurrent POSTs share one
//! statement, written as one `webhook_arrivals` row) before Meta gets its 200.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
    /// Webhooks appended and not yet committed: the processor ends its transaction early when
    /// some wait, so acknowledging Meta never waits long behind processing (SQLite has one
    /// writer). See [`Journal::should_yield`].
    queued: Arc<AtomicUsize>,
    /// When webhooks last queued up for the journal (the processor holds back meanwhile).
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
pub const FLOOD_QUIET: Duration = Duration::from_millis(100);
/// While webhooks wait to be journaled, a processing transaction (SQLite: it holds the one
/// write lock) ends after this much work. Longer slices process more per commit; acknowledging
/// waits at most about this long.
const SLICE: Duration = Duration::from_millis(20);

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
    use super::{FLOOD_BATCH, Flood, Pending, by_bytes, commit, insert_arrivals_sql};
    use crate::db::Db;
    use crate::on_conn;
    use bytes::Bytes;
    use chrono::Utc;
    use uuid::Uuid;

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
