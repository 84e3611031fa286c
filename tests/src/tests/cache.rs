//! The verdict cache: a 200 `ok` with `cache-control: max-age=N` (N > 0) to an
//! auth hook is reused for identical calls (all arguments but the payload and
//! the peer port) for N seconds without calling the endpoint again.

use std::time::Duration;

use hookd::config::WebhookConfig;
use hookd_proto::v1::{AuthOnPublish, AuthOnRegister, ErrorKind, Peer, Verdict};
use serde_json::json;

use crate::harness::{
    Hook, Rig, WAIT, assert_error, assert_next, assert_ok, calls, eventually, register_modifiers,
    service::Hookd,
    webhook::{Reply, Webhook},
};

/// Asserts `verdict` came fresh from the endpoint, cacheable for `max_age` s.
#[track_caller]
fn assert_fresh(verdict: &Verdict, max_age: u32) {
    assert!(
        !verdict.cached,
        "call {} should not come from the cache",
        verdict.id
    );
    assert_eq!(
        verdict.cache_ttl_secs,
        Some(max_age),
        "a fresh verdict carries the full max-age"
    );
}

/// Asserts `verdict` came from the cache with a ttl no longer than `max_age` s.
#[track_caller]
fn assert_cached(verdict: &Verdict, max_age: u32) {
    assert!(verdict.cached, "call {} should come from the cache", verdict.id);
    let ttl = verdict
        .cache_ttl_secs
        .expect("a cached verdict says how long it stays valid");
    assert!(ttl <= max_age, "ttl {ttl} exceeds max-age {max_age}");
}

/// Asserts `verdict` was neither served from nor offered to the cache.
#[track_caller]
fn assert_uncached(verdict: &Verdict) {
    assert!(
        !verdict.cached,
        "call {} should not come from the cache",
        verdict.id
    );
    assert_eq!(verdict.cache_ttl_secs, None, "an uncacheable verdict has no ttl");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ok_with_max_age_is_answered_from_the_cache_the_second_time() {
    let reply = Reply::ok_with(json!({"username": "u2"})).max_age(60);
    let rig = Rig::start(Hook::AuthOnRegister, reply).await;
    let first = rig.broker.call(calls::auth_on_register("c1")).await;
    assert_fresh(&first, 60);
    let second = rig.broker.call(calls::auth_on_register("c1")).await;
    assert_cached(&second, 60);
    assert_eq!(register_modifiers(&second), register_modifiers(&first));
    assert_eq!(
        rig.webhook.hits(),
        1,
        "the second call never reached the endpoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_among_other_directives_still_caches() {
    let reply = Reply::ok().header("cache-control", "max-age=300, private");
    let rig = Rig::start(Hook::AuthOnRegister, reply).await;
    assert_fresh(&rig.broker.call(calls::auth_on_register("c1")).await, 300);
    assert_cached(&rig.broker.call(calls::auth_on_register("c1")).await, 300);
    assert_eq!(rig.webhook.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_verdict_expires_after_max_age() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok().max_age(1)).await;
    assert_fresh(&rig.broker.call(calls::auth_on_register("c1")).await, 1);
    assert_cached(&rig.broker.call(calls::auth_on_register("c1")).await, 1);
    eventually(
        || async {
            rig.broker.call(calls::auth_on_register("c1")).await;
            rig.webhook.hits() >= 2
        },
        Duration::from_secs(5),
    )
    .await
    .expect("after max-age the endpoint is called again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_zero_no_cache_and_no_store_are_never_cached() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok()).await;
    for (i, directive) in ["max-age=0", "no-cache", "no-store"].into_iter().enumerate() {
        rig.webhook
            .set_reply(Reply::ok().header("cache-control", directive));
        let client = format!("client-{i}");
        assert!(!rig.broker.call(calls::auth_on_register(&client)).await.cached);
        assert!(!rig.broker.call(calls::auth_on_register(&client)).await.cached);
        assert_eq!(rig.webhook.hits(), 2 * (i + 1), "{directive} must not be cached");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_answers_and_errors_are_never_cached() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::next().max_age(60)).await;
    assert_next(&rig.broker.call(calls::auth_on_register("c1")).await);
    assert_next(&rig.broker.call(calls::auth_on_register("c1")).await);
    assert_eq!(rig.webhook.hits(), 2, "next is not cached");

    rig.webhook.set_reply(Reply::error("nope").max_age(60));
    for _ in 0..2 {
        let verdict = rig.broker.call(calls::auth_on_register("c1")).await;
        assert_error(&verdict, ErrorKind::Denied);
        assert_uncached(&verdict);
    }
    assert_eq!(rig.webhook.hits(), 4, "errors are not cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_not_remembered_once_the_endpoint_recovers() {
    let webhook = Webhook::builder()
        .fail_first(1, Reply::raw("busy").status(503).max_age(60))
        .reply(Reply::ok().max_age(60))
        .start()
        .await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]).await;
    let broker = hookd.broker().await;
    let failed = broker.call(calls::auth_on_register("c1")).await;
    assert_error(&failed, ErrorKind::InvalidResponse);
    assert_fresh(&broker.call(calls::auth_on_register("c1")).await, 60);
    assert_cached(&broker.call(calls::auth_on_register("c1")).await, 60);
    assert_eq!(webhook.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ok_without_cache_control_is_not_cached() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok()).await;
    assert_uncached(&rig.broker.call(calls::auth_on_register("c1")).await);
    assert_uncached(&rig.broker.call(calls::auth_on_register("c1")).await);
    assert_eq!(rig.webhook.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_payload_still_hits_the_cache_but_a_different_topic_does_not() {
    let rig = Rig::start(Hook::AuthOnPublish, Reply::ok().max_age(60)).await;
    assert_fresh(&rig.broker.call(calls::auth_on_publish("c1")).await, 60);
    let other_payload = AuthOnPublish {
        payload: b"something else entirely".to_vec(),
        ..calls::auth_on_publish("c1")
    };
    assert_cached(&rig.broker.call(other_payload).await, 60);
    assert_eq!(rig.webhook.hits(), 1);
    let other_topic = AuthOnPublish {
        topic: "a/c".into(),
        ..calls::auth_on_publish("c1")
    };
    assert_fresh(&rig.broker.call(other_topic).await, 60);
    assert_eq!(rig.webhook.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_password_misses_the_cache_but_a_different_peer_port_hits_it() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok().max_age(60)).await;
    assert_fresh(&rig.broker.call(calls::auth_on_register("c1")).await, 60);
    let wrong_password = AuthOnRegister {
        password: Some(b"guess".to_vec()),
        ..calls::auth_on_register("c1")
    };
    assert_fresh(&rig.broker.call(wrong_password).await, 60);
    assert_eq!(rig.webhook.hits(), 2, "the password is part of the cache key");

    let reconnect_from_other_port = AuthOnRegister {
        peer: Some(Peer {
            addr: "10.0.0.7".into(),
            port: 60000,
        }),
        ..calls::auth_on_register("c1")
    };
    assert_cached(&rig.broker.call(reconnect_from_other_port).await, 60);
    assert_eq!(
        rig.webhook.hits(),
        2,
        "the peer port is not part of the cache key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_subscribe_answers_are_cached_too() {
    let answer = Reply::json(json!({"result": "ok", "topics": [{"topic": "a/b", "qos": 0}]})).max_age(30);
    let rig = Rig::start(Hook::AuthOnSubscribe, answer).await;
    assert_fresh(&rig.broker.call(calls::auth_on_subscribe("c1")).await, 30);
    let cached = rig.broker.call(calls::auth_on_subscribe("c1")).await;
    assert_cached(&cached, 30);
    assert!(
        assert_ok(&cached).is_some(),
        "the cached verdict keeps its modifiers"
    );
    assert_eq!(rig.webhook.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m5_auth_answers_are_cached_too() {
    let rig = Rig::start(Hook::AuthOnPublishM5, Reply::ok().max_age(30)).await;
    assert_fresh(&rig.broker.call(calls::auth_on_publish_m5("c1")).await, 30);
    assert_cached(&rig.broker.call(calls::auth_on_publish_m5("c1")).await, 30);
    assert_eq!(rig.webhook.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_hooks_outside_the_auth_family_are_not_cached() {
    let rig = Rig::start(Hook::OnDeliver, Reply::ok().max_age(60)).await;
    assert_uncached(&rig.broker.call(calls::on_deliver("c1")).await);
    assert_uncached(&rig.broker.call(calls::on_deliver("c1")).await);
    assert_eq!(rig.webhook.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_verdict_is_served_while_the_endpoint_is_held() {
    // Proves a hit really skips the endpoint: the endpoint would never answer now.
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok().max_age(60)).await;
    assert_fresh(&rig.broker.call(calls::auth_on_register("c1")).await, 60);
    rig.webhook.set_reply(Reply::ok().after(WAIT * 2));
    assert_cached(&rig.broker.call(calls::auth_on_register("c1")).await, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_publish_verdict_keeps_its_modifiers_but_not_the_payload_rewrite() {
    // vmq_webhooks parity: a payload modifier belongs to one message only.
    let modifiers = json!({"topic": "x/y", "payload": crate::harness::b64("rewritten")});
    let rig = Rig::start(Hook::AuthOnPublish, Reply::ok_with(modifiers).max_age(60)).await;
    let fresh = rig.broker.call(calls::auth_on_publish("c1")).await;
    let fresh = crate::harness::publish_modifiers(&fresh);
    assert_eq!(fresh.payload.as_deref(), Some(&b"rewritten"[..]));
    let cached = rig.broker.call(calls::auth_on_publish("c1")).await;
    assert!(cached.cached);
    let cached = crate::harness::publish_modifiers(&cached);
    assert_eq!(cached.topic.as_deref(), Some("x/y"));
    assert_eq!(cached.payload, None);
}
