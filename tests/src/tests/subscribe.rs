//! The subscription hooks: `auth_on_subscribe*`, `on_unsubscribe*` (chains) and
//! `on_subscribe*` (notifications): topic lists, MQTT 5 options, and where each
//! hook reads its rewritten topics from (top level for v3, `modifiers` for m5).

use hookd_proto::v1::{
    AuthOnSubscribe, RetainHandling, SubscribeModifiers, SubscriptionGrant, UnsubscribeModifiers,
};
use serde_json::json;

use crate::harness::{
    Hook, Rig, assert_chain_answers, assert_notification,
    calls::{self, USERNAME},
    subscribe_modifiers, unsubscribe_modifiers,
    webhook::Reply,
};

/// A grant with no MQTT 5 options.
fn grant(topic: &str, qos: u32) -> SubscriptionGrant {
    SubscriptionGrant {
        topic: topic.into(),
        qos,
        ..SubscriptionGrant::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_subscribe_posts_topics_with_their_qos() {
    let rig = Rig::start(Hook::AuthOnSubscribe, Reply::ok()).await;
    rig.broker.call(calls::auth_on_subscribe("sub-1")).await;
    let expected = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": "sub-1",
        "topics": [{"topic": "a/b", "qos": 1}, {"topic": "c/#", "qos": 0}],
    });
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_subscribe", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_subscribe_leaves_mqtt5_options_out_of_v3_topics() {
    let rig = Rig::start(Hook::AuthOnSubscribe, Reply::ok()).await;
    let call = AuthOnSubscribe {
        topics: vec![calls::subscription_m5("a/b", 1, RetainHandling::DontSend)],
        ..calls::auth_on_subscribe("sub-1")
    };
    rig.broker.call(call).await;
    let body = rig.webhook.last_request().body;
    assert_eq!(body["topics"], json!([{"topic": "a/b", "qos": 1}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_subscribe_reads_rewritten_topics_from_the_top_level() {
    let answer = json!({"result": "ok", "topics": [{"topic": "a", "qos": 1}, {"topic": "b", "qos": 128}]});
    let rig = Rig::start(Hook::AuthOnSubscribe, Reply::json(answer)).await;
    let verdict = rig.broker.call(calls::auth_on_subscribe("sub-1")).await;
    let expected = SubscribeModifiers {
        topics: vec![grant("a", 1), grant("b", 128)],
    };
    assert_eq!(subscribe_modifiers(&verdict), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_subscribe_maps_ok_next_and_error_answers() {
    let rig = Rig::start(Hook::AuthOnSubscribe, Reply::ok()).await;
    assert_chain_answers(&rig, calls::auth_on_subscribe).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_subscribe_m5_posts_subscription_options_and_properties() {
    let rig = Rig::start(Hook::AuthOnSubscribeM5, Reply::ok()).await;
    rig.broker.call(calls::auth_on_subscribe_m5("sub-5")).await;
    let expected = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": "sub-5",
        "topics": [
            {"topic": "a/b", "qos": 1, "no_local": true, "rap": false, "retain_handling": "send_retain"},
            {"topic": "c/+", "qos": 2, "no_local": true, "rap": false, "retain_handling": "send_if_new_sub"},
            {"topic": "d", "qos": 0, "no_local": true, "rap": false, "retain_handling": "dont_send"},
            {"topic": "e/#", "qos": 0},
        ],
        "properties": {"p_subscription_id": [9], "p_user_property": [calls::user_property_json("k", "v")]},
    });
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_subscribe_m5", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_subscribe_m5_reads_topics_from_modifiers_and_passes_reason_codes_through() {
    let modifiers = json!({"topics": [
        {"topic": "a", "qos": 1, "no_local": true, "rap": true, "retain_handling": "dont_send"},
        {"topic": "b", "qos": 135},
    ]});
    let rig = Rig::start(Hook::AuthOnSubscribeM5, Reply::ok_with(modifiers)).await;
    let verdict = rig.broker.call(calls::auth_on_subscribe_m5("sub-5")).await;
    let topics = subscribe_modifiers(&verdict).topics;
    assert_eq!(topics.len(), 2, "{topics:?}");
    let optioned = SubscriptionGrant {
        topic: "a".into(),
        qos: 1,
        no_local: Some(true),
        retain_as_published: Some(true),
        retain_handling: Some(RetainHandling::DontSend.into()),
    };
    assert_eq!(topics[0], optioned);
    assert_eq!((topics[1].topic.as_str(), topics[1].qos), ("b", 135));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_subscribe_m5_maps_ok_next_and_error_answers() {
    let rig = Rig::start(Hook::AuthOnSubscribeM5, Reply::ok()).await;
    assert_chain_answers(&rig, calls::auth_on_subscribe_m5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_subscribe_notifies_with_rejected_topics_as_128() {
    let expected = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": "sub-1",
        "topics": [{"topic": "a/b", "qos": 1}, {"topic": "secret/#", "qos": 128}],
    });
    assert_notification(Hook::OnSubscribe, calls::on_subscribe("sub-1"), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_subscribe_m5_notifies_with_options_and_empty_properties() {
    let expected = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": "sub-5",
        "topics": [
            {"topic": "a/b", "qos": 1, "no_local": true, "rap": false, "retain_handling": "dont_send"},
            {"topic": "secret/#", "qos": 128},
        ],
        "properties": {},
    });
    assert_notification(Hook::OnSubscribeM5, calls::on_subscribe_m5("sub-5"), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_unsubscribe_posts_topics_as_strings() {
    let rig = Rig::start(Hook::OnUnsubscribe, Reply::ok()).await;
    rig.broker.call(calls::on_unsubscribe("sub-1")).await;
    let expected = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": "sub-1",
        "topics": ["a/b", "c/#"],
    });
    rig.webhook
        .last_request()
        .assert_hook_call("on_unsubscribe", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_unsubscribe_reads_rewritten_topics_from_the_top_level() {
    let answer = json!({"result": "ok", "topics": ["a/b/only"]});
    let rig = Rig::start(Hook::OnUnsubscribe, Reply::json(answer)).await;
    let verdict = rig.broker.call(calls::on_unsubscribe("sub-1")).await;
    let expected = UnsubscribeModifiers {
        topics: vec!["a/b/only".into()],
    };
    assert_eq!(unsubscribe_modifiers(&verdict), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_unsubscribe_maps_ok_next_and_error_answers() {
    let rig = Rig::start(Hook::OnUnsubscribe, Reply::ok()).await;
    assert_chain_answers(&rig, calls::on_unsubscribe).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_unsubscribe_m5_posts_topics_and_properties() {
    let rig = Rig::start(Hook::OnUnsubscribeM5, Reply::ok()).await;
    rig.broker.call(calls::on_unsubscribe_m5("sub-5")).await;
    let expected = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": "sub-5",
        "topics": ["a/b", "c/#"],
        "properties": {"p_user_property": [calls::user_property_json("why", "done")]},
    });
    rig.webhook
        .last_request()
        .assert_hook_call("on_unsubscribe_m5", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_unsubscribe_m5_reads_rewritten_topics_from_modifiers() {
    let rig = Rig::start(
        Hook::OnUnsubscribeM5,
        Reply::ok_with(json!({"topics": ["x", "y/#"]})),
    )
    .await;
    let verdict = rig.broker.call(calls::on_unsubscribe_m5("sub-5")).await;
    let expected = UnsubscribeModifiers {
        topics: vec!["x".into(), "y/#".into()],
    };
    assert_eq!(unsubscribe_modifiers(&verdict), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_unsubscribe_m5_maps_ok_next_and_error_answers() {
    let rig = Rig::start(Hook::OnUnsubscribeM5, Reply::ok()).await;
    assert_chain_answers(&rig, calls::on_unsubscribe_m5).await;
}
