//! hookd's shutdown is bounded and graceful, and no peer can pin a
//! connection: on SIGTERM calls in flight get `server.shutdown_grace_ms` to
//! finish, those still running then are answered `overloaded`, every
//! connection is closed (idle, half-open and frozen ones too), the port is
//! free for a successor, and a second signal exits at once. While running,
//! a connection that never completes its handshake, one that carries no
//! stream, and a broker that stops answering keepalive PINGs are all cut off.

use std::{future::Future, net::SocketAddr, time::Duration};

use hookd::{Config, config::WebhookConfig};
use hookd_proto::v1::{ErrorKind, hook_service_client::HookServiceClient};
use tokio::time::Instant;

use crate::harness::{
    Hook, WAIT, assert_ack, assert_error, assert_ok,
    broker::{Broker, Pending, StreamEnd},
    calls, eventually,
    peer::{EMPTY_SETTINGS, FreezableRelay, MAGIC, RawPeer},
    process::HookdProcess,
    service::{self, Hookd},
    webhook::{Reply, Webhook},
    within,
};

/// The grace period most tests configure.
const GRACE: Duration = Duration::from_millis(1000);

/// How far past its bound hookd may be: `shutdown::LAST_WORDS` (250 ms) for
/// the last verdicts, and scheduling slack on a busy 2-core machine.
const MARGIN: Duration = Duration::from_millis(1000);

/// A webhook answering ok after `delay` to a client named `quick`, and only
/// after a minute (past every grace period and timeout here) to anyone else.
async fn quick_and_slow(delay: Duration) -> Webhook {
    Webhook::builder()
        .respond_with(move |request| {
            if request.body["client_id"] == "quick" {
                Reply::ok().after(delay)
            } else {
                Reply::ok().after(Duration::from_secs(60))
            }
        })
        .start()
        .await
}

/// hookd's default configuration with `webhook` answering `auth_on_register`
/// and a grace period of `grace`.
fn with_grace(webhook: &Webhook, grace: Duration) -> Config {
    let mut registration = WebhookConfig::new(Hook::AuthOnRegister, webhook.url());
    registration.response_timeout = 60_000;
    let mut config = service::config([registration]);
    config.server.shutdown_grace_ms = millis(grace);
    config
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).expect("a test duration fits")
}

/// Stops `hookd` and says how long that took.
async fn timed_stop(hookd: Hookd) -> Duration {
    let started = Instant::now();
    within("hookd to stop", hookd.stop())
        .await
        .expect("hookd returns Ok on shutdown");
    started.elapsed()
}

/// Sends an `auth_on_register` call for `client_id` and waits until it has
/// reached `webhook`.
async fn in_flight(broker: &Broker, webhook: &Webhook, client_id: &str) -> Pending {
    let hits_before = webhook.hits();
    let pending = broker.send_args(calls::auth_on_register(client_id)).await;
    webhook.wait_for_hits(hits_before + 1).await;
    pending
}

#[track_caller]
fn assert_shutting_down(end: &StreamEnd) {
    assert!(
        matches!(end, StreamEnd::Failed(status) if status.code() == tonic::Code::Unavailable),
        "a stream hookd ends on shutdown ends UNAVAILABLE, got {end:?}"
    );
}

#[track_caller]
fn assert_between(elapsed: Duration, least: Duration, most: Duration, what: &str) {
    assert!(
        (least..=most).contains(&elapsed),
        "{what} took {elapsed:?}, expected between {least:?} and {most:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_done_within_the_grace_period_keep_their_verdict_and_the_rest_are_answered_overloaded() {
    let webhook = quick_and_slow(Duration::from_millis(500)).await;
    let hookd = Hookd::start(with_grace(&webhook, GRACE)).await;
    let broker = hookd.broker().await;
    let quick = in_flight(&broker, &webhook, "quick").await;
    let slow = in_flight(&broker, &webhook, "slow").await;

    let took = timed_stop(hookd).await;

    assert_ok(&quick.verdict().await);
    let reason = assert_error(&slow.verdict().await, ErrorKind::Overloaded);
    assert_eq!(reason, "hookd is shutting down");
    assert_shutting_down(&broker.closed().await);
    assert_between(
        took,
        GRACE,
        GRACE + MARGIN,
        "a shutdown with a call past the grace period",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hookd_stops_as_soon_as_its_last_call_in_flight_is_answered() {
    let webhook = quick_and_slow(Duration::from_millis(300)).await;
    let grace = Duration::from_secs(8);
    let hookd = Hookd::start(with_grace(&webhook, grace)).await;
    let broker = hookd.broker().await;
    let quick = in_flight(&broker, &webhook, "quick").await;

    let took = timed_stop(hookd).await;

    assert_ok(&quick.verdict().await);
    assert_shutting_down(&broker.closed().await);
    assert!(
        took < Duration::from_millis(300) + MARGIN,
        "nothing was left to wait for, yet it took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_draining_new_calls_needing_a_webhook_are_refused_at_once_and_notifications_still_delivered() {
    let auth = Webhook::builder().held().start().await;
    let events = Webhook::start(Reply::ok()).await;
    let mut config = with_grace(&auth, Duration::from_secs(8));
    config
        .webhooks
        .push(WebhookConfig::new(Hook::OnPublish, events.url()));
    let hookd = Hookd::start(config).await;
    let addr = hookd.addr();
    let broker = hookd.broker().await;
    let first = in_flight(&broker, &auth, "first").await;

    let stopped = tokio::spawn(timed_stop(hookd));
    // Draining has begun once the listening socket is closed.
    eventually(
        || async { tokio::net::TcpStream::connect(addr).await.is_err() },
        WAIT,
    )
    .await
    .expect("hookd stops accepting as it begins draining");

    let asked = Instant::now();
    let refused = broker.call(calls::auth_on_register("latecomer")).await;
    assert_eq!(
        assert_error(&refused, ErrorKind::Overloaded),
        "hookd is shutting down"
    );
    assert!(
        asked.elapsed() < MARGIN,
        "refused only after {:?}",
        asked.elapsed()
    );
    assert_eq!(auth.hits(), 1, "a refused call never reaches its webhook");

    assert_ack(&broker.call(calls::on_publish("c1")).await);
    events.wait_for_hits(1).await;

    auth.release();
    assert_ok(&first.verdict().await);
    let took = within("the stop task", stopped)
        .await
        .expect("the stop task does not panic");
    assert!(
        took < Duration::from_secs(8),
        "hookd waited out its grace period: {took:?}"
    );
    assert_shutting_down(&broker.closed().await);
}

/// Connects every kind of peer that used to keep hookd from stopping: a
/// TCP connection that never speaks, one that sent only the HTTP/2 magic,
/// one that completed the handshake but opened no stream, a broker whose
/// call is held past the grace period, and a frozen broker with a call in
/// flight. Returns the raw peers, the live broker's held call, and what
/// must stay alive until the end.
async fn every_kind_of_peer(addr: SocketAddr, webhook: &Webhook) -> (Vec<RawPeer>, Pending, impl Sized) {
    let peers = vec![
        RawPeer::silent(addr).await,
        RawPeer::saying(addr, MAGIC).await,
        RawPeer::saying(addr, &[MAGIC, EMPTY_SETTINGS].concat()).await,
    ];
    let endpoint = format!("http://{addr}");
    let channel = within(
        "a gRPC connection to hookd",
        tonic::transport::Endpoint::from_shared(endpoint)
            .expect("a socket address makes a valid URI")
            .connect(),
    )
    .await
    .expect("hookd accepts gRPC connections");
    let broker = Broker::connect(HookServiceClient::new(channel)).await;
    let held = in_flight(&broker, webhook, "held").await;

    let relay = FreezableRelay::start(addr).await;
    let frozen = Broker::connect(HookServiceClient::new(relay.channel().await)).await;
    let frozen_call = in_flight(&frozen, webhook, "frozen").await;
    relay.freeze();
    (peers, held, (broker, relay, frozen, frozen_call))
}

/// Starts hookd with `start`, connects [`every_kind_of_peer`], stops it and
/// checks it stopped within its grace period, closed every connection,
/// answered the live broker and freed its port.
async fn stops_within_its_grace_period_with_every_kind_of_peer<F, Fut>(start: F)
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = Hookd>,
{
    let webhook = Webhook::builder().held().start().await;
    let hookd = start(with_grace(&webhook, GRACE)).await;
    let addr = hookd.addr();
    let (mut peers, held, _alive) = every_kind_of_peer(addr, &webhook).await;

    let took = timed_stop(hookd).await;

    assert_between(took, GRACE, GRACE + MARGIN, "a shutdown with every kind of peer");
    assert_error(&held.verdict().await, ErrorKind::Overloaded);
    for (i, peer) in peers.iter_mut().enumerate() {
        assert!(
            peer.closed_within(MARGIN).await.is_some(),
            "raw peer {i} is still connected after hookd stopped"
        );
    }
    std::net::TcpListener::bind(addr).expect("a successor binds hookd's port at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hookd_stops_within_its_grace_period_with_idle_half_open_and_frozen_peers_connected() {
    stops_within_its_grace_period_with_every_kind_of_peer(Hookd::start).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_hookd_stops_within_its_grace_period_with_idle_half_open_and_frozen_peers_connected() {
    stops_within_its_grace_period_with_every_kind_of_peer(|config| Hookd::start_sharded(config, 2)).await;
}

/// A `hookd` process (two shards) listening on `listen` (port 0: any), with
/// a grace period of `grace` and `webhook` answering `auth_on_register`.
async fn process(webhook: &Webhook, grace: Duration, listen: SocketAddr) -> HookdProcess {
    let config = format!(
        "[server]\nshutdown_grace_ms = {}\n\n\
         [[webhooks]]\nhook = \"auth_on_register\"\nendpoint = \"{}\"\nresponse_timeout = 60000\n",
        millis(grace),
        webhook.url()
    );
    HookdProcess::launch()
        .env("HOOKD_SERVER__LISTEN", &listen.to_string())
        .config(&config)
        .start()
        .await
}

/// Any loopback port.
fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_process_within_its_grace_period_and_a_new_hookd_binds_the_port_at_once() {
    let webhook = Webhook::builder().held().start().await;
    let hookd = process(&webhook, GRACE, any_port()).await;
    let addr = hookd.addr();
    let (mut peers, held, _alive) = every_kind_of_peer(addr, &webhook).await;

    let sent = Instant::now();
    hookd.signal("TERM").await;
    let (status, log) = hookd.exited().await;
    let after = sent.elapsed();

    assert!(
        status.success(),
        "hookd exits 0 after a graceful shutdown: {status:?}\n{log}"
    );
    assert_between(after, GRACE, GRACE + MARGIN, "SIGTERM with every kind of peer");
    assert_error(&held.verdict().await, ErrorKind::Overloaded);
    for (i, peer) in peers.iter_mut().enumerate() {
        assert!(
            peer.closed_within(MARGIN).await.is_some(),
            "raw peer {i} is still connected after hookd exited"
        );
    }
    let summary = log
        .lines()
        .find(|line| line.contains("hookd stopped"))
        .unwrap_or_else(|| panic!("no summary line in:\n{log}"));
    assert!(summary.contains("calls_overloaded=2"), "{summary}");

    let successor = process(&webhook, GRACE, addr).await;
    assert_eq!(successor.addr(), addr);
    assert!(successor.is_serving().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once_and_the_port_is_free_while_draining() {
    let webhook = Webhook::builder().held().start().await;
    let hookd = process(&webhook, Duration::from_secs(30), any_port()).await;
    let addr = hookd.addr();
    let broker = Broker::connect(hookd.client().await).await;
    let _held = in_flight(&broker, &webhook, "held").await;

    hookd.signal("TERM").await;
    eventually(|| async { std::net::TcpListener::bind(addr).is_ok() }, WAIT)
        .await
        .expect("the port is free as soon as hookd begins draining");
    let second = Instant::now();
    hookd.signal("TERM").await;
    let (status, log) = hookd.exited().await;
    let after = second.elapsed();

    assert_eq!(status.code(), Some(143), "128 + SIGTERM:\n{log}");
    assert!(
        after < MARGIN,
        "a second signal exits at once, not after {after:?}"
    );
    assert!(log.contains("second signal"), "{log}");
}

/// hookd with `webhook` answering `auth_on_register` and short connection
/// bounds: handshake `handshake`, idle `idle`, keepalive PINGs every
/// `ping_every`, answered within `ping_timeout`.
async fn bounded(
    webhook: &Webhook,
    handshake: Duration,
    idle: Duration,
    ping_every: Duration,
    ping_timeout: Duration,
) -> Hookd {
    let mut config = with_grace(webhook, GRACE);
    config.server.handshake_timeout_ms = millis(handshake);
    config.server.idle_timeout_ms = millis(idle);
    config.server.http2_keepalive_interval_ms = millis(ping_every);
    config.server.http2_keepalive_timeout_ms = millis(ping_timeout);
    Hookd::start_with_registry(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_completes_the_http2_preface_is_closed_after_the_handshake_timeout() {
    let webhook = Webhook::start(Reply::ok()).await;
    let handshake = Duration::from_millis(400);
    let minute = Duration::from_secs(60);
    let hookd = bounded(&webhook, handshake, minute, minute, minute).await;

    for (what, says) in [("silent", &b""[..]), ("magic only", MAGIC)] {
        let mut peer = RawPeer::saying(hookd.addr(), says).await;
        let closed = peer.closed_within(handshake + MARGIN).await;
        let closed = closed.unwrap_or_else(|| panic!("the {what} connection is still open"));
        assert!(
            closed >= handshake - Duration::from_millis(100),
            "{what} closed early: {closed:?}"
        );
    }
    let metrics = hookd.metrics().encode();
    assert!(
        metrics.contains("hookd_connections_closed_total 2"),
        "both closes are counted:\n{metrics}"
    );
    assert_ok(&hookd.broker().await.call(calls::auth_on_register("c1")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_a_stream_is_closed_after_the_idle_timeout_and_a_quiet_broker_stream_is_not() {
    let webhook = Webhook::start(Reply::ok()).await;
    let idle = Duration::from_millis(400);
    let hookd = bounded(
        &webhook,
        Duration::from_secs(60),
        idle,
        Duration::from_millis(100),
        Duration::from_millis(300),
    )
    .await;
    let broker = hookd.broker().await;
    let mut streamless = RawPeer::handshaken(hookd.addr()).await;

    let closed = streamless.closed_within(idle + MARGIN).await;
    let closed = closed.expect("a connection without a stream is closed");
    assert!(
        closed >= idle - Duration::from_millis(100),
        "closed early: {closed:?}"
    );

    // Time passing is what is tested here: a broker whose stream carried no
    // call for twice the idle timeout (and answered every PING meanwhile)
    // keeps its stream.
    tokio::time::sleep(idle * 2).await;
    assert!(
        broker.ended().is_none(),
        "the quiet stream ended: {:?}",
        broker.ended()
    );
    assert_ok(&broker.call(calls::auth_on_register("c1")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_ends_the_stream_of_a_broker_that_stops_answering_and_settles_its_calls() {
    let held = Webhook::builder().held().start().await;
    let (ping_every, ping_timeout) = (Duration::from_millis(200), Duration::from_millis(300));
    let minute = Duration::from_secs(60);
    let hookd = bounded(&held, minute, minute, ping_every, ping_timeout).await;
    let healthy = hookd.broker().await;
    let relay = FreezableRelay::start(hookd.addr()).await;
    let frozen = Broker::connect(HookServiceClient::new(relay.channel().await)).await;
    let _unanswerable = in_flight(&frozen, &held, "frozen").await;
    let metrics = hookd.metrics();
    assert_eq!((metrics.streams.get(), metrics.calls_in_flight.get()), (2, 1));

    let froze = Instant::now();
    relay.freeze();
    eventually(
        || async { metrics.streams.get() == 1 && metrics.calls_in_flight.get() == 0 },
        WAIT,
    )
    .await
    .expect("the frozen broker's stream ends and its call is settled");

    let took = froze.elapsed();
    assert!(
        took <= ping_every + ping_timeout + MARGIN,
        "a frozen broker was cut off only after {took:?}"
    );
    assert!(
        healthy.ended().is_none(),
        "a broker answering PINGs keeps its stream"
    );
    held.release();
    assert_ok(&healthy.call(calls::auth_on_register("c1")).await);
}
