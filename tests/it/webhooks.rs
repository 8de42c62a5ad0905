//! Meta's webhook: signatures on raw bytes, durable journal, every item processed, idempotent.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::on_db;
use switchboard::webhook::journal::pack;
use switchboard::webhook::signature::sign;
use uuid::Uuid;

use crate::on_both;
use crate::support::*;

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/webhooks/examples/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture exists")
}

impl TestApp {
    pub async fn signed_webhook(&self, body: &[u8]) -> StatusCode {
        self.client
            .post(self.url("/webhooks/whatsapp"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sign(APP_SECRET.as_bytes(), body))
            .body(body.to_vec())
            .send()
            .await
            .expect("webhook POST")
            .status()
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        on_db!(&self.db, |p| sqlx::query_scalar(sql).fetch_one(p).await).expect("count")
    }

    /// Waits until every journaled webhook has been unpacked and processed.
    pub async fn webhooks_processed(&self) {
        eventually("journal drained", || async {
            // One statement, one snapshot: an arrival unpacked between two statements would
            // be seen in neither.
            let waiting = "SELECT (SELECT COUNT(*) FROM webhook_events WHERE state = 'pending') \
                           + (SELECT COUNT(*) FROM webhook_arrivals)";
            (self.count(waiting).await == 0).then_some(())
        })
        .await
    }

    /// Webhooks in the journal: entries, and those still in an arrival the processor has not
    /// unpacked yet.
    pub async fn journaled(&self) -> i64 {
        self.count(
            "SELECT (SELECT COUNT(*) FROM webhook_events) + (SELECT COALESCE(SUM(webhooks), 0) FROM webhook_arrivals)",
        )
        .await
    }

    pub async fn message_by_wamid(&self, wamid: &str) -> Option<(String, String, Option<i64>)> {
        on_db!(&self.db, |p| sqlx::query_as("SELECT direction, status, error_code FROM messages WHERE wamid = $1")
            .bind(wamid)
            .fetch_optional(p)
            .await)
        .expect("query")
    }
}

/// A text message from `from` to number A, as Meta would send it.
pub fn text_payload(wamid: &str, from: &str, ts: i64, body: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "100200300400500", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100100", "phone_number_id": "100200300400600"},
        "contacts": [{"profile": {"name": "Test Contact"}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": ts.to_string(), "type": "text", "text": {"body": body}}]}}]}]}))
    .unwrap()
}

const O: [(&str, &str, &str); 10] = [
    ("o1", "15550100111", "wamid.HBgLMTU1NTAxMDAxMTEVAgARGBIzNjdCQ0RBMUJDNjQ1MUZGNEMA"),
    ("o2", "15550100111", "wamid.HBgLMTU1NTAxMDAxMTEVAgARGBJGRDM4MjlCNkU2MTlCRUZGQTEA"),
    ("o3", "15550100144", "wamid.HBgLMTU1NTAxMDAxNDQVAgARGBI1ODBFRjRBMTdCMjA0OUE0QzEA"),
    ("o4", "15550100155", "wamid.HBgLMTU1NTAxMDAxNTUVAgARGBI5ODIwNjMwREUzNDAyQ0NFMzcA"),
    ("o5", "15550100111", "wamid.HBgLMTU1NTAxMDAxMTEVAgARGBJGMDk4MTgwMzYzNzUwMzFFQzYA"),
    ("o6", "15550100155", "wamid.HBgLMTU1NTAxMDAxNTUVAgARGBIxNEUwOUJEMzY2NEY1RUVEODUA"),
    ("o7", "15550100111", "wamid.HBgLMTU1NTAxMDAxMTEVAgARGBIwQUJDNDA1MEJENDJENUIwOEYA"),
    ("o8", "15550100133", "wamid.HBgLMTU1NTAxMDAxMzMVAgARGBI0OTc5QkNCMTY3RUQ1Qjc1RTQA"),
    ("o9", "15550100144", "wamid.HBgLMTU1NTAxMDAxNDQVAgARGBIwODlFQUYyQ0VENkUxOTQwRTgA"),
    ("o10", "15550100199", "wamid.HBgLMTU1NTAxMDAxOTkVAgARGBI5RTlDNUY4MURFODZCRjVDMjMA"),
];

fn wamid(key: &str) -> &'static str {
    O.iter().find(|o| o.0 == key).map(|o| o.2).unwrap()
}

/// Inserts an outbound message we "sent earlier" in the conversation of (number, lead).
pub async fn seed_outbound(app: &TestApp, number: &str, lead: &str, wamid: &str) {
    let (number, lead) = (Uuid::parse_str(number).unwrap(), Uuid::parse_str(lead).unwrap());
    let now = app.clock.now();
    let conv: Uuid = match on_db!(&app.db, |p| sqlx::query_scalar(
        "SELECT id FROM conversations WHERE number_id = $1 AND lead_id = $2"
    )
    .bind(number)
    .bind(lead)
    .fetch_optional(p)
    .await)
    .unwrap()
    {
        Some(c) => c,
        None => {
            let id = Uuid::new_v4();
            on_db!(&app.db, |p| sqlx::query("INSERT INTO conversations (id, workspace_id, number_id, lead_id, status, created_at, updated_at) VALUES ($1, $2, $3, $4, 'open', $5, $5)")
                .bind(id).bind(app.workspace_id).bind(number).bind(lead).bind(now).execute(p).await.map(|_| ())).unwrap();
            id
        }
    };
    on_db!(&app.db, |p| sqlx::query("INSERT INTO messages (id, workspace_id, conversation_id, wamid, direction, type, text, status, created_at, received_at) \
        VALUES ($1, $2, $3, $4, 'out', 'text', 'earlier reply', 'queued', $5, $5)")
        .bind(Uuid::new_v4()).bind(app.workspace_id).bind(conv).bind(wamid).bind(now).execute(p).await.map(|_| ())).unwrap();
}

const ALL_FIXTURES: [&str; 28] = [
    "text.json",
    "text-reply-context.json",
    "image-caption.json",
    "audio-voice.json",
    "document.json",
    "sticker.json",
    "location.json",
    "contacts.json",
    "interactive-button-reply.json",
    "interactive-list-reply.json",
    "button-template-quick-reply.json",
    "reaction.json",
    "reaction-removed.json",
    "order.json",
    "system-user-changed-number.json",
    "unsupported.json",
    "referral-ctwa-ad.json",
    "batch-two-entries.json",
    "status-sent.json",
    "status-delivered.json",
    "status-read.json",
    "status-failed-131047.json",
    "status-out-of-order-1-read.json",
    "status-out-of-order-2-delivered.json",
    "smb-message-echo.json",
    "value-errors.json",
    "bsuid-only-text.json",
    "text.json",
];

on_both! {
    async fn verification_handshake(t: TestDb) {
        let app = spawn_app(&t).await;
        let ok = app.client.get(app.url(&format!("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"))).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert!(ok.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        assert_eq!(ok.text().await.unwrap(), "1158201444");
        let bad = app.client.get(app.url("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::FORBIDDEN);
        let none = app.client.get(app.url("/webhooks/whatsapp")).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::FORBIDDEN);
    }

    async fn bad_signatures_store_nothing(t: TestDb) {
        let app = spawn_app(&t).await;
        let body = fixture("image-caption.json");
        let post = |sig: Option<String>, bytes: Vec<u8>| {
            let mut req = app.client.post(app.url("/webhooks/whatsapp")).header("content-type", "application/json").body(bytes);
            if let Some(s) = sig { req = req.header("x-hub-signature-256", s); }
            req.send()
        };
        assert_eq!(post(None, body.clone()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(post(Some(sign(b"wrong-secret", &body)), body.clone()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        let reserialised = serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
        let resp = post(Some(sign(APP_SECRET.as_bytes(), &body)), reserialised).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "re-serialised UTF-8 bytes don't match Meta's signature");
        error_code(&resp.json().await.unwrap());
        assert_eq!(app.journaled().await, 0, "nothing journaled");

        // The exact bytes, escaped unicode and all, verify.
        assert_eq!(app.signed_webhook(&body).await, StatusCode::OK);
        assert_eq!(app.journaled().await, 1, "durable before the 200");
    }

    async fn the_journal_lists_by_state_newest_first_in_pages(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        app.create_lead("Priya", "+15550100111").await;
        // Received in this order: done, failed, done, failed, done.
        for i in 0..5 {
            let body = if i % 2 == 0 {
                text_payload(&format!("wamid.list.{i}"), "15550100111", 1_789_300_000 + i, "hi")
            } else {
                format!("not json {i}").into_bytes()
            };
            assert_eq!(app.signed_webhook(&body).await, StatusCode::OK);
            app.webhooks_processed().await;
        }
        let pages = |filter: &'static str| {
            let app = &app;
            async move {
                let mut states = Vec::new();
                let mut cursor = String::new();
                loop {
                    let (status, page) =
                        app.get(&format!("/api/v1/admin/webhook-events?limit=2{filter}{cursor}"), &app.admin_token).await;
                    assert_eq!(status, StatusCode::OK, "{page}");
                    let rows = page["webhook_events"].as_array().unwrap();
                    assert!(rows.len() <= 2);
                    states.extend(rows.iter().map(|r| r["state"].as_str().unwrap().to_owned()));
                    match page["next_cursor"].as_str() {
                        Some(next) => cursor = format!("&cursor={next}"),
                        None => return states,
                    }
                }
            }
        };
        assert_eq!(pages("").await, ["done", "failed", "done", "failed", "done"]);
        assert_eq!(pages("&state=done").await, ["done"; 3]);
        assert_eq!(pages("&state=failed").await, ["failed"; 2]);
        assert!(pages("&state=pending").await.is_empty());
        let (status, body) = app.get("/api/v1/admin/webhook-events?cursor=abc", &app.admin_token).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_cursor"));
    }

    async fn garbage_with_a_valid_signature_is_kept_as_failed(t: TestDb) {
        let app = spawn_app(&t).await;
        assert_eq!(app.signed_webhook(b"this is not json").await, StatusCode::OK);
        assert_eq!(app.signed_webhook(br#"{"object":"whatsapp_business_account","entry":"nope"}"#).await, StatusCode::OK);
        app.webhooks_processed().await;
        let (status, list) = app.get("/api/v1/admin/webhook-events?state=failed", &app.admin_token).await;
        assert_eq!(status, StatusCode::OK);
        let events = list["webhook_events"].as_array().unwrap();
        assert_eq!(events.len(), 2, "{list}");
        assert!(events.iter().all(|e| e["state"] == "failed" && e["error"].is_string() && e["received_at"].is_string()));
        let health = app.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(health.status(), StatusCode::OK, "server healthy");

        let (status, _) = app.get("/api/v1/admin/webhook-events?state=weird", &app.admin_token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (_, member) = app.member("agent@example.com", json!({})).await;
        let (status, _) = app.get("/api/v1/admin/webhook-events", &member).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    async fn oversized_bodies_are_refused(t: TestDb) {
        let app = spawn_app(&t).await;
        let big = vec![b' '; (4 << 20) + 1];
        let signature = sign(APP_SECRET.as_bytes(), &big);
        let headers = [("x-hub-signature-256", signature.as_str()), ("content-type", "application/json")];
        let (status, body) = app.announce_oversized("/webhooks/whatsapp", &headers, big.len()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        error_code(&body);
        // 3 MB, Meta's maximum, is accepted.
        let mut padded = fixture("text.json");
        padded.extend(std::iter::repeat_n(b' ', 3 << 20));
        assert_eq!(app.signed_webhook(&padded).await, StatusCode::OK);
    }

    async fn every_fixture_lands_where_it_should(t: TestDb) {
        let app = spawn_app(&t).await;
        let a = app.connect_number("100200300400600", "15550100100", true).await;
        let b = app.connect_number("100200300400800", "15550100200", false).await;
        let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
        let mut leads = std::collections::HashMap::new();
        for (name, phone) in [("Priya Raman", "15550100111"), ("Tomás Ibarra", "15550100122"), ("Kwame Mensah", "15550100133"),
            ("Lena Vogel", "15550100144"), ("Hiroshi Tanaka", "15550100155"), ("Dmitri Volkov", "15550100166"),
            ("Aisha Bello", "15550100188"), ("Noor Haddad", "15550100199")] {
            let lead = app.create_lead(name, &format!("+{phone}")).await;
            leads.insert(phone, lead["id"].as_str().unwrap().to_owned());
        }
        for (key, phone, w) in O {
            seed_outbound(&app, if key == "o10" { b } else { a }, &leads[phone], w).await;
        }
        for f in ALL_FIXTURES {
            assert_eq!(app.signed_webhook(&fixture(f)).await, StatusCode::OK, "{f}");
        }
        app.webhooks_processed().await;
        assert_eq!(app.count("SELECT COUNT(*) FROM webhook_events WHERE state = 'failed'").await, 0);

        // 21 distinct inbound wamids: 18 bubbles, 2 reactions, 1 system notice (shown as a system row).
        assert_eq!(app.count("SELECT COUNT(*) FROM messages WHERE direction = 'in' AND type <> 'system'").await, 18);
        assert_eq!(app.count("SELECT COUNT(*) FROM messages WHERE type = 'system'").await, 1);
        assert_eq!(app.count("SELECT COUNT(*) FROM reactions").await, 1);
        assert_eq!(app.count("SELECT COUNT(*) FROM inbound_notices").await, 1);
        assert_eq!(app.count("SELECT COUNT(*) FROM messages WHERE direction = 'out' AND sent_by_app").await, 1);

        for (key, status) in [("o1", "read"), ("o7", "read"), ("o9", "read"), ("o6", "delivered"), ("o10", "delivered"), ("o8", "failed")] {
            let (_, got, _) = app.message_by_wamid(wamid(key)).await.unwrap();
            assert_eq!(got, status, "{key}");
        }
        assert_eq!(app.message_by_wamid(wamid("o8")).await.unwrap().2, Some(131047));
        let (delivered, read): (Option<chrono::DateTime<chrono::Utc>>, Option<chrono::DateTime<chrono::Utc>>) =
            on_db!(&app.db, |p| sqlx::query_as("SELECT delivered_at, read_at FROM messages WHERE wamid = $1")
                .bind(wamid("o9")).fetch_one(p).await).unwrap();
        assert_eq!(delivered.unwrap().timestamp(), 1789305405);
        assert_eq!(read.unwrap().timestamp(), 1789305460);

        // Kwame's chat needs a template after 131047.
        let (_, convs) = app.get(&format!("/api/v1/conversations?lead_id={}", leads["15550100133"]), &app.admin_token).await;
        assert_eq!(convs["conversations"][0]["template_required"], true, "{convs}");

        // Priya's chat: text, reply with context, interactive reply; o5 has no reaction left.
        let (_, convs) = app.get(&format!("/api/v1/conversations?lead_id={}", leads["15550100111"]), &app.admin_token).await;
        let priya = convs["conversations"][0]["id"].as_str().unwrap().to_owned();
        let (_, page) = app.get(&format!("/api/v1/conversations/{priya}/messages"), &app.admin_token).await;
        let msgs = page["messages"].as_array().unwrap();
        let o5 = msgs.iter().find(|m| m["wamid"] == wamid("o5")).unwrap();
        assert_eq!(o5["reactions"], json!([]), "reaction removed");
        let reply = msgs.iter().find(|m| m["context"]["wamid"] == wamid("o1")).expect("reply keeps its context");
        assert_eq!(reply["direction"], "in");
        let button = msgs.iter().find(|m| m["type"] == "interactive").unwrap();
        assert_eq!(button["content"]["interactive"]["button_reply"]["id"], "slot_thu_1000");
        let times: Vec<&str> = msgs.iter().map(|m| m["created_at"].as_str().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first: {times:?}");

        // Tomás: the echo is outbound from the phone app; unicode survived; window not moved by it.
        let (_, convs) = app.get(&format!("/api/v1/conversations?lead_id={}", leads["15550100122"]), &app.admin_token).await;
        let tomas = &convs["conversations"][0];
        let (_, page) = app.get(&format!("/api/v1/conversations/{}/messages", tomas["id"].as_str().unwrap()), &app.admin_token).await;
        let echo = page["messages"].as_array().unwrap().iter().find(|m| m["direction"] == "out").unwrap();
        assert_eq!(echo["sent_by"], "whatsapp_app");
        assert!(echo["text"].as_str().unwrap().contains("Tomás"));
        assert!(page["messages"].as_array().unwrap().iter()
            .any(|m| m["direction"] == "in" && m["text"].as_str().unwrap_or("").contains("¿El presupuesto")), "{page}");
        let window: chrono::DateTime<chrono::Utc> = tomas["window_expires_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(window.timestamp(), 1789304500 + 86400, "the last inbound message sets the window, not the echo");

        // Media, location and order fields are kept.
        let (media, content): (Option<String>, Option<String>) = on_db!(&app.db, |p| sqlx::query_as(
            "SELECT CAST(media AS TEXT), CAST(content AS TEXT) FROM messages WHERE type = 'document'").fetch_one(p).await).unwrap();
        let media: Value = serde_json::from_str(&media.unwrap()).unwrap();
        assert_eq!(media["filename"], "floorplan_unit_4b.pdf");
        assert_eq!(media["mime_type"], "application/pdf");
        assert!(content.is_none());
        for (kind, pointer, expected) in [("location", "/location/name", json!("Pioneer Lofts")),
            ("order", "/order/product_items/1/quantity", json!(8)), ("unsupported", "/original_type", json!("unsupported")),
            ("button", "/button/payload", json!("CONFIRM_VISIT_8841")), ("contacts", "/contacts/0/name/formatted_name", json!("Grace Okafor"))] {
            let content: String = on_db!(&app.db, |p| sqlx::query_scalar(
                "SELECT CAST(content AS TEXT) FROM messages WHERE type = $1").bind(kind).fetch_one(p).await).unwrap();
            let content: Value = serde_json::from_str(&content).unwrap();
            assert_eq!(content.pointer(pointer), Some(&expected), "{kind}: {content}");
        }
        let referral: String = on_db!(&app.db, |p| sqlx::query_scalar(
            "SELECT CAST(content AS TEXT) FROM messages WHERE text LIKE 'Hi, I saw your ad%'").fetch_one(p).await).unwrap();
        assert!(referral.contains("ctwa_clid"));

        // Dmitri: both phones and both BSUIDs point at his lead; his lead now has the new phone.
        let ids: Vec<(String, String)> = on_db!(&app.db, |p| sqlx::query_as(
            "SELECT kind, value FROM lead_identities WHERE lead_id = $1 ORDER BY kind, value")
            .bind(Uuid::parse_str(&leads["15550100166"]).unwrap()).fetch_all(p).await).unwrap();
        for v in ["15550100166", "15550100177", "US.15962738405691728365", "US.26073849516702839476"] {
            assert!(ids.iter().any(|(_, val)| val == v), "{v} linked: {ids:?}");
        }
        let (_, dmitri) = app.get(&format!("/api/v1/leads/{}", leads["15550100166"]), &app.admin_token).await;
        assert_eq!(dmitri["phone"], "15550100177");

        // Marisol (username only) was imported: a lead and a chat without a phone.
        let (_, found) = app.get("/api/v1/leads?q=marisol", &app.admin_token).await;
        let marisol = &found["leads"][0];
        assert!(marisol["phone"].is_null(), "{found}");
        assert_eq!(marisol["source"], "whatsapp");
        let (_, convs) = app.get(&format!("/api/v1/conversations?lead_id={}", marisol["id"].as_str().unwrap()), &app.admin_token).await;
        assert!(convs["conversations"][0]["contact_phone"].is_null());
        assert_eq!(convs["conversations"][0]["contact_bsuid"], "US.48295061738924051698");
    }

    // A reaction that overtakes its message shows on it once it lands; a labelled chat keeps its
    // labels in the list and in the `conversation.updated` that ingest sends.
    async fn early_reactions_and_labels_survive_ingest(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        app.create_lead("Priya", "+15550100111").await;
        assert_eq!(app.signed_webhook(&text_payload("wamid.first", "15550100111", 1_700_000_000, "hi")).await, StatusCode::OK);
        app.webhooks_processed().await;
        let (_, convs) = app.get("/api/v1/conversations", &app.admin_token).await;
        let conv = convs["conversations"][0]["id"].as_str().unwrap().to_owned();
        let (status, label) = app.post("/api/v1/labels", &app.admin_token, json!({"name": "vip"})).await;
        assert_eq!(status, StatusCode::CREATED, "{label}");
        let label = label["id"].as_str().unwrap().to_owned();
        let (status, body) = app
            .json(reqwest::Method::PUT, &format!("/api/v1/conversations/{conv}/labels"), &app.admin_token, Some(json!({"label_ids": [label]})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let reaction = serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "100200300400500", "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550100100", "phone_number_id": "100200300400600"},
            "contacts": [{"profile": {"name": "Priya"}, "wa_id": "15550100111"}],
            "messages": [{"from": "15550100111", "id": "wamid.react", "timestamp": "1700000005", "type": "reaction",
                "reaction": {"message_id": "wamid.late", "emoji": "👍"}}]}}]}]}))
        .unwrap();
        assert_eq!(app.signed_webhook(&reaction).await, StatusCode::OK);
        app.webhooks_processed().await;
        assert_eq!(app.signed_webhook(&text_payload("wamid.late", "15550100111", 1_700_000_001, "late")).await, StatusCode::OK);
        app.webhooks_processed().await;

        let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
        let late = page["messages"].as_array().unwrap().iter().find(|m| m["wamid"] == "wamid.late").expect("late message").clone();
        assert_eq!(late["reactions"].as_array().map(|r| r.len()), Some(1), "{late}");
        assert_eq!(late["reactions"][0]["emoji"], "👍");
        let first = page["messages"].as_array().unwrap().iter().find(|m| m["wamid"] == "wamid.first").unwrap().clone();
        assert_eq!(first["reactions"], json!([]), "{first}");

        let updated: Vec<Value> = on_db!(&app.db, |p| sqlx::query_scalar::<_, String>(
            "SELECT CAST(data AS TEXT) FROM events WHERE type = 'conversation.updated' ORDER BY id"
        )
        .fetch_all(p)
        .await)
        .unwrap()
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
        let last = updated.last().expect("conversation.updated events");
        assert_eq!(last["label_ids"], json!([label]), "{last}");
        assert_eq!(last["last_message"]["text"], "late");
    }

    async fn redelivery_never_duplicates(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        app.create_lead("Priya", "+15550100111").await;
        let body = fixture("text.json");
        for _ in 0..3 {
            assert_eq!(app.signed_webhook(&body).await, StatusCode::OK);
        }
        let concurrent: Vec<_> = (0..8).map(|_| app.signed_webhook(&body)).collect();
        for status in futures_util::future::join_all(concurrent).await {
            assert_eq!(status, StatusCode::OK);
        }
        app.webhooks_processed().await;
        assert_eq!(app.count("SELECT COUNT(*) FROM webhook_events").await, 11, "every delivery journaled");
        assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 1, "one message");
        assert_eq!(app.count("SELECT COUNT(*) FROM conversations").await, 1);
        let (_, convs) = app.get("/api/v1/conversations", &app.admin_token).await;
        assert_eq!(convs["conversations"][0]["unread_count"], 1);

        // Replaying a processed entry changes nothing and answers with the entry.
        let (_, list) = app.get("/api/v1/admin/webhook-events", &app.admin_token).await;
        let id = list["webhook_events"][0]["id"].as_str().unwrap();
        let (status, replayed) = app.post(&format!("/api/v1/admin/webhook-events/{id}/replay"), &app.admin_token, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{replayed}");
        assert_eq!(replayed["state"], "done");
        assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 1);
    }

    async fn many_chats_at_once_lose_nothing(t: TestDb) {
        // Twenty messages from each of six leads, posted all at once and interleaved: on
        // PostgreSQL two processors take them in parallel batches. Every message is stored
        // once, and each chat's counters and session summary count all twenty (a lost update
        // between two transactions on one chat would count fewer).
        let app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        let phones: Vec<String> = (0..6).map(|i| format!("1555020000{i}")).collect();
        for (i, phone) in phones.iter().enumerate() {
            app.create_lead(&format!("Lead {i}"), &format!("+{phone}")).await;
        }
        let bodies: Vec<Vec<u8>> = (0..20)
            .flat_map(|n| phones.iter().map(move |p| text_payload(&format!("wamid.many.{p}.{n}"), p, 1789300000 + n, "hi")))
            .collect();
        for status in futures_util::future::join_all(bodies.iter().map(|b| app.signed_webhook(b))).await {
            assert_eq!(status, StatusCode::OK);
        }
        app.webhooks_processed().await;
        assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 120);
        let (_, convs) = app.get("/api/v1/conversations", &app.admin_token).await;
        let convs = convs["conversations"].as_array().unwrap();
        assert_eq!(convs.len(), 6);
        assert!(convs.iter().all(|c| c["unread_count"] == 20), "{convs:?}");
        let sessions: Vec<String> = on_db!(&t.db, |p| sqlx::query_scalar(
            "SELECT CAST(data AS TEXT) FROM activities WHERE type = 'whatsapp_session'"
        )
        .fetch_all(p)
        .await)
        .unwrap();
        assert_eq!(sessions.len(), 6, "one session per chat");
        for s in sessions {
            let s: Value = serde_json::from_str(&s).unwrap();
            assert_eq!(s["messages_from_lead"], 20, "{s}");
        }
    }

    async fn a_batch_stores_what_one_by_one_would(t: TestDb) {
        // The same webhooks processed one at a time by one server, and journaled together
        // before another's processor looks (one batch: plain messages recorded set-wise, the
        // rest one by one, in order): the same chats, messages, previews, counters, sessions
        // and search index.
        let bodies = batch_story();
        let alone = {
            let app = story_app(&t).await;
            for body in &bodies {
                assert_eq!(app.signed_webhook(body).await, StatusCode::OK);
                app.webhooks_processed().await;
            }
            inbox_state(&app).await
        };
        let other = if t.is_postgres() { TestDb::postgres().await } else { TestDb::sqlite().await };
        let app = story_app(&other).await;
        app.journal_at_once(&bodies).await;
        app.webhooks_processed().await;
        let together = inbox_state(&app).await;
        assert_eq!(together, alone);
        assert_eq!(alone["messages"].as_array().unwrap().len(), 10, "{alone:#}");
    }

    async fn only_leads_are_stored_unless_auto_import(t: TestDb) {
        let app = spawn_app(&t).await;
        let number = app.connect_number("100200300400600", "15550100100", false).await;
        assert_eq!(app.signed_webhook(&text_payload("wamid.stranger1", "15550100999", 1789300000, "hi")).await, StatusCode::OK);
        app.webhooks_processed().await;
        assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 0, "a stranger's chat is not stored");
        assert_eq!(app.count("SELECT COUNT(*) FROM leads").await, 0);

        let id = number["id"].as_str().unwrap();
        let (status, _) = app.json(Method::PATCH, &format!("/api/v1/numbers/{id}"), &app.admin_token, Some(json!({"auto_import_contacts": true}))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(app.signed_webhook(&text_payload("wamid.stranger2", "15550100999", 1789300001, "hi again")).await, StatusCode::OK);
        app.webhooks_processed().await;
        let (_, leads) = app.get("/api/v1/leads", &app.admin_token).await;
        assert_eq!(leads["leads"][0]["source"], "whatsapp");
        assert_eq!(leads["leads"][0]["name"], "Test Contact");
        assert_eq!(leads["leads"][0]["phone"], "15550100999");
        assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 1);

        // Disconnected: journaled only.
        let del = app.call(Method::DELETE, &format!("/api/v1/numbers/{id}"), Some(&app.admin_token), None).await;
        assert_eq!(del.status(), StatusCode::NO_CONTENT);
        assert_eq!(app.signed_webhook(&text_payload("wamid.stranger3", "15550100999", 1789300002, "anyone?")).await, StatusCode::OK);
        app.webhooks_processed().await;
        assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 1);
        assert_eq!(app.count("SELECT COUNT(*) FROM webhook_events").await, 3);
    }

    async fn a_conversation_starts_with_the_leads_assignee(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        let (agent, _) = app.member("agent@example.com", json!({})).await;
        let (status, _) = app.post("/api/v1/leads", &app.admin_token, json!({"name": "P", "phone": "+15550100111", "assignee_id": agent})).await;
        assert_eq!(status, StatusCode::CREATED);
        app.signed_webhook(&fixture("text.json")).await;
        app.webhooks_processed().await;
        let (_, convs) = app.get("/api/v1/conversations", &app.admin_token).await;
        assert_eq!(convs["conversations"][0]["assignee_id"], json!(agent));
        assert_eq!(convs["conversations"][0]["last_message"]["text"], "Hi! Do you still have installation slots for a kitchen refit in October?");
    }

    async fn journaled_but_unprocessed_entries_survive_a_restart(t: TestDb) {
        let mut app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        app.create_lead("Priya", "+15550100111").await;
        app.stop().await;
        // As if the process died right after the 200: the body is journaled, not processed.
        on_db!(&t.db, |p| sqlx::query("INSERT INTO webhook_events (id, received_at, signature_valid, body, state) VALUES ($1, $2, TRUE, $3, 'pending')")
            .bind(Uuid::new_v4()).bind(app.clock.now()).bind(fixture("text.json")).execute(p).await.map(|_| ())).unwrap();
        assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 0);
        let again = spawn_app(&t).await;
        again.webhooks_processed().await;
        assert_eq!(again.count("SELECT COUNT(*) FROM messages").await, 1, "processed after the restart");
    }

    async fn acknowledged_batches_not_yet_unpacked_survive_a_restart(t: TestDb) {
        let mut app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        app.create_lead("Priya", "+15550100111").await;
        app.stop().await;
        // As if the process died right after acknowledging a batch of two: one arrival row.
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let bodies = [
            text_payload("wamid.arrived.1", "15550100111", 1_789_300_001, "first"),
            text_payload("wamid.arrived.2", "15550100111", 1_789_300_002, "second"),
        ];
        let now = app.clock.now();
        let entries = pack([(first, now, bodies[0].as_slice()), (second, now, bodies[1].as_slice())]);
        insert_arrival(&t.db, first, now, 2, &entries).await;
        // And one that is not a batch at all (written by something else, or damaged).
        let an_hour_ago = now - chrono::Duration::hours(1);
        insert_arrival(&t.db, Uuid::now_v7(), an_hour_ago, 1, b"\x07not a batch").await;

        let again = spawn_app(&t).await;
        again.webhooks_processed().await;
        assert!(again.message_by_wamid("wamid.arrived.1").await.is_some(), "processed after the restart");
        assert!(again.message_by_wamid("wamid.arrived.2").await.is_some(), "processed after the restart");
        let (_, done) = again.get("/api/v1/admin/webhook-events?state=done", &again.admin_token).await;
        let ids: Vec<&str> = done["webhook_events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [second.to_string(), first.to_string()], "one journal entry per webhook, with its own id");
        let (_, failed) = again.get("/api/v1/admin/webhook-events?state=failed", &again.admin_token).await;
        assert_eq!(failed["webhook_events"][0]["error"], "journal arrival could not be decoded");
        let received: chrono::DateTime<chrono::Utc> = failed["webhook_events"][0]["received_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(received.timestamp_micros(), an_hour_ago.timestamp_micros(), "received when its batch was");
        assert_eq!(again.count("SELECT COUNT(*) FROM webhook_arrivals").await, 0);
    }
}

async fn insert_arrival(
    db: &switchboard::db::Db,
    id: Uuid,
    at: chrono::DateTime<chrono::Utc>,
    webhooks: i32,
    entries: &[u8],
) {
    on_db!(db, |p| sqlx::query(
        "INSERT INTO webhook_arrivals (id, received_at, webhooks, entries) VALUES ($1, $2, $3, $4)"
    )
    .bind(id)
    .bind(at)
    .bind(webhooks)
    .bind(entries)
    .execute(p)
    .await
    .map(|_| ()))
    .unwrap();
}

/// PostgreSQL: processing that loses a deadlock is run again after a short pause, and the lost
/// round is not one of the entry's attempts (five of those mark it failed). The processing
/// transaction, holding its chat's lock, waits for the event-log lock that a [`Blocker`]
/// holds; the blocker then asks for the chat's lock, and so waits for the processing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_that_loses_a_deadlock_runs_again_without_spending_an_attempt() {
    let t = TestDb::postgres().await;
    let app = spawn_app(&t).await;
    app.connect_number("100200300400600", "15550100100", false).await;
    app.create_lead("Priya", "+15550100111").await;
    let blocker = Blocker::begin(&app.db).await;
    let body = text_payload("wamid.deadlock.1", "15550100111", 1_789_300_000, "hello");
    assert_eq!(app.signed_webhook(&body).await, StatusCode::OK);
    let keys = switchboard::webhook::ingest::contact_keys([body.as_slice()]);
    let keys: Vec<String> = keys.iter().map(i32::to_string).collect();
    blocker.close_the_circle(&format!("SELECT lock_contacts('{{{}}}'::int[])", keys.join(","))).await;

    app.webhooks_processed().await;
    assert_eq!(app.message_by_wamid("wamid.deadlock.1").await.map(|m| m.0), Some("in".to_owned()));
    let (state, attempts, error): (String, i64, Option<String>) =
        on_db!(&app.db, |p| sqlx::query_as("SELECT state, attempts, error FROM webhook_events").fetch_one(p).await)
            .unwrap();
    assert_eq!((state.as_str(), attempts, error), ("done", 0, None));
}

/// PostgreSQL: the journal writes on connections of its own. When the database drops them (a
/// restart, a proxy's idle timeout), webhooks are still acknowledged: the commit runs again on
/// a new connection, and nothing is journaled twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_carries_on_when_its_connections_are_dropped() {
    let t = TestDb::postgres().await;
    let app = spawn_app(&t).await;
    app.connect_number("100200300400600", "15550100100", false).await;
    app.create_lead("Priya", "+15550100111").await;
    let send = |n: i64| text_payload(&format!("wamid.dropped.{n}"), "15550100111", 1_789_300_000 + n, "hello");
    // The journal writer opens its connection with the first webhook.
    for n in 1..=2 {
        assert_eq!(app.signed_webhook(&send(n)).await, StatusCode::OK);
    }

    let dropped: i64 = on_db!(&app.db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'INSERT INTO webhook_arrivals%'"
    )
    .fetch_one(p)
    .await)
    .unwrap();
    assert_eq!(dropped, 1, "the journal's connection was open");

    for n in 3..=4 {
        assert_eq!(app.signed_webhook(&send(n)).await, StatusCode::OK, "webhook {n} after the drop");
    }
    app.webhooks_processed().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_events").await, 4);
    assert_eq!(app.count("SELECT COUNT(*) FROM messages WHERE wamid LIKE 'wamid.dropped.%'").await, 4);
}

#[tokio::test]
async fn without_a_secret_webhooks_get_503() {
    let t = TestDb::sqlite().await;
    let mut config = test_config(&t.url);
    config.app_secret = None;
    let app = spawn_app_with(&t, config).await;
    assert_eq!(app.signed_webhook(&fixture("text.json")).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_events").await, 0);
}

/// Plain messages in chats that exist (set-wise in a batch) mixed with what is not: first
/// messages, a redelivery, reactions (one before its message), an edit before its message,
/// messages out of time order, a message hours later (a new session).
fn batch_story() -> Vec<Vec<u8>> {
    let (p1, p2, p3) = ("15550200001", "15550200002", "15550200003");
    let t = 1789300000;
    let reaction = |id: &str, from: &str, target: &str, emoji: &str, at: i64| {
        one_message(
            from,
            json!({"from": from, "id": id, "timestamp": at.to_string(), "type": "reaction",
            "reaction": {"message_id": target, "emoji": emoji}}),
        )
    };
    vec![
        text_payload("wamid.b1", p1, t, "hello there"),
        text_payload("wamid.b2", p2, t, "hi"),
        text_payload("wamid.b3", p1, t + 5, "second"),
        text_payload("wamid.b4", p1, t + 2, "older one"),
        text_payload("wamid.b5", p2, t + 10, "again"),
        text_payload("wamid.b3", p1, t + 5, "second"),
        reaction("wamid.b6", p2, "wamid.b5", "👍", t + 11),
        text_payload("wamid.b7", p2, t + 12, "after the reaction"),
        one_message(
            p3,
            json!({"from": p3, "id": "wamid.b8", "timestamp": (t + 21).to_string(), "type": "edit",
            "edit": {"original_message_id": "wamid.b9", "message": {"type": "text", "text": {"body": "edited text"}}}}),
        ),
        text_payload("wamid.b10", p3, t + 15, "first from three"),
        text_payload("wamid.b9", p3, t + 20, "original text"),
        reaction("wamid.b11", p3, "wamid.b12", "❤️", t + 30),
        text_payload("wamid.b12", p3, t + 31, "reacted before"),
        text_payload("wamid.b13", p1, t + 4 * 3600, "much later"),
    ]
}

/// A webhook body with one message (`message`) from `from`.
fn one_message(from: &str, message: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "100200300400500", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100100", "phone_number_id": "100200300400600"},
        "contacts": [{"profile": {"name": "Test Contact"}, "wa_id": from}], "messages": [message]}}]}]}))
    .unwrap()
}

async fn story_app(t: &TestDb) -> TestApp {
    let app = spawn_app(t).await;
    app.connect_number("100200300400600", "15550100100", false).await;
    for (name, phone) in [("One", "+15550200001"), ("Two", "+15550200002"), ("Three", "+15550200003")] {
        app.create_lead(name, phone).await;
    }
    app
}

/// What agents see of every chat, without ids (the same story stored twice has other ids).
async fn inbox_state(app: &TestApp) -> Value {
    let (_, convs) = app.get("/api/v1/conversations", &app.admin_token).await;
    let mut chats = Vec::new();
    let mut messages = Vec::new();
    for c in convs["conversations"].as_array().unwrap() {
        chats.push(json!([
            c["lead_name"],
            c["status"],
            c["unread_count"],
            c["last_message"]["text"],
            c["last_message_at"],
            c["window_expires_at"]
        ]));
        let (_, page) =
            app.get(&format!("/api/v1/conversations/{}/messages", c["id"].as_str().unwrap()), &app.admin_token).await;
        for m in page["messages"].as_array().unwrap() {
            let reactions: Vec<&Value> = m["reactions"].as_array().unwrap().iter().map(|r| &r["emoji"]).collect();
            messages.push(json!([c["lead_name"], m["wamid"], m["text"], m["created_at"], m["edited_at"], reactions]));
        }
    }
    chats.sort_by_key(|c| c.to_string());
    let sessions: Vec<(String, String)> = on_db!(&app.db, |p| sqlx::query_as(
        "SELECT l.name, CAST(a.data AS TEXT) FROM activities a JOIN leads l ON l.id = a.lead_id \
         WHERE a.type = 'whatsapp_session'"
    )
    .fetch_all(p)
    .await)
    .unwrap();
    let mut sessions: Vec<Value> = sessions
        .into_iter()
        .map(|(lead, data)| {
            let mut data: Value = serde_json::from_str(&data).unwrap();
            data.as_object_mut().unwrap().retain(|k, _| !k.ends_with("_id"));
            json!([lead, data])
        })
        .collect();
    sessions.sort_by_key(|s| s.to_string());
    let (_, found) = app.get("/api/v1/search?q=text", &app.admin_token).await;
    let found: Vec<&Value> = found["results"].as_array().unwrap().iter().map(|r| &r["snippet"]).collect();
    json!({"chats": chats, "messages": messages, "sessions": sessions, "search": found,
        "documents": app.count("SELECT COUNT(*) FROM search_docs").await})
}

impl TestApp {
    /// Journals `bodies` so that the processor finds them all at once (one batch), then wakes
    /// it with a webhook for a number nobody connected.
    pub async fn journal_at_once(&self, bodies: &[Vec<u8>]) {
        for body in bodies {
            on_db!(&self.db, |p| sqlx::query(
                "INSERT INTO webhook_events (id, received_at, signature_valid, body, state) VALUES ($1, $2, TRUE, $3, 'failed')"
            )
            .bind(Uuid::now_v7())
            .bind(chrono::Utc::now())
            .bind(body)
            .execute(p)
            .await
            .map(|_| ()))
            .unwrap();
        }
        let held =
            on_db!(&self.db, |p| sqlx::query("UPDATE webhook_events SET state = 'pending' WHERE state = 'failed'")
                .execute(p)
                .await
                .map(|r| r.rows_affected()))
            .unwrap();
        assert_eq!(held, bodies.len() as u64);
        let wake = text_payload("wamid.wake", "15550200999", 1789300000, "anyone?").to_vec();
        let wake = String::from_utf8(wake).unwrap().replace("100200300400600", "100200300400999");
        assert_eq!(self.signed_webhook(wake.as_bytes()).await, StatusCode::OK);
    }
}
