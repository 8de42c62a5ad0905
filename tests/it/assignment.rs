//! Assignment: settings, round robin, availability, rules, re-opened chats, concurrency, the
//! decision log and bulk reassignment.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::live::live;
use crate::on_both;
use crate::support::*;
use crate::webhooks::text_payload;

impl TestApp {
    async fn admin_id(&self) -> Uuid {
        let me = self.login(ADMIN_EMAIL, PASSWORD).await;
        Uuid::parse_str(me["user"]["id"].as_str().unwrap()).unwrap()
    }

    async fn put_assignment(&self, settings: Value) -> Value {
        let (status, body) = self.json(Method::PUT, "/api/v1/assignment", &self.admin_token, Some(settings)).await;
        assert_eq!(status, StatusCode::OK, "PUT assignment: {body}");
        body
    }

    async fn new_lead(&self, body: Value) -> Value {
        let (status, lead) = self.post("/api/v1/leads", &self.admin_token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{lead}");
        lead
    }

    async fn decisions(&self, lead: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/v1/leads/{lead}/assignment-log"), &self.admin_token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["decisions"].as_array().unwrap().clone()
    }
}

fn id(v: &Value) -> Option<Uuid> {
    v.as_str().map(|s| Uuid::parse_str(s).unwrap())
}

fn phone(n: usize) -> String {
    format!("+1555020{n:04}")
}

/// Members `a@`, `b@`, … with no permissions; returns (ids, tokens).
async fn members(app: &TestApp, n: usize) -> (Vec<Uuid>, Vec<String>) {
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..n {
        let (id, tok) = app.member(&format!("m{i}@example.com"), json!({})).await;
        ids.push(id);
        tokens.push(tok);
    }
    (ids, tokens)
}

fn toggles(on: &[Uuid], off: &[Uuid]) -> Value {
    let mut v: Vec<Value> = on.iter().map(|m| json!({"member_id": m, "enabled": true})).collect();
    v.extend(off.iter().map(|m| json!({"member_id": m, "enabled": false})));
    Value::Array(v)
}

on_both! {
    async fn defaults_and_validation(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_id().await;
        let (ids, tokens) = members(&app, 2).await;
        let (status, s) = app.get("/api/v1/assignment", &tokens[0]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(s["mode"], "unassigned");
        assert_eq!(s["leads_per_round"], 1);
        assert_eq!(s["only_available"], false);
        assert_eq!(s["max_open_per_member"], Value::Null);
        assert_eq!(s["rules"], json!([]));
        assert_eq!(s["members"], toggles(&[admin, ids[0], ids[1]], &[]));
        // Not an admin: 403.
        let (status, _) = app.json(Method::PUT, "/api/v1/assignment", &tokens[0], Some(s.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // Listed members go first, the rest follow enabled.
        let stored = app.put_assignment(json!({"mode": "round_robin", "leads_per_round": 3,
            "members": toggles(&[ids[1]], &[ids[0]])})).await;
        assert_eq!(stored["members"], json!([{"member_id": ids[1], "enabled": true},
            {"member_id": ids[0], "enabled": false}, {"member_id": admin, "enabled": true}]));
        let (_, again) = app.get("/api/v1/assignment", &tokens[1]).await;
        assert_eq!(again, stored);

        let bad = [
            (json!({"mode": "random"}), "invalid_mode"),
            (json!({"mode": "round_robin", "leads_per_round": 0}), "invalid_leads_per_round"),
            (json!({"mode": "round_robin", "leads_per_round": 11}), "invalid_leads_per_round"),
            (json!({"mode": "unassigned", "max_open_per_member": 0}), "invalid_max_open_per_member"),
            (json!({"mode": "unassigned", "members": [{"member_id": Uuid::new_v4(), "enabled": true}]}), "unknown_member"),
            (json!({"mode": "unassigned", "members": toggles(&[ids[0], ids[0]], &[])}), "duplicate_member"),
            (json!({"mode": "unassigned", "rules": [{"name": "r", "criteria": [{"field": "city", "op": "equals", "value": "x"}],
                "route": {"type": "unassigned"}}]}), "invalid_field"),
            (json!({"mode": "unassigned", "rules": [{"name": "r", "criteria": [{"field": "custom.", "op": "equals", "value": "x"}],
                "route": {"type": "unassigned"}}]}), "invalid_field"),
            (json!({"mode": "unassigned", "rules": [{"name": "r", "criteria": [{"field": "source", "op": "like", "value": "x"}],
                "route": {"type": "unassigned"}}]}), "invalid_op"),
            (json!({"mode": "unassigned", "rules": [{"name": "r", "criteria": [], "route": {"type": "member"}}]}), "invalid_route"),
            (json!({"mode": "unassigned", "rules": [{"name": "r", "criteria": [], "route": {"type": "round_robin", "member_ids": []}}]}), "invalid_route"),
            (json!({"mode": "unassigned", "rules": [{"name": "r", "criteria": [], "route": {"type": "member", "member_id": Uuid::new_v4()}}]}), "unknown_member"),
            (json!({"mode": "unassigned", "rules": [{"name": " ", "criteria": [], "route": {"type": "unassigned"}}]}), "invalid_rule"),
        ];
        for (body, code) in bad {
            let (status, err) = app.json(Method::PUT, "/api/v1/assignment", &app.admin_token, Some(body.clone())).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
            assert_eq!(error_code(&err), code, "{body}");
        }
        let (_, unchanged) = app.get("/api/v1/assignment", &tokens[1]).await;
        assert_eq!(unchanged, stored, "refused settings change nothing");
    }

    async fn round_robin_in_exact_order_and_toggles(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_id().await;
        let (ids, _) = members(&app, 3).await;
        app.put_assignment(json!({"mode": "round_robin", "leads_per_round": 2,
            "members": toggles(&ids, &[admin])})).await;
        let mut got = Vec::new();
        let mut leads = Vec::new();
        for i in 0..7 {
            let lead = app.create_lead(&format!("Lead {i}"), &phone(i)).await;
            got.push(id(&lead["assignee_id"]).expect("assigned in the 201"));
            leads.push(lead["id"].as_str().unwrap().to_owned());
        }
        let [a, b, c] = [ids[0], ids[1], ids[2]];
        assert_eq!(got, [a, a, b, b, c, c, a]);
        // The decision log explains: every candidate considered, the admin switched off.
        let d = app.decisions(&leads[2]).await;
        assert_eq!(d.len(), 1);
        assert_eq!(d[0]["rule"], Value::Null);
        assert_eq!(d[0]["chosen_member_id"], json!(b));
        assert_eq!(d[0]["candidates"], json!([{"member_id": a, "skipped": null}, {"member_id": b, "skipped": null},
            {"member_id": c, "skipped": null}, {"member_id": admin, "skipped": "disabled"}]));
        // The timeline shows the assignment with its reason.
        let (_, tl) = app.get(&format!("/api/v1/leads/{}/timeline?type=assigned", leads[2]), &app.admin_token).await;
        let acts = tl["activities"].as_array().unwrap();
        assert_eq!(acts.len(), 1, "{tl}");
        assert_eq!(acts[0]["data"]["reason"], "round_robin");
        assert_eq!(acts[0]["data"]["to_member_id"], json!(b));

        // B switched off: A finishes its round, then C (B skipped as disabled); the position
        // survived the settings change.
        app.put_assignment(json!({"mode": "round_robin", "leads_per_round": 2,
            "members": [{"member_id": a, "enabled": true}, {"member_id": b, "enabled": false},
                        {"member_id": c, "enabled": true}, {"member_id": admin, "enabled": false}]})).await;
        let l8 = app.create_lead("Lead 8", &phone(8)).await;
        let l9 = app.create_lead("Lead 9", &phone(9)).await;
        assert_eq!((id(&l8["assignee_id"]), id(&l9["assignee_id"])), (Some(a), Some(c)));
        let d = app.decisions(l9["id"].as_str().unwrap()).await;
        assert_eq!(d[0]["candidates"][1], json!({"member_id": b, "skipped": "disabled"}));

        // An explicit assignee skips the engine; unassigned mode leaves leads in the pool.
        let l10 = app.new_lead(json!({"name": "Mine", "phone": phone(10), "assignee_id": b})).await;
        assert_eq!(id(&l10["assignee_id"]), Some(b));
        assert!(app.decisions(l10["id"].as_str().unwrap()).await.is_empty());
        app.put_assignment(json!({"mode": "unassigned"})).await;
        let l11 = app.create_lead("Pool", &phone(11)).await;
        assert_eq!(l11["assignee_id"], Value::Null);
        let d = app.decisions(l11["id"].as_str().unwrap()).await;
        assert_eq!((d.len(), &d[0]["chosen_member_id"]), (1, &Value::Null));
    }

    async fn only_available_skips_away_and_offline(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_id().await;
        let (ids, tokens) = members(&app, 3).await;
        let [a, b, c] = [ids[0], ids[1], ids[2]];
        // A offline (no socket), B available (socket, no presence message), C away.
        let _b_live = live(&app, &tokens[1], None).await;
        let mut c_live = live(&app, &tokens[2], None).await;
        c_live.send_json(json!({"type": "presence", "status": "away"})).await;
        eventually("C is away", || async {
            let ok = app.running.as_ref().unwrap().state.presence.availability(c)
                == switchboard::live::presence::Availability::Away;
            ok.then_some(())
        })
        .await;
        app.put_assignment(json!({"mode": "round_robin", "only_available": true,
            "members": toggles(&ids, &[admin])})).await;
        for i in 0..3 {
            let lead = app.create_lead(&format!("L{i}"), &phone(i)).await;
            assert_eq!(id(&lead["assignee_id"]), Some(b));
            let d = app.decisions(lead["id"].as_str().unwrap()).await;
            assert_eq!(d[0]["candidates"], json!([{"member_id": a, "skipped": "offline"},
                {"member_id": b, "skipped": null}, {"member_id": c, "skipped": "away"},
                {"member_id": admin, "skipped": "disabled"}]));
        }
        // Capacity: B holds one open conversation; with max 1 nobody is left: the pool.
        app.connect_number("100200300400600", "15550100100", false).await;
        assert_eq!(app.signed_webhook(&text_payload("w.cap", "15550200000", 1_700_000_000, "hi")).await, StatusCode::OK);
        app.webhooks_processed().await;
        app.put_assignment(json!({"mode": "round_robin", "only_available": true, "max_open_per_member": 1,
            "members": toggles(&ids, &[admin])})).await;
        let lead = app.create_lead("Full", &phone(50)).await;
        assert_eq!(lead["assignee_id"], Value::Null);
        let d = app.decisions(lead["id"].as_str().unwrap()).await;
        assert_eq!(d[0]["candidates"][1], json!({"member_id": b, "skipped": "at_capacity"}));
        assert_eq!(d[0]["chosen_member_id"], Value::Null);
    }

    async fn rules_with_every_operator_first_match_wins(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_id().await;
        let (ids, _) = members(&app, 3).await;
        let [a, b, c] = [ids[0], ids[1], ids[2]];
        app.put_assignment(json!({"mode": "unassigned", "members": toggles(&ids, &[admin]), "rules": [
            {"name": "facebook pro", "criteria": [{"field": "source", "op": "equals", "value": "facebook"},
                {"field": "custom.plan", "op": "starts_with", "value": "Pro"}], "route": {"type": "member", "member_id": a}},
            {"name": "portuguese abroad", "criteria": [{"field": "country", "op": "not_equals", "value": "BR"},
                {"field": "language", "op": "contains", "value": "pt"}], "route": {"type": "member", "member_id": b}},
            {"name": "ads", "criteria": [{"field": "page", "op": "ends_with", "value": "-ads"}],
                "route": {"type": "round_robin", "member_ids": [b, c]}},
            {"name": "forms", "criteria": [{"field": "form", "op": "equals", "value": "contact"}],
                "route": {"type": "unassigned"}},
            {"name": "catch-all facebook", "criteria": [{"field": "source", "op": "contains", "value": "face"}],
                "route": {"type": "member", "member_id": c}},
        ]})).await;
        let cases = [
            (json!({"source": "facebook", "custom_fields": {"plan": "Professional"}}), "+15550300001", Some(a), Some("facebook pro")),
            // Case-sensitive: "pro" is not "Pro"; the US number with Portuguese goes to B.
            (json!({"source": "facebook", "custom_fields": {"plan": "pro", "language": "pt-BR"}}), "+15550300002", Some(b), Some("portuguese abroad")),
            (json!({"custom_fields": {"language": "pt-BR", "page": "summer-ads"}}), "+5511999990003", Some(b), Some("ads")),
            (json!({"custom_fields": {"page": "winter-ads"}}), "+5511999990004", Some(c), Some("ads")),
            (json!({"source": "facebook", "custom_fields": {"form": "contact"}}), "+15550300005", None, Some("forms")),
            (json!({"source": "Facebook", "custom_fields": {"form": "Contact"}}), "+15550300006", None, None),
            (json!({"source": "interface"}), "+15550300007", Some(c), Some("catch-all facebook")),
        ];
        for (i, (extra, phone, want, rule)) in cases.into_iter().enumerate() {
            let mut body = json!({"name": format!("Case {i}"), "phone": phone});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let lead = app.new_lead(body).await;
            assert_eq!(id(&lead["assignee_id"]), want, "case {i}");
            let d = app.decisions(lead["id"].as_str().unwrap()).await;
            assert_eq!(d[0]["rule"].as_str(), rule, "case {i}");
            assert_eq!(id(&d[0]["chosen_member_id"]), want, "case {i}");
        }
    }

    async fn reopened_chat_leaves_an_offline_assignee(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_id().await;
        let (ids, tokens) = members(&app, 2).await;
        let [a, b] = [ids[0], ids[1]];
        app.connect_number("100200300400600", "15550100100", true).await;
        let lead = app.new_lead(json!({"name": "Returning", "phone": "+15550100111", "assignee_id": a})).await;
        let lead_id = lead["id"].as_str().unwrap().to_owned();
        assert_eq!(app.signed_webhook(&text_payload("w.1", "15550100111", 1_700_000_000, "hi")).await, StatusCode::OK);
        app.webhooks_processed().await;
        let (_, list) = app.get("/api/v1/conversations", &app.admin_token).await;
        let conv = list["conversations"][0].clone();
        assert_eq!(id(&conv["assignee_id"]), Some(a), "the conversation follows its lead");
        let conv_id = conv["id"].as_str().unwrap().to_owned();
        let (status, closed) =
            app.post(&format!("/api/v1/conversations/{conv_id}/status"), &tokens[0], json!({"status": "closed"})).await;
        assert_eq!((status, closed["status"].as_str()), (StatusCode::OK, Some("closed")));

        // A is offline, B is connected; B is told about the chat it gets.
        let mut b_live = live(&app, &tokens[1], None).await;
        app.put_assignment(json!({"mode": "round_robin", "only_available": true, "members": toggles(&ids, &[admin])})).await;
        assert_eq!(app.signed_webhook(&text_payload("w.2", "15550100111", 1_700_000_100, "back")).await, StatusCode::OK);
        app.webhooks_processed().await;
        let (_, conv) = app.get(&format!("/api/v1/conversations/{conv_id}"), &app.admin_token).await;
        assert_eq!(conv["status"], "open");
        assert_eq!(id(&conv["assignee_id"]), Some(b));
        let d = app.decisions(&lead_id).await;
        let last = d.last().unwrap();
        assert_eq!(last["cause"], "reopened");
        assert_eq!(last["candidates"], json!([{"member_id": a, "skipped": "offline"}, {"member_id": b, "skipped": null},
            {"member_id": admin, "skipped": "disabled"}]));
        assert_eq!(id(&last["chosen_member_id"]), Some(b));
        loop {
            let e = b_live.next_json().await;
            if e["type"] == "assignment.alert" {
                assert_eq!(e["data"]["conversation_id"], json!(conv_id));
                break;
            }
        }
        let (_, tl) = app.get(&format!("/api/v1/leads/{lead_id}/timeline?type=assigned"), &app.admin_token).await;
        let acts = tl["activities"].as_array().unwrap();
        assert!(acts.iter().any(|a| a["data"]["reason"] == "round_robin" && a["data"]["to_member_id"] == json!(b)), "{tl}");

        // B, available, keeps it the next time it re-opens.
        app.post(&format!("/api/v1/conversations/{conv_id}/status"), &tokens[1], json!({"status": "closed"})).await;
        app.signed_webhook(&text_payload("w.3", "15550100111", 1_700_000_200, "again")).await;
        app.webhooks_processed().await;
        let d = app.decisions(&lead_id).await;
        assert_eq!(d.len(), 2);
        assert_eq!(d[1]["reason"], "previous_assignee");
        assert_eq!(id(&d[1]["chosen_member_id"]), Some(b));

        // A new contact is imported already assigned, and so is its conversation.
        app.signed_webhook(&text_payload("w.4", "15550100122", 1_700_000_300, "new here")).await;
        app.webhooks_processed().await;
        let (_, list) = app.get("/api/v1/conversations", &app.admin_token).await;
        let fresh = list["conversations"].as_array().unwrap().iter().find(|c| c["contact_phone"] == "15550100122").unwrap().clone();
        assert_eq!(id(&fresh["assignee_id"]), Some(b));
    }

    async fn concurrent_arrivals_are_fair(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_id().await;
        let (ids, _) = members(&app, 5).await;
        app.put_assignment(json!({"mode": "round_robin", "leads_per_round": 2, "members": toggles(&ids, &[admin])})).await;
        let calls = (0..50).map(|i| {
            let app = &app;
            async move { app.create_lead(&format!("Burst {i}"), &phone(100 + i)).await }
        });
        let leads = futures_util::future::join_all(calls).await;
        let mut counts = std::collections::HashMap::new();
        for l in &leads {
            *counts.entry(id(&l["assignee_id"]).expect("assigned")).or_insert(0) += 1;
        }
        for m in &ids {
            assert_eq!(counts.get(m), Some(&10), "{counts:?}");
        }
    }

    async fn bulk_reassign_moves_everything(t: TestDb) {
        let app = spawn_app(&t).await;
        let (ids, tokens) = members(&app, 2).await;
        let [a, b] = [ids[0], ids[1]];
        let (_, others_tok) = app.member("others@example.com", json!({"view_others_leads": true})).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        let mut leads = Vec::new();
        for i in 0..3 {
            let l = app.new_lead(json!({"name": format!("A{i}"), "phone": format!("+1555010011{i}"), "assignee_id": a})).await;
            leads.push(l["id"].as_str().unwrap().to_owned());
        }
        app.signed_webhook(&text_payload("w.1", "15550100110", 1_700_000_000, "hi")).await;
        app.webhooks_processed().await;
        let body = json!({"from_member_id": a, "to_member_id": b});
        let (status, _) = app.post("/api/v1/leads/bulk-reassign", &tokens[0], body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let gone = Uuid::new_v4();
        let (status, err) = app.post("/api/v1/leads/bulk-reassign", &app.admin_token,
            json!({"from_member_id": a, "to_member_id": gone})).await;
        assert_eq!((status, error_code(&err)), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_member"));

        // Only the listed one first, then the rest.
        let (status, moved) = app.post("/api/v1/leads/bulk-reassign", &others_tok,
            json!({"from_member_id": a, "to_member_id": b, "lead_ids": [leads[2]]})).await;
        assert_eq!((status, moved["moved"].as_i64()), (StatusCode::OK, Some(1)), "{moved}");
        let (status, moved) = app.post("/api/v1/leads/bulk-reassign", &app.admin_token, body).await;
        assert_eq!((status, moved["moved"].as_i64()), (StatusCode::OK, Some(2)));
        let (_, mine) = app.get(&format!("/api/v1/leads?assignee_id={b}"), &app.admin_token).await;
        assert_eq!(mine["leads"].as_array().unwrap().len(), 3);
        let (_, convs) = app.get("/api/v1/conversations", &app.admin_token).await;
        assert_eq!(id(&convs["conversations"][0]["assignee_id"]), Some(b));
        let (_, tl) = app.get(&format!("/api/v1/leads/{}/timeline?type=assigned", leads[0]), &app.admin_token).await;
        let acts = tl["activities"].as_array().unwrap();
        assert_eq!(acts.len(), 2, "lead and conversation: {tl}");
        assert!(acts.iter().all(|a| a["data"]["reason"] == "bulk_reassign" && a["data"]["to_member_id"] == json!(b)));
    }
}

/// Reads frames until one of type `kind` arrives.
async fn until(l: &mut crate::live::Live, kind: &str) -> Value {
    loop {
        let e = l.next_json().await;
        if e["type"] == kind {
            return e;
        }
    }
}

on_both! {
    async fn alerts_reach_the_assignee_or_the_pool(t: TestDb) {
        let app = spawn_app(&t).await;
        let (a, a_tok) = app.member("a@example.com", json!({})).await;
        let (_, u_tok) = app.member("pool@example.com", json!({"view_unassigned": true})).await;
        let (_, p_tok) = app.member("plain@example.com", json!({})).await;
        let mut a_live = live(&app, &a_tok, None).await;
        let mut u_live = live(&app, &u_tok, None).await;
        let mut p_live = live(&app, &p_tok, None).await;

        // The pool: whoever can see the unassigned lead hears of it.
        let pooled = app.create_lead("Pooled", &phone(1)).await;
        let e = until(&mut u_live, "assignment.pool").await;
        assert_eq!(e["data"]["lead_id"], pooled["id"]);

        // Assigned: only the chosen member is alerted.
        app.put_assignment(json!({"mode": "round_robin", "members": [{"member_id": a, "enabled": true}],
            "rules": [{"name": "never", "criteria": [{"field": "source", "op": "equals", "value": "nowhere"}],
                       "route": {"type": "unassigned"}}]})).await;
        let lead = app.create_lead("Routed", &phone(2)).await;
        assert_eq!(id(&lead["assignee_id"]), Some(a));
        let e = until(&mut a_live, "assignment.alert").await;
        assert_eq!(e["data"]["lead_id"], lead["id"]);
        assert_eq!(e["data"]["reason"], "round_robin");
        u_live.assert_silent(std::time::Duration::from_millis(500)).await;
        p_live.assert_silent(std::time::Duration::from_millis(200)).await;
    }
}
