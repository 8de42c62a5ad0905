//! The browser UI: how it is served (CSP, caching, CSRF), the conversation search it uses, and
//! stories in real headless Chromium driven through chromedriver by fantoccini.
//!
//! Chromium tests need `/usr/bin/chromedriver` and `/usr/bin/chromium` (Debian's `chromium` and
//! `chromium-driver`; `.ci/run` installs them). Under CI a missing driver fails the test;
//! elsewhere it is skipped with a message. With `SWITCHBOARD_SCREENSHOTS=1` the tests save
//! screenshots of the inbox, the chat view and the admin monitor into `docs/screenshots/`.

use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::on_both;
use crate::outbox::FakeGraph;
use crate::support::*;
use crate::webhooks::text_payload;

pub(crate) const NUMBER_ID: &str = "100200300400600";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

// ---------------------------------------------------------------------------------------------
// Serving: no browser needed.

fn asset_path(index: &str, file: &str) -> String {
    let at = index.find(file).unwrap_or_else(|| panic!("index.html links {file}"));
    let start = index[..at].rfind("/assets/").expect("versioned asset path");
    index[start..at + file.len()].to_owned()
}

#[tokio::test]
async fn the_ui_is_served_with_a_strict_csp_and_content_hashed_assets() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;

    let index = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    let h = index.headers().clone();
    assert!(h[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert_eq!(h[CACHE_CONTROL], "no-cache", "index.html is never cached");
    let csp = h[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    let script_src = csp.split(';').map(str::trim).find(|d| d.starts_with("script-src")).expect("script-src");
    assert!(!script_src.contains("'unsafe-inline'") && !script_src.contains('*'), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let html = index.text().await.unwrap();
    assert!(!html.contains("{{ASSETS}}"));
    assert!(!html.contains("onclick") && !html.contains("<script>"), "no inline scripts or handlers");

    // The entry module lives under a content-hashed prefix: cached for a year, with an ETag.
    let app_js = asset_path(&html, "/js/app.js");
    let js = app.client.get(app.url(&app_js)).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    assert!(js.headers()[CACHE_CONTROL].to_str().unwrap().contains("immutable"));
    assert!(js.headers().contains_key(CONTENT_SECURITY_POLICY));
    let etag = js.headers()[ETAG].clone();
    let again = app.client.get(app.url(&app_js)).header(IF_NONE_MATCH, etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // Relative imports resolve under the same prefix.
    let chat = app.client.get(app.url(&app_js.replace("/js/app.js", "/js/chat.js"))).send().await.unwrap();
    assert_eq!(chat.status(), StatusCode::OK);
    // A stale version still gets the file, but not cached forever.
    let stale = app.client.get(app.url("/assets/0000000000000000/js/app.js")).send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(stale.headers()[CACHE_CONTROL], "no-cache");

    for missing in ["/assets/x/js/nope.js", "/assets/x/../Cargo.toml", "/assets/x/index.html", "/nope"] {
        let r = app.client.get(app.url(missing)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{missing}");
        assert!(r.headers().contains_key(CONTENT_SECURITY_POLICY), "every response carries the CSP");
    }
    let api = app.client.get(app.url("/api/v1/auth/me")).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert!(api.headers().contains_key(CONTENT_SECURITY_POLICY));
}

/// The session cookie from a login answer.
async fn cookie_login(app: &TestApp, email: &str) -> String {
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn cookie_authenticated_changes_must_come_from_this_origin() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let cookie = cookie_login(&app, ADMIN_EMAIL).await;
    let post = |origin: Option<&str>, cookie: Option<&str>, bearer: Option<&str>| {
        let mut r =
            app.client.post(app.url("/api/v1/labels")).json(&json!({"name": format!("l-{}", rand::random::<u32>())}));
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        r.send()
    };

    let foreign = post(Some("https://evil.example"), Some(&cookie), None).await.unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(&foreign.json().await.unwrap()), "cross_origin");

    let ours = post(Some(&app.base), Some(&cookie), None).await.unwrap();
    assert_eq!(ours.status(), StatusCode::CREATED, "same origin with the cookie works");

    let cross_site = app
        .client
        .post(app.url("/api/v1/labels"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"name": "sneaky"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN, "no Origin, but the browser says cross-site");

    let bearer = post(Some("https://evil.example"), None, Some(&app.admin_token)).await.unwrap();
    assert_eq!(bearer.status(), StatusCode::CREATED, "bearer tokens are not ambient: no origin check");

    let read =
        app.client.get(app.url("/api/v1/auth/me")).header("cookie", &cookie).header("origin", "https://evil.example");
    assert_eq!(read.send().await.unwrap().status(), StatusCode::OK, "reads are not changes");
}

// ---------------------------------------------------------------------------------------------
// Search: `q` on the conversation list.

/// Connects the test number and stores one inbound text per (name, phone) as a conversation.
async fn chats(app: &TestApp, people: &[(&str, &str)]) -> Vec<String> {
    app.connect_number(NUMBER_ID, "15550100100", false).await;
    let now = app.clock.now().timestamp();
    let mut leads = Vec::new();
    for (i, (name, phone)) in people.iter().enumerate() {
        let lead = app.create_lead(name, phone).await;
        leads.push(lead["id"].as_str().unwrap().to_owned());
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        let body =
            text_payload(&format!("wamid.seed.{i}"), &digits, now - 600 + i as i64, &format!("Hello from {name}"));
        assert_eq!(app.signed_webhook(&body).await, StatusCode::OK);
    }
    app.webhooks_processed().await;
    leads
}

async fn search(app: &TestApp, q: &str) -> (StatusCode, Vec<String>) {
    let path = format!("/api/v1/conversations?q={}", urlencode(q));
    let (status, body) = app.get(&path, &app.admin_token).await;
    let names = body["conversations"]
        .as_array()
        .map(|a| a.iter().map(|c| c["lead_name"].as_str().unwrap_or("").to_owned()).collect())
        .unwrap_or_default();
    (status, names)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

on_both! {
    async fn conversations_are_searched_by_lead_name_or_phone(t: TestDb) {
        let app = spawn_app(&t).await;
        chats(&app, &[("Priya Raman", "+15550100111"), ("Omar Haddad", "+15550100122"), ("100% Juice_Bar", "+15550100133")]).await;

        assert_eq!(search(&app, "priya").await, (StatusCode::OK, vec!["Priya Raman".to_owned()]));
        assert_eq!(search(&app, "RAMAN").await.1, vec!["Priya Raman"], "case does not matter");
        assert_eq!(search(&app, "0122").await.1, vec!["Omar Haddad"], "phone digits");
        assert_eq!(search(&app, "+1 555 0100 111").await.1, vec!["Priya Raman"], "a phone as people type it");
        assert_eq!(search(&app, "100%").await.1, vec!["100% Juice_Bar"]);
        assert!(search(&app, "r%n").await.1.is_empty(), "% is literal, not a wildcard");
        assert!(search(&app, "p_iya").await.1.is_empty(), "_ is literal, not a wildcard");
        assert_eq!(search(&app, "e_b").await.1, vec!["100% Juice_Bar"]);
        assert!(search(&app, "nobody").await.1.is_empty());
        assert_eq!(search(&app, "a").await.1.len(), 3, "newest activity first, all matching");

        // Search composes with the other filters and with what the caller may see.
        let (_, me) = app.get("/api/v1/auth/me", &app.admin_token).await;
        let (status, body) = app.get(&format!("/api/v1/conversations?q=priya&assignee_id={}", me["user"]["id"].as_str().unwrap()), &app.admin_token).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["conversations"].as_array().unwrap().is_empty());
        let (_, plain) = app.member("plain@example.com", json!({})).await;
        let (status, body) = app.get("/api/v1/conversations?q=priya", &plain).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["conversations"].as_array().unwrap().is_empty(), "search never widens visibility");

        for bad in ["", "%20%20", &"x".repeat(101), "a%0Ab"] {
            let (status, body) = app.get(&format!("/api/v1/conversations?q={bad}"), &app.admin_token).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "q={bad:?}");
            assert_eq!(error_code(&body), "invalid_filter");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real Chromium.

/// One browser test at a time: each starts chromedriver and Chromium, heavy on small machines.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) struct Browser {
    pub(crate) c: Client,
    _driver: Child,
    base: String,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Starts chromedriver on a free port and a headless Chromium session; `None` (skip) only
/// outside CI when they are not installed.
pub(crate) async fn browser(app: &TestApp) -> Option<Browser> {
    browser_with(app, json!({})).await
}

/// Like [`browser`], with extra Chromium preferences (e.g. notification permission).
pub(crate) async fn browser_with(app: &TestApp, prefs: Value) -> Option<Browser> {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        assert!(!in_ci(), "CI needs {CHROMEDRIVER} and {CHROMIUM} (Debian chromium, chromium-driver)");
        eprintln!("skipping browser test: {CHROMEDRIVER} or {CHROMIUM} is not installed");
        return None;
    }
    let turn = ONE_AT_A_TIME.lock().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    eventually("chromedriver listens", || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
    })
    .await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": CHROMIUM, "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
               "--disable-gpu", "--window-size=1400,900", "--force-prefers-reduced-motion", "--lang=en-US"],
               "prefs": prefs}),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    Some(Browser { c, _driver: driver, base: app.base.clone(), _turn: turn })
}

impl Browser {
    /// Opens a page of the main navigation as a person does: its link, behind "Menu" when the
    /// links don't fit the header.
    pub(crate) async fn go_to(&self, title: &str) {
        let t = serde_json::to_string(title).unwrap();
        let find = format!(
            "[...document.querySelectorAll('nav[aria-label=Main] a')].find((a) => a.textContent.trim() === {t})"
        );
        self.until(&format!("the {title} link"), &format!("return !!{find}")).await;
        let shown = self
            .js(&format!(
                "const a = {find}; const r = a.getBoundingClientRect(); return r.width > 0 && r.right <= innerWidth"
            ))
            .await;
        if shown != Value::Bool(true) {
            let menu = self
                .c
                .wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::XPath("//button[contains(normalize-space(), 'Menu')]"))
                .await
                .expect("the Menu button");
            menu.click().await.expect("open the menu");
        }
        let xpath = format!("//nav[@aria-label='Main']//a[normalize-space()={t}]");
        let link =
            self.c.wait().at_most(Duration::from_secs(20)).for_element(Locator::XPath(&xpath)).await.expect("the link");
        link.click().await.unwrap_or_else(|e| panic!("open {title}: {e}"));
    }

    pub(crate) async fn open(&self, hash: &str) {
        self.c.goto(&format!("{}/{hash}", self.base)).await.expect("navigate");
    }

    pub(crate) async fn js(&self, script: &str) -> Value {
        self.c.execute(script, vec![]).await.unwrap_or(Value::Null)
    }

    /// Waits (20 s at most) until `script` returns something truthy, and returns it.
    pub(crate) async fn until(&self, what: &str, script: &str) -> Value {
        eventually(what, || async {
            let v = self.js(script).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            truthy.then_some(v)
        })
        .await
    }

    pub(crate) async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css(css)).await.unwrap_or_else(|e| {
            panic!("no element {css}: {e}");
        })
    }

    /// Logs in through the form, the way a person does.
    pub(crate) async fn log_in(&self, email: &str) {
        self.open("").await;
        self.element("#login-email").await.send_keys(email).await.unwrap();
        self.element("#login-password").await.send_keys(PASSWORD).await.unwrap();
        let button = self.element("form.login-card button[type=submit]").await;
        assert_eq!(button.text().await.unwrap(), "Log in");
        button.click().await.unwrap();
        self.element("#logout").await;
        self.until("live connection", "return window.__sbLive && window.__sbLive.state === 'live'").await;
    }

    /// The names of the conversations listed, top to bottom.
    pub(crate) async fn listed(&self) -> Vec<String> {
        let v = self.js("return [...document.querySelectorAll('.conv .conv-name')].map(e => e.textContent)").await;
        serde_json::from_value(v).unwrap_or_default()
    }

    pub(crate) async fn wait_listed(&self, name: &str) {
        let probe = format!(
            "return [...document.querySelectorAll('.conv .conv-name')].some(e => e.textContent === {})",
            json!(name)
        );
        self.until(&format!("{name} listed"), &probe).await;
    }

    pub(crate) async fn wait_text(&self, css: &str, text: &str) {
        let probe = format!(
            "return [...document.querySelectorAll({})].some(e => e.textContent.includes({}))",
            json!(css),
            json!(text)
        );
        self.until(&format!("{css} showing {text:?}"), &probe).await;
    }

    pub(crate) async fn screenshot(&self, name: &str) {
        if std::env::var("SWITCHBOARD_SCREENSHOTS").is_ok_and(|v| v == "1") {
            // Let images and fonts settle: wait for the document and every image to be complete.
            self.until(
                "images loaded",
                "return document.readyState === 'complete' && [...document.images].every(i => i.complete)",
            )
            .await;
            let png = self.c.screenshot().await.expect("screenshot");
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }

    pub(crate) async fn close(self) {
        let _ = self.c.close().await;
    }
}

/// A status webhook for one of our sent messages.
pub(crate) fn status_payload(wamid: &str, status: &str, ts: i64, recipient: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "100200300400500", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100100", "phone_number_id": NUMBER_ID},
        "statuses": [{"id": wamid, "status": status, "timestamp": ts.to_string(), "recipient_id": recipient}]}}]}]}))
    .unwrap()
}

pub(crate) async fn app_with_graph(t: &TestDb, graph: &FakeGraph) -> TestApp {
    let mut config = test_config(&t.url);
    config.graph_url = graph.url.clone();
    let app = spawn_app_with(t, config).await;
    app.connect_number(NUMBER_ID, "15550100100", false).await;
    app
}

pub(crate) async fn admin_id(app: &TestApp) -> String {
    app.get("/api/v1/auth/me", &app.admin_token).await.1["user"]["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn lead_for(app: &TestApp, name: &str, phone: &str, assignee: Option<&str>) -> Value {
    let (status, lead) = app
        .post("/api/v1/leads", &app.admin_token, json!({"name": name, "phone": phone, "assignee_id": assignee}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lead}");
    lead
}

pub(crate) async fn say(app: &TestApp, wamid: &str, from: &str, ago_secs: i64, text: &str) {
    let ts = app.clock.now().timestamp() - ago_secs;
    assert_eq!(app.signed_webhook(&text_payload(wamid, from, ts, text)).await, StatusCode::OK);
}

pub(crate) async fn conversation_of(app: &TestApp, lead_id: &str) -> String {
    eventually("the conversation exists", || async {
        let (_, body) = app.get(&format!("/api/v1/conversations?lead_id={lead_id}"), &app.admin_token).await;
        body["conversations"][0]["id"].as_str().map(str::to_owned)
    })
    .await
}

#[tokio::test]
async fn an_agent_logs_in_and_out() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let Some(b) = browser(&app).await else { return };

    b.open("").await;
    b.element("#login-email").await.send_keys(ADMIN_EMAIL).await.unwrap();
    b.element("#login-password").await.send_keys("wrong password").await.unwrap();
    b.element("form.login-card button[type=submit]").await.click().await.unwrap();
    b.wait_text("#login-error", "Wrong email or password").await;

    b.log_in(ADMIN_EMAIL).await;
    b.wait_text(".me-name", "Ada Admin").await;
    let cookie_visible = b.js("return document.cookie.includes('sb_session')").await;
    assert_eq!(cookie_visible, json!(false), "the session cookie is HttpOnly");
    let nav = b.js("return [...document.querySelectorAll('.nav-link')].map(a => a.textContent)").await;
    assert!(nav.as_array().unwrap().iter().any(|n| n == "Monitor"), "admins see the monitor: {nav}");

    b.element("#logout").await.click().await.unwrap();
    b.element("#login-email").await;
    b.wait_text(".notice", "logged out").await;
    b.c.refresh().await.unwrap();
    b.element("#login-email").await; // the session is gone on the server too
    assert_eq!(b.js("return !!document.querySelector('#logout')").await, json!(false));
    b.close().await;
}

#[tokio::test]
async fn a_message_arrives_live_the_agent_replies_and_the_tick_turns_delivered() {
    let t = TestDb::sqlite().await;
    let graph = FakeGraph::start().await;
    let app = app_with_graph(&t, &graph).await;
    let admin = admin_id(&app).await;
    lead_for(&app, "Priya Raman", "+15550100111", None).await;
    lead_for(&app, "Omar Haddad", "+15550100122", Some(&admin)).await;
    say(&app, "wamid.omar.1", "15550100122", 3000, "Is the quote ready?").await;
    app.webhooks_processed().await;
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.wait_listed("Omar Haddad").await;

    // A customer writes while the inbox is open: the chat appears on top, unread, no reload.
    say(&app, "wamid.priya.1", "15550100111", 60, "Hi! Do you still have installation slots in October?").await;
    b.wait_listed("Priya Raman").await;
    assert_eq!(b.listed().await, vec!["Priya Raman", "Omar Haddad"], "newest activity first");
    let badge =
        b.until("unread badge", "return document.querySelector('.conv.unread .unread-badge')?.textContent").await;
    assert_eq!(badge, json!("1"));

    // Unassigned: read-only until claimed.
    b.c.find(Locator::XPath("//a[contains(@class,'conv')][.//span[text()='Priya Raman']]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_text(".msg.in .msg-text", "installation slots").await;
    b.wait_text("#readonly-banner", "Unassigned").await;
    assert_eq!(b.js("return !!document.querySelector('#composer-text')").await, json!(false));
    b.element("#claim").await.click().await.unwrap();
    let input = b.element("#composer-text").await;
    let send = b.element("#composer-send").await;
    assert_eq!(send.text().await.unwrap(), "Send");

    // Enter sends; the Graph API gets exactly that text.
    input.send_keys("Yes, we have the 14th free.\u{E007}").await.unwrap();
    let sent = eventually("the Graph API receives the reply", || async {
        graph.requests().into_iter().find(|r| r.body["text"]["body"] == "Yes, we have the 14th free.")
    })
    .await;
    assert_eq!(sent.body["to"], "15550100111");
    b.until("the bubble shows sent", "return document.querySelector('.row.out .tick[data-status=sent]')").await;
    b.wait_text(".row.out .msg-by", "Ada Admin").await;
    assert_eq!(
        b.js("return document.querySelectorAll('.row.out').length").await,
        json!(1),
        "the pending bubble was replaced"
    );

    // Meta reports delivery: the tick turns without a reload.
    // The fake Graph API numbers its answers by request: wamid.fake.<n>.
    let n = graph.requests().iter().position(|r| r.body["text"]["body"] == "Yes, we have the 14th free.").unwrap() + 1;
    let wamid = format!("wamid.fake.{n}");
    let now = app.clock.now().timestamp();
    assert_eq!(app.signed_webhook(&status_payload(&wamid, "delivered", now, "15550100111")).await, StatusCode::OK);
    b.until("the tick shows delivered", "return document.querySelector('.row.out .tick[data-status=delivered]')").await;
    let title = b.js("return document.querySelector('.row.out .tick').getAttribute('title')").await;
    assert_eq!(title, json!("Delivered"));

    // The lead panel shows the lead and the session on the timeline.
    b.wait_text("#lead-name", "Priya Raman").await;
    b.wait_text(".timeline .activity", "WhatsApp session").await;
    b.screenshot("chat").await;
    b.close().await;
}

#[tokio::test]
async fn a_member_without_access_never_sees_the_chat() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    app.connect_number(NUMBER_ID, "15550100100", false).await;
    let (member_id, _) = app.member("mia@example.com", json!({})).await;
    let hidden = lead_for(&app, "Hidden Harriet", "+15550100144", None).await;
    lead_for(&app, "Visible Vera", "+15550100155", Some(&member_id.to_string())).await;
    let Some(b) = browser(&app).await else { return };
    b.log_in("mia@example.com").await;
    let nav = b.js("return [...document.querySelectorAll('.nav-link')].map(a => a.textContent)").await;
    assert_eq!(nav, json!(["Inbox", "Dashboard", "Leads", "Activity"]), "no admin pages for a plain member");

    // Harriet writes first, then Vera; once Vera shows up, Harriet's events were long delivered
    // (or rather, not delivered).
    say(&app, "wamid.harriet.1", "15550100144", 30, "Secret message").await;
    app.webhooks_processed().await;
    say(&app, "wamid.vera.1", "15550100155", 20, "Hello Mia").await;
    b.wait_listed("Visible Vera").await;
    assert_eq!(b.listed().await, vec!["Visible Vera"]);

    // Even by its address, the hidden chat does not open.
    let conv = conversation_of(&app, hidden["id"].as_str().unwrap()).await;
    b.open(&format!("#/inbox/{conv}")).await;
    b.wait_text(".chat-pane .placeholder", "do not have access").await;
    let page = b.js("return document.body.textContent").await;
    assert!(!page.as_str().unwrap().contains("Secret message"));
    assert!(!page.as_str().unwrap().contains("Hidden Harriet"));
    b.close().await;
}

#[tokio::test]
async fn a_non_assignee_sees_the_read_only_banner_and_can_claim() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    app.connect_number(NUMBER_ID, "15550100100", false).await;
    let admin = admin_id(&app).await;
    app.member("sam@example.com", json!({"view_others_leads": true, "view_unassigned": true})).await;
    let dana = lead_for(&app, "Dana's customer", "+15550100166", Some(&admin)).await;
    let open = lead_for(&app, "Walk-in Wes", "+15550100177", None).await;
    say(&app, "wamid.dc.1", "15550100166", 50, "When do you open?").await;
    say(&app, "wamid.wes.1", "15550100177", 40, "Anyone there?").await;
    app.webhooks_processed().await;
    let assigned = conversation_of(&app, dana["id"].as_str().unwrap()).await;
    let unassigned = conversation_of(&app, open["id"].as_str().unwrap()).await;
    let Some(b) = browser(&app).await else { return };
    b.log_in("sam@example.com").await;

    b.open(&format!("#/inbox/{assigned}")).await;
    b.wait_text("#readonly-banner", "Assigned to Ada Admin — only the assignee can reply").await;
    assert_eq!(b.js("return !!document.querySelector('#composer-text')").await, json!(false), "no composer");
    assert_eq!(b.js("return !!document.querySelector('#claim')").await, json!(false), "assigned: nothing to claim");

    b.open(&format!("#/inbox/{unassigned}")).await;
    b.wait_text("#readonly-banner", "Unassigned").await;
    b.element("#claim").await.click().await.unwrap();
    b.element("#composer-text").await;
    assert_eq!(b.js("return document.querySelector('.banner').hidden").await, json!(true));
    let (_, conv) = app.get(&format!("/api/v1/conversations/{unassigned}"), &app.admin_token).await;
    let (_, sam) = app.get("/api/v1/members", &app.admin_token).await;
    let sam_id =
        sam["members"].as_array().unwrap().iter().find(|m| m["email"] == "sam@example.com").unwrap()["id"].clone();
    assert_eq!(conv["assignee_id"], sam_id, "the claim reached the server");
    b.close().await;
}

#[tokio::test]
async fn the_admin_monitor_shows_every_chat_live() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    app.connect_number(NUMBER_ID, "15550100100", false).await;
    let (dana, _) = app.member("dana@example.com", json!({})).await;
    let (eli, _) = app.member("eli@example.com", json!({})).await;
    let (_, label) = app.post("/api/v1/labels", &app.admin_token, json!({"name": "VIP", "color": "#d97706"})).await;
    let people = [
        ("Priya Raman", "15550100111", Some(dana), "Can you come on Tuesday?"),
        ("Omar Haddad", "15550100122", Some(eli), "Thanks, the invoice is paid."),
        ("Lena Fischer", "15550100133", None, "Do you deliver to Leipzig?"),
    ];
    for (i, (name, phone, who, text)) in people.iter().enumerate() {
        lead_for(&app, name, &format!("+{phone}"), who.map(|w| w.to_string()).as_deref()).await;
        say(&app, &format!("wamid.m.{i}"), phone, 900 - i as i64 * 100, text).await;
    }
    app.webhooks_processed().await;
    let (_, convs) = app.get("/api/v1/conversations?q=priya", &app.admin_token).await;
    let priya = convs["conversations"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .json(
            Method::PUT,
            &format!("/api/v1/conversations/{priya}/labels"),
            &app.admin_token,
            Some(json!({"label_ids": [label["id"]]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.wait_listed("Lena Fischer").await;
    b.wait_text(".conv .chip.label", "VIP").await;
    b.screenshot("inbox").await;

    b.open("#/monitor").await;
    // The webhooks may still be in processing: each chat appears when it exists, live.
    for name in ["Lena Fischer", "Omar Haddad", "Priya Raman"] {
        b.wait_listed(name).await;
    }
    let mut listed = b.listed().await;
    listed.sort();
    assert_eq!(listed, vec!["Lena Fischer", "Omar Haddad", "Priya Raman"]);
    b.wait_text(".conv-assignee", "→ dana").await;

    // A new chat shows up live on the monitor too.
    lead_for(&app, "Noah Berg", "+15550100188", Some(&eli.to_string())).await;
    say(&app, "wamid.m.new", "15550100188", 10, "Is my order shipped?").await;
    b.wait_listed("Noah Berg").await;
    assert_eq!(b.listed().await[0], "Noah Berg");

    // Per member: only Eli's chats.
    b.js(&format!(
        "const s = document.querySelector('#monitor-member'); s.value = '{eli}'; s.dispatchEvent(new Event('change'))"
    ))
    .await;
    b.until("only Eli's chats", "return document.querySelectorAll('.conv').length === 2").await;
    let mut eli_chats = b.listed().await;
    eli_chats.sort();
    assert_eq!(eli_chats, vec!["Noah Berg", "Omar Haddad"]);

    // Back to everyone, open Priya's chat: read-only for the admin (it is Dana's).
    b.js("const s = document.querySelector('#monitor-member'); s.value = ''; s.dispatchEvent(new Event('change'))")
        .await;
    b.until("all chats again", "return document.querySelectorAll('.conv').length === 4").await;
    b.open(&format!("#/monitor/{priya}")).await;
    b.wait_text("#readonly-banner", "Assigned to dana — only the assignee can reply").await;
    b.wait_text(".lead-panel .chip.label", "VIP").await;
    b.screenshot("monitor").await;
    b.close().await;
}

#[tokio::test]
async fn going_offline_and_back_misses_nothing() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    app.connect_number(NUMBER_ID, "15550100100", false).await;
    let admin = admin_id(&app).await;
    let priya = lead_for(&app, "Priya Raman", "+15550100111", Some(&admin)).await;
    lead_for(&app, "Omar Haddad", "+15550100122", Some(&admin)).await;
    say(&app, "wamid.p.1", "15550100111", 300, "First question").await;
    app.webhooks_processed().await;
    let conv = conversation_of(&app, priya["id"].as_str().unwrap()).await;
    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.open(&format!("#/inbox/{conv}")).await;
    b.wait_text(".msg.in .msg-text", "First question").await;

    // One event live, so the page holds a resume cursor.
    say(&app, "wamid.p.2", "15550100111", 200, "Second question").await;
    b.wait_text(".msg.in .msg-text", "Second question").await;
    let cursor = b.js("return window.__sbLive.cursor").await;
    assert!(cursor.is_string(), "a cursor to resume from: {cursor}");

    // The network drops; meanwhile two messages and a new chat arrive.
    b.js("window.__sbLive.drop()").await;
    b.wait_text(".live-status", "Reconnecting").await;
    say(&app, "wamid.p.3", "15550100111", 100, "Third question").await;
    say(&app, "wamid.p.4", "15550100111", 90, "Fourth question").await;
    say(&app, "wamid.o.1", "15550100122", 80, "Omar here").await;
    app.webhooks_processed().await;
    let page = b.js("return document.body.textContent").await;
    assert!(!page.as_str().unwrap().contains("Third question"), "really offline");
    assert!(!b.listed().await.contains(&"Omar Haddad".to_owned()));

    // Back online: every missed event arrives, once, in order.
    b.js("window.__sbLive.resume()").await;
    b.wait_text(".live-status", "Live").await;
    b.wait_text(".msg.in .msg-text", "Fourth question").await;
    b.wait_listed("Omar Haddad").await;
    let texts = b.js("return [...document.querySelectorAll('.msg.in .msg-text')].map(e => e.textContent)").await;
    assert_eq!(texts, json!(["First question", "Second question", "Third question", "Fourth question"]));
    let (_, server) = app.get("/api/v1/conversations", &app.admin_token).await;
    let server: Vec<String> = server["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["lead_name"].as_str().unwrap().to_owned())
        .collect();
    let ui = eventually("the list in the server's order", || async {
        let ui = b.listed().await;
        (ui == server).then_some(ui)
    })
    .await;
    assert_eq!(ui.len(), 2);
    b.close().await;
}
