//! The durable notification outbox: a notification is written to disk before
//! the broker is acknowledged, then delivered to every endpoint registered
//! for it, with retries, per-client order, dead letters and backpressure.
//!
//! ```text
//! dispatch ─ append ─▶ writer thread (group commit) ─ durable ─▶ ack to broker
//!                          │ rows per endpoint
//!                          ▼
//!                      delivery: one task per endpoint, window of
//!                      outbox.window, per client in order ([`delivery`])
//! ```
//!
//! - [`store`]: the [`Store`] trait and its embedded SQLite implementation.
//! - [`delivery`]: reading due rows in pages, sending them, retrying by
//!   outcome, dead-lettering, stopping an endpoint on 410.
//!
//! **Group commit.** Every store access goes through one writer thread that
//! owns the store: it takes every command queued (up to `outbox.max_batch`
//! appends), writes them in one transaction (one fsync), then tells each
//! appender its event is durable. A burst from many streams thus costs one
//! disk flush, and a lone event waits for just its own.
//!
//! **Rows.** One row per (event, endpoint), written at acceptance for the
//! endpoints registered then: delivery, deletion and dead-lettering each
//! touch one row and need no join or per-endpoint progress table; the call
//! is stored once per endpoint, which costs space only for fan-out. Rows are
//! numbered (`seq`) by the writer alone, so an endpoint's task reads them in
//! commit order after a cursor.
//!
//! **Backpressure.** Pending rows count against `outbox.max_bytes`; an append
//! that would pass it is refused, and the broker's verdict is `overloaded`
//! (counted in `hookd_notifications_dropped_total{outcome="full"}` and logged
//! at most once a second). Nothing acknowledged is ever dropped.

pub mod delivery;
pub mod store;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hookd_proto::{ErrorKind, HookCall, convert, v1 as pb};
use prost::Message;
use tokio::sync::{Notify, oneshot};
use tracing::{error, info, warn};

use crate::{config::OutboxConfig, metrics::Metrics, redact, registry::Endpoints};
pub use store::{
    Batch, DeadLetter, Delivery, NewEvent, Selection, SqliteStore, Store, StoreError, StoredRegistration,
};

/// Why a notification was not accepted into the outbox; the broker gets the
/// error verdict of [`AppendError::kind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The pending rows would pass `outbox.max_bytes`.
    #[error("the outbox is full ({used} bytes pending of outbox.max_bytes {max})")]
    Full {
        /// Bytes pending now.
        used: u64,
        /// The quota.
        max: u64,
    },
    /// The store failed to write it.
    #[error("the outbox could not write the notification: {0}")]
    Store(String),
    /// hookd is stopping and the outbox takes no more.
    #[error("the outbox is closed (hookd is stopping)")]
    Closed,
}

impl AppendError {
    /// The verdict error kind the broker sees: `overloaded` when it should
    /// back off and try again, `unavailable` when the store failed.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AppendError::Full { .. } | AppendError::Closed => ErrorKind::Overloaded,
            AppendError::Store(_) => ErrorKind::Unavailable,
        }
    }

    /// The label counted in `hookd_notifications_dropped_total`.
    pub fn label(&self) -> &'static str {
        match self {
            AppendError::Full { .. } => "full",
            AppendError::Store(_) => "unavailable",
            AppendError::Closed => "overloaded",
        }
    }
}

/// Completes when an appended notification is durable (or failed to be).
pub struct Durable {
    done: oneshot::Receiver<Result<(), String>>,
}

impl Durable {
    /// Waits until the notification's commit is on disk.
    pub async fn wait(self) -> Result<(), AppendError> {
        match self.done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(AppendError::Store(message)),
            Err(_) => Err(AppendError::Closed),
        }
    }
}

/// What the writer thread is asked to do.
enum Command {
    Append(NewEvent, oneshot::Sender<Result<(), String>>),
    Delivered(u64),
    Dead(u64, String),
    /// A read that needs no removal committed first (a delivery page: its
    /// rows lie past every row the endpoint has finished with).
    Read(StoreTask),
    /// Anything else (admin reads and changes), run after everything queued
    /// before it is committed.
    Run(StoreTask),
}

/// Work to run on the store in the writer thread.
type StoreTask = Box<dyn FnOnce(&mut dyn Store) + Send>;

/// One endpoint's delivery state, shared by the writer (which wakes it), its
/// delivery task, the admin service and the metrics.
pub struct EndpointState {
    /// The URL as configured (the rows' `endpoint`); never shown.
    pub id: Arc<str>,
    /// The URL as it may be shown ([`redact`]).
    pub name: Arc<str>,
    /// New rows were committed for it, or it was enabled.
    wake: Notify,
    /// Rows pending and their bytes.
    depth: AtomicU64,
    bytes: AtomicU64,
    /// It answered 410 Gone and gets nothing until an operator enables it.
    stopped: AtomicBool,
    /// Its last attempt failed and is being retried (for logging the
    /// change once).
    down: AtomicBool,
    /// It answered again after being down: deliveries waiting out a retry
    /// delay go at once rather than when their backoff ends.
    recovered: Notify,
}

impl EndpointState {
    fn new(id: Arc<str>) -> Self {
        Self {
            name: Arc::from(redact::shown(&id)),
            id,
            wake: Notify::new(),
            depth: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            down: AtomicBool::new(false),
            recovered: Notify::new(),
        }
    }

    /// Rows pending for it.
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// Whether it is stopped (410 Gone) until enabled.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// The outbox: appends notifications durably and hands them to delivery.
/// Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    config: OutboxConfig,
    /// Bytes of the rows pending (reserved as an append is accepted).
    used_bytes: AtomicU64,
    endpoints: Mutex<HashMap<Arc<str>, Arc<EndpointState>>>,
    /// Endpoints the delivery side has no task for yet.
    new_endpoints: tokio::sync::mpsc::UnboundedSender<Arc<EndpointState>>,
    new_endpoints_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Arc<EndpointState>>>>,
    store_id: u32,
    metrics: Arc<Metrics>,
    /// When the quota was last logged, ms since the epoch, and refusals since.
    full_logged_ms: AtomicU64,
    full_since_log: AtomicU64,
}

impl Outbox {
    /// Opens the store at `outbox.path` and starts its writer thread.
    pub fn open(config: &OutboxConfig, metrics: Arc<Metrics>) -> Result<Self, StoreError> {
        let store = SqliteStore::open(&config.path)?;
        Self::with_store(Box::new(store), config, metrics)
    }

    /// Starts the outbox over `store` (any [`Store`]).
    pub fn with_store(
        mut store: Box<dyn Store>,
        config: &OutboxConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let backlog = store.backlog()?;
        let stopped = store.stopped_endpoints()?;
        let (new_endpoints, new_endpoints_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut endpoints = HashMap::new();
        let mut used = 0;
        for (endpoint, pending) in backlog {
            let state = Arc::new(EndpointState::new(Arc::from(endpoint)));
            state.depth.store(pending.depth, Ordering::Relaxed);
            state.bytes.store(pending.bytes, Ordering::Relaxed);
            used += pending.bytes;
            endpoints.insert(state.id.clone(), state);
        }
        for endpoint in stopped {
            let state = endpoints
                .entry(Arc::from(endpoint.as_str()))
                .or_insert_with(|| Arc::new(EndpointState::new(Arc::from(endpoint))));
            state.stopped.store(true, Ordering::Release);
        }
        for state in endpoints.values() {
            let _ = new_endpoints.send(state.clone());
        }
        let pending: u64 = endpoints.values().map(|s| s.depth()).sum();
        if pending > 0 {
            info!(
                pending,
                bytes = used,
                "outbox: delivering notifications accepted before the restart"
            );
        }
        let (commands, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            commands: Mutex::new(Some(commands)),
            writer: Mutex::new(None),
            config: config.clone(),
            used_bytes: AtomicU64::new(used),
            endpoints: Mutex::new(endpoints),
            new_endpoints,
            new_endpoints_rx: Mutex::new(Some(new_endpoints_rx)),
            store_id: store.store_id(),
            metrics,
            full_logged_ms: AtomicU64::new(0),
            full_since_log: AtomicU64::new(0),
        });
        let writer_inner = Arc::downgrade(&inner);
        let max_batch = config.max_batch;
        let writer = std::thread::Builder::new()
            .name("hookd-outbox".into())
            .spawn(move || write_loop(&mut *store, &rx, max_batch, &writer_inner))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the outbox writer thread: {e}")))?;
        *lock(&inner.writer) = Some(writer);
        Ok(Self { inner })
    }

    /// Accepts `call` for `endpoints`: reserves its bytes against the quota
    /// and queues it for the next commit. The broker is to be acknowledged
    /// once the returned [`Durable`] completes.
    pub fn append(&self, call: HookCall, endpoints: &Endpoints) -> Result<Durable, AppendError> {
        let hook = call.hook();
        let client_id = call.args().subscriber().client_id.clone();
        let encoded = pb::HookCall {
            id: 0,
            timeout_ms: None,
            hook: Some(convert::call_to_proto(call)),
        }
        .encode_to_vec();
        let event = NewEvent {
            hook: hook.name(),
            client_id,
            created_ms: now_ms(),
            call: encoded,
            endpoints: endpoints.iter().map(|e| e.id().clone()).collect(),
        };
        let bytes: u64 = event.endpoints.iter().map(|e| store::row_bytes(&event, e)).sum();
        let max = self.inner.config.max_bytes;
        let reserved = self.inner.used_bytes.fetch_add(bytes, Ordering::AcqRel);
        if reserved + bytes > max {
            self.inner.used_bytes.fetch_sub(bytes, Ordering::AcqRel);
            let refused = AppendError::Full { used: reserved, max };
            self.log_full(&refused);
            return Err(refused);
        }
        let (done, durable) = oneshot::channel();
        if self.send(Command::Append(event, done)).is_err() {
            self.inner.used_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(AppendError::Closed);
        }
        Ok(Durable { done: durable })
    }

    /// Logs a refusal for the quota at most once a second, with how many
    /// there were since the last line.
    fn log_full(&self, refused: &AppendError) {
        let since = self.inner.full_since_log.fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_ms();
        let last = self.inner.full_logged_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .inner
                .full_logged_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.inner.full_since_log.store(0, Ordering::Relaxed);
            warn!(refused = since, error = %refused, "notifications refused as overloaded: the outbox is full");
        }
    }

    fn send(&self, command: Command) -> Result<(), ()> {
        match &*lock(&self.inner.commands) {
            Some(commands) => commands.send(command).map_err(drop),
            None => Err(()),
        }
    }

    /// Runs `f` on the store in the writer thread once everything queued
    /// before it is committed, and returns its result.
    pub async fn with_store_do<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, AppendError> {
        self.on_store(f, true).await
    }

    /// Reads with `f` in the writer thread, without waiting for removals
    /// gathered to be committed (see [`Command::Read`]).
    pub(crate) async fn read_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, AppendError> {
        self.on_store(f, false).await
    }

    async fn on_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
        flush: bool,
    ) -> Result<T, AppendError> {
        let (tx, rx) = oneshot::channel();
        let task: StoreTask = Box::new(move |store| {
            let _ = tx.send(f(store).map_err(|e| e.to_string()));
        });
        let command = if flush {
            Command::Run(task)
        } else {
            Command::Read(task)
        };
        self.send(command).map_err(|()| AppendError::Closed)?;
        match rx.await {
            Ok(result) => result.map_err(AppendError::Store),
            Err(_) => Err(AppendError::Closed),
        }
    }

    /// The delivery state of every endpoint known to the outbox.
    pub fn endpoints(&self) -> Vec<Arc<EndpointState>> {
        lock(&self.inner.endpoints).values().cloned().collect()
    }

    fn endpoint(&self, id: &str) -> Arc<EndpointState> {
        endpoint_state(&self.inner, id)
    }

    /// Moves the selected dead letters back to delivery; how many moved.
    pub async fn replay(&self, which: Selection) -> Result<u64, AppendError> {
        let rows = self.with_store_do(move |store| store.replay(which)).await?;
        for row in &rows {
            let state = self.endpoint(&row.endpoint);
            self.inner.used_bytes.fetch_add(row.bytes, Ordering::AcqRel);
            state.depth.fetch_add(1, Ordering::Relaxed);
            state.bytes.fetch_add(row.bytes, Ordering::Relaxed);
            state.wake.notify_one();
        }
        Ok(rows.len() as u64)
    }

    /// Deletes the selected dead letters; how many.
    pub async fn drop_dead(&self, which: Selection) -> Result<u64, AppendError> {
        self.with_store_do(move |store| store.drop_dead(which)).await
    }

    /// Lists up to `limit` dead letters after `seq`.
    pub async fn dead_letters(&self, after: u64, limit: usize) -> Result<Vec<DeadLetter>, AppendError> {
        self.with_store_do(move |store| store.dead_letters(after, limit))
            .await
    }

    /// Enables a stopped endpoint again, given its URL as configured or as
    /// shown; returns its shown name, or `None` if no endpoint so named is stopped.
    pub async fn enable(&self, endpoint: &str) -> Result<Option<Arc<str>>, AppendError> {
        let state = self
            .endpoints()
            .into_iter()
            .find(|s| s.is_stopped() && (&*s.id == endpoint || &*s.name == endpoint));
        let Some(state) = state else { return Ok(None) };
        let id = state.id.clone();
        self.with_store_do(move |store| store.enable_endpoint(&id))
            .await?;
        state.stopped.store(false, Ordering::Release);
        state.wake.notify_one();
        info!(endpoint = %state.name, "webhook enabled again by an operator: deliveries resume");
        Ok(Some(state.name.clone()))
    }

    /// Whether it takes appends: not closed (hookd stopping).
    pub fn is_open(&self) -> bool {
        lock(&self.inner.commands).is_some()
    }

    /// Bytes pending now.
    pub fn used_bytes(&self) -> u64 {
        self.inner.used_bytes.load(Ordering::Relaxed)
    }

    /// The identity of the store, part of every `webhook-id`.
    pub fn store_id(&self) -> u32 {
        self.inner.store_id
    }

    /// The outbox's configuration.
    pub fn config(&self) -> &OutboxConfig {
        &self.inner.config
    }

    /// hookd's metrics, which the outbox counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Takes the channel of endpoints that need a delivery task (once:
    /// for [`delivery::run`]).
    pub(crate) fn take_new_endpoints(
        &self,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<Arc<EndpointState>>> {
        lock(&self.inner.new_endpoints_rx).take()
    }

    /// Records that row `seq` of `state` (of `bytes`) was delivered.
    pub(crate) fn delivered(&self, state: &EndpointState, seq: u64, bytes: u64) {
        self.release(state, bytes);
        let _ = self.send(Command::Delivered(seq));
    }

    /// Moves row `seq` of `state` to the dead letters.
    pub(crate) fn bury(&self, state: &EndpointState, seq: u64, bytes: u64, reason: String) {
        self.release(state, bytes);
        let _ = self.send(Command::Dead(seq, reason));
    }

    fn release(&self, state: &EndpointState, bytes: u64) {
        self.inner.used_bytes.fetch_sub(bytes, Ordering::AcqRel);
        state.depth.fetch_sub(1, Ordering::Relaxed);
        state.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Marks `state` stopped (410 Gone), durably.
    pub(crate) async fn stop(&self, state: &Arc<EndpointState>, reason: String) {
        state.stopped.store(true, Ordering::Release);
        let id = state.id.clone();
        let since = now_ms();
        if let Err(e) = self
            .with_store_do(move |store| store.stop_endpoint(&id, &reason, since))
            .await
        {
            error!(endpoint = %state.name, error = %e, "cannot record that the webhook is stopped");
        }
    }

    /// Updates the outbox gauges from the endpoints' counters and the store.
    pub(crate) async fn update_gauges(&self) {
        let metrics = &self.inner.metrics;
        let mut by_name: HashMap<Arc<str>, (u64, u64)> = HashMap::new();
        for state in self.endpoints() {
            let entry = by_name.entry(state.name.clone()).or_default();
            entry.0 += state.depth();
            entry.1 += state.bytes.load(Ordering::Relaxed);
        }
        for (name, (depth, bytes)) in by_name {
            metrics
                .outbox_depth(&name)
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
            metrics
                .outbox_bytes(&name)
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let oldest = self.read_store(|store| store.oldest_ms()).await;
        let age_s = match oldest {
            Ok(Some(created)) => now_ms().saturating_sub(created) / 1000,
            _ => 0,
        };
        metrics
            .outbox_oldest_age_seconds
            .set(i64::try_from(age_s).unwrap_or(i64::MAX));
    }

    /// Stops taking appends, commits what is queued (appends already
    /// acknowledged are durable; this flushes deliveries' deletions), and
    /// waits for the writer thread to end.
    pub fn close(&self) {
        lock(&self.inner.commands).take();
        if let Some(writer) = lock(&self.inner.writer).take() {
            let _ = writer.join();
        }
    }

    /// The `webhook-id` of an event: stable across retries and restarts,
    /// unique across stores.
    pub fn webhook_id(&self, event_id: u64) -> String {
        webhook_id(self.inner.store_id, event_id)
    }
}

/// The `webhook-id` of event `event_id` of the store `store_id`.
pub fn webhook_id(store_id: u32, event_id: u64) -> String {
    format!("msg_{store_id:08x}{event_id:016x}")
}

/// The state of endpoint `id`, created (and handed to delivery) on first use.
fn endpoint_state(inner: &Inner, id: &str) -> Arc<EndpointState> {
    let mut endpoints = lock(&inner.endpoints);
    if let Some(state) = endpoints.get(id) {
        return state.clone();
    }
    let state = Arc::new(EndpointState::new(Arc::from(id)));
    endpoints.insert(state.id.clone(), state.clone());
    let _ = inner.new_endpoints.send(state.clone());
    state
}

/// How long delivered and dead rows may wait for a commit of their own: they
/// ride along with the next appends, or go after this long (or once
/// [`MAX_PENDING_REMOVALS`] have gathered), without an fsync of their own (a
/// removal lost to a crash is a delivery repeated, which at least once
/// allows).
const REMOVAL_DELAY: Duration = Duration::from_millis(100);

/// Delivered and dead rows gathered at most before they are committed.
const MAX_PENDING_REMOVALS: usize = 4096;

/// The writer thread: takes commands as they come and commits every append
/// queued in one transaction (with the removals gathered so far), then
/// answers; removals alone wait for [`REMOVAL_DELAY`].
fn write_loop(
    store: &mut dyn Store,
    commands: &mpsc::Receiver<Command>,
    max_batch: usize,
    inner: &std::sync::Weak<Inner>,
) {
    let mut batch = Batch::default();
    let mut waiters = Vec::new();
    let mut runs: Vec<(StoreTask, bool)> = Vec::new();
    let mut removals_since: Option<std::time::Instant> = None;
    loop {
        let first = match removals_since {
            None => commands.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Some(since) => commands.recv_timeout(REMOVAL_DELAY.saturating_sub(since.elapsed())),
        };
        let first = match first {
            Ok(command) => command,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                commit(store, &mut batch, &mut waiters, inner);
                removals_since = None;
                continue;
            }
            // Every sender is gone: hookd is closing the outbox.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                commit(store, &mut batch, &mut waiters, inner);
                return;
            }
        };
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Append(event, done) => {
                    batch.appends.push(event);
                    waiters.push(done);
                }
                Command::Delivered(seq) => batch.delivered.push(seq),
                Command::Dead(seq, reason) => batch.dead.push((seq, reason, now_ms())),
                Command::Read(f) => runs.push((f, false)),
                Command::Run(f) => runs.push((f, true)),
            }
            if batch.appends.len() < max_batch && runs.is_empty() {
                next = commands.try_recv().ok();
            }
        }
        let removals = batch.delivered.len() + batch.dead.len();
        let flush = runs.iter().any(|(_, flush)| *flush)
            || removals >= MAX_PENDING_REMOVALS
            || removals_since.is_some_and(|since| since.elapsed() >= REMOVAL_DELAY);
        if !batch.appends.is_empty() || (flush && removals > 0) {
            commit(store, &mut batch, &mut waiters, inner);
            removals_since = None;
        } else if removals > 0 && removals_since.is_none() {
            removals_since = Some(std::time::Instant::now());
        }
        for (f, _) in runs.drain(..) {
            f(store);
        }
    }
}

/// Commits `batch` (if it holds anything), tells its appenders, and empties it.
fn commit(
    store: &mut dyn Store,
    batch: &mut Batch,
    waiters: &mut Vec<oneshot::Sender<Result<(), String>>>,
    inner: &std::sync::Weak<Inner>,
) {
    if batch.appends.is_empty() && batch.delivered.is_empty() && batch.dead.is_empty() {
        return;
    }
    let result = store.commit(batch).map_err(|e| e.to_string());
    if let Some(inner) = inner.upgrade() {
        after_commit(&inner, batch, result.as_ref().err());
    }
    for done in waiters.drain(..) {
        let _ = done.send(result.clone());
    }
    *batch = Batch::default();
}

/// Wakes the endpoints of committed appends; on failure, releases their
/// reserved bytes.
fn after_commit(inner: &Inner, batch: &Batch, failed: Option<&String>) {
    if let Some(e) = failed {
        error!(
            error = %e,
            appends = batch.appends.len(),
            delivered = batch.delivered.len(),
            dead = batch.dead.len(),
            "outbox commit failed: the notifications in it were refused"
        );
        for event in &batch.appends {
            let bytes: u64 = event.endpoints.iter().map(|e| store::row_bytes(event, e)).sum();
            inner.used_bytes.fetch_sub(bytes, Ordering::AcqRel);
        }
        return;
    }
    let mut woken: Vec<Arc<EndpointState>> = Vec::new();
    for event in &batch.appends {
        for endpoint in &event.endpoints {
            let state = match woken.iter().find(|s| s.id == *endpoint) {
                Some(state) => state.clone(),
                None => {
                    let state = endpoint_state(inner, endpoint);
                    woken.push(state.clone());
                    state
                }
            };
            state.depth.fetch_add(1, Ordering::Relaxed);
            state
                .bytes
                .fetch_add(store::row_bytes(event, endpoint), Ordering::Relaxed);
        }
    }
    for state in woken {
        state.wake.notify_one();
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How long until `at_ms` (ms since the epoch), zero if past.
pub fn until_ms(at_ms: u64) -> Duration {
    Duration::from_millis(at_ms.saturating_sub(now_ms()))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
