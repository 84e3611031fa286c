//! A real HTTP webhook endpoint for tests: an axum 0.8 server on `127.0.0.1:0`
//! whose answers a test scripts with [`Reply`], and which records every request.
//!
//! A [`Webhook`] answers each request with the reply its responder picks (fixed,
//! changed at run time with [`Webhook::set_reply`], or computed from the request
//! with [`WebhookBuilder::respond_with`]). It can fail the first n requests, hold
//! every request until the test calls [`Webhook::release`], delay its answer, or
//! stream its body in chunks (slowly, to dribble past a deadline). Requests are
//! counted and recorded the moment they arrive, before any hold or delay, so a
//! test can see a request that is still being answered. With
//! [`WebhookBuilder::tls`] it serves HTTPS.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri},
    response::Response,
};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

/// Picks the reply to one recorded request.
pub type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// One scripted HTTP answer: status, headers, body, and how it is sent.
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    delay: Option<Duration>,
    /// Stream the body in chunks of this many bytes, each after this pause.
    chunks: Option<(usize, Duration)>,
}

/// One request as the webhook received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The HTTP method.
    pub method: Method,
    /// The request target, path and query.
    pub uri: Uri,
    /// All request headers.
    pub headers: HeaderMap,
    /// The body parsed as JSON, or `Value::Null` when it is not JSON.
    pub body: Value,
    /// The body as received.
    pub raw: Bytes,
}

/// Configures a [`Webhook`] before it starts.
pub struct WebhookBuilder {
    responder: Responder,
    held: bool,
    fail_first: Option<(usize, Reply)>,
    path: String,
    tls: Option<rustls::ServerConfig>,
}

/// A running webhook endpoint. Stops when dropped.
pub struct Webhook {
    addr: SocketAddr,
    scheme: &'static str,
    path: String,
    shared: Arc<Shared>,
    gate: watch::Sender<bool>,
    server: JoinHandle<()>,
}

struct Shared {
    responder: Mutex<Responder>,
    requests: Mutex<Vec<Recorded>>,
    hits: AtomicUsize,
    failures_left: AtomicUsize,
    failure: Option<Reply>,
    gate: watch::Receiver<bool>,
}

impl Reply {
    /// `200 {"result": "ok"}`.
    pub fn ok() -> Self {
        Self::json(json!({"result": "ok"}))
    }

    /// `200 {"result": "ok", "modifiers": modifiers}`.
    pub fn ok_with(modifiers: Value) -> Self {
        Self::json(json!({"result": "ok", "modifiers": modifiers}))
    }

    /// `200 {"result": "next"}`.
    pub fn next() -> Self {
        Self::json(json!({"result": "next"}))
    }

    /// `200 {"result": {"error": reason}}`.
    pub fn error(reason: &str) -> Self {
        Self::json(json!({"result": {"error": reason}}))
    }

    /// `200` with `value` as a JSON body.
    pub fn json(value: Value) -> Self {
        Self::raw(value.to_string()).header("content-type", "application/json")
    }

    /// `200` with exactly these body bytes and no content type.
    pub fn raw(body: impl Into<Bytes>) -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: body.into(),
            delay: None,
            chunks: None,
        }
    }

    /// The same reply with another status code.
    pub fn status(mut self, code: u16) -> Self {
        self.status = StatusCode::from_u16(code).expect("a test uses a valid status code");
        self
    }

    /// The same reply with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name).expect("a test uses a valid header name");
        let value = HeaderValue::try_from(value).expect("a test uses a valid header value");
        self.headers.push((name, value));
        self
    }

    /// The same reply with `cache-control: max-age=<secs>`.
    pub fn max_age(self, secs: u32) -> Self {
        self.header("cache-control", &format!("max-age={secs}"))
    }

    /// The same reply, sent only after `delay` (headers included).
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// The same reply with its headers sent at once and its body one byte per
    /// `every`, so the whole body takes `len * every` to arrive.
    pub fn dribbled(self, every: Duration) -> Self {
        self.streamed(1, every)
    }

    /// The same reply with its body streamed (chunked, no content-length) in
    /// pieces of `chunk_len` bytes, each sent after `every`.
    pub fn streamed(mut self, chunk_len: usize, every: Duration) -> Self {
        self.chunks = Some((chunk_len.max(1), every));
        self
    }

    fn into_response(self) -> Response {
        let body = match self.chunks {
            None => Body::from(self.body),
            Some((chunk_len, every)) => {
                let pieces: Vec<Bytes> = self.body.chunks(chunk_len).map(Bytes::copy_from_slice).collect();
                let pieces = futures::stream::iter(pieces).then(move |piece| async move {
                    tokio::time::sleep(every).await;
                    Ok::<_, Infallible>(piece)
                });
                Body::from_stream(pieces)
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

impl Recorded {
    /// The `vernemq-hook` header, if present and text.
    pub fn hook(&self) -> Option<&str> {
        self.header("vernemq-hook")
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts this is the POST hookd sends for `hook`: method, the two headers,
    /// and a body equal to `body` (exact key set).
    #[track_caller]
    pub fn assert_hook_call(&self, hook: &str, body: &Value) {
        assert_eq!(self.method, Method::POST, "webhooks are called with POST");
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "content-type is {content_type:?}, expected application/json"
        );
        assert_eq!(self.hook(), Some(hook), "vernemq-hook header");
        assert_eq!(&self.body, body, "JSON body of {hook}");
    }
}

impl WebhookBuilder {
    /// Answer every request with `reply`.
    pub fn reply(mut self, reply: Reply) -> Self {
        self.responder = fixed(reply);
        self
    }

    /// Answer each request with whatever `responder` picks for it.
    pub fn respond_with(mut self, responder: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        self.responder = Arc::new(responder);
        self
    }

    /// Hold every request (after recording it) until [`Webhook::release`].
    pub fn held(mut self) -> Self {
        self.held = true;
        self
    }

    /// Answer the first `n` requests with `failure`, the rest as configured.
    pub fn fail_first(mut self, n: usize, failure: Reply) -> Self {
        self.fail_first = Some((n, failure));
        self
    }

    /// Serve on `path` (which may carry a query) instead of `/hook`.
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    /// Serve HTTPS with `config` (handshakes that fail are dropped, as a
    /// TLS server does).
    pub fn tls(mut self, config: rustls::ServerConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the webhook");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let (gate, gate_rx) = watch::channel(!self.held);
        let (failures_left, failure) = match self.fail_first {
            Some((n, reply)) => (n, Some(reply)),
            None => (0, None),
        };
        let shared = Arc::new(Shared {
            responder: Mutex::new(self.responder),
            requests: Mutex::new(Vec::new()),
            hits: AtomicUsize::new(0),
            failures_left: AtomicUsize::new(failures_left),
            failure,
            gate: gate_rx,
        });
        let router = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let server = tokio::spawn(async move {
            // The server only ends when the test drops the webhook (abort).
            match self.tls {
                Some(config) => {
                    let listener = TlsListener {
                        tcp: listener,
                        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
                    };
                    let _ = axum::serve(listener, router).await;
                }
                None => {
                    let _ = axum::serve(listener, router).await;
                }
            }
        });
        Webhook {
            addr,
            scheme,
            path: self.path,
            shared,
            gate,
            server,
        }
    }
}

impl Webhook {
    /// A builder for a webhook that answers `{"result": "ok"}` until told otherwise.
    pub fn builder() -> WebhookBuilder {
        WebhookBuilder {
            responder: fixed(Reply::ok()),
            held: false,
            fail_first: None,
            path: "/hook".to_owned(),
            tls: None,
        }
    }

    /// A started webhook answering `reply` to every request.
    pub async fn start(reply: Reply) -> Self {
        Self::builder().reply(reply).start().await
    }

    /// The URL to register with hookd.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.addr, self.path)
    }

    /// From now on, answer every request with `reply`.
    pub fn set_reply(&self, reply: Reply) {
        *self
            .shared
            .responder
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fixed(reply);
    }

    /// Lets every held request, present and future, be answered.
    pub fn release(&self) {
        self.gate.send_replace(true);
    }

    /// How many requests have arrived so far.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The latest request; panics if there was none.
    #[track_caller]
    pub fn last_request(&self) -> Recorded {
        self.requests().pop().expect("the webhook received a request")
    }

    /// Waits (bounded by `WAIT`) until at least `n` requests have arrived.
    pub async fn wait_for_hits(&self, n: usize) {
        super::eventually(|| async { self.hits() >= n }, super::WAIT)
            .await
            .unwrap_or_else(|e| panic!("webhook got {} of {n} expected requests: {e}", self.hits()));
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.gate.send_replace(true);
        self.server.abort();
    }
}

impl Shared {
    fn reply_to(&self, request: &Recorded) -> Reply {
        let failed = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        match (&self.failure, failed) {
            (Some(failure), true) => failure.clone(),
            _ => {
                let responder = Arc::clone(&self.responder.lock().unwrap_or_else(PoisonError::into_inner));
                responder(request)
            }
        }
    }
}

/// A URL on loopback whose port refuses connections: bound, then released.
pub async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port to release");
    let addr = listener.local_addr().expect("a bound listener has an address");
    drop(listener);
    format!("http://{addr}/hook")
}

/// A TLS listener for axum: accepts TCP connections and completes their
/// handshakes, dropping the ones that fail or take longer than [`super::WAIT`].
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let handshake = tokio::time::timeout(super::WAIT, self.acceptor.accept(tcp));
            if let Ok(Ok(tls)) = handshake.await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

fn fixed(reply: Reply) -> Responder {
    Arc::new(move |_: &Recorded| reply.clone())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let request = Recorded {
        method,
        uri,
        headers,
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
    };
    let reply = shared.reply_to(&request);
    shared
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request);
    shared.hits.fetch_add(1, Ordering::SeqCst);
    // A closed gate sender means the webhook is being dropped: answer at once.
    let _ = shared.gate.clone().wait_for(|open| *open).await;
    if let Some(delay) = reply.delay {
        // The endpoint's own slowness, part of the scripted behaviour.
        tokio::time::sleep(delay).await;
    }
    reply.into_response()
}
