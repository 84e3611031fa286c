//! hookd bounds what peers can hold: broker streams in all and per
//! connection (one more is refused RESOURCE_EXHAUSTED, counted) and
//! connections (one more is closed as it is accepted, counted); a slot that
//! frees up is usable again.

use hookd_proto::v1::hook_service_client::HookServiceClient;
use tokio::{io::AsyncReadExt, net::TcpStream};
use tonic::{Code, transport::Endpoint};

use crate::harness::{
    WAIT, assert_ack,
    broker::{Broker, RawStream, hello, hello_frame},
    calls, eventually,
    service::{Hookd, config},
};

/// hookd with no webhooks and the server limits `configure` sets.
async fn hookd_with(configure: impl FnOnce(&mut hookd::config::ServerConfig)) -> Hookd {
    let mut config = config([]);
    configure(&mut config.server);
    Hookd::start_with_registry(config).await
}

/// How a stream opened on a new connection to `hookd` fares: `Ok` when it
/// is welcomed, the status it is refused with, or `None` when the
/// connection itself fails.
async fn open_stream(hookd: &Hookd) -> Option<Result<(), tonic::Status>> {
    let endpoint = Endpoint::from_shared(format!("http://{}", hookd.addr())).ok()?;
    let channel = endpoint.connect_timeout(WAIT).connect().await.ok()?;
    Some(
        match RawStream::open(HookServiceClient::new(channel), hello_frame(hello())).await {
            Err(status) => Err(status),
            Ok(mut stream) => stream.next_frame().await.map(|_| ()),
        },
    )
}

fn counted(hookd: &Hookd, line: &str) -> bool {
    hookd.metrics().encode().lines().any(|l| l == line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_past_max_streams_is_refused_and_its_slot_comes_back_when_one_closes() {
    let hookd = hookd_with(|server| server.max_streams = 2).await;
    let first = hookd.broker().await;
    let second = hookd.broker().await;
    let status = open_stream(&hookd)
        .await
        .expect("hookd accepts the connection")
        .expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("server.max_streams"), "{status:?}");
    assert!(counted(&hookd, "hookd_streams_refused_total 1"));
    assert_ack(&second.call(calls::on_client_gone("c")).await);
    drop(first);
    eventually(
        || async { matches!(open_stream(&hookd).await, Some(Ok(()))) },
        WAIT,
    )
    .await
    .expect("a freed slot takes a new stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_past_max_streams_per_connection_is_refused_on_that_connection_only() {
    let hookd = hookd_with(|server| server.max_streams_per_connection = 1).await;
    let client = hookd.client().await;
    let _first = Broker::connect(client.clone()).await;
    let status = match RawStream::open(client, hello_frame(hello())).await {
        Err(status) => status,
        Ok(mut stream) => stream.next_frame().await.expect_err("refused"),
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("server.max_streams_per_connection"),
        "{status:?}"
    );
    assert!(counted(&hookd, "hookd_streams_refused_total 1"));
    let other = hookd.broker().await;
    assert_ack(&other.call(calls::on_client_gone("c")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_past_max_connections_is_closed_at_once_and_counted() {
    let hookd = hookd_with(|server| server.max_connections = 1).await;
    let held = TcpStream::connect(hookd.addr())
        .await
        .expect("the first connection is accepted");
    let mut extra = TcpStream::connect(hookd.addr())
        .await
        .expect("the kernel accepts the second");
    // Closed by hookd as it is accepted: the read ends, with nothing read.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(WAIT, extra.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the extra connection is closed: {read:?}"
    );
    assert!(counted(&hookd, "hookd_connections_refused_total 1"));
    drop(held);
    eventually(
        || async { matches!(open_stream(&hookd).await, Some(Ok(()))) },
        WAIT,
    )
    .await
    .expect("once the held connection closes, a broker is served again");
}
