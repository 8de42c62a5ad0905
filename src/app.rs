//! `AppState`, the router, and serving with graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use crate::api::{API_PREFIX, Api};
use crate::auth::throttle::Throttle;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::error::Error;
use crate::events::Hub;
use crate::live::presence::Presence;
use crate::live::tail;
use crate::proxy::TrustedProxies;
use crate::secrets::Secrets;
pub use crate::state::{AppState, Shared};
use crate::views::workspace::{Health, HealthStatus};
use crate::webhook::journal::processor;
use crate::webhook::journal::writer::Journal;

/// Every `/api/v1` route.
pub fn api() -> Api {
    Api::new()
        .merge(crate::auth::http::routes())
        .merge(crate::live::ws::routes())
        .merge(crate::workspace::http::routes())
        .merge(crate::webhook::http::routes())
        .merge(crate::inbox::http::routes())
        .merge(crate::outbox::http::routes())
        .merge(crate::timeline::http::routes())
        .merge(crate::team::http::routes())
        .merge(crate::assignment::http::routes())
        .merge(crate::reports::http::routes())
        .merge(crate::audit::http::routes())
        .merge(crate::apikeys::http::routes())
        .merge(crate::intake::http::routes())
        .merge(crate::distribution::http::routes())
        .merge(crate::content::http::routes())
        .merge(crate::agency::http::routes())
        .merge(crate::openapi::routes())
        .merge(crate::media::http::routes())
}

/// (method, full path) of every `/api/v1` route, e.g. `("POST", "/api/v1/conversations/{id}/claim")`.
pub fn api_routes() -> Vec<(&'static str, String)> {
    api().list().iter().map(|(m, p)| (*m, format!("{API_PREFIX}{p}"))).collect()
}

pub fn router(state: AppState) -> Router {
    // `start_with` refused a bad list before serving.
    let trusted =
        Arc::new(TrustedProxies::parse(state.config.trusted_proxies.as_deref().unwrap_or("")).unwrap_or_default());
    Router::new()
        .route("/healthz", get(healthz))
        .nest(API_PREFIX, api().into_router())
        .merge(crate::webhook::http::receiver())
        .merge(crate::ui::routes())
        .merge(crate::content::http::public_routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::map_response(crate::ui::security_headers))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(axum::middleware::from_fn_with_state(trusted, behind_proxy))
}

/// Works out the client (see [`crate::proxy`]): forwarded headers from an untrusted peer are
/// removed before anything reads them; the request's log lines carry the client's address.
async fn behind_proxy(
    axum::extract::State(trusted): axum::extract::State<Arc<TrustedProxies>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let client = crate::proxy::resolve(peer, req.headers_mut(), &trusted);
    let span = tracing::info_span!("request", client = %client.ip);
    req.extensions_mut().insert(client);
    next.run(req).instrument(span).await
}

async fn healthz(axum::extract::State(st): axum::extract::State<AppState>) -> impl IntoResponse {
    if st.db.ping().await {
        (StatusCode::OK, axum::Json(Health { status: HealthStatus::Ok }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(Health { status: HealthStatus::Unavailable }))
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
    /// The metrics listener's address, when `SWITCHBOARD_METRICS_LISTEN` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    stop: watch::Sender<bool>,
    handle: JoinHandle<anyhow::Result<()>>,
    jobs: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests and acknowledged work finish, and waits.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let served = self.handle.await;
        // The journal writer ends once the last handle (held by the state) is gone.
        drop(self.state);
        for job in self.jobs {
            let _ = job.await;
        }
        served?
    }
}

/// Connects, migrates, binds and starts serving in the background.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let db = Db::connect(&config.db.database_url).await?;
    db.migrate().await?;
    let workspaces: i64 =
        crate::on_db!(&db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM workspaces").fetch_one(p).await)?;
    if workspaces == 0 {
        tracing::info!(
            "no workspace yet: create the first one and its admin with \
             `switchboard bootstrap --workspace NAME --email EMAIL --password PASSWORD` \
             (or `cargo run --release -- bootstrap ...`)"
        );
    }
    start_with(config, db, Clock::default()).await
}

/// Like [`start`] with a given database and clock (tests share them between nodes).
pub async fn start_with(config: Config, db: Db, clock: Clock) -> anyhow::Result<Running> {
    TrustedProxies::parse(config.trusted_proxies.as_deref().unwrap_or("")).map_err(anyhow::Error::msg)?;
    let secrets = Secrets::from_base64(config.secret_key.as_deref())?;
    crate::secrets::check_and_seal(&db, &secrets).await?;
    let metrics = match &config.metrics_listen {
        Some(at) => {
            let handle = crate::metrics::install().ok_or_else(|| {
                anyhow::anyhow!("SWITCHBOARD_METRICS_LISTEN: the metrics recorder could not be installed")
            })?;
            let listener = TcpListener::bind(at)
                .await
                .map_err(|e| anyhow::anyhow!("SWITCHBOARD_METRICS_LISTEN: cannot listen on {at}: {e}"))?;
            Some((listener, handle))
        }
        None => None,
    };
    let listener = TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let (stop, shutdown) = watch::channel(false);
    if config.app_secrets().is_empty() {
        tracing::warn!("WHATSAPP_APP_SECRET is not set: every webhook POST will be refused with 503");
    }
    let smtp = match &config.smtp_url {
        Some(url) => {
            let settings = crate::mail::smtp::Settings::parse(url).map_err(anyhow::Error::msg)?;
            let smtp = crate::mail::smtp::Smtp::new(&settings, &config.mail_from).map_err(anyhow::Error::msg)?;
            tracing::info!(host = %settings.host, port = settings.port, security = ?settings.security, "mail goes out through SMTP");
            Some(smtp)
        }
        None => {
            tracing::info!(
                "SWITCHBOARD_SMTP_URL is not set: no mail is sent (invitations are only answered to the inviter)"
            );
            None
        }
    };
    let store = crate::media::store::Store::new(&config.data_dir);
    store.ensure().await.map_err(|e| anyhow::anyhow!("SWITCHBOARD_DATA_DIR {}: {e}", config.data_dir.display()))?;
    let (journal, writer) = Journal::start(db.clone());
    let graph = crate::outbox::graph::Graph::new(&config.graph_url, &config.graph_version);
    let wake = journal.wake.clone();
    let (tail_tx, tail_rx) = tail::init(&db).await?;
    let state = AppState(Arc::new(Shared {
        db,
        config: Arc::new(config),
        clock,
        hub: Hub::default(),
        throttle: Arc::new(Throttle::default()),
        graph,
        throughput: Arc::default(),
        outbox_wake: Arc::default(),
        secrets,
        mail_wake: Arc::default(),
        tail: tail_rx,
        bells: Arc::default(),
        presence: Arc::new(Presence::default()),
        shutdown,
        journal,
    }));
    let mut jobs = vec![
        writer,
        spawn_processor(&state, wake),
        tokio::spawn(processor::run_retention(state.clone())),
        tokio::spawn(crate::outbox::worker::run(state.clone(), state.outbox_wake.clone())),
        tokio::spawn(crate::inbox::jobs::run_health(state.clone())),
        tokio::spawn(crate::distribution::worker::run(state.clone())),
        tokio::spawn(state.db.clone().checkpoints(state.shutdown.clone())),
        tokio::spawn(state.db.clone().statistics(state.shutdown.clone())),
        tokio::spawn(move_cached_media(state.db.clone(), store)),
    ];
    if let Some(smtp) = smtp {
        jobs.push(tokio::spawn(crate::mail::worker::run(state.clone(), smtp, state.mail_wake.clone())));
    }
    spawn_live(&state, tail_tx);
    let mut metrics_addr = None;
    if let Some((listener, handle)) = metrics {
        let at = listener.local_addr()?;
        metrics_addr = Some(at);
        let app = crate::metrics::http::router(state.clone(), handle);
        let mut signal = state.shutdown.clone();
        jobs.push(tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = signal.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        }));
        tracing::info!("metrics on http://{at}/metrics");
    }
    let app = router(state.clone());
    let mut signal = state.shutdown.clone();
    let handle = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            })
            .await?;
        Ok(())
    });
    tracing::info!("listening on http://{addr}");
    Ok(Running { addr, metrics_addr, state, stop, handle, jobs })
}

/// The webhook processor. It gets its own thread and single-threaded runtime: it
/// awaits the database once per statement, and on the shared workers each of those awaits
/// resumed behind thousands of socket tasks (with 2,000 agents connected, processing fell
/// seconds behind at 500 messages/s with a quarter of the CPU idle). SQLite connections are
/// served by their own threads, so any runtime may use them. A PostgreSQL connection is
/// driven by the runtime that opened it, so on PostgreSQL the processor opens a small pool of
/// its own on its thread.
/// Moves inbound media that earlier versions kept in the database to the media store.
async fn move_cached_media(db: Db, store: crate::media::store::Store) {
    match crate::media::move_all_cached(&db, &store).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(moved = n, "cached media moved from the database to SWITCHBOARD_DATA_DIR"),
        Err(e) => tracing::error!(error = %e, "moving cached media to SWITCHBOARD_DATA_DIR failed"),
    }
}

fn spawn_processor(st: &AppState, wake: Arc<tokio::sync::Notify>) -> JoinHandle<()> {
    match st.db {
        Db::Sqlite(_) => spawn_dedicated("sb-processor", processor::run_processor(st.clone(), wake)),
        Db::Postgres(_) => {
            let st = st.clone();
            spawn_dedicated("sb-processor", async move {
                // Connections opened here are driven by this thread's runtime.
                match Db::connect_sized(&st.config.db.database_url, PROCESSOR_CONNECTIONS).await {
                    Ok(db) => {
                        let st = st.with_db(db.clone());
                        let mut processors = tokio::task::JoinSet::new();
                        for _ in 0..PG_PROCESSORS {
                            processors.spawn(processor::run_processor(st.clone(), wake.clone()));
                        }
                        processors.join_all().await;
                        db.close().await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the webhook processor could not open its own connections; it uses the shared pool");
                        processor::run_processor(st, wake).await;
                    }
                }
            })
        }
    }
}

/// Processing transactions in flight at once on PostgreSQL. One processor spends most of its
/// time waiting for the database to answer statement after statement; a second one works
/// meanwhile. They take different journal rows (`SKIP LOCKED`) and lock the chats they work
/// on first (`ingest::contact_keys`). SQLite has one writer, hence one processor.
const PG_PROCESSORS: u32 = 2;

/// The PostgreSQL processors' own pool: a transaction each, and a spare for a lookup outside.
const PROCESSOR_CONNECTIONS: u32 = PG_PROCESSORS + 1;

/// Runs `job` on a thread of its own with a single-threaded runtime; the handle resolves when
/// it ends.
fn spawn_dedicated(name: &str, job: impl std::future::Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(job),
            Err(e) => tracing::error!(error = %e, "could not start a runtime for a background job"),
        }
        let _ = done_tx.send(());
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start a thread for a background job");
    }
    tokio::spawn(async move {
        let _ = done_rx.await;
    })
}

/// The live tasks: the tail reader, pruning, the presence writer, and on PostgreSQL the LISTEN that hears other
/// nodes and the presence sync that shares sockets with them.
fn spawn_live(st: &AppState, tail_tx: watch::Sender<Arc<tail::Tail>>) {
    tokio::spawn(tail::run(st.db.clone(), st.hub.clone(), tail_tx, st.bells.clone(), st.shutdown.clone()));
    tokio::spawn(tail::prune(st.db.clone(), st.clock.clone(), st.shutdown.clone()));
    tokio::spawn(crate::live::presence_writer::run(
        st.db.clone(),
        st.clock.clone(),
        st.hub.clone(),
        st.presence.clone(),
        st.shutdown.clone(),
    ));
    if let Db::Postgres(pool) = &st.db {
        tokio::spawn(tail::listen(pool.clone(), st.hub.clone(), st.shutdown.clone()));
        tokio::spawn(crate::live::presence_sync::run(
            st.db.clone(),
            st.clock.clone(),
            st.presence.clone(),
            st.shutdown.clone(),
        ));
    }
}

/// `switchboard serve`: runs until SIGTERM or SIGINT, then drains within 15 seconds.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    // Listen for the signals before binding: a SIGTERM sent as soon as the address is logged
    // must drain the server, not kill it.
    let signal = wait_for_signal()?;
    let running = start(config).await?;
    signal.await;
    tracing::info!("shutting down");
    match tokio::time::timeout(Duration::from_secs(15), running.shutdown()).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!("shutdown took longer than 15 s; exiting"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Installs the SIGINT and SIGTERM handlers now; the future ends at the first of them.
fn wait_for_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            term.recv().await;
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    })
}
