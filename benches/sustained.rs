//! Sustained end-to-end benchmark: webhooks acknowledged, processed and delivered to websockets,
//! over a long window, with processing running as it does for users.
//!
//! For each backend, each load shape and each server build (alternating builds run by run), it
//! starts the server binary as a child process on a fresh database with one connected number
//! that auto-imports contacts, connects `--admins` admin sockets (they see every message), then
//! sends signed webhooks (one text message each, from `--contacts` contacts in turn) for
//! `--seconds`:
//! - **open loop**: at a fixed `--rate` per second, whatever the answers take;
//! - **closed loop**: `--concurrency` connections, each sending its next webhook when the last
//!   one is answered.
//!
//! It reports acknowledged webhooks/s with the answer's p50/p99, the share answered under 1 s,
//! webhook → `message.created` frame latency over every admin socket (p50/p99/max), the share
//! of acknowledged messages delivered within the window, the backlog (acknowledged − delivered,
//! and pending journal rows) sampled every second, the processing rate (delivered per second
//! over the run and its drain), how long the drain took after the load stopped, and the server's
//! CPU time. Every admin socket must see every message exactly once (counted).
//!
//! ```sh
//! cargo bench --bench sustained -- --seconds 60                      # both backends, both shapes
//! cargo bench --bench sustained -- --seconds 10 --backend sqlite --shape open --rate 2000
//! cargo bench --bench sustained -- --server new=target/release/switchboard --server old=/path/to/old/switchboard
//! ```
//! PostgreSQL: `--pg URL` (default `SWITCHBOARD_TEST_PG`); a fresh database per run, dropped after.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use switchboard::clock::Clock;
use switchboard::db::Db;
use switchboard::on_db;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use uuid::Uuid;

const SECRET: &str = "bench-secret";
const PHONE_NUMBER_ID: &str = "100200300400600";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Shape {
    Open,
    Closed,
}

struct Args {
    seconds: u64,
    rate: u64,
    concurrency: usize,
    contacts: usize,
    admins: usize,
    shapes: Vec<Shape>,
    backends: Vec<&'static str>,
    pg: String,
    servers: Vec<(String, String)>,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 60,
        rate: 5000,
        concurrency: 32,
        contacts: 1000,
        admins: 20,
        shapes: vec![Shape::Open, Shape::Closed],
        backends: vec!["sqlite", "postgres"],
        pg: std::env::var("SWITCHBOARD_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        servers: Vec::new(),
        runs: 1,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let val = || argv.get(i + 1).cloned().unwrap_or_else(|| panic!("a value after {}", argv[i]));
        let num = || val().parse::<u64>().unwrap_or_else(|_| panic!("a number after {}", argv[i]));
        match argv[i].as_str() {
            "--seconds" => a.seconds = num(),
            "--rate" => a.rate = num(),
            "--concurrency" => a.concurrency = num() as usize,
            "--contacts" => a.contacts = num() as usize,
            "--admins" => a.admins = num() as usize,
            "--runs" => a.runs = num() as usize,
            "--pg" => a.pg = val(),
            "--shape" => {
                a.shapes = match val().as_str() {
                    "open" => vec![Shape::Open],
                    "closed" => vec![Shape::Closed],
                    "both" => vec![Shape::Open, Shape::Closed],
                    _ => panic!("--shape open|closed|both"),
                }
            }
            "--backend" => {
                a.backends = match val().as_str() {
                    "sqlite" => vec!["sqlite"],
                    "postgres" => vec!["postgres"],
                    "both" => vec!["sqlite", "postgres"],
                    _ => panic!("--backend sqlite|postgres|both"),
                }
            }
            "--server" => {
                let v = val();
                let (label, path) = v.split_once('=').unwrap_or(("server", v.as_str()));
                a.servers.push((label.to_owned(), path.to_owned()));
            }
            _ => {
                i += 1; // cargo passes --bench
                continue;
            }
        }
        i += 2;
    }
    if a.servers.is_empty() {
        let own = std::env::var("SWITCHBOARD_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_switchboard").to_owned());
        a.servers.push(("this build".into(), own));
    }
    a
}

/// A signed webhook with one text message `s{seq}` from contact `seq % contacts`.
fn webhook(seq: usize, contacts: usize, run: &str) -> (Vec<u8>, String) {
    let from = 15_550_200_000u64 + (seq % contacts) as u64;
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550100100","phone_number_id":"{PHONE_NUMBER_ID}"}},"contacts":[{{"profile":{{"name":"Contact {from}"}},"wa_id":"{from}"}}],"messages":[{{"from":"{from}","id":"wamid.{run}.{seq}","timestamp":"{ts}","type":"text","text":{{"body":"s{seq}"}}}}]}}}}]}}]}}"#
    )
    .into_bytes();
    let sig = switchboard::webhook::signature::sign(SECRET.as_bytes(), &body);
    (body, sig)
}

/// `SB_SERVER_LOG=path`: the server also logs every statement with its time (sqlx's
/// `sqlx::query` at debug: SQL time only, without the hand-offs around it), into `path`.
fn start_server(bin: &str, url: &str) -> (Child, String) {
    let statements = std::env::var("SB_SERVER_LOG").ok();
    let filter = if statements.is_some() { "warn,switchboard=info,sqlx::query=debug" } else { "warn,switchboard=info" };
    let mut child = Command::new(bin)
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("WHATSAPP_APP_SECRET", SECRET)
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", filter)
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
    // Keep draining the log (into the statement log when asked for).
    std::thread::spawn(move || {
        let mut out = statements.map(|p| std::io::BufWriter::new(std::fs::File::create(p).expect("statement log")));
        for line in lines.map_while(Result::ok) {
            if let Some(out) = out.as_mut() {
                let _ = writeln!(out, "{line}");
            }
        }
    });
    (child, addr)
}

/// The server's CPU time so far (user + system), from `/proc/PID/stat`.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // After the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    // utime stime: (state is not a number, so utime is index 10 of the numbers).
    f.get(10).zip(f.get(11)).map_or(0.0, |(u, s)| (u + s) as f64 / 100.0)
}

/// (busy, total) ticks of the whole machine, from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0) + f.get(7).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// Seeds the workspace (its admin from bootstrap plus `admins - 1` more, each with a token) and
/// a connected number that auto-imports contacts. Returns the admins' tokens.
async fn seed(db: &Db, admins: usize) -> Vec<String> {
    let clock = Clock::default();
    switchboard::workspace::bootstrap(db, &clock, "Bench", "admin@bench.test", "bench-password-123", None)
        .await
        .expect("bootstrap");
    let ws: Uuid = on_db!(db, |p| sqlx::query_scalar("SELECT id FROM workspaces").fetch_one(p).await).expect("ws");
    let now = clock.now();
    on_db!(db, |p| sqlx::query(
        "INSERT INTO numbers (id, workspace_id, phone_number_id, display_phone_number, access_token, \
         auto_import_contacts, created_at) VALUES ($1, $2, $3, '15550100100', 't', TRUE, $4)"
    )
    .bind(Uuid::new_v4())
    .bind(ws)
    .bind(PHONE_NUMBER_ID)
    .bind(now)
    .execute(p)
    .await
    .map(|_| ()))
    .expect("number");
    let mut tokens = Vec::new();
    for i in 0..admins {
        let id = Uuid::new_v4();
        let (token, hash) = switchboard::auth::token::generate();
        on_db!(db, |p| sqlx::query(
            "INSERT INTO users (id, workspace_id, email, name, role, status, permissions, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'admin', 'active', $5, $6, $6)"
        )
        .bind(id)
        .bind(ws)
        .bind(format!("admin-{i}@bench.test"))
        .bind(format!("Admin {i}"))
        .bind(sqlx::types::Json(json!({})))
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))
        .expect("admin");
        on_db!(db, |p| sqlx::query("INSERT INTO auth_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(id)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ()))
        .expect("token");
        tokens.push(token);
    }
    tokens
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: &str, token: &str) -> Ws {
    let mut req = format!("ws://{addr}/api/v1/live").into_client_request().expect("request");
    req.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).expect("header"));
    tokio_tungstenite::connect_async(req).await.expect("connect").0
}

/// The `s{seq}` marker of a `message.created` frame, found without parsing the JSON (20 sockets
/// at 5,000 messages/s are 100,000 frames/s for this client, on the server's cores).
fn marker(frame: &str) -> Option<usize> {
    if !frame.contains("\"message.created\"") {
        return None;
    }
    let at = frame.find("\"text\":\"s")? + 9;
    let digits = frame[at..].bytes().take_while(u8::is_ascii_digit).count();
    frame[at..at + digits].parse().ok()
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

struct Outcome {
    acked: usize,
    errors: usize,
    secs: f64,
    ack: Vec<u32>,
    frames: Vec<u32>,
    within: usize,
    duplicates: usize,
    missing: usize,
    drain: Option<f64>,
    backlog: Vec<(u64, i64, i64)>,
    server_cpu: f64,
    machine_busy: f64,
}

/// Most webhooks one run can send (the marker table is allocated up front).
const MAX_SENT: usize = 4_000_000;

async fn one_run(a: &Args, bin: &str, backend: &str, shape: Shape, run: &str) -> Outcome {
    // A fresh database.
    let (url, admin_url, dbname, tmp) = if backend == "sqlite" {
        let tmp = std::env::temp_dir().join(format!("sb-sustained-{run}.db"));
        (format!("sqlite://{}", tmp.display()), None, None, Some(tmp))
    } else {
        let name = format!("sb_sustained_{run}");
        let admin = Db::connect(&a.pg).await.expect("postgres");
        on_db!(&admin, |p| sqlx::query(&format!("CREATE DATABASE {name}")).execute(p).await.map(|_| ()))
            .expect("create database");
        admin.close().await;
        let (base, options) = a.pg.split_once('?').map_or((a.pg.as_str(), None), |(u, o)| (u, Some(o)));
        let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
        (
            format!("{base}/{name}{}", options.map(|o| format!("?{o}")).unwrap_or_default()),
            Some(a.pg.clone()),
            Some(name),
            None,
        )
    };
    let db = Db::connect(&url).await.expect("database");
    db.migrate().await.expect("migrate");
    let tokens = seed(&db, a.admins.max(1)).await;
    let (mut server, addr) = start_server(bin, &url);
    let pid = server.id();

    // Admin sockets: every one sees every message.
    let origin = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..MAX_SENT).map(|_| AtomicU64::new(0)).collect());
    let delivered0 = Arc::new(AtomicUsize::new(0)); // messages seen by socket 0 (the backlog's measure)
    let stop_at = Arc::new(AtomicU64::new(u64::MAX)); // µs since origin when the load stopped
    let mut readers = Vec::new();
    for (k, token) in tokens.iter().enumerate() {
        let mut ws = connect(&addr, token).await;
        let (sent, delivered0, stop_at) = (sent.clone(), delivered0.clone(), stop_at.clone());
        readers.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::new();
            let mut seen: HashMap<usize, u8> = HashMap::new();
            let mut within = 0usize;
            while let Some(Ok(m)) = ws.next().await {
                let Message::Text(t) = m else { continue };
                let Some(seq) = marker(t.as_str()) else { continue };
                let now = origin.elapsed().as_micros() as u64;
                let at = sent.get(seq).map_or(0, |s| s.load(Ordering::Relaxed));
                lat.push(now.saturating_sub(at).min(u32::MAX as u64) as u32);
                *seen.entry(seq).or_default() += 1;
                if now <= stop_at.load(Ordering::Relaxed) {
                    within += 1;
                }
                if k == 0 {
                    delivered0.fetch_add(1, Ordering::Relaxed);
                }
            }
            (lat, seen, within)
        }));
    }
    // Let the presence announcements pass.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build().expect("client");
    let endpoint = format!("http://{addr}/webhooks/whatsapp");
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let window = Duration::from_secs(a.seconds);
    let cpu0 = cpu_secs(pid);
    let ticks0 = machine_ticks();
    let started = Instant::now();

    // Backlog sampler: acknowledged − delivered (socket 0), and pending journal rows.
    let sampler = {
        let (db, acked, delivered0, done) = (db.clone(), acked.clone(), delivered0.clone(), done.clone());
        tokio::spawn(async move {
            let mut out = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            while !done.load(Ordering::Relaxed) {
                tick.tick().await;
                let pending: i64 = on_db!(&db, |p| sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM webhook_events WHERE state = 'pending') + \
                     (SELECT COUNT(*) FROM webhook_arrivals)"
                )
                .fetch_one(p)
                .await)
                .unwrap_or(-1);
                let behind = acked.load(Ordering::Relaxed) as i64 - delivered0.load(Ordering::Relaxed) as i64;
                out.push((started.elapsed().as_secs(), behind, pending));
            }
            out
        })
    };

    let send = {
        let (http, endpoint, sent, acked) = (http.clone(), endpoint.clone(), sent.clone(), acked.clone());
        let (contacts, run) = (a.contacts, run.to_owned());
        move |seq: usize| {
            let (http, endpoint, sent, acked, run) =
                (http.clone(), endpoint.clone(), sent.clone(), acked.clone(), run.clone());
            async move {
                let (body, sig) = webhook(seq, contacts, &run);
                let t = Instant::now();
                if let Some(s) = sent.get(seq) {
                    s.store(origin.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
                let r = http
                    .post(&endpoint)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", sig)
                    .body(body)
                    .send()
                    .await;
                let ok = matches!(&r, Ok(r) if r.status() == 200);
                if ok {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                (ok, t.elapsed().as_micros().min(u32::MAX as u128) as u32)
            }
        }
    };

    let mut results: Vec<(bool, u32)> = Vec::new();
    match shape {
        Shape::Open => {
            let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / a.rate.max(1)));
            let mut requests = Vec::new();
            while started.elapsed() < window {
                tick.tick().await;
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= MAX_SENT {
                    break;
                }
                requests.push(tokio::spawn(send(seq)));
            }
            stop_at.store(origin.elapsed().as_micros() as u64, Ordering::Relaxed);
            for r in requests {
                results.push(r.await.unwrap_or((false, 0)));
            }
        }
        Shape::Closed => {
            let mut tasks = Vec::new();
            for _ in 0..a.concurrency {
                let (send, next) = (send.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    let mut out = Vec::new();
                    while started.elapsed() < window {
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        if seq >= MAX_SENT {
                            break;
                        }
                        out.push(send(seq).await);
                    }
                    out
                }));
            }
            for t in tasks {
                results.extend(t.await.unwrap_or_default());
            }
            stop_at.store(origin.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let total_acked = acked.load(Ordering::Relaxed);
    let errors = results.iter().filter(|r| !r.0).count();
    let mut ack: Vec<u32> = results.iter().filter(|r| r.0).map(|r| r.1).collect();
    ack.sort_unstable();

    // Drain: until socket 0 has every acknowledged message (or give up after 180 s).
    let drain_start = Instant::now();
    while delivered0.load(Ordering::Relaxed) < total_acked && drain_start.elapsed() < Duration::from_secs(180) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain = (delivered0.load(Ordering::Relaxed) >= total_acked).then(|| drain_start.elapsed().as_secs_f64());
    let server_cpu = cpu_secs(pid) - cpu0;
    let ticks1 = machine_ticks();
    let machine_busy = (ticks1.0 - ticks0.0) as f64 / (ticks1.1 - ticks0.1).max(1) as f64;
    done.store(true, Ordering::Relaxed);
    let backlog = sampler.await.unwrap_or_default();
    // Frames still in flight on the other sockets.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = server.kill();
    let _ = server.wait();
    let mut frames = Vec::new();
    let (mut within, mut duplicates, mut missing) = (0, 0, 0);
    for r in readers {
        // The server is gone: every reader's socket ends.
        if let Ok(Ok((lat, seen, w))) = tokio::time::timeout(Duration::from_secs(10), r).await {
            frames.extend(lat);
            within += w;
            duplicates += seen.values().filter(|n| **n > 1).count();
            missing += total_acked.saturating_sub(seen.len());
        }
    }
    frames.sort_unstable();
    db.close().await;
    if let (Some(admin_url), Some(name)) = (admin_url, dbname) {
        let admin = Db::connect(&admin_url).await.expect("postgres");
        let _ = on_db!(&admin, |p| sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(p)
            .await
            .map(|_| ()));
        admin.close().await;
    }
    if let Some(tmp) = tmp {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
        }
    }
    Outcome {
        acked: total_acked,
        errors,
        secs,
        ack,
        frames,
        within,
        duplicates,
        missing,
        drain,
        backlog,
        server_cpu,
        machine_busy,
    }
}

fn report(a: &Args, label: &str, o: &Outcome) {
    let sockets = a.admins.max(1);
    let rate = o.acked as f64 / o.secs;
    let under_1s = o.ack.iter().filter(|l| **l < 1_000_000).count() as f64 / (o.ack.len() + o.errors).max(1) as f64;
    let processed_secs = o.secs + o.drain.unwrap_or(180.0);
    println!(
        "  {label:<12} acked {:>6.0}/s (p50 {:.1} ms p99 {:.1} ms, {:.2}% under 1 s, {} errors) | frame p50 {:.1} ms p99 {:.1} ms max {:.0} ms | {:.1}% delivered within the window | processed {:.0}/s, drained {} | server CPU {:.2} cores, machine {:.0}% busy",
        rate,
        pct(&o.ack, 0.5),
        pct(&o.ack, 0.99),
        under_1s * 100.0,
        o.errors,
        pct(&o.frames, 0.5),
        pct(&o.frames, 0.99),
        pct(&o.frames, 1.0),
        100.0 * o.within as f64 / (o.acked * sockets).max(1) as f64,
        o.acked as f64 / processed_secs,
        o.drain.map_or("NOT within 180 s".to_owned(), |d| format!("{d:.1} s after")),
        o.server_cpu / processed_secs,
        o.machine_busy * 100.0,
    );
    if o.duplicates > 0 || o.missing > 0 {
        println!("  {label:<12} !! {} duplicate and {} missing frames over {sockets} sockets", o.duplicates, o.missing);
    }
    // The backlog every tenth of the window, and its growth over the second half.
    let step = (o.backlog.len() / 10).max(1);
    let samples: Vec<String> =
        o.backlog.iter().step_by(step).map(|(t, behind, pending)| format!("{t}s:{behind}/{pending}")).collect();
    let half = o.backlog.len() / 2;
    let growth = match (o.backlog.get(half), o.backlog.last()) {
        (Some(h), Some(l)) if l.0 > h.0 => (l.1 - h.1) as f64 / (l.0 - h.0) as f64,
        _ => 0.0,
    };
    println!(
        "  {label:<12} backlog (acked−delivered / journal pending) {}; second half {:+.0}/s",
        samples.join(" "),
        growth
    );
}

#[tokio::main]
async fn main() {
    let a = args();
    println!(
        "sustained: {} s per run, open loop {}/s, closed loop {} connections, {} contacts (auto-imported), {} admin sockets",
        a.seconds, a.rate, a.concurrency, a.contacts, a.admins
    );
    for backend in &a.backends {
        for shape in &a.shapes {
            println!("{backend}, {}:", if *shape == Shape::Open { "open loop" } else { "closed loop" });
            for r in 0..a.runs {
                for (label, bin) in &a.servers {
                    let run = Uuid::new_v4().simple().to_string();
                    let o = one_run(&a, bin, backend, *shape, &run[..12]).await;
                    report(&a, &format!("{label}#{}", r + 1), &o);
                }
            }
        }
    }
}
