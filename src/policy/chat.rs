//! Who may do what with the chat machinery itself (not one conversation): the webhook journal.

use super::{Denied, Viewer};

/// Reading and replaying the webhook journal: admins only.
pub fn may_see_journal(v: &Viewer) -> Result<(), Denied> {
    if v.is_admin() { Ok(()) } else { Err(Denied::Forbidden) }
}
