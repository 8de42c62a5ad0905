//! Live updates over real websockets: filtering at delivery, resume, reset, backpressure,
//! heartbeats, presence, deactivation, and two nodes on one PostgreSQL database.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::events::{self, NewEvent, Work};
use switchboard::live::presence::Availability;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::on_both;
use crate::support::*;

const DEADLINE: Duration = Duration::from_secs(10);

/// A websocket client of `/api/v1/live`. Presence announcements are skipped unless asked for.
pub struct Live {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub presence: bool,
}

impl Live {
    /// The next frame as JSON (10 s deadline); panics on close.
    pub async fn next_json(&mut self) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("timed out waiting for a live frame")
                .expect("socket ended")
                .expect("socket error");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).expect("frame is JSON");
                if !self.presence && v["type"] == "member.updated" && v["data"].get("presence").is_some() {
                    continue;
                }
                return v;
            }
            assert!(!matches!(msg, Message::Close(_)), "socket closed: {msg:?}");
        }
    }

    /// Nothing (but presence and heartbeats) arrives for `d`.
    pub async fn assert_silent(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(msg) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("frame is JSON");
                    let presence = v["type"] == "member.updated" && v["data"].get("presence").is_some();
                    assert!(presence && !self.presence, "expected silence, got {v}");
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Reads until the server closes; returns the close code (None: dropped without one).
    pub async fn closed(&mut self) -> Option<u16> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await.expect("timed out waiting for close") {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn send_json(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.expect("send");
    }

    /// Events of the given type, until `n` arrived.
    pub async fn take(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            out.push(self.next_json().await);
        }
        out
    }
}

/// The websocket URL of `app`, with an optional query.
fn live_url(app: &TestApp, query: &str) -> String {
    format!("ws://{}/api/v1/live{query}", app.addr)
}

/// Connects with a bearer token, optionally resuming after `after`.
pub async fn live(app: &TestApp, token: &str, after: Option<&str>) -> Live {
    let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
    let mut req = live_url(app, &query).into_client_request().expect("request");
    req.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).expect("header"));
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("websocket connects");
    Live { ws, presence: false }
}

/// Tries to connect with the given headers; returns the HTTP status and body of a refusal.
async fn refused(app: &TestApp, query: &str, headers: &[(&'static str, String)]) -> (u16, Value) {
    let mut req = live_url(app, query).into_client_request().expect("request");
    for (k, v) in headers {
        req.headers_mut().insert(*k, HeaderValue::from_str(v).expect("header"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_deref().map(|b| serde_json::from_slice(b).unwrap_or(Value::Null));
            (resp.status().as_u16(), body.unwrap_or(Value::Null))
        }
        Ok(_) => panic!("upgrade should have been refused"),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// Appends `e` in its own transaction and wakes the live readers, as a change would.
pub(crate) async fn emit(app: &TestApp, e: NewEvent) -> i64 {
    let st = &app.running.as_ref().expect("running").state;
    let mut work = Work::begin(&st.db, app.clock.now()).await.expect("begin");
    work.emit(e);
    work.commit(&st.hub).await.expect("commit");
    events::log::bounds(&st.db).await.expect("bounds").expect("an event").1
}

fn message_event(app: &TestApp, conversation: Uuid, text: &str) -> NewEvent {
    NewEvent::raw(app.workspace_id, "message.created", json!({"conversation_id": conversation, "text": text}))
        .conversation(conversation)
}

/// A number, a lead and a conversation with the given assignee, inserted directly.
pub(crate) async fn conversation(app: &TestApp, phone: &str, assignee: Option<Uuid>) -> (Uuid, Uuid) {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let number = app.connect_number(&format!("1{digits}"), phone, false).await;
    let number_id = Uuid::parse_str(number["id"].as_str().unwrap()).unwrap();
    let lead = app.create_lead("Lead", phone).await;
    let lead_id = Uuid::parse_str(lead["id"].as_str().unwrap()).unwrap();
    let id = Uuid::new_v4();
    let now = app.clock.now();
    switchboard::on_db!(&app.db, |p| sqlx::query(
        "INSERT INTO conversations (id, workspace_id, number_id, lead_id, contact_phone, status, assignee_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $7)"
    )
    .bind(id)
    .bind(app.workspace_id)
    .bind(number_id)
    .bind(lead_id)
    .bind(phone)
    .bind(assignee)
    .bind(now)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))
    .expect("insert conversation");
    (id, lead_id)
}

async fn exec(app: &TestApp, sql: &str, a: Uuid, b: Option<Uuid>) {
    switchboard::on_db!(&app.db, |p| sqlx::query(sql).bind(a).bind(b).execute(p).await.map(|r| r.rows_affected()))
        .expect(sql);
}

fn state(app: &TestApp) -> &switchboard::app::AppState {
    &app.running.as_ref().expect("running").state
}

on_both! {
    async fn a_first_message_announces_its_new_chat(t: TestDb) {
        // A lead assigned to an agent writes for the first time: the agent hears the new chat
        // (`conversation.created`, the lead's assignee inherited) before its first message.
        let app = spawn_app(&t).await;
        let (agent, agent_tok) = app.member("nia.agent@example.com", json!({})).await;
        let number = app.connect_number("100200300400600", "15550100100", false).await;
        let lead = app.create_lead("Nia", "+15550109999").await;
        let lead_id = lead["id"].as_str().unwrap();
        let (status, body) = app
            .json(Method::PATCH, &format!("/api/v1/leads/{lead_id}"), &app.admin_token, Some(json!({"assignee_id": agent})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut s = live(&app, &agent_tok, None).await;
        let payload = crate::webhooks::text_payload("wamid.first-contact", "15550109999", 1_750_000_000, "hello");
        assert_eq!(app.signed_webhook(&payload).await, StatusCode::OK);

        let mut frames = Vec::new();
        while !frames.iter().any(|f: &Value| f["type"] == "message.created") {
            frames.push(s.next_json().await);
        }
        let created = frames.iter().position(|f| f["type"] == "conversation.created").expect("conversation.created");
        let chat = &frames[created]["data"];
        assert_eq!(chat["lead_id"], lead["id"]);
        assert_eq!(chat["lead_name"], "Nia");
        assert_eq!(chat["number_id"], number["id"]);
        assert_eq!(chat["assignee_id"], json!(agent));
        assert_eq!((chat["status"].as_str(), chat["label_ids"].clone()), (Some("open"), json!([])));
        assert_eq!(chat["contact_phone"], "15550109999");
        let message = frames.last().unwrap();
        assert_eq!(message["data"]["conversation_id"], chat["id"]);
        assert_eq!(message["data"]["text"], "hello");
        // The chat as the API shows it now is the one announced.
        let (status, now) = app.get(&format!("/api/v1/conversations/{}", chat["id"].as_str().unwrap()), &agent_tok).await;
        assert_eq!(status, StatusCode::OK, "{now}");
        for key in ["id", "lead_id", "number_id", "assignee_id", "status", "label_ids", "created_at"] {
            assert_eq!(now[key], chat[key], "{key}");
        }
    }

    async fn delivery_follows_access_at_delivery_time(t: TestDb) {
        let app = spawn_app(&t).await;
        let (agent, agent_tok) = app.member("agent@example.com", json!({})).await;
        let (other, other_tok) = app.member("other@example.com", json!({})).await;
        let (conv, lead) = conversation(&app, "+15550100001", Some(agent)).await;
        let mut admin = live(&app, &app.admin_token, None).await;
        let mut a = live(&app, &agent_tok, None).await;
        let mut o = live(&app, &other_tok, None).await;

        emit(&app, message_event(&app, conv, "hello")).await;
        for s in [&mut a, &mut admin] {
            let e = s.next_json().await;
            assert_eq!(e["type"], "message.created");
            assert_eq!(e["data"]["text"], "hello");
            assert!(e["cursor"].is_string(), "cursor is a string: {e}");
        }

        // A real route: the lead's update reaches who sees the lead (via its conversation).
        let (status, body) = app.json(Method::PATCH, &format!("/api/v1/leads/{lead}"), &app.admin_token,
            Some(json!({"name": "Renamed"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(a.next_json().await["type"], "lead.updated");
        assert_eq!(admin.next_json().await["type"], "lead.updated");

        // A workspace-wide event reaches everyone, even `other`.
        emit(&app, NewEvent::raw(app.workspace_id, "member.updated", json!({"id": Uuid::new_v4(), "name": "X"}))).await;
        assert_eq!(o.next_json().await["type"], "member.updated");
        assert_eq!(a.next_json().await["type"], "member.updated");
        assert_eq!(admin.next_json().await["type"], "member.updated");

        // Reassigned to `other`: access moves at once.
        exec(&app, "UPDATE conversations SET assignee_id = $2 WHERE id = $1", conv, Some(other)).await;
        emit(&app, NewEvent::raw(app.workspace_id, "conversation.assigned", json!({"assignee_id": other})).conversation(conv)).await;
        emit(&app, message_event(&app, conv, "second")).await;
        assert_eq!(o.next_json().await["type"], "conversation.assigned");
        assert_eq!(o.next_json().await["data"]["text"], "second");
        assert_eq!(admin.next_json().await["type"], "conversation.assigned");
        assert_eq!(admin.next_json().await["data"]["text"], "second");

        // An event addressed to one member goes to that member only.
        emit(&app, NewEvent::raw(app.workspace_id, "member.updated", json!({"note": "for agent"})).to_user(agent)).await;
        assert_eq!(a.next_json().await["data"]["note"], "for agent");

        // Silence: `other` never heard of the conversation before it was theirs; the agent lost it.
        emit(&app, NewEvent::raw(app.workspace_id, "marker", json!({}))).await;
        assert_eq!(a.next_json().await["type"], "marker", "agent got nothing about the reassigned chat");
        let frames = [o.next_json().await];
        assert_eq!(frames[0]["type"], "marker", "other got nothing before it was theirs: {frames:?}");
        assert_eq!(admin.next_json().await["type"], "marker", "admin did not get the addressed event");
        a.assert_silent(Duration::from_millis(200)).await;
    }

    async fn label_grants_are_re_read_when_the_member_changes(t: TestDb) {
        let app = spawn_app(&t).await;
        let (member, tok) = app.member("labelled@example.com", json!({})).await;
        let (conv, _) = conversation(&app, "+15550100002", None).await;
        let label = Uuid::new_v4();
        switchboard::on_db!(&app.db, |p| sqlx::query("INSERT INTO labels (id, workspace_id, name, created_at) VALUES ($1, $2, 'vip', $3)")
            .bind(label).bind(app.workspace_id).bind(app.clock.now()).execute(p).await.map(|r| r.rows_affected())).unwrap();
        exec(&app, "INSERT INTO conversation_labels (conversation_id, label_id) VALUES ($1, $2)", conv, Some(label)).await;
        let mut s = live(&app, &tok, None).await;
        emit(&app, message_event(&app, conv, "before")).await;
        emit(&app, NewEvent::raw(app.workspace_id, "marker", json!({}))).await;
        assert_eq!(s.next_json().await["type"], "marker", "no label grant: nothing about the chat");

        exec(&app, "INSERT INTO member_labels (user_id, label_id) VALUES ($1, $2)", member, Some(label)).await;
        emit(&app, NewEvent::raw(app.workspace_id, "member.updated", json!({"id": member, "label_ids": [label]}))).await;
        emit(&app, message_event(&app, conv, "after")).await;
        assert_eq!(s.next_json().await["type"], "member.updated");
        assert_eq!(s.next_json().await["data"]["text"], "after");
    }

    async fn resume_delivers_missed_events_once_in_order(t: TestDb) {
        let app = spawn_app(&t).await;
        let mut s = live(&app, &app.admin_token, None).await;
        emit(&app, NewEvent::raw(app.workspace_id, "n", json!({"n": 0}))).await;
        let first = s.next_json().await;
        let cursor = first["cursor"].as_str().unwrap().to_owned();
        drop(s);
        for n in 1..=5 {
            emit(&app, NewEvent::raw(app.workspace_id, "n", json!({"n": n}))).await;
        }
        let mut s = live(&app, &app.admin_token, Some(&cursor)).await;
        let got = s.take(5).await;
        let ns: Vec<i64> = got.iter().map(|e| e["data"]["n"].as_i64().unwrap()).collect();
        assert_eq!(ns, vec![1, 2, 3, 4, 5]);
        let cursors: Vec<i64> = got.iter().map(|e| e["cursor"].as_str().unwrap().parse().unwrap()).collect();
        assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors increase: {cursors:?}");
        emit(&app, NewEvent::raw(app.workspace_id, "n", json!({"n": 6}))).await;
        assert_eq!(s.next_json().await["data"]["n"], 6, "nothing repeated, then live again");
        s.assert_silent(Duration::from_millis(300)).await;

        // From further back than a node's in-memory tail: a second node started now pages the log.
        let node2 = spawn_node(&t).await;
        let mut s2 = live(&node2, &app.admin_token, Some(&cursor)).await;
        let ns: Vec<i64> = s2.take(6).await.iter().map(|e| e["data"]["n"].as_i64().unwrap()).collect();
        assert_eq!(ns, vec![1, 2, 3, 4, 5, 6]);
        emit(&node2, NewEvent::raw(app.workspace_id, "n", json!({"n": 7}))).await;
        assert_eq!(s2.next_json().await["data"]["n"], 7);
        s2.assert_silent(Duration::from_millis(300)).await;
    }

    async fn deactivation_closes_the_socket_within_a_second(t: TestDb) {
        let app = spawn_app(&t).await;
        let (member, tok) = app.member("leaving@example.com", json!({})).await;
        let mut s = live(&app, &tok, None).await;
        // The member's "available" announcement is written by the presence task a moment
        // later: the admin's socket starts after it, so that the first presence frame it gets
        // about the member can only be the one the deactivation causes.
        let announced = format!("%{member}%available%");
        eventually("the member announced available", || async {
            let n: i64 = switchboard::on_db!(&app.db, |p| sqlx::query_scalar(
                "SELECT COUNT(*) FROM events WHERE type = 'member.updated' AND data LIKE $1"
            )
            .bind(&announced)
            .fetch_one(p)
            .await)
            .unwrap();
            (n > 0).then_some(())
        })
        .await;
        let mut admin = live(&app, &app.admin_token, None).await;
        // What the deactivation route does: status, tokens, event, one transaction.
        let st = state(&app);
        let mut tx = st.db.begin().await.unwrap();
        switchboard::on_tx!(&mut tx, |c| sqlx::query("UPDATE users SET status = 'deactivated' WHERE id = $1")
            .bind(member).execute(c).await.map(|r| r.rows_affected())).unwrap();
        switchboard::auth::revoke_all(&mut tx, member).await.unwrap();
        let mut work = Work::on(tx, app.clock.now());
        work.emit(NewEvent::raw(app.workspace_id, "member.updated", json!({"id": member, "status": "deactivated"})));
        let committed = Instant::now();
        work.commit(&st.hub).await.unwrap();
        assert_eq!(s.closed().await, Some(4401));
        assert!(committed.elapsed() < Duration::from_secs(1), "closed after {:?}", committed.elapsed());
        // The admin sees the deactivation, then the member going offline.
        let e = admin.next_json().await;
        assert_eq!(e["data"]["status"], "deactivated", "{e}");
        admin.presence = true;
        let e = loop {
            let e = admin.next_json().await;
            if e["data"]["id"] == json!(member) {
                break e;
            }
        };
        assert_eq!(e["data"], json!({"id": member, "presence": "offline"}));
        // And the token no longer opens a socket.
        let (status, _) = refused(&app, "", &[("authorization", format!("Bearer {tok}"))]).await;
        assert_eq!(status, 401);
    }
}

/// A second server on the same database as `app` (PostgreSQL: hears the first by NOTIFY).
async fn spawn_node(t: &TestDb) -> TestApp {
    spawn_app(t).await // bootstrap is idempotent; a second server on the same database
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_and_refusals() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(emit(&app, NewEvent::raw(app.workspace_id, "n", json!({"n": n}))).await);
    }
    // Retention: everything but the newest event is pruned.
    let gone = events::log::prune(&app.db, app.clock.now() + chrono::Duration::days(1)).await.unwrap();
    assert_eq!(gone, 2);
    let mut s = live(&app, &app.admin_token, Some(&ids[0].to_string())).await;
    assert_eq!(s.next_json().await, json!({"type": "reset"}));
    emit(&app, NewEvent::raw(app.workspace_id, "n", json!({"n": 3}))).await;
    assert_eq!(s.next_json().await["data"]["n"], 3, "after a reset, live from the end");
    // The oldest retained cursor minus one still resumes; a cursor from the future resets.
    let mut s = live(&app, &app.admin_token, Some(&ids[1].to_string())).await;
    assert_eq!(s.next_json().await["data"]["n"], 2);
    let mut s = live(&app, &app.admin_token, Some("999999")).await;
    assert_eq!(s.next_json().await, json!({"type": "reset"}));

    let bearer = ("authorization", format!("Bearer {}", app.admin_token));
    let (status, body) = refused(&app, "", &[]).await;
    assert_eq!(status, 401);
    assert_eq!(error_code(&body), "unauthorized");
    let (status, _) = refused(&app, "?token=abc", &[]).await;
    assert_eq!(status, 401, "never a token in the URL");
    let (status, body) = refused(&app, "?after=abc", std::slice::from_ref(&bearer)).await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "invalid_cursor");
    let cookie = ("cookie", format!("sb_session={}", app.admin_token));
    let (status, body) = refused(&app, "", &[cookie.clone(), ("origin", "http://evil.example".into())]).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = refused(&app, "", std::slice::from_ref(&cookie)).await;
    assert_eq!(status, 403, "a cookie without Origin");
    // Same origin with the cookie works.
    let mut req = live_url(&app, "").into_client_request().unwrap();
    req.headers_mut().insert("cookie", HeaderValue::from_str(&cookie.1).unwrap());
    req.headers_mut().insert("origin", HeaderValue::from_str(&format!("http://{}", app.addr)).unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("same-origin cookie upgrade");
    drop(ws);
    // A plain GET (no upgrade) with credentials: a contract error, not a panic.
    let resp = app.call(Method::GET, "/api/v1/live", Some(&app.admin_token), None).await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong_presence_and_oversized_frames() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let (member, tok) = app.member("present@example.com", json!({})).await;
    let mut admin = live(&app, &app.admin_token, None).await;
    admin.presence = true;
    let presence = &state(&app).presence;
    assert_eq!(admin.next_json().await["data"]["presence"], "available", "the admin's own presence");

    let mut s = live(&app, &tok, None).await;
    assert_eq!(admin.next_json().await["data"], json!({"id": member, "presence": "available"}));
    assert_eq!(presence.availability(member), Availability::Available);
    s.send_json(json!({"type": "ping"})).await;
    assert_eq!(s.next_json().await, json!({"type": "pong"}));
    s.send_json(json!({"type": "presence", "status": "away"})).await;
    assert_eq!(admin.next_json().await["data"], json!({"id": member, "presence": "away"}));
    assert_eq!(presence.availability(member), Availability::Away);

    // A second socket does not change presence; closing one of two keeps the member online.
    let mut s2 = live(&app, &tok, None).await;
    s2.send_json(json!({"type": "ping"})).await;
    assert_eq!(s2.next_json().await, json!({"type": "pong"}));
    s2.ws.close(None).await.unwrap();
    drop(s2);
    s.send_json(json!({"type": "presence", "status": "available"})).await;
    assert_eq!(admin.next_json().await["data"], json!({"id": member, "presence": "available"}));

    // A frame over 64 KiB closes with 1009; the last socket gone, the member is offline.
    s.ws.send(Message::text("x".repeat(65 * 1024))).await.unwrap();
    assert_eq!(s.closed().await, Some(1009));
    assert_eq!(admin.next_json().await["data"], json!({"id": member, "presence": "offline"}));
    assert_eq!(presence.availability(member), Availability::Offline);
    // 64 KiB exactly is fine.
    let mut s = live(&app, &tok, None).await;
    let pad = 64 * 1024 - json!({"type": "ping", "pad": ""}).to_string().len();
    let msg = json!({"type": "ping", "pad": "y".repeat(pad)}).to_string();
    assert_eq!(msg.len(), 64 * 1024);
    s.ws.send(Message::text(msg)).await.unwrap();
    assert_eq!(s.next_json().await, json!({"type": "pong"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_dropped_while_others_keep_receiving() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let (slow_id, slow_tok) = app.member("slow@example.com", json!({})).await;
    let slow = live(&app, &slow_tok, None).await; // never read from
    let mut fast = live(&app, &app.admin_token, None).await;
    const N: usize = 640;
    let blob = "z".repeat(32 * 1024);
    let started = Instant::now();
    let producer = {
        let st = state(&app).clone();
        let ws = app.workspace_id;
        let now = app.clock.now();
        tokio::spawn(async move {
            for chunk in 0..N / 64 {
                let mut work = Work::begin(&st.db, now).await.unwrap();
                for n in chunk * 64..(chunk + 1) * 64 {
                    work.emit(NewEvent::raw(ws, "big", json!({"n": n, "blob": blob})));
                }
                work.commit(&st.hub).await.unwrap();
            }
        })
    };
    for n in 0..N {
        let e = fast.next_json().await;
        assert_eq!(e["data"]["n"], n, "the fast client gets every event in order");
    }
    producer.await.unwrap();
    let fast_done = started.elapsed();
    // The server gives up on the slow client (send limit 5 s) instead of buffering.
    let deadline = Instant::now() + Duration::from_secs(20);
    while state(&app).presence.availability(slow_id) != Availability::Offline {
        assert!(Instant::now() < deadline, "slow client still connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fast_done < Duration::from_secs(5), "the fast client was not held up: {fast_done:?}");
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgres_both_deliver() {
    let t = TestDb::postgres().await;
    let node1 = spawn_app(&t).await;
    let node2 = spawn_node(&t).await;
    let (agent, agent_tok) = node1.member("agent2@example.com", json!({})).await;
    let (conv, lead) = conversation(&node1, "+15550100003", Some(agent)).await;
    let mut on2 = live(&node2, &agent_tok, None).await;
    let mut admin_on2 = live(&node2, &node1.admin_token, None).await;
    for round in 0..3 {
        let sent = Instant::now();
        let (status, body) = node1
            .json(
                Method::PATCH,
                &format!("/api/v1/leads/{lead}"),
                &node1.admin_token,
                Some(json!({"name": format!("R{round}")})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let e = on2.next_json().await;
        assert_eq!(
            (e["type"].as_str(), e["data"]["name"].as_str()),
            (Some("lead.updated"), Some(format!("R{round}").as_str()))
        );
        // LISTEN/NOTIFY, not the 1 s safety poll.
        assert!(sent.elapsed() < Duration::from_millis(900), "round {round}: {:?}", sent.elapsed());
        assert_eq!(admin_on2.next_json().await["data"]["name"], format!("R{round}"));
    }
    emit(&node1, message_event(&node1, conv, "via node 1")).await;
    assert_eq!(on2.next_json().await["data"]["text"], "via node 1");

    // A signed webhook posted to node 1 reaches the assignee's socket on node 2.
    node1.connect_number("100200300400600", "15550100100", false).await;
    let lead = node1.create_lead("Webhook lead", "+15550100044").await;
    let path = format!("/api/v1/leads/{}", lead["id"].as_str().unwrap());
    let (status, body) =
        node1.json(Method::PATCH, &path, &node1.admin_token, Some(json!({"assignee_id": agent}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let payload = crate::webhooks::text_payload("wamid.two-nodes", "15550100044", 1_750_000_000, "via a webhook");
    assert_eq!(node1.signed_webhook(&payload).await, StatusCode::OK);
    loop {
        let e = on2.next_json().await;
        if e["type"] == "message.created" {
            assert_eq!(e["data"]["text"], "via a webhook");
            break;
        }
    }
}
