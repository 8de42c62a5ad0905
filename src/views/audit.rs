//! The audit trail as clients see it (`GET /audit`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::string_enum;

string_enum! {
    /// What an audit entry records: every change of who may see or do what.
    pub enum AuditAction {
        MemberInvited = "member.invited",
        MemberUpdated = "member.updated",
        MemberDeactivated = "member.deactivated",
        MemberReactivated = "member.reactivated",
        InvitationResent = "invitation.resent",
        InvitationCancelled = "invitation.cancelled",
        ConversationAccessGranted = "conversation.access_granted",
        ConversationAccessRevoked = "conversation.access_revoked",
        NumberConnected = "number.connected",
        NumberUpdated = "number.updated",
        NumberDisconnected = "number.disconnected",
        AssignmentUpdated = "assignment.updated",
        WorkspaceUpdated = "workspace.updated",
        LabelCreated = "label.created",
        LabelUpdated = "label.updated",
        LabelDeleted = "label.deleted",
        GroupDeleted = "group.deleted",
        ContentVisibilityChanged = "content.visibility_changed",
        ApiKeyCreated = "api_key.created",
        ApiKeyRevoked = "api_key.revoked",
        AgencyLinked = "agency.linked",
        AgencyUnlinked = "agency.unlinked",
    }
}

string_enum! {
    /// What an audit entry's target is.
    pub enum AuditTarget {
        Member = "member",
        Conversation = "conversation",
        Number = "number",
        AssignmentSettings = "assignment_settings",
        Workspace = "workspace",
        Label = "label",
        Group = "group",
        Content = "content",
        ApiKey = "api_key",
        Agency = "agency",
    }
}

/// One entry of `GET /audit`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntryView {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub action: AuditAction,
    pub target_type: AuditTarget,
    pub target_id: Option<Uuid>,
    /// `{"field": {"from", "to"}}`.
    pub changes: Value,
}

/// `GET /audit`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    pub next_cursor: Option<String>,
}
