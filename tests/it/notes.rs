//! Internal notes in a chat and the mentions they make: a note is part of the chat for the
//! team and nothing else (no WhatsApp message, no window, no unread count, no session), a
//! mention reaches only a member who sees the chat, and the mentions list is each member's own.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::on_db;
use uuid::Uuid;

use crate::live::live;
use crate::on_both;
use crate::support::*;
use crate::webhooks::text_payload;

const CUSTOMER: &str = "15550100111";

/// A connected number, a lead (assigned to `assignee` when given) and its conversation, opened
/// by the customer's "hello" at `ts`. Returns (lead id, conversation id).
async fn chat(app: &TestApp, assignee: Option<Uuid>, ts: i64) -> (String, String) {
    app.connect_number("100200300400600", "15550100100", false).await;
    let mut lead = json!({"name": "Priya Patel", "phone": format!("+{CUSTOMER}")});
    if let Some(a) = assignee {
        lead["assignee_id"] = json!(a);
    }
    let (status, lead) = app.post("/api/v1/leads", &app.admin_token, lead).await;
    assert_eq!(status, StatusCode::CREATED, "{lead}");
    assert_eq!(app.signed_webhook(&text_payload("wamid.hello", CUSTOMER, ts, "hello")).await, StatusCode::OK);
    app.webhooks_processed().await;
    let lead = lead["id"].as_str().unwrap().to_owned();
    let (_, list) = app.get(&format!("/api/v1/conversations?lead_id={lead}"), &app.admin_token).await;
    let conv = list["conversations"][0]["id"].as_str().expect("the conversation").to_owned();
    (lead, conv)
}

async fn note(app: &TestApp, token: &str, conv: &str, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/api/v1/conversations/{conv}/notes"), token, body).await
}

async fn items(app: &TestApp, token: &str, conv: &str, query: &str) -> Value {
    let (status, page) = app.get(&format!("/api/v1/conversations/{conv}/messages{query}"), token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

on_both! {
    async fn a_note_joins_the_chat_and_touches_nothing_else(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.login(ADMIN_EMAIL, PASSWORD).await;
        let admin_id = admin["user"]["id"].as_str().unwrap().to_owned();
        let now = app.clock.now().timestamp();
        let (lead, conv) = chat(&app, None, now - 600).await;
        let (_, before) = app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token).await;
        let mut socket = live(&app, &app.admin_token, None).await;

        let (status, n) = note(&app, &app.admin_token, &conv, json!({"text": "  Called her, she wants the blue one  "})).await;
        assert_eq!(status, StatusCode::CREATED, "{n}");
        assert_eq!(n["type"], "note");
        assert_eq!(n["direction"], "internal");
        assert_eq!(n["text"], "Called her, she wants the blue one", "trimmed");
        assert_eq!(n["conversation_id"], conv.as_str());
        assert_eq!(n["sent_by"]["id"], admin_id.as_str());
        assert_eq!(n["mention_ids"], json!([]));
        assert!(n["created_at"].is_string());

        // Live: the chat gets it as a new item, the lead's timeline as an activity.
        let mut kinds = Vec::new();
        while kinds.len() < 2 {
            let e = socket.next_json().await;
            if e["type"] == "message.created" {
                assert_eq!(e["data"]["id"], n["id"]);
                assert_eq!(e["data"]["type"], "note");
                assert_eq!(e["data"]["direction"], "internal");
            }
            kinds.push(e["type"].as_str().unwrap().to_owned());
        }
        kinds.sort();
        assert_eq!(kinds, ["message.created", "timeline.created"]);

        // The conversation is as it was: window, unread count, last message, list position.
        let (_, after) = app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token).await;
        for field in ["unread_count", "window_expires_at", "last_message", "updated_at", "status", "template_required"] {
            assert_eq!(after[field], before[field], "{field} changed");
        }
        assert_eq!(app.count("SELECT COUNT(*) FROM outbox").await, 0, "nothing goes to Meta");
        assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 1, "a note is no WhatsApp message");

        // The timeline: a note activity by the admin in this conversation; the session's
        // counts are the customer's message alone.
        let (_, notes) = app.get(&format!("/api/v1/leads/{lead}/timeline?type=note"), &app.admin_token).await;
        let activity = &notes["activities"][0];
        assert_eq!(activity["conversation_id"], conv.as_str());
        assert_eq!(activity["member_id"], admin_id.as_str());
        assert_eq!(activity["data"]["text"], "Called her, she wants the blue one");
        assert_eq!(activity["data"]["note_id"], n["id"]);
        let (_, sessions) = app.get(&format!("/api/v1/leads/{lead}/timeline?type=whatsapp_session"), &app.admin_token).await;
        let session = &sessions["activities"][0]["data"];
        assert_eq!((session["messages_from_lead"].as_i64(), session["messages_from_member"].as_i64()), (Some(1), Some(0)));

        // In time order among the messages: one from the customer after the note comes after it.
        assert_eq!(app.signed_webhook(&text_payload("wamid.later", CUSTOMER, now + 60, "blue it is")).await, StatusCode::OK);
        app.webhooks_processed().await;
        let page = items(&app, &app.admin_token, &conv, "").await;
        let texts: Vec<&str> = page["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["hello", "Called her, she wants the blue one", "blue it is"]);
        assert_eq!(page["messages"][1]["type"], "note");
        assert_eq!(page["messages"][0]["direction"], "in");

        // Paging one at a time walks the same order backwards, a note as good a cursor as a message.
        let mut seen = Vec::new();
        let mut query = "?limit=1".to_owned();
        loop {
            let page = items(&app, &app.admin_token, &conv, &query).await;
            seen.push(page["messages"][0]["text"].as_str().unwrap().to_owned());
            match page["next_cursor"].as_str() {
                Some(c) => query = format!("?limit=1&before={c}"),
                None => break,
            }
        }
        assert_eq!(seen, ["blue it is", "Called her, she wants the blue one", "hello"]);
    }

    async fn a_note_is_between_one_and_4096_characters(t: TestDb) {
        let app = spawn_app(&t).await;
        let (_, conv) = chat(&app, None, app.clock.now().timestamp()).await;
        for text in [String::new(), "   \n ".to_owned(), "é".repeat(4097)] {
            let (status, body) = note(&app, &app.admin_token, &conv, json!({"text": text})).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{} characters: {body}", text.chars().count());
            assert_eq!(error_code(&body), "invalid_note");
        }
        let (status, body) = note(&app, &app.admin_token, &conv, json!({"text": "é".repeat(4096)})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = note(&app, &app.admin_token, &conv, json!({})).await;
        assert!(status.is_client_error(), "{status} {body}");
        error_code(&body);
        assert_eq!(app.count("SELECT COUNT(*) FROM notes").await, 1);
    }

    async fn mentions_reach_only_members_who_see_the_chat(t: TestDb) {
        let app = spawn_app(&t).await;
        let (agent, agent_token) = app.member("agent@example.com", json!({})).await;
        let (outsider, outsider_token) = app.member("outsider@example.com", json!({})).await;
        let (lead_of_team, lead_token) = app.member("lead@example.com", json!({"view_others_leads": true})).await;
        let (_, conv) = chat(&app, Some(agent), app.clock.now().timestamp()).await;

        // A mention of someone who can't see the chat (or of nobody known) is refused, and
        // nothing is stored.
        for who in [outsider, Uuid::new_v4()] {
            let (status, body) = note(&app, &agent_token, &conv, json!({"text": "look", "mention_ids": [who]})).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(error_code(&body), "mention_without_access");
        }
        assert_eq!(app.count("SELECT COUNT(*) FROM notes").await, 0);
        assert_eq!(app.count("SELECT COUNT(*) FROM mentions").await, 0);
        assert_eq!(items(&app, &agent_token, &conv, "").await["messages"].as_array().unwrap().len(), 1);

        // A member who sees it (through view_others_leads) gets the mention, live and listed.
        let mut theirs = live(&app, &lead_token, None).await;
        let (status, n) = note(&app, &agent_token, &conv,
            json!({"text": "@lead can we discount?", "mention_ids": [lead_of_team, lead_of_team]})).await;
        assert_eq!(status, StatusCode::CREATED, "{n}");
        assert_eq!(n["mention_ids"], json!([lead_of_team]), "each member once");
        let event = loop {
            let e = theirs.next_json().await;
            if e["type"] == "mention.created" {
                break e;
            }
        };
        assert_eq!(event["data"]["note_id"], n["id"]);
        assert_eq!(event["data"]["conversation_id"], conv.as_str());
        assert_eq!(event["data"]["by"]["id"], agent.to_string());
        let addressed: Vec<Uuid> = on_db!(&app.db, |p| sqlx::query_scalar(
            "SELECT user_id FROM events WHERE type = 'mention.created'").fetch_all(p).await).unwrap();
        assert_eq!(addressed, [lead_of_team], "addressed to the mentioned member only");
        let page = items(&app, &agent_token, &conv, "").await;
        assert_eq!(page["messages"][1]["mention_ids"], json!([lead_of_team]));

        let mentions = |token: String, query: &'static str| {
            let app = &app;
            async move {
                let (status, body) = app.get(&format!("/api/v1/mentions{query}"), &token).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                body["mentions"].as_array().unwrap().clone()
            }
        };
        let mine = mentions(lead_token.clone(), "").await;
        assert_eq!(mine.len(), 1);
        let m = &mine[0];
        assert_eq!(m["note_id"], n["id"]);
        assert_eq!(m["text"], "@lead can we discount?");
        assert_eq!(m["by"]["id"], agent.to_string());
        assert_eq!(m["read_at"], Value::Null);
        assert_eq!(mentions(lead_token.clone(), "?unread=true").await.len(), 1);
        assert_eq!(mentions(lead_token.clone(), "?unread=false").await.len(), 0);
        assert!(mentions(agent_token.clone(), "").await.is_empty(), "the author was not mentioned");
        assert!(mentions(outsider_token.clone(), "").await.is_empty());
        let (status, body) = app.get("/api/v1/mentions?unread=maybe", &lead_token).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_filter"));

        // Opening it marks it read, once; nobody else can.
        let mention = m["id"].as_str().unwrap();
        let (status, body) = app.post(&format!("/api/v1/mentions/{mention}/read"), &agent_token, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, read) = app.post(&format!("/api/v1/mentions/{mention}/read"), &lead_token, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{read}");
        assert!(read["read_at"].is_string());
        let (_, again) = app.post(&format!("/api/v1/mentions/{mention}/read"), &lead_token, json!({})).await;
        assert_eq!(again["read_at"], read["read_at"], "the first reading counts");
        assert_eq!(mentions(lead_token.clone(), "?unread=true").await.len(), 0);
        assert_eq!(mentions(lead_token.clone(), "?unread=false").await.len(), 1);

        // Paging: newest first, a cursor until the end.
        for i in 0..2 {
            let (status, body) = note(&app, &agent_token, &conv, json!({"text": format!("again {i}"), "mention_ids": [lead_of_team]})).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let (_, first) = app.get("/api/v1/mentions?limit=2", &lead_token).await;
        assert_eq!(first["mentions"][0]["text"], "again 1");
        let cursor = first["next_cursor"].as_str().expect("a second page");
        let (_, second) = app.get(&format!("/api/v1/mentions?limit=2&cursor={cursor}"), &lead_token).await;
        assert_eq!(second["mentions"].as_array().unwrap().len(), 1);
        assert_eq!(second["next_cursor"], Value::Null);

        // Mentions of a chat the member no longer sees are gone from their list.
        let (status, body) = app.json(Method::PATCH, &format!("/api/v1/members/{lead_of_team}"), &app.admin_token,
            Some(json!({"permissions": {}}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(mentions(lead_token.clone(), "").await.is_empty());
        let (status, _) = app.post(&format!("/api/v1/mentions/{mention}/read"), &lead_token, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    async fn a_note_never_reveals_a_chat_the_caller_cannot_see(t: TestDb) {
        let app = spawn_app(&t).await;
        let (agent, _) = app.member("agent@example.com", json!({})).await;
        let (_, outsider_token) = app.member("outsider@example.com", json!({})).await;
        let (_, conv) = chat(&app, Some(agent), app.clock.now().timestamp()).await;
        for target in [conv.clone(), Uuid::new_v4().to_string()] {
            let (status, body) = note(&app, &outsider_token, &target, json!({"text": "peek"})).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
            assert_eq!(error_code(&body), "not_found");
        }
        // Even a refused mention says nothing more: the unseen chat answers 404 first.
        let (status, _) = note(&app, &outsider_token, &conv, json!({"text": "peek", "mention_ids": [agent]})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(app.count("SELECT COUNT(*) FROM notes").await, 0);
        let (status, _) = app.post(&format!("/api/v1/mentions/{}/read", Uuid::new_v4()), &outsider_token, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
