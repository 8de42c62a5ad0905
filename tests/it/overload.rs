//! Overload and database failure during live traffic. The rate half (twice the processing
//! rate: fast acknowledgements, bounded memory, the backlog drains) is a benchmark
//! (`benches/overload.rs`, figures in docs/benchmarks.md); here, PostgreSQL dropping every
//! connection of the server mid-traffic (as a restart does, without restarting the shared
//! cluster) loses no webhook and no event: sockets resume by cursor.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use switchboard::db::Db;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::*;
use crate::webhooks::text_payload;

const WEBHOOKS: usize = 60;
const DEADLINE: Duration = Duration::from_secs(60);

/// Ends every connection to the test database (the server's pools, its NOTIFY listener, the
/// journal writer's connection), from a connection to another database.
async fn terminate_backends(database: &str) -> u64 {
    let admin = Db::connect(&pg_admin_url()).await.expect("admin connects");
    let Db::Postgres(pool) = &admin else { unreachable!("a PostgreSQL URL") };
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_all(pool)
    .await
    .expect("terminate");
    pool.close().await;
    ended.into_iter().filter(|e| *e).count() as u64
}

/// Delivers a webhook as Meta does: again until it gets its 200 (a refused or failed delivery
/// is retried; processing is idempotent by wamid).
async fn deliver(app: &TestApp, body: &[u8]) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let status = app
            .client
            .post(app.url("/webhooks/whatsapp"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", switchboard::webhook::signature::sign(APP_SECRET.as_bytes(), body))
            .body(body.to_vec())
            .send()
            .await
            .map(|r| r.status());
        if status.as_ref().is_ok_and(|s| *s == StatusCode::OK) {
            return;
        }
        assert!(Instant::now() < deadline, "webhook never accepted: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads `message.created` frames until every wamid of `want` was seen, reconnecting after
/// the last cursor whenever the socket ends.
async fn hear_all(app: &TestApp, token: &str, start: i64, want: &BTreeSet<String>) -> (BTreeSet<String>, usize) {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = BTreeSet::new();
    let mut cursor = Some(start.to_string());
    let mut reconnects = 0;
    while !want.is_subset(&seen) {
        assert!(Instant::now() < deadline, "missing events: {:?}", want.difference(&seen).collect::<Vec<_>>());
        let query = cursor.as_ref().map(|c| format!("?after={c}")).unwrap_or_default();
        let mut req = format!("ws://{}/api/v1/live{query}", app.addr).into_client_request().expect("request");
        req.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).expect("header"));
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(req).await else {
            reconnects += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while !want.is_subset(&seen) {
            let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await else { break };
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(t.as_str()).expect("frame is JSON");
            if let Some(c) = v["cursor"].as_str() {
                cursor = Some(c.to_owned());
            }
            if v["type"] == "message.created"
                && let Some(w) = v["data"]["wamid"].as_str()
            {
                seen.insert(w.to_owned());
            }
        }
        reconnects += 1;
    }
    (seen, reconnects)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_connection_loss_mid_traffic_loses_no_event() {
    let t = TestDb::postgres().await;
    let database = t.url.rsplit('/').next().expect("database name").to_owned();
    let app = spawn_app(&t).await;
    app.connect_number("100200300400600", "15550100100", true).await;
    let want: BTreeSet<String> = (0..WEBHOOKS).map(|i| format!("wamid.pgloss.{i}")).collect();

    // From the log's end before the first webhook: every later event must arrive.
    let start = switchboard::events::log::bounds(&app.db).await.expect("bounds").map_or(0, |b| b.1);
    let listener = hear_all(&app, &app.admin_token, start, &want);
    let sender = async {
        let mut ended = 0;
        for i in 0..WEBHOOKS {
            if i == WEBHOOKS / 3 || i == 2 * WEBHOOKS / 3 {
                ended += terminate_backends(&database).await;
            }
            let from = format!("1555020{:04}", i % 7);
            deliver(&app, &text_payload(&format!("wamid.pgloss.{i}"), &from, 1_750_000_000 + i as i64, "hi")).await;
        }
        ended
    };
    let ((seen, _reconnects), ended) = tokio::join!(listener, sender);
    assert!(ended > 0, "the server had connections to end");
    assert!(want.is_subset(&seen));

    // Every message is stored exactly once.
    let stored = eventually("every message stored", || async {
        let n: Result<i64, _> = switchboard::on_db!(&app.db, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE wamid LIKE 'wamid.pgloss.%'"
        )
        .fetch_one(p)
        .await);
        n.ok().filter(|n| *n >= WEBHOOKS as i64)
    })
    .await;
    assert_eq!(stored, WEBHOOKS as i64);
}
