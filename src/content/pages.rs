//! Pages sent to leads: each send makes a personal, unguessable link (`/p/{token}`, only the
//! token's SHA-256 is stored); opening it shows the page, and the first view per hour of a
//! lead and page writes a `content_viewed` activity on the lead's timeline and tells the
//! lead's assignee (`content.viewed`). A view reveals nothing but the page itself.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::Tx;
use crate::error::{Error, Result};
use crate::events::{Event, NewEvent, Work};
use crate::on_tx;
use crate::timeline::{self, NewActivity};
use crate::views::content::ContentViewedView;
use crate::views::timeline::ActivityKind;

/// Views closer together than this record once.
pub const VIEW_GAP: Duration = Duration::hours(1);

/// A fresh link token: 32 random bytes, hex.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Stores the link `token` to page `content_id` for lead `lead_id`, sent by `sent_by`.
pub async fn record_link(
    tx: &mut Tx,
    workspace_id: Uuid,
    content_id: Uuid,
    lead_id: Uuid,
    sent_by: Uuid,
    token: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO content_links (token, workspace_id, content_id, lead_id, sent_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)"
    )
    .bind(digest(token))
    .bind(workspace_id)
    .bind(content_id)
    .bind(lead_id)
    .bind(sent_by)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// What a lead sees at their link.
#[derive(Debug, Clone)]
pub struct OpenedPage {
    pub title: String,
    pub markdown: String,
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    workspace_id: Uuid,
    content_id: Uuid,
    lead_id: Uuid,
    title: String,
    body: Option<String>,
    assignee_id: Option<Uuid>,
}

/// Opens the page behind `token` (404 when there is none); records the view when it is the
/// first of the lead and page in the last hour.
pub async fn open(work: &mut Work, token: &str) -> Result<OpenedPage> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::not_found());
    }
    let row: LinkRow = on_tx!(work.tx(), |c| sqlx::query_as(
        "SELECT cl.workspace_id, cl.content_id, cl.lead_id, k.title, k.body, l.assignee_id FROM content_links cl \
         JOIN content k ON k.id = cl.content_id JOIN leads l ON l.id = cl.lead_id WHERE cl.token = $1"
    )
    .bind(digest(token))
    .fetch_optional(c)
    .await)?
    .ok_or_else(Error::not_found)?;
    let now = work.now();
    let recorded = on_tx!(work.tx(), |c| sqlx::query(
        "UPDATE content_links SET last_viewed_at = $1 WHERE content_id = $2 AND lead_id = $3 \
         AND NOT EXISTS (SELECT 1 FROM content_links x WHERE x.content_id = $2 AND x.lead_id = $3 \
         AND x.last_viewed_at > $4)"
    )
    .bind(now)
    .bind(row.content_id)
    .bind(row.lead_id)
    .bind(now - VIEW_GAP)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if recorded > 0 {
        let view = ContentViewedView {
            content_id: row.content_id,
            lead_id: row.lead_id,
            title: row.title.clone(),
            viewed_at: now,
        };
        timeline::record(work, NewActivity::new(row.workspace_id, row.lead_id, ActivityKind::ContentViewed, &view))
            .await?;
        if let Some(assignee) = row.assignee_id {
            let e = NewEvent::new(row.workspace_id, Event::ContentViewed(view)).to_user(assignee).lead(row.lead_id);
            work.emit(e);
        }
        tracing::info!(content_id = %row.content_id, lead_id = %row.lead_id, "page viewed");
    }
    Ok(OpenedPage { title: row.title, markdown: row.body.unwrap_or_default() })
}
