//! The decision itself, pure: which route a lead takes (rules in order, first match wins, else
//! the mode), and which member a route picks given each member's state and the round-robin
//! position. The database part (loading the inputs, storing the outcome) is in `run.rs`.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Criterion, Mode, Route, RouteKind, Settings};
use crate::views::team::Availability;

/// The lead fields rules look at.
#[derive(Debug, Clone, Default)]
pub struct LeadFields {
    pub source: Option<String>,
    pub phone: Option<String>,
    pub custom: Map<String, Value>,
}

impl LeadFields {
    /// The value of a rule field (`source`, `page`, `form`, `language`, `country`,
    /// `custom.<key>`); `None` when the lead has none.
    pub fn get(&self, field: &str) -> Option<String> {
        match field {
            "source" => self.source.clone(),
            "country" => self.phone.as_deref().and_then(crate::phone::country).map(str::to_owned),
            "page" | "form" | "language" => custom_str(self.custom.get(field)),
            f => f.strip_prefix("custom.").and_then(|k| custom_str(self.custom.get(k))),
        }
    }
}

fn custom_str(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Does the criterion hold for the lead? Case-sensitive; a missing field only satisfies
/// `not_equals`.
pub fn holds(c: &Criterion, lead: &LeadFields) -> bool {
    let Some(v) = lead.get(&c.field) else { return c.op == "not_equals" };
    match c.op.as_str() {
        "equals" => v == c.value,
        "not_equals" => v != c.value,
        "contains" => v.contains(&c.value),
        "starts_with" => v.starts_with(&c.value),
        "ends_with" => v.ends_with(&c.value),
        _ => false,
    }
}

/// Where a lead goes: the matched rule (index and name, `None` = the default mode) and its route.
pub fn route_for<'a>(s: &'a Settings, lead: &LeadFields) -> (Option<(usize, &'a str)>, Route) {
    for (i, r) in s.rules.iter().enumerate() {
        if r.criteria.iter().all(|c| holds(c, lead)) {
            return (Some((i, r.name.as_str())), r.route.clone());
        }
    }
    let kind =
        if Mode::parse(&s.mode) == Some(Mode::RoundRobin) { RouteKind::RoundRobin } else { RouteKind::Unassigned };
    let route = Route { kind: kind.as_str().to_owned(), member_id: None, member_ids: None, team_id: None };
    (None, route)
}

/// What the engine knows about one active member.
#[derive(Debug, Clone, Copy)]
pub struct MemberState {
    pub enabled: bool,
    pub availability: Availability,
    pub open: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub member_id: Uuid,
    pub skipped: Option<&'static str>,
}

/// Why `m` can't take a lead now, if so.
pub fn skip_reason(s: &Settings, m: &MemberState) -> Option<&'static str> {
    if !m.enabled {
        return Some("disabled");
    }
    if s.only_available {
        match m.availability {
            a @ (Availability::Away | Availability::Offline) => return Some(a.as_str()),
            Availability::Available => {}
        }
    }
    if s.max_open_per_member.is_some_and(|max| m.open >= max) {
        return Some("at_capacity");
    }
    None
}

/// The round-robin position of a route: the member chosen last and how many they got this round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub last: Option<Uuid>,
    pub given: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub candidates: Vec<Candidate>,
    pub chosen: Option<Uuid>,
    /// The new position (round robin only, and only when someone was chosen).
    pub position: Option<Position>,
}

/// The round-robin order of a team route: the team's members in the workspace's round-robin
/// order (`s.members`: active members only, so a deactivated member drops out).
pub fn team_order(s: &Settings, team_members: &[Uuid]) -> Vec<Uuid> {
    s.members.iter().map(|m| m.member_id).filter(|id| team_members.contains(id)).collect()
}

/// The key a route's round-robin position is stored under: a team route keeps one per team
/// (rules routing to the same team share it), a round-robin rule one per rule, the mode its own.
pub fn position_key(route: &Route, rule: Option<usize>) -> String {
    match (RouteKind::parse(&route.kind), route.team_id, rule) {
        (Some(RouteKind::Team), Some(team), _) => format!("team:{team}"),
        (_, _, Some(i)) => format!("rule:{i}"),
        _ => "default".to_owned(),
    }
}

/// Picks among `order` (members not in `states` — deactivated — are left out). Round robin
/// gives `leads_per_round` consecutive leads to a member, then moves to the next eligible one
/// after them in `order`.
pub fn choose(
    s: &Settings,
    order: &[Uuid],
    states: &HashMap<Uuid, MemberState>,
    round_robin: bool,
    pos: Position,
) -> Choice {
    let candidates: Vec<Candidate> = order
        .iter()
        .filter_map(|id| states.get(id).map(|m| Candidate { member_id: *id, skipped: skip_reason(s, m) }))
        .collect();
    let eligible = |id: Uuid| candidates.iter().any(|c| c.member_id == id && c.skipped.is_none());
    if !round_robin {
        let chosen = candidates.iter().find(|c| c.skipped.is_none()).map(|c| c.member_id);
        return Choice { candidates, chosen, position: None };
    }
    let per_round = s.leads_per_round.max(1);
    if let Some(last) = pos.last
        && pos.given < per_round
        && eligible(last)
    {
        let position = Some(Position { last: Some(last), given: pos.given + 1 });
        return Choice { candidates, chosen: Some(last), position };
    }
    let start = pos.last.and_then(|l| candidates.iter().position(|c| c.member_id == l)).map(|i| i + 1).unwrap_or(0);
    let n = candidates.len();
    let chosen = (0..n).map(|k| &candidates[(start + k) % n]).find(|c| c.skipped.is_none()).map(|c| c.member_id);
    let position = chosen.map(|c| Position { last: Some(c), given: 1 });
    Choice { candidates, chosen, position }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignment::{MemberToggle, Rule};

    fn settings(per_round: i64) -> Settings {
        Settings { mode: "round_robin".into(), leads_per_round: per_round, ..Settings::default() }
    }

    fn available() -> MemberState {
        MemberState { enabled: true, availability: Availability::Available, open: 0 }
    }

    #[test]
    fn round_robin_gives_runs_in_order() {
        let s = settings(2);
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let states: HashMap<_, _> = ids.iter().map(|i| (*i, available())).collect();
        let mut pos = Position::default();
        let mut got = Vec::new();
        for _ in 0..7 {
            let c = choose(&s, &ids, &states, true, pos);
            pos = c.position.unwrap();
            got.push(ids.iter().position(|i| Some(*i) == c.chosen).unwrap());
        }
        assert_eq!(got, [0, 0, 1, 1, 2, 2, 0]);
    }

    #[test]
    fn a_team_route_takes_turns_within_the_team_only() {
        let mut s = settings(1);
        s.only_available = true;
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        s.members = ids.iter().map(|id| MemberToggle { member_id: *id, enabled: true }).collect();
        // The team lists members 4, 1 and 3 (any order): the workspace's order decides.
        let team = [ids[4], ids[1], ids[3]];
        let order = team_order(&s, &team);
        assert_eq!(order, [ids[1], ids[3], ids[4]]);
        let mut states: HashMap<_, _> = ids.iter().map(|i| (*i, available())).collect();
        let mut pos = Position::default();
        let mut got = Vec::new();
        for round in 0..6 {
            if round == 3 {
                // Member 3 steps away: under only_available the turn passes them.
                states.get_mut(&ids[3]).unwrap().availability = Availability::Away;
            }
            let c = choose(&s, &order, &states, true, pos);
            pos = c.position.unwrap();
            got.push(ids.iter().position(|i| Some(*i) == c.chosen).unwrap());
        }
        assert_eq!(got, [1, 3, 4, 1, 4, 1]);
        // A deactivated member is not in the settings' order, so not in the team's.
        s.members.retain(|m| m.member_id != ids[4]);
        assert_eq!(team_order(&s, &team), [ids[1], ids[3]]);

        let route = |team_id| Route { kind: "team".into(), member_id: None, member_ids: None, team_id };
        let t = Uuid::new_v4();
        assert_eq!(position_key(&route(Some(t)), Some(2)), format!("team:{t}"));
        let rr = Route { kind: "round_robin".into(), ..route(None) };
        assert_eq!(position_key(&rr, Some(2)), "rule:2");
        assert_eq!(position_key(&rr, None), "default");
    }

    #[test]
    fn skips_with_reasons() {
        let mut s = settings(1);
        s.only_available = true;
        s.max_open_per_member = Some(2);
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        let mut states: HashMap<_, _> = ids.iter().map(|i| (*i, available())).collect();
        states.get_mut(&ids[0]).unwrap().enabled = false;
        states.get_mut(&ids[1]).unwrap().availability = Availability::Away;
        states.get_mut(&ids[2]).unwrap().availability = Availability::Offline;
        states.get_mut(&ids[3]).unwrap().open = 2;
        let c = choose(&s, &ids, &states, true, Position::default());
        let reasons: Vec<_> = c.candidates.iter().map(|c| c.skipped).collect();
        assert_eq!(reasons, [Some("disabled"), Some("away"), Some("offline"), Some("at_capacity"), None]);
        assert_eq!(c.chosen, Some(ids[4]));
        states.get_mut(&ids[4]).unwrap().enabled = false;
        let c = choose(&s, &ids, &states, true, Position::default());
        assert_eq!((c.chosen, c.position), (None, None));
    }

    #[test]
    fn rules_first_match_wins() {
        let crit =
            |field: &str, op: &str, value: &str| Criterion { field: field.into(), op: op.into(), value: value.into() };
        let rule = |name: &str, criteria| Rule {
            name: name.into(),
            criteria,
            route: Route { kind: "unassigned".into(), member_id: None, member_ids: None, team_id: None },
        };
        let s = Settings {
            rules: vec![
                rule("fb", vec![crit("source", "equals", "facebook"), crit("custom.plan", "starts_with", "Pro")]),
                rule("br", vec![crit("country", "equals", "BR")]),
                rule("any-fb", vec![crit("source", "contains", "face")]),
            ],
            members: vec![MemberToggle { member_id: Uuid::nil(), enabled: true }],
            ..Settings::default()
        };
        let mut lead =
            LeadFields { source: Some("facebook".into()), phone: Some("5511999990000".into()), ..Default::default() };
        assert_eq!(route_for(&s, &lead).0, Some((1, "br")));
        lead.custom.insert("plan".into(), Value::String("Professional".into()));
        assert_eq!(route_for(&s, &lead).0, Some((0, "fb")));
        lead.custom.insert("plan".into(), Value::String("pro".into()));
        lead.phone = Some("14155550100".into());
        assert_eq!(route_for(&s, &lead).0, Some((2, "any-fb")));
        lead.source = None;
        assert_eq!(route_for(&s, &lead).0, None);
        assert!(holds(&crit("page", "not_equals", "x"), &lead));
        assert!(!holds(&crit("page", "ends_with", ""), &lead));
    }
}
