//! The media store: uploads within Meta's limits (413/415), streamed to disk with bounded
//! memory, names that never become paths, served media with its headers and only to who sees
//! the chat, inbound media moved from the database to disk, sends through the fake Graph API
//! (which receives the bytes), and content `file` items sent as their file.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::on_both;
use crate::outbox::{FakeGraph, inbox_with_open_chat};
use crate::support::*;

pub fn data_dir(app: &TestApp) -> PathBuf {
    app.running.as_ref().expect("running").state.config.data_dir.clone()
}

/// Uploads `bytes` as `name` with MIME type `mime` (none: no type sent) as `token`.
pub async fn upload(app: &TestApp, token: &str, name: &str, mime: Option<&str>, bytes: Vec<u8>) -> (StatusCode, Value) {
    let mut part = Part::bytes(bytes).file_name(name.to_owned());
    if let Some(m) = mime {
        part = part.mime_str(m).unwrap();
    }
    let resp = app
        .client
        .post(app.url("/api/v1/media"))
        .bearer_auth(token)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .expect("upload");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn simple(id: &Value) -> String {
    Uuid::parse_str(id.as_str().expect("an id")).unwrap().simple().to_string()
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

async fn message_of(app: &TestApp, conv: &str, id: &str) -> Value {
    let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
    page["messages"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned().unwrap_or(Value::Null)
}

async fn wait_sent(app: &TestApp, conv: &str, id: &str) -> Value {
    eventually("the message is sent", || async {
        let m = message_of(app, conv, id).await;
        (m["status"] == "sent").then_some(m)
    })
    .await
}

on_both! {
    async fn uploads_follow_metas_limits(t: TestDb) {
        let app = spawn_app(&t).await;
        let dir = data_dir(&app);
        let (status, up) = upload(&app, &app.admin_token, "kitchen.png", Some("image/png"), b"\x89PNG small".to_vec()).await;
        assert_eq!(status, StatusCode::CREATED, "{up}");
        assert_eq!((up["mime_type"].clone(), up["size"].clone(), up["filename"].clone()), (json!("image/png"), json!(10), json!("kitchen.png")));
        assert_eq!(std::fs::read(dir.join("uploads").join(simple(&up["id"]))).unwrap(), b"\x89PNG small");

        // Over the image limit (5 MB): 413, and nothing is left behind.
        let (status, body) = upload(&app, &app.admin_token, "big.jpg", Some("image/jpeg"), vec![7u8; (5 << 20) + 1]).await;
        assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
        // Exactly at it: taken.
        let (status, _) = upload(&app, &app.admin_token, "edge.jpg", Some("image/jpeg"), vec![7u8; 5 << 20]).await;
        assert_eq!(status, StatusCode::CREATED);
        // Over the audio limit (16 MB).
        let (status, body) = upload(&app, &app.admin_token, "long.mp3", Some("audio/mpeg"), vec![1u8; (16 << 20) + 1]).await;
        assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
        // A body announcing more than the largest document is refused from its length alone.
        let (status, body) = app
            .announce_oversized(
                "/api/v1/media",
                &[("Authorization", &format!("Bearer {}", app.admin_token)), ("Content-Type", "multipart/form-data; boundary=x")],
                (101 << 20) + 1,
            )
            .await;
        assert_eq!((status, code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"), "{body}");

        // Types WhatsApp refuses: 415, whatever the name says.
        for (name, mime) in [("page.html", Some("text/html")), ("logo.svg", Some("image/svg+xml")), ("tool.exe", None), ("a.png", Some("image/svg+xml"))] {
            let (status, body) = upload(&app, &app.admin_token, name, mime, b"<svg onload=alert(1)>".to_vec()).await;
            assert_eq!((status, code(&body)), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"), "{name}");
        }
        // No declared type: the extension decides.
        let (status, up) = upload(&app, &app.admin_token, "notes.PDF", None, b"%PDF-1.4".to_vec()).await;
        assert_eq!((status, up["mime_type"].clone()), (StatusCode::CREATED, json!("application/pdf")));
        // Empty files and forms without `file` are refused.
        let (status, body) = upload(&app, &app.admin_token, "empty.pdf", Some("application/pdf"), Vec::new()).await;
        assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "empty_upload"));
        let resp = app.client.post(app.url("/api/v1/media")).bearer_auth(&app.admin_token)
            .multipart(Form::new().text("other", "x")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

        // Who may upload: those who may reply somewhere, or create content.
        let (_, plain) = app.member("plain@example.com", json!({})).await;
        let (status, body) = upload(&app, &plain, "a.pdf", Some("application/pdf"), b"%PDF".to_vec()).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
        let (_, creator) = app.member("creator@example.com", json!({"create_content": true})).await;
        let (status, _) = upload(&app, &creator, "a.pdf", Some("application/pdf"), b"%PDF".to_vec()).await;
        assert_eq!(status, StatusCode::CREATED);

        let files = files_under(&dir);
        assert!(files.iter().all(|f| f.starts_with("uploads/")), "refused uploads leave nothing: {files:?}");
        assert_eq!(files.len(), 4, "{files:?}");
    }

    async fn upload_names_never_become_paths(t: TestDb) {
        let app = spawn_app(&t).await;
        let dir = data_dir(&app);
        for (name, shown) in [
            ("../../../../tmp/escape.pdf", "escape.pdf"),
            ("..\\..\\windows\\evil.pdf", "evil.pdf"),
            ("/etc/passwd.pdf", "passwd.pdf"),
            ("..", "upload"),
        ] {
            let (status, up) = upload(&app, &app.admin_token, name, Some("application/pdf"), b"%PDF-1.4".to_vec()).await;
            assert_eq!((status, up["filename"].as_str().unwrap()), (StatusCode::CREATED, shown), "{name}");
            assert!(dir.join("uploads").join(simple(&up["id"])).is_file());
        }
        assert!(!dir.parent().unwrap().join("escape.pdf").exists());
        let files = files_under(&dir);
        assert_eq!(files.len(), 4);
        assert!(files.iter().all(|f| f.starts_with("uploads/") && f.len() == "uploads/".len() + 32), "{files:?}");
    }

    async fn a_100_mb_document_streams_to_disk_with_bounded_memory(t: TestDb) {
        const SIZE: usize = 100 << 20;
        const CHUNK: usize = 1 << 20;
        let app = spawn_app(&t).await;
        let dir = data_dir(&app);
        // The body is generated as it is sent: one 1 MiB block, shared, a hundred times.
        let block = bytes::Bytes::from(vec![b'x'; CHUNK]);
        let chunks = futures_util::stream::iter((0..SIZE / CHUNK).map(move |_| Ok::<_, std::io::Error>(block.clone())));
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(chunks), SIZE as u64)
            .file_name("manual.pdf")
            .mime_str("application/pdf")
            .unwrap();
        let baseline = rss();
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
        let watching = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    peak.fetch_max(rss(), std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            })
        };
        // A slow machine may take a while for 100 MiB: no 30 s client timeout here.
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(300)).build().unwrap();
        let resp = client.post(app.url("/api/v1/media")).bearer_auth(&app.admin_token)
            .multipart(Form::new().part("file", part)).send().await.unwrap();
        watching.abort();
        let status = resp.status();
        let up: Value = resp.json().await.unwrap();
        assert_eq!((status, up["size"].clone()), (StatusCode::CREATED, json!(SIZE)), "{up}");
        let grew = peak.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(baseline);
        assert!(grew < 48 << 20, "memory grew by {} MiB while 100 MiB streamed through", grew >> 20);
        let stored = std::fs::metadata(dir.join("uploads").join(simple(&up["id"]))).unwrap().len();
        assert_eq!(stored, SIZE as u64);
        // One byte more than 100 MB is refused.
        let block = bytes::Bytes::from(vec![b'x'; CHUNK]);
        let chunks = futures_util::stream::iter((0..SIZE / CHUNK).map(move |_| Ok::<_, std::io::Error>(block.clone())))
            .chain(futures_util::stream::iter([Ok(bytes::Bytes::from_static(b"!"))]));
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(chunks), SIZE as u64 + 1)
            .file_name("manual.pdf")
            .mime_str("application/pdf")
            .unwrap();
        let resp = client.post(app.url("/api/v1/media")).bearer_auth(&app.admin_token)
            .multipart(Form::new().part("file", part)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        std::fs::remove_dir_all(&dir).ok();
    }

    async fn an_upload_is_sent_through_the_graph_api(t: TestDb) {
        let graph = FakeGraph::start().await;
        let (app, conv, _) = inbox_with_open_chat(&t, &graph).await;
        let pdf = format!("%PDF-1.4 the quote {}", Uuid::new_v4()).into_bytes();
        let (status, up) = upload(&app, &app.admin_token, "quote.pdf", Some("application/pdf"), pdf.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{up}");
        let path = format!("/api/v1/conversations/{conv}/messages");
        let (status, msg) = app.post(&path, &app.admin_token,
            json!({"type": "document", "media": {"upload_id": up["id"]}, "caption": "Your quote"})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{msg}");
        assert_eq!(msg["media"]["filename"], "quote.pdf");
        assert_eq!(msg["media"]["mime_type"], "application/pdf");
        assert_eq!(msg["text"], "Your quote");
        wait_sent(&app, &conv, msg["id"].as_str().unwrap()).await;
        let seen = graph.requests();
        let uploaded = seen.iter().find(|r| r.path == "upload").expect("the bytes went to Meta first");
        assert_eq!(uploaded.auth, "Bearer EAAG-test-token");
        let multipart = uploaded.body["multipart"].as_str().unwrap();
        assert!(multipart.contains(std::str::from_utf8(&pdf).unwrap()), "the fake Graph API received the file's bytes");
        assert!(multipart.contains("application/pdf") && multipart.contains("whatsapp"));
        let sent = seen.iter().find(|r| r.body["type"] == "document").expect("the message");
        assert_eq!(sent.body["document"], json!({"id": "media-up-1", "caption": "Your quote", "filename": "quote.pdf"}));

        // An image upload is not a document; unknown uploads are refused before anything is stored.
        let (_, img) = upload(&app, &app.admin_token, "a.jpg", Some("image/jpeg"), b"\xff\xd8jpeg".to_vec()).await;
        let (status, body) = app.post(&path, &app.admin_token, json!({"type": "document", "media": {"upload_id": img["id"]}})).await;
        assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "media_type_mismatch"));
        let (status, body) = app.post(&path, &app.admin_token, json!({"type": "image", "media": {"upload_id": Uuid::new_v4()}})).await;
        assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_upload"));
        let (status, body) = app.post(&path, &app.admin_token,
            json!({"type": "image", "media": {"upload_id": img["id"], "mime_type": "text/html"}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the client never sets the type: {body}");
        let (status, img_msg) = app.post(&path, &app.admin_token, json!({"type": "image", "media": {"upload_id": img["id"], "caption": "The kitchen"}})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{img_msg}");
        wait_sent(&app, &conv, img_msg["id"].as_str().unwrap()).await;
        let sent = graph.requests().into_iter().find(|r| r.body["type"] == "image").expect("the image");
        assert_eq!(sent.body["image"], json!({"id": "media-up-1", "caption": "The kitchen"}));

        // The sent bubble's media is served from the store, to who sees the chat only.
        let resp = app.call(Method::GET, &format!("/api/v1/media/{}", msg["id"].as_str().unwrap()), Some(&app.admin_token), None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/pdf");
        assert_eq!(resp.headers()["content-disposition"], "attachment; filename=\"quote.pdf\"; filename*=UTF-8''quote.pdf");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), pdf.as_slice());
        let resp = app.call(Method::GET, &format!("/api/v1/media/{}", img_msg["id"].as_str().unwrap()), Some(&app.admin_token), None).await;
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert!(resp.headers()["content-disposition"].to_str().unwrap().starts_with("inline; filename=\"a.jpg\""));
        let (_, outsider) = app.member("outsider@example.com", json!({})).await;
        let resp = app.call(Method::GET, &format!("/api/v1/media/{}", msg["id"].as_str().unwrap()), Some(&outsider), None).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "media only for who can see the chat");
    }

    async fn inbound_media_lives_on_disk(t: TestDb) {
        let graph = FakeGraph::start().await;
        let (app, conv, _) = inbox_with_open_chat(&t, &graph).await;
        let dir = data_dir(&app);
        let image = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550100100", "phone_number_id": "100200300400600"},
            "messages": [{"from": "15550100111", "id": "wamid.in.img", "timestamp": app.clock.now().timestamp().to_string(), "type": "image",
                          "image": {"id": "media-77", "mime_type": "image/jpeg", "sha256": "abc"}}]}}]}]});
        app.signed_webhook(&serde_json::to_vec(&image).unwrap()).await;
        app.webhooks_processed().await;
        let (_, page) = app.get(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token).await;
        let img = page["messages"].as_array().unwrap().iter().find(|m| m["type"] == "image").unwrap()["id"].clone();
        let url = format!("/api/v1/media/{}", img.as_str().unwrap());
        let resp = app.call(Method::GET, &url, Some(&app.admin_token), None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        assert!(resp.headers()["content-disposition"].to_str().unwrap().starts_with("inline; filename=\"media-"));
        assert_eq!(resp.bytes().await.unwrap().as_ref(), b"\xff\xd8fake-jpeg");
        assert_eq!(std::fs::read(dir.join("inbound").join(simple(&img))).unwrap(), b"\xff\xd8fake-jpeg");
        let blobs: i64 = switchboard::on_db!(&app.db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM media_cache").fetch_one(p).await).unwrap();
        assert_eq!(blobs, 0, "no media bytes in the database");
        // Served again from disk: Meta is not asked twice.
        let before = graph.requests().len();
        let resp = app.call(Method::GET, &url, Some(&app.admin_token), None).await;
        assert_eq!(resp.bytes().await.unwrap().as_ref(), b"\xff\xd8fake-jpeg");
        assert_eq!(graph.requests().len(), before);
        let (_, outsider) = app.member("outsider@example.com", json!({})).await;
        let resp = app.call(Method::GET, &url, Some(&outsider), None).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);

        // Media an earlier version cached in the database moves to disk at start-up.
        let cached = crate::access::insert_cached_media(&app.db, app.workspace_id, uuid_of(&conv)).await;
        let mut config = test_config(&t.url);
        config.data_dir = dir.clone();
        let again = spawn_app_with(&t, config).await;
        eventually("the cached media moved to disk", || async {
            let n: i64 = switchboard::on_db!(&again.db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM media_cache").fetch_one(p).await).unwrap();
            (n == 0).then_some(())
        })
        .await;
        let on_disk = std::fs::read(dir.join("inbound").join(cached.simple().to_string())).unwrap();
        let resp = again.call(Method::GET, &format!("/api/v1/media/{cached}"), Some(&again.admin_token), None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "image/png");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), on_disk.as_slice());
    }

    async fn a_content_file_sends_its_file(t: TestDb) {
        let graph = FakeGraph::start().await;
        let (app, conv, _) = inbox_with_open_chat(&t, &graph).await;
        let (status, body) = app.post("/api/v1/content", &app.admin_token,
            json!({"kind": "file", "title": "Price list", "upload_id": Uuid::new_v4()})).await;
        assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_upload"));
        let bytes = format!("%PDF-1.4 prices {}", Uuid::new_v4()).into_bytes();
        let (_, up) = upload(&app, &app.admin_token, "prices.pdf", Some("application/pdf"), bytes.clone()).await;
        let (status, item) = app.post("/api/v1/content", &app.admin_token,
            json!({"kind": "file", "title": "Price list", "body": "Our prices", "upload_id": up["id"]})).await;
        assert_eq!(status, StatusCode::CREATED, "{item}");
        let (status, msg) = app.post(&format!("/api/v1/conversations/{conv}/messages"), &app.admin_token,
            json!({"type": "content", "content_id": item["id"]})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{msg}");
        assert_eq!((msg["type"].clone(), msg["media"]["filename"].clone(), msg["text"].clone()),
            (json!("document"), json!("prices.pdf"), json!("Our prices")));
        wait_sent(&app, &conv, msg["id"].as_str().unwrap()).await;
        let seen = graph.requests();
        let uploaded = seen.iter().find(|r| r.path == "upload").expect("the file went to Meta");
        assert!(uploaded.body["multipart"].as_str().unwrap().contains(std::str::from_utf8(&bytes).unwrap()));
        let sent = seen.iter().find(|r| r.body["type"] == "document").expect("the message");
        assert_eq!(sent.body["document"], json!({"id": "media-up-1", "caption": "Our prices", "filename": "prices.pdf"}));
    }
}

fn uuid_of(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}
