//! hookd served as its binary serves it: on several shards (threads with a
//! single-threaded runtime each), every broker connection answered by the
//! shard that accepted it, and all of them stopped together.

use hookd::config::WebhookConfig;
use hookd_proto::v1::ErrorKind;

use crate::harness::{
    Hook, assert_error, assert_ok,
    broker::StreamEnd,
    calls,
    service::{self, Hookd},
    webhook::{Reply, Webhook},
    within,
};

/// A webhook answering `auth_on_register` ok for the usual test user only, and a hookd
/// on `shards` shards calling it.
async fn sharded(shards: usize) -> (Webhook, Hookd) {
    let webhook = Webhook::builder()
        .respond_with(|request| {
            if request.body["username"] == calls::USERNAME {
                Reply::ok()
            } else {
                Reply::error("not_allowed")
            }
        })
        .start()
        .await;
    let config = service::config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]);
    (webhook, Hookd::start_sharded(config, shards).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_on_separate_connections_are_all_answered_by_a_sharded_hookd() {
    let (webhook, hookd) = sharded(2).await;
    let mut brokers = Vec::new();
    for _ in 0..4 {
        brokers.push(hookd.broker().await);
    }
    for (i, broker) in brokers.iter().enumerate() {
        let client_id = format!("c{i}");
        assert_ok(&broker.call(calls::auth_on_register(&client_id)).await);
        let mut denied = calls::auth_on_register(&client_id);
        denied.username = Some("mallory".into());
        assert_error(&broker.call(denied).await, ErrorKind::Denied);
    }
    assert_eq!(webhook.hits(), 8, "every call reached the webhook once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_hookd_ends_every_open_stream_and_returns_on_stop() {
    let (_webhook, hookd) = sharded(3).await;
    let (a, b) = (hookd.broker().await, hookd.broker().await);
    assert_ok(&a.call(calls::auth_on_register("a")).await);
    assert_ok(&b.call(calls::auth_on_register("b")).await);
    within("a sharded hookd to stop", hookd.stop())
        .await
        .expect("serve_sharded returns Ok on shutdown");
    for broker in [a, b] {
        let end = broker.closed().await;
        assert!(
            !matches!(&end, StreamEnd::Failed(s) if s.code() == tonic::Code::Internal),
            "the stream ends cleanly or with a shutdown status, got {end:?}"
        );
    }
}
