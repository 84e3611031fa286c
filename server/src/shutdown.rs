//! Bounded graceful shutdown: the phases hookd goes through after SIGTERM,
//! and what each part of it does in each.
//!
//! 1. **Draining** ([`Shutdown::begin_draining`]): health says NOT_SERVING;
//!    the gRPC server stops accepting and closes its listening socket (so a
//!    new hookd can bind the port at once) and sends every connection a
//!    GOAWAY. Calls in flight go on. A broker stream takes no new calls that
//!    need a webhook (they are answered `overloaded` at once, so the broker's
//!    failure policy applies now rather than after the grace period), still
//!    answers those that need none (notifications are appended to the
//!    outbox and acknowledged once durable, cache hits, hooks without webhooks),
//!    and ends with `UNAVAILABLE` once its last call in flight is answered.
//! 2. **Grace over** ([`Shutdown::end_grace`], `server.shutdown_grace_ms`
//!    after the signal, unless every stream and unary call ended before):
//!    calls still running are answered
//!    `overloaded` and their streams end.
//! 3. **Closed**: after a short moment for those last verdicts to be
//!    written ([`LAST_WORDS`]), every connection still open is closed,
//!    whatever its state ([`crate::liveness::Connections::close_all`]):
//!    tonic's own graceful shutdown would wait forever for an idle peer, a
//!    peer that never spoke, or a frozen one. hookd then returns, logging a
//!    [`Summary`].
//!
//! So hookd is gone at most `shutdown_grace_ms` + [`LAST_WORDS`] after the
//! signal. A second signal is the binary's business: it exits at once.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// How long, after the grace period or once everything drained, the last
/// verdicts, stream ends and GOAWAYs get to reach healthy peers before every
/// connection is closed. A loopback or LAN round trip is far shorter; a
/// frozen peer would never take them.
pub const LAST_WORDS: Duration = Duration::from_millis(250);

/// One hookd's shutdown state, shared by its server, sessions and unary
/// calls. Cheap to clone.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

/// Keeps a broker stream or unary call counted as active (shutdown waits
/// for it, within the grace period) until dropped.
pub struct Active {
    inner: Arc<Inner>,
}

/// What a shutdown did, for the line hookd logs as it exits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Broker streams hookd ended because it was shutting down.
    pub streams_ended: u64,
    /// Calls in flight at the signal that got their real verdict.
    pub calls_finished: u64,
    /// Calls arriving during the drain that needed a webhook, answered
    /// `overloaded` at once.
    pub calls_refused: u64,
    /// Calls still running when the grace period ended, answered `overloaded`.
    pub calls_overloaded: u64,
    /// Connections still open at the end and closed by force (idle, silent,
    /// frozen, or slow to take their last frames).
    pub connections_closed: u64,
    /// Notifications still pending in the outbox at the end: durable, and
    /// delivered after the next start.
    pub notifications_pending: u64,
    /// Milliseconds from the signal to the end.
    pub elapsed_ms: u64,
}

#[derive(Default)]
struct Inner {
    draining: CancellationToken,
    grace_over: CancellationToken,
    closed: CancellationToken,
    /// Broker streams and unary calls open now.
    active: AtomicUsize,
    /// Notified when `active` drops to zero.
    idle: Notify,
    streams_ended: AtomicU64,
    calls_finished: AtomicU64,
    calls_refused: AtomicU64,
    calls_overloaded: AtomicU64,
}

impl Shutdown {
    /// A hookd that is running (not shutting down).
    pub fn new() -> Self {
        Self::default()
    }

    /// Phase 1: stop accepting, take no new webhook calls, let calls in
    /// flight finish.
    pub fn begin_draining(&self) {
        self.inner.draining.cancel();
    }

    /// Phase 2: answer the calls still running `overloaded` and end every
    /// stream. Implies draining.
    pub fn end_grace(&self) {
        self.begin_draining();
        self.inner.grace_over.cancel();
    }

    /// Phase 3: everything is closed; background servers (metrics) stop.
    pub fn close(&self) {
        self.end_grace();
        self.inner.closed.cancel();
    }

    /// Whether draining has begun.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.is_cancelled()
    }

    /// Completes when draining begins.
    pub fn draining(&self) -> WaitForCancellationFutureOwned {
        self.inner.draining.clone().cancelled_owned()
    }

    /// Completes when the grace period is over.
    pub fn grace_over(&self) -> WaitForCancellationFutureOwned {
        self.inner.grace_over.clone().cancelled_owned()
    }

    /// Completes when everything is closed.
    pub fn closed(&self) -> WaitForCancellationFutureOwned {
        self.inner.closed.clone().cancelled_owned()
    }

    /// Counts a broker stream or unary call as active while the guard lives.
    pub fn enter(&self) -> Active {
        self.inner.active.fetch_add(1, Ordering::AcqRel);
        Active {
            inner: self.inner.clone(),
        }
    }

    /// Broker streams and unary calls open now.
    pub fn active(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Completes once no broker stream or unary call is open.
    pub async fn idle(&self) {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            // Enabled before the count is read, so a drop to zero after the
            // read still wakes this waiter.
            idle.as_mut().enable();
            if self.active() == 0 {
                return;
            }
            idle.await;
        }
    }

    /// A broker stream was ended because hookd is shutting down.
    pub fn stream_ended(&self) {
        self.inner.streams_ended.fetch_add(1, Ordering::Relaxed);
    }

    /// A call in flight at the signal got its real verdict.
    pub fn call_finished(&self) {
        self.inner.calls_finished.fetch_add(1, Ordering::Relaxed);
    }

    /// A call arriving during the drain was answered `overloaded` at once.
    pub fn call_refused(&self) {
        self.inner.calls_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` calls were still running when the grace period ended.
    pub fn calls_overloaded(&self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.inner.calls_overloaded.fetch_add(n, Ordering::Relaxed);
    }

    /// The counts so far, with the parts only the caller knows.
    pub fn summary(
        &self,
        connections_closed: usize,
        notifications_pending: usize,
        elapsed: Duration,
    ) -> Summary {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Summary {
            streams_ended: self.inner.streams_ended.load(Ordering::Relaxed),
            calls_finished: self.inner.calls_finished.load(Ordering::Relaxed),
            calls_refused: self.inner.calls_refused.load(Ordering::Relaxed),
            calls_overloaded: self.inner.calls_overloaded.load(Ordering::Relaxed),
            connections_closed: count(connections_closed),
            notifications_pending: count(notifications_pending),
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Runs phases 1 to 3 (see the module docs) and returns what happened:
    /// draining at once, the grace period ended early once nothing is open
    /// (notifications need no waiting for: every one acknowledged is in the
    /// outbox already), then [`LAST_WORDS`] for `servers` to finish by
    /// themselves before `close_connections` closes the rest. `pending` says
    /// how many notifications are still in the outbox at the end.
    ///
    /// `servers` is polled throughout: a server on the caller's runtime
    /// (`Hookd::serve`) only stops accepting and sends its GOAWAYs when
    /// polled.
    pub async fn run(
        &self,
        grace: Duration,
        servers: impl Future<Output = ()>,
        close_connections: impl FnOnce() -> usize,
        pending: impl FnOnce() -> usize,
    ) -> Summary {
        let started = tokio::time::Instant::now();
        self.begin_draining();
        let drained = self.idle();
        let grace = tokio::time::sleep(grace);
        tokio::pin!(drained, grace, servers);
        let mut served = false;
        loop {
            tokio::select! {
                () = &mut drained => break,
                () = &mut grace => {
                    self.end_grace();
                    break;
                }
                () = &mut servers, if !served => served = true,
            }
        }
        if !served {
            let _ = tokio::time::timeout(LAST_WORDS, servers).await;
        }
        let closed = close_connections();
        let pending = pending();
        self.close();
        self.summary(closed, pending, started.elapsed())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if self.inner.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Far longer than any of these tests should take.
    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn shutdown_ends_the_grace_early_once_nothing_is_open() {
        let shutdown = Shutdown::new();
        let active = shutdown.enter();
        let run = shutdown.run(LONG, async {}, || 0, || 0);
        tokio::pin!(run);
        assert!(futures::poll!(run.as_mut()).is_pending());
        assert!(shutdown.is_draining());
        assert!(!reached(shutdown.grace_over()));
        drop(active);
        let summary = tokio::time::timeout(LONG, run).await.expect("the run ends");
        assert!(summary.elapsed_ms < 1000, "{summary:?}");
        assert_eq!(summary.calls_overloaded, 0);
    }

    #[tokio::test]
    async fn shutdown_ends_the_grace_when_it_runs_out_and_closes_what_is_left() {
        let shutdown = Shutdown::new();
        let _forever = shutdown.enter();
        let grace = Duration::from_millis(50);
        let summary = tokio::time::timeout(LONG, shutdown.run(grace, std::future::pending(), || 3, || 1))
            .await
            .expect("the run ends");
        assert!(reached(shutdown.grace_over()));
        assert_eq!(summary.connections_closed, 3);
        assert_eq!(summary.notifications_pending, 1);
        let least = u64::try_from((grace + LAST_WORDS).as_millis()).expect("small");
        assert!((least..least + 1000).contains(&summary.elapsed_ms), "{summary:?}");
    }

    /// Whether a phase's future has completed already.
    fn reached(phase: WaitForCancellationFutureOwned) -> bool {
        futures::FutureExt::now_or_never(phase).is_some()
    }
}
