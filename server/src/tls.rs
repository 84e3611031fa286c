//! TLS on the gRPC listener (`[server.tls]`), with optional client
//! certificates (mTLS, `client_ca_file`), reloaded when its files change.
//!
//! The handshake runs inside the connection's IO ([`ServerIo`]), under the
//! [`crate::liveness`] bounds like everything else: a connection is counted
//! against `server.max_connections` from its accept, and
//! `server.handshake_timeout_ms` covers the TLS handshake and the HTTP/2
//! preface after it, so a peer that stalls either is closed the same way.
//! The accept loop never waits for a handshake.
//!
//! [`ServerTls::reload_if_changed`] compares the files' modification times and
//! sizes with those it loaded, and swaps in a new configuration when they
//! differ: new connections use the new certificate, open ones keep theirs.
//! A file that cannot be loaded keeps the old configuration (and is logged),
//! so a half-written rotation never takes hookd's listener down.
//!
//! A failed handshake (an unknown CA, no client certificate under mTLS, a
//! plaintext client, a peer that hangs up half-way) is counted in
//! `hookd_tls_handshake_failures_total` and logged at warn with the peer and
//! the reason, at most once a second per listener with the number of
//! failures since the last line, so a scanner cannot flood the log.

use std::{
    future::Future as _,
    io,
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError, RwLock},
    task::{Context, Poll},
    time::SystemTime,
};

use prometheus_client::metrics::counter::Counter;
use rustls::{ServerConfig, server::WebPkiClientVerifier};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::Instant,
};
use tokio_rustls::{Accept, TlsAcceptor, server::TlsStream};
use tracing::{debug, info, warn};

use crate::{
    accept::Reports,
    config::ServerTlsConfig,
    webhook::tls::{TlsError, certs, private_key, provider, roots_from},
};

/// The listener's TLS configuration, swapped when its files change.
pub struct ServerTls {
    config: ServerTlsConfig,
    current: RwLock<Arc<ServerConfig>>,
    /// The files' (modified, length) when last loaded.
    loaded: Mutex<Vec<Option<(SystemTime, u64)>>>,
    failures: Arc<HandshakeFailures>,
}

/// The failed handshakes of one listener: counted, and reported in log lines
/// at most once a second.
struct HandshakeFailures {
    counter: Counter,
    reports: Mutex<Reports>,
}

/// A handshake under way, and what to report if it fails.
pub struct Handshake {
    accept: Accept<TcpStream>,
    peer: Option<SocketAddr>,
    failures: Arc<HandshakeFailures>,
}

/// A broker connection's IO: plaintext, or TLS (handshaking, then established).
pub enum ServerIo {
    /// No TLS on the listener.
    Plain(TcpStream),
    /// The TLS handshake is under way.
    Accepting(Box<Handshake>),
    /// The handshake is done.
    Tls(Box<TlsStream<TcpStream>>),
}

impl ServerTls {
    /// Loads `config`'s files; an error names the key and the file. Failed
    /// handshakes are counted in `failures`.
    pub fn load(config: &ServerTlsConfig, failures: Counter) -> Result<Self, TlsError> {
        let loaded = stamps(config);
        Ok(Self {
            current: RwLock::new(Arc::new(server_config(config)?)),
            config: config.clone(),
            loaded: Mutex::new(loaded),
            failures: Arc::new(HandshakeFailures {
                counter: failures,
                reports: Mutex::new(Reports::default()),
            }),
        })
    }

    /// Starts the handshake of an accepted connection with the current
    /// configuration.
    pub fn accept(&self, tcp: TcpStream) -> ServerIo {
        let config = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let peer = tcp.peer_addr().ok();
        ServerIo::Accepting(Box::new(Handshake {
            accept: TlsAcceptor::from(config).accept(tcp),
            peer,
            failures: self.failures.clone(),
        }))
    }

    /// Reloads the files if any changed since they were loaded; returns
    /// whether a new configuration is in use.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamps(&self.config);
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if *loaded == now {
            return false;
        }
        // Remembered whether it loads or not: a broken file is reported
        // once, and tried again when it changes again.
        *loaded = now;
        match server_config(&self.config) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
                info!("server.tls: certificate files changed; new connections use them");
                true
            }
            Err(e) => {
                warn!(error = %e, "server.tls: changed files cannot be loaded; still using the previous ones");
                false
            }
        }
    }
}

impl HandshakeFailures {
    /// Counts the failed handshake of `peer`, and logs it unless a line was
    /// logged less than a second ago (the next line then says how many).
    fn record(&self, peer: Option<SocketAddr>, error: &io::Error) {
        self.counter.inc();
        let due = self
            .reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .error(Instant::now());
        match due {
            Some(failures) => warn!(
                peer = ?peer,
                reason = %error,
                failures,
                "TLS handshake with a broker failed"
            ),
            None => debug!(peer = ?peer, reason = %error, "TLS handshake with a broker failed"),
        }
    }
}

fn stamps(config: &ServerTlsConfig) -> Vec<Option<(SystemTime, u64)>> {
    let files: [Option<&PathBuf>; 3] = [
        Some(&config.cert_file),
        Some(&config.key_file),
        config.client_ca_file.as_ref(),
    ];
    files
        .iter()
        .map(|file| {
            let meta = std::fs::metadata(file.as_ref()?).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

fn server_config(config: &ServerTlsConfig) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match &config.client_ca_file {
        Some(path) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots_from(path, "server.tls.client_ca_file")?),
                provider,
            )
            .build()
            .map_err(|e| TlsError::File {
                key: "server.tls.client_ca_file",
                path: path.clone(),
                message: e.to_string(),
            })?,
        ),
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_single_cert(
        certs(&config.cert_file, "server.tls.cert_file")?,
        private_key(&config.key_file, "server.tls.key_file")?,
    )?;
    // gRPC is HTTP/2 only.
    server.alpn_protocols = vec![b"h2".to_vec()];
    Ok(server)
}

impl ServerIo {
    /// Drives the handshake; ready once the connection can carry data.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let ServerIo::Accepting(handshake) = self else {
            return Poll::Ready(Ok(()));
        };
        match Pin::new(&mut handshake.accept).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(tls)) => {
                *self = ServerIo::Tls(Box::new(tls));
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                // A wrong CA or a missing client certificate ends here.
                handshake.failures.record(handshake.peer, &e);
                Poll::Ready(Err(e))
            }
        }
    }

    /// The TCP connection under it.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            ServerIo::Plain(tcp) => Some(tcp),
            ServerIo::Accepting(handshake) => handshake.accept.get_ref(),
            ServerIo::Tls(tls) => Some(tls.get_ref().0),
        }
    }
}

impl AsyncRead for ServerIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = std::task::ready!(this.poll_handshake(cx)) {
            return Poll::Ready(Err(e));
        }
        match this {
            ServerIo::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            ServerIo::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
            ServerIo::Accepting(_) => Poll::Pending,
        }
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = std::task::ready!(this.poll_handshake(cx)) {
            return Poll::Ready(Err(e));
        }
        match this {
            ServerIo::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            ServerIo::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            ServerIo::Accepting(_) => Poll::Pending,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = std::task::ready!(this.poll_handshake(cx)) {
            return Poll::Ready(Err(e));
        }
        match this {
            ServerIo::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            ServerIo::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
            ServerIo::Accepting(_) => Poll::Pending,
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ServerIo::Plain(tcp) => tcp.is_write_vectored(),
            ServerIo::Tls(tls) => tls.is_write_vectored(),
            ServerIo::Accepting(_) => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = std::task::ready!(this.poll_handshake(cx)) {
            return Poll::Ready(Err(e));
        }
        match this {
            ServerIo::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            ServerIo::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            ServerIo::Accepting(_) => Poll::Pending,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            ServerIo::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            // Nothing was said yet: closing the socket is enough.
            ServerIo::Accepting(_) => Poll::Ready(Ok(())),
        }
    }
}
