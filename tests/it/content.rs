//! The content library: the visibility and editing rules per role, lists filtered in SQL by
//! the same rule as single reads (checked against the Rust predicate on random worlds), and
//! bad input.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::on_db;
use switchboard::policy::content::{self as policy, ContentFacts, ContentViewer, Visibility};
use switchboard::policy::{Permissions, Role, Viewer};
use uuid::Uuid;

use crate::on_both;
use crate::support::*;

fn id(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().unwrap()).unwrap()
}

async fn team(app: &TestApp, name: &str, members: &[Uuid]) -> Uuid {
    let (status, t) = app.post("/api/v1/teams", &app.admin_token, json!({"name": name, "member_ids": members})).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    id(&t["id"])
}

async fn create(app: &TestApp, token: &str, title: &str) -> Uuid {
    let (status, k) = app
        .post("/api/v1/content", token, json!({"kind": "message", "title": title, "body": "Hi {{lead.name}}"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    id(&k["id"])
}

async fn patch(app: &TestApp, token: &str, item: Uuid, body: Value) -> (StatusCode, Value) {
    app.json(Method::PATCH, &format!("/api/v1/content/{item}"), token, Some(body)).await
}

async fn status_of(app: &TestApp, token: &str, item: Uuid) -> StatusCode {
    app.get(&format!("/api/v1/content/{item}"), token).await.0
}

async fn titles(app: &TestApp, token: &str) -> BTreeSet<String> {
    let (status, page) = app.get("/api/v1/content", token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["content"].as_array().unwrap().iter().map(|k| k["title"].as_str().unwrap().to_owned()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

on_both! {
    async fn the_visibility_rules_per_role(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        // Cleo creates; Sam creates and shares (in Sales); Eve edits others' items (in Sales);
        // Otto shares too but is in Support; Pia is in Sales with no flags.
        let (cleo_id, cleo) = app.member("cleo@example.com", json!({"create_content": true})).await;
        let (sam_id, sam) =
            app.member("sam@example.com", json!({"create_content": true, "manage_content_visibility": true})).await;
        let (eve_id, eve) = app.member("eve@example.com", json!({"edit_others_content": true})).await;
        let (otto_id, otto) = app
            .member("otto@example.com", json!({"create_content": true, "manage_content_visibility": true}))
            .await;
        let (pia_id, pia) = app.member("pia@example.com", json!({})).await;
        let sales = team(&app, "Sales", &[sam_id, eve_id, pia_id]).await;
        let support = team(&app, "Support", &[otto_id]).await;

        // Creating needs create_content and makes a private item; visibility can't be given.
        let (status, body) =
            app.post("/api/v1/content", &eve, json!({"kind": "message", "title": "Nope", "body": "x"})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
        let (status, k) = app
            .post("/api/v1/content", &cleo, json!({"kind": "message", "title": "Cleo's", "body": "Hi", "shortcut": "/hi"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{k}");
        assert_eq!((k["visibility"].as_str(), k["owner_id"].as_str()), (Some("private"), Some(cleo_id.to_string().as_str())));
        assert_eq!((k["shortcut"].as_str(), k["team_ids"].clone()), (Some("hi"), json!([])));
        let cleos = id(&k["id"]);
        let (status, _) = app
            .post("/api/v1/content", &sam, json!({"kind": "message", "title": "T", "body": "x", "visibility": "workspace"}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        // Without manage_content_visibility the owner can't share.
        let (status, body) = patch(&app, &cleo, cleos, json!({"visibility": "workspace"})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
        // With it, only to teams one belongs to.
        let sams = create(&app, &sam, "Sam's").await;
        let (status, body) = patch(&app, &sam, sams, json!({"visibility": "teams", "team_ids": [support]})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
        let (status, k) = patch(&app, &sam, sams, json!({"visibility": "teams", "team_ids": [sales]})).await;
        assert_eq!(status, StatusCode::OK, "{k}");
        assert_eq!((k["visibility"].as_str(), k["team_ids"].clone()), (Some("teams"), json!([sales])));
        // The audit trail has the change of scope (and none for the refused ones).
        let (_, audit) = app.get("/api/v1/audit?action=content.visibility_changed", &app.admin_token).await;
        let entries = audit["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{audit}");
        assert_eq!(entries[0]["changes"]["visibility"], json!({"from": "private", "to": "teams"}));
        assert_eq!(entries[0]["target_id"], json!(sams));
        let ottos = create(&app, &otto, "Otto's").await;
        let (status, _) = patch(&app, &otto, ottos, json!({"visibility": "workspace"})).await;
        assert_eq!(status, StatusCode::OK);

        // Who sees what: own, workspace, own teams' (admins all); the rest is 404.
        assert_eq!(titles(&app, &admin).await, set(&["Cleo's", "Sam's", "Otto's"]));
        assert_eq!(titles(&app, &cleo).await, set(&["Cleo's", "Otto's"]));
        assert_eq!(titles(&app, &eve).await, set(&["Sam's", "Otto's"]));
        assert_eq!(titles(&app, &pia).await, set(&["Sam's", "Otto's"]));
        assert_eq!(titles(&app, &otto).await, set(&["Otto's"]));
        assert_eq!(status_of(&app, &otto, sams).await, StatusCode::NOT_FOUND);
        assert_eq!(status_of(&app, &eve, cleos).await, StatusCode::NOT_FOUND);
        assert_eq!(status_of(&app, &admin, cleos).await, StatusCode::OK);
        assert_eq!(status_of(&app, &pia, sams).await, StatusCode::OK);

        // Editing another's item: edit_others_content and seeing it.
        let (status, body) = patch(&app, &pia, sams, json!({"title": "Pia's now"})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
        let (status, k) = patch(&app, &eve, sams, json!({"title": "Sam's, edited"})).await;
        assert_eq!((status, k["title"].as_str()), (StatusCode::OK, Some("Sam's, edited")));
        let (status, _) = patch(&app, &eve, cleos, json!({"title": "x"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "unseen items are 404, even to editors");
        // Re-scoping another's item also needs manage_content_visibility; making it private doesn't.
        let (status, _) = patch(&app, &eve, sams, json!({"visibility": "workspace"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, k) = patch(&app, &eve, sams, json!({"visibility": "private"})).await;
        assert_eq!((status, k["team_ids"].clone()), (StatusCode::OK, json!([])));
        assert_eq!(status_of(&app, &eve, sams).await, StatusCode::NOT_FOUND);
        // Admins share with any team.
        let (status, k) = patch(&app, &admin, cleos, json!({"visibility": "teams", "team_ids": [support]})).await;
        assert_eq!(status, StatusCode::OK, "{k}");
        assert_eq!(status_of(&app, &otto, cleos).await, StatusCode::OK);

        // Deleting is for admins: the owner too gets 403; unseen is 404.
        let del = |token: &str, item: Uuid| {
            let token = token.to_owned();
            let app = &app;
            async move { app.call(Method::DELETE, &format!("/api/v1/content/{item}"), Some(&token), None).await.status() }
        };
        assert_eq!(del(&otto, ottos).await, StatusCode::FORBIDDEN);
        assert_eq!(del(&eve, cleos).await, StatusCode::NOT_FOUND);
        assert_eq!(del(&admin, ottos).await, StatusCode::NO_CONTENT);
        assert_eq!(status_of(&app, &otto, ottos).await, StatusCode::NOT_FOUND);
    }

    async fn kinds_search_paging_and_bad_input(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let bad = [
            (json!({"kind": "video", "title": "x"}), "invalid_kind"),
            (json!({"kind": "message", "title": " ", "body": "x"}), "invalid_title"),
            (json!({"kind": "message", "title": "x"}), "invalid_body"),
            (json!({"kind": "message", "title": "x", "body": "a".repeat(4097)}), "invalid_body"),
            (json!({"kind": "page", "title": "x", "body": ""}), "invalid_body"),
            (json!({"kind": "file", "title": "x"}), "upload_required"),
            (json!({"kind": "message", "title": "x", "body": "y", "shortcut": "two words"}), "invalid_shortcut"),
        ];
        for (body, code) in bad {
            let (status, answer) = app.post("/api/v1/content", &admin, body.clone()).await;
            assert_eq!((status, error_code(&answer)), (StatusCode::UNPROCESSABLE_ENTITY, code), "{body}");
        }
        let (_, up) = crate::media::upload(&app, &admin, "prices.pdf", Some("application/pdf"), b"%PDF".to_vec()).await;
        let upload = Uuid::parse_str(up["id"].as_str().unwrap()).unwrap();
        let (status, file) =
            app.post("/api/v1/content", &admin, json!({"kind": "file", "title": "Price list", "upload_id": upload})).await;
        assert_eq!((status, file["upload_id"].clone()), (StatusCode::CREATED, json!(upload)));
        let (status, page) = app
            .post("/api/v1/content", &admin, json!({"kind": "page", "title": "Our 100% plan", "body": "# Plan\n\nDetails"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{page}");
        for i in 0..5 {
            create(&app, &admin, &format!("Greeting {i}")).await;
        }

        let (_, pages) = app.get("/api/v1/content?kind=page", &admin).await;
        assert_eq!(pages["content"].as_array().unwrap().len(), 1);
        let (_, found) = app.get("/api/v1/content?q=GREETING%203", &admin).await;
        assert_eq!(found["content"][0]["title"], "Greeting 3");
        let (_, found) = app.get("/api/v1/content?q=100%25", &admin).await;
        assert_eq!(found["content"].as_array().unwrap().len(), 1, "% is matched literally: {found}");
        let (status, _) = app.get("/api/v1/content?kind=video", &admin).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Pages of 3: every item once, in creation order.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/content?limit=3&cursor={c}"),
                None => "/api/v1/content?limit=3".to_owned(),
            };
            let (status, p) = app.get(&path, &admin).await;
            assert_eq!(status, StatusCode::OK, "{p}");
            seen.extend(p["content"].as_array().unwrap().iter().map(|k| k["title"].as_str().unwrap().to_owned()));
            match p["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 7);
        assert_eq!(seen[0], "Price list");
    }

    // The SQL predicate lists exactly what the Rust predicate lets each viewer see, on random
    // worlds of teams, memberships and items in two workspaces.
    async fn content_policy_agrees_with_sql(t: TestDb) {
        let clock = switchboard::clock::Clock::default();
        let sql = format!("SELECT k.id FROM content k WHERE {}", *policy::VISIBLE);
        let now = clock.now();
        for seed in 0..4u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut items: Vec<(Uuid, ContentFacts)> = Vec::new();
            let mut viewers: Vec<(Viewer, Vec<Uuid>)> = Vec::new();
            for w in 0..2 {
                let name = format!("C{seed}-{w}");
                switchboard::workspace::bootstrap(&t.db, &clock, &name, &format!("boss{seed}-{w}@x.test"), PASSWORD, None).await.unwrap();
                let ws: Uuid = on_db!(&t.db, |p| sqlx::query_scalar("SELECT id FROM workspaces WHERE name = $1").bind(&name).fetch_one(p).await).unwrap();
                let mut users = Vec::new();
                for u in 0..5 {
                    let id = Uuid::new_v4();
                    let role = if u == 0 { "admin" } else { "member" };
                    on_db!(&t.db, |p| sqlx::query(
                        "INSERT INTO users (id, workspace_id, email, name, role, status, permissions, created_at, updated_at) \
                         VALUES ($1, $2, $3, 'u', $4, 'active', $5, $6, $6)"
                    ).bind(id).bind(ws).bind(format!("u{seed}-{w}-{u}@x.test")).bind(role)
                        .bind(sqlx::types::Json(Permissions::default())).bind(now).execute(p).await.map(|_| ())).unwrap();
                    users.push((id, if u == 0 { Role::Admin } else { Role::Member }));
                }
                let mut teams = Vec::new();
                for n in 0..3 {
                    let tid = Uuid::new_v4();
                    on_db!(&t.db, |p| sqlx::query("INSERT INTO teams (id, workspace_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
                        .bind(tid).bind(ws).bind(format!("t{n}")).bind(now).execute(p).await.map(|_| ())).unwrap();
                    teams.push(tid);
                }
                for (uid, role) in &users {
                    let mine: Vec<Uuid> = teams.iter().copied().filter(|_| rng.gen_bool(0.4)).collect();
                    for tid in &mine {
                        on_db!(&t.db, |p| sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)")
                            .bind(*tid).bind(*uid).execute(p).await.map(|_| ())).unwrap();
                    }
                    let v = Viewer { user_id: *uid, workspace_id: ws, role: *role, active: true, permissions: Permissions::default(), label_ids: vec![] };
                    viewers.push((v, mine));
                }
                for _ in 0..25 {
                    let kid = Uuid::new_v4();
                    let owner = users[rng.gen_range(0..users.len())].0;
                    let visibility = [Visibility::Private, Visibility::Teams, Visibility::Workspace][rng.gen_range(0..3)];
                    let shared: Vec<Uuid> = teams.iter().copied().filter(|_| rng.gen_bool(0.3)).collect();
                    on_db!(&t.db, |p| sqlx::query(
                        "INSERT INTO content (id, workspace_id, owner_id, kind, title, body, visibility, created_at, updated_at) \
                         VALUES ($1, $2, $3, 'message', 't', 'b', $4, $5, $5)"
                    ).bind(kid).bind(ws).bind(owner).bind(visibility).bind(now).execute(p).await.map(|_| ())).unwrap();
                    for tid in &shared {
                        on_db!(&t.db, |p| sqlx::query("INSERT INTO content_teams (content_id, team_id) VALUES ($1, $2)")
                            .bind(kid).bind(*tid).execute(p).await.map(|_| ())).unwrap();
                    }
                    items.push((kid, ContentFacts { workspace_id: ws, owner_id: owner, visibility, team_ids: shared }));
                }
            }
            for (v, mine) in &viewers {
                let (ws, user, admin) = policy::params(v);
                let from_sql: BTreeSet<Uuid> = on_db!(&t.db, |p| sqlx::query_scalar::<_, Uuid>(sql.as_str())
                    .bind(ws).bind(user).bind(admin).fetch_all(p).await).unwrap().into_iter().collect();
                let cv = ContentViewer { viewer: v, team_ids: mine };
                let from_rust: BTreeSet<Uuid> = items.iter().filter(|(_, k)| policy::can_see(cv, k)).map(|(id, _)| *id).collect();
                assert_eq!(from_sql, from_rust, "seed {seed}, viewer {v:?} in teams {mine:?}");
            }
        }
    }
}

async fn send_content(app: &TestApp, conv: &str, content: Uuid) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/conversations/{conv}/messages"),
        &app.admin_token,
        json!({"type": "content", "content_id": content}),
    )
    .await
}

async fn content_item(app: &TestApp, body: Value) -> Uuid {
    let (status, k) = app.post("/api/v1/content", &app.admin_token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    id(&k["id"])
}

async fn views_on_timeline(app: &TestApp, lead: &str) -> usize {
    let (status, page) = app.get(&format!("/api/v1/leads/{lead}/timeline"), &app.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["activities"].as_array().unwrap().iter().filter(|a| a["type"] == "content_viewed").count()
}

on_both! {
    async fn sending_a_message_fills_in_the_lead_and_the_member(t: TestDb) {
        let graph = crate::outbox::FakeGraph::start().await;
        let (app, conv, _) = crate::outbox::inbox_with_open_chat(&t, &graph).await;
        let (_, c) = app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token).await;
        let lead = c["lead_id"].as_str().unwrap().to_owned();
        let (status, body) = app
            .json(Method::PATCH, &format!("/api/v1/leads/{lead}"), &app.admin_token, Some(json!({"custom_fields": {"plan": "Pro"}})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let me = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["name"].as_str().unwrap().to_owned();

        let hello = content_item(&app, json!({"kind": "message", "title": "Hello",
            "body": "Hi {{lead.name}} ({{lead.phone}}), {{member.name}} here. Plan: {{lead.custom.plan}}; seats: {{lead.custom.seats}}."})).await;
        let (status, message) = send_content(&app, &conv, hello).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{message}");
        let expected = format!("Hi Priya (+15550100111), {me} here. Plan: Pro; seats: .");
        assert_eq!(message["text"], json!(expected), "{message}");
        let sent = eventually("the Graph API got the text", || async {
            graph.requests().into_iter().find(|r| r.body["type"] == "text").map(|r| r.body)
        })
        .await;
        assert_eq!(sent["text"]["body"], json!(expected));

        // A file is sent as its upload (tests/it/media.rs follows it to the Graph API); an item
        // that doesn't exist (or isn't seen) is unknown.
        let (_, up) = crate::media::upload(&app, &app.admin_token, "prices.pdf", Some("application/pdf"), b"%PDF".to_vec()).await;
        let file = content_item(&app, json!({"kind": "file", "title": "Price list", "upload_id": up["id"]})).await;
        let (status, body) = send_content(&app, &conv, file).await;
        assert_eq!((status, body["type"].clone()), (StatusCode::ACCEPTED, json!("document")), "{body}");
        let (status, body) = send_content(&app, &conv, Uuid::new_v4()).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_content"));
    }

    async fn a_page_link_is_personal_and_tells_the_assignee(t: TestDb) {
        let graph = crate::outbox::FakeGraph::start().await;
        let (app, conv, _) = crate::outbox::inbox_with_open_chat(&t, &graph).await;
        let (_, c) = app.get(&format!("/api/v1/conversations/{conv}"), &app.admin_token).await;
        let lead = c["lead_id"].as_str().unwrap().to_owned();
        let page = content_item(&app, json!({"kind": "page", "title": "Our plans",
            "body": "# Plans\n\n<script>alert('x')</script>\n\nSee **Pro** and [more](javascript:alert(1))."})).await;
        let mut live = crate::live::live(&app, &app.admin_token, None).await;

        let (status, message) = send_content(&app, &conv, page).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{message}");
        let text = message["text"].as_str().unwrap().to_owned();
        assert!(text.starts_with("Our plans\nhttp://"), "{text}");
        let link = text.lines().nth(1).unwrap().to_owned();
        let path = link.split_once("/p/").map(|(_, token)| format!("/p/{token}")).unwrap();

        // The lead opens it: no login, the page rendered inert.
        let open = || async { reqwest::get(app.url(&path)).await.unwrap() };
        let resp = open().await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-security-policy"].to_str().unwrap().contains("default-src"));
        let html = resp.text().await.unwrap();
        assert!(html.contains("<h1>Plans</h1>") && html.contains("<strong>Pro</strong>"), "{html}");
        assert!(!html.contains("<script") && !html.contains("javascript:"), "{html}");

        // One content_viewed per hour, and content.viewed to the assignee.
        let viewed = loop {
            let frame = live.next_json().await;
            if frame["type"] == "content.viewed" {
                break frame;
            }
        };
        assert_eq!((viewed["data"]["lead_id"].as_str(), viewed["data"]["title"].as_str()), (Some(lead.as_str()), Some("Our plans")));
        assert_eq!(views_on_timeline(&app, &lead).await, 1);
        assert_eq!(open().await.status(), StatusCode::OK);
        assert_eq!(views_on_timeline(&app, &lead).await, 1, "a second view within the hour records nothing");
        app.clock.advance(chrono::Duration::minutes(61));
        assert_eq!(open().await.status(), StatusCode::OK);
        assert_eq!(views_on_timeline(&app, &lead).await, 2);

        // Unknown or malformed tokens are 404.
        let bad = reqwest::get(app.url(&format!("/p/{}", "ab".repeat(32)))).await.unwrap();
        assert_eq!(bad.status(), StatusCode::NOT_FOUND);
        let bad = reqwest::get(app.url("/p/not-a-token")).await.unwrap();
        assert_eq!(bad.status(), StatusCode::NOT_FOUND);
    }
}
