//! The `hookd.v1` front door: the gRPC `HookService` (stream and unary),
//! plus the standard `grpc.health.v1` and reflection services so generic
//! gRPC tools work against hookd.
//!
//! The protobuf ⇄ domain conversions are `hookd_proto::convert`'s.
//!
//! - [`session`]: one broker stream (limits, deadlines, shutdown).
//!
//! Streams are bounded here, before a session starts: at most
//! `server.max_streams` in all and `server.max_streams_per_connection` on one
//! connection; one more is refused with RESOURCE_EXHAUSTED and counted.

pub mod session;

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::{Stream, StreamExt};
use hookd_proto::{Hook, convert, frame::RawBrokerFrame, server::hook_service_server, v1 as pb};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status, Streaming};
use tracing::warn;

use crate::{dispatch::Dispatcher, liveness::ConnInfo, shutdown::Shutdown};
use session::Limits;

/// The `HookService` implementation.
pub struct HookService {
    dispatcher: Arc<Dispatcher>,
    limits: Limits,
    shutdown: Shutdown,
    /// One permit per broker stream, shared by every shard (`server.max_streams`).
    streams: Arc<Semaphore>,
}

impl HookService {
    /// A service answering through `dispatcher`; streams and calls drain and
    /// end as `shutdown` says ([`crate::shutdown`]).
    pub fn new(dispatcher: Arc<Dispatcher>, limits: Limits, shutdown: Shutdown) -> Self {
        Self {
            streams: Arc::new(Semaphore::new(limits.max_streams)),
            dispatcher,
            limits,
            shutdown,
        }
    }

    /// Refuses a stream over one of the limits, counted and logged.
    fn refuse(&self, request: &Request<Streaming<RawBrokerFrame>>, why: &str) -> Status {
        self.dispatcher.metrics().streams_refused.inc();
        warn!(peer = ?request.remote_addr(), why, "broker stream refused");
        Status::resource_exhausted(why.to_owned())
    }
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<pb::ServerFrame, Status>> + Send>>;

#[tonic::async_trait]
impl hook_service_server::HookService for HookService {
    type StreamStream = FrameStream;

    async fn stream(
        &self,
        request: Request<Streaming<RawBrokerFrame>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        // The connection's count includes this stream.
        let on_connection = request
            .extensions()
            .get::<ConnInfo>()
            .map_or(0, ConnInfo::streams);
        if on_connection > self.limits.max_streams_per_connection {
            return Err(self.refuse(
                &request,
                "too many streams on this connection (server.max_streams_per_connection)",
            ));
        }
        let Ok(permit) = self.streams.clone().try_acquire_owned() else {
            return Err(self.refuse(&request, "too many broker streams (server.max_streams)"));
        };
        let peer = request
            .extensions()
            .get::<ConnInfo>()
            .and_then(ConnInfo::remote_addr)
            .or_else(|| request.remote_addr());
        let frames = session::serve(
            request.into_inner(),
            peer,
            self.dispatcher.clone(),
            self.limits,
            self.shutdown.clone(),
        );
        // The permit lives as long as the stream.
        let frames = frames.map(move |frame| {
            let _held = &permit;
            frame
        });
        Ok(Response::new(Box::pin(frames)))
    }

    async fn call(&self, request: Request<pb::HookCall>) -> Result<Response<pb::Verdict>, Status> {
        let grpc_timeout = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let call = request.into_inner();
        let hook = call.hook.as_ref().map(Hook::of_proto_args);
        let hook_call = convert::call_from_proto(call.hook).map_err(|e| {
            self.dispatcher.invalid(hook);
            Status::invalid_argument(e.to_string())
        })?;
        let mut deadline = session::deadline(call.timeout_ms, self.limits.default_timeout);
        if let Some(client_deadline) = grpc_timeout {
            // Answer a little before the client gives up (and tonic cancels
            // the handler), so the caller gets a timeout verdict, not a bare
            // DEADLINE_EXCEEDED without a reason.
            deadline = deadline.min(client_deadline - client_deadline / 20);
        }
        // Counted while it runs: shutdown lets it finish within the grace
        // period, like a stream's calls, and takes no new webhook call.
        let _active = self.shutdown.enter();
        let verdict = match self.dispatcher.start(hook_call) {
            Ok(verdict) => verdict,
            Err(pending) if pending.needs_webhook() && self.shutdown.is_draining() => {
                self.shutdown.call_refused();
                session::shutdown_verdict()
            }
            Err(pending) => tokio::select! {
                verdict = self.dispatcher.finish(pending, deadline) => {
                    if self.shutdown.is_draining() {
                        self.shutdown.call_finished();
                    }
                    verdict
                }
                _ = self.shutdown.grace_over() => {
                    self.shutdown.calls_overloaded(1);
                    session::shutdown_verdict()
                }
            },
        };
        Ok(Response::new(convert::verdict_to_proto(call.id, verdict)))
    }
}

/// Parses gRPC's `grpc-timeout` header (`"250m"`, `"5S"`, …), so a unary
/// call answers `timeout` as a verdict by the client's own deadline.
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("10x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }
}
