//! Routes one hook call to its endpoints and returns the verdict.
//!
//! Chain hooks go through [`crate::chain`], each endpoint consulting the
//! [`VerdictCache`] before its webhook; notification hooks are appended to the
//! [`Outbox`] and acknowledged once the append is durable (or answered
//! `overloaded` when the outbox is full). The dispatcher also owns the
//! per-call deadline, the per-call tracing span and the call counters, so
//! every front door (stream, unary) behaves the same.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tracing::{Instrument, debug, debug_span, warn};

use hookd_proto::{
    ErrorKind, Hook, HookCall, HookStyle,
    verdict::{Allow, CacheInfo, Verdict},
};

use crate::{
    cache::VerdictCache,
    chain,
    metrics::Metrics,
    outbox::Outbox,
    registry::{Endpoints, Registry},
    webhook::{Answer, CallDeadline, Endpoint},
};

/// A call [`Dispatcher::start`] could not answer at once, kept for
/// [`Dispatcher::finish`]: a chain call whose webhooks are to be asked, or a
/// notification waiting for its append to be durable.
pub struct Pending {
    kind: PendingKind,
    hook: Hook,
    started: Instant,
}

// The chain variant is the call itself, moved straight into the call's
// future; boxing it would cost an allocation per call.
#[allow(clippy::large_enum_variant)]
enum PendingKind {
    Chain { call: HookCall, endpoints: Endpoints },
    Notification(crate::outbox::Durable),
}

impl Pending {
    /// Whether it waits for webhooks (a chain call), which hookd stops taking
    /// on shutdown; a notification only waits for its own durable write.
    pub fn needs_webhook(&self) -> bool {
        matches!(self.kind, PendingKind::Chain { .. })
    }
}

/// Everything a hook call needs: endpoints, cache, outbox, metrics.
pub struct Dispatcher {
    registry: Arc<Registry>,
    cache: VerdictCache,
    outbox: Outbox,
    metrics: Arc<Metrics>,
    brokers: crate::brokers::Brokers,
}

impl Dispatcher {
    /// A dispatcher over `registry`.
    pub fn new(registry: Arc<Registry>, cache: VerdictCache, outbox: Outbox, metrics: Arc<Metrics>) -> Self {
        Self {
            registry,
            cache,
            outbox,
            metrics,
            brokers: crate::brokers::Brokers::default(),
        }
    }

    /// The outbox notifications are appended to.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The registry the dispatcher routes by.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The verdict cache.
    pub fn cache(&self) -> &VerdictCache {
        &self.cache
    }

    /// The broker streams open now.
    pub fn brokers(&self) -> &crate::brokers::Brokers {
        &self.brokers
    }

    /// The metrics it counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Answers `call` within `deadline`; past it the verdict is a timeout
    /// error and any webhook request still running is abandoned.
    pub async fn call(&self, call: HookCall, deadline: Duration) -> Verdict {
        match self.start(call) {
            Ok(verdict) => verdict,
            Err(pending) => self.finish(pending, deadline).await,
        }
    }

    /// Answers `call` at once when no webhook request is needed: a hook
    /// without endpoints (`next`), a notification the outbox refuses
    /// (`overloaded`), or a chain whose first endpoint has a cached `ok`
    /// (which the chain would take, as the first `ok` wins). Anything else
    /// comes back [`Pending`], for [`Dispatcher::finish`]: a notification
    /// appended to the outbox is acknowledged there once it is durable.
    ///
    /// A stream answers most calls of a busy broker here, so they cost no
    /// future, no timer and no wake-up.
    // `Pending` is large (it is the call), but it moves straight into the
    // call's future; boxing it would cost an allocation per call.
    #[allow(clippy::result_large_err)]
    pub fn start(&self, call: HookCall) -> Result<Verdict, Pending> {
        let hook = call.hook();
        let started = Instant::now();
        let endpoints = self.registry.endpoints(hook);
        let verdict = match (hook.style(), endpoints.first()) {
            (HookStyle::Notify, None) => Verdict::Ack,
            (HookStyle::Notify, Some(_)) if !endpoints.iter().all(|e| e.wants(&call)) => {
                // Some webhooks' `topics` rules turn this event away: it is
                // stored for the others only, and acknowledged at once if
                // none wants it.
                let wanted: Endpoints = endpoints.iter().filter(|e| e.wants(&call)).cloned().collect();
                if wanted.is_empty() {
                    Verdict::Ack
                } else {
                    return self.append(call, &wanted, hook, started);
                }
            }
            (HookStyle::Notify, Some(_)) => return self.append(call, &endpoints, hook, started),
            (HookStyle::Chain, None) => Verdict::Next,
            (HookStyle::Chain, Some(first)) => {
                if hook.is_cacheable()
                    && let Some(verdict) = self.cached(first, &call)
                {
                    verdict
                } else {
                    return Err(Pending {
                        kind: PendingKind::Chain { call, endpoints },
                        hook,
                        started,
                    });
                }
            }
        };
        self.finished(hook, &verdict, started);
        Ok(verdict)
    }

    /// Answers a call [`Dispatcher::start`] could not: asks a chain call's
    /// webhooks, or waits for a notification to be durable, within
    /// `deadline` of when it started.
    pub async fn finish(&self, pending: Pending, deadline: Duration) -> Verdict {
        let Pending { kind, hook, started } = pending;
        let (call, endpoints) = match kind {
            PendingKind::Chain { call, endpoints } => (call, endpoints),
            PendingKind::Notification(durable) => {
                let at = tokio::time::Instant::from_std(started) + deadline;
                let verdict = match tokio::time::timeout_at(at, durable.wait()).await {
                    Ok(Ok(())) => Verdict::Ack,
                    Ok(Err(refused)) => {
                        self.metrics.notifications_dropped.count(hook, refused.label());
                        Verdict::error(refused.kind(), refused.to_string())
                    }
                    // It may still be committed and delivered: at least
                    // once, and the broker is told it is not known to be.
                    Err(_) => Verdict::error(
                        hookd_proto::ErrorKind::Timeout,
                        format!("the outbox did not make the notification durable within {deadline:?}"),
                    ),
                };
                self.finished(hook, &verdict, started);
                return verdict;
            }
        };
        let _in_flight = InFlight::new(&self.metrics);
        let span = debug_span!("call", %hook, client_id = %call.args().subscriber().client_id);
        // Every await on the way is a webhook request bounded by this
        // deadline, so the call needs no timer of its own.
        let deadline = CallDeadline {
            at: tokio::time::Instant::from_std(started) + deadline,
            budget: deadline,
        };
        let asks = endpoints.iter().enumerate();
        // `start` has looked up the first endpoint's cache already.
        let verdict = chain::run(asks, |(i, endpoint)| self.ask(endpoint, &call, deadline, i > 0))
            .instrument(span.clone())
            .await;
        span.in_scope(|| self.finished(hook, &verdict, started));
        verdict
    }

    /// Appends a notification for `endpoints`: pending until it is durable,
    /// or answered at once when the outbox refuses it.
    #[allow(clippy::result_large_err)]
    fn append(
        &self,
        call: HookCall,
        endpoints: &Endpoints,
        hook: Hook,
        started: Instant,
    ) -> Result<Verdict, Pending> {
        match self.outbox.append(call, endpoints) {
            Ok(durable) => Err(Pending {
                kind: PendingKind::Notification(durable),
                hook,
                started,
            }),
            Err(refused) => {
                self.metrics.notifications_dropped.count(hook, refused.label());
                let verdict = Verdict::error(refused.kind(), refused.to_string());
                self.finished(hook, &verdict, started);
                Ok(verdict)
            }
        }
    }

    /// The cached verdict of `endpoint` for `call`, counted as a hit or a miss.
    fn cached(&self, endpoint: &Endpoint, call: &HookCall) -> Option<Verdict> {
        let verdict = self.cache.get(endpoint.id(), call);
        let outcome = if verdict.is_some() { "hit" } else { "miss" };
        self.metrics.cache_lookups.count(call.hook(), outcome);
        verdict
    }

    /// Logs and counts a call's verdict, and its latency.
    fn finished(&self, hook: Hook, verdict: &Verdict, started: Instant) {
        let latency = started.elapsed();
        debug!(
            %hook,
            outcome = verdict.label(),
            latency_us = latency.as_micros() as u64,
            "call answered"
        );
        self.metrics.calls.count_verdict(hook, verdict);
        self.metrics.call_duration(hook).observe(latency);
    }

    /// Counts a call refused before it could be dispatched: its arguments
    /// do not convert (answered `invalid_call`, or INVALID_ARGUMENT on the
    /// unary call). Without a hook it is only a bad call.
    pub fn invalid(&self, hook: Option<Hook>) {
        match hook {
            Some(hook) => self.metrics.calls.count(hook, ErrorKind::InvalidCall.label()),
            None => {
                self.metrics.bad_calls.inc();
            }
        }
    }

    /// One endpoint's verdict: from the cache (when `lookup`; the first
    /// endpoint's was looked up by `start`), or from its webhook.
    async fn ask(
        &self,
        endpoint: &Arc<Endpoint>,
        call: &HookCall,
        deadline: CallDeadline,
        lookup: bool,
    ) -> Verdict {
        let hook = call.hook();
        if !endpoint.wants(call) {
            // A topic-scoped webhook has no say on other topics: as `next`.
            return Verdict::Next;
        }
        let cacheable = hook.is_cacheable();
        if cacheable
            && lookup
            && let Some(verdict) = self.cached(endpoint, call)
        {
            return verdict;
        }
        let started = Instant::now();
        // The request's own future is boxed inside: a call waiting for a
        // connection stays small.
        let result = endpoint.call(call, Some(deadline)).await;
        let latency = started.elapsed();
        let latency_us = latency.as_micros() as u64;
        let verdict = match result {
            Ok(Answer {
                verdict: Verdict::Ok(allow),
                max_age: Some(ttl),
            }) if cacheable => {
                self.cache
                    .insert(endpoint.id(), call, allow.modifiers.clone(), ttl);
                Verdict::Ok(Allow {
                    cache: Some(CacheInfo { hit: false, ttl }),
                    ..allow
                })
            }
            Ok(answer) => answer.verdict,
            Err(e) => {
                warn!(%hook, endpoint = %endpoint.name(), error = %e, latency_us, "webhook failed");
                Verdict::error(e.kind(), format!("{}: {e}", endpoint.name()))
            }
        };
        debug!(%hook, endpoint = %endpoint.name(), outcome = verdict.label(), latency_us, "webhook answered");
        let result = match &verdict {
            Verdict::Error(e) => Err(e.kind),
            _ => Ok(()),
        };
        endpoint.metrics().request(result, latency);
        verdict
    }
}

/// Counts a call in `hookd_calls_in_flight` for as long as it waits for
/// webhooks, also when its future is dropped (stream gone, shutdown).
struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics.calls_in_flight.inc();
        Self(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.calls_in_flight.dec();
    }
}
