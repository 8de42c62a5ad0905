//! Storage: one pool over SQLite or PostgreSQL. Queries are written once (`$n` placeholders
//! work on both) and run through [`on_db!`] / [`on_tx!`], which expand the same sqlx call for
//! each backend. The few real dialect differences live in this module.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Postgres, Sqlite, Transaction};

mod links;
pub mod migrate;
pub use links::{Links, linked, linked_in};

/// A connection pool on one of the two backends.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// SQLite has one writer at a time. Write transactions queue on an async lock (first come,
/// first served) instead of SQLite's busy handler, which sleeps and retries.
#[derive(Clone, Debug)]
pub struct SqliteDb {
    pub pool: SqlitePool,
    write: Arc<tokio::sync::Mutex<()>>,
}

/// A connection outside the pool, for a task that writes all the time (the webhook journal's
/// writers). A pooled connection costs a round trip each time it goes back: sqlx pings it, and
/// on PostgreSQL that is a message to the server and its answer.
pub enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Conn {
    pub async fn close(self) -> sqlx::Result<()> {
        use sqlx::Connection;
        match self {
            Conn::Sqlite(c) => c.close().await,
            Conn::Postgres(c) => c.close().await,
        }
    }
}

/// A write transaction on one of the two backends.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>, tokio::sync::OwnedMutexGuard<()>),
    Postgres(Transaction<'static, Postgres>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `on_db!(db, |pool| expr)`: evaluates `expr` with `pool` bound to the backend's pool.
#[macro_export]
macro_rules! on_db {
    ($db:expr, |$ex:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(s) => {
                let $ex = &s.pool;
                $body
            }
            $crate::db::Db::Postgres($ex) => $body,
        }
    };
}

/// `on_tx!(tx, |conn| expr)`: evaluates `expr` with `conn` bound to the transaction's connection.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$ex:ident| $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(t, _) => {
                let $ex = &mut **t;
                $body
            }
            $crate::db::Tx::Postgres(t) => {
                let $ex = &mut **t;
                $body
            }
        }
    };
}

/// `on_conn!(conn, |c| expr)`: evaluates `expr` with `c` bound to a [`Conn`]'s connection.
#[macro_export]
macro_rules! on_conn {
    ($conn:expr, |$ex:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Sqlite(c) => {
                let $ex = &mut *c;
                $body
            }
            $crate::db::Conn::Postgres(c) => {
                let $ex = &mut *c;
                $body
            }
        }
    };
}

/// Pushes `ids` as a comma-separated bind list; an empty list becomes a NULL that matches nothing.
pub fn push_ids<'a, DB>(qb: &mut sqlx::QueryBuilder<'a, DB>, ids: &'a [uuid::Uuid])
where
    DB: sqlx::Database,
    uuid::Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    push_list(qb, ids);
}

/// Pushes `values` as a comma-separated bind list (for `IN (…)`); an empty list becomes a NULL
/// that matches nothing.
pub fn push_list<'a, DB, T>(qb: &mut sqlx::QueryBuilder<'a, DB>, values: &'a [T])
where
    DB: sqlx::Database,
    T: sqlx::Encode<'a, DB> + sqlx::Type<DB> + Copy + 'a,
{
    if values.is_empty() {
        qb.push("NULL");
        return;
    }
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(*v);
    }
}

/// Advisory lock key that serialises event-log appends on PostgreSQL, so event ids become
/// visible in commit order (a reader at cursor N never misses a smaller id committed later).
pub const EVENT_LOCK_KEY: i64 = 0x5b_0001;

/// How often [`Db::checkpoints`] checkpoints SQLite's write-ahead log.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// How often [`Db::statistics`] looks for PostgreSQL tables that outgrew their statistics.
pub const STATISTICS_EVERY: Duration = Duration::from_secs(2);
/// Rows from which [`Db::statistics`] analyzes a table that has doubled since its last analyze.
const STATISTICS_AFTER: i64 = 500;
/// SQLite checkpoints on commit only when the log outgrows this many pages (4 KiB each), e.g.
/// when background checkpoints cannot keep up.
const WAL_BACKSTOP_PAGES: u32 = 16_000;
/// How much of a SQLite database file is read through a memory map.
const SQLITE_MMAP_BYTES: u64 = 1 << 30;
/// A PostgreSQL connection idle this long is pinged before it is handed out (see [`Db::connect_sized`]).
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Settings of every PostgreSQL connection, unless `DATABASE_URL`'s `options` name them: no
/// JIT compilation and no parallel workers. The server's queries are short; compiling one
/// (~25 ms once its estimated cost passes `jit_above_cost`) or starting workers for it
/// (a few ms, chosen when PostgreSQL cannot estimate a full-text prefix) costs more than it saves.
const PG_SESSION: [(&str, &str); 2] = [("jit", "off"), ("max_parallel_workers_per_gather", "0")];

/// `BEGIN` of a PostgreSQL read without Memoize: a Memoize node sizes its cache by the
/// planner's guess of distinct keys (every lead, every conversation) and allocates it when the
/// statement starts, 4-5 ms of a walk that then stops after a page of 51 rows (the activity
/// timeline with a chat filter: ~0.5 ms in the plan's nodes, ~5.5 ms of execution). Not for
/// every statement: where Memoize has many repeated keys to serve, the plan chosen without it
/// runs slower (the narrow activity timeline's walk: 2.1-2.3 ms with it, 3.2-4.0 without).
pub const PG_BEGIN_NO_MEMOIZE: &str = "BEGIN READ ONLY; SET LOCAL enable_memoize = off";

/// `BEGIN` of a PostgreSQL read whose statement is planned once per connection and then reused
/// (a generic plan) instead of planned again for each request's values: for a statement whose
/// plan does not depend on them and whose planning costs as much as running it (the policy's
/// predicates make many subqueries to plan: ~2-3 ms each time for the activity timeline's).
pub const PG_BEGIN_GENERIC: &str = "BEGIN READ ONLY; SET LOCAL plan_cache_mode = force_generic_plan";

/// `url`'s options with [`PG_SESSION`]'s settings it does not name.
fn pg_options(url: &str) -> anyhow::Result<PgConnectOptions> {
    let opts = PgConnectOptions::from_str(url)?;
    let named = opts.get_options().unwrap_or_default().to_owned();
    let missing: Vec<_> = PG_SESSION.into_iter().filter(|(k, _)| !named.contains(&format!("{k}="))).collect();
    Ok(opts.options(missing))
}
/// Rows deleted per statement by [`Db::delete_in_chunks`].
pub const DELETE_CHUNK: i64 = 5000;

/// Times a transaction that fails transiently ([`crate::error::Error::is_transient`]: a lost
/// deadlock, a serialization failure, SQLite busy) is run in all before the failure is
/// reported.
pub const TRANSIENT_TRIES: u32 = 3;

/// Waits before running again a transaction that failed transiently on try `tries` (from 1):
/// 100 ms, doubled each time, with jitter, so that the transaction that won has time to
/// finish and the new try does not meet it again.
pub async fn pause_before_retry(tries: u32) {
    let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0.5..1.5);
    let pause = Duration::from_millis(100) * 2u32.pow(tries.saturating_sub(1).min(6));
    tokio::time::sleep(pause.mul_f64(jitter)).await;
}

impl Db {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`), creating a SQLite file if missing.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        Db::connect_sized(url, if url.starts_with("sqlite:") { 8 } else { 16 }).await
    }

    /// [`Db::connect`] with at most `max` connections.
    pub async fn connect_sized(url: &str, max: u32) -> anyhow::Result<Db> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // Checkpoints run in the background (`checkpoints`); this is only the backstop.
                .pragma("wal_autocheckpoint", WAL_BACKSTOP_PAGES.to_string())
                // Pages are read from a memory map instead of a pread (and a copy) each.
                .pragma("mmap_size", SQLITE_MMAP_BYTES.to_string())
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            // No ping before each acquire (sqlx's default): a SQLite connection is a file in this
            // process that cannot hang up, and the ping is a round trip to its worker thread.
            let pool =
                SqlitePoolOptions::new().max_connections(max).test_before_acquire(false).connect_with(opts).await?;
            Ok(Db::Sqlite(SqliteDb { pool, write: Arc::default() }))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // sqlx pings a connection before handing it out: a round trip before every query.
            // Only one that sat idle (where a restarted server or a firewall may have dropped
            // it) is pinged; a connection that broke while in use fails its query, and the
            // pool does not take it back (its ping on release fails).
            let pool = PgPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(10))
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_IDLE_AFTER {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(pg_options(url)?)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite:// or postgres://")
        }
    }

    /// Runs the embedded migrations of this backend, after adopting a database created by
    /// the migrations they replaced (see [`migrate`]).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        migrate::run(self).await
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Opens a connection of its own, outside the pool, with the pool's options (see [`Conn`]).
    pub async fn dedicated(&self) -> sqlx::Result<Conn> {
        use sqlx::Connection;
        Ok(match self {
            Db::Sqlite(s) => Conn::Sqlite(sqlx::SqliteConnection::connect_with(&s.pool.connect_options()).await?),
            Db::Postgres(p) => Conn::Postgres(sqlx::PgConnection::connect_with(&p.connect_options()).await?),
        })
    }

    /// Starts a write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads then writes fails with "database is locked".
    pub async fn begin(&self) -> sqlx::Result<Tx> {
        Ok(match self {
            Db::Sqlite(s) => {
                let guard = s.write.clone().lock_owned().await;
                Tx::Sqlite(s.pool.begin_with("BEGIN IMMEDIATE").await?, guard)
            }
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// On SQLite, waits for the write lock that [`Db::begin`] takes, for a single-statement
    /// write run outside a transaction (autocommit: one statement, one commit, no BEGIN/COMMIT
    /// round trips). `None` on PostgreSQL, where writers do not queue.
    pub async fn lock_writes(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self {
            Db::Sqlite(s) => Some(s.write.clone().lock_owned().await),
            Db::Postgres(_) => None,
        }
    }

    /// Runs `sql`, a DELETE of at most `$2` rows matching `$1` (`before`), until it deletes
    /// fewer than `chunk`; returns the rows deleted. Each run is a short write of its own (on
    /// SQLite through the write queue), so a retention pass that finds millions of old rows
    /// never holds SQLite's write lock for long: webhooks and live events go in between.
    pub async fn delete_in_chunks(&self, sql: &str, before: DateTime<Utc>, chunk: i64) -> sqlx::Result<u64> {
        let mut total = 0;
        loop {
            let queue = self.lock_writes().await;
            let n = on_db!(self, |p| sqlx::query(sql)
                .bind(before)
                .bind(chunk)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))?;
            drop(queue);
            total += n;
            if n < chunk.max(1) as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// PostgreSQL: refreshes the planner's statistics of `tables` (`ANALYZE`) after a bulk
    /// write. Autovacuum only looks every minute or so; until then the planner believes a
    /// table that just grew from 0 to 100k rows is tiny and scans it whole for each lookup.
    /// SQLite plans without statistics here, so it is a no-op there.
    pub async fn refresh_statistics(&self, tables: &[&str]) -> sqlx::Result<()> {
        if let Db::Postgres(p) = self {
            sqlx::query(&format!("ANALYZE {}", tables.join(", "))).execute(p).await?;
        }
        Ok(())
    }

    /// PostgreSQL: keeps the planner's statistics of young tables in step with their growth.
    /// Every [`STATISTICS_EVERY`] it analyzes the tables of this schema that have at least
    /// [`STATISTICS_AFTER`] rows and twice as many as at their last `ANALYZE` (so a growing
    /// table is analyzed at ~500, ~1,000, ~2,000… rows; beyond that autovacuum's own rule,
    /// 10 % of the rows changed, comes first). Updates do not count: they change no sizes.
    /// Autovacuum looks only once a minute, and until then a prepared statement planned while
    /// its tables were empty keeps its plan: on a new inbox, the lead lookup of every incoming
    /// message scanned all the workspace's contacts (~1 ms at 2,000 leads, growing with them).
    /// `ANALYZE` also replaces such cached plans. Returns at once on SQLite, which plans
    /// without statistics here.
    pub async fn statistics(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let Db::Postgres(p) = self else { return };
        while pause(STATISTICS_EVERY, &mut shutdown).await {
            let stale: sqlx::Result<Vec<String>> = sqlx::query_scalar(
                "SELECT quote_ident(s.relname) FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
                 WHERE s.schemaname = current_schema() AND s.n_live_tup >= GREATEST($1, 2 * c.reltuples)",
            )
            .bind(STATISTICS_AFTER)
            .fetch_all(&p)
            .await;
            let tables = match stale {
                Ok(t) if t.is_empty() => continue,
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "looking for tables to analyze failed");
                    continue;
                }
            };
            match sqlx::query(&format!("ANALYZE {}", tables.join(", "))).execute(&p).await {
                Ok(_) => tracing::debug!(?tables, "planner statistics refreshed"),
                Err(e) => tracing::warn!(error = %e, ?tables, "refreshing planner statistics failed"),
            }
        }
    }

    /// SQLite: copies the write-ahead log back into the database file every [`CHECKPOINT_EVERY`]
    /// (a passive checkpoint: it neither waits for nor blocks readers and writers). Left to
    /// SQLite, the commit that grows the log past 1,000 pages runs the checkpoint itself,
    /// database-file fsync included, and whatever waits for that commit waits for it too (a
    /// webhook's 200, a live event). Returns at once on PostgreSQL.
    pub async fn checkpoints(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let Db::Sqlite(s) = self else { return };
        while pause(CHECKPOINT_EVERY, &mut shutdown).await {
            let done: sqlx::Result<(i64, i64, i64)> =
                sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&s.pool).await;
            match done {
                Ok((busy, log, copied)) => tracing::trace!(busy, log, copied, "checkpoint"),
                Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
            }
        }
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        on_db!(self, |p| sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected())).is_ok()
    }

    pub async fn close(&self) {
        on_db!(self, |p| p.close().await)
    }
}

/// Waits `period` for a periodic job; false (at once) when the server is stopping.
async fn pause(period: Duration, shutdown: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => true,
        _ = shutdown.wait_for(|stop| *stop) => false,
    }
}

impl Tx {
    /// Rolls back now. Dropping a transaction only queues the ROLLBACK for the connection's
    /// next use, and until then its row locks stay held: a `FOR UPDATE SKIP LOCKED` claim on
    /// another connection would skip the very rows this one gave up.
    pub async fn rollback(self) -> sqlx::Result<()> {
        match self {
            Tx::Sqlite(t, _guard) => t.rollback().await,
            Tx::Postgres(t) => t.rollback().await,
        }
    }

    pub async fn commit(self) -> sqlx::Result<()> {
        match self {
            Tx::Sqlite(t, _guard) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(..) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Appends `LIMIT/OFFSET`-free keyset helpers: the one place that knows how a cursor is spelled.
pub mod cursor {
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use crate::error::Error;

    /// Encodes a `(time, id)` keyset position as an opaque, URL-safe string.
    pub fn encode(at: DateTime<Utc>, id: Uuid) -> String {
        format!("{}.{}", at.timestamp_micros(), id.simple())
    }

    /// Decodes what [`encode`] wrote; anything else is a 400.
    pub fn decode(s: &str) -> Result<(DateTime<Utc>, Uuid), Error> {
        decode_with(s, |id| Uuid::parse_str(id).ok())
    }

    /// Encodes a `(time, seq)` keyset position (of a log ordered by time, then a sequence).
    pub fn encode_seq(at: DateTime<Utc>, seq: i64) -> String {
        format!("{}.{seq}", at.timestamp_micros())
    }

    /// Decodes what [`encode_seq`] wrote; anything else is a 400.
    pub fn decode_seq(s: &str) -> Result<(DateTime<Utc>, i64), Error> {
        decode_with(s, |seq| seq.parse().ok())
    }

    /// `micros.rest`, the rest read by `rest`; anything else is a 400.
    fn decode_with<T>(s: &str, rest: impl FnOnce(&str) -> Option<T>) -> Result<(DateTime<Utc>, T), Error> {
        let bad = || Error::bad_request("invalid_cursor", "cursor is not one this server issued");
        let (micros, tail) = s.split_once('.').ok_or_else(bad)?;
        let at = micros.parse().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(bad)?;
        Ok((at, rest(tail).ok_or_else(bad)?))
    }
}

/// Page size from a `limit` query value: default 50, capped at 200, at least 1.
pub fn page_limit(limit: Option<i64>) -> Result<i64, crate::error::Error> {
    match limit {
        None => Ok(50),
        Some(n) if n >= 1 => Ok(n.min(200)),
        Some(_) => Err(crate::error::Error::bad_request("invalid_limit", "limit must be at least 1")),
    }
}

#[cfg(test)]
mod pg_session_tests {
    use super::pg_options;

    #[test]
    fn postgres_connections_turn_off_jit_and_parallel_workers_unless_the_url_says() {
        let opts = pg_options("postgres://u@localhost/db").unwrap();
        assert_eq!(opts.get_options(), Some("-c jit=off -c max_parallel_workers_per_gather=0"));
        let opts = pg_options("postgres://u@localhost/db?options=-c%20jit%3Don").unwrap();
        assert_eq!(opts.get_options(), Some("-c jit=on -c max_parallel_workers_per_gather=0"));
        let opts = pg_options("postgres://u@localhost/db?options[jit_above_cost]=500000").unwrap();
        assert_eq!(
            opts.get_options(),
            Some("-c jit_above_cost=500000 -c jit=off -c max_parallel_workers_per_gather=0")
        );
    }
}
