//! Who may put files in the media store and send them. Pure: no I/O.
//!
//! Uploading is for whoever may reply somewhere (the assignee of at least one conversation:
//! replying is the assignee's), for admins, and for members who create content (a `file` item
//! is an upload). An upload belongs to its workspace: anyone there who may send a message may
//! send it (it is named by an unguessable id, and a content `file` is sent by whoever sees the
//! item); nobody outside the workspace ever reaches it.

use uuid::Uuid;

use super::{Role, Viewer};

/// Whether `v` may upload; `replies_somewhere`: `v` is the assignee of a conversation.
pub fn may_upload(v: &Viewer, replies_somewhere: bool) -> bool {
    v.active && (v.role == Role::Admin || v.permissions.create_content || replies_somewhere)
}

/// Whether `v` may use (send, attach to content) an upload of workspace `upload_workspace`.
pub fn may_use_upload(v: &Viewer, upload_workspace: Uuid) -> bool {
    v.active && v.workspace_id == upload_workspace
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Permissions;

    fn viewer(role: Role, create_content: bool) -> Viewer {
        Viewer {
            user_id: Uuid::new_v4(),
            workspace_id: Uuid::new_v4(),
            role,
            active: true,
            permissions: Permissions { create_content, ..Permissions::default() },
            label_ids: Vec::new(),
        }
    }

    #[test]
    fn uploads_need_a_reason_to_send() {
        assert!(may_upload(&viewer(Role::Admin, false), false));
        assert!(may_upload(&viewer(Role::Member, true), false));
        assert!(may_upload(&viewer(Role::Member, false), true));
        assert!(!may_upload(&viewer(Role::Member, false), false));
        let mut gone = viewer(Role::Admin, true);
        gone.active = false;
        assert!(!may_upload(&gone, true));
    }

    #[test]
    fn uploads_stay_in_their_workspace() {
        let v = viewer(Role::Member, false);
        assert!(may_use_upload(&v, v.workspace_id));
        assert!(!may_use_upload(&v, Uuid::new_v4()));
    }
}
