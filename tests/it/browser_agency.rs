//! Agencies in real headless Chromium: the agency's admin makes the workspace an agency and
//! invites a client, the client's admin follows the link, logs in and grants access, the agency
//! opens the client's dashboard and a lead with its timeline, then unlinks. Same driver and
//! helpers as `browser.rs` (skipped outside CI when Chromium is not installed).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::{Browser, browser};
use crate::support::*;

const BOSS: &str = "boss@client.test";

/// Clicks the element `css` (waiting for it), scrolled into view first; an element replaced
/// by a redraw just before the click is looked up again.
async fn click(b: &Browser, css: &str) {
    for attempt in 1.. {
        let el = b.element(css).await;
        let scrolled =
            b.c.execute("arguments[0].scrollIntoView({block: 'center'})", vec![serde_json::to_value(&el).unwrap()])
                .await;
        match scrolled {
            Ok(_) => match el.click().await {
                Ok(()) => return,
                Err(e) if attempt < 5 && e.to_string().contains("stale") => continue,
                Err(e) => panic!("click {css}: {e}"),
            },
            Err(e) if attempt < 5 && e.to_string().contains("stale") => continue,
            Err(e) => panic!("scroll to {css}: {e}"),
        }
    }
}

async fn type_into(b: &Browser, css: &str, text: &str) {
    let el = b.element(css).await;
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

fn row(email: &str) -> String {
    format!("#agency-clients li[data-email=\"{email}\"]")
}

#[tokio::test]
async fn an_agency_invites_a_client_reads_its_lead_and_unlinks() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    // The client: its own workspace, a lead its admin wrote a note on.
    switchboard::workspace::bootstrap(&app.db, &app.clock, "Client Co", BOSS, PASSWORD, Some("Bo Boss")).await.unwrap();
    let boss = app.login(BOSS, PASSWORD).await["token"].as_str().unwrap().to_owned();
    let (status, lead) = app.post("/api/v1/leads", &boss, json!({"name": "Lena Lead", "phone": "+447700900111"})).await;
    assert_eq!(status, StatusCode::CREATED, "{lead}");
    let lead_id = lead["id"].as_str().unwrap().to_owned();
    let (status, _) =
        app.post(&format!("/api/v1/leads/{lead_id}/notes"), &boss, json!({"text": "called her back"})).await;
    assert_eq!(status, StatusCode::CREATED);

    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Agency").await;
    b.wait_text("#managed-by", "No agency manages this workspace").await;
    type_into(&b, "#agency-name-input", "Ads & Co").await;
    click(&b, "#agency-make").await;
    b.wait_text("#agency-name", "Ads & Co").await;

    // Invite the client by its admin's email.
    type_into(&b, "#client-email", BOSS).await;
    type_into(&b, "#client-name", "Client Co").await;
    click(&b, "#client-invite").await;
    b.wait_text("#client-invite-result", &format!("Invitation created for {BOSS}")).await;
    b.wait_text(&row(BOSS), "Invited").await;
    let link = b.js("return document.querySelector('#client-invite-result .accept-link').value").await;
    let link = link.as_str().unwrap().to_owned();
    assert!(link.contains("/#/agency-accept/sb_"), "{link}");

    // The client's admin follows the link, logs in, and grants access.
    click(&b, "#logout").await;
    b.element("#login-email").await;
    b.c.goto(&link).await.unwrap();
    b.c.refresh().await.unwrap();
    click(&b, "#agency-accept-login").await;
    type_into(&b, "#login-email", BOSS).await;
    type_into(&b, "#login-password", PASSWORD).await;
    click(&b, "#login-submit").await;
    click(&b, "#agency-accept-grant").await;
    b.wait_text("#managed-by-text", "Managed by Ads & Co").await;
    let (_, ws) = app.get("/api/v1/workspace", &boss).await;
    assert_eq!(ws["managed_by"]["name"], "Ads & Co", "{ws}");

    // The agency opens the client's dashboard and the lead with its timeline.
    click(&b, "#logout").await;
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Agency").await;
    b.wait_text(&row(BOSS), "Managing").await;
    b.wait_text(&row(BOSS), "1 leads · 0 not contacted").await;
    click(&b, &format!("{} [data-action=view]", row(BOSS))).await;
    b.wait_text("#client-leads", "Lena Lead").await;
    b.wait_text("table[aria-label='Team report']", "Bo Boss").await;
    click(&b, &format!("#client-leads a[href$=\"{lead_id}\"]")).await;
    b.wait_text("#lead-timeline", "called her back").await;
    b.screenshot("agency-lead").await;

    // Back to the clients; the agency unlinks, and the client's data is gone at once.
    b.go_to("Agency").await;
    click(&b, &format!("{} .confirm button", row(BOSS))).await;
    click(&b, &format!("{} .confirm button[data-confirm]", row(BOSS))).await;
    b.wait_text(&row(BOSS), "Not linked").await;
    let (_, ws) = app.get("/api/v1/workspace", &boss).await;
    assert_eq!(ws["managed_by"], Value::Null);
    let entry = b.js(&format!("return document.querySelector('{}').dataset.id", row(BOSS))).await;
    b.open(&format!("#/agency/{}", entry.as_str().unwrap())).await;
    b.wait_text("#client-error", "not linked").await;
    b.close().await;
}
