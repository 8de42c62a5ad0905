//! Lead distribution: rules forwarding new leads (intake, the API, CSV rows, WhatsApp
//! auto-import) by app (into the recipient's own workspace), by email (real SMTP) and by
//! WhatsApp (a template through the outbox, against a fake Graph API), broadcast and round
//! robin, several rules at once, not keeping a copy, a recipient who signs up later (by
//! invitation or as a new workspace's admin), and the history following each delivery.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::workspace::bootstrap;

use crate::on_both;
use crate::outbox::FakeGraph;
use crate::smtp_sink::{SmtpSink, down_address};
use crate::support::*;

async fn put_rules(app: &TestApp, settings: Value) -> Value {
    let (status, body) = app.json(Method::PUT, "/api/v1/distribution", &app.admin_token, Some(settings)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn intake_key(app: &TestApp) -> String {
    let (status, body) =
        app.post("/api/v1/api-keys", &app.admin_token, json!({"name": "Form", "scopes": ["leads:write"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

async fn send_lead(app: &TestApp, key: &str, name: &str, phone: &str, source: &str) -> Value {
    let (status, lead) =
        app.post("/api/v1/intake/leads", key, json!({"name": name, "phone": phone, "source": source})).await;
    assert_eq!(status, StatusCode::CREATED, "{lead}");
    lead
}

async fn history(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get("/api/v1/distribution/history?limit=200", &app.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["entries"].as_array().unwrap().clone()
}

/// Another workspace on this server with its admin; returns the admin's (id, token).
async fn other_workspace(app: &TestApp, t: &TestDb, name: &str, email: &str) -> (String, String) {
    bootstrap(&t.db, &app.clock, name, email, PASSWORD, Some(name)).await.expect("bootstrap");
    let login = app.login(email, PASSWORD).await;
    (login["user"]["id"].as_str().unwrap().to_owned(), login["token"].as_str().unwrap().to_owned())
}

fn mail_config(t: &TestDb, sink: &SmtpSink) -> switchboard::config::Config {
    let mut c = test_config(&t.url);
    c.smtp_url = Some(sink.url());
    c
}

on_both! {
    async fn broadcast_reaches_three_recipients_by_app_and_email(t: TestDb) {
        let sink = SmtpSink::start().await;
        let app = spawn_app_with(&t, mail_config(&t, &sink)).await;
        let mut recipients = Vec::new();
        for (ws, email) in [("Beta", "bea@beta.test"), ("Gamma", "gus@gamma.test"), ("Delta", "dee@delta.test")] {
            let (id, token) = other_workspace(&app, &t, ws, email).await;
            recipients.push((email, id, token));
        }
        put_rules(&app, json!({"keep_copy": true, "rules": [{
            "name": "Everyone", "criteria": [], "mode": "broadcast",
            "recipients": recipients.iter().map(|(e, _, _)| json!({"email": e, "channels": ["app", "email"]})).collect::<Vec<_>>()
        }]})).await;
        let key = intake_key(&app).await;
        let lead = send_lead(&app, &key, "Ann Lee", "+44 20 7946 0001", "website").await;

        // Three mails, each with the lead and who sent it.
        let mails = eventually("three mails", || async {
            let m = sink.mails();
            (m.len() >= 3).then_some(m)
        })
        .await;
        assert_eq!(mails.len(), 3);
        for (email, _, _) in &recipients {
            let mail = mails.iter().find(|m| m.to == [email.to_string()]).unwrap_or_else(|| panic!("a mail to {email}"));
            let text = mail.text();
            assert!(text.contains("This lead was sent to you by Ada Admin at Acme."), "{text}");
            assert!(text.contains("Ann Lee") && text.contains("+442079460001") && text.contains("website"), "{text}");
        }
        // Each recipient has it in their own workspace, assigned to them.
        for (email, id, token) in &recipients {
            let (status, list) = app.get("/api/v1/leads", token).await;
            assert_eq!(status, StatusCode::OK);
            let leads = list["leads"].as_array().unwrap();
            assert_eq!(leads.len(), 1, "{email}: {list}");
            assert_eq!(leads[0]["phone"], "442079460001");
            assert_eq!(leads[0]["assignee_id"], id.as_str());
            assert_eq!(leads[0]["custom_fields"]["sent_by"], "Ada Admin at Acme");
            assert_ne!(leads[0]["id"], lead["id"]);
        }
        // The sender keeps its copy; the history has one entry per recipient, all sent.
        let (status, _) = app.get(&format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()), &app.admin_token).await;
        assert_eq!(status, StatusCode::OK);
        let entries = eventually("every delivery sent", || async {
            let h = history(&app).await;
            h.iter().all(|e| e["status"] == "sent").then_some(h)
        })
        .await;
        assert_eq!(entries.len(), 3);
        for e in &entries {
            assert_eq!(e["rule"], "Everyone");
            assert_eq!(e["lead"], json!({"name": "Ann Lee", "phone": "442079460001", "source": "website"}));
            assert_eq!(e["channels"], json!(["app", "email"]));
        }
    }

    async fn round_robin_two_per_round_in_order_across_a_restart(t: TestDb) {
        let mut app = spawn_app(&t).await;
        let people = ["r1@x.test", "r2@x.test", "r3@x.test"];
        put_rules(&app, json!({"rules": [{
            "name": "Turns", "mode": "round_robin",
            "recipients": people.iter().map(|e| json!({"email": e, "channels": ["email"], "leads_per_round": 2})).collect::<Vec<_>>()
        }]})).await;
        let key = intake_key(&app).await;
        for i in 0..4 {
            send_lead(&app, &key, &format!("Lead {i}"), &format!("+4420794600{i:02}"), "web").await;
        }
        app.stop().await;
        let app = spawn_app(&t).await;
        for i in 4..8 {
            send_lead(&app, &key, &format!("Lead {i}"), &format!("+4420794600{i:02}"), "web").await;
        }
        let mut entries = history(&app).await;
        entries.reverse();
        let order: Vec<&str> = entries.iter().map(|e| e["recipient_email"].as_str().unwrap()).collect();
        assert_eq!(order, ["r1@x.test", "r1@x.test", "r2@x.test", "r2@x.test", "r3@x.test", "r3@x.test", "r1@x.test", "r1@x.test"]);
        // No SMTP here: the email deliveries say why they failed.
        assert_eq!(entries[0]["status"], "failed");
        assert!(entries[0]["deliveries"][0]["reason"].as_str().unwrap().contains("SMTP"));
    }

    async fn fifty_leads_at_once_over_two_nodes_split_exactly(t: TestDb) {
        let node1 = spawn_app(&t).await;
        let node2 = spawn_app(&t).await; // a second server on the same database
        let people = ["r1@x.test", "r2@x.test", "r3@x.test"];
        put_rules(&node1, json!({"rules": [{
            "name": "Turns", "mode": "round_robin",
            "recipients": people.iter().map(|e| json!({"email": e, "channels": ["email"], "leads_per_round": 2})).collect::<Vec<_>>()
        }]})).await;
        let key = intake_key(&node1).await;
        // Half through intake, half through POST /leads, on both nodes.
        let sends = (0..50).map(|i| {
            let node = if i % 2 == 0 { &node1 } else { &node2 };
            let (path, token) = if i % 4 < 2 {
                ("/api/v1/intake/leads", key.clone())
            } else {
                ("/api/v1/leads", node1.admin_token.clone())
            };
            async move {
                let body = json!({"name": format!("Lead {i}"), "phone": format!("+44207946{i:04}")});
                node.post(path, &token, body).await
            }
        });
        for (status, body) in futures_util::future::join_all(sends).await {
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let entries = history(&node1).await;
        assert_eq!(entries.len(), 50);
        let count = |who: &str| entries.iter().filter(|e| e["recipient_email"] == who).count();
        // 8 whole rounds of 2 + 2 + 2, then the next two to r1.
        assert_eq!((count("r1@x.test"), count("r2@x.test"), count("r3@x.test")), (18, 16, 16));
    }

    async fn every_matching_rule_applies(t: TestDb) {
        let app = spawn_app(&t).await;
        put_rules(&app, json!({"rules": [
            {"name": "Web leads", "criteria": [{"field": "source", "op": "equals", "value": "web"}],
             "mode": "broadcast", "recipients": [{"email": "web@x.test", "channels": ["email"]}]},
            {"name": "All leads", "mode": "broadcast", "recipients": [{"email": "all@x.test", "channels": ["email"]}]}
        ]})).await;
        let key = intake_key(&app).await;
        send_lead(&app, &key, "Ann", "+442079460001", "web").await;
        let h = history(&app).await;
        let mut got: Vec<(String, String)> =
            h.iter().map(|e| (e["rule"].as_str().unwrap().to_owned(), e["recipient_email"].as_str().unwrap().to_owned())).collect();
        got.sort();
        assert_eq!(got, [("All leads".to_owned(), "all@x.test".to_owned()), ("Web leads".to_owned(), "web@x.test".to_owned())]);
        send_lead(&app, &key, "Ben", "+442079460002", "fair").await;
        let h = history(&app).await;
        assert_eq!(h.len(), 3);
        assert_eq!(h[0]["rule"], "All leads");
        assert_eq!(h[0]["lead"]["name"], "Ben");
    }

    async fn without_keeping_a_copy_the_lead_leaves_the_workspace(t: TestDb) {
        let app = spawn_app(&t).await;
        let (bea, bea_token) = other_workspace(&app, &t, "Beta", "bea@beta.test").await;
        put_rules(&app, json!({"keep_copy": false, "rules": [
            {"name": "Partner", "criteria": [{"field": "source", "op": "equals", "value": "partner"}],
             "mode": "broadcast", "recipients": [{"email": "bea@beta.test", "channels": ["app"]}]}
        ]})).await;
        let key = intake_key(&app).await;
        let sent = send_lead(&app, &key, "Ann", "+442079460001", "partner").await;
        let (status, _) = app.get(&format!("/api/v1/leads/{}", sent["id"].as_str().unwrap()), &app.admin_token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not kept by the sender");
        let (_, theirs) = app.get("/api/v1/leads", &bea_token).await;
        assert_eq!(theirs["leads"][0]["assignee_id"], bea.as_str());
        let h = history(&app).await;
        assert_eq!(h.len(), 1, "the history stays");
        assert_eq!(h[0]["status"], "sent");
        // A lead no rule takes stays.
        let kept = send_lead(&app, &key, "Ben", "+442079460002", "web").await;
        let (status, _) = app.get(&format!("/api/v1/leads/{}", kept["id"].as_str().unwrap()), &app.admin_token).await;
        assert_eq!(status, StatusCode::OK);
    }

    async fn a_recipient_without_an_account_gets_the_lead_on_sign_up(t: TestDb) {
        let app = spawn_app(&t).await;
        put_rules(&app, json!({"rules": [{"name": "Client", "mode": "broadcast",
            "recipients": [{"email": "Carol@Client.test", "channels": ["app"]}]}]})).await;
        let key = intake_key(&app).await;
        send_lead(&app, &key, "Ann", "+442079460001", "web").await;
        let h = history(&app).await;
        assert_eq!(h[0]["recipient_email"], "carol@client.test");
        assert_eq!(h[0]["status"], "queued", "{h:?}");

        // Carol joins her company's workspace: the lead is waiting for her there.
        let (_, dan_token) = other_workspace(&app, &t, "Client", "dan@client.test").await;
        let (status, inv) = app.post("/api/v1/invitations", &dan_token, json!({"email": "carol@client.test"})).await;
        assert_eq!(status, StatusCode::CREATED, "{inv}");
        let (status, session) = app
            .post("/api/v1/invitations/accept", "", json!({"accept_token": inv["accept_token"], "password": PASSWORD}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        let carol_token = session["token"].as_str().unwrap();
        let (_, list) = app.get("/api/v1/leads", carol_token).await;
        assert_eq!(list["leads"].as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list["leads"][0]["assignee_id"], session["user"]["id"]);
        assert_eq!(history(&app).await[0]["status"], "sent");
    }

    async fn bad_rules_are_refused_by_name(t: TestDb) {
        let app = spawn_app(&t).await;
        let rule = |recipient: Value| json!({"rules": [{"name": "R", "mode": "broadcast", "recipients": [recipient]}]});
        for (body, needle) in [
            (rule(json!({"email": "not-an-email", "channels": ["app"]})), "rules[0].recipients[0].email"),
            (rule(json!({"email": "a@x.test", "channels": []})), "rules[0].recipients[0].channels"),
            (rule(json!({"email": "a@x.test", "channels": ["app"], "leads_per_round": 11})), "leads_per_round"),
            (rule(json!({"email": "a@x.test", "channels": ["whatsapp"], "whatsapp_phone": "+15550100177"})), "whatsapp_template"),
            (rule(json!({"email": "a@x.test", "channels": ["whatsapp"], "whatsapp_template": {"name": "t", "language": "en"}})), "whatsapp_phone"),
            (rule(json!({"email": "a@x.test", "channels": ["whatsapp"], "whatsapp_phone": "12",
                         "whatsapp_template": {"name": "t", "language": "en"}})), "whatsapp_phone"),
            (rule(json!({"email": "a@x.test", "channels": ["whatsapp"], "whatsapp_phone": "+15550100177",
                         "whatsapp_template": {"name": "t", "language": "en"}})), "connected number"),
            (rule(json!({"email": "a@x.test", "channels": ["pigeon"]})), "pigeon"),
            (json!({"rules": [{"name": "R", "mode": "sometimes", "recipients": []}]}), "sometimes"),
        ] {
            let (status, answer) = app.json(Method::PUT, "/api/v1/distribution", &app.admin_token, Some(body.clone())).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
            assert!(answer["error"]["message"].as_str().unwrap().contains(needle), "{needle}: {answer}");
        }
        let (status, settings) = app.get("/api/v1/distribution", &app.admin_token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(settings, json!({"keep_copy": true, "rules": []}));
    }
}

const NUMBER: &str = "100200300400600";
const WABA: &str = "100200300400500";

fn template(name: &str, status: &str, body: &str) -> Value {
    json!({"id": format!("id-{name}"), "name": name, "language": "en_US", "category": "UTILITY", "status": status,
           "components": [{"type": "BODY", "text": body}]})
}

async fn connect_with_waba(app: &TestApp, auto_import: bool) -> Value {
    let (status, body) = app
        .post(
            "/api/v1/numbers",
            &app.admin_token,
            json!({"phone_number_id": NUMBER, "display_phone_number": "15550100100",
            "waba_id": WABA, "access_token": "EAAG-test-token", "auto_import_contacts": auto_import}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn failed_status(wamid: &str, ts: i64, code: i64, title: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100100", "phone_number_id": NUMBER},
        "statuses": [{"id": wamid, "status": "failed", "timestamp": ts.to_string(), "recipient_id": "15550100177",
                      "errors": [{"code": code, "title": title}]}]}}]}]}))
    .unwrap()
}

/// The history entry for `email`, once `ready` holds for it.
async fn entry_for(app: &TestApp, email: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    eventually(what, || async { history(app).await.into_iter().find(|e| e["recipient_email"] == email && ready(e)) })
        .await
}

on_both! {
    async fn whatsapp_sends_the_template_through_the_outbox_and_the_history_follows_it(t: TestDb) {
        let graph = FakeGraph::start().await;
        *graph.templates.lock().unwrap() = vec![
            template("new_lead", "APPROVED", "New lead {{1}} ({{2}}) from {{3}}, sent by {{4}}."),
            template("draft_lead", "PENDING", "Lead {{1}}"),
        ];
        let mut config = test_config(&t.url);
        config.graph_url = graph.url.clone();
        let app = spawn_app_with(&t, config).await;
        let whatsapp = |email: &str, phone: &str, template: &str| json!({"email": email, "channels": ["whatsapp"],
            "whatsapp_phone": phone, "whatsapp_template": {"name": template, "language": "en-US"}});
        let settings = json!({"rules": [{"name": "Partners", "mode": "broadcast", "recipients": [
            whatsapp("wa@partner.test", "+1 555 010 0177", "new_lead"),
            whatsapp("draft@partner.test", "+15550100178", "draft_lead")]}]});

        // No number to send from: refused when saved.
        let (status, body) = app.json(Method::PUT, "/api/v1/distribution", &app.admin_token, Some(settings.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_code(&body), "no_number");
        connect_with_waba(&app, false).await;
        let saved = put_rules(&app, settings).await;
        let first = &saved["rules"][0]["recipients"][0];
        assert_eq!(first["whatsapp_phone"], "15550100177");
        assert_eq!(first["whatsapp_template"], json!({"name": "new_lead", "language": "en_US"}));

        // Sends are held: the delivery is queued until Meta answers.
        let mut held = graph.hold_sends();
        let key = intake_key(&app).await;
        send_lead(&app, &key, "Ann Lee", "+44 20 7946 0001", "website").await;
        let (wamid, go) = held.recv().await.expect("a send reaches the Graph API");
        let queued = entry_for(&app, "wa@partner.test", "the entry", |_| true).await;
        assert_eq!(queued["status"], "queued", "{queued}");
        assert_eq!(queued["deliveries"], json!([{"channel": "whatsapp", "status": "queued"}]));
        go.send(()).unwrap();
        let sent = entry_for(&app, "wa@partner.test", "sent", |e| e["status"] == "sent").await;
        assert_eq!(sent["channels"], json!(["whatsapp"]));

        // Exactly the template Meta expects, its variables the lead's details.
        let sends: Vec<_> = graph.requests().into_iter().filter(|r| r.path.ends_with("/messages")).collect();
        assert_eq!(sends.len(), 1, "the unapproved template is never sent: {sends:?}");
        assert_eq!(sends[0].path, format!("/v23.0/{NUMBER}/messages"));
        let body = &sends[0].body;
        assert_eq!(body["to"], "15550100177");
        assert_eq!(body["type"], "template");
        assert_eq!(body["template"]["name"], "new_lead");
        assert_eq!(body["template"]["language"]["code"], "en_US");
        let texts: Vec<&str> = body["template"]["components"][0]["parameters"].as_array().unwrap()
            .iter().map(|p| p["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["Ann Lee", "+442079460001", "website", "Ada Admin at Acme"]);

        // The template Meta would refuse failed at once, with the reason.
        let draft = entry_for(&app, "draft@partner.test", "the draft entry", |_| true).await;
        assert_eq!(draft["status"], "failed");
        assert!(draft["deliveries"][0]["reason"].as_str().unwrap().contains("not APPROVED"), "{draft}");

        // The chat with the recipient is in the sender's inbox, showing what they read.
        let (_, list) = app.get("/api/v1/leads?q=wa%40partner", &app.admin_token).await;
        assert_eq!(list["leads"][0]["phone"], "15550100177", "{list}");
        let lead_id = list["leads"][0]["id"].as_str().unwrap();
        let (_, convs) = app.get(&format!("/api/v1/conversations?lead_id={lead_id}"), &app.admin_token).await;
        let conv = convs["conversations"][0]["id"].as_str().unwrap();
        let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
        let message = &page["messages"][0];
        assert_eq!(message["type"], "template");
        assert_eq!(message["text"], "New lead Ann Lee (+442079460001) from website, sent by Ada Admin at Acme.");
        assert_eq!(message["wamid"], wamid.as_str());

        // Meta reports it undeliverable later: the history says so, with Meta's reason.
        let now = app.clock.now().timestamp();
        assert_eq!(app.signed_webhook(&failed_status(&wamid, now, 131026, "Message undeliverable")).await, StatusCode::OK);
        app.webhooks_processed().await;
        let failed = entry_for(&app, "wa@partner.test", "failed", |e| e["status"] == "failed").await;
        assert_eq!(failed["deliveries"][0]["reason"], "Message undeliverable (131026)");
    }

    async fn every_new_lead_is_distributed_then_assigned(t: TestDb) {
        let app = spawn_app(&t).await;
        let (bo, _) = app.member("bo@example.com", json!({})).await;
        let (status, body) = app.json(Method::PUT, "/api/v1/assignment", &app.admin_token, Some(json!({
            "mode": "unassigned", "rules": [{"name": "Everyone to Bo", "criteria": [], "route": {"type": "member", "member_id": bo}}]
        }))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let people = ["r1@x.test", "r2@x.test", "r3@x.test"];
        put_rules(&app, json!({"keep_copy": false, "rules": [{"name": "Turns", "mode": "round_robin",
            "recipients": people.iter().map(|e| json!({"email": e, "channels": ["email"]})).collect::<Vec<_>>()}]})).await;

        // POST /leads: distributed, not kept.
        let (status, by_hand) =
            app.post("/api/v1/leads", &app.admin_token, json!({"name": "By Hand", "phone": "+442079460001"})).await;
        assert_eq!(status, StatusCode::CREATED, "{by_hand}");
        let (status, _) = app.get(&format!("/api/v1/leads/{}", by_hand["id"].as_str().unwrap()), &app.admin_token).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // A CSV import: one decision per row, in file order.
        let resp = app.client.post(app.url("/api/v1/leads/import")).bearer_auth(&app.admin_token)
            .header("content-type", "text/csv")
            .body("name,phone\nRow One,+442079460002\nRow Two,+442079460003\n")
            .send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let report: Value = resp.json().await.unwrap();
        assert_eq!(report["created"], 2, "{report}");

        // A WhatsApp contact auto-imported: distributed, but kept (its chat is here) and assigned.
        app.connect_number(NUMBER, "15550100100", true).await;
        let now = app.clock.now().timestamp();
        let body = crate::webhooks::text_payload("wamid.in.auto", "15550100199", now - 5, "Hi, I saw your ad");
        assert_eq!(app.signed_webhook(&body).await, StatusCode::OK);
        app.webhooks_processed().await;

        let mut entries = history(&app).await;
        entries.reverse();
        let got: Vec<(&str, &str)> = entries.iter()
            .map(|e| (e["lead"]["name"].as_str().unwrap(), e["recipient_email"].as_str().unwrap())).collect();
        assert_eq!(got, [("By Hand", "r1@x.test"), ("Row One", "r2@x.test"), ("Row Two", "r3@x.test"),
                         ("Test Contact", "r1@x.test")]);
        let (_, list) = app.get("/api/v1/leads", &app.admin_token).await;
        let leads = list["leads"].as_array().unwrap();
        assert_eq!(leads.len(), 1, "only the chat's lead stays: {list}");
        assert_eq!(leads[0]["phone"], "15550100199");
        assert_eq!(leads[0]["assignee_id"], bo.to_string(), "assigned after distribution");
    }

    async fn a_recipient_gets_the_lead_when_their_workspace_is_created(t: TestDb) {
        let app = spawn_app(&t).await;
        put_rules(&app, json!({"rules": [{"name": "Client", "mode": "broadcast",
            "recipients": [{"email": "owner@newco.test", "channels": ["app"]}]}]})).await;
        let key = intake_key(&app).await;
        send_lead(&app, &key, "Ann", "+442079460001", "web").await;
        assert_eq!(history(&app).await[0]["status"], "queued");

        // A new workspace's admin (as `switchboard bootstrap` makes them) with that email.
        let (owner, token) = other_workspace(&app, &t, "NewCo", "owner@newco.test").await;
        let list = eventually("the lead arrives in the new workspace", || async {
            let (_, list) = app.get("/api/v1/leads", &token).await;
            (list["leads"].as_array().is_some_and(|l| !l.is_empty())).then_some(list)
        })
        .await;
        assert_eq!(list["leads"].as_array().unwrap().len(), 1, "once: {list}");
        assert_eq!(list["leads"][0]["assignee_id"], owner.as_str());
        assert_eq!(list["leads"][0]["custom_fields"]["sent_by"], "Ada Admin at Acme");
        let entry = eventually("sent", || async {
            let h = history(&app).await;
            (h[0]["status"] == "sent").then_some(h)
        })
        .await;
        assert_eq!(entry.len(), 1);
    }

    async fn a_distributed_mail_waits_for_smtp_and_goes_once(t: TestDb) {
        let addr = down_address().await;
        let mut config = test_config(&t.url);
        config.smtp_url = Some(format!("smtp://{addr}"));
        let app = spawn_app_with(&t, config).await;
        put_rules(&app, json!({"rules": [{"name": "Mail", "mode": "broadcast",
            "recipients": [{"email": "bea@beta.test", "channels": ["email"]}]}]})).await;
        let key = intake_key(&app).await;
        send_lead(&app, &key, "Ann Lee", "+442079460001", "web").await;

        // SMTP is down: the delivery stays queued, with the last error as its reason.
        let waiting = entry_for(&app, "bea@beta.test", "a failed try", |e| e["deliveries"][0]["reason"].is_string()).await;
        assert_eq!(waiting["status"], "queued", "{waiting}");

        let sink = SmtpSink::start_on(addr).await;
        app.clock.advance(chrono::Duration::hours(2));
        entry_for(&app, "bea@beta.test", "sent", |e| e["status"] == "sent").await;
        let mails = sink.mails();
        assert_eq!(mails.len(), 1, "sent once");
        assert!(mails[0].text().contains("This lead was sent to you by Ada Admin at Acme."));
        app.clock.advance(chrono::Duration::hours(2));
        send_lead(&app, &key, "Ben", "+442079460002", "web").await;
        eventually("the second mail", || async { (sink.mails().len() == 2).then_some(()) }).await;
        assert_eq!(sink.mails().iter().filter(|m| m.text().contains("Ann Lee")).count(), 1);
    }
}
