//! Conversations and leads, more fields: lists in the order of the newest message, where a
//! lead stands (contacted, first response, last activity) against a recomputation, who may
//! edit a lead, `assignment.alert` on every change of assignee, bulk assignment of unassigned
//! leads, and the team view preference.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::on_db;
use uuid::Uuid;

use crate::live::{Live, live};
use crate::on_both;
use crate::support::*;
use crate::webhooks::text_payload;

const NUMBER: &str = "100200300400600";
/// WhatsApp times of the stories (2023-11-14, long before the leads are created).
const T0: i64 = 1_700_000_000;

fn id(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().unwrap_or_else(|| panic!("not an id: {v}"))).unwrap()
}

fn at(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap().with_timezone(&Utc)
}

fn contact(n: usize) -> String {
    format!("1555030{n:04}")
}

impl TestApp {
    /// A customer message from contact `n` at WhatsApp time `ts`, processed.
    async fn customer_writes(&self, n: usize, wamid: &str, ts: i64) {
        assert_eq!(self.signed_webhook(&text_payload(wamid, &contact(n), ts, "hello")).await, StatusCode::OK);
        self.webhooks_processed().await;
    }

    /// The conversations `token` lists (every page, `limit` a page), as (id, last_message_at).
    async fn conversation_order(&self, token: &str, query: &str, limit: usize) -> Vec<(Uuid, Value)> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let after = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let (status, page) = self.get(&format!("/api/v1/conversations?limit={limit}{query}{after}"), token).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for c in page["conversations"].as_array().unwrap() {
                out.push((id(&c["id"]), c["last_message_at"].clone()));
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    async fn conversation_of(&self, n: usize) -> Value {
        let (_, list) = self.get("/api/v1/conversations?limit=200", &self.admin_token).await;
        list["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["contact_phone"] == contact(n).as_str())
            .unwrap_or_else(|| panic!("no conversation with contact {n}: {list}"))
            .clone()
    }

    async fn lead_ids(&self, token: &str, query: &str) -> BTreeSet<Uuid> {
        let (status, page) = self.get(&format!("/api/v1/leads?limit=200{query}"), token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["leads"].as_array().unwrap().iter().map(|l| id(&l["id"])).collect()
    }

    async fn conversation_ids(&self, token: &str, query: &str) -> BTreeSet<Uuid> {
        self.conversation_order(token, query, 200).await.into_iter().map(|(c, _)| c).collect()
    }
}

/// The next `assignment.alert` on `l` (other frames skipped).
async fn next_alert(l: &mut Live) -> Value {
    loop {
        let e = l.next_json().await;
        if e["type"] == "assignment.alert" {
            return e;
        }
    }
}

/// No `assignment.alert` arrives on `l` (other frames are fine) until it is quiet for `ms`.
async fn no_alert(l: &mut Live, ms: u64) {
    while let Ok(e) = tokio::time::timeout(std::time::Duration::from_millis(ms), l.next_json()).await {
        assert_ne!(e["type"], "assignment.alert", "an alert nobody should get: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Conversations in the order of their newest message.

on_both! {
    async fn conversations_are_listed_by_their_newest_message(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER, "15550100100", true).await;
        let admin = app.admin_token.clone();
        // Three customers write, the oldest first; a fourth wrote long before them all.
        app.customer_writes(1, "wamid.f1", T0 + 100).await;
        app.customer_writes(2, "wamid.f2", T0 + 200).await;
        app.customer_writes(3, "wamid.f3", T0 + 300).await;
        app.customer_writes(4, "wamid.f4", T0).await;
        let (c1, c2, c3, c4) = (
            id(&app.conversation_of(1).await["id"]),
            id(&app.conversation_of(2).await["id"]),
            id(&app.conversation_of(3).await["id"]),
            id(&app.conversation_of(4).await["id"]),
        );
        let newest_first = vec![c3, c2, c1, c4];
        let order = app.conversation_order(&admin, "", 50).await;
        assert_eq!(order.iter().map(|o| o.0).collect::<Vec<_>>(), newest_first, "newest message first");
        let times: Vec<DateTime<Utc>> = order.iter().map(|o| at(&o.1)).collect();
        let expected: Vec<DateTime<Utc>> =
            [300, 200, 100, 0].iter().map(|s| DateTime::from_timestamp(T0 + s, 0).unwrap()).collect();
        assert_eq!(times, expected, "last_message_at is WhatsApp's time of the newest message");

        // Labelling, assigning, closing and reading the oldest chat moves nothing, on any page.
        let (_, label) = app.post("/api/v1/labels", &admin, json!({"name": "VIP"})).await;
        let (status, body) = app.json(Method::PUT, &format!("/api/v1/conversations/{c4}/labels"), &admin,
            Some(json!({"label_ids": [label["id"]]}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let me = id(&app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"]);
        let (status, body) = app.post(&format!("/api/v1/conversations/{c4}/assign"), &admin, json!({"assignee_id": me})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = app.post(&format!("/api/v1/conversations/{c4}/status"), &admin, json!({"status": "closed"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = app.post(&format!("/api/v1/conversations/{c4}/read"), &admin, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        for limit in [1, 2, 50] {
            let order = app.conversation_order(&admin, "", limit).await;
            assert_eq!(order.iter().map(|o| o.0).collect::<Vec<_>>(), newest_first, "pages of {limit}");
        }
        let (_, one) = app.get(&format!("/api/v1/conversations/{c4}"), &admin).await;
        assert_eq!(at(&one["last_message_at"]), DateTime::from_timestamp(T0, 0).unwrap());

        // A late message older than the chat's newest changes nothing; a new one moves it up.
        app.customer_writes(2, "wamid.f2-late", T0 + 150).await;
        let order = app.conversation_order(&admin, "", 2).await;
        assert_eq!(order.iter().map(|o| o.0).collect::<Vec<_>>(), newest_first, "a late message");
        app.customer_writes(4, "wamid.f4-new", T0 + 400).await;
        let order = app.conversation_order(&admin, "", 2).await;
        assert_eq!(order.iter().map(|o| o.0).collect::<Vec<_>>(), vec![c4, c3, c2, c1], "the chat that wrote last");
    }
}

// ---------------------------------------------------------------------------------------------
// Where leads stand, against a recomputation from the raw rows.

/// contacted, first response seconds, last activity of every lead, from messages, activities
/// and the leads themselves, as the contract defines them.
async fn recompute(app: &TestApp) -> HashMap<Uuid, (bool, Option<i64>, DateTime<Utc>)> {
    let leads: Vec<(Uuid, DateTime<Utc>)> =
        on_db!(&app.db, |p| sqlx::query_as("SELECT id, created_at FROM leads").fetch_all(p).await).unwrap();
    let messages: Vec<(Uuid, String, DateTime<Utc>)> = on_db!(&app.db, |p| {
        sqlx::query_as(
        "SELECT c.lead_id, m.direction, m.created_at FROM messages m JOIN conversations c ON c.id = m.conversation_id"
    )
    .fetch_all(p)
    .await
    })
    .unwrap();
    let activities: Vec<(Uuid, String, Option<Uuid>, DateTime<Utc>)> =
        on_db!(&app.db, |p| sqlx::query_as("SELECT lead_id, type, member_id, created_at FROM activities")
            .fetch_all(p)
            .await)
        .unwrap();
    leads
        .into_iter()
        .map(|(lead, created)| {
            let mine = messages.iter().filter(|m| m.0 == lead);
            let first_in = mine.clone().filter(|m| m.1 == "in").map(|m| m.2).min();
            let first_out = mine.clone().filter(|m| m.1 == "out").map(|m| m.2).min();
            let noted = activities.iter().any(|a| a.0 == lead && a.1 == "note" && a.2.is_some());
            let start = first_in.map_or(created, |f| f.min(created));
            let frs = first_out.map(|o| (o.timestamp() - start.timestamp()).max(0));
            let last = mine
                .map(|m| m.2)
                .chain(activities.iter().filter(|a| a.0 == lead).map(|a| a.3))
                .fold(created, DateTime::max);
            (lead, (first_out.is_some() || noted, frs, last))
        })
        .collect()
}

on_both! {
    async fn leads_say_whether_and_how_fast_they_were_answered(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER, "15550100100", true).await;
        let admin = app.admin_token.clone();
        let me = id(&app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"]);
        // Five customers write; the admin answers two (one 90 s later on the clock), writes a
        // note on a third; a lead created through the API never hears from anyone.
        for n in 1..=5 {
            app.customer_writes(n, &format!("wamid.p{n}"), app.clock.now().timestamp() - 30).await;
        }
        let quiet = app.create_lead("Quiet", "+15550309999").await;
        let fresh = app.create_lead("Fresh", "+15550309998").await;
        assert_eq!(fresh["contacted"], false);
        assert_eq!(fresh["first_response_secs"], Value::Null);
        assert_eq!(at(&fresh["last_activity_at"]), at(&fresh["created_at"]));
        for (n, wait) in [(1usize, 0i64), (2, 90)] {
            app.clock.advance(chrono::Duration::seconds(wait));
            let conv = app.conversation_of(n).await;
            let cid = id(&conv["id"]);
            app.post(&format!("/api/v1/conversations/{cid}/assign"), &admin, json!({"assignee_id": me})).await;
            let (status, body) = app.post(&format!("/api/v1/conversations/{cid}/messages"), &admin,
                json!({"type": "text", "text": "Hi, how can we help?"})).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        }
        let noted = id(&app.conversation_of(3).await["lead_id"]);
        let (status, body) = app.post(&format!("/api/v1/leads/{noted}/notes"), &admin, json!({"text": "called them"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let truth = recompute(&app).await;
        assert_eq!(truth.len(), 7);
        let (status, page) = app.get("/api/v1/leads?limit=200", &admin).await;
        assert_eq!(status, StatusCode::OK);
        for l in page["leads"].as_array().unwrap() {
            let (contacted, frs, last) = truth[&id(&l["id"])];
            assert_eq!(l["contacted"], contacted, "{l}");
            assert_eq!(l["first_response_secs"].as_i64(), frs, "{l}");
            assert_eq!(at(&l["last_activity_at"]), last, "{l}");
            let (_, one) = app.get(&format!("/api/v1/leads/{}", l["id"].as_str().unwrap()), &admin).await;
            assert_eq!((&one["contacted"], &one["first_response_secs"], &one["last_activity_at"]),
                (&l["contacted"], &l["first_response_secs"], &l["last_activity_at"]), "a lead alone says the same");
        }
        let answered: Vec<i64> = truth.values().filter_map(|t| t.1).collect();
        assert!(answered.iter().any(|s| *s >= 90), "one answer took 90 s on the clock: {answered:?}");

        // ?contacted= splits the leads exactly; anything else is a 400.
        let uncontacted: BTreeSet<Uuid> = truth.iter().filter(|(_, t)| !t.0).map(|(l, _)| *l).collect();
        let contacted: BTreeSet<Uuid> = truth.iter().filter(|(_, t)| t.0).map(|(l, _)| *l).collect();
        assert_eq!(contacted.len(), 3, "two answered, one noted");
        assert!(uncontacted.contains(&id(&quiet["id"])));
        assert_eq!(app.lead_ids(&admin, "&contacted=false").await, uncontacted);
        assert_eq!(app.lead_ids(&admin, "&contacted=true").await, contacted);
        let (status, body) = app.get("/api/v1/leads?contacted=maybe", &admin).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_filter"));
    }
}

// ---------------------------------------------------------------------------------------------
// Only who may assign a lead edits it.

on_both! {
    async fn only_who_may_assign_a_lead_edits_it(t: TestDb) {
        let app = spawn_app(&t).await;
        let (owner, owner_tok) = app.member("owner@example.com", json!({})).await;
        let (pool_id, pool_tok) = app.member("pool@example.com", json!({"view_unassigned": true})).await;
        let (_, lead_tok) = app.member("lead@example.com", json!({"view_others_leads": true})).await;

        // An unassigned lead: the pool member sees it, may not edit it, may claim it by PATCH.
        let lead = app.create_lead("Unclaimed", "+15550301001").await;
        let path = format!("/api/v1/leads/{}", lead["id"].as_str().unwrap());
        let (status, seen) = app.get(&path, &pool_tok).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(seen["can"]["edit"], false, "{seen}");
        let (status, body) = app.json(Method::PATCH, &path, &pool_tok, Some(json!({"name": "Mine now"}))).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "not_assignee"));
        let (status, body) = app.json(Method::PATCH, &path, &pool_tok,
            Some(json!({"assignee_id": pool_id, "name": "Mine now"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["name"].as_str(), id(&body["assignee_id"])), (Some("Mine now"), pool_id));
        assert_eq!(body["can"]["edit"], true);

        // Assigned to the owner: the owner and a member with view_others_leads edit it.
        let (status, body) = app.json(Method::PATCH, &path, &lead_tok, Some(json!({"assignee_id": owner}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = app.json(Method::PATCH, &path, &owner_tok, Some(json!({"source": "fair"}))).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app.json(Method::PATCH, &path, &lead_tok, Some(json!({"source": "web"}))).await;
        assert_eq!(status, StatusCode::OK);
        // The pool member no longer sees it at all.
        let (status, _) = app.json(Method::PATCH, &path, &pool_tok, Some(json!({"name": "x"}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

// ---------------------------------------------------------------------------------------------
// assignment.alert on every change of assignee, to the new assignee only.

on_both! {
    async fn every_new_assignee_is_alerted_and_nobody_else(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER, "15550100100", true).await;
        let admin = app.admin_token.clone();
        let admin_id = id(&app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"]);
        let (a, a_tok) = app.member("a@example.com", json!({"view_others_leads": true})).await;
        let (b, b_tok) = app.member("b@example.com", json!({})).await;
        let (watcher_id, watcher_tok) = app.member("watcher@example.com", json!({"view_others_leads": true, "view_unassigned": true})).await;
        app.customer_writes(1, "wamid.a1", T0).await;
        let conv = app.conversation_of(1).await;
        let (cid, lead) = (id(&conv["id"]), id(&conv["lead_id"]));
        let mut a_live = live(&app, &a_tok, None).await;
        let mut b_live = live(&app, &b_tok, None).await;
        let mut admin_live = live(&app, &admin, None).await;
        let mut watcher = live(&app, &watcher_tok, None).await;

        // The admin assigns the chat to A: A hears it, with who did it.
        let (status, body) = app.post(&format!("/api/v1/conversations/{cid}/assign"), &admin, json!({"assignee_id": a})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let e = next_alert(&mut a_live).await;
        assert_eq!((id(&e["data"]["conversation_id"]), id(&e["data"]["lead_id"])), (cid, lead));
        assert_eq!((id(&e["data"]["member_id"]), id(&e["data"]["by_member_id"])), (a, admin_id));
        assert_eq!(e["data"]["cause"], "assign");

        // A gives the lead to B by PATCH: B hears it.
        let (status, body) = app.json(Method::PATCH, &format!("/api/v1/leads/{lead}"), &a_tok, Some(json!({"assignee_id": b}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let e = next_alert(&mut b_live).await;
        assert_eq!((e["data"]["cause"].as_str(), id(&e["data"]["by_member_id"])), (Some("lead_update"), a));

        // Bulk reassignment from B back to A: A hears it once.
        let (status, body) = app.post("/api/v1/leads/bulk-reassign", &admin,
            json!({"from_member_id": b, "to_member_id": a, "lead_ids": [lead]})).await;
        assert_eq!((status, body["moved"].as_i64()), (StatusCode::OK, Some(1)), "{body}");
        let e = next_alert(&mut a_live).await;
        assert_eq!(e["data"]["cause"], "bulk_reassign");

        // The admin takes the chat themselves: nobody is alerted.
        let (status, _) = app.post(&format!("/api/v1/conversations/{cid}/assign"), &admin, json!({"assignee_id": admin_id})).await;
        assert_eq!(status, StatusCode::OK);

        // The engine gives a new lead to B: B hears it.
        let (status, body) = app.json(Method::PUT, "/api/v1/assignment", &admin,
            Some(json!({"mode": "round_robin", "members": [{"member_id": b, "enabled": true},
                {"member_id": a, "enabled": false}, {"member_id": admin_id, "enabled": false},
                {"member_id": watcher_id, "enabled": false}]}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let routed = app.create_lead("Routed", "+15550301002").await;
        let e = next_alert(&mut b_live).await;
        assert_eq!((id(&e["data"]["lead_id"]), e["data"]["cause"].as_str()), (id(&routed["id"]), Some("new_lead")));
        assert_eq!(e["data"]["by_member_id"], Value::Null);

        // A CSV import that names another assignee for the lead: B hears it.
        let out = app.import_ok(&admin, &format!("name,phone,source,group,assignee_email\nFirst,+{},,,b@example.com\n", contact(1))).await;
        assert_eq!(out["updated"], 1, "{out}");
        let e = next_alert(&mut b_live).await;
        assert_eq!((id(&e["data"]["lead_id"]), e["data"]["cause"].as_str()), (lead, Some("import")));

        // Exactly those: two alerts to A (assign, bulk), three to B (PATCH, engine, import) — and
        // none to the admin, who made their own change, or to anyone watching.
        no_alert(&mut a_live, 300).await;
        no_alert(&mut b_live, 100).await;
        let alerts: i64 = on_db!(&app.db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE type = 'assignment.alert'")
            .fetch_one(p).await).unwrap();
        assert_eq!(alerts, 5, "one alert per change to someone else");
        no_alert(&mut admin_live, 300).await;
        no_alert(&mut watcher, 100).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Bulk assignment of unassigned leads.

on_both! {
    async fn unassigned_leads_are_assigned_in_bulk(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER, "15550100100", true).await;
        let (a, a_tok) = app.member("a@example.com", json!({})).await;
        let (_, others_tok) = app.member("others@example.com", json!({"view_others_leads": true})).await;
        let (_, both_tok) = app.member("both@example.com", json!({"view_others_leads": true, "view_unassigned": true})).await;
        app.customer_writes(1, "wamid.u1", T0).await;
        app.customer_writes(2, "wamid.u2", T0 + 1).await;
        let (l1, l2) = (id(&app.conversation_of(1).await["lead_id"]), id(&app.conversation_of(2).await["lead_id"]));
        let owned = app.create_lead("Owned", "+15550301003").await;
        let (status, _) = app.json(Method::PATCH, &format!("/api/v1/leads/{}", owned["id"].as_str().unwrap()),
            &app.admin_token, Some(json!({"assignee_id": a}))).await;
        assert_eq!(status, StatusCode::OK);
        let mut a_live = live(&app, &a_tok, None).await;

        let (status, body) = app.post("/api/v1/leads/bulk-reassign", &both_tok,
            json!({"from_member_id": null, "to_member_id": a})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "lead_ids_required"));
        let (status, body) = app.post("/api/v1/leads/bulk-reassign", &others_tok,
            json!({"from_member_id": null, "to_member_id": a, "lead_ids": [l1]})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));

        // Two unassigned leads and one already assigned: the two move, with their chats.
        let (status, body) = app.post("/api/v1/leads/bulk-reassign", &both_tok,
            json!({"from_member_id": null, "to_member_id": a, "lead_ids": [l1, l2, owned["id"]]})).await;
        assert_eq!((status, body["moved"].as_i64()), (StatusCode::OK, Some(2)), "{body}");
        for n in [1, 2] {
            let conv = app.conversation_of(n).await;
            assert_eq!(id(&conv["assignee_id"]), a, "the chat went with its lead");
        }
        assert_eq!(app.lead_ids(&app.admin_token, "&unassigned=true").await, BTreeSet::new());
        let mut heard = BTreeSet::new();
        while heard.len() < 2 {
            heard.insert(id(&next_alert(&mut a_live).await["data"]["lead_id"]));
        }
        assert_eq!(heard, BTreeSet::from([l1, l2]));
        // Admins may too (nothing left to move).
        let (status, body) = app.post("/api/v1/leads/bulk-reassign", &app.admin_token,
            json!({"from_member_id": null, "to_member_id": a, "lead_ids": [l1]})).await;
        assert_eq!((status, body["moved"].as_i64()), (StatusCode::OK, Some(0)), "{body}");
    }
}

// ---------------------------------------------------------------------------------------------
// The team view preference.

on_both! {
    async fn the_team_view_hides_what_a_member_chose_to_hide(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER, "15550100100", true).await;
        let (me, tok) = app.member("me@example.com", json!({"view_others_leads": true, "view_unassigned": true})).await;
        let (other, _) = app.member("other@example.com", json!({})).await;
        let (_, plain_tok) = app.member("plain@example.com", json!({})).await;
        for n in 1..=3 {
            app.customer_writes(n, &format!("wamid.v{n}"), T0 + n as i64).await;
        }
        let (mine, others, open) = (app.conversation_of(1).await, app.conversation_of(2).await, app.conversation_of(3).await);
        app.post(&format!("/api/v1/conversations/{}/assign", mine["id"].as_str().unwrap()), &app.admin_token,
            json!({"assignee_id": me})).await;
        app.post(&format!("/api/v1/conversations/{}/assign", others["id"].as_str().unwrap()), &app.admin_token,
            json!({"assignee_id": other})).await;
        let cid = |c: &Value| id(&c["id"]);
        let lid = |c: &Value| id(&c["lead_id"]);

        // Defaults: everything the member may see.
        let (status, prefs) = app.get("/api/v1/me/preferences", &tok).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(prefs, json!({"team_view": {"show_others": true, "show_unassigned": true}}));
        let all = BTreeSet::from([cid(&mine), cid(&others), cid(&open)]);
        assert_eq!(app.conversation_ids(&tok, "").await, all);

        // Hide unassigned ones, then others' too: both lists follow.
        let put = |body: Value| {
            let tok = tok.clone();
            let app = &app;
            async move { app.json(Method::PUT, "/api/v1/me/preferences", &tok, Some(body)).await }
        };
        let (status, body) = put(json!({"team_view": {"show_others": true, "show_unassigned": false}})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(app.conversation_ids(&tok, "").await, BTreeSet::from([cid(&mine), cid(&others)]));
        assert_eq!(app.lead_ids(&tok, "").await, BTreeSet::from([lid(&mine), lid(&others)]));
        put(json!({"team_view": {"show_others": false, "show_unassigned": false}})).await;
        assert_eq!(app.conversation_ids(&tok, "").await, BTreeSet::from([cid(&mine)]));
        assert_eq!(app.lead_ids(&tok, "").await, BTreeSet::from([lid(&mine)]));
        let (_, prefs) = app.get("/api/v1/me/preferences", &tok).await;
        assert_eq!(prefs, json!({"team_view": {"show_others": false, "show_unassigned": false}}));

        // An explicit filter still answers what it asks for.
        assert_eq!(app.conversation_ids(&tok, "&unassigned=true").await, BTreeSet::from([cid(&open)]));
        assert_eq!(app.conversation_ids(&tok, &format!("&assignee_id={other}")).await, BTreeSet::from([cid(&others)]));
        assert_eq!(app.lead_ids(&tok, "&unassigned=true").await, BTreeSet::from([lid(&open)]));

        // It never widens: a plain member who shows everything still sees only their own.
        let (status, _) = app.json(Method::PUT, "/api/v1/me/preferences", &plain_tok,
            Some(json!({"team_view": {"show_others": true, "show_unassigned": true}}))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(app.conversation_ids(&plain_tok, "").await, BTreeSet::new());

        // Bad bodies: 422 naming the field.
        let (status, body) = put(json!({"team_view": {"show_others": "yes", "show_unassigned": true}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("show_others"), "{body}");
        let (status, body) = put(json!({"team_view": {"show_others": true}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("show_unassigned"), "{body}");
    }
}
