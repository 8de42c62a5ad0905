//! The real binary: `serve` logs its address, answers, and exits 0 on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_its_address_and_stops_cleanly_on_sigterm() {
    let t = TestDb::sqlite().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .env("DATABASE_URL", &t.url)
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env_remove("WHATSAPP_APP_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start switchboard");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut logs = Vec::new();
    let addr = loop {
        let line =
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("the server logs its address");
        logs.push(line.clone());
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    assert!(logs.iter().any(|l| l.contains("WHATSAPP_APP_SECRET")), "says which variable is missing: {logs:?}");
    let health = reqwest::get(format!("http://{addr}/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
    let webhook =
        reqwest::Client::new().post(format!("http://{addr}/webhooks/whatsapp")).body("{}").send().await.unwrap();
    assert_eq!(webhook.status(), 503, "no secret configured: webhooks refused");

    let started = Instant::now();
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "exits within 15 seconds");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit 0 on SIGTERM, got {status}");
}
