//! `GET /api/v1/activities`, `GET /api/v1/leads/{id}/timeline` and `POST /api/v1/leads/{id}/notes`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tracing::instrument;
use uuid::Uuid;

use super::read::{parse_id, parse_time};
use super::{NewActivity, read};
use crate::api::Api;
use crate::auth::CurrentUser;
use crate::db::{cursor, page_limit};
use crate::error::{Error, Result};
use crate::events::Work;
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use crate::views::timeline::{ActivitiesPage, ActivityKind, TimelineEntry, TimelinePage};

pub fn routes() -> Api {
    Api::new().get("/activities", activities).get("/leads/{id}/timeline", timeline).post("/leads/{id}/notes", add_note)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActivitiesQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    member_id: Option<String>,
    lead_id: Option<String>,
    number_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// An optional id filter (empty means none).
fn id_filter(raw: Option<&str>, what: &str) -> Result<Option<Uuid>> {
    raw.filter(|v| !v.is_empty()).map(|v| parse_id(v, what)).transpose()
}

/// An optional time filter (empty means none).
fn time_filter(raw: Option<&str>, what: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    raw.filter(|v| !v.is_empty()).map(|v| parse_time(v, what)).transpose()
}

/// `GET /activities`: the timeline across every lead the caller can see, newest first.
#[utoipa::path(
    get,
    path = "/activities",
    tag = "timeline",
    description = "The timeline across every lead the caller can see, newest first, filtered and paginated.",
    params(ActivitiesQuery),
    responses((status = 200, description = "OK.", body = ActivitiesPage))
)]
#[instrument(skip_all)]
pub async fn activities(
    State(st): State<AppState>,
    user: CurrentUser,
    Query(q): Query<ActivitiesQuery>,
) -> Result<Json<ActivitiesPage>> {
    let filter = read::AcrossFilter {
        kind: parse_kind(q.kind.as_deref())?,
        member: id_filter(q.member_id.as_deref(), "member_id")?,
        lead: id_filter(q.lead_id.as_deref(), "lead_id")?,
        number: id_filter(q.number_id.as_deref(), "number_id")?,
        from: time_filter(q.from.as_deref(), "from")?,
        to: time_filter(q.to.as_deref(), "to")?,
        after: q.cursor.as_deref().map(cursor::decode_seq).transpose()?,
        limit: page_limit(q.limit)?,
    };
    Ok(Json(read::across(&st.db, &user.viewer(), &filter, st.clock.now()).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    member_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

fn parse_kind(raw: Option<&str>) -> Result<Option<ActivityKind>> {
    let Some(k) = raw.filter(|k| !k.is_empty()) else { return Ok(None) };
    ActivityKind::parse(k.trim()).map(Some).ok_or_else(|| {
        let all: Vec<_> = ActivityKind::ALL.iter().map(|k| k.as_str()).collect();
        Error::bad_request("invalid_filter", format!("type must be one of {}", all.join(", ")))
    })
}

#[utoipa::path(
    get,
    path = "/leads/{id}/timeline",
    tag = "timeline",
    description = "A lead's timeline (activities and WhatsApp sessions), newest first, paginated.",
    params(TimelineQuery),
    responses((status = 200, description = "OK.", body = TimelinePage))
)]
#[instrument(skip_all)]
pub async fn timeline(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Query(q): Query<TimelineQuery>,
) -> Result<Json<TimelinePage>> {
    let limit = page_limit(q.limit)?;
    let filter = read::Filter {
        kind: parse_kind(q.kind.as_deref())?,
        member: q.member_id.as_deref().map(|m| parse_id(m, "member_id")).transpose()?,
        from: q.from.as_deref().map(|f| parse_time(f, "from")).transpose()?,
        to: q.to.as_deref().map(|t| parse_time(t, "to")).transpose()?,
        after: q.cursor.as_deref().map(cursor::decode_seq).transpose()?,
        limit,
    };
    let v = user.viewer();
    let lead = read::visible_lead(&st.db, &v, id).await?;
    Ok(Json(read::page(&st.db, &v, lead.lead_id, &filter, st.clock.now()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewLeadNote)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    text: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct NoteData<'a> {
    text: &'a str,
}

#[utoipa::path(
    post,
    path = "/leads/{id}/notes",
    tag = "timeline",
    description = "Adds a note to a lead's timeline.",
    request_body = NewNote,
    responses((status = 201, description = "Created.", body = TimelineEntry))
)]
#[instrument(skip_all)]
pub async fn add_note(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<NewNote>,
) -> Result<(StatusCode, Json<TimelineEntry>)> {
    let text = body.text.trim();
    if text.is_empty() || text.len() > 10_000 {
        return Err(Error::unprocessable("invalid_note", "a note needs 1 to 10000 characters"));
    }
    let lead = read::visible_lead(&st.db, &user.viewer(), id).await?;
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    let a = NewActivity::new(lead.workspace_id, lead.lead_id, ActivityKind::Note, NoteData { text }).by(user.id);
    let data = a.data.clone();
    let activity = super::record(&mut work, a).await?;
    let now = work.now();
    work.commit(&st.hub).await?;
    let entry = TimelineEntry {
        id: activity,
        kind: ActivityKind::Note,
        member_id: Some(user.id),
        conversation_id: None,
        created_at: now,
        updated_at: now,
        data,
    };
    Ok((StatusCode::CREATED, Json(entry)))
}
