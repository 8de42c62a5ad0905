//! The agent's inbox in real Chromium, as a person uses it: sending when WhatsApp asks for a
//! template, refused sends, losing a chat, list order and previews, the keyboard, the details
//! panel, the menu at every width, and what asks for attention (counts, notices, presence).
//!
//! Things are found the way a person finds them: by role and accessible name, by label, by
//! visible text (the `FIND` helpers below), never by CSS class.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::browser::{
    Browser, NUMBER_ID, admin_id, app_with_graph, browser, browser_with, conversation_of, lead_for, say,
};
use crate::on_both;
use crate::outbox::FakeGraph;
use crate::support::*;

/// Finding things as a person does: `sb.all(role, name)` lists the visible elements with that
/// role (explicit or implied by the element) whose accessible name contains `name`.
const FIND: &str = r#"
const sb = {
  visible(el) {
    if (!el || !el.isConnected || !el.getClientRects().length) return false;
    const s = getComputedStyle(el);
    return s.visibility !== 'hidden' && s.display !== 'none';
  },
  name(el) {
    const label = el.getAttribute('aria-label');
    if (label) return label.trim();
    const by = el.getAttribute('aria-labelledby');
    if (by) return by.split(/\s+/).map((id) => document.getElementById(id)?.textContent || '').join(' ').trim();
    if (el.labels && el.labels.length) return [...el.labels].map((l) => l.textContent).join(' ').replace(/\s+/g, ' ').trim();
    return (el.textContent || el.getAttribute('title') || el.getAttribute('placeholder') || '').replace(/\s+/g, ' ').trim();
  },
  role(el) {
    const r = el.getAttribute('role');
    if (r) return r;
    const t = el.tagName.toLowerCase();
    if (t === 'button' || t === 'summary' || (t === 'input' && ['button', 'submit'].includes(el.type))) return 'button';
    if (t === 'a' && el.hasAttribute('href')) return 'link';
    if (t === 'textarea' || (t === 'input' && ['text', 'search', 'email', 'password', ''].includes(el.type))) return 'textbox';
    if (t === 'input' && el.type === 'checkbox') return 'checkbox';
    if (t === 'select') return 'combobox';
    if (t === 'aside') return 'complementary';
    if (t === 'nav') return 'navigation';
    if (t === 'ul' || t === 'ol') return 'list';
    if (t === 'form' && (el.hasAttribute('aria-label') || el.hasAttribute('aria-labelledby'))) return 'form';
    if (/^h[1-6]$/.test(t)) return 'heading';
    return null;
  },
  all(role, name) {
    return [...document.querySelectorAll('*')].filter((e) => sb.role(e) === role && sb.visible(e) && (name === null || sb.name(e).includes(name)));
  },
  one(role, name) { return sb.all(role, name)[0] || null; },
  text() { return document.body.innerText; },
};
"#;

impl Browser {
    async fn run(&self, script: &str) -> Value {
        self.js(&format!("{FIND}\n{script}")).await
    }

    /// Polls `script` (with the `FIND` helpers) until it returns something truthy, for 20 s at
    /// most; a timeout shows what the page said.
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        self.wait_for_within(what, script, Duration::from_secs(20)).await
    }

    async fn wait_for_within(&self, what: &str, script: &str, within: Duration) -> Value {
        let script = format!("{FIND}\n{script}");
        let deadline = Instant::now() + within;
        loop {
            let v = self.js(&script).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let page = self.js("return document.body.innerText").await;
                panic!("timed out waiting for: {what}\n--- the page said:\n{}", page.as_str().unwrap_or(""));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until an element with `role` whose name contains `name` is visible.
    async fn sees_role(&self, role: &str, name: &str) {
        self.wait_for(
            &format!("a {role} named {name:?}"),
            &format!("return !!sb.one({}, {})", json!(role), json!(name)),
        )
        .await;
    }

    async fn has_role(&self, role: &str, name: &str) -> bool {
        self.run(&format!("return !!sb.one({}, {})", json!(role), json!(name))).await == json!(true)
    }

    /// Waits until no visible element with `role` is named `name`.
    async fn loses_role(&self, role: &str, name: &str) {
        self.wait_for(
            &format!("no {role} named {name:?}"),
            &format!("return !sb.one({}, {})", json!(role), json!(name)),
        )
        .await;
    }

    /// Waits until the page shows `text`.
    async fn sees(&self, text: &str) {
        self.wait_for(&format!("the page shows {text:?}"), &format!("return sb.text().includes({})", json!(text)))
            .await;
    }

    async fn shows(&self, text: &str) -> bool {
        self.run(&format!("return sb.text().includes({})", json!(text))).await == json!(true)
    }

    /// The WebDriver element of the first visible `role` named `name` (waiting for it).
    async fn get(&self, role: &str, name: &str) -> fantoccini::elements::Element {
        let tag = format!("p{}", rand::random::<u32>());
        self.wait_for(
            &format!("a {role} named {name:?}"),
            &format!(
                "const e = sb.one({}, {}); if (!e) return false; e.setAttribute('data-probe', {}); return true",
                json!(role),
                json!(name),
                json!(tag)
            ),
        )
        .await;
        self.c.find(Locator::Css(&format!("[data-probe='{tag}']"))).await.expect("the marked element")
    }

    async fn click(&self, role: &str, name: &str) {
        self.get(role, name).await.click().await.unwrap_or_else(|e| panic!("click {role} {name:?}: {e}"));
    }

    async fn type_in(&self, role: &str, name: &str, text: &str) {
        self.get(role, name).await.send_keys(text).await.unwrap_or_else(|e| panic!("type into {role} {name:?}: {e}"));
    }

    /// Presses one key wherever the keyboard focus is.
    async fn press(&self, key: char) {
        let keys =
            KeyActions::new("keyboard".into()).then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
        self.c.perform_actions(keys).await.expect("key press");
    }

    /// The accessible name of the focused element and its role.
    async fn focused(&self) -> (String, String) {
        let v = self.run("const e = document.activeElement; return [sb.role(e) || '', sb.name(e)]").await;
        (v[0].as_str().unwrap_or("").to_owned(), v[1].as_str().unwrap_or("").to_owned())
    }

    /// The order in which `names` appear in the conversation list named `list`.
    async fn order(&self, list: &str, names: &[&str]) -> Vec<String> {
        let text = self.run(&format!("const l = sb.one('list', {}); return l ? l.innerText : ''", json!(list))).await;
        let text = text.as_str().unwrap_or("").to_owned();
        let mut found: Vec<(usize, String)> =
            names.iter().filter_map(|n| text.find(n).map(|i| (i, (*n).to_owned()))).collect();
        found.sort();
        found.into_iter().map(|(_, n)| n).collect()
    }

    async fn in_list(&self, list: &str, name: &str) -> bool {
        self.order(list, &[name]).await.len() == 1
    }
}

fn graph_error(code: i64, title: &str) -> Value {
    json!({"error": {"message": format!("(#{code}) {title}"), "type": "OAuthException", "code": code, "fbtrace_id": "A"}})
}

fn echo_payload(wamid: &str, to: &str, ts: i64, text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "100200300400500", "changes": [{
        "field": "smb_message_echoes", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100100", "phone_number_id": NUMBER_ID},
        "message_echoes": [{"from": "15550100100", "to": to, "id": wamid, "timestamp": ts.to_string(),
            "type": "text", "text": {"body": text}}]}}]}]}))
    .unwrap()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

const DAY: i64 = 86_400;

on_both! {
    async fn the_composer_turns_into_the_template_form_as_soon_as_whatsapp_wants_one(t: TestDb) {
        let graph = FakeGraph::start().await;
        let app = app_with_graph(&t, &graph).await;
        let admin = admin_id(&app).await;
        let priya = lead_for(&app, "Priya Raman", "+15550100111", Some(&admin)).await;
        let omar = lead_for(&app, "Omar Haddad", "+15550100122", Some(&admin)).await;
        say(&app, "wamid.p.1", "15550100111", 60, "Can you send the invoice?").await;
        app.webhooks_processed().await;
        let priya_chat = conversation_of(&app, &id_of(&priya)).await;
        let Some(b) = browser(&app).await else { return };
        b.log_in(ADMIN_EMAIL).await;

        // Omar wrote almost a day ago: his window closes while his chat is open, and the
        // template form comes, no reload.
        say(&app, "wamid.o.1", "15550100122", DAY - 20, "Thanks for yesterday").await;
        app.webhooks_processed().await;
        let omar_chat = conversation_of(&app, &id_of(&omar)).await;
        b.open(&format!("#/inbox/{omar_chat}")).await;
        b.sees_role("textbox", "Message").await;
        b.wait_for_within("the template form", "return !!sb.one('form', 'Send a template')", Duration::from_secs(40)).await;
        assert!(!b.has_role("textbox", "Message").await);

        // Meta refuses a reply with 131047: the chat switches to templates at once, and the
        // failed bubble says why without hovering.
        b.open(&format!("#/inbox/{priya_chat}")).await;
        graph.then(400, graph_error(131047, "Re-engagement message"));
        b.type_in("textbox", "Message", "Here is the invoice.\u{E007}").await;
        b.sees_role("form", "Send a template").await;
        assert!(!b.has_role("textbox", "Message").await, "no text box while a template is required");
        b.sees("Not delivered — more than 24 hours since the customer wrote").await;
        b.sees("WhatsApp refused a free-form message").await;

        // The customer writes again: the text box is back.
        say(&app, "wamid.p.2", "15550100111", 0, "Hello?").await;
        b.sees_role("textbox", "Message").await;
        assert!(!b.has_role("form", "Send a template").await);
        b.close().await;
    }

    async fn a_refused_send_says_not_sent_and_retry_sends_it_once(t: TestDb) {
        let graph = FakeGraph::start().await;
        let mut app = app_with_graph(&t, &graph).await;
        let admin = admin_id(&app).await;
        let priya = lead_for(&app, "Priya Raman", "+15550100111", Some(&admin)).await;
        say(&app, "wamid.p.1", "15550100111", 60, "Are you open tomorrow?").await;
        app.webhooks_processed().await;
        let conv = conversation_of(&app, &id_of(&priya)).await;
        let Some(b) = browser(&app).await else { return };
        b.log_in(ADMIN_EMAIL).await;
        b.open(&format!("#/inbox/{conv}")).await;
        b.sees_role("textbox", "Message").await;

        // The server goes away; the send is refused and its own bubble says so.
        app.stop().await;
        b.type_in("textbox", "Message", "Yes, from 9 to 5.\u{E007}").await;
        b.sees("Not sent — the server").await;
        b.sees_role("button", "Retry").await;
        b.sees_role("button", "Discard").await;
        let composer = b.run("return sb.one('textbox', 'Message').value").await;
        assert_eq!(composer, json!(""), "the text is not put back to be sent a second time");

        // Back up; Retry sends it, once.
        let restart = |app: &TestApp| {
            let mut config = test_config(&t.url);
            config.graph_url = graph.url.clone();
            config.listen = app.addr.to_string();
            switchboard::app::start_with(config, t.db.clone(), app.clock.clone())
        };
        app.running = Some(restart(&app).await.expect("the server restarts on its address"));
        b.click("button", "Retry").await;
        eventually("the reply is sent", || async {
            graph.requests().iter().any(|r| r.body["text"]["body"] == "Yes, from 9 to 5.").then_some(())
        })
        .await;
        b.loses_role("button", "Retry").await;
        let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
        let copies = page["messages"].as_array().unwrap().iter().filter(|m| m["text"] == "Yes, from 9 to 5.").count();
        assert_eq!(copies, 1, "exactly one message");
        let bubbles = b.run("return sb.one('log', 'Messages').innerText.split('Yes, from 9 to 5.').length - 1").await;
        assert_eq!(bubbles, json!(1), "and one bubble");

        // A refused send can be discarded: it is gone, and never sent.
        app.stop().await;
        b.type_in("textbox", "Message", "Never mind.\u{E007}").await;
        b.sees("Not sent —").await;
        b.click("button", "Discard").await;
        b.wait_for("the bubble is gone", "return !sb.text().includes('Never mind.')").await;
        app.running = Some(restart(&app).await.expect("the server restarts"));
        b.wait_text(".live-status", "Live").await;
        let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
        assert!(!page["messages"].as_array().unwrap().iter().any(|m| m["text"] == "Never mind."));
        b.close().await;
    }

    async fn a_chat_one_loses_leaves_the_list_and_says_so(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_ID, "15550100100", false).await;
        let (mia, _) = app.member("mia@example.com", json!({"view_unassigned": true})).await;
        let (_, sam_token) = app.member("sam@example.com", json!({"view_unassigned": true})).await;
        let priya = lead_for(&app, "Priya Raman", "+15550100111", Some(&mia.to_string())).await;
        let wes = lead_for(&app, "Walk-in Wes", "+15550100177", None).await;
        say(&app, "wamid.p.1", "15550100111", 120, "Is my order ready?").await;
        say(&app, "wamid.w.1", "15550100177", 60, "Anyone there?").await;
        app.webhooks_processed().await;
        let priya_chat = conversation_of(&app, &id_of(&priya)).await;
        let wes_chat = conversation_of(&app, &id_of(&wes)).await;
        let Some(b) = browser(&app).await else { return };
        b.log_in("mia@example.com").await;

        // Someone else claims the unassigned chat Mia has open: it leaves her list within a
        // second and the chat says she lost it.
        b.open(&format!("#/inbox/{wes_chat}")).await;
        b.sees("Anyone there?").await;
        assert!(b.in_list("Inbox", "Walk-in Wes").await);
        let claimed = Instant::now();
        let (status, _) = app.post(&format!("/api/v1/conversations/{wes_chat}/claim"), &sam_token, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        b.sees("sam took this chat — you no longer have access to it.").await;
        b.wait_for("Wes leaves the list", "const l = sb.one('list', 'Inbox'); return l && !l.innerText.includes('Walk-in Wes')").await;
        assert!(claimed.elapsed() < Duration::from_secs(3), "within a second or so: {:?}", claimed.elapsed());
        assert!(!b.has_role("button", "Claim").await, "nothing left to do there");

        // Mia gives her own chat to Sam: without "see others' chats" it is no longer hers to see.
        b.open(&format!("#/inbox/{priya_chat}")).await;
        b.sees_role("textbox", "Message").await;
        b.run("const s = sb.one('combobox', 'Assign to'); s.value = [...s.options].find((o) => o.text.startsWith('sam')).value; s.dispatchEvent(new Event('change'))").await;
        b.click("button", "Assign").await;
        b.sees("You gave this chat to sam — you no longer have access to it.").await;
        b.wait_for("Priya leaves the list", "const l = sb.one('list', 'Inbox'); return l && !l.innerText.includes('Priya Raman')").await;
        assert!(!b.has_role("textbox", "Message").await);
        b.close().await;
    }

    async fn the_list_is_ordered_and_timed_by_the_last_message(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_ID, "15550100100", false).await;
        let admin = admin_id(&app).await;
        let old = lead_for(&app, "Old Olga", "+15550100111", Some(&admin)).await;
        lead_for(&app, "Recent Rita", "+15550100122", Some(&admin)).await;
        say(&app, "wamid.old.1", "15550100111", 90 * DAY, "Thanks, all good").await;
        say(&app, "wamid.new.1", "15550100122", 60, "See you at 3").await;
        app.webhooks_processed().await;
        let olga = conversation_of(&app, &id_of(&old)).await;
        let Some(b) = browser(&app).await else { return };
        b.log_in(ADMIN_EMAIL).await;
        b.sees("Old Olga").await;
        assert_eq!(b.order("Inbox", &["Recent Rita", "Old Olga"]).await, ["Recent Rita", "Old Olga"]);

        // Labelling the three-month-old chat changes neither its place nor its time.
        let (_, label) = app.post("/api/v1/labels", &app.admin_token, json!({"name": "Archive"})).await;
        let (status, _) = app.json(Method::PUT, &format!("/api/v1/conversations/{olga}/labels"), &app.admin_token,
            Some(json!({"label_ids": [label["id"]]}))).await;
        assert_eq!(status, StatusCode::OK);
        b.wait_for("the label shows in the list", "const l = sb.one('list', 'Inbox'); return l && l.innerText.includes('Archive')").await;
        assert_eq!(b.order("Inbox", &["Recent Rita", "Old Olga"]).await, ["Recent Rita", "Old Olga"]);
        let shown = b.run("const a = sb.one('link', 'Old Olga'); return a.querySelector('time').textContent").await;
        assert!(!shown.as_str().unwrap().contains(':'), "a date, not today's time: {shown}");
        b.close().await;
    }

    async fn previews_name_who_sent_the_last_message(t: TestDb) {
        let graph = FakeGraph::start().await;
        let app = app_with_graph(&t, &graph).await;
        let admin = admin_id(&app).await;
        let (sam, sam_token) = app.member("sam@example.com", json!({})).await;
        let mine = lead_for(&app, "Priya Raman", "+15550100111", Some(&admin)).await;
        let sams = lead_for(&app, "Omar Haddad", "+15550100122", Some(&sam.to_string())).await;
        lead_for(&app, "Lena Fischer", "+15550100133", Some(&admin)).await;
        for (i, phone) in ["15550100111", "15550100122", "15550100133"].iter().enumerate() {
            say(&app, &format!("wamid.in.{i}"), phone, 300, "Hello").await;
        }
        app.webhooks_processed().await;
        let mine = conversation_of(&app, &id_of(&mine)).await;
        let sams = conversation_of(&app, &id_of(&sams)).await;
        let (s, _) = app.post(&format!("/api/v1/conversations/{mine}/messages"), &app.admin_token, json!({"type": "text", "text": "On my way"})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let (s, _) = app.post(&format!("/api/v1/conversations/{sams}/messages"), &sam_token, json!({"type": "text", "text": "Invoice attached"})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let now = app.clock.now().timestamp();
        assert_eq!(app.signed_webhook(&echo_payload("wamid.echo.1", "15550100133", now, "Typed on the phone")).await, StatusCode::OK);
        app.webhooks_processed().await;
        let Some(b) = browser(&app).await else { return };
        b.log_in(ADMIN_EMAIL).await;
        b.sees("You: On my way").await;
        b.sees("sam: Invoice attached").await;
        b.sees("WhatsApp app: Typed on the phone").await;
        assert!(!b.shows("You: Invoice attached").await && !b.shows("You: Typed on the phone").await);
        b.close().await;
    }

    async fn escape_in_search_clears_the_filter_too(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_ID, "15550100100", false).await;
        lead_for(&app, "Priya Raman", "+15550100111", None).await;
        lead_for(&app, "Omar Haddad", "+15550100122", None).await;
        say(&app, "wamid.p.1", "15550100111", 100, "Hi").await;
        say(&app, "wamid.o.1", "15550100122", 90, "Hey").await;
        app.webhooks_processed().await;
        let Some(b) = browser(&app).await else { return };
        b.log_in(ADMIN_EMAIL).await;
        b.sees("Omar Haddad").await;
        b.type_in("textbox", "Search by name or phone", "priya").await;
        b.wait_for("only Priya", "const l = sb.one('list', 'Inbox'); return l && !l.innerText.includes('Omar Haddad') && l.innerText.includes('Priya Raman')").await;
        b.press('\u{E00C}').await;
        b.wait_for("everyone again", "const l = sb.one('list', 'Inbox'); return l && l.innerText.includes('Omar Haddad') && l.innerText.includes('Priya Raman')").await;
        assert_eq!(b.run("return sb.one('textbox', 'Search by name or phone').value").await, json!(""));
        b.close().await;
    }

    async fn the_details_panel_closes_and_never_covers_the_chat_header(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_ID, "15550100100", false).await;
        let admin = admin_id(&app).await;
        let priya = lead_for(&app, "Priya Raman", "+15550100111", Some(&admin)).await;
        say(&app, "wamid.p.1", "15550100111", 100, "Hi").await;
        app.webhooks_processed().await;
        let conv = conversation_of(&app, &id_of(&priya)).await;
        let Some(b) = browser(&app).await else { return };
        b.c.set_window_size(1000, 800).await.unwrap();
        b.log_in(ADMIN_EMAIL).await;
        b.open(&format!("#/inbox/{conv}")).await;
        b.click("button", "Details").await;
        b.sees_role("complementary", "Lead details").await;
        // The chat's header stays in reach: its Details button is not under the panel.
        let reachable = b.run("const d = sb.one('button', 'Details'); const r = d.getBoundingClientRect(); return d.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2))").await;
        assert_eq!(reachable, json!(true), "the panel covers the chat header");
        b.press('\u{E00C}').await;
        b.loses_role("complementary", "Lead details").await;
        b.click("button", "Details").await;
        b.sees_role("complementary", "Lead details").await;
        b.click("button", "Close details").await;
        b.loses_role("complementary", "Lead details").await;
        b.close().await;
    }

    async fn every_page_is_in_reach_at_every_width(t: TestDb) {
        let app = spawn_app(&t).await;
        let Some(b) = browser(&app).await else { return };
        b.log_in(ADMIN_EMAIL).await;
        // Every page the navigation holds (whether shown or folded away), by name.
        let pages = b.run("return [...document.querySelectorAll('nav[aria-label=Main] a[href]')].map((a) => [a.textContent, a.getAttribute('href')])").await;
        let pages: Vec<(String, String)> = serde_json::from_value(pages).unwrap();
        for known in ["Inbox", "Monitor", "Team", "Labels", "Numbers", "Assignment", "Webhooks"] {
            assert!(pages.iter().any(|(n, _)| n == known), "{known} is in the navigation: {pages:?}");
        }
        for (width, height) in [(390, 844), (1024, 768), (1400, 900)] {
            b.c.set_window_size(width, height).await.unwrap();
            let fits = b.js("const over = [...document.querySelectorAll('header *')].filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > innerWidth + 1).map((e) => e.tagName + ':' + (e.getAttribute('aria-label') || e.textContent).slice(0, 30)); return over.length ? over.join(', ') : 'fits'").await;
            assert_eq!(fits, json!("fits"), "the header at {width} px");
            for (name, href) in &pages {
                if !b.has_role("link", name).await || b.run(&format!("const a = sb.all('link', {}).find((a) => a.getAttribute('href') === {}); if (!a) return false; const r = a.getBoundingClientRect(); return r.right <= innerWidth && r.left >= 0", json!(name), json!(href))).await != json!(true) {
                    b.click("button", "Menu").await;
                }
                let link = b.get("link", name).await;
                let inside = b.run(&format!("const a = sb.all('link', {}).find((a) => a.getAttribute('href') === {}); const r = a.getBoundingClientRect(); return r.right <= innerWidth && r.left >= 0 && r.bottom <= innerHeight", json!(name), json!(href))).await;
                assert_eq!(inside, json!(true), "{name} is on screen at {width} px");
                link.click().await.unwrap();
                let at = b.until("the page opens", &format!("return location.hash === {} && location.hash", json!(href))).await;
                assert_eq!(at, json!(href), "{name} at {width} px");
            }
            let logout = b.run("const r = sb.one('button', 'Log out').getBoundingClientRect(); return r.right <= innerWidth").await;
            assert_eq!(logout, json!(true), "Log out in reach at {width} px");
        }
        b.close().await;
    }

    async fn the_keyboard_focus_stays_where_the_agent_put_it(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_ID, "15550100100", false).await;
        let admin = admin_id(&app).await;
        lead_for(&app, "Omar Haddad", "+15550100122", Some(&admin)).await;
        let wes = lead_for(&app, "Walk-in Wes", "+15550100177", None).await;
        say(&app, "wamid.w.1", "15550100177", 200, "Anyone there?").await;
        say(&app, "wamid.o.1", "15550100122", 100, "Is the quote ready?").await;
        app.webhooks_processed().await;
        let wes_chat = conversation_of(&app, &id_of(&wes)).await;
        let Some(b) = browser(&app).await else { return };
        b.log_in(ADMIN_EMAIL).await;
        b.sees("Omar Haddad").await;

        // j opens the first chat and puts the focus on its row; reading it redraws the row.
        b.press('j').await;
        b.sees("Is the quote ready?").await;
        b.wait_for("Omar's chat is read", "const a = sb.one('link', 'Omar Haddad'); return a && !a.querySelector('[aria-label$=unread]')").await;
        let (role, name) = b.focused().await;
        assert_eq!(role, "link");
        assert!(name.contains("Omar Haddad"), "focus on Omar's row: {name}");
        // A new message for that row redraws it again.
        say(&app, "wamid.o.2", "15550100122", 0, "Hello again").await;
        b.sees("Hello again").await;
        b.wait_for("the row shows it", "const a = sb.one('link', 'Omar Haddad'); return a && a.innerText.includes('Hello again')").await;
        let (_, name) = b.focused().await;
        assert!(name.contains("Omar Haddad"), "focus still on Omar's row: {name}");
        // Enter on a row opens it.
        b.press('k').await;
        b.press('j').await;
        let (_, name) = b.focused().await;
        assert!(name.contains("Walk-in Wes"), "j moved to Wes: {name}");
        b.press('\u{E007}').await;
        b.wait_for("Wes's chat open", &format!("return location.hash.endsWith({})", json!(wes_chat))).await;
        // After Claim, the focus is in the composer.
        b.click("button", "Claim").await;
        b.sees_role("textbox", "Message").await;
        b.wait_for("focus in the composer", "return sb.name(document.activeElement) === 'Message'").await;
        b.close().await;
    }

    async fn the_title_and_tabs_count_what_waits(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_ID, "15550100100", false).await;
        let admin = admin_id(&app).await;
        lead_for(&app, "Priya Raman", "+15550100111", Some(&admin)).await;
        lead_for(&app, "Omar Haddad", "+15550100122", Some(&admin)).await;
        lead_for(&app, "Lena Fischer", "+15550100133", None).await;
        say(&app, "wamid.p.1", "15550100111", 300, "One").await;
        say(&app, "wamid.o.1", "15550100122", 200, "Two").await;
        say(&app, "wamid.o.2", "15550100122", 150, "Three").await;
        say(&app, "wamid.l.1", "15550100133", 100, "Four").await;
        app.webhooks_processed().await;
        let Some(b) = browser(&app).await else { return };
        b.log_in(ADMIN_EMAIL).await;
        b.until("three unread in the title", "return document.title.startsWith('(3) Inbox')").await;
        b.sees_role("tab", "Mine").await;
        b.wait_for("Mine counts two chats", "return sb.one('tab', 'Mine').innerText.replace(/\\s+/g, '') === 'Mine2'").await;
        b.wait_for("Unassigned counts one", "return sb.one('tab', 'Unassigned').innerText.replace(/\\s+/g, '') === 'Unassigned1'").await;
        say(&app, "wamid.p.2", "15550100111", 0, "Five").await;
        b.until("four unread", "return document.title.startsWith('(4) Inbox')").await;
        b.close().await;
    }

    async fn one_tab_notifies_and_every_tab_shows_the_assignment(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_ID, "15550100100", true).await;
        let (mia, _) = app.member("mia@example.com", json!({})).await;
        let admin = admin_id(&app).await;
        let prefs = json!({"profile.default_content_setting_values.notifications": 1});
        let Some(b) = browser_with(&app, prefs).await else { return };
        b.log_in("mia@example.com").await;
        let first = b.c.window().await.unwrap();
        // Desktop notifications on, through the bell.
        b.click("button", "Notifications").await;
        b.click("checkbox", "Desktop notifications").await;
        b.wait_for("turned on", "return sb.one('checkbox', 'Desktop notifications').checked").await;
        // A second tab of the same app.
        let second = b.c.new_window(true).await.unwrap().handle;
        b.c.switch_to_window(second.clone()).await.unwrap();
        b.open("#/inbox").await;
        b.until("live in the second tab", "return window.__sbLive && window.__sbLive.state === 'live'").await;
        // Notifications are watched where the page shows them (the browser's own are outside the page).
        let spy = "window.__shown = []; const Real = window.Notification; window.Notification = class { constructor(t, o) { window.__shown.push([t, o && o.body]); window.__last = this; } static get permission() { return Real.permission; } static requestPermission() { return Real.requestPermission(); } }; return Real.permission";
        assert_eq!(b.js(spy).await, json!("granted"));
        b.c.switch_to_window(first.clone()).await.unwrap();
        assert_eq!(b.js(spy).await, json!("granted"));

        // Round robin to Mia; a new contact writes: Mia is alerted.
        let (s, body) = app.json(Method::PUT, "/api/v1/assignment", &app.admin_token, Some(json!({"mode": "round_robin",
            "leads_per_round": 1, "only_available": false, "members": [{"member_id": mia, "enabled": true}, {"member_id": admin, "enabled": false}],
            "max_open_per_member": null, "rules": []}))).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        say(&app, "wamid.new.1", "15550100199", 5, "Do you ship to Lyon?").await;
        b.sees("is now assigned to you").await;
        b.c.switch_to_window(second.clone()).await.unwrap();
        b.sees("is now assigned to you").await;
        let here = b.js("return window.__shown.length").await;
        b.c.switch_to_window(first.clone()).await.unwrap();
        let there = b.js("return window.__shown.length").await;
        assert_eq!(here.as_i64().unwrap() + there.as_i64().unwrap(), 1, "one notification for two tabs ({here} + {there})");

        // Clicking it opens the chat.
        let (tab, handle) = if there == json!(1) { ("first", first) } else { ("second", second) };
        b.c.switch_to_window(handle).await.unwrap();
        b.js("window.__last.onclick()").await;
        b.until(&format!("the chat opens in the {tab} tab"), "return /^#\\/inbox\\/[0-9a-f-]{36}$/.test(location.hash)").await;
        b.sees("Do you ship to Lyon?").await;
        b.close().await;
    }

    async fn the_agent_switches_between_available_and_away(t: TestDb) {
        let app = spawn_app(&t).await;
        let (mia, _) = app.member("mia@example.com", json!({})).await;
        let admin = admin_id(&app).await;
        let Some(b) = browser(&app).await else { return };
        b.log_in("mia@example.com").await;
        let (s, _) = app.json(Method::PUT, "/api/v1/assignment", &app.admin_token, Some(json!({"mode": "round_robin",
            "leads_per_round": 1, "only_available": true, "members": [{"member_id": mia, "enabled": true}, {"member_id": admin, "enabled": false}],
            "max_open_per_member": null, "rules": []}))).await;
        assert_eq!(s, StatusCode::OK);
        b.sees_role("switch", "Available").await;
        assert_eq!(b.run("return sb.one('switch', 'Available').getAttribute('aria-checked')").await, json!("true"));
        b.click("switch", "Available").await;
        b.sees("Away").await;
        assert_eq!(b.run("return sb.one('switch', 'Available').getAttribute('aria-checked')").await, json!("false"));
        // The server has it: round robin skips her.
        let skipped = eventually("Mia counts as away", || async {
            let lead = app.create_lead(&format!("L{}", rand::random::<u16>()), &format!("+1555020{:04}", rand::random::<u16>() % 10000)).await;
            let (_, log) = app.get(&format!("/api/v1/leads/{}/assignment-log", id_of(&lead)), &app.admin_token).await;
            (log["decisions"][0]["candidates"][0]["skipped"] == "away").then_some(lead)
        }).await;
        assert_eq!(skipped["assignee_id"], Value::Null);
        // Admins see it in the members list (the Team page and the monitor's member filter).
        let (_, members) = app.get("/api/v1/members", &app.admin_token).await;
        let listed = members["members"].as_array().unwrap().iter().find(|m| m["email"] == "mia@example.com").unwrap().clone();
        assert_eq!(listed["presence"], "away");
        // And back.
        b.click("switch", "Available").await;
        b.wait_for("available again", "return sb.one('switch', 'Available').getAttribute('aria-checked') === 'true'").await;
        eventually("Mia gets the next lead", || async {
            let lead = app.create_lead(&format!("M{}", rand::random::<u16>()), &format!("+1555030{:04}", rand::random::<u16>() % 10000)).await;
            (lead["assignee_id"] == json!(mia)).then_some(())
        }).await;
        b.close().await;
    }

    async fn the_team_view_hides_others_and_unassigned_chats_from_all(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_ID, "15550100100", false).await;
        let admin = admin_id(&app).await;
        let (sam, sam_token) = app.member("sam@example.com", json!({"view_others_leads": true, "view_unassigned": true})).await;
        lead_for(&app, "Sam's Sara", "+15550100111", Some(&sam.to_string())).await;
        lead_for(&app, "Ada's Omar", "+15550100122", Some(&admin)).await;
        lead_for(&app, "Nobody's Nina", "+15550100133", None).await;
        for (i, p) in ["15550100111", "15550100122", "15550100133"].iter().enumerate() {
            say(&app, &format!("wamid.tv.{i}"), p, 100 - i as i64, "Hi").await;
        }
        app.webhooks_processed().await;
        let Some(b) = browser(&app).await else { return };
        b.log_in("sam@example.com").await;
        b.click("tab", "All").await;
        b.sees("Nobody's Nina").await;
        b.sees("Ada's Omar").await;
        b.click("button", "Team view").await;
        b.click("checkbox", "Chats assigned to others").await;
        b.wait_for("Omar hidden", "const l = sb.one('list', 'Inbox'); return l && !l.innerText.includes(\"Ada's Omar\") && l.innerText.includes(\"Sam's Sara\")").await;
        // It is kept on the server: a reload keeps it.
        b.c.refresh().await.unwrap();
        b.sees("Nobody's Nina").await;
        assert!(!b.shows("Ada's Omar").await, "still hidden after a reload");
        b.click("button", "Team view").await;
        b.click("checkbox", "Unassigned chats").await;
        b.wait_for("Nina hidden", "const l = sb.one('list', 'Inbox'); return l && !l.innerText.includes(\"Nobody's Nina\")").await;
        let (_, prefs) = app.get("/api/v1/me/preferences", &sam_token).await;
        assert_eq!(prefs["team_view"], json!({"show_others": false, "show_unassigned": false}));
        // The Unassigned tab still lists them: an explicit choice wins.
        b.click("tab", "Unassigned").await;
        b.sees("Nobody's Nina").await;
        b.close().await;
    }

    async fn the_smaller_things_read_right(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number(NUMBER_ID, "15550100100", true).await;
        let admin = admin_id(&app).await;
        let Some(b) = browser(&app).await else { return };

        // A wrong password is not left in the box.
        b.open("").await;
        b.type_in("textbox", "Email", ADMIN_EMAIL).await;
        b.type_in("textbox", "Password", "not my password\u{E007}").await;
        b.sees("Wrong email or password").await;
        assert_eq!(b.run("return sb.one('textbox', 'Password').value").await, json!(""));
        b.log_in(ADMIN_EMAIL).await;

        // A contact known only by their WhatsApp user id shows that id, and a window that
        // closed months ago says when, not how many hours.
        assert_eq!(app.signed_webhook(&crate::webhooks::fixture("bsuid-only-text.json")).await, StatusCode::OK);
        app.webhooks_processed().await;
        let (_, found) = app.get("/api/v1/conversations?q=marisol", &app.admin_token).await;
        let marisol = found["conversations"][0]["id"].as_str().unwrap().to_owned();
        let (s, _) = app.post(&format!("/api/v1/conversations/{marisol}/assign"), &app.admin_token, json!({"assignee_id": admin})).await;
        assert_eq!(s, StatusCode::OK);
        b.open(&format!("#/inbox/{marisol}")).await;
        b.sees("US.48295061738924051698").await;
        b.sees("The 24-hour reply window closed on ").await;
        assert!(!b.shows(" h ").await, "no hour counts");

        // A sent template shows what was filled in.
        let (s, _) = app.post(&format!("/api/v1/conversations/{marisol}/messages"), &app.admin_token, json!({"type": "template",
            "template": {"name": "order_ready", "language": "en_US", "components": [{"type": "body", "parameters": [
                {"type": "text", "text": "Marisol"}, {"type": "text", "text": "#1234"}]}]}})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        b.sees("Marisol · #1234").await;

        // Label activities name the label; the label filter offers new labels at once.
        let (_, vip) = app.post("/api/v1/labels", &app.admin_token, json!({"name": "VIP"})).await;
        b.wait_for("the filter offers VIP", "return [...sb.one('combobox', 'Filter by label').options].some((o) => o.text === 'VIP')").await;
        let (s, _) = app.json(Method::PUT, &format!("/api/v1/conversations/{marisol}/labels"), &app.admin_token,
            Some(json!({"label_ids": [vip["id"]]}))).await;
        assert_eq!(s, StatusCode::OK);
        b.sees("Label “VIP” added by Ada Admin").await;

        // A search without hits says so.
        b.type_in("textbox", "Search by name or phone", "zzz").await;
        b.sees("No conversations match “zzz”.").await;
        b.press('\u{E00C}').await;

        // A long chat: per-message buttons are not tab stops; a reply sent in the same second
        // as the customer's message shows below it.
        let priya = lead_for(&app, "Priya Raman", "+15550100111", Some(&admin)).await;
        for i in 0..30 {
            say(&app, &format!("wamid.long.{i}"), "15550100111", 600 - i, &format!("Line {i}")).await;
        }
        app.webhooks_processed().await;
        let conv = conversation_of(&app, &id_of(&priya)).await;
        b.open(&format!("#/inbox/{conv}")).await;
        b.sees("Line 29").await;
        let stops = b.run("return [...sb.one('log', 'Messages').querySelectorAll('button, a[href], input, textarea, select')].filter((e) => e.tabIndex >= 0).length").await;
        assert_eq!(stops, json!(0), "no tab stops inside the message log");
        b.type_in("textbox", "Message", "Coming!\u{E007}").await;
        let reply = eventually("the reply is stored", || async {
            let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
            page["messages"].as_array().unwrap().iter().find(|m| m["text"] == "Coming!").cloned()
        }).await;
        b.wait_for("the reply is accepted", "return !sb.text().includes('Not sent')").await;
        let at = chrono::DateTime::parse_from_rfc3339(reply["created_at"].as_str().unwrap()).unwrap().timestamp();
        assert_eq!(app.signed_webhook(&crate::webhooks::text_payload("wamid.same.1", "15550100111", at, "Are you coming?")).await, StatusCode::OK);
        b.sees("Are you coming?").await;
        let log = b.run("return sb.one('log', 'Messages').innerText").await;
        let log = log.as_str().unwrap();
        assert!(log.find("Are you coming?").unwrap() < log.find("Coming!").unwrap(), "the customer's message first:\n{log}");

        // Close comes with an undo.
        b.click("button", "Close").await;
        b.sees("Chat closed.").await;
        b.click("button", "Undo").await;
        eventually("reopened", || async {
            let (_, c) = app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token).await;
            (c["status"] == "open").then_some(())
        }).await;
        b.close().await;
    }
}
