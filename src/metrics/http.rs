//! The metrics listener: `GET /metrics` (Prometheus text) on `SWITCHBOARD_METRICS_LISTEN`,
//! an address of its own, so the public listener never exposes it.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tracing::instrument;

use crate::state::AppState;

#[derive(Clone)]
struct Scrape {
    st: AppState,
    handle: PrometheusHandle,
}

pub fn router(st: AppState, handle: PrometheusHandle) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(Scrape { st, handle })
}

/// `GET /metrics`: reads the backlogs, then renders every metric of this process.
#[instrument(skip_all)]
async fn metrics(State(s): State<Scrape>) -> Response {
    super::probe_acquire(&s.st.db).await;
    match super::backlog(&s.st.db).await {
        Ok(backlog) => super::record_gauges(&backlog, s.st.clock.now(), s.st.presence.sockets(), &s.st.db),
        Err(e) => tracing::warn!(error = %e, "metrics: reading the backlogs failed"),
    }
    s.handle.run_upkeep();
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.handle.render()).into_response()
}
