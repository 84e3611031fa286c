//! The webhook stub: the fastest honest vmq_webhooks endpoint, so that what
//! the benchmark measures is hookd and the HTTP hop, not the webhook.
//!
//! HTTP/1.1 with keep-alive (hyper, no router), TCP_NODELAY, every POST
//! answered `200 {"result":"ok"}` with `content-type: application/json`.
//! `cache-control: max-age=N` is added when the stub was started with
//! `--max-age N`, or for any path under `/max-age/N/`.
//!
//! Extras for the harness: `GET /stats` returns how many hook requests
//! arrived, and the p50/p99 of the delivery latency of those whose body
//! carries a send timestamp (the [`TIMESTAMP_MARKER`] followed by the
//! sender's wall clock in nanoseconds); `GET /stats?reset` also clears the
//! latency histogram. Sender and stub share the machine's clock.
//!
//! `GET /down` makes the stub refuse every hook request with `503` (counted
//! in `refused`) until `GET /up`: an endpoint outage, for the outbox's
//! catch-up measurement.
//!
//! Requests under `/hold/` are *held*: read, counted in `held`, and answered
//! only when `GET /release` arrives (which answers all requests held at that
//! moment, `{"released": N}`), so a benchmark can keep a known number of
//! webhook calls in flight without anything sleeping. A held request whose
//! connection closes stops counting as held; a released one is answered
//! with `connection: close`.

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::{net::TcpListener, sync::watch};

/// Precedes a send timestamp (wall-clock nanoseconds since the Unix epoch,
/// in decimal) inside a request body.
pub const TIMESTAMP_MARKER: &[u8] = b"@ts=";

/// What `GET /stats` answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Hook requests (any method but `GET /stats`) received since start.
    pub requests: u64,
    /// TCP connections accepted since start (pool churn shows here).
    pub connections: u64,
    /// Requests with a send timestamp since the last reset.
    pub timed: u64,
    /// Median delivery latency of those, in microseconds.
    pub p50_us: f64,
    /// 99th percentile delivery latency, in microseconds.
    pub p99_us: f64,
    /// Requests under `/hold/` waiting for `GET /release` right now.
    #[serde(default)]
    pub held: u64,
    /// Failed `accept` calls since start (e.g. out of file descriptors).
    #[serde(default)]
    pub accept_errors: u64,
    /// Hook requests answered `503` because the stub was down.
    #[serde(default)]
    pub refused: u64,
}

struct State {
    requests: AtomicU64,
    connections: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    max_age: Option<HeaderValue>,
    held: AtomicU64,
    accept_errors: AtomicU64,
    /// Bumped by `GET /release`; held requests wait for the next bump.
    release: watch::Sender<u64>,
    /// Between `GET /down` and `GET /up`.
    down: AtomicBool,
    refused: AtomicU64,
}

/// Counts one held request for as long as it lives (also when its
/// connection closes before the release).
struct Held<'a>(&'a AtomicU64);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves hook requests on `listener` until the process ends.
pub async fn serve(listener: TcpListener, max_age: Option<u32>) -> std::io::Result<()> {
    let state = Arc::new(State {
        requests: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        latency: Mutex::new(latency_histogram()),
        max_age: max_age.and_then(|n| HeaderValue::from_str(&format!("max-age={n}")).ok()),
        held: AtomicU64::new(0),
        accept_errors: AtomicU64::new(0),
        release: watch::Sender::new(0),
        down: AtomicBool::new(false),
        refused: AtomicU64::new(0),
    });
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors or a connection reset before accept:
                // the stub goes on (counted in /stats), after a short pause
                // so a persistent EMFILE does not spin.
                if state.accept_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("stub: accept failed: {error} (counted in /stats from now on)");
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        state.connections.fetch_add(1, Ordering::Relaxed);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), request));
            // A connection error only ends that connection.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A histogram of latencies in nanoseconds, 1 µs to 60 s, 2 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1_000, 60_000_000_000, 2)
        .expect("constant bounds: low >= 1, high >= 2 * low, 2 digits")
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() == Method::GET && request.uri().path() == "/stats" {
        let reset = request.uri().query().is_some_and(|q| q.contains("reset"));
        return Ok(stats(&state, reset));
    }
    if request.method() == Method::GET && request.uri().path() == "/release" {
        let released = state.held.load(Ordering::Relaxed);
        state.release.send_modify(|generation| *generation += 1);
        return Ok(json(format!(r#"{{"released":{released}}}"#).into_bytes()));
    }
    if request.method() == Method::GET && matches!(request.uri().path(), "/down" | "/up") {
        let down = request.uri().path() == "/down";
        state.down.store(down, Ordering::SeqCst);
        return Ok(json(format!(r#"{{"down":{down}}}"#).into_bytes()));
    }
    let hold = request.uri().path().starts_with("/hold/");
    let max_age = path_max_age(request.uri().path()).or_else(|| state.max_age.clone());
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    state.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(sent) = timestamp(&body) {
        let now = wall_clock_nanos();
        if let Ok(mut latency) = state.latency.lock() {
            let _ = latency.record(now.saturating_sub(sent).max(1_000));
        }
    }
    if state.down.load(Ordering::SeqCst) {
        state.refused.fetch_add(1, Ordering::Relaxed);
        let mut response = Response::new(Full::new(Bytes::from_static(b"down")));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return Ok(response);
    }
    if hold {
        // Subscribed before counting: a release that follows the count is
        // always seen.
        let mut released = state.release.subscribe();
        state.held.fetch_add(1, Ordering::Relaxed);
        let _held = Held(&state.held);
        // Err only if the sender is gone, i.e. never while the stub runs.
        let _ = released.changed().await;
    }
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"result":"ok"}"#)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(max_age) = max_age {
        headers.insert(header::CACHE_CONTROL, max_age);
    }
    if hold {
        // The stub closes first, so the TIME_WAIT of each of these many
        // connections sits on the stub's port, not on a loopback port the
        // client took from the ephemeral range (which a run may exhaust).
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

fn stats(state: &State, reset: bool) -> Response<Full<Bytes>> {
    let mut stats = Stats {
        requests: state.requests.load(Ordering::Relaxed),
        connections: state.connections.load(Ordering::Relaxed),
        held: state.held.load(Ordering::Relaxed),
        accept_errors: state.accept_errors.load(Ordering::Relaxed),
        refused: state.refused.load(Ordering::Relaxed),
        ..Stats::default()
    };
    if let Ok(mut latency) = state.latency.lock() {
        stats.timed = latency.len();
        stats.p50_us = latency.value_at_quantile(0.5) as f64 / 1_000.0;
        stats.p99_us = latency.value_at_quantile(0.99) as f64 / 1_000.0;
        if reset {
            latency.reset();
        }
    }
    json(serde_json::to_vec(&stats).unwrap_or_default())
}

/// A `200` answer with a JSON `body`.
fn json(body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    *response.status_mut() = StatusCode::OK;
    response
}

/// `max-age=N` for a path under `/max-age/N/`.
fn path_max_age(path: &str) -> Option<HeaderValue> {
    let seconds = path.strip_prefix("/max-age/")?.split('/').next()?;
    let seconds: u32 = seconds.parse().ok()?;
    HeaderValue::from_str(&format!("max-age={seconds}")).ok()
}

/// The send timestamp in `body`, if it carries one.
fn timestamp(body: &[u8]) -> Option<u64> {
    let at = body
        .windows(TIMESTAMP_MARKER.len())
        .position(|w| w == TIMESTAMP_MARKER)?;
    let digits = &body[at + TIMESTAMP_MARKER.len()..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// Wall-clock time in nanoseconds since the Unix epoch (0 if the clock is
/// before it).
pub fn wall_clock_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_is_found_inside_a_json_body() {
        let body = br#"{"client_id":"c","payload":"@ts=1234567|padding","retain":false}"#;
        assert_eq!(timestamp(body), Some(1_234_567));
        assert_eq!(timestamp(br#"{"payload":"none"}"#), None);
    }

    #[tokio::test]
    async fn held_requests_wait_for_the_release() -> anyhow::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(serve(listener, None));
        crate::install_crypto_provider();
        let http = reqwest::Client::new();
        let stats = |http: reqwest::Client, base: String| async move {
            let stats: Stats = http.get(format!("{base}/stats")).send().await?.json().await?;
            anyhow::Ok(stats)
        };
        let held = tokio::spawn(http.post(format!("{base}/hold/x")).body("{}").send());
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while stats(http.clone(), base.clone()).await?.held < 1 {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "never held");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(!held.is_finished());
        let released = http.get(format!("{base}/release")).send().await?.text().await?;
        assert_eq!(released, r#"{"released":1}"#);
        let answer = tokio::time::timeout(std::time::Duration::from_secs(5), held).await???;
        assert_eq!(answer.text().await?, r#"{"result":"ok"}"#);
        assert_eq!(stats(http, base).await?.held, 0);
        Ok(())
    }

    #[test]
    fn max_age_comes_from_the_path() {
        assert_eq!(
            path_max_age("/max-age/3600/x").as_ref().map(|v| v.to_str().ok()),
            Some(Some("max-age=3600"))
        );
        assert!(path_max_age("/plain").is_none());
        assert!(path_max_age("/max-age/soon/").is_none());
    }
}
