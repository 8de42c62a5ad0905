//! Storage checks that run on both backends, and the schema parity between the two dialects.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::on_both;
use crate::support::*;

/// The SQLite and PostgreSQL migrations define the same tables and columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_define_the_same_columns() {
    let lite = TestDb::sqlite().await;
    let pg = TestDb::postgres().await;
    let switchboard::db::Db::Sqlite(lite_db) = &lite.db else { unreachable!() };
    let lp = &lite_db.pool;
    let switchboard::db::Db::Postgres(pp) = &pg.db else { unreachable!() };
    let lite_cols: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
    )
    .fetch_all(lp)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let pg_cols: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
    )
    .fetch_all(pp)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(!lite_cols.is_empty());
    assert_eq!(lite_cols, pg_cols, "migrations/sqlite and migrations/postgres drifted apart");
}

/// SQLite: the background checkpointer copies committed pages from the write-ahead log into
/// the database file, well before SQLite's own backstop (16,000 pages) would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpoints_in_the_background() {
    let t = TestDb::sqlite().await;
    let file = t.url.strip_prefix("sqlite://").unwrap().to_owned();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let job = tokio::spawn(t.db.clone().checkpoints(shutdown));
    let before = std::fs::metadata(&file).unwrap().len();
    // ~2 MiB (about 500 pages) committed: in the log until a checkpoint copies it over.
    let mut tx = t.db.begin().await.unwrap();
    switchboard::on_tx!(&mut tx, |c| {
        sqlx::query("CREATE TABLE ballast (b BLOB)").execute(&mut *c).await.unwrap();
        for _ in 0..64 {
            sqlx::query("INSERT INTO ballast VALUES (zeroblob(32768))").execute(&mut *c).await.unwrap();
        }
    });
    tx.commit().await.unwrap();
    eventually("a checkpoint copies the log into the database file", || async {
        (std::fs::metadata(&file).unwrap().len() >= before + (2 << 20)).then_some(())
    })
    .await;
    stop.send(true).unwrap();
    job.await.unwrap();
}

/// SQLite: an incoming message's contact is found by probing the identities' primary key for
/// its phone and user ids, not by reading every identity of the workspace (which SQLite did
/// for the lookup's `OR` of (kind, value) pairs: per message, a scan growing with the leads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_finds_a_contact_by_key() {
    let t = TestDb::sqlite().await;
    let switchboard::db::Db::Sqlite(s) = &t.db else { unreachable!() };
    let plan: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(&format!("EXPLAIN QUERY PLAN {}", switchboard::webhook::ingest::FIND_LEAD))
            .bind(Uuid::new_v4())
            .bind("15550100111")
            .bind("US.1")
            .bind("US.P")
            .bind(Uuid::new_v4())
            .fetch_all(&s.pool)
            .await
            .unwrap();
    let identities = plan.iter().map(|r| r.3.as_str()).find(|d| d.contains(" li ")).expect("a step for li");
    assert!(identities.contains("(workspace_id=? AND kind=? AND value=?)"), "{plan:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_statistics_follow_young_tables() {
    // A table that grew from nothing to 600 rows gets planner statistics within seconds
    // (an explicit ANALYZE: `last_analyze`; autovacuum's own would be `last_autoanalyze`).
    let t = TestDb::postgres().await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let job = tokio::spawn(t.db.clone().statistics(shutdown));
    let switchboard::db::Db::Postgres(pool) = &t.db else { unreachable!() };
    sqlx::query("CREATE TABLE ballast (n INTEGER)").execute(pool).await.unwrap();
    sqlx::query("INSERT INTO ballast SELECT generate_series(1, 600)").execute(pool).await.unwrap();
    eventually("the young table is analyzed", || async {
        let analyzed: Option<bool> = sqlx::query_scalar(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'ballast' AND schemaname = current_schema()",
        )
        .fetch_optional(pool)
        .await
        .unwrap();
        (analyzed == Some(true)).then_some(())
    })
    .await;
    let rows: f32 =
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'ballast'").fetch_one(pool).await.unwrap();
    assert_eq!(rows, 600.0, "the planner knows the table's size");
    stop.send(true).unwrap();
    job.await.unwrap();
}

on_both! {
    async fn events_get_increasing_cursors(t: TestDb) {
        use switchboard::events::{log, NewEvent, Work};
        let clock = switchboard::clock::Clock::default();
        let ws = uuid::Uuid::new_v4();
        let mut last = 0;
        for i in 0..3 {
            let mut work = Work::begin(&t.db, clock.now()).await.unwrap();
            work.emit(NewEvent::raw(ws, "lead.updated", serde_json::json!({"n": i})));
            work.commit(&Default::default()).await.unwrap();
            let id = log::bounds(&t.db).await.unwrap().unwrap().1;
            assert!(id > last, "cursor {id} after {last}");
            last = id;
        }
        // A rolled-back change leaves no event.
        let mut work = Work::begin(&t.db, clock.now()).await.unwrap();
        work.emit(NewEvent::raw(ws, "lead.updated", serde_json::json!({})));
        let _ = work.into_tx().await.unwrap(); // appended, then dropped: rolled back
        let count: i64 = switchboard::on_db!(&t.db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(p).await).unwrap();
        assert_eq!(count, 3);
    }

    async fn retention_deletes_old_rows_in_chunks(t: TestDb) {
        use switchboard::events::{log as events, NewEvent, Work};
        let clock = switchboard::clock::Clock::default();
        let now = clock.now();
        let ws = uuid::Uuid::new_v4();
        let count = |sql: &'static str| {
            let db = t.db.clone();
            async move { switchboard::on_db!(&db, |p| sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await).unwrap() }
        };
        // Live events: ten, pruned three per statement, all but the newest.
        let mut work = Work::begin(&t.db, now).await.unwrap();
        for i in 0..10 {
            work.emit(NewEvent::raw(ws, "lead.updated", serde_json::json!({"n": i})));
        }
        work.commit(&Default::default()).await.unwrap();
        let (_, newest) = events::bounds(&t.db).await.unwrap().unwrap();
        assert_eq!(events::prune_by(&t.db, now + chrono::Duration::days(1), 3).await.unwrap(), 9);
        assert_eq!(events::bounds(&t.db).await.unwrap(), Some((newest, newest)));

        // The webhook journal: old done entries go, two per statement; pending, failed and
        // recent ones stay.
        let old = now - chrono::Duration::days(8);
        let rows = [(old, "done"); 7].into_iter()
            .chain([(old, "pending"), (old, "failed"), (now, "done"), (now, "done")]);
        for (at, state) in rows {
            switchboard::on_db!(&t.db, |p| sqlx::query(
                "INSERT INTO webhook_events (id, received_at, signature_valid, body, state) VALUES ($1, $2, TRUE, $3, $4)"
            )
            .bind(Uuid::now_v7())
            .bind(at)
            .bind(b"{}".as_slice())
            .bind(state)
            .execute(p)
            .await
            .map(|_| ()))
            .unwrap();
        }
        let cutoff = now - chrono::Duration::days(7);
        assert_eq!(switchboard::webhook::journal::prune(&t.db, cutoff, 2).await.unwrap(), 7);
        assert_eq!(count("SELECT COUNT(*) FROM webhook_events WHERE state = 'done'").await, 2);
        assert_eq!(count("SELECT COUNT(*) FROM webhook_events").await, 4);
        assert_eq!(switchboard::webhook::journal::prune(&t.db, cutoff, 2).await.unwrap(), 0);
    }

    async fn bootstrap_twice_in_process(t: TestDb) {
        use switchboard::workspace::{bootstrap, Bootstrap};
        let clock = switchboard::clock::Clock::default();
        assert_eq!(bootstrap(&t.db, &clock, "W", "a@w.test", PASSWORD, None).await.unwrap(), Bootstrap::Created);
        assert_eq!(bootstrap(&t.db, &clock, "W", "a@w.test", PASSWORD, None).await.unwrap(), Bootstrap::AlreadyPresent);
        assert_eq!(bootstrap(&t.db, &clock, "W", "b@w.test", PASSWORD, None).await.unwrap(), Bootstrap::AdminAdded);
        let err = bootstrap(&t.db, &clock, "V", "a@w.test", PASSWORD, None).await.unwrap_err();
        assert_eq!(err.status(), reqwest::StatusCode::CONFLICT);
    }
}
