//! Storage checks that run on both backends, and the schema parity between the two dialects.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::on_both;
use crate::support::*;

/// The SQLite and PostgreSQL migrations define the same tables, columns (of corresponding
/// types and nullability), indexes, foreign keys and triggers. (src/db/migrate/tests.rs holds
/// the migration texts to the same; this checks what the databases made of them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_define_the_same_schema() {
    let lite = TestDb::sqlite().await;
    let pg = TestDb::postgres().await;
    let switchboard::db::Db::Sqlite(lite_db) = &lite.db else { unreachable!() };
    let lp = &lite_db.pool;
    let switchboard::db::Db::Postgres(pp) = &pg.db else { unreachable!() };
    // The full-text indexes are each backend's own (SQLite: the FTS5 tables search_fts and
    // lead_fts, their shadow tables, the leads' stable keys and the triggers that keep them;
    // PostgreSQL: GIN indexes).
    let lite_cols: Vec<(String, String, String, bool)> = sqlx::query_as(
        "SELECT m.name, p.name, p.type, p.\"notnull\" OR p.pk > 0 FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%' \
         AND m.name NOT LIKE 'search_fts%' AND m.name NOT LIKE 'lead_fts%' AND m.name <> 'lead_search_ids'",
    )
    .fetch_all(lp)
    .await
    .unwrap();
    let pg_cols: Vec<(String, String, String, bool)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'NO' FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
    )
    .fetch_all(pp)
    .await
    .unwrap();
    // SQLite's declared type -> the PostgreSQL types it stands for.
    let pg_types = |lite: &str| -> &[&str] {
        match lite {
            "BLOB" => &["uuid", "bytea"],
            "TEXT" => &["text", "jsonb", "timestamp with time zone", "date"],
            "INTEGER" => &["bigint", "integer"],
            "BIGINT" => &["bigint"],
            "BOOLEAN" => &["boolean"],
            _ => &[],
        }
    };
    let names = |cols: &[(String, String, String, bool)]| -> BTreeSet<(String, String)> {
        cols.iter().map(|(t, c, _, _)| (t.clone(), c.clone())).collect()
    };
    assert!(!lite_cols.is_empty());
    assert_eq!(names(&lite_cols), names(&pg_cols), "migrations/sqlite and migrations/postgres drifted apart");
    for (table, column, lite_type, lite_not_null) in &lite_cols {
        let (_, _, pg_type, pg_not_null) =
            pg_cols.iter().find(|(t, c, _, _)| t == table && c == column).expect("the same columns");
        assert!(pg_types(lite_type).contains(&pg_type.as_str()), "{table}.{column}: {lite_type} against {pg_type}");
        assert_eq!(lite_not_null, pg_not_null, "{table}.{column}: NOT NULL on one side only");
    }

    let set = |rows: Vec<(String, String)>| -> BTreeSet<(String, String)> { rows.into_iter().collect() };
    let lite_indexes =
        set(sqlx::query_as("SELECT tbl_name, name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .fetch_all(lp)
            .await
            .unwrap());
    let pg_indexes = set(sqlx::query_as(
        "SELECT tablename::text, indexname::text FROM pg_indexes WHERE schemaname = 'public' \
         AND indexname NOT IN (SELECT conname FROM pg_constraint) \
         AND indexname NOT IN ('search_docs_terms', 'leads_name_trgm', 'leads_phone_trgm')",
    )
    .fetch_all(pp)
    .await
    .unwrap());
    assert_eq!(lite_indexes, pg_indexes, "indexes");
    let lite_triggers = set(sqlx::query_as(
        "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger' AND name NOT LIKE 'search_fts%' \
         AND name NOT LIKE 'lead_fts%'",
    )
    .fetch_all(lp)
    .await
    .unwrap());
    let pg_triggers =
        set(sqlx::query_as("SELECT tgrelid::regclass::text, tgname::text FROM pg_trigger WHERE NOT tgisinternal")
            .fetch_all(pp)
            .await
            .unwrap());
    assert!(!lite_triggers.is_empty());
    assert_eq!(lite_triggers, pg_triggers, "triggers");
    let lite_fks: BTreeSet<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT m.name, f.\"from\", f.\"table\", f.\"to\", f.on_delete FROM sqlite_master m \
         JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
    )
    .fetch_all(lp)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let pg_fks: BTreeSet<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, a.attname::text, c.confrelid::regclass::text, f.attname::text, \
                CASE c.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' ELSE 'NO ACTION' END \
         FROM pg_constraint c \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         JOIN pg_attribute f ON f.attrelid = c.confrelid AND f.attnum = c.confkey[1] \
         WHERE c.contype = 'f' AND cardinality(c.conkey) = 1",
    )
    .fetch_all(pp)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(!lite_fks.is_empty());
    assert_eq!(lite_fks, pg_fks, "foreign keys");
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
        drop(work); // never committed: nothing of it stays
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

// A database created by the migrations the baseline replaced (0.1.0's 0001-0016, kept under
// tests/fixtures/legacy-migrations) is adopted at start-up: data and report counters kept, the
// report triggers replaced, the baseline's versions recorded.

mod legacy {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use chrono::{DateTime, Duration, NaiveDate, Utc};
    use sqlx::migrate::Migrator;
    use switchboard::db::{Backend, Db};
    use uuid::Uuid;

    use crate::support::TestDb;

    /// `run!(db, sql, binds…)`: runs one statement, panics on error.
    macro_rules! run {
        ($db:expr, $sql:expr $(, $b:expr)* $(,)?) => {
            switchboard::on_db!($db, |p| sqlx::query($sql)$(.bind($b))*.execute(p).await.map(|_| ())).unwrap()
        };
    }

    /// An empty database: a new SQLite file (removed on drop), or a PostgreSQL test database
    /// whose schema is emptied (TestDb drops it).
    struct Empty {
        db: Db,
        url: String,
        _pg: Option<TestDb>,
        file: Option<std::path::PathBuf>,
    }

    impl Drop for Empty {
        fn drop(&mut self) {
            if let Some(path) = &self.file {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
        }
    }

    async fn empty(backend: Backend) -> Empty {
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("sbt-legacy-{}.db", Uuid::new_v4().simple()));
                let url = format!("sqlite://{}", path.display());
                let db = Db::connect(&url).await.unwrap();
                Empty { db, url, _pg: None, file: Some(path) }
            }
            Backend::Postgres => {
                let t = TestDb::postgres().await;
                run!(&t.db, "DROP SCHEMA public CASCADE");
                run!(&t.db, "CREATE SCHEMA public");
                Empty { db: t.db.clone(), url: t.url.clone(), _pg: Some(t), file: None }
            }
        }
    }

    async fn legacy_migrator(backend: Backend, up_to: i64) -> Migrator {
        let dir = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-migrations").join(dir);
        let mut m = Migrator::new(path.as_path()).await.unwrap();
        m.migrations = m.migrations.iter().filter(|m| m.version <= up_to).cloned().collect::<Vec<_>>().into();
        m
    }

    async fn run_legacy(db: &Db, up_to: i64) {
        let m = legacy_migrator(db.backend(), up_to).await;
        match db {
            Db::Sqlite(s) => m.run(&s.pool).await.unwrap(),
            Db::Postgres(p) => m.run(p).await.unwrap(),
        }
    }

    struct World {
        ws: Uuid,
        member: Uuid,
        lead: Uuid,
        conv: Uuid,
        groups: [Uuid; 2],
        t0: DateTime<Utc>,
    }

    /// A workspace with a member, a lead in a group assigned to the member, its open chat
    /// assigned to the member, a message in (10 s after the lead), the member's reply (70.9 s)
    /// and a note by the member.
    async fn seed(db: &Db) -> World {
        let t0: DateTime<Utc> = "2025-03-01T10:00:00.250Z".parse().unwrap();
        let w = World {
            ws: Uuid::new_v4(),
            member: Uuid::new_v4(),
            lead: Uuid::new_v4(),
            conv: Uuid::new_v4(),
            groups: [Uuid::new_v4(), Uuid::new_v4()],
            t0,
        };
        let number = Uuid::new_v4();
        run!(db, "INSERT INTO workspaces (id, name, created_at) VALUES ($1, 'W', $2)", w.ws, t0);
        run!(
            db,
            "INSERT INTO users (id, workspace_id, email, name, role, status, created_at, updated_at) \
             VALUES ($1, $2, 'm@w.test', 'M', 'member', 'active', $3, $3)",
            w.member,
            w.ws,
            t0
        );
        run!(
            db,
            "INSERT INTO numbers (id, workspace_id, phone_number_id, display_phone_number, access_token, created_at) \
             VALUES ($1, $2, '100', '+1 555 0100', 'token', $3)",
            number,
            w.ws,
            t0
        );
        for (i, g) in w.groups.iter().enumerate() {
            run!(
                db,
                "INSERT INTO crm_groups (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4)",
                *g,
                w.ws,
                format!("G{i}"),
                t0
            );
        }
        run!(
            db,
            "INSERT INTO leads (id, workspace_id, name, phone, assignee_id, created_at, updated_at) \
             VALUES ($1, $2, 'Ada', '15550100111', $3, $4, $4)",
            w.lead,
            w.ws,
            w.member,
            t0
        );
        run!(db, "INSERT INTO lead_groups (lead_id, group_id) VALUES ($1, $2)", w.lead, w.groups[0]);
        run!(
            db,
            "INSERT INTO conversations (id, workspace_id, number_id, lead_id, contact_phone, status, assignee_id, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, '15550100111', 'open', $5, $6, $6)",
            w.conv,
            w.ws,
            number,
            w.lead,
            w.member,
            t0
        );
        message(db, &w, "in", None, t0 + Duration::seconds(10)).await;
        message(db, &w, "out", Some(w.member), t0 + Duration::milliseconds(70_900)).await;
        note(db, &w, t0 + Duration::seconds(80)).await;
        w
    }

    async fn message(db: &Db, w: &World, direction: &str, by: Option<Uuid>, at: DateTime<Utc>) {
        run!(
            db,
            "INSERT INTO messages (id, workspace_id, conversation_id, wamid, direction, type, text, status, \
             sent_by_user_id, created_at, received_at) VALUES ($1, $2, $3, $4, $5, 'text', 'hi', 'sent', $6, $7, $7)",
            Uuid::new_v4(),
            w.ws,
            w.conv,
            format!("wamid.{}", Uuid::new_v4().simple()),
            direction,
            by,
            at
        );
    }

    async fn note(db: &Db, w: &World, at: DateTime<Utc>) {
        run!(
            db,
            "INSERT INTO activities (id, workspace_id, lead_id, type, member_id, data, created_at, updated_at) \
             VALUES ($1, $2, $3, 'note', $4, '{}', $5, $5)",
            Uuid::new_v4(),
            w.ws,
            w.lead,
            w.member,
            at
        );
    }

    type Counters = [i64; 7];
    type DailyKey = (Uuid, Uuid, Uuid, NaiveDate, bool);

    /// report_lead_members of (lead, member): assigned, contacted, frs_sum, frs_count,
    /// replies, activities, open_conversations.
    async fn member_row(db: &Db, lead: Uuid, member: Uuid) -> Option<Counters> {
        let row: Option<(i64, i64, i64, i64, i64, i64, i64)> = switchboard::on_db!(db, |p| sqlx::query_as(
            "SELECT assigned, contacted, frs_sum, frs_count, replies, activities, open_conversations \
             FROM report_lead_members WHERE lead_id = $1 AND member_id = $2"
        )
        .bind(lead)
        .bind(member)
        .fetch_optional(p)
        .await)
        .unwrap();
        row.map(|r| [r.0, r.1, r.2, r.3, r.4, r.5, r.6])
    }

    /// report_daily, without buckets that sum to nothing.
    async fn daily(db: &Db) -> BTreeMap<DailyKey, Counters> {
        type Row = (Uuid, Uuid, Uuid, NaiveDate, bool, i64, i64, i64, i64, i64, i64, i64);
        let rows: Vec<Row> = switchboard::on_db!(db, |p| sqlx::query_as(
            "SELECT workspace_id, group_id, member_id, day, claimed, assigned, contacted, frs_sum, frs_count, \
             replies, activities, open_conversations FROM report_daily"
        )
        .fetch_all(p)
        .await)
        .unwrap();
        rows.into_iter()
            .map(|r| ((r.0, r.1, r.2, r.3, r.4), [r.5, r.6, r.7, r.8, r.9, r.10, r.11]))
            .filter(|(_, c)| c.iter().any(|n| *n != 0))
            .collect()
    }

    /// report_daily recounted from report_lead_members and lead_groups (the invariant 0101
    /// keeps): each row in "all" and in each group of its lead.
    async fn recount(db: &Db) -> BTreeMap<DailyKey, Counters> {
        type Row = (Uuid, Uuid, Uuid, NaiveDate, bool, i64, i64, i64, i64, i64, i64, i64);
        let rows: Vec<Row> = switchboard::on_db!(db, |p| sqlx::query_as(
            "SELECT lead_id, workspace_id, member_id, day, claimed, assigned, contacted, frs_sum, frs_count, \
             replies, activities, open_conversations FROM report_lead_members"
        )
        .fetch_all(p)
        .await)
        .unwrap();
        let memberships: Vec<(Uuid, Uuid)> =
            switchboard::on_db!(db, |p| sqlx::query_as("SELECT lead_id, group_id FROM lead_groups").fetch_all(p).await)
                .unwrap();
        let mut out: BTreeMap<DailyKey, Counters> = BTreeMap::new();
        for r in rows {
            let groups =
                std::iter::once(Uuid::nil()).chain(memberships.iter().filter(|(l, _)| *l == r.0).map(|(_, g)| *g));
            for g in groups {
                let sum = out.entry((r.1, g, r.2, r.3, r.4)).or_default();
                for (s, n) in sum.iter_mut().zip([r.5, r.6, r.7, r.8, r.9, r.10, r.11]) {
                    *s += n;
                }
            }
        }
        out.retain(|_, c| c.iter().any(|n| *n != 0));
        out
    }

    /// What a database's schema consists of, one line per column, index, constraint, trigger
    /// and function, to compare an adopted database with a new one.
    async fn schema(db: &Db) -> BTreeSet<String> {
        let sql: &[&str] = match db.backend() {
            Backend::Sqlite => &[
                "SELECT 'column ' || m.name || '.' || p.name || ' ' || p.type || ' notnull=' || p.\"notnull\" \
                 || ' default=' || IFNULL(p.dflt_value, '') || ' pk=' || p.pk \
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table'",
                "SELECT 'table ' || name || ' without rowid=' || (sql LIKE '%WITHOUT ROWID%') \
                 FROM sqlite_master WHERE type = 'table'",
                "SELECT type || ' ' || name || ' on ' || tbl_name || ': ' || IFNULL(sql, '') \
                 FROM sqlite_master WHERE type IN ('index', 'trigger')",
                "SELECT 'foreign key ' || m.name || '.' || f.\"from\" || ' -> ' || f.\"table\" || '.' || f.\"to\" \
                 || ' on delete ' || f.on_delete FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f \
                 WHERE m.type = 'table'",
            ],
            Backend::Postgres => &[
                "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
                 || ' ' || COALESCE(column_default, '') || ' ' || is_identity \
                 FROM information_schema.columns WHERE table_schema = current_schema()",
                "SELECT 'attribute ' || c.relname || '.' || a.attname || ' statistics=' || a.attstattarget \
                 || ' storage=' || a.attstorage::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND a.attnum > 0",
                "SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = current_schema()",
                "SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ': ' || pg_get_constraintdef(oid) \
                 FROM pg_constraint WHERE connamespace = current_schema()::regnamespace",
                "SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal",
                "SELECT 'function ' || pg_get_functiondef(oid) FROM pg_proc \
                 WHERE pronamespace = current_schema()::regnamespace",
            ],
        };
        let mut out = BTreeSet::new();
        for q in sql {
            let lines: Vec<String> = switchboard::on_db!(db, |p| sqlx::query_scalar(q).fetch_all(p).await).unwrap();
            out.extend(lines);
        }
        out
    }

    async fn versions(db: &Db) -> Vec<(i64, String, Vec<u8>, String)> {
        switchboard::on_db!(db, |p| sqlx::query_as(
            "SELECT version, description, checksum, CAST(installed_on AS TEXT) FROM _sqlx_migrations ORDER BY version"
        )
        .fetch_all(p)
        .await)
        .unwrap()
    }

    async fn adopts(backend: Backend) {
        let e = empty(backend).await;
        let db = e.db.clone();
        run_legacy(&db, 16).await;
        let w = seed(&db).await;
        // Before: as the old triggers counted. First response: from the lead's creation
        // (10:00:00.25, before the inbound message) to the reply (10:01:11.15), in whole
        // seconds of each: 71.
        let expected: Counters = [1, 1, 71, 1, 1, 1, 1];
        assert_eq!(member_row(&db, w.lead, w.member).await, Some(expected));
        let day = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let before = daily(&db).await;
        assert_eq!(
            before,
            BTreeMap::from([
                ((w.ws, Uuid::nil(), w.member, day, true), expected),
                ((w.ws, w.groups[0], w.member, day, true), expected),
            ])
        );

        db.migrate().await.expect("adopts the old database");

        // The baseline's versions, with the checksums of the embedded files.
        let embedded: Vec<(i64, String, Vec<u8>)> = switchboard::db::migrate::migrator(backend)
            .iter()
            .map(|m| (m.version, m.description.to_string(), m.checksum.to_vec()))
            .collect();
        let recorded = versions(&db).await;
        assert_eq!(recorded.iter().map(|(v, d, c, _)| (*v, d.clone(), c.clone())).collect::<Vec<_>>(), embedded);
        // The baseline first; later files run on the adopted database like on any other.
        assert_eq!(embedded.iter().map(|m| m.0).take(2).collect::<Vec<_>>(), [100, 101]);
        // Data and counters as they were.
        let name: String = switchboard::on_db!(&db, |p| sqlx::query_scalar("SELECT name FROM leads WHERE id = $1")
            .bind(w.lead)
            .fetch_one(p)
            .await)
        .unwrap();
        assert_eq!(name, "Ada");
        let messages: i64 =
            switchboard::on_db!(&db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM messages").fetch_one(p).await)
                .unwrap();
        assert_eq!(messages, 2);
        // The messages stored before are in the search index (0103's backfill).
        let indexed: i64 = switchboard::on_db!(&db, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM search_docs WHERE terms = 'hi' AND message_id IS NOT NULL"
        )
        .fetch_one(p)
        .await)
        .unwrap();
        assert_eq!(indexed, 2);
        assert_eq!(member_row(&db, w.lead, w.member).await, Some(expected));
        assert_eq!(daily(&db).await, before);

        // The schema of a new database (SQLite keeps two foreign keys 0100 dropped: see
        // src/db/adopt_sqlite.sql).
        let fresh = match backend {
            Backend::Sqlite => TestDb::sqlite().await,
            Backend::Postgres => TestDb::postgres().await,
        };
        let (adopted, new) = (schema(&db).await, schema(&fresh.db).await);
        assert!(new.iter().any(|l| l.contains("report_message_reply")), "{new:?}");
        assert_eq!(new.difference(&adopted).collect::<Vec<_>>(), Vec::<&String>::new(), "missing after adoption");
        let extra: Vec<&String> = adopted.difference(&new).collect();
        match backend {
            Backend::Sqlite => assert_eq!(
                extra,
                [
                    "foreign key activities.workspace_id -> workspaces.id on delete CASCADE",
                    "foreign key lead_identities.workspace_id -> workspaces.id on delete CASCADE",
                ]
            ),
            Backend::Postgres => assert_eq!(extra, Vec::<&String>::new(), "left over after adoption"),
        }

        // The new triggers count on: another reply and note, the chat closed, the lead in a
        // second group, a second lead assigned later, then the first lead deleted.
        message(&db, &w, "out", Some(w.member), w.t0 + Duration::seconds(200)).await;
        note(&db, &w, w.t0 + Duration::seconds(210)).await;
        run!(&db, "UPDATE conversations SET status = 'closed' WHERE id = $1", w.conv);
        run!(&db, "INSERT INTO lead_groups (lead_id, group_id) VALUES ($1, $2)", w.lead, w.groups[1]);
        assert_eq!(member_row(&db, w.lead, w.member).await, Some([1, 1, 71, 1, 2, 2, 0]));
        assert_eq!(daily(&db).await, recount(&db).await);
        assert_eq!(daily(&db).await.len(), 3);
        let second = Uuid::new_v4();
        let t1 = w.t0 + Duration::days(1);
        run!(
            &db,
            "INSERT INTO leads (id, workspace_id, name, phone, created_at, updated_at) VALUES ($1, $2, 'Bo', '15550100222', $3, $3)",
            second,
            w.ws,
            t1
        );
        assert_eq!(member_row(&db, second, w.member).await, None);
        run!(&db, "UPDATE leads SET assignee_id = $1 WHERE id = $2", w.member, second);
        assert_eq!(member_row(&db, second, w.member).await, Some([1, 0, 0, 0, 0, 0, 0]));
        assert_eq!(daily(&db).await, recount(&db).await);
        run!(&db, "DELETE FROM leads WHERE id = $1", w.lead);
        assert_eq!(member_row(&db, w.lead, w.member).await, None);
        assert_eq!(
            daily(&db).await,
            BTreeMap::from([((w.ws, Uuid::nil(), w.member, t1.date_naive(), true), [1, 0, 0, 0, 0, 0, 0])])
        );

        // A second start changes nothing.
        let (schema_before, counters_before) = (schema(&db).await, daily(&db).await);
        db.migrate().await.expect("a second start");
        assert_eq!(versions(&db).await, recorded);
        assert_eq!(schema(&db).await, schema_before);
        assert_eq!(daily(&db).await, counters_before);
        drop(fresh);
        db.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_database_is_adopted() {
        adopts(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_database_is_adopted() {
        adopts(Backend::Postgres).await;
    }

    /// Nodes starting together: one adopts, the other finds the database adopted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_nodes_adopt_once() {
        let e = empty(Backend::Postgres).await;
        let db = e.db.clone();
        run_legacy(&db, 16).await;
        let other = Db::connect(&e.url).await.unwrap();
        let (a, b) = tokio::join!(db.migrate(), other.migrate());
        a.unwrap();
        b.unwrap();
        let embedded: Vec<i64> =
            switchboard::db::migrate::migrator(Backend::Postgres).iter().map(|m| m.version).collect();
        assert_eq!(&embedded[..2], [100, 101]);
        assert_eq!(versions(&db).await.iter().map(|v| v.0).collect::<Vec<_>>(), embedded);
        other.close().await;
    }

    /// A database the old migrations left half-way is refused, untouched, with what to do.
    async fn refuses_unfinished(backend: Backend) {
        let e = empty(backend).await;
        let db = e.db.clone();
        run_legacy(&db, 7).await;
        let before = versions(&db).await;
        let err = db.migrate().await.expect_err("an unfinished old database is refused").to_string();
        assert!(err.contains("Start the previous build"), "{err}");
        assert!(err.contains("0016"), "{err}");
        assert_eq!(versions(&db).await, before);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_unfinished_database_is_refused() {
        refuses_unfinished(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_unfinished_database_is_refused() {
        refuses_unfinished(Backend::Postgres).await;
    }
}
