//! A minimal MQTT 3.1.1 client for scenario (g), end to end through a real
//! Mosquitto: CONNECT with username and password (CONNACK checked), QoS 1
//! PUBLISH with packet ids and their PUBACKs, a QoS 0 SUBSCRIBE for the
//! delivery probe, DISCONNECT. Plain tokio TCP with TCP_NODELAY, no library,
//! so the client costs the same with and without the hookd plugin.
//!
//! [`closed_loop`] keeps `n` publishes in flight on one connection: every
//! PUBACK frees its packet id, which is reused at once for the next publish;
//! all PUBACKs read in one go are answered with one write. It is timed by
//! [`load::measure_window`] like the other load generators, so its
//! [`Sample`] carries rate, latency and the watched processes' CPU.
//!
//! A QoS 1 publish that Mosquitto's ACL check refuses is still acknowledged
//! in MQTT 3.1.1 (and silently dropped), so a PUBACK does not prove the
//! plugin allowed it; [`probe`] does: it subscribes, publishes and waits
//! for the message to come back.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use bytes::{Buf, Bytes, BytesMut};
use hdrhistogram::Histogram;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    load::{self, MEASURE, STOP, Sample, WARMUP, Window},
    stub::latency_histogram,
};

/// How long any one read waits for the broker before the client gives up.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const SUBSCRIBE: u8 = 8;
const SUBACK: u8 = 9;
const DISCONNECT: u8 = 14;

/// Who a connection logs in as.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    /// The MQTT client id.
    pub client_id: &'a str,
    /// The username (always sent).
    pub username: &'a str,
    /// The password (always sent).
    pub password: &'a [u8],
}

/// One open MQTT connection: the socket and what has been read but not yet
/// parsed.
pub struct Connection {
    stream: TcpStream,
    inbound: BytesMut,
}

/// One control packet as read.
struct Packet {
    kind: u8,
    body: Bytes,
}

/// A QoS 1 PUBLISH encoded once; each send copies it and writes the packet
/// id in place.
struct Template {
    bytes: Vec<u8>,
    id_at: usize,
}

impl Template {
    fn new(topic: &str, payload: &[u8]) -> Self {
        let mut bytes = vec![PUBLISH << 4 | 0b0010];
        put_remaining_length(&mut bytes, 2 + topic.len() + 2 + payload.len());
        put_str(&mut bytes, topic.as_bytes());
        let id_at = bytes.len();
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(payload);
        Self { bytes, id_at }
    }

    fn put(&self, out: &mut Vec<u8>, id: u16) {
        let at = out.len() + self.id_at;
        out.extend_from_slice(&self.bytes);
        out[at..at + 2].copy_from_slice(&id.to_be_bytes());
    }
}

impl Connection {
    /// Opens a TCP connection (TCP_NODELAY) to `addr`, sends CONNECT (MQTT
    /// 3.1.1, clean session, 60 s keep-alive, username and password) and
    /// waits for the CONNACK; an error names the broker's return code if
    /// it refused.
    pub async fn connect(addr: SocketAddr, login: Login<'_>) -> anyhow::Result<Self> {
        let stream = tokio::time::timeout(ANSWER_TIMEOUT, TcpStream::connect(addr))
            .await
            .with_context(|| format!("connecting to {addr}: timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut connection = Self {
            stream,
            inbound: BytesMut::with_capacity(64 * 1024),
        };
        let mut body = Vec::new();
        put_str(&mut body, b"MQTT");
        // Level 4 (3.1.1); flags: username, password, clean session.
        body.extend_from_slice(&[4, 0b1100_0010]);
        body.extend_from_slice(&60u16.to_be_bytes());
        put_str(&mut body, login.client_id.as_bytes());
        put_str(&mut body, login.username.as_bytes());
        put_str(&mut body, login.password);
        connection.send(CONNECT << 4, &body).await?;
        let packet = connection.read_packet().await.context("waiting for CONNACK")?;
        if packet.kind != CONNACK || packet.body.len() < 2 {
            bail!("expected CONNACK, got packet type {}", packet.kind);
        }
        match packet.body[1] {
            0 => Ok(connection),
            4 => bail!("CONNACK 4: bad user name or password"),
            5 => bail!("CONNACK 5: not authorised"),
            code => bail!("CONNACK {code}: refused"),
        }
    }

    /// Subscribes to `filter` at QoS 0 and waits for the SUBACK; an error if
    /// the broker refused the filter (return code 128).
    pub async fn subscribe(&mut self, filter: &str) -> anyhow::Result<()> {
        let mut body = 1u16.to_be_bytes().to_vec();
        put_str(&mut body, filter.as_bytes());
        body.push(0);
        self.send(SUBSCRIBE << 4 | 0b0010, &body).await?;
        loop {
            let packet = self.read_packet().await.context("waiting for SUBACK")?;
            if packet.kind != SUBACK {
                continue;
            }
            return match packet.body.get(2) {
                Some(0..=2) => Ok(()),
                Some(code) => bail!("SUBACK {code}: subscription to {filter} refused"),
                None => bail!("SUBACK without a return code"),
            };
        }
    }

    /// Publishes one QoS 1 message (packet id 1) and waits for its PUBACK.
    pub async fn publish_acked(&mut self, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
        let mut out = Vec::new();
        Template::new(topic, payload).put(&mut out, 1);
        self.write(&out).await?;
        loop {
            let packet = self.read_packet().await.context("waiting for PUBACK")?;
            if packet.kind == PUBACK && packet.body.get(..2) == Some(&[0, 1]) {
                return Ok(());
            }
        }
    }

    /// Waits up to `timeout` for the next application message and returns
    /// its topic; `None` if none came in time.
    pub async fn next_message(&mut self, timeout: Duration) -> anyhow::Result<Option<String>> {
        let wait = async {
            loop {
                let packet = self.read_packet().await?;
                if packet.kind == PUBLISH {
                    let mut body = packet.body;
                    if body.len() < 2 {
                        bail!("PUBLISH too short");
                    }
                    let len = usize::from(body.get_u16());
                    let topic = body.get(..len).context("PUBLISH topic past its end")?;
                    return Ok(String::from_utf8_lossy(topic).into_owned());
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(topic) => topic.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Sends DISCONNECT and closes the connection (errors are of no use
    /// at that point and ignored).
    pub async fn disconnect(mut self) {
        let _ = self.write(&[DISCONNECT << 4, 0]).await;
        let _ = self.stream.shutdown().await;
    }

    async fn send(&mut self, header: u8, body: &[u8]) -> anyhow::Result<()> {
        let mut out = vec![header];
        put_remaining_length(&mut out, body.len());
        out.extend_from_slice(body);
        self.write(&out).await
    }

    async fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        tokio::time::timeout(ANSWER_TIMEOUT, self.stream.write_all(bytes))
            .await
            .context("writing to the broker: timed out")?
            .context("writing to the broker")
    }

    /// Reads once from the socket into the inbound buffer.
    async fn fill(&mut self) -> anyhow::Result<()> {
        let read = tokio::time::timeout(ANSWER_TIMEOUT, self.stream.read_buf(&mut self.inbound))
            .await
            .with_context(|| format!("the broker sent nothing for {} s", ANSWER_TIMEOUT.as_secs()))?
            .context("reading from the broker")?;
        if read == 0 {
            bail!("the broker closed the connection");
        }
        Ok(())
    }

    async fn read_packet(&mut self) -> anyhow::Result<Packet> {
        loop {
            if let Some(packet) = parse(&mut self.inbound)? {
                return Ok(packet);
            }
            self.fill().await?;
        }
    }
}

/// Connects with `login` to `addr` and keeps `n` QoS 1 publishes of
/// `payload` to `topic` in flight on that one connection over `window`; a
/// call is one publish, its latency the time to its PUBACK. `watch` lists
/// the processes whose CPU is read at the window's edges. After the window
/// the publishes in flight are drained and the client disconnects.
pub async fn closed_loop(
    addr: SocketAddr,
    login: Login<'_>,
    n: usize,
    topic: &str,
    payload: &[u8],
    window: Window,
    watch: &[u32],
) -> anyhow::Result<Sample> {
    let connection = Connection::connect(addr, login).await?;
    let template = Template::new(topic, payload);
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let pump = tokio::spawn(pump(connection, n, template, phase.clone()));
    let (elapsed, cpu) = load::measure_window(window, &phase, watch).await;
    let (calls, errors, latency) = pump.await.context("the MQTT load task")??;
    Ok(Sample {
        calls,
        errors,
        elapsed,
        latency,
        cpu,
    })
}

/// The closed loop itself: returns (PUBACKs in the window, unexpected
/// PUBACKs in the window, latency histogram).
async fn pump(
    mut connection: Connection,
    n: usize,
    template: Template,
    phase: Arc<AtomicU8>,
) -> anyhow::Result<(u64, u64, Histogram<u64>)> {
    let n = n.clamp(1, usize::from(u16::MAX));
    // Slot i carries packet id i + 1 and the time its publish was sent.
    let mut sent_at: Vec<Option<Instant>> = vec![None; n];
    let mut out = Vec::with_capacity(template.bytes.len() * n);
    for (slot, sent) in sent_at.iter_mut().enumerate() {
        template.put(&mut out, packet_id(slot));
        *sent = Some(Instant::now());
    }
    connection.write(&out).await?;
    let mut in_flight = n;
    let mut latency = latency_histogram();
    let (mut calls, mut errors) = (0u64, 0u64);
    while in_flight > 0 {
        connection.fill().await?;
        out.clear();
        while let Some(packet) = parse(&mut connection.inbound)? {
            if packet.kind != PUBACK {
                continue;
            }
            let phase = phase.load(Ordering::Relaxed);
            let slot = packet
                .body
                .get(..2)
                .map(|id| usize::from(u16::from_be_bytes([id[0], id[1]])))
                .and_then(|id| id.checked_sub(1))
                .filter(|&slot| slot < n);
            let Some((slot, started)) = slot.and_then(|slot| Some((slot, sent_at[slot].take()?))) else {
                // An id not in flight: a duplicate or a broker bug.
                errors += u64::from(phase == MEASURE);
                continue;
            };
            if phase == MEASURE {
                let _ = latency.record(started.elapsed().as_nanos() as u64);
                calls += 1;
            }
            if phase == STOP {
                in_flight -= 1;
            } else {
                template.put(&mut out, packet_id(slot));
                sent_at[slot] = Some(Instant::now());
            }
        }
        if !out.is_empty() {
            connection.write(&out).await?;
        }
    }
    connection.disconnect().await;
    Ok((calls, errors, latency))
}

/// Proves the broker at `addr` routes a publish from `login`'s client to a
/// subscriber: subscribes (as `login.client_id` + `-probe`), publishes one
/// QoS 1 message to `topic` and waits up to 5 s for it to arrive.
pub async fn probe(addr: SocketAddr, login: Login<'_>, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
    let probe_id = format!("{}-probe", login.client_id);
    let mut subscriber = Connection::connect(
        addr,
        Login {
            client_id: &probe_id,
            ..login
        },
    )
    .await
    .context("the probe's subscriber")?;
    subscriber.subscribe(topic).await?;
    let mut publisher = Connection::connect(addr, login)
        .await
        .context("the probe's publisher")?;
    publisher.publish_acked(topic, payload).await?;
    let got = subscriber.next_message(Duration::from_secs(5)).await?;
    publisher.disconnect().await;
    subscriber.disconnect().await;
    match got {
        Some(got) if got == topic => Ok(()),
        Some(got) => bail!("the probe received a message on {got}, not {topic}"),
        None => bail!("a publish to {topic} was acknowledged but not delivered within 5 s (refused by ACL?)"),
    }
}

/// Connects with `login` until the broker accepts it, up to `within`; for a
/// broker whose plugin is still opening its stream to hookd (until then it
/// refuses by its failure policy). Returns the last refusal on timeout.
pub async fn wait_accepting(addr: SocketAddr, login: Login<'_>, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        match Connection::connect(addr, login).await {
            Ok(connection) => {
                connection.disconnect().await;
                return Ok(());
            }
            Err(error) if Instant::now() >= deadline => {
                return Err(error.context(format!("{addr} refused connections for {} s", within.as_secs())));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The packet id of in-flight slot `slot` (ids start at 1).
fn packet_id(slot: usize) -> u16 {
    u16::try_from(slot + 1).unwrap_or(u16::MAX)
}

/// Appends MQTT's variable-length "remaining length".
fn put_remaining_length(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
}

/// Appends a length-prefixed MQTT string (or binary field).
fn put_str(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

/// Takes one complete packet off the front of `buffer`, if it holds one.
fn parse(buffer: &mut BytesMut) -> anyhow::Result<Option<Packet>> {
    let (mut len, mut shift, mut at) = (0usize, 0u32, 1usize);
    loop {
        let Some(&byte) = buffer.get(at) else {
            return Ok(None);
        };
        if at > 4 {
            bail!("malformed remaining length from the broker");
        }
        len |= usize::from(byte & 0x7f) << shift;
        shift += 7;
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    if buffer.len() < at + len {
        return Ok(None);
    }
    let kind = buffer[0] >> 4;
    buffer.advance(at);
    let body = buffer.split_to(len).freeze();
    Ok(Some(Packet { kind, body }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_round_trips() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 2_097_151] {
            let mut packet = vec![PUBLISH << 4];
            put_remaining_length(&mut packet, len);
            packet.resize(packet.len() + len, 7);
            let mut buffer = BytesMut::from(&packet[..]);
            let parsed = parse(&mut buffer).ok().flatten();
            assert_eq!(parsed.map(|p| (p.kind, p.body.len())), Some((PUBLISH, len)));
            assert!(buffer.is_empty());
        }
    }

    #[test]
    fn partial_packets_wait_for_more() {
        let mut buffer = BytesMut::from(&[PUBACK << 4, 2, 0][..]);
        assert!(parse(&mut buffer).ok().flatten().is_none());
        buffer.extend_from_slice(&[9, PUBACK << 4]);
        let packet = parse(&mut buffer).ok().flatten();
        assert_eq!(packet.map(|p| p.body.to_vec()), Some(vec![0, 9]));
        assert_eq!(buffer.len(), 1);
    }

    #[test]
    fn publish_template_carries_its_id() {
        let template = Template::new("a/b", b"xy");
        let mut out = Vec::new();
        template.put(&mut out, 0x0102);
        // QoS 1 PUBLISH, remaining length 2+3+2+2, topic, id, payload.
        assert_eq!(out, [0x32, 9, 0, 3, b'a', b'/', b'b', 1, 2, b'x', b'y']);
    }
}
