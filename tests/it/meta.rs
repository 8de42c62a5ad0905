//! What Meta sends besides messages and receipts, as signed webhooks shaped like Meta's: edits
//! and revokes, `played`, system rows, pricing, number health, marketing preferences, template
//! webhooks and the synced template list, calls.

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard::on_db;
use uuid::Uuid;

use crate::on_both;
use crate::outbox::FakeGraph;
use crate::support::*;
use crate::webhooks::{fixture, seed_outbound, text_payload};

const NUMBER_A: &str = "100200300400600";
const NUMBER_B: &str = "100200300400800";
const WABA_A: &str = "100200300400500";
const WABA_B: &str = "100200300400700";
/// Outbound messages the example files report on (see webhooks/README.md).
const O11_VOICE_NOTE: &str = "wamid.HBgLMTU1NTAxMDAxMTEVAgARGBI5MTExOThFMEE4NTA4RkE5RjQA";
const O12_MARKETING: &str = "wamid.HBgLMTU1NTAxMDAxNTUVAgARGBJGMkE5RDRGRjczNEM1NjA5RUMA";

impl TestApp {
    /// Sends the example file `name` as Meta would and waits until it is processed.
    async fn replay(&self, name: &str) {
        assert_eq!(self.signed_webhook(&fixture(name)).await, StatusCode::OK, "{name}");
        self.webhooks_processed().await;
    }

    async fn replay_body(&self, body: &Value) {
        assert_eq!(self.signed_webhook(&serde_json::to_vec(body).unwrap()).await, StatusCode::OK);
        self.webhooks_processed().await;
    }

    async fn chat_id_of(&self, lead: &Value) -> String {
        let (_, convs) = self
            .get(&format!("/api/v1/conversations?lead_id={}", lead["id"].as_str().unwrap()), &self.admin_token)
            .await;
        convs["conversations"][0]["id"].as_str().expect("the lead has a conversation").to_owned()
    }

    async fn messages_of(&self, lead: &Value) -> Vec<Value> {
        let conv = self.chat_id_of(lead).await;
        let (_, page) = self.get(&format!("/api/v1/conversations/{conv}/messages"), &self.admin_token).await;
        page["messages"].as_array().unwrap().clone()
    }

    async fn events_of(&self, kind: &str) -> i64 {
        on_db!(&self.db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE type = $1")
            .bind(kind)
            .fetch_one(p)
            .await)
        .unwrap()
    }

    async fn failed_webhooks(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM webhook_events WHERE state = 'failed'").await
    }

    async fn connect_with_waba(&self, phone_number_id: &str, display: &str, waba: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/numbers",
                &self.admin_token,
                json!({"phone_number_id": phone_number_id, "display_phone_number": display, "waba_id": waba,
                       "access_token": "EAAG-test-token", "auto_import_contacts": false}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "connect number: {body}");
        body
    }

    async fn number(&self, number: &Value) -> Value {
        self.get(&format!("/api/v1/numbers/{}", number["id"].as_str().unwrap()), &self.admin_token).await.1
    }

    async fn lead(&self, lead: &Value) -> Value {
        self.get(&format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()), &self.admin_token).await.1
    }
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

fn secs(v: &Value) -> i64 {
    v.as_str().unwrap_or_else(|| panic!("a time: {v}")).parse::<chrono::DateTime<chrono::Utc>>().unwrap().timestamp()
}

/// A `messages` change of number A carrying `messages` from `contacts`.
fn inbound(contacts: Value, messages: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA_A, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550100100", "phone_number_id": NUMBER_A},
        "contacts": contacts, "messages": messages}}]}]})
}

fn status(wamid: &str, status: &str, ts: i64) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA_A, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550100100", "phone_number_id": NUMBER_A},
        "statuses": [{"id": wamid, "status": status, "timestamp": ts.to_string(), "recipient_id": "15550100155"}]}}]}]})
}

fn template(id: &str, name: &str, language: &str, category: &str, status: &str) -> Value {
    json!({"id": id, "name": name, "language": language, "category": category, "status": status,
           "components": [{"type": "BODY", "text": "Hello {{1}}, our autumn offer: {{2}}"}]})
}

on_both! {
    // What a replay of other projects' real fixtures found: `played`, system messages, an
    // interactive message Meta could not deliver, a BSUID named only in the contacts.
    async fn replayed_fixtures_land_where_they_should(t: TestDb) {
        let app = spawn_app(&t).await;
        let a = app.connect_number(NUMBER_A, "15550100100", true).await;
        let priya = app.create_lead("Priya Raman", "+15550100111").await;
        let dmitri = app.create_lead("Dmitri Volkov", "+15550100166").await;
        seed_outbound(&app, id(&a), id(&priya), O11_VOICE_NOTE).await;

        // Priya played our voice note: it counts as read, and the entry is done.
        app.replay("status-played.json").await;
        assert_eq!(app.message_by_wamid(O11_VOICE_NOTE).await.unwrap().1, "read");
        assert_eq!(app.failed_webhooks().await, 0);

        // Dmitri changed number: a system row in his chat (no unread) and on his timeline.
        app.replay("system-user-changed-number.json").await;
        let rows = app.messages_of(&dmitri).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["type"], "system");
        assert!(rows[0]["text"].as_str().unwrap().contains("changed from 15550100166 to 15550100177"), "{}", rows[0]);
        let (_, convs) = app.get(&format!("/api/v1/conversations?lead_id={}", id(&dmitri)), &app.admin_token).await;
        assert_eq!(convs["conversations"][0]["unread_count"], 0);
        let (_, timeline) = app.get(&format!("/api/v1/leads/{}/timeline?type=system", id(&dmitri)), &app.admin_token).await;
        assert_eq!(timeline["activities"][0]["data"]["type"], "user_changed_number", "{timeline}");
        assert_eq!(app.count("SELECT COUNT(*) FROM activities WHERE type = 'whatsapp_session'").await, 0, "not a session");

        // An interactive reply Meta could not deliver (131000, no body): unsupported, with its error.
        app.replay_body(&inbound(json!([{"profile": {"name": "Priya Raman"}, "wa_id": "15550100111"}]), json!([{
            "from": "15550100111", "id": "wamid.interactive.131000", "timestamp": "1789300500", "type": "interactive",
            "interactive": {"type": "button_reply"},
            "errors": [{"code": 131000, "title": "Something went wrong", "message": "Something went wrong"}]}]))).await;
        let broken = app.messages_of(&priya).await.into_iter().find(|m| m["wamid"] == "wamid.interactive.131000").unwrap();
        assert_eq!(broken["type"], "unsupported", "{broken}");
        assert_eq!(broken["error"]["code"], 131000);
        assert_eq!(broken["content"]["original_type"], "interactive");

        // Tomás writes with his phone; his BSUID is only in `contacts`. His next message names
        // only the BSUID: the same lead, the same chat.
        let tomas = json!([{"profile": {"name": "Tomás Ibarra"}, "wa_id": "15550100122", "user_id": "US.71528394061257384921"}]);
        app.replay_body(&inbound(tomas, json!([{"from": "15550100122", "id": "wamid.tomas.1", "timestamp": "1789300600",
            "type": "text", "text": {"body": "Hola"}}]))).await;
        let only_bsuid = json!([{"profile": {"name": "Tomás Ibarra"}, "user_id": "US.71528394061257384921"}]);
        app.replay_body(&inbound(only_bsuid, json!([{"from_user_id": "US.71528394061257384921", "id": "wamid.tomas.2",
            "timestamp": "1789300700", "type": "text", "text": {"body": "¿Sigue ahí?"}}]))).await;
        assert_eq!(app.count("SELECT COUNT(*) FROM leads").await, 3, "no second lead for Tomás");
        assert_eq!(app.count("SELECT COUNT(DISTINCT conversation_id) FROM messages WHERE wamid LIKE 'wamid.tomas.%'").await, 1);
        assert_eq!(app.failed_webhooks().await, 0);
    }

    async fn edits_and_revokes_change_the_original_and_never_add_a_message(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_A, "15550100100", false).await;
        app.connect_number(NUMBER_B, "15550100200", false).await;
        let priya = app.create_lead("Priya Raman", "+15550100111").await;
        let tomas = app.create_lead("Tomás Ibarra", "+15550100122").await;
        let noor = app.create_lead("Noor Haddad", "+15550100199").await;

        // Priya's edit overtakes her message: it waits, and applies when the message lands.
        app.replay("edit-text.json").await;
        assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 0, "an edit is never a message");
        app.replay("text.json").await;
        let rows = app.messages_of(&priya).await;
        assert_eq!(rows.len(), 1);
        let m = &rows[0];
        assert_eq!(m["text"], "Hi! Do you still have installation slots for a kitchen refit in October or early November?");
        assert_eq!(m["edits"].as_array().unwrap().len(), 1, "{m}");
        assert_eq!(m["edits"][0]["text"], "Hi! Do you still have installation slots for a kitchen refit in October?");
        assert_eq!(secs(&m["edits"][0]["at"]), secs(&m["created_at"]), "the older text was written when the message was");
        assert_eq!(secs(&m["edited_at"]), 1789300240);
        assert!(m["revoked_at"].is_null());
        // Redelivered: nothing changes.
        app.replay("edit-text.json").await;
        assert_eq!(app.messages_of(&priya).await[0]["edits"].as_array().unwrap().len(), 1);

        // Tomás deletes his photo: revoked, caption kept, `message.updated`.
        app.replay("image-caption.json").await;
        let updates = app.events_of("message.updated").await;
        app.replay("revoke.json").await;
        assert_eq!(app.events_of("message.updated").await, updates + 1);
        let photo = app.messages_of(&tomas).await.into_iter().find(|m| m["type"] == "image").unwrap();
        assert_eq!(secs(&photo["revoked_at"]), 1789301500);
        assert!(photo["text"].is_string(), "the caption stays for those who see the chat: {photo}");

        // The business edits, then deletes, its phone-app reply to Tomás.
        app.replay("smb-message-echo.json").await;
        app.replay("echo-edit.json").await;
        app.replay("echo-revoke.json").await;
        let outbound: Vec<Value> = app.messages_of(&tomas).await.into_iter().filter(|m| m["direction"] == "out").collect();
        assert_eq!(outbound.len(), 1, "{outbound:?}");
        assert!(outbound[0]["text"].as_str().unwrap().contains("sink cut-out"), "{}", outbound[0]);
        assert_eq!(outbound[0]["edits"].as_array().unwrap().len(), 1);
        assert_eq!(secs(&outbound[0]["edited_at"]), 1789305820);
        assert_eq!(secs(&outbound[0]["revoked_at"]), 1789305900);

        // On a Cloud-API-only number an edit arrives as unsupported, with nothing to apply.
        app.replay("unsupported-edit.json").await;
        let noor_rows = app.messages_of(&noor).await;
        assert_eq!(noor_rows[0]["type"], "unsupported");
        assert_eq!(noor_rows[0]["error"]["code"], 131051);
        assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, 4);
        assert_eq!(app.failed_webhooks().await, 0);
    }

    async fn pricing_is_kept_from_the_first_status_that_carries_it(t: TestDb) {
        let app = spawn_app(&t).await;
        let a = app.connect_number(NUMBER_A, "15550100100", false).await;
        let hiroshi = app.create_lead("Hiroshi Tanaka", "+15550100155").await;
        seed_outbound(&app, id(&a), id(&hiroshi), O12_MARKETING).await;
        app.replay("status-sent-template-marketing.json").await;
        app.replay_body(&status(O12_MARKETING, "delivered", 1789306760)).await;
        let m = app.messages_of(&hiroshi).await.into_iter().find(|m| m["wamid"] == O12_MARKETING).unwrap();
        assert_eq!(m["status"], "delivered");
        assert_eq!(m["pricing"], json!({"category": "marketing", "billable": true, "type": "regular"}));
    }

    async fn number_health_follows_metas_webhooks(t: TestDb) {
        let app = spawn_app(&t).await;
        let a = app.connect_with_waba(NUMBER_A, "15550100100", WABA_A).await;
        let b = app.connect_with_waba(NUMBER_B, "15550100200", WABA_B).await;
        assert!(a["quality_rating"].is_null() && a["account_status"].is_null(), "{a}");

        app.replay("phone-number-quality-throughput-upgrade.json").await;
        assert_eq!(app.number(&a).await["messaging_limit_tier"], "TIER_UNLIMITED");
        assert_eq!(app.events_of("number.updated").await, 1);
        app.replay("phone-number-quality-throughput-upgrade.json").await;
        assert_eq!(app.events_of("number.updated").await, 1, "no change, no event");

        app.replay("account-update-restriction.json").await;
        app.replay("phone-number-quality-flagged-legacy.json").await;
        app.replay("account-update-disabled.json").await;
        let (a_now, b_now) = (app.number(&a).await, app.number(&b).await);
        assert_eq!(a_now["account_status"], "restricted");
        assert!(a_now["quality_rating"].is_null(), "{a_now}");
        assert_eq!(b_now["quality_rating"], "FLAGGED");
        assert_eq!(b_now["messaging_limit_tier"], "TIER_10K");
        assert_eq!(b_now["account_status"], "scheduled_for_disable");

        // A quality downgrade (older event values are still sent): the limit drops.
        app.replay_body(&json!({"object": "whatsapp_business_account", "entry": [{"id": WABA_B, "time": 1789306500,
            "changes": [{"field": "phone_number_quality_update", "value": {"display_phone_number": "15550100200",
            "event": "DOWNGRADE", "current_limit": "TIER_2K"}}]}]})).await;
        assert_eq!(app.number(&b).await["messaging_limit_tier"], "TIER_2K");
        assert_eq!(app.number(&a).await["messaging_limit_tier"], "TIER_UNLIMITED", "another number's webhook");
        assert_eq!(app.events_of("number.updated").await, 5);
        assert_eq!(app.failed_webhooks().await, 0);
    }

    // Today's quality webhooks carry the event only: the rating, the limit and the number's
    // status come from the Graph API's phone-number fields, read on connect and after each one.
    async fn number_health_is_read_from_the_graph_api(t: TestDb) {
        let graph = FakeGraph::start().await;
        graph.phone_numbers.lock().unwrap().insert(NUMBER_A.to_owned(), json!({"id": NUMBER_A,
            "quality_rating": "GREEN", "whatsapp_business_manager_messaging_limit": "TIER_2K", "status": "CONNECTED"}));
        let mut config = test_config(&t.url);
        config.graph_url = graph.url.clone();
        let app = spawn_app_with(&t, config).await;
        let a = app.connect_with_waba(NUMBER_A, "15550100100", WABA_A).await;
        let read = eventually("the health read on connect", || async {
            let n = app.number(&a).await;
            (n["quality_rating"] == "GREEN").then_some(n)
        })
        .await;
        assert_eq!(read["messaging_limit_tier"], "TIER_2K");
        assert_eq!(read["account_status"], "active");
        assert_eq!(app.events_of("number.updated").await, 1);

        // Meta lowers the quality and restricts the number; the webhook says only "DOWNGRADE".
        // (This API version still names the limit the old way.)
        graph.phone_numbers.lock().unwrap().insert(NUMBER_A.to_owned(), json!({"id": NUMBER_A,
            "quality_rating": "RED", "messaging_limit_tier": "TIER_250", "status": "RESTRICTED"}));
        app.replay_body(&json!({"object": "whatsapp_business_account", "entry": [{"id": WABA_A, "time": 1789306500,
            "changes": [{"field": "phone_number_quality_update", "value": {"display_phone_number": "15550100100",
            "event": "DOWNGRADE"}}]}]})).await;
        let read = eventually("the health read after the webhook", || async {
            let n = app.number(&a).await;
            (n["quality_rating"] == "RED").then_some(n)
        })
        .await;
        assert_eq!(read["messaging_limit_tier"], "TIER_250");
        assert_eq!(read["account_status"], "restricted");
        assert_eq!(app.events_of("number.updated").await, 2, "one event for the read's changes");
        assert_eq!(*graph.phone_reads.lock().unwrap(), [NUMBER_A, NUMBER_A], "on connect and after the webhook");
        assert_eq!(app.failed_webhooks().await, 0);
    }

    async fn edits_waiting_too_long_for_their_original_are_pruned(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_A, "15550100100", false).await;
        let priya = app.create_lead("Priya Raman", "+15550100111").await;
        let contact = || json!([{"profile": {"name": "Priya Raman"}, "wa_id": "15550100111"}]);
        // One edit waits for its original (text.json); another applies at once.
        app.replay("edit-text.json").await;
        app.replay_body(&inbound(contact(), json!([{"from": "15550100111", "id": "wamid.kept.1", "timestamp": "1789300100",
            "type": "text", "text": {"body": "Tuesday works"}}]))).await;
        app.replay_body(&inbound(contact(), json!([{"from": "15550100111", "id": "wamid.kept.edit", "timestamp": "1789300160",
            "type": "edit", "edit": {"original_message_id": "wamid.kept.1",
            "message": {"type": "text", "text": {"body": "Wednesday works"}}}}]))).await;
        assert_eq!(app.count("SELECT COUNT(*) FROM message_changes").await, 2);

        let prune = |before: chrono::DateTime<chrono::Utc>| {
            let db = app.db.clone();
            async move { switchboard::inbox::chat::prune_waiting_changes(&db, before, 1).await.unwrap() }
        };
        let now = app.clock.now();
        let bound = chrono::Duration::days(switchboard::inbox::chat::CHANGE_WAITS_DAYS);
        assert_eq!(prune(now - bound).await, 0, "within the bound, it waits");
        assert_eq!(prune(now + chrono::Duration::seconds(1)).await, 1, "past it, only the waiting one goes");
        let left: Vec<String> = on_db!(&app.db, |p| sqlx::query_scalar("SELECT wamid FROM message_changes")
            .fetch_all(p)
            .await)
        .unwrap();
        assert_eq!(left, ["wamid.kept.edit"], "an applied edit stays: a redelivery must not apply twice");

        // The original comes after all: stored as written.
        app.replay("text.json").await;
        let m = app.messages_of(&priya).await.into_iter().find(|m| m["wamid"] != "wamid.kept.1").unwrap();
        assert_eq!(m["text"], "Hi! Do you still have installation slots for a kitchen refit in October?");
        assert!(m["edited_at"].is_null(), "{m}");
        assert_eq!(app.failed_webhooks().await, 0);
    }

    async fn the_team_report_counts_billable_messages_per_category(t: TestDb) {
        let app = spawn_app(&t).await;
        let a = app.connect_number(NUMBER_A, "15550100100", false).await;
        let hiroshi = app.create_lead("Hiroshi Tanaka", "+15550100155").await;
        let priced = [
            ("wamid.bill.1", json!({"billable": true, "pricing_model": "PMP", "category": "marketing", "type": "regular"})),
            ("wamid.bill.2", json!({"billable": false, "pricing_model": "PMP", "category": "utility", "type": "free_customer_service"})),
            ("wamid.bill.3", json!({"billable": true, "pricing_model": "CBP", "category": "service"})),
            ("wamid.bill.4", json!({"billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular"})),
            ("wamid.bill.5", json!({"billable": false, "pricing_model": "CBP", "category": "authentication"})),
            ("wamid.bill.6", json!({"billable": true, "pricing_model": "PMP", "category": "marketing", "type": "regular"})),
        ];
        for (wamid, pricing) in &priced {
            seed_outbound(&app, id(&a), id(&hiroshi), wamid).await;
            let mut body = status(wamid, "sent", 1789306700);
            body["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"] = pricing.clone();
            app.replay_body(&body).await;
        }
        let (status, report) = app.get("/api/v1/reports/team", &app.admin_token).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["billable"], json!([{"category": "marketing", "messages": 2}, {"category": "service", "messages": 1},
            {"category": "utility", "messages": 1}]));

        // Messages written before the range are not in it.
        let later = (app.clock.now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (_, report) = app.get(&format!("/api/v1/reports/team?from={later}"), &app.admin_token).await;
        assert_eq!(report["billable"], json!([]));
        // A member counts only the leads they can see.
        let (_, agent) = app.member("agent@example.com", json!({})).await;
        let (_, report) = app.get("/api/v1/reports/team", &agent).await;
        assert_eq!(report["billable"], json!([]), "{report}");
    }

    async fn templates_are_synced_and_sends_refused_before_any_graph_call(t: TestDb) {
        let graph = FakeGraph::start().await;
        *graph.templates.lock().unwrap() = vec![
            template("1203004005006011", "autumn_offer", "en_US", "MARKETING", "APPROVED"),
            template("1203004005006013", "visit_reminder", "es", "UTILITY", "PENDING"),
            template("1203004005006017", "kitchen_tips", "en_US", "UTILITY", "APPROVED"),
        ];
        let mut config = test_config(&t.url);
        config.graph_url = graph.url.clone();
        let app = spawn_app_with(&t, config).await;
        let a = app.connect_with_waba(NUMBER_A, "15550100100", WABA_A).await;
        assert!(a["templates_synced_at"].is_string(), "synced on connect: {a}");
        let (status, list) = app.get(&format!("/api/v1/numbers/{}/templates", id(&a)), &app.admin_token).await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<&str> = list["templates"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["autumn_offer", "kitchen_tips", "visit_reminder"], "both pages: {list}");
        assert_eq!(list["templates"][0]["components"][0]["type"], "BODY");

        let hiroshi = app.create_lead("Hiroshi Tanaka", "+15550100155").await;
        let now = app.clock.now().timestamp();
        app.replay_body(&serde_json::from_slice(&text_payload("wamid.hiroshi.1", "15550100155", now - 60, "Hello")).unwrap()).await;
        let conv = app.chat_id_of(&hiroshi).await;
        let me = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].clone();
        let (status, _) = app.post(&format!("/api/v1/conversations/{conv}/assign"), &app.admin_token, json!({"assignee_id": me})).await;
        assert_eq!(status, StatusCode::OK);
        let send = |name: &'static str, language: &'static str| {
            let (app, conv) = (&app, &conv);
            async move {
                let body = json!({"type": "template", "template": {"name": name, "language": {"code": language}}});
                app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token, body).await
            }
        };
        let refused = |(status, body): (StatusCode, Value)| {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            error_code(&body).to_owned()
        };
        assert_eq!(refused(send("spring_offer", "en_US").await), "unknown_template");
        assert_eq!(refused(send("visit_reminder", "es").await), "template_not_approved");

        // Hiroshi stops marketing messages: the marketing template is refused, others go.
        app.replay("user-preferences-stop.json").await;
        assert_eq!(app.lead(&hiroshi).await["marketing_opt_out"], true);
        assert_eq!(refused(send("autumn_offer", "en_US").await), "marketing_opted_out");
        assert_eq!(send("kitchen_tips", "en_US").await.0, StatusCode::ACCEPTED);
        app.replay("user-preferences-resume.json").await;
        assert_eq!(app.lead(&hiroshi).await["marketing_opt_out"], false);
        app.replay("user-preferences-stop.json").await;
        assert_eq!(app.lead(&hiroshi).await["marketing_opt_out"], false, "an older stop never undoes a newer resume");
        assert_eq!(send("autumn_offer", "en-US").await.0, StatusCode::ACCEPTED);
        let sends = || graph.requests().iter().filter(|r| r.path.ends_with("/messages")).count();
        eventually("both templates sent", || async { (sends() == 2).then_some(()) }).await;

        // Meta pauses autumn_offer: refused without a Graph call; its quality drops.
        app.replay("template-status-paused.json").await;
        app.replay("template-quality-update.json").await;
        assert_eq!(refused(send("autumn_offer", "en_US").await), "template_not_approved");
        let (_, list) = app.get(&format!("/api/v1/numbers/{}/templates", id(&a)), &app.admin_token).await;
        assert_eq!(list["templates"][0]["status"], "PAUSED");
        assert_eq!(list["templates"][0]["quality"], "YELLOW");
        assert_eq!(sends(), 2, "no Graph call for a refused template");

        // An admin syncs again: Meta lists it approved.
        let (status, list) = app.post(&format!("/api/v1/numbers/{}/templates/sync", id(&a)), &app.admin_token, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["templates"][0]["status"], "APPROVED");
        let syncs = graph.requests().iter().filter(|r| r.path.ends_with("/message_templates")).count();
        assert_eq!(syncs, 4, "two pages on connect, two on sync");
        assert_eq!(app.failed_webhooks().await, 0);

        // A number without a WABA has nothing to sync.
        let b = app.connect_number(NUMBER_B, "15550100200", false).await;
        let (status, body) = app.post(&format!("/api/v1/numbers/{}/templates/sync", id(&b)), &app.admin_token, json!({})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "no_waba"));
    }

    async fn calls_become_activities_and_a_missed_one_alerts_only_the_assignee(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_A, "15550100100", false).await;
        let (agent, _) = app.member("agent@example.com", json!({})).await;
        let (watcher, _) = app.member("watcher@example.com", json!({"view_others_leads": true})).await;
        let (status, kwame) = app.post("/api/v1/leads", &app.admin_token,
            json!({"name": "Kwame Mensah", "phone": "+15550100133", "assignee_id": agent})).await;
        assert_eq!(status, StatusCode::CREATED);

        for f in ["call-connect-inbound.json", "call-terminate-missed.json", "call-terminate-completed.json",
                  "call-terminate-missed.json"] {
            app.replay(f).await;
        }
        let (_, timeline) = app.get(&format!("/api/v1/leads/{}/timeline?type=call", id(&kwame)), &app.admin_token).await;
        let calls = timeline["activities"].as_array().unwrap();
        assert_eq!(calls.len(), 2, "one activity per call: {timeline}");
        let missed = calls.iter().find(|c| c["data"]["missed"] == true).expect("the missed call");
        assert_eq!(missed["data"]["direction"], "in");
        assert!(missed["data"]["duration_secs"].is_null());
        let answered = calls.iter().find(|c| c["data"]["missed"] == false).expect("the answered call");
        assert_eq!(answered["data"]["duration_secs"], 95);
        assert_eq!(answered["data"]["status"], "COMPLETED");

        let alerted: Vec<Option<Uuid>> = on_db!(&app.db, |p| sqlx::query_scalar(
            "SELECT user_id FROM events WHERE type = 'call.missed'").fetch_all(p).await).unwrap();
        assert_eq!(alerted, [Some(agent)], "only the assignee, once");
        assert_ne!(agent, watcher);
        assert_eq!(app.failed_webhooks().await, 0);
    }

    async fn typing_shows_meta_the_indicator_with_the_read_receipt(t: TestDb) {
        let graph = FakeGraph::start().await;
        let mut config = test_config(&t.url);
        config.graph_url = graph.url.clone();
        let app = spawn_app_with(&t, config).await;
        app.connect_number(NUMBER_A, "15550100100", false).await;
        let priya = app.create_lead("Priya Raman", "+15550100111").await;
        let now = app.clock.now().timestamp();
        app.replay_body(&serde_json::from_slice(&text_payload("wamid.priya.1", "15550100111", now - 90, "First")).unwrap()).await;
        app.replay_body(&serde_json::from_slice(&text_payload("wamid.priya.2", "15550100111", now - 60, "Second")).unwrap()).await;
        let conv = app.chat_id_of(&priya).await;
        let (_, watcher) = app.member("watcher@example.com", json!({"view_others_leads": true, "view_unassigned": true})).await;
        let me = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].clone();
        app.post(&format!("/api/v1/conversations/{conv}/assign"), &app.admin_token, json!({"assignee_id": me})).await;

        let (status, body) = app.post(&format!("/api/v1/conversations/{conv}/typing"), &watcher, json!({})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "not_assignee"));
        let (status, _) = app.post(&format!("/api/v1/conversations/{conv}/typing"), &app.admin_token, json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let sent = eventually("the typing indicator reaches the Graph API", || async {
            graph.requests().into_iter().find(|r| r.body.get("typing_indicator").is_some())
        })
        .await;
        assert!(sent.path.ends_with(&format!("/{NUMBER_A}/messages")), "{}", sent.path);
        assert_eq!(sent.body["status"], "read");
        assert_eq!(sent.body["message_id"], "wamid.priya.2", "the newest inbound message");
        assert_eq!(sent.body["typing_indicator"], json!({"type": "text"}));

        // A reaction on her first message goes as Meta's reaction object, not as a quote.
        let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
        let first = page["messages"].as_array().unwrap().iter().find(|m| m["wamid"] == "wamid.priya.1").unwrap()["id"].clone();
        let (status, body) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token,
            json!({"type": "reaction", "reaction": {"message_id": first, "emoji": "👍"}})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["type"], "reaction");
        let reacted = eventually("the reaction reaches the Graph API", || async {
            graph.requests().into_iter().find(|r| r.body["type"] == "reaction")
        })
        .await;
        assert_eq!(reacted.body["reaction"], json!({"message_id": "wamid.priya.1", "emoji": "👍"}));
        assert!(reacted.body.get("context").is_none(), "{}", reacted.body);
    }

    async fn an_ad_click_makes_a_ctwa_lead_that_rules_route(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_A, "15550100100", true).await;
        let (ads, _) = app.member("ads@example.com", json!({})).await;
        let (status, body) = app.json(reqwest::Method::PUT, "/api/v1/assignment", &app.admin_token, Some(json!({
            "mode": "unassigned", "rules": [{"name": "Ad leads", "criteria": [{"field": "source", "op": "equals", "value": "ctwa_ad"}],
            "route": {"type": "member", "member_id": ads}}]}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        app.replay("referral-ctwa-status-video.json").await;
        let (_, found) = app.get("/api/v1/leads?q=rafael", &app.admin_token).await;
        let rafael = &found["leads"][0];
        assert_eq!(rafael["source"], "ctwa_ad", "{found}");
        assert_eq!(rafael["custom_fields"], json!({"ad_source_id": "120211000000007373",
            "ad_source_url": "https://fb.me/8pQx2exampleAd", "ad_headline": "Fitted kitchens, fast"}));
        assert_eq!(rafael["assignee_id"], json!(ads), "the rule routed the ad lead");
        let m = &app.messages_of(rafael).await[0];
        assert_eq!(m["content"]["referral"]["source_id"], "120211000000007373", "the whole referral stays on the message");

        // A known lead's later ad message does not change its source.
        let priya = app.create_lead("Priya Raman", "+15550100111").await;
        app.replay("referral-ctwa-ad.json").await;
        let priya_now = app.lead(&priya).await;
        assert!(priya_now["source"].is_null() || priya_now["source"] != "ctwa_ad", "{priya_now}");
    }

    async fn a_history_import_is_stored_once_quietly(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_A, "15550100100", true).await;
        // Were these leads news, the admin would get them.
        let me = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].clone();
        let (status, body) = app.json(reqwest::Method::PUT, "/api/v1/assignment", &app.admin_token,
            Some(json!({"mode": "round_robin", "members": [{"member_id": me, "enabled": true}]}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // Five customers, a hundred past messages each, half of them ours.
        let threads: Vec<Value> = (0..5).map(|c| {
            let phone = format!("155502003{c:02}");
            let messages: Vec<Value> = (0..100).map(|i| {
                let ts = (1_789_000_000 + c * 1000 + i).to_string();
                if i % 2 == 0 {
                    json!({"from": phone, "id": format!("wamid.history.{c}.{i}"), "timestamp": ts, "type": "text",
                           "text": {"body": format!("question {i}")}, "history_context": {"status": "READ"}})
                } else {
                    json!({"from": "15550100100", "to": phone, "id": format!("wamid.history.{c}.{i}"), "timestamp": ts,
                           "type": "text", "text": {"body": format!("answer {i}")}, "history_context": {"status": "DELIVERED"}})
                }
            }).collect();
            json!({"id": phone, "context": {"wa_id": phone}, "messages": messages})
        }).collect();
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": WABA_A, "changes": [{"field": "history",
            "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550100100", "phone_number_id": NUMBER_A},
            "history": [{"metadata": {"phase": 1, "chunk_order": 1, "progress": 100}, "threads": threads}]}}]}]});
        app.replay_body(&body).await;
        app.replay_body(&body).await;
        assert_eq!(app.count("SELECT COUNT(*) FROM messages WHERE wamid LIKE 'wamid.history.%'").await, 500);
        assert_eq!(app.count("SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status = 'delivered'").await, 250);
        assert_eq!(app.count("SELECT COUNT(*) FROM leads").await, 5);
        assert_eq!(app.count("SELECT COUNT(*) FROM leads WHERE assignee_id IS NOT NULL").await, 0, "no assignment");
        assert_eq!(app.events_of("assignment.alert").await, 0, "no alert");
        let (_, convs) = app.get("/api/v1/conversations", &app.admin_token).await;
        let convs = convs["conversations"].as_array().unwrap();
        assert_eq!(convs.len(), 5);
        assert!(convs.iter().all(|c| c["unread_count"] == 0 && c["window_expires_at"].is_null()), "{convs:?}");

        // Meta's own chunk: Grace's thread (her text, our reply, her photo) and ours to Mateo.
        app.replay("history-chunk.json").await;
        app.replay("history-media.json").await;
        app.replay("history-declined.json").await;
        let (_, found) = app.get("/api/v1/leads?q=15550100210", &app.admin_token).await;
        assert_eq!(found["leads"].as_array().unwrap().len(), 1, "{found}");
        assert_eq!(app.messages_of(&found["leads"][0]).await.len(), 3);
        assert_eq!(app.count("SELECT COUNT(*) FROM leads WHERE assignee_id IS NOT NULL").await, 0);
        assert_eq!(app.failed_webhooks().await, 0);
    }

    async fn the_business_address_book_creates_and_renames_leads(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_A, "15550100100", true).await;
        let lena = app.create_lead("Lena Vogel", "+15550100144").await;
        let mateo = app.create_lead("Mateo Rossi", "+15550100232").await;
        app.replay("smb-app-state-sync.json").await;
        assert_eq!(app.lead(&lena).await["name"], "Lena Vogel (Berlin flat)");
        assert_eq!(app.lead(&mateo).await["name"], "Mateo Rossi", "a removal never deletes a lead");
        let (_, found) = app.get("/api/v1/leads?q=grace", &app.admin_token).await;
        assert_eq!(found["leads"][0]["name"], "Grace Okafor", "{found}");
        assert_eq!(found["leads"][0]["phone"], "15550100210");
        assert_eq!(app.count("SELECT COUNT(*) FROM leads").await, 3);
        app.replay("smb-app-state-sync.json").await;
        assert_eq!(app.count("SELECT COUNT(*) FROM leads").await, 3, "a redelivery changes nothing");
        assert_eq!(app.failed_webhooks().await, 0);
    }
}
