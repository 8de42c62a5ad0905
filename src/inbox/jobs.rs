//! The number health reader: reads each connected number's health (quality rating, messaging
//! limit, status) from the Graph API's phone-number fields when it is due — on connect, after
//! every health webhook (today's quality webhooks carry the event only), and daily — and stores
//! it through [`numbers::set_health`] (`number.updated` when something changed). Safe on many
//! nodes: each read is claimed first.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::instrument;
use uuid::Uuid;

use crate::error::Result;
use crate::events::Work;
use crate::inbox::numbers::{self, HEALTH_FIELDS, HEALTH_FIELDS_OLD, HEALTH_READ_EVERY, HEALTH_READ_RETRY};
use crate::state::AppState;

/// How often the reader looks for due reads.
const POLL: Duration = Duration::from_secs(1);
/// A claimed read not finished within this time is due again (the reader died).
const CLAIM_SECS: i64 = 120;
/// Reads per pass.
const BATCH: i64 = 16;

/// Reads due numbers' health until shutdown.
pub async fn run_health(st: AppState) {
    let mut shutdown = st.shutdown.clone();
    loop {
        if let Err(e) = read_due(&st).await {
            tracing::warn!(error = %e, "number health reads failed; trying again");
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

async fn read_due(st: &AppState) -> Result<()> {
    let now = st.clock.now();
    for id in numbers::health_due(&st.db, now, BATCH).await? {
        let lease = now + chrono::Duration::seconds(CLAIM_SECS);
        if numbers::claim_health_read(&st.db, id, now, lease).await? {
            read_one(st, id, lease).await?;
        }
    }
    Ok(())
}

/// One claimed read: the Graph API call, then what it says stored with its event.
#[instrument(skip_all, fields(number_id = %id))]
async fn read_one(st: &AppState, id: Uuid, lease: DateTime<Utc>) -> Result<()> {
    let n = numbers::load_by_id(&st.db, id).await?;
    let token = st.secrets.open(&numbers::access_token(&st.db, id).await?)?;
    let read = st.graph.phone_number(&n.phone_number_id, &token, HEALTH_FIELDS, HEALTH_FIELDS_OLD).await;
    let now = st.clock.now();
    let mut work = Work::begin(&st.db, now).await?;
    match read {
        Ok(fields) => {
            let n = numbers::load_in(work.tx(), id).await?;
            let health = numbers::health_from_graph(&fields, &n);
            numbers::set_health(&mut work, &n, &health).await?;
            numbers::health_read_done(work.tx(), id, lease, now + HEALTH_READ_EVERY).await?;
            tracing::debug!(quality = ?health.quality_rating, tier = ?health.messaging_limit_tier, "number health read");
        }
        Err(e) => {
            tracing::warn!(error = ?e, "number health read from the Graph API failed; trying again later");
            numbers::health_read_done(work.tx(), id, lease, now + HEALTH_READ_RETRY).await?;
        }
    }
    work.commit(&st.hub).await?;
    Ok(())
}
