//! A frame hookd cannot run costs only its own call: a call that is not
//! UTF-8, not protobuf or over `server.max_call_bytes` is answered
//! `invalid_call` for its id while the broker's other calls go on; only a
//! frame far over the limit ends the stream, and then with an error status.
//! The bridge, told the limit in `Welcome`, does not send a call over it.

use hookd::config::WebhookConfig;
use hookd_bridge::{FailurePolicy, NodeIdentity, Options, Outcome, Source};
use hookd_proto::{
    frame::{RawBrokerFrame, RawFrame},
    v1::{self as pb, ErrorKind, OnPublish, server_frame::Frame},
};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};

use crate::harness::{
    Hook, WAIT, assert_ack, assert_error, assert_ok,
    broker::{StreamEnd, hello},
    calls::{self, IntoCall},
    service::{Hookd, config},
    webhook::Webhook,
    within,
};

/// A call limit small enough to go over with a test payload.
const LIMIT: usize = 4096;

/// hookd with `auth_on_register` held by its webhook (released by the test)
/// and `server.max_call_bytes` = [`LIMIT`].
async fn hookd_with_a_held_register() -> (Hookd, Webhook) {
    let webhook = Webhook::builder().held().start().await;
    let mut config = config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]);
    config.server.max_call_bytes = LIMIT;
    (Hookd::start_with_registry(config).await, webhook)
}

/// A stream that sends frames as bytes hookd must decode itself, the way a
/// client hookd did not write could send them.
struct RawBroker {
    frames: mpsc::Sender<RawBrokerFrame>,
    inbound: Streaming<pb::ServerFrame>,
}

impl RawBroker {
    /// Opens a stream, says Hello and returns after Welcome.
    async fn connect(hookd: &Hookd) -> (Self, pb::Welcome) {
        let mut grpc = tonic::client::Grpc::new(hookd.channel().await);
        within("the channel to be ready", grpc.ready())
            .await
            .expect("the channel is ready");
        let (frames, outbound) = mpsc::channel(16);
        let hello = RawBrokerFrame {
            frame: Some(RawFrame::Hello(hello())),
        };
        frames.send(hello).await.expect("the outbound queue is open");
        let path = http::uri::PathAndQuery::from_static("/hookd.v1.HookService/Stream");
        let codec = tonic_prost::ProstCodec::<RawBrokerFrame, pb::ServerFrame>::default();
        let response = within(
            "hookd to accept the stream",
            grpc.streaming(tonic::Request::new(ReceiverStream::new(outbound)), path, codec),
        )
        .await
        .expect("hookd accepts the stream");
        let mut broker = Self {
            frames,
            inbound: response.into_inner(),
        };
        match broker.next().await {
            Ok(Some(Frame::Welcome(welcome))) => (broker, welcome),
            other => panic!("hookd answers Hello with Welcome, not {other:?}"),
        }
    }

    /// Sends one call frame of exactly these bytes.
    async fn send(&self, call: Vec<u8>) {
        let frame = RawBrokerFrame {
            frame: Some(RawFrame::Call(call.into())),
        };
        self.frames.send(frame).await.expect("the stream is open");
    }

    /// The next frame hookd sends, or the status the stream ended with.
    async fn next(&mut self) -> Result<Option<Frame>, tonic::Status> {
        let frame = within("a frame from hookd", self.inbound.message()).await?;
        Ok(frame.and_then(|f| f.frame))
    }

    /// The next verdict hookd sends.
    async fn verdict(&mut self) -> pb::Verdict {
        match self.next().await {
            Ok(Some(Frame::Verdict(verdict))) => verdict,
            other => panic!("expected a verdict, got {other:?}"),
        }
    }
}

/// A publish whose payload alone is `bytes` long.
fn publish_of(bytes: usize) -> OnPublish {
    OnPublish {
        payload: vec![b'x'; bytes],
        ..calls::on_publish("big")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_is_not_utf8_costs_only_itself() {
    let (hookd, webhook) = hookd_with_a_held_register().await;
    let (mut broker, _) = RawBroker::connect(&hookd).await;
    broker
        .send(calls::auth_on_register("held").into_call(1).encode_to_vec())
        .await;
    webhook.wait_for_hits(1).await;
    let mut bad = calls::on_client_gone("zz").into_call(2).encode_to_vec();
    let end = bad.len();
    bad[end - 2..].copy_from_slice(&[0xc3, 0x28]);
    broker.send(bad).await;
    let refused = broker.verdict().await;
    assert_eq!(refused.id, 2, "the bad call is answered for its own id");
    let reason = assert_error(&refused, ErrorKind::InvalidCall);
    assert!(reason.contains("does not decode"), "{reason}");
    broker
        .send(calls::on_client_gone("fine").into_call(3).encode_to_vec())
        .await;
    let after = broker.verdict().await;
    assert_eq!(after.id, 3);
    assert_ack(&after);
    webhook.release();
    let held = broker.verdict().await;
    assert_eq!(held.id, 1, "the call in flight was not lost");
    assert_ok(&held);
    assert!(hookd.metrics().encode().contains("hookd_bad_calls_total 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_max_call_bytes_costs_only_itself() {
    let (hookd, webhook) = hookd_with_a_held_register().await;
    let broker = hookd.broker().await;
    assert_eq!(
        broker.welcome().max_call_bytes,
        LIMIT as u64,
        "brokers are told the limit"
    );
    let held = broker.send_args(calls::auth_on_register("held")).await;
    webhook.wait_for_hits(1).await;
    let big = broker.call(publish_of(2 * LIMIT)).await;
    let reason = assert_error(&big, ErrorKind::InvalidCall);
    assert!(reason.contains("server.max_call_bytes"), "{reason}");
    assert_ack(&broker.call(publish_of(LIMIT / 2)).await);
    webhook.release();
    assert_ok(&held.verdict().await);
    assert!(broker.ended().is_none(), "the stream goes on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_far_over_the_limit_ends_the_stream_with_an_error_not_ok() {
    let (hookd, _webhook) = hookd_with_a_held_register().await;
    let broker = hookd.broker().await;
    broker
        .send_frame(crate::harness::broker::call_frame(
            publish_of(8 * LIMIT).into_call(1),
        ))
        .await;
    match within("the stream to end", broker.closed()).await {
        StreamEnd::Failed(status) => assert_ne!(status.code(), Code::Ok, "{status:?}"),
        StreamEnd::Finished => panic!("a stream that fails must not end with OK"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_answers_a_call_over_hookd_s_limit_by_its_policy_without_sending_it() {
    let webhook = Webhook::start(crate::harness::webhook::Reply::ok()).await;
    let mut config = config([WebhookConfig::new(Hook::AuthOnPublish, webhook.url())]);
    config.server.max_call_bytes = LIMIT;
    let hookd = Hookd::start(config).await;
    let identity = NodeIdentity {
        node_id: "broker-1".into(),
        broker_kind: "test".into(),
        broker_version: "1".into(),
    };
    let options =
        Options::new([hookd.addr().to_string()], identity).policy(Hook::AuthOnPublish, FailurePolicy::Deny);
    let client = hookd_bridge::connect(options).expect("valid options");
    assert!(client.wait_connected(WAIT).await, "the bridge connects");
    let big = pb::AuthOnPublish {
        payload: vec![0; 2 * LIMIT],
        ..calls::auth_on_publish("c1")
    };
    let verdict = within("the local verdict", client.auth_on_publish(big)).await;
    assert_eq!(
        verdict.source,
        Source::Policy(hookd_bridge::ErrorKind::InvalidCall)
    );
    match verdict.outcome {
        Outcome::Error { reason, .. } => assert!(reason.contains("over hookd's limit"), "{reason}"),
        other => panic!("denied by policy, not {other:?}"),
    }
    let small = within(
        "hookd's verdict",
        client.auth_on_publish(calls::auth_on_publish("c1")),
    )
    .await;
    assert_eq!(small.outcome, Outcome::Ok(None));
    assert_eq!(webhook.hits(), 1, "only the call within the limit was sent");
}
