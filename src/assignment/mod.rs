//! Assignment: who gets a new lead or a re-opened chat. Settings per workspace (mode,
//! round-robin order and toggles, availability, capacity, rules), the engine that decides, the
//! decision log, and bulk reassignment.

pub mod engine;
pub mod http;
pub mod run;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::Tx;
use crate::error::{Error, Result};
use crate::{on_tx, string_enum};

string_enum! {
    /// Who gets a lead no rule routes: nobody, or the members in turn.
    pub enum Mode { Unassigned = "unassigned", RoundRobin = "round_robin" }
}

string_enum! {
    /// Where a rule sends a lead.
    pub enum RouteKind { Member = "member", RoundRobin = "round_robin", Team = "team", Unassigned = "unassigned" }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberToggle {
    pub member_id: Uuid,
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    pub field: String,
    pub op: String,
    pub value: String,
}

/// `{"type":"member","member_id"}`, `{"type":"round_robin","member_ids":[..]}`,
/// `{"type":"team","team_id"}` or `{"type":"unassigned"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_ids: Option<Vec<Uuid>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = AssignmentRule)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(default)]
    pub criteria: Vec<Criterion>,
    pub route: Route,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = AssignmentSettings)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub mode: String,
    #[serde(default = "one")]
    pub leads_per_round: i64,
    #[serde(default)]
    pub only_available: bool,
    #[serde(default)]
    pub members: Vec<MemberToggle>,
    #[serde(default)]
    pub max_open_per_member: Option<i64>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

fn one() -> i64 {
    1
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Unassigned.as_str().to_owned(),
            leads_per_round: 1,
            only_available: false,
            members: Vec::new(),
            max_open_per_member: None,
            rules: Vec::new(),
        }
    }
}

impl Settings {
    /// Is `member` switched on? Members not listed are.
    pub fn enabled(&self, member: Uuid) -> bool {
        self.members.iter().find(|m| m.member_id == member).is_none_or(|m| m.enabled)
    }

    /// The round-robin order: the listed members that are still active, then the other active
    /// members (enabled) in creation order.
    fn normalise(mut self, active: &[Uuid]) -> Settings {
        self.members.retain(|m| active.contains(&m.member_id));
        for id in active {
            if !self.members.iter().any(|m| m.member_id == *id) {
                self.members.push(MemberToggle { member_id: *id, enabled: true });
            }
        }
        self
    }
}

pub const FIELDS: [&str; 5] = ["source", "page", "form", "language", "country"];
pub const OPS: [&str; 5] = ["equals", "not_equals", "contains", "starts_with", "ends_with"];

/// Active members of the workspace, in creation order.
pub async fn active_members(tx: &mut Tx, workspace_id: Uuid) -> Result<Vec<Uuid>> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT id FROM users WHERE workspace_id = $1 AND status = 'active' ORDER BY created_at, id"
    )
    .bind(workspace_id)
    .fetch_all(c)
    .await)?)
}

/// The workspace's settings (defaults when none are stored), members normalised.
pub async fn load(tx: &mut Tx, workspace_id: Uuid) -> Result<Settings> {
    let stored: Option<sqlx::types::Json<Settings>> =
        on_tx!(tx, |c| sqlx::query_scalar("SELECT settings FROM assignment_settings WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_optional(c)
            .await)?;
    let active = active_members(tx, workspace_id).await?;
    Ok(stored.map(|s| s.0).unwrap_or_default().normalise(&active))
}

/// The workspace's team ids.
pub async fn workspace_teams(tx: &mut Tx, workspace_id: Uuid) -> Result<HashSet<Uuid>> {
    let ids: Vec<Uuid> = on_tx!(tx, |c| sqlx::query_scalar("SELECT id FROM teams WHERE workspace_id = $1")
        .bind(workspace_id)
        .fetch_all(c)
        .await)?;
    Ok(ids.into_iter().collect())
}

pub async fn workspace_members(tx: &mut Tx, workspace_id: Uuid) -> Result<HashSet<Uuid>> {
    let ids: Vec<Uuid> = on_tx!(tx, |c| sqlx::query_scalar("SELECT id FROM users WHERE workspace_id = $1")
        .bind(workspace_id)
        .fetch_all(c)
        .await)?;
    Ok(ids.into_iter().collect())
}

fn bad(code: &'static str, message: impl Into<String>) -> Error {
    Error::unprocessable(code, message)
}

/// Checks every part of the settings against the contract (`teams`: the workspace's teams).
pub fn validate(s: &Settings, members: &HashSet<Uuid>, teams: &HashSet<Uuid>) -> Result<()> {
    if Mode::parse(&s.mode).is_none() {
        return Err(bad("invalid_mode", "mode must be unassigned or round_robin"));
    }
    if !(1..=10).contains(&s.leads_per_round) {
        return Err(bad("invalid_leads_per_round", "leads_per_round must be between 1 and 10"));
    }
    if s.max_open_per_member.is_some_and(|m| m < 1) {
        return Err(bad("invalid_max_open_per_member", "max_open_per_member must be at least 1 or null"));
    }
    let known = |id: &Uuid| -> Result<()> {
        if members.contains(id) {
            Ok(())
        } else {
            Err(bad("unknown_member", format!("member {id} is not in this workspace")))
        }
    };
    let mut seen = HashSet::new();
    for m in &s.members {
        known(&m.member_id)?;
        if !seen.insert(m.member_id) {
            return Err(bad("duplicate_member", format!("member {} is listed twice", m.member_id)));
        }
    }
    if s.rules.len() > 100 {
        return Err(bad("too_many_rules", "at most 100 rules"));
    }
    for (i, r) in s.rules.iter().enumerate() {
        if r.name.trim().is_empty() || r.name.len() > 200 {
            return Err(bad("invalid_rule", format!("rule {i}: name must be 1 to 200 characters")));
        }
        if r.criteria.len() > 20 {
            return Err(bad("invalid_rule", format!("rule {i}: at most 20 criteria")));
        }
        for c in &r.criteria {
            let custom = c.field.strip_prefix("custom.").is_some_and(|k| !k.is_empty() && k.len() <= 100);
            if !(FIELDS.contains(&c.field.as_str()) || custom) {
                return Err(bad(
                    "invalid_field",
                    format!(
                        "rule {i}: field {:?} must be source, page, form, language, country or custom.<key>",
                        c.field
                    ),
                ));
            }
            if !OPS.contains(&c.op.as_str()) {
                return Err(bad(
                    "invalid_op",
                    format!("rule {i}: op {:?} must be equals, not_equals, contains, starts_with or ends_with", c.op),
                ));
            }
            if c.value.len() > 500 {
                return Err(bad("invalid_value", format!("rule {i}: value is too long")));
            }
        }
        let route = &r.route;
        match (RouteKind::parse(&route.kind), route.member_id, route.member_ids.as_deref(), route.team_id) {
            (Some(RouteKind::Member), Some(id), None, None) => known(&id)?,
            (Some(RouteKind::Team), None, None, Some(team)) => {
                if !teams.contains(&team) {
                    return Err(bad("unknown_team", format!("rule {i}: team {team} does not exist")));
                }
            }
            (Some(RouteKind::RoundRobin), None, Some(ids), None) if !ids.is_empty() => {
                let mut seen = HashSet::new();
                for id in ids {
                    known(id)?;
                    if !seen.insert(*id) {
                        return Err(bad("invalid_route", format!("rule {i}: member {id} is listed twice")));
                    }
                }
            }
            (Some(RouteKind::Unassigned), None, None, None) => {}
            _ => {
                return Err(bad(
                    "invalid_route",
                    format!(
                        "rule {i}: route must be {{\"type\":\"member\",\"member_id\"}}, \
                         {{\"type\":\"round_robin\",\"member_ids\":[...]}}, {{\"type\":\"team\",\"team_id\"}} \
                         or {{\"type\":\"unassigned\"}}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Stores the workspace's settings (validated against its members) and returns them as
/// loaded back (members normalised).
pub async fn save(tx: &mut Tx, workspace_id: Uuid, settings: &Settings, now: DateTime<Utc>) -> Result<Settings> {
    let (members, teams) = (workspace_members(tx, workspace_id).await?, workspace_teams(tx, workspace_id).await?);
    validate(settings, &members, &teams)?;
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO assignment_settings (workspace_id, settings, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (workspace_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at"
    )
    .bind(workspace_id)
    .bind(sqlx::types::Json(settings))
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    load(tx, workspace_id).await
}
