//! CSV export and import of leads: round trips (also into another workspace), updates by
//! phone, bad rows reported by line while good rows land, visibility, permissions, content
//! types and limits, quoting and unicode, formula injection.

use std::collections::{BTreeMap, HashMap};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::on_both;
use crate::support::*;
use switchboard::db::Db;

impl TestApp {
    /// `POST /leads/import` with a `text/csv` body; (status, JSON).
    async fn import_csv(&self, token: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        self.import_as(token, "text/csv", body).await
    }

    async fn import_as(&self, token: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url("/api/v1/leads/import"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("import request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Imports and expects 200; returns the report.
    pub(crate) async fn import_ok(&self, token: &str, body: &str) -> Value {
        let (status, report) = self.import_csv(token, body.to_owned()).await;
        assert_eq!(status, StatusCode::OK, "import: {report}");
        report
    }

    /// `GET /leads/export` as `token`: the raw file, after checking the headers.
    async fn export_csv(&self, token: &str) -> String {
        let resp = self.call(Method::GET, "/api/v1/leads/export", Some(token), None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(header("content-type").starts_with("text/csv"), "content type {}", header("content-type"));
        assert!(header("content-disposition").starts_with("attachment"), "{}", header("content-disposition"));
        resp.text().await.expect("export body")
    }

    pub(crate) async fn new_group(&self, name: &str) -> Uuid {
        let (status, g) = self.post("/api/v1/groups", &self.admin_token, json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{g}");
        id_of(&g)
    }

    async fn lead_by_phone(&self, token: &str, phone: &str) -> Value {
        let (status, page) = self.get(&format!("/api/v1/leads?q={phone}"), token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let leads = page["leads"].as_array().expect("leads");
        assert_eq!(leads.len(), 1, "one lead with phone {phone}: {page}");
        leads[0].clone()
    }

    /// Every lead the caller sees, in a comparable form: phone → (name, source, group names,
    /// assignee email, custom fields).
    async fn lead_book(&self, token: &str) -> BTreeMap<String, Value> {
        let (_, groups) = self.get("/api/v1/groups", token).await;
        let group_names: HashMap<String, String> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g["id"].as_str().unwrap().to_owned(), g["name"].as_str().unwrap().to_owned()))
            .collect();
        let (_, members) = self.get("/api/v1/members", token).await;
        let emails: HashMap<String, String> = members["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["id"].as_str().unwrap().to_owned(), m["email"].as_str().unwrap().to_owned()))
            .collect();
        let mut book = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/leads?limit=200&cursor={c}"),
                None => "/api/v1/leads?limit=200".to_owned(),
            };
            let (status, page) = self.get(&path, token).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for l in page["leads"].as_array().unwrap() {
                let mut groups: Vec<&str> = l["group_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|g| group_names[g.as_str().unwrap()].as_str())
                    .collect();
                groups.sort();
                let assignee = l["assignee_id"].as_str().map(|a| emails[a].clone());
                book.insert(
                    l["phone"].as_str().unwrap().to_owned(),
                    json!({"name": l["name"], "source": l["source"], "groups": groups,
                           "assignee": assignee, "custom_fields": l["custom_fields"]}),
                );
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return book,
            }
        }
    }
}

fn id_of(v: &Value) -> Uuid {
    Uuid::parse_str(v["id"].as_str().unwrap_or_else(|| panic!("an id in {v}"))).unwrap()
}

/// The records of a CSV file (header first), parsed by the `csv` crate.
fn records(text: &str) -> Vec<Vec<String>> {
    ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("well-formed CSV").iter().map(str::to_owned).collect())
        .collect()
}

/// A second workspace with its own admin, logged in.
async fn other_workspace(app: &TestApp) -> String {
    switchboard::workspace::bootstrap(&app.db, &app.clock, "Beta", "boss@beta.example", PASSWORD, Some("Boss"))
        .await
        .expect("bootstrap Beta");
    app.login("boss@beta.example", PASSWORD).await["token"].as_str().unwrap().to_owned()
}

async fn create(app: &TestApp, body: Value) -> Value {
    let (status, lead) = app.post("/api/v1/leads", &app.admin_token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{lead}");
    lead
}

on_both! {
    // A workspace's leads, exported and imported into a new workspace, are the same leads:
    // names, phones, sources, groups (by name), assignees (by email), custom fields.
    async fn export_then_import_into_a_fresh_workspace_gives_the_same_leads(t: TestDb) {
        let app = spawn_app(&t).await;
        let vip = app.new_group("VIP").await;
        let news = app.new_group("Newsletter").await;
        let north = app.new_group("Spain, North").await;
        let (sam, _) = app.member("sam@example.com", json!({})).await;
        create(&app, json!({"name": "Ada Lovelace", "phone": "+44 20 7946 0958", "source": "web",
            "group_ids": [vip, news], "assignee_id": sam,
            "custom_fields": {"plan": "gold", "note": "line one\nline two, with \"quotes\""}})).await;
        create(&app, json!({"name": "José Ñúñez 🌵", "phone": "+34 600 111 222", "group_ids": [north],
            "custom_fields": {"formula": "=HYPERLINK(\"http://evil.example\")", "balance": "-5"}})).await;
        create(&app, json!({"name": "Grace Hopper", "phone": "+1 555 010 0111", "source": "fair",
            "assignee_id": sam, "custom_fields": {"plan": "silver"}})).await;

        let file = app.export_csv(&app.admin_token).await;
        let rows = records(&file);
        assert_eq!(rows[0], ["name", "phone", "source", "group", "assignee_email", "balance", "formula", "note", "plan"]);
        assert_eq!(rows.len(), 4, "a header and three leads:\n{file}");
        let jose = rows.iter().find(|r| r[1] == "34600111222").expect("José's row");
        assert_eq!(jose[3], "Spain, North");
        assert_eq!(jose[5], "'-5", "cells a spreadsheet would evaluate start with a quote");
        assert_eq!(jose[6], "'=HYPERLINK(\"http://evil.example\")");
        let ada = rows.iter().find(|r| r[1] == "442079460958").expect("Ada's row");
        assert_eq!(ada[3], "Newsletter;VIP", "group names sorted, ;-separated");
        assert_eq!(ada[4], "sam@example.com");

        // Beta has the same groups (names in another case) and its own Sam.
        let beta = other_workspace(&app).await;
        for name in ["vip", "NEWSLETTER", "Spain, North"] {
            let (status, g) = app.post("/api/v1/groups", &beta, json!({"name": name})).await;
            assert_eq!(status, StatusCode::CREATED, "{g}");
        }
        // Emails are unique across the server: Sam's address in Beta differs, and Beta can't
        // name Alpha's Sam.
        let (status, report) = app.import_csv(&beta, file.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(report["created"], 1, "{report}");
        let lines: Vec<u64> = report["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
        assert_eq!(lines.len(), 2, "{report}");
        assert!(report["errors"][0]["message"].as_str().unwrap().contains("unknown assignee email"), "{report}");
        let (status, invite) = app.post("/api/v1/invitations", &beta, json!({"email": "sam@beta.example", "role": "member"})).await;
        assert_eq!(status, StatusCode::CREATED, "{invite}");
        let report = app.import_ok(&beta, &file.replace("sam@example.com", "SAM@beta.example")).await;
        assert_eq!((report["created"].as_u64(), report["updated"].as_u64()), (Some(2), Some(1)), "{report}");
        assert_eq!(report["errors"], json!([]));

        let alpha_book = app.lead_book(&app.admin_token).await;
        let beta_book = app.lead_book(&beta).await;
        let renamed = |book: &BTreeMap<String, Value>| {
            let mut book = book.clone();
            for l in book.values_mut() {
                if l["assignee"] == "sam@beta.example" { l["assignee"] = json!("sam@example.com") }
                let groups: Vec<String> = l["groups"].as_array().unwrap().iter().map(|g| g.as_str().unwrap().to_lowercase()).collect();
                l["groups"] = json!(groups);
            }
            book
        };
        assert_eq!(renamed(&beta_book), renamed(&alpha_book));
        assert_eq!(beta_book["34600111222"]["custom_fields"]["formula"], "=HYPERLINK(\"http://evil.example\")");
        assert_eq!(beta_book["442079460958"]["custom_fields"]["note"], "line one\nline two, with \"quotes\"");

        // And Beta's own export is Alpha's file, up to Sam's address, row order and group case.
        let mut again = records(&app.export_csv(&beta).await.replace("sam@beta.example", "sam@example.com"));
        let mut first = rows.clone();
        for r in again.iter_mut().chain(first.iter_mut()) {
            r[3] = r[3].to_lowercase();
        }
        again[1..].sort();
        first[1..].sort();
        assert_eq!(again, first);
    }

    async fn reimporting_an_export_changes_nothing(t: TestDb) {
        let app = spawn_app(&t).await;
        let vip = app.new_group("VIP").await;
        create(&app, json!({"name": "Ada", "phone": "+44 20 7946 0958", "group_ids": [vip],
            "custom_fields": {"plan": "gold"}})).await;
        create(&app, json!({"name": "Bob", "phone": "+44 20 7946 0959"})).await;
        let before = app.lead_book(&app.admin_token).await;
        let file = app.export_csv(&app.admin_token).await;
        let report = app.import_ok(&app.admin_token, &file).await;
        assert_eq!(report, json!({"created": 0, "updated": 2, "errors": [], "error_count": 0}));
        assert_eq!(app.lead_book(&app.admin_token).await, before);
    }

    // A row whose phone (however written) belongs to a lead updates it; the columns in the
    // file are authoritative, the others are left alone.
    async fn a_known_phone_updates_its_lead(t: TestDb) {
        let app = spawn_app(&t).await;
        let silver = app.new_group("Silver").await;
        let (sam, _) = app.member("sam@example.com", json!({})).await;
        let old = create(&app, json!({"name": "Old Name", "phone": "+44 7700 900123", "source": "web",
            "group_ids": [silver], "custom_fields": {"plan": "silver", "keep": "yes", "drop": "me"}})).await;

        let report = app.import_ok(&app.admin_token,
            "name,phone,plan,drop,group,assignee_email\nNew Name,0044 7700 900123,gold,,,sam@example.com\n").await;
        assert_eq!(report, json!({"created": 0, "updated": 1, "errors": [], "error_count": 0}));
        let lead = app.lead_by_phone(&app.admin_token, "447700900123").await;
        assert_eq!(lead["id"], old["id"], "the same lead, not a new one");
        assert_eq!(lead["name"], "New Name");
        assert_eq!(lead["source"], "web", "no source column: kept");
        assert_eq!(lead["custom_fields"], json!({"plan": "gold", "keep": "yes"}));
        assert_eq!(lead["group_ids"], json!([]), "an empty group cell takes the lead out of its groups");
        assert_eq!(lead["assignee_id"], json!(sam));
        // An empty assignee cell never unassigns.
        app.import_ok(&app.admin_token, "name,phone,assignee_email\nNew Name,447700900123,\n").await;
        assert_eq!(app.lead_by_phone(&app.admin_token, "447700900123").await["assignee_id"], json!(sam));

        // The same phone twice in one file: the first row creates, the second updates.
        let report = app.import_ok(&app.admin_token, "name,phone\nFirst,+1 555 010 0222\nSecond,15550100222\n").await;
        assert_eq!((report["created"].as_u64(), report["updated"].as_u64()), (Some(1), Some(1)), "{report}");
        let lead = app.lead_by_phone(&app.admin_token, "15550100222").await;
        assert_eq!(lead["name"], "Second");
        assert_eq!(lead["source"], "import", "no source column: imported leads say so");
        let (_, timeline) = app.get(&format!("/api/v1/leads/{}/timeline", lead["id"].as_str().unwrap()), &app.admin_token).await;
        assert!(timeline["activities"].as_array().unwrap().iter().any(|a| a["type"] == "lead_created"), "{timeline}");
    }

    async fn bad_rows_are_reported_by_line_and_good_rows_still_land(t: TestDb) {
        let app = spawn_app(&t).await;
        app.new_group("VIP").await;
        app.member("sam@example.com", json!({})).await;
        let (gone, _) = app.member("gone@example.com", json!({})).await;
        let (status, _) = app.post(&format!("/api/v1/members/{gone}/deactivate"), &app.admin_token, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let file = "name,phone,group,assignee_email\n\
            Good One,+1 555 010 1001,VIP,sam@example.com\n\
            Bad Phone,12ab,,\n\
            Unknown Group,+1 555 010 1003,Nope,\n\
            Unknown Assignee,+1 555 010 1004,,ghost@example.com\n\
            ,+1 555 010 1005,,\n\
            Too,Many,Fields,Here,Extra\n\
            \"Multi\nLine\",+1 555 010 1008,,\n\
            Deactivated,+1 555 010 1010,,gone@example.com\n\
            Two Problems,nope,Nope,\n\
            Good Two,+1 555 010 1012,vip,\n";
        let report = app.import_ok(&app.admin_token, file).await;
        assert_eq!(report["created"], 3, "{report}");
        assert_eq!(report["updated"], 0);
        assert_eq!(report["error_count"], 7);
        let errors: Vec<(u64, String)> = report["errors"].as_array().unwrap().iter()
            .map(|e| (e["line"].as_u64().unwrap(), e["message"].as_str().unwrap().to_owned())).collect();
        let lines: Vec<u64> = errors.iter().map(|e| e.0).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 10, 11], "{report}");
        let expect = ["invalid phone \"12ab\"", "unknown group \"Nope\"", "unknown assignee email \"ghost@example.com\"",
            "name is required", "expected 4 fields, found 5", "is deactivated", "invalid phone \"nope\"; unknown group \"Nope\""];
        for ((line, message), want) in errors.iter().zip(expect) {
            assert!(message.contains(want), "line {line}: {message:?} should say {want:?}");
        }
        let book = app.lead_book(&app.admin_token).await;
        let names: Vec<&str> = book.values().map(|l| l["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Good One", "Multi\nLine", "Good Two"]);
        assert_eq!(book["15550101001"]["groups"], json!(["VIP"]));
        assert_eq!(book["15550101001"]["assignee"], "sam@example.com");
        assert_eq!(book["15550101012"]["groups"], json!(["VIP"]), "group names match in any case");
    }

    async fn the_export_holds_only_what_the_caller_sees(t: TestDb) {
        let app = spawn_app(&t).await;
        let (mia, mia_token) = app.member("mia@example.com", json!({})).await;
        let (_, pool_token) = app.member("pool@example.com", json!({"view_unassigned": true})).await;
        let admin = id_of(&app.login(ADMIN_EMAIL, PASSWORD).await["user"]);
        create(&app, json!({"name": "Mia's", "phone": "+1 555 010 2001", "assignee_id": mia})).await;
        create(&app, json!({"name": "Nobody's", "phone": "+1 555 010 2002"})).await;
        create(&app, json!({"name": "Admin's", "phone": "+1 555 010 2003", "assignee_id": admin,
            "custom_fields": {"secret": "admins only"}})).await;
        let names = |file: &str| {
            let mut n: Vec<String> = records(file)[1..].iter().map(|r| r[0].clone()).collect();
            n.sort();
            n
        };
        assert_eq!(names(&app.export_csv(&app.admin_token).await), ["Admin's", "Mia's", "Nobody's"]);
        let mine = app.export_csv(&mia_token).await;
        assert_eq!(names(&mine), ["Mia's"]);
        assert_eq!(records(&mine)[0].len(), 5, "no column from leads Mia can't see");
        assert_eq!(names(&app.export_csv(&pool_token).await), ["Nobody's"]);
        let resp = app.call(Method::GET, "/api/v1/leads/export", None, None).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    async fn importing_needs_manage_integrations_and_a_csv_body(t: TestDb) {
        let app = spawn_app(&t).await;
        let (_, plain) = app.member("plain@example.com", json!({"view_others_leads": true})).await;
        let (_, integrator) = app.member("int@example.com", json!({"manage_integrations": true})).await;
        let file = "name,phone\nAda,+44 20 7946 0958\n";
        let (status, body) = app.import_csv(&plain, file).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
        let (status, body) = app.import_csv(&integrator, file).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["created"], 1);

        for ct in ["application/json", "text/plain", "text/csv; charset=iso-8859-1", ""] {
            let (status, body) = app.import_as(&app.admin_token, ct, file).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
            error_code(&body);
        }
        let (status, _) = app.import_as(&app.admin_token, "Text/CSV; charset=UTF-8", file).await;
        assert_eq!(status, StatusCode::OK);

        for (bad, code) in [("phone,email\n1,2\n", "missing_column"), ("", "missing_column"),
                            ("name,phone,name\n", "invalid_csv_header"), ("name,phone,\n", "invalid_csv_header")] {
            let (status, body) = app.import_csv(&app.admin_token, bad).await;
            assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, code), "{bad:?}");
        }
        let (status, body) = app.import_csv(&app.admin_token, b"name,phone\nJos\xe9,+34600111222\n".to_vec()).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_encoding"));
        assert!(body["error"]["message"].as_str().unwrap().contains("line 2"), "{body}");

        let auth = format!("Bearer {}", app.admin_token);
        let headers = [("authorization", auth.as_str()), ("content-type", "text/csv")];
        let (status, body) = app.announce_oversized("/api/v1/leads/import", &headers, (20 << 20) + 1).await;
        assert_eq!((status, error_code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    }

    // Spreadsheet files: a BOM, CRLF line ends, quoted commas, quotes and newlines, any script.
    async fn quoted_fields_and_unicode_survive(t: TestDb) {
        let app = spawn_app(&t).await;
        let file = "\u{feff}name,phone,source,city\r\n\
            \"Müller, Jürgen\",+49 30 1234567,\"fair \"\"Berlin\"\"\",\"Köln\r\nDeutz\"\r\n\
            王小明,+86 138 0013 8000,微信,北京\r\n\
            \"Émilie \"\"Mimi\"\" Dubois\",+33 6 12 34 56 78,,\"\"\r\n";
        let report = app.import_ok(&app.admin_token, file).await;
        assert_eq!(report["created"], 3, "{report}");
        let book = app.lead_book(&app.admin_token).await;
        assert_eq!(book["49301234567"]["name"], "Müller, Jürgen");
        assert_eq!(book["49301234567"]["source"], "fair \"Berlin\"");
        assert_eq!(book["49301234567"]["custom_fields"], json!({"city": "Köln\r\nDeutz"}));
        assert_eq!(book["8613800138000"]["name"], "王小明");
        assert_eq!(book["8613800138000"]["custom_fields"], json!({"city": "北京"}));
        assert_eq!(book["33612345678"]["name"], "Émilie \"Mimi\" Dubois");
        assert_eq!(book["33612345678"]["source"], Value::Null, "an empty source cell is no source");
        assert_eq!(book["33612345678"]["custom_fields"], json!({}), "an empty cell is no custom field");

        let rows = records(&app.export_csv(&app.admin_token).await);
        let muller = rows.iter().find(|r| r[1] == "49301234567").unwrap();
        assert_eq!(muller, &["Müller, Jürgen", "49301234567", "fair \"Berlin\"", "", "", "Köln\r\nDeutz"]);
    }

    // Cells a spreadsheet would run as formulas leave with a leading quote and come back exact.
    async fn formula_injection_is_defused_and_round_trips(t: TestDb) {
        let app = spawn_app(&t).await;
        let nasty = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@A1", "'=quoted already", "'plain quote", "O'Brien"];
        for (i, name) in nasty.iter().enumerate() {
            create(&app, json!({"name": name, "phone": format!("+1 555 010 30{i:02}"),
                "source": format!("={i}"), "custom_fields": {"tab": "\tcell", "cr": "\rcell", "minus": "-1"}})).await;
        }
        let file = app.export_csv(&app.admin_token).await;
        for row in &records(&file)[1..] {
            for cell in row {
                assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "exported cell {cell:?} could run as a formula");
            }
        }
        let beta = other_workspace(&app).await;
        let report = app.import_ok(&beta, &file).await;
        assert_eq!(report["created"].as_u64(), Some(nasty.len() as u64), "{report}");
        assert_eq!(app.lead_book(&beta).await, app.lead_book(&app.admin_token).await);
        let names: Vec<String> = app.lead_book(&beta).await.values().map(|l| l["name"].as_str().unwrap().to_owned()).collect();
        assert_eq!(names, nasty);
    }

    // Assignment rules apply to imported leads without an assignee, once the workspace has
    // assignment set up; a row naming an assignee keeps it.
    async fn assignment_rules_run_for_imported_leads(t: TestDb) {
        let app = spawn_app(&t).await;
        let (sam, _) = app.member("sam@example.com", json!({})).await;
        let (ann, _) = app.member("ann@example.com", json!({})).await;
        let settings = json!({"mode": "unassigned", "rules": [{"name": "Spain", "criteria":
            [{"field": "country", "op": "equals", "value": "ES"}], "route": {"type": "member", "member_id": sam}}]});
        let (status, body) = app.json(Method::PUT, "/api/v1/assignment", &app.admin_token, Some(settings)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let report = app.import_ok(&app.admin_token,
            "name,phone,assignee_email\nPedro,+34 600 000 001,\nPaula,+34 600 000 002,ann@example.com\nPaul,+1 555 010 4000,\n").await;
        assert_eq!(report["created"], 3, "{report}");
        let pedro = app.lead_by_phone(&app.admin_token, "34600000001").await;
        assert_eq!(pedro["assignee_id"], json!(sam), "the Spain rule");
        assert_eq!(app.lead_by_phone(&app.admin_token, "34600000002").await["assignee_id"], json!(ann));
        assert_eq!(app.lead_by_phone(&app.admin_token, "15550104000").await["assignee_id"], Value::Null);
        let (_, log) = app.get(&format!("/api/v1/leads/{}/assignment-log", pedro["id"].as_str().unwrap()), &app.admin_token).await;
        assert_eq!(log["decisions"][0]["rule"], "Spain", "{log}");
    }

    // More rows than one write batch, with a repeated phone across the batch boundary.
    async fn a_phone_repeated_in_the_next_batch_updates_its_lead(t: TestDb) {
        // The second batch repeats phones of the first: on PostgreSQL, where two batches are
        // written at once, it must wait for the first to commit (else its rows would report
        // "created while importing").
        let app = spawn_app(&t).await;
        let mut file = String::from("name,phone\n");
        for i in 0..500 {
            file.push_str(&format!("Lead {i},+1 555 {:07}\n", 3_000_000 + i));
        }
        for i in [7, 499, 123] {
            file.push_str(&format!("Lead {i} again,+1 555 {:07}\n", 3_000_000 + i));
        }
        for i in 500..520 {
            file.push_str(&format!("Lead {i},+1 555 {:07}\n", 3_000_000 + i));
        }
        let report = app.import_ok(&app.admin_token, &file).await;
        assert_eq!(report, json!({"created": 520, "updated": 3, "errors": [], "error_count": 0}));
        let rows = records(&app.export_csv(&app.admin_token).await);
        for i in [7, 499, 123] {
            assert!(rows.iter().any(|r| r[0] == format!("Lead {i} again")), "lead {i} renamed");
        }
    }

    async fn large_imports_are_written_in_batches(t: TestDb) {
        let app = spawn_app(&t).await;
        let mut file = String::from("name,phone,group\n");
        for i in 0..1200 {
            file.push_str(&format!("Lead {i},+1 555 {:07},\n", 1_000_000 + i));
        }
        file.push_str("Lead 0 again,+1 555 1000000,\n");
        let report = app.import_ok(&app.admin_token, &file).await;
        assert_eq!(report, json!({"created": 1200, "updated": 1, "errors": [], "error_count": 0}));
        // PostgreSQL: the planner learnt that leads grew (ANALYZE after the first 1,000), so
        // the next batch's phone lookup uses the index instead of scanning every lead.
        if let Db::Postgres(p) = &app.db {
            let tuples: f32 = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'leads'::regclass")
                .fetch_one(p)
                .await
                .unwrap();
            assert!(tuples >= switchboard::inbox::leads_csv::REFRESH_AFTER as f32, "reltuples {tuples}");
        }
        let rows = records(&app.export_csv(&app.admin_token).await);
        assert_eq!(rows.len(), 1201);
        assert!(rows.iter().any(|r| r[0] == "Lead 0 again"));
    }
}

/// PostgreSQL: an import batch chosen as a deadlock's victim is written again. The batch,
/// holding its new lead's phone, waits for the event-log lock that a [`Blocker`] holds; the
/// blocker then inserts a lead with the same phone, and so waits for the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_batch_that_loses_a_deadlock_is_written_again() {
    let t = TestDb::postgres().await;
    let app = spawn_app(&t).await;
    let blocker = Blocker::begin(&app.db).await;
    let import = app.import_csv(&app.admin_token, "name,phone\nDee Lock,+1 555 0400400\n");
    let same_phone = format!(
        "INSERT INTO leads (id, workspace_id, name, phone, created_at, updated_at) \
         VALUES ('{}', '{}', 'Blocker', '15550400400', now(), now()) ON CONFLICT DO NOTHING",
        Uuid::now_v7(),
        app.workspace_id
    );
    let ((status, report), ()) = tokio::join!(import, blocker.close_the_circle(&same_phone));
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report, json!({"created": 1, "updated": 0, "errors": [], "error_count": 0}));
    assert_eq!(app.lead_by_phone(&app.admin_token, "15550400400").await["name"], "Dee Lock");
}
