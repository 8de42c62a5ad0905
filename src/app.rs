//! `AppState`, the router, and serving with graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::throttle::Throttle;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::live::Hub;
use crate::live::presence::Presence;
use crate::live::tail::{self, TailRx};

/// Everything a handler or job needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub hub: Hub,
    pub throttle: Arc<Throttle>,
    /// The newest events of the log, re-read by one task per node after each wake-up.
    pub tail: TailRx,
    /// Live sockets and declared status per member (this node).
    pub presence: Arc<Presence>,
    /// Flips to true when the server is shutting down; background jobs watch it.
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// Commits a transaction that appended events, then wakes the live readers.
    pub async fn commit(&self, tx: Tx) -> Result<()> {
        tx.commit().await?;
        self.hub.bump();
        Ok(())
    }
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/login", post(crate::auth::login))
        .route("/auth/logout", post(crate::auth::logout))
        .route("/auth/me", get(crate::auth::me))
        .route("/live", get(crate::live::ws::upgrade))
        .route("/workspace", get(crate::workspace::get).patch(crate::workspace::patch))
        .merge(crate::inbox::routes());
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/v1", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn healthz(axum::extract::State(st): axum::extract::State<AppState>) -> impl IntoResponse {
    if st.db.ping().await {
        (StatusCode::OK, axum::Json(json!({"status": "ok"})))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "unavailable"})))
    }
}

async fn not_found() -> Error {
    Error::not_found()
}

async fn method_not_allowed() -> impl IntoResponse {
    let mut r =
        Error::client(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed").into_response();
    r.headers_mut().remove(header::ALLOW);
    r
}

/// A server running in this process.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: watch::Sender<bool>,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests and acknowledged work finish, and waits.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.handle.await?
    }
}

/// Connects, migrates, binds and starts serving in the background.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let db = Db::connect(&config.db.database_url).await?;
    db.migrate().await?;
    start_with(config, db, Clock::default()).await
}

/// Like [`start`] with a given database and clock (tests share them between nodes).
pub async fn start_with(config: Config, db: Db, clock: Clock) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let (stop, shutdown) = watch::channel(false);
    if config.app_secrets().is_empty() {
        tracing::warn!("WHATSAPP_APP_SECRET is not set: every webhook POST will be refused with 503");
    }
    let (tail_tx, tail_rx) = tail::init(&db).await?;
    let state = AppState {
        db,
        config: Arc::new(config),
        clock,
        hub: Hub::default(),
        throttle: Arc::new(Throttle::default()),
        tail: tail_rx,
        presence: Arc::new(Presence::default()),
        shutdown,
    };
    spawn_live(&state, tail_tx);
    let app = router(state.clone());
    let mut signal = state.shutdown.clone();
    let handle = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            })
            .await?;
        Ok(())
    });
    tracing::info!("listening on http://{addr}");
    Ok(Running { addr, state, stop, handle })
}

/// The live tasks: the tail reader, pruning, the presence writer, and on PostgreSQL the LISTEN that hears other nodes.
fn spawn_live(st: &AppState, tail_tx: watch::Sender<Arc<tail::Tail>>) {
    tokio::spawn(tail::run(st.db.clone(), st.hub.clone(), tail_tx, st.shutdown.clone()));
    tokio::spawn(tail::prune(st.db.clone(), st.clock.clone(), st.shutdown.clone()));
    tokio::spawn(crate::live::presence::writer(st.clone()));
    if let Db::Postgres(pool) = &st.db {
        tokio::spawn(tail::listen(pool.clone(), st.hub.clone(), st.shutdown.clone()));
    }
}

/// `switchboard serve`: runs until SIGTERM or SIGINT, then drains within 15 seconds.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let running = start(config).await?;
    wait_for_signal().await;
    tracing::info!("shutting down");
    match tokio::time::timeout(Duration::from_secs(15), running.shutdown()).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!("shutdown took longer than 15 s; exiting"),
    }
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
