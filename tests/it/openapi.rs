//! The OpenAPI document (`GET /api/v1/openapi.json`) against the router's own route list:
//! every route is documented with a description, nothing documented is not routed, and every
//! schema reference resolves. Schemathesis (`.ci/schemathesis.sh`) checks the answers.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::on_both;
use crate::support::*;

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => {
                        out.insert(r.clone());
                    }
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

on_both! {
    async fn every_route_is_documented_with_a_description(t: TestDb) {
        let app = spawn_app(&t).await;
        // Public: no token.
        let resp = app.client.get(app.url("/api/v1/openapi.json")).send().await.expect("request");
        assert_eq!(resp.status(), StatusCode::OK);
        let doc: Value = resp.json().await.expect("json");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "OpenAPI 3.1: {}", doc["openapi"]);
        let paths = doc["paths"].as_object().expect("paths");

        let routes = switchboard::app::api_routes();
        let mut missing = Vec::new();
        let mut undescribed = Vec::new();
        for (method, path) in &routes {
            let op = &paths.get(path).unwrap_or(&Value::Null)[method.to_lowercase()];
            if op.is_null() {
                missing.push(format!("{method} {path}"));
            } else if op["description"].as_str().is_none_or(|d| d.trim().is_empty()) {
                undescribed.push(format!("{method} {path}"));
            }
        }
        assert!(
            missing.is_empty(),
            "routes missing from the OpenAPI document (add #[utoipa::path] to the handler and list it in src/openapi.rs):\n  {}",
            missing.join("\n  ")
        );
        assert!(undescribed.is_empty(), "routes without a description:\n  {}", undescribed.join("\n  "));

        // Nothing documented that the router does not serve.
        let routed: BTreeSet<(String, String)> = routes.iter().map(|(m, p)| (m.to_lowercase(), p.clone())).collect();
        let mut stale = Vec::new();
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "put", "post", "delete", "patch"].contains(&method.as_str())
                    && !routed.contains(&(method.clone(), path.clone()))
                {
                    stale.push(format!("{method} {path}"));
                }
            }
        }
        assert!(stale.is_empty(), "documented but not routed:\n  {}", stale.join("\n  "));

        // Every path parameter is declared, every answer has an error case, every reference resolves.
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("path item") {
                if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    continue;
                }
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                for name in path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
                    assert!(declared.contains(name), "{method} {path}: path parameter {name} not declared");
                }
                assert!(
                    op["responses"].as_object().is_some_and(|r| r.keys().any(|k| k.starts_with('4'))),
                    "{method} {path}: no error answer"
                );
            }
        }
        let mut all = BTreeSet::new();
        refs(&doc, &mut all);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
            assert!(doc["components"]["schemas"][name].is_object(), "$ref {r} does not resolve");
        }

        // The error answer is the contract's.
        let (status, body) = app.get("/api/v1/conversations/not-a-uuid", &app.admin_token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{body}");
    }
}
