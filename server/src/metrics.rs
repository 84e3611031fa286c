//! hookd's counters, in one explicit Prometheus registry (no global state).
//!
//! Every failure is counted here as well as logged: calls by hook and
//! outcome, webhook requests and their errors by kind, cache hits and misses,
//! and notifications dropped because the notification path was full. The
//! registry is served in the Prometheus text format when `metrics.listen` is set.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// All of hookd's metrics.
pub struct Metrics {
    registry: Registry,
    /// Hook calls answered, by hook and verdict (`ok`, `next`, `ack` or error kind).
    pub calls: Family<Outcome, Counter>,
    /// HTTP requests made to webhooks, by hook and result (`ok` or error kind).
    pub webhook_requests: Family<Outcome, Counter>,
    /// Cache lookups, by hook and `hit` / `miss`.
    pub cache_lookups: Family<Outcome, Counter>,
    /// Notifications not delivered because too many were in flight, by hook.
    pub notifications_dropped: Family<Outcome, Counter>,
    /// Broker streams open now.
    pub streams: Gauge,
}

/// A (hook, outcome) label pair.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// The hook's vmq_webhooks name.
    pub hook: &'static str,
    /// What happened.
    pub outcome: &'static str,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hookd");
        let calls = Family::default();
        registry.register("calls", "Hook calls answered, by hook and verdict", calls.clone());
        let webhook_requests = Family::default();
        registry.register(
            "webhook_requests",
            "HTTP requests to webhooks, by hook and result",
            webhook_requests.clone(),
        );
        let cache_lookups = Family::default();
        registry.register(
            "cache_lookups",
            "Verdict cache lookups, by hook and hit/miss",
            cache_lookups.clone(),
        );
        let notifications_dropped = Family::default();
        registry.register(
            "notifications_dropped",
            "Notifications dropped because the notification path was full",
            notifications_dropped.clone(),
        );
        let streams = Gauge::default();
        registry.register("streams", "Broker streams open now", streams.clone());
        Self {
            registry,
            calls,
            webhook_requests,
            cache_lookups,
            notifications_dropped,
            streams,
        }
    }

    /// Counts one event of `family` for `hook` with `outcome`.
    pub fn count(family: &Family<Outcome, Counter>, hook: &'static str, outcome: &'static str) {
        family.get_or_create(&Outcome { hook, outcome }).inc();
    }

    /// The registry in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
