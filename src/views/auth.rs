//! Login and "who am I" answers.

use serde::Serialize;
use uuid::Uuid;

use crate::policy::{Permissions, Role};

/// The user object of login answers.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UserOut {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub workspace_id: Uuid,
}

/// Login and invitation accept: the new session's token and who it belongs to.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub token: String,
    pub user: UserOut,
}

/// `GET /auth/me`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MeView {
    pub user: UserOut,
    pub permissions: Permissions,
    pub label_ids: Vec<Uuid>,
}
