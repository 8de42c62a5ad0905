//! The team: invitations, members, roles and flags, deactivation, the last admin.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both;
use crate::support::*;

/// Invites `email` as the admin; returns the invitation (with its accept token).
async fn invite(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, inv) = app.post("/api/v1/invitations", token, body).await;
    assert_eq!(status, StatusCode::CREATED, "invite: {inv}");
    inv
}

async fn accept(app: &TestApp, accept_token: &str) -> (StatusCode, Value) {
    let resp = app
        .call(
            Method::POST,
            "/api/v1/invitations/accept",
            None,
            Some(json!({"accept_token": accept_token, "password": PASSWORD, "name": "Nia New"})),
        )
        .await;
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

on_both! {
    async fn invitation_accept_resend_cancel_expire(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let (_, label) = app.post("/api/v1/labels", &admin, json!({"name": "VIP", "color": "#f00"})).await;
        let inv = invite(&app, &admin, json!({
            "email": "New@Example.com", "name": "Nia", "role": "member",
            "permissions": {"view_unassigned": true}, "label_ids": [label["id"]]
        })).await;
        assert_eq!(inv["status"], "invite_sent");
        assert_eq!(inv["email"], "new@example.com");
        let accept_token = inv["accept_token"].as_str().unwrap().to_owned();
        let id = inv["id"].as_str().unwrap().to_owned();

        // The invited member is listed, not yet able to log in.
        let (_, m) = app.get(&format!("/api/v1/members/{id}"), &admin).await;
        assert_eq!(m["status"], "invite_sent");
        assert_eq!(m["permissions"]["view_unassigned"], true);
        assert_eq!(m["permissions"]["manage_members"], false);
        assert_eq!(m["label_ids"], json!([label["id"]]));
        let stored: i64 = switchboard::on_db!(&app.db, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM invitations WHERE token_hash = $1")
            .bind(switchboard::auth::token::digest(&accept_token)).fetch_one(p).await).unwrap();
        assert_eq!(stored, 1, "only the token's hash is stored");

        // Accept answers like login, with 201; the member id is the invitation id.
        let (status, session) = accept(&app, &accept_token).await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        assert_eq!(session["user"]["id"], id.as_str());
        assert_eq!(session["user"]["role"], "member");
        assert_eq!(session["user"]["name"], "Nia New");
        let tok = session["token"].as_str().unwrap();
        let (status, me) = app.get("/api/v1/auth/me", tok).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        app.login("new@example.com", PASSWORD).await;
        let (status, body) = accept(&app, &accept_token).await;
        assert_eq!(status, StatusCode::GONE, "a used token: {body}");
        error_code(&body);

        // Resend kills the old token.
        let inv = invite(&app, &admin, json!({"email": "second@example.com", "name": "Sam"})).await;
        let old = inv["accept_token"].as_str().unwrap().to_owned();
        let (status, resent) = app.post(&format!("/api/v1/invitations/{}/resend", inv["id"].as_str().unwrap()), &admin, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{resent}");
        let new = resent["accept_token"].as_str().unwrap().to_owned();
        assert_ne!(old, new);
        assert_eq!(accept(&app, &old).await.0, StatusCode::GONE);
        assert_eq!(accept(&app, &new).await.0, StatusCode::CREATED);

        // Cancel kills the token.
        let inv = invite(&app, &admin, json!({"email": "third@example.com", "name": "Tom"})).await;
        let del = app.call(Method::DELETE, &format!("/api/v1/invitations/{}", inv["id"].as_str().unwrap()), Some(&admin), None).await;
        assert_eq!(del.status(), StatusCode::NO_CONTENT);
        assert_eq!(accept(&app, inv["accept_token"].as_str().unwrap()).await.0, StatusCode::GONE);
        // ... and the same email may be invited again.
        let again = invite(&app, &admin, json!({"email": "third@example.com", "name": "Tom"})).await;
        assert_eq!(again["id"], inv["id"]);
        assert_eq!(accept(&app, again["accept_token"].as_str().unwrap()).await.0, StatusCode::CREATED);

        // Tokens expire after 7 days.
        let inv = invite(&app, &admin, json!({"email": "late@example.com", "name": "Lee"})).await;
        app.clock.advance(chrono::Duration::days(8));
        assert_eq!(accept(&app, inv["accept_token"].as_str().unwrap()).await.0, StatusCode::GONE);
        assert_eq!(accept(&app, "sb_never-issued").await.0, StatusCode::GONE);

        // Bad input.
        let (status, body) = app.post("/api/v1/invitations", &admin, json!({"email": "nope", "name": "X"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (status, body) = app.post("/api/v1/invitations", &admin, json!({"email": "new@example.com", "name": "X"})).await;
        assert_eq!(status, StatusCode::CONFLICT, "active member's email: {body}");
        let (status, body) = app.post("/api/v1/invitations", &admin, json!({"email": "z@example.com", "role": "owner"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (status, body) = app.post("/api/v1/invitations", &admin, json!({"email": "z@example.com", "permissions": {"fly": true}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (status, body) = app.post("/api/v1/invitations", &admin, json!({"email": "z@example.com", "label_ids": [uuid::Uuid::new_v4()]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_code(&body), "unknown_label");
    }

    async fn only_admins_manage_admins(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let (manager_id, manager) = app.member("manager@example.com", json!({"manage_members": true})).await;
        let (plain_id, plain) = app.member("plain@example.com", json!({})).await;
        let admin_id = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].as_str().unwrap().to_owned();

        // Inviting: managers invite members, never admins; plain members nobody.
        invite(&app, &manager, json!({"email": "m1@example.com", "role": "member"})).await;
        let (status, body) = app.post("/api/v1/invitations", &manager, json!({"email": "a1@example.com", "role": "admin"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _) = app.post("/api/v1/invitations", &plain, json!({"email": "m2@example.com"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let inv = invite(&app, &admin, json!({"email": "a2@example.com", "role": "admin"})).await;
        let (status, _) = app.post(&format!("/api/v1/invitations/{}/resend", inv["id"].as_str().unwrap()), &manager, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a manager can't resend an admin's invitation");

        // Changing members: a manager edits members, not admins, not into admins, not themselves.
        let patch = |token: String, id: String, body: Value| {
            let app = &app;
            async move { app.json(Method::PATCH, &format!("/api/v1/members/{id}"), &token, Some(body)).await }
        };
        let (status, m) = patch(manager.clone(), plain_id.to_string(), json!({"permissions": {"view_others_leads": true}, "name": "Pat"})).await;
        assert_eq!(status, StatusCode::OK, "{m}");
        assert_eq!(m["permissions"]["view_others_leads"], true);
        assert_eq!(m["name"], "Pat");
        let (status, _) = patch(manager.clone(), plain_id.to_string(), json!({"role": "admin"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = patch(manager.clone(), admin_id.clone(), json!({"name": "Nope"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = patch(manager.clone(), manager_id.to_string(), json!({"permissions": {"manage_members": true, "view_others_leads": true}})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "no self-escalation");
        let (status, _) = patch(plain.clone(), manager_id.to_string(), json!({"name": "X"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, me) = patch(plain.clone(), plain_id.to_string(), json!({"name": "Patricia"})).await;
        assert_eq!(status, StatusCode::OK, "anyone renames themselves: {me}");
        let (status, _) = app.post(&format!("/api/v1/members/{admin_id}/deactivate"), &manager, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // Everyone reads the directory.
        let (status, list) = app.get("/api/v1/members", &plain).await;
        assert_eq!(status, StatusCode::OK);
        let members = list["members"].as_array().unwrap();
        assert!(members.len() >= 5, "{list}");
        for m in members {
            for f in ["id", "email", "name", "role", "status", "permissions", "label_ids"] {
                assert!(!m[f].is_null(), "member.{f} in {m}");
            }
        }
        let (_, page) = app.get("/api/v1/members?limit=2", &plain).await;
        assert_eq!(page["members"].as_array().unwrap().len(), 2);
        let cursor = page["next_cursor"].as_str().unwrap();
        let (_, next) = app.get(&format!("/api/v1/members?limit=2&cursor={cursor}"), &plain).await;
        assert_ne!(next["members"][0]["id"], page["members"][0]["id"]);
        let (status, _) = app.get("/api/v1/members?status=gone", &plain).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // An admin promotes; the new admin may then manage admins.
        let (status, m) = patch(admin.clone(), plain_id.to_string(), json!({"role": "admin"})).await;
        assert_eq!(status, StatusCode::OK, "{m}");
        assert_eq!(m["role"], "admin");
    }

    async fn last_admin_is_protected(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let admin_id = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].as_str().unwrap().to_owned();
        let (status, body) = app.json(Method::PATCH, &format!("/api/v1/members/{admin_id}"), &admin, Some(json!({"role": "member"}))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(error_code(&body), "last_admin");
        let (status, body) = app.post(&format!("/api/v1/members/{admin_id}/deactivate"), &admin, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(error_code(&body), "last_admin");

        // With a second active admin, the first may step down.
        let (second_id, _) = app.member("second@example.com", json!({})).await;
        let (status, _) = app.json(Method::PATCH, &format!("/api/v1/members/{second_id}"), &admin, Some(json!({"role": "admin"}))).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = app.json(Method::PATCH, &format!("/api/v1/members/{admin_id}"), &admin, Some(json!({"role": "member"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let second = app.login("second@example.com", PASSWORD).await["token"].as_str().unwrap().to_owned();
        let (status, _) = app.post(&format!("/api/v1/members/{second_id}/deactivate"), &second, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "now the last admin");
    }

    async fn deactivation_is_immediate_and_reversible(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let (id, token) = app.member("leaving@example.com", json!({"view_unassigned": true})).await;
        let second = app.login("leaving@example.com", PASSWORD).await["token"].as_str().unwrap().to_owned();
        let before: i64 = switchboard::on_db!(&app.db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE type = 'member.updated'").fetch_one(p).await).unwrap();

        let (status, m) = app.post(&format!("/api/v1/members/{id}/deactivate"), &admin, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{m}");
        assert_eq!(m["status"], "deactivated");
        for t in [&token, &second] {
            let (status, _) = app.get("/api/v1/conversations", t).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "every token dies at once");
        }
        let login = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"email": "leaving@example.com", "password": PASSWORD}))).await;
        assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
        let revoked: i64 = switchboard::on_db!(&app.db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM auth_tokens WHERE user_id = $1 AND NOT revoked").bind(id).fetch_one(p).await).unwrap();
        assert_eq!(revoked, 0);
        let after: i64 = switchboard::on_db!(&app.db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE type = 'member.updated'").fetch_one(p).await).unwrap();
        assert_eq!(after, before + 1, "member.updated tells the live code to close their sockets");

        let (status, m) = app.post(&format!("/api/v1/members/{id}/reactivate"), &admin, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{m}");
        assert_eq!(m["status"], "active");
        let (status, _) = app.get("/api/v1/conversations", &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "old tokens stay dead");
        let fresh = app.login("leaving@example.com", PASSWORD).await;
        let (status, _) = app.get("/api/v1/conversations", fresh["token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
    }

    async fn labels_crud(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let (_, plain) = app.member("plain@example.com", json!({})).await;
        let (status, label) = app.post("/api/v1/labels", &admin, json!({"name": "Billing"})).await;
        assert_eq!(status, StatusCode::CREATED, "{label}");
        let id = label["id"].as_str().unwrap();
        let (status, _) = app.post("/api/v1/labels", &admin, json!({"name": "Billing"})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, _) = app.post("/api/v1/labels", &plain, json!({"name": "Mine"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app.post("/api/v1/labels", &admin, json!({"name": "  "})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, list) = app.get("/api/v1/labels", &plain).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["labels"].as_array().unwrap().len(), 1);
        let (status, renamed) = app.json(Method::PATCH, &format!("/api/v1/labels/{id}"), &admin, Some(json!({"name": "Invoices", "color": "blue"}))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(renamed["name"], "Invoices");
        assert_eq!(renamed["color"], "blue");
        let number = crate::access::insert_number(&app.db, app.workspace_id).await;
        let lead = crate::access::insert_lead(&app.db, app.workspace_id, None).await;
        let label_id = uuid::Uuid::parse_str(id).unwrap();
        let conv = crate::access::insert_conversation(&app.db, app.workspace_id, number, lead, None, &[label_id], &[]).await;
        let del = app.call(Method::DELETE, &format!("/api/v1/labels/{id}"), Some(&admin), None).await;
        assert_eq!(del.status(), StatusCode::NO_CONTENT);
        let (_, c) = app.get(&format!("/api/v1/conversations/{conv}"), &admin).await;
        assert_eq!(c["label_ids"], json!([]), "the label left its conversations");
        let kinds: Vec<String> = switchboard::on_db!(&app.db, |p| sqlx::query_scalar(
            "SELECT type FROM events WHERE conversation_id = $1 ORDER BY id").bind(conv).fetch_all(p).await).unwrap();
        assert_eq!(kinds, ["timeline.created", "conversation.updated"], "the label_removed activity, then the change");
        let (status, _) = app.json(Method::PATCH, &format!("/api/v1/labels/{id}"), &admin, Some(json!({"name": "x"}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    async fn other_workspaces_stay_invisible(t: TestDb) {
        use crate::access::{insert_conversation, insert_label, insert_lead, insert_number, insert_user};
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        switchboard::workspace::bootstrap(&t.db, &app.clock, "Other Co", "boss@other.test", PASSWORD, None).await.unwrap();
        let other = app.login("boss@other.test", PASSWORD).await;
        let other_ws = uuid::Uuid::parse_str(other["user"]["workspace_id"].as_str().unwrap()).unwrap();
        let their_member = insert_user(&app.db, other_ws, "member", "active").await;
        let their_label = insert_label(&app.db, other_ws, "Theirs").await;
        let n = insert_number(&app.db, other_ws).await;
        let l = insert_lead(&app.db, other_ws, None).await;
        let their_conv = insert_conversation(&app.db, other_ws, n, l, None, &[], &[]).await;
        for (method, path) in [
            (Method::GET, format!("/api/v1/members/{their_member}")),
            (Method::PATCH, format!("/api/v1/members/{their_member}")),
            (Method::POST, format!("/api/v1/members/{their_member}/deactivate")),
            (Method::POST, format!("/api/v1/invitations/{their_member}/resend")),
            (Method::PATCH, format!("/api/v1/labels/{their_label}")),
            (Method::DELETE, format!("/api/v1/labels/{their_label}")),
            (Method::POST, format!("/api/v1/conversations/{their_conv}/claim")),
            (Method::GET, format!("/api/v1/conversations/{their_conv}/access")),
        ] {
            let (status, body) = app.json(method.clone(), &path, &admin, Some(json!({"name": "x"}))).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        }
        let (_, members) = app.get("/api/v1/members", &admin).await;
        assert!(!members.to_string().contains(&their_member.to_string()));
        // Their members and labels can't be used here.
        let mine_n = insert_number(&app.db, app.workspace_id).await;
        let mine_l = insert_lead(&app.db, app.workspace_id, None).await;
        let mine = insert_conversation(&app.db, app.workspace_id, mine_n, mine_l, None, &[], &[]).await;
        let (status, _) = app.post(&format!("/api/v1/conversations/{mine}/assign"), &admin, json!({"assignee_id": their_member})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = app.post(&format!("/api/v1/conversations/{mine}/access"), &admin, json!({"member_ids": [their_member]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = app.json(Method::PUT, &format!("/api/v1/conversations/{mine}/labels"), &admin, Some(json!({"label_ids": [their_label]}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = app.post("/api/v1/invitations", &admin, json!({"email": "boss@other.test"})).await;
        assert_eq!(status, StatusCode::CONFLICT, "emails are unique across the server");
    }

    async fn member_changes_are_events(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let inv = invite(&app, &admin, json!({"email": "evt@example.com", "name": "Eve"})).await;
        let id = inv["id"].as_str().unwrap().to_owned();
        assert_eq!(accept(&app, inv["accept_token"].as_str().unwrap()).await.0, StatusCode::CREATED);
        app.json(Method::PATCH, &format!("/api/v1/members/{id}"), &admin, Some(json!({"permissions": {"view_unassigned": true}}))).await;
        app.post(&format!("/api/v1/members/{id}/deactivate"), &admin, json!({})).await;
        // The log keeps each event's data as JSON text.
        let rows: Vec<(Option<uuid::Uuid>, String)> = switchboard::on_db!(&app.db, |p| sqlx::query_as(
            "SELECT user_id, data FROM events WHERE type = 'member.updated' ORDER BY id").fetch_all(p).await).unwrap();
        let datas: Vec<Value> = rows.iter().map(|(u, d)| {
            assert!(u.is_none(), "member.updated is workspace-wide");
            serde_json::from_str(d).unwrap()
        }).filter(|d: &Value| d["id"] == id.as_str()).collect();
        let statuses: Vec<&str> = datas.iter().map(|d| d["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["invite_sent", "active", "active", "deactivated"]);
        assert_eq!(datas[2]["permissions"]["view_unassigned"], true);
        assert!(datas.iter().all(|d| d.get("accept_token").is_none() && d.get("password_hash").is_none()));
    }

    async fn two_admins_deactivating_each_other_leave_one(t: TestDb) {
        let app = spawn_app(&t).await;
        let first_id = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].as_str().unwrap().to_owned();
        let (second_id, _) = app.member("second@example.com", json!({})).await;
        let (status, _) = app.json(Method::PATCH, &format!("/api/v1/members/{second_id}"), &app.admin_token, Some(json!({"role": "admin"}))).await;
        assert_eq!(status, StatusCode::OK);
        let second = app.login("second@example.com", PASSWORD).await["token"].as_str().unwrap().to_owned();
        let (pa, pb) = (format!("/api/v1/members/{second_id}/deactivate"), format!("/api/v1/members/{first_id}/deactivate"));
        let a = app.post(&pa, &app.admin_token, json!({}));
        let b = app.post(&pb, &second, json!({}));
        let ((sa, ba), (sb, bb)) = tokio::join!(a, b);
        let active: i64 = switchboard::on_db!(&app.db, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND status = 'active' AND workspace_id = $1")
            .bind(app.workspace_id).fetch_one(p).await).unwrap();
        assert_eq!(active, 1, "exactly one admin left: {sa} {ba} / {sb} {bb}");
        let mut outcomes = [sa, sb];
        outcomes.sort();
        // The loser is refused as the last admin, or was signed out by the winner first.
        assert!(outcomes[0] == StatusCode::OK && (outcomes[1] == StatusCode::UNAUTHORIZED || outcomes[1] == StatusCode::CONFLICT), "{sa} {ba} / {sb} {bb}");
    }
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> =
        v.as_object().unwrap_or_else(|| panic!("an object: {v}")).keys().map(String::as_str).collect();
    k.sort();
    k
}

on_both! {
    // The typed answers keep the contract's shapes: every key, null where nothing.
    async fn answers_keep_their_shapes(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let member_keys =
            ["created_at", "email", "id", "label_ids", "name", "permissions", "role", "status", "team_ids", "updated_at"];

        let (_, label) = app.post("/api/v1/labels", &admin, json!({"name": "VIP"})).await;
        assert_eq!(keys(&label), ["color", "created_at", "id", "name"]);
        assert_eq!(label["color"], Value::Null);
        let (_, labels) = app.get("/api/v1/labels", &admin).await;
        assert_eq!(keys(&labels), ["labels", "next_cursor"]);
        assert_eq!(labels["next_cursor"], Value::Null);

        let inv = invite(&app, &admin, json!({"email": "shape@example.com"})).await;
        let mut inv_keys = member_keys.to_vec();
        inv_keys.extend(["accept_token", "expires_at"]);
        inv_keys.sort();
        assert_eq!(keys(&inv), inv_keys);
        assert_eq!(inv["name"], "shape");
        assert_eq!(keys(&inv["permissions"]).len(), 9);

        let (_, members) = app.get("/api/v1/members?limit=1", &admin).await;
        assert_eq!(keys(&members), ["members", "next_cursor"]);
        let mut listed_keys = member_keys.to_vec();
        listed_keys.push("presence");
        listed_keys.sort();
        assert_eq!(keys(&members["members"][0]), listed_keys, "the list adds presence");
        assert!(members["next_cursor"].is_string());

        let (_, me) = app.get("/api/v1/auth/me", &admin).await;
        assert_eq!(keys(&me), ["label_ids", "permissions", "user"]);
        assert_eq!(keys(&me["user"]), ["email", "id", "name", "role", "workspace_id"]);
        let session = app.login(ADMIN_EMAIL, PASSWORD).await;
        assert_eq!(keys(&session), ["token", "user"]);

        let (_, ws) = app.get("/api/v1/workspace", &admin).await;
        assert_eq!(keys(&ws), ["id", "managed_by", "name", "session_gap_secs"]);

        let (_, report) = app.get("/api/v1/reports/team", &admin).await;
        assert_eq!(keys(&report), ["billable", "from", "group_id", "members", "to", "totals"]);
        let counts = ["activities", "assigned", "avg_first_response_secs", "contacted", "first_responses", "open_conversations", "replies"];
        assert_eq!(keys(&report["totals"]), counts);
        assert_eq!(report["totals"]["avg_first_response_secs"], Value::Null);
        let mut row = counts.to_vec();
        row.extend(["member_id", "name"]);
        row.sort();
        assert_eq!(keys(&report["members"][0]), row);

        let (status, health) = app.get("/healthz", &admin).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(health, json!({"status": "ok"}));
    }
}
