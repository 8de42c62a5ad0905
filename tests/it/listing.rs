//! The conversation list at any depth: walking every page with a small limit gives each viewer
//! exactly the conversations the policy lets them see, newest message first, none twice, none
//! skipped — including ties in `last_message_at`, and for members without the broad flags (whose
//! list starts from their own, label-granted and shared conversations).

use chrono::{Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::json;
use switchboard::on_db;
use switchboard::policy::{self, ConvFacts, Role, Viewer};
use uuid::Uuid;

use crate::access::{grant_labels, insert_conversation, insert_label, insert_lead, insert_number};
use crate::on_both;
use crate::support::*;

on_both! {
    async fn every_page_of_the_list_follows_the_policy(t: TestDb) {
        let app = spawn_app(&t).await;
        let seed: u64 = rand::random();
        let mut rng = StdRng::seed_from_u64(seed);
        let ws = app.workspace_id;
        let admin = Uuid::parse_str(app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].as_str().unwrap()).unwrap();
        let (plain, _) = app.member("plain@example.com", json!({})).await;
        let (others, others_t) = app.member("others@example.com", json!({"view_others_leads": true})).await;
        let (pool, pool_t) = app.member("pool@example.com", json!({"view_unassigned": true})).await;
        let (labeled, _) = app.member("labeled@example.com", json!({})).await;
        let (label, spare_label) = (insert_label(&app.db, ws, "Granted").await, insert_label(&app.db, ws, "Other").await);
        grant_labels(&app.db, labeled, &[label]).await;
        // Label grants are read at login.
        let token = |email: &'static str| { let app = &app; async move {
            app.login(email, PASSWORD).await["token"].as_str().unwrap().to_owned() } };
        let (plain_t, labeled_t) = (token("plain@example.com").await, token("labeled@example.com").await);
        let number = insert_number(&app.db, ws).await;
        let members = [admin, plain, others, pool, labeled];
        let t0 = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
        let mut convs: Vec<(Uuid, chrono::DateTime<Utc>, ConvFacts)> = Vec::new();
        for _ in 0..70 {
            let assignee = if rng.gen_bool(0.7) { members.choose(&mut rng).copied() } else { None };
            let labels: Vec<Uuid> = [label, spare_label].into_iter().filter(|_| rng.gen_bool(0.2)).collect();
            let access: Vec<Uuid> = if rng.gen_bool(0.15) { vec![plain] } else { vec![] };
            let lead = insert_lead(&app.db, ws, assignee).await;
            let id = insert_conversation(&app.db, ws, number, lead, assignee, &labels, &access).await;
            // Few distinct times: many ties, broken by id.
            let at = t0 + Duration::minutes(rng.gen_range(0..12));
            on_db!(&app.db, |p| sqlx::query("UPDATE conversations SET last_message_at = $1 WHERE id = $2")
                .bind(at).bind(id).execute(p).await.map(|_| ())).unwrap();
            convs.push((id, at, ConvFacts { workspace_id: ws, assignee_id: assignee, label_ids: labels, access_ids: access }));
        }
        convs.sort_by_key(|c| std::cmp::Reverse((c.1, c.0)));
        let viewers = [
            (admin, Role::Admin, json!({}), vec![], app.admin_token.clone()),
            (plain, Role::Member, json!({}), vec![], plain_t),
            (others, Role::Member, json!({"view_others_leads": true}), vec![], others_t),
            (pool, Role::Member, json!({"view_unassigned": true}), vec![], pool_t),
            (labeled, Role::Member, json!({}), vec![label], labeled_t),
        ];
        for (id, role, perms, label_ids, token) in viewers {
            let v = Viewer { user_id: id, workspace_id: ws, role, active: true,
                             permissions: serde_json::from_value(perms).unwrap(), label_ids };
            let expected: Vec<Uuid> = convs.iter().filter(|c| policy::can_see(&v, &c.2)).map(|c| c.0).collect();
            for status in [None, Some("open")] {
                let mut seen = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let mut q = vec!["limit=7".to_owned()];
                    if let Some(c) = &cursor { q.push(format!("cursor={c}")) }
                    if let Some(s) = status { q.push(format!("status={s}")) }
                    let (code, page) = app.get(&format!("/api/v1/conversations?{}", q.join("&")), &token).await;
                    assert_eq!(code, StatusCode::OK, "{page}");
                    seen.extend(page["conversations"].as_array().unwrap().iter()
                        .map(|c| Uuid::parse_str(c["id"].as_str().unwrap()).unwrap()));
                    match page["next_cursor"].as_str() {
                        Some(c) => cursor = Some(c.to_owned()),
                        None => break,
                    }
                    assert!(seen.len() <= convs.len(), "the walk ends");
                }
                // Every seeded conversation is open: the status filter changes nothing here.
                assert_eq!(seen, expected, "seed {seed}: viewer {id} ({role:?}), status {status:?}");
            }
        }
    }
}
