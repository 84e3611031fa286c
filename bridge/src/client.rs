//! The client a broker uses: typed hook calls multiplexed over one stream per
//! hookd address, with deadlines, an in-flight limit, failover, local
//! answers for hooks without endpoints, a local cache and failure policies.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hookd_proto::{
    Hook, HookStyle, for_each_hook,
    v1::{self as pb, hook_call::Hook as Args},
};
use tokio::{
    sync::{Semaphore, watch},
    time::Instant,
};

use crate::{
    cache::LocalCache,
    connection::{self, Connection, Link, LinkState, Shared, Unsent},
    options::{FailurePolicy, Options, Overload},
    verdict::{ErrorKind, Outcome, Source, Verdict},
};

/// About 30 years: the deadline of a call whose timeout does not fit an `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// Why a client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// No hookd address was given.
    #[error("no hookd address given")]
    NoAddress,
    /// The in-flight limit is zero.
    #[error("max_in_flight must be at least 1")]
    NoCapacity,
    /// The blocking façade's runtime could not start.
    #[error("runtime: {0}")]
    Runtime(String),
    /// The TLS options or the token cannot be used: a file that cannot be
    /// read, a client certificate without its key, a token that is not
    /// printable ASCII. Says which, never the token.
    #[error("TLS or token: {0}")]
    Credentials(String),
}

/// A connected hookd client. Cheap to clone; all clones share the streams.
/// Dropping the last clone closes the streams.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    options: Arc<Options>,
    connections: Vec<Connection>,
    shared: Arc<Shared>,
    permits: Semaphore,
    next: AtomicUsize,
    cache: Option<LocalCache>,
    // Dropped with the client: tells every connection task to stop.
    _stop: watch::Sender<bool>,
}

/// Starts one connection task per address and returns the client at once;
/// calls made before a stream is up wait for it within their deadline.
pub fn connect(options: Options) -> Result<Client, BridgeError> {
    if options.addresses.is_empty() {
        return Err(BridgeError::NoAddress);
    }
    if options.max_in_flight == 0 {
        return Err(BridgeError::NoCapacity);
    }
    // Checked once here, so a wrong path stops the broker at start instead of
    // failing every reconnect quietly; each connect reads the files again,
    // so rotated certificates are picked up.
    connection::check_credentials(&options).map_err(BridgeError::Credentials)?;
    let options = Arc::new(options);
    let shared = Arc::new(Shared {
        active: watch::Sender::new(None),
        changed: watch::Sender::new(0),
        last_failure: std::sync::Mutex::new(None),
    });
    let (stop, stop_rx) = watch::channel(false);
    let connections = options
        .addresses
        .iter()
        .map(|address| connection::spawn(address.clone(), options.clone(), shared.clone(), stop_rx.clone()))
        .collect();
    let cache = options
        .local_cache
        .then(|| LocalCache::new(options.local_cache_entries));
    Ok(Client {
        inner: Arc::new(Inner {
            permits: Semaphore::new(options.max_in_flight),
            options,
            connections,
            shared,
            next: AtomicUsize::new(0),
            cache,
            _stop: stop,
        }),
    })
}

/// The typed methods of [`Client`], one per row of the hook table.
macro_rules! hook_methods {
    ($( $(#[doc = $doc:literal])* $variant:ident $method:ident : $shape:ident { $($option:tt)* }, $style:ident, $cache:literal; )*) => {
        impl Client {
            $(
                $(#[doc = $doc])*
                pub async fn $method(&self, args: pb::$variant) -> Verdict {
                    self.call(Args::$variant(args)).await
                }
            )*
        }
    };
}

for_each_hook!(hook_methods);

impl Client {
    /// The deadline of a call that sets none (`Options::default_timeout`).
    pub fn default_timeout(&self) -> Duration {
        self.inner.options.default_timeout
    }

    /// Calls a hook with the default deadline.
    pub async fn call(&self, args: Args) -> Verdict {
        self.call_with_timeout(args, self.inner.options.default_timeout)
            .await
    }

    /// Calls a hook; the verdict arrives within `timeout`, from hookd or, if
    /// hookd cannot answer in time, from the hook's failure policy.
    pub async fn call_with_timeout(&self, mut args: Args, timeout: Duration) -> Verdict {
        match self.answer_locally(&mut args) {
            Some(verdict) => verdict,
            None => self.ask_hookd(args, timeout).await,
        }
    }

    /// Sends a call that [`Client::answer_locally`] could not answer to hookd.
    pub(crate) async fn ask_hookd(&self, mut args: Args, timeout: Duration) -> Verdict {
        let now = Instant::now();
        // A deadline too far to represent is as good as none (tokio's own
        // `timeout` does the same).
        let deadline = now.checked_add(timeout).unwrap_or_else(|| now + FAR_FUTURE);
        let hook = Hook::of_proto_args(&args);
        let _permit = match self.inner.options.overload {
            Overload::Wait => match tokio::time::timeout_at(deadline, self.inner.permits.acquire()).await {
                Ok(Ok(permit)) => permit,
                _ => return self.by_policy(hook, ErrorKind::Timeout),
            },
            Overload::FailFast => match self.inner.permits.try_acquire() {
                Ok(permit) => permit,
                Err(_) => return self.by_policy(hook, ErrorKind::Overloaded),
            },
        };
        let mut retry = false;
        loop {
            let Some(link) = self.link(deadline, retry).await else {
                let kind = if Instant::now() >= deadline {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Unavailable
                };
                return self.by_policy(hook, kind);
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout_at(deadline, link.call(args.clone(), remaining)).await {
                Ok(Ok(verdict)) => {
                    if let (Some(cache), Some(ttl)) = (&self.inner.cache, verdict.cache_ttl_secs) {
                        let verdict = Verdict::from_proto(verdict);
                        cache.insert(
                            &mut args,
                            verdict.outcome.clone(),
                            Duration::from_secs(u64::from(ttl)),
                        );
                        return verdict;
                    }
                    return Verdict::from_proto(verdict);
                }
                // The stream broke under the call: hook calls are idempotent,
                // so it is sent again on whichever stream is up next.
                // hookd would refuse it: not sent, answered here.
                Ok(Err(Unsent::TooLarge { bytes, limit })) => {
                    let reason = format!("the call is {bytes} bytes, over hookd's limit of {limit}");
                    return self.by_policy_because(hook, ErrorKind::InvalidCall, reason);
                }
                Ok(Err(Unsent::Broken)) => {
                    retry = true;
                    // Let the connection task mark the broken link down
                    // before looking for another, so a retry never spins.
                    tokio::task::yield_now().await;
                }
                Err(_) => return self.by_policy(hook, ErrorKind::Timeout),
            }
        }
    }

    /// The verdict for `args` when it needs no round trip: `next` for a hook
    /// hookd reports as having no endpoints, or a verdict from the local
    /// cache. Synchronous, so [`crate::BlockingClient`] answers these without
    /// entering its runtime. `args` is mutable only to look it up without a
    /// copy; it is left as it was.
    pub fn answer_locally(&self, args: &mut Args) -> Option<Verdict> {
        if self.has_no_endpoints(Hook::of_proto_args(args)) {
            return Some(Verdict {
                outcome: Outcome::Next,
                source: Source::NoEndpoints,
                cache_ttl: None,
            });
        }
        let (outcome, remaining) = self.inner.cache.as_ref()?.get(args)?;
        Some(Verdict {
            outcome,
            source: Source::LocalCache,
            cache_ttl: Some(remaining),
        })
    }

    /// Whether hookd has told us that `hook` has no endpoints: its calls are
    /// answered `next` locally and its notifications are not sent, so a
    /// broker may skip building them at all.
    pub fn has_no_endpoints(&self, hook: Hook) -> bool {
        self.inner
            .shared
            .active
            .borrow()
            .as_ref()
            .is_some_and(|active| !active.contains(&hook))
    }

    /// The hooks hookd last reported as having endpoints (`None` before the
    /// first stream opened).
    pub fn active_hooks(&self) -> Option<Vec<Hook>> {
        self.inner.shared.active.borrow().clone()
    }

    /// Whether at least one stream to hookd is open now.
    pub fn is_connected(&self) -> bool {
        self.inner
            .connections
            .iter()
            .any(|c| matches!(*c.state.borrow(), LinkState::Up(_)))
    }

    /// Waits until at least one stream is open, up to `timeout`; true if so.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut changed = self.inner.shared.changed.subscribe();
        tokio::time::timeout(timeout, async {
            while !self.is_connected() {
                if changed.changed().await.is_err() {
                    return false;
                }
            }
            true
        })
        .await
        .unwrap_or(false)
    }

    /// A link to send on, spreading calls round-robin over open streams.
    /// With none open: a first attempt waits only while some stream is being
    /// opened; a retry (the stream broke under the call) waits for any
    /// reconnect. Neither waits past `deadline`.
    async fn link(&self, deadline: Instant, retry: bool) -> Option<Arc<Link>> {
        let mut changed = self.inner.shared.changed.subscribe();
        loop {
            let connections = &self.inner.connections;
            let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
            let mut connecting = false;
            for i in 0..connections.len() {
                match &*connections[(start + i) % connections.len()].state.borrow() {
                    LinkState::Up(link) => return Some(link.clone()),
                    LinkState::Connecting => connecting = true,
                    LinkState::Down => {}
                }
            }
            if !connecting && !retry {
                return None;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => continue,
                _ => return None,
            }
        }
    }

    fn by_policy(&self, hook: Hook, kind: ErrorKind) -> Verdict {
        let reason = match self.inner.shared.last_failure() {
            Some(failure) if kind == ErrorKind::Unavailable => {
                format!("hookd could not answer: {kind:?}: cannot connect to {failure}")
            }
            _ => format!("hookd could not answer: {kind:?}"),
        };
        self.by_policy_because(hook, kind, reason)
    }

    /// The failure policy's verdict for `hook`, saying `reason` when it denies.
    fn by_policy_because(&self, hook: Hook, kind: ErrorKind, reason: String) -> Verdict {
        let outcome = match self.inner.options.policy_of(hook) {
            FailurePolicy::Deny => Outcome::Error { kind, reason },
            FailurePolicy::Allow if hook.style() == HookStyle::Notify => Outcome::Ack,
            FailurePolicy::Allow => Outcome::Ok(None),
            FailurePolicy::Next => Outcome::Next,
        };
        Verdict {
            outcome,
            source: Source::Policy(kind),
            cache_ttl: None,
        }
    }
}
