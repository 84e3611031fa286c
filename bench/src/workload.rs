//! What the simulated broker sends: one `auth_on_publish` of about 200 bytes
//! (topic, payload, client id, username), as a bridge call to hookd or the
//! echo, or as the exact JSON POST vmq_webhooks would send straight to the
//! webhook; `on_publish` notifications carrying a send timestamp; and idle
//! broker streams for the memory measurement.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hookd_bridge::{NodeIdentity, Options, Outcome, pb};
use hookd_proto::v1::{broker_frame::Frame as Out, hook_service_client::HookServiceClient};
use http::{HeaderValue, header};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::stub::{TIMESTAMP_MARKER, wall_clock_nanos};

/// The topic of every benchmark publish (40 bytes).
pub const TOPIC: &str = "bench/devices/0001/telemetry/temperature";
/// The client id of every benchmark publish.
pub const CLIENT_ID: &str = "bench-client-0001";
/// How many client ids [`on_publish_now`] cycles through.
pub const NOTIFYING_CLIENTS: u64 = 1024;
/// The username of every benchmark publish.
pub const USERNAME: &str = "bench-user";
/// Payload length in bytes; with topic, ids and framing a call is ~200 B.
pub const PAYLOAD_LEN: usize = 120;

/// The `auth_on_publish` arguments every benchmark call carries.
pub fn auth_on_publish() -> pb::AuthOnPublish {
    pb::AuthOnPublish {
        username: Some(USERNAME.to_owned()),
        mountpoint: String::new(),
        client_id: CLIENT_ID.to_owned(),
        qos: 1,
        topic: TOPIC.to_owned(),
        payload: payload(None),
        retain: false,
    }
}

/// `on_publish` arguments whose payload starts with the send timestamp, so
/// the stub can measure delivery latency.
pub fn on_publish_now() -> pb::OnPublish {
    // Notifications of one client reach an endpoint in order, one at a time
    // (the outbox's per-client order): a broker's publishes come from many
    // clients, and so do these.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let client = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % NOTIFYING_CLIENTS;
    pb::OnPublish {
        username: Some(USERNAME.to_owned()),
        mountpoint: String::new(),
        client_id: format!("bench-client-{client:04}"),
        qos: 1,
        topic: TOPIC.to_owned(),
        payload: payload(Some(wall_clock_nanos())),
        retain: false,
    }
}

/// A printable payload of [`PAYLOAD_LEN`] bytes, led by a timestamp if given.
fn payload(timestamp: Option<u64>) -> Vec<u8> {
    let mut payload = Vec::with_capacity(PAYLOAD_LEN);
    if let Some(ts) = timestamp {
        payload.extend_from_slice(TIMESTAMP_MARKER);
        payload.extend_from_slice(ts.to_string().as_bytes());
        payload.push(b'|');
    }
    let filler = br#"temperature=21.5;humidity=40;battery=97;"#;
    while payload.len() < PAYLOAD_LEN {
        payload.push(filler[payload.len() % filler.len()]);
    }
    payload.truncate(PAYLOAD_LEN);
    payload
}

/// A bridge client to one gRPC address, local cache off (every call goes to
/// the server), waited on until its stream is open.
pub async fn bridge(address: &str) -> anyhow::Result<hookd_bridge::Client> {
    bridge_tuned(address, |_| {}).await
}

/// [`bridge`] with its options (local cache off, 10 s default deadline,
/// the bridge's other defaults) changed by `tune` before connecting.
pub async fn bridge_tuned(
    address: &str,
    tune: impl FnOnce(&mut Options),
) -> anyhow::Result<hookd_bridge::Client> {
    let identity = NodeIdentity {
        node_id: "bench".to_owned(),
        broker_kind: "hookd-bench".to_owned(),
        broker_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let mut options = Options::new([address], identity);
    options.local_cache = false;
    options.default_timeout = Duration::from_secs(10);
    tune(&mut options);
    let client = hookd_bridge::connect(options).context("bridge client")?;
    if !client.wait_connected(Duration::from_secs(10)).await {
        bail!("no stream to {address} within 10 s");
    }
    Ok(client)
}

/// One `auth_on_publish` through `client`; true when the verdict is `ok`.
pub async fn bridge_call(client: hookd_bridge::Client, args: pb::AuthOnPublish) -> bool {
    matches!(client.auth_on_publish(args).await.outcome, Outcome::Ok(_))
}

/// One `on_publish` through `client`, stamped now; true when acknowledged.
pub async fn bridge_notify(client: hookd_bridge::Client) -> bool {
    matches!(client.on_publish(on_publish_now()).await.outcome, Outcome::Ack)
}

/// The direct driver: POSTs the JSON body vmq_webhooks would send for an
/// `auth_on_publish`, over pooled keep-alive HTTP/1.1 with TCP_NODELAY (an
/// idle pool without a cap, so no connection is ever re-opened), and reads
/// the `{"result":"ok"}` answer.
#[derive(Clone)]
pub struct Direct {
    client: reqwest::Client,
    url: Arc<reqwest::Url>,
    args: Arc<pb::AuthOnPublish>,
}

/// vmq_webhooks' `auth_on_publish` body, field for field.
#[derive(Serialize)]
struct PublishBody<'a> {
    username: Option<&'a str>,
    mountpoint: &'a str,
    client_id: &'a str,
    qos: u32,
    topic: &'a str,
    payload: String,
    retain: bool,
}

#[derive(Deserialize)]
struct Answer<'a> {
    result: &'a str,
}

impl Direct {
    /// A driver posting to `url`.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        // No cap on idle connections (reqwest's default): the limit should
        // never close a connection it will need again a moment later.
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("HTTP client")?;
        Ok(Self {
            client,
            url: Arc::new(reqwest::Url::parse(url).context("stub URL")?),
            args: Arc::new(auth_on_publish()),
        })
    }

    /// One POST: builds the body (base64 payload, as vmq does by default),
    /// sends it, parses the answer; true when it is `ok`.
    pub async fn call(self) -> bool {
        let args = &*self.args;
        let body = PublishBody {
            username: args.username.as_deref(),
            mountpoint: &args.mountpoint,
            client_id: &args.client_id,
            qos: args.qos,
            topic: &args.topic,
            payload: BASE64.encode(&args.payload),
            retain: args.retain,
        };
        let Ok(body) = serde_json::to_vec(&body) else {
            return false;
        };
        let response = self
            .client
            .post((*self.url).clone())
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("vernemq-hook", HeaderValue::from_static("auth_on_publish"))
            .body(body)
            .send()
            .await;
        let Ok(response) = response else { return false };
        if response.status() != reqwest::StatusCode::OK {
            return false;
        }
        let _max_age = response.headers().get(header::CACHE_CONTROL).cloned();
        let Ok(bytes) = response.bytes().await else {
            return false;
        };
        serde_json::from_slice::<Answer<'_>>(&bytes).is_ok_and(|a| a.result == "ok")
    }
}

/// Open broker streams that have said Hello and been welcomed, held open
/// until dropped.
pub struct IdleStreams {
    _senders: Vec<mpsc::Sender<pb::BrokerFrame>>,
    _inbound: Vec<tonic::Streaming<pb::ServerFrame>>,
}

/// Opens `count` streams to `address`, `per_connection` of them on each
/// HTTP/2 connection, each sending Hello and waiting for Welcome.
pub async fn idle_streams(address: &str, count: usize, per_connection: usize) -> anyhow::Result<IdleStreams> {
    let mut senders = Vec::with_capacity(count);
    let mut inbound = Vec::with_capacity(count);
    let mut client = None;
    for i in 0..count {
        if i % per_connection.max(1) == 0 {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
                .tcp_nodelay(true)
                .connect()
                .await
                .with_context(|| format!("connecting to {address}"))?;
            client = Some(HookServiceClient::new(channel));
        }
        let Some(client) = client.as_mut() else {
            bail!("no connection");
        };
        let (tx, rx) = mpsc::channel(1);
        let hello = pb::Hello {
            node_id: format!("idle-{i}"),
            broker_kind: "hookd-bench".to_owned(),
            broker_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        tx.send(pb::BrokerFrame {
            frame: Some(Out::Hello(hello)),
        })
        .await
        .context("queueing Hello")?;
        let mut stream =
            tokio::time::timeout(Duration::from_secs(10), client.stream(ReceiverStream::new(rx)))
                .await
                .with_context(|| format!("stream {i} not opened within 10 s"))??
                .into_inner();
        let welcome = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .with_context(|| format!("no Welcome on stream {i} within 10 s"))??;
        if welcome.is_none() {
            bail!("stream {i} closed before Welcome");
        }
        senders.push(tx);
        inbound.push(stream);
    }
    Ok(IdleStreams {
        _senders: senders,
        _inbound: inbound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_about_200_bytes() {
        let args = auth_on_publish();
        let size = args.topic.len()
            + args.payload.len()
            + args.client_id.len()
            + args.username.as_ref().map_or(0, String::len);
        assert!((180..=220).contains(&size), "{size}");
    }

    #[test]
    fn notifications_carry_a_timestamp() {
        let args = on_publish_now();
        assert!(args.payload.starts_with(TIMESTAMP_MARKER));
        assert_eq!(args.payload.len(), PAYLOAD_LEN);
    }
}
