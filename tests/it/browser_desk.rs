//! The admin's desk in real headless Chromium: the Activity, Audit, Leads and Dashboard pages,
//! one story each (same driver and helpers as `browser.rs`; skipped outside CI when Chromium
//! is not installed).

use reqwest::StatusCode;
use serde_json::json;

use crate::browser::{Browser, browser, conversation_of, lead_for, say};
use crate::support::*;

/// Clicks the element `css` (waiting for it), scrolled into view first; a list redrawn under
/// the pointer is looked up again.
async fn click(b: &Browser, css: &str) {
    for attempt in 1.. {
        let el = b.element(css).await;
        let scrolled =
            b.c.execute("arguments[0].scrollIntoView({block: 'center'})", vec![serde_json::to_value(&el).unwrap()])
                .await;
        let clicked = match scrolled {
            Ok(_) => el.click().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match clicked {
            Ok(()) => return,
            Err(e) if attempt < 5 && e.contains("stale") => continue,
            Err(e) => panic!("click {css}: {e}"),
        }
    }
}

/// Chooses the option whose visible text is `text` in the select labelled `label`.
async fn choose(b: &Browser, label: &str, text: &str) {
    let script = format!(
        "const l = [...document.querySelectorAll('label')].find(l => l.textContent.trim() === {label}); \
         const s = l && document.getElementById(l.htmlFor); \
         const o = s && [...s.options].find(o => o.textContent === {text}); \
         if (!o) return false; s.value = o.value; s.dispatchEvent(new Event('change')); return true;",
        label = json!(label),
        text = json!(text)
    );
    b.until(&format!("{label}: {text}"), &script).await;
}

/// The visible text of the rows of the list labelled `label`, top to bottom.
async fn rows(b: &Browser, label: &str) -> Vec<String> {
    let script = format!(
        "const l = document.querySelector('[aria-label=' + JSON.stringify({}) + ']'); \
         return l && l.getAttribute('aria-busy') !== 'true' ? [...l.children].map(e => e.textContent) : null;",
        json!(label)
    );
    let v = b.until(&format!("the list {label}"), &script).await;
    serde_json::from_value(v).unwrap_or_default()
}

/// Waits until the list labelled `label` holds exactly `n` rows, each passing `check`.
async fn wait_rows(b: &Browser, label: &str, n: usize, contains: &str) -> Vec<String> {
    let script = format!(
        "const l = document.querySelector('[aria-label=' + JSON.stringify({}) + ']'); \
         if (!l || l.getAttribute('aria-busy') === 'true') return null; \
         const r = [...l.children].map(e => e.textContent); \
         return r.length === {n} && r.every(t => t.includes({})) ? r : null;",
        json!(label),
        json!(contains)
    );
    let v = b.until(&format!("{n} rows of {label} with {contains:?}"), &script).await;
    serde_json::from_value(v).unwrap_or_default()
}

#[tokio::test]
async fn an_activity_row_opens_its_chat() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    app.connect_number("100200300400600", "15550100100", true).await;
    let lead = lead_for(&app, "Priya Patel", "+15550100111", None).await;
    let lead_id = lead["id"].as_str().unwrap().to_owned();
    say(&app, "wamid.act1", "15550100111", 120, "Is the flat still free?").await;
    app.webhooks_processed().await;
    let conv = conversation_of(&app, &lead_id).await;
    let (status, _) =
        app.post(&format!("/api/v1/leads/{lead_id}/notes"), &app.admin_token, json!({"text": "Called back"})).await;
    assert_eq!(status, StatusCode::CREATED);
    lead_for(&app, "Omar Haddad", "+15550100122", None).await;

    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Activity").await;
    b.wait_text("h1", "Activity").await;
    let all = rows(&b, "Activities").await;
    assert!(all.iter().any(|r| r.contains("Called back")), "{all:?}");
    assert!(all.iter().any(|r| r.contains("WhatsApp session") && r.contains("1 from the lead")), "{all:?}");

    // New activity is offered live, without moving the list.
    let (status, _) = app
        .post(&format!("/api/v1/leads/{lead_id}/notes"), &app.admin_token, json!({"text": "Sent the brochure"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    b.until("the new-activity button", "const n = document.getElementById('activity-newer'); return n && !n.hidden;")
        .await;
    click(&b, "#activity-newer").await;
    b.wait_text("[aria-label=Activities] li:first-child", "Sent the brochure").await;

    // Only WhatsApp sessions: Priya's one.
    choose(&b, "Type", "WhatsApp sessions").await;
    let sessions = wait_rows(&b, "Activities", 1, "WhatsApp session").await;
    assert!(sessions[0].contains("Priya Patel") && sessions[0].contains("Started by the lead"), "{sessions:?}");

    // The row opens its chat.
    click(&b, "a[aria-label='Open chat with Priya Patel']").await;
    b.until("the chat's route", &format!("return location.hash === '#/inbox/{conv}'")).await;
    b.wait_text("#main", "Is the flat still free?").await;
    b.close().await;
}

#[tokio::test]
async fn an_admin_filters_the_audit_trail() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let admin = app.admin_token.clone();
    let (status, _) = app.post("/api/v1/labels", &admin, json!({"name": "VIP"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app.post("/api/v1/invitations", &admin, json!({"email": "nora@example.com"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, manager_token) = app.member("mia@example.com", json!({"manage_members": true})).await;
    let (status, _) = app.post("/api/v1/invitations", &manager_token, json!({"email": "omar@example.com"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .json(reqwest::Method::PUT, "/api/v1/assignment", &manager_token, Some(json!({"mode": "round_robin"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.open("#/audit").await;
    b.wait_text("h1", "Audit trail").await;
    let all = wait_rows(&b, "Audit entries", 4, "by ").await;
    assert!(all[0].contains("Assignment settings changed") && all[0].contains("round_robin"), "newest first: {all:?}");

    // What Mia did.
    choose(&b, "Changed by", "mia").await;
    let mias = wait_rows(&b, "Audit entries", 2, "by mia").await;
    assert!(mias.iter().any(|r| r.contains("Member invited") && r.contains("omar@example.com")), "{mias:?}");

    // Invitations only, by anyone.
    choose(&b, "Changed by", "Anyone").await;
    choose(&b, "Change", "Member invited").await;
    let invited = wait_rows(&b, "Audit entries", 2, "Member invited").await;
    assert!(invited.iter().any(|r| r.contains("nora@example.com") && r.contains("Ada Admin")), "{invited:?}");
    assert!(invited.iter().all(|r| r.contains("— → invite_sent")), "before and after: {invited:?}");

    // A member, even one who manages others, is told the page is for admins.
    b.close().await;
    let Some(b) = browser(&app).await else { return };
    b.log_in("mia@example.com").await;
    b.open("#/audit").await;
    b.wait_text("#not-allowed", "Only admins can use this page").await;
    b.close().await;
}

#[tokio::test]
async fn an_admin_reassigns_leads_in_bulk_and_imports_a_csv_with_an_error_line() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let (ann, _) = app.member("ann@example.com", json!({})).await;
    let (bob, _) = app.member("bob@example.com", json!({})).await;
    let (ann, bob) = (ann.to_string(), bob.to_string());
    lead_for(&app, "Carla Costa", "+15550100201", Some(&ann)).await;
    lead_for(&app, "Dev Desai", "+15550100202", Some(&ann)).await;
    lead_for(&app, "Eve Evans", "+15550100203", None).await;
    let finn = lead_for(&app, "Finn Fox", "+15550100204", Some(&ann)).await;
    let note = format!("/api/v1/leads/{}/notes", finn["id"].as_str().unwrap());
    assert_eq!(app.post(&note, &app.admin_token, json!({"text": "Met at the fair"})).await.0, StatusCode::CREATED);

    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Leads").await;
    b.wait_text("h1", "Leads").await;
    b.wait_text("#leads-table", "Finn Fox").await;

    // Two of Ann's leads and the unassigned one go to Bob; Finn stays with Ann.
    for name in ["Carla Costa", "Dev Desai", "Eve Evans"] {
        click(&b, &format!("input[aria-label='Select {name}']")).await;
    }
    choose(&b, "Reassign to", "bob").await;
    click(&b, "#leads-reassign").await;
    b.wait_text("#leads-bulk-status", "3 leads reassigned to bob").await;
    let (_, leads) = app.get("/api/v1/leads?limit=200", &app.admin_token).await;
    let owner = |name: &str| {
        leads["leads"].as_array().unwrap().iter().find(|l| l["name"] == name).unwrap()["assignee_id"].clone()
    };
    for name in ["Carla Costa", "Dev Desai", "Eve Evans"] {
        assert_eq!(owner(name), json!(bob), "{name}");
    }
    assert_eq!(owner("Finn Fox"), json!(ann));

    // Bob's leads, and one lead's details on the side.
    choose(&b, "Member", "bob").await;
    b.until(
        "only Bob's leads",
        "const r = [...document.querySelectorAll('[aria-label=Leads] tbody tr')].map(e => e.textContent); \
         return r.length === 3 && r.every(t => t.includes('bob'));",
    )
    .await;
    click(&b, "#leads-table a[href*='#/leads/']").await;
    b.wait_text("#lead-details", "Assignee").await;

    // Uncontacted leads: everyone's but Finn's (he has a note).
    choose(&b, "Member", "Any member").await;
    click(&b, "#leads-tab-uncontacted").await;
    b.until(
        "the uncontacted leads",
        "const r = [...document.querySelectorAll('[aria-label=Leads] tbody tr')].map(e => e.textContent); \
         return r.length === 3 && !r.some(t => t.includes('Finn Fox'));",
    )
    .await;

    // A CSV file with a bad phone on line 3 (CRLF line ends, as Excel writes them).
    let dir = std::env::temp_dir().join(format!("sb-desk-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("leads.csv");
    std::fs::write(&path, "name,phone\r\nGina Gold,+15550100301\r\nHal Hill,not a phone\r\n").unwrap();
    b.element("#leads-import-file").await.send_keys(path.to_str().unwrap()).await.unwrap();
    click(&b, "#leads-import").await;
    b.wait_text("#leads-import-result", "Created 1, updated 0, 1 row skipped").await;
    b.wait_text("[aria-label='Import errors']", "Line 3:").await;
    std::fs::remove_dir_all(&dir).ok();
    b.close().await;
}

#[tokio::test]
async fn the_dashboard_follows_its_date_range() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    let (ann, _) = app.member("ann@example.com", json!({})).await;
    let ann = ann.to_string();
    lead_for(&app, "Carla Costa", "+15550100201", Some(&ann)).await;
    lead_for(&app, "Dev Desai", "+15550100202", Some(&ann)).await;

    let Some(b) = browser(&app).await else { return };
    b.log_in(ADMIN_EMAIL).await;
    b.go_to("Dashboard").await;
    b.wait_text("h1", "Dashboard").await;
    b.until(
        "Ann's row with two assigned leads",
        "const a = document.querySelector('[aria-label=\"2 leads assigned to ann\"]'); return !!a;",
    )
    .await;
    b.until("the chart", "return !!document.querySelector('#dash-chart svg rect')").await;

    // A custom range long before today: nothing assigned.
    click(&b, "#dash-range-custom").await;
    let set = "const f = document.getElementById('dash-from'); const t = document.getElementById('dash-to'); \
               f.value = '2020-01-01'; t.value = '2020-01-07'; t.dispatchEvent(new Event('change')); return true;";
    b.until("a custom range", set).await;
    b.until(
        "Ann's row with nothing assigned",
        "return !!document.querySelector('[aria-label=\"0 leads assigned to ann\"]');",
    )
    .await;

    // Back to 30 days; sorting by Assigned puts Ann first.
    click(&b, "#dash-range-30d").await;
    b.until("30 days", "return !!document.querySelector('[aria-label=\"2 leads assigned to ann\"]');").await;
    let first = "const r = document.querySelector('#dash-table tbody tr th'); return r && r.textContent;";
    assert_eq!(b.until("a first row", first).await, "ann", "most assigned first");
    b.close().await;
}
