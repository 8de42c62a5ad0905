//! Schema migrations: the embedded trees `migrations/sqlite` and `migrations/postgres`, and the
//! adoption of a database created before they were squashed into one baseline.
//!
//! The two trees hold the same files (`0100_schema.sql`: tables and indexes; `0101_report_counters.sql`:
//! the report triggers), whose statements differ only in dialect; the test in `migrate/tests.rs`
//! holds them to that.
//!
//! switchboard 0.1.0 had migrations 0001-0016, numbered differently in each tree (SQLite: 1, 4,
//! 5, 6, 7, 8, 16; PostgreSQL: 1, 4-16). A database they brought to their last version has the
//! baseline's tables already; only its report triggers differ. [`adopt`] replaces those in one
//! transaction (drop the old ones, run 0101) and records the baseline's versions in place of
//! the old ones, with the checksums of the embedded files, so sqlx's migrator finds nothing to
//! do, then and on every later start. A database stopped at an earlier version is refused with
//! a message: the previous build has to finish its own migrations first.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use sqlx::migrate::Migrator;

use super::{Backend, Db};
use crate::on_tx;

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The first version of the baseline: every version of 0.1.0's trees is below it.
const BASELINE: i64 = 100;
/// The baseline's report triggers, the part an adopted database runs.
const REPORT_COUNTERS: i64 = 101;

/// The versions 0.1.0's trees recorded once complete.
const LEGACY_SQLITE: &[i64] = &[1, 4, 5, 6, 7, 8, 16];
const LEGACY_POSTGRES: &[i64] = &[1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

/// Drops what an adopted database has and the baseline has not: 0.1.0's report triggers (and,
/// on PostgreSQL, their functions).
const DROP_LEGACY_SQLITE: &str = include_str!("adopt_sqlite.sql");
const DROP_LEGACY_POSTGRES: &str = include_str!("adopt_postgres.sql");

/// PostgreSQL: serialises adoptions by nodes starting together (the two-key advisory lock
/// form, class 0x5b03; `lock_contacts` uses 0x5b02).
const ADOPT_LOCK_CLASS: i32 = 0x5b03;

/// The embedded migrations of a backend.
pub fn migrator(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    }
}

/// Brings the schema up to date: adopts a database of 0.1.0's trees, then runs the migrator.
pub async fn run(db: &Db) -> anyhow::Result<()> {
    adopt(db).await?;
    match db {
        Db::Sqlite(s) => SQLITE.run(&s.pool).await?,
        Db::Postgres(p) => POSTGRES.run(p).await?,
    }
    Ok(())
}

/// The versions recorded in `_sqlx_migrations` with whether each succeeded; empty when the
/// table does not exist (a new database).
async fn recorded(db: &Db) -> anyhow::Result<Vec<(i64, bool)>> {
    let exists: i64 = match db {
        Db::Sqlite(s) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                .fetch_one(&s.pool)
                .await?
        }
        Db::Postgres(p) => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
            )
            .fetch_one(p)
            .await?
        }
    };
    if exists == 0 {
        return Ok(Vec::new());
    }
    Ok(crate::on_db!(db, |p| sqlx::query_as(VERSIONS).fetch_all(p).await)?)
}

const VERSIONS: &str = "SELECT version, success FROM _sqlx_migrations ORDER BY version";

/// What a database's recorded versions call for.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// A new database, or one on the baseline: the migrator does the rest.
    Current,
    /// Complete on 0.1.0's trees: adopt it.
    Legacy,
}

fn classify(backend: Backend, recorded: &[(i64, bool)]) -> anyhow::Result<State> {
    if recorded.is_empty() || recorded.iter().any(|(v, _)| *v >= BASELINE) {
        return Ok(State::Current);
    }
    let legacy = match backend {
        Backend::Sqlite => LEGACY_SQLITE,
        Backend::Postgres => LEGACY_POSTGRES,
    };
    let versions: Vec<i64> = recorded.iter().map(|(v, _)| *v).collect();
    if versions == legacy && recorded.iter().all(|(_, ok)| *ok) {
        return Ok(State::Legacy);
    }
    let last = legacy.last().copied().unwrap_or_default();
    let failed: BTreeSet<i64> = recorded.iter().filter(|(_, ok)| !ok).map(|(v, _)| *v).collect();
    bail!(
        "this database was created by an earlier switchboard, whose migrations it has not finished: \
         it records versions {versions:?}{} of them, and they end at {last:04}. Start the previous \
         build against it once, so that it applies its migrations up to {last:04}; then start this \
         one, which takes over a database at {last:04} by itself",
        if failed.is_empty() { String::new() } else { format!(" ({failed:?} failed)") },
    )
}

/// Adopts a database complete on 0.1.0's trees (see the module's documentation); does nothing
/// to any other.
async fn adopt(db: &Db) -> anyhow::Result<()> {
    let backend = db.backend();
    if classify(backend, &recorded(db).await?)? != State::Legacy {
        return Ok(());
    }
    let migrator = migrator(backend);
    let counters = migrator
        .iter()
        .find(|m| m.version == REPORT_COUNTERS)
        .context("the embedded migrations lack the report counters")?;
    // SQLite: the write lock (BEGIN IMMEDIATE). PostgreSQL: a lock of its own, then the
    // versions again, which another node may have adopted meanwhile.
    let mut tx = db.begin().await?;
    if backend == Backend::Postgres {
        on_tx!(&mut tx, |c| sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
            .bind(ADOPT_LOCK_CLASS)
            .execute(c)
            .await
            .map(|_| ()))?;
    }
    let again: Vec<(i64, bool)> = on_tx!(&mut tx, |c| sqlx::query_as(VERSIONS).fetch_all(c).await)?;
    if classify(backend, &again)? != State::Legacy {
        tx.rollback().await?;
        return Ok(());
    }
    let drop_legacy = match backend {
        Backend::Sqlite => DROP_LEGACY_SQLITE,
        Backend::Postgres => DROP_LEGACY_POSTGRES,
    };
    on_tx!(&mut tx, |c| sqlx::raw_sql(drop_legacy).execute(c).await.map(|_| ()))
        .context("dropping the old report triggers")?;
    on_tx!(&mut tx, |c| sqlx::raw_sql(&counters.sql).execute(c).await.map(|_| ()))
        .context("creating the report triggers (0101)")?;
    // The baseline's versions replace the old ones; a later migration is left to the migrator.
    on_tx!(&mut tx, |c| sqlx::query("DELETE FROM _sqlx_migrations").execute(c).await.map(|_| ()))?;
    for m in migrator.iter().filter(|m| m.version <= REPORT_COUNTERS) {
        on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, 0)"
        )
        .bind(m.version)
        .bind(&*m.description)
        .bind(&*m.checksum)
        .execute(c)
        .await
        .map(|_| ()))?;
    }
    tx.commit().await?;
    tracing::info!("adopted a database of switchboard 0.1.0's migrations: report triggers replaced, baseline recorded");
    Ok(())
}

#[cfg(test)]
mod tests;
