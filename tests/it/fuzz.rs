//! Fuzzing on stable, bounded in time, part of `cargo test`: the webhook payload decoder and
//! the CSV import get generated input (random seeds each run). Whatever comes in, the decoder
//! never panics, the server never answers 500, the journal drains, and the server stays
//! healthy. A failing input is printed whole: paste it into a regression test.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard::webhook::journal::codec;
use switchboard::webhook::payload::{self, ChangeValue, Envelope};

use crate::on_both;
use crate::support::*;

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        "[0-9]{0,16}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Sometimes the expected shape, sometimes anything.
fn or_any(typical: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Value> {
    prop_oneof![4 => typical, 1 => any_json()]
}

const TYPES: [&str; 16] = [
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "unsupported",
    "request_welcome",
    "ephemeral",
];

/// A message as Meta sends it, with any of its parts replaced by something else.
fn message() -> impl Strategy<Value = Value> {
    (
        or_any("wamid\\.[A-Za-z0-9]{1,12}".prop_map(Value::from)),
        or_any("1555010[0-9]{4}".prop_map(Value::from)),
        or_any((1_600_000_000i64..1_900_000_000).prop_map(|t| Value::from(t.to_string()))),
        or_any(prop::sample::select(TYPES.to_vec()).prop_map(Value::from)),
        any_json(),
        any::<bool>(),
    )
        .prop_map(|(id, from, timestamp, kind, body, context)| {
            let mut m = json!({"id": id, "from": from, "timestamp": timestamp, "type": kind});
            if let Some(k) = m["type"].as_str().map(str::to_owned) {
                m[k] = body;
            }
            if context {
                m["context"] = json!({"from": "15550100100", "id": "wamid.ctx"});
            }
            m
        })
}

fn status() -> impl Strategy<Value = Value> {
    (
        or_any("wamid\\.[A-Za-z0-9]{1,12}".prop_map(Value::from)),
        or_any(prop::sample::select(vec!["sent", "delivered", "read", "failed", "deleted", "warning"]).prop_map(Value::from)),
        or_any((1_600_000_000i64..1_900_000_000).prop_map(|t| Value::from(t.to_string()))),
        any_json(),
    )
        .prop_map(|(id, status, timestamp, errors)| {
            json!({"id": id, "status": status, "timestamp": timestamp, "recipient_id": "15550100111", "errors": errors})
        })
}

/// A webhook body: Meta's envelope around changes for the connected number (or another),
/// with messages, statuses, echoes and contacts, any part of it possibly wrong.
fn webhook() -> impl Strategy<Value = Value> {
    let value = (
        prop::collection::vec(message(), 0..3),
        prop::collection::vec(status(), 0..3),
        prop::collection::vec(message(), 0..2),
        or_any(Just(json!([{"profile": {"name": "Test Contact"}, "wa_id": "15550100111"}]))),
        or_any(
            prop::sample::select(vec!["100200300400600", "999"])
                .prop_map(|id| json!({"display_phone_number": "15550100100", "phone_number_id": id})),
        ),
    )
        .prop_map(|(messages, statuses, echoes, contacts, metadata)| {
            json!({"messaging_product": "whatsapp", "metadata": metadata, "contacts": contacts,
                   "messages": messages, "statuses": statuses, "message_echoes": echoes})
        });
    (
        or_any(value),
        or_any(prop::sample::select(vec!["messages", "smb_message_echoes", "account_update"]).prop_map(Value::from)),
    )
        .prop_map(|(value, field)| {
            json!({"object": "whatsapp_business_account",
                   "entry": [{"id": "100200300400500", "changes": [{"field": field, "value": value}]}]})
        })
}

/// `n` values drawn from `strategy` (no shrinking: each failing input is printed whole).
fn draw<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::default();
    (0..n).map(|_| strategy.new_tree(&mut runner).expect("a value").current()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_decoder_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = serde_json::from_slice::<Envelope>(&bytes);
        let _ = codec::unpack(&bytes);
        let _ = payload::timestamp(std::str::from_utf8(&bytes).ok());
    }

    #[test]
    fn the_decoder_takes_any_json(body in webhook()) {
        let bytes = serde_json::to_vec(&body).unwrap();
        if let Ok(envelope) = serde_json::from_slice::<Envelope>(&bytes) {
            for change in envelope.entry.iter().flat_map(|e| &e.changes) {
                let _ = serde_json::from_value::<ChangeValue>(change.value.clone());
            }
        }
        // What the journal packs comes back as it went in.
        let id = uuid::Uuid::new_v4();
        let at = chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap();
        let packed = codec::pack([(id, at, bytes.as_slice())]);
        prop_assert_eq!(codec::unpack(&packed), Some(vec![(id, at, bytes.as_slice())]));
    }
}

/// CSV cells worth trying: empty, quoted, formulas, phones good and bad, long, non-ASCII.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\+?1555[0-9]{0,9}",
        "[A-Za-z ]{0,20}",
        "\\PC{0,30}",
        "[=+@-][a-z(),0-9]{0,10}",
        "\"[^\"]{0,10}\"",
        "[a-z]{1,6};[a-z]{1,6}",
        "[a-z.]{1,8}@example\\.com",
        ".{200,300}",
    ]
}

fn column() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["name", "phone", "source", "group", "assignee_email", "Name", "PHONE"]).prop_map(str::to_owned),
        1 => "custom\\.[a-z_]{0,12}",
        1 => "\\PC{0,12}",
    ]
}

/// A CSV file: a header of 1–8 columns and 0–20 rows of 0–10 cells each, joined with commas
/// and line breaks of either kind (quoting left to the cells: some are malformed on purpose).
fn csv_file() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(column(), 1..8),
        prop::collection::vec(prop::collection::vec(cell(), 0..10), 0..20),
        prop::sample::select(vec!["\n", "\r\n"]),
        any::<bool>(),
    )
        .prop_map(|(header, rows, eol, bom)| {
            let mut text = if bom { "\u{feff}".to_owned() } else { String::new() };
            text.push_str(&header.join(","));
            for r in rows {
                text.push_str(eol);
                text.push_str(&r.join(","));
            }
            text
        })
}

on_both! {
    async fn generated_webhooks_never_break_ingest(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", true).await;
        let bodies = draw(webhook(), 40);
        for body in &bodies {
            let bytes = serde_json::to_vec(body).unwrap();
            assert_eq!(app.signed_webhook(&bytes).await, StatusCode::OK, "{body}");
        }
        app.webhooks_processed().await;
        let failed = app.count("SELECT COUNT(*) FROM webhook_events WHERE state = 'failed'").await;
        let (status, _) = app.get("/healthz", &app.admin_token).await;
        assert_eq!(status, StatusCode::OK, "healthy after {} generated webhooks ({failed} failed)", bodies.len());
        let (status, page) = app.get("/api/v1/conversations", &app.admin_token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
    }

    async fn generated_csv_files_never_break_the_import(t: TestDb) {
        let app = spawn_app(&t).await;
        for file in draw(csv_file(), 30) {
            let resp = app.client.post(app.url("/api/v1/leads/import"))
                .bearer_auth(&app.admin_token)
                .header("content-type", "text/csv")
                .body(file.clone())
                .send()
                .await
                .expect("import");
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert!(status == StatusCode::OK || status.is_client_error(), "{status} {body} for {file:?}");
            if status.is_client_error() {
                error_code(&body);
            }
        }
        let (status, _) = app.get("/api/v1/leads", &app.admin_token).await;
        assert_eq!(status, StatusCode::OK);
    }
}
