//! The chat shows what a sender did to a message after sending it, live: edited (with the
//! older text on demand) and deleted (struck through, still readable). Real Chromium, as in
//! `browser.rs`.

use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::json;

use crate::browser::{NUMBER_ID, browser, lead_for, say};
use crate::support::*;
use crate::webhooks::fixture;

#[tokio::test]
async fn an_edited_then_deleted_message_updates_live() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    app.connect_number(NUMBER_ID, "15550100100", false).await;
    lead_for(&app, "Priya Raman", "+15550100111", None).await;
    assert_eq!(app.signed_webhook(&fixture("text.json")).await, StatusCode::OK);
    app.webhooks_processed().await;
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.wait_listed("Priya Raman").await;
    b.c.find(Locator::XPath("//a[contains(@class,'conv')][.//span[text()='Priya Raman']]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_text(".msg.in", "a kitchen refit in October?").await;

    // Priya edits it while the chat is open: the new text, marked, without a reload.
    assert_eq!(app.signed_webhook(&fixture("edit-text.json")).await, StatusCode::OK);
    b.wait_text(".msg.in", "in October or early November?").await;
    let edited = b.c.find(Locator::XPath("//summary[text()='Edited']")).await.expect("an Edited mark");
    edited.click().await.unwrap();
    b.until(
        "the older text on demand",
        "return [...document.querySelectorAll('details[open] li')].some(li => li.textContent.endsWith('a kitchen refit in October?'))",
    )
    .await;

    // Then deletes it for everyone: still readable here, struck through, and said so.
    let revoke = json!({"object": "whatsapp_business_account", "entry": [{"id": "100200300400500", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100100", "phone_number_id": NUMBER_ID},
        "messages": [{"from": "15550100111", "id": "wamid.revoke.priya", "timestamp": "1789300300", "type": "revoke",
            "revoke": {"original_message_id": "wamid.HBgLMTU1NTAxMDAxMTEVAgASGBRGMzJCOEYxQ0I0RThFNjUyRjA1RQA="}}]}}]}]});
    assert_eq!(app.signed_webhook(&serde_json::to_vec(&revoke).unwrap()).await, StatusCode::OK);
    b.wait_text(".msg.in", "Deleted by the customer").await;
    b.wait_text(".msg.in", "in October or early November?").await;
    b.close().await;
}

#[tokio::test]
async fn the_template_picker_fills_placeholders_and_shows_the_rendered_bubble() {
    let t = TestDb::sqlite().await;
    let graph = crate::outbox::FakeGraph::start().await;
    *graph.templates.lock().unwrap() = vec![
        json!({"id": "1203004005006013", "name": "visit_reminder", "language": "en_US", "category": "UTILITY",
               "status": "APPROVED", "components": [{"type": "BODY", "text": "Hi {{1}}, see you on {{2}}."}]}),
        json!({"id": "1203004005006011", "name": "autumn_offer", "language": "en_US", "category": "MARKETING",
               "status": "PAUSED", "components": [{"type": "BODY", "text": "Autumn offer: {{1}}"}]}),
    ];
    let mut config = test_config(&t.url);
    config.graph_url = graph.url.clone();
    let app = spawn_app_with(&t, config).await;
    let (status, number) = app
        .post(
            "/api/v1/numbers",
            &app.admin_token,
            json!({"phone_number_id": NUMBER_ID, "display_phone_number": "15550100100",
            "waba_id": "100200300400500", "access_token": "EAAG-test-token"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{number}");
    let admin = app.get("/api/v1/auth/me", &app.admin_token).await.1["user"]["id"].as_str().unwrap().to_owned();
    lead_for(&app, "Priya Raman", "+15550100111", Some(&admin)).await;
    // She wrote two days ago: the window is closed, only templates go.
    say(&app, "wamid.priya.old", "15550100111", 2 * 86_400, "Can someone visit next week?").await;
    app.webhooks_processed().await;

    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.wait_listed("Priya Raman").await;
    b.c.find(Locator::XPath("//a[contains(@class,'conv')][.//span[text()='Priya Raman']]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.until("the picker", "return document.querySelector('form[aria-label=\"Send a template\"] select')").await;
    let options = b
        .js("return [...document.querySelectorAll('form[aria-label=\"Send a template\"] select option')].map(o => o.textContent)")
        .await;
    assert_eq!(options, json!(["visit_reminder (en_US)"]), "only approved templates are offered");

    let field = |label: &'static str| {
        let b = &b;
        async move { b.c.find(Locator::XPath(&format!("//label[normalize-space(text())='{label}']/input"))).await.unwrap() }
    };
    field("{{1}}").await.send_keys("Priya").await.unwrap();
    field("{{2}}").await.send_keys("Thursday").await.unwrap();
    b.wait_text("[aria-label=Preview]", "Hi Priya, see you on Thursday.").await;
    b.c.find(Locator::XPath("//button[text()='Send template']")).await.unwrap().click().await.unwrap();

    let sent = eventually("the template reaches the Graph API", || async {
        graph.requests().into_iter().find(|r| r.body["type"] == "template")
    })
    .await;
    assert_eq!(sent.body["template"]["name"], "visit_reminder");
    assert_eq!(
        sent.body["template"]["components"],
        json!([{"type": "body", "parameters": [{"type": "text", "text": "Priya"}, {"type": "text", "text": "Thursday"}]}])
    );
    b.wait_text(".row.out", "Hi Priya, see you on Thursday.").await;
    b.close().await;
}
