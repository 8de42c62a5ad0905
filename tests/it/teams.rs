//! Teams: creating, renaming, membership (a member in several teams, `team_ids` on members),
//! who may manage them, and the assignment route `{"type":"team"}`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::on_both;
use crate::support::*;

fn ids(v: &Value) -> Vec<Uuid> {
    v.as_array().unwrap().iter().map(|x| Uuid::parse_str(x.as_str().unwrap()).unwrap()).collect()
}

fn id(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().unwrap()).unwrap()
}

fn sorted(mut v: Vec<Uuid>) -> Vec<Uuid> {
    v.sort();
    v
}

async fn team_ids_of(app: &TestApp, member: Uuid) -> Vec<Uuid> {
    let (status, m) = app.get(&format!("/api/v1/members/{member}"), &app.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    ids(&m["team_ids"])
}

on_both! {
    async fn teams_hold_members_who_may_be_in_several(t: TestDb) {
        let app = spawn_app(&t).await;
        let (ana, _) = app.member("ana@example.com", json!({})).await;
        let (bo, bo_token) = app.member("bo@example.com", json!({})).await;
        let (_, manager) = app.member("manager@example.com", json!({"manage_members": true})).await;

        // An admin makes Sales with Ana and Bo; a member manager makes Support with Ana.
        let (status, sales) =
            app.post("/api/v1/teams", &app.admin_token, json!({"name": "Sales", "member_ids": [bo, ana, bo]})).await;
        assert_eq!(status, StatusCode::CREATED, "{sales}");
        assert_eq!(sales["name"], "Sales");
        assert_eq!(ids(&sales["member_ids"]), sorted(vec![ana, bo]), "deduplicated and sorted");
        let (status, support) =
            app.post("/api/v1/teams", &manager, json!({"name": "Support", "member_ids": [ana]})).await;
        assert_eq!(status, StatusCode::CREATED, "{support}");
        let (sales_id, support_id) = (id(&sales["id"]), id(&support["id"]));

        // Ana is in both; the directory says so.
        assert_eq!(team_ids_of(&app, ana).await, sorted(vec![sales_id, support_id]));
        assert_eq!(team_ids_of(&app, bo).await, vec![sales_id]);
        let (_, dir) = app.get("/api/v1/members", &bo_token).await;
        let ana_row = dir["members"].as_array().unwrap().iter().find(|m| m["id"] == json!(ana)).unwrap();
        assert_eq!(ids(&ana_row["team_ids"]), sorted(vec![sales_id, support_id]));

        // Everyone reads the teams, by name.
        let (status, list) = app.get("/api/v1/teams", &bo_token).await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<&str> = list["teams"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Sales", "Support"]);

        // A plain member may not manage teams.
        let (status, body) = app.post("/api/v1/teams", &bo_token, json!({"name": "Mine"})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
        let (status, body) = app
            .json(Method::PATCH, &format!("/api/v1/teams/{sales_id}"), &bo_token, Some(json!({"name": "X"})))
            .await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "forbidden"));

        // Bad input: a taken name, an unknown member, an empty name, an unknown team.
        let (status, body) = app.post("/api/v1/teams", &app.admin_token, json!({"name": "Sales"})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "team_exists"));
        let (status, body) =
            app.post("/api/v1/teams", &app.admin_token, json!({"name": "Ghosts", "member_ids": [Uuid::new_v4()]})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_member"));
        let (status, body) = app.post("/api/v1/teams", &app.admin_token, json!({"name": "  "})).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_name"));
        let (status, _) = app
            .json(Method::PATCH, &format!("/api/v1/teams/{}", Uuid::new_v4()), &app.admin_token, Some(json!({"name": "X"})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Renaming and replacing the members: Bo leaves Sales.
        let (status, renamed) = app
            .json(
                Method::PATCH,
                &format!("/api/v1/teams/{sales_id}"),
                &manager,
                Some(json!({"name": "Sales EU", "member_ids": [ana]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{renamed}");
        assert_eq!((renamed["name"].as_str(), ids(&renamed["member_ids"])), (Some("Sales EU"), vec![ana]));
        assert!(team_ids_of(&app, bo).await.is_empty());

        // Deleting a team takes its members out of it.
        let resp = app.call(Method::DELETE, &format!("/api/v1/teams/{support_id}"), Some(&app.admin_token), None).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(team_ids_of(&app, ana).await, vec![sales_id]);
        let (_, list) = app.get("/api/v1/teams", &bo_token).await;
        assert_eq!(list["teams"].as_array().unwrap().len(), 1);
    }

    async fn a_team_route_takes_turns_within_the_team(t: TestDb) {
        let app = spawn_app(&t).await;
        let mut members = Vec::new();
        for i in 0..4 {
            members.push(app.member(&format!("m{i}@example.com"), json!({})).await.0);
        }
        let team: Vec<Uuid> = vec![members[3], members[0], members[2]];
        let (status, sales) = app.post("/api/v1/teams", &app.admin_token, json!({"name": "Sales", "member_ids": team})).await;
        assert_eq!(status, StatusCode::CREATED, "{sales}");

        // A rule sends Facebook leads to the team; a route to an unknown team is refused.
        let settings = |team_id: &Value| json!({"mode": "unassigned", "rules": [{"name": "facebook",
            "criteria": [{"field": "source", "op": "equals", "value": "facebook"}],
            "route": {"type": "team", "team_id": team_id}}]});
        let (status, body) = app
            .json(Method::PUT, "/api/v1/assignment", &app.admin_token, Some(settings(&json!(Uuid::new_v4()))))
            .await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_team"));
        let (status, body) =
            app.json(Method::PUT, "/api/v1/assignment", &app.admin_token, Some(settings(&sales["id"]))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["rules"][0]["route"], json!({"type": "team", "team_id": sales["id"]}));

        // The team's members in the workspace's order (who joined first), one lead each in turn.
        let order: Vec<Uuid> = members.iter().filter(|m| team.contains(m)).copied().collect();
        let mut got = Vec::new();
        for n in 0..7 {
            let lead = json!({"name": format!("Lead {n}"), "phone": format!("+1555040{n:04}"), "source": "facebook"});
            let (status, lead) = app.post("/api/v1/leads", &app.admin_token, lead).await;
            assert_eq!(status, StatusCode::CREATED, "{lead}");
            got.push(id(&lead["assignee_id"]));
        }
        let expected: Vec<Uuid> = (0..7).map(|i| order[i % 3]).collect();
        assert_eq!(got, expected, "round robin within the team, in order");
        assert!(!got.contains(&members[1]), "a member outside the team gets none");

        // A lead no rule matches stays unassigned (mode unassigned).
        let (_, other) = app.post("/api/v1/leads", &app.admin_token, json!({"name": "Walk-in", "phone": "+15550409999"})).await;
        assert_eq!(other["assignee_id"], Value::Null);
    }
}
