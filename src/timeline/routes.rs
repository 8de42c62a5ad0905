//! `GET /api/v1/leads/{id}/timeline` and `POST /api/v1/leads/{id}/notes`.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::db::page_limit;
use crate::error::{Error, Result};
use crate::extract::{Json, Path, Query};
use crate::inbox::{leads, parse_id};
use crate::policy::CONV_VISIBLE;
use crate::state::AppState;
use crate::{bind_viewer, on_db};

/// Activity types a timeline can be filtered by.
pub const TYPES: &[&str] = &[
    "whatsapp_session",
    "lead_created",
    "assigned",
    "claimed",
    "status_changed",
    "label_added",
    "label_removed",
    "note",
    "message_sent",
    "access_granted",
    "access_revoked",
];

#[derive(Debug, sqlx::FromRow)]
struct ActivityRow {
    seq: i64,
    id: Uuid,
    conversation_id: Option<Uuid>,
    #[sqlx(rename = "type")]
    kind: String,
    member_id: Option<Uuid>,
    data: sqlx::types::Json<Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ActivityRow {
    fn to_json(&self, now: DateTime<Utc>) -> Value {
        let mut data = self.data.0.clone();
        if self.kind == super::sessions::KIND
            && let (Some(end), Some(gap)) =
                (data["ended_at"].as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok()), data["gap_secs"].as_i64())
        {
            data["open"] = json!((now - end).num_seconds() <= gap);
        }
        json!({"id": self.id, "type": self.kind, "member_id": self.member_id, "conversation_id": self.conversation_id,
               "created_at": self.created_at, "updated_at": self.updated_at, "data": data})
    }
}

#[derive(Deserialize)]
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

fn parse_time(v: &str, what: &str) -> Result<DateTime<Utc>> {
    v.trim().parse().map_err(|_| Error::bad_request("invalid_filter", format!("{what} must be an RFC 3339 time")))
}

static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT a.seq, a.id, a.conversation_id, a.type, a.member_id, a.data, a.created_at, a.updated_at FROM activities a \
         WHERE a.lead_id = $6 \
         AND (a.conversation_id IS NULL OR EXISTS (SELECT 1 FROM conversations c WHERE c.id = a.conversation_id AND {})) \
         AND ($7 IS NULL OR a.type = $7) AND ($8 IS NULL OR a.member_id = $8) \
         AND ($9 IS NULL OR a.created_at >= $9) AND ($10 IS NULL OR a.created_at < $10) \
         AND ($11 IS NULL OR a.created_at < $11 OR (a.created_at = $11 AND a.seq < $12)) \
         ORDER BY a.created_at DESC, a.seq DESC LIMIT $13",
        *CONV_VISIBLE
    )
});

#[instrument(skip_all)]
pub async fn timeline(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Query(q): Query<TimelineQuery>,
) -> Result<Json<Value>> {
    let limit = page_limit(q.limit)?;
    let kind = match q.kind.as_deref() {
        None => None,
        Some(k) if TYPES.contains(&k) => Some(k.to_owned()),
        Some(_) => {
            return Err(Error::bad_request("invalid_filter", format!("type must be one of {}", TYPES.join(", "))));
        }
    };
    let member = q.member_id.as_deref().map(|m| parse_id(m, "member_id")).transpose()?;
    let from = q.from.as_deref().map(|f| parse_time(f, "from")).transpose()?;
    let to = q.to.as_deref().map(|t| parse_time(t, "to")).transpose()?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let v = user.viewer();
    let lead = leads::get_visible(&st.db, &v, id).await?;
    let mut rows: Vec<ActivityRow> = on_db!(&st.db, |p| bind_viewer!(sqlx::query_as(LIST.as_str()), v)
        .bind(lead.id)
        .bind(&kind)
        .bind(member)
        .bind(from)
        .bind(to)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit + 1)
        .fetch_all(p)
        .await)?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|a| format!("{}.{}", a.created_at.timestamp_micros(), a.seq))
    } else {
        None
    };
    let now = st.clock.now();
    Ok(Json(json!({"activities": rows.iter().map(|a| a.to_json(now)).collect::<Vec<_>>(), "next_cursor": next})))
}

fn decode_cursor(s: &str) -> Result<(DateTime<Utc>, i64)> {
    let bad = || Error::bad_request("invalid_cursor", "cursor is not one this server issued");
    let (micros, seq) = s.split_once('.').ok_or_else(bad)?;
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((at, seq.parse().map_err(|_| bad())?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    text: String,
}

#[instrument(skip_all)]
pub async fn add_note(
    State(st): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<NewNote>,
) -> Result<(StatusCode, Json<Value>)> {
    let text = body.text.trim();
    if text.is_empty() || text.len() > 10_000 {
        return Err(Error::unprocessable("invalid_note", "a note needs 1 to 10000 characters"));
    }
    let lead = leads::get_visible(&st.db, &user.viewer(), id).await?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let data = json!({"text": text});
    let activity =
        super::record(&mut tx, now, lead.workspace_id, lead.id, None, "note", Some(user.id), data.clone()).await?;
    st.commit(tx).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": activity, "type": "note", "member_id": user.id, "conversation_id": null,
                    "created_at": now, "updated_at": now, "data": data})),
    ))
}
