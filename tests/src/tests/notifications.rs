//! Notification hooks never make the broker wait for a webhook: hookd answers
//! Ack once the notification is in its outbox and tells every endpoint
//! concurrently, whether the endpoints are slow, failing or unreachable; past
//! the outbox's quota the broker is told `overloaded` instead.

use hookd::config::WebhookConfig;

use hookd_proto::v1::{ErrorKind, verdict::Outcome};

use crate::harness::{
    Hook, WAIT, assert_ack, assert_error, calls, eventually,
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
async fn notifications_past_the_outbox_quota_are_answered_overloaded_counted_and_the_acked_ones_delivered() {
    let webhook = Webhook::builder().held().start().await;
    let mut config = crate::harness::service::config([WebhookConfig::new(Hook::OnPublish, webhook.url())]);
    // A few on_publish rows (a few hundred bytes each) fit, then the quota is full.
    config.outbox.max_bytes = 1500;
    let hookd = Hookd::start_with_registry(config).await;
    let broker = hookd.broker().await;
    let mut acked = 0;
    for n in 0..20 {
        let verdict = broker.call(calls::on_publish(&format!("c{n}"))).await;
        if matches!(verdict.outcome, Some(Outcome::Ack(_))) {
            assert_eq!(
                acked, n,
                "once full, the outbox stays full while nothing is delivered"
            );
            acked += 1;
        } else {
            let reason = assert_error(&verdict, ErrorKind::Overloaded);
            assert!(reason.contains("outbox.max_bytes"), "{reason}");
        }
    }
    assert!((1..20).contains(&acked), "{acked} of 20 acknowledged");
    let metrics = hookd.metrics().encode();
    let line = format!(
        r#"hookd_notifications_dropped_total{{hook="on_publish",outcome="full"}} {}"#,
        20 - acked
    );
    assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    webhook.release();
    webhook.wait_for_hits(acked).await;
    let distinct: std::collections::HashSet<String> = webhook
        .requests()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert_eq!(
        distinct.len(),
        acked,
        "every acknowledged notification is delivered"
    );
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
    let counted = |endpoint: &str, outcome: &str| {
        let line = format!(
            r#"hookd_webhook_requests_total{{hook="on_publish",endpoint="{endpoint}",outcome="{outcome}"}} 1"#
        );
        hookd.metrics().encode().lines().any(|l| l == line)
    };
    eventually(
        || async { counted(&webhook.url(), "ok") && counted(&failing.url(), "invalid_response") },
        WAIT,
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "one ok and one invalid_response in:\n{}",
            hookd.metrics().encode()
        )
    });
}
