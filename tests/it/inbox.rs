//! Leads, numbers and conversation reads over real HTTP.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::on_both;
use crate::support::*;

on_both! {
    async fn leads_crud_with_phone_normalisation(t: TestDb) {
        let app = spawn_app(&t).await;
        let tok = app.admin_token.clone();
        let (status, lead) = app.post("/api/v1/leads", &tok, json!({
            "name": "Priya Raman", "phone": "+1 (555) 010-0111", "source": "website",
            "custom_fields": {"budget": "5k"}
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{lead}");
        assert_eq!(lead["phone"], "15550100111");
        assert_eq!(lead["source"], "website");
        assert_eq!(lead["custom_fields"]["budget"], "5k");
        assert!(lead["assignee_id"].is_null());
        assert_eq!(lead["group_ids"], json!([]));
        let id = lead["id"].as_str().unwrap();

        let (status, dup) = app.post("/api/v1/leads", &tok, json!({"name": "Again", "phone": "0015550100111"})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(error_code(&dup), "duplicate_phone");
        let (status, bad) = app.post("/api/v1/leads", &tok, json!({"name": "Bad", "phone": "call me"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_code(&bad), "invalid_phone");

        let (status, got) = app.get(&format!("/api/v1/leads/{id}"), &tok).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got, lead);

        let (status, patched) = app.json(Method::PATCH, &format!("/api/v1/leads/{id}"), &tok, Some(json!({"name": "Priya R.", "phone": "+1 555 010 0199"}))).await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert_eq!(patched["name"], "Priya R.");
        assert_eq!(patched["phone"], "15550100199");

        let (status, body) = app.json(Method::PATCH, &format!("/api/v1/leads/{id}"), &tok, Some(json!({"assignee_id": null}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

        let (status, found) = app.get("/api/v1/leads?q=priya", &tok).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(found["leads"].as_array().unwrap().len(), 1);
        let (_, none) = app.get("/api/v1/leads?q=nobody", &tok).await;
        assert_eq!(none["leads"], json!([]));
        let (status, _) = app.get("/api/v1/leads?unassigned=maybe", &tok).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "malformed filters are refused");
        let (status, _) = app.get("/api/v1/leads?assignee_id=xyz", &tok).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let del = app.call(Method::DELETE, &format!("/api/v1/leads/{id}"), Some(&tok), None).await;
        assert_eq!(del.status(), StatusCode::NO_CONTENT);
        let (status, _) = app.get(&format!("/api/v1/leads/{id}"), &tok).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    async fn leads_paginate_without_gaps(t: TestDb) {
        let app = spawn_app(&t).await;
        for i in 0..7 {
            app.create_lead(&format!("Lead {i}"), &format!("+1555010{:04}", 1000 + i)).await;
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/leads?limit=3&cursor={c}"),
                None => "/api/v1/leads?limit=3".to_owned(),
            };
            let (status, page) = app.get(&path, &app.admin_token).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for l in page["leads"].as_array().unwrap() {
                seen.push(l["name"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let expected: Vec<String> = (0..7).rev().map(|i| format!("Lead {i}")).collect();
        assert_eq!(seen, expected, "newest first, each once");
        let (status, _) = app.get("/api/v1/leads?cursor=garbage", &app.admin_token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, page) = app.get("/api/v1/leads?limit=500", &app.admin_token).await;
        assert_eq!(status, StatusCode::OK, "limit is capped, not refused");
        assert_eq!(page["leads"].as_array().unwrap().len(), 7);
    }

    async fn numbers_crud_never_shows_the_token(t: TestDb) {
        let app = spawn_app(&t).await;
        let tok = app.admin_token.clone();
        let number = app.connect_number("100200300400600", "+1 555 010 0100", true).await;
        assert_eq!(number["access_token_set"], true);
        assert!(number.get("access_token").is_none(), "write-only token: {number}");
        assert_eq!(number["auto_import_contacts"], true);
        assert_eq!(number["display_phone_number"], "15550100100");
        let (status, dup) = app.post("/api/v1/numbers", &tok, json!({
            "phone_number_id": "100200300400600", "display_phone_number": "15550100100", "access_token": "x"
        })).await;
        assert_eq!(status, StatusCode::CONFLICT, "{dup}");
        let (status, list) = app.get("/api/v1/numbers", &tok).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["numbers"].as_array().unwrap().len(), 1);
        assert!(!list.to_string().contains("EAAG-test-token"));

        let (_, member) = app.member("agent@example.com", json!({})).await;
        let (status, body) = app.post("/api/v1/numbers", &member, json!({
            "phone_number_id": "999", "display_phone_number": "15550100999", "access_token": "x"
        })).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

        let id = number["id"].as_str().unwrap();
        let del = app.call(Method::DELETE, &format!("/api/v1/numbers/{id}"), Some(&tok), None).await;
        assert_eq!(del.status(), StatusCode::NO_CONTENT);
        let (_, after) = app.get(&format!("/api/v1/numbers/{id}"), &tok).await;
        assert_eq!(after["connected"], false);
        // Disconnected: the same Meta number may be connected again.
        app.connect_number("100200300400600", "15550100100", false).await;
    }

    async fn workspaces_are_isolated(t: TestDb) {
        let app = spawn_app(&t).await;
        let lead = app.create_lead("Only Acme", "+15550100111").await;
        switchboard::workspace::bootstrap(&t.db, &app.clock, "Other Co", "boss@other.test", PASSWORD, None).await.unwrap();
        let other = app.login("boss@other.test", PASSWORD).await;
        let other_tok = other["token"].as_str().unwrap();
        let (status, _) = app.get(&format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()), other_tok).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, list) = app.get("/api/v1/leads", other_tok).await;
        assert_eq!(list["leads"], json!([]));
        // The same phone is a different lead in another workspace.
        let (status, _) = app.post("/api/v1/leads", other_tok, json!({"name": "Theirs", "phone": "+15550100111"})).await;
        assert_eq!(status, StatusCode::CREATED);
    }

    async fn conversation_reads_validate_filters(t: TestDb) {
        let app = spawn_app(&t).await;
        let (status, body) = app.get("/api/v1/conversations", &app.admin_token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"conversations": [], "next_cursor": null}));
        for bad in ["status=snoozed", "assignee_id=1", "label_id=x", "unassigned=yes", "color=red"] {
            let (status, body) = app.get(&format!("/api/v1/conversations?{bad}"), &app.admin_token).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        }
        let (status, _) = app.get(&format!("/api/v1/conversations/{}/messages", uuid::Uuid::new_v4()), &app.admin_token).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

on_both! {
    async fn lead_groups_crud_and_filters(t: TestDb) {
        let app = spawn_app(&t).await;
        let tok = app.admin_token.clone();
        let (status, vip) = app.post("/api/v1/groups", &tok, json!({"name": "VIP"})).await;
        assert_eq!(status, StatusCode::CREATED, "{vip}");
        let vip_id = vip["id"].as_str().unwrap().to_owned();
        let (status, dup) = app.post("/api/v1/groups", &tok, json!({"name": "VIP"})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(error_code(&dup), "duplicate_group");
        let (status, _) = app.post("/api/v1/groups", &tok, json!({"name": ""})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (_, other) = app.post("/api/v1/groups", &tok, json!({"name": "Cold"})).await;
        let (status, lead) = app.post("/api/v1/leads", &tok, json!({"name": "In both", "phone": "+15550100111",
            "group_ids": [vip_id, other["id"]]})).await;
        assert_eq!(status, StatusCode::CREATED, "{lead}");
        assert_eq!(lead["group_ids"].as_array().unwrap().len(), 2, "a lead in several groups");
        app.create_lead("In none", "+15550100122").await;
        let (_, found) = app.get(&format!("/api/v1/leads?group_id={vip_id}"), &tok).await;
        assert_eq!(found["leads"].as_array().unwrap().len(), 1);
        let (status, _) = app.post("/api/v1/leads", &tok, json!({"name": "X", "phone": "+15550100133", "group_ids": [uuid::Uuid::new_v4()]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown group");

        let (status, renamed) = app.json(Method::PATCH, &format!("/api/v1/groups/{vip_id}"), &tok, Some(json!({"name": "Gold"}))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(renamed["name"], "Gold");
        let (_, list) = app.get("/api/v1/groups", &tok).await;
        let names: Vec<&str> = list["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Cold", "Gold"]);

        let del = app.call(Method::DELETE, &format!("/api/v1/groups/{vip_id}"), Some(&tok), None).await;
        assert_eq!(del.status(), StatusCode::NO_CONTENT);
        let (_, lead) = app.get(&format!("/api/v1/leads/{}", lead["id"].as_str().unwrap()), &tok).await;
        assert_eq!(lead["group_ids"], json!([other["id"]]), "deleting a group takes it off its leads");
        let (status, _) = app.get("/api/v1/leads?group_id=nope", &tok).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // The conversation list filters by the lead's groups too.
        app.connect_number("100200300400600", "15550100100", false).await;
        app.signed_webhook(&crate::webhooks::fixture("text.json")).await;
        app.webhooks_processed().await;
        let other_id = other["id"].as_str().unwrap();
        let (_, convs) = app.get(&format!("/api/v1/conversations?group_id={other_id}"), &tok).await;
        assert_eq!(convs["conversations"].as_array().unwrap().len(), 1, "{convs}");
        let (_, convs) = app.get(&format!("/api/v1/conversations?group_id={vip_id}"), &tok).await;
        assert_eq!(convs["conversations"], json!([]));
        let (status, _) = app.get("/api/v1/conversations?group_id=nope", &tok).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
