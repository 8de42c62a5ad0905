//! Scale benchmark: the team report, the conversation list and the timeline at 100k leads,
//! 100k conversations, 1M messages and 50 members, over real HTTP against a server started in
//! this process, on SQLite and on PostgreSQL.
//!
//! The dataset is written straight into the database with multi-row INSERTs in large
//! transactions (not through the API); the report's counters are kept by the database's
//! triggers as the rows go in, exactly as in production. Then each measured request is sent
//! `--iters` times in sequence and p50/p99 are printed next to the goals (report p99 < 100 ms,
//! list and timeline pages p99 < 10 ms).
//!
//! `cargo bench --bench scale` (both backends, full size)
//! `cargo bench --bench scale -- --small` (5k leads, 50k messages: a quick run)
//! `cargo bench --bench scale -- --backend sqlite --leads 20000 --messages 200000 --iters 300`
//! `--keep` leaves the databases behind (their URLs are printed) to look at query plans;
//! `--reuse URL` measures again on one of them without writing a dataset.
//! PostgreSQL: `SWITCHBOARD_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`) is
//! used to create and drop a fresh database `sbbench_<uuid>`.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use switchboard::clock::Clock;
use switchboard::config::Config;
use switchboard::db::Db;
use switchboard::on_db;
use uuid::Uuid;

const PASSWORD: &str = "bench-password-123";

struct Args {
    leads: usize,
    messages: usize,
    members: usize,
    groups: usize,
    iters: usize,
    backends: Vec<&'static str>,
    /// Keep the databases afterwards (to look at query plans).
    keep: bool,
    /// Which groups of requests to measure (`report`, `list`, `timeline`, `activities`,
    /// `search`); all when empty.
    only: Vec<String>,
    /// Measure on a database a `--keep` run left behind (its URL) instead of writing one.
    reuse: Option<String>,
}

impl Args {
    fn measures(&self, what: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == what)
    }
}

fn args() -> Args {
    let mut a = Args {
        leads: 100_000,
        messages: 1_000_000,
        members: 50,
        groups: 10,
        iters: 200,
        backends: vec!["sqlite", "postgres"],
        keep: false,
        only: Vec::new(),
        reuse: None,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let num = || argv.get(i + 1).and_then(|v| v.parse::<usize>().ok()).expect("a number after the flag");
        match argv[i].as_str() {
            "--small" => {
                a.leads = 5_000;
                a.messages = 50_000;
                a.iters = 100;
                i += 1;
                continue;
            }
            "--quick" => {
                a.leads = 2_000;
                a.messages = 20_000;
                a.iters = 50;
                i += 1;
                continue;
            }
            "--only" => {
                let list = argv.get(i + 1).expect("--only report,list,timeline,activities,search");
                a.only = list.split(',').map(str::to_owned).collect();
            }
            "--reuse" => {
                let url = argv.get(i + 1).expect("--reuse URL").clone();
                a.backends = if url.starts_with("sqlite:") { vec!["sqlite"] } else { vec!["postgres"] };
                a.reuse = Some(url);
                a.keep = true;
            }
            "--keep" => {
                a.keep = true;
                i += 1;
                continue;
            }
            "--leads" => a.leads = num(),
            "--messages" => a.messages = num(),
            "--members" => a.members = num(),
            "--groups" => a.groups = num(),
            "--iters" => a.iters = num(),
            "--backend" => {
                a.backends = match argv.get(i + 1).map(String::as_str) {
                    Some("sqlite") => vec!["sqlite"],
                    Some("postgres") => vec!["postgres"],
                    Some("both") => vec!["sqlite", "postgres"],
                    _ => panic!("--backend sqlite|postgres|both"),
                }
            }
            // cargo passes --bench
            "--bench" => {
                i += 1;
                continue;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other}\n{USAGE}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    assert!(a.members >= 3 && a.leads >= 100 && a.groups >= 1, "at least 3 members, 100 leads, 1 group");
    a
}

const USAGE: &str = "usage: cargo bench --bench scale -- [--small | --quick] [--backend sqlite|postgres|both] \
    [--leads N] [--messages N] [--members N] [--groups N] [--iters N] \
    [--only report,list,timeline,activities,search] [--keep] [--reuse URL]";

/// Rows per INSERT statement (SQLite allows 32766 parameters; the widest row here has 14).
const CHUNK: usize = 1000;

/// Runs `push_values` over `rows` in chunks, all in one transaction, on either backend.
macro_rules! insert_rows {
    ($db:expr, $head:expr, $rows:expr, |$b:ident, $r:ident| $body:block) => {{
        match $db {
            Db::Sqlite(s) => {
                let mut tx = s.pool.begin().await.expect("begin");
                for chunk in $rows.chunks(CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new($head);
                    qb.push_values(chunk, |mut $b, $r| $body);
                    qb.build().execute(&mut *tx).await.expect($head);
                }
                tx.commit().await.expect("commit");
            }
            Db::Postgres(p) => {
                let mut tx = p.begin().await.expect("begin");
                for chunk in $rows.chunks(CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new($head);
                    qb.push_values(chunk, |mut $b, $r| $body);
                    qb.build().execute(&mut *tx).await.expect($head);
                }
                tx.commit().await.expect("commit");
            }
        }
    }};
}

struct Dataset {
    number: Uuid,
    members: Vec<Uuid>,
    admin_email: String,
    others_email: String,
    plain_email: String,
    plain_id: Uuid,
    groups: Vec<Uuid>,
    leads: Vec<Uuid>,
    plain_leads: Vec<Uuid>,
    convs: Vec<Uuid>,
}

struct Lead {
    n: u64,
    id: Uuid,
    assignee: Option<Uuid>,
    created_at: DateTime<Utc>,
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

async fn seed(db: &Db, a: &Args) -> Dataset {
    let clock = Clock::default();
    switchboard::workspace::bootstrap(db, &clock, "Bench", "admin@bench.test", PASSWORD, Some("Admin"))
        .await
        .expect("bootstrap");
    let ws: Uuid =
        on_db!(db, |p| sqlx::query_scalar("SELECT id FROM workspaces WHERE name = 'Bench'").fetch_one(p).await)
            .expect("workspace");
    let mut rng = StdRng::seed_from_u64(42);
    let now = clock.now();
    let hash = switchboard::auth::password::hash(PASSWORD.to_owned()).await.expect("hash");

    // Members: #0 has view_others_leads, #1 is plain, the rest plain too; a few hold labels.
    let members: Vec<Uuid> = (0..a.members).map(|_| Uuid::new_v4()).collect();
    let users: Vec<(usize, Uuid)> = members.iter().copied().enumerate().collect();
    insert_rows!(
        db,
        "INSERT INTO users (id, workspace_id, email, name, role, status, password_hash, permissions, created_at, updated_at) ",
        users,
        |b, u| {
            let perms = if u.0 == 0 { json!({"view_others_leads": true}) } else { json!({}) };
            b.push_bind(u.1)
                .push_bind(ws)
                .push_bind(format!("m{}@bench.test", u.0))
                .push_bind(format!("Member {:02}", u.0))
                .push_bind("member")
                .push_bind("active")
                .push_bind(hash.clone())
                .push_bind(sqlx::types::Json(perms))
                .push_bind(now)
                .push_bind(now);
        }
    );
    let labels: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    insert_rows!(
        db,
        "INSERT INTO labels (id, workspace_id, name, created_at) ",
        labels.iter().enumerate().collect::<Vec<_>>(),
        |b, l| {
            b.push_bind(*l.1).push_bind(ws).push_bind(format!("Label {}", l.0)).push_bind(now);
        }
    );
    let grants: Vec<(Uuid, Uuid)> = (2..a.members.min(7)).map(|m| (members[m], labels[m % labels.len()])).collect();
    insert_rows!(db, "INSERT INTO member_labels (user_id, label_id) ", grants, |b, g| {
        b.push_bind(g.0).push_bind(g.1);
    });
    let groups: Vec<Uuid> = (0..a.groups).map(|_| Uuid::new_v4()).collect();
    insert_rows!(
        db,
        "INSERT INTO crm_groups (id, workspace_id, name, created_at) ",
        groups.iter().enumerate().collect::<Vec<_>>(),
        |b, g| {
            b.push_bind(*g.1).push_bind(ws).push_bind(format!("Group {}", g.0)).push_bind(now);
        }
    );
    let number = Uuid::new_v4();
    on_db!(db, |p| sqlx::query(
        "INSERT INTO numbers (id, workspace_id, phone_number_id, display_phone_number, access_token, created_at) \
         VALUES ($1, $2, '100200300400600', '15550100100', 'bench-token', $3)"
    )
    .bind(number)
    .bind(ws)
    .bind(now)
    .execute(p)
    .await
    .map(|_| ()))
    .expect("number");

    // Leads over a year, 90% assigned; a conversation each; groups; 3 activities each.
    let span = 365 * 86_400 / a.leads as i64;
    let leads: Vec<Lead> = (0..a.leads)
        .map(|i| Lead {
            n: i as u64,
            id: Uuid::new_v4(),
            assignee: rng.gen_bool(0.9).then(|| *members.choose(&mut rng).unwrap()),
            created_at: base()
                + chrono::Duration::seconds(i as i64 * span + rng.gen_range(0..span.max(1)))
                + chrono::Duration::microseconds(rng.gen_range(0..1_000_000)),
        })
        .collect();
    let t = Instant::now();
    for part in leads.chunks(50_000) {
        insert_rows!(
            db,
            "INSERT INTO leads (id, workspace_id, name, phone, source, assignee_id, custom_fields, created_at, updated_at) ",
            part,
            |b, l| {
                b.push_bind(l.id)
                    .push_bind(ws)
                    .push_bind(format!("Lead {}", l.id.simple()))
                    .push_bind(format!("{}", 4_915_100_000_000u64 + l.n))
                    .push_bind("web")
                    .push_bind(l.assignee)
                    .push_bind(sqlx::types::Json(json!({"plan": "pro"})))
                    .push_bind(l.created_at)
                    .push_bind(l.created_at);
            }
        );
    }
    let lead_groups: Vec<(Uuid, Uuid)> = leads
        .iter()
        .flat_map(|l| {
            let n = [0, 1, 1, 2][l.id.as_u128() as usize % 4];
            groups
                .choose_multiple(&mut StdRng::seed_from_u64(l.id.as_u128() as u64), n)
                .map(|g| (l.id, *g))
                .collect::<Vec<_>>()
        })
        .collect();
    for part in lead_groups.chunks(50_000) {
        insert_rows!(db, "INSERT INTO lead_groups (lead_id, group_id) ", part, |b, g| {
            b.push_bind(g.0).push_bind(g.1);
        });
    }
    eprintln!("  leads + groups: {:.1?}", t.elapsed());

    // Messages: a run per conversation, alternating lead and business, a few minutes apart.
    let per_conv = a.messages / a.leads;
    let mut extra = a.messages % a.leads;
    struct Conv {
        id: Uuid,
        lead: Uuid,
        assignee: Option<Uuid>,
        open: bool,
        label: Option<Uuid>,
        first: DateTime<Utc>,
        last: DateTime<Utc>,
        count: usize,
    }
    let convs: Vec<Conv> = leads
        .iter()
        .map(|l| {
            let count = per_conv + usize::from(extra > 0);
            extra = extra.saturating_sub(1);
            let first = l.created_at + chrono::Duration::seconds(rng.gen_range(-600..3600));
            Conv {
                id: Uuid::new_v4(),
                lead: l.id,
                assignee: l.assignee,
                open: rng.gen_bool(0.3),
                label: rng.gen_bool(0.1).then(|| *labels.choose(&mut rng).unwrap()),
                first,
                last: first + chrono::Duration::seconds(240 * count as i64),
                count,
            }
        })
        .collect();
    let t = Instant::now();
    for part in convs.chunks(50_000) {
        insert_rows!(
            db,
            "INSERT INTO conversations (id, workspace_id, number_id, lead_id, contact_phone, status, assignee_id, \
             last_message, last_message_at, unread_count, last_inbound_at, template_required, created_at, updated_at) ",
            part,
            |b, c| {
                b.push_bind(c.id)
                    .push_bind(ws)
                    .push_bind(number)
                    .push_bind(c.lead)
                    .push_bind("15550109999")
                    .push_bind(if c.open { "open" } else { "closed" })
                    .push_bind(c.assignee)
                    .push_bind(sqlx::types::Json(json!({"type": "text", "text": "see you", "direction": "out"})))
                    .push_bind(c.last)
                    .push_bind(0i64)
                    .push_bind(c.first)
                    .push_bind(false)
                    .push_bind(c.first)
                    .push_bind(c.last);
            }
        );
    }
    let conv_labels: Vec<(Uuid, Uuid)> = convs.iter().filter_map(|c| c.label.map(|l| (c.id, l))).collect();
    insert_rows!(db, "INSERT INTO conversation_labels (conversation_id, label_id) ", conv_labels, |b, x| {
        b.push_bind(x.0).push_bind(x.1);
    });
    eprintln!("  conversations: {:.1?}", t.elapsed());

    let t = Instant::now();
    let mut batch: Vec<MessageRow> = Vec::with_capacity(50_000);
    let mut written = 0usize;
    for c in &convs {
        for k in 0..c.count {
            let inbound = k % 2 == 0;
            let sent_by = if inbound || rng.gen_bool(0.3) { None } else { c.assignee };
            let text = message_text(&mut rng);
            batch.push((
                Uuid::new_v4(),
                c.id,
                inbound,
                sent_by,
                c.first + chrono::Duration::seconds(240 * k as i64),
                text,
            ));
        }
        if batch.len() >= 50_000 {
            insert_messages(db, ws, &batch).await;
            written += batch.len();
            batch.clear();
        }
    }
    insert_messages(db, ws, &batch).await;
    written += batch.len();
    eprintln!("  {written} messages: {:.1?}", t.elapsed());

    let t = Instant::now();
    let acts: Vec<ActivityRow> = convs
        .iter()
        .flat_map(|c| {
            [
                (Uuid::new_v4(), c.lead, c.id, "lead_created", None, c.first),
                (Uuid::new_v4(), c.lead, c.id, "whatsapp_session", c.assignee, c.first),
                (Uuid::new_v4(), c.lead, c.id, "message_sent", c.assignee, c.first + chrono::Duration::seconds(240)),
            ]
        })
        .collect();
    for part in acts.chunks(50_000) {
        insert_rows!(
            db,
            "INSERT INTO activities (id, workspace_id, lead_id, conversation_id, type, member_id, data, created_at, updated_at) ",
            part,
            |b, x| {
                b.push_bind(x.0)
                    .push_bind(ws)
                    .push_bind(x.1)
                    .push_bind(x.2)
                    .push_bind(x.3)
                    .push_bind(x.4)
                    .push_bind(sqlx::types::Json(json!({"conversation_id": x.2})))
                    .push_bind(x.5)
                    .push_bind(x.5);
            }
        );
    }
    eprintln!("  {} activities: {:.1?}", acts.len(), t.elapsed());
    if let Db::Postgres(p) = db {
        // What autovacuum does soon after a bulk load: the counters' upserts leave dead rows.
        sqlx::query("VACUUM ANALYZE").execute(p).await.expect("vacuum");
    } else {
        on_db!(db, |p| sqlx::query("ANALYZE").execute(p).await.map(|_| ())).expect("analyze");
    }
    let plain_id = members[1];
    Dataset {
        number,
        members: members.clone(),
        admin_email: "admin@bench.test".into(),
        others_email: "m0@bench.test".into(),
        plain_email: "m1@bench.test".into(),
        plain_id,
        groups,
        plain_leads: leads.iter().filter(|l| l.assignee == Some(plain_id)).map(|l| l.id).collect(),
        leads: leads.iter().map(|l| l.id).collect(),
        convs: convs.iter().map(|c| c.id).collect(),
    }
}

/// The dataset of a database an earlier run wrote (`--reuse`).
async fn reread(db: &Db) -> Dataset {
    let ids = |sql: &'static str| async move {
        on_db!(db, |p| sqlx::query_scalar::<_, Uuid>(sql).fetch_all(p).await).expect(sql)
    };
    // Members m0, m1, … in the order of their number (sorted here: the dialects name the
    // string functions differently).
    let mut numbered: Vec<(Uuid, String)> =
        on_db!(db, |p| sqlx::query_as("SELECT id, email FROM users WHERE email LIKE 'm%@bench.test'")
            .fetch_all(p)
            .await)
        .expect("members");
    numbered.sort_by_key(|(_, email)| email[1..email.find('@').unwrap_or(1)].parse::<u32>().unwrap_or(u32::MAX));
    let members: Vec<Uuid> = numbered.into_iter().map(|(id, _)| id).collect();
    let plain_id = members[1];
    let plain_leads: Vec<Uuid> =
        on_db!(db, |p| sqlx::query_scalar("SELECT id FROM leads WHERE assignee_id = $1 ORDER BY created_at")
            .bind(plain_id)
            .fetch_all(p)
            .await)
        .expect("plain leads");
    Dataset {
        number: ids("SELECT id FROM numbers").await[0],
        members,
        admin_email: "admin@bench.test".into(),
        others_email: "m0@bench.test".into(),
        plain_email: "m1@bench.test".into(),
        plain_id,
        groups: ids("SELECT id FROM crm_groups ORDER BY name").await,
        plain_leads,
        leads: ids("SELECT id FROM leads ORDER BY created_at").await,
        convs: ids("SELECT id FROM conversations ORDER BY created_at").await,
    }
}

/// (id, conversation, inbound, sent by, time, text)
type MessageRow = (Uuid, Uuid, bool, Option<Uuid>, DateTime<Utc>, String);

/// Words messages are made of, the first ones most often (a Zipf-like draw), so that a search
/// matches anything from a handful of messages to a good share of them.
const WORDS: [&str; 48] = [
    "the",
    "you",
    "thanks",
    "hello",
    "please",
    "order",
    "price",
    "delivery",
    "today",
    "tomorrow",
    "available",
    "size",
    "colour",
    "payment",
    "invoice",
    "address",
    "discount",
    "shipping",
    "return",
    "refund",
    "question",
    "photo",
    "catalogue",
    "morning",
    "evening",
    "week",
    "confirm",
    "booking",
    "table",
    "chair",
    "sofa",
    "lamp",
    "walnut",
    "oak",
    "blue",
    "green",
    "black",
    "white",
    "small",
    "large",
    "store",
    "stock",
    "warranty",
    "assembly",
    "cushion",
    "velvet",
    "linen",
    "marble",
];

/// A message of 4 to 12 words; a third name a product code (`SKU-<n>`, 20,000 of them), a few
/// a reference (`ref <hex>`), each rare.
fn message_text(rng: &mut StdRng) -> String {
    let n = rng.gen_range(4..=12);
    let mut words: Vec<String> = (0..n)
        .map(|_| {
            let u: f64 = rng.r#gen();
            WORDS[((WORDS.len() as f64) * u.powf(2.2)) as usize % WORDS.len()].to_owned()
        })
        .collect();
    if rng.gen_bool(0.33) {
        let at = rng.gen_range(0..words.len());
        words.insert(at, format!("SKU-{}", rng.gen_range(0..20_000)));
    }
    if rng.gen_bool(0.05) {
        words.push(format!("ref {:08x}", rng.r#gen::<u32>()));
    }
    let mut text = words.join(" ");
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    text.push('.');
    text
}
/// (id, lead, conversation, type, member, time)
type ActivityRow = (Uuid, Uuid, Uuid, &'static str, Option<Uuid>, DateTime<Utc>);

/// Messages and their search index rows (the words as the server indexes them).
async fn insert_messages(db: &Db, ws: Uuid, rows: &[MessageRow]) {
    insert_message_rows(db, ws, rows).await;
    let docs: Vec<(Uuid, Uuid, DateTime<Utc>, String)> =
        rows.iter().map(|m| (m.0, m.1, m.4, switchboard::inbox::search::terms(&m.5))).collect();
    insert_rows!(
        db,
        "INSERT INTO search_docs (workspace_id, conversation_id, message_id, created_at, terms) ",
        docs,
        |b, d| {
            b.push_bind(ws).push_bind(d.1).push_bind(d.0).push_bind(d.2).push_bind(d.3.clone());
        }
    );
}

async fn insert_message_rows(db: &Db, ws: Uuid, rows: &[MessageRow]) {
    insert_rows!(
        db,
        "INSERT INTO messages (id, workspace_id, conversation_id, direction, type, text, status, sent_by_user_id, \
         sent_by_app, created_at, received_at) ",
        rows,
        |b, m| {
            b.push_bind(m.0)
                .push_bind(ws)
                .push_bind(m.1)
                .push_bind(if m.2 { "in" } else { "out" })
                .push_bind("text")
                .push_bind(m.5.clone())
                .push_bind(if m.2 { "received" } else { "read" })
                .push_bind(m.3)
                .push_bind(!m.2 && m.3.is_none())
                .push_bind(m.4)
                .push_bind(m.4);
        }
    );
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn login(&self, email: &str) -> String {
        let v: Value = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login json");
        v["token"].as_str().unwrap_or_else(|| panic!("login {email}: {v}")).to_owned()
    }

    async fn get(&self, token: &str, path: &str) -> (Duration, Value) {
        let t = Instant::now();
        let resp = self.http.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.expect("request");
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        let took = t.elapsed();
        assert!(status.is_success(), "{path}: {status} {body}");
        (took, body)
    }
}

struct Measure {
    what: String,
    p50: f64,
    p99: f64,
    goal_ms: f64,
}

/// Sends the request `iters` times (plus a few to warm up); `path(i)` may vary it.
async fn measure(
    c: &Client,
    token: &str,
    what: &str,
    goal_ms: f64,
    iters: usize,
    path: impl Fn(usize) -> String,
) -> Measure {
    for i in 0..5 {
        c.get(token, &path(i)).await;
    }
    let mut ms: Vec<f64> = Vec::with_capacity(iters);
    for i in 0..iters {
        ms.push(c.get(token, &path(i)).await.0.as_secs_f64() * 1000.0);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    Measure { what: what.to_owned(), p50: at(0.50), p99: at(0.99), goal_ms }
}

async fn run(backend: &str, url: &str, db: Db, a: &Args) -> Vec<Measure> {
    db.migrate().await.expect("migrate");
    println!(
        "\n== {backend}: {} leads, {} conversations, {} messages, {} members ==",
        a.leads, a.leads, a.messages, a.members
    );
    let t = Instant::now();
    let d = if a.reuse.is_some() { reread(&db).await } else { seed(&db, a).await };
    println!("dataset written in {:.1?}", t.elapsed());

    let mut config = Config::for_database(url);
    config.listen = "127.0.0.1:0".to_owned();
    let running = switchboard::app::start_with(config, db.clone(), Clock::default()).await.expect("server starts");
    let c = Client { http: reqwest::Client::new(), base: format!("http://{}", running.addr) };
    let admin = c.login(&d.admin_email).await;
    let others = c.login(&d.others_email).await;
    let plain = c.login(&d.plain_email).await;
    let iters = a.iters;
    let g = d.groups[0];
    let range = "from=2025-03-15T09:30:00Z&to=2025-06-13T17:00:00Z";
    let mut out = Vec::new();
    if a.measures("report") {
        let filters = [
            ("all time", String::new()),
            ("90 days", format!("?{range}")),
            ("one group", format!("?group_id={g}")),
            ("group + 90 days", format!("?{range}&group_id={g}")),
        ];
        for (who, token) in [("admin", &admin), ("view_others member", &others)] {
            for (name, q) in &filters {
                out.push(
                    measure(&c, token, &format!("report, {who}, {name}"), 100.0, iters, |_| {
                        format!("/api/v1/reports/team{q}")
                    })
                    .await,
                );
            }
        }
        out.push(
            measure(&c, &plain, "report, plain member, all time", 100.0, iters, |_| "/api/v1/reports/team".into())
                .await,
        );
    }

    if a.measures("list") {
        // Conversation list: first page, and page 21 (1,000 conversations in) by keyset cursor.
        for (who, token) in [("admin", &admin), ("view_others member", &others), ("plain member", &plain)] {
            out.push(
                measure(&c, token, &format!("conversations page 1, {who}"), 10.0, iters, |_| {
                    "/api/v1/conversations".into()
                })
                .await,
            );
            let mut cursor: Option<String> = None;
            for _ in 0..20 {
                let q = cursor.as_ref().map(|c| format!("?cursor={c}")).unwrap_or_default();
                let (_, page) = c.get(token, &format!("/api/v1/conversations{q}")).await;
                cursor = page["next_cursor"].as_str().map(str::to_owned);
                if cursor.is_none() {
                    break;
                }
            }
            if let Some(cur) = cursor {
                out.push(
                    measure(&c, token, &format!("conversations page 21, {who}"), 10.0, iters, |_| {
                        format!("/api/v1/conversations?cursor={cur}")
                    })
                    .await,
                );
            }
        }
    }

    if a.measures("timeline") {
        // Timeline and messages of random leads / conversations.
        let pick = |i: usize, v: &[Uuid]| v[(i * 7919) % v.len()];
        out.push(
            measure(&c, &admin, "timeline page, admin", 10.0, iters, |i| {
                format!("/api/v1/leads/{}/timeline", pick(i, &d.leads))
            })
            .await,
        );
        if !d.plain_leads.is_empty() {
            out.push(
                measure(&c, &plain, "timeline page, plain member (own leads)", 10.0, iters, |i| {
                    format!("/api/v1/leads/{}/timeline", pick(i, &d.plain_leads))
                })
                .await,
            );
        }
        out.push(
            measure(&c, &admin, "messages page, admin", 10.0, iters, |i| {
                format!("/api/v1/conversations/{}/messages", pick(i, &d.convs))
            })
            .await,
        );
    }

    if a.measures("activities") {
        activities(&c, &d, &mut out, [&admin, &others, &plain], iters).await;
    }
    if a.measures("search") {
        search(&c, &d, &mut out, [&admin, &others, &plain], iters).await;
    }
    running.shutdown().await.expect("shutdown");
    db.close().await;
    out
}

/// `GET /activities`: the first page unfiltered and by each filter, and page 2 by cursor, as
/// admin, `view_others_leads` member and plain member (goal p99 < 10 ms).
async fn activities(c: &Client, d: &Dataset, out: &mut Vec<Measure>, tokens: [&String; 3], iters: usize) {
    let [admin, others, plain] = tokens;
    let range = "from=2025-03-15T09:30:00Z&to=2025-06-13T17:00:00Z";
    let busy = d.members[2];
    let filters = [
        ("no filter", String::new()),
        ("type", "?type=whatsapp_session".to_owned()),
        ("member", format!("?member_id={busy}")),
        ("number", format!("?number_id={}", d.number)),
        ("90 days", format!("?{range}")),
        ("type + member + 90 days", format!("?type=message_sent&member_id={busy}&{range}")),
    ];
    for (who, token) in [("admin", admin), ("view_others member", others), ("plain member", plain)] {
        for (name, q) in &filters {
            out.push(
                measure(c, token, &format!("activities, {who}, {name}"), 10.0, iters, |_| {
                    format!("/api/v1/activities{q}")
                })
                .await,
            );
        }
        let (_, page) = c.get(token, "/api/v1/activities").await;
        if let Some(cur) = page["next_cursor"].as_str() {
            out.push(
                measure(c, token, &format!("activities, {who}, page 2"), 10.0, iters, |_| {
                    format!("/api/v1/activities?cursor={cur}")
                })
                .await,
            );
        }
    }
    let _ = d.plain_id;
}

/// `GET /search`: words as prefixes (common, rare, two words, none), a lead's name and phone
/// digits, as admin, `view_others_leads` member and plain member (goal p99 < 50 ms).
async fn search(c: &Client, d: &Dataset, out: &mut Vec<Measure>, tokens: [&String; 3], iters: usize) {
    let [admin, others, plain] = tokens;
    let lead = |v: &[Uuid]| v.first().map(|l| l.simple().to_string()[..4].to_owned()).unwrap_or_default();
    let own = lead(&d.plain_leads);
    let any = lead(&d.leads);
    let queries = [
        ("common word prefix", "ord".to_owned()),
        ("two words", "walnut tab".to_owned()),
        ("rare code", "sku-1234".to_owned()),
        ("no hit", "zebra".to_owned()),
        ("lead name", format!("lead {any}")),
        ("own lead name", format!("lead {own}")),
        ("phone digits", "49151000123".to_owned()),
    ];
    for (who, token) in [("admin", admin), ("view_others member", others), ("plain member", plain)] {
        for (name, q) in &queries {
            let q = q.replace(' ', "%20");
            out.push(
                measure(c, token, &format!("search, {who}, {name}"), 50.0, iters, |_| format!("/api/v1/search?q={q}"))
                    .await,
            );
        }
    }
}

fn print(backend: &str, ms: &[Measure]) {
    println!("\n| {backend} | p50 ms | p99 ms | goal (p99) | |");
    println!("| --- | ---: | ---: | ---: | --- |");
    for m in ms {
        let ok = if m.p99 < m.goal_ms { "ok" } else { "MISSED" };
        println!("| {} | {:.1} | {:.1} | < {:.0} ms | {ok} |", m.what, m.p50, m.p99, m.goal_ms);
    }
}

#[tokio::main]
async fn main() {
    let a = args();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {cores} cores, load average at start {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let mut results = Vec::new();
    for backend in a.backends.clone() {
        match backend {
            "sqlite" => {
                let path = match a.reuse.as_deref().and_then(|u| u.strip_prefix("sqlite://")) {
                    Some(p) => std::path::PathBuf::from(p),
                    None => std::env::temp_dir().join(format!("sbbench-{}.db", Uuid::new_v4().simple())),
                };
                let url = format!("sqlite://{}", path.display());
                let db = Db::connect(&url).await.expect("sqlite");
                let ms = run("sqlite", &url, db, &a).await;
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                println!("database file: {} MiB", size >> 20);
                if a.keep {
                    println!("kept {url}");
                } else {
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                    }
                }
                print("sqlite", &ms);
                results.push(("sqlite", ms));
            }
            _ => {
                let admin_url = std::env::var("SWITCHBOARD_TEST_PG")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
                let Db::Postgres(admin) = Db::connect(&admin_url).await.expect("postgres admin connection") else {
                    panic!("SWITCHBOARD_TEST_PG must be a postgres:// URL")
                };
                let url = match &a.reuse {
                    Some(url) => url.clone(),
                    None => {
                        let name = format!("sbbench_{}", Uuid::new_v4().simple());
                        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("create database");
                        format!("{}/{name}", admin_url.rsplit_once('/').expect("a database path").0)
                    }
                };
                let name = url.rsplit_once('/').expect("a database path").1.to_owned();
                let db = Db::connect(&url).await.expect("postgres");
                let ms = run("postgres", &url, db, &a).await;
                if a.keep {
                    println!("kept {url}");
                } else {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin).await;
                }
                print("postgres", &ms);
                results.push(("postgres", ms));
            }
        }
    }
    println!("\n== summary ==");
    for (backend, ms) in &results {
        print(backend, ms);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\nload average at end {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
}
