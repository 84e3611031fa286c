//! Routes one hook call to its endpoints and returns the verdict.
//!
//! Chain hooks go through [`crate::chain`], each endpoint consulting the
//! [`VerdictCache`] before its webhook; notification hooks are handed to the
//! [`Notifier`] and acknowledged at once. The dispatcher also owns the
//! per-call deadline, the per-call tracing span and the call counters, so
//! every front door (stream, unary) behaves the same.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tracing::{Instrument, debug, debug_span, warn};

use crate::{
    cache::VerdictCache,
    chain,
    hook::{HookCall, HookStyle},
    metrics::Metrics,
    notify::Notifier,
    registry::Registry,
    verdict::{Allow, CacheInfo, Verdict},
    webhook::{Answer, CallDeadline, Endpoint},
};

/// Everything a hook call needs: endpoints, cache, notifier, metrics.
pub struct Dispatcher {
    registry: Arc<Registry>,
    cache: VerdictCache,
    notifier: Notifier,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    /// A dispatcher over `registry`.
    pub fn new(
        registry: Arc<Registry>,
        cache: VerdictCache,
        notifier: Notifier,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            registry,
            cache,
            notifier,
            metrics,
        }
    }

    /// The registry the dispatcher routes by.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The metrics it counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Answers `call` within `deadline`; past it the verdict is a timeout
    /// error and any webhook request still running is abandoned.
    pub async fn call(&self, call: HookCall, deadline: Duration) -> Verdict {
        let hook = call.hook();
        let started = Instant::now();
        let span = debug_span!("call", %hook, client_id = %call.args().subscriber().client_id);
        // Every await on the way is a webhook request bounded by this
        // deadline, so the call needs no timer of its own.
        let deadline = CallDeadline {
            at: tokio::time::Instant::from_std(started) + deadline,
            budget: deadline,
        };
        let verdict = self.dispatch(call, deadline).instrument(span.clone()).await;
        span.in_scope(|| {
            debug!(
                outcome = verdict.label(),
                latency_us = started.elapsed().as_micros() as u64
            )
        });
        self.metrics.calls.count(hook, verdict.label());
        verdict
    }

    async fn dispatch(&self, call: HookCall, deadline: CallDeadline) -> Verdict {
        let endpoints = self.registry.endpoints(call.hook());
        match call.hook().style() {
            HookStyle::Chain => {
                chain::run(endpoints.iter(), |endpoint| self.ask(endpoint, &call, deadline)).await
            }
            HookStyle::Notify => {
                if !endpoints.is_empty() {
                    self.notifier.notify(call, endpoints);
                }
                Verdict::Ack
            }
        }
    }

    /// One endpoint's verdict: from the cache, or from its webhook.
    async fn ask(&self, endpoint: &Arc<Endpoint>, call: &HookCall, deadline: CallDeadline) -> Verdict {
        let hook = call.hook();
        let cacheable = hook.is_cacheable();
        if cacheable {
            if let Some(verdict) = self.cache.get(endpoint.name(), call) {
                self.metrics.cache_lookups.count(hook, "hit");
                return verdict;
            }
            self.metrics.cache_lookups.count(hook, "miss");
        }
        let started = Instant::now();
        // Boxed: the webhook future is large, and keeping it out of line
        // keeps the call future small for cache hits, which never create it.
        let result = Box::pin(endpoint.call(call, Some(deadline))).await;
        let latency_us = started.elapsed().as_micros() as u64;
        let verdict = match result {
            Ok(Answer {
                verdict: Verdict::Ok(allow),
                max_age: Some(ttl),
            }) if cacheable => {
                self.cache
                    .insert(endpoint.name(), call, allow.modifiers.clone(), ttl);
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
        let outcome = if matches!(verdict, Verdict::Error(_)) {
            verdict.label()
        } else {
            "ok"
        };
        self.metrics.webhook_requests.count(hook, outcome);
        verdict
    }
}
