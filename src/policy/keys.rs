//! API keys and lead distribution: who manages them, and what a key may call. Pure: no I/O.

use super::Viewer;
use super::team::can_manage_integrations;
use crate::views::apikey::Scope;

/// Why an API-key decision said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDenied {
    /// Creating, listing and revoking keys needs an admin or `manage_integrations`.
    NeedsManageIntegrations,
    /// The key lacks the scope of the route it called.
    MissingScope(Scope),
}

/// Creating, listing and revoking the workspace's API keys: admins and `manage_integrations`.
pub fn may_manage_api_keys(v: &Viewer) -> Result<(), KeyDenied> {
    if can_manage_integrations(v) { Ok(()) } else { Err(KeyDenied::NeedsManageIntegrations) }
}

/// Reading and changing lead distribution (rules and history): admins and `manage_integrations`.
pub fn may_manage_distribution(v: &Viewer) -> Result<(), KeyDenied> {
    if can_manage_integrations(v) { Ok(()) } else { Err(KeyDenied::NeedsManageIntegrations) }
}

/// A key calls a route only when it carries that route's scope.
pub fn key_may(scopes: &[Scope], needed: Scope) -> Result<(), KeyDenied> {
    if scopes.contains(&needed) { Ok(()) } else { Err(KeyDenied::MissingScope(needed)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_calls_only_its_scopes() {
        assert!(key_may(&[Scope::LeadsWrite], Scope::LeadsWrite).is_ok());
        assert_eq!(key_may(&[], Scope::LeadsWrite), Err(KeyDenied::MissingScope(Scope::LeadsWrite)));
    }
}
