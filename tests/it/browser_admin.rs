//! The admin settings pages in real headless Chromium: team, labels, numbers, assignment and the
//! webhook journal. Same driver and helpers as `browser.rs` (skipped outside CI when Chromium is
//! not installed); with `SWITCHBOARD_SCREENSHOTS=1` the team page is saved into
//! `docs/screenshots/team.png`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::browser::{Browser, NUMBER_ID, browser, conversation_of, lead_for};
use crate::support::*;
use crate::webhooks::text_payload;

/// Clicks the element `css` (waiting up to 20 s for it), scrolled to the middle of the page
/// first, clear of the sticky save bar. Lists redraw on live updates, so an element found just
/// before a redraw is looked up again.
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

/// A selector for the member row of `email` on the team page.
fn row(email: &str) -> String {
    format!("#members li[data-email=\"{email}\"]")
}

async fn member_by_email(app: &TestApp, email: &str) -> Value {
    let (_, body) = app.get("/api/v1/members", &app.admin_token).await;
    body["members"].as_array().unwrap().iter().find(|m| m["email"] == email).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_admin_invites_a_member_who_accepts_and_manages_the_team_within_limits() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let (_, vip) = app.post("/api/v1/labels", &app.admin_token, json!({"name": "VIP", "color": "#c35722"})).await;
    app.member("dana@example.com", json!({"view_unassigned": true})).await;
    let (eli, _) = app.member("eli@example.com", json!({"view_others_leads": true})).await;
    let (status, _) = app.post(&format!("/api/v1/members/{eli}/deactivate"), &app.admin_token, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Team").await;
    b.wait_text(row("dana@example.com").as_str(), "Active").await;

    // Invite Nora: she may claim unassigned chats and sees the VIP label's chats.
    click(&b, "#invite-toggle").await;
    type_into(&b, "#invite-email", "nora@example.com").await;
    type_into(&b, "#invite-name", "Nora North").await;
    click(&b, "#invite-perm-view_unassigned").await;
    click(&b, &format!("#invite-form input[value=\"{}\"]", vip["id"].as_str().unwrap())).await;
    click(&b, "#invite-submit").await;
    b.wait_text("#invite-result", "Invitation created for nora@example.com").await;
    let link = b.js("return document.querySelector('#invite-result .accept-link').value").await;
    let token = b.js("return document.querySelector('#invite-result .accept-token').textContent").await;
    let link = link.as_str().unwrap().to_owned();
    assert!(link.ends_with(&format!("/#/accept/{}", token.as_str().unwrap())), "{link}");

    // Her row says so, and the server agrees on everything the form said.
    let status = b
        .until(
            "Nora's row",
            &format!("return document.querySelector('{} [data-status]')?.dataset.status", row("nora@example.com")),
        )
        .await;
    assert_eq!(status, json!("invite_sent"));
    b.wait_text(&row("nora@example.com"), "Invite sent").await;
    b.wait_text(&row("nora@example.com"), "VIP").await;
    let nora = member_by_email(&app, "nora@example.com").await;
    assert_eq!(nora["status"], "invite_sent");
    assert_eq!(nora["name"], "Nora North");
    assert_eq!(nora["role"], "member");
    assert_eq!(nora["permissions"]["view_unassigned"], true);
    assert_eq!(nora["permissions"]["manage_members"], false);
    assert_eq!(nora["label_ids"], json!([vip["id"]]));
    click(&b, "#invite-result button.ghost").await; // Done: the link is gone for good
    assert_eq!(b.js("return document.querySelector('#invite-panel').open").await, json!(false));
    assert!(!b.js("return document.body.textContent").await.as_str().unwrap().contains(token.as_str().unwrap()));
    b.js("document.querySelector('.settings-scroll').scrollTop = 0").await;
    b.screenshot("team").await;

    // The admin lets her manage members too.
    click(&b, &format!("{} [data-action=edit]", row("nora@example.com"))).await;
    let nora_id = nora["id"].as_str().unwrap();
    click(&b, &format!("#edit-{}-perm-manage_members", &nora_id[..8])).await;
    click(&b, &format!("{} [data-action=save]", row("nora@example.com"))).await;
    b.until("the editor closes once saved", "return !document.querySelector('.member-editor')").await;
    b.wait_text(&format!("{} .member-perms", row("nora@example.com")), "Manage members").await;
    assert_eq!(member_by_email(&app, "nora@example.com").await["permissions"]["manage_members"], true);

    // Nora follows the link, picks a password and is in.
    click(&b, "#logout").await;
    b.element("#login-email").await;
    b.c.goto(&link).await.unwrap();
    b.c.refresh().await.unwrap();
    type_into(&b, "#accept-name", "Nora N.").await;
    type_into(&b, "#accept-password", "nora's long password").await;
    type_into(&b, "#accept-again", "nora's long password").await;
    click(&b, "#accept-submit").await;
    b.wait_text(".me-name", "Nora N.").await;
    assert_eq!(member_by_email(&app, "nora@example.com").await["status"], "active");
    let nav = b.js("return [...document.querySelectorAll('.nav-link')].map(a => a.textContent)").await;
    assert_eq!(
        nav,
        json!(["Inbox", "Dashboard", "Leads", "Activity", "Team", "Assignment"]),
        "manage_members adds the team and assignment pages, nothing else"
    );

    // She manages members, but not admins: the API says no, and the page shows why.
    b.go_to("Team").await;
    click(&b, &format!("{} .confirm button", row(ADMIN_EMAIL))).await;
    click(&b, &format!("{} .confirm button[data-confirm]", row(ADMIN_EMAIL))).await;
    b.wait_text(&format!("{} .form-error", row(ADMIN_EMAIL)), "only an admin may invite or change an admin").await;
    assert_eq!(member_by_email(&app, ADMIN_EMAIL).await["status"], "active");

    // Dana is a member: Nora may switch her off and on again.
    click(&b, &format!("{} .confirm button", row("dana@example.com"))).await;
    click(&b, &format!("{} .confirm button[data-confirm]", row("dana@example.com"))).await;
    b.wait_text(&row("dana@example.com"), "Deactivated").await;
    assert_eq!(member_by_email(&app, "dana@example.com").await["status"], "deactivated");
    click(&b, &format!("{} [data-action=reactivate]", row("dana@example.com"))).await;
    b.wait_text(&row("dana@example.com"), "Active").await;
    assert_eq!(member_by_email(&app, "dana@example.com").await["status"], "active");

    // Pages she may not use say so instead of showing anything.
    b.open("#/labels").await;
    b.wait_text("#not-allowed", "Only admins can use this page").await;
    b.open("#/webhooks").await;
    b.wait_text("#not-allowed", "Only admins can use this page").await;
    b.close().await;
}

#[tokio::test]
async fn invitations_are_resent_and_cancelled_from_the_team_page() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let (status, first) = app.post("/api/v1/invitations", &app.admin_token, json!({"email": "omar@example.com"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.open("#/team").await;
    click(&b, &format!("{} [data-action=resend]", row("omar@example.com"))).await;
    b.wait_text(&row("omar@example.com"), "New invitation link for omar@example.com").await;
    let resent =
        b.js(&format!("return document.querySelector('{} .accept-token').textContent", row("omar@example.com"))).await;
    assert_ne!(resent, first["accept_token"], "a new token");
    let old = app
        .call(
            Method::POST,
            "/api/v1/invitations/accept",
            None,
            Some(json!({"accept_token": first["accept_token"], "password": "long enough pw"})),
        )
        .await;
    assert_eq!(old.status(), StatusCode::GONE, "the old link stopped working");

    click(&b, &format!("{} .confirm button", row("omar@example.com"))).await;
    click(&b, &format!("{} .confirm button[data-confirm]", row("omar@example.com"))).await;
    b.until(
        "the cancelled invitation left the list",
        &format!("return !document.querySelector('{}')", row("omar@example.com")),
    )
    .await;
    let cancelled = app
        .call(
            Method::POST,
            "/api/v1/invitations/accept",
            None,
            Some(json!({"accept_token": resent, "password": "long enough pw"})),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::GONE, "a cancelled invitation can't be accepted");

    // The accept page says so too.
    click(&b, "#logout").await;
    b.element("#login-email").await;
    b.c.goto(&format!("{}/#/accept/{}", app.base, resent.as_str().unwrap())).await.unwrap();
    b.c.refresh().await.unwrap();
    type_into(&b, "#accept-password", "long enough pw").await;
    type_into(&b, "#accept-again", "long enough pw").await;
    click(&b, "#accept-submit").await;
    b.wait_text("#accept-error", "cancelled, already used or has expired").await;
    b.close().await;
}

#[tokio::test]
async fn an_admin_creates_renames_and_deletes_a_label() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Labels").await;
    b.wait_text("#labels", "No labels yet").await;

    type_into(&b, "#label-name", "Urgent").await;
    click(&b, "label[for=label-color-6]").await; // Red
    click(&b, "#label-submit").await;
    b.wait_text("#labels .chip.label.hue-6", "Urgent").await;
    let (_, labels) = app.get("/api/v1/labels", &app.admin_token).await;
    assert_eq!(labels["labels"][0]["name"], "Urgent");
    assert_eq!(labels["labels"][0]["color"], "#c3223d");

    // A second label with the same name: the API's refusal is shown.
    type_into(&b, "#label-name", "Urgent").await;
    click(&b, "#label-submit").await;
    b.wait_text("#label-error", "already exists").await;

    // Rename it.
    let id = labels["labels"][0]["id"].as_str().unwrap().to_owned();
    click(&b, &format!("#labels li[data-id=\"{id}\"] button[aria-label=\"Edit Urgent\"]")).await;
    let name = b.element(&format!("#labels li[data-id=\"{id}\"] input[type=text]")).await;
    name.clear().await.unwrap();
    name.send_keys("Very urgent\u{E007}").await.unwrap();
    b.wait_text("#labels .chip.label", "Very urgent").await;
    let (_, labels) = app.get("/api/v1/labels", &app.admin_token).await;
    assert_eq!(labels["labels"][0]["name"], "Very urgent");

    // Delete: asked once more, then gone.
    click(&b, &format!("#labels li[data-id=\"{id}\"] .confirm button")).await;
    click(&b, &format!("#labels li[data-id=\"{id}\"] .confirm button[data-confirm]")).await;
    b.wait_text("#labels", "No labels yet").await;
    let (_, labels) = app.get("/api/v1/labels", &app.admin_token).await;
    assert_eq!(labels["labels"], json!([]));
    b.close().await;
}

#[tokio::test]
async fn an_admin_connects_a_number_and_toggles_auto_import() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Numbers").await;
    b.wait_text("#numbers", "No number connected yet").await;

    // A wrong id first: the API's validation message is shown.
    type_into(&b, "#number-pnid", "not-a-number").await;
    type_into(&b, "#number-display", "+1 555 010 0100").await;
    type_into(&b, "#number-token", "EAAG-secret-token-42").await;
    click(&b, "#number-submit").await;
    b.wait_text("#number-error", "phone_number_id must be Meta's numeric id").await;
    assert_eq!(b.js("return document.querySelector('#number-token').value").await, json!(""), "the token is not kept");

    type_into(&b, "#number-pnid", NUMBER_ID).await;
    type_into(&b, "#number-token", "EAAG-secret-token-42").await;
    type_into(&b, "#number-waba", "100200300400500").await;
    click(&b, "#number-submit").await;
    let number = format!("#numbers li[data-pnid=\"{NUMBER_ID}\"]");
    b.wait_text(&number, "+15550100100").await;
    b.wait_text(&number, "set (hidden)").await;
    let page = b
        .js("return document.body.textContent + [...document.querySelectorAll('input')].map(i => i.value).join(' ')")
        .await;
    assert!(!page.as_str().unwrap().contains("EAAG-secret-token-42"), "the access token is never shown");
    let (_, numbers) = app.get("/api/v1/numbers", &app.admin_token).await;
    let n = &numbers["numbers"][0];
    assert_eq!((n["phone_number_id"].as_str(), n["waba_id"].as_str()), (Some(NUMBER_ID), Some("100200300400500")));
    assert_eq!(n["auto_import_contacts"], false);

    // Auto-import on, then off, each saved at once.
    click(&b, &format!("{number} [data-action=auto-import]")).await;
    b.wait_text(&format!("{number} .status-line"), "Auto-import is on").await;
    let (_, numbers) = app.get("/api/v1/numbers", &app.admin_token).await;
    assert_eq!(numbers["numbers"][0]["auto_import_contacts"], true);
    click(&b, &format!("{number} [data-action=auto-import]")).await;
    b.wait_text(&format!("{number} .status-line"), "Auto-import is off").await;
    let (_, numbers) = app.get("/api/v1/numbers", &app.admin_token).await;
    assert_eq!(numbers["numbers"][0]["auto_import_contacts"], false);

    // Meta rejects the token: the page warns, and a new token clears it.
    switchboard::on_db!(&app.db, |p| sqlx::query("UPDATE numbers SET needs_reauth = TRUE")
        .execute(p)
        .await
        .map(|_| ()))
    .unwrap();
    b.c.refresh().await.unwrap();
    b.wait_text(&format!("{number} .needs-reauth"), "rejected this number’s access token").await;
    type_into(&b, &format!("{number} input[type=password]"), "EAAG-fresh-token").await;
    click(&b, &format!("{number} .inline-form button[type=submit]")).await;
    b.wait_text(&format!("{number} .status-line"), "New access token saved").await;
    assert_eq!(b.js("return !!document.querySelector('.needs-reauth')").await, json!(false));
    let (_, numbers) = app.get("/api/v1/numbers", &app.admin_token).await;
    assert_eq!(numbers["numbers"][0]["needs_reauth"], false);

    // Disconnect.
    click(&b, &format!("{number} .confirm button")).await;
    click(&b, &format!("{number} .confirm button[data-confirm]")).await;
    b.wait_text(&number, "Disconnected").await;
    let (_, numbers) = app.get("/api/v1/numbers", &app.admin_token).await;
    assert_eq!(numbers["numbers"][0]["connected"], false);
    b.close().await;
}

#[tokio::test]
async fn an_admin_switches_to_round_robin_with_a_rule_and_it_persists() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let (dana, _) = app.member("dana@example.com", json!({})).await;
    let (eli, _) = app.member("eli@example.com", json!({})).await;
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Assignment").await;
    b.element("#assign-mode-unassigned:checked").await;

    // Round robin; Eli goes first; the admin takes no part.
    click(&b, "#assign-mode-round_robin").await;
    click(&b, "#assign-members button[aria-label=\"Move eli up\"]").await;
    let focused = b.js("return document.activeElement.getAttribute('aria-label')").await;
    assert_eq!(focused, json!("Move eli up"), "focus stays on the moved member's button");
    b.c.active_element().await.unwrap().send_keys("\u{E007}").await.unwrap(); // Enter: up once more
    b.until("Eli first", &format!("return document.querySelector('#assign-members li').dataset.member === '{eli}'"))
        .await;
    let focused = b.js("return document.activeElement.getAttribute('aria-label')").await;
    assert_eq!(focused, json!("Move eli down"), "at the top, focus moves to the button that still works");
    let (_, me) = app.get("/api/v1/auth/me", &app.admin_token).await;
    let admin = me["user"]["id"].as_str().unwrap().to_owned();
    click(&b, &format!("#assign-enabled-{admin}")).await;
    type_into(&b, "#assign-per-round", "2").await;

    // A rule without a name: the API's validation message is shown and the rule marked.
    click(&b, "#assign-add-rule").await;
    type_into(&b, "#rule-0-name", " ").await;
    type_into(&b, "#rule-0-crit-0-value", "facebook").await;
    b.js("const s = document.querySelector('#rule-0-route'); s.value = 'member'; s.dispatchEvent(new Event('change'))")
        .await;
    b.js(&format!("const s = document.querySelector('#rule-0-route-member'); s.value = '{dana}'; s.dispatchEvent(new Event('change'))")).await;
    click(&b, "#assign-save").await;
    b.wait_text("#assign-error", "name must be 1 to 200 characters").await;
    b.element(".rule.invalid").await;
    let (_, unchanged) = app.get("/api/v1/assignment", &app.admin_token).await;
    assert_eq!(unchanged["mode"], "unassigned", "nothing saved");

    type_into(&b, "#rule-0-name", "Facebook leads to Dana").await;
    click(&b, "#assign-save").await;
    b.wait_text("#assign-status", "Saved").await;

    // Reload: it is all still there.
    b.c.refresh().await.unwrap();
    b.element("#assign-mode-round_robin:checked").await;
    let order = b.js("return [...document.querySelectorAll('#assign-members li')].map(li => li.dataset.member)").await;
    assert_eq!(order[0], json!(eli.to_string()), "Eli first: {order}");
    assert_eq!(b.js(&format!("return document.querySelector('#assign-enabled-{admin}').checked")).await, json!(false));
    assert_eq!(b.js("return document.querySelector('#assign-per-round').value").await, json!("2"));
    assert_eq!(b.js("return document.querySelector('#rule-0-name').value").await, json!("Facebook leads to Dana"));
    let (_, s) = app.get("/api/v1/assignment", &app.admin_token).await;
    assert_eq!(s["mode"], "round_robin");
    assert_eq!(s["leads_per_round"], 2);
    assert_eq!(s["members"][0], json!({"member_id": eli, "enabled": true}));
    assert!(s["members"].as_array().unwrap().contains(&json!({"member_id": admin, "enabled": false})));
    assert_eq!(
        s["rules"],
        json!([{"name": "Facebook leads to Dana", "criteria": [{"field": "source", "op": "equals", "value": "facebook"}],
                "route": {"type": "member", "member_id": dana}}])
    );

    // And it decides: a Facebook lead goes to Dana, the next one to Eli (first in the order).
    let (_, fb) = app
        .post(
            "/api/v1/leads",
            &app.admin_token,
            json!({"name": "Fiona", "phone": "+15550100111", "source": "facebook"}),
        )
        .await;
    assert_eq!(fb["assignee_id"], json!(dana));
    let (_, other) = app.post("/api/v1/leads", &app.admin_token, json!({"name": "Gus", "phone": "+15550100122"})).await;
    assert_eq!(other["assignee_id"], json!(eli));
    b.close().await;
}

#[tokio::test]
async fn the_webhook_journal_shows_a_failed_webhook_and_replays_entries() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    // Garbage with a valid signature, and a real message for a number not connected yet.
    assert_eq!(app.signed_webhook(b"this is not json").await, StatusCode::OK);
    let lead = lead_for(&app, "Priya Raman", "+15550100111", None).await;
    let ts = app.clock.now().timestamp() - 60;
    assert_eq!(
        app.signed_webhook(&text_payload("wamid.early.1", "15550100111", ts, "Are you open?")).await,
        StatusCode::OK
    );
    app.webhooks_processed().await;

    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Webhooks").await;
    b.until("two entries", "return document.querySelectorAll('#journal .journal-entry').length === 2").await;

    // Only the failed one.
    b.js(
        "const s = document.querySelector('#journal-state'); s.value = 'failed'; s.dispatchEvent(new Event('change'))",
    )
    .await;
    b.until("one failed entry", "return document.querySelectorAll('#journal .journal-entry').length === 1 && document.querySelector('#journal .journal-entry').dataset.state === 'failed'").await;
    click(&b, "#journal .journal-entry").await;
    b.wait_text("#journal-body", "this is not json").await;
    b.wait_text("#journal-detail h3", "not JSON").await;
    let error = b.js("return document.querySelector('#journal-detail-error').textContent").await;
    assert!(!error.as_str().unwrap().is_empty(), "the reason it failed is shown");

    // Replay: processed again, and still failed, which the page says.
    app.clock.advance(chrono::Duration::minutes(5));
    let replayed_from = app.clock.now();
    click(&b, "#journal-replay").await;
    b.wait_text("#journal-replay-status", "Replayed: failed again").await;
    let (_, failed) = app.get("/api/v1/admin/webhook-events?state=failed", &app.admin_token).await;
    let entry = &failed["webhook_events"][0];
    let processed: chrono::DateTime<chrono::Utc> = serde_json::from_value(entry["processed_at"].clone()).unwrap();
    assert!(processed >= replayed_from, "the replay processed it again: {entry}");

    // The message that came before its number was connected: connect, replay, and it is a chat.
    app.connect_number(NUMBER_ID, "15550100100", false).await;
    b.js("const s = document.querySelector('#journal-state'); s.value = 'done'; s.dispatchEvent(new Event('change'))")
        .await;
    b.until(
        "one done entry",
        "return document.querySelectorAll('#journal .journal-entry[data-state=done]').length === 1",
    )
    .await;
    click(&b, "#journal .journal-entry").await;
    b.wait_text("#journal-body", "Are you open?").await;
    b.wait_text("#journal-detail h3", "JSON, formatted").await;
    click(&b, "#journal-replay").await;
    b.wait_text("#journal-replay-status", "Replayed: processed").await;
    let conv = conversation_of(&app, lead["id"].as_str().unwrap()).await;
    let (_, messages) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
    assert_eq!(messages["messages"][0]["text"], "Are you open?");

    // Cursor paging: with a page of 50, the 51st entry is behind "Load older".
    for i in 0..50 {
        assert_eq!(app.signed_webhook(format!("junk {i}").as_bytes()).await, StatusCode::OK);
    }
    app.webhooks_processed().await;
    b.js("const s = document.querySelector('#journal-state'); s.value = ''; s.dispatchEvent(new Event('change'))")
        .await;
    b.until("a first page", "return document.querySelectorAll('#journal .journal-entry').length === 50").await;
    click(&b, "#journal-more").await;
    b.until("the rest", "return document.querySelectorAll('#journal .journal-entry').length === 52").await;
    assert_eq!(b.js("return document.querySelector('#journal-more').hidden").await, json!(true));
    b.close().await;
}
