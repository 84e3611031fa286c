//! The status page (`GET /` on `metrics.listen`): what an operator wants to
//! see at a glance, as plain server-rendered HTML that reloads itself every
//! [`REFRESH_SECONDS`]: the brokers connected, each hook's webhooks with
//! their request rate, errors by kind and latency, calls by hook, the
//! verdict cache and the outbox.
//!
//! Rates and recent latencies are taken over a short window: a [`Window`]
//! keeps a sample of the counters every [`SAMPLE_EVERY`], and a page
//! compares the figures now with the oldest sample kept, so any number of
//! viewers see the same rates. Totals are since hookd started.

use std::{
    collections::{HashMap, VecDeque},
    fmt::Write,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use hookd_proto::Hook;

use crate::{
    dispatch::Dispatcher,
    metrics::{LatencySnapshot, Metrics},
};

/// How often the page reloads itself.
pub const REFRESH_SECONDS: u32 = 5;

/// How often the counters are sampled for rates.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Samples kept: rates are over the last `SAMPLES × SAMPLE_EVERY` (10 s).
const SAMPLES: usize = 5;

/// The figures behind the page, sampled for rates.
pub struct Window {
    samples: Mutex<VecDeque<Sample>>,
}

/// The counters at one moment.
#[derive(Clone)]
struct Sample {
    at: Instant,
    /// Per hook: calls answered in all, and their latency.
    calls: Vec<(u64, LatencySnapshot)>,
    /// Per registration (hook, endpoint as shown): requests and their latency.
    endpoints: HashMap<(Hook, Arc<str>), (u64, LatencySnapshot)>,
}

/// Whether hookd is ready, and why not, for the page's headline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Ready to serve brokers.
    pub ready: bool,
    /// What is not ready, or "ready".
    pub reason: &'static str,
}

impl Window {
    /// A window whose first sample is now.
    pub fn new(dispatcher: &Dispatcher) -> Self {
        Self {
            samples: Mutex::new(VecDeque::from([Sample::take(dispatcher)])),
        }
    }

    /// Takes a sample, forgetting the oldest past [`SAMPLES`].
    pub fn sample(&self, dispatcher: &Dispatcher) {
        let sample = Sample::take(dispatcher);
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        samples.push_back(sample);
        while samples.len() > SAMPLES + 1 {
            samples.pop_front();
        }
    }

    fn oldest(&self) -> Sample {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        // Never empty: `new` puts one in and `sample` keeps at least one.
        samples.front().cloned().unwrap_or_else(|| Sample {
            at: Instant::now(),
            calls: Vec::new(),
            endpoints: HashMap::new(),
        })
    }
}

impl Sample {
    fn take(dispatcher: &Dispatcher) -> Self {
        let metrics = dispatcher.metrics();
        let calls = Hook::ALL
            .iter()
            .map(|hook| {
                let latency = metrics.call_duration(*hook).snapshot();
                (latency.count(), latency)
            })
            .collect();
        let mut endpoints = HashMap::new();
        for hook in Hook::ALL {
            for endpoint in dispatcher.registry().endpoints(hook).iter() {
                let figures = endpoint.metrics();
                let requests = figures.requests().iter().map(|(_, n)| n).sum();
                endpoints.insert(
                    (hook, endpoint.name().clone()),
                    (requests, figures.latency().snapshot()),
                );
            }
        }
        Self {
            at: Instant::now(),
            calls,
            endpoints,
        }
    }
}

/// The page, now.
pub fn render(dispatcher: &Dispatcher, window: &Window, readiness: &Readiness, started: Instant) -> String {
    let then = window.oldest();
    let now = Sample::take(dispatcher);
    let span = now.at.duration_since(then.at).max(Duration::from_millis(1));
    let rate = |delta: u64| delta as f64 / span.as_secs_f64();
    let metrics = dispatcher.metrics();
    let mut page = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail.
    let _ = write!(
        page,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hookd status</title>
<style>{STYLE}</style></head><body>
<header><h1>hookd <small>{version}</small></h1>
<p><span id="readiness" class="badge {badge}">{reason}</span>
up {uptime} · rates over the last {window} · this page reloads every {REFRESH_SECONDS} s ·
<a href="/metrics">/metrics</a></p></header>
"#,
        version = env!("CARGO_PKG_VERSION"),
        badge = if readiness.ready { "good" } else { "bad" },
        reason = escape(readiness.reason),
        uptime = human(started.elapsed()),
        window = human(span),
    );
    brokers(&mut page, dispatcher);
    webhooks(&mut page, dispatcher, &then, &now, &rate);
    calls(&mut page, metrics, &then, &now, &rate);
    cache(&mut page, dispatcher);
    outbox(&mut page, dispatcher);
    page.push_str("</body></html>\n");
    page
}

fn brokers(page: &mut String, dispatcher: &Dispatcher) {
    let brokers = dispatcher.brokers().list();
    let now_ms = crate::outbox::now_ms();
    let _ = write!(
        page,
        r#"<section id="brokers"><h2>Brokers connected: {}</h2>"#,
        brokers.len()
    );
    if brokers.is_empty() {
        page.push_str(r#"<p class="quiet">No broker has a stream open to this hookd.</p></section>"#);
        return;
    }
    page.push_str(
        "<table><tr><th>Node</th><th>Broker</th><th>Version</th><th>Address</th>\
         <th>Connected for</th><th class=n>Calls waiting</th></tr>",
    );
    for broker in brokers {
        let since = Duration::from_millis(now_ms.saturating_sub(broker.since_ms));
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td></tr>",
            escape(&broker.node_id),
            escape(&broker.kind),
            escape(&broker.version),
            broker
                .address
                .map_or_else(|| "unknown".to_owned(), |address| address.to_string()),
            human(since),
            broker.calls_in_flight(),
        );
    }
    page.push_str("</table></section>\n");
}

fn webhooks(
    page: &mut String,
    dispatcher: &Dispatcher,
    then: &Sample,
    now: &Sample,
    rate: &dyn Fn(u64) -> f64,
) {
    page.push_str(r#"<section id="webhooks"><h2>Webhooks</h2>"#);
    let registered: Vec<_> = Hook::ALL
        .iter()
        .map(|hook| (*hook, dispatcher.registry().endpoints(*hook)))
        .filter(|(_, endpoints)| !endpoints.is_empty())
        .collect();
    if registered.is_empty() {
        page.push_str(
            r#"<p class="quiet">No webhook is registered: every decision hook answers <code>next</code>, every notification <code>ack</code>.</p></section>"#,
        );
        return;
    }
    page.push_str(
        "<table><tr><th>Hook</th><th>Endpoint</th><th class=n>Requests/s</th><th class=n>Requests</th>\
         <th>Errors by kind</th><th class=n>p50</th><th class=n>p99</th><th class=n>Mean</th></tr>",
    );
    for (hook, endpoints) in &registered {
        for endpoint in endpoints.iter() {
            let key = (*hook, endpoint.name().clone());
            let figures = endpoint.metrics();
            let requests = figures.requests();
            let total: u64 = requests.iter().map(|(_, n)| n).sum();
            let (before, latency_before) = then.endpoints.get(&key).copied().unwrap_or_default();
            let recent = now
                .endpoints
                .get(&key)
                .map_or_else(LatencySnapshot::default, |(_, latency)| {
                    latency.since(&latency_before)
                });
            // Latency of the window when it saw requests, else since start.
            let latency = if recent.count() > 0 {
                recent
            } else {
                figures.latency().snapshot()
            };
            let errors: Vec<String> = requests[1..]
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            let errors = if errors.is_empty() {
                r#"<span class="quiet">none</span>"#.to_owned()
            } else {
                format!(r#"<span class="bad-text">{}</span>"#, errors.join(", "))
            };
            let _ = write!(
                page,
                "<tr><td>{hook}</td><td class=endpoint>{}</td><td class=n>{:.1}</td><td class=n>{total}</td>\
                 <td>{errors}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                escape(endpoint.name()),
                rate(total.saturating_sub(before)),
                latency_text(latency.quantile(0.5), latency.count()),
                latency_text(latency.quantile(0.99), latency.count()),
                latency.mean().map_or_else(|| "–".to_owned(), duration_text),
            );
        }
    }
    page.push_str("</table>");
    let without: Vec<&str> = Hook::ALL
        .iter()
        .filter(|hook| !registered.iter().any(|(h, _)| h == *hook))
        .map(|hook| hook.name())
        .collect();
    if !without.is_empty() {
        let _ = write!(
            page,
            r#"<p class="quiet">Without a webhook (answered <code>next</code> or <code>ack</code>): {}</p>"#,
            without.join(", ")
        );
    }
    page.push_str("</section>\n");
}

fn calls(page: &mut String, metrics: &Metrics, then: &Sample, now: &Sample, rate: &dyn Fn(u64) -> f64) {
    page.push_str(
        r#"<section id="calls"><h2>Calls by hook</h2><table><tr><th>Hook</th><th class=n>Calls/s</th><th class=n>Calls</th><th>Verdicts</th><th class=n>p50</th><th class=n>p99</th></tr>"#,
    );
    let mut any = false;
    for (i, hook) in Hook::ALL.iter().enumerate() {
        let (total, latency) = now.calls[i];
        let invalid = metrics.calls.get(*hook, "invalid_call");
        if total == 0 && invalid == 0 {
            continue;
        }
        any = true;
        let (before, latency_before) = then.calls.get(i).copied().unwrap_or_default();
        let recent = latency.since(&latency_before);
        let latency = if recent.count() > 0 { recent } else { latency };
        let verdicts: Vec<String> = [
            "ok",
            "next",
            "ack",
            "denied",
            "unavailable",
            "timeout",
            "invalid_response",
            "invalid_call",
            "overloaded",
        ]
        .iter()
        .map(|outcome| (outcome, metrics.calls.get(*hook, outcome)))
        .filter(|(_, n)| *n > 0)
        .map(|(outcome, n)| format!("{outcome} {n}"))
        .collect();
        let _ = write!(
            page,
            "<tr><td>{hook}</td><td class=n>{:.1}</td><td class=n>{total}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            rate(total.saturating_sub(before)),
            verdicts.join(", "),
            latency_text(latency.quantile(0.5), latency.count()),
            latency_text(latency.quantile(0.99), latency.count()),
        );
    }
    if !any {
        page.push_str(r#"<tr><td colspan=6 class="quiet">No call yet.</td></tr>"#);
    }
    page.push_str("</table></section>\n");
}

fn cache(page: &mut String, dispatcher: &Dispatcher) {
    let metrics = dispatcher.metrics();
    let (hits, misses) = Hook::ALL.iter().fold((0, 0), |(hits, misses), hook| {
        (
            hits + metrics.cache_lookups.get(*hook, "hit"),
            misses + metrics.cache_lookups.get(*hook, "miss"),
        )
    });
    let ratio = if hits + misses > 0 {
        format!("{:.0} %", hits as f64 * 100.0 / (hits + misses) as f64)
    } else {
        "–".to_owned()
    };
    let _ = writeln!(
        page,
        r#"<section id="cache"><h2>Verdict cache</h2><dl><dt>Entries</dt><dd>{}</dd><dt>Hits</dt><dd>{hits}</dd><dt>Misses</dt><dd>{misses}</dd><dt>Hit ratio</dt><dd>{ratio}</dd></dl></section>"#,
        dispatcher.cache().entries(),
    );
}

fn outbox(page: &mut String, dispatcher: &Dispatcher) {
    let outbox = dispatcher.outbox();
    let metrics = dispatcher.metrics();
    let endpoints = outbox.endpoints();
    let pending: u64 = endpoints.iter().map(|e| e.depth()).sum();
    let _ = write!(
        page,
        r#"<section id="outbox"><h2>Outbox</h2><dl><dt>Pending</dt><dd>{pending}</dd><dt>Bytes</dt><dd>{}</dd><dt>Oldest</dt><dd>{}</dd><dt>Store</dt><dd>{}</dd></dl>"#,
        outbox.used_bytes(),
        human(Duration::from_secs(
            u64::try_from(metrics.outbox_oldest_age_seconds.get()).unwrap_or(0)
        )),
        if outbox.is_open() {
            "open"
        } else {
            r#"<span class="bad-text">closed</span>"#
        },
    );
    if !endpoints.is_empty() {
        page.push_str(
            "<table><tr><th>Endpoint</th><th class=n>Pending</th><th class=n>Delivered</th>\
             <th class=n>Retried</th><th class=n>Dead letters</th><th>State</th></tr>",
        );
        for endpoint in &endpoints {
            let name = &endpoint.name;
            let _ = write!(
                page,
                "<tr><td class=endpoint>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
                escape(name),
                endpoint.depth(),
                metrics.outbox_delivered(name).get(),
                metrics.outbox_retried(name).get(),
                metrics.outbox_dead_lettered(name).get(),
                if endpoint.is_stopped() {
                    r#"<span class="bad-text">stopped (410 Gone)</span>"#
                } else {
                    "delivering"
                },
            );
        }
        page.push_str("</table>");
    }
    page.push_str("</section>\n");
}

/// A latency quantile for a table cell: at most its bucket's bound, or "–"
/// without observations, or "> 5 s" past the last finite bound.
fn latency_text(latency: Option<Duration>, observed: u64) -> String {
    match latency {
        _ if observed == 0 => "–".to_owned(),
        None => "&gt; 5 s".to_owned(),
        Some(d) => format!("≤ {}", duration_text(d)),
    }
}

/// A short duration in the unit that reads best: `250 µs`, `2.5 ms`, `1 s`.
fn duration_text(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", (d.as_secs_f64() * 10_000.0).round() / 10.0)
    } else {
        format!("{} s", (d.as_secs_f64() * 100.0).round() / 100.0)
    }
}

/// A duration as people read it: `42 s`, `3 m 12 s`, `2 h 5 m`, `3 d 4 h`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} m {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} m", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

/// Text made safe inside HTML: node ids and endpoints come from outside.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

const STYLE: &str = "
body{font:15px/1.4 system-ui,sans-serif;margin:1.5em 2em;color:#1d2330;background:#fafbfc}
h1{margin:0 0 .2em;font-size:1.6em}h1 small{color:#6a7385;font-weight:normal;font-size:.6em}
h2{font-size:1.15em;margin:1.4em 0 .5em;border-bottom:1px solid #dde1e8;padding-bottom:.2em}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0001}
th,td{padding:.35em .8em;border-bottom:1px solid #eceff4;text-align:left;vertical-align:top}
th{background:#f1f3f7;font-weight:600;font-size:.9em}
.n{text-align:right;font-variant-numeric:tabular-nums}
.endpoint{font-family:ui-monospace,monospace;font-size:.9em}
.quiet{color:#6a7385}.bad-text{color:#b42318;font-weight:600}
.badge{display:inline-block;padding:.1em .6em;border-radius:1em;font-weight:600;margin-right:.6em}
.good{background:#d1fadf;color:#05603a}.bad{background:#fee4e2;color:#b42318}
dl{display:grid;grid-template-columns:max-content max-content;gap:.2em 1.2em;margin:0}
dt{color:#6a7385}dd{margin:0;font-variant-numeric:tabular-nums}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_outside_is_escaped() {
        assert_eq!(
            escape(r#"<b>"x" & 'y'</b>"#),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(42)), "42 s");
        assert_eq!(human(Duration::from_secs(192)), "3 m 12 s");
        assert_eq!(human(Duration::from_secs(7500)), "2 h 5 m");
        assert_eq!(latency_text(Some(Duration::from_micros(250)), 1), "≤ 250 µs");
        assert_eq!(latency_text(Some(Duration::from_millis(25)), 1), "≤ 25 ms");
        assert_eq!(latency_text(None, 0), "–");
    }
}
