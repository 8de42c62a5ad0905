//! A member's own preferences (`GET/PUT /me/preferences`).

use serde::{Deserialize, Serialize};

/// The team view: which conversations and leads beyond their own a member wants in lists
/// called without an explicit `assignee_id` / `unassigned` filter. It only ever narrows what
/// the policy lets them see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = TeamFilter)]
#[serde(deny_unknown_fields)]
pub struct TeamView {
    /// Those assigned to other members.
    pub show_others: bool,
    /// Unassigned ones.
    pub show_unassigned: bool,
}

impl Default for TeamView {
    fn default() -> Self {
        TeamView { show_others: true, show_unassigned: true }
    }
}

impl TeamView {
    /// What a list applies: everything when the caller filtered by assignee or `unassigned`
    /// (an explicit filter wins), the member's choice otherwise.
    pub fn for_list(self, explicit_filter: bool) -> TeamView {
        if explicit_filter { TeamView::default() } else { self }
    }
}

/// `{"team_view": {...}}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    pub team_view: TeamView,
}
