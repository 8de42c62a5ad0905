//! Prometheus metrics. One recorder per process, installed when `SWITCHBOARD_METRICS_LISTEN`
//! is set and rendered at `/metrics` on that listener only (never the public one). Counters
//! and histograms are recorded where things happen (`metrics::counter!` and friends are no-ops
//! until the recorder is installed); backlog gauges are read from the database at each scrape,
//! so they cost nothing between scrapes and are never stale.

pub mod http;

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::Db;
use crate::on_db;

pub const HTTP_REQUESTS: &str = "switchboard_http_requests_total";
pub const HTTP_DURATION: &str = "switchboard_http_request_duration_seconds";
pub const WEBHOOKS_RECEIVED: &str = "switchboard_webhooks_received_total";
pub const JOURNAL_PENDING: &str = "switchboard_webhook_journal_pending";
pub const JOURNAL_OLDEST: &str = "switchboard_webhook_journal_oldest_pending_seconds";
pub const OUTBOX_PENDING: &str = "switchboard_outbox_pending";
pub const OUTBOX_OLDEST: &str = "switchboard_outbox_oldest_pending_seconds";
pub const LIVE_CONNECTIONS: &str = "switchboard_live_connections";
pub const LIVE_LAG: &str = "switchboard_live_delivery_lag_seconds";
pub const POOL_CONNECTIONS: &str = "switchboard_db_pool_connections";
pub const POOL_IDLE: &str = "switchboard_db_pool_idle";
pub const POOL_MAX: &str = "switchboard_db_pool_max";
pub const POOL_ACQUIRE: &str = "switchboard_db_pool_acquire_seconds";

/// Seconds: from a fast API answer to a slow live delivery.
const BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same handle). `None` when
/// another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: another recorder is installed; /metrics stays empty");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route template and status");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "Time to answer an HTTP request, by route template");
    describe_counter!(WEBHOOKS_RECEIVED, "Webhook POSTs journaled (acknowledged to Meta)");
    describe_gauge!(JOURNAL_PENDING, "Webhooks journaled and not processed yet");
    describe_gauge!(JOURNAL_OLDEST, Unit::Seconds, "Age of the oldest webhook not processed yet (0: none)");
    describe_gauge!(OUTBOX_PENDING, "Messages and read receipts waiting to be sent to the Graph API");
    describe_gauge!(OUTBOX_OLDEST, Unit::Seconds, "Age of the oldest outbox row waiting (0: none)");
    describe_gauge!(LIVE_CONNECTIONS, "Open live websockets on this node");
    describe_histogram!(LIVE_LAG, Unit::Seconds, "From an event's commit to its frame sent on a socket");
    describe_gauge!(POOL_CONNECTIONS, "Open connections of the shared database pool");
    describe_gauge!(POOL_IDLE, "Idle connections of the shared database pool");
    describe_gauge!(POOL_MAX, "Most connections the shared database pool opens");
    describe_histogram!(POOL_ACQUIRE, Unit::Seconds, "Time spent waiting for a pooled connection at each scrape");
}

/// Middleware: counts each answer by its route template (`/api/v1/conversations/{id}`, never
/// the raw path; `unmatched` for the fallback) and status, and times it.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::histogram!(HTTP_DURATION, "route" => route.clone()).record(started.elapsed().as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "route" => route, "status" => status).increment(1);
    res
}

/// A webhook POST was journaled.
pub fn webhook_received() {
    metrics::counter!(WEBHOOKS_RECEIVED).increment(1);
}

/// A live frame went out `lag_secs` after its event was committed.
pub fn delivered(lag_secs: f64) {
    metrics::histogram!(LIVE_LAG).record(lag_secs.max(0.0));
}

/// The backlogs, read at a scrape.
#[derive(Debug, Default)]
pub struct Backlog {
    pub journal_pending: i64,
    pub journal_oldest: Option<DateTime<Utc>>,
    pub outbox_pending: i64,
    pub outbox_oldest: Option<DateTime<Utc>>,
}

/// Webhooks pending: the journal's pending rows plus arrivals not unpacked yet.
const JOURNAL: &str = "SELECT \
    (SELECT COUNT(*) FROM webhook_events WHERE state = 'pending') \
    + (SELECT COALESCE(CAST(SUM(webhooks) AS BIGINT), 0) FROM webhook_arrivals)";
const JOURNAL_OLDEST_SQL: &str = "SELECT MIN(received_at) FROM (\
    SELECT MIN(received_at) AS received_at FROM webhook_events WHERE state = 'pending' \
    UNION ALL SELECT MIN(received_at) FROM webhook_arrivals) AS oldest";
const OUTBOX: &str = "SELECT COUNT(*) FROM outbox WHERE state = 'pending'";
const OUTBOX_OLDEST_SQL: &str = "SELECT MIN(created_at) FROM outbox WHERE state = 'pending'";

pub async fn backlog(db: &Db) -> sqlx::Result<Backlog> {
    Ok(Backlog {
        journal_pending: on_db!(db, |p| sqlx::query_scalar(JOURNAL).fetch_one(p).await)?,
        journal_oldest: on_db!(db, |p| sqlx::query_scalar(JOURNAL_OLDEST_SQL).fetch_one(p).await)?,
        outbox_pending: on_db!(db, |p| sqlx::query_scalar(OUTBOX).fetch_one(p).await)?,
        outbox_oldest: on_db!(db, |p| sqlx::query_scalar(OUTBOX_OLDEST_SQL).fetch_one(p).await)?,
    })
}

/// Sets the gauges read at a scrape.
pub fn record_gauges(backlog: &Backlog, now: DateTime<Utc>, sockets: usize, db: &Db) {
    let age = |t: Option<DateTime<Utc>>| t.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
    metrics::gauge!(JOURNAL_PENDING).set(backlog.journal_pending as f64);
    metrics::gauge!(JOURNAL_OLDEST).set(age(backlog.journal_oldest));
    metrics::gauge!(OUTBOX_PENDING).set(backlog.outbox_pending as f64);
    metrics::gauge!(OUTBOX_OLDEST).set(age(backlog.outbox_oldest));
    metrics::gauge!(LIVE_CONNECTIONS).set(sockets as f64);
    let (size, idle, max) = match db {
        Db::Sqlite(s) => (s.pool.size(), s.pool.num_idle(), s.pool.options().get_max_connections()),
        Db::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
    };
    metrics::gauge!(POOL_CONNECTIONS).set(f64::from(size));
    metrics::gauge!(POOL_IDLE).set(idle as f64);
    metrics::gauge!(POOL_MAX).set(f64::from(max));
}

/// Times one acquire from the shared pool (how long a request would wait for a connection now).
pub async fn probe_acquire(db: &Db) {
    let started = Instant::now();
    let ok = match db {
        Db::Sqlite(s) => s.pool.acquire().await.is_ok(),
        Db::Postgres(p) => p.acquire().await.is_ok(),
    };
    if ok {
        metrics::histogram!(POOL_ACQUIRE).record(started.elapsed().as_secs_f64());
    }
}
