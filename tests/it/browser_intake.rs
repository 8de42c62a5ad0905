//! Settings → API keys, Distribution and History in real headless Chromium: an admin creates a
//! key (shown once, then only listed) and revokes it; an admin writes a distribution rule,
//! a lead comes in, and the history page shows where it went. Controls are found by their
//! labels and buttons by their text, as a person finds them.

use std::time::Duration;

use fantoccini::Locator;
use reqwest::{Method, StatusCode};
use serde_json::json;
use switchboard::workspace::bootstrap;

use crate::browser::{Browser, browser};
use crate::support::*;

/// The control labelled `label` (the first whose `<label>` starts with it, else the first
/// whose `aria-label` is it), inside `scope`.
async fn labelled(b: &Browser, scope: &str, label: &str) -> fantoccini::elements::Element {
    let script = format!(
        "const l = [...document.querySelectorAll({scope} + ' label')].find((l) => l.textContent.trim().startsWith({label})); \
         if (l && l.control) return l.control.id; \
         const a = [...document.querySelectorAll({scope} + ' [aria-label]')].find((e) => e.getAttribute('aria-label') === {label}); \
         return a && a.id ? a.id : null",
        scope = json!(scope),
        label = json!(label)
    );
    let id = b.until(&format!("a control labelled {label:?}"), &script).await;
    b.element(&format!("#{}", id.as_str().unwrap())).await
}

/// Clicks the control labelled `label` inside `scope`, scrolled to the middle of the page
/// first (clear of the sticky save bar).
async fn tick(b: &Browser, scope: &str, label: &str) {
    let el = labelled(b, scope, label).await;
    let _ =
        b.c.execute("arguments[0].scrollIntoView({block: 'center'})", vec![serde_json::to_value(&el).unwrap()]).await;
    el.click().await.unwrap_or_else(|e| panic!("click {label}: {e}"));
}

async fn fill(b: &Browser, scope: &str, label: &str, text: &str) {
    let el = labelled(b, scope, label).await;
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap_or_else(|e| panic!("type into {label}: {e}"));
}

/// Clicks the button whose text (or accessible name) is `name`.
async fn press(b: &Browser, name: &str) {
    let t = json!(name);
    let xpath = format!("//button[normalize-space()={t} or @aria-label={t}]");
    for attempt in 1.. {
        let el =
            b.c.wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::XPath(&xpath))
                .await
                .unwrap_or_else(|e| panic!("a button {name:?}: {e}"));
        let _ =
            b.c.execute("arguments[0].scrollIntoView({block: 'center'})", vec![serde_json::to_value(&el).unwrap()])
                .await;
        match el.click().await {
            Ok(()) => return,
            Err(e) if attempt < 5 && e.to_string().contains("stale") => continue,
            Err(e) => panic!("press {name}: {e}"),
        }
    }
}

async fn page_says(b: &Browser, text: &str) {
    let probe = format!("return document.querySelector('main').innerText.includes({})", json!(text));
    b.until(&format!("the page says {text:?}"), &probe).await;
}

#[tokio::test]
async fn an_admin_creates_an_api_key_sees_it_once_and_revokes_it() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("API keys").await;
    page_says(&b, "No keys yet.").await;

    fill(&b, "main", "Key name", "Website form").await;
    press(&b, "Create key").await;
    page_says(&b, "it is shown this once").await;
    let shown = labelled(&b, "main", "New API key").await;
    let key = shown.prop("value").await.unwrap().expect("the key");
    assert!(key.starts_with("sbk_"), "{key}");

    // The key works on the intake route.
    let lead = json!({"name": "Ann Lee", "phone": "+442079460001"});
    let (status, body) = app.post("/api/v1/intake/leads", &key, lead.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Listed by name and first characters, never the key itself.
    press(&b, "I have copied it").await;
    let list = b.until("the key listed", "const l = document.querySelector('[aria-label=\"API keys\"]'); return l && l.innerText.includes('Website form') && l.innerText").await;
    let list = list.as_str().unwrap().to_owned();
    assert!(list.contains("leads:write"), "{list}");
    assert!(!list.contains(&key), "the list never shows the key");
    let page = b.js("return document.querySelector('main').innerText").await;
    assert!(!page.as_str().unwrap().contains(&key), "nor does the page, once it is put away");

    // Revoked: two steps, and it stops working at once.
    press(&b, "Revoke Website form").await;
    press(&b, "Revoke Website form now").await;
    page_says(&b, "revoked: it no longer works").await;
    b.until(
        "the key shows revoked",
        "return document.querySelector('[aria-label=\"API keys\"]').innerText.includes('Revoked')",
    )
    .await;
    let (status, _) = app.post("/api/v1/intake/leads", &key, lead).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    b.close().await;
}

#[tokio::test]
async fn an_admin_writes_a_distribution_rule_and_reads_the_history() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    bootstrap(&t.db, &app.clock, "Beta", "bea@beta.test", PASSWORD, Some("Bea")).await.expect("bootstrap");
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Distribution").await;
    page_says(&b, "No rules: leads stay in this workspace only.").await;

    // One rule: leads from the website go to Bea's workspace and to Cy by email, in turns.
    press(&b, "Add distribution rule").await;
    fill(&b, "#dist-rules", "Rule name", "Website partners").await;
    press(&b, "Add condition").await;
    fill(&b, "#dist-rules", "Value", "website").await;
    fill(&b, "#dist-rules", "Email", "bea@beta.test").await;
    press(&b, "Add recipient").await;
    let second = "[aria-label=\"Recipients of rule 1\"] li:nth-child(2)";
    fill(&b, second, "Email", "cy@gamma.test").await;
    tick(&b, second, "By email").await;
    tick(&b, second, "In Switchboard").await;
    // Cy first: move him up.
    press(&b, "Move cy@gamma.test up").await;
    let keep = labelled(&b, "main", "Keep a copy of distributed leads").await;
    assert_eq!(keep.prop("checked").await.unwrap().as_deref(), Some("true"));
    press(&b, "Save distribution rules").await;
    page_says(&b, "Saved.").await;

    let (status, settings) = app.get("/api/v1/distribution", &app.admin_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        settings,
        json!({"keep_copy": true, "rules": [{"name": "Website partners",
            "criteria": [{"field": "source", "op": "equals", "value": "website"}], "mode": "broadcast",
            "recipients": [{"email": "cy@gamma.test", "channels": ["email"], "leads_per_round": 1},
                           {"email": "bea@beta.test", "channels": ["app"], "leads_per_round": 1}]}]})
    );

    // A lead comes in; the history page shows where it went.
    let (status, key) =
        app.post("/api/v1/api-keys", &app.admin_token, json!({"name": "Form", "scopes": ["leads:write"]})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, lead) = app
        .json(
            Method::POST,
            "/api/v1/intake/leads",
            key["key"].as_str().unwrap(),
            Some(json!({"name": "Ann Lee", "phone": "+442079460001", "source": "website"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lead}");
    b.go_to("History").await;
    page_says(&b, "Ann Lee").await;
    let rows = b.until("two rows", "const r = [...document.querySelectorAll('[aria-label=\"Distribution history\"] tbody tr')]; return r.length === 2 && r.map((x) => x.innerText)").await;
    let rows: Vec<String> = serde_json::from_value(rows).unwrap();
    let bea = rows.iter().find(|r| r.contains("bea@beta.test")).expect("Bea's row");
    assert!(bea.contains("Website partners") && bea.contains("Switchboard: Sent"), "{bea}");
    let cy = rows.iter().find(|r| r.contains("cy@gamma.test")).expect("Cy's row");
    assert!(cy.contains("Email: Failed") && cy.contains("SMTP is not configured"), "{cy}");
    b.close().await;
}
