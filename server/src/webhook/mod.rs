//! The webhook back door: calls one HTTP endpoint for one hook call, or
//! appends a notification to a `file://` sink.
//!
//! An [`Endpoint`] POSTs the JSON body in its dialect (vmq_webhooks' by
//! [`vmq::encode_request`]; RMQTT's and NanoMQ's by [`hookd_proto::events`],
//! notifications only) with `content-type: application/json`,
//! `vernemq-hook: <hook>` and the webhook's own `headers`, over a
//! keep-alive pool shared by every registration of the same URL (as vmq shares
//! one hackney pool per URL), with TCP_NODELAY and a deadline that covers the
//! whole response body. The answer is read up to a size cap and decoded into a
//! verdict ([`vmq::decode_answer`]). This module is only the HTTP glue; the
//! JSON is the shared codec's. Every way this can fail is a [`WebhookError`]
//! that knows its [`ErrorKind`].
//!
//! `https://` endpoints speak TLS with the settings of [`tls`]; a webhook
//! with a `secret` gets every request signed ([`sign`]).

pub mod sign;
pub mod tls;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{sync::Semaphore, time::Instant};

use http::{HeaderMap, HeaderName, HeaderValue, header};
use reqwest::{Client, StatusCode, Url};

use hookd_proto::{
    ErrorKind, Hook, HookCall, Verdict,
    events::{self, Dialect, EventOptions, Moment},
    payload::Encoding,
    vmq::{self, AnswerError, PayloadEncoding},
};

use crate::{
    config::{HttpConfig, WebhookConfig},
    metrics::EndpointMetrics,
    redact, shard,
};

/// A webhook endpoint registered for one hook, ready to be called.
#[derive(Debug)]
pub struct Endpoint {
    url: Url,
    /// The file a `file://` endpoint appends to, behind a lock so that
    /// concurrent deliveries write whole lines; `None` for HTTP.
    file: Option<(PathBuf, tokio::sync::Mutex<()>)>,
    dialect: Dialect,
    /// Encoding, `action` and `topics` rules, for every dialect.
    events: EventOptions,
    /// The webhook's `headers`.
    headers: HeaderMap,
    /// The URL exactly as configured: the endpoint's identity (registry,
    /// cache keys). Never shown: it may carry credentials.
    id: Arc<str>,
    /// The URL as logs, verdict reasons and errors show it ([`redact`]).
    name: Arc<str>,
    encoding: PayloadEncoding,
    timeout: Duration,
    max_response_bytes: usize,
    /// `retry_budget_ms` (`None`: retried forever).
    retry_budget: Option<Duration>,
    /// Signs every request when the webhook has a `secret`.
    signer: Option<sign::Signer>,
    pools: Pools,
    /// Its requests' counters and latency ([`Endpoint::with_metrics`]).
    metrics: EndpointMetrics,
}

/// The keep-alive pools of one endpoint URL, one per shard, so a request
/// rides a connection driven by its own shard's thread
/// ([`crate::shard`]), and a last one for the outbox's deliveries, so a
/// backlog being delivered never takes the connections brokers' calls wait
/// for. Shared by every registration of the URL.
pub type Pools = Arc<[Pool]>;

/// One shard's connections to one endpoint URL: at most
/// `http.pool_max_connections` open, all kept alive when idle. A request
/// takes a slot before it is sent and frees it with the answer, so a burst
/// waits for a connection instead of opening ones the pool would close again
/// (which, past a few thousand, exhausts loopback ports in TIME_WAIT).
#[derive(Debug)]
pub struct Pool {
    client: Client,
    slots: Semaphore,
    /// When the pool last made progress (a slot taken at once, or a request
    /// finished), in ms since `epoch`.
    progress_ms: AtomicU64,
    epoch: Instant,
    /// `http.stall_timeout_ms`.
    stall_timeout: Duration,
}

impl Pool {
    fn progressed(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.progress_ms.store(ms, Ordering::Relaxed);
    }

    /// How long every slot has been busy without a request finishing, if
    /// longer than `http.stall_timeout_ms`.
    fn stalled(&self) -> Option<Duration> {
        let since = self
            .epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(self.progress_ms.load(Ordering::Relaxed)));
        (since > self.stall_timeout).then_some(since)
    }
}

/// Marks progress when a request that held a slot finishes, however it ends.
struct Finished<'a>(&'a Pool);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.progressed();
    }
}

/// The deadline of the hook call a webhook request is made for.
#[derive(Debug, Clone, Copy)]
pub struct CallDeadline {
    /// When the caller stops waiting.
    pub at: Instant,
    /// The whole budget the call was given, for the error message.
    pub budget: Duration,
}

/// An endpoint's usable answer: its verdict, and how long it may be cached.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The verdict the endpoint gave.
    pub verdict: Verdict,
    /// `cache-control: max-age`, when present and positive.
    pub max_age: Option<Duration>,
}

/// Why an endpoint gave no usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    /// The endpoint answered with a status other than 200.
    #[error("invalid response code {0}")]
    Status(u16),
    /// The body is not JSON.
    #[error("response is not JSON: {0}")]
    NotJson(String),
    /// The JSON is not a valid answer for the hook.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The body is larger than the configured cap.
    #[error("response body exceeds {0} bytes")]
    TooLarge(usize),
    /// No complete answer within the endpoint's response timeout.
    #[error("no complete response within {0:?}")]
    Timeout(Duration),
    /// The hook call's own deadline passed before the answer was complete.
    #[error("no verdict within the call deadline {0:?}")]
    CallDeadline(Duration),
    /// The endpoint could not be reached or the connection failed (or a
    /// file sink could not be written).
    #[error("endpoint unavailable: {0}")]
    Unavailable(String),
    /// The call cannot be written in the endpoint's dialect and encoding
    /// (a payload that is not UTF-8 for `plain`): never worth a retry.
    #[error("cannot encode the notification: {0}")]
    Unencodable(String),
    /// Every connection to the endpoint is busy and none finished a request
    /// for longer than `http.stall_timeout_ms`: failed at once.
    #[error("endpoint stalled: all its connections busy, none answered for {0:?} (http.stall_timeout_ms)")]
    Stalled(Duration),
}

impl From<AnswerError> for WebhookError {
    fn from(e: AnswerError) -> Self {
        match e {
            AnswerError::NotJson(message) => WebhookError::NotJson(message),
            AnswerError::Invalid(message) => WebhookError::InvalidResponse(message),
        }
    }
}

impl WebhookError {
    /// The verdict error kind this failure maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            WebhookError::Status(_)
            | WebhookError::NotJson(_)
            | WebhookError::InvalidResponse(_)
            | WebhookError::TooLarge(_) => ErrorKind::InvalidResponse,
            WebhookError::Timeout(_) | WebhookError::CallDeadline(_) => ErrorKind::Timeout,
            WebhookError::Unavailable(_) => ErrorKind::Unavailable,
            WebhookError::Unencodable(_) => ErrorKind::InvalidCall,
            WebhookError::Stalled(_) => ErrorKind::Overloaded,
        }
    }
}

/// Builds the connection pools (one per shard, one for deliveries) for one
/// endpoint URL, speaking TLS (for `https://`) with `tls`.
pub fn pools(http: &HttpConfig, shards: usize, tls: &rustls::ClientConfig) -> Result<Pools, reqwest::Error> {
    (0..shards.max(1) + 1)
        .map(|_| {
            Ok(Pool {
                client: client(http, tls.clone())?,
                slots: Semaphore::new(http.pool_max_connections),
                progress_ms: AtomicU64::new(0),
                epoch: Instant::now(),
                stall_timeout: Duration::from_millis(http.stall_timeout_ms),
            })
        })
        .collect()
}

fn client(http: &HttpConfig, tls: rustls::ClientConfig) -> Result<Client, reqwest::Error> {
    Client::builder()
        .tls_backend_preconfigured(tls)
        .pool_max_idle_per_host(http.pool_max_connections)
        .pool_idle_timeout(Duration::from_millis(http.pool_idle_timeout))
        // A missing TCP_NODELAY cost VerneMQ 40 ms per call (Nagle +
        // delayed ACK); small JSON requests must go out at once.
        .tcp_nodelay(true)
        // vmq_webhooks does not follow redirects either: a 3xx is an
        // invalid response, and the call never goes where Location says.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
}

impl Endpoint {
    /// An endpoint for `webhook`, calling through `pools` (shared by all
    /// registrations of the same URL) and signing with `signer` (from the
    /// webhook's `secret`). Fails if the URL does not parse.
    pub fn new(
        webhook: &WebhookConfig,
        http: &HttpConfig,
        pools: Pools,
        signer: Option<sign::Signer>,
    ) -> Result<Self, url::ParseError> {
        // Checked at load (`WebhookConfig::check`), so none is dropped.
        let headers = webhook
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_bytes(name.as_bytes()).ok()?,
                    HeaderValue::from_str(value).ok()?,
                ))
            })
            .collect();
        Ok(Self {
            url: Url::parse(&webhook.endpoint)?,
            file: webhook
                .file_path()
                .map(|path| (path, tokio::sync::Mutex::new(()))),
            dialect: webhook.dialect,
            events: EventOptions {
                encoding: webhook.encoding(),
                action: webhook.action.clone(),
                topics: webhook.topic_filters(),
            },
            headers,
            id: Arc::from(webhook.endpoint.as_str()),
            name: Arc::from(redact::shown(&webhook.endpoint)),
            encoding: PayloadEncoding {
                base64: webhook.encoding() == Encoding::Base64,
                omit_for_auth_on_publish: webhook.no_payload,
            },
            timeout: webhook.response_timeout(),
            max_response_bytes: http.max_response_bytes,
            retry_budget: webhook.retry_budget(),
            signer,
            pools,
            metrics: EndpointMetrics::default(),
        })
    }

    /// The endpoint, counting its requests into `metrics` (its series in
    /// hookd's registry) rather than into counters nobody reads.
    pub fn with_metrics(self, metrics: EndpointMetrics) -> Self {
        Self { metrics, ..self }
    }

    /// Its requests' counters and latency.
    pub fn metrics(&self) -> &EndpointMetrics {
        &self.metrics
    }

    /// The endpoint URL exactly as configured: its identity in the
    /// registry and the cache. Never log or return it: it may carry
    /// credentials; [`Endpoint::name`] is for showing.
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// The endpoint URL as it may be shown: credentials and query redacted.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Whether `call` passes this webhook's `topics` rules: true without
    /// rules and for hooks about no topic, else when one of its topics
    /// matches a filter.
    pub fn wants(&self, call: &HookCall) -> bool {
        let filters = &self.events.topics;
        filters.is_empty()
            || call
                .topics()
                .is_none_or(|topics| topics.iter().any(|t| filters.iter().any(|f| f.matches(t))))
    }

    /// The bodies of one notification in this webhook's dialect: one, or
    /// one per topic (RMQTT's subscriptions), each topic passing the
    /// `topics` rules; none if no topic passes.
    fn bodies(&self, call: &HookCall, accepted_ms: u64) -> Result<Vec<Vec<u8>>, WebhookError> {
        let at = Moment {
            accepted_ms,
            now_ms: now_ms(),
        };
        let encoded = match self.dialect {
            Dialect::Vernemq => {
                let filters = &self.events.topics;
                let narrowed = if filters.is_empty() {
                    Some(call.clone())
                } else {
                    call.with_topics(|t| filters.iter().any(|f| f.matches(t)))
                };
                let Some(call) = narrowed else {
                    return Ok(Vec::new());
                };
                if self.events.encoding == Encoding::Plain
                    && let hookd_proto::HookArgs::Publish(p) = call.args()
                {
                    // vmq's raw payloads are JSON text too: refused rather
                    // than mangled when they are not UTF-8.
                    Encoding::Plain
                        .encode(&p.payload)
                        .map_err(|e| WebhookError::Unencodable(e.to_string()))?;
                }
                return Ok(vec![vmq::encode_request(&call, self.encoding)]);
            }
            Dialect::Rmqtt => events::rmqtt::encode(call, &self.events, at),
            Dialect::Nanomq => events::nanomq::encode(call, &self.events, at),
        };
        encoded.map_err(|e| WebhookError::Unencodable(e.to_string()))
    }

    /// The calling shard's pool.
    fn shard_pool(&self) -> &Pool {
        // The last pool is the deliveries'.
        let shards = self.pools.len().saturating_sub(1).max(1);
        &self.pools[shard::current() % shards]
    }

    /// The outbox deliveries' pool: the last one.
    fn delivery_pool(&self) -> &Pool {
        &self.pools[self.pools.len() - 1]
    }

    /// POSTs `call` and reads the answer, all within the response timeout
    /// and, when given, before the call's own `deadline` (one deadline for
    /// both, and for the wait for a free connection).
    pub async fn call(
        &self,
        call: &HookCall,
        deadline: Option<CallDeadline>,
    ) -> Result<Answer, WebhookError> {
        let own = Instant::now() + self.timeout;
        let until = deadline.map_or(own, |d| d.at.min(own));
        let expired = || match deadline {
            Some(d) if d.at < own => WebhookError::CallDeadline(d.budget),
            _ => WebhookError::Timeout(self.timeout),
        };
        let pool = self.shard_pool();
        // Held until the answer is read, so the connection is back in the
        // pool before the slot is. A call waiting for one is this small
        // future; the request's own, much larger, is made (boxed) only once
        // a connection is free.
        let _slot = match pool.slots.try_acquire() {
            Ok(slot) => {
                pool.progressed();
                slot
            }
            Err(_) => {
                // The bulkhead: an endpoint whose every connection is stuck
                // fails its calls at once instead of letting them fill the
                // broker's stream window for a whole timeout each. One that
                // keeps answering, however busy, is waited for.
                if let Some(stalled) = pool.stalled() {
                    return Err(WebhookError::Stalled(stalled));
                }
                match tokio::time::timeout_at(until, pool.slots.acquire()).await {
                    Ok(Ok(slot)) => slot,
                    Ok(Err(_)) => {
                        return Err(WebhookError::Unavailable("the connection pool is closed".into()));
                    }
                    Err(_) => return Err(expired()),
                }
            }
        };
        // Dropped (after the slot) when the request ends, however it ends.
        let _finished = Finished(pool);
        let body = vmq::encode_request(call, self.encoding);
        match tokio::time::timeout_at(until, Box::pin(self.exchange(&pool.client, call.hook(), body))).await {
            Ok(result) => result,
            Err(_) => Err(expired()),
        }
    }

    async fn exchange(&self, client: &Client, hook: Hook, body: Vec<u8>) -> Result<Answer, WebhookError> {
        let mut request = client
            .post(self.url.clone())
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("vernemq-hook", HeaderValue::from_static(hook.name()))
            .headers(self.headers.clone());
        // A decision call is never retried: a signed one gets an id of its
        // own, so a receiver that de-duplicates by it sees each call once.
        if let Some(signer) = &self.signer {
            for (name, value) in signed_headers(signer, &sign::fresh_id(), unix_seconds(), &body) {
                request = request.header(name, value);
            }
        }
        let mut response = request.body(body).send().await.map_err(transport)?;
        if response.status() != StatusCode::OK {
            return Err(WebhookError::Status(response.status().as_u16()));
        }
        let max_age = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(vmq::max_age);
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(WebhookError::TooLarge(self.max_response_bytes));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > self.max_response_bytes {
                return Err(WebhookError::TooLarge(self.max_response_bytes));
            }
            bytes.extend_from_slice(&chunk);
        }
        let verdict = vmq::decode_answer(hook, &bytes, self.encoding)?;
        Ok(Answer { verdict, max_age })
    }
}

/// An endpoint's answer to one notification delivery: its status, and its
/// `Retry-After` header if it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAnswer {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After`, as sent (seconds or an HTTP date).
    pub retry_after: Option<String>,
}

impl Endpoint {
    /// This registration's retry budget: how long after its acceptance a
    /// notification may still be retried; `None` is forever.
    pub fn retry_budget(&self) -> Option<Duration> {
        self.retry_budget
    }

    /// POSTs `call` as one delivery of the outbox, with the Standard Webhooks
    /// headers ([`standard_headers`]) for `webhook_id`. Waits for a free
    /// connection as long as it takes (the outbox's window bounds how many
    /// wait); the response timeout counts from when the request is sent, so
    /// time spent queueing for a connection never turns into a timeout the
    /// endpoint did not cause. The answer's body is read (so the connection
    /// can be reused) and ignored, as vmq_webhooks ignores it. A `file://`
    /// endpoint appends the bodies as lines instead. `accepted_ms` is when
    /// hookd accepted the notification: the event's time in the RMQTT and
    /// NanoMQ bodies.
    pub async fn deliver(
        &self,
        call: &HookCall,
        webhook_id: &str,
        accepted_ms: u64,
    ) -> Result<DeliveryAnswer, WebhookError> {
        let bodies = self.bodies(call, accepted_ms)?;
        if let Some((path, lock)) = &self.file {
            let _writing = lock.lock().await;
            return append_lines(path, &bodies).await.map(|()| DeliveryAnswer {
                status: 200,
                retry_after: None,
            });
        }
        // Several bodies (one per topic) go one after another; the first
        // that is not taken decides, and a retry sends them all again, as
        // each is an event of its own to the receiver (at least once).
        let mut answer = DeliveryAnswer {
            status: 200,
            retry_after: None,
        };
        for body in bodies {
            answer = self.post(call.hook(), webhook_id, body).await?;
            if !(200..300).contains(&answer.status) {
                break;
            }
        }
        Ok(answer)
    }

    /// POSTs one delivery body.
    async fn post(
        &self,
        hook: Hook,
        webhook_id: &str,
        body: Vec<u8>,
    ) -> Result<DeliveryAnswer, WebhookError> {
        let pool = self.delivery_pool();
        let _slot = pool
            .slots
            .acquire()
            .await
            .map_err(|_| WebhookError::Unavailable("the connection pool is closed".into()))?;
        let _finished = Finished(pool);
        let mut request = pool
            .client
            .post(self.url.clone())
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("vernemq-hook", HeaderValue::from_static(hook.name()));
        let timestamp = unix_seconds();
        match &self.signer {
            Some(signer) => {
                for (name, value) in signed_headers(signer, webhook_id, timestamp, &body) {
                    request = request.header(name, value);
                }
            }
            None => {
                for (name, value) in standard_headers(webhook_id, timestamp) {
                    request = request.header(name, value);
                }
            }
        }
        let exchange = async {
            let mut response = request
                .headers(self.headers.clone())
                .body(body)
                .send()
                .await
                .map_err(transport)?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut read = 0;
            // Read to the end so the connection goes back to the pool; past
            // the cap it is not worth the wait, and the answer is ignored.
            while read <= self.max_response_bytes
                && let Some(chunk) = response.chunk().await.map_err(transport)?
            {
                read += chunk.len();
            }
            Ok(DeliveryAnswer { status, retry_after })
        };
        match tokio::time::timeout(self.timeout, Box::pin(exchange)).await {
            Ok(result) => result,
            Err(_) => Err(WebhookError::Timeout(self.timeout)),
        }
    }
}

/// Appends `bodies` to the file at `path`, one per line, creating it and
/// its parent directories; flushed to disk before it returns, since the
/// outbox forgets a notification once it is delivered. On the blocking
/// pool: file writes and `fsync` block.
async fn append_lines(path: &std::path::Path, bodies: &[Vec<u8>]) -> Result<(), WebhookError> {
    use std::io::Write;
    if bodies.is_empty() {
        return Ok(());
    }
    let mut lines = Vec::with_capacity(bodies.iter().map(|b| b.len() + 1).sum());
    for body in bodies {
        lines.extend_from_slice(body);
        lines.push(b'\n');
    }
    let owned = path.to_owned();
    let write = tokio::task::spawn_blocking(move || {
        if let Some(parent) = owned.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&owned)?;
        file.write_all(&lines)?;
        file.sync_data()
    });
    match write.await {
        Ok(result) => {
            result.map_err(|e| WebhookError::Unavailable(format!("file sink {}: {e}", path.display())))
        }
        Err(e) => Err(WebhookError::Unavailable(format!(
            "file sink {}: {e}",
            path.display()
        ))),
    }
}

/// Now, in ms since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The Standard Webhooks headers of one delivery attempt: `webhook-id`, the
/// event's id, the same on every retry (receivers de-duplicate by it), and
/// `webhook-timestamp`, this attempt's time in Unix seconds.
pub fn standard_headers(webhook_id: &str, timestamp: u64) -> [(&'static str, String); 2] {
    [
        ("webhook-id", webhook_id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
    ]
}

/// [`standard_headers`] and `webhook-signature` over (id, timestamp, body).
pub fn signed_headers(
    signer: &sign::Signer,
    webhook_id: &str,
    timestamp: u64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let [id, time] = standard_headers(webhook_id, timestamp);
    [
        id,
        time,
        ("webhook-signature", signer.sign(webhook_id, timestamp, body)),
    ]
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The operating system's "too many open files" for the process (`EMFILE`)
/// and for the whole system (`ENFILE`).
const OUT_OF_DESCRIPTORS: [i32; 2] = [24, 23];

fn transport(e: reqwest::Error) -> WebhookError {
    // Walk to the root cause: "connection refused" says more than
    // "error sending request".
    let mut source: &dyn std::error::Error = &e;
    while let Some(next) = source.source() {
        source = next;
    }
    let out_of_descriptors = source
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::raw_os_error)
        .is_some_and(|code| OUT_OF_DESCRIPTORS.contains(&code));
    // A failed handshake says what failed ("invalid peer certificate:
    // UnknownIssuer", "… Expired", "… NotValidForName"), and that it was TLS.
    if let Some(tls) = tls_cause(&e) {
        return WebhookError::Unavailable(format!("TLS handshake with the endpoint failed: {tls}"));
    }
    if out_of_descriptors {
        // An operator reading "Too many open files" alone would look at the
        // endpoint; the cause is hookd's own limit.
        return WebhookError::Unavailable(format!(
            "hookd is out of file descriptors and cannot open a connection to the endpoint \
             (raise its RLIMIT_NOFILE, or lower http.pool_max_connections or server.max_connections): {source}"
        ));
    }
    WebhookError::Unavailable(source.to_string())
}

/// The TLS error somewhere in `e`'s chain of causes, if any.
fn tls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // An I/O error's `source()` skips the error it wraps (tokio-rustls'
        // InvalidData around rustls', inside hyper's Other): unwrap it.
        next = match error.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}
