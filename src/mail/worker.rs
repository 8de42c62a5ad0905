//! The mail sender: claims due mails (safely across nodes), sends them through SMTP, and marks
//! them sent, or due again later with backoff, or failed for good.
//!
//! Delivery is at-least-once: a mail whose SMTP answer was lost (the node died after the
//! server took it) goes again once its claim expires.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tracing::instrument;
use uuid::Uuid;

use super::smtp::Smtp;
use super::{Mail, MailState};
use crate::db::Backend;
use crate::error::Result;
use crate::on_db;
use crate::state::AppState;

/// Give up after this many attempts of one mail (about a day of backoff).
pub const MAX_ATTEMPTS: i64 = 12;
/// A claim not finished within this time is taken over (the sender died).
const CLAIM_SECS: i64 = 120;
/// The longest wait between two tries.
const MAX_BACKOFF_SECS: f64 = 3600.0;

#[derive(sqlx::FromRow)]
struct Job {
    id: Uuid,
    to_addr: String,
    subject: String,
    body_text: String,
    body_html: String,
    attempts: i64,
}

const CLAIM_SQLITE: &str = "UPDATE mail_queue SET claimed_until = $1, attempts = attempts + 1 WHERE id = \
    (SELECT id FROM mail_queue WHERE state = $3 AND due_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2) \
     ORDER BY due_at LIMIT 1) \
    RETURNING id, to_addr, subject, body_text, body_html, attempts";
const CLAIM_PG: &str = "UPDATE mail_queue SET claimed_until = $1, attempts = attempts + 1 WHERE id = \
    (SELECT id FROM mail_queue WHERE state = $3 AND due_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2) \
     ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
    RETURNING id, to_addr, subject, body_text, body_html, attempts";

/// Whether any mail is due: a read, so an idle queue polls without writing.
const DUE: &str = "SELECT EXISTS (SELECT 1 FROM mail_queue WHERE state = $2 AND due_at <= $1 \
    AND (claimed_until IS NULL OR claimed_until < $1))";

async fn claim(st: &AppState) -> Result<Option<Job>> {
    let now = st.clock.now();
    // As the outbox does: on SQLite look first (a read) and queue for the write lock only when
    // there is something to claim; on PostgreSQL a claim that finds nothing writes nothing.
    let sql = match st.db.backend() {
        Backend::Sqlite => {
            let due: bool =
                on_db!(&st.db, |p| sqlx::query_scalar(DUE).bind(now).bind(MailState::Pending).fetch_one(p).await)?;
            if !due {
                return Ok(None);
            }
            CLAIM_SQLITE
        }
        Backend::Postgres => CLAIM_PG,
    };
    let _write = st.db.lock_writes().await;
    Ok(on_db!(&st.db, |p| sqlx::query_as(sql)
        .bind(now + chrono::Duration::seconds(CLAIM_SECS))
        .bind(now)
        .bind(MailState::Pending)
        .fetch_optional(p)
        .await)?)
}

/// Sends due mails until none is left, then waits for a wake-up, the next poll or shutdown.
pub async fn run(st: AppState, smtp: Smtp, wake: Arc<Notify>) {
    let mut shutdown = st.shutdown.clone();
    loop {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match claim(&st).await {
                Ok(Some(job)) => {
                    if let Err(e) = send(&st, &smtp, job).await {
                        tracing::error!(error = %e, "mail bookkeeping failed");
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "mail claim failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

#[instrument(skip_all, fields(mail = %job.id, attempt = job.attempts))]
async fn send(st: &AppState, smtp: &Smtp, job: Job) -> Result<()> {
    let mail = Mail { to: job.to_addr, subject: job.subject, text: job.body_text, html: job.body_html };
    match smtp.send(&mail).await {
        Ok(()) => {
            let now = st.clock.now();
            let _write = st.db.lock_writes().await;
            on_db!(&st.db, |p| sqlx::query(
                "UPDATE mail_queue SET state = $1, sent_at = $2, claimed_until = NULL, last_error = NULL WHERE id = $3"
            )
            .bind(MailState::Sent)
            .bind(now)
            .bind(job.id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
            tracing::info!(mail = %job.id, "mail sent");
        }
        Err(e) if e.transient && job.attempts < MAX_ATTEMPTS => {
            let after = backoff(job.attempts);
            tracing::warn!(reason = %e.reason, retry_in_secs = after.as_secs(), "mail not sent; retrying later");
            let due = st.clock.now() + chrono::Duration::from_std(after).unwrap_or_default();
            let _write = st.db.lock_writes().await;
            on_db!(&st.db, |p| sqlx::query(
                "UPDATE mail_queue SET due_at = $1, claimed_until = NULL, last_error = $2 WHERE id = $3"
            )
            .bind(due)
            .bind(&e.reason)
            .bind(job.id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        }
        Err(e) => {
            tracing::error!(reason = %e.reason, "mail failed for good");
            let _write = st.db.lock_writes().await;
            on_db!(&st.db, |p| sqlx::query(
                "UPDATE mail_queue SET state = $1, claimed_until = NULL, last_error = $2 WHERE id = $3"
            )
            .bind(MailState::Failed)
            .bind(&e.reason)
            .bind(job.id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        }
    }
    Ok(())
}

/// Exponential backoff with jitter: 1 s, 2 s, 4 s … capped at an hour.
fn backoff(attempts: i64) -> Duration {
    let base = 2f64.powi((attempts.clamp(1, 20) - 1) as i32).min(MAX_BACKOFF_SECS);
    Duration::from_secs_f64(base * rand::thread_rng().gen_range(0.8..1.2))
}
