//! The metrics listener (`metrics.listen`): `GET /metrics` in the
//! Prometheus text format, under the same kind of bounds as the gRPC
//! listener, since anyone who can reach it can hold connections on it.
//!
//! A scraper makes a request every few seconds on one keep-alive connection,
//! so a connection that has sent no complete request head for
//! `server.handshake_timeout_ms` (a fresh one, or one idle between
//! requests) is closed; at most [`MAX_CONNECTIONS`] are open at once, one
//! past that is closed as it is accepted; accept errors back off as on the
//! gRPC listener ([`crate::accept`]). When hookd has stopped serving, every
//! connection is dropped with the server rather than waited for: no scraper,
//! idle or frozen, keeps hookd from exiting or its port bound.

use std::{future::Future, sync::Arc, time::Duration};

use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet};
use tracing::debug;

use crate::{accept::Acceptor, metrics::Metrics};

/// Connections open at once on the metrics listener: a few scrapers and
/// curious operators, never thousands.
pub const MAX_CONNECTIONS: usize = 64;

/// Serves `GET /metrics` on `listener` until `shutdown` completes, then
/// drops every connection. A connection that sends no request head for
/// `idle_timeout` is closed.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    idle_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let app = TowerToHyperService::new(router(Arc::clone(&metrics)));
    let mut acceptor = Acceptor::new(listener, metrics.accept_errors.clone());
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Owned here, so dropping this future closes every connection.
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            Some(_) = connections.join_next() => {}
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
fn router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new().route(
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
}
