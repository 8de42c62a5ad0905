//! Email over real SMTP: invitations mailed with their accept link, a server that is down
//! and then up again (the mail goes once), a restart that loses nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard::on_db;

use crate::on_both;
use crate::smtp_sink::{Received, SmtpSink, down_address};
use crate::support::*;

const PUBLIC_URL: &str = "https://inbox.example.test";

fn mail_config(t: &TestDb, smtp_url: &str) -> switchboard::config::Config {
    let mut c = test_config(&t.url);
    c.smtp_url = Some(smtp_url.to_owned());
    c.mail_from = "Acme Inbox <inbox@example.test>".to_owned();
    c.public_url = PUBLIC_URL.to_owned();
    c
}

async fn invite(app: &TestApp, email: &str) -> Value {
    let (status, body) = app.post("/api/v1/invitations", &app.admin_token, json!({"email": email, "name": "Bo"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// (state, attempts, last_error) of every queued mail, oldest first.
async fn queue(app: &TestApp) -> Vec<(String, i64, Option<String>)> {
    on_db!(&app.db, |p| sqlx::query_as("SELECT state, attempts, last_error FROM mail_queue ORDER BY created_at, id")
        .fetch_all(p)
        .await)
    .unwrap()
}

async fn mails_to(sink: &SmtpSink, to: &str, n: usize) -> Vec<Received> {
    eventually(&format!("{n} mail(s) to {to}"), || async {
        let got: Vec<Received> = sink.mails().into_iter().filter(|m| m.to == [to]).collect();
        (got.len() >= n).then_some(got)
    })
    .await
}

on_both! {
    async fn an_invitation_is_mailed_with_its_accept_link(t: TestDb) {
        let sink = SmtpSink::start().await;
        let app = spawn_app_with(&t, mail_config(&t, &sink.url())).await;
        let answer = invite(&app, "bo@example.com").await;
        let token = answer["accept_token"].as_str().expect("the inviter still gets the token");

        let mail = mails_to(&sink, "bo@example.com", 1).await.remove(0);
        assert_eq!(mail.from, "inbox@example.test");
        let text = mail.text();
        assert!(text.contains("Subject: You're invited to Acme"), "{text}");
        assert!(text.contains("Ada Admin invited you to join Acme"), "{text}");
        assert!(text.contains(&format!("{PUBLIC_URL}/#/accept/{token}")), "the accept link: {text}");
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(text.contains("text/plain") && text.contains("text/html"), "text and HTML bodies: {text}");
        assert!(!text.contains("correct horse"), "no secret in the mail");
        let sent = eventually("the mail is marked sent", || async {
            let q = queue(&app).await;
            (q.len() == 1 && q[0].0 == "sent").then_some(q)
        })
        .await;
        assert_eq!(sent[0].1, 1, "one attempt");

        // The link's token is the one that works.
        let (status, body) = app
            .post("/api/v1/invitations/accept", "", json!({"accept_token": token, "password": PASSWORD}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        // A resend mails the new token.
        let again = invite(&app, "cy@example.com").await;
        let id = again["id"].as_str().unwrap();
        let (status, resent) = app.post(&format!("/api/v1/invitations/{id}/resend"), &app.admin_token, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{resent}");
        let two = mails_to(&sink, "cy@example.com", 2).await;
        assert!(two[1].text().contains(resent["accept_token"].as_str().unwrap()));
    }

    async fn without_smtp_nothing_is_queued(t: TestDb) {
        let app = spawn_app(&t).await;
        let answer = invite(&app, "bo@example.com").await;
        assert!(answer["accept_token"].is_string());
        assert!(queue(&app).await.is_empty());
    }

    async fn smtp_down_then_up_sends_the_mail_once(t: TestDb) {
        let addr = down_address().await;
        let app = spawn_app_with(&t, mail_config(&t, &format!("smtp://{addr}"))).await;
        invite(&app, "bo@example.com").await;

        // Refused, kept, tried again with backoff.
        let q = eventually("the mail was tried twice", || async {
            let q = queue(&app).await;
            (q.len() == 1 && q[0].1 >= 2).then_some(q)
        })
        .await;
        assert_eq!(q[0].0, "pending", "a refused connection is retried, not failed");
        assert!(q[0].2.as_deref().is_some_and(|e| !e.is_empty()), "the reason is kept: {q:?}");

        // The server comes up; the next try (brought forward) delivers.
        let sink = SmtpSink::start_on(addr).await;
        app.clock.advance(chrono::Duration::hours(2));
        eventually("the mail is sent", || async { (queue(&app).await[0].0 == "sent").then_some(()) }).await;
        assert_eq!(sink.mails().len(), 1, "sent exactly once");
        // Time passes; nothing goes again.
        app.clock.advance(chrono::Duration::hours(2));
        invite(&app, "cy@example.com").await;
        mails_to(&sink, "cy@example.com", 1).await;
        assert_eq!(sink.mails().iter().filter(|m| m.to == ["bo@example.com"]).count(), 1);
    }

    async fn a_restart_loses_no_mail(t: TestDb) {
        let addr = down_address().await;
        let config = mail_config(&t, &format!("smtp://{addr}"));
        let mut first = spawn_app_with(&t, config.clone()).await;
        invite(&first, "bo@example.com").await;
        eventually("the mail was tried", || async { (queue(&first).await[0].1 >= 1).then_some(()) }).await;
        first.stop().await;

        let sink = SmtpSink::start_on(addr).await;
        let second = spawn_app_with(&t, config).await;
        second.clock.advance(chrono::Duration::hours(2));
        let mail = mails_to(&sink, "bo@example.com", 1).await.remove(0);
        assert!(mail.text().contains("/#/accept/sb_"), "{}", mail.text());
        eventually("the mail is sent", || async { (queue(&second).await[0].0 == "sent").then_some(()) }).await;
        assert_eq!(sink.mails().len(), 1);
    }
}
