//! Peers that misbehave at the transport level, as an adversary or a broken
//! broker would: [`RawPeer`], a TCP connection that says as much of HTTP/2
//! as the test wants and then nothing, and [`FreezableRelay`], a TCP relay
//! between a real client and hookd that can freeze, as a SIGSTOPped broker
//! does: its sockets stay open, nothing is read or answered any more.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::watch,
    task::{JoinHandle, JoinSet},
    time::Instant,
};
use tonic::transport::Channel;

use super::within;

/// The HTTP/2 client connection preface's magic (RFC 9113 §3.4).
pub const MAGIC: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An empty SETTINGS frame: with [`MAGIC`] before it, a whole client preface.
pub const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 0x4, 0, 0, 0, 0, 0];

/// A bare TCP connection to hookd.
pub struct RawPeer {
    stream: TcpStream,
}

/// A relay between clients and hookd that can be frozen.
pub struct FreezableRelay {
    addr: SocketAddr,
    frozen: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RawPeer {
    /// Connects to `addr` and sends nothing.
    pub async fn silent(addr: SocketAddr) -> Self {
        let stream = within("a TCP connection to hookd", TcpStream::connect(addr))
            .await
            .expect("hookd accepts TCP connections");
        Self { stream }
    }

    /// Connects to `addr` and sends `bytes`, then nothing.
    pub async fn saying(addr: SocketAddr, bytes: &[u8]) -> Self {
        let mut peer = Self::silent(addr).await;
        within("sending to hookd", peer.stream.write_all(bytes))
            .await
            .expect("hookd takes the bytes");
        peer
    }

    /// Connects to `addr` and completes the HTTP/2 handshake's client side
    /// (magic and SETTINGS), then opens no stream and says nothing.
    pub async fn handshaken(addr: SocketAddr) -> Self {
        Self::saying(addr, &[MAGIC, EMPTY_SETTINGS].concat()).await
    }

    /// Reads and discards what hookd sends until it closes the connection
    /// (end of file or reset), for at most `limit`; returns how long that
    /// took, or `None` if the connection was still open at `limit`.
    pub async fn closed_within(&mut self, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let drained = async {
            let mut buf = [0u8; 4096];
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(limit, drained)
            .await
            .ok()
            .map(|()| started.elapsed())
    }
}

impl FreezableRelay {
    /// Relays every connection made to [`FreezableRelay::addr`] to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the relay");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let (frozen, frozen_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Dropped with the relay's task, closing every relayed socket.
            let mut pumps = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                pumps.spawn(pump(client_read, server_write, frozen_rx.clone()));
                pumps.spawn(pump(server_read, client_write, frozen_rx.clone()));
            }
        });
        Self { addr, frozen, task }
    }

    /// Where clients connect to reach hookd through the relay.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A gRPC channel to hookd through the relay.
    pub async fn channel(&self) -> Channel {
        super::channel_to(self.addr, "the relay to hookd").await
    }

    /// Freezes every relayed connection: from now on nothing is read or
    /// forwarded either way, and every socket stays open.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }
}

impl Drop for FreezableRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` until either closes, or holds both open, untouched,
/// once `frozen`.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut frozen: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            _ = frozen.wait_for(|frozen| *frozen) => break,
            read = from.read(&mut buf) => read,
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        tokio::select! {
            _ = frozen.wait_for(|frozen| *frozen) => break,
            written = to.write_all(&buf[..n]) => {
                if written.is_err() {
                    return;
                }
            }
        }
    }
    // Frozen: the sockets stay open until the relay is dropped.
    std::future::pending::<()>().await;
    drop((from, to));
}
