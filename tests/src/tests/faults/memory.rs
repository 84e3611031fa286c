//! Memory after churn, with the real `hookd` binary: thousands of broker
//! streams opened and closed, three times over, leave hookd's resident
//! memory near where it started (within a quarter of the way to its peak),
//! and each round peaks about where the first did, so a broker fleet that
//! reconnects all day does not ratchet hookd up. Every descriptor the
//! connections held is closed again too.

use std::time::Duration;

use futures::future::join_all;

use hookd_proto::v1::hook_service_client::HookServiceClient;

use crate::harness::{
    WAIT,
    broker::{RawStream, hello, hello_frame},
    channel_to, eventually,
    process::HookdProcess,
};

/// Streams held open at once in a round: enough for glibc's allocator to
/// keep a peak it never returns (the issue saw it with 10,000, the default
/// `server.max_streams`), few enough not to starve tests running beside it.
const STREAMS: usize = 4_000;

/// Streams per connection: the default `server.max_streams_per_connection`.
const STREAMS_PER_CONNECTION: usize = 1_000;

/// Rounds of opening and closing every stream.
const ROUNDS: usize = 3;

/// How long hookd may take to give memory back once the streams closed:
/// the allocator returns unused pages from a background thread over about
/// ten seconds (jemalloc's `dirty_decay_ms`), not at once.
const GIVE_BACK_WITHIN: Duration = Duration::from_secs(30);

/// Opens [`STREAMS`] broker streams (each says Hello and is welcomed) and
/// returns them open.
async fn open_streams(hookd: &HookdProcess) -> Vec<RawStream> {
    let mut streams = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS / STREAMS_PER_CONNECTION {
        let client = HookServiceClient::new(channel_to(hookd.addr(), "hookd").await);
        let opened = join_all((0..STREAMS_PER_CONNECTION).map(|_| async {
            let mut stream = RawStream::open(client.clone(), hello_frame(hello()))
                .await
                .expect("hookd accepts the stream");
            let welcome = stream.next_frame().await;
            assert!(matches!(welcome, Ok(Some(_))), "no Welcome: {welcome:?}");
            stream
        }))
        .await;
        streams.extend(opened);
    }
    streams
}

/// Waits (bounded) until hookd reports no broker stream open.
async fn all_streams_closed(hookd: &HookdProcess) {
    let closed = eventually(|| async { hookd.metric("hookd_streams").await == 0 }, WAIT).await;
    assert!(closed.is_ok(), "hookd still counts open streams");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_returns_near_its_baseline_after_thousands_of_streams_churn_three_times() {
    let hookd = HookdProcess::launch()
        .env("HOOKD_METRICS__LISTEN", "127.0.0.1:0")
        .start()
        .await;
    hookd.wait_for_log("metrics listening").await;
    let baseline = hookd.rss_bytes();
    let descriptors = hookd.open_descriptors();
    let mut first_peak = None;
    for round in 1..=ROUNDS {
        let streams = open_streams(&hookd).await;
        let peak = hookd.rss_bytes();
        let first_peak = *first_peak.get_or_insert(peak);
        assert!(
            peak <= first_peak + first_peak / 4,
            "round {round}: peak RSS {} KiB, against {} KiB in round 1: churn ratchets memory up",
            peak / 1024,
            first_peak / 1024
        );
        drop(streams);
        all_streams_closed(&hookd).await;
        let near = baseline + (peak - baseline) / 4;
        let returned = eventually(|| async { hookd.rss_bytes() <= near }, GIVE_BACK_WITHIN).await;
        assert!(
            returned.is_ok(),
            "round {round}: RSS {} KiB after the streams closed, against {} KiB at start and {} KiB at peak",
            hookd.rss_bytes() / 1024,
            baseline / 1024,
            peak / 1024
        );
        let released = eventually(|| async { hookd.open_descriptors() <= descriptors }, WAIT).await;
        assert!(
            released.is_ok(),
            "round {round}: {} descriptors open after the streams closed, against {descriptors} at start",
            hookd.open_descriptors()
        );
    }
}
