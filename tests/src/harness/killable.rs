//! hookd on a tokio runtime of its own, so a test can kill it the hard way.
//!
//! [`KillableHookd::kill`] calls `Runtime::shutdown_background` on hookd's
//! runtime: every task of hookd (listener, gRPC connections, broker sessions,
//! webhook requests) is dropped on the spot and its sockets close without a
//! goodbye, as when the process dies. [`KillableHookd::start_on`] starts a new
//! hookd on the address of a dead one (the listener sets `SO_REUSEADDR`), so a
//! client sees the same hookd come back. [`KillableHookd::stop`] is the
//! graceful way out, as on SIGTERM.
//!
//! hookd is built with `hookd::Hookd::new(..).serve(..)`, keeping its
//! registry (webhooks can be registered while it runs) and its metrics.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use hookd::{Config, RunError, metrics::Metrics, registry::Registry};
use tokio::{
    net::{TcpListener, TcpSocket},
    runtime::{Builder, Runtime},
    sync::oneshot,
    task::JoinHandle,
    time::Instant,
};

use super::{WAIT, within};

/// How often a bind to a port still held by a dying hookd is tried again.
const BIND_RETRY_EVERY: Duration = Duration::from_millis(10);

/// A running hookd with a runtime of its own.
pub struct KillableHookd {
    addr: SocketAddr,
    /// Its outbox store's directory (see [`super::service::isolate`]).
    _scratch: Option<super::Scratch>,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    runtime: Option<Runtime>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RunError>>>,
}

impl KillableHookd {
    /// Starts hookd with `config` on a fresh loopback port.
    pub async fn start(config: Config) -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts hookd with `config` on `addr`, e.g. the address of a hookd that
    /// was just killed. The bind is retried (bounded by [`WAIT`]) while the
    /// dead hookd's listener is still being torn down.
    pub async fn start_on(addr: SocketAddr, mut config: Config) -> Self {
        let runtime = Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("killable-hookd")
            .enable_all()
            .build()
            .expect("a runtime for hookd");
        let listener = bind_retrying(&runtime, addr).await;
        let addr = listener.local_addr().expect("a bound listener has an address");
        config.server.listen = addr;
        let scratch = super::service::isolate(&mut config);
        let server = {
            let _context = runtime.enter();
            hookd::Hookd::new(config).expect("the test configuration is valid")
        };
        let registry = Arc::clone(server.registry());
        let metrics = Arc::clone(server.metrics());
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = runtime.spawn(server.serve(listener, async move {
            let _ = stop.await;
        }));
        Self {
            addr,
            _scratch: scratch,
            registry,
            metrics,
            runtime: Some(runtime),
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// The address hookd serves gRPC on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint registry, to register webhooks while hookd runs.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// hookd's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Kills hookd abruptly: its runtime is shut down in the background, every
    /// connection is dropped without a GOAWAY or a final verdict. Returns the
    /// address it served on, to start another hookd there.
    pub fn kill(mut self) -> SocketAddr {
        // The runtime goes first: dropping the shutdown sender before it
        // would start a graceful shutdown.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        self.addr
    }

    /// Stops hookd gracefully (calls in flight get `server.shutdown_grace_ms`
    /// to finish, the rest are answered `overloaded`, the streams end) and
    /// waits, bounded, for it to return. Returns the address it served on.
    pub async fn stop(mut self) -> SocketAddr {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            within("hookd to shut down", task)
                .await
                .expect("hookd's serve task does not panic")
                .expect("hookd returns Ok on shutdown");
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        self.addr
    }
}

impl Drop for KillableHookd {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Binds `addr` (with `SO_REUSEADDR`) on `runtime`, retrying until [`WAIT`]
/// runs out while the port is still in use.
async fn bind_retrying(runtime: &Runtime, addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + WAIT;
    loop {
        // Bound on hookd's runtime so the listener is registered with its reactor.
        let attempt = runtime
            .spawn(async move { bind(addr) })
            .await
            .expect("binding does not panic");
        match attempt {
            Ok(listener) => return listener,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                tokio::time::sleep(BIND_RETRY_EVERY).await;
            }
            Err(e) => panic!("could not bind {addr} for hookd: {e}"),
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
