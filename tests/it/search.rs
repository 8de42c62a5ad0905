//! Searching messages, captions, notes and leads: every word of `q` a case-insensitive prefix
//! of a word, leads first, newest first, and only in chats the caller sees.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::on_both;
use crate::support::*;
use crate::webhooks::text_payload;

fn image_payload(wamid: &str, from: &str, ts: i64, caption: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "100200300400500", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100100", "phone_number_id": "100200300400600"},
        "contacts": [{"profile": {"name": "Test Contact"}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": ts.to_string(), "type": "image",
                      "image": {"id": "media-1", "mime_type": "image/jpeg", "sha256": "abc", "caption": caption}}]}}]}]}))
    .unwrap()
}

/// A lead named `name` with phone `phone` (digits), assigned to `assignee`, and its
/// conversation opened by `payloads`. Returns (lead id, conversation id).
async fn chat(
    app: &TestApp,
    name: &str,
    phone: &str,
    assignee: Option<Uuid>,
    payloads: &[Vec<u8>],
) -> (String, String) {
    let mut lead = json!({"name": name, "phone": format!("+{phone}")});
    if let Some(a) = assignee {
        lead["assignee_id"] = json!(a);
    }
    let (status, lead) = app.post("/api/v1/leads", &app.admin_token, lead).await;
    assert_eq!(status, StatusCode::CREATED, "{lead}");
    for p in payloads {
        assert_eq!(app.signed_webhook(p).await, StatusCode::OK);
    }
    app.webhooks_processed().await;
    let lead = lead["id"].as_str().unwrap().to_owned();
    let (_, list) = app.get(&format!("/api/v1/conversations?lead_id={lead}"), &app.admin_token).await;
    (lead, list["conversations"][0]["id"].as_str().expect("the conversation").to_owned())
}

async fn search(app: &TestApp, token: &str, query: &str) -> Value {
    let (status, body) = app.get(&format!("/api/v1/search?{query}"), token).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

/// The results of `q` as (kind, snippet) pairs.
async fn found(app: &TestApp, token: &str, q: &str) -> Vec<(String, String)> {
    let body = search(app, token, &format!("q={}", urlencode(q))).await;
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap().to_owned(), r["snippet"].as_str().unwrap().to_owned()))
        .collect()
}

/// What [`found`] returns for one hit of `kind` with `snippet`.
fn only(kind: &str, snippet: &str) -> Vec<(String, String)> {
    vec![(kind.to_owned(), snippet.to_owned())]
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

const T0: i64 = 1_789_300_000;

on_both! {
    async fn every_word_is_a_case_insensitive_prefix(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        let p = "15550100111";
        let (lead, conv) = chat(&app, "Ready Robinson", p, None, &[
            text_payload("w.1", p, T0, "Your INVOICE number 4711 is ready"),
            text_payload("w.2", p, T0 + 60, "Café meeting tomorrow?"),
            image_payload("w.3", p, T0 + 120, "The kitchen sink wall"),
        ]).await;
        let (status, note) = app.post(&format!("/api/v1/conversations/{conv}/notes"), &app.admin_token,
            json!({"text": "Invoice paid by bank transfer"})).await;
        assert_eq!(status, StatusCode::CREATED, "{note}");
        let admin = app.admin_token.clone();

        // Newest first: the note (written now), then the message of T0.
        let hits = search(&app, &admin, "q=invo").await;
        let results = hits["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "{hits}");
        assert_eq!(results[0]["kind"], "note");
        assert_eq!(results[0]["message_id"], note["id"]);
        assert_eq!(results[1]["kind"], "message");
        assert_eq!(results[1]["conversation_id"], conv.as_str());
        assert_eq!(results[1]["lead_id"], lead.as_str());
        assert_eq!(results[1]["snippet"], "Your INVOICE number 4711 is ready");
        let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &admin).await;
        assert_eq!(page["messages"][0]["id"], results[1]["message_id"], "a hit names its message in the chat");

        let message = |s: &str| only("message", s);
        assert_eq!(found(&app, &admin, "INV READ").await, message("Your INVOICE number 4711 is ready"));
        assert_eq!(found(&app, &admin, "4711").await, message("Your INVOICE number 4711 is ready"));
        assert!(found(&app, &admin, "voice").await.is_empty(), "a word matches only as a prefix");
        assert!(found(&app, &admin, "invoice xylophone").await.is_empty(), "every word must match");
        assert_eq!(found(&app, &admin, "CAFÉ").await, message("Café meeting tomorrow?"));
        assert!(found(&app, &admin, "cafe").await.is_empty(), "accents are not folded, on either database");
        assert_eq!(found(&app, &admin, "sink wal").await, message("The kitchen sink wall"), "captions are searched");

        // Leads whose name or phone match come first, without a message.
        let hits = search(&app, &admin, "q=ready").await;
        let results = hits["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "{hits}");
        assert_eq!(results[0]["kind"], "lead");
        assert_eq!(results[0]["lead_id"], lead.as_str());
        assert_eq!(results[0]["conversation_id"], conv.as_str());
        assert!(results[0].get("message_id").is_none());
        assert_eq!(results[1]["kind"], "message");
        assert_eq!(found(&app, &admin, "0100111").await, only("lead", &format!("Ready Robinson · +{p}")));

        // One result a page: the lead, then the message, then the end.
        let mut seen = Vec::new();
        let mut query = "q=ready&limit=1".to_owned();
        loop {
            let page = search(&app, &admin, &query).await;
            seen.extend(page["results"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => query = format!("q=ready&limit=1&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(seen, ["lead", "message"]);

        for bad in ["q=a", "q=%20b%20", "", "q=%21%21", "q=ready&cursor=nonsense", "q=ready&limit=0"] {
            let (status, body) = app.get(&format!("/api/v1/search?{bad}"), &admin).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            error_code(&body);
        }
        let (_, short) = app.get("/api/v1/search?q=a", &admin).await;
        assert_eq!(error_code(&short), "invalid_query");
    }

    async fn a_lead_is_found_by_its_name_and_phone_as_they_are_now(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let (status, lead) =
            app.post("/api/v1/leads", &admin, json!({"name": "Olga Petrova-Ivanova", "phone": "+4915112345678"})).await;
        assert_eq!(status, StatusCode::CREATED, "{lead}");
        let id = lead["id"].as_str().unwrap().to_owned();
        let lead_hit = |s: &str| only("lead", s);
        assert_eq!(found(&app, &admin, "OLG pet").await, lead_hit("Olga Petrova-Ivanova · +4915112345678"));
        assert_eq!(found(&app, &admin, "o pet").await, lead_hit("Olga Petrova-Ivanova · +4915112345678"));
        assert!(found(&app, &admin, "lga").await.is_empty(), "a word of the name matches from its start");
        assert!(found(&app, &admin, "olga xylophone").await.is_empty(), "every word must match");
        assert_eq!(found(&app, &admin, "151 123").await, lead_hit("Olga Petrova-Ivanova · +4915112345678"));

        let (status, body) = app
            .json(reqwest::Method::PATCH, &format!("/api/v1/leads/{id}"), &admin,
                Some(json!({"name": "Olga Smirnova", "phone": "+4915187654321"})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(found(&app, &admin, "petrova").await.is_empty(), "the old name is gone from the index");
        assert!(found(&app, &admin, "12345678").await.is_empty(), "and the old phone");
        assert_eq!(found(&app, &admin, "smir").await, lead_hit("Olga Smirnova · +4915187654321"));
        assert_eq!(found(&app, &admin, "87654").await, lead_hit("Olga Smirnova · +4915187654321"));
    }

    async fn a_member_never_finds_a_chat_they_cannot_see(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        let (anna_agent, anna_token) = app.member("anna.agent@example.com", json!({})).await;
        let (bob_agent, bob_token) = app.member("bob.agent@example.com", json!({})).await;
        let (_, plain_token) = app.member("plain@example.com", json!({})).await;
        let (anna, anna_conv) = chat(&app, "Anna Alvarez", "15550100111", Some(anna_agent),
            &[text_payload("w.a", "15550100111", T0, "secret plan alpha")]).await;
        let (bob, bob_conv) = chat(&app, "Bob Secretary", "15550100122", Some(bob_agent),
            &[text_payload("w.b", "15550100122", T0 + 60, "secret plan beta")]).await;
        let (status, body) = app.post(&format!("/api/v1/conversations/{bob_conv}/notes"), &bob_token,
            json!({"text": "secret: he prefers mornings"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let leads_found = |body: &Value| -> Vec<String> {
            body["results"].as_array().unwrap().iter().map(|r| r["lead_id"].as_str().unwrap().to_owned()).collect()
        };
        let mine = search(&app, &anna_token, "q=secret").await;
        assert_eq!(leads_found(&mine), [anna], "only Anna's chat: {mine}");
        assert_eq!(mine["results"][0]["conversation_id"], anna_conv.as_str());

        let bobs = search(&app, &bob_token, "q=secret").await;
        let kinds: Vec<&str> = bobs["results"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["lead", "note", "message"], "{bobs}");
        assert!(leads_found(&bobs).iter().all(|l| *l == bob));

        let all = search(&app, &app.admin_token, "q=secret").await;
        assert_eq!(all["results"].as_array().unwrap().len(), 4, "admins see everything: {all}");
        assert!(search(&app, &plain_token, "q=secret").await["results"].as_array().unwrap().is_empty());
        assert!(search(&app, &anna_token, "q=prefers").await["results"].as_array().unwrap().is_empty(), "nor a note in it");

        // Access given: found from the next search on (the filter is in the query itself).
        let (status, body) = app.post(&format!("/api/v1/conversations/{bob_conv}/access"), &app.admin_token,
            json!({"member_ids": [anna_agent]})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let now = search(&app, &anna_token, "q=secret").await;
        assert_eq!(now["results"].as_array().unwrap().len(), 4, "{now}");
    }
}

/// `n` search documents in conversation `conv`, `terms` each, a second apart from `t0`
/// (written straight into the index: past a few thousand matches the search walks the newest
/// documents instead of asking the full-text index).
async fn index_docs(app: &TestApp, conv: &str, n: i64, t0: i64, terms: &str) {
    let conv = Uuid::parse_str(conv).unwrap();
    let ws = app.workspace_id;
    let rows: Vec<i64> = (0..n).collect();
    for chunk in rows.chunks(500) {
        switchboard::on_db!(&app.db, |p| {
            let mut qb =
                sqlx::QueryBuilder::new("INSERT INTO search_docs (workspace_id, conversation_id, created_at, terms) ");
            qb.push_values(chunk, |mut b, i| {
                b.push_bind(ws)
                    .push_bind(conv)
                    .push_bind(chrono::DateTime::from_timestamp(t0 + i, 0).unwrap())
                    .push_bind(format!("{terms} number {i}"));
            });
            qb.build().execute(p).await.map(|_| ())
        })
        .expect("index docs");
    }
}

on_both! {
    async fn many_matches_are_walked_newest_first_and_still_filtered(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        let (agent, agent_tok) = app.member("agent@example.com", json!({})).await;
        let (_, mine) = chat(&app, "Mine", "15550107001", Some(agent), &[text_payload("wamid.w1", "15550107001", T0, "hi")]).await;
        let (_, theirs) = chat(&app, "Theirs", "15550107002", None, &[text_payload("wamid.w2", "15550107002", T0, "hi")]).await;
        // 2,500 matches in each chat: more than the full-text index is asked to sort.
        index_docs(&app, &mine, 2_500, T0, "zebra crossing mine").await;
        index_docs(&app, &theirs, 2_500, T0 + 10_000, "zebra crossing theirs").await;

        let page = |token: String, q: &'static str| {
            let app = &app;
            async move {
                let mut seen = Vec::new();
                let mut cursor: Option<String> = None;
                for _ in 0..3 {
                    let c = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
                    let body = search(app, &token, &format!("q={}&limit=20{c}", urlencode(q))).await;
                    let results = body["results"].as_array().unwrap().clone();
                    assert_eq!(results.len(), 20, "full pages: {body}");
                    seen.extend(results);
                    cursor = body["next_cursor"].as_str().map(str::to_owned);
                }
                seen
            }
        };
        // The admin sees the newest first: all of them in `theirs` (written later).
        let all = page(app.admin_token.clone(), "zeb cross").await;
        assert!(all.iter().all(|r| r["conversation_id"] == json!(theirs)), "newest first");
        let times: Vec<&str> = all.iter().map(|r| r["created_at"].as_str().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] > w[1]), "strictly newest first across pages: {times:?}");
        // The agent only ever finds their own chat, pages still full.
        let own = page(agent_tok.clone(), "zeb cross").await;
        assert!(own.iter().all(|r| r["conversation_id"] == json!(mine)), "only their chat");
        // Every word must match: "theirs" narrows the admin's, and finds nothing for the agent.
        assert!(page(app.admin_token.clone(), "zebra their").await.iter().all(|r| r["conversation_id"] == json!(theirs)));
        let body = search(&app, &agent_tok, "q=zebra%20their").await;
        assert_eq!(body["results"], json!([]), "{body}");
        // Newer documents without those words: the newest no longer tell that the words are
        // common, the index counts more matches than it sorts, and the agent's pages are the same.
        index_docs(&app, &theirs, 1_000, T0 + 20_000, "filler").await;
        assert_eq!(page(agent_tok.clone(), "zeb cross").await, own);
    }
}
