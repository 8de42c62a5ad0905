//! Running it in production: metrics on their own listener, forwarded headers only from
//! trusted proxies, access tokens encrypted at rest, backups while serving.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::clock::Clock;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::live::live;
use crate::on_both;
use crate::outbox::FakeGraph;
use crate::support::*;
use crate::webhooks::text_payload;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes
const NEW_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="; // 32 bytes

/// The sum of the samples of `name` whose labels include every one of `labels` (`k="v"`).
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        if metric == name && labels.iter().all(|l| rest.contains(l)) {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    found
}

async fn scrape(at: SocketAddr) -> String {
    let resp = reqwest::get(format!("http://{at}/metrics")).await.expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.expect("metrics text")
}

/// Number A, Priya's lead, and her message in: returns her conversation's id.
async fn chat_with_priya(app: &TestApp) -> String {
    app.connect_number("100200300400600", "15550100100", false).await;
    app.create_lead("Priya", "+15550100111").await;
    let now = app.clock.now().timestamp();
    assert_eq!(app.signed_webhook(&text_payload("wamid.in.1", "15550100111", now - 60, "Hi!")).await, StatusCode::OK);
    app.webhooks_processed().await;
    let (_, convs) = app.get("/api/v1/conversations", &app.admin_token).await;
    let conv = convs["conversations"][0]["id"].as_str().expect("a conversation").to_owned();
    let me = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].clone();
    let (status, body) =
        app.post(&format!("/api/v1/conversations/{conv}/assign"), &app.admin_token, json!({"assignee_id": me})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    conv
}

async fn reply(app: &TestApp, conv: &str, text: &str) -> Value {
    let (status, msg) = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            &app.admin_token,
            json!({"type": "text", "text": text}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{msg}");
    msg
}

on_both! {
    async fn metrics_move_after_a_webhook_and_a_send(t: TestDb) {
        let graph = FakeGraph::start().await;
        let mut config = test_config(&t.url);
        config.graph_url = graph.url.clone();
        config.metrics_listen = Some("127.0.0.1:0".to_owned());
        let app = spawn_app_with(&t, config).await;
        let at = app.running.as_ref().unwrap().metrics_addr.expect("a metrics listener");
        assert_ne!(at, app.addr, "metrics have a listener of their own");
        let (status, _) = app.get("/metrics", &app.admin_token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "never on the public listener");

        // The admin watches live; Priya writes in.
        let _socket = live(&app, &app.admin_token, None).await;
        let before = scrape(at).await;
        let conv = chat_with_priya(&app).await;
        let after_webhook = eventually("the webhook is counted and delivered live", || async {
            let text = scrape(at).await;
            let lag = sample(&text, "switchboard_live_delivery_lag_seconds_count", &[]).unwrap_or(0.0);
            (lag > sample(&before, "switchboard_live_delivery_lag_seconds_count", &[]).unwrap_or(0.0)).then_some(text)
        }).await;
        let received = |text: &str| sample(text, "switchboard_webhooks_received_total", &[]).unwrap_or(0.0);
        assert!(received(&after_webhook) >= received(&before) + 1.0, "{after_webhook}");
        assert!(sample(&after_webhook, "switchboard_live_connections", &[]).unwrap() >= 1.0);
        assert_eq!(sample(&after_webhook, "switchboard_webhook_journal_pending", &[]), Some(0.0));
        assert_eq!(sample(&after_webhook, "switchboard_webhook_journal_oldest_pending_seconds", &[]), Some(0.0));
        assert!(sample(&after_webhook, "switchboard_db_pool_max", &[]).unwrap() >= 1.0);

        // The admin replies: the send is counted by its route template, never the raw path.
        let sends = |text: &str| sample(text, "switchboard_http_requests_total",
            &[r#"route="/api/v1/conversations/{id}/messages""#, r#"status="202""#]).unwrap_or(0.0);
        reply(&app, &conv, "Hello Priya").await;
        eventually("the reply reaches the Graph API", || async { (!graph.requests().is_empty()).then_some(()) }).await;
        let after_send = scrape(at).await;
        assert!(sends(&after_send) >= sends(&after_webhook) + 1.0, "{after_send}");
        assert!(!after_send.contains(&conv), "no raw path (with an id) becomes a label");
        assert!(sample(&after_send, "switchboard_http_request_duration_seconds_count",
            &[r#"route="/api/v1/conversations/{id}/messages""#]).unwrap() >= 1.0);
        assert!(sample(&after_send, "switchboard_outbox_pending", &[]).is_some());
        assert!(sample(&after_send, "switchboard_outbox_oldest_pending_seconds", &[]).is_some());
    }

    async fn forwarded_headers_are_ignored_from_an_untrusted_peer(t: TestDb) {
        // No trusted proxies: the test client (127.0.0.1) is a stranger who may write anything.
        let app = spawn_app(&t).await;
        // A cookie-authenticated change whose Origin only matches the forwarded host is cross-origin.
        assert_eq!(logout_via_proxy(&app).await, StatusCode::FORBIDDEN);
        assert_eq!(live_via_proxy(&app).await, 403);
        for _ in 0..5 {
            assert_eq!(login_from(&app, "203.0.113.5", "wrong password").await, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(login_from(&app, "203.0.113.5", "wrong password").await, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(login_from(&app, "198.51.100.7", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS,
            "a made-up X-Forwarded-For does not make another client");
    }

    async fn forwarded_headers_are_honoured_from_a_trusted_proxy(t: TestDb) {
        let mut config = test_config(&t.url);
        config.trusted_proxies = Some("10.0.0.0/8, 127.0.0.1/32, ::1".to_owned());
        let app = spawn_app_with(&t, config).await;
        for _ in 0..5 {
            assert_eq!(login_from(&app, "203.0.113.5", "wrong password").await, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(login_from(&app, "203.0.113.5", "wrong password").await, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(login_from(&app, "198.51.100.7", PASSWORD).await, StatusCode::OK,
            "a stranger's guesses never slow the owner signing in from elsewhere");
        assert_eq!(logout_via_proxy(&app).await, StatusCode::NO_CONTENT);
        assert_eq!(live_via_proxy(&app).await, 101);
    }

    async fn access_tokens_are_encrypted_at_rest(t: TestDb) {
        let graph = FakeGraph::start().await;
        let mut config = test_config(&t.url);
        config.graph_url = graph.url.clone();
        // Number A was connected before there was a key.
        let mut app = spawn_app_with(&t, config.clone()).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        assert_eq!(stored_tokens(&app).await, ["EAAG-test-token"]);
        app.stop().await;

        // With a key, the plaintext token is encrypted at start, and new ones as they come.
        config.secret_key = Some(KEY.to_owned());
        let mut app = spawn_app_with(&t, config.clone()).await;
        let tokens = stored_tokens(&app).await;
        assert!(tokens.iter().all(|t| t.starts_with("enc:v1:") && !t.contains("EAAG")), "{tokens:?}");
        let conv = chat_with_priya_on_a(&app).await;
        app.connect_number("100200300400700", "15550100200", false).await;
        let tokens = stored_tokens(&app).await;
        assert_eq!(tokens.len(), 2);
        assert!(tokens.iter().all(|t| t.starts_with("enc:v1:") && !t.contains("EAAG")), "{tokens:?}");
        // Sends still carry the real token.
        reply(&app, &conv, "Hello").await;
        eventually("the reply reaches the Graph API", || async { (!graph.requests().is_empty()).then_some(()) }).await;
        assert_eq!(graph.requests()[0].auth, "Bearer EAAG-test-token");
        app.stop().await;

        // Without the key, or with another one, the server refuses to start and says why.
        let refused = |key: Option<&str>| {
            let mut c = config.clone();
            c.secret_key = key.map(str::to_owned);
            let db = t.db.clone();
            async move {
                match switchboard::app::start_with(c, db, Clock::default()).await {
                    Ok(_) => panic!("a server started with tokens it cannot open"),
                    Err(e) => e.to_string(),
                }
            }
        };
        let why = refused(None).await;
        assert!(why.contains("encrypted") && why.contains("SWITCHBOARD_SECRET_KEY"), "{why}");
        let why = refused(Some(NEW_KEY)).await;
        assert!(why.contains("does not open"), "{why}");

        // rotate-key re-encrypts with a new key; then only the new key starts the server.
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["rotate-key", "--new-key", NEW_KEY])
            .env("DATABASE_URL", &t.url)
            .env("SWITCHBOARD_SECRET_KEY", KEY)
            .output()
            .await
            .expect("run rotate-key");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("2 access token(s) re-encrypted"));
        assert!(refused(Some(KEY)).await.contains("does not open"));
        config.secret_key = Some(NEW_KEY.to_owned());
        let app = spawn_app_with(&t, config).await;
        reply(&app, &conv, "Still here").await;
        eventually("the second reply goes out", || async { (graph.requests().len() == 2).then_some(()) }).await;
        assert_eq!(graph.requests()[1].auth, "Bearer EAAG-test-token");
    }
}

/// Priya writes to number A (connected already).
async fn chat_with_priya_on_a(app: &TestApp) -> String {
    app.create_lead("Priya", "+15550100111").await;
    let now = app.clock.now().timestamp();
    assert_eq!(app.signed_webhook(&text_payload("wamid.in.1", "15550100111", now - 60, "Hi!")).await, StatusCode::OK);
    app.webhooks_processed().await;
    let (_, convs) = app.get("/api/v1/conversations", &app.admin_token).await;
    let conv = convs["conversations"][0]["id"].as_str().expect("a conversation").to_owned();
    let me = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].clone();
    let (status, body) =
        app.post(&format!("/api/v1/conversations/{conv}/assign"), &app.admin_token, json!({"assignee_id": me})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    conv
}

async fn stored_tokens(app: &TestApp) -> Vec<String> {
    switchboard::on_db!(&app.db, |p| sqlx::query_scalar("SELECT access_token FROM numbers ORDER BY created_at")
        .fetch_all(p)
        .await)
    .expect("tokens")
}

/// Signs in as the admin with `password`, as if through a proxy that heard the client at `client`.
async fn login_from(app: &TestApp, client: &str, password: &str) -> StatusCode {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", client)
        .json(&json!({"email": ADMIN_EMAIL, "password": password}))
        .send()
        .await
        .expect("login")
        .status()
}

/// A cookie-authenticated logout from a browser at https://inbox.example.com, as a proxy
/// forwards it (the Host it sends on is its own).
async fn logout_via_proxy(app: &TestApp) -> StatusCode {
    let token = app.login(ADMIN_EMAIL, PASSWORD).await["token"].as_str().unwrap().to_owned();
    app.client
        .request(Method::POST, app.url("/api/v1/auth/logout"))
        .header("cookie", format!("{}={token}", switchboard::auth::SESSION_COOKIE))
        .header("origin", "https://inbox.example.com")
        .header("x-forwarded-host", "inbox.example.com")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("logout")
        .status()
}

/// The same for the live socket; returns the HTTP status of the answer to the upgrade.
async fn live_via_proxy(app: &TestApp) -> u16 {
    let token = app.login(ADMIN_EMAIL, PASSWORD).await["token"].as_str().unwrap().to_owned();
    let mut req = format!("ws://{}/api/v1/live", app.addr).into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("cookie", HeaderValue::from_str(&format!("{}={token}", switchboard::auth::SESSION_COOKIE)).unwrap());
    h.insert("origin", HeaderValue::from_static("https://inbox.example.com"));
    h.insert("x-forwarded-host", HeaderValue::from_static("inbox.example.com"));
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// Webhooks pour in while `switchboard backup` copies the database; the copy is consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copies_a_sqlite_database_under_write_load() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    app.connect_number("100200300400600", "15550100100", true).await;
    let out = std::env::temp_dir().join(format!("sbt-backup-{}.db", uuid::Uuid::new_v4().simple()));
    let sent = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    let load = async {
        let now = app.clock.now().timestamp();
        let mut i = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let from = format!("1555020{:04}", i % 50);
            assert_eq!(
                app.signed_webhook(&text_payload(&format!("wamid.load.{i}"), &from, now, "load")).await,
                StatusCode::OK
            );
            sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            i += 1;
        }
    };
    let backup = async {
        eventually("writes are under way", || async {
            (sent.load(std::sync::atomic::Ordering::SeqCst) >= 30
                && app.count("SELECT COUNT(*) FROM messages").await > 0)
                .then_some(())
        })
        .await;
        let result = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["backup", "--out", out.to_str().unwrap()])
            .env("DATABASE_URL", &t.url)
            .output()
            .await
            .expect("run backup");
        // Keep writing a little after the copy, then stop.
        tokio::time::sleep(Duration::from_millis(200)).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        result
    };
    let ((), result) = tokio::join!(load, backup);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert!(String::from_utf8_lossy(&result.stdout).contains("integrity check: ok"));
    switchboard::backup::check(&out).await.expect("the copy passes PRAGMA integrity_check");
    let copy = switchboard::db::Db::connect(&format!("sqlite://{}", out.display())).await.expect("the copy opens");
    let copied: i64 =
        switchboard::on_db!(&copy, |p| sqlx::query_scalar("SELECT COUNT(*) FROM messages").fetch_one(p).await).unwrap();
    assert!(copied > 0, "the copy holds the messages written before it");
    copy.close().await;
    // It never overwrites a file.
    let again = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["backup", "--out", out.to_str().unwrap()])
        .env("DATABASE_URL", &t.url)
        .output()
        .await
        .unwrap();
    assert!(!again.status.success());
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", out.display()));
    }
}

#[tokio::test]
async fn backup_of_postgresql_points_to_pg_dump() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["backup", "--out", "/tmp/never-written.db"])
        .env("DATABASE_URL", pg_admin_url())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
    assert!(!std::path::Path::new("/tmp/never-written.db").exists());
}

/// Starts the real binary as another node on `url`; returns it and its address.
fn spawn_node(url: &str) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .env("DATABASE_URL", url)
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start a node");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("the node logs its address");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    (child, addr)
}

/// Two nodes on one PostgreSQL database: Mia's socket is on node A, assignment runs on node B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_shared_by_nodes_and_a_dead_node_stops_counting() {
    use switchboard::live::presence::Availability;
    let t = TestDb::postgres().await;
    let b = spawn_app(&t).await;
    let (mia, token) = b.member("mia@example.com", json!({})).await;
    let admin = b.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].clone();
    let (status, body) = b
        .json(
            Method::PUT,
            "/api/v1/assignment",
            &b.admin_token,
            Some(json!({"mode": "round_robin", "only_available": true,
            "members": [{"member_id": mia, "enabled": true}, {"member_id": admin, "enabled": false}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Mia opens the inbox on node A only.
    let (mut node_a, a_addr) = spawn_node(&t.url);
    let mut req = format!("ws://{a_addr}/api/v1/live").into_client_request().unwrap();
    req.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    let (_socket, _) = tokio_tungstenite::connect_async(req).await.expect("Mia connects to node A");

    // Node B counts her as available and gives her a new lead.
    let presence = b.running.as_ref().unwrap().state.presence.clone();
    eventually("node B sees Mia available", || async {
        (presence.availability(mia) == Availability::Available).then_some(())
    })
    .await;
    assert_eq!(presence.local(mia), Availability::Offline, "she has no socket on node B");
    let lead = b.create_lead("Lee", "+15550100123").await;
    assert_eq!(lead["assignee_id"], json!(mia), "{lead}");

    // Node A dies without a word. Once its last heartbeat is older than the stale limit (30 s,
    // moved on node B's clock here), she no longer counts.
    node_a.kill().expect("kill node A");
    node_a.wait().expect("node A is gone");
    b.clock.advance(switchboard::live::presence_sync::STALE_AFTER + chrono::Duration::seconds(5));
    eventually("node B stops counting Mia", || async {
        (presence.availability(mia) == Availability::Offline).then_some(())
    })
    .await;
    let lead = b.create_lead("Lou", "+15550100124").await;
    assert_eq!(lead["assignee_id"], Value::Null, "nobody available: the lead waits in the pool");
}
