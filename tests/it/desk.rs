//! The admin's desk: the activity timeline across leads, the audit trail, and the team's
//! product rules (several emails in one invitation, cancelled invitations off the list,
//! assignment settings for `manage_members`).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::on_db;

use crate::on_both;
use crate::support::*;
use crate::webhooks::text_payload;

const T0: i64 = 1_789_300_000;

/// Every activity `token` gets from `GET /activities?{query}`, walking pages of `limit`.
async fn all_activities(app: &TestApp, token: &str, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/activities?limit={limit}&{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = app.get(&path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let page = body["activities"].as_array().unwrap();
        assert!(page.len() <= limit);
        out.extend(page.iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    out
}

fn ids(list: &[Value]) -> BTreeSet<String> {
    list.iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
}

/// What the caller sees lead by lead: every lead of `GET /leads`, each lead's timeline.
async fn lead_by_lead(app: &TestApp, token: &str) -> BTreeSet<String> {
    let (status, leads) = app.get("/api/v1/leads?limit=200", token).await;
    assert_eq!(status, StatusCode::OK, "{leads}");
    let mut out = BTreeSet::new();
    for l in leads["leads"].as_array().unwrap() {
        let (status, t) =
            app.get(&format!("/api/v1/leads/{}/timeline?limit=200", l["id"].as_str().unwrap()), token).await;
        assert_eq!(status, StatusCode::OK, "{t}");
        out.extend(ids(t["activities"].as_array().unwrap()));
    }
    out
}

/// The newest audit entries, newest first.
async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/api/v1/audit?limit=200&{query}"), &app.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["entries"].as_array().unwrap().clone()
}

/// Runs `action`, then checks it wrote exactly one audit entry, and returns it.
async fn one_entry(app: &TestApp, what: &str, before: &mut usize) -> Value {
    let entries = audit(app, "").await;
    assert_eq!(entries.len(), *before + 1, "{what} writes exactly one entry: {:#?}", &entries[..entries.len().min(3)]);
    *before = entries.len();
    let e = entries[0].clone();
    assert_eq!(e["action"], what, "{e}");
    e
}

on_both! {
    async fn activities_across_leads_follow_visibility_filters_and_paging(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let number = app.connect_number("100200300400600", "15550100100", true).await;
        let (ann, ann_token) = app.member("ann@example.com", json!({})).await;
        let (bob, bob_token) = app.member("bob@example.com", json!({})).await;
        let (_, pool_token) = app.member("pool@example.com", json!({"view_unassigned": true})).await;

        // Ann's lead (assigned at creation), an unassigned lead, and a chat that Bob is given.
        let (status, mine) = app.post("/api/v1/leads", &admin, json!({"name": "Ann's", "phone": "+15550100201", "assignee_id": ann})).await;
        assert_eq!(status, StatusCode::CREATED, "{mine}");
        let open = app.create_lead("Nobody's", "+15550100202").await;
        for (i, text) in ["hello", "still there?"].iter().enumerate() {
            app.signed_webhook(&text_payload(&format!("wamid.d{i}"), "15550100203", T0 + i as i64 * 60, text)).await;
        }
        app.webhooks_processed().await;
        let (_, convs) = app.get("/api/v1/conversations", &admin).await;
        let conv = convs["conversations"][0].clone();
        let conv_id = conv["id"].as_str().unwrap();
        let chat_lead = conv["lead_id"].as_str().unwrap().to_owned();
        let (status, body) = app.post(&format!("/api/v1/conversations/{conv_id}/assign"), &admin, json!({"assignee_id": bob})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Lia sees the chat through a granted label; Max was given access to it explicitly.
        let (_, label) = app.post("/api/v1/labels", &admin, json!({"name": "VIP"})).await;
        let (status, body) = app.json(Method::PUT, &format!("/api/v1/conversations/{conv_id}/labels"), &admin, Some(json!({"label_ids": [label["id"]]}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (lia, _) = app.member("lia@example.com", json!({})).await;
        let (status, body) = app.json(Method::PATCH, &format!("/api/v1/members/{lia}"), &admin, Some(json!({"label_ids": [label["id"]]}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let lia_token = app.login("lia@example.com", PASSWORD).await["token"].as_str().unwrap().to_owned();
        let (max, max_token) = app.member("max@example.com", json!({})).await;
        let (status, body) = app.post(&format!("/api/v1/conversations/{conv_id}/access"), &admin, json!({"member_ids": [max]})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for lead in [mine["id"].as_str().unwrap(), open["id"].as_str().unwrap(), &chat_lead] {
            let (status, _) = app.post(&format!("/api/v1/leads/{lead}/notes"), &admin, json!({"text": "checked"})).await;
            assert_eq!(status, StatusCode::CREATED);
        }

        // Ann's lead writes too, and its chat goes to others: the newest activities of a lead
        // she is named in are of a chat she doesn't see (more than a page of them).
        app.signed_webhook(&text_payload("wamid.ann0", "15550100201", T0 + 300, "hi, Ann?")).await;
        app.webhooks_processed().await;
        let (_, convs) = app.get("/api/v1/conversations", &admin).await;
        let ann_chat = convs["conversations"].as_array().unwrap().iter().find(|c| c["lead_id"] == mine["id"]).expect("Ann's lead's chat")["id"].as_str().unwrap().to_owned();
        let (zed, _) = app.member("zed@example.com", json!({})).await;
        let (kim, _) = app.member("kim@example.com", json!({})).await;
        for to in [&zed, &kim, &zed, &kim, &zed] {
            let (status, body) = app.post(&format!("/api/v1/conversations/{ann_chat}/assign"), &admin, json!({"assignee_id": to})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }

        // Each caller gets exactly what they would read lead by lead, newest first, in pages.
        for (who, token) in [("admin", &admin), ("ann", &ann_token), ("bob", &bob_token), ("pool", &pool_token), ("lia", &lia_token), ("max", &max_token)] {
            let all = all_activities(&app, token, "", 2).await;
            assert_eq!(ids(&all), lead_by_lead(&app, token).await, "{who}");
            assert_eq!(ids(&all).len(), all.len(), "{who}: no activity twice across pages");
            let times: Vec<&str> = all.iter().map(|a| a["created_at"].as_str().unwrap()).collect();
            assert!(times.windows(2).all(|w| w[0] >= w[1]), "{who}: newest first {times:?}");
        }
        let everything = all_activities(&app, &admin, "", 200).await;
        let of = |token| {
            let app = &app;
            async move { all_activities(app, token, "", 200).await }
        };
        let ann_sees = of(&ann_token).await;
        assert!(!ann_sees.is_empty() && ann_sees.iter().all(|a| a["lead_id"] == mine["id"]), "{ann_sees:?}");
        assert!(of(&bob_token).await.iter().all(|a| a["lead_id"].as_str() == Some(chat_lead.as_str())));
        assert!(of(&pool_token).await.iter().any(|a| a["lead_id"] == open["id"]));
        for token in [&lia_token, &max_token] {
            let seen = of(token).await;
            assert!(!seen.is_empty() && seen.iter().all(|a| a["lead_id"].as_str() == Some(chat_lead.as_str())), "{seen:?}");
        }
        assert!(everything.iter().any(|a| a["lead_name"] == "Ann's"), "rows name their lead");

        // Filters.
        let notes = all_activities(&app, &admin, "type=note", 200).await;
        assert_eq!(notes.len(), 3);
        let admin_id = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].clone();
        assert!(notes.iter().all(|a| a["type"] == "note" && a["member_id"] == admin_id), "{notes:?}");
        assert_eq!(all_activities(&app, &admin, &format!("type=note&member_id={}", admin_id.as_str().unwrap()), 200).await.len(), 3);
        let on_lead = all_activities(&app, &admin, &format!("lead_id={chat_lead}"), 200).await;
        assert!(!on_lead.is_empty() && on_lead.iter().all(|a| a["lead_id"].as_str() == Some(chat_lead.as_str())));
        let sessions = all_activities(&app, &admin, "type=whatsapp_session", 200).await;
        assert_eq!(sessions.len(), 2, "{sessions:?}");
        let chat_session = sessions.iter().find(|a| a["lead_id"].as_str() == Some(chat_lead.as_str())).unwrap();
        assert_eq!(chat_session["data"]["messages_from_lead"], 2);
        let number_q = format!("number_id={}", number["id"].as_str().unwrap());
        let on_number = all_activities(&app, &admin, &number_q, 200).await;
        assert!(!on_number.is_empty() && on_number.iter().all(|a| [Some(conv_id), Some(ann_chat.as_str())].contains(&a["conversation_id"].as_str())));
        // Ann sees no activity of her lead's chat, which others hold; Bob only his chat's.
        assert_eq!(all_activities(&app, &ann_token, &number_q, 1).await, Vec::<Value>::new());
        let bobs = all_activities(&app, &bob_token, &number_q, 1).await;
        assert!(!bobs.is_empty() && bobs.iter().all(|a| a["conversation_id"].as_str() == Some(conv_id)), "{bobs:?}");
        let by_bob = all_activities(&app, &admin, &format!("member_id={bob}"), 200).await;
        assert!(by_bob.is_empty(), "Bob did nothing: {by_bob:?}");
        let newest = everything[0]["created_at"].as_str().unwrap().to_owned();
        let from_newest = all_activities(&app, &admin, &format!("from={}", urlencode(&newest)), 200).await;
        assert!(!from_newest.is_empty() && from_newest.iter().all(|a| a["created_at"].as_str().unwrap() >= newest.as_str()));
        let before_newest = all_activities(&app, &admin, &format!("to={}", urlencode(&newest)), 200).await;
        assert_eq!(from_newest.len() + before_newest.len(), everything.len());

        // Malformed filters are the caller's mistake.
        for q in ["type=gossip", "member_id=7", "lead_id=x", "number_id=1", "from=yesterday", "to=2026-13-01", "cursor=abc", "limit=0", "colour=red"] {
            let (status, body) = app.get(&format!("/api/v1/activities?{q}"), &admin).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
            assert!(!error_code(&body).is_empty());
        }
    }

    async fn a_member_whose_leads_are_rare_in_the_timeline_still_gets_theirs(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let (ann, ann_token) = app.member("ann@example.com", json!({})).await;
        let (status, mine) = app.post("/api/v1/leads", &admin, json!({"name": "Ann's", "phone": "+15550100201", "assignee_id": ann})).await;
        assert_eq!(status, StatusCode::CREATED, "{mine}");
        let (status, _) = app.post(&format!("/api/v1/leads/{}/notes", mine["id"].as_str().unwrap()), &admin, json!({"text": "checked"})).await;
        assert_eq!(status, StatusCode::CREATED);

        // Then more activities of a lead she doesn't see than the newest-first walk reads
        // before it gives up and reads her leads' timelines instead.
        let open = app.create_lead("Nobody's", "+15550100202").await;
        let open_id: uuid::Uuid = open["id"].as_str().unwrap().parse().unwrap();
        let ws: uuid::Uuid = on_db!(&app.db, |p| sqlx::query_scalar("SELECT workspace_id FROM leads WHERE id = $1").bind(open_id).fetch_one(p).await).unwrap();
        let later = chrono::Utc::now() + chrono::Duration::hours(1);
        let n: Vec<i64> = (0..10_100).collect();
        for part in n.chunks(1_000) {
            on_db!(&app.db, |p| {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO activities (id, workspace_id, lead_id, type, data, created_at, updated_at) ");
                q.push_values(part, |mut row, i| {
                    let at = later + chrono::Duration::milliseconds(*i);
                    row.push_bind(uuid::Uuid::new_v4()).push_bind(ws).push_bind(open_id).push_bind("note").push_bind(sqlx::types::Json(json!({}))).push_bind(at).push_bind(at);
                });
                q.build().execute(p).await.map(|_| ())
            })
            .unwrap();
        }

        // She gets hers all the same, in pages and filtered.
        let all = all_activities(&app, &ann_token, "", 2).await;
        assert_eq!(ids(&all), lead_by_lead(&app, &ann_token).await);
        assert!(all.len() >= 2 && all.iter().all(|a| a["lead_id"] == mine["id"]), "{all:?}");
        let notes = all_activities(&app, &ann_token, "type=note", 50).await;
        assert!(notes.len() == 1 && notes[0]["lead_id"] == mine["id"], "{notes:?}");
        assert_eq!(all_activities(&app, &admin, "type=note", 200).await.len(), 10_101);
    }

    async fn every_change_of_access_writes_one_audit_entry(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let admin_id = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].as_str().unwrap().to_owned();
        let mut n = audit(&app, "").await.len();
        assert_eq!(n, 0, "a fresh workspace has no entries");

        // Invitations.
        let (status, inv) = app.post("/api/v1/invitations", &admin, json!({"email": "ivy@example.com", "permissions": {"view_unassigned": true}})).await;
        assert_eq!(status, StatusCode::CREATED, "{inv}");
        let ivy = inv["id"].clone();
        let e = one_entry(&app, "member.invited", &mut n).await;
        assert_eq!((e["actor_id"].clone(), e["target_type"].clone(), e["target_id"].clone()), (json!(admin_id), json!("member"), ivy.clone()));
        assert_eq!(e["changes"]["email"], json!({"from": null, "to": "ivy@example.com"}));
        assert_eq!(e["changes"]["status"]["to"], "invite_sent");
        assert_eq!(e["changes"]["permissions"]["to"]["view_unassigned"], true);
        let (status, _) = app.post(&format!("/api/v1/invitations/{}/resend", ivy.as_str().unwrap()), &admin, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let e = one_entry(&app, "invitation.resent", &mut n).await;
        assert!(e["changes"]["expires_at"]["from"].is_string() && e["changes"]["expires_at"]["to"].is_string(), "{e}");
        let del = app.call(Method::DELETE, &format!("/api/v1/invitations/{}", ivy.as_str().unwrap()), Some(&admin), None).await;
        assert_eq!(del.status(), StatusCode::NO_CONTENT);
        let e = one_entry(&app, "invitation.cancelled", &mut n).await;
        assert_eq!(e["changes"], json!({"status": {"from": "invite_sent", "to": "deactivated"}}));

        // Members.
        let (mo, _) = app.member("mo@example.com", json!({})).await;
        let (status, body) = app.json(Method::PATCH, &format!("/api/v1/members/{mo}"), &admin, Some(json!({"role": "admin", "permissions": {"view_others_leads": true}}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let e = one_entry(&app, "member.updated", &mut n).await;
        assert_eq!(e["changes"]["role"], json!({"from": "member", "to": "admin"}));
        assert_eq!(e["changes"]["permissions"]["from"]["view_others_leads"], false);
        assert_eq!(e["changes"]["permissions"]["to"]["view_others_leads"], true);
        assert!(e["changes"].get("name").is_none(), "only what changed: {e}");
        let (status, _) = app.post(&format!("/api/v1/members/{mo}/deactivate"), &admin, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let e = one_entry(&app, "member.deactivated", &mut n).await;
        assert_eq!(e["changes"], json!({"status": {"from": "active", "to": "deactivated"}}));
        let (status, _) = app.post(&format!("/api/v1/members/{mo}/reactivate"), &admin, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let e = one_entry(&app, "member.reactivated", &mut n).await;
        assert_eq!(e["changes"], json!({"status": {"from": "deactivated", "to": "active"}}));

        // Labels.
        let (status, label) = app.post("/api/v1/labels", &admin, json!({"name": "VIP", "color": "#f00"})).await;
        assert_eq!(status, StatusCode::CREATED);
        let e = one_entry(&app, "label.created", &mut n).await;
        assert_eq!(e["changes"], json!({"name": {"from": null, "to": "VIP"}, "color": {"from": null, "to": "#f00"}}));
        let label_path = format!("/api/v1/labels/{}", label["id"].as_str().unwrap());
        let (status, _) = app.json(Method::PATCH, &label_path, &admin, Some(json!({"name": "Gold"}))).await;
        assert_eq!(status, StatusCode::OK);
        let e = one_entry(&app, "label.updated", &mut n).await;
        assert_eq!(e["changes"], json!({"name": {"from": "VIP", "to": "Gold"}}));
        assert_eq!(app.call(Method::DELETE, &label_path, Some(&admin), None).await.status(), StatusCode::NO_CONTENT);
        let e = one_entry(&app, "label.deleted", &mut n).await;
        assert_eq!(e["changes"], json!({"name": {"from": "Gold", "to": null}, "color": {"from": "#f00", "to": null}}));

        // Numbers: the access token never appears.
        let number = app.connect_number("100200300400600", "15550100100", false).await;
        let e = one_entry(&app, "number.connected", &mut n).await;
        assert_eq!(e["target_id"], number["id"]);
        assert_eq!(e["changes"]["phone_number_id"], json!({"from": null, "to": "100200300400600"}));
        let number_path = format!("/api/v1/numbers/{}", number["id"].as_str().unwrap());
        let (status, body) = app.json(Method::PATCH, &number_path, &admin, Some(json!({"access_token": "EAAG-new-secret", "auto_import_contacts": true}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let e = one_entry(&app, "number.updated", &mut n).await;
        assert_eq!(e["changes"]["auto_import_contacts"], json!({"from": false, "to": true}));
        assert_eq!(e["changes"]["access_token"], json!({"from": "[hidden]", "to": "[hidden]"}));

        // A conversation's explicit access.
        app.signed_webhook(&text_payload("wamid.a1", "15550100301", T0, "hi")).await;
        app.webhooks_processed().await;
        let (_, convs) = app.get("/api/v1/conversations", &admin).await;
        let access = format!("/api/v1/conversations/{}/access", convs["conversations"][0]["id"].as_str().unwrap());
        let (status, body) = app.post(&access, &admin, json!({"member_ids": [mo]})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let e = one_entry(&app, "conversation.access_granted", &mut n).await;
        assert_eq!(e["target_type"], "conversation");
        assert_eq!(e["changes"], json!({"member_ids": {"from": [], "to": [mo]}}));
        let (status, _) = app.json(Method::DELETE, &access, &admin, Some(json!({"member_ids": [mo]}))).await;
        assert_eq!(status, StatusCode::OK);
        let e = one_entry(&app, "conversation.access_revoked", &mut n).await;
        assert_eq!(e["changes"], json!({"member_ids": {"from": [mo], "to": []}}));

        assert_eq!(app.call(Method::DELETE, &number_path, Some(&admin), None).await.status(), StatusCode::NO_CONTENT);
        let e = one_entry(&app, "number.disconnected", &mut n).await;
        assert_eq!(e["changes"], json!({"connected": {"from": true, "to": false}}));

        // Settings.
        let (status, body) = app.json(Method::PUT, "/api/v1/assignment", &admin, Some(json!({"mode": "round_robin"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let e = one_entry(&app, "assignment.updated", &mut n).await;
        assert_eq!(e["changes"]["mode"]["to"], "round_robin");
        assert_eq!(e["target_type"], "assignment_settings");
        let (status, _) = app.json(Method::PATCH, "/api/v1/workspace", &admin, Some(json!({"session_gap_secs": 900}))).await;
        assert_eq!(status, StatusCode::OK);
        let e = one_entry(&app, "workspace.updated", &mut n).await;
        assert_eq!(e["changes"], json!({"session_gap_secs": {"from": 1800, "to": 900}}));
        assert_eq!(e["target_id"].as_str(), Some(app.workspace_id.to_string().as_str()));

        // Groups.
        let (status, group) = app.post("/api/v1/groups", &admin, json!({"name": "Spring fair"})).await;
        assert_eq!(status, StatusCode::CREATED);
        let gone = app.call(Method::DELETE, &format!("/api/v1/groups/{}", group["id"].as_str().unwrap()), Some(&admin), None).await;
        assert_eq!(gone.status(), StatusCode::NO_CONTENT);
        let e = one_entry(&app, "group.deleted", &mut n).await;
        assert_eq!(e["changes"], json!({"name": {"from": "Spring fair", "to": null}}));

        // Nothing secret anywhere in the trail.
        let all = serde_json::to_string(&audit(&app, "").await).unwrap();
        assert!(!all.contains("EAAG"), "no access token in the trail");
        assert!(!all.contains("accept_token") && !all.contains("password"), "{all}");

        // Filters and paging.
        assert_eq!(audit(&app, "action=label.created").await.len(), 1);
        assert_eq!(audit(&app, &format!("actor_id={admin_id}")).await.len(), n, "the admin did everything");
        assert_eq!(audit(&app, &format!("actor_id={mo}")).await.len(), 0);
        let newest = audit(&app, "").await[0]["at"].as_str().unwrap().to_owned();
        assert_eq!(audit(&app, &format!("from={}", urlencode(&newest))).await.len(), 1);
        let mut walked = Vec::new();
        let mut path = "/api/v1/audit?limit=4".to_owned();
        loop {
            let (status, page) = app.get(&path, &admin).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            walked.extend(page["entries"].as_array().unwrap().iter().map(|e| e["id"].clone()));
            match page["next_cursor"].as_str() {
                Some(c) => path = format!("/api/v1/audit?limit=4&cursor={c}"),
                None => break,
            }
        }
        let full: Vec<Value> = audit(&app, "").await.iter().map(|e| e["id"].clone()).collect();
        assert_eq!(walked, full, "pages walk the whole trail in order");
        for q in ["action=member.flew", "actor_id=me", "from=today", "cursor=zz"] {
            let (status, body) = app.get(&format!("/api/v1/audit?{q}"), &admin).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        }

        // Admins only; and no route changes or deletes an entry, nor does the database.
        let (_, member) = app.member("plain@example.com", json!({"manage_members": true})).await;
        let (status, _) = app.get("/api/v1/audit", &member).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::POST] {
            let status = app.call(method.clone(), "/api/v1/audit", Some(&admin), Some(json!({}))).await.status();
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        }
        let update = on_db!(&app.db, |p| sqlx::query("UPDATE audit_log SET action = 'label.created'").execute(p).await.map(|_| ()));
        assert!(update.is_err(), "an entry can't be changed");
        let delete = on_db!(&app.db, |p| sqlx::query("DELETE FROM audit_log").execute(p).await.map(|_| ()));
        assert!(delete.is_err(), "an entry can't be deleted");
        assert_eq!(audit(&app, "").await.len(), n);
    }

    async fn several_emails_one_invitation_and_cancelled_ones_leave_the_list(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let (status, body) = app.post("/api/v1/invitations", &admin, json!({"email": "a@example.com, B@example.com ,a@example.com", "role": "member"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let invs = body["invitations"].as_array().unwrap();
        let emails: Vec<&str> = invs.iter().map(|i| i["email"].as_str().unwrap()).collect();
        assert_eq!(emails, ["a@example.com", "b@example.com"], "each once, in order");
        assert!(invs.iter().all(|i| i["accept_token"].is_string() && i["status"] == "invite_sent"));
        assert_eq!(audit(&app, "action=member.invited").await.len(), 2);

        // All or none: one bad address invites nobody.
        let (status, body) = app.post("/api/v1/invitations", &admin, json!({"email": "c@example.com, not-an-email"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(error_code(&body) == "invalid_email" && body["error"]["message"].as_str().unwrap().contains("not-an-email"));
        let (status, body) = app.post("/api/v1/invitations", &admin, json!({"email": "c@example.com, admin@example.com"})).await;
        assert_eq!(status, StatusCode::CONFLICT, "the admin is a member already: {body}");
        let (status, body) = app.post("/api/v1/invitations", &admin, json!({"email": "c@example.com, d@example.com", "name": "Cy"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (_, members) = app.get("/api/v1/members", &admin).await;
        assert!(!members.to_string().contains("c@example.com"), "nobody was invited");

        // One email still answers one invitation.
        let (status, one) = app.post("/api/v1/invitations", &admin, json!({"email": "e@example.com"})).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(one["email"], "e@example.com");

        // A cancelled invitation leaves the member list; inviting again brings it back.
        let a = invs[0]["id"].as_str().unwrap();
        assert_eq!(app.call(Method::DELETE, &format!("/api/v1/invitations/{a}"), Some(&admin), None).await.status(), StatusCode::NO_CONTENT);
        for q in ["", "?status=deactivated"] {
            let (_, members) = app.get(&format!("/api/v1/members{q}"), &admin).await;
            assert!(!members.to_string().contains("a@example.com"), "{q}: {members}");
        }
        let (status, again) = app.post("/api/v1/invitations", &admin, json!({"email": "a@example.com"})).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(again["id"], invs[0]["id"]);
        let (_, members) = app.get("/api/v1/members", &admin).await;
        assert!(members.to_string().contains("a@example.com"));
    }

    async fn csv_errors_name_their_line_whatever_the_line_ends(t: TestDb) {
        let app = spawn_app(&t).await;
        let rows = ["name,phone", "Ann,+4420 7946 0001", "\"Bo\nat sea\",+4420 7946 0002", "Cy,not a phone", "Di,+4420 7946 0004", ",+4420 7946 0005"];
        for (i, end) in ["\n", "\r\n"].iter().enumerate() {
            let text = rows.join(end).replace("+4420 7946 000", &format!("+4420 7946 {i}00"));
            let report = app.import_ok(&app.admin_token, &text).await;
            let lines: Vec<u64> = report["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
            assert_eq!(lines, [5, 7], "line ends {end:?}: {report}");
            assert_eq!(report["created"], 3, "{report}");
        }
    }

    async fn managers_of_members_also_manage_assignment_settings(t: TestDb) {
        let app = spawn_app(&t).await;
        let (_, manager) = app.member("lead@example.com", json!({"manage_members": true})).await;
        let (_, plain) = app.member("plain@example.com", json!({})).await;
        let (status, body) = app.json(Method::PUT, "/api/v1/assignment", &manager, Some(json!({"mode": "round_robin"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = app.json(Method::PUT, "/api/v1/assignment", &plain, Some(json!({"mode": "unassigned"}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (_, settings) = app.get("/api/v1/assignment", &plain).await;
        assert_eq!(settings["mode"], "round_robin");
    }
}

/// A query value with `+` and `:` escaped (RFC 3339 times).
fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
