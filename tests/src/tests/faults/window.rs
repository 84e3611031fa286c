//! A broker that keeps writing into a full window, as Google's grpcio does:
//! each call its own small HTTP/2 DATA frame, sent as fast as flow control
//! lets it, whether or not hookd is reading. While the stream's calls in
//! flight are at `server.max_in_flight_per_stream` hookd stops reading, and
//! what the broker sent meanwhile waits in hookd's HTTP/2 layer. That must
//! slow the broker (flow control) and never close its connection: with h2's
//! default windows, some 2,500 small frames closed it (GOAWAY
//! `ENHANCE_YOUR_CALM`, "too_many_data_frames") and every call in flight was
//! lost without a verdict or a log line.
//!
//! The broker here is a raw HTTP/2 client (the `h2` crate) framing gRPC
//! itself, so it writes exactly as grpcio does rather than as tonic does
//! (tonic packs many small messages into one DATA frame).

use std::{
    future::poll_fn,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::Poll,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hookd::config::WebhookConfig;
use hookd_proto::v1::{BrokerFrame, ServerFrame, server_frame};
use prost::Message;
use tokio::{net::TcpStream, task::JoinHandle};

use crate::harness::{
    Hook, WAIT,
    broker::{call_frame, hello, hello_frame},
    calls::{self, IntoCall},
    eventually,
    service::{self, Hookd},
    webhook::Webhook,
    within,
};

/// `server.max_in_flight_per_stream` here: hookd stops reading the stream
/// once this many calls wait for the (held) webhook.
const MAX_IN_FLIGHT: usize = 512;

/// Calls the broker sends: beyond [`MAX_IN_FLIGHT`], more small frames than
/// h2's default windows let it hold before closing the connection (~2,700).
const CALLS: u64 = 4_000;

/// `frame` as one gRPC message (a 5-byte prefix, then the protobuf).
fn grpc_message(frame: &BrokerFrame) -> Bytes {
    let mut message = BytesMut::with_capacity(5 + frame.encoded_len());
    message.put_u8(0);
    message.put_u32(u32::try_from(frame.encoded_len()).expect("a small frame"));
    frame.encode(&mut message).expect("BytesMut grows");
    message.freeze()
}

/// What the broker learns from hookd's side of the stream.
struct Answers {
    verdicts: u64,
    /// `grpc-status` of the trailers, when the stream ended with them.
    status: Option<String>,
}

/// A grpcio-style broker on one HTTP/2 connection and one `Stream`.
struct GrpcioStyleBroker {
    /// Set while the writer waits for flow-control window.
    waiting_for_window: Arc<AtomicBool>,
    writer: JoinHandle<Result<(), h2::Error>>,
    reader: JoinHandle<Result<Answers, h2::Error>>,
}

impl GrpcioStyleBroker {
    /// Opens the stream and starts writing Hello and [`CALLS`] calls, each
    /// message its own DATA frame, and reading verdicts.
    async fn start(hookd: &Hookd) -> Self {
        let tcp = TcpStream::connect(hookd.addr()).await.expect("hookd accepts");
        let (client, connection) = h2::client::handshake(tcp).await.expect("an HTTP/2 handshake");
        tokio::spawn(connection);
        let mut client = client.ready().await.expect("the connection takes a stream");
        let request = http::Request::post(format!("http://{}/hookd.v1.HookService/Stream", hookd.addr()))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("a valid request");
        let (response, mut send) = client.send_request(request, false).expect("a stream");
        let waiting_for_window = Arc::new(AtomicBool::new(false));
        let waiting = Arc::clone(&waiting_for_window);
        let writer = tokio::spawn(async move {
            let messages = std::iter::once(hello_frame(hello())).chain(
                (1..=CALLS).map(|id| call_frame(calls::auth_on_register(&format!("c{id}")).into_call(id))),
            );
            for frame in messages {
                let mut message = grpc_message(&frame);
                while message.has_remaining() {
                    send.reserve_capacity(message.len());
                    let granted = poll_fn(|cx| {
                        let poll = send.poll_capacity(cx);
                        waiting.store(poll.is_pending(), Ordering::SeqCst);
                        poll
                    })
                    .await;
                    let granted = granted.unwrap_or(Ok(0))?;
                    send.send_data(message.split_to(granted.min(message.len())), false)?;
                }
            }
            Ok(())
        });
        let reader = tokio::spawn(async move {
            let mut body = response.await?.into_body();
            let mut buffered = BytesMut::new();
            let mut verdicts = 0;
            while let Some(chunk) = body.data().await {
                let chunk = chunk?;
                let _ = body.flow_control().release_capacity(chunk.len());
                buffered.extend_from_slice(&chunk);
                while buffered.len() >= 5 {
                    let len = (&buffered[1..5]).get_u32() as usize;
                    if buffered.len() < 5 + len {
                        break;
                    }
                    let message = buffered.split_to(5 + len).split_off(5);
                    let frame = ServerFrame::decode(message).expect("hookd sends ServerFrames");
                    if matches!(frame.frame, Some(server_frame::Frame::Verdict(_))) {
                        verdicts += 1;
                    }
                }
                if verdicts == CALLS {
                    break;
                }
            }
            let status = match verdicts == CALLS {
                true => None,
                false => poll_fn(|cx| match body.poll_trailers(cx) {
                    Poll::Ready(trailers) => Poll::Ready(trailers),
                    Poll::Pending => Poll::Pending,
                })
                .await?
                .and_then(|trailers| Some(trailers.get("grpc-status")?.to_str().ok()?.to_owned())),
            };
            Ok(Answers { verdicts, status })
        });
        Self {
            waiting_for_window,
            writer,
            reader,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpcio_style_broker_writing_into_a_full_window_is_slowed_and_every_call_is_answered() {
    let webhook = Webhook::builder().held().start().await;
    let mut config = service::config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]);
    // The endpoint is held on purpose: neither the bulkhead nor a deadline
    // may answer the calls before the window has filled.
    config.http.stall_timeout_ms = 600_000;
    config.server.call_timeout = 600_000;
    config.server.max_in_flight_per_stream = MAX_IN_FLIGHT;
    let hookd = Hookd::start_with_registry(config).await;
    let broker = GrpcioStyleBroker::start(&hookd).await;

    // hookd stops reading at MAX_IN_FLIGHT calls; the broker writes on
    // until its window is used up and then waits for more.
    let full = eventually(
        || async {
            hookd.metrics().calls_in_flight.get() == MAX_IN_FLIGHT as i64
                && broker.waiting_for_window.load(Ordering::SeqCst)
                && !broker.reader.is_finished()
        },
        WAIT,
    )
    .await;
    assert!(
        full.is_ok(),
        "hookd's calls in flight: {}; the broker waits for window: {}; its stream ended: {}",
        hookd.metrics().calls_in_flight.get(),
        broker.waiting_for_window.load(Ordering::SeqCst),
        broker.reader.is_finished(),
    );

    webhook.release();
    let answers = within("every verdict", broker.reader)
        .await
        .expect("the reader does not panic")
        .expect("the connection stays up");
    assert_eq!(
        answers.verdicts, CALLS,
        "every call is answered (the stream ended with grpc-status {:?})",
        answers.status
    );
    within("the broker to finish writing", broker.writer)
        .await
        .expect("the writer does not panic")
        .expect("the connection stays up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_when_a_broker_goes_away_are_counted_as_unanswered() {
    let webhook = Webhook::builder().held().start().await;
    let hookd = Hookd::start_with_registry(service::config([WebhookConfig::new(
        Hook::AuthOnRegister,
        webhook.url(),
    )]))
    .await;
    let broker = hookd.broker().await;
    for client in ["a", "b", "c"] {
        drop(broker.send_args(calls::auth_on_register(client)).await);
    }
    webhook.wait_for_hits(3).await;
    drop(broker);
    let counted = eventually(|| async { hookd.metrics().calls_unanswered.get() == 3 }, WAIT).await;
    assert!(
        counted.is_ok(),
        "{} calls counted unanswered",
        hookd.metrics().calls_unanswered.get()
    );
    assert_eq!(hookd.metrics().streams.get(), 0, "the stream is gone");
}
