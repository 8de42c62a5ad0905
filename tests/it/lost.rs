//! `access.lost`: whoever stops seeing a conversation after a change hears it over the live
//! socket (addressed to them alone), whatever the change: reassignment, a claim, explicit
//! access revoked, a granted label taken off the chat or deleted.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::events::NewEvent;

use crate::live::{Live, conversation, emit, live};
use crate::on_both;
use crate::support::*;

/// Frames up to the next `access.lost` (skipping others).
async fn next_lost(s: &mut Live) -> Value {
    for _ in 0..50 {
        let f = s.next_json().await;
        if f["type"] == "access.lost" {
            return f;
        }
    }
    panic!("no access.lost in 50 frames");
}

/// Emits a marker and reads each socket up to it: none of them got `access.lost` before.
async fn no_lost_before_marker(app: &TestApp, sockets: &mut [&mut Live], marker: &str) {
    emit(app, NewEvent::raw(app.workspace_id, "marker", json!({"marker": marker}))).await;
    for s in sockets.iter_mut() {
        loop {
            let f = s.next_json().await;
            assert_ne!(f["type"], "access.lost", "unexpected {f}");
            if f["type"] == "marker" && f["data"]["marker"] == marker {
                break;
            }
        }
    }
}

fn ok(r: (StatusCode, Value)) -> Value {
    assert!(r.0.is_success(), "{} {}", r.0, r.1);
    r.1
}

on_both! {
    async fn whoever_stops_seeing_a_chat_hears_access_lost(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin_id = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].as_str().unwrap().to_owned();
        let (agent, agent_tok) = app.member("agent@example.com", json!({})).await;
        let (other, other_tok) = app.member("other@example.com", json!({})).await;
        let (_pool, pool_tok) = app.member("pool@example.com", json!({"view_unassigned": true})).await;
        let (_watcher, watcher_tok) = app.member("watcher@example.com", json!({"view_others_leads": true})).await;
        let (mine, lead) = conversation(&app, "+15550100001", Some(agent)).await;
        let mut a = live(&app, &agent_tok, None).await;
        let mut o = live(&app, &other_tok, None).await;
        let mut p = live(&app, &pool_tok, None).await;
        let mut w = live(&app, &watcher_tok, None).await;
        let mut admin = live(&app, &app.admin_token, None).await;

        // An admin gives the agent's chat to someone else: the agent hears it, nobody else.
        ok(app.post(&format!("/api/v1/conversations/{mine}/assign"), &app.admin_token, json!({"assignee_id": other})).await);
        let f = next_lost(&mut a).await;
        assert_eq!(f["data"]["conversation_id"], json!(mine));
        assert_eq!(f["data"]["lead_id"], json!(lead));
        assert_eq!(f["data"]["cause"], "assignee");
        assert_eq!(f["data"]["assignee_id"], json!(other));
        assert_eq!(f["data"]["by_member_id"], json!(admin_id));
        assert!(f["cursor"].is_string(), "{f}");
        // It is really gone for them.
        let (status, _) = app.get(&format!("/api/v1/conversations/{mine}"), &agent_tok).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        no_lost_before_marker(&app, &mut [&mut a, &mut o, &mut p, &mut w, &mut admin], "after assign").await;

        // Someone claims an unassigned chat: who saw it through `view_unassigned` hears it.
        let (pooled, _) = conversation(&app, "+15550100002", None).await;
        ok(app.post(&format!("/api/v1/conversations/{pooled}/claim"), &app.admin_token, json!({})).await);
        let f = next_lost(&mut p).await;
        assert_eq!(f["data"]["conversation_id"], json!(pooled));
        assert_eq!(f["data"]["assignee_id"], json!(admin_id));
        no_lost_before_marker(&app, &mut [&mut a, &mut o, &mut p, &mut w, &mut admin], "after claim").await;

        // Explicit access granted, then revoked.
        let access = format!("/api/v1/conversations/{mine}/access");
        ok(app.post(&access, &app.admin_token, json!({"member_ids": [agent]})).await);
        no_lost_before_marker(&app, &mut [&mut a], "granted").await;
        ok(app.json(Method::DELETE, &access, &app.admin_token, Some(json!({"member_ids": [agent]}))).await);
        let f = next_lost(&mut a).await;
        assert_eq!((f["data"]["conversation_id"].clone(), f["data"]["cause"].clone()), (json!(mine), json!("access")));
        no_lost_before_marker(&app, &mut [&mut a, &mut o, &mut p, &mut w, &mut admin], "after revoke").await;

        // A label granted to the agent, put on the chat, then taken off; then put on and deleted.
        let label = ok(app.post("/api/v1/labels", &app.admin_token, json!({"name": "VIP"})).await);
        let label_id = label["id"].as_str().unwrap().to_owned();
        ok(app.json(Method::PATCH, &format!("/api/v1/members/{agent}"), &app.admin_token,
            Some(json!({"label_ids": [label_id]}))).await);
        let labels = format!("/api/v1/conversations/{mine}/labels");
        ok(app.json(Method::PUT, &labels, &app.admin_token, Some(json!({"label_ids": [label_id]}))).await);
        let (status, _) = app.get(&format!("/api/v1/conversations/{mine}"), &agent_tok).await;
        assert_eq!(status, StatusCode::OK, "the granted label shows the chat");
        ok(app.json(Method::PUT, &labels, &app.admin_token, Some(json!({"label_ids": []}))).await);
        let f = next_lost(&mut a).await;
        assert_eq!((f["data"]["conversation_id"].clone(), f["data"]["cause"].clone()), (json!(mine), json!("label")));
        ok(app.json(Method::PUT, &labels, &app.admin_token, Some(json!({"label_ids": [label_id]}))).await);
        ok(app.json(Method::DELETE, &format!("/api/v1/labels/{label_id}"), &app.admin_token, None).await);
        let f = next_lost(&mut a).await;
        assert_eq!((f["data"]["conversation_id"].clone(), f["data"]["cause"].clone()), (json!(mine), json!("label")));
        no_lost_before_marker(&app, &mut [&mut a, &mut o, &mut p, &mut w, &mut admin], "after labels").await;

        // The new assignee gives it back: they lose it; the watcher (view_others_leads) never does.
        ok(app.post(&format!("/api/v1/conversations/{mine}/assign"), &other_tok, json!({"assignee_id": agent})).await);
        let f = next_lost(&mut o).await;
        assert_eq!(f["data"]["assignee_id"], json!(agent));
        assert_eq!(f["data"]["by_member_id"], json!(other));
        no_lost_before_marker(&app, &mut [&mut a, &mut o, &mut p, &mut w, &mut admin], "after give back").await;
    }
}
