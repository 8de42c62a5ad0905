//! The chat shows what a sender did to a message after sending it, live: edited (with the
//! older text on demand) and deleted (struck through, still readable). Real Chromium, as in
//! `browser.rs`.

use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::json;

use crate::browser::{NUMBER_ID, browser, lead_for};
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
