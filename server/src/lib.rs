//! hookd: a central hook service for MQTT brokers.
//!
//! Broker nodes hold one gRPC stream each to hookd and send hook calls on it;
//! hookd fans each call out to the HTTP webhooks registered for its hook
//! (speaking vmq_webhooks' JSON dialect), combines the answers with the
//! brokers' own chain semantics, and streams the verdict back.
//!
//! One call flows through the modules in this order:
//!
//! ```text
//! grpc (session / unary) → dispatch → cache → chain → webhook (hookd_proto::vmq) → verdict
//!                                   ↘ outbox (notification hooks: durable append, then ack;
//!                                             delivery with retries runs behind it)
//! ```
//!
//! - [`config`]: the typed configuration and its validation.
//! - The domain vocabulary (hooks, calls, verdicts), the protobuf conversions
//!   and the vmq_webhooks JSON codec come from `hookd_proto`, shared with the
//!   broker side.
//! - [`grpc`]: the `hookd.v1` front door, health and reflection.
//! - [`dispatch`]: routes a call to its endpoints, owns deadlines and counters.
//! - [`chain`]: how endpoint answers combine (first `ok` wins).
//! - [`cache`]: verdicts cached from `cache-control: max-age`.
//! - [`outbox`]: the durable notification outbox: store, group commit,
//!   delivery with retries, dead letters.
//! - [`admin`]: the operators' `hookd.v1.Admin` service on `admin.listen`.
//! - [`control`]: run-time webhook registrations (kept in the store) and
//!   reloading the configuration (SIGHUP, `hookd reload`).
//! - [`brokers`]: the broker streams open now, for `hookd brokers` and the
//!   status page.
//! - [`registry`]: endpoints per hook and the active-hook set.
//! - [`redact`]: endpoint URLs as they may be shown (no credentials).
//! - [`shard`]: the serving threads, one event loop each.
//! - [`liveness`]: keepalive, handshake and idle bounds on every connection.
//! - [`shutdown`]: the bounded graceful shutdown, phase by phase.
//! - [`webhook`]: the vmq_webhooks HTTP back door.
//! - [`metrics`]: Prometheus counters and latency histograms.
//! - [`metrics_server`]: hookd's HTTP side on `metrics.listen`: `/metrics`,
//!   `/healthz`, `/readyz` and the [`status`] page.
//! - [`tls`], [`auth`]: TLS (and mTLS) on the gRPC listener, and the
//!   brokers' bearer tokens; both reload their files when they change.
//! - [`allowlist`]: where webhooks registered at run time may point.
//! - [`accept`]: the gRPC listener's accept loop, which waits out a lack of
//!   file descriptors instead of spinning, and the `RLIMIT_NOFILE` raise.

#![forbid(unsafe_code)]

pub mod accept;
pub mod admin;
pub mod allowlist;
pub mod auth;
pub mod brokers;
pub mod cache;
pub mod chain;
pub mod config;
pub mod control;
pub mod dispatch;
pub mod grpc;
pub mod liveness;
pub mod metrics;
pub mod metrics_server;
pub mod outbox;
pub mod redact;
pub mod registry;
pub mod shard;
pub mod shutdown;
pub mod status;
pub mod tls;
pub mod webhook;

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use futures::FutureExt;
use hookd_proto::server::hook_service_server::HookServiceServer;
use prometheus_client::metrics::counter::Counter;
use tokio::net::TcpListener;
use tonic::{service::Routes, transport::Server};
use tracing::{info, warn};

pub use config::Config;

use crate::{
    accept::Acceptor,
    cache::VerdictCache,
    dispatch::Dispatcher,
    grpc::HookService,
    liveness::{Connections, StreamsLayer},
    metrics::Metrics,
    outbox::Outbox,
    registry::Registry,
    shutdown::{Shutdown, Summary},
};

/// Why hookd could not start or stopped with an error. A variant that wraps
/// a cause exposes it as `source()` and leaves it out of its own message, so
/// a chain printer (the binary's) shows each cause once.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A webhook in the configuration could not be registered.
    #[error("webhook registration")]
    Registry(#[from] registry::RegistryError),
    /// The reflection service could not be built from the descriptors.
    #[error("gRPC reflection")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A listener could not be bound: `listener` names its configuration key.
    #[error("cannot bind {listener} {addr}")]
    Bind {
        /// The key of the listener's address, e.g. `metrics.listen`.
        listener: &'static str,
        /// The address it was to bind.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// A listener or runtime could not be set up or read.
    #[error("listener")]
    Io(#[from] std::io::Error),
    /// The gRPC server failed.
    #[error("gRPC server")]
    Serve(#[from] tonic::transport::Error),
    /// A shard's thread panicked.
    #[error("a serving thread panicked")]
    ShardPanicked,
    /// An entry of `admin.allowed_webhook_hosts` is not a host, address or network.
    #[error("admin.allowed_webhook_hosts: {0}")]
    AllowedHosts(String),
    /// `[server.tls]` could not be loaded.
    #[error("server.tls")]
    Tls(#[from] webhook::tls::TlsError),
    /// `[server.auth]` could not be loaded.
    #[error("server.auth")]
    Tokens(#[from] auth::TokensError),
    /// The outbox store could not be opened (`outbox.path`).
    #[error("the outbox store (outbox.path)")]
    Outbox(#[from] outbox::StoreError),
    /// `admin.token_file` could not be used.
    #[error("admin token")]
    AdminToken(#[from] admin::TokenError),
}

/// Checks `config` as hookd would start with it, without binding or opening
/// anything (`hookd check`): the rules of [`Config::validate`], and that its
/// webhooks can be built (URLs, secrets, TLS files), `[server.tls]`,
/// `[server.auth]` and `admin.token_file` load.
pub fn check(config: &Config) -> Result<(), RunError> {
    let allowed = allowlist::AllowedHosts::parse(&config.admin.allowed_webhook_hosts)
        .map_err(RunError::AllowedHosts)?;
    registry::Registry::new(
        config.http.clone(),
        1,
        &config.webhooks,
        allowed,
        Arc::new(metrics::Metrics::new()),
    )?;
    if let Some(tls) = &config.server.tls {
        // A check serves nothing: its handshake counter is never read.
        tls::ServerTls::load(tls, prometheus_client::metrics::counter::Counter::default())?;
    }
    if let Some(auth) = &config.server.auth {
        auth::Tokens::load(&auth.tokens_file)?;
    }
    if let Some(path) = &config.admin.token_file {
        admin::AdminToken::load(path)?;
    }
    Ok(())
}

/// A configured hookd, ready to serve: its registry can be changed while it runs.
pub struct Hookd {
    config: Config,
    dispatcher: Arc<Dispatcher>,
    /// The dispatcher's notification outbox, delivered from while hookd
    /// serves and closed as it stops.
    outbox: Outbox,
    /// Stops the outbox's delivery.
    delivery: tokio_util::sync::CancellationToken,
    /// Set once every listener is up (`/readyz`).
    listening: Arc<std::sync::atomic::AtomicBool>,
    /// When it was built (the status page's uptime).
    started: std::time::Instant,
    /// Run-time registrations and reload.
    control: Arc<control::Control>,
    /// `admin.token_file`'s token, if set.
    admin_token: Option<admin::AdminToken>,
    /// Reload the configuration on SIGHUP.
    reload_on_sighup: bool,
}

impl Hookd {
    /// Builds the registry, cache, outbox (opening its store) and dispatcher
    /// from `config`, and registers the run-time registrations kept in the
    /// store; a reload re-reads the environment only (see
    /// [`Hookd::from_file`]).
    pub fn new(config: Config) -> Result<Self, RunError> {
        Self::from_file(config, None)
    }

    /// Like [`Hookd::new`], for `config` loaded from the file at `path`,
    /// which a reload reads again.
    pub fn from_file(config: Config, path: Option<PathBuf>) -> Result<Self, RunError> {
        let metrics = Arc::new(Metrics::new());
        let shards = shard::count(config.server.worker_threads);
        let allowed = allowlist::AllowedHosts::parse(&config.admin.allowed_webhook_hosts)
            .map_err(RunError::AllowedHosts)?;
        let registry = Arc::new(Registry::new(
            config.http.clone(),
            shards,
            &config.webhooks,
            allowed,
            metrics.clone(),
        )?);
        let cache = VerdictCache::new(config.cache.max_entries);
        // Opened here, not by `Outbox::open`, to read the run-time
        // registrations before the store moves to the outbox's writer.
        let mut store = outbox::SqliteStore::open(&config.outbox.path)?;
        let stored = outbox::Store::registrations(&mut store)?;
        let outbox = Outbox::with_store(Box::new(store), &config.outbox, metrics.clone())?;
        let dispatcher = Arc::new(Dispatcher::new(registry.clone(), cache, outbox.clone(), metrics));
        let admin_token = match &config.admin.token_file {
            Some(path) => Some(admin::AdminToken::load(path)?),
            None => None,
        };
        let control = Arc::new(control::Control::new(
            registry,
            outbox.clone(),
            path,
            config.clone(),
        ));
        control.restore(stored);
        Ok(Self {
            config,
            dispatcher,
            outbox,
            delivery: tokio_util::sync::CancellationToken::new(),
            listening: Arc::default(),
            started: std::time::Instant::now(),
            control,
            admin_token,
            reload_on_sighup: false,
        })
    }

    /// Says `/readyz` may answer ready: every listener is up.
    fn listening(&self) {
        self.listening.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Reloads the configuration on SIGHUP ([`control`]), from the moment
    /// hookd listens (the `hookd` binary's choice; an embedding process
    /// keeps SIGHUP to itself).
    pub fn reload_on_sighup(mut self) -> Self {
        self.reload_on_sighup = true;
        self
    }

    /// Run-time registrations and reload.
    pub fn control(&self) -> &Arc<control::Control> {
        &self.control
    }

    /// Listens for SIGHUP, if asked to, and reloads on each until
    /// `shutdown` closes everything. Must run on a runtime; listens at once,
    /// so a SIGHUP sent once this returns never kills hookd.
    fn spawn_sighup(&self, shutdown: &Shutdown) -> Result<(), RunError> {
        if !self.reload_on_sighup {
            return Ok(());
        }
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangups = signal(SignalKind::hangup())?;
            let (control, shutdown) = (self.control.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        received = hangups.recv() => if received.is_none() { return },
                        () = shutdown.closed() => return,
                    }
                    info!("SIGHUP: reloading the configuration");
                    // Logged by the reload either way.
                    let _ = control.reload().await;
                }
            });
        }
        Ok(())
    }

    /// The notification outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Starts, on the caller's runtime, the outbox's delivery and the admin
    /// service (if `admin.enabled`), both until `shutdown` closes everything.
    async fn spawn_outbox(&self, shutdown: &Shutdown) -> Result<(), RunError> {
        tokio::spawn(outbox::delivery::run(
            self.outbox.clone(),
            self.registry().clone(),
            self.delivery.clone(),
        ));
        if self.config.admin.enabled {
            let addr = self.config.admin.listen;
            let listener = TcpListener::bind(addr).await.map_err(|source| RunError::Bind {
                listener: "admin.listen",
                addr,
                source,
            })?;
            info!(
                addr = %listener.local_addr()?,
                token = self.admin_token.is_some(),
                "admin listening"
            );
            let admin = admin::AdminService::new(
                self.dispatcher.clone(),
                self.control.clone(),
                self.config.cache.max_entries,
            );
            let closed = shutdown.closed();
            let token = self.admin_token.clone();
            tokio::spawn(async move {
                if let Err(e) = admin.serve(listener, token, closed).await {
                    warn!(error = %e, "admin server failed");
                }
            });
        }
        Ok(())
    }

    /// Stops delivery and closes the outbox: what was acknowledged is on
    /// disk already; this commits the last deliveries' deletions.
    fn close_outbox(&self) {
        self.delivery.cancel();
        self.outbox.close();
    }

    /// The endpoint registry, to register or deregister webhooks at run time.
    pub fn registry(&self) -> &Arc<Registry> {
        self.dispatcher.registry()
    }

    /// hookd's counters (also served on `metrics.listen` when set).
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.dispatcher.metrics()
    }

    /// Serves gRPC on `listener`, on the caller's runtime, until `shutdown`
    /// completes; then shuts down ([`shutdown`]: calls in flight get
    /// `server.shutdown_grace_ms` to finish, then every connection is
    /// closed) and returns. (The `hookd` binary serves through
    /// [`Hookd::serve_sharded`] instead.)
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RunError> {
        let front = self.front_door().await?;
        self.spawn_sighup(&front.shutdown)?;
        self.spawn_metrics(&front.shutdown).await?;
        self.spawn_outbox(&front.shutdown).await?;
        front.spawn_reload(Duration::from_millis(self.config.server.reload_interval_ms));
        info!(addr = %listener.local_addr()?, webhooks = self.config.webhooks.len(), "hookd listening");
        self.listening();
        let server = front.clone().serve(listener);
        tokio::pin!(server);
        tokio::select! {
            served = &mut server => return served,
            () = shutdown => {}
        }
        // The server's connection tasks are the runtime's, not this
        // future's: once the wind-down has closed them they end by
        // themselves, and the server future is not needed.
        self.wind_down(&front, server.map(drop)).await;
        self.close_outbox();
        Ok(())
    }

    /// Serves gRPC on `listener` from `shards` threads, each a
    /// single-threaded runtime ([`shard`]), until `shutdown` completes (or a
    /// shard stops serving); then shuts down as [`Hookd::serve`] does, drops
    /// every shard's runtime with whatever is left on it, and returns.
    /// Blocks the calling thread, which runs the metrics server and waits
    /// for `shutdown`.
    pub fn serve_sharded(
        self,
        listener: std::net::TcpListener,
        shards: usize,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RunError> {
        let main = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let front = main.block_on(self.front_door())?;
        {
            let _runtime = main.enter();
            self.spawn_sighup(&front.shutdown)?;
        }
        listener.set_nonblocking(true)?;
        info!(
            addr = %listener.local_addr()?,
            webhooks = self.config.webhooks.len(),
            shards,
            "hookd listening"
        );
        // Each shard says when its server has returned (all its connections
        // closed, or it failed).
        let (served_tx, mut served_rx) = tokio::sync::mpsc::unbounded_channel();
        let threads = (0..shards.max(1))
            .map(|index| {
                // Every shard accepts from the same socket: a new broker
                // connection goes to whichever shard is free to take it.
                let listener = listener.try_clone()?;
                let (front, served_tx) = (front.clone(), served_tx.clone());
                std::thread::Builder::new()
                    .name(format!("hookd-shard-{index}"))
                    .spawn(move || -> Result<(), RunError> {
                        shard::enter(index);
                        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
                        let runtime = match runtime {
                            Ok(runtime) => runtime,
                            Err(e) => {
                                let _ = served_tx.send(index);
                                return Err(e.into());
                            }
                        };
                        let served = runtime.block_on(async move {
                            let shutdown = front.shutdown.clone();
                            let served = match TcpListener::from_std(listener) {
                                Ok(listener) => tokio::select! {
                                    served = front.serve(listener) => served,
                                    () = shutdown.closed() => Ok(()),
                                },
                                Err(e) => Err(e.into()),
                            };
                            let _ = served_tx.send(index);
                            // Notifications this shard started are still
                            // delivered, until everything is closed.
                            shutdown.closed().await;
                            served
                        });
                        // Drops every task left on the shard (connections,
                        // streams, webhook requests, deliveries) and so
                        // closes their sockets, without waiting for any.
                        runtime.shutdown_background();
                        served
                    })
                    .map_err(RunError::from)
            })
            .collect::<Result<Vec<_>, RunError>>();
        // The shards hold their own handles of the socket, closed as they
        // stop accepting: this one must not keep the port bound.
        drop(listener);
        let threads = main.block_on(async {
            let threads = threads?;
            self.spawn_metrics(&front.shutdown).await?;
            // Delivery runs on this thread, beside the shards: its requests
            // never take a shard's time from a broker's calls.
            self.spawn_outbox(&front.shutdown).await?;
            front.spawn_reload(Duration::from_millis(self.config.server.reload_interval_ms));
            self.listening();
            let mut serving = threads.len();
            tokio::select! {
                () = shutdown => {}
                Some(index) = served_rx.recv() => {
                    serving -= 1;
                    warn!(shard = index, "a shard stopped serving");
                }
            }
            let servers = async {
                while serving > 0 && served_rx.recv().await.is_some() {
                    serving -= 1;
                }
            };
            self.wind_down(&front, servers).await;
            Ok::<_, RunError>(threads)
        });
        // If a shard could not start, the others stop here.
        front.shutdown.close();
        self.close_outbox();
        let mut result = Ok(());
        for thread in threads? {
            let shard_result = thread.join().unwrap_or_else(|_| Err(RunError::ShardPanicked));
            if let Err(e) = shard_result {
                result = Err(e);
            }
        }
        result
    }

    /// Shuts hookd down once told to ([`shutdown`]): health NOT_SERVING,
    /// draining, the grace period (ended early when every stream and call is
    /// done), [`shutdown::LAST_WORDS`] for `servers`
    /// (the gRPC servers returning by themselves), then every connection
    /// closed. Logs and returns the summary.
    async fn wind_down(&self, front: &FrontDoor, servers: impl Future<Output = ()>) -> Summary {
        let grace = self.config.server.shutdown_grace();
        info!(
            grace_ms = self.config.server.shutdown_grace_ms,
            open = front.shutdown.active(),
            connections = front.connections.open(),
            "shutting down: no new connections; calls in flight may finish within the grace period"
        );
        front.stopping().await;
        let summary = front
            .shutdown
            .run(
                grace,
                servers,
                || front.connections.close_all(),
                || {
                    let pending: u64 = self.outbox.endpoints().iter().map(|e| e.depth()).sum();
                    usize::try_from(pending).unwrap_or(usize::MAX)
                },
            )
            .await;
        info!(
            elapsed_ms = summary.elapsed_ms,
            streams_ended = summary.streams_ended,
            calls_finished = summary.calls_finished,
            calls_refused = summary.calls_refused,
            calls_overloaded = summary.calls_overloaded,
            connections_closed = summary.connections_closed,
            notifications_pending = summary.notifications_pending,
            "hookd stopped"
        );
        summary
    }

    /// The gRPC services, built once and cloned into every shard, with the
    /// shutdown state and connection registry they all share.
    async fn front_door(&self) -> Result<FrontDoor, RunError> {
        let shutdown = Shutdown::new();
        let limits = grpc::session::Limits {
            max_in_flight: self.config.server.max_in_flight_per_stream,
            default_timeout: self.config.server.call_timeout(),
            max_call_bytes: self.config.server.max_call_bytes,
            max_streams: self.config.server.max_streams,
            max_streams_per_connection: self.config.server.max_streams_per_connection,
        };
        // A frame up to 4 times the call limit is read, so that an oversized
        // call costs only itself; past that, reading it is not worth the
        // memory and the stream ends with RESOURCE_EXHAUSTED.
        let service = HookServiceServer::new(HookService::new(
            self.dispatcher.clone(),
            limits,
            shutdown.clone(),
        ))
        .max_decoding_message_size(limits.max_frame_bytes());
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<HookServiceServer<HookService>>().await;
        let mut routes = Routes::new(health_service);
        if self.config.server.reflection {
            let reflection = || {
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(hookd_proto::FILE_DESCRIPTOR_SET)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            };
            // v1 for current tools, v1alpha for grpcurl and older clients.
            routes = routes
                .add_service(reflection().build_v1()?)
                .add_service(reflection().build_v1alpha()?);
        }
        let tokens = match &self.config.server.auth {
            Some(auth) => Some(Arc::new(auth::Tokens::load(&auth.tokens_file)?)),
            None => None,
        };
        routes = match &tokens {
            Some(tokens) => routes.add_service(tonic::service::interceptor::InterceptedService::new(
                service,
                auth::Authenticate::new(tokens.clone(), self.dispatcher.metrics().unauthenticated.clone()),
            )),
            None => routes.add_service(service),
        };
        let tls = match &self.config.server.tls {
            Some(config) => Some(Arc::new(tls::ServerTls::load(
                config,
                self.dispatcher.metrics().tls_handshake_failures.clone(),
            )?)),
            None => None,
        };
        let mut connections = Connections::new(
            self.config.server.liveness(),
            self.dispatcher.metrics().connections_closed.clone(),
        );
        if let Some(tls) = &tls {
            connections = connections.with_tls(tls.clone());
        }
        Ok(FrontDoor {
            routes,
            health,
            shutdown,
            tls,
            tokens,
            connections,
            accept_errors: self.dispatcher.metrics().accept_errors.clone(),
            connections_refused: self.dispatcher.metrics().connections_refused.clone(),
        })
    }

    /// Serves the HTTP side ([`metrics_server`]) on `metrics.listen`, if
    /// set, until `shutdown` has closed everything.
    async fn spawn_metrics(&self, shutdown: &Shutdown) -> Result<(), RunError> {
        if let Some(addr) = self.config.metrics.listen {
            let metrics_listener = TcpListener::bind(addr).await.map_err(|source| RunError::Bind {
                listener: "metrics.listen",
                addr,
                source,
            })?;
            info!(addr = %metrics_listener.local_addr()?, "metrics listening");
            let sources = metrics_server::Sources {
                dispatcher: self.dispatcher.clone(),
                shutdown: shutdown.clone(),
                listening: self.listening.clone(),
                started: self.started,
            };
            tokio::spawn(metrics_server::serve(
                metrics_listener,
                sources,
                Duration::from_millis(self.config.server.handshake_timeout_ms),
                shutdown.closed(),
            ));
        }
        Ok(())
    }
}

/// HTTP/2 receive window of one broker stream: what a broker may send ahead
/// of hookd reading it (the HTTP/2 default). Kept small against
/// [`CONNECTION_WINDOW_BYTES`] because, while a stream's call window is full
/// and hookd stops reading it, h2 holds what was sent and charges every
/// small DATA frame's overhead to a budget of half the connection window,
/// closing the connection (GOAWAY `ENHANCE_YOUR_CALM`) when it runs out. A
/// broker such as Google's grpcio sends each call as its own frame (about 40
/// bytes for a small publish): with h2's default windows (1 MiB each) 2,500
/// such frames closed the connection and its 4,096 calls in flight. With
/// these, a full stream window of frames as small as 5 bytes (the gRPC
/// message prefix alone) stays within the budget.
const STREAM_WINDOW_BYTES: u32 = 64 * 1024;

/// HTTP/2 receive window of a whole broker connection; h2 sizes its budget
/// for small DATA frames from it (see [`STREAM_WINDOW_BYTES`]).
const CONNECTION_WINDOW_BYTES: u32 = 8 * 1024 * 1024;

/// hookd's gRPC services (hooks, health, reflection) and what all their
/// servers share, cheap to clone.
#[derive(Clone)]
struct FrontDoor {
    routes: Routes,
    health: tonic_health::server::HealthReporter,
    shutdown: Shutdown,
    connections: Connections,
    /// `[server.tls]`, reloaded by [`FrontDoor::reload`].
    tls: Option<Arc<tls::ServerTls>>,
    /// `[server.auth]`, reloaded by [`FrontDoor::reload`].
    tokens: Option<Arc<auth::Tokens>>,
    /// Counts the listener's failed accepts, for every shard.
    accept_errors: Counter,
    /// Counts connections closed at once for `server.max_connections`.
    connections_refused: Counter,
}

impl FrontDoor {
    /// Checks the TLS and tokens files every `interval` and reloads those
    /// that changed, until `shutdown` closes everything.
    fn spawn_reload(&self, interval: Duration) {
        if self.tls.is_none() && self.tokens.is_none() {
            return;
        }
        let (tls, tokens, shutdown) = (self.tls.clone(), self.tokens.clone(), self.shutdown.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = shutdown.closed() => return,
                }
                if let Some(tls) = &tls {
                    tls.reload_if_changed();
                }
                if let Some(tokens) = &tokens {
                    tokens.reload_if_changed();
                }
            }
        });
    }

    /// Health says NOT_SERVING from the moment shutdown begins, before the
    /// broker streams are ended.
    async fn stopping(&self) {
        self.health
            .set_not_serving::<HookServiceServer<HookService>>()
            .await;
    }

    /// Serves the services on `listener`, every connection under the
    /// [`liveness`] bounds, until draining begins and every connection has
    /// closed (by itself, or by [`Connections::close_all`]).
    async fn serve(self, listener: TcpListener) -> Result<(), RunError> {
        let bounds = self.connections.bounds();
        // Not tonic's `TcpIncoming`: on an accept error (out of descriptors)
        // the server would poll it again at once, spinning a core.
        let incoming = Acceptor::new(listener, self.accept_errors).into_incoming();
        let incoming = self.connections.guard(incoming, self.connections_refused);
        // On draining tonic drops `incoming` (closing the listening socket)
        // and sends every connection a GOAWAY.
        Server::builder()
            .initial_stream_window_size(STREAM_WINDOW_BYTES)
            .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
            .http2_keepalive_interval(Some(bounds.keepalive_interval))
            .http2_keepalive_timeout(Some(bounds.keepalive_timeout))
            .layer(StreamsLayer)
            .add_routes(self.routes)
            .serve_with_incoming_shutdown(incoming, self.shutdown.draining())
            .await?;
        Ok(())
    }
}

/// Serves hookd with `config` on an already-bound `listener` until
/// `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    Hookd::new(config)?.serve(listener, shutdown).await
}
