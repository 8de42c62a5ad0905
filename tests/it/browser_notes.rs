//! Internal notes in real headless Chromium: an agent writes a note in the chat, mentions a
//! colleague through the `@` picker, and the note shows as an internal note (not a WhatsApp
//! message). Same driver and helpers as `browser.rs` (skipped outside CI when Chromium is not
//! installed).

use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::json;

use crate::browser::{NUMBER_ID, browser, conversation_of, lead_for, say};
use crate::support::*;

#[tokio::test]
async fn an_agent_writes_a_note_mentioning_a_colleague() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    app.connect_number(NUMBER_ID, "15550100100", false).await;
    let (sam, _) = app.member("sam@example.com", json!({})).await;
    let lead = lead_for(&app, "Nora Note", "+15550100188", Some(&sam.to_string())).await;
    say(&app, "wamid.nn.1", "15550100188", 30, "Is the blue one in stock?").await;
    app.webhooks_processed().await;
    let conv = conversation_of(&app, lead["id"].as_str().unwrap()).await;
    let Some(b) = browser(&app).await else { return };
    b.log_in("sam@example.com").await;
    b.open(&format!("#/inbox/{conv}")).await;
    b.wait_text(".messages", "Is the blue one in stock?").await;

    // Typing "@" offers the members who can see the chat; picking one completes the name.
    // (Looked up again if the chat redrew meanwhile, as a person would look again.)
    for attempt in 1.. {
        let note = b.element("textarea[aria-label='Internal note']").await;
        match note.send_keys("Ada, can you check the stock? @Ad").await {
            Ok(()) => break,
            Err(e) if attempt < 5 && e.to_string().contains("stale") => continue,
            Err(e) => panic!("type the note: {e}"),
        }
    }
    let option =
        b.c.wait()
            .at_most(std::time::Duration::from_secs(20))
            .for_element(Locator::XPath("//*[@role='option'][normalize-space()='Ada Admin']"))
            .await
            .expect("the @ picker offers Ada Admin");
    option.click().await.unwrap();
    assert_eq!(
        b.js("return document.querySelector(\"textarea[aria-label='Internal note']\").value").await,
        json!("Ada, can you check the stock? @Ada Admin ")
    );
    b.c.find(Locator::XPath("//button[normalize-space()='Add note']")).await.unwrap().click().await.unwrap();

    // The note is in the chat, as an internal note by the agent, never a WhatsApp bubble.
    let mine = "[role=note][aria-label='Internal note by You']";
    b.wait_text(mine, "Ada, can you check the stock?").await;
    b.wait_text(mine, "Mentioned: @Ada Admin").await;
    assert_eq!(
        b.js("return [...document.querySelectorAll('.msg')].some(e => e.textContent.includes('check the stock'))")
            .await,
        json!(false),
        "not drawn as a message bubble"
    );

    // Ada has the mention, unread.
    let (status, mentions) = app.get("/api/v1/mentions?unread=true", &app.admin_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mentions["mentions"][0]["text"], "Ada, can you check the stock? @Ada Admin");
    assert_eq!(mentions["mentions"][0]["by"]["id"], sam.to_string());
    b.close().await;
}

#[tokio::test]
async fn search_finds_a_message_and_jumps_to_it() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    app.connect_number(NUMBER_ID, "15550100100", false).await;
    let lead = lead_for(&app, "Otto Order", "+15550100199", None).await;
    say(&app, "wamid.oo.1", "15550100199", 300, "Do you ship the walnut table to Lyon?").await;
    say(&app, "wamid.oo.2", "15550100199", 200, "Thanks, that was all").await;
    app.webhooks_processed().await;
    let conv = conversation_of(&app, lead["id"].as_str().unwrap()).await;
    let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
    let walnut = page["messages"][0]["id"].as_str().unwrap().to_owned();
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;

    b.element("input[aria-label='Search by name or phone']").await.send_keys("WALN tab").await.unwrap();
    let hits = "[aria-label='Found in messages']";
    b.wait_text(hits, "Do you ship the walnut table to Lyon?").await;
    assert_eq!(
        b.js(
            "return [...document.querySelectorAll(\"[aria-label='Found in messages'] mark\")].map(m => m.textContent)"
        )
        .await,
        json!(["walnut", "table"]),
        "the words of the query are highlighted"
    );
    b.c.find(Locator::XPath("//*[@aria-label='Found in messages']//a[contains(., 'walnut')]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.until(
        "the chat opened at the message",
        &format!("return location.hash.endsWith('{conv}') && !!document.querySelector('#m-{walnut}.flash')"),
    )
    .await;
    b.close().await;
}
