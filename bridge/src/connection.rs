//! One hookd address: a background task that keeps one stream open to it,
//! reconnecting with exponential backoff and jitter, and the [`Link`] through
//! which calls are multiplexed over the current stream.
//!
//! A call registers a one-shot slot under a fresh id and writes its frame;
//! the task reading the stream fills the slot when the verdict with that id
//! arrives. When the stream breaks, every slot is dropped, which tells each
//! waiting caller [`Unsent::Broken`] so it can re-send elsewhere within its deadline.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBuilder};
use hookd_proto::{
    Hook,
    convert::hooks_from_proto,
    v1::{
        self as pb, broker_frame::Frame as Out, hook_service_client::HookServiceClient,
        server_frame::Frame as In,
    },
};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::Interceptor,
    transport::{Certificate, ClientTlsConfig, Endpoint, Identity},
};
use tracing::{debug, info, warn};

use crate::options::Options;

/// The state of one address, as callers see it.
#[derive(Clone)]
pub enum LinkState {
    /// A stream is being opened (first attempt or reconnect).
    Connecting,
    /// A stream is open; calls go through this link.
    Up(Arc<Link>),
    /// No stream; the next attempt waits for its backoff.
    Down,
}

/// How much longer than the caller hookd is given to answer a call.
const DEADLINE_GRACE: Duration = Duration::from_millis(50);

/// Why a call got no verdict over a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    /// The stream broke before the verdict came; the call may be re-sent.
    Broken,
    /// The call is larger than the hookd behind this link runs
    /// (`Welcome.max_call_bytes`), so it was not sent.
    TooLarge {
        /// The encoded call's size.
        bytes: usize,
        /// hookd's limit.
        limit: usize,
    },
}

/// One open stream: send calls, await their verdicts.
pub struct Link {
    outbound: mpsc::UnboundedSender<pb::BrokerFrame>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    /// hookd's `max_call_bytes` from `Welcome`; 0 when it sent none.
    max_call_bytes: usize,
}

/// The calls waiting for a verdict; `None` once the stream broke, so a call
/// that races with the break fails at once instead of waiting in vain.
type Pending = Option<HashMap<u64, oneshot::Sender<pb::Verdict>>>;

/// Removes a call's slot if the caller stops waiting (deadline passed), so
/// abandoned calls leave nothing behind.
struct Slot<'a> {
    link: &'a Link,
    id: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(pending) = self.link.lock().as_mut() {
            pending.remove(&self.id);
        }
    }
}

impl Link {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends `hook` with `timeout` and waits for its verdict.
    pub async fn call(&self, hook: pb::hook_call::Hook, timeout: Duration) -> Result<pb::Verdict, Unsent> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let call = pb::HookCall {
            id,
            // hookd gets a little longer than the client waits, so the
            // client's own deadline (and its failure policy) decides a
            // timeout rather than a verdict racing it from hookd.
            timeout_ms: Some(
                u32::try_from(timeout.saturating_add(DEADLINE_GRACE).as_millis()).unwrap_or(u32::MAX),
            ),
            hook: Some(hook),
        };
        if self.max_call_bytes > 0 {
            let bytes = call.encoded_len();
            if bytes > self.max_call_bytes {
                return Err(Unsent::TooLarge {
                    bytes,
                    limit: self.max_call_bytes,
                });
            }
        }
        let (tx, rx) = oneshot::channel();
        self.lock().as_mut().ok_or(Unsent::Broken)?.insert(id, tx);
        let _slot = Slot { link: self, id };
        self.outbound
            .send(pb::BrokerFrame {
                frame: Some(Out::Call(call)),
            })
            .map_err(|_| Unsent::Broken)?;
        rx.await.map_err(|_| Unsent::Broken)
    }

    fn resolve(&self, verdict: pb::Verdict) {
        let slot = self
            .lock()
            .as_mut()
            .and_then(|pending| pending.remove(&verdict.id));
        if let Some(slot) = slot {
            let _ = slot.send(verdict);
        }
    }

    /// Fails every waiting call and every later one with [`Unsent::Broken`].
    fn break_all(&self) {
        self.lock().take();
    }
}

/// One address as the client sees it.
pub struct Connection {
    /// The link state.
    pub state: watch::Receiver<LinkState>,
}

/// What every connection of one client publishes to.
pub struct Shared {
    /// The hooks hookd last reported as having endpoints; `None` until a
    /// first Welcome. hookd instances behind one client are expected to share
    /// their configuration, so the latest report from any of them is used.
    pub active: watch::Sender<Option<Vec<Hook>>>,
    /// Bumped on every link state change of any connection.
    pub changed: watch::Sender<u64>,
    /// Why the last attempt to reach hookd failed (`address: error`), until
    /// a connection succeeds: what a verdict by failure policy says, so an
    /// operator sees which address and why rather than only "unavailable".
    pub last_failure: std::sync::Mutex<Option<String>>,
}

impl Shared {
    /// Records why `address` could not be reached; logs it (at warn) when it
    /// differs from the failure before, so a hookd that stays away is said
    /// once, not at every retry.
    fn failed(&self, address: &str, error: &str) {
        let failure = format!("{address}: {error}");
        let mut last = self
            .last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.as_deref() == Some(failure.as_str()) {
            debug!(%address, %error, "could not connect to hookd");
        } else {
            warn!(%address, %error, "could not connect to hookd; retrying");
            *last = Some(failure);
        }
    }

    /// Why the last attempt to reach hookd failed, if it did.
    pub fn last_failure(&self) -> Option<String> {
        self.last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Starts the task that keeps a stream open to `address`. It publishes its
/// state on the returned connection and the rest on `shared`, and stops
/// when `stop` fires.
pub fn spawn(
    address: String,
    options: Arc<Options>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> Connection {
    let (state_tx, state_rx) = watch::channel(LinkState::Connecting);
    tokio::spawn(drive(address, options, state_tx, shared, stop));
    Connection { state: state_rx }
}

async fn drive(
    address: String,
    options: Arc<Options>,
    state: watch::Sender<LinkState>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let set_state = |s: LinkState| {
        state.send_replace(s);
        shared.changed.send_modify(|generation| *generation += 1);
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(options.min_backoff)
        .with_max_delay(options.max_backoff)
        .with_jitter()
        .without_max_times();
    let mut delays = backoff.build();
    loop {
        set_state(LinkState::Connecting);
        let opened = tokio::select! {
            _ = stop.changed() => return,
            opened = tokio::time::timeout(options.connect_timeout, open(&address, &options)) => opened,
        };
        match opened {
            Ok(Ok((link, mut inbound, hooks))) => {
                info!(%address, "connected to hookd");
                *shared
                    .last_failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                delays = backoff.build();
                shared.active.send_replace(Some(hooks));
                set_state(LinkState::Up(link.clone()));
                let ended = tokio::select! {
                    _ = stop.changed() => None,
                    ended = read(&link, &mut inbound, &shared.active) => Some(ended),
                };
                link.break_all();
                match ended {
                    None => return,
                    Some(reason) => warn!(%address, %reason, "stream to hookd ended"),
                }
            }
            Ok(Err(e)) => shared.failed(&address, &e.to_string()),
            Err(_) => shared.failed(
                &address,
                &format!(
                    "no connection within {:?} (connect timeout)",
                    options.connect_timeout
                ),
            ),
        }
        set_state(LinkState::Down);
        let delay = delays.next().unwrap_or(options.max_backoff);
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

type Inbound = tonic::Streaming<pb::ServerFrame>;

/// Adds `authorization: Bearer <token>` to every request, when a token is set.
#[derive(Clone)]
struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The TLS configuration `options` ask for, read from its files.
fn tls_config(tls: &crate::options::TlsOptions) -> Result<ClientTlsConfig, String> {
    let read = |path: &std::path::Path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let mut config = ClientTlsConfig::new();
    config = match &tls.ca_file {
        Some(path) => config.ca_certificate(Certificate::from_pem(read(path)?)),
        None => config.with_native_roots(),
    };
    match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => config = config.identity(Identity::from_pem(read(cert)?, read(key)?)),
        (None, None) => {}
        _ => return Err("client_cert_file and client_key_file must be set together".to_owned()),
    }
    if let Some(domain) = &tls.domain {
        config = config.domain_name(domain.clone());
    }
    Ok(config)
}

/// The `authorization` value `options` ask for, if any.
fn bearer(options: &Options) -> Result<Option<MetadataValue<Ascii>>, String> {
    options
        .token
        .as_ref()
        .map(|token| {
            format!("Bearer {token}")
                .parse::<MetadataValue<Ascii>>()
                .map_err(|_| "the token is not printable ASCII".to_owned())
        })
        .transpose()
}

/// Checks that the TLS files of `options` can be read, parse and fit
/// together, and that its token can be sent.
pub fn check_credentials(options: &Options) -> Result<(), String> {
    if let Some(tls) = &options.tls {
        Endpoint::from_static("https://localhost")
            .tls_config(tls_config(tls)?)
            .map_err(|e| error_chain(&e))?;
    }
    bearer(options).map(drop)
}

/// Connects, opens the stream, says Hello and waits for Welcome.
async fn open(address: &str, options: &Options) -> Result<(Arc<Link>, Inbound, Vec<Hook>), String> {
    let scheme = if options.tls.is_some() { "https" } else { "http" };
    let uri = match address.split_once("://") {
        Some((_, rest)) => format!("{scheme}://{rest}"),
        None => format!("{scheme}://{address}"),
    };
    let mut endpoint = Endpoint::from_shared(uri)
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect_timeout(options.connect_timeout);
    if let Some(tls) = &options.tls {
        endpoint = endpoint.tls_config(tls_config(tls)?).map_err(|e| e.to_string())?;
    }
    let bearer = bearer(options)?;
    let channel = endpoint.connect().await.map_err(|e| error_chain(&e))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let hello = pb::Hello {
        node_id: options.identity.node_id.clone(),
        broker_kind: options.identity.broker_kind.clone(),
        broker_version: options.identity.broker_version.clone(),
    };
    tx.send(pb::BrokerFrame {
        frame: Some(Out::Hello(hello)),
    })
    .map_err(|_| "stream closed before Hello".to_owned())?;
    let mut inbound = HookServiceClient::with_interceptor(channel, Bearer(bearer))
        .stream(UnboundedReceiverStream::new(rx))
        .await
        .map_err(|status| status.to_string())?
        .into_inner();
    let welcome = match inbound.message().await.map_err(|status| status.to_string())? {
        Some(pb::ServerFrame {
            frame: Some(In::Welcome(welcome)),
        }) => welcome,
        _ => return Err("hookd did not answer Hello with Welcome".to_owned()),
    };
    let hooks = hooks_from_proto(&welcome.active_hooks);
    let link = Arc::new(Link {
        outbound: tx,
        pending: Mutex::new(Some(HashMap::new())),
        next_id: AtomicU64::new(1),
        max_call_bytes: usize::try_from(welcome.max_call_bytes).unwrap_or(usize::MAX),
    });
    Ok((link, inbound, hooks))
}

/// Delivers verdicts and hook-set updates until the stream ends; returns why.
async fn read(link: &Link, inbound: &mut Inbound, active: &watch::Sender<Option<Vec<Hook>>>) -> String {
    loop {
        match inbound.message().await {
            Ok(Some(pb::ServerFrame {
                frame: Some(In::Verdict(verdict)),
            })) => link.resolve(verdict),
            Ok(Some(pb::ServerFrame {
                frame: Some(In::HooksChanged(changed)),
            })) => {
                active.send_replace(Some(hooks_from_proto(&changed.active_hooks)));
            }
            Ok(Some(_)) => warn!("unexpected frame from hookd ignored"),
            Ok(None) => return "hookd closed the stream".to_owned(),
            Err(status) => return status.to_string(),
        }
    }
}

/// An error with its causes, so a TLS failure ("invalid peer certificate:
/// UnknownIssuer") is not hidden behind "transport error".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}
