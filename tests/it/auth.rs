//! Bootstrap, login, logout, tokens, throttling, health and the error shape.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::on_both;
use crate::support::*;

fn bootstrap_cmd(url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("bootstrap")
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run switchboard bootstrap")
}

on_both! {
    async fn bootstrap_is_idempotent_and_validates(t: TestDb) {
        let args = ["--workspace", "Globex", "--email", "Owner@Globex.test", "--password", "s3cret-pass", "--name", "Olga"];
        let first = bootstrap_cmd(&t.url, &args);
        assert!(first.status.success(), "first bootstrap: {}", String::from_utf8_lossy(&first.stderr));
        let second = bootstrap_cmd(&t.url, &args);
        assert!(second.status.success(), "second bootstrap: {}", String::from_utf8_lossy(&second.stderr));
        let users: i64 = switchboard::on_db!(&t.db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(p).await).unwrap();
        assert_eq!(users, 1, "the second run created nothing");

        let bad_email = bootstrap_cmd(&t.url, &["--workspace", "X", "--email", "nope", "--password", "s3cret-pass"]);
        assert!(!bad_email.status.success());
        assert!(String::from_utf8_lossy(&bad_email.stderr).contains("email"), "says what is wrong");
        let short = bootstrap_cmd(&t.url, &["--workspace", "X", "--email", "x@x.test", "--password", "short"]);
        assert!(!short.status.success());
        assert!(String::from_utf8_lossy(&short.stderr).contains("password"));

        // The bootstrapped admin can log in on a server over the same database.
        let app = spawn_app(&t).await;
        let login = app.login("owner@globex.test", "s3cret-pass").await;
        assert_eq!(login["user"]["role"], "admin");
        assert_eq!(login["user"]["name"], "Olga");
        assert_eq!(login["user"]["email"], "owner@globex.test");
    }

    async fn login_logout_and_tokens(t: TestDb) {
        let app = spawn_app(&t).await;
        let login = app.login(ADMIN_EMAIL, PASSWORD).await;
        let token = login["token"].as_str().unwrap();
        for field in ["id", "email", "name", "role", "workspace_id"] {
            assert!(login["user"][field].is_string(), "user.{field} in {login}");
        }

        let wrong = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"email": ADMIN_EMAIL, "password": "wrong password"}))).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let wrong_body: serde_json::Value = wrong.json().await.unwrap();
        let unknown = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"email": "nobody@example.com", "password": "wrong password"}))).await;
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
        let unknown_body: serde_json::Value = unknown.json().await.unwrap();
        assert_eq!(wrong_body, unknown_body, "same answer for unknown email and wrong password");
        error_code(&wrong_body);

        let no_token = app.call(Method::GET, "/api/v1/leads", None, None).await;
        assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
        let (status, body) = app.get("/api/v1/leads", "sb_forged").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&body), "unauthorized");

        let (status, _) = app.get("/api/v1/leads", token).await;
        assert_eq!(status, StatusCode::OK);
        let out = app.call(Method::POST, "/api/v1/auth/logout", Some(token), None).await;
        assert_eq!(out.status(), StatusCode::NO_CONTENT);
        let (status, _) = app.get("/api/v1/leads", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "logout revokes the token");

        let stored: i64 = switchboard::on_db!(&t.db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM auth_tokens WHERE token_hash = $1")
            .bind(token.as_bytes().to_vec()).fetch_one(p).await).unwrap();
        assert_eq!(stored, 0, "tokens are not stored in plaintext");
    }

    async fn failed_logins_are_throttled(t: TestDb) {
        let app = spawn_app(&t).await;
        let mut last = None;
        for _ in 0..6 {
            last = Some(app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"email": ADMIN_EMAIL, "password": "bad-guess"}))).await);
        }
        let last = last.unwrap();
        assert_eq!(last.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = last.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait));
        let body: serde_json::Value = last.json().await.unwrap();
        assert_eq!(error_code(&body), "rate_limited");
    }

    async fn health_and_error_shapes(t: TestDb) {
        let app = spawn_app(&t).await;
        let health = app.call(Method::GET, "/healthz", None, None).await;
        assert_eq!(health.status(), StatusCode::OK);
        assert_eq!(health.json::<serde_json::Value>().await.unwrap(), json!({"status": "ok"}));

        let malformed = app.client.post(app.url("/api/v1/leads")).bearer_auth(&app.admin_token)
            .header("content-type", "application/json").body("{not json").send().await.unwrap();
        assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(&malformed.json().await.unwrap()), "malformed_json");

        let (status, body) = app.post("/api/v1/leads", &app.admin_token, json!({"phone": "+15550100111"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "missing field: {body}");
        assert_eq!(error_code(&body), "invalid_body");

        let (status, body) = app.get("/api/v1/nowhere", &app.admin_token).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        error_code(&body);

        let login_garbage = app.client.post(app.url("/api/v1/auth/login")).header("content-type", "application/json")
            .body("[]").send().await.unwrap();
        assert_eq!(login_garbage.status(), StatusCode::UNPROCESSABLE_ENTITY);
        error_code(&login_garbage.json().await.unwrap());
    }
}

#[tokio::test]
async fn healthz_is_503_when_the_database_is_gone() {
    let t = TestDb::sqlite().await;
    let app = spawn_app(&t).await;
    t.db.close().await;
    let health = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
}
