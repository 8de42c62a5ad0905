//! The inbox's "may": what a viewer may do with conversations, leads, groups, numbers and the
//! assignment settings, and what the API answers say about it (`can`). Pure, like the rest of
//! the policy: the callers load the facts, these functions decide.

use uuid::Uuid;

use super::{ConvFacts, Denied, Role, Viewer, can_assign, can_claim, can_label, can_manage_access, can_reply, can_see};
use crate::views::conversation::ConversationCan;
use crate::views::lead::LeadCan;

/// What `v` may do with conversation `c` now: each flag is the very check of its action.
/// `change_status` is the reply check (only the assignee); `note` is [`can_note`] (seeing it).
pub fn conversation_can(v: &Viewer, c: &ConvFacts) -> ConversationCan {
    ConversationCan {
        reply: can_reply(v, c).is_ok(),
        assign: can_assign(v, c).is_ok(),
        claim: can_claim(v, c).is_ok(),
        change_status: can_change_status(v, c).is_ok(),
        label: can_label(v, c).is_ok(),
        manage_access: can_manage_access(v, c).is_ok(),
        note: can_note(v, c).is_ok(),
    }
}

/// Writing an internal note in a conversation: anyone who sees it (not only its assignee).
pub fn can_note(v: &Viewer, c: &ConvFacts) -> Result<(), Denied> {
    if can_see(v, c) { Ok(()) } else { Err(Denied::Forbidden) }
}

/// Mentioning `member` in a note of conversation `c`: they must see it (an unknown,
/// deactivated or unseeing member can't be mentioned).
pub fn can_be_mentioned(member: &Viewer, c: &ConvFacts) -> Result<(), Denied> {
    if can_see(member, c) { Ok(()) } else { Err(Denied::Forbidden) }
}

/// Changing a conversation's status: the reply rule (only the assignee).
pub fn can_change_status(v: &Viewer, c: &ConvFacts) -> Result<(), Denied> {
    can_reply(v, c)
}

/// What `v` may do with a lead they see (its current assignee given): `edit` is what
/// `PATCH /leads/{id}` accepts without an assignee change ([`can_edit_lead`]), `assign` is
/// giving it to any member ([`can_assign_lead`] to someone else), `delete` is
/// [`can_delete_lead`].
pub fn lead_can(v: &Viewer, assignee: Option<Uuid>) -> LeadCan {
    LeadCan {
        edit: can_edit_lead(v, assignee, None).is_ok(),
        delete: can_delete_lead(v, assignee),
        assign: can_assign_lead(v, assignee, None).is_ok(),
    }
}

/// Editing a lead the viewer sees (currently assigned to `current`; `to`: the assignee the same
/// request gives it, if any): only those who may assign it — admins, its assignee, members
/// with `view_others_leads`. Anyone else who sees it (a label, explicit access,
/// `view_unassigned`) gets [`Denied::NotAssignee`]: an unassigned lead is claimed before it is
/// edited, which a request that gives it to the caller does.
pub fn can_edit_lead(v: &Viewer, current: Option<Uuid>, to: Option<Uuid>) -> Result<(), Denied> {
    let claims = to == Some(v.user_id) && can_assign_lead(v, current, to).is_ok();
    if can_assign_lead(v, current, None).is_ok() || claims { Ok(()) } else { Err(Denied::NotAssignee) }
}

/// Giving a lead (currently assigned to `current`) to `to` (`None`: to anyone, i.e. a member
/// other than the viewer). Admins, its assignee and members with `view_others_leads` may;
/// a member with `view_unassigned` may take an unassigned lead for themselves.
pub fn can_assign_lead(v: &Viewer, current: Option<Uuid>, to: Option<Uuid>) -> Result<(), Denied> {
    let ok = v.active
        && (v.role == Role::Admin
            || current == Some(v.user_id)
            || v.permissions.view_others_leads
            || (current.is_none() && v.permissions.view_unassigned && to == Some(v.user_id)));
    if ok { Ok(()) } else { Err(Denied::Forbidden) }
}

/// Creating a lead assigned to `assignee`: to oneself anyone may; to others admins and
/// members with `view_others_leads`.
pub fn can_create_lead_for(v: &Viewer, assignee: Option<Uuid>) -> Result<(), Denied> {
    match assignee {
        Some(a) if a != v.user_id && !(v.is_admin() || (v.active && v.permissions.view_others_leads)) => {
            Err(Denied::Forbidden)
        }
        _ => Ok(()),
    }
}

/// Deleting a lead the viewer can see: admins any, members with `delete_leads` only their own.
pub fn can_delete_lead(v: &Viewer, lead_assignee: Option<Uuid>) -> bool {
    v.active && (v.role == Role::Admin || (v.permissions.delete_leads && lead_assignee == Some(v.user_id)))
}

/// Moving all (or some) of one member's leads to another at once: admins and members with
/// `view_others_leads`.
pub fn can_bulk_reassign(v: &Viewer) -> Result<(), Denied> {
    if v.is_admin() || (v.active && v.permissions.view_others_leads) { Ok(()) } else { Err(Denied::Forbidden) }
}

/// Assigning unassigned leads in bulk (`from_member_id: null`): admins, and members with both
/// `view_unassigned` and `view_others_leads`.
pub fn can_bulk_assign_unassigned(v: &Viewer) -> Result<(), Denied> {
    let flags = v.permissions.view_unassigned && v.permissions.view_others_leads;
    if v.is_admin() || (v.active && flags) { Ok(()) } else { Err(Denied::Forbidden) }
}

/// Which query lists a viewer's conversations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListStrategy {
    /// Walk the workspace newest first and keep the visible ones: for viewers who see much of
    /// the inbox (admins, `view_others_leads`, `view_unassigned`).
    Wide,
    /// Take the candidates the viewer is named in (own, granted labels, explicit access):
    /// only those can be visible to a member without those flags.
    Narrow,
}

/// The conversations a [`ListStrategy::Narrow`] viewer (`$1` workspace, `$2` member) is named
/// in: their own, those with a label granted to them, those shared with them. A candidate set
/// for queries, not a decision: the policy predicate still decides in each.
pub const NAMED_CONVERSATIONS: &str = "SELECT c.id FROM conversations c WHERE c.workspace_id = $1 AND c.assignee_id = $2 \
     UNION SELECT cl.conversation_id FROM conversation_labels cl JOIN member_labels ml ON ml.label_id = cl.label_id \
     WHERE ml.user_id = $2 UNION SELECT ca.conversation_id FROM conversation_access ca WHERE ca.user_id = $2";

/// The leads such a viewer is named in: assignee of the lead or of one of its chats, a granted
/// label or explicit access on one of its chats (candidates, as [`NAMED_CONVERSATIONS`]).
/// Only ever the set of an `IN (…)`, so `UNION ALL`: a lead named twice costs nothing, and
/// SQLite builds no sorted set of each part to remove it.
pub const NAMED_LEADS: &str = "SELECT own.id FROM leads own WHERE own.workspace_id = $1 AND own.assignee_id = $2 \
     UNION ALL SELECT c.lead_id FROM conversations c WHERE c.workspace_id = $1 AND c.assignee_id = $2 \
     UNION ALL SELECT c.lead_id FROM conversation_labels cl JOIN member_labels ml ON ml.label_id = cl.label_id \
         JOIN conversations c ON c.id = cl.conversation_id WHERE ml.user_id = $2 \
     UNION ALL SELECT c.lead_id FROM conversation_access ca JOIN conversations c ON c.id = ca.conversation_id \
         WHERE ca.user_id = $2";

/// The list query for `v` (both answer the same set; the policy predicate decides in each).
pub fn list_strategy(v: &Viewer) -> ListStrategy {
    if v.is_admin() || v.permissions.view_others_leads || v.permissions.view_unassigned {
        ListStrategy::Wide
    } else {
        ListStrategy::Narrow
    }
}

/// Creating and renaming lead groups.
pub fn can_manage_groups(v: &Viewer) -> Result<(), Denied> {
    if super::can_manage_groups(v) { Ok(()) } else { Err(Denied::Forbidden) }
}

/// Deleting a lead group: admins only.
pub fn can_delete_group(v: &Viewer) -> Result<(), Denied> {
    if v.is_admin() { Ok(()) } else { Err(Denied::Forbidden) }
}

/// Connecting, changing and disconnecting numbers; importing leads.
pub fn can_manage_numbers(v: &Viewer) -> Result<(), Denied> {
    if super::can_manage_integrations(v) { Ok(()) } else { Err(Denied::Forbidden) }
}

/// Changing the workspace's assignment settings: admins and members with `manage_members`.
pub fn can_change_assignment(v: &Viewer) -> Result<(), Denied> {
    if v.is_admin() || (v.active && v.permissions.manage_members) { Ok(()) } else { Err(Denied::Forbidden) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::sample_viewer as viewer;
    use crate::policy::{Permissions, RULES};

    #[test]
    fn conversation_can_is_the_actions_checks() {
        let someone = Uuid::new_v4();
        for bits in 0u32..16 {
            let bit = |i: u32| bits & (1 << i) != 0;
            let role = if bit(0) { Role::Admin } else { Role::Member };
            let v =
                viewer(role, Permissions { view_others_leads: bit(1), view_unassigned: bit(2), ..Default::default() });
            for assignee in [None, Some(v.user_id), Some(someone)] {
                let c = ConvFacts {
                    assignee_id: assignee,
                    access_ids: if bit(3) { vec![v.user_id] } else { vec![] },
                    ..Default::default()
                };
                let can = conversation_can(&v, &c);
                assert_eq!(can.reply, can_reply(&v, &c).is_ok());
                assert_eq!(can.change_status, can.reply);
                assert_eq!(can.assign, can_assign(&v, &c).is_ok());
                assert_eq!(can.claim, can_claim(&v, &c).is_ok());
                assert_eq!(can.label, can.assign);
                assert_eq!(can.manage_access, can_manage_access(&v, &c).is_ok());
                assert_eq!(can.note, can_see(&v, &c));
            }
        }
    }

    #[test]
    fn lead_assignment_follows_the_contract() {
        let someone = Uuid::new_v4();
        let plain = viewer(Role::Member, Permissions::default());
        assert!(can_assign_lead(&plain, Some(plain.user_id), Some(someone)).is_ok());
        assert!(can_assign_lead(&plain, Some(someone), Some(plain.user_id)).is_err());
        let pool = viewer(Role::Member, Permissions { view_unassigned: true, ..Default::default() });
        assert!(can_assign_lead(&pool, None, Some(pool.user_id)).is_ok());
        assert!(can_assign_lead(&pool, None, Some(someone)).is_err());
        assert!(!lead_can(&pool, None).assign);
        let others = viewer(Role::Member, Permissions { view_others_leads: true, ..Default::default() });
        assert!(lead_can(&others, Some(someone)).assign);
        assert!(can_create_lead_for(&others, Some(someone)).is_ok());
        assert!(can_create_lead_for(&plain, Some(someone)).is_err());
        assert!(can_create_lead_for(&plain, Some(plain.user_id)).is_ok());
        assert!(lead_can(&viewer(Role::Admin, Permissions::default()), Some(someone)).delete);
    }

    #[test]
    fn only_who_may_assign_a_lead_edits_it() {
        let someone = Uuid::new_v4();
        let pool = viewer(Role::Member, Permissions { view_unassigned: true, ..Default::default() });
        assert_eq!(can_edit_lead(&pool, None, None), Err(Denied::NotAssignee));
        assert!(!lead_can(&pool, None).edit);
        assert!(can_edit_lead(&pool, None, Some(pool.user_id)).is_ok(), "claiming it in the same request");
        let plain = viewer(Role::Member, Permissions::default());
        assert_eq!(can_edit_lead(&plain, Some(someone), None), Err(Denied::NotAssignee));
        assert!(can_edit_lead(&plain, Some(plain.user_id), None).is_ok());
        let others = viewer(Role::Member, Permissions { view_others_leads: true, ..Default::default() });
        assert!(lead_can(&others, Some(someone)).edit);
        assert!(lead_can(&viewer(Role::Admin, Permissions::default()), None).edit);
        assert!(can_bulk_assign_unassigned(&pool).is_err());
        assert!(can_bulk_assign_unassigned(&others).is_err());
        let both = Permissions { view_unassigned: true, view_others_leads: true, ..Default::default() };
        assert!(can_bulk_assign_unassigned(&viewer(Role::Member, both)).is_ok());
    }

    #[test]
    fn list_strategy_narrow_only_where_named() {
        for bits in 0u32..8 {
            let bit = |i: u32| bits & (1 << i) != 0;
            let role = if bit(0) { Role::Admin } else { Role::Member };
            let v =
                viewer(role, Permissions { view_others_leads: bit(1), view_unassigned: bit(2), ..Default::default() });
            // Narrow is only right when no rule but those naming the viewer can hold.
            let narrow = list_strategy(&v) == ListStrategy::Narrow;
            let names_only = RULES.iter().all(|r| match r {
                crate::policy::Rule::Admin => v.role != Role::Admin,
                crate::policy::Rule::OthersFlag => !v.permissions.view_others_leads,
                crate::policy::Rule::UnassignedFlag => !v.permissions.view_unassigned,
                _ => true,
            });
            assert_eq!(narrow, names_only, "bits {bits:03b}");
        }
    }
}
