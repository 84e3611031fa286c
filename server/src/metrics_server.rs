//! The metrics listener (`metrics.listen`), hookd's HTTP side:
//! - `GET /metrics`: the Prometheus text format ([`crate::metrics`]);
//! - `GET /healthz`: 200 while the process serves HTTP at all (liveness);
//! - `GET /readyz`: 200 once the listeners are up and the outbox is open,
//!   503 with the reason before that and from the start of shutdown
//!   (readiness: take this hookd out of a load balancer);
//! - `GET /`: the status page ([`crate::status`]).
//!
//! It runs under the same kind of bounds as the gRPC listener, since anyone
//! who can reach it can hold connections on it.
//!
//! A scraper makes a request every few seconds on one keep-alive connection,
//! so a connection that has sent no complete request head for
//! `server.handshake_timeout_ms` (a fresh one, or one idle between
//! requests) is closed; at most [`MAX_CONNECTIONS`] are open at once, one
//! past that is closed as it is accepted; accept errors back off as on the
//! gRPC listener ([`crate::accept`]). When hookd has stopped serving, every
//! connection is dropped with the server rather than waited for: no scraper,
//! idle or frozen, keeps hookd from exiting or its port bound.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::response::{Html, IntoResponse};
use http::StatusCode;
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet};
use tracing::debug;

use crate::{
    accept::Acceptor,
    dispatch::Dispatcher,
    shutdown::Shutdown,
    status::{self, Readiness, Window},
};

/// What the HTTP side reads: hookd's figures and the state behind them.
/// Cheap to clone.
#[derive(Clone)]
pub struct Sources {
    /// The dispatcher: registry, cache, outbox, brokers and metrics.
    pub dispatcher: Arc<Dispatcher>,
    /// Whether hookd is stopping.
    pub shutdown: Shutdown,
    /// Set once every listener is up (gRPC, admin).
    pub listening: Arc<AtomicBool>,
    /// When hookd started.
    pub started: Instant,
}

impl Sources {
    /// Whether hookd should be sent brokers now, and if not why.
    pub fn readiness(&self) -> Readiness {
        let (ready, reason) = if self.shutdown.is_draining() {
            (false, "shutting down")
        } else if !self.listening.load(Ordering::Acquire) {
            (false, "starting: listeners not up yet")
        } else if !self.dispatcher.outbox().is_open() {
            (false, "the outbox is closed")
        } else {
            (true, "ready")
        };
        Readiness { ready, reason }
    }
}

/// Connections open at once on the metrics listener: a few scrapers and
/// curious operators, never thousands.
pub const MAX_CONNECTIONS: usize = 64;

/// Serves the routes (see the module docs) on `listener` until `shutdown`
/// completes, then drops every connection. A connection that sends no
/// request head for `idle_timeout` is closed.
pub async fn serve(
    listener: TcpListener,
    sources: Sources,
    idle_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let metrics = Arc::clone(sources.dispatcher.metrics());
    let window = Arc::new(Window::new(&sources.dispatcher));
    let app = TowerToHyperService::new(router(sources.clone(), Arc::clone(&window)));
    let mut samples = tokio::time::interval(status::SAMPLE_EVERY);
    samples.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut acceptor = Acceptor::new(listener, metrics.accept_errors.clone());
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Owned here, so dropping this future closes every connection.
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            Some(_) = connections.join_next() => {}
            _ = samples.tick() => window.sample(&sources.dispatcher),
            stream = acceptor.accept() => {
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    debug!(max = MAX_CONNECTIONS, "metrics connection closed as accepted: too many open");
                    metrics.connections_refused.inc();
                    continue;
                };
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(idle_timeout)
                    .serve_connection(TokioIo::new(stream), app.clone());
                connections.spawn(async move {
                    if let Err(e) = connection.await {
                        debug!(error = %e, "metrics connection ended");
                    }
                    drop(slot);
                });
            }
        }
    }
}

/// The listener's routes.
fn router(sources: Sources, window: Arc<Window>) -> axum::Router {
    let metrics = Arc::clone(sources.dispatcher.metrics());
    let ready = sources.clone();
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = Arc::clone(&metrics);
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "alive\n" }))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let readiness = ready.readiness();
                async move {
                    let status = if readiness.ready {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (status, format!("{}\n", readiness.reason))
                }
            }),
        )
        .route(
            "/",
            axum::routing::get(move || {
                let page = status::render(
                    &sources.dispatcher,
                    &window,
                    &sources.readiness(),
                    sources.started,
                );
                async move { Html(page).into_response() }
            }),
        )
}
