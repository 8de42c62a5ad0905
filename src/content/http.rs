//! The content library's routes.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tracing::instrument;
use uuid::Uuid;

use super::{Change, Filter, NewContent};
use crate::api::Api;
use crate::auth::CurrentUser;
use crate::db::{cursor, page_limit};
use crate::error::{Error, Result};
use crate::events::Work;
use crate::extract::{Json, Path, Query};
use crate::policy::content::Visibility;
use crate::state::AppState;
use crate::views::content::{ContentKind, ContentPage, ContentView};

pub fn routes() -> Api {
    Api::new()
        .get("/content", list)
        .post("/content", create)
        .get("/content/{id}", get)
        .patch("/content/{id}", patch)
        .delete("/content/{id}", delete)
}

fn parse_kind(raw: &str) -> Option<ContentKind> {
    ContentKind::parse(raw)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListContent {
    kind: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/content",
    tag = "content",
    description = "Saved content (quick replies, files, pages), filtered by kind and text, paginated.",
    params(ListContent),
    responses((status = 200, description = "OK.", body = ContentPage))
)]
#[instrument(skip_all)]
pub async fn list(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ListContent>,
) -> Result<Json<ContentPage>> {
    let kind = q
        .kind
        .as_deref()
        .map(|k| {
            parse_kind(k).ok_or_else(|| Error::bad_request("invalid_filter", "kind must be message, file or page"))
        })
        .transpose()?;
    if q.q.as_deref().is_some_and(|s| s.chars().count() > 200) {
        return Err(Error::bad_request("invalid_filter", "q has at most 200 characters"));
    }
    let after = q.cursor.as_deref().map(cursor::decode).transpose()?;
    let f = Filter { kind, q: q.q.filter(|s| !s.trim().is_empty()), after, limit: page_limit(q.limit)? };
    Ok(Json(super::list(&st.db, &user.viewer(), &f).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContent {
    kind: String,
    title: String,
    body: Option<String>,
    upload_id: Option<Uuid>,
    shortcut: Option<String>,
}

#[utoipa::path(
    post,
    path = "/content",
    tag = "content",
    description = "Creates a content item.",
    request_body = CreateContent,
    responses((status = 201, description = "Created.", body = ContentView))
)]
#[instrument(skip_all)]
pub async fn create(
    State(st): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateContent>,
) -> Result<(StatusCode, Json<ContentView>)> {
    let kind = parse_kind(&body.kind)
        .ok_or_else(|| Error::unprocessable("invalid_kind", "kind must be message, file or page"))?;
    if let Some(u) = body.upload_id {
        crate::media::usable_upload(&st.db, &user.viewer(), u).await?;
    }
    let n = NewContent { kind, title: body.title, body: body.body, upload_id: body.upload_id, shortcut: body.shortcut };
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let k = super::create(&mut work, &user.viewer(), n).await?;
    work.commit(&st.hub).await?;
    tracing::info!(content_id = %k.id, kind = k.kind.as_str(), "content created");
    Ok((StatusCode::CREATED, Json(k.view())))
}

#[utoipa::path(
    get,
    path = "/content/{id}",
    tag = "content",
    description = "One content item.",
    responses((status = 200, description = "OK.", body = ContentView))
)]
#[instrument(skip_all)]
pub async fn get(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<Json<ContentView>> {
    Ok(Json(super::get(&st.db, &user.viewer(), id).await?.view()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchContent {
    title: Option<String>,
    body: Option<String>,
    upload_id: Option<Uuid>,
    shortcut: Option<String>,
    visibility: Option<String>,
    team_ids: Option<Vec<Uuid>>,
}

#[utoipa::path(
    patch,
    path = "/content/{id}",
    tag = "content",
    description = "Changes a content item.",
    request_body = PatchContent,
    responses((status = 200, description = "OK.", body = ContentView))
)]
#[instrument(skip_all)]
pub async fn patch(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchContent>,
) -> Result<Json<ContentView>> {
    let visibility = body
        .visibility
        .as_deref()
        .map(|v| {
            Visibility::parse(v).ok_or_else(|| {
                Error::unprocessable("invalid_visibility", "visibility must be private, teams or workspace")
            })
        })
        .transpose()?;
    if let Some(u) = body.upload_id {
        crate::media::usable_upload(&st.db, &user.viewer(), u).await?;
    }
    let c = Change {
        title: body.title,
        body: body.body,
        upload_id: body.upload_id,
        shortcut: body.shortcut,
        visibility,
        team_ids: body.team_ids,
    };
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let k = super::change(&mut work, &user.viewer(), id, c).await?;
    work.commit(&st.hub).await?;
    tracing::info!(content_id = %id, "content updated");
    Ok(Json(k.view()))
}

#[utoipa::path(
    delete,
    path = "/content/{id}",
    tag = "content",
    description = "Deletes a content item.",
    responses((status = 204, description = "Done."))
)]
#[instrument(skip_all)]
pub async fn delete(State(st): State<AppState>, user: CurrentUser, Path(id): Path<Uuid>) -> Result<StatusCode> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    super::delete(&mut work, &user.viewer(), id).await?;
    work.commit(&st.hub).await?;
    tracing::info!(content_id = %id, "content deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The public page route (outside `/api/v1`, no login): `GET /p/{token}`.
pub fn public_routes() -> axum::Router<AppState> {
    axum::Router::new().route("/p/{token}", axum::routing::get(page))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A page sent to a lead, rendered from its Markdown (raw HTML shown as text, no scripts),
/// plain and readable on a phone. Unknown tokens answer 404.
#[instrument(skip_all)]
pub async fn page(
    State(st): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Result<axum::response::Html<String>> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let opened = super::pages::open(&mut work, &token).await?;
    work.commit(&st.hub).await?;
    let title = escape(&opened.title);
    let body = super::render::page_html(&opened.markdown);
    Ok(axum::response::Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title></head>\
         <body><main><h1>{title}</h1>\n{body}</main></body></html>\n"
    )))
}
