//! Notification hooks never make the broker wait: hookd answers Ack at once
//! and tells every endpoint concurrently, whether the endpoints are slow,
//! failing or unreachable.

use hookd::config::WebhookConfig;

use crate::harness::{
    Hook, WAIT, assert_ack, calls, eventually,
    service::Hookd,
    webhook::{Reply, Webhook, refused_url},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_acked_while_the_endpoint_still_holds_the_request() {
    let webhook = Webhook::builder().held().start().await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::OnPublish, webhook.url())]).await;
    let broker = hookd.broker().await;
    assert_ack(&broker.call(calls::on_publish("c1")).await);
    webhook.wait_for_hits(1).await;
    // Still held: the Ack above did not wait for the endpoint's answer.
    assert_ack(&broker.call(calls::on_publish("c2")).await);
    webhook.release();
    webhook.wait_for_hits(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_of_a_notification_gets_the_call_concurrently() {
    // The first endpoint never answers until the end of the test, so the
    // others can only be reached if hookd calls them concurrently.
    let held = Webhook::builder().held().start().await;
    let others = [
        Webhook::start(Reply::ok()).await,
        Webhook::start(Reply::ok()).await,
    ];
    let registrations = std::iter::once(&held)
        .chain(&others)
        .map(|w| WebhookConfig::new(Hook::OnClientGone, w.url()));
    let hookd = Hookd::with_webhooks(registrations).await;
    assert_ack(&hookd.broker().await.call(calls::on_client_gone("c1")).await);
    for webhook in std::iter::once(&held).chain(&others) {
        webhook.wait_for_hits(1).await;
        webhook.last_request().assert_hook_call(
            "on_client_gone",
            &serde_json::json!({"mountpoint": "tenant-a", "client_id": "c1"}),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_or_unreachable_notification_endpoints_do_not_stop_the_others() {
    let failing = Webhook::start(Reply::raw("no").status(500)).await;
    let working = Webhook::start(Reply::ok()).await;
    let hookd = Hookd::with_webhooks([
        WebhookConfig::new(Hook::OnSessionExpired, refused_url().await),
        WebhookConfig::new(Hook::OnSessionExpired, failing.url()),
        WebhookConfig::new(Hook::OnSessionExpired, working.url()),
    ])
    .await;
    let broker = hookd.broker().await;
    assert_ack(&broker.call(calls::on_session_expired("c1")).await);
    failing.wait_for_hits(1).await;
    working.wait_for_hits(1).await;
    assert_ack(&broker.call(calls::on_session_expired("c2")).await);
    working.wait_for_hits(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_notifications_to_a_stuck_endpoint_are_all_acked() {
    let webhook = Webhook::builder().held().start().await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::OnClientOffline, webhook.url())]).await;
    let broker = hookd.broker().await;
    for n in 0..50 {
        assert_ack(&broker.call(calls::on_client_offline(&format!("c{n}"))).await);
    }
    webhook.wait_for_hits(50).await;
    webhook.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_past_the_in_flight_limit_are_acked_dropped_and_counted() {
    let webhook = Webhook::builder().held().start().await;
    let mut config = crate::harness::service::config([WebhookConfig::new(Hook::OnPublish, webhook.url())]);
    config.notifications.max_in_flight = 2;
    let hookd = Hookd::start_with_registry(config).await;
    let broker = hookd.broker().await;
    for n in 0..5 {
        assert_ack(&broker.call(calls::on_publish(&format!("c{n}"))).await);
    }
    webhook.wait_for_hits(2).await;
    // The two deliveries are still held, so no permit came back: the other
    // three were dropped, not queued.
    assert_eq!(
        webhook.hits(),
        2,
        "only max_in_flight deliveries reach the endpoint"
    );
    let metrics = hookd.metrics().encode();
    let dropped: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("hookd_notifications_dropped_total{"))
        .filter(|line| line.contains(r#"hook="on_publish""#))
        .collect();
    assert_eq!(
        dropped.len(),
        1,
        "one dropped counter for on_publish in:\n{metrics}"
    );
    assert_eq!(
        dropped[0].rsplit(' ').next(),
        Some("3"),
        "three notifications dropped: {}",
        dropped[0]
    );
    webhook.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_notification_is_counted_as_an_ok_webhook_request() {
    let webhook = Webhook::start(Reply::ok()).await;
    let failing = Webhook::start(Reply::ok().status(500)).await;
    let hookd = Hookd::start_with_registry(crate::harness::service::config([
        WebhookConfig::new(Hook::OnPublish, webhook.url()),
        WebhookConfig::new(Hook::OnPublish, failing.url()),
    ]))
    .await;
    assert_ack(&hookd.broker().await.call(calls::on_publish("c1")).await);
    let counted = |outcome: &str| {
        let line = format!(r#"hookd_webhook_requests_total{{hook="on_publish",outcome="{outcome}"}} 1"#);
        hookd.metrics().encode().lines().any(|l| l == line)
    };
    eventually(|| async { counted("ok") && counted("invalid_response") }, WAIT)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "one ok and one invalid_response in:\n{}",
                hookd.metrics().encode()
            )
        });
}
