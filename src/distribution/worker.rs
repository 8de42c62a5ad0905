//! Leads that waited for an account: every few seconds, each node looks for active accounts
//! whose email has app deliveries waiting (`distribution_pending`) and delivers them. This
//! covers every way an account comes to be — an invitation accepted (which also delivers at
//! once), `switchboard bootstrap`, a new workspace, a reactivated member — without each
//! path having to know about distribution. Claims are safe across nodes
//! ([`super::deliver_waiting`] deletes each waiting row before delivering it).

use std::time::Duration;

use tracing::instrument;

use crate::error::Result;
use crate::events::Work;
use crate::state::AppState;

/// How often a node looks.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Accounts served per look.
const PER_SWEEP: i64 = 20;

/// Sweeps until shutdown.
pub async fn run(st: AppState) {
    let mut shutdown = st.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = sweep(&st).await {
            if e.is_transient() {
                tracing::debug!(error = %e, "waiting leads: sweep lost a race; trying again later");
            } else {
                tracing::error!(error = %e, "waiting leads: sweep failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Delivers what waited for the accounts found; returns how many leads.
#[instrument(skip_all)]
pub async fn sweep(st: &AppState) -> Result<usize> {
    let mut delivered = 0;
    for (user, workspace_id, email) in super::awaited_accounts(&st.db, PER_SWEEP).await? {
        let mut work = Work::begin(&st.db, st.clock.now()).await?;
        delivered += super::deliver_waiting(&mut work, user, workspace_id, &email).await?;
        work.commit(&st.hub).await?;
    }
    Ok(delivered)
}
