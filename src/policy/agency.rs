//! Agencies: who may run an agency, who may grant one access to a workspace, and the agency's
//! reader — a viewer kind of its own, distinct from [`Viewer`], that reads a managed client's
//! data and can do nothing else. Pure: no I/O.
//!
//! The reader exists only for a client entry whose link is `managing` at the moment of the
//! request ([`may_read_client`]); every other status answers 404, so unlinking (from either
//! side) ends access at the next request. Its only use is [`AgencyReader::read_viewer`], a
//! viewer for the read functions (lead lists, a lead and its timeline, the team report): the
//! agency's routes are all `GET`s and call nothing else, and the reader is never a
//! `CurrentUser`, so no write route of the client's workspace can be reached with it.

use uuid::Uuid;

use super::{Permissions, Role, Viewer};
use crate::string_enum;

string_enum! {
    /// Where an agency's client entry stands.
    pub enum ClientStatus {
        Invited = "invited",
        NotLinked = "not_linked",
        Managing = "managing",
    }
}

/// Why an agency action was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgencyDenied {
    /// Only an admin acts for an agency, or grants one access.
    AdminOnly,
    /// The invitation names another email than the caller's.
    OtherEmail,
    /// The entry is not in a status that allows this (404 for reads, 409 for changes).
    WrongStatus,
}

fn admin(v: &Viewer) -> bool {
    v.active && v.role == Role::Admin
}

/// Making the workspace an agency, inviting, resending, cancelling, removing, unlinking and
/// reading the clients: the agency workspace's admins.
pub fn may_act_for_agency(v: &Viewer) -> Result<(), AgencyDenied> {
    if admin(v) { Ok(()) } else { Err(AgencyDenied::AdminOnly) }
}

/// Accepting an agency's invitation (granting it access to `v`'s workspace): an admin whose
/// email is the invited one.
pub fn may_accept(v: &Viewer, caller_email: &str, invited_email: &str) -> Result<(), AgencyDenied> {
    if !admin(v) {
        return Err(AgencyDenied::AdminOnly);
    }
    if !caller_email.trim().eq_ignore_ascii_case(invited_email.trim()) {
        return Err(AgencyDenied::OtherEmail);
    }
    Ok(())
}

/// Ending the agency's access from the client's side: the client workspace's admins.
pub fn may_unlink_from_client(v: &Viewer) -> Result<(), AgencyDenied> {
    may_act_for_agency(v)
}

/// Resend: from `invited` or `not_linked`.
pub fn may_resend(status: ClientStatus) -> Result<(), AgencyDenied> {
    match status {
        ClientStatus::Invited | ClientStatus::NotLinked => Ok(()),
        ClientStatus::Managing => Err(AgencyDenied::WrongStatus),
    }
}

/// What `DELETE` does to an entry in `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// `invited` → `not_linked`.
    Cancel,
    /// A `not_linked` entry goes away.
    Remove,
}

/// `DELETE` of an entry: cancels an invitation, removes a `not_linked` entry; a `managing`
/// one is unlinked first.
pub fn removal(status: ClientStatus) -> Result<Removal, AgencyDenied> {
    match status {
        ClientStatus::Invited => Ok(Removal::Cancel),
        ClientStatus::NotLinked => Ok(Removal::Remove),
        ClientStatus::Managing => Err(AgencyDenied::WrongStatus),
    }
}

/// Unlink from the agency's side: from `managing` only.
pub fn may_unlink(status: ClientStatus) -> Result<(), AgencyDenied> {
    if status == ClientStatus::Managing { Ok(()) } else { Err(AgencyDenied::WrongStatus) }
}

/// The first admin of a workspace created from an agency's invitation, as the policy sees
/// them when they accept it in the same transaction.
pub fn founding_admin(user_id: Uuid, workspace_id: Uuid) -> Viewer {
    Viewer {
        user_id,
        workspace_id,
        role: Role::Admin,
        active: true,
        permissions: Permissions::default(),
        label_ids: Vec::new(),
    }
}

/// The agency reading one client's data: read-only by construction (see the module docs).
#[derive(Clone, Debug)]
pub struct AgencyReader {
    /// The agency admin reading.
    pub user_id: Uuid,
    /// The client workspace read.
    pub client_workspace_id: Uuid,
}

impl AgencyReader {
    /// The viewer the read functions take: the whole client workspace, as its admins see it
    /// (the agency follows every lead), under an id that is no member of it (nothing is ever
    /// "the reader's own"). Only read functions are given it.
    pub fn read_viewer(&self) -> Viewer {
        Viewer {
            user_id: self.user_id,
            workspace_id: self.client_workspace_id,
            role: Role::Admin,
            active: true,
            permissions: Permissions::default(),
            label_ids: Vec::new(),
        }
    }
}

/// May `v` (an admin of the agency that owns the entry) read the client of an entry in
/// `status`, linked to `client`? Only while `managing`; otherwise the entry reads as absent.
pub fn may_read_client(v: &Viewer, status: ClientStatus, client: Option<Uuid>) -> Result<AgencyReader, AgencyDenied> {
    may_act_for_agency(v)?;
    match (status, client) {
        (ClientStatus::Managing, Some(ws)) if ws != v.workspace_id => {
            Ok(AgencyReader { user_id: v.user_id, client_workspace_id: ws })
        }
        _ => Err(AgencyDenied::WrongStatus),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::sample_viewer as viewer;

    #[test]
    fn only_managing_entries_are_read() {
        let admin = viewer(Role::Admin, Permissions::default());
        let client = Uuid::new_v4();
        assert!(may_read_client(&admin, ClientStatus::Managing, Some(client)).is_ok());
        for s in [ClientStatus::Invited, ClientStatus::NotLinked] {
            assert_eq!(may_read_client(&admin, s, Some(client)).unwrap_err(), AgencyDenied::WrongStatus);
        }
        let member = viewer(Role::Member, Permissions { view_others_leads: true, ..Default::default() });
        assert_eq!(
            may_read_client(&member, ClientStatus::Managing, Some(client)).unwrap_err(),
            AgencyDenied::AdminOnly
        );
        let r = may_read_client(&admin, ClientStatus::Managing, Some(client)).unwrap().read_viewer();
        assert_eq!(r.workspace_id, client);
    }

    #[test]
    fn acceptance_needs_the_invited_admin() {
        let admin = viewer(Role::Admin, Permissions::default());
        let member = viewer(Role::Member, Permissions::default());
        assert_eq!(may_accept(&admin, "Boss@x.test", "boss@x.test"), Ok(()));
        assert_eq!(may_accept(&admin, "other@x.test", "boss@x.test"), Err(AgencyDenied::OtherEmail));
        assert_eq!(may_accept(&member, "boss@x.test", "boss@x.test"), Err(AgencyDenied::AdminOnly));
    }

    #[test]
    fn transitions() {
        assert_eq!(removal(ClientStatus::Invited), Ok(Removal::Cancel));
        assert_eq!(removal(ClientStatus::NotLinked), Ok(Removal::Remove));
        assert!(removal(ClientStatus::Managing).is_err());
        assert!(may_resend(ClientStatus::Managing).is_err());
        assert!(may_unlink(ClientStatus::Invited).is_err());
    }
}
