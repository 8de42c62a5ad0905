//! The test harness: fresh databases, servers on port 0, real HTTP, story-like helpers.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use switchboard::app::Running;
use switchboard::clock::Clock;
use switchboard::config::Config;
use switchboard::db::Db;
use tokio::time::Instant;
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const PASSWORD: &str = "correct horse battery";
pub const APP_SECRET: &str = "switchboard-test-app-secret";
pub const VERIFY_TOKEN: &str = "verify-me";

/// Runs each test body once on SQLite and once on PostgreSQL (`name::sqlite`, `name::postgres`).
#[macro_export]
macro_rules! on_both {
    ($(async fn $name:ident($db:ident: TestDb) $body:block)+) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($db: $crate::support::TestDb) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { run($crate::support::TestDb::sqlite().await).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { run($crate::support::TestDb::postgres().await).await }
        }
    )+};
}

/// A fresh database: a temporary SQLite file, or a new PostgreSQL database dropped afterwards.
pub struct TestDb {
    pub db: Db,
    pub url: String,
    pg: Option<(String, String)>,
}

pub fn pg_admin_url() -> String {
    std::env::var("SWITCHBOARD_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let path = std::env::temp_dir().join(format!("sbt-{}.db", Uuid::new_v4().simple()));
        let url = format!("sqlite://{}", path.display());
        let db = Db::connect(&url).await.expect("sqlite connects");
        db.migrate().await.expect("sqlite migrates");
        TestDb { db, url, pg: None }
    }

    /// Never skips: an unreachable PostgreSQL fails the test.
    pub async fn postgres() -> TestDb {
        let admin_url = pg_admin_url();
        let name = format!("sbt_{}", Uuid::new_v4().simple());
        let admin = Db::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin_url} is required for the tests (SWITCHBOARD_TEST_PG): {e}")
        });
        let Db::Postgres(pool) = &admin else { panic!("SWITCHBOARD_TEST_PG must be a postgres:// URL") };
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(pool).await.expect("create test database");
        pool.close().await;
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("SWITCHBOARD_TEST_PG needs a database path"),
        };
        let db = Db::connect(&url).await.expect("postgres connects");
        db.migrate().await.expect("postgres migrates");
        TestDb { db, url, pg: Some((admin_url, name)) }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg.take() {
            let db = self.db.clone();
            // A separate runtime: Drop can't await, and the test's runtime may be shutting down.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async move {
                    // Waits for the connections in use to come back. A PostgreSQL test on a
                    // single-threaded runtime never gives them back (the runtime is blocked
                    // here): it must use the multi-threaded one, as `on_both!` does.
                    if tokio::time::timeout(Duration::from_secs(10), db.close()).await.is_err() {
                        eprintln!("test database {name}: connections still in use after 10 s; dropped anyway");
                    }
                    if let Ok(Db::Postgres(pool)) = Db::connect(&admin_url).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&pool).await;
                        pool.close().await;
                    }
                });
            })
            .join();
        } else if let Some(path) = self.url.strip_prefix("sqlite://") {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        }
    }
}

/// A server under test and a client for it.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub base: String,
    pub client: Client,
    pub running: Option<Running>,
    pub db: Db,
    pub clock: Clock,
    pub workspace_id: Uuid,
    pub admin_token: String,
}

pub fn test_config(url: &str) -> Config {
    let mut c = Config::for_database(url);
    c.app_secret = Some(APP_SECRET.to_owned());
    c.verify_token = Some(VERIFY_TOKEN.to_owned());
    // Nothing listens on the discard port: tests that need the Graph API start a fake one.
    c.graph_url = "http://127.0.0.1:9".to_owned();
    // Media bytes of this server only, in the temporary directory.
    c.data_dir = std::env::temp_dir().join(format!("sbt-data-{}", Uuid::new_v4().simple()));
    c
}

/// Starts a server on a fresh port with a bootstrapped workspace and a logged-in admin.
pub async fn spawn_app(t: &TestDb) -> TestApp {
    spawn_app_with(t, test_config(&t.url)).await
}

pub async fn spawn_app_with(t: &TestDb, config: Config) -> TestApp {
    // The server's logs, shown for a failing test (or all with --nocapture), filtered by RUST_LOG.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let clock = Clock::default();
    switchboard::workspace::bootstrap(&t.db, &clock, "Acme", ADMIN_EMAIL, PASSWORD, Some("Ada Admin"))
        .await
        .expect("bootstrap");
    let running = switchboard::app::start_with(config, t.db.clone(), clock.clone()).await.expect("server starts");
    let addr = running.addr;
    let mut app = TestApp {
        addr,
        base: format!("http://{addr}"),
        client: Client::builder().timeout(Duration::from_secs(30)).build().expect("client"),
        running: Some(running),
        db: t.db.clone(),
        clock,
        workspace_id: Uuid::nil(),
        admin_token: String::new(),
    };
    let login = app.login(ADMIN_EMAIL, PASSWORD).await;
    app.admin_token = login["token"].as_str().expect("token").to_owned();
    app.workspace_id = login["user"]["workspace_id"].as_str().and_then(|s| Uuid::parse_str(s).ok()).expect("workspace");
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request")
    }

    /// POSTs headers announcing a `len`-byte body over a raw socket and sends none of it: the
    /// server must refuse from the `Content-Length` alone. (Streaming a real oversized body races
    /// the early refusal: the client can see a broken pipe before it reads the 413.)
    pub async fn announce_oversized(&self, path: &str, headers: &[(&str, &str)], len: usize) -> (StatusCode, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.expect("connect");
        let mut head =
            format!("POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {len}\r\nConnection: close\r\n", self.addr);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("send headers");
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
            .await
            .expect("the server answers without waiting for the body")
            .expect("read response");
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
        let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status line");
        (StatusCode::from_u16(code).expect("status"), serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// Calls as `token` and returns (status, JSON body or Null).
    pub async fn json(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let resp = self.call(method, path, Some(token), body).await;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.json(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.json(Method::POST, path, token, Some(body)).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        let resp = self
            .call(Method::POST, "/api/v1/auth/login", None, Some(json!({"email": email, "password": password})))
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "login as {email}");
        resp.json().await.expect("login json")
    }

    /// Creates an active member straight in the database and logs them in; returns (id, token).
    pub async fn member(&self, email: &str, permissions: Value) -> (Uuid, String) {
        let hash = switchboard::auth::password::hash(PASSWORD.to_owned()).await.expect("hash");
        let id = Uuid::new_v4();
        let now = self.clock.now();
        let perms: switchboard::policy::Permissions = serde_json::from_value(permissions).expect("permissions");
        switchboard::on_db!(&self.db, |p| sqlx::query(
            "INSERT INTO users (id, workspace_id, email, name, role, status, password_hash, permissions, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'member', 'active', $5, $6, $7, $7)"
        )
        .bind(id)
        .bind(self.workspace_id)
        .bind(email)
        .bind(email.split('@').next().unwrap_or("member"))
        .bind(&hash)
        .bind(sqlx::types::Json(perms))
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))
        .expect("insert member");
        let login = self.login(email, PASSWORD).await;
        (id, login["token"].as_str().expect("token").to_owned())
    }

    pub async fn create_lead(&self, name: &str, phone: &str) -> Value {
        let (status, body) = self.post("/api/v1/leads", &self.admin_token, json!({"name": name, "phone": phone})).await;
        assert_eq!(status, StatusCode::CREATED, "create lead: {body}");
        body
    }

    pub async fn connect_number(&self, phone_number_id: &str, display: &str, auto_import: bool) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/numbers",
                &self.admin_token,
                json!({"phone_number_id": phone_number_id, "display_phone_number": display,
                       "access_token": "EAAG-test-token", "auto_import_contacts": auto_import}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "connect number: {body}");
        body
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean shutdown");
        }
    }
}

/// Polls `probe` until it yields a value, failing with `what` after 30 seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// PostgreSQL deadlocks on purpose. [`Blocker::begin`] opens a session that takes the event-log
/// lock and looks for deadlocks only after a minute; the server's sessions look after the
/// default second. Once a server transaction waits for the event-log lock while holding
/// something, [`Blocker::close_the_circle`] asks for that something: a deadlock, which the
/// server's transaction loses.
pub struct Blocker<'a> {
    pool: &'a sqlx::PgPool,
    tx: sqlx::Transaction<'a, sqlx::Postgres>,
}

impl<'a> Blocker<'a> {
    pub async fn begin(db: &'a Db) -> Blocker<'a> {
        let Db::Postgres(pool) = db else { panic!("deadlocks are staged on PostgreSQL") };
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL deadlock_timeout = '60s'").execute(&mut *tx).await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(switchboard::db::EVENT_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .unwrap();
        Blocker { pool, tx }
    }

    /// Waits until a session of this database waits for the event-log lock, then runs `sql`
    /// (which must wait for that session) and rolls back. Only if `sql` came more than a
    /// second after the server's transaction began to wait, on a very busy machine, would
    /// that transaction's one deadlock check have passed already and this session be the
    /// victim, a minute later: then the server needed no second try, and this says so.
    pub async fn close_the_circle(mut self, sql: &str) {
        let pool = self.pool;
        eventually("a server transaction waits for the event-log lock", || async {
            let waiting: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                 AND objid::bigint = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
            )
            .bind(switchboard::db::EVENT_LOCK_KEY)
            .fetch_one(pool)
            .await
            .unwrap();
            waiting.then_some(())
        })
        .await;
        if let Err(e) = sqlx::query(sql).execute(&mut *self.tx).await {
            let code = e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned());
            assert_eq!(code.as_deref(), Some("40P01"), "{e}");
            eprintln!("the blocker, not the server, lost the deadlock: the retry was not exercised");
        }
        self.tx.rollback().await.unwrap();
    }
}

/// Asserts the contract's error shape and returns the code.
pub fn error_code(body: &Value) -> &str {
    assert!(body["error"]["message"].is_string(), "error JSON has a message: {body}");
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("error JSON has a code: {body}"))
}
