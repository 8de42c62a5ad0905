//! The chat shows what a sender did to a message after sending it, live: edited (with the
//! older text on demand) and deleted (struck through, still readable); the template picker;
//! number health warnings for admins; a lead's marketing opt-out and WhatsApp calls in the
//! chat. Real Chromium, as in `browser.rs`.

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

/// A signed webhook for WABA A.
async fn send(app: &TestApp, body: serde_json::Value) {
    assert_eq!(app.signed_webhook(&serde_json::to_vec(&body).unwrap()).await, StatusCode::OK);
}

#[tokio::test]
async fn admins_are_warned_live_when_a_numbers_quality_drops_or_it_is_restricted() {
    let t = TestDb::sqlite().await;
    let graph = crate::outbox::FakeGraph::start().await;
    let fields = |quality: &str| {
        json!({"id": NUMBER_ID, "quality_rating": quality, "whatsapp_business_manager_messaging_limit": "TIER_2K",
               "status": "CONNECTED"})
    };
    graph.phone_numbers.lock().unwrap().insert(NUMBER_ID.to_owned(), fields("GREEN"));
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
    let path = format!("/api/v1/numbers/{}", number["id"].as_str().unwrap());
    eventually("the health read on connect", || async {
        (app.get(&path, &app.admin_token).await.1["quality_rating"] == "GREEN").then_some(())
    })
    .await;

    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Numbers").await;
    b.wait_text("#numbers", "High (green)").await;
    b.wait_text("#numbers", "2K conversations a day").await;
    let alert_hidden = "return document.getElementById('number-health-alert').hidden";
    assert_eq!(b.js(alert_hidden).await, json!(true), "nothing to warn about");

    // The quality drops: today's webhook says only "DOWNGRADE"; the Graph API has the colour.
    graph.phone_numbers.lock().unwrap().insert(NUMBER_ID.to_owned(), fields("YELLOW"));
    send(
        &app,
        json!({"object": "whatsapp_business_account", "entry": [{"id": "100200300400500", "time": 1789306500,
        "changes": [{"field": "phone_number_quality_update", "value": {"display_phone_number": "15550100100",
        "event": "DOWNGRADE"}}]}]}),
    )
    .await;
    b.wait_text("#numbers [role=alert]", "Quality rating dropped to medium (yellow)").await;
    b.wait_text("header a[href='#/numbers']", "Quality rating dropped to medium (yellow)").await;

    // Meta restricts the account: said on the page, and the header still links to it.
    assert_eq!(app.signed_webhook(&fixture("account-update-restriction.json")).await, StatusCode::OK);
    b.wait_text("#numbers [role=alert]", "Meta restricted this account’s messaging").await;
    b.go_to("Inbox").await;
    let header =
        b.c.find(Locator::XPath("//header//a[contains(., '+15550100100: Quality rating dropped')]"))
            .await
            .expect("the header's warning names the number");
    header.click().await.unwrap();
    b.wait_text("#numbers", "Restricted").await;
    b.close().await;
}

#[tokio::test]
async fn the_lead_panel_shows_an_opt_out_and_the_chat_shows_calls_live() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let number = app.connect_number(NUMBER_ID, "15550100100", false).await;
    let admin = crate::browser::admin_id(&app).await;
    let hiroshi = lead_for(&app, "Hiroshi Tanaka", "+15550100155", Some(&admin)).await;
    lead_for(&app, "Kwame Mensah", "+15550100133", Some(&admin)).await;
    say(&app, "wamid.hiroshi.1", "15550100155", 120, "Any news on the worktop?").await;
    say(&app, "wamid.kwame.1", "15550100133", 60, "I will call you").await;
    app.webhooks_processed().await;

    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    let open = |name: &'static str| {
        let b = &b;
        async move {
            b.wait_listed(name).await;
            let xpath = format!("//a[contains(@class,'conv')][.//span[text()='{name}']]");
            b.c.find(Locator::XPath(&xpath)).await.unwrap().click().await.unwrap();
            b.until(
                "the lead panel",
                &format!("return document.getElementById('lead-name')?.textContent === '{name}'"),
            )
            .await;
        }
    };
    open("Hiroshi Tanaka").await;
    // He stops marketing messages while his chat is open.
    assert_eq!(app.signed_webhook(&fixture("user-preferences-stop.json")).await, StatusCode::OK);
    b.until(
        "the badge by his name",
        "return [...document.querySelectorAll('.chip')].some(c => c.textContent === 'Opted out of marketing')",
    )
    .await;

    // Kwame calls and nobody answers; later a call is answered: rows in his chat, live.
    open("Kwame Mensah").await;
    assert_eq!(app.signed_webhook(&fixture("call-terminate-missed.json")).await, StatusCode::OK);
    b.wait_text("[role=log] .row", "Missed call from the customer").await;
    assert_eq!(app.signed_webhook(&fixture("call-terminate-completed.json")).await, StatusCode::OK);
    b.wait_text("[role=log] .row", "Call from the customer · 1 min 35 s").await;
    // And on reopening, from the timeline.
    open("Hiroshi Tanaka").await;
    open("Kwame Mensah").await;
    b.wait_text("[role=log] .row", "Missed call from the customer").await;

    // Our marketing template to Hiroshi was billed: the Dashboard counts it by category.
    crate::webhooks::seed_outbound(
        &app,
        number["id"].as_str().unwrap(),
        hiroshi["id"].as_str().unwrap(),
        "wamid.bill.1",
    )
    .await;
    let mut priced: serde_json::Value =
        serde_json::from_slice(&crate::browser::status_payload("wamid.bill.1", "sent", 1789306700, "15550100155"))
            .unwrap();
    priced["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"] =
        json!({"billable": true, "pricing_model": "PMP", "category": "marketing", "type": "regular"});
    send(&app, priced).await;
    app.webhooks_processed().await;
    b.go_to("Dashboard").await;
    b.until(
        "the billable marketing message",
        "const t = document.querySelector('table[aria-label=\"Billable messages by pricing category\"]'); \
         return t && [...t.querySelectorAll('tbody tr')].some(r => r.textContent === 'Marketing1')",
    )
    .await;
    b.close().await;
}
