//! Who may manage the team and the workspace, and what each member sees of the team report
//! and of the live workspace-wide events. Pure: no I/O.

use uuid::Uuid;

use super::{Role, Viewer};

/// Why a team change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeamDenied {
    /// Only an admin may do this (labels, workspace settings, or an admin as the target
    /// for a member who manages members).
    AdminOnly,
    /// Managing members needs the `manage_members` permission.
    NeedsManageMembers,
    /// A member without the admin role acting on themselves (role, flags, labels, status).
    OnThemselves,
}

fn admin(v: &Viewer) -> bool {
    v.active && v.role == Role::Admin
}

/// An active admin.
pub fn is_admin(v: &Viewer) -> bool {
    admin(v)
}

/// Connecting and disconnecting numbers, importing leads.
pub fn can_manage_integrations(v: &Viewer) -> bool {
    v.active && (v.role == Role::Admin || v.permissions.manage_integrations)
}

/// Inviting and managing members (never admins, unless the caller is one).
pub fn can_manage_member(v: &Viewer, target_role: Role) -> bool {
    v.active && (v.role == Role::Admin || (v.permissions.manage_members && target_role == Role::Member))
}

/// Creating, editing and deleting lead groups.
pub fn can_manage_groups(v: &Viewer) -> bool {
    v.active && (v.role == Role::Admin || v.permissions.manage_groups)
}

/// Creating, renaming and deleting teams and setting their members: admins and members with
/// `manage_members`.
pub fn may_manage_teams(v: &Viewer) -> Result<(), TeamDenied> {
    if v.active && (v.role == Role::Admin || v.permissions.manage_members) {
        Ok(())
    } else {
        Err(TeamDenied::NeedsManageMembers)
    }
}

/// Creating, renaming and deleting labels: admins.
pub fn may_manage_labels(v: &Viewer) -> Result<(), TeamDenied> {
    if admin(v) { Ok(()) } else { Err(TeamDenied::AdminOnly) }
}

/// Changing the workspace's settings: admins.
pub fn may_change_workspace(v: &Viewer) -> Result<(), TeamDenied> {
    if admin(v) { Ok(()) } else { Err(TeamDenied::AdminOnly) }
}

/// Reading the audit trail: admins.
pub fn may_read_audit(v: &Viewer) -> Result<(), TeamDenied> {
    if admin(v) { Ok(()) } else { Err(TeamDenied::AdminOnly) }
}

/// Inviting, or managing (re-inviting, resending, cancelling, reactivating) a member whose
/// role is `target`: admins anyone; members with `manage_members` other non-admins.
pub fn may_manage_member(v: &Viewer, target: Role) -> Result<(), TeamDenied> {
    if can_manage_member(v, target) {
        Ok(())
    } else if target == Role::Admin && v.permissions.manage_members {
        Err(TeamDenied::AdminOnly)
    } else {
        Err(TeamDenied::NeedsManageMembers)
    }
}

/// What a member change touches.
#[derive(Clone, Copy, Debug)]
pub struct MemberChange {
    /// The member changed, and their role now.
    pub target: Uuid,
    pub target_role: Role,
    /// The role they would get, when it changes.
    pub new_role: Option<Role>,
    /// Only the name changes.
    pub only_name: bool,
}

/// Changing a member: anyone may rename themselves; everything else is managing members
/// (making someone an admin needs an admin), and a member who is not an admin can't change
/// their own role, permissions or labels.
pub fn may_change_member(v: &Viewer, c: &MemberChange) -> Result<(), TeamDenied> {
    if c.target == v.user_id && c.only_name {
        return Ok(());
    }
    may_manage_member(v, c.target_role)?;
    if c.new_role == Some(Role::Admin) {
        may_manage_member(v, Role::Admin)?;
    }
    if c.target == v.user_id && !admin(v) {
        return Err(TeamDenied::OnThemselves);
    }
    Ok(())
}

/// Deactivating member `target` (role `target_role`): managing them, and not oneself unless
/// an admin.
pub fn may_deactivate(v: &Viewer, target: Uuid, target_role: Role) -> Result<(), TeamDenied> {
    may_manage_member(v, target_role)?;
    if target == v.user_id && !admin(v) {
        return Err(TeamDenied::OnThemselves);
    }
    Ok(())
}

/// Does the last-admin rule protect this member (an active admin)?
pub fn keeps_the_workspace_administered(member: &Viewer) -> bool {
    admin(member)
}

/// Whose leads a team report counts, and whose rows it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportScope {
    /// Every lead, every member's row (admins).
    All,
    /// The leads the viewer can see, every member's row (`view_others_leads`); unclaimed
    /// leads count only with `view_unassigned` or through a grant.
    Visible { unassigned: bool },
    /// Every lead, the viewer's own row only.
    Own,
}

/// The team report `v` may read.
pub fn report_scope(v: &Viewer) -> ReportScope {
    if admin(v) {
        ReportScope::All
    } else if v.permissions.view_others_leads {
        ReportScope::Visible { unassigned: v.permissions.view_unassigned }
    } else {
        ReportScope::Own
    }
}

/// Does `v` receive every event of their workspace, including those about conversations and
/// leads that no longer exist (admins)?
pub fn sees_every_event(v: &Viewer) -> bool {
    admin(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Permissions;
    use crate::policy::sample_viewer as viewer;

    #[test]
    fn managing_members_follows_the_contract() {
        let admin = viewer(Role::Admin, Permissions::default());
        let manager = viewer(Role::Member, Permissions { manage_members: true, ..Default::default() });
        let plain = viewer(Role::Member, Permissions::default());
        assert_eq!(may_manage_member(&admin, Role::Admin), Ok(()));
        assert_eq!(may_manage_member(&manager, Role::Member), Ok(()));
        assert_eq!(may_manage_member(&manager, Role::Admin), Err(TeamDenied::AdminOnly));
        assert_eq!(may_manage_member(&plain, Role::Member), Err(TeamDenied::NeedsManageMembers));
        assert_eq!(may_manage_member(&plain, Role::Admin), Err(TeamDenied::NeedsManageMembers));

        let rename =
            |v: &Viewer| MemberChange { target: v.user_id, target_role: v.role, new_role: None, only_name: true };
        assert_eq!(may_change_member(&plain, &rename(&plain)), Ok(()));
        let own_flags = MemberChange { only_name: false, ..rename(&manager) };
        assert_eq!(may_change_member(&manager, &own_flags), Err(TeamDenied::OnThemselves));
        let promote = MemberChange {
            target: plain.user_id,
            target_role: Role::Member,
            new_role: Some(Role::Admin),
            only_name: false,
        };
        assert_eq!(may_change_member(&manager, &promote), Err(TeamDenied::AdminOnly));
        assert_eq!(may_change_member(&admin, &promote), Ok(()));
        assert_eq!(may_deactivate(&manager, manager.user_id, Role::Member), Err(TeamDenied::OnThemselves));
        assert_eq!(may_deactivate(&admin, admin.user_id, Role::Admin), Ok(()));
    }

    #[test]
    fn report_scope_by_role_and_flags() {
        assert_eq!(report_scope(&viewer(Role::Admin, Permissions::default())), ReportScope::All);
        let others = Permissions { view_others_leads: true, ..Default::default() };
        assert_eq!(report_scope(&viewer(Role::Member, others)), ReportScope::Visible { unassigned: false });
        assert_eq!(report_scope(&viewer(Role::Member, Permissions::default())), ReportScope::Own);
        assert_eq!(may_manage_labels(&viewer(Role::Member, others)), Err(TeamDenied::AdminOnly));
    }

    #[test]
    fn teams_are_managed_by_admins_and_member_managers() {
        let manager = Permissions { manage_members: true, ..Default::default() };
        assert_eq!(may_manage_teams(&viewer(Role::Admin, Permissions::default())), Ok(()));
        assert_eq!(may_manage_teams(&viewer(Role::Member, manager)), Ok(()));
        let all_but = Permissions { manage_members: false, ..manager };
        assert_eq!(may_manage_teams(&viewer(Role::Member, all_but)), Err(TeamDenied::NeedsManageMembers));
    }
}
