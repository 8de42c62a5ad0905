//! Lead distribution: rules forwarding intake leads by app (into the recipient's own
//! workspace) and by email (real SMTP), broadcast and round robin, several rules at once,
//! not keeping a copy, a recipient who signs up later, and the history.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::workspace::bootstrap;

use crate::on_both;
use crate::smtp_sink::SmtpSink;
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
        let sends = (0..50).map(|i| {
            let node = if i % 2 == 0 { &node1 } else { &node2 };
            let key = key.clone();
            async move {
                let body = json!({"name": format!("Lead {i}"), "phone": format!("+44207946{i:04}")});
                node.post("/api/v1/intake/leads", &key, body).await
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
            (rule(json!({"email": "a@x.test", "channels": ["whatsapp"], "whatsapp_phone": "+15550001"})), "whatsapp"),
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
