//! Agencies: every status of a client entry and its moves, who may accept, a new person
//! creating their workspace from the invitation, the agency reading a managed client (leads,
//! a lead's timeline, the report) and losing it at once when either side unlinks, every write
//! route refused on the client's data, isolation and secrets, the audit on both sides.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::on_db;
use uuid::Uuid;

use crate::access::{insert_conversation, insert_label, insert_number};
use crate::on_both;
use crate::support::*;

const BOSS: &str = "boss@client.test";
const SECRET: &str = "EAAG-client-secret-token";

fn id_of(v: &Value) -> Uuid {
    Uuid::parse_str(v["id"].as_str().unwrap_or_else(|| panic!("an id in {v}"))).unwrap()
}

/// The test app's workspace as an agency, and a client workspace with its admin.
struct World {
    /// The client workspace and its admin's token.
    client_ws: Uuid,
    boss: String,
    boss_id: Uuid,
}

async fn client_workspace(app: &TestApp, workspace: &str, email: &str) -> (Uuid, String, Uuid) {
    switchboard::workspace::bootstrap(&app.db, &app.clock, workspace, email, PASSWORD, Some("Bo Boss"))
        .await
        .expect("bootstrap a client");
    let login = app.login(email, PASSWORD).await;
    let ws = Uuid::parse_str(login["user"]["workspace_id"].as_str().unwrap()).unwrap();
    let id = Uuid::parse_str(login["user"]["id"].as_str().unwrap()).unwrap();
    (ws, login["token"].as_str().unwrap().to_owned(), id)
}

async fn world(app: &TestApp) -> World {
    let (status, agency) = app.post("/api/v1/agency", &app.admin_token, json!({"name": "Ads & Co"})).await;
    assert_eq!(status, StatusCode::CREATED, "{agency}");
    let (client_ws, boss, boss_id) = client_workspace(app, "Client Co", BOSS).await;
    World { client_ws, boss, boss_id }
}

async fn invite(app: &TestApp, email: &str) -> (Uuid, String) {
    let (status, inv) =
        app.post("/api/v1/agency/clients", &app.admin_token, json!({"email": email, "name": "Client"})).await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    assert_eq!(inv["status"], "invited");
    (id_of(&inv), inv["accept_token"].as_str().unwrap().to_owned())
}

async fn accept(app: &TestApp, token: &str, accept_token: &str) -> (StatusCode, Value) {
    app.post("/api/v1/agency-invitations/accept", token, json!({"accept_token": accept_token})).await
}

async fn entry(app: &TestApp, id: Uuid) -> Option<Value> {
    let (status, list) = app.get("/api/v1/agency/clients", &app.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["clients"].as_array().unwrap().iter().find(|c| id_of(c) == id).cloned()
}

async fn status_of(app: &TestApp, id: Uuid) -> String {
    entry(app, id).await.expect("the entry is listed")["status"].as_str().unwrap().to_owned()
}

async fn managed_by(app: &TestApp, token: &str) -> Value {
    let (status, ws) = app.get("/api/v1/workspace", token).await;
    assert_eq!(status, StatusCode::OK, "{ws}");
    ws["managed_by"].clone()
}

/// Links the client: invite, accept as its admin. Returns the entry id.
async fn link(app: &TestApp, w: &World) -> Uuid {
    let (id, token) = invite(app, BOSS).await;
    let (status, body) = accept(app, &w.boss, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

async fn audit_actions(app: &TestApp, token: &str) -> Vec<String> {
    let (status, page) = app.get("/api/v1/audit?action=agency.linked", token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut out: Vec<String> =
        page["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
    let (_, page) = app.get("/api/v1/audit?action=agency.unlinked", token).await;
    out.extend(page["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()));
    out
}

/// The three reads of a managed client, with what they must show.
async fn check_reads(app: &TestApp, w: &World, id: Uuid, lead_id: Uuid) {
    let leads_path = format!("/api/v1/agency/clients/{id}/leads");
    let lead_path = format!("/api/v1/agency/clients/{id}/leads/{lead_id}");
    let report_path = format!("/api/v1/agency/clients/{id}/reports/team");
    let (status, page) = app.get(&leads_path, &app.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let leads = page["leads"].as_array().unwrap();
    assert_eq!(leads.len(), 2, "{page}");
    let lena = leads.iter().find(|l| id_of(l) == lead_id).unwrap();
    assert_eq!(lena["assignee_id"], w.boss_id.to_string());
    assert_eq!(lena["contacted"], true, "{lena}");
    assert!(lena.get("first_response_secs").is_some() && lena.get("status").is_some(), "{lena}");
    assert!(lena.get("can").is_none(), "the agency is told of no action: {lena}");
    let (status, page) = app.get(&format!("{leads_path}?contacted=false"), &app.admin_token).await;
    assert_eq!((status, page["leads"].as_array().unwrap().len()), (StatusCode::OK, 1), "{page}");

    let (status, detail) = app.get(&lead_path, &app.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["name"], "Lena Lead");
    let kinds: Vec<&str> =
        detail["timeline"]["activities"].as_array().unwrap().iter().map(|a| a["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"note"), "{detail}");

    let (status, report) = app.get(&report_path, &app.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["totals"]["assigned"], 1, "{report}");
    assert!(report["members"].as_array().unwrap().iter().any(|m| m["member_id"] == w.boss_id.to_string()));

    let e = entry(app, id).await.unwrap();
    assert_eq!((e["leads"].as_i64(), e["uncontacted"].as_i64()), (Some(2), Some(1)), "{e}");
}

/// What the client's admin sees of their workspace (for "nothing changed").
async fn snapshot(app: &TestApp, w: &World, conv: Uuid) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/api/v1/workspace",
        "/api/v1/leads",
        "/api/v1/members",
        "/api/v1/numbers",
        "/api/v1/labels",
        "/api/v1/groups",
        "/api/v1/api-keys",
        "/api/v1/conversations",
        "/api/v1/assignment",
        "/api/v1/distribution",
    ] {
        let (status, body) = app.get(path, &w.boss).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        all.push(body);
    }
    let (_, messages) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &w.boss).await;
    all.push(messages);
    all
}

on_both! {
    async fn every_status_transition(t: TestDb) {
        let app = spawn_app(&t).await;
        let w = world(&app).await;
        // Agency mode once.
        let (status, again) = app.post("/api/v1/agency", &app.admin_token, json!({"name": "Again"})).await;
        assert_eq!((status, error_code(&again)), (StatusCode::CONFLICT, "already_an_agency"));
        let (status, me) = app.get("/api/v1/agency", &app.admin_token).await;
        assert_eq!((status, me["name"].as_str()), (StatusCode::OK, Some("Ads & Co")), "{me}");

        // invited → (resend) invited: the old token stops working.
        let (id, first) = invite(&app, BOSS).await;
        let (status, dup) = app.post("/api/v1/agency/clients", &app.admin_token, json!({"email": BOSS})).await;
        assert_eq!((status, error_code(&dup)), (StatusCode::CONFLICT, "client_exists"));
        let (status, resent) = app.post(&format!("/api/v1/agency/clients/{id}/resend"), &app.admin_token, json!({})).await;
        assert_eq!((status, resent["status"].as_str()), (StatusCode::OK, Some("invited")), "{resent}");
        let second = resent["accept_token"].as_str().unwrap().to_owned();
        assert_ne!(first, second);
        let (status, _) = accept(&app, &w.boss, &first).await;
        assert_eq!(status, StatusCode::GONE);

        // invited → (cancel) not_linked: the token is dead.
        let resp = app.call(Method::DELETE, &format!("/api/v1/agency/clients/{id}"), Some(&app.admin_token), None).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(status_of(&app, id).await, "not_linked");
        let (status, _) = accept(&app, &w.boss, &second).await;
        assert_eq!(status, StatusCode::GONE);
        assert_eq!(managed_by(&app, &w.boss).await, Value::Null);

        // not_linked → (resend) invited → (accept) managing.
        let (status, resent) = app.post(&format!("/api/v1/agency/clients/{id}/resend"), &app.admin_token, json!({})).await;
        assert_eq!((status, resent["status"].as_str()), (StatusCode::OK, Some("invited")), "{resent}");
        let (status, accepted) = accept(&app, &w.boss, resent["accept_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{accepted}");
        assert_eq!(accepted["managed_by"]["name"], "Ads & Co");
        let e = entry(&app, id).await.unwrap();
        assert_eq!(e["status"], "managing", "{e}");
        assert_eq!(e["workspace"]["id"], w.client_ws.to_string());
        assert_eq!(e["workspace"]["name"], "Client Co");
        assert!(e["linked_at"].is_string() && e["leads"] == 0 && e["uncontacted"] == 0, "{e}");
        let mb = managed_by(&app, &w.boss).await;
        assert_eq!(mb["name"], "Ads & Co", "{mb}");
        // A used token is gone.
        let (status, _) = accept(&app, &w.boss, resent["accept_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::GONE);

        // managing: no resend, no delete.
        let (status, _) = app.post(&format!("/api/v1/agency/clients/{id}/resend"), &app.admin_token, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let resp = app.call(Method::DELETE, &format!("/api/v1/agency/clients/{id}"), Some(&app.admin_token), None).await;
        assert_eq!(resp.status(), StatusCode::CONFLICT);

        // managing → (unlink by the agency) not_linked; twice is a conflict.
        let (status, unlinked) = app.post(&format!("/api/v1/agency/clients/{id}/unlink"), &app.admin_token, json!({})).await;
        assert_eq!((status, unlinked["status"].as_str()), (StatusCode::OK, Some("not_linked")), "{unlinked}");
        let (status, _) = app.post(&format!("/api/v1/agency/clients/{id}/unlink"), &app.admin_token, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(managed_by(&app, &w.boss).await, Value::Null);

        // Linked again, then unlinked by the client.
        let (status, resent) = app.post(&format!("/api/v1/agency/clients/{id}/resend"), &app.admin_token, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = accept(&app, &w.boss, resent["accept_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(status_of(&app, id).await, "managing");
        let (status, ws) = app.post("/api/v1/workspace/unlink-agency", &w.boss, json!({})).await;
        assert_eq!((status, &ws["managed_by"]), (StatusCode::OK, &Value::Null), "{ws}");
        assert_eq!(status_of(&app, id).await, "not_linked");
        let (status, _) = app.post("/api/v1/workspace/unlink-agency", &w.boss, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // not_linked → (delete) removed.
        let resp = app.call(Method::DELETE, &format!("/api/v1/agency/clients/{id}"), Some(&app.admin_token), None).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert!(entry(&app, id).await.is_none());
        let resp = app.call(Method::DELETE, &format!("/api/v1/agency/clients/{id}"), Some(&app.admin_token), None).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);

        // Audited on both sides: two links, two unlinks.
        for token in [&app.admin_token, &w.boss] {
            let mut actions = audit_actions(&app, token).await;
            actions.sort();
            assert_eq!(actions, ["agency.linked", "agency.linked", "agency.unlinked", "agency.unlinked"]);
        }
    }

    async fn who_may_accept(t: TestDb) {
        let app = spawn_app(&t).await;
        let w = world(&app).await;
        // A member of the client workspace whose email was invited: 403.
        let member_email = "member@client.test";
        let hash = switchboard::auth::password::hash(PASSWORD.to_owned()).await.unwrap();
        on_db!(&app.db, |p| sqlx::query(
            "INSERT INTO users (id, workspace_id, email, name, role, status, password_hash, permissions, created_at, updated_at) \
             VALUES ($1, $2, $3, 'Mo', 'member', 'active', $4, '{}', $5, $5)"
        )
        .bind(Uuid::new_v4())
        .bind(w.client_ws)
        .bind(member_email)
        .bind(&hash)
        .bind(app.clock.now())
        .execute(p)
        .await
        .map(|_| ()))
        .unwrap();
        let member = app.login(member_email, PASSWORD).await["token"].as_str().unwrap().to_owned();
        let (_, token) = invite(&app, member_email).await;
        let (status, body) = accept(&app, &member, &token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(managed_by(&app, &w.boss).await, Value::Null);

        // An admin with another email than the invited one: 403.
        let (id, token) = invite(&app, BOSS).await;
        let (_, other_admin, _) = client_workspace(&app, "Other Co", "other@other.test").await;
        let (status, body) = accept(&app, &other_admin, &token).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "other_email"));
        // The agency's own admin neither.
        let (status, _) = accept(&app, &app.admin_token, &token).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // Without credentials and without a new account's fields: 401.
        let resp = app
            .call(Method::POST, "/api/v1/agency-invitations/accept", None, Some(json!({"accept_token": token})))
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        // Someone with an account can't create a second one from the invitation.
        let resp = app
            .call(
                Method::POST,
                "/api/v1/agency-invitations/accept",
                None,
                Some(json!({"accept_token": token, "workspace_name": "Dup", "name": "X", "password": PASSWORD})),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(status_of(&app, id).await, "invited");
        // The invited admin: 200.
        let (status, body) = accept(&app, &w.boss, &token).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // A second agency can't manage the same workspace at once.
        let (_, other_agency, _) = client_workspace(&app, "Second Agency", "second@agency.test").await;
        let (status, _) = app.post("/api/v1/agency", &other_agency, json!({"name": "Second"})).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, inv) = app.post("/api/v1/agency/clients", &other_agency, json!({"email": BOSS})).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, body) = accept(&app, &w.boss, inv["accept_token"].as_str().unwrap()).await;
        assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "already_managed"));
    }

    async fn a_new_person_creates_their_workspace(t: TestDb) {
        let app = spawn_app(&t).await;
        let _w = world(&app).await;
        let (id, token) = invite(&app, "New@Person.test").await;
        let resp = app
            .call(
                Method::POST,
                "/api/v1/agency-invitations/accept",
                None,
                Some(json!({"accept_token": token, "workspace_name": "Fresh Shop", "name": "Nia New", "password": PASSWORD})),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let session: Value = resp.json().await.unwrap();
        assert_eq!(session["user"]["role"], "admin", "{session}");
        assert_eq!(session["user"]["email"], "new@person.test");
        let new_token = session["token"].as_str().unwrap().to_owned();
        assert_eq!(managed_by(&app, &new_token).await["name"], "Ads & Co");
        let e = entry(&app, id).await.unwrap();
        assert_eq!((e["status"].as_str(), e["workspace"]["name"].as_str()), (Some("managing"), Some("Fresh Shop")));
        // They sign in with what they chose.
        app.login("new@person.test", PASSWORD).await;
        // The token is used.
        let resp = app
            .call(
                Method::POST,
                "/api/v1/agency-invitations/accept",
                None,
                Some(json!({"accept_token": token, "workspace_name": "Again", "name": "N", "password": PASSWORD})),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::GONE);
    }

    async fn the_agency_reads_while_managing_and_never_after(t: TestDb) {
        let app = spawn_app(&t).await;
        let w = world(&app).await;
        let (status, lead) =
            app.post("/api/v1/leads", &w.boss, json!({"name": "Lena Lead", "phone": "+447700900111", "assignee_id": w.boss_id})).await;
        assert_eq!(status, StatusCode::CREATED, "{lead}");
        let lead_id = id_of(&lead);
        let (status, note) = app.post(&format!("/api/v1/leads/{lead_id}/notes"), &w.boss, json!({"text": "called her"})).await;
        assert_eq!(status, StatusCode::CREATED, "{note}");
        let (status, _) = app.post("/api/v1/leads", &w.boss, json!({"name": "Quiet One", "phone": "+447700900222"})).await;
        assert_eq!(status, StatusCode::CREATED);
        let (id, token) = invite(&app, BOSS).await;
        // Not yet managing: 404.
        let leads_path = format!("/api/v1/agency/clients/{id}/leads");
        let lead_path = format!("/api/v1/agency/clients/{id}/leads/{lead_id}");
        let report_path = format!("/api/v1/agency/clients/{id}/reports/team");
        for path in [&leads_path, &lead_path, &report_path] {
            assert_eq!(app.get(path, &app.admin_token).await.0, StatusCode::NOT_FOUND, "{path}");
        }
        let (status, _) = accept(&app, &w.boss, &token).await;
        assert_eq!(status, StatusCode::OK);

        check_reads(&app, &w, id, lead_id).await;
        // Filters are checked.
        assert_eq!(app.get(&format!("{leads_path}?contacted=maybe"), &app.admin_token).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(app.get(&format!("{report_path}?from=yesterday"), &app.admin_token).await.0, StatusCode::BAD_REQUEST);
        // A lead of another workspace through this client: 404.
        let own = app.create_lead("Agency's own", "+447700900333").await;
        let path = format!("/api/v1/agency/clients/{id}/leads/{}", id_of(&own));
        assert_eq!(app.get(&path, &app.admin_token).await.0, StatusCode::NOT_FOUND);

        // The client unlinks: 404 at once.
        let (status, _) = app.post("/api/v1/workspace/unlink-agency", &w.boss, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        for path in [&leads_path, &lead_path, &report_path] {
            assert_eq!(app.get(path, &app.admin_token).await.0, StatusCode::NOT_FOUND, "{path}");
        }
        // Linked again: readable again; the agency unlinks: 404 at once.
        let (_, resent) = app.post(&format!("/api/v1/agency/clients/{id}/resend"), &app.admin_token, json!({})).await;
        let (status, _) = accept(&app, &w.boss, resent["accept_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        check_reads(&app, &w, id, lead_id).await;
        let (status, _) = app.post(&format!("/api/v1/agency/clients/{id}/unlink"), &app.admin_token, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        for path in [&leads_path, &lead_path, &report_path] {
            assert_eq!(app.get(path, &app.admin_token).await.0, StatusCode::NOT_FOUND, "{path}");
        }
    }

    // Walks every write route of the API with the client's ids in the path, as the agency's
    // admin while it manages the client: none succeeds, and the client's data is unchanged.
    async fn every_write_route_is_refused_on_the_clients_data(t: TestDb) {
        let app = spawn_app(&t).await;
        let w = world(&app).await;
        let number = insert_number(&app.db, w.client_ws).await;
        let (status, lead) =
            app.post("/api/v1/leads", &w.boss, json!({"name": "Lena Lead", "phone": "+447700900111", "assignee_id": w.boss_id})).await;
        assert_eq!(status, StatusCode::CREATED, "{lead}");
        let lead_id = id_of(&lead);
        let label = insert_label(&app.db, w.client_ws, "VIP").await;
        let conv = insert_conversation(&app.db, w.client_ws, number, lead_id, Some(w.boss_id), &[label], &[]).await;
        let (status, group) = app.post("/api/v1/groups", &w.boss, json!({"name": "Hot"})).await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        let (status, key) = app.post("/api/v1/api-keys", &w.boss, json!({"name": "k", "scopes": ["leads:write"]})).await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        link(&app, &w).await;

        let before = snapshot(&app, &w, conv).await;
        let ids = [lead_id, conv, number, label, w.boss_id, id_of(&group), id_of(&key), w.client_ws];
        let mut tried = 0;
        for (method, path) in switchboard::app::api_routes() {
            if method == "GET" || path.ends_with("/auth/logout") || !path.contains('{') {
                continue;
            }
            for id in ids {
                let url = path.replace("{id}", &id.to_string()).replace("{lead_id}", &lead_id.to_string());
                let m = Method::from_bytes(method.as_bytes()).unwrap();
                for body in [None, Some(json!({}))] {
                    let resp = app.call(m.clone(), &url, Some(&app.admin_token), body).await;
                    let status = resp.status();
                    assert!(status.is_client_error(), "{method} {url} as the agency answered {status}");
                    tried += 1;
                }
            }
        }
        assert!(tried > 100, "only {tried} calls");
        // Routes without an id act on the caller's own workspace: none reaches the client.
        for (method, path) in switchboard::app::api_routes() {
            if method == "GET" || path.contains('{') || path.ends_with("/auth/logout") || path.contains("/agency") {
                continue;
            }
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let _ = app.call(m, &path, Some(&app.admin_token), Some(json!({}))).await;
        }
        assert_eq!(snapshot(&app, &w, conv).await, before, "the client's data changed");
        assert_eq!(managed_by(&app, &w.boss).await["name"], "Ads & Co");
    }

    async fn isolation_and_secrets(t: TestDb) {
        let app = spawn_app(&t).await;
        let w = world(&app).await;
        let (status, number) = app
            .post(
                "/api/v1/numbers",
                &w.boss,
                json!({"phone_number_id": "5550001", "display_phone_number": "+15550001", "access_token": SECRET}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{number}");
        let (status, lead) = app.post("/api/v1/leads", &w.boss, json!({"name": "Lena", "phone": "+447700900111"})).await;
        assert_eq!(status, StatusCode::CREATED);
        let lead_id = id_of(&lead);
        // A workspace that never granted: its data is nowhere, not even through the agency's
        // routes with the ids guessed.
        let (other_ws, other_boss, _) = client_workspace(&app, "Never Granted", "never@granted.test").await;
        let (status, other_lead) = app.post("/api/v1/leads", &other_boss, json!({"name": "Hidden", "phone": "+447700900444"})).await;
        assert_eq!(status, StatusCode::CREATED);
        let (id, _) = invite(&app, "never@granted.test").await;
        for path in [
            format!("/api/v1/agency/clients/{id}/leads"),
            format!("/api/v1/agency/clients/{id}/leads/{}", id_of(&other_lead)),
            format!("/api/v1/agency/clients/{other_ws}/leads"),
            format!("/api/v1/leads/{}", id_of(&other_lead)),
        ] {
            assert_eq!(app.get(&path, &app.admin_token).await.0, StatusCode::NOT_FOUND, "{path}");
        }

        let entry_id = link(&app, &w).await;
        // Another agency never sees this agency's client.
        let (_, second, _) = client_workspace(&app, "Second Agency", "second@agency.test").await;
        assert_eq!(app.post("/api/v1/agency", &second, json!({"name": "Second"})).await.0, StatusCode::CREATED);
        for path in [
            format!("/api/v1/agency/clients/{entry_id}/leads"),
            format!("/api/v1/agency/clients/{entry_id}/reports/team"),
            format!("/api/v1/agency/clients/{entry_id}/leads/{lead_id}"),
        ] {
            assert_eq!(app.get(&path, &second).await.0, StatusCode::NOT_FOUND, "{path}");
        }
        let (status, list) = app.get("/api/v1/agency/clients", &second).await;
        assert_eq!((status, list["clients"].as_array().unwrap().len()), (StatusCode::OK, 0));
        // A member of the agency (not an admin) reads nothing; a workspace that is no agency 404.
        let (_, member) = app.member("plain@agency.test", json!({"view_others_leads": true})).await;
        for path in ["/api/v1/agency/clients".to_owned(), format!("/api/v1/agency/clients/{entry_id}/leads")] {
            assert_eq!(app.get(&path, &member).await.0, StatusCode::FORBIDDEN, "{path}");
        }
        assert_eq!(app.get("/api/v1/agency/clients", &other_boss).await.0, StatusCode::NOT_FOUND);
        // The agency's own routes don't reach the client's lead.
        assert_eq!(app.get(&format!("/api/v1/leads/{lead_id}"), &app.admin_token).await.0, StatusCode::NOT_FOUND);
        assert_eq!(app.get(&format!("/api/v1/leads/{lead_id}/timeline"), &app.admin_token).await.0, StatusCode::NOT_FOUND);

        // No secret in anything the agency reads.
        let mut seen = String::new();
        for path in [
            "/api/v1/agency/clients".to_owned(),
            format!("/api/v1/agency/clients/{entry_id}/leads"),
            format!("/api/v1/agency/clients/{entry_id}/leads/{lead_id}"),
            format!("/api/v1/agency/clients/{entry_id}/reports/team"),
        ] {
            let (status, body) = app.get(&path, &app.admin_token).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            seen.push_str(&body.to_string());
        }
        for secret in [SECRET, "password", "token_hash", "access_token", "accept_token"] {
            assert!(!seen.contains(secret), "{secret} in {seen}");
        }
    }

    async fn invitations_are_mailed_when_smtp_is_set(t: TestDb) {
        let mut config = test_config(&t.url);
        config.smtp_url = Some("smtp://127.0.0.1:9".to_owned());
        config.public_url = "https://inbox.example".to_owned();
        let app = spawn_app_with(&t, config).await;
        let _w = world(&app).await;
        let (_, token) = invite(&app, BOSS).await;
        let body: String = on_db!(&app.db, |p| sqlx::query_scalar("SELECT body_text FROM mail_queue WHERE to_addr = $1")
            .bind(BOSS)
            .fetch_one(p)
            .await)
        .unwrap();
        assert!(body.contains(&format!("https://inbox.example/#/agency-accept/{token}")), "{body}");
    }
}
