//! What asks for an agent's attention, in real headless Chromium: desktop notifications while
//! the tab is hidden and for mentions, a chat taken away while its agent sits idle, and the
//! buttons of deactivated members. Same driver and helpers as `browser.rs` (skipped outside
//! CI when Chromium is not installed).

use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::{Browser, NUMBER_ID, browser, conversation_of, lead_for, say};
use crate::support::*;

fn ok(r: (StatusCode, Value)) -> Value {
    assert!(r.0.is_success(), "{} {}", r.0, r.1);
    r.1
}

/// Replaces the browser's Notification with one that records what it is asked to show (and
/// allows them), turns desktop notifications on, and says whether the tab is in view.
async fn stub_notifications(b: &Browser) {
    b.js("window.__notes = [];
          class Recorded {
            constructor(title, opts) { this.title = title; this.body = opts && opts.body; window.__notes.push(this); }
            close() {}
          }
          Recorded.permission = 'granted';
          Recorded.requestPermission = async () => 'granted';
          window.Notification = Recorded;
          localStorage.setItem('sb.notify', JSON.stringify({desktop: true, sound: false}));")
        .await;
}

async fn set_visibility(b: &Browser, state: &str) {
    b.js(&format!(
        "Object.defineProperty(document, 'visibilityState', {{configurable: true, get: () => '{state}'}});
         Object.defineProperty(document, 'hidden', {{configurable: true, get: () => {}}});
         document.dispatchEvent(new Event('visibilitychange'));",
        state == "hidden"
    ))
    .await;
}

async fn notes(b: &Browser) -> Vec<(String, String)> {
    let v = b.js("return (window.__notes || []).map(n => [n.title, n.body || ''])").await;
    serde_json::from_value(v).unwrap_or_default()
}

#[tokio::test]
async fn a_hidden_tab_notifies_new_messages_and_mentions_open_the_chat() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    app.connect_number(NUMBER_ID, "15550100100", false).await;
    let (sam, _) = app.member("sam@example.com", json!({})).await;
    let lead = lead_for(&app, "Hana Hidden", "+15550100177", Some(&sam.to_string())).await;
    say(&app, "wamid.hh.1", "15550100177", 60, "First question").await;
    app.webhooks_processed().await;
    let conv = conversation_of(&app, lead["id"].as_str().unwrap()).await;
    let Some(b) = browser(&app).await else { return };
    b.log_in("sam@example.com").await;
    b.wait_listed("Hana Hidden").await;
    stub_notifications(&b).await;

    // In view: a new message is on screen already, no notification.
    set_visibility(&b, "visible").await;
    say(&app, "wamid.hh.2", "15550100177", 30, "Seen while looking").await;
    b.wait_text(".conv", "Seen while looking").await;

    // Hidden: the next message notifies, once, naming the customer.
    set_visibility(&b, "hidden").await;
    say(&app, "wamid.hh.3", "15550100177", 20, "Are you there?").await;
    b.until("a notification for the message", "return (window.__notes || []).some(n => n.body === 'Are you there?')")
        .await;
    assert_eq!(notes(&b).await, vec![("Hana Hidden wrote".to_owned(), "Are you there?".to_owned())]);

    // A mention notifies with who wrote it and what; clicking it opens the chat.
    set_visibility(&b, "visible").await;
    ok(app
        .post(
            &format!("/api/v1/conversations/{conv}/notes"),
            &app.admin_token,
            json!({"text": "Sam, this one wants a discount", "mention_ids": [sam]}),
        )
        .await);
    b.until("a notification for the mention", "return (window.__notes || []).length === 2").await;
    assert_eq!(notes(&b).await[1], ("Ada Admin mentioned you".to_owned(), "Sam, this one wants a discount".to_owned()));
    b.js("window.__notes[1].onclick()").await;
    b.until("the chat opened", &format!("return location.hash.endsWith('{conv}')")).await;
    b.close().await;
}

#[tokio::test]
async fn an_idle_agent_sees_their_open_chat_go_when_an_admin_reassigns_it() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    app.connect_number(NUMBER_ID, "15550100100", false).await;
    let (sam, _) = app.member("sam@example.com", json!({})).await;
    let (bo, _) = app.member("bo@example.com", json!({})).await;
    let lead = lead_for(&app, "Rita Reassign", "+15550100166", Some(&sam.to_string())).await;
    let kept = lead_for(&app, "Kim Kept", "+15550100155", Some(&sam.to_string())).await;
    say(&app, "wamid.rr.1", "15550100166", 60, "Where is my order?").await;
    say(&app, "wamid.kk.1", "15550100155", 50, "Thanks!").await;
    app.webhooks_processed().await;
    let conv = conversation_of(&app, lead["id"].as_str().unwrap()).await;
    conversation_of(&app, kept["id"].as_str().unwrap()).await;
    let Some(b) = browser(&app).await else { return };
    b.log_in("sam@example.com").await;
    b.open(&format!("#/inbox/{conv}")).await;
    b.wait_text(".messages", "Where is my order?").await;
    b.wait_listed("Kim Kept").await;

    // The agent does nothing; an admin gives the chat to Bo.
    ok(app.post(&format!("/api/v1/conversations/{conv}/assign"), &app.admin_token, json!({"assignee_id": bo})).await);
    let alert = b
        .until(
            "the chat says it was given away",
            "const a = [...document.querySelectorAll('[role=alert]')].find(e => e.textContent.includes('no longer have access'));
             return a && a.textContent",
        )
        .await;
    assert_eq!(alert, json!("Ada Admin gave this chat to bo — you no longer have access to it."));
    b.until(
        "the list dropped it",
        "return ![...document.querySelectorAll('.conv .conv-name')].some(e => e.textContent === 'Rita Reassign')",
    )
    .await;
    assert_eq!(b.listed().await, vec!["Kim Kept".to_owned()]);
    // Nothing left to do on it: no composer.
    assert_eq!(b.js("return !!document.querySelector('textarea[aria-label=Message]')").await, json!(false));
    b.close().await;
}

/// The opacity an element is drawn with (its own times every ancestor's).
const DRAWN_OPACITY: &str = "let o = 1; for (let e = arguments[0]; e; e = e.parentElement) o *= parseFloat(getComputedStyle(e).opacity); return o;";

#[tokio::test]
async fn a_deactivated_members_buttons_look_enabled_and_work() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let (gus, _) = app.member("gus@example.com", json!({})).await;
    ok(app.post(&format!("/api/v1/members/{gus}/deactivate"), &app.admin_token, json!({})).await);
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Team").await;

    let row = "//li[.//*[normalize-space()='gus@example.com']]";
    let reactivate =
        b.c.wait()
            .at_most(std::time::Duration::from_secs(20))
            .for_element(Locator::XPath(&format!("{row}//button[normalize-space()='Reactivate']")))
            .await
            .expect("a Reactivate button for gus");
    // Every button of the row is drawn at full strength (only the name and details fade).
    let buttons = b.c.find_all(Locator::XPath(&format!("{row}//button"))).await.unwrap();
    assert!(!buttons.is_empty());
    for button in &buttons {
        let label = button.text().await.unwrap();
        let opacity = b.c.execute(DRAWN_OPACITY, vec![serde_json::to_value(button).unwrap()]).await.unwrap();
        assert_eq!(opacity.as_f64(), Some(1.0), "{label:?} looks disabled");
        assert_eq!(button.attr("disabled").await.unwrap(), None, "{label:?} is disabled");
    }
    let email = b.c.find(Locator::XPath(&format!("{row}//*[normalize-space()='gus@example.com']"))).await.unwrap();
    let faded = b.c.execute(DRAWN_OPACITY, vec![serde_json::to_value(&email).unwrap()]).await.unwrap();
    assert!(faded.as_f64().unwrap() < 1.0, "the deactivated member's details fade: {faded}");

    // And they work.
    reactivate.click().await.unwrap();
    eventually("gus is active again", || async {
        let (_, m) = app.get(&format!("/api/v1/members/{gus}"), &app.admin_token).await;
        (m["status"] == "active").then_some(())
    })
    .await;
    b.close().await;
}
