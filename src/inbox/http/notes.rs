//! `POST /conversations/{id}/notes`, `GET /mentions`, `POST /mentions/{id}/read`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tracing::instrument;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::db::{cursor, page_limit};
use crate::error::{Error, Result};
use crate::events::Work;
use crate::extract::{Json, Path, Query};
use crate::inbox::notes::{self, Author, MAX_MENTIONS};
use crate::inbox::{conversations, parse_bool};
use crate::policy;
use crate::state::AppState;
use crate::views::mention::{MentionView, MentionsPage};
use crate::views::message::NoteView;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewConversationNote)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    text: String,
    #[serde(default)]
    mention_ids: Vec<Uuid>,
}

fn without_access(member: Uuid) -> Error {
    Error::unprocessable("mention_without_access", format!("member {member} can't see this conversation"))
}

#[utoipa::path(
    post,
    path = "/conversations/{id}/notes",
    tag = "inbox",
    description = "Adds an internal note (with mentions) to the conversation.",
    request_body = NewNote,
    responses((status = 201, description = "Created.", body = NoteView))
)]
#[instrument(skip_all)]
pub async fn add(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<NewNote>,
) -> Result<(StatusCode, Json<NoteView>)> {
    let v = user.viewer();
    let conv = conversations::get_visible(&st.db, &v, id).await?;
    let text = notes::check_text(&body.text)?;
    let mentioned = crate::team::dedup(body.mention_ids);
    if mentioned.len() > MAX_MENTIONS {
        return Err(Error::unprocessable(
            "too_many_mentions",
            format!("a note mentions at most {MAX_MENTIONS} members"),
        ));
    }
    let facts = conv.facts(conversations::access_ids(&st.db, conv.id).await?);
    policy::inbox::can_note(&v, &facts).map_err(|_| Error::not_found())?;
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    for m in &mentioned {
        let member = match crate::team::load_tx(work.tx(), conv.workspace_id, *m).await {
            Ok(member) => member,
            Err(e) if e.status() == StatusCode::NOT_FOUND => return Err(without_access(*m)),
            Err(e) => return Err(e),
        };
        policy::inbox::can_be_mentioned(&member.viewer(), &facts).map_err(|_| without_access(*m))?;
    }
    let author = Author { id: user.id, email: user.email.clone(), name: user.name.clone() };
    let note = notes::add(&mut work, &conv, &author, text, &mentioned).await?;
    work.commit(&st.hub).await?;
    tracing::info!(note = %note.id, conversation = %conv.id, mentions = mentioned.len(), "note written");
    Ok((StatusCode::CREATED, Json(note)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MentionsQuery {
    unread: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/mentions",
    tag = "inbox",
    description = "Mentions of the caller in notes, newest first, paginated.",
    params(MentionsQuery),
    responses((status = 200, description = "OK.", body = MentionsPage))
)]
#[instrument(skip_all)]
pub async fn mentions(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<MentionsQuery>,
) -> Result<Json<MentionsPage>> {
    let limit = page_limit(q.limit)?;
    let unread = q.unread.as_deref().map(|u| parse_bool(u, "unread")).transpose()?;
    let after = q.cursor.as_deref().map(cursor::decode).transpose()?;
    Ok(Json(notes::mentions(&st.db, &user.viewer(), unread, after, limit).await?))
}

#[utoipa::path(
    post,
    path = "/mentions/{id}/read",
    tag = "inbox",
    description = "Marks a mention read.",
    responses((status = 200, description = "OK.", body = MentionView))
)]
#[instrument(skip_all)]
pub async fn read(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<MentionView>> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let now = work.now();
    let mention = notes::mark_read(work.tx(), &user.viewer(), id, now).await?;
    work.commit(&st.hub).await?;
    Ok(Json(mention))
}
