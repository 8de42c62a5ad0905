//! Replies through a fake Graph API: exact requests, retries, permanent errors, the window,
//! idempotency, restarts, two senders on one database, read receipts and media.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::routing::{get, post};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both;
use crate::support::*;
use crate::webhooks::text_payload;

#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub auth: String,
    pub body: Value,
}

/// A local stand-in for Meta's Graph API: records requests, answers from a script.
#[derive(Clone, Default)]
pub struct FakeGraph {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub script: Arc<Mutex<VecDeque<(u16, Value)>>>,
    pub url: String,
    /// When set, each send's wamid is handed here and its answer waits for the go-ahead.
    pub hold: Arc<Mutex<Option<Held>>>,
    /// What `GET /{waba_id}/message_templates` lists, two per page.
    pub templates: Arc<Mutex<Vec<Value>>>,
    /// What `GET /{phone_number_id}?fields=…` answers per phone number id (unknown: only the id).
    pub phone_numbers: Arc<Mutex<std::collections::HashMap<String, Value>>>,
    /// The phone number ids those reads named, in order.
    pub phone_reads: Arc<Mutex<Vec<String>>>,
}

/// A send held by the fake Graph API: its wamid, and the go-ahead to answer with it.
pub type Held = tokio::sync::mpsc::UnboundedSender<(String, tokio::sync::oneshot::Sender<()>)>;

async fn graph_post(
    State(g): State<FakeGraph>,
    Path((_v, _id)): Path<(String, String)>,
    headers: HeaderMap,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    body: axum::Json<Value>,
) -> (AxStatus, axum::Json<Value>) {
    let n = {
        let mut seen = g.seen.lock().unwrap();
        seen.push(Seen {
            path: uri.path().to_owned(),
            auth: headers.get("authorization").and_then(|h| h.to_str().ok()).unwrap_or("").to_owned(),
            body: body.0.clone(),
        });
        seen.len()
    };
    // Scripted answers are for message sends: a read receipt or typing indicator (a body with
    // `status`) never takes one meant for the next message.
    let scripted = if body.0.get("status").is_none() { g.script.lock().unwrap().pop_front() } else { None };
    let hold = g.hold.lock().unwrap().clone();
    if let (None, None, Some(hold)) = (&scripted, body.0.get("status"), hold) {
        let (go, wait) = tokio::sync::oneshot::channel();
        if hold.send((format!("wamid.fake.{n}"), go)).is_ok() {
            let _ = wait.await;
        }
    }
    match scripted {
        Some((status, answer)) => (AxStatus::from_u16(status).unwrap(), axum::Json(answer)),
        None if body.0.get("status").is_some() => (AxStatus::OK, axum::Json(json!({"success": true}))),
        None => (
            AxStatus::OK,
            axum::Json(json!({"messaging_product": "whatsapp",
            "contacts": [{"input": body.0["to"], "wa_id": body.0["to"]}], "messages": [{"id": format!("wamid.fake.{n}")}]})),
        ),
    }
}

/// `GET /{v}/{id}`: a phone number's fields when `fields` are asked for, else a media id's URL.
async fn graph_media(
    State(g): State<FakeGraph>,
    Path((_v, id)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::Json<Value> {
    if q.contains_key("fields") {
        g.phone_reads.lock().unwrap().push(id.clone());
        let known = g.phone_numbers.lock().unwrap().get(&id).cloned();
        return axum::Json(known.unwrap_or_else(|| json!({"id": id})));
    }
    axum::Json(json!({"url": format!("{}/download/{id}", g.url), "mime_type": "image/jpeg", "id": id}))
}

async fn graph_upload(State(g): State<FakeGraph>, headers: HeaderMap, body: axum::body::Bytes) -> axum::Json<Value> {
    let text = String::from_utf8_lossy(&body).into_owned();
    g.seen.lock().unwrap().push(Seen {
        path: "upload".to_owned(),
        auth: headers.get("authorization").and_then(|h| h.to_str().ok()).unwrap_or("").to_owned(),
        body: json!({"multipart": text}),
    });
    axum::Json(json!({"id": "media-up-1"}))
}

/// `GET /{v}/{waba_id}/message_templates`: two templates a page, the next page by `after`.
async fn graph_templates(
    State(g): State<FakeGraph>,
    Path((v, waba)): Path<(String, String)>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::Json<Value> {
    g.seen.lock().unwrap().push(Seen {
        path: format!("/{v}/{waba}/message_templates"),
        auth: headers.get("authorization").and_then(|h| h.to_str().ok()).unwrap_or("").to_owned(),
        body: json!(q),
    });
    let all = g.templates.lock().unwrap().clone();
    let from: usize = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = all.iter().skip(from).take(2).cloned().collect();
    let mut answer = json!({"data": page, "paging": {"cursors": {"before": "b", "after": "a"}}});
    if from + 2 < all.len() {
        answer["paging"]["next"] = json!(format!("{}/{v}/{waba}/message_templates?after={}", g.url, from + 2));
    }
    axum::Json(answer)
}

async fn download(headers: HeaderMap) -> (AxStatus, Vec<u8>) {
    if headers.get("authorization").and_then(|h| h.to_str().ok()) == Some("Bearer EAAG-test-token") {
        (AxStatus::OK, b"\xff\xd8fake-jpeg".to_vec())
    } else {
        (AxStatus::UNAUTHORIZED, Vec::new())
    }
}

impl FakeGraph {
    pub async fn start() -> FakeGraph {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let g = FakeGraph { url: format!("http://{}", listener.local_addr().unwrap()), ..Default::default() };
        let app = axum::Router::new()
            .route("/{v}/{id}/messages", post(graph_post))
            .route("/{v}/{id}/media", post(graph_upload))
            .route("/{v}/{id}/message_templates", get(graph_templates))
            .route("/{v}/{id}", get(graph_media))
            .route("/download/{id}", get(download))
            .with_state(g.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        g
    }
    pub fn then(&self, status: u16, answer: Value) -> &Self {
        self.script.lock().unwrap().push_back((status, answer));
        self
    }
    /// From now on, each send waits before answering: the receiver gets its wamid and a go-ahead.
    pub fn hold_sends(&self) -> tokio::sync::mpsc::UnboundedReceiver<(String, tokio::sync::oneshot::Sender<()>)> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self.hold.lock().unwrap() = Some(tx);
        rx
    }
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn graph_error(code: i64, title: &str) -> Value {
    json!({"error": {"message": format!("(#{code}) {title}"), "type": "OAuthException", "code": code, "fbtrace_id": "Atrace"}})
}

/// An app whose Graph API is `graph`, with number A connected, a lead for Priya, her fresh
/// inbound message (the window is open) and her conversation assigned to the admin.
pub(crate) async fn inbox_with_open_chat(t: &TestDb, graph: &FakeGraph) -> (TestApp, String, Value) {
    let mut config = test_config(&t.url);
    config.graph_url = graph.url.clone();
    let app = spawn_app_with(t, config).await;
    app.connect_number("100200300400600", "15550100100", false).await;
    app.create_lead("Priya", "+15550100111").await;
    let now = app.clock.now().timestamp();
    app.signed_webhook(&text_payload("wamid.in.1", "15550100111", now - 60, "Can you help?")).await;
    app.webhooks_processed().await;
    let (_, convs) = app.get("/api/v1/conversations", &app.admin_token).await;
    let conv = convs["conversations"][0]["id"].as_str().unwrap().to_owned();
    let me = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].clone();
    let (status, body) =
        app.post(&format!("/api/v1/conversations/{conv}/assign"), &app.admin_token, json!({"assignee_id": me})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
    (app, conv, page["messages"][0].clone())
}

async fn message_status(app: &TestApp, conv: &str, id: &str) -> Value {
    let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
    page["messages"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned().unwrap_or(Value::Null)
}

async fn wait_status(app: &TestApp, conv: &str, id: &str, status: &str) -> Value {
    eventually(&format!("message {id} {status}"), || async {
        let m = message_status(app, conv, id).await;
        (m["status"] == status).then_some(m)
    })
    .await
}

on_both! {
    async fn a_reply_goes_out_exactly_as_meta_expects(t: TestDb) {
        let graph = FakeGraph::start().await;
        let (app, conv, inbound) = inbox_with_open_chat(&t, &graph).await;
        let (status, msg) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token,
            json!({"type": "text", "text": "Yes — tomorrow at 10?", "reply_to": inbound["id"]})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{msg}");
        assert_eq!(msg["status"], "queued");
        assert_eq!(msg["direction"], "out");
        assert_eq!(msg["sent_by"]["email"], ADMIN_EMAIL);
        let id = msg["id"].as_str().unwrap();
        let sent = wait_status(&app, &conv, id, "sent").await;
        let reqs = graph.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].path, "/v23.0/100200300400600/messages");
        assert_eq!(reqs[0].auth, "Bearer EAAG-test-token");
        assert_eq!(reqs[0].body, json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550100111",
            "type": "text", "text": {"body": "Yes — tomorrow at 10?", "preview_url": false},
            "context": {"message_id": "wamid.in.1"}, "biz_opaque_callback_data": id}));
        assert_eq!(sent["wamid"], "wamid.fake.1");
        let lead = app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token).await.1["lead_id"].as_str().unwrap().to_owned();
        let (_, sent_log) = app.get(&format!("/api/v1/leads/{lead}/timeline?type=message_sent"), &app.admin_token).await;
        assert_eq!(sent_log["activities"][0]["data"]["message_id"], json!(id), "the reply is on the lead's timeline");

        // Meta's status webhooks move it along.
        let delivered = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550100100", "phone_number_id": "100200300400600"},
            "statuses": [{"id": "wamid.fake.1", "status": "delivered", "timestamp": app.clock.now().timestamp().to_string(), "recipient_id": "15550100111"}]}}]}]});
        app.signed_webhook(&serde_json::to_vec(&delivered).unwrap()).await;
        wait_status(&app, &conv, id, "delivered").await;

        // Templates go with their components; unknown types are refused.
        let (status, _) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token,
            json!({"type": "template", "template": {"name": "visit_reminder", "language": "en_US",
                   "components": [{"type": "body", "parameters": [{"type": "text", "text": "Priya"}]}]}})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        eventually("template sent", || async { (graph.requests().len() == 2).then_some(()) }).await;
        assert_eq!(graph.requests()[1].body["template"], json!({"name": "visit_reminder", "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Priya"}]}]}));
        let (status, _) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token, json!({"type": "carrier_pigeon"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token, json!({"type": "text", "text": ""})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    async fn replies_and_inbound_messages_touch_the_conversation_alike(t: TestDb) {
        let graph = FakeGraph::start().await;
        let (app, conv, _) = inbox_with_open_chat(&t, &graph).await;
        let now = app.clock.now().timestamp();
        // Meta's clock runs ahead of ours: this message says it is from two minutes on.
        app.signed_webhook(&text_payload("wamid.in.2", "15550100111", now + 120, "Still there?")).await;
        app.webhooks_processed().await;
        let (_, before) = app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token).await;
        assert_eq!(before["last_message"]["text"], "Still there?");
        let (status, reply) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token,
            json!({"type": "text", "text": "Yes!"})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        let (_, after) = app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token).await;
        assert_eq!(after["last_message"], json!({"id": reply["id"], "direction": "out", "type": "text", "text": "Yes!",
            "status": "queued", "created_at": reply["created_at"], "sent_by": reply["sent_by"]}), "a reply sent now is the newest message");
        assert_eq!(after["unread_count"], before["unread_count"], "a reply leaves the unread count alone");
        // An older customer message arriving late counts as unread but is not the newest.
        app.signed_webhook(&text_payload("wamid.in.0", "15550100111", now - 30, "Hello?")).await;
        app.webhooks_processed().await;
        let (_, late) = app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token).await;
        assert_eq!(late["last_message"]["id"], reply["id"]);
        assert_eq!(late["unread_count"], json!(before["unread_count"].as_i64().unwrap() + 1));
    }

    async fn a_status_that_races_its_send_is_applied(t: TestDb) {
        // Meta can deliver a status webhook before the send's answer has been recorded; the two
        // are processed at the same moment. Each status must end up on its message.
        let graph = FakeGraph::start().await;
        let (app, conv, _) = inbox_with_open_chat(&t, &graph).await;
        let mut held = graph.hold_sends();
        for i in 0..20 {
            let (status, _) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token,
                json!({"type": "text", "text": format!("reply {i}")})).await;
            assert_eq!(status, StatusCode::ACCEPTED);
        }
        for _ in 0..20 {
            let (wamid, go) = held.recv().await.expect("a held send");
            let delivered = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550100100", "phone_number_id": "100200300400600"},
                "statuses": [{"id": wamid, "status": "delivered", "timestamp": app.clock.now().timestamp().to_string(), "recipient_id": "15550100111"}]}}]}]});
            assert_eq!(app.signed_webhook(&serde_json::to_vec(&delivered).unwrap()).await, StatusCode::OK);
            go.send(()).unwrap();
        }
        eventually("every reply delivered", || async {
            (app.count("SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status = 'delivered'").await == 20)
                .then_some(())
        }).await;
    }

    async fn rate_limits_are_retried_and_permanent_errors_fail(t: TestDb) {
        let graph = FakeGraph::start().await;
        let (app, conv, _) = inbox_with_open_chat(&t, &graph).await;
        graph.then(400, graph_error(130429, "Rate limit hit"));
        let (_, msg) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token, json!({"type": "text", "text": "one"})).await;
        wait_status(&app, &conv, msg["id"].as_str().unwrap(), "sent").await;
        assert_eq!(graph.requests().len(), 2, "retried once after the rate limit");

        graph.then(400, graph_error(131047, "Re-engagement message"));
        let (_, msg) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token, json!({"type": "text", "text": "two"})).await;
        let failed = wait_status(&app, &conv, msg["id"].as_str().unwrap(), "failed").await;
        assert_eq!(failed["error"]["code"], 131047);
        let (_, c) = app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token).await;
        assert_eq!(c["template_required"], true);
        let (status, body) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token, json!({"type": "text", "text": "three"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "free-form refused after 131047");
        assert_eq!(error_code(&body), "window_closed");

        graph.then(401, graph_error(190, "Error validating access token"));
        let (_, msg) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token,
            json!({"type": "template", "template": {"name": "hello", "language": "en_US"}})).await;
        wait_status(&app, &conv, msg["id"].as_str().unwrap(), "failed").await;
        let (_, numbers) = app.get("/api/v1/numbers", &app.admin_token).await;
        assert_eq!(numbers["numbers"][0]["needs_reauth"], true);
    }

    async fn the_window_and_the_assignee_gate_sending(t: TestDb) {
        let graph = FakeGraph::start().await;
        let mut config = test_config(&t.url);
        config.graph_url = graph.url.clone();
        let app = spawn_app_with(&t, config).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        let (agent, agent_tok) = app.member("agent@example.com", json!({})).await;
        let (status, _) = app.post("/api/v1/leads", &app.admin_token, json!({"name": "P", "phone": "+15550100111", "assignee_id": agent})).await;
        assert_eq!(status, StatusCode::CREATED);
        // An old message (WhatsApp's own time is what counts): the window closed long ago.
        app.signed_webhook(&crate::webhooks::fixture("text.json")).await;
        app.webhooks_processed().await;
        let (_, convs) = app.get("/api/v1/conversations", &agent_tok).await;
        let conv = convs["conversations"][0]["id"].as_str().unwrap().to_owned();
        let (status, body) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &agent_tok, json!({"type": "text", "text": "hi"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_code(&body), "window_closed");
        let (status, body) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token, json!({"type": "template", "template": {"name": "hello", "language": "en_US"}})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "admins reply only to their own chats: {body}");
        assert_eq!(error_code(&body), "not_assignee");
        assert!(graph.requests().is_empty(), "nothing sent");
        let (status, _) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &agent_tok, json!({"type": "template", "template": {"name": "hello", "language": "en_US"}})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "templates go outside the window");
    }

    async fn an_idempotency_key_gives_one_message(t: TestDb) {
        let graph = FakeGraph::start().await;
        let (app, conv, _) = inbox_with_open_chat(&t, &graph).await;
        let send = || app.client.post(app.url(&format!("/api/v1/conversations/{conv}/messages"))).bearer_auth(&app.admin_token)
            .header("idempotency-key", "k-123").json(&json!({"type": "text", "text": "once"})).send();
        let (a, b) = tokio::join!(send(), send());
        let (a, b): (Value, Value) = (a.unwrap().json().await.unwrap(), b.unwrap().json().await.unwrap());
        assert_eq!(a["id"], b["id"], "{a} {b}");
        let c: Value = send().await.unwrap().json().await.unwrap();
        assert_eq!(a["id"], c["id"]);
        wait_status(&app, &conv, a["id"].as_str().unwrap(), "sent").await;
        assert_eq!(graph.requests().len(), 1);
        assert_eq!(app.count("SELECT COUNT(*) FROM messages WHERE direction = 'out'").await, 1);
    }

    async fn queued_replies_survive_a_restart(t: TestDb) {
        // The Graph API is down: the reply stays queued for a retry.
        let (mut app, conv, _) = inbox_with_open_chat(&t, &FakeGraph { url: "http://127.0.0.1:9".into(), ..Default::default() }).await;
        let (_, msg) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token, json!({"type": "text", "text": "later"})).await;
        eventually("a failed attempt", || async {
            (app.count("SELECT COUNT(*) FROM outbox WHERE last_error IS NOT NULL").await == 1).then_some(())
        }).await;
        app.stop().await;
        let graph = FakeGraph::start().await;
        let mut config = test_config(&t.url);
        config.graph_url = graph.url.clone();
        let again = spawn_app_with(&t, config).await;
        wait_status(&again, &conv, msg["id"].as_str().unwrap(), "sent").await;
        assert_eq!(graph.requests().len(), 1);
    }

    async fn read_receipts_and_media(t: TestDb) {
        let graph = FakeGraph::start().await;
        let (app, conv, _) = inbox_with_open_chat(&t, &graph).await;
        let image = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550100100", "phone_number_id": "100200300400600"},
            "messages": [{"from": "15550100111", "id": "wamid.in.img", "timestamp": app.clock.now().timestamp().to_string(), "type": "image",
                          "image": {"id": "media-77", "mime_type": "image/jpeg", "sha256": "abc", "caption": "the kitchen"}}]}}]}]});
        app.signed_webhook(&serde_json::to_vec(&image).unwrap()).await;
        app.webhooks_processed().await;
        let (_, c) = app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token).await;
        assert_eq!(c["unread_count"], 2);
        let (status, c) = app.post(&format!("/api/v1/conversations/{conv}/read"), &app.admin_token, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(c["unread_count"], 0);
        eventually("read receipt sent", || async { (!graph.requests().is_empty()).then_some(()) }).await;
        assert_eq!(graph.requests()[0].body, json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.in.img"}));

        let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
        let img = page["messages"].as_array().unwrap().iter().find(|m| m["type"] == "image").unwrap().clone();
        let resp = app.call(Method::GET, &format!("/api/v1/media/{}", img["id"].as_str().unwrap()), Some(&app.admin_token), None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), b"\xff\xd8fake-jpeg");
        // Uploads go to the Graph API through the chat's number; the id is then sent like a link.
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(b"%PDF-1.4 quote".to_vec()).file_name("quote.pdf").mime_str("application/pdf").unwrap());
        let up = app.client.post(app.url(&format!("/api/v1/conversations/{conv}/media"))).bearer_auth(&app.admin_token)
            .multipart(form).send().await.unwrap();
        assert_eq!(up.status(), StatusCode::CREATED);
        let up: Value = up.json().await.unwrap();
        assert_eq!(up["id"], "media-up-1");
        let upload = graph.requests().into_iter().find(|r| r.path == "upload").unwrap();
        assert_eq!(upload.auth, "Bearer EAAG-test-token");
        assert!(upload.body["multipart"].as_str().unwrap().contains("%PDF-1.4 quote"));
        let (status, doc) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token,
            json!({"type": "document", "media": {"id": "media-up-1", "filename": "quote.pdf", "caption": "Your quote"}})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
        eventually("document sent", || async {
            graph.requests().into_iter().find(|r| r.body["type"] == "document")
        }).await;
        let sent = graph.requests().into_iter().find(|r| r.body["type"] == "document").unwrap();
        assert_eq!(sent.body["document"], json!({"id": "media-up-1", "filename": "quote.pdf", "caption": "Your quote"}));
        let (_, outsider) = app.member("outsider@example.com", json!({})).await;
        let resp = app.call(Method::GET, &format!("/api/v1/media/{}", img["id"].as_str().unwrap()), Some(&outsider), None).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "media only for who can see the chat");
    }
}

/// Two server nodes on one PostgreSQL database never send the same outbox row twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_never_send_a_row_twice() {
    let t = TestDb::postgres().await;
    let graph = FakeGraph::start().await;
    let (app, conv, _) = inbox_with_open_chat(&t, &graph).await;
    let mut config = test_config(&t.url);
    config.graph_url = graph.url.clone();
    let second = switchboard::app::start_with(config, t.db.clone(), app.clock.clone()).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        let (status, msg) = app
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                &app.admin_token,
                json!({"type": "text", "text": format!("m{i}")}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        ids.push(msg["id"].as_str().unwrap().to_owned());
        second.state.outbox_wake.notify_one();
    }
    eventually("all sent", || async {
        (app.count("SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status = 'sent'").await == 40)
            .then_some(())
    })
    .await;
    let mut sent: Vec<String> =
        graph.requests().iter().map(|r| r.body["biz_opaque_callback_data"].as_str().unwrap().to_owned()).collect();
    assert_eq!(sent.len(), 40, "one request per message");
    sent.sort();
    sent.dedup();
    assert_eq!(sent.len(), 40, "no message sent twice");
    second.shutdown().await.unwrap();
}
