//! Sending a picked file in real headless Chromium: the agent attaches a picture from the
//! composer, adds a caption, the upload goes to the media store and the message through the
//! fake Graph API (which receives the bytes), the sent bubble shows the picture, and the
//! picture opens in a lightbox. Same driver and helpers as `browser.rs`.

use fantoccini::Locator;
use serde_json::json;

use crate::browser::{NUMBER_ID, admin_id, app_with_graph, browser, conversation_of, lead_for, say};
use crate::outbox::FakeGraph;
use crate::support::*;

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

#[tokio::test]
async fn an_agent_sends_a_picked_file_with_a_caption() {
    let t = TestDb::sqlite().await;
    let graph = FakeGraph::start().await;
    let app = app_with_graph(&t, &graph).await;
    assert_eq!(NUMBER_ID, "100200300400600");
    let admin = admin_id(&app).await;
    let lead = lead_for(&app, "Mira Media", "+15550100177", Some(&admin)).await;
    say(&app, "wamid.mm.1", "15550100177", 60, "Can you send me a photo of the sofa?").await;
    app.webhooks_processed().await;
    let conv = conversation_of(&app, lead["id"].as_str().unwrap()).await;
    let dir = std::env::temp_dir().join(format!("sbt-pick-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let picture = dir.join("sofa.png");
    std::fs::write(&picture, PNG).unwrap();

    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.open(&format!("#/inbox/{conv}")).await;
    b.wait_text(".messages", "photo of the sofa").await;

    // The composer's "Attach a file" picks the picture (a person chooses it in the file dialog).
    let picker =
        b.c.wait()
            .at_most(std::time::Duration::from_secs(20))
            .for_element(Locator::XPath(
                "//input[@type='file'][@id=//label[contains(normalize-space(), 'Attach a file')]/@for]",
            ))
            .await
            .expect("the Attach a file control");
    picker.send_keys(picture.to_str().unwrap()).await.expect("pick the file");
    b.wait_text("[role=group][aria-label=Attachment]", "sofa.png").await;
    b.element("input[aria-label=Caption]").await.send_keys("The grey sofa").await.unwrap();
    b.c.find(Locator::XPath("//button[normalize-space()='Send file']")).await.unwrap().click().await.unwrap();

    // The bytes reach the Graph API's upload, then the message names Meta's media id.
    let sent = eventually("the Graph API gets the image message", || async {
        graph.requests().into_iter().find(|r| r.body["type"] == "image")
    })
    .await;
    assert_eq!(sent.body["image"], json!({"id": "media-up-1", "caption": "The grey sofa"}));
    let uploaded = graph.requests().into_iter().find(|r| r.path == "upload").expect("the upload");
    assert!(uploaded.body["multipart"].as_str().unwrap().contains("image/png"));
    assert!(uploaded.body["multipart"].as_str().unwrap().contains("IHDR"), "the picture's bytes");

    // The sent bubble shows the picture (loaded from the media store) with its caption.
    b.wait_text(".row.out", "The grey sofa").await;
    b.until(
        "the picture shows in the bubble",
        "const i = document.querySelector('.row.out img'); return i && i.complete && i.naturalWidth === 1",
    )
    .await;
    assert_eq!(b.js("return document.querySelector('[role=group][aria-label=Attachment]').hidden").await, json!(true));

    // Clicking it opens the lightbox; Close shuts it.
    b.c.find(Locator::XPath("//a[starts-with(@aria-label, 'Open image')]")).await.expect("the picture's link");
    b.js("document.querySelector(\"a[aria-label^='Open image']\").click()").await;
    b.until("the lightbox is open", "return document.querySelector('dialog.lightbox[open] img')?.getAttribute('alt')")
        .await;
    b.c.find(Locator::Css("button[aria-label='Close preview']")).await.expect("the Close button");
    b.js("document.querySelector(\"button[aria-label='Close preview']\").click()").await;
    b.until("the lightbox is closed", "return !document.querySelector('dialog.lightbox')").await;
    b.close().await;
    std::fs::remove_dir_all(&dir).ok();
}
