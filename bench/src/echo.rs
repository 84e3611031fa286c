//! The bare gRPC echo: `hookd.v1.HookService` answering every call at once
//! with `ok`, and nothing else — the cost floor of one extra gRPC hop.
//!
//! The response stream is the request stream mapped frame by frame (no task,
//! no channel in between): `Hello` becomes a `Welcome` listing every hook, so
//! a bridge client never answers locally, and each `HookCall` becomes an `ok`
//! `Verdict` with the same id.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use hookd_proto::{
    Hook,
    convert::hooks_to_proto,
    frame::{RawBrokerFrame, RawFrame as In, decode_call},
    server::hook_service_server,
    v1::{self as pb, server_frame::Frame as Out},
};
use tonic::{Request, Response, Status, Streaming};

/// The echo service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

type FrameStream = Pin<Box<dyn Stream<Item = Result<pb::ServerFrame, Status>> + Send>>;

#[tonic::async_trait]
impl hook_service_server::HookService for Echo {
    type StreamStream = FrameStream;

    async fn stream(
        &self,
        request: Request<Streaming<RawBrokerFrame>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        // Calls are decoded as hookd decodes them, so the baseline does the
        // same protobuf work per call.
        let frames = request.into_inner().filter_map(|frame| async move {
            match frame {
                Ok(RawBrokerFrame {
                    frame: Some(In::Hello(_)),
                }) => Some(Ok(server_frame(Out::Welcome(welcome())))),
                Ok(RawBrokerFrame {
                    frame: Some(In::Call(call)),
                }) => decode_call(call, usize::MAX)
                    .ok()
                    .map(|call| Ok(server_frame(Out::Verdict(ok(call.id))))),
                Ok(RawBrokerFrame { frame: None }) => None,
                Err(status) => Some(Err(status)),
            }
        });
        Ok(Response::new(Box::pin(frames)))
    }

    async fn call(&self, request: Request<pb::HookCall>) -> Result<Response<pb::Verdict>, Status> {
        Ok(Response::new(ok(request.into_inner().id)))
    }
}

/// A `Welcome` listing every hook.
fn welcome() -> pb::Welcome {
    pb::Welcome {
        active_hooks: hooks_to_proto(&Hook::ALL),
        server_version: "echo".to_owned(),
        max_call_bytes: 0,
    }
}

/// An `ok` verdict without modifiers for call `id`.
fn ok(id: u64) -> pb::Verdict {
    pb::Verdict {
        id,
        outcome: Some(pb::verdict::Outcome::Ok(pb::Ok { modifiers: None })),
        cached: false,
        cache_ttl_secs: None,
    }
}

fn server_frame(frame: Out) -> pb::ServerFrame {
    pb::ServerFrame { frame: Some(frame) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcome_lists_every_hook() {
        assert_eq!(welcome().active_hooks.len(), Hook::COUNT);
    }
}
