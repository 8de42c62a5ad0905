//! Live-updates benchmark: server memory per idle websocket, and delivery latency from an API
//! change (HTTP request sent) to the websocket frame at a steady event rate.
//!
//! Runs the release server binary as a child process (so its RSS is its own) on a fresh
//! database, seeds members, tokens and leads directly, then:
//! 1. connects `--idle` sockets (one member's token: one presence change) and reports the
//!    server's RSS growth per socket;
//! 2. closes them, connects `--agents` sockets (one member each, each assigned one lead) plus
//!    one admin socket, then at `--rate` per second for `--seconds` either POSTs a signed
//!    webhook carrying one text message from one of those leads (`--via webhook`, the default:
//!    journal, processing, event log, fan-out) or sends `PATCH /api/v1/leads/{id}`
//!    (`--via patch`), and reports request → frame latency (p50/p99) on the agents' sockets
//!    (each sees only its own lead's chat) and on the admin's (sees all). Via webhooks, a
//!    warm-up phase first sends each agent's first message at the same rate (each creates that
//!    agent's chat); it is reported on its own line, apart from the steady state.
//!
//! `cargo bench --bench live -- --idle 20000 --agents 2000 --rate 1000 --seconds 10`
//! `DATABASE_URL=postgres://…/empty_db cargo bench --bench live` for PostgreSQL;
//! `SWITCHBOARD_BIN=path` runs that server binary instead of this build's.
//! Sockets need file descriptors: `ulimit -n` must exceed `--idle` (client and server each
//! hold one per socket).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::Mutex;
use switchboard::clock::Clock;
use switchboard::db::Db;
use switchboard::on_db;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use uuid::Uuid;

struct Args {
    idle: usize,
    agents: usize,
    rate: u64,
    seconds: u64,
    /// Admin sockets (each sees every message), besides the agents'.
    admins: usize,
    webhook: bool,
}

fn args() -> Args {
    let mut a = Args { idle: 5000, agents: 2000, rate: 1000, seconds: 10, admins: 20, webhook: true };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let val = || argv.get(i + 1).and_then(|v| v.parse::<u64>().ok()).expect("a number after the flag");
        match argv[i].as_str() {
            "--idle" => a.idle = val() as usize,
            "--agents" => a.agents = val() as usize,
            "--rate" => a.rate = val(),
            "--seconds" => a.seconds = val(),
            "--admins" => a.admins = (val() as usize).max(1),
            "--via" => {
                a.webhook = match argv.get(i + 1).map(String::as_str) {
                    Some("webhook") => true,
                    Some("patch") => false,
                    _ => panic!("--via webhook|patch"),
                }
            }
            _ => {
                i += 1; // cargo passes --bench
                continue;
            }
        }
        i += 2;
    }
    a
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Members with one token each, and for each member one lead assigned to them.
async fn seed(db: &Db, workspace: Uuid, n: usize) -> Vec<(String, Uuid)> {
    let now = Clock::default().now();
    let mut out = Vec::with_capacity(n);
    let empty = sqlx::types::Json(json!({}));
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let rows: Vec<(Uuid, Uuid, String, Vec<u8>, usize)> = chunk
            .iter()
            .map(|i| {
                let (token, hash) = switchboard::auth::token::generate();
                (Uuid::new_v4(), Uuid::new_v4(), token, hash, *i)
            })
            .collect();
        let mut tx = db.begin().await.expect("begin");
        switchboard::on_tx!(&mut tx, |c| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO users (id, workspace_id, email, name, role, status, permissions, created_at, updated_at) ",
            );
            q.push_values(&rows, |mut b, r| {
                b.push_bind(r.0)
                    .push_bind(workspace)
                    .push_bind(format!("agent-{}@bench.test", r.0.simple()))
                    .push_bind("agent")
                    .push_bind("member")
                    .push_bind("active")
                    .push_bind(empty.clone())
                    .push_bind(now)
                    .push_bind(now);
            });
            q.build().execute(&mut *c).await.expect("users");
            let mut q = sqlx::QueryBuilder::new("INSERT INTO auth_tokens (token_hash, user_id, created_at) ");
            q.push_values(&rows, |mut b, r| {
                b.push_bind(r.3.clone()).push_bind(r.0).push_bind(now);
            });
            q.build().execute(&mut *c).await.expect("tokens");
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO leads (id, workspace_id, name, phone, assignee_id, custom_fields, created_at, updated_at) ",
            );
            q.push_values(&rows, |mut b, r| {
                b.push_bind(r.1)
                    .push_bind(workspace)
                    .push_bind("lead")
                    .push_bind(phone(r.4))
                    .push_bind(r.0)
                    .push_bind(empty.clone())
                    .push_bind(now)
                    .push_bind(now);
            });
            q.build().execute(&mut *c).await.map(|r| r.rows_affected())
        })
        .expect("leads");
        tx.commit().await.expect("commit");
        out.extend(rows.into_iter().map(|r| (r.2, r.1)));
    }
    out
}

async fn connect(
    addr: &str,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = format!("ws://{addr}/api/v1/live").into_client_request().expect("request");
    req.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).expect("header"));
    tokio_tungstenite::connect_async(req).await.expect("connect").0
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

const SECRET: &str = "bench-secret";
const PHONE_NUMBER_ID: &str = "100200300400600";

/// The lead phone of agent `i` (as seeded).
fn phone(i: usize) -> String {
    format!("1555{i:07}")
}

/// A signed webhook body with one text message `text` from `from`.
fn webhook(from: &str, text: &str, wamid: &str) -> (Vec<u8>, String) {
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550100100","phone_number_id":"{PHONE_NUMBER_ID}"}},"contacts":[{{"profile":{{"name":"Bench"}},"wa_id":"{from}"}}],"messages":[{{"from":"{from}","id":"{wamid}","timestamp":"{ts}","type":"text","text":{{"body":"{text}"}}}}]}}}}]}}]}}"#
    )
    .into_bytes();
    let sig = switchboard::webhook::signature::sign(SECRET.as_bytes(), &body);
    (body, sig)
}

fn start_server(url: &str) -> (Child, String) {
    // SWITCHBOARD_BIN runs another build (e.g. a copy of the previous one, side by side).
    let bin = std::env::var("SWITCHBOARD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_switchboard").to_owned());
    let mut child = Command::new(bin)
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("WHATSAPP_APP_SECRET", SECRET)
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn,switchboard=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = loop {
        let line = lines.next().expect("server output").expect("line");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {}); // keep draining the log
    (child, addr)
}

/// Helper process: connects `N` sockets to `ADDR` with `TOKEN` (from `SB_LIVE_HOLD="ADDR N
/// TOKEN"`), prints `held N`, and keeps them open until its stdin closes.
async fn hold(spec: &str) {
    let mut parts = spec.split_whitespace();
    let (Some(addr), Some(n), Some(token)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("SB_LIVE_HOLD=\"ADDR N TOKEN\"")
    };
    let n: usize = n.parse().expect("N");
    let mut sockets = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(200) {
        let k = (n - chunk * 200).min(200);
        sockets.extend(futures_util::future::join_all((0..k).map(|_| connect(addr, token))).await);
    }
    println!("held {}", sockets.len());
    let _ = tokio::task::spawn_blocking(|| std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())).await;
    drop(sockets);
}

#[tokio::main]
async fn main() {
    if let Ok(spec) = std::env::var("SB_LIVE_HOLD") {
        return hold(&spec).await;
    }
    let a = args();
    let tmp = std::env::temp_dir().join(format!("sb-bench-{}.db", Uuid::new_v4().simple()));
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}", tmp.display()));
    let db = Db::connect(&url).await.expect("database");
    db.migrate().await.expect("migrate");
    let clock = Clock::default();
    switchboard::workspace::bootstrap(&db, &clock, "Bench", "admin@bench.test", "bench-password-123", None)
        .await
        .expect("bootstrap");
    let workspace: Uuid = on_db!(&db, |p| sqlx::query_scalar("SELECT workspace_id FROM users WHERE email = $1")
        .bind("admin@bench.test")
        .fetch_one(p)
        .await)
    .expect("workspace");
    println!("backend: {}", if url.starts_with("sqlite") { "sqlite" } else { "postgres" });
    let agents = seed(&db, workspace, a.agents.max(1)).await;
    let now = clock.now();
    on_db!(&db, |p| sqlx::query(
        "INSERT INTO numbers (id, workspace_id, phone_number_id, display_phone_number, access_token, created_at) \
         VALUES ($1, $2, $3, '15550100100', 't', $4)"
    )
    .bind(Uuid::new_v4())
    .bind(workspace)
    .bind(PHONE_NUMBER_ID)
    .bind(now)
    .execute(p)
    .await
    .map(|_| ()))
    .expect("number");
    let (mut server, addr) = start_server(&url);
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("client");
    let login: Value = http
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&json!({"email": "admin@bench.test", "password": "bench-password-123"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login json");
    let admin = login["token"].as_str().expect("token").to_owned();
    let pid = server.id();

    // 1. Idle sockets, held by helper processes (each process here may open 20,000 files, so
    //    the client side is split; the server holds them all).
    {
        let warm = connect(&addr, &agents[0].0).await;
        drop(warm);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_kib(pid);
        let t = Instant::now();
        let mut holders = Vec::new();
        let per_holder = 10_000;
        let mut left = a.idle;
        while left > 0 {
            let n = left.min(per_holder);
            left -= n;
            let mut child = Command::new(std::env::current_exe().expect("exe"))
                .env("SB_LIVE_HOLD", format!("{addr} {n} {}", agents[0].0))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("holder starts");
            let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
            holders.push((child, out.next()));
        }
        let mut held = 0;
        for (_, line) in &holders {
            let line = line.as_ref().expect("holder output").as_ref().expect("line");
            held += line.strip_prefix("held ").and_then(|n| n.parse::<usize>().ok()).expect("held N");
        }
        let took = t.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_kib(pid);
        println!(
            "idle: {held} sockets connected in {:.1} s; server RSS {} MiB -> {} MiB: {:.1} KiB per socket",
            took.as_secs_f64(),
            before / 1024,
            after / 1024,
            (after.saturating_sub(before)) as f64 / held.max(1) as f64
        );
        for (mut child, _) in holders {
            drop(child.stdin.take()); // EOF: the holder closes its sockets and exits
            let _ = child.wait();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // 2. Latency at a steady rate with one socket per agent. Via webhooks, each agent's first
    // message also creates its chat (conversation, session, assignment facts): those first
    // `warm` messages are a phase of their own, reported apart from the steady state.
    let warm = if a.webhook { agents.len() } else { 0 };
    let total = (a.rate * a.seconds) as usize;
    let origin = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..warm + total).map(|_| AtomicU64::new(0)).collect());
    // (latency µs, sent at µs since origin, sequence number)
    let agent_lat = Arc::new(Mutex::new(Vec::with_capacity(warm + total)));
    let admin_lat = Arc::new(Mutex::new(Vec::with_capacity(warm + total)));
    let mut readers = Vec::new();
    let online = Arc::new(AtomicU64::new(0));
    let admin_sockets = futures_util::future::join_all((0..a.admins).map(|_| connect(&addr, &admin))).await;
    let t = Instant::now();
    let sockets = futures_util::future::join_all(agents.iter().map(|(tok, _)| connect(&addr, tok))).await;
    // Frames of each marker (`b{seq}`) per socket: every frame is to arrive exactly once.
    let frames: Arc<Vec<AtomicU64>> = Arc::new((0..warm + total).map(|_| AtomicU64::new(0)).collect());
    let answered: Arc<Vec<AtomicBool>> = Arc::new((0..warm + total).map(|_| AtomicBool::new(false)).collect());
    let sockets = sockets.into_iter().map(|s| (false, s)).chain(admin_sockets.into_iter().map(|s| (true, s)));
    for (n, (is_admin, mut ws)) in sockets.enumerate() {
        let (sent, online, frames) = (sent.clone(), online.clone(), frames.clone());
        let lat = if is_admin { admin_lat.clone() } else { agent_lat.clone() };
        // One admin socket counts the presence storm.
        let counts_presence = n == agents.len();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                let Message::Text(t) = m else { continue };
                let now = origin.elapsed().as_micros() as u64;
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                if counts_presence && v["data"]["presence"] == "available" {
                    online.fetch_add(1, Ordering::Relaxed);
                }
                let marker = if v["type"] == "message.created" { &v["data"]["text"] } else { &v["data"]["name"] };
                let Some(seq) = marker.as_str().and_then(|n| n.strip_prefix('b')).and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                let at = sent[seq].load(Ordering::Relaxed);
                frames[seq].fetch_add(1, Ordering::Relaxed);
                if at > 0 {
                    lat.lock().expect("lock").push((now.saturating_sub(at), at, seq));
                }
            }
        }));
    }
    // Every agent coming online is announced to every socket: wait for that storm to pass.
    while online.load(Ordering::Relaxed) < agents.len() as u64 && t.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "presence: {} agents online, {} announced to the admin socket after {:.1} s",
        agents.len(),
        online.load(Ordering::Relaxed),
        t.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut ok = 0;
    let mut produced = Duration::ZERO;
    for (phase, range) in [("warm-up", 0..warm), ("steady", warm..warm + total)] {
        if range.is_empty() {
            continue;
        }
        let t = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / a.rate.max(1)));
        let mut requests = Vec::with_capacity(range.len());
        for seq in range.clone() {
            tick.tick().await;
            let (http, addr, admin, sent) = (http.clone(), addr.clone(), admin.clone(), sent.clone());
            let answered = answered.clone();
            let lead = agents[seq % agents.len()].1;
            let via_webhook = a.webhook;
            let from = phone(seq % agents.len());
            requests.push(tokio::spawn(async move {
                let request = if via_webhook {
                    let (body, sig) = webhook(&from, &format!("b{seq}"), &format!("wamid.live.{seq}"));
                    http.post(format!("http://{addr}/webhooks/whatsapp"))
                        .header("content-type", "application/json")
                        .header("x-hub-signature-256", sig)
                        .body(body)
                } else {
                    http.patch(format!("http://{addr}/api/v1/leads/{lead}"))
                        .bearer_auth(&admin)
                        .json(&json!({"name": format!("b{seq}")}))
                };
                sent[seq].store(origin.elapsed().as_micros() as u64, Ordering::Relaxed);
                let r = request.send().await;
                let ok = r.map(|r| r.status().is_success()).unwrap_or(false);
                answered[seq].store(ok, Ordering::Relaxed);
                ok
            }));
        }
        let mut phase_ok = 0;
        for r in requests {
            phase_ok += usize::from(r.await.unwrap_or(false));
        }
        if phase == "steady" {
            (ok, produced) = (phase_ok, t.elapsed());
        }
        // Let the phase's frames arrive (or give up after a while) before the next one.
        let deadline = Instant::now() + Duration::from_secs(30);
        let seen = || agent_lat.lock().expect("lock").iter().filter(|(_, _, s)| range.contains(s)).count();
        while seen() < phase_ok && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for r in &readers {
        r.abort();
    }
    for r in readers {
        let _ = r.await;
    }
    let agent_lat = agent_lat.lock().expect("lock").clone();
    let admin_lat = admin_lat.lock().expect("lock").clone();
    if let Ok(path) = std::env::var("SB_LIVE_TRACE") {
        // "sent_at_us latency_us" per agent frame of the steady phase: when slow ones happen.
        let lines: Vec<String> =
            agent_lat.iter().filter(|(_, _, s)| *s >= warm).map(|(l, at, _)| format!("{at} {l}")).collect();
        std::fs::write(path, lines.join("\n")).expect("trace file");
    }
    let sorted = |v: &[(u64, u64, usize)], steady: bool| {
        let mut l: Vec<u64> = v.iter().filter(|(_, _, s)| (*s >= warm) == steady).map(|(l, _, _)| *l).collect();
        l.sort_unstable();
        l
    };
    println!(
        "latency: {ok}/{total} {} ok in {:.1} s ({:.0}/s), {} agent sockets + {} admin sockets",
        if a.webhook { "webhooks" } else { "PATCHes" },
        produced.as_secs_f64(),
        ok as f64 / produced.as_secs_f64(),
        agents.len(),
        a.admins
    );
    // Each answered change is one frame on its agent's socket (via webhooks; a PATCH is seen by
    // the admins only) and one on every admin socket.
    let expected = if a.webhook { 1 + a.admins as u64 } else { a.admins as u64 };
    let (mut missing, mut duplicate) = (0, 0);
    for (f, _) in frames.iter().zip(answered.iter()).filter(|(_, ok)| ok.load(Ordering::Relaxed)) {
        let n = f.load(Ordering::Relaxed);
        missing += expected.saturating_sub(n);
        duplicate += n.saturating_sub(expected);
    }
    println!("  frames: {missing} missing, {duplicate} duplicate (of {expected} per answered change)");
    if warm > 0 {
        let (ag, ad) = (sorted(&agent_lat, false), sorted(&admin_lat, false));
        println!(
            "  warm-up, each agent's first message (creates the chat): n={}/{} p50 {:.1} ms p99 {:.1} ms (admin p50 {:.1} p99 {:.1})",
            ag.len(),
            warm,
            percentile(&ag, 0.5),
            percentile(&ag, 0.99),
            percentile(&ad, 0.5),
            percentile(&ad, 0.99)
        );
    }
    let (ag, ad) = (sorted(&agent_lat, true), sorted(&admin_lat, true));
    println!(
        "  request -> frame, agents (own lead only): n={} p50 {:.1} ms p99 {:.1} ms",
        ag.len(),
        percentile(&ag, 0.5),
        percentile(&ag, 0.99)
    );
    println!(
        "  request -> frame, admin (everything):     n={} p50 {:.1} ms p99 {:.1} ms",
        ad.len(),
        percentile(&ad, 0.5),
        percentile(&ad, 0.99)
    );
    if warm > 0 {
        let mut all: Vec<u64> = agent_lat.iter().map(|(l, _, _)| *l).collect();
        all.sort_unstable();
        println!(
            "  every agent frame (warm-up and steady):   n={} p50 {:.1} ms p99 {:.1} ms",
            all.len(),
            percentile(&all, 0.5),
            percentile(&all, 0.99)
        );
    }
    let _ = server.kill();
    let _ = server.wait();
    if url.starts_with("sqlite") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
        }
    }
}
