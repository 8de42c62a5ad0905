//! Benchmarks, run side by side on one machine so ratios mean something:
//!
//! `cargo run --release --bin bench -- webhooks [--seconds 5] [--concurrency 64] [--pg URL] [--no-sqlite] [--no-postgres]`
//!
//! Fires signed webhook POSTs (one text message each) over loopback at a trivial axum handler
//! (the ceiling), then at switchboard on SQLite and on PostgreSQL, and prints accepted-durable
//! webhooks/s with p50/p99 latency, and how long processing took to drain the journal. The
//! trivial handler runs again after each backend, and each backend's share is of the mean of
//! the ceilings measured just before and just after it.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use clap::{Parser, Subcommand};
use switchboard::config::Config;
use switchboard::db::Db;
use switchboard::on_db;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Durable webhook acceptance vs. a trivial handler
    Webhooks {
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// PostgreSQL server for the PostgreSQL run (a fresh database is created and dropped)
        #[arg(long, env = "SWITCHBOARD_TEST_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
        pg: String,
        /// Leave out the SQLite run
        #[arg(long)]
        no_sqlite: bool,
        /// Leave out the PostgreSQL run
        #[arg(long)]
        no_postgres: bool,
    },
}

const SECRET: &str = "bench-secret";

struct Run {
    label: String,
    ok: usize,
    errors: usize,
    secs: f64,
    p50: Duration,
    p99: Duration,
    /// Machine-wide CPU time spent while it ran (client, server and database together), if
    /// `/proc/stat` could be read.
    busy: Option<Busy>,
}

/// CPU time the whole machine spent busy during a run, from `/proc/stat` (Linux).
#[derive(Clone, Copy)]
struct Busy {
    /// Busy CPU seconds, summed over the cores.
    secs: f64,
    /// Busy share of all cores.
    share: f64,
}

/// (busy, total) clock ticks over all cores since boot, from the first line of `/proc/stat`.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user); time
    // stolen by the hypervisor is not this machine's work.
    let total: u64 = fields.iter().take(8).sum();
    let not_busy = fields.get(3)? + fields.get(4..8).map_or(0, |f| f[0] + f[3]);
    Some((total - not_busy, total))
}

fn busy_since(start: Option<(u64, u64)>, wall: f64) -> Option<Busy> {
    let ((b0, t0), (b1, t1)) = (start?, cpu_ticks()?);
    let (busy, total) = ((b1 - b0) as f64, (t1 - t0) as f64);
    if total <= 0.0 {
        return None;
    }
    // Ticks are 1/100 s on Linux; the share does not depend on that.
    let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    let share = busy / total;
    Some(Busy { secs: share * cores * wall, share })
}

impl Run {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
}

/// Contacts the bench writes from: a busy inbox, each chat in order.
const CONTACTS: usize = 1000;

fn body(i: usize) -> Vec<u8> {
    let from = 15_550_200_000u64 + (i % CONTACTS) as u64;
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550100100","phone_number_id":"100200300400600"}},"contacts":[{{"profile":{{"name":"Bench"}},"wa_id":"{from}"}}],"messages":[{{"from":"{from}","id":"wamid.bench.{i}","timestamp":"{}","type":"text","text":{{"body":"benchmark message {i}"}}}}]}}}}]}}]}}"#,
        1_789_300_000 + (i / CONTACTS) as i64
    )
    .into_bytes()
}

async fn fire(label: &str, addr: SocketAddr, seconds: u64, concurrency: usize) -> Run {
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().expect("client");
    let url = format!("http://{addr}/webhooks/whatsapp");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let ticks = cpu_ticks();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let b = body(i);
                let sig = switchboard::webhook::signature::sign(SECRET.as_bytes(), &b);
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", sig)
                    .body(b)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => lat.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("task");
        all.extend(l);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    let busy = busy_since(ticks, secs);
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default()
    };
    Run { label: label.to_owned(), ok: all.len(), errors, secs, p50: pct(0.50), p99: pct(0.99), busy }
}

async fn trivial() -> SocketAddr {
    let app =
        axum::Router::new().route("/webhooks/whatsapp", post(|_b: bytes::Bytes| async { axum::http::StatusCode::OK }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn switchboard_run(label: &str, url: &str, seconds: u64, concurrency: usize) -> (Run, Duration) {
    let db = Db::connect(url).await.expect("connect");
    db.migrate().await.expect("migrate");
    let clock = switchboard::clock::Clock::default();
    switchboard::workspace::bootstrap(&db, &clock, "Bench", "bench@example.com", "bench-password", None)
        .await
        .expect("bootstrap");
    let ws: uuid::Uuid =
        on_db!(&db, |p| sqlx::query_scalar("SELECT id FROM workspaces").fetch_one(p).await).expect("ws");
    let now = clock.now();
    on_db!(&db, |p| sqlx::query(
        "INSERT INTO numbers (id, workspace_id, phone_number_id, display_phone_number, access_token, created_at) \
         VALUES ($1, $2, '100200300400600', '15550100100', 't', $3)"
    )
    .bind(uuid::Uuid::new_v4())
    .bind(ws)
    .bind(now)
    .execute(p)
    .await
    .map(|_| ()))
    .expect("number");
    for c in 0..CONTACTS {
        on_db!(&db, |p| sqlx::query(
            "INSERT INTO leads (id, workspace_id, name, phone, created_at, updated_at) VALUES ($1, $2, 'Bench', $3, $4, $4)"
        )
        .bind(uuid::Uuid::new_v4())
        .bind(ws)
        .bind((15_550_200_000u64 + c as u64).to_string())
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))
        .expect("lead");
    }
    let mut config = Config::for_database(url);
    config.app_secret = Some(SECRET.to_owned());
    let running = switchboard::app::start_with(config, db.clone(), clock).await.expect("start");
    let run = fire(label, running.addr, seconds, concurrency).await;
    let drain_start = Instant::now();
    // Whether any row is pending (not how many: counting a backlog of 40,000 every 50 ms took
    // a quarter of a core from the processing it waits for).
    loop {
        let pending: bool =
            on_db!(&db, |p| sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhook_events WHERE state = 'pending') OR EXISTS (SELECT 1 FROM webhook_arrivals)")
                .fetch_one(p)
                .await)
            .unwrap_or(false);
        if !pending || drain_start.elapsed() > Duration::from_secs(300) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = drain_start.elapsed();
    running.shutdown().await.expect("shutdown");
    db.close().await;
    (run, drained)
}

/// Runs switchboard on `url`, then the trivial handler again; prints the run against the mean
/// of the ceilings just before and after it, and returns the one after.
async fn between_ceilings(
    label: &str,
    url: &str,
    trivial_addr: SocketAddr,
    before: &Run,
    seconds: u64,
    concurrency: usize,
) -> Run {
    let (run, drained) = switchboard_run(label, url, seconds, concurrency).await;
    let after = fire("trivial axum handler", trivial_addr, seconds, concurrency).await;
    let drained = format!(
        "  (journal drained {:.1} s later: {:.0} webhooks/s processed)",
        drained.as_secs_f64(),
        run.ok as f64 / drained.as_secs_f64().max(1e-3)
    );
    print(&run, (before.rate() + after.rate()) / 2.0, &drained);
    print(&after, after.rate(), "");
    after
}

fn print(run: &Run, ceiling: f64, extra: &str) {
    // CPU per request over the whole machine: the client's share is the same for every target,
    // so the difference is what the server (and its database) spend on top of a trivial reply.
    let cpu = run.busy.map_or(String::new(), |b| {
        format!("  CPU {:>5.1} µs/req ({:.0}% busy)", b.secs * 1e6 / run.ok.max(1) as f64, b.share * 100.0)
    });
    println!(
        "{:<28} {:>9.0}/s {:>6.0}% of ceiling  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}{}{}",
        run.label,
        run.rate(),
        100.0 * run.rate() / ceiling,
        run.p50.as_secs_f64() * 1e3,
        run.p99.as_secs_f64() * 1e3,
        run.errors,
        cpu,
        extra
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.what {
        What::Webhooks { seconds, concurrency, pg, no_sqlite, no_postgres } => {
            println!(
                "webhooks: {concurrency} concurrent connections, {seconds} s per target, one text message per POST"
            );
            // The ceiling is measured before and after each backend's run, and the backend is
            // compared with the mean of the two: this machine's speed drifts between runs.
            let trivial_addr = trivial().await;
            let mut ceiling = fire("trivial axum handler", trivial_addr, seconds, concurrency).await;
            print(&ceiling, ceiling.rate(), "");
            if !no_sqlite {
                let dir = std::env::temp_dir().join(format!("sb-bench-{}", uuid::Uuid::new_v4().simple()));
                std::fs::create_dir_all(&dir)?;
                let lite_url = format!("sqlite://{}/bench.db", dir.display());
                ceiling =
                    between_ceilings("switchboard on SQLite", &lite_url, trivial_addr, &ceiling, seconds, concurrency)
                        .await;
                let _ = std::fs::remove_dir_all(&dir);
            }
            if no_postgres {
                return Ok(());
            }

            let name = format!("sb_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = Db::connect(&pg).await?;
            on_db!(&admin, |p| sqlx::query(&format!("CREATE DATABASE {name}")).execute(p).await.map(|_| ()))?;
            // The same server and options (e.g. `?sslmode=disable`), another database.
            let (url, options) = pg.split_once('?').map_or((pg.as_str(), None), |(u, o)| (u, Some(o)));
            let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
            let pg_url = format!("{base}/{name}{}", options.map(|o| format!("?{o}")).unwrap_or_default());
            between_ceilings("switchboard on PostgreSQL", &pg_url, trivial_addr, &ceiling, seconds, concurrency).await;
            on_db!(&admin, |p| sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(p)
                .await
                .map(|_| ()))?;
        }
    }
    Ok(())
}
