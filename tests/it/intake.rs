//! API keys and lead intake: a key shown once and stored hashed, listed without its secret,
//! revoked at once, usable only on its scopes' routes; intake idempotent on external_id and
//! phone, validation errors naming the field, assignment after intake.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::on_db;

use crate::on_both;
use crate::support::*;

async fn new_key(app: &TestApp, token: &str, name: &str) -> Value {
    let (status, body) = app.post("/api/v1/api-keys", token, json!({"name": name, "scopes": ["leads:write"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn intake(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value) {
    app.post("/api/v1/intake/leads", key, body).await
}

async fn lead_count(app: &TestApp) -> i64 {
    on_db!(&app.db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM leads").fetch_one(p).await).unwrap()
}

on_both! {
    async fn a_key_is_shown_once_stored_hashed_and_revoked_at_once(t: TestDb) {
        let app = spawn_app(&t).await;
        let created = new_key(&app, &app.admin_token, "Website form").await;
        let key = created["key"].as_str().expect("the key, this once").to_owned();
        assert!(key.starts_with("sbk_") && key.len() > 60, "{key}");
        assert_eq!(created["scopes"], json!(["leads:write"]));
        assert_eq!(created["name"], "Website form");
        assert!(key.starts_with(created["prefix"].as_str().unwrap()));

        // Listed without the secret.
        let (status, list) = app.get("/api/v1/api-keys", &app.admin_token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["api_keys"].as_array().unwrap().len(), 1);
        assert!(list["api_keys"][0].get("key").is_none(), "{list}");
        assert!(!list.to_string().contains(&key));
        // Only its hash is stored.
        let stored: Vec<Vec<u8>> =
            on_db!(&app.db, |p| sqlx::query_scalar("SELECT key_hash FROM api_keys").fetch_all(p).await).unwrap();
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0], key.as_bytes());
        assert_eq!(stored[0].len(), 32);

        let (status, lead) = intake(&app, &key, json!({"name": "Ann", "phone": "+44 20 7946 0001"})).await;
        assert_eq!(status, StatusCode::CREATED, "{lead}");

        // Revoked: refused on the very next call.
        let id = created["id"].as_str().unwrap();
        let resp = app.call(Method::DELETE, &format!("/api/v1/api-keys/{id}"), Some(&app.admin_token), None).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let (status, body) = intake(&app, &key, json!({"name": "Ben", "phone": "+44 20 7946 0002"})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        error_code(&body);
        let (_, list) = app.get("/api/v1/api-keys", &app.admin_token).await;
        assert!(list["api_keys"][0]["revoked_at"].is_string(), "{list}");
        // Revoking again changes nothing; another workspace's key is not found.
        let resp = app.call(Method::DELETE, &format!("/api/v1/api-keys/{id}"), Some(&app.admin_token), None).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let other = uuid::Uuid::new_v4();
        let resp = app.call(Method::DELETE, &format!("/api/v1/api-keys/{other}"), Some(&app.admin_token), None).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);

        // The audit trail has the creation and the one revocation, never the key.
        let (status, audit) = app.get("/api/v1/audit", &app.admin_token).await;
        assert_eq!(status, StatusCode::OK, "{audit}");
        let actions: Vec<&str> = audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["api_key.revoked", "api_key.created"], "{audit}");
        assert_eq!(audit["entries"][1]["changes"]["name"]["to"], "Website form");
        assert!(!audit.to_string().contains(&key), "{audit}");
    }

    async fn a_key_calls_only_its_scopes_routes(t: TestDb) {
        let app = spawn_app(&t).await;
        let key = new_key(&app, &app.admin_token, "Zapier").await["key"].as_str().unwrap().to_owned();
        for (method, path) in [
            (Method::GET, "/api/v1/leads"),
            (Method::GET, "/api/v1/auth/me"),
            (Method::GET, "/api/v1/api-keys"),
            (Method::POST, "/api/v1/leads"),
        ] {
            let body = (method == Method::POST).then(|| json!({"name": "X", "phone": "+442079460009"}));
            let (status, answer) = app.json(method.clone(), path, &key, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
            assert_eq!(error_code(&answer), "api_key_not_allowed");
        }
        // A session is not a key on the intake route.
        let (status, body) = intake(&app, &app.admin_token, json!({"name": "Ann", "phone": "+442079460001"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(error_code(&body), "api_key_required");
        // An unknown key is no credential.
        let (status, _) = intake(&app, "sbk_0000", json!({"name": "Ann", "phone": "+442079460001"})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(lead_count(&app).await, 0);
        // Unknown scopes are refused by name.
        let (status, body) =
            app.post("/api/v1/api-keys", &app.admin_token, json!({"name": "x", "scopes": ["leads:read"]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"]["message"].as_str().unwrap().contains("leads:read"), "{body}");
    }

    async fn members_with_manage_integrations_manage_keys(t: TestDb) {
        let app = spawn_app(&t).await;
        let (_, integrator) = app.member("int@example.com", json!({"manage_integrations": true})).await;
        let (_, plain) = app.member("plain@example.com", json!({"manage_members": true})).await;
        new_key(&app, &integrator, "Form").await;
        let (status, body) =
            app.post("/api/v1/api-keys", &plain, json!({"name": "Form", "scopes": ["leads:write"]})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _) = app.get("/api/v1/api-keys", &plain).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, list) = app.get("/api/v1/api-keys", &integrator).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["api_keys"].as_array().unwrap().len(), 1);
    }

    async fn intake_is_idempotent_on_external_id_and_phone(t: TestDb) {
        let app = spawn_app(&t).await;
        let key = new_key(&app, &app.admin_token, "Form").await["key"].as_str().unwrap().to_owned();
        let form = json!({"name": "Ann Lee", "phone": "+44 20 7946 0001", "source": "website", "page": "pricing",
                          "form": "demo", "custom_fields": {"plan": "pro"}, "external_id": "form-123"});
        let (status, first) = intake(&app, &key, form.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        assert_eq!(first["phone"], "442079460001");
        assert_eq!(first["source"], "website");
        assert_eq!(first["custom_fields"], json!({"plan": "pro", "page": "pricing", "form": "demo"}));

        // The same POST again (a retry): the same lead, 200.
        let (status, again) = intake(&app, &key, form.clone()).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["id"], first["id"]);

        // Same external_id, a new phone and a new field: merged into the same lead.
        let (status, merged) = intake(&app, &key, json!({"name": "Ann Lee-Smith", "phone": "+44 20 7946 0002",
            "custom_fields": {"budget": "10k"}, "external_id": "form-123"})).await;
        assert_eq!(status, StatusCode::OK, "{merged}");
        assert_eq!(merged["id"], first["id"]);
        assert_eq!(merged["name"], "Ann Lee-Smith");
        assert_eq!(merged["phone"], "442079460002");
        assert_eq!(merged["source"], "website", "a field not given is kept");
        assert_eq!(merged["custom_fields"]["plan"], "pro");
        assert_eq!(merged["custom_fields"]["budget"], "10k");

        // No external_id: the phone finds it.
        let (status, by_phone) = intake(&app, &key, json!({"name": "Ann", "phone": "00442079460002"})).await;
        assert_eq!(status, StatusCode::OK, "{by_phone}");
        assert_eq!(by_phone["id"], first["id"]);
        assert_eq!(lead_count(&app).await, 1);

        // Ten identical submissions at once still make one lead.
        let burst = json!({"name": "Cy", "phone": "+1 415 555 0134", "external_id": "zap-9"});
        let answers = futures_util::future::join_all((0..10).map(|_| intake(&app, &key, burst.clone()))).await;
        let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
        assert!(answers.iter().all(|(s, b)| s.is_success() && b["id"] == answers[0].1["id"]), "{answers:?}");
        assert_eq!(created, 1, "{answers:?}");
        assert_eq!(lead_count(&app).await, 2);

        // The admin sees them in the workspace like any lead.
        let (status, lead) = app.get(&format!("/api/v1/leads/{}", first["id"].as_str().unwrap()), &app.admin_token).await;
        assert_eq!(status, StatusCode::OK, "{lead}");
    }

    async fn intake_errors_name_the_field(t: TestDb) {
        let app = spawn_app(&t).await;
        let key = new_key(&app, &app.admin_token, "Form").await["key"].as_str().unwrap().to_owned();
        for (body, field) in [
            (json!({"name": "Ann", "phone": "12"}), "phone"),
            (json!({"name": " ", "phone": "+442079460001"}), "name"),
            (json!({"phone": "+442079460001"}), "name"),
            (json!({"name": "Ann"}), "phone"),
            (json!({"name": "Ann", "phone": "+442079460001", "external_id": "x".repeat(300)}), "external_id"),
            (json!({"name": "Ann", "phone": "+442079460001", "page": "p".repeat(300)}), "page"),
            (json!({"name": "Ann", "phone": "+442079460001", "custom_fields": {"": 1}}), "custom_fields"),
            (json!({"name": "Ann", "phone": "+442079460001", "colour": "red"}), "colour"),
        ] {
            let (status, answer) = intake(&app, &key, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(field), "{body}: the error names {field}: {answer}");
        }
        assert_eq!(lead_count(&app).await, 0);
    }

    async fn intake_runs_the_assignment(t: TestDb) {
        let app = spawn_app(&t).await;
        let (bo, _) = app.member("bo@example.com", json!({})).await;
        let (status, body) = app
            .json(Method::PUT, "/api/v1/assignment", &app.admin_token, Some(json!({
                "mode": "unassigned",
                "rules": [{"name": "Pricing page", "criteria": [{"field": "page", "op": "equals", "value": "pricing"}],
                           "route": {"type": "member", "member_id": bo}}]
            })))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let key = new_key(&app, &app.admin_token, "Form").await["key"].as_str().unwrap().to_owned();
        let (status, lead) =
            intake(&app, &key, json!({"name": "Ann", "phone": "+442079460001", "page": "pricing"})).await;
        assert_eq!(status, StatusCode::CREATED, "{lead}");
        assert_eq!(lead["assignee_id"], bo.to_string());
        let (status, other) = intake(&app, &key, json!({"name": "Ben", "phone": "+442079460002"})).await;
        assert_eq!(status, StatusCode::CREATED, "{other}");
        assert!(other["assignee_id"].is_null());
    }
}
