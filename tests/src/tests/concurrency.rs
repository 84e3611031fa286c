//! Many calls in flight on one stream, several streams at once: every verdict
//! reaches the call it answers, whatever order they complete in.

use futures::future::join_all;
use hookd::config::WebhookConfig;
use hookd_proto::v1::{ErrorKind, verdict::Outcome};
use serde_json::json;

use crate::harness::{
    Hook, assert_error, assert_ok,
    broker::Broker,
    calls::{self, IntoCall},
    register_modifiers,
    service::Hookd,
    webhook::{Recorded, Reply, Webhook},
};

/// Allows a client whose id ends in an even number (echoing the id back as
/// the username modifier) and denies an odd one with reason `odd-<id>`.
fn allow_even(request: &Recorded) -> Reply {
    let client_id = request.body["client_id"].as_str().unwrap_or_default().to_owned();
    let number: u64 = client_id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    if number.is_multiple_of(2) {
        Reply::ok_with(json!({"username": client_id}))
    } else {
        Reply::error(&format!("odd-{client_id}"))
    }
}

/// hookd with one `allow_even` webhook for `auth_on_register`.
async fn even_gatekeeper() -> (Hookd, Webhook) {
    let webhook = Webhook::builder().respond_with(allow_even).start().await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]).await;
    (hookd, webhook)
}

/// Sends `count` calls for clients `<prefix>-<n>` with ids `first_id + n`, all
/// in flight at once, and checks each verdict against `allow_even`.
async fn call_many(broker: &Broker, prefix: &str, first_id: u64, count: u64) {
    let mut pending = Vec::new();
    for n in 0..count {
        let call = calls::auth_on_register(&format!("{prefix}-{n}")).into_call(first_id + n);
        pending.push(broker.send(call).await);
    }
    let verdicts = join_all(pending.into_iter().map(|p| p.verdict())).await;
    for (n, verdict) in (0..count).zip(verdicts) {
        let client_id = format!("{prefix}-{n}");
        assert_eq!(verdict.id, first_id + n);
        if n.is_multiple_of(2) {
            assert_eq!(register_modifiers(&verdict).username, Some(client_id));
        } else {
            assert_eq!(
                assert_error(&verdict, ErrorKind::Denied),
                format!("odd-{client_id}")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_on_one_stream_each_get_their_own_verdict() {
    let (hookd, webhook) = even_gatekeeper().await;
    let broker = hookd.broker().await;
    call_many(&broker, "client", 10_000, 1000).await;
    assert_eq!(webhook.hits(), 1000);
    assert!(
        broker.unexpected_verdicts().is_empty(),
        "{:?}",
        broker.unexpected_verdicts()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_broker_streams_are_served_at_once_even_with_the_same_ids() {
    let (hookd, webhook) = even_gatekeeper().await;
    let (left, right) = (hookd.broker().await, hookd.broker().await);
    futures::join!(
        call_many(&left, "left", 1, 200),
        call_many(&right, "right", 1, 200)
    );
    assert_eq!(webhook.hits(), 400);
    assert!(left.unexpected_verdicts().is_empty());
    assert!(right.unexpected_verdicts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_come_back_as_they_complete_not_in_call_order() {
    let slow = Webhook::builder().held().start().await;
    let fast = Webhook::start(Reply::ok()).await;
    let hookd = Hookd::with_webhooks([
        WebhookConfig::new(Hook::AuthOnRegister, slow.url()),
        WebhookConfig::new(Hook::AuthOnPublish, fast.url()),
    ])
    .await;
    let broker = hookd.broker().await;
    let first = broker.send(calls::auth_on_register("slow").into_call(1)).await;
    let second = broker.send(calls::auth_on_publish("fast").into_call(2)).await;
    slow.wait_for_hits(1).await;
    let verdict = second.verdict().await;
    assert_eq!(verdict.id, 2);
    assert_ok(&verdict);
    slow.release();
    let verdict = first.verdict().await;
    assert_eq!(verdict.id, 1);
    assert_ok(&verdict);
}

/// A hookd (configured by `configure`) whose one `auth_on_register` webhook
/// holds every request, with three calls sent on one stream.
async fn three_held_calls(
    configure: impl FnOnce(&mut hookd::Config),
) -> (Webhook, Hookd, Broker, Vec<crate::harness::broker::Pending>) {
    let webhook = Webhook::builder().held().start().await;
    let mut config =
        crate::harness::service::config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]);
    configure(&mut config);
    let hookd = Hookd::start_with_registry(config).await;
    let broker = hookd.broker().await;
    let pending =
        join_all((0..3).map(|i| broker.send_args(calls::auth_on_register(&format!("held-{i}"))))).await;
    (webhook, hookd, broker, pending)
}

/// Releases the webhook and asserts all of `pending` are answered `ok`.
async fn release_all_ok(webhook: &Webhook, pending: Vec<crate::harness::broker::Pending>) {
    webhook.release();
    for verdict in join_all(pending.into_iter().map(|p| p.verdict())).await {
        assert_ok(&verdict);
    }
}

/// Asserts that of three held calls exactly two reach `webhook` (`why` not
/// the third), then releases them and asserts all three are answered `ok`
/// and the third reached the webhook too.
async fn two_of_three_then_all(
    webhook: &Webhook,
    hookd: &Hookd,
    pending: Vec<crate::harness::broker::Pending>,
    why: &str,
) {
    webhook.wait_for_hits(2).await;
    // A round trip on another stream of the same hookd: by its end the third
    // request would long have reached the webhook, had it not been held back.
    let other = hookd.broker().await;
    crate::harness::assert_next(&other.call(calls::auth_on_subscribe("barrier")).await);
    assert_eq!(webhook.hits(), 2, "{why}");
    release_all_ok(webhook, pending).await;
    assert_eq!(webhook.hits(), 3, "the third call went out once a slot freed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_in_flight_per_stream_hookd_stops_reading_until_a_call_finishes() {
    let (webhook, hookd, _broker, pending) =
        three_held_calls(|config| config.server.max_in_flight_per_stream = 2).await;
    two_of_three_then_all(&webhook, &hookd, pending, "the third call waited in the stream").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_pool_max_connections_a_call_waits_for_a_free_connection() {
    let (webhook, hookd, _broker, pending) =
        three_held_calls(|config| config.http.pool_max_connections = 2).await;
    two_of_three_then_all(&webhook, &hookd, pending, "at most two requests at the endpoint").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_still_waiting_for_a_connection_at_its_deadline_is_a_timeout() {
    let webhook = Webhook::builder().held().start().await;
    let mut config =
        crate::harness::service::config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]);
    config.http.pool_max_connections = 1;
    let hookd = Hookd::start(config).await;
    let broker = hookd.broker().await;
    let holding = broker.send_args(calls::auth_on_register("holding")).await;
    webhook.wait_for_hits(1).await;
    let mut waiting = calls::auth_on_register("waiting").into_call(broker.fresh_id());
    waiting.timeout_ms = Some(200);
    assert_error(&broker.send(waiting).await.verdict().await, ErrorKind::Timeout);
    assert_eq!(webhook.hits(), 1, "the waiting call never reached the endpoint");
    webhook.release();
    assert_ok(&holding.verdict().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_waiting_for_webhooks_are_counted_in_flight_until_answered() {
    let (webhook, hookd, broker, pending) = three_held_calls(|_| {}).await;
    webhook.wait_for_hits(3).await;
    assert_eq!(hookd.metrics().calls_in_flight.get(), 3);
    // Answered at once, so never in flight.
    crate::harness::assert_next(&broker.call(calls::auth_on_subscribe("local")).await);
    assert_eq!(hookd.metrics().calls_in_flight.get(), 3);
    release_all_ok(&webhook, pending).await;
    assert_eq!(hookd.metrics().calls_in_flight.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_endpoint_fails_further_calls_at_once_and_the_stream_goes_on() {
    let hung = Webhook::builder().held().start().await;
    let fine = Webhook::start(Reply::ok()).await;
    let mut config = crate::harness::service::config([
        WebhookConfig::new(Hook::AuthOnRegister, hung.url()),
        WebhookConfig::new(Hook::AuthOnPublish, fine.url()),
    ]);
    config.http.pool_max_connections = 1;
    config.http.stall_timeout_ms = 100;
    let hookd = Hookd::start(config).await;
    let broker = hookd.broker().await;
    let at_endpoint = broker.send_args(calls::auth_on_register("first")).await;
    hung.wait_for_hits(1).await;
    // A probe waits for the one connection (and times out) until the
    // endpoint has been stuck for stall_timeout_ms; then it is refused at
    // once. Bounded: each probe ends by its own 50 ms deadline.
    let mut refused = None;
    for _ in 0..100 {
        let mut probe = calls::auth_on_register("probe").into_call(broker.fresh_id());
        probe.timeout_ms = Some(50);
        let verdict = broker.send(probe).await.verdict().await;
        match verdict.outcome {
            Some(Outcome::Error(e)) if e.kind == ErrorKind::Overloaded as i32 => {
                refused = Some(e.reason);
                break;
            }
            Some(Outcome::Error(e)) if e.kind == ErrorKind::Timeout as i32 => {}
            other => panic!("a probe times out or is refused, not {other:?}"),
        }
    }
    let reason = refused.expect("a stuck endpoint's calls are refused at once after stall_timeout_ms");
    assert!(reason.contains("http.stall_timeout_ms"), "{reason}");
    assert_ok(&broker.call(calls::auth_on_publish("other-hook")).await);
    assert_eq!(hung.hits(), 1, "no probe reached the stuck endpoint");
    hung.release();
    assert_ok(&at_endpoint.verdict().await);
    assert_ok(&broker.call(calls::auth_on_register("after")).await);
}
