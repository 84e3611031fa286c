//! One broker stream: hello, then calls in and verdicts out, many in flight.
//!
//! tonic bounds neither a bidirectional stream's life nor its concurrency,
//! so this handler does: at most `max_in_flight` calls run at once (past it,
//! hookd stops reading the stream until one finishes, which pushes back on
//! the broker through HTTP/2 flow control); each call has a deadline; and on
//! shutdown every call still in flight is answered `overloaded` and the
//! stream is ended, so graceful shutdown never waits on an open stream.
//!
//! Calls run as futures on this stream's own task (a `FuturesUnordered`)
//! rather than a task each: cheaper per call, and they die with the stream.

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures::{StreamExt, stream::FuturesUnordered};
use hookd_proto::v1::{self as pb, broker_frame::Frame as In, server_frame::Frame as Out};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};
use tracing::{debug, info, warn};

use super::convert;
use crate::{
    dispatch::Dispatcher,
    verdict::{ErrorKind, Verdict},
};

/// What bounds a session.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Calls in flight at once on one stream.
    pub max_in_flight: usize,
    /// Deadline of a call that sets none.
    pub default_timeout: Duration,
}

/// Where the session writes its frames; ends the broker's stream when dropped.
/// Frames and statuses are boxed: a channel allocates its slots in blocks, and
/// unboxed (a verdict can carry every register modifier) an idle stream's
/// first block alone would cost kilobytes.
pub type Outbound = mpsc::Sender<Result<Box<pb::ServerFrame>, Box<Status>>>;

/// Serves one broker stream until the broker closes it, a protocol error, or
/// `shutdown`.
pub async fn run(
    mut inbound: Streaming<pb::BrokerFrame>,
    outbound: Outbound,
    dispatcher: Arc<Dispatcher>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let hello = tokio::select! {
        _ = shutdown.cancelled() => return,
        first = inbound.message() => match first {
            Ok(Some(pb::BrokerFrame { frame: Some(In::Hello(hello)) })) => hello,
            Ok(Some(_)) => {
                let _ = outbound.send(Err(Box::new(Status::invalid_argument("the first frame must be Hello")))).await;
                return;
            }
            Ok(None) => return,
            Err(status) => {
                warn!(%status, "broker stream failed before Hello");
                return;
            }
        },
    };
    info!(node_id = %hello.node_id, broker = %hello.broker_kind, version = %hello.broker_version, "broker connected");
    dispatcher.metrics().streams.inc();
    let mut active = dispatcher.registry().active_hooks();
    let welcome = pb::Welcome {
        active_hooks: convert::hooks_to_proto(&active.borrow_and_update()),
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    if outbound.send(Ok(frame(Out::Welcome(welcome)))).await.is_ok() {
        let session = Session {
            outbound: &outbound,
            dispatcher: &dispatcher,
            limits,
        };
        let end = session.serve(&mut inbound, &mut active, &shutdown).await;
        info!(node_id = %hello.node_id, ?end, "broker stream ended");
    }
    dispatcher.metrics().streams.dec();
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    /// The broker closed its side and every call was answered.
    BrokerClosed,
    /// The broker stopped reading verdicts (its stream is gone).
    BrokerGone,
    /// hookd is shutting down.
    Shutdown,
    /// The broker broke the protocol or the transport failed.
    Failed,
}

struct Session<'a> {
    outbound: &'a Outbound,
    dispatcher: &'a Dispatcher,
    limits: Limits,
}

impl Session<'_> {
    async fn serve(
        &self,
        inbound: &mut Streaming<pb::BrokerFrame>,
        active: &mut tokio::sync::watch::Receiver<Vec<crate::hook::Hook>>,
        shutdown: &CancellationToken,
    ) -> End {
        let mut in_flight = FuturesUnordered::new();
        let mut ids = HashSet::new();
        let mut reading = true;
        loop {
            if !reading && in_flight.is_empty() {
                return End::BrokerClosed;
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    for id in ids.drain() {
                        let verdict = Verdict::error(ErrorKind::Overloaded, "hookd is shutting down");
                        if !self.send_verdict(id, verdict).await {
                            break;
                        }
                    }
                    return End::Shutdown;
                }
                Some((id, verdict)) = in_flight.next(), if !in_flight.is_empty() => {
                    ids.remove(&id);
                    if !self.send_verdict(id, verdict).await {
                        return End::BrokerGone;
                    }
                }
                Ok(()) = active.changed() => {
                    let hooks = convert::hooks_to_proto(&active.borrow_and_update());
                    let changed = Out::HooksChanged(pb::HooksChanged { active_hooks: hooks });
                    if self.outbound.send(Ok(frame(changed))).await.is_err() {
                        return End::BrokerGone;
                    }
                }
                next = inbound.message(), if reading && in_flight.len() < self.limits.max_in_flight => {
                    let call = match next {
                        Ok(Some(pb::BrokerFrame { frame: Some(In::Call(call)) })) => call,
                        Ok(Some(_)) => {
                            let status = Status::invalid_argument("only Call frames may follow Hello");
                            let _ = self.outbound.send(Err(Box::new(status))).await;
                            return End::Failed;
                        }
                        Ok(None) => {
                            reading = false;
                            continue;
                        }
                        Err(status) => {
                            warn!(%status, "broker stream failed");
                            return End::Failed;
                        }
                    };
                    let id = call.id;
                    if !ids.insert(id) {
                        let verdict = Verdict::error(ErrorKind::InvalidCall, format!("call id {id} is already in flight"));
                        if !self.send_verdict(id, verdict).await {
                            return End::BrokerGone;
                        }
                        continue;
                    }
                    match convert::call_from_proto(call.hook) {
                        Ok(hook_call) => {
                            let deadline = deadline(call.timeout_ms, self.limits.default_timeout);
                            let dispatcher = self.dispatcher;
                            in_flight.push(async move { (id, dispatcher.call(hook_call, deadline).await) });
                        }
                        Err(invalid) => {
                            debug!(id, error = %invalid, "invalid call");
                            ids.remove(&id);
                            if !self.send_verdict(id, Verdict::error(ErrorKind::InvalidCall, invalid.to_string())).await {
                                return End::BrokerGone;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sends a verdict; false when the broker's stream is gone.
    async fn send_verdict(&self, id: u64, verdict: Verdict) -> bool {
        let verdict = convert::verdict_to_proto(id, verdict);
        self.outbound.send(Ok(frame(Out::Verdict(verdict)))).await.is_ok()
    }
}

/// The deadline a call asked for (0 or absent: the default).
pub fn deadline(timeout_ms: Option<u32>, default: Duration) -> Duration {
    match timeout_ms {
        Some(ms) if ms > 0 => Duration::from_millis(u64::from(ms)),
        _ => default,
    }
}

fn frame(frame: Out) -> Box<pb::ServerFrame> {
    Box::new(pb::ServerFrame { frame: Some(frame) })
}
