//! `GET /conversations`, `GET /conversations/{id}`, `GET /conversations/{id}/messages`.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use tracing::instrument;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::db::{cursor, page_limit};
use crate::error::{Error, Result};
use crate::extract::{Json, Path, Query};
use crate::inbox::conversations::{self, ListFilter, search_patterns};
use crate::inbox::{parse_bool, parse_id};
use crate::state::AppState;
use crate::views::conversation::{ConversationStatus, ConversationView};
use crate::views::message::ChatItem;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListConversations {
    status: Option<String>,
    assignee_id: Option<String>,
    label_id: Option<String>,
    unassigned: Option<String>,
    lead_id: Option<String>,
    group_id: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConversationsPage {
    conversations: Vec<ConversationView>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/conversations",
    tag = "inbox",
    description = "The conversations the caller can see, filtered and paginated, most recent first.",
    params(ListConversations),
    responses((status = 200, description = "OK.", body = ConversationsPage))
)]
#[instrument(skip_all)]
pub async fn list(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ListConversations>,
) -> Result<Json<ConversationsPage>> {
    let limit = page_limit(q.limit)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            ConversationStatus::parse(s)
                .ok_or_else(|| Error::bad_request("invalid_filter", "status must be open or closed"))?,
        ),
    };
    let (name_pattern, phone_pattern) = match q.q.as_deref().map(search_patterns).transpose()? {
        Some((n, p)) => (Some(n), p),
        None => (None, None),
    };
    let assignee = q.assignee_id.as_deref().map(|a| parse_id(a, "assignee_id")).transpose()?;
    let unassigned = q.unassigned.as_deref().map(|u| parse_bool(u, "unassigned")).transpose()?;
    let explicit = assignee.is_some() || unassigned.is_some();
    let filter = ListFilter {
        status,
        assignee,
        label: q.label_id.as_deref().map(|a| parse_id(a, "label_id")).transpose()?,
        unassigned,
        lead: q.lead_id.as_deref().map(|a| parse_id(a, "lead_id")).transpose()?,
        group: q.group_id.as_deref().map(|g| parse_id(g, "group_id")).transpose()?,
        name_pattern,
        phone_pattern,
        after: q.cursor.as_deref().map(cursor::decode).transpose()?,
        limit,
        team_view: super::leads::team_view(&st, &user, explicit).await?,
    };
    let v = user.viewer();
    let (rows, next_cursor) = conversations::list(&st.db, &v, &filter).await?;
    let conversations = conversations::answers(&st.db, &v, rows).await?;
    Ok(Json(ConversationsPage { conversations, next_cursor }))
}

#[utoipa::path(
    get,
    path = "/conversations/{id}",
    tag = "inbox",
    description = "One conversation.",
    responses((status = 200, description = "OK.", body = ConversationView))
)]
#[instrument(skip_all)]
pub async fn get_one(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<ConversationView>> {
    let v = user.viewer();
    let conv = conversations::get_visible(&st.db, &v, id).await?;
    Ok(Json(conversations::answer(&st.db, &v, &conv).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessagePage {
    before: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MessagesPage {
    messages: Vec<ChatItem>,
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/conversations/{id}/messages",
    tag = "inbox",
    description = "A conversation's messages and notes, newest first, paginated backwards.",
    params(MessagePage),
    responses((status = 200, description = "OK.", body = MessagesPage))
)]
#[instrument(skip_all)]
pub async fn messages(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Query(q): Query<MessagePage>,
) -> Result<Json<MessagesPage>> {
    let limit = page_limit(q.limit)?;
    let before = q.before.as_deref().map(|b| parse_id(b, "before")).transpose()?;
    let conv = conversations::get_visible(&st.db, &user.viewer(), id).await?;
    let (messages, next_cursor) = conversations::message_page(&st.db, &conv, before, limit).await?;
    Ok(Json(MessagesPage { messages, next_cursor }))
}
