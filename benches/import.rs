//! CSV benchmark: imports `--rows` generated leads (default 100,000) over HTTP with `POST
//! /api/v1/leads/import`, exports them with `GET /api/v1/leads/export` (streamed), then imports
//! a changed copy (every row an update), on SQLite and on PostgreSQL. The server runs in this
//! process on a fresh database; times are wall-clock from request to the last response byte.
//!
//! `cargo bench --bench import` (both backends; PostgreSQL from `SWITCHBOARD_TEST_PG`, default
//! `postgres://postgres@127.0.0.1:5432/test`: a database `sbbench_…` is created and dropped)
//! `cargo bench --bench import -- --rows 20000 --sqlite` (one backend: `--sqlite`, `--postgres`)

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use switchboard::clock::Clock;
use switchboard::config::Config;
use switchboard::db::Db;
use uuid::Uuid;

const PASSWORD: &str = "bench password 1";
const ADMIN: &str = "admin@bench.example";
const GROUPS: usize = 5;
const MEMBERS: usize = 10;

struct Args {
    rows: usize,
    sqlite: bool,
    postgres: bool,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let mut a = Args { rows: 100_000, sqlite: false, postgres: false };
    let mut i = 1;
    while i < argv.len() {
        match argv[i].as_str() {
            "--rows" => {
                a.rows = argv.get(i + 1).and_then(|v| v.parse().ok()).expect("a number after --rows");
                i += 1;
            }
            "--sqlite" => a.sqlite = true,
            "--postgres" => a.postgres = true,
            _ => {} // cargo passes --bench
        }
        i += 1;
    }
    if !a.sqlite && !a.postgres {
        a.sqlite = true;
        a.postgres = true;
    }
    a
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    println!("CSV import/export benchmark, {} rows (release build, {} cores)", a.rows, cores());
    if a.sqlite {
        let path = std::env::temp_dir().join(format!("sbbench-{}.db", Uuid::new_v4().simple()));
        let url = format!("sqlite://{}", path.display());
        let result = run("sqlite", &url, a.rows).await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        result?;
    }
    if a.postgres {
        let admin_url = std::env::var("SWITCHBOARD_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let name = format!("sbbench_{}", Uuid::new_v4().simple());
        let Db::Postgres(admin) = Db::connect(&admin_url).await.context("PostgreSQL for the benchmark")? else {
            bail!("SWITCHBOARD_TEST_PG must be a postgres:// URL")
        };
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await?;
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => bail!("SWITCHBOARD_TEST_PG needs a database path"),
        };
        let result = run("postgres", &url, a.rows).await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin).await?;
        result?;
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The generated file: groups on a third of the rows (two on some), assignees on a quarter,
/// two custom fields, a quoted comma now and then. `round` changes names and plans.
fn file(rows: usize, round: usize) -> String {
    let mut out = String::with_capacity(rows * 90);
    out.push_str("name,phone,source,group,assignee_email,plan,city\n");
    let plans = ["gold", "silver", "bronze"];
    for i in 0..rows {
        let group = match i % 6 {
            0 => format!("Group {}", i % GROUPS),
            3 => format!("Group {};Group {}", i % GROUPS, (i + 1) % GROUPS),
            _ => String::new(),
        };
        let assignee = if i % 4 == 0 { format!("member{}@bench.example", i % MEMBERS) } else { String::new() };
        let city = if i % 10 == 0 { "\"Springfield, IL\"" } else { "Lisbon" };
        out.push_str(&format!(
            "Lead {i} r{round},+1 555 {i:07},bench,{group},{assignee},{},{city}\n",
            plans[(i + round) % 3]
        ));
    }
    out
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

async fn run(label: &str, url: &str, rows: usize) -> anyhow::Result<()> {
    let db = Db::connect(url).await?;
    db.migrate().await?;
    let clock = Clock::default();
    switchboard::workspace::bootstrap(&db, &clock, "Bench", ADMIN, PASSWORD, Some("Admin")).await?;
    let running = switchboard::app::start_with(Config::for_database(url), db.clone(), clock).await?;
    let base = format!("http://{}/api/v1", running.addr);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(600)).build()?;
    let login: Value = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": ADMIN, "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().context("login token")?.to_owned();
    for g in 0..GROUPS {
        let r = http.post(format!("{base}/groups")).bearer_auth(&token).json(&json!({"name": format!("Group {g}")}));
        anyhow::ensure!(r.send().await?.status().is_success(), "create group");
    }
    for m in 0..MEMBERS {
        let body = json!({"email": format!("member{m}@bench.example"), "role": "member"});
        let r = http.post(format!("{base}/invitations")).bearer_auth(&token).json(&body);
        anyhow::ensure!(r.send().await?.status().is_success(), "invite member");
    }

    let import = |body: String| {
        let http = http.clone();
        let (base, token) = (base.clone(), token.clone());
        async move {
            let started = Instant::now();
            let resp = http
                .post(format!("{base}/leads/import"))
                .bearer_auth(&token)
                .header("content-type", "text/csv")
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            let report: Value = resp.json().await?;
            anyhow::ensure!(status.is_success(), "import answered {status}: {report}");
            anyhow::Ok((started.elapsed(), report))
        }
    };

    let first = file(rows, 0);
    let mib = first.len() as f64 / (1 << 20) as f64;
    let (took, report) = import(first).await?;
    anyhow::ensure!(report["created"] == rows && report["error_count"] == 0, "unexpected report {report}");
    println!(
        "{label:8} import  {rows} new leads ({mib:.1} MiB): {} ({:.0} rows/s)",
        secs(took),
        rows as f64 / took.as_secs_f64()
    );

    let started = Instant::now();
    let mut resp = http.get(format!("{base}/leads/export")).bearer_auth(&token).send().await?;
    let first_byte = started.elapsed();
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = resp.chunk().await? {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let took = started.elapsed();
    anyhow::ensure!(lines == rows + 1, "export had {lines} lines");
    println!(
        "{label:8} export  {rows} leads ({:.1} MiB): {} ({:.0} rows/s), first bytes after {} ms",
        bytes as f64 / (1 << 20) as f64,
        secs(took),
        rows as f64 / took.as_secs_f64(),
        first_byte.as_millis()
    );

    let (took, report) = import(file(rows, 1)).await?;
    anyhow::ensure!(report["updated"] == rows && report["error_count"] == 0, "unexpected report {report}");
    println!(
        "{label:8} import  {rows} updates (name and plan changed): {} ({:.0} rows/s)",
        secs(took),
        rows as f64 / took.as_secs_f64()
    );

    running.shutdown().await?;
    db.close().await;
    Ok(())
}
