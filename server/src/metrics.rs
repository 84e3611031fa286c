//! hookd's counters, in one explicit Prometheus registry (no global state).
//!
//! Every failure is counted here as well as logged: calls by hook and
//! outcome, webhook requests by endpoint and result, cache hits and misses,
//! notifications the outbox refused, the outbox's depth, bytes, age
//! and deliveries per webhook, and connections the gRPC listener failed to
//! accept; latency histograms per hook and per endpoint; and
//! `hookd_build_info`. The registry is served in the Prometheus text format,
//! with the status page built from the same figures, when `metrics.listen`
//! is set ([`crate::metrics_server`]).
//!
//! Every series a hook or a registered endpoint can have exists, at zero,
//! from the start (or from the endpoint's registration): a dashboard or an
//! alert on `rate(...)` sees a series before its first event. Each series is
//! also resolved once, up front, so counting on the per-call path is an
//! atomic add on a handle: no label set is built and no map is looked up.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet, text::encode},
    metrics::{MetricType, TypedMetric, counter::Counter, family::Family, gauge::Gauge, info::Info},
    registry::Registry,
};

use hookd_proto::{ErrorKind, Hook, HookStyle, Verdict};

/// All of hookd's metrics.
pub struct Metrics {
    registry: Registry,
    /// Hook calls answered, by hook and verdict (`ok`, `next`, `ack` or
    /// error kind; `invalid_call` also for calls refused as
    /// INVALID_ARGUMENT).
    pub calls: Counters,
    /// How long calls took, from their arrival to their verdict, by hook.
    call_duration: [Latency; Hook::COUNT],
    /// HTTP requests made to webhooks, by hook, endpoint and result (`ok`
    /// or error kind); each endpoint's handles are its [`EndpointMetrics`].
    webhook_requests: Family<EndpointOutcome, Counter>,
    /// How long webhook requests took, by hook and endpoint.
    webhook_request_duration: Family<EndpointLabel, Latency>,
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

/// A hook label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabel {
    /// The hook's vmq_webhooks name.
    pub hook: &'static str,
}

/// A (hook, endpoint) label pair: one registration.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    /// The hook's vmq_webhooks name.
    pub hook: &'static str,
    /// The endpoint, redacted ([`crate::redact`]).
    pub endpoint: String,
}

/// A (hook, endpoint, outcome) label set.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointOutcome {
    /// The hook's vmq_webhooks name.
    pub hook: &'static str,
    /// The endpoint, redacted ([`crate::redact`]).
    pub endpoint: String,
    /// `ok` or the error kind.
    pub outcome: &'static str,
}

/// The build's own label: `hookd_build_info{version="…"} 1`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabel {
    version: &'static str,
}

/// One counter family by (hook, outcome), with the series its hooks can
/// have registered (at zero) and resolved once: counting on the per-call
/// path is then one atomic add, not a hash-map lookup under a lock.
pub struct Counters {
    family: Family<Outcome, Counter>,
    resolved: [[Option<Counter>; OUTCOMES.len()]; Hook::COUNT],
}

/// Every outcome label a counter is resolved for. The first nine follow
/// [`outcome_index`].
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

/// Every error kind, in [`OUTCOMES`] order.
pub const ERROR_KINDS: [ErrorKind; 6] = [
    ErrorKind::Denied,
    ErrorKind::Unavailable,
    ErrorKind::Timeout,
    ErrorKind::InvalidResponse,
    ErrorKind::InvalidCall,
    ErrorKind::Overloaded,
];

/// The [`OUTCOMES`] index of a verdict's label, without comparing strings.
const fn outcome_index(verdict: &Verdict) -> usize {
    match verdict {
        Verdict::Ok(_) => 0,
        Verdict::Next => 1,
        Verdict::Ack => 2,
        Verdict::Error(e) => 3 + kind_index(e.kind),
    }
}

/// The [`ERROR_KINDS`] index of `kind`.
const fn kind_index(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::Denied => 0,
        ErrorKind::Unavailable => 1,
        ErrorKind::Timeout => 2,
        ErrorKind::InvalidResponse => 3,
        ErrorKind::InvalidCall => 4,
        ErrorKind::Overloaded => 5,
    }
}

/// The error kinds' labels.
const ERRORS: [&str; 6] = [
    "denied",
    "unavailable",
    "timeout",
    "invalid_response",
    "invalid_call",
    "overloaded",
];

/// The verdicts a call of `hook` can get: a chain hook's `ok`, `next` or
/// error, a notification's `ack` or error.
fn verdicts(hook: Hook) -> Vec<&'static str> {
    let answered: &[&str] = match hook.style() {
        HookStyle::Chain => &["ok", "next"],
        HookStyle::Notify => &["ack"],
    };
    answered.iter().chain(&ERRORS).copied().collect()
}

impl Counters {
    /// A family whose series for each hook are the `outcomes` of that hook,
    /// all registered at zero.
    fn new(outcomes: impl Fn(Hook) -> Vec<&'static str>) -> Self {
        let family = Family::<Outcome, Counter>::default();
        let resolved = std::array::from_fn(|index| {
            let hook = Hook::ALL[index];
            let wanted = outcomes(hook);
            OUTCOMES.map(|outcome| {
                wanted.contains(&outcome).then(|| {
                    family
                        .get_or_create(&Outcome {
                            hook: hook.name(),
                            outcome,
                        })
                        .clone()
                })
            })
        });
        Self { family, resolved }
    }

    /// Counts one event for `hook` with `outcome`.
    pub fn count(&self, hook: Hook, outcome: &'static str) {
        match OUTCOMES.iter().position(|known| *known == outcome) {
            Some(index) => self.count_at(hook, index, outcome),
            None => self.slow(hook, outcome),
        }
    }

    /// Counts one call of `hook` answered with `verdict`.
    pub fn count_verdict(&self, hook: Hook, verdict: &Verdict) {
        self.count_at(hook, outcome_index(verdict), verdict.label());
    }

    /// The count of `hook` with `outcome` so far.
    pub fn get(&self, hook: Hook, outcome: &'static str) -> u64 {
        match OUTCOMES.iter().position(|known| *known == outcome) {
            Some(index) => self.resolved[hook.index()][index]
                .as_ref()
                .map_or(0, Counter::get),
            None => 0,
        }
    }

    fn count_at(&self, hook: Hook, index: usize, outcome: &'static str) {
        match &self.resolved[hook.index()][index] {
            Some(counter) => {
                counter.inc();
            }
            None => self.slow(hook, outcome),
        }
    }

    /// An outcome the hook was not expected to have: counted all the same.
    fn slow(&self, hook: Hook, outcome: &'static str) {
        self.family
            .get_or_create(&Outcome {
                hook: hook.name(),
                outcome,
            })
            .inc();
    }
}

/// Upper bounds of the latency buckets, in µs (a last one, `+Inf`, follows):
/// from a cache hit's fraction of a millisecond to a webhook's 5 s default
/// response timeout.
const LATENCY_BOUNDS_US: [u64; 15] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000,
];

/// Latency buckets, `+Inf` included.
const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// A latency histogram (exposed in seconds) that observes with two relaxed
/// atomic adds: prometheus-client's own takes a mutex per observation, which
/// every shard would contend for on the per-call path. Cheap to clone (the
/// clones share the buckets).
#[derive(Debug, Clone, Default)]
pub struct Latency(Arc<LatencyBuckets>);

#[derive(Debug, Default)]
struct LatencyBuckets {
    /// Observations per bucket (not cumulative).
    counts: [AtomicU64; LATENCY_BUCKETS],
    sum_us: AtomicU64,
}

/// A latency histogram's figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySnapshot {
    counts: [u64; LATENCY_BUCKETS],
    sum_us: u64,
}

impl Latency {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.0.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.0.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The figures now.
    pub fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            counts: std::array::from_fn(|i| self.0.counts[i].load(Ordering::Relaxed)),
            sum_us: self.0.sum_us.load(Ordering::Relaxed),
        }
    }
}

impl LatencySnapshot {
    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// What happened between `earlier` and this snapshot.
    pub fn since(&self, earlier: &LatencySnapshot) -> LatencySnapshot {
        LatencySnapshot {
            counts: std::array::from_fn(|i| self.counts[i].saturating_sub(earlier.counts[i])),
            sum_us: self.sum_us.saturating_sub(earlier.sum_us),
        }
    }

    /// The mean, if anything was observed.
    pub fn mean(&self) -> Option<Duration> {
        let count = self.count();
        (count > 0).then(|| Duration::from_micros(self.sum_us / count))
    }

    /// The upper bound of the bucket the `q` quantile (0 to 1) falls in, if
    /// anything was observed; `None` also past the last finite bound.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        // The rank of the quantile, 1-based; counts are far below 2^52.
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return LATENCY_BOUNDS_US.get(i).map(|us| Duration::from_micros(*us));
            }
        }
        None
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.snapshot();
        let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_US
            .iter()
            .map(|us| *us as f64 / 1e6)
            .chain([f64::INFINITY])
            .zip(snapshot.counts)
            .collect();
        encoder.encode_histogram::<NoLabelSet>(snapshot.sum_us as f64 / 1e6, snapshot.count(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// One registration's (hook and endpoint) request counters by result and
/// its latency histogram, resolved when it is registered: what its webhook
/// requests, chain calls and deliveries alike, count into.
#[derive(Debug, Clone, Default)]
pub struct EndpointMetrics {
    /// `ok`, then one per [`ERROR_KINDS`].
    requests: [Counter; 1 + ERROR_KINDS.len()],
    latency: Latency,
}

impl EndpointMetrics {
    /// Counts one request that ended with `result` after `latency`.
    pub fn request(&self, result: Result<(), ErrorKind>, latency: Duration) {
        let index = match result {
            Ok(()) => 0,
            Err(kind) => 1 + kind_index(kind),
        };
        self.requests[index].inc();
        self.latency.observe(latency);
    }

    /// Requests so far by result: `ok`, then each error kind.
    pub fn requests(&self) -> [(&'static str, u64); 1 + ERROR_KINDS.len()] {
        std::array::from_fn(|i| {
            let label = if i == 0 { "ok" } else { ERRORS[i - 1] };
            (label, self.requests[i].get())
        })
    }

    /// The requests' latency.
    pub fn latency(&self) -> &Latency {
        &self.latency
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hookd");
        registry.register(
            "build",
            "hookd's version",
            Info::new(BuildLabel {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        let calls = Counters::new(verdicts);
        registry.register(
            "calls",
            "Hook calls answered, by hook and verdict (invalid_call also for calls refused as INVALID_ARGUMENT)",
            calls.family.clone(),
        );
        let call_durations = Family::<HookLabel, Latency>::default();
        let call_duration = Hook::ALL.map(|hook| {
            call_durations
                .get_or_create(&HookLabel { hook: hook.name() })
                .clone()
        });
        registry.register_with_unit(
            "call_duration",
            "Time from a call's arrival to its verdict, by hook",
            prometheus_client::registry::Unit::Seconds,
            call_durations,
        );
        let webhook_requests = Family::<EndpointOutcome, Counter>::default();
        registry.register(
            "webhook_requests",
            "HTTP requests to webhooks (chain calls and notification deliveries), by hook, endpoint and result",
            webhook_requests.clone(),
        );
        let webhook_request_duration = Family::<EndpointLabel, Latency>::default();
        registry.register_with_unit(
            "webhook_request_duration",
            "Time a webhook request took, from sending it to its answer read, by hook and endpoint",
            prometheus_client::registry::Unit::Seconds,
            webhook_request_duration.clone(),
        );
        let cache_lookups = Counters::new(|hook| {
            if hook.is_cacheable() {
                vec!["hit", "miss"]
            } else {
                Vec::new()
            }
        });
        registry.register(
            "cache_lookups",
            "Verdict cache lookups, by hook and hit/miss",
            cache_lookups.family.clone(),
        );
        let notifications_dropped = Counters::new(|hook| match hook.style() {
            HookStyle::Notify => vec!["full", "unavailable", "overloaded"],
            HookStyle::Chain => Vec::new(),
        });
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
            call_duration,
            webhook_requests,
            webhook_request_duration,
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

    /// The latency histogram of `hook`'s calls.
    pub fn call_duration(&self, hook: Hook) -> &Latency {
        &self.call_duration[hook.index()]
    }

    /// The series of `hook`'s registration of the endpoint shown as
    /// `endpoint`, created at zero.
    pub fn endpoint(&self, hook: Hook, endpoint: &str) -> EndpointMetrics {
        let outcome = |outcome| {
            self.webhook_requests
                .get_or_create(&EndpointOutcome {
                    hook: hook.name(),
                    endpoint: endpoint.to_owned(),
                    outcome,
                })
                .clone()
        };
        EndpointMetrics {
            requests: std::array::from_fn(|i| outcome(if i == 0 { "ok" } else { ERRORS[i - 1] })),
            latency: self
                .webhook_request_duration
                .get_or_create(&EndpointLabel {
                    hook: hook.name(),
                    endpoint: endpoint.to_owned(),
                })
                .clone(),
        }
    }

    /// Removes the series of a registration that is gone.
    pub fn forget_endpoint(&self, hook: Hook, endpoint: &str) {
        for outcome in ["ok"].iter().chain(&ERRORS) {
            self.webhook_requests.remove(&EndpointOutcome {
                hook: hook.name(),
                endpoint: endpoint.to_owned(),
                outcome,
            });
        }
        self.webhook_request_duration.remove(&EndpointLabel {
            hook: hook.name(),
            endpoint: endpoint.to_owned(),
        });
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
    fn every_hook_series_is_there_at_zero_before_its_first_event() {
        let text = Metrics::new().encode();
        for line in [
            r#"hookd_build_info{version=""#,
            r#"hookd_calls_total{hook="auth_on_register_m5",outcome="denied"} 0"#,
            r#"hookd_calls_total{hook="on_publish",outcome="ack"} 0"#,
            r#"hookd_calls_total{hook="on_publish",outcome="invalid_call"} 0"#,
            r#"hookd_cache_lookups_total{hook="auth_on_publish",outcome="hit"} 0"#,
            r#"hookd_notifications_dropped_total{hook="on_register",outcome="full"} 0"#,
            r#"hookd_call_duration_seconds_count{hook="auth_on_subscribe"} 0"#,
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(
            !text.contains(r#"hookd_calls_total{hook="on_publish",outcome="next"}"#),
            "a notification is never answered next:\n{text}"
        );
    }

    #[test]
    fn an_endpoint_has_its_series_from_registration_and_loses_them_with_it() {
        let metrics = Metrics::new();
        let endpoint = metrics.endpoint(Hook::AuthOnRegister, "http://hook/");
        let text = metrics.encode();
        assert!(
            text.contains(r#"hookd_webhook_requests_total{hook="auth_on_register",endpoint="http://hook/",outcome="timeout"} 0"#),
            "{text}"
        );
        endpoint.request(Err(ErrorKind::Timeout), Duration::from_millis(30));
        endpoint.request(Ok(()), Duration::from_micros(300));
        let text = metrics.encode();
        for line in [
            r#"hookd_webhook_requests_total{hook="auth_on_register",endpoint="http://hook/",outcome="timeout"} 1"#,
            r#"hookd_webhook_request_duration_seconds_count{hook="auth_on_register",endpoint="http://hook/"} 2"#,
            r#"hookd_webhook_request_duration_seconds_bucket{le="0.0005",hook="auth_on_register",endpoint="http://hook/"} 1"#,
            r#"hookd_webhook_request_duration_seconds_bucket{le="0.05",hook="auth_on_register",endpoint="http://hook/"} 2"#,
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        metrics.forget_endpoint(Hook::AuthOnRegister, "http://hook/");
        assert!(!metrics.encode().contains("http://hook/"));
    }

    #[test]
    fn latency_quantiles_are_bucket_bounds() {
        let latency = Latency::default();
        for ms in [1, 1, 1, 40] {
            latency.observe(Duration::from_millis(ms));
        }
        let snapshot = latency.snapshot();
        assert_eq!(snapshot.count(), 4);
        assert_eq!(snapshot.quantile(0.5), Some(Duration::from_millis(1)));
        assert_eq!(snapshot.quantile(0.99), Some(Duration::from_millis(50)));
        assert_eq!(snapshot.mean(), Some(Duration::from_micros(10_750)));
        assert_eq!(snapshot.since(&snapshot).count(), 0);
        assert_eq!(LatencySnapshot::default().quantile(0.5), None);
    }

    #[test]
    fn accept_errors_are_exposed_as_a_total() {
        let metrics = Metrics::new();
        metrics.accept_errors.inc();
        let text = metrics.encode();
        assert!(text.contains("hookd_accept_errors_total 1"), "{text}");
    }
}
