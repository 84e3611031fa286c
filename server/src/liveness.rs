//! Liveness: the bounds every gRPC connection lives under, so that no peer
//! can hold a connection (and with it memory, a descriptor and hookd's
//! shutdown) without using it.
//!
//! A peer can pin a connection four ways: never speak, speak only part of
//! the HTTP/2 preface, complete the handshake and then open no stream, or
//! freeze (a SIGSTOPped broker: its kernel keeps the socket open but nobody
//! reads or answers). tonic 0.14 covers only the last one, with hyper's
//! HTTP/2 keepalive ([`Bounds::keepalive_interval`] and
//! [`Bounds::keepalive_timeout`]: a PING unanswered in time fails the
//! connection and ends its streams). It has no handshake or idle bound
//! (`Server::timeout` is per request; `max_connection_age` closes busy
//! connections too), and its graceful shutdown waits for every connection
//! to close by itself. So each accepted `TcpStream` is wrapped in a
//! [`Guarded`] that enforces the rest:
//!
//! - **handshake**: the client connection preface (the 24-byte magic and
//!   the SETTINGS frame after it, RFC 9113 §3.4) must have arrived within
//!   [`Bounds::handshake_timeout`] of the accept;
//! - **idle**: a connection with no open request (stream) for
//!   [`Bounds::idle_timeout`] is closed. Requests are counted per connection
//!   by [`StreamsLayer`], which finds the connection through the
//!   [`ConnInfo`] tonic puts in each request's extensions, and keeps the
//!   count until the response body is dropped (a bidi stream is open that
//!   long);
//! - **close**: [`Connections::close_all`], at the end of shutdown, fails
//!   every connection however it is stuck.
//!
//! A bound is enforced by failing the connection's next read or write (and
//! waking it, so one that waits on nothing still notices): hyper then drops
//! the connection and its socket. No GOAWAY goes out first: a connection
//! closed by these bounds has no stream a GOAWAY would protect, or a peer
//! that cannot read one. A client that opens a stream in the instant its
//! idle connection is closed gets `UNAVAILABLE` for a request hookd never
//! saw, which gRPC clients may retry.
//!
//! Hot path: a read or write checks one flag and one counter and
//! re-registers the task's waker (a no-op when unchanged); the timer is
//! polled only while a bound is running, never while a stream is open.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::{Stream, StreamExt, task::AtomicWaker};
use http_body::{Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::{Instant, Sleep},
};
use tonic::{
    body::Body,
    transport::server::{Connected, TcpConnectInfo},
};
use tracing::{debug, warn};

use crate::tls::{ServerIo, ServerTls};

/// The bounds a gRPC connection lives under (`server.*_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// After this long without a frame from the peer, hookd PINGs it.
    pub keepalive_interval: Duration,
    /// A PING unanswered for this long fails the connection.
    pub keepalive_timeout: Duration,
    /// Time from accept to the end of the client's connection preface.
    pub handshake_timeout: Duration,
    /// Time a connection may stay open without any stream on it.
    pub idle_timeout: Duration,
    /// Connections open at once; one accepted past it is closed at once.
    pub max_connections: usize,
}

/// Every open gRPC connection of one hookd: wraps accepted sockets in
/// [`Guarded`] and can close them all. Cheap to clone.
#[derive(Clone)]
pub struct Connections {
    bounds: Bounds,
    shared: Arc<Registry>,
    /// `[server.tls]`: every connection starts with a TLS handshake.
    tls: Option<Arc<ServerTls>>,
}

/// An accepted TCP connection under hookd's [`Bounds`]; the IO tonic serves.
pub struct Guarded {
    io: ServerIo,
    tcp: TcpConnectInfo,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    id: u64,
    bounds: Bounds,
    preface: Preface,
    /// The deadline of whichever bound runs (handshake or idle).
    timer: Pin<Box<Sleep>>,
    /// A bound has closed it (and it was counted).
    closed: bool,
}

/// What tonic puts in each request's extensions for a [`Guarded`]
/// connection: its addresses and its stream count.
#[derive(Clone)]
pub struct ConnInfo {
    tcp: TcpConnectInfo,
    conn: Arc<Conn>,
}

/// A tower layer counting the requests open on each connection, for the
/// idle bound. Put it on the gRPC server (`Server::builder().layer(..)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamsLayer;

/// The service [`StreamsLayer`] makes.
#[derive(Debug, Clone)]
pub struct CountStreams<S> {
    inner: S,
}

/// Shared by [`Connections`] and every [`Guarded`]: the close flag and the
/// open connections to wake when it is raised.
#[derive(Default)]
struct Registry {
    closing: AtomicBool,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Connections closed by the handshake or idle bound.
    closed_by_bound: Counter,
}

/// One connection's state, shared by its IO and its requests.
struct Conn {
    peer: Option<SocketAddr>,
    accepted: Instant,
    /// Requests open now.
    streams: AtomicUsize,
    /// When the connection last became idle, in ms after `accepted`.
    idle_since_ms: AtomicU64,
    /// The task serving the connection, woken when the last stream ends
    /// (the idle bound starts) and on [`Connections::close_all`].
    task: AtomicWaker,
}

/// How much of the client connection preface has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preface {
    /// `read` bytes so far, and the SETTINGS frame's payload length once its
    /// header has been read.
    Reading {
        read: usize,
        settings_len: usize,
    },
    Done,
}

/// Keeps a request counted on its connection until dropped.
struct OpenStream(Arc<Conn>);

/// A response body that keeps its request counted while it is sent.
struct Counted {
    body: Body,
    _open: OpenStream,
}

/// The HTTP/2 client preface's magic (RFC 9113 §3.4) and the frame header
/// of the SETTINGS frame that must follow it.
const MAGIC_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;

impl Connections {
    /// No connections yet, to be held under `bounds`; each one a bound
    /// closes is counted in `closed_by_bound`.
    pub fn new(bounds: Bounds, closed_by_bound: Counter) -> Self {
        Self {
            bounds,
            shared: Arc::new(Registry {
                closing: AtomicBool::new(false),
                next_id: AtomicU64::new(0),
                open: Mutex::default(),
                closed_by_bound,
            }),
            tls: None,
        }
    }

    /// Connections that start with a TLS handshake under `tls` (within
    /// the handshake bound).
    pub fn with_tls(mut self, tls: Arc<ServerTls>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The bounds connections are held under.
    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// `incoming` with every accepted socket wrapped in a [`Guarded`]; a
    /// socket accepted while [`Bounds::max_connections`] are open is closed
    /// at once (it costs a descriptor and memory otherwise) and counted in
    /// `refused`.
    pub fn guard<S, E>(
        &self,
        incoming: S,
        refused: Counter,
    ) -> impl Stream<Item = Result<Guarded, E>> + use<S, E>
    where
        S: Stream<Item = Result<TcpStream, E>>,
    {
        let connections = self.clone();
        incoming.filter_map(move |accepted| {
            let admitted = match accepted {
                Ok(io) if connections.open() >= connections.bounds.max_connections => {
                    refused.inc();
                    warn!(
                        peer = ?io.peer_addr().ok(),
                        max = connections.bounds.max_connections,
                        "connection refused: server.max_connections are open"
                    );
                    None
                }
                accepted => Some(accepted.map(|io| connections.wrap(io))),
            };
            std::future::ready(admitted)
        })
    }

    /// Wraps one accepted socket.
    pub fn wrap(&self, io: TcpStream) -> Guarded {
        let accepted = Instant::now();
        let conn = Arc::new(Conn {
            peer: io.peer_addr().ok(),
            accepted,
            streams: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            task: AtomicWaker::new(),
        });
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared.lock().insert(id, conn.clone());
        let tcp = io.connect_info();
        let io = match &self.tls {
            Some(tls) => tls.accept(io),
            None => ServerIo::Plain(io),
        };
        Guarded {
            io,
            tcp,
            conn,
            registry: self.shared.clone(),
            id,
            bounds: self.bounds,
            preface: Preface::Reading {
                read: 0,
                settings_len: 0,
            },
            timer: Box::pin(tokio::time::sleep_until(accepted + self.bounds.handshake_timeout)),
            closed: false,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.shared.lock().len()
    }

    /// Fails every open connection, and every one accepted from now on, at
    /// its next read or write, waking each so it notices at once. Returns
    /// how many were open.
    pub fn close_all(&self) -> usize {
        self.shared.closing.store(true, Ordering::SeqCst);
        let open = self.shared.lock();
        for conn in open.values() {
            conn.task.wake();
        }
        open.len()
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Conn {
    fn idle_since(&self) -> Instant {
        self.accepted + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }

    fn mark_idle(&self) {
        let ms = Instant::now()
            .saturating_duration_since(self.accepted)
            .as_millis();
        self.idle_since_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Release);
    }
}

impl OpenStream {
    fn new(conn: Arc<Conn>) -> Self {
        conn.streams.fetch_add(1, Ordering::AcqRel);
        Self(conn)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        // The idle clock starts before the count reads zero, so a reader
        // that sees zero sees the new start too.
        self.0.mark_idle();
        if self.0.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.task.wake();
        }
    }
}

impl Guarded {
    /// Fails the connection if hookd is closing every connection or a bound
    /// has run out; otherwise arms the running bound's timer on `cx`.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        // Registered before the flag and the count are read, so a change
        // after the reads wakes this task.
        self.conn.task.register(cx.waker());
        if self.registry.closing.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "hookd is shutting down",
            ));
        }
        let (deadline, bound) = match self.preface {
            Preface::Reading { .. } => (
                self.conn.accepted + self.bounds.handshake_timeout,
                "no HTTP/2 connection preface within server.handshake_timeout_ms",
            ),
            Preface::Done if self.conn.streams.load(Ordering::Acquire) == 0 => (
                self.conn.idle_since() + self.bounds.idle_timeout,
                "no stream within server.idle_timeout_ms",
            ),
            Preface::Done => return Ok(()),
        };
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            // A failed connection may be read or written again before it
            // is dropped: counted once.
            if !self.closed {
                self.closed = true;
                self.registry.closed_by_bound.inc();
                debug!(peer = ?self.conn.peer, bound, "closing a connection");
            }
            return Err(io::Error::new(io::ErrorKind::TimedOut, bound));
        }
        Ok(())
    }

    /// Follows the client preface through `bytes`, the next ones read.
    fn saw(&mut self, bytes: &[u8]) {
        let Preface::Reading {
            mut read,
            mut settings_len,
        } = self.preface
        else {
            return;
        };
        for &byte in bytes {
            // The frame header's first three bytes are the payload length.
            let at = read.wrapping_sub(MAGIC_LEN);
            if at < 3 {
                settings_len = settings_len << 8 | usize::from(byte);
            }
            read += 1;
            if read == MAGIC_LEN + FRAME_HEADER_LEN + settings_len && read >= MAGIC_LEN + FRAME_HEADER_LEN {
                self.preface = Preface::Done;
                self.conn.mark_idle();
                return;
            }
        }
        self.preface = Preface::Reading { read, settings_len };
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && self.preface != Preface::Done {
            self.saw(&buf.filled()[before..]);
        }
        read
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Connected for Guarded {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        ConnInfo {
            tcp: self.tcp.clone(),
            conn: self.conn.clone(),
        }
    }
}

impl ConnInfo {
    /// The peer's address, if the socket knew it.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.tcp.remote_addr
    }

    /// Requests open on the connection now.
    pub fn streams(&self) -> usize {
        self.conn.streams.load(Ordering::Acquire)
    }
}

impl<S> tower::Layer<S> for StreamsLayer {
    type Service = CountStreams<S>;

    fn layer(&self, inner: S) -> CountStreams<S> {
        CountStreams { inner }
    }
}

impl<S> tower::Service<http::Request<Body>> for CountStreams<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let info = request.extensions().get::<ConnInfo>().cloned();
        let open = info.map(|info| {
            // `Request::remote_addr` reads this one.
            request.extensions_mut().insert(info.tcp.clone());
            OpenStream::new(info.conn)
        });
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(match open {
                Some(open) => response.map(|body| Body::new(Counted { body, _open: open })),
                None => response,
            })
        })
    }
}

impl http_body::Body for Counted {
    type Data = <Body as http_body::Body>::Data;
    type Error = <Body as http_body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client preface: the magic, then a SETTINGS frame with `payload` bytes.
    fn preface(payload: usize) -> Vec<u8> {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let len = u32::try_from(payload).expect("small payload").to_be_bytes();
        bytes.extend_from_slice(&len[1..]);
        bytes.extend_from_slice(&[0x4, 0, 0, 0, 0, 0]);
        bytes.extend(std::iter::repeat_n(0, payload));
        bytes
    }

    async fn guarded() -> (Guarded, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let bounds = Bounds {
            keepalive_interval: Duration::from_secs(1),
            keepalive_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_connections: 10,
        };
        (Connections::new(bounds, Counter::default()).wrap(server), client)
    }

    #[tokio::test]
    async fn the_preface_ends_with_its_settings_frame_however_it_is_split() {
        let whole = preface(12);
        for split in [1, 7, 24, 26, 33, 40, whole.len()] {
            let (mut guarded, _client) = guarded().await;
            for chunk in whole[..whole.len() - 1].chunks(split) {
                guarded.saw(chunk);
            }
            assert_ne!(
                guarded.preface,
                Preface::Done,
                "split {split}: one byte is missing"
            );
            guarded.saw(&whole[whole.len() - 1..]);
            assert_eq!(guarded.preface, Preface::Done, "split {split}");
        }
    }

    #[tokio::test]
    async fn an_empty_settings_frame_completes_the_preface() {
        let (mut guarded, _client) = guarded().await;
        guarded.saw(&preface(0));
        assert_eq!(guarded.preface, Preface::Done);
    }

    #[tokio::test]
    async fn the_magic_alone_is_not_a_preface() {
        let (mut guarded, _client) = guarded().await;
        guarded.saw(&preface(0)[..MAGIC_LEN]);
        assert_ne!(guarded.preface, Preface::Done);
    }

    #[tokio::test]
    async fn close_all_counts_and_forgets_connections() {
        let (guarded, _client) = guarded().await;
        let connections = Connections {
            bounds: guarded.bounds,
            shared: guarded.registry.clone(),
            tls: None,
        };
        assert_eq!(connections.open(), 1);
        assert_eq!(connections.close_all(), 1);
        drop(guarded);
        assert_eq!(connections.open(), 0);
    }
}
