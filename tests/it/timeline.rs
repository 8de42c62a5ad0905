//! The lead timeline: WhatsApp sessions summarised as messages arrive, in any order.

use chrono::{DateTime, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard::on_db;
use switchboard::timeline::sessions::{self, Msg};
use uuid::Uuid;

use crate::on_both;
use crate::support::*;
use crate::webhooks::text_payload;

const T0: i64 = 1_789_300_000;

fn echo_payload(wamid: &str, to: &str, ts: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "100200300400500", "changes": [{
        "field": "smb_message_echoes", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100100", "phone_number_id": "100200300400600"},
        "message_echoes": [{"from": "15550100100", "to": to, "id": wamid, "timestamp": ts.to_string(), "type": "text", "text": {"body": "reply"}}]}}]}]}))
    .unwrap()
}

async fn sessions_of(app: &TestApp, lead: &str) -> Vec<Value> {
    let (status, body) =
        app.get(&format!("/api/v1/leads/{lead}/timeline?type=whatsapp_session"), &app.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut v = body["activities"].as_array().unwrap().clone();
    v.reverse();
    v
}

on_both! {
    async fn sessions_are_summarised_split_and_merged(t: TestDb) {
        let app = spawn_app(&t).await;
        app.connect_number("100200300400600", "15550100100", false).await;
        let lead = app.create_lead("Priya", "+15550100111").await;
        let lead = lead["id"].as_str().unwrap();
        let p = "15550100111";
        for body in [text_payload("w.1", p, T0, "hi"), text_payload("w.2", p, T0 + 60, "anyone?"),
                     echo_payload("w.3", p, T0 + 300), text_payload("w.4", p, T0 + 400, "thanks")] {
            assert_eq!(app.signed_webhook(&body).await, StatusCode::OK);
        }
        app.webhooks_processed().await;
        let s = sessions_of(&app, lead).await;
        assert_eq!(s.len(), 1, "{s:?}");
        let d = &s[0]["data"];
        assert_eq!(d["initiated_by"], "lead");
        assert_eq!((d["messages_from_lead"].as_i64(), d["messages_from_member"].as_i64()), (Some(3), Some(1)));
        assert_eq!((d["lead_responded"].as_bool(), d["member_responded"].as_bool()), (Some(true), Some(true)));
        assert_eq!(d["first_response_seconds"], 300);
        assert_eq!(d["started_at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap().timestamp(), T0);
        assert_eq!(d["ended_at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap().timestamp(), T0 + 400);
        assert!(d["conversation_id"].is_string());
        assert_eq!(d["open"], false, "long over");

        // More than the 30-minute gap later: a second session, started by the business.
        app.signed_webhook(&echo_payload("w.5", p, T0 + 400 + 1801)).await;
        app.webhooks_processed().await;
        let s = sessions_of(&app, lead).await;
        assert_eq!(s.len(), 2);
        assert_eq!(s[1]["data"]["initiated_by"], "member");
        assert_eq!(s[1]["data"]["member_responded"], false);

        // A late message in between bridges the gap: the two sessions merge into one.
        app.signed_webhook(&text_payload("w.6", p, T0 + 1300, "late")).await;
        app.webhooks_processed().await;
        let s = sessions_of(&app, lead).await;
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0]["data"]["messages_from_lead"], 4);
        assert_eq!(s[0]["data"]["messages_from_member"], 2);

        // Filters.
        let (_, all) = app.get(&format!("/api/v1/leads/{lead}/timeline"), &app.admin_token).await;
        assert!(all["activities"].as_array().unwrap().iter().any(|a| a["type"] == "lead_created"));
        let (_, early) = app.get(&format!("/api/v1/leads/{lead}/timeline?to=2026-09-13T11:46:40Z"), &app.admin_token).await;
        assert_eq!(early["activities"], json!([]), "the session starts exactly at `to`, which is exclusive");
        for bad in ["type=party", "from=yesterday", "member_id=7"] {
            let (status, _) = app.get(&format!("/api/v1/leads/{lead}/timeline?{bad}"), &app.admin_token).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    async fn notes_and_visibility(t: TestDb) {
        let app = spawn_app(&t).await;
        let lead = app.create_lead("Priya", "+15550100111").await;
        let lead = lead["id"].as_str().unwrap();
        let (status, note) = app.post(&format!("/api/v1/leads/{lead}/notes"), &app.admin_token, json!({"text": "Called, no answer"})).await;
        assert_eq!(status, StatusCode::CREATED, "{note}");
        let (status, _) = app.post(&format!("/api/v1/leads/{lead}/notes"), &app.admin_token, json!({"text": "  "})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (id, member) = app.member("agent@example.com", json!({})).await;
        let (status, _) = app.get(&format!("/api/v1/leads/{lead}/timeline"), &member).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "a lead the member can't see");
        let (_, notes) = app.get(&format!("/api/v1/leads/{lead}/timeline?type=note&member_id={}", app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].as_str().unwrap()), &app.admin_token).await;
        assert_eq!(notes["activities"][0]["data"]["text"], "Called, no answer");
        let (_, none) = app.get(&format!("/api/v1/leads/{lead}/timeline?type=note&member_id={id}"), &app.admin_token).await;
        assert_eq!(none["activities"], json!([]));
    }

    async fn incremental_sessions_match_a_full_recomputation(t: TestDb) {
        let app = spawn_app(&t).await;
        let number = app.connect_number("100200300400600", "15550100100", false).await;
        let number = Uuid::parse_str(number["id"].as_str().unwrap()).unwrap();
        let gap = 600;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for case in 0..12 {
            let lead = app.create_lead(&format!("Lead {case}"), &format!("+1555020{:04}", case)).await;
            let lead = Uuid::parse_str(lead["id"].as_str().unwrap()).unwrap();
            let conv = Uuid::new_v4();
            let now = app.clock.now();
            on_db!(&app.db, |p| sqlx::query("INSERT INTO conversations (id, workspace_id, number_id, lead_id, status, created_at, updated_at) VALUES ($1, $2, $3, $4, 'open', $5, $5)")
                .bind(conv).bind(app.workspace_id).bind(number).bind(lead).bind(now).execute(p).await.map(|_| ())).unwrap();
            let n = rng.gen_range(1..16);
            let mut msgs: Vec<(i64, bool)> = (0..n).map(|_| (rng.gen_range(0..4000), rng.gen_bool(0.5))).collect();
            msgs.shuffle(&mut rng);
            for (off, inbound) in &msgs {
                let at = DateTime::from_timestamp(T0 + off, 0).unwrap();
                let mut work = switchboard::events::Work::begin(&app.db, now).await.unwrap();
                switchboard::on_tx!(work.tx(), |c| sqlx::query("INSERT INTO messages (id, workspace_id, conversation_id, direction, type, status, created_at, received_at) VALUES ($1, $2, $3, $4, 'text', 'received', $5, $6)")
                    .bind(Uuid::new_v4()).bind(app.workspace_id).bind(conv).bind(if *inbound { "in" } else { "out" }).bind(at).bind(now)
                    .execute(c).await.map(|_| ())).unwrap();
                sessions::on_message(&mut work, conv, &Msg { at, inbound: *inbound, member: None }, gap).await.unwrap();
                work.commit(&switchboard::events::Hub::default()).await.unwrap();
            }
            // Full recomputation: arrival order breaks timestamp ties, as the messages table does.
            let ordered: Vec<(DateTime<Utc>, String)> = on_db!(&app.db, |p| sqlx::query_as(
                "SELECT created_at, direction FROM messages WHERE conversation_id = $1 ORDER BY created_at, seq")
                .bind(conv).fetch_all(p).await).unwrap();
            let ordered: Vec<Msg> = ordered.into_iter().map(|(at, d)| Msg { at, inbound: d == "in", member: None }).collect();
            let expected = sessions::split(&ordered, gap);
            let stored: Vec<String> = on_db!(&app.db, |p| sqlx::query_scalar(
                "SELECT CAST(data AS TEXT) FROM activities WHERE conversation_id = $1 AND type = 'whatsapp_session' ORDER BY created_at")
                .bind(conv).fetch_all(p).await).unwrap();
            assert_eq!(stored.len(), expected.len(), "case {case}: {msgs:?}");
            for (s, e) in stored.iter().zip(&expected) {
                let s: Value = serde_json::from_str(s).unwrap();
                assert_eq!(s["started_at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(), e.started_at, "case {case}");
                assert_eq!(s["ended_at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(), e.ended_at, "case {case}");
                assert_eq!(s["initiated_by"], json!(e.initiated_by), "case {case}");
                assert_eq!(s["messages_from_lead"], e.messages_from_lead, "case {case}");
                assert_eq!(s["messages_from_member"], e.messages_from_member, "case {case}");
                assert_eq!(s["lead_responded"], e.lead_responded, "case {case}");
                assert_eq!(s["member_responded"], e.member_responded, "case {case}");
                assert_eq!(s["first_response_seconds"], json!(e.first_response_seconds), "case {case}");
            }
        }
    }
}
