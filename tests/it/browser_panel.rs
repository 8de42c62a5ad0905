//! The chat's side panel and composer extras in real Chromium: editing a lead inline, sharing a
//! chat from the access list, reacting to a message and the typing indicator (against the fake
//! Graph API), quick replies under `/`, and content shared with a team. Things are found by
//! their accessible names (aria-label), labels and visible text, never by CSS class.

use std::time::Duration;

use fantoccini::Locator;
use fantoccini::elements::Element;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::{Browser, NUMBER_ID, admin_id, app_with_graph, browser, conversation_of, lead_for, say};
use crate::on_both;
use crate::outbox::FakeGraph;
use crate::support::*;

/// The element `xpath` finds, waiting for it.
async fn find(b: &Browser, xpath: &str) -> Element {
    b.c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("no element {xpath}: {e}"))
}

/// Clicks what `xpath` finds (looked up again if the page redrew meanwhile).
async fn click(b: &Browser, xpath: &str) {
    for attempt in 1.. {
        // Into the middle of the view first: sticky bars never cover it.
        let el = find(b, xpath).await;
        let arg = serde_json::to_value(&el).expect("an element reference");
        let _ = b.c.execute("arguments[0].scrollIntoView({block: 'center'})", vec![arg]).await;
        match el.click().await {
            Ok(_) => return,
            Err(e) if attempt < 5 => {
                eprintln!("click {xpath}: {e}; again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("click {xpath}: {e}"),
        }
    }
}

/// Types into what `xpath` finds (looked up again if the page redrew meanwhile).
async fn type_into(b: &Browser, xpath: &str, text: &str) {
    for attempt in 1.. {
        match find(b, xpath).await.send_keys(text).await {
            Ok(()) => return,
            Err(e) if attempt < 5 => {
                eprintln!("type into {xpath}: {e}; again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("type into {xpath}: {e}"),
        }
    }
}

/// Clicks the element named `label` as a pointer would after hovering its row (buttons that
/// only show on hover are transparent to WebDriver until then).
async fn press_named(b: &Browser, within: &str, label: &str) {
    let script = format!(
        "const e = [...document.querySelectorAll({})].flatMap((w) => [...w.querySelectorAll('[aria-label]')]).find((x) => x.getAttribute('aria-label') === {}); if (!e) return false; e.click(); return true",
        json!(within),
        json!(label)
    );
    b.until(&format!("{label} pressed"), &script).await;
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("an id in {v}")).to_owned()
}

fn reaction_payload(wamid: &str, from: &str, ts: i64, target: &str, emoji: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "100200300400500", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100100", "phone_number_id": NUMBER_ID},
        "contacts": [{"profile": {"name": "Test Contact"}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": ts.to_string(), "type": "reaction",
            "reaction": {"message_id": target, "emoji": emoji}}]}}]}]}))
    .unwrap()
}

on_both! {
    // The assignee edits the lead beside the chat (name, a custom field, a group); the panel also
    // shows the lead's chats per number and why it was assigned.
    async fn the_assignee_edits_the_lead_in_the_panel(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_ID, "15550100100", false).await;
        let (status, vip) = app.post("/api/v1/groups", &app.admin_token, json!({"name": "VIP"})).await;
        assert_eq!(status, StatusCode::CREATED, "{vip}");
        let (sam, _) = app.member("sam@example.com", json!({})).await;
        let lead = lead_for(&app, "Lena Lead", "+15550100177", Some(&sam.to_string())).await;
        say(&app, "wamid.ll.1", "15550100177", 30, "Do you deliver on Saturdays?").await;
        app.webhooks_processed().await;
        let conv = conversation_of(&app, &id_of(&lead)).await;

        let Some(b) = browser(&app).await else { return };
        b.log_in("sam@example.com").await;
        b.open(&format!("#/inbox/{conv}")).await;
        b.wait_text(".messages", "Do you deliver on Saturdays?").await;
        b.wait_text("[aria-label='Chats per number']", "1 from the lead · 0 from the team").await;

        click(&b, "//button[@aria-label='Edit lead']").await;
        let name = find(&b, "//form[@aria-label='Edit lead']//input[@id='lead-edit-name']").await;
        name.clear().await.unwrap();
        name.send_keys("Lena Lindqvist").await.unwrap();
        click(&b, "//form[@aria-label='Edit lead']//button[normalize-space()='Add field']").await;
        type_into(&b, "//input[@aria-label='Field 1 name']", "budget").await;
        type_into(&b, "//input[@aria-label='Field 1 value']", "5000").await;
        click(&b, "//form[@aria-label='Edit lead']//label[normalize-space()='VIP']/input").await;
        click(&b, "//form[@aria-label='Edit lead']//button[normalize-space()='Save']").await;
        b.wait_text("#lead-name", "Lena Lindqvist").await;
        b.wait_text(".lead-groups", "VIP").await;

        let (_, saved) = app.get(&format!("/api/v1/leads/{}", id_of(&lead)), &app.admin_token).await;
        assert_eq!(saved["name"], "Lena Lindqvist");
        assert_eq!(saved["custom_fields"], json!({"budget": "5000"}));
        assert_eq!(saved["group_ids"], json!([id_of(&vip)]));
        b.close().await;
    }

    // A member who sees the chat only through a label may not edit the lead: no Edit button.
    async fn a_watcher_gets_no_lead_editor(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_ID, "15550100100", false).await;
        let (sam, _) = app.member("sam@example.com", json!({})).await;
        let (kim, _) = app.member("kim@example.com", json!({})).await;
        let lead = lead_for(&app, "Walt Watched", "+15550100178", Some(&sam.to_string())).await;
        say(&app, "wamid.ww.1", "15550100178", 30, "Hello there").await;
        app.webhooks_processed().await;
        let conv = conversation_of(&app, &id_of(&lead)).await;
        let (status, _) =
            app.post(&format!("/api/v1/conversations/{conv}/access"), &app.admin_token, json!({"member_ids": [kim]})).await;
        assert_eq!(status, StatusCode::OK);

        let Some(b) = browser(&app).await else { return };
        b.log_in("kim@example.com").await;
        b.open(&format!("#/inbox/{conv}")).await;
        b.wait_text("#lead-name", "Walt Watched").await;
        b.wait_text("[aria-label='Members with access']", "shared with them").await;
        assert_eq!(b.js("return !!document.querySelector(\"[aria-label='Edit lead']\")").await, json!(false));
        assert_eq!(b.js("return !!document.querySelector(\"[aria-label='Share with']\")").await, json!(false));
        b.close().await;
    }

    // The assignee shares the chat with a colleague from the access list, with the reason shown,
    // and takes it back.
    async fn the_assignee_shares_a_chat_and_takes_it_back(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_ID, "15550100100", false).await;
        let (sam, _) = app.member("sam@example.com", json!({})).await;
        let (kim, kim_token) = app.member("kim@example.com", json!({})).await;
        let lead = lead_for(&app, "Sara Shared", "+15550100179", Some(&sam.to_string())).await;
        say(&app, "wamid.ss.1", "15550100179", 30, "Can someone from billing help?").await;
        app.webhooks_processed().await;
        let conv = conversation_of(&app, &id_of(&lead)).await;
        assert_eq!(app.get(&format!("/api/v1/conversations/{conv}"), &kim_token).await.0, StatusCode::NOT_FOUND);

        let Some(b) = browser(&app).await else { return };
        b.log_in("sam@example.com").await;
        b.open(&format!("#/inbox/{conv}")).await;
        let list = "[aria-label='Members with access']";
        b.wait_text(list, "sam (you) — assignee").await;
        b.wait_text(list, "Ada Admin — admin").await;
        find(&b, "//select[@aria-label='Share with']").await.select_by_label("kim").await.unwrap();
        click(&b, "//form[@aria-label='Share this chat']//button[normalize-space()='Share']").await;
        b.wait_text(list, "kim — shared with them").await;
        let (status, access) = app.get(&format!("/api/v1/conversations/{conv}/access"), &kim_token).await;
        assert_eq!(status, StatusCode::OK, "kim sees the chat now");
        assert_eq!(access["explicit_member_ids"], json!([kim.to_string()]));

        click(&b, "//button[@aria-label='Remove access for kim']").await;
        b.until(
            "kim left the list",
            "return ![...document.querySelectorAll(\"[aria-label='Members with access'] li\")].some((l) => l.textContent.startsWith('kim'))",
        )
        .await;
        assert_eq!(app.get(&format!("/api/v1/conversations/{conv}"), &kim_token).await.0, StatusCode::NOT_FOUND);
        b.close().await;
    }

    // A reaction picked under the customer's message goes to WhatsApp as Meta's reaction object
    // and shows under it; the customer's own reaction shows too; picking it again removes ours.
    async fn reacting_to_a_message_and_seeing_the_customers_reaction(t: TestDb) {
        let graph = FakeGraph::start().await;
        let app = app_with_graph(&t, &graph).await;
        let admin = admin_id(&app).await;
        let lead = lead_for(&app, "Rita React", "+15550100181", Some(&admin)).await;
        say(&app, "wamid.rr.1", "15550100181", 60, "The parcel arrived, thanks!").await;
        app.webhooks_processed().await;
        let conv = conversation_of(&app, &id_of(&lead)).await;

        let Some(b) = browser(&app).await else { return };
        b.log_in(ADMIN_EMAIL).await;
        b.open(&format!("#/inbox/{conv}")).await;
        b.wait_text(".messages", "The parcel arrived, thanks!").await;
        press_named(&b, ".messages", "React to this message").await;
        click(&b, "//*[@aria-label='Pick a reaction']//button[@aria-label='React 👍']").await;
        let sent = eventually("the reaction reaches the Graph API", || async {
            graph.requests().into_iter().find(|r| r.body["type"] == "reaction")
        })
        .await;
        assert_eq!(sent.body["reaction"], json!({"message_id": "wamid.rr.1", "emoji": "👍"}));
        b.until("our reaction under the message", "return !!document.querySelector(\"[aria-label='You reacted 👍']\")")
            .await;
        assert_eq!(
            b.js(
                "return [...document.querySelectorAll('.msg')].filter((m) => m.textContent.trim().startsWith('👍')).length"
            )
            .await,
            json!(0),
            "a reaction is not a bubble of its own"
        );

        // The customer reacts to our reply: it shows under that reply.
        let (status, reply) = app
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                &app.admin_token,
                json!({"type": "text", "text": "Glad to hear!"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
        let wamid = eventually("the reply is sent", || async {
            let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
            page["messages"].as_array()?.iter().find(|m| m["id"] == reply["id"])?["wamid"].as_str().map(str::to_owned)
        })
        .await;
        let ts = app.clock.now().timestamp();
        app.signed_webhook(&reaction_payload("wamid.rr.2", "15550100181", ts, &wamid, "❤️")).await;
        b.until("the customer's reaction", "return !!document.querySelector(\"[aria-label='Customer reacted ❤️']\")").await;

        // Picking ours again takes it back (an empty emoji).
        press_named(&b, ".messages", "React to this message").await;
        click(&b, "//*[@aria-label='Pick a reaction']//button[@aria-label='React 👍'][@aria-pressed='true']").await;
        eventually("the removal reaches the Graph API", || async {
            graph.requests().into_iter().find(|r| r.body["type"] == "reaction" && r.body["reaction"]["emoji"] == "")
        })
        .await;
        b.until("our reaction is gone", "return !document.querySelector(\"[aria-label='You reacted 👍']\")").await;
        b.close().await;
    }

    // The customer sees "typing…" while the assignee writes a reply: one indicator for a burst of
    // keystrokes (at most one per 20 s), none for an empty box, then the reply itself.
    async fn typing_a_reply_tells_whatsapp_once_per_burst(t: TestDb) {
        let graph = FakeGraph::start().await;
        let app = app_with_graph(&t, &graph).await;
        let admin = admin_id(&app).await;
        let lead = lead_for(&app, "Priya Raman", "+15550100111", Some(&admin)).await;
        say(&app, "wamid.priya.typing", "15550100111", 30, "Are you open on Sunday?").await;
        app.webhooks_processed().await;
        let conv = conversation_of(&app, &id_of(&lead)).await;

        let Some(b) = browser(&app).await else { return };
        b.log_in(ADMIN_EMAIL).await;
        b.open(&format!("#/inbox/{conv}")).await;
        b.wait_text(".messages", "Are you open on Sunday?").await;
        let typing = || graph.requests().into_iter().filter(|r| r.body.get("typing_indicator").is_some()).count();
        // Spaces only: nothing to say yet, so nothing is sent.
        type_into(&b, "//textarea[@aria-label='Message']", "  ").await;
        find(&b, "//textarea[@aria-label='Message']").await.clear().await.unwrap();
        type_into(&b, "//textarea[@aria-label='Message']", "Yes, from ten").await;
        let sent = eventually("the typing indicator reaches the Graph API", || async {
            graph.requests().into_iter().find(|r| r.body.get("typing_indicator").is_some())
        })
        .await;
        assert_eq!(sent.body["typing_indicator"], json!({"type": "text"}));
        type_into(&b, "//textarea[@aria-label='Message']", " until four.\u{E007}").await;
        eventually("the reply reaches the Graph API", || async {
            graph.requests().into_iter().find(|r| r.body["text"]["body"] == "Yes, from ten until four.")
        })
        .await;
        assert_eq!(typing(), 1, "one indicator for the whole burst of keystrokes");
        b.close().await;
    }

    // "/" in the reply box finds a quick reply by its shortcut; Enter puts its text, filled in for
    // this lead and member, into the box; a page is sent as its own message.
    async fn a_quick_reply_is_found_with_a_slash_and_filled_in(t: TestDb) {
        let graph = FakeGraph::start().await;
        let app = app_with_graph(&t, &graph).await;
        let admin = admin_id(&app).await;
        let (status, lead) = app
            .post(
                "/api/v1/leads",
                &app.admin_token,
                json!({"name": "Quinn Quick", "phone": "+15550100182", "assignee_id": admin, "custom_fields": {"city": "Lyon"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{lead}");
        for (kind, title, shortcut, body) in [
            (
                "message",
                "Opening hours",
                "hours",
                "Hi {{lead.name}}, {{member.name}} here: we open at 9 in {{lead.custom.city}}.",
            ),
            ("message", "Thanks", "thanks", "Thank you!"),
            ("page", "Price list", "prices", "# Prices\n\nTables from 300 €."),
        ] {
            let (status, item) = app
                .post(
                    "/api/v1/content",
                    &app.admin_token,
                    json!({"kind": kind, "title": title, "shortcut": shortcut, "body": body}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{item}");
        }
        say(&app, "wamid.qq.1", "15550100182", 30, "When do you open?").await;
        app.webhooks_processed().await;
        let conv = conversation_of(&app, &id_of(&lead)).await;

        let Some(b) = browser(&app).await else { return };
        b.log_in(ADMIN_EMAIL).await;
        b.open(&format!("#/inbox/{conv}")).await;
        b.wait_text(".messages", "When do you open?").await;
        let message = "//textarea[@aria-label='Message']";
        type_into(&b, message, "/hou").await;
        find(&b, "//*[@role='listbox'][@aria-label='Quick replies']//*[@role='option'][contains(., 'Opening hours')]")
            .await;
        b.until(
            "only the matching item is offered",
            "return document.querySelectorAll(\"[aria-label='Quick replies'] [role=option]\").length === 1",
        )
        .await;
        type_into(&b, message, "\u{E007}").await;
        b.until(
            "the text is in the box, filled in",
            "return document.querySelector(\"textarea[aria-label='Message']\").value === 'Hi Quinn Quick, Ada Admin here: we open at 9 in Lyon.'",
        )
        .await;
        assert!(
            graph.requests().iter().all(|r| r.body.get("text").is_none()),
            "nothing sent yet: the agent checks it first"
        );
        type_into(&b, message, "\u{E007}").await;
        eventually("the reply reaches the Graph API", || async {
            graph
                .requests()
                .into_iter()
                .find(|r| r.body["text"]["body"] == "Hi Quinn Quick, Ada Admin here: we open at 9 in Lyon.")
        })
        .await;

        // A page goes at once, as a personal link.
        type_into(&b, message, "/prices").await;
        click(&b, "//*[@aria-label='Quick replies']//*[@role='option'][contains(., 'Price list')]").await;
        let link = eventually("the page link reaches the Graph API", || async {
            graph.requests().into_iter().find(|r| r.body["text"]["body"].as_str().is_some_and(|t| t.contains("/p/")))
        })
        .await;
        assert!(link.body["text"]["body"].as_str().unwrap().contains("Price list"), "{}", link.body);
        b.close().await;
    }

    // An admin makes a team in Team settings; a member of it with the visibility permission
    // creates a quick reply on the Content page and shares it with the team; a teammate sees it,
    // someone outside the team does not.
    async fn a_member_creates_a_team_visible_item(t: TestDb) {
        let app = spawn_app(&t).await;
        let (sam, sam_token) =
            app.member("sam@example.com", json!({"create_content": true, "manage_content_visibility": true})).await;
        let (kim, kim_token) = app.member("kim@example.com", json!({})).await;
        let (_, out_token) = app.member("out@example.com", json!({})).await;

        // The admin makes the team "Billing" with Sam and Kim.
        let Some(b) = browser(&app).await else { return };
        b.log_in(ADMIN_EMAIL).await;
        b.go_to("Team").await;
        type_into(&b, "//form[@aria-label='New team']//input", "Billing").await;
        click(&b, "//form[@aria-label='New team']//button[normalize-space()='Create team']").await;
        for who in ["sam", "kim"] {
            click(&b, &format!("//form[@aria-label='Edit team Billing']//label[normalize-space()='{who}']/input")).await;
        }
        click(&b, "//form[@aria-label='Edit team Billing']//button[normalize-space()='Save team']").await;
        b.until(
            "the team saved with Sam and Kim",
            "return !document.querySelector(\"form[aria-label='Edit team Billing']\") && [...document.querySelectorAll(\"[aria-label='Teams'] li\")].some((l) => l.textContent.includes('sam') && l.textContent.includes('kim'))",
        )
        .await;
        let (_, teams) = app.get("/api/v1/teams", &app.admin_token).await;
        assert_eq!(teams["teams"][0]["name"], "Billing");
        let team = id_of(&teams["teams"][0]);
        let mut members: Vec<String> = serde_json::from_value(teams["teams"][0]["member_ids"].clone()).unwrap();
        members.sort();
        let mut expected = vec![sam.to_string(), kim.to_string()];
        expected.sort();
        assert_eq!(members, expected);

        // An assignment rule takes turns within the team.
        b.go_to("Assignment").await;
        click(&b, "//button[@id='assign-add-rule']").await;
        type_into(&b, "//input[@id='rule-0-crit-0-value']", "billing-form").await;
        find(&b, "//select[@aria-label='What rule 1 does']").await.select_by_label("Round robin in a team").await.unwrap();
        find(&b, "//select[@aria-label='Team']").await.select_by_label("Billing").await.unwrap();
        click(&b, "//button[@id='assign-save']").await;
        b.wait_text("#assign-status", "Saved").await;
        let (_, settings) = app.get("/api/v1/assignment", &app.admin_token).await;
        assert_eq!(settings["rules"][0]["route"], json!({"type": "team", "team_id": team}));
        b.close().await;

        // Sam writes a quick reply and shares it with the team.
        let Some(b) = browser(&app).await else { return };
        b.log_in("sam@example.com").await;
        b.go_to("Content").await;
        type_into(&b, "//input[@id='content-title']", "Refund policy").await;
        type_into(&b, "//input[@id='content-shortcut']", "refund").await;
        type_into(&b, "//textarea[@id='content-body']", "Refunds take 5 days, {{lead.name}}.").await;
        click(&b, "//form[@aria-label='New content']//button[normalize-space()='Create']").await;
        let editor = "//form[@aria-label='Edit Refund policy']";
        find(&b, &format!("{editor}//select")).await.select_by_label("My teams").await.unwrap();
        click(&b, &format!("{editor}//label[normalize-space()='Billing']/input")).await;
        click(&b, &format!("{editor}//button[normalize-space()='Save']")).await;
        b.wait_text("#content-list", "Teams: Billing").await;

        let (_, mine) = app.get("/api/v1/content", &sam_token).await;
        assert_eq!(mine["content"][0]["visibility"], "teams");
        assert_eq!(mine["content"][0]["team_ids"], json!([team]));
        let (_, theirs) = app.get("/api/v1/content", &kim_token).await;
        assert_eq!(theirs["content"][0]["title"], "Refund policy", "a teammate sees it");
        let (_, outside) = app.get("/api/v1/content", &out_token).await;
        assert_eq!(outside["content"], json!([]), "someone outside the team does not");
        b.close().await;
    }

    // A refusal is shown as the API words it: a member without "Create content" has no form, and
    // one without the visibility permission is told what sharing needs.
    async fn the_content_page_follows_the_rules(t: TestDb) {
        let app = spawn_app(&t).await;
        app.member("sam@example.com", json!({"create_content": true})).await;
        let Some(b) = browser(&app).await else { return };
        b.log_in("sam@example.com").await;
        b.go_to("Content").await;
        type_into(&b, "//input[@id='content-title']", "Greeting").await;
        type_into(&b, "//textarea[@id='content-body']", "Hello!").await;
        // A shortcut the API refuses: its words come back as they are.
        type_into(&b, "//input[@id='content-shortcut']", "two words").await;
        click(&b, "//form[@aria-label='New content']//button[normalize-space()='Create']").await;
        let said = b.until("the refusal", "return document.getElementById('content-create-error').textContent").await;
        assert!(!said.as_str().unwrap().is_empty());
        let shortcut = find(&b, "//input[@id='content-shortcut']").await;
        shortcut.clear().await.unwrap();
        click(&b, "//form[@aria-label='New content']//button[normalize-space()='Create']").await;
        b.wait_text(
            "form[aria-label='Edit Greeting']",
            "Sharing it wider needs the “Manage content visibility” permission",
        )
        .await;
        assert_eq!(
            b.js("return !!document.querySelector(\"form[aria-label='Edit Greeting'] select\")").await,
            json!(false)
        );
        b.close().await;
    }
}
