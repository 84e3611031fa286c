//! hookd's counters, in one explicit Prometheus registry (no global state).
//!
//! Every failure is counted here as well as logged: calls by hook and
//! outcome, webhook requests and their errors by kind, cache hits and misses,
//! notifications the outbox refused, the outbox's depth, bytes, age
//! and deliveries per webhook, and connections the gRPC listener failed to
//! accept. The
//! registry is served in the Prometheus text format when `metrics.listen` is set.

use std::sync::OnceLock;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use hookd_proto::Hook;

/// All of hookd's metrics.
pub struct Metrics {
    registry: Registry,
    /// Hook calls answered, by hook and verdict (`ok`, `next`, `ack` or error kind).
    pub calls: Counters,
    /// HTTP requests made to webhooks, by hook and result (`ok` or error kind).
    pub webhook_requests: Counters,
    /// Cache lookups, by hook and `hit` / `miss`.
    pub cache_lookups: Counters,
    /// Notifications refused (answered `overloaded` or `unavailable`, never
    /// acknowledged) by hook and reason: `full` (`outbox.max_bytes`),
    /// `unavailable` (the store failed), `overloaded` (hookd stopping).
    pub notifications_dropped: Counters,
    /// Broker streams open now.
    pub streams: Gauge,
    /// Calls waiting for webhook answers now (calls answered at once, from
    /// the cache or as notifications, are never in flight).
    pub calls_in_flight: Gauge,
    /// Calls on broker streams that did not decode, were over
    /// `server.max_call_bytes`, or reused the id of a call in flight.
    pub bad_calls: Counter,
    /// Failed accepts on the gRPC or metrics listener: out of file descriptors (which
    /// [`crate::accept`] waits out), or a connection reset before it was
    /// accepted. Exposed as `hookd_accept_errors_total`.
    pub accept_errors: Counter,
    /// Connections closed as accepted because their listener was at its
    /// limit (`server.max_connections`, or the metrics listener's).
    pub connections_refused: Counter,
    /// Streams and calls refused for a missing or unknown bearer token
    /// (`server.auth`). Exposed as `hookd_unauthenticated_total`.
    pub unauthenticated: Counter,
    /// TLS handshakes on the gRPC listener that failed (`server.tls`): an
    /// unknown CA, no client certificate, plaintext. Exposed as
    /// `hookd_tls_handshake_failures_total`.
    pub tls_handshake_failures: Counter,
    /// Connections closed by `server.handshake_timeout_ms` or
    /// `server.idle_timeout_ms`.
    pub connections_closed: Counter,
    /// Broker streams refused with RESOURCE_EXHAUSTED (`server.max_streams`
    /// or `server.max_streams_per_connection`).
    pub streams_refused: Counter,
    /// Calls in flight on a broker stream that ended before their verdict
    /// could be sent (the broker's connection closed, or its stream failed).
    pub calls_unanswered: Counter,
    /// Notification rows pending in the outbox, by webhook.
    outbox_depth: Family<Webhook, Gauge>,
    /// Their bytes (what counts against `outbox.max_bytes`), by webhook.
    outbox_bytes: Family<Webhook, Gauge>,
    /// Seconds since the oldest pending notification was accepted.
    pub outbox_oldest_age_seconds: Gauge,
    /// Notifications delivered, by webhook.
    outbox_delivered: Family<Webhook, Counter>,
    /// Delivery attempts that failed and will be retried, by webhook.
    outbox_retried: Family<Webhook, Counter>,
    /// Notifications moved to the dead letters, by webhook.
    outbox_dead_lettered: Family<Webhook, Counter>,
}

/// A webhook label: its endpoint as it may be shown (credentials and query
/// redacted, [`crate::redact`]).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Webhook {
    /// The endpoint, redacted.
    pub endpoint: String,
}

/// A (hook, outcome) label pair.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// The hook's vmq_webhooks name.
    pub hook: &'static str,
    /// What happened.
    pub outcome: &'static str,
}

/// One counter family by (hook, outcome), with each series resolved once:
/// counting on the per-call path is then one atomic add, not a hash-map
/// lookup under a lock.
#[derive(Default)]
pub struct Counters {
    family: Family<Outcome, Counter>,
    resolved: [[OnceLock<Counter>; OUTCOMES.len()]; Hook::COUNT],
}

/// Every outcome label a counter is kept for.
const OUTCOMES: [&str; 12] = [
    "ok",
    "next",
    "ack",
    "denied",
    "unavailable",
    "timeout",
    "invalid_response",
    "invalid_call",
    "overloaded",
    "hit",
    "miss",
    "full",
];

impl Counters {
    /// Counts one event for `hook` with `outcome`.
    pub fn count(&self, hook: Hook, outcome: &'static str) {
        let label = Outcome {
            hook: hook.name(),
            outcome,
        };
        match OUTCOMES.iter().position(|known| *known == outcome) {
            Some(index) => self.resolved[hook.index()][index]
                .get_or_init(|| self.family.get_or_create(&label).clone())
                .inc(),
            None => self.family.get_or_create(&label).inc(),
        };
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hookd");
        let calls = Counters::default();
        registry.register(
            "calls",
            "Hook calls answered, by hook and verdict",
            calls.family.clone(),
        );
        let webhook_requests = Counters::default();
        registry.register(
            "webhook_requests",
            "HTTP requests to webhooks, by hook and result",
            webhook_requests.family.clone(),
        );
        let cache_lookups = Counters::default();
        registry.register(
            "cache_lookups",
            "Verdict cache lookups, by hook and hit/miss",
            cache_lookups.family.clone(),
        );
        let notifications_dropped = Counters::default();
        registry.register(
            "notifications_dropped",
            "Notifications refused (never acknowledged), by hook and reason: full (outbox.max_bytes), unavailable (the store failed), overloaded (hookd stopping)",
            notifications_dropped.family.clone(),
        );
        let streams = Gauge::default();
        registry.register("streams", "Broker streams open now", streams.clone());
        let bad_calls = Counter::default();
        registry.register(
            "bad_calls",
            "Calls on broker streams that did not decode, were over server.max_call_bytes, or reused an id in flight",
            bad_calls.clone(),
        );
        let calls_in_flight = Gauge::default();
        registry.register(
            "calls_in_flight",
            "Calls waiting for webhook answers now",
            calls_in_flight.clone(),
        );
        let accept_errors = Counter::default();
        registry.register(
            "accept_errors",
            "Failed accepts on hookd's listeners (e.g. out of file descriptors)",
            accept_errors.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed as accepted because the listener was at its limit (server.max_connections; 64 for metrics)",
            connections_refused.clone(),
        );
        let unauthenticated = Counter::default();
        registry.register(
            "unauthenticated",
            "Streams and calls refused for a missing or unknown bearer token (server.auth)",
            unauthenticated.clone(),
        );
        let tls_handshake_failures = Counter::default();
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes on the gRPC listener that failed (server.tls)",
            tls_handshake_failures.clone(),
        );
        let connections_closed = Counter::default();
        registry.register(
            "connections_closed",
            "Connections closed by server.handshake_timeout_ms or server.idle_timeout_ms",
            connections_closed.clone(),
        );
        let streams_refused = Counter::default();
        registry.register(
            "streams_refused",
            "Broker streams refused for server.max_streams or server.max_streams_per_connection",
            streams_refused.clone(),
        );
        let outbox_depth = Family::<Webhook, Gauge>::default();
        registry.register(
            "outbox_depth",
            "Notifications pending in the outbox, by webhook",
            outbox_depth.clone(),
        );
        let outbox_bytes = Family::<Webhook, Gauge>::default();
        registry.register(
            "outbox_bytes",
            "Bytes of the notifications pending in the outbox (outbox.max_bytes), by webhook",
            outbox_bytes.clone(),
        );
        let outbox_oldest_age_seconds = Gauge::default();
        registry.register(
            "outbox_oldest_age_seconds",
            "Seconds since the oldest pending notification was accepted",
            outbox_oldest_age_seconds.clone(),
        );
        let outbox_delivered = Family::<Webhook, Counter>::default();
        registry.register(
            "outbox_delivered",
            "Notifications delivered, by webhook",
            outbox_delivered.clone(),
        );
        let outbox_retried = Family::<Webhook, Counter>::default();
        registry.register(
            "outbox_retried",
            "Notification delivery attempts that failed and are retried, by webhook",
            outbox_retried.clone(),
        );
        let outbox_dead_lettered = Family::<Webhook, Counter>::default();
        registry.register(
            "outbox_dead_lettered",
            "Notifications moved to the dead letters, by webhook",
            outbox_dead_lettered.clone(),
        );
        let calls_unanswered = Counter::default();
        registry.register(
            "calls_unanswered",
            "Calls in flight on a broker stream that ended before their verdict could be sent",
            calls_unanswered.clone(),
        );
        Self {
            registry,
            outbox_depth,
            outbox_bytes,
            outbox_oldest_age_seconds,
            outbox_delivered,
            outbox_retried,
            outbox_dead_lettered,
            calls,
            webhook_requests,
            cache_lookups,
            notifications_dropped,
            streams,
            calls_in_flight,
            bad_calls,
            accept_errors,
            connections_refused,
            unauthenticated,
            tls_handshake_failures,
            connections_closed,
            streams_refused,
            calls_unanswered,
        }
    }

    /// The outbox depth gauge of the webhook shown as `endpoint`.
    pub fn outbox_depth(&self, endpoint: &str) -> Gauge {
        self.outbox_depth.get_or_create(&webhook(endpoint)).clone()
    }

    /// The outbox bytes gauge of the webhook shown as `endpoint`.
    pub fn outbox_bytes(&self, endpoint: &str) -> Gauge {
        self.outbox_bytes.get_or_create(&webhook(endpoint)).clone()
    }

    /// The delivered counter of the webhook shown as `endpoint`.
    pub fn outbox_delivered(&self, endpoint: &str) -> Counter {
        self.outbox_delivered.get_or_create(&webhook(endpoint)).clone()
    }

    /// The retried counter of the webhook shown as `endpoint`.
    pub fn outbox_retried(&self, endpoint: &str) -> Counter {
        self.outbox_retried.get_or_create(&webhook(endpoint)).clone()
    }

    /// The dead-lettered counter of the webhook shown as `endpoint`.
    pub fn outbox_dead_lettered(&self, endpoint: &str) -> Counter {
        self.outbox_dead_lettered
            .get_or_create(&webhook(endpoint))
            .clone()
    }

    /// The registry in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

fn webhook(endpoint: &str) -> Webhook {
    Webhook {
        endpoint: endpoint.to_owned(),
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_exposition_by_hook_and_outcome() {
        let metrics = Metrics::new();
        metrics.calls.count(Hook::AuthOnPublish, "ok");
        metrics.calls.count(Hook::AuthOnPublish, "ok");
        metrics.calls.count(Hook::OnSessionExpired, "timeout");
        let text = metrics.encode();
        assert!(
            text.contains(r#"hookd_calls_total{hook="auth_on_publish",outcome="ok"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hookd_calls_total{hook="on_session_expired",outcome="timeout"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn accept_errors_are_exposed_as_a_total() {
        let metrics = Metrics::new();
        metrics.accept_errors.inc();
        let text = metrics.encode();
        assert!(text.contains("hookd_accept_errors_total 1"), "{text}");
    }
}
