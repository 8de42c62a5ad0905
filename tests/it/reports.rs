//! The team report: a scripted day through the real API with known numbers, filters, who sees
//! which rows, bad filters, and a brute-force recomputation from raw rows on random worlds
//! (which also exercises every counter-maintaining trigger: reassignments, closes, session
//! updates, deletions, group changes).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::db::Db;
use switchboard::on_db;
use switchboard::policy::{self, ConvFacts, LeadFacts, Permissions, Role, Viewer};
use uuid::Uuid;

use crate::access::{grant_labels, insert_label, insert_number};
use crate::on_both;
use crate::support::*;
use crate::webhooks::text_payload;

fn echo_payload(wamid: &str, to: &str, ts: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "100200300400500", "changes": [{
        "field": "smb_message_echoes", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100100", "phone_number_id": "100200300400600"},
        "message_echoes": [{"from": "15550100100", "to": to, "id": wamid, "timestamp": ts.to_string(), "type": "text", "text": {"body": "on my way"}}]}}]}]}))
    .unwrap()
}

fn id_of(v: &Value) -> Uuid {
    Uuid::parse_str(v["id"].as_str().unwrap_or_else(|| panic!("an id in {v}"))).unwrap()
}

fn time_of(v: &Value, key: &str) -> DateTime<Utc> {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")).parse().unwrap()
}

fn enc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl TestApp {
    async fn report(&self, token: &str, query: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/reports/team{query}"), token).await;
        assert_eq!(status, StatusCode::OK, "report{query}: {body}");
        body
    }

    async fn timeline_count(&self, lead: Uuid, member: Uuid) -> i64 {
        let (status, body) =
            self.get(&format!("/api/v1/leads/{lead}/timeline?member_id={member}&limit=200"), &self.admin_token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["activities"].as_array().unwrap().len() as i64
    }
}

/// The row of `member` in a report (panics when absent).
fn row(report: &Value, member: Uuid) -> &Value {
    report["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["member_id"] == json!(member))
        .unwrap_or_else(|| panic!("a row for {member} in {report}"))
}

/// (assigned, contacted, first_responses, replies, open_conversations) of a row.
fn counts(r: &Value) -> (i64, i64, i64, i64, i64) {
    let n = |k: &str| r[k].as_i64().unwrap_or_else(|| panic!("{k} in {r}"));
    (n("assigned"), n("contacted"), n("first_responses"), n("replies"), n("open_conversations"))
}

on_both! {
    async fn a_lead_with_replies_notes_and_an_open_chat_can_be_deleted(t: TestDb) {
        // The counters' triggers must not trip over the lead's cascade (PostgreSQL checks
        // foreign keys per statement inside the cascade).
        let app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        let (alice, alice_token) = app.member("alice@example.com", json!({})).await;
        let (status, lead) = app.post("/api/v1/leads", &app.admin_token,
            json!({"name": "Priya", "phone": "+15550100111", "assignee_id": alice})).await;
        assert_eq!(status, StatusCode::CREATED, "{lead}");
        let created = time_of(&lead, "created_at");
        assert_eq!(app.signed_webhook(&text_payload("wamid.del.1", "15550100111", created.timestamp() + 5, "hi")).await, StatusCode::OK);
        app.webhooks_processed().await;
        let lead_id = id_of(&lead);
        let (_, list) = app.get(&format!("/api/v1/conversations?lead_id={lead_id}"), &alice_token).await;
        let conv = id_of(&list["conversations"][0]);
        let (status, reply) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &alice_token, json!({"type": "text", "text": "hello"})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        let (status, note) = app.post(&format!("/api/v1/leads/{lead_id}/notes"), &alice_token, json!({"text": "called her"})).await;
        assert_eq!(status, StatusCode::CREATED, "{note}");
        let (_, before) = app.get("/api/v1/reports/team", &app.admin_token).await;
        assert_eq!(before["totals"]["replies"], 1, "{before}");

        let (status, body) = app.json(Method::DELETE, &format!("/api/v1/leads/{lead_id}"), &app.admin_token, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (_, after) = app.get("/api/v1/reports/team", &app.admin_token).await;
        for field in ["assigned", "contacted", "replies", "activities", "open_conversations"] {
            assert_eq!(after["totals"][field], 0, "{field}: {after}");
        }
    }
}

on_both! {
    async fn a_scripted_day_gives_known_numbers(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        let admin = id_of(&app.login(ADMIN_EMAIL, PASSWORD).await["user"]);
        let (alice, alice_token) = app.member("alice@example.com", json!({})).await;
        let (bob, bob_token) = app.member("bob@example.com", json!({})).await;
        let (olga, olga_token) = app.member("olga@example.com", json!({"view_others_leads": true})).await;
        let (_, vip) = app.post("/api/v1/groups", &app.admin_token, json!({"name": "VIP"})).await;
        let vip = id_of(&vip);

        let lead = |name: &'static str, phone: &'static str, assignee: Option<Uuid>, groups: Vec<Uuid>| {
            let app = &app;
            async move {
                let (status, body) = app.post("/api/v1/leads", &app.admin_token,
                    json!({"name": name, "phone": phone, "assignee_id": assignee, "group_ids": groups})).await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                body
            }
        };
        // Priya and Quinn are Alice's, Ravi is Bob's, Sam nobody's. Priya and Ravi are VIPs.
        let priya = lead("Priya", "+15550100111", Some(alice), vec![vip]).await;
        let quinn = lead("Quinn", "+15550100122", Some(alice), vec![]).await;
        let ravi = lead("Ravi", "+15550100133", Some(bob), vec![vip]).await;
        let sam = lead("Sam", "+15550100144", None, vec![]).await;
        let (c_priya, c_quinn, c_ravi, c_sam) =
            (time_of(&priya, "created_at"), time_of(&quinn, "created_at"), time_of(&ravi, "created_at"), time_of(&sam, "created_at"));

        // Priya wrote 10 minutes before she became a lead; Ravi a minute before, and the
        // business answered him from the phone app 7 minutes after his lead was created.
        for body in [
            text_payload("wamid.priya.1", "15550100111", c_priya.timestamp() - 600, "prices?"),
            text_payload("wamid.ravi.1", "15550100133", c_ravi.timestamp() - 60, "hello"),
            echo_payload("wamid.ravi.2", "15550100133", c_ravi.timestamp() + 420),
            text_payload("wamid.sam.1", "15550100144", c_sam.timestamp() + 5, "hi"),
        ] {
            assert_eq!(app.signed_webhook(&body).await, StatusCode::OK);
        }
        app.webhooks_processed().await;
        let conv_of = |lead: &Value| {
            let (app, lead) = (&app, id_of(lead));
            async move {
                let (_, list) = app.get(&format!("/api/v1/conversations?lead_id={lead}"), &app.admin_token).await;
                id_of(&list["conversations"][0])
            }
        };
        let (conv_priya, conv_ravi, conv_sam) = (conv_of(&priya).await, conv_of(&ravi).await, conv_of(&sam).await);

        // An hour later Alice answers Priya (counted from when it was queued), writes a note on
        // Quinn; Bob answers Ravi twice and closes the chat; the admin notes something on Sam.
        app.clock.advance(Duration::hours(1));
        let send = |conv: Uuid, token: &str, text: &str| {
            let (app, token, text) = (&app, token.to_owned(), text.to_owned());
            async move {
                let (status, m) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &token,
                    json!({"type": "text", "text": text})).await;
                assert_eq!(status, StatusCode::ACCEPTED, "{m}");
                m
            }
        };
        let reply = send(conv_priya, &alice_token, "Here are our prices").await;
        let note = |lead: &Value, token: &str| {
            let (app, lead, token) = (&app, id_of(lead), token.to_owned());
            async move {
                let (status, body) = app.post(&format!("/api/v1/leads/{lead}/notes"), &token, json!({"text": "called"})).await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
            }
        };
        note(&quinn, &alice_token).await;
        send(conv_ravi, &bob_token, "Anything else?").await;
        send(conv_ravi, &bob_token, "Bye").await;
        let (status, body) = app.post(&format!("/api/v1/conversations/{conv_ravi}/status"), &bob_token, json!({"status": "closed"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        note(&sam, &app.admin_token).await;

        let priya_frs = time_of(&reply, "created_at").timestamp() - (c_priya.timestamp() - 600);
        let report = app.report(&app.admin_token, "").await;
        assert_eq!(counts(row(&report, alice)), (2, 2, 1, 1, 1), "Priya answered, Quinn noted; Priya's chat is open: {report}");
        assert_eq!(row(&report, alice)["avg_first_response_secs"].as_f64(), Some(priya_frs as f64));
        assert!((3600..3600 + 600 + 30).contains(&priya_frs), "about an hour and ten minutes: {priya_frs}");
        assert_eq!(counts(row(&report, bob)), (1, 1, 1, 2, 0), "the echo answered Ravi first; his chat is closed");
        assert_eq!(row(&report, bob)["avg_first_response_secs"].as_f64(), Some(480.0), "from his first message, 60 s before his lead");
        assert_eq!(counts(row(&report, olga)), (0, 0, 0, 0, 0));
        assert_eq!(row(&report, olga)["avg_first_response_secs"], Value::Null);
        assert_eq!(row(&report, olga)["activities"], 0);
        assert_eq!(row(&report, admin)["activities"], 1, "the note on Sam");
        assert_eq!(counts(&report["totals"]), (3, 3, 2, 3, 1), "Sam is nobody's: in no row");
        assert_eq!(report["totals"]["avg_first_response_secs"].as_f64(), Some((priya_frs + 480) as f64 / 2.0));
        assert_eq!(report["members"].as_array().unwrap().len(), 4, "every member, admin included");
        assert_eq!(report["members"][0]["name"], "Ada Admin", "ordered by name");

        // Activities are what the leads' timelines show for the member: Alice's two sessions
        // on Priya (the hour between them splits them), her reply and her note; Bob's two
        // sessions on Ravi, two replies and the close.
        for m in [alice, bob, admin, olga] {
            let mut expected = 0;
            for l in [&priya, &quinn, &ravi, &sam] {
                expected += app.timeline_count(id_of(l), m).await;
            }
            assert_eq!(row(&report, m)["activities"], expected, "activities of {m}");
        }
        assert_eq!(row(&report, alice)["activities"], 4);
        assert_eq!(row(&report, bob)["activities"], 5);

        // The VIP group: Priya and Ravi.
        let r = app.report(&app.admin_token, &format!("?group_id={vip}")).await;
        assert_eq!(counts(row(&r, alice)), (1, 1, 1, 1, 1));
        assert_eq!(counts(row(&r, bob)), (1, 1, 1, 2, 0));
        assert_eq!(row(&r, admin)["activities"], 0);
        assert_eq!(counts(&r["totals"]), (2, 2, 2, 3, 1));

        // Created in [Quinn, Sam): Quinn and Ravi. `to` is exclusive, `from` inclusive.
        let r = app.report(&app.admin_token, &format!("?from={}&to={}", enc(c_quinn), enc(c_sam))).await;
        assert_eq!(counts(row(&r, alice)), (1, 1, 0, 0, 0), "Quinn only: noted, never answered");
        assert_eq!(row(&r, alice)["avg_first_response_secs"], Value::Null);
        assert_eq!(row(&r, alice)["activities"], 1);
        assert_eq!(counts(row(&r, bob)), (1, 1, 1, 2, 0));
        let r = app.report(&app.admin_token, &format!("?to={}", enc(c_priya))).await;
        assert_eq!(counts(&r["totals"]), (0, 0, 0, 0, 0), "nothing was created before Priya");
        let r = app.report(&app.admin_token, &format!("?from={}", enc(c_sam))).await;
        assert_eq!(counts(&r["totals"]), (0, 0, 0, 0, 0));
        assert_eq!(r["totals"]["activities"], 1, "only the admin's note on Sam");
        let r = app.report(&app.admin_token, &format!("?from={}&group_id={vip}", enc(c_quinn))).await;
        assert_eq!(counts(&r["totals"]), (1, 1, 1, 2, 0), "VIPs created from Quinn on: Ravi");

        // A plain member sees their own row only, with the same numbers.
        let mine = app.report(&alice_token, "").await;
        assert_eq!(mine["members"].as_array().unwrap().len(), 1);
        assert_eq!(row(&mine, alice), row(&report, alice));
        assert_eq!(counts(&mine["totals"]), (2, 2, 1, 1, 1));

        // Olga (view_others_leads) gets every row, over the leads she can see: not Sam's, which
        // nobody has, so the admin's note there is not hers to count...
        let seen = app.report(&olga_token, "").await;
        assert_eq!(seen["members"].as_array().unwrap().len(), 4);
        assert_eq!(row(&seen, alice), row(&report, alice));
        assert_eq!(row(&seen, bob), row(&report, bob));
        assert_eq!(row(&seen, admin)["activities"], 0);
        // ...until she is given access to Sam's chat.
        let (status, body) = app.post(&format!("/api/v1/conversations/{conv_sam}/access"), &app.admin_token,
            json!({"member_ids": [olga]})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let seen = app.report(&olga_token, "").await;
        assert_eq!(row(&seen, admin)["activities"], 2, "the note and the access grant on Sam");
        assert_eq!(row(&app.report(&app.admin_token, "").await, admin)["activities"], 2);
    }

    async fn a_large_import_counts_like_the_brute_force(t: TestDb) {
        // 1,600 new leads (four batches; on PostgreSQL two are written at once), a quarter of
        // them on each of two members and most in groups; then a file that renames half of
        // them, reassigns or regroups some of those, and adds 100 more.
        let app = spawn_app(&t).await;
        let (m1, _) = app.member("m1@example.com", json!({})).await;
        let (m2, _) = app.member("m2@example.com", json!({})).await;
        let (g1, g2) = (app.new_group("G1").await, app.new_group("G2").await);
        let group = |i: usize| ["", "G1", "G1;G2"][i % 3];
        let assignee = |i: usize| ["", "m1@example.com", "m2@example.com", ""][i % 4];
        let mut first = String::from("name,phone,group,assignee_email\n");
        for i in 0..1600 {
            first.push_str(&format!("Lead {i},+1 555 {:07},{},{}\n", 2_000_000 + i, group(i), assignee(i)));
        }
        let report = app.import_ok(&app.admin_token, &first).await;
        assert_eq!(report, json!({"created": 1600, "updated": 0, "errors": [], "error_count": 0}));
        let mut second = String::from("name,phone,group,assignee_email\n");
        for i in (0..1600).step_by(2) {
            let (g, a) = match i % 10 {
                0 => (group(i), "m2@example.com"),
                2 => ("G2", assignee(i)),
                4 => ("", "m1@example.com"),
                _ => (group(i), assignee(i)),
            };
            second.push_str(&format!("Lead {i} renamed,+1 555 {:07},{g},{a}\n", 2_000_000 + i));
        }
        for i in 1600..1700 {
            second.push_str(&format!("Lead {i},+1 555 {:07},{},{}\n", 2_000_000 + i, group(i), assignee(i)));
        }
        let report = app.import_ok(&app.admin_token, &second).await;
        assert_eq!(report, json!({"created": 100, "updated": 800, "errors": [], "error_count": 0}));

        let raw = Raw::load(&app.db, app.workspace_id).await;
        let admin = id_of(&app.login(ADMIN_EMAIL, PASSWORD).await["user"]);
        let v = raw.viewer(admin);
        for g in [None, Some(g1), Some(g2)] {
            let query = g.map(|g| format!("?group_id={g}")).unwrap_or_default();
            let report = app.report(&app.admin_token, &query).await;
            let expected = raw.expected(&v, None, None, g);
            let got: BTreeMap<Uuid, Expected> = report["members"].as_array().unwrap().iter()
                .map(|r| (Uuid::parse_str(r["member_id"].as_str().unwrap()).unwrap(), Expected::of(r)))
                .collect();
            assert_eq!(got, expected, "group {g:?}");
            assert!(got[&m1].assigned > 100 && got[&m2].assigned > 100, "{got:?}");
        }
        // Every created or changed lead announced once.
        let announced: i64 = on_db!(&app.db, |p| sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE type = 'lead.updated'"
        )
        .fetch_one(p)
        .await
        .unwrap());
        assert_eq!(announced, 1700 + 800);
    }

    async fn malformed_filters_answer_400(t: TestDb) {
        let app = spawn_app(&t).await;
        let unknown_group = Uuid::new_v4();
        for q in [
            "from=yesterday".to_owned(),
            "to=2025-13-01T00:00:00Z".to_owned(),
            "from=2025-03-01".to_owned(),
            "from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z".to_owned(),
            "group_id=7".to_owned(),
            format!("group_id={unknown_group}"),
            "member_id=7".to_owned(),
        ] {
            let (status, body) = app.get(&format!("/api/v1/reports/team?{q}"), &app.admin_token).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
            assert!(["invalid_filter", "invalid_query"].contains(&error_code(&body)), "{q}: {body}");
        }
        // A '+' offset sent unencoded arrives as a space and is still understood.
        let r = app.report(&app.admin_token, "?from=2025-03-01T00:00:00+01:00&to=2025-03-02T00:00:00Z").await;
        assert_eq!(r["from"], "2025-02-28T23:00:00Z");
        let anonymous = app.call(reqwest::Method::GET, "/api/v1/reports/team", None, None).await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    }

    async fn report_matches_brute_force_on_random_worlds(t: TestDb) {
        let app = spawn_app(&t).await;
        let seed: u64 = std::env::var("REPORT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
        eprintln!("REPORT_SEED={seed}");
        let mut rng = StdRng::seed_from_u64(seed);
        let w = seed_world(&app, &mut rng).await;
        mutate_world(&app, &w, &mut rng).await;
        let raw = Raw::load(&app.db, app.workspace_id).await;

        let day0 = Utc.with_ymd_and_hms(2025, 6, 10, 0, 0, 0).unwrap();
        let mut filters: Vec<Filter> = vec![
            (None, None, None),
            (Some(day0 + Duration::days(1)), Some(day0 + Duration::days(3)), None),
            (None, None, Some(w.groups[0])),
            (Some(day0 + Duration::hours(30)), None, Some(w.groups[1])),
        ];
        for _ in 0..8 {
            let a = day0 + Duration::seconds(rng.gen_range(-3600..5 * 86_400)) + Duration::microseconds(rng.gen_range(0..1_000_000));
            let b = a + Duration::seconds(rng.gen_range(0..3 * 86_400));
            let g = if rng.gen_bool(0.3) { w.groups[..2].choose(&mut rng).copied() } else { None }; // the third was deleted
            filters.push((rng.gen_bool(0.85).then_some(a), rng.gen_bool(0.85).then_some(b), g));
        }
        // Lead creation times exactly at a bound.
        let l = raw.leads.values().next().unwrap().created_at;
        filters.push((Some(l), Some(l + Duration::days(2)), None));
        filters.push((None, Some(l), None));

        for (who, token) in &w.viewers {
            let v = raw.viewer(*who);
            for (from, to, group) in &filters {
                let mut q = vec![];
                if let Some(f) = from { q.push(format!("from={}", enc(*f))) }
                if let Some(t) = to { q.push(format!("to={}", enc(*t))) }
                if let Some(g) = group { q.push(format!("group_id={g}")) }
                let report = app.report(token, &format!("?{}", q.join("&"))).await;
                let expected = raw.expected(&v, *from, *to, *group);
                let got: BTreeMap<Uuid, Expected> = report["members"].as_array().unwrap().iter()
                    .map(|r| (Uuid::parse_str(r["member_id"].as_str().unwrap()).unwrap(), Expected::of(r)))
                    .collect();
                assert_eq!(got, expected, "seed {seed}, viewer {who}, filter {from:?} {to:?} {group:?}");
                let total = expected.values().fold(Expected::default(), |a, b| a.plus(b));
                assert_eq!(Expected::of(&report["totals"]), total, "totals, seed {seed}");
            }
        }
    }
}

/// (from, to, group) of a report request.
type Filter = (Option<DateTime<Utc>>, Option<DateTime<Utc>>, Option<Uuid>);

// ---------------------------------------------------------------------------------------------
// Random worlds, seeded straight into the database, and the numbers recomputed from raw rows.

struct World {
    groups: Vec<Uuid>,
    /// (user id, token) of the callers compared: admin, plain, view_others, view_others +
    /// view_unassigned, view_others with a label grant.
    viewers: Vec<(Uuid, String)>,
    members: Vec<Uuid>,
    leads: Vec<Uuid>,
    convs: Vec<Uuid>,
    activities: Vec<Uuid>,
}

async fn exec(db: &Db, sql: &'static str, binds: impl FnOnce(Q<'_>) -> Q<'_>) {
    match db {
        Db::Sqlite(s) => {
            let q = binds(Q::Sqlite(sqlx::query(sql)));
            let Q::Sqlite(q) = q else { unreachable!() };
            q.execute(&s.pool).await.map(|_| ()).expect(sql)
        }
        Db::Postgres(p) => {
            let q = binds(Q::Postgres(sqlx::query(sql)));
            let Q::Postgres(q) = q else { unreachable!() };
            q.execute(p).await.map(|_| ()).expect(sql)
        }
    }
}

/// A query on either backend, so seeding binds values once.
enum Q<'a> {
    Sqlite(sqlx::query::Query<'a, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'a>>),
    Postgres(sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments>),
}

macro_rules! binds {
    ($($v:expr),* $(,)?) => {
        |q: Q<'_>| match q {
            Q::Sqlite(q) => Q::Sqlite(q$(.bind($v))*),
            Q::Postgres(q) => Q::Postgres(q$(.bind($v))*),
        }
    };
}

async fn seed_world(app: &TestApp, rng: &mut StdRng) -> World {
    let db = &app.db;
    let ws = app.workspace_id;
    let admin = id_of(&app.login(ADMIN_EMAIL, PASSWORD).await["user"]);
    let (plain, plain_t) = app.member("plain@example.com", json!({})).await;
    let (others, others_t) = app.member("others@example.com", json!({"view_others_leads": true})).await;
    let (both, both_t) =
        app.member("both@example.com", json!({"view_others_leads": true, "view_unassigned": true})).await;
    let (labeled, labeled_t) = app.member("labeled@example.com", json!({"view_others_leads": true})).await;
    let label = insert_label(db, ws, "Granted").await;
    grant_labels(db, labeled, &[label]).await;
    // The label grant is read at login: log in again.
    let labeled_t = {
        let _ = labeled_t;
        app.login("labeled@example.com", PASSWORD).await["token"].as_str().unwrap().to_owned()
    };
    let members = vec![admin, plain, others, both, labeled];
    let numbers = [insert_number(db, ws).await, insert_number(db, ws).await];
    let mut groups = vec![];
    for n in 0..3 {
        let id = Uuid::new_v4();
        exec(
            db,
            "INSERT INTO crm_groups (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4)",
            binds!(id, ws, format!("G{n}"), Utc::now()),
        )
        .await;
        groups.push(id);
    }
    let day0 = Utc.with_ymd_and_hms(2025, 6, 10, 0, 0, 0).unwrap();
    let pick = |rng: &mut StdRng, p: f64| if rng.gen_bool(p) { members.choose(rng).copied() } else { None };
    let (mut leads, mut convs, mut activities) = (vec![], vec![], vec![]);
    for i in 0..36 {
        let lead = Uuid::new_v4();
        let created = day0
            + Duration::seconds(rng.gen_range(0..4 * 86_400))
            + Duration::microseconds(rng.gen_range(0..1_000_000));
        let assignee = pick(rng, 0.6);
        exec(db, "INSERT INTO leads (id, workspace_id, name, phone, assignee_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            binds!(lead, ws, format!("Lead {i}"), format!("1555000{i:04}"), assignee, created)).await;
        for g in &groups {
            if rng.gen_bool(0.35) {
                exec(db, "INSERT INTO lead_groups (lead_id, group_id) VALUES ($1, $2)", binds!(lead, *g)).await;
            }
        }
        for number in numbers.iter().take(rng.gen_range(0..=2)) {
            let conv = Uuid::new_v4();
            let c_assignee = if assignee.is_some() && rng.gen_bool(0.7) { assignee } else { pick(rng, 0.4) };
            let status = if rng.gen_bool(0.6) { "open" } else { "closed" };
            exec(db, "INSERT INTO conversations (id, workspace_id, number_id, lead_id, contact_phone, status, assignee_id, \
                      unread_count, template_required, created_at, updated_at) VALUES ($1, $2, $3, $4, '15550109999', $5, $6, 0, FALSE, $7, $7)",
                binds!(conv, ws, *number, lead, status, c_assignee, created)).await;
            if rng.gen_bool(0.3) {
                exec(
                    db,
                    "INSERT INTO conversation_labels (conversation_id, label_id) VALUES ($1, $2)",
                    binds!(conv, label),
                )
                .await;
            }
            if rng.gen_bool(0.2) {
                exec(
                    db,
                    "INSERT INTO conversation_access (conversation_id, user_id, created_at) VALUES ($1, $2, $3)",
                    binds!(conv, others, created),
                )
                .await;
            }
            for _ in 0..rng.gen_range(0..7) {
                let inbound = rng.gen_bool(0.5);
                let at = created
                    + Duration::seconds(rng.gen_range(-7200..10_800))
                    + Duration::microseconds(rng.gen_range(0..1_000_000));
                let sent_by = if inbound { None } else { pick(rng, 0.7) };
                exec(db, "INSERT INTO messages (id, workspace_id, conversation_id, direction, type, text, status, sent_by_user_id, created_at, received_at) \
                          VALUES ($1, $2, $3, $4, 'text', 'x', 'sent', $5, $6, $6)",
                    binds!(Uuid::new_v4(), ws, conv, if inbound { "in" } else { "out" }, sent_by, at)).await;
            }
            convs.push(conv);
        }
        for _ in 0..rng.gen_range(0..4) {
            let a = Uuid::new_v4();
            let kind = *["note", "assigned", "status_changed", "whatsapp_session"].choose(rng).unwrap();
            exec(
                db,
                "INSERT INTO activities (id, workspace_id, lead_id, type, member_id, data, created_at, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, '{}', $6, $6)",
                binds!(a, ws, lead, kind, pick(rng, 0.8), created),
            )
            .await;
            activities.push(a);
        }
        leads.push(lead);
    }
    let viewers = vec![
        (admin, app.admin_token.clone()),
        (plain, plain_t),
        (others, others_t),
        (both, both_t),
        (labeled, labeled_t),
    ];
    World { groups, viewers, members, leads, convs, activities }
}

/// Changes after the fact, as the app makes them: (re)assignments, closes and re-opens,
/// session activities changing hands, deletions, group changes.
async fn mutate_world(app: &TestApp, w: &World, rng: &mut StdRng) {
    let db = &app.db;
    for lead in w.leads.choose_multiple(rng, 10) {
        let to = *w.members.choose(rng).unwrap();
        exec(db, "UPDATE leads SET assignee_id = $1 WHERE id = $2", binds!(to, *lead)).await;
    }
    for conv in w.convs.choose_multiple(rng, 10) {
        let to = *w.members.choose(rng).unwrap();
        exec(db, "UPDATE conversations SET assignee_id = $1 WHERE id = $2", binds!(to, *conv)).await;
    }
    for conv in w.convs.choose_multiple(rng, 10) {
        let status = if rng.gen_bool(0.5) { "open" } else { "closed" };
        exec(db, "UPDATE conversations SET status = $1 WHERE id = $2", binds!(status, *conv)).await;
    }
    let touched: Vec<Uuid> = w.activities.choose_multiple(rng, 12).copied().collect();
    for a in &touched[..8] {
        let to = if rng.gen_bool(0.8) { w.members.choose(rng).copied() } else { None };
        exec(db, "UPDATE activities SET member_id = $1 WHERE id = $2", binds!(to, *a)).await;
    }
    for a in &touched[8..] {
        exec(db, "DELETE FROM activities WHERE id = $1", binds!(*a)).await;
    }
    for lead in w.leads.choose_multiple(rng, 6) {
        let g = *w.groups.choose(rng).unwrap();
        exec(db, "DELETE FROM lead_groups WHERE lead_id = $1 AND group_id = $2", binds!(*lead, g)).await;
        exec(
            db,
            "INSERT INTO lead_groups (lead_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            binds!(*lead, *w.groups.choose(rng).unwrap()),
        )
        .await;
    }
    for lead in w.leads.choose_multiple(rng, 2) {
        exec(db, "DELETE FROM leads WHERE id = $1", binds!(*lead)).await;
    }
    // The last group goes, with its memberships.
    exec(db, "DELETE FROM crm_groups WHERE id = $1", binds!(w.groups[2])).await;
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Expected {
    assigned: i64,
    contacted: i64,
    first_responses: i64,
    frs_sum: i64,
    replies: i64,
    activities: i64,
    open: i64,
}

impl Eq for Expected {}

impl Expected {
    fn of(r: &Value) -> Expected {
        let n = |k: &str| r[k].as_i64().unwrap_or_else(|| panic!("{k} in {r}"));
        let count = n("first_responses");
        let avg = r["avg_first_response_secs"].as_f64();
        assert_eq!(avg.is_none(), count == 0, "avg is null exactly when nobody got a first response: {r}");
        Expected {
            assigned: n("assigned"),
            contacted: n("contacted"),
            first_responses: count,
            frs_sum: avg.map(|a| (a * count as f64).round() as i64).unwrap_or(0),
            replies: n("replies"),
            activities: n("activities"),
            open: n("open_conversations"),
        }
    }
    fn plus(self, o: &Expected) -> Expected {
        Expected {
            assigned: self.assigned + o.assigned,
            contacted: self.contacted + o.contacted,
            first_responses: self.first_responses + o.first_responses,
            frs_sum: self.frs_sum + o.frs_sum,
            replies: self.replies + o.replies,
            activities: self.activities + o.activities,
            open: self.open + o.open,
        }
    }
}

struct RawLead {
    created_at: DateTime<Utc>,
    assignee: Option<Uuid>,
    groups: BTreeSet<Uuid>,
}

struct RawConv {
    lead: Uuid,
    assignee: Option<Uuid>,
    open: bool,
    labels: Vec<Uuid>,
    access: Vec<Uuid>,
}

/// The raw rows of a workspace, read back plainly.
struct Raw {
    workspace_id: Uuid,
    leads: BTreeMap<Uuid, RawLead>,
    convs: HashMap<Uuid, RawConv>,
    /// (conversation, inbound, time, sent by)
    messages: Vec<(Uuid, bool, DateTime<Utc>, Option<Uuid>)>,
    /// (lead, type, member)
    activities: Vec<(Uuid, String, Option<Uuid>)>,
    users: Vec<(Uuid, String, Permissions, Vec<Uuid>)>,
}

impl Raw {
    async fn load(db: &Db, ws: Uuid) -> Raw {
        let leads: Vec<(Uuid, DateTime<Utc>, Option<Uuid>)> =
            on_db!(db, |p| sqlx::query_as("SELECT id, created_at, assignee_id FROM leads WHERE workspace_id = $1")
                .bind(ws)
                .fetch_all(p)
                .await)
            .unwrap();
        let groups: Vec<(Uuid, Uuid)> =
            on_db!(db, |p| sqlx::query_as("SELECT lead_id, group_id FROM lead_groups").fetch_all(p).await).unwrap();
        let mut leads: BTreeMap<Uuid, RawLead> = leads
            .into_iter()
            .map(|(id, created_at, assignee)| (id, RawLead { created_at, assignee, groups: BTreeSet::new() }))
            .collect();
        for (l, g) in groups {
            if let Some(l) = leads.get_mut(&l) {
                l.groups.insert(g);
            }
        }
        let convs: Vec<(Uuid, Uuid, Option<Uuid>, String)> = on_db!(db, |p| sqlx::query_as(
            "SELECT id, lead_id, assignee_id, status FROM conversations WHERE workspace_id = $1"
        )
        .bind(ws)
        .fetch_all(p)
        .await)
        .unwrap();
        let labels: Vec<(Uuid, Uuid)> =
            on_db!(db, |p| sqlx::query_as("SELECT conversation_id, label_id FROM conversation_labels")
                .fetch_all(p)
                .await)
            .unwrap();
        let access: Vec<(Uuid, Uuid)> =
            on_db!(db, |p| sqlx::query_as("SELECT conversation_id, user_id FROM conversation_access")
                .fetch_all(p)
                .await)
            .unwrap();
        let mut convs: HashMap<Uuid, RawConv> = convs
            .into_iter()
            .map(|(id, lead, assignee, status)| {
                (id, RawConv { lead, assignee, open: status == "open", labels: vec![], access: vec![] })
            })
            .collect();
        for (c, l) in labels {
            if let Some(c) = convs.get_mut(&c) {
                c.labels.push(l)
            }
        }
        for (c, u) in access {
            if let Some(c) = convs.get_mut(&c) {
                c.access.push(u)
            }
        }
        let messages: Vec<(Uuid, String, DateTime<Utc>, Option<Uuid>)> = on_db!(db, |p| sqlx::query_as(
            "SELECT conversation_id, direction, created_at, sent_by_user_id FROM messages WHERE workspace_id = $1"
        )
        .bind(ws)
        .fetch_all(p)
        .await)
        .unwrap();
        let activities: Vec<(Uuid, String, Option<Uuid>)> =
            on_db!(db, |p| sqlx::query_as("SELECT lead_id, type, member_id FROM activities WHERE workspace_id = $1")
                .bind(ws)
                .fetch_all(p)
                .await)
            .unwrap();
        let users: Vec<(Uuid, String, sqlx::types::Json<Permissions>)> =
            on_db!(db, |p| sqlx::query_as("SELECT id, role, permissions FROM users WHERE workspace_id = $1")
                .bind(ws)
                .fetch_all(p)
                .await)
            .unwrap();
        let grants: Vec<(Uuid, Uuid)> =
            on_db!(db, |p| sqlx::query_as("SELECT user_id, label_id FROM member_labels").fetch_all(p).await).unwrap();
        Raw {
            workspace_id: ws,
            leads,
            convs,
            messages: messages.into_iter().map(|(c, d, t, s)| (c, d == "in", t, s)).collect(),
            activities,
            users: users
                .into_iter()
                .map(|(id, role, perms)| {
                    let labels = grants.iter().filter(|g| g.0 == id).map(|g| g.1).collect();
                    (id, role, perms.0, labels)
                })
                .collect(),
        }
    }

    fn viewer(&self, id: Uuid) -> Viewer {
        let (_, role, permissions, label_ids) = self.users.iter().find(|u| u.0 == id).unwrap();
        Viewer {
            user_id: id,
            workspace_id: self.workspace_id,
            role: Role::parse(role).unwrap(),
            active: true,
            permissions: *permissions,
            label_ids: label_ids.clone(),
        }
    }

    /// The report as its definition reads, lead by lead.
    fn expected(
        &self,
        v: &Viewer,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        group: Option<Uuid>,
    ) -> BTreeMap<Uuid, Expected> {
        let own_only = v.role != Role::Admin && !v.permissions.view_others_leads;
        let mut out: BTreeMap<Uuid, Expected> =
            self.users.iter().filter(|u| !own_only || u.0 == v.user_id).map(|u| (u.0, Expected::default())).collect();
        for (id, l) in &self.leads {
            if from.is_some_and(|f| l.created_at < f) || to.is_some_and(|t| l.created_at >= t) {
                continue;
            }
            if group.is_some_and(|g| !l.groups.contains(&g)) {
                continue;
            }
            let convs: Vec<(&Uuid, &RawConv)> = self.convs.iter().filter(|c| c.1.lead == *id).collect();
            if v.role != Role::Admin && v.permissions.view_others_leads {
                let facts = LeadFacts {
                    workspace_id: self.workspace_id,
                    assignee_id: l.assignee,
                    conversations: convs
                        .iter()
                        .map(|(_, c)| ConvFacts {
                            workspace_id: self.workspace_id,
                            assignee_id: c.assignee,
                            label_ids: c.labels.clone(),
                            access_ids: c.access.clone(),
                        })
                        .collect(),
                };
                if !policy::can_see_lead(v, &facts) {
                    continue;
                }
            }
            let msgs: Vec<_> = self.messages.iter().filter(|m| convs.iter().any(|c| *c.0 == m.0)).collect();
            let first_in = msgs.iter().filter(|m| m.1).map(|m| m.2).min();
            let first_out = msgs.iter().filter(|m| !m.1).map(|m| m.2).min();
            let noted = self.activities.iter().any(|a| a.0 == *id && a.1 == "note" && a.2.is_some());
            if let Some(e) = l.assignee.and_then(|a| out.get_mut(&a)) {
                e.assigned += 1;
                e.contacted += i64::from(first_out.is_some() || noted);
                if let Some(fo) = first_out {
                    let start = first_in.map_or(l.created_at, |fi| fi.min(l.created_at));
                    e.first_responses += 1;
                    e.frs_sum += (fo.timestamp() - start.timestamp()).max(0);
                }
            }
            for m in &msgs {
                if let Some(e) = m.3.and_then(|s| out.get_mut(&s)) {
                    e.replies += 1
                }
            }
            for a in self.activities.iter().filter(|a| a.0 == *id) {
                if let Some(e) = a.2.and_then(|m| out.get_mut(&m)) {
                    e.activities += 1
                }
            }
            for (_, c) in &convs {
                if let Some(e) = c.assignee.filter(|_| c.open).and_then(|m| out.get_mut(&m)) {
                    e.open += 1
                }
            }
        }
        out
    }
}
