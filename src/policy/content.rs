//! Who sees and changes content (quick-reply messages, files, pages). Pure: no I/O.
//!
//! The contract's rules: creating needs `create_content` (admins always) and makes a private
//! item; a visibility other than `private` needs `manage_content_visibility` (admins always),
//! and `teams` only teams the caller belongs to (admins: any); a member sees their own items,
//! `workspace` items and `teams` items of their teams (admins see all); editing another's item
//! needs `edit_others_content` (admins always) and that the caller sees it; deleting is for
//! admins only. Unseen items answer 404 (the loader's job: it only finds visible ones).
//!
//! Visibility is written twice side by side, [`can_see`] in Rust and [`VISIBLE`] in SQL over
//! a `content` row aliased `k`, with the parameters `$1` workspace id, `$2` user id, `$3` is
//! admin ([`params`]); queries number their own parameters from `$4`. A test on generated
//! worlds checks that the two agree.

use std::sync::LazyLock;

use uuid::Uuid;

use super::{Role, Viewer};
use crate::string_enum;

string_enum! {
    /// Who sees a content item besides its owner and the admins.
    pub enum Visibility { Private = "private", Teams = "teams", Workspace = "workspace" }
}

/// The caller with the teams they belong to (content is scoped by teams).
#[derive(Clone, Copy, Debug)]
pub struct ContentViewer<'a> {
    pub viewer: &'a Viewer,
    pub team_ids: &'a [Uuid],
}

/// What the policy needs to know about a content item.
#[derive(Clone, Debug)]
pub struct ContentFacts {
    pub workspace_id: Uuid,
    pub owner_id: Uuid,
    pub visibility: Visibility,
    pub team_ids: Vec<Uuid>,
}

/// Why a content action was refused (the caller could see the item, or none is involved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentDenied {
    /// Creating needs `create_content`.
    NeedsCreateContent,
    /// A visibility other than `private` needs `manage_content_visibility`.
    NeedsManageVisibility,
    /// `teams` visibility only to teams the caller belongs to.
    NotInTeam,
    /// Editing another member's item needs `edit_others_content`.
    NeedsEditOthers,
    /// Only admins delete.
    AdminOnly,
}

fn admin(v: &Viewer) -> bool {
    v.active && v.role == Role::Admin
}

/// May `c` see item `k`?
pub fn can_see(c: ContentViewer<'_>, k: &ContentFacts) -> bool {
    let v = c.viewer;
    v.active
        && k.workspace_id == v.workspace_id
        && (admin(v)
            || k.owner_id == v.user_id
            || k.visibility == Visibility::Workspace
            || (k.visibility == Visibility::Teams && k.team_ids.iter().any(|t| c.team_ids.contains(t))))
}

/// SQL: content row `k` is visible to the viewer `$1..$3` (see [`params`]).
pub static VISIBLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(k.workspace_id = $1 AND ($3 OR k.owner_id = $2 OR k.visibility = '{workspace}' \
         OR (k.visibility = '{teams}' AND EXISTS (SELECT 1 FROM content_teams kt JOIN team_members tm \
         ON tm.team_id = kt.team_id WHERE kt.content_id = k.id AND tm.user_id = $2))))",
        workspace = Visibility::Workspace.as_str(),
        teams = Visibility::Teams.as_str(),
    )
});

/// The values of `$1..$3` in [`VISIBLE`]: workspace id, user id, is admin.
pub fn params(v: &Viewer) -> (Uuid, Uuid, bool) {
    (v.workspace_id, v.user_id, admin(v))
}

/// Creating an item (it starts private).
pub fn may_create(v: &Viewer) -> Result<(), ContentDenied> {
    if v.active && (admin(v) || v.permissions.create_content) { Ok(()) } else { Err(ContentDenied::NeedsCreateContent) }
}

/// Giving an item `visibility` with `team_ids` (the teams asked for; ignored unless `teams`).
pub fn may_set_visibility(
    c: ContentViewer<'_>,
    visibility: Visibility,
    team_ids: &[Uuid],
) -> Result<(), ContentDenied> {
    let v = c.viewer;
    if visibility == Visibility::Private || admin(v) {
        return Ok(());
    }
    if !(v.active && v.permissions.manage_content_visibility) {
        return Err(ContentDenied::NeedsManageVisibility);
    }
    if visibility == Visibility::Teams && !team_ids.iter().all(|t| c.team_ids.contains(t)) {
        return Err(ContentDenied::NotInTeam);
    }
    Ok(())
}

/// Editing (and re-scoping) a visible item: its owner, admins, and members with
/// `edit_others_content` who see it.
pub fn may_edit(c: ContentViewer<'_>, k: &ContentFacts) -> Result<(), ContentDenied> {
    let v = c.viewer;
    if can_see(c, k) && (admin(v) || k.owner_id == v.user_id || v.permissions.edit_others_content) {
        Ok(())
    } else {
        Err(ContentDenied::NeedsEditOthers)
    }
}

/// Deleting a visible item: admins only (its owner too is refused).
pub fn may_delete(v: &Viewer) -> Result<(), ContentDenied> {
    if admin(v) { Ok(()) } else { Err(ContentDenied::AdminOnly) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Permissions;
    use crate::policy::sample_viewer as viewer;

    fn item(owner: Uuid, visibility: Visibility, team_ids: Vec<Uuid>) -> ContentFacts {
        ContentFacts { workspace_id: Uuid::nil(), owner_id: owner, visibility, team_ids }
    }

    #[test]
    fn the_contract_per_role() {
        let sales = Uuid::new_v4();
        let support = Uuid::new_v4();
        let admin = viewer(Role::Admin, Permissions::default());
        let creator = viewer(Role::Member, Permissions { create_content: true, ..Default::default() });
        let scoper = viewer(
            Role::Member,
            Permissions { create_content: true, manage_content_visibility: true, ..Default::default() },
        );
        let editor = viewer(Role::Member, Permissions { edit_others_content: true, ..Default::default() });
        let plain = viewer(Role::Member, Permissions::default());
        let in_sales = [sales];
        let none: [Uuid; 0] = [];
        let cv = |v, t| ContentViewer { viewer: v, team_ids: t };

        assert_eq!(may_create(&admin), Ok(()));
        assert_eq!(may_create(&creator), Ok(()));
        assert_eq!(may_create(&editor), Err(ContentDenied::NeedsCreateContent));

        assert_eq!(may_set_visibility(cv(&creator, &in_sales), Visibility::Private, &[]), Ok(()));
        assert_eq!(
            may_set_visibility(cv(&creator, &in_sales), Visibility::Workspace, &[]),
            Err(ContentDenied::NeedsManageVisibility)
        );
        assert_eq!(may_set_visibility(cv(&scoper, &in_sales), Visibility::Teams, &[sales]), Ok(()));
        assert_eq!(
            may_set_visibility(cv(&scoper, &in_sales), Visibility::Teams, &[support]),
            Err(ContentDenied::NotInTeam)
        );
        assert_eq!(may_set_visibility(cv(&admin, &none), Visibility::Teams, &[support]), Ok(()));

        let private = item(creator.user_id, Visibility::Private, vec![]);
        let team = item(creator.user_id, Visibility::Teams, vec![sales]);
        let everyone = item(creator.user_id, Visibility::Workspace, vec![]);
        assert!(can_see(cv(&creator, &none), &private));
        assert!(can_see(cv(&admin, &none), &private));
        assert!(!can_see(cv(&editor, &in_sales), &private));
        assert!(can_see(cv(&plain, &in_sales), &team));
        let in_support = [support];
        assert!(!can_see(cv(&plain, &in_support), &team));
        assert!(can_see(cv(&plain, &none), &everyone));

        assert_eq!(may_edit(cv(&creator, &none), &private), Ok(()));
        assert_eq!(may_edit(cv(&plain, &none), &everyone), Err(ContentDenied::NeedsEditOthers));
        assert_eq!(may_edit(cv(&editor, &none), &everyone), Ok(()));
        assert_eq!(may_edit(cv(&editor, &none), &team), Err(ContentDenied::NeedsEditOthers));

        assert_eq!(may_delete(&admin), Ok(()));
        assert_eq!(may_delete(&creator), Err(ContentDenied::AdminOnly));

        let deactivated = Viewer { active: false, ..admin.clone() };
        assert!(!can_see(cv(&deactivated, &none), &everyone));
    }
}
