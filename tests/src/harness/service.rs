//! Runs the real hookd in-process: `hookd::run` on a listener bound to
//! `127.0.0.1:0`, with a oneshot as its shutdown signal.
//!
//! [`Hookd`] hands out gRPC channels, unary clients and broker sessions to it,
//! and stops it when dropped or with [`Hookd::stop`]. [`Hookd::start_with_registry`]
//! builds it with `hookd::Hookd::new(..).serve(..)` instead (what `run` does), to
//! keep the endpoint registry for registering webhooks while it runs, and its
//! metrics; [`Hookd::start_sharded`] serves it as the binary does, on shard
//! threads of its own.

use std::{future::Future, net::SocketAddr, sync::Arc};

use hookd::{Config, RunError, config::WebhookConfig, metrics::Metrics, registry::Registry};
use hookd_proto::v1::hook_service_client::HookServiceClient;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

use super::{Scratch, broker::Broker, within};

/// A running hookd.
pub struct Hookd {
    addr: SocketAddr,
    /// Its outbox store's directory, unless the test chose the store.
    _scratch: Option<Scratch>,
    registry: Option<Arc<Registry>>,
    metrics: Option<Arc<Metrics>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RunError>>>,
}

/// Gives `config` a scratch outbox store (unless it names one already) and an
/// admin listener on port 0; returns the scratch directory to keep.
pub fn isolate(config: &mut Config) -> Option<Scratch> {
    config.admin.listen = "127.0.0.1:0".parse().expect("a socket address");
    if config.outbox.path != hookd::config::OutboxConfig::default().path {
        return None;
    }
    let scratch = Scratch::new();
    config.outbox.path = scratch.store();
    Some(scratch)
}

/// hookd's default configuration with these webhooks, in this (chain) order.
pub fn config(webhooks: impl IntoIterator<Item = WebhookConfig>) -> Config {
    Config {
        webhooks: webhooks.into_iter().collect(),
        ..Config::default()
    }
}

impl Hookd {
    /// Binds `127.0.0.1:0` and starts `hookd::run` with `config` on it. Its
    /// outbox store is a scratch file (unless `config` names one) and its
    /// admin service listens on port 0, so tests never share either.
    pub async fn start(config: Config) -> Self {
        Self::spawn(config, None, None, |config, listener, stop| {
            hookd::run(config, listener, stop)
        })
        .await
    }

    /// Like [`Hookd::start`], keeping hookd's endpoint registry so a test can
    /// register and deregister webhooks while it runs, and its metrics.
    pub async fn start_with_registry(mut config: Config) -> Self {
        let scratch = isolate(&mut config);
        let server = hookd::Hookd::new(config.clone()).expect("the test configuration is valid");
        let registry = Arc::clone(server.registry());
        let metrics = Arc::clone(server.metrics());
        let mut hookd = Self::spawn(config, Some(registry), Some(metrics), move |_, listener, stop| {
            server.serve(listener, stop)
        })
        .await;
        hookd._scratch = scratch;
        hookd
    }

    /// Like [`Hookd::start`], served the way the `hookd` binary serves:
    /// from `shards` threads of its own, each a single-threaded runtime.
    pub async fn start_sharded(config: Config, shards: usize) -> Self {
        Self::spawn(config, None, None, move |config, listener, stop| async move {
            let server = hookd::Hookd::new(config).expect("the test configuration is valid");
            let listener = listener.into_std().expect("a bound listener converts to std");
            tokio::task::spawn_blocking(move || server.serve_sharded(listener, shards, stop))
                .await
                .unwrap_or(Err(RunError::ShardPanicked))
        })
        .await
    }

    async fn spawn<F, Fut>(
        mut config: Config,
        registry: Option<Arc<Registry>>,
        metrics: Option<Arc<Metrics>>,
        serve: F,
    ) -> Self
    where
        F: FnOnce(Config, TcpListener, futures::future::BoxFuture<'static, ()>) -> Fut,
        Fut: Future<Output = Result<(), RunError>> + Send + 'static,
    {
        let scratch = isolate(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for hookd");
        let addr = listener.local_addr().expect("a bound listener has an address");
        config.server.listen = addr;
        let (shutdown, stop) = oneshot::channel::<()>();
        let stop = Box::pin(async move {
            // Either an explicit stop or the handle being dropped ends hookd.
            let _ = stop.await;
        });
        let task = tokio::spawn(serve(config, listener, stop));
        Self {
            addr,
            _scratch: scratch,
            registry,
            metrics,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// The endpoint registry; only for a hookd from [`Hookd::start_with_registry`].
    #[track_caller]
    pub fn registry(&self) -> &Registry {
        self.registry
            .as_deref()
            .expect("hookd was started with start_with_registry")
    }

    /// hookd's counters; only for a hookd from [`Hookd::start_with_registry`].
    #[track_caller]
    pub fn metrics(&self) -> &Metrics {
        self.metrics
            .as_deref()
            .expect("hookd was started with start_with_registry")
    }

    /// Starts hookd with default settings and these webhooks.
    pub async fn with_webhooks(webhooks: impl IntoIterator<Item = WebhookConfig>) -> Self {
        Self::start(config(webhooks)).await
    }

    /// The address hookd serves gRPC on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connected gRPC channel to hookd.
    pub async fn channel(&self) -> Channel {
        super::channel_to(self.addr, "hookd").await
    }

    /// A `HookService` client on a fresh connection.
    pub async fn client(&self) -> HookServiceClient<Channel> {
        HookServiceClient::new(self.channel().await)
    }

    /// A broker session on a fresh connection that has said Hello and got Welcome.
    pub async fn broker(&self) -> Broker {
        Broker::connect(self.client().await).await
    }

    /// Signals shutdown and waits (bounded) for `hookd::run` to return.
    pub async fn stop(mut self) -> Result<(), RunError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let task = self.task.take().expect("hookd is stopped only once");
        within("hookd to shut down", task)
            .await
            .expect("hookd::run does not panic")
    }
}

impl Drop for Hookd {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
