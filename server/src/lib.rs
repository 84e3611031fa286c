//! hookd: a central hook service for MQTT brokers.
//!
//! Broker nodes hold one gRPC stream each to hookd and send hook calls on it;
//! hookd fans each call out to the HTTP webhooks registered for its hook
//! (speaking vmq_webhooks' JSON dialect), combines the answers with the
//! brokers' own chain semantics, and streams the verdict back.

#![forbid(unsafe_code)]

pub mod config;
pub mod hook;
pub mod verdict;

use std::future::Future;

use tokio::net::TcpListener;

pub use config::Config;

/// Why [`run`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Serves hookd on an already-bound `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let _ = (config, listener);
    shutdown.await;
    Ok(())
}
