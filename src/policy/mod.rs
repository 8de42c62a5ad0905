//! Who may see and do what. Pure: no I/O. Each visibility rule is written twice side by side,
//! as a Rust predicate and as SQL, and a test checks they agree on generated worlds.
//!
//! SQL predicates use the viewer parameters `$1..$5` (see [`Viewer`] and `bind_viewer!`):
//! `$1` workspace id, `$2` user id, `$3` is admin, `$4` view_others_leads, `$5` view_unassigned.
//! Queries that embed them number their own parameters from `$6`.

pub mod agency;
pub mod chat;
pub mod content;
pub mod inbox;
pub mod keys;
pub mod media;
pub mod team;

pub use team::{can_manage_groups, can_manage_integrations, can_manage_member, is_admin};

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// The contract's permission flags; all false unless given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Permissions {
    pub view_others_leads: bool,
    pub view_unassigned: bool,
    pub manage_groups: bool,
    pub delete_leads: bool,
    pub create_content: bool,
    pub manage_content_visibility: bool,
    pub edit_others_content: bool,
    pub manage_members: bool,
    pub manage_integrations: bool,
}

/// The caller as the policy sees them.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub role: Role,
    pub active: bool,
    pub permissions: Permissions,
    pub label_ids: Vec<Uuid>,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.active && self.role == Role::Admin
    }
}

/// What the policy needs to know about a conversation.
#[derive(Clone, Debug, Default)]
pub struct ConvFacts {
    pub workspace_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub label_ids: Vec<Uuid>,
    pub access_ids: Vec<Uuid>,
}

/// What the policy needs to know about a lead.
#[derive(Clone, Debug, Default)]
pub struct LeadFacts {
    pub workspace_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub conversations: Vec<ConvFacts>,
}

/// The ways a member may come to see a conversation (the contract's list, plus admins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = PolicyRule)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Admin,
    Assignee,
    GrantedLabel,
    Explicit,
    OthersFlag,
    UnassignedFlag,
}

pub const RULES: [Rule; 6] =
    [Rule::Admin, Rule::Assignee, Rule::GrantedLabel, Rule::Explicit, Rule::OthersFlag, Rule::UnassignedFlag];

impl Rule {
    pub fn holds(self, v: &Viewer, c: &ConvFacts) -> bool {
        match self {
            Rule::Admin => v.role == Role::Admin,
            Rule::Assignee => c.assignee_id == Some(v.user_id),
            Rule::GrantedLabel => c.label_ids.iter().any(|l| v.label_ids.contains(l)),
            Rule::Explicit => c.access_ids.contains(&v.user_id),
            Rule::OthersFlag => v.permissions.view_others_leads && c.assignee_id.is_some_and(|a| a != v.user_id),
            Rule::UnassignedFlag => v.permissions.view_unassigned && c.assignee_id.is_none(),
        }
    }

    /// The same rule over a conversation row aliased `c`.
    pub fn sql(self) -> &'static str {
        match self {
            Rule::Admin => "$3",
            Rule::Assignee => "c.assignee_id = $2",
            Rule::GrantedLabel => {
                "EXISTS (SELECT 1 FROM conversation_labels cl JOIN member_labels ml \
                 ON ml.label_id = cl.label_id WHERE cl.conversation_id = c.id AND ml.user_id = $2)"
            }
            Rule::Explicit => {
                "EXISTS (SELECT 1 FROM conversation_access ca WHERE ca.conversation_id = c.id AND ca.user_id = $2)"
            }
            Rule::OthersFlag => "($4 AND c.assignee_id IS NOT NULL AND c.assignee_id <> $2)",
            Rule::UnassignedFlag => "($5 AND c.assignee_id IS NULL)",
        }
    }

    /// The rule over a lead's own row (aliased `l`): the lead taken as a conversation with its
    /// assignee and no labels or explicit access. `None` for rules that then never hold.
    pub fn lead_sql(self) -> Option<&'static str> {
        match self {
            Rule::Admin => Some("$3"),
            Rule::Assignee => Some("l.assignee_id = $2"),
            Rule::GrantedLabel | Rule::Explicit => None,
            Rule::OthersFlag => Some("($4 AND l.assignee_id IS NOT NULL AND l.assignee_id <> $2)"),
            Rule::UnassignedFlag => Some("($5 AND l.assignee_id IS NULL)"),
        }
    }

    /// [`Rule::holds`] on a lead's own facts (see [`Rule::lead_sql`]).
    pub fn holds_on_lead(self, v: &Viewer, l: &LeadFacts) -> bool {
        let own = ConvFacts { workspace_id: l.workspace_id, assignee_id: l.assignee_id, ..Default::default() };
        self.holds(v, &own)
    }
}

/// Does `v` see conversations only through rules that name them in it (as its assignee or
/// an explicitly given member)? True for a member without the admin role, flags or granted
/// labels. The live doorbells use it to skip such a viewer for events that do not name them;
/// a new rule must say here whether it names its viewer.
pub fn sees_only_where_named(v: &Viewer) -> bool {
    RULES.iter().all(|r| match r {
        Rule::Assignee | Rule::Explicit => true,
        Rule::Admin => v.role != Role::Admin,
        Rule::GrantedLabel => v.label_ids.is_empty(),
        Rule::OthersFlag => !v.permissions.view_others_leads,
        Rule::UnassignedFlag => !v.permissions.view_unassigned,
    })
}

/// May `v` see conversation `c`?
pub fn can_see(v: &Viewer, c: &ConvFacts) -> bool {
    v.active && c.workspace_id == v.workspace_id && RULES.iter().any(|r| r.holds(v, c))
}

/// Why `v` sees `c` (for the access listing); empty when they don't.
pub fn reasons(v: &Viewer, c: &ConvFacts) -> Vec<Rule> {
    if !v.active || c.workspace_id != v.workspace_id {
        return Vec::new();
    }
    RULES.iter().copied().filter(|r| r.holds(v, c)).collect()
}

/// SQL: conversation `c` is visible to the viewer `$1..$5`.
pub static CONV_VISIBLE: LazyLock<String> = LazyLock::new(|| {
    let rules: Vec<_> = RULES.iter().map(|r| r.sql()).collect();
    format!("(c.workspace_id = $1 AND ({}))", rules.join(" OR "))
});

/// Lead rules: its assignee, the flags applied to the lead's own assignee, or any visible
/// conversation of the lead.
pub fn can_see_lead(v: &Viewer, l: &LeadFacts) -> bool {
    if !v.active || l.workspace_id != v.workspace_id {
        return false;
    }
    RULES.iter().any(|r| r.holds_on_lead(v, l)) || l.conversations.iter().any(|c| can_see(v, c))
}

/// SQL: lead `l` is visible to the viewer `$1..$5`: generated from the same rules as
/// [`can_see_lead`], each rule's lead form, or any visible conversation of the lead.
pub static LEAD_VISIBLE: LazyLock<String> = LazyLock::new(|| {
    let own: Vec<_> = RULES.iter().filter_map(|r| r.lead_sql()).collect();
    format!(
        "(l.workspace_id = $1 AND ({} OR EXISTS (SELECT 1 FROM conversations c WHERE c.lead_id = l.id AND {})))",
        own.join(" OR "),
        *CONV_VISIBLE
    )
});

/// Why an action was refused (the caller could see the resource).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    NotAssignee,
    Forbidden,
    AlreadyAssigned,
}

/// Replying and changing status: only the assignee (an admin too, once it is theirs).
pub fn can_reply(v: &Viewer, c: &ConvFacts) -> Result<(), Denied> {
    if can_see(v, c) && c.assignee_id == Some(v.user_id) { Ok(()) } else { Err(Denied::NotAssignee) }
}

/// Assigning or reassigning a visible conversation or lead.
pub fn can_assign(v: &Viewer, c: &ConvFacts) -> Result<(), Denied> {
    let ok =
        can_see(v, c) && (v.role == Role::Admin || c.assignee_id == Some(v.user_id) || v.permissions.view_others_leads);
    if ok { Ok(()) } else { Err(Denied::Forbidden) }
}

/// Claiming an unassigned conversation.
pub fn can_claim(v: &Viewer, c: &ConvFacts) -> Result<(), Denied> {
    if c.assignee_id.is_some() {
        return Err(Denied::AlreadyAssigned);
    }
    if can_see(v, c) && (v.role == Role::Admin || v.permissions.view_unassigned) {
        Ok(())
    } else {
        Err(Denied::Forbidden)
    }
}

/// Changing a visible conversation's labels: the same people who may assign it (admins, its
/// assignee, members with `view_others_leads`). A label grant only lets a member read.
pub fn can_label(v: &Viewer, c: &ConvFacts) -> Result<(), Denied> {
    can_assign(v, c)
}

/// Granting or revoking explicit access to a visible conversation: admins and its assignee.
pub fn can_manage_access(v: &Viewer, c: &ConvFacts) -> Result<(), Denied> {
    if can_see(v, c) && (v.role == Role::Admin || c.assignee_id == Some(v.user_id)) {
        Ok(())
    } else {
        Err(Denied::Forbidden)
    }
}

/// Binds the viewer parameters `$1..$5` to a query, in the order the predicates expect.
#[macro_export]
macro_rules! bind_viewer {
    ($q:expr, $v:expr) => {
        $q.bind($v.workspace_id)
            .bind($v.user_id)
            .bind($v.role == $crate::policy::Role::Admin)
            .bind($v.permissions.view_others_leads)
            .bind($v.permissions.view_unassigned)
    };
}

/// An active viewer with a fresh id in the nil workspace, for the policy's unit tests.
#[cfg(test)]
pub(crate) fn sample_viewer(role: Role, permissions: Permissions) -> Viewer {
    Viewer { user_id: Uuid::new_v4(), workspace_id: Uuid::nil(), role, active: true, permissions, label_ids: vec![] }
}

#[cfg(test)]
mod tests {
    use super::sample_viewer as viewer;
    use super::*;

    #[test]
    fn plain_member_sees_only_own() {
        let v = viewer(Role::Member, Permissions::default());
        let mut c = ConvFacts::default();
        assert!(!can_see(&v, &c));
        c.assignee_id = Some(v.user_id);
        assert!(can_see(&v, &c));
        assert!(can_reply(&v, &c).is_ok());
    }

    #[test]
    fn admin_replies_only_when_assigned() {
        let v = viewer(Role::Admin, Permissions::default());
        let c = ConvFacts { assignee_id: Some(Uuid::new_v4()), ..Default::default() };
        assert!(can_see(&v, &c));
        assert_eq!(can_reply(&v, &c), Err(Denied::NotAssignee));
    }

    /// A rule without a lead form never holds on a lead's own facts, whoever looks.
    #[test]
    fn lead_forms_cover_the_rules_that_can_hold_on_a_lead() {
        let label = Uuid::new_v4();
        for bits in 0u32..16 {
            let bit = |i: u32| bits & (1 << i) != 0;
            let role = if bit(0) { Role::Admin } else { Role::Member };
            let mut v =
                viewer(role, Permissions { view_others_leads: bit(1), view_unassigned: bit(2), ..Default::default() });
            if bit(3) {
                v.label_ids.push(label);
            }
            for assignee in [None, Some(v.user_id), Some(Uuid::new_v4())] {
                let l = LeadFacts { workspace_id: v.workspace_id, assignee_id: assignee, conversations: vec![] };
                for r in RULES {
                    if r.lead_sql().is_none() {
                        assert!(!r.holds_on_lead(&v, &l), "{r:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn deactivated_sees_nothing() {
        let mut v = viewer(Role::Admin, Permissions::default());
        v.active = false;
        assert!(!can_see(&v, &ConvFacts::default()));
    }

    #[test]
    fn other_workspace_invisible() {
        let v = viewer(Role::Admin, Permissions::default());
        let c = ConvFacts { workspace_id: Uuid::new_v4(), ..Default::default() };
        assert!(!can_see(&v, &c));
    }

    /// Every combination of role, flags, grants and assignment against the contract's words.
    #[test]
    fn actions_follow_the_contract_on_every_combination() {
        let label = Uuid::new_v4();
        let someone = Uuid::new_v4();
        for bits in 0u32..(1 << 6) {
            let bit = |i: u32| bits & (1 << i) != 0;
            let role = if bit(0) { Role::Admin } else { Role::Member };
            let mut v =
                viewer(role, Permissions { view_others_leads: bit(1), view_unassigned: bit(2), ..Default::default() });
            v.active = !bit(5);
            if bit(3) {
                v.label_ids.push(label);
            }
            for assignee in [None, Some(v.user_id), Some(someone)] {
                for explicit in [false, true] {
                    let c = ConvFacts {
                        workspace_id: v.workspace_id,
                        assignee_id: assignee,
                        label_ids: if bit(4) { vec![label] } else { vec![] },
                        access_ids: if explicit { vec![v.user_id] } else { vec![] },
                    };
                    let mine = assignee == Some(v.user_id);
                    let admin = role == Role::Admin;
                    let sees = v.active
                        && (admin
                            || mine
                            || (bit(3) && bit(4))
                            || explicit
                            || (bit(1) && assignee == Some(someone))
                            || (bit(2) && assignee.is_none()));
                    let what = format!("bits {bits:06b} assignee {assignee:?} explicit {explicit}");
                    assert_eq!(can_see(&v, &c), sees, "see: {what}");
                    assert_eq!(!reasons(&v, &c).is_empty(), sees, "reasons: {what}");
                    assert_eq!(can_reply(&v, &c).is_ok(), v.active && mine, "reply: {what}");
                    assert_eq!(can_assign(&v, &c).is_ok(), sees && (admin || mine || bit(1)), "assign: {what}");
                    assert_eq!(can_label(&v, &c).is_ok(), can_assign(&v, &c).is_ok(), "label: {what}");
                    assert_eq!(can_manage_access(&v, &c).is_ok(), sees && (admin || mine), "access: {what}");
                    match can_claim(&v, &c) {
                        Ok(()) => assert!(sees && assignee.is_none() && (admin || bit(2)), "claim: {what}"),
                        Err(Denied::AlreadyAssigned) => assert!(assignee.is_some(), "claim: {what}"),
                        Err(_) => assert!(assignee.is_none() && !(sees && (admin || bit(2))), "claim: {what}"),
                    }
                }
            }
        }
    }
}
