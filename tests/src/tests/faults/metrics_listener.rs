//! The metrics listener is bounded like the gRPC one, with the real `hookd`
//! binary: a connection that sends no request (fresh, or idle after a
//! scrape) is closed after `server.handshake_timeout_ms`, connections past
//! the listener's limit are closed as accepted, and on SIGTERM a scraper
//! stuck mid-request keeps neither hookd running nor its port bound.

use std::{net::SocketAddr, time::Duration};

use crate::harness::{WAIT, eventually, peer::RawPeer, process::HookdProcess};

/// `server.handshake_timeout_ms` here.
const HANDSHAKE: Duration = Duration::from_millis(400);

/// Scheduling slack on a busy 2-core machine.
const MARGIN: Duration = Duration::from_millis(1000);

/// Connections the metrics listener keeps open at once
/// (`hookd::metrics_server::MAX_CONNECTIONS`).
const MAX_CONNECTIONS: usize = hookd::metrics_server::MAX_CONNECTIONS;

/// A scrape, on a connection kept alive after it.
const SCRAPE: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: hookd\r\n\r\n";

/// A request head that never ends, as a frozen scraper leaves it.
const HALF_A_REQUEST: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: hookd\r\n";

/// A `hookd` process with a metrics listener and `handshake` as its
/// handshake timeout, and the metrics listener's address.
async fn hookd_with_metrics(handshake: Duration) -> (HookdProcess, SocketAddr) {
    let hookd = HookdProcess::launch()
        .env("HOOKD_METRICS__LISTEN", "127.0.0.1:0")
        .env(
            "HOOKD_SERVER__HANDSHAKE_TIMEOUT_MS",
            &handshake.as_millis().to_string(),
        )
        .start()
        .await;
    hookd.wait_for_log("metrics listening").await;
    let metrics = hookd.listening("metrics listening");
    (hookd, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_connection_without_a_request_is_closed_after_the_handshake_timeout() {
    let (_hookd, metrics) = hookd_with_metrics(HANDSHAKE).await;
    for (what, says) in [
        ("silent", &b""[..]),
        ("idle after a scrape", SCRAPE),
        ("stuck mid-request", HALF_A_REQUEST),
    ] {
        let mut peer = RawPeer::saying(metrics, says).await;
        let closed = peer
            .closed_within(HANDSHAKE + MARGIN)
            .await
            .unwrap_or_else(|| panic!("the {what} metrics connection is still open"));
        assert!(
            closed >= HANDSHAKE - Duration::from_millis(100),
            "the {what} connection closed early: {closed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_connection_past_the_limit_is_closed_at_once_and_scrapes_work_again_after() {
    let (hookd, metrics) = hookd_with_metrics(Duration::from_secs(60)).await;
    let mut held = Vec::with_capacity(MAX_CONNECTIONS);
    for _ in 0..MAX_CONNECTIONS {
        held.push(RawPeer::silent(metrics).await);
    }
    let mut one_more = RawPeer::silent(metrics).await;
    assert!(
        one_more.closed_within(MARGIN).await.is_some(),
        "a connection past {MAX_CONNECTIONS} is closed as it is accepted"
    );
    drop(held);
    crate::harness::install_crypto_provider();
    let scraped = eventually(
        || async {
            let url = format!("http://{metrics}/metrics");
            matches!(reqwest::get(&url).await, Ok(response) if response.status().is_success())
        },
        WAIT,
    )
    .await;
    assert!(
        scraped.is_ok(),
        "the listener serves again once connections close"
    );
    assert!(hookd.metric("hookd_connections_refused_total").await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_not_held_up_by_a_scraper_stuck_mid_request_and_frees_the_metrics_port() {
    let (hookd, metrics) = hookd_with_metrics(Duration::from_secs(60)).await;
    let mut stuck = RawPeer::saying(metrics, HALF_A_REQUEST).await;
    let mut idle = RawPeer::saying(metrics, SCRAPE).await;

    hookd.signal("TERM").await;
    let (status, log) = hookd.exited().await;

    assert!(status.success(), "hookd exits 0: {status:?}\n{log}");
    for (what, peer) in [("stuck", &mut stuck), ("idle", &mut idle)] {
        assert!(
            peer.closed_within(MARGIN).await.is_some(),
            "the {what} scraper is still connected after hookd exited"
        );
    }
    std::net::TcpListener::bind(metrics).expect("a successor binds the metrics port at once");
}
