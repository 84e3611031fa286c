//! The message hooks: `auth_on_publish*`, `on_deliver*` (chains) and
//! `on_publish*`, `on_offline_message` (notifications): payload encodings,
//! properties, and typed publish / deliver modifiers.

use hookd_proto::v1::{DeliverModifiers, PayloadFormat, Properties, PublishModifiers};
use serde_json::json;

use crate::harness::{
    Hook, Rig, assert_chain_answers, assert_notification, b64,
    calls::{self, PAYLOAD, USERNAME},
    deliver_modifiers, no_empty_properties, publish_modifiers,
    webhook::Reply,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_publish_posts_the_payload_base64_encoded() {
    let rig = Rig::start(Hook::AuthOnPublish, Reply::ok()).await;
    rig.broker.call(calls::auth_on_publish("pub-1")).await;
    let expected = calls::auth_on_publish_json("pub-1", Some(json!(b64(PAYLOAD))));
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_publish", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_publish_posts_the_raw_payload_when_base64_payload_is_off() {
    let rig = Rig::start_with(Hook::AuthOnPublish, Reply::ok(), |w| w.base64_payload = false).await;
    rig.broker.call(calls::auth_on_publish("pub-1")).await;
    let expected = calls::auth_on_publish_json("pub-1", Some(json!("hello world")));
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_publish", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_publish_leaves_the_payload_out_when_no_payload_is_set() {
    let rig = Rig::start_with(Hook::AuthOnPublish, Reply::ok(), |w| w.no_payload = true).await;
    rig.broker.call(calls::auth_on_publish("pub-1")).await;
    let expected = calls::auth_on_publish_json("pub-1", None);
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_publish", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_publish_maps_ok_next_and_error_answers() {
    let rig = Rig::start(Hook::AuthOnPublish, Reply::ok()).await;
    assert_chain_answers(&rig, calls::auth_on_publish).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_publish_returns_typed_modifiers_with_the_payload_decoded() {
    let modifiers = json!({"topic": "x/y", "payload": b64("rewritten"), "qos": 1, "retain": true});
    let rig = Rig::start(Hook::AuthOnPublish, Reply::ok_with(modifiers)).await;
    let verdict = rig.broker.call(calls::auth_on_publish("pub-1")).await;
    let mut got = publish_modifiers(&verdict);
    got.properties = no_empty_properties(got.properties);
    let expected = PublishModifiers {
        topic: Some("x/y".into()),
        payload: Some(b"rewritten".to_vec()),
        qos: Some(1),
        retain: Some(true),
        ..PublishModifiers::default()
    };
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_publish_takes_the_payload_modifier_raw_when_base64_payload_is_off() {
    let modifiers = json!({"payload": "rewritten", "throttle": 250, "mountpoint": "tenant-b"});
    let rig = Rig::start_with(Hook::AuthOnPublish, Reply::ok_with(modifiers), |w| {
        w.base64_payload = false
    })
    .await;
    let verdict = rig.broker.call(calls::auth_on_publish("pub-1")).await;
    let got = publish_modifiers(&verdict);
    assert_eq!(got.payload.as_deref(), Some(&b"rewritten"[..]));
    assert_eq!(got.throttle, Some(250));
    assert_eq!(got.mountpoint.as_deref(), Some("tenant-b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_publish_m5_posts_every_property_with_vmq_encodings() {
    let rig = Rig::start(Hook::AuthOnPublishM5, Reply::ok()).await;
    rig.broker.call(calls::auth_on_publish_m5("pub-5")).await;
    let expected = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": "pub-5",
        "qos": 2,
        "topic": "a/b",
        "payload": b64(PAYLOAD),
        "retain": true,
        "properties": calls::every_property_json(),
    });
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_publish_m5", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_publish_m5_leaves_the_payload_out_when_no_payload_is_set() {
    let rig = Rig::start_with(Hook::AuthOnPublishM5, Reply::ok(), |w| w.no_payload = true).await;
    rig.broker.call(calls::auth_on_publish_m5("pub-5")).await;
    let body = rig.webhook.last_request().body;
    assert!(
        body.get("payload").is_none(),
        "payload key must be absent: {body}"
    );
    assert_eq!(body["topic"], json!("a/b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_publish_m5_returns_publish_modifiers_with_properties() {
    let modifiers = json!({
        "topic": "x/y",
        "properties": {
            "p_user_property": [calls::user_property_json("trace", "t-1")],
            "p_message_expiry_interval": 30,
            "p_content_type": "application/cbor",
            "p_payload_format_indicator": "utf8",
            "p_will_delay_interval": 5,
        },
    });
    let rig = Rig::start(Hook::AuthOnPublishM5, Reply::ok_with(modifiers)).await;
    let verdict = rig.broker.call(calls::auth_on_publish_m5("pub-5")).await;
    let expected = PublishModifiers {
        topic: Some("x/y".into()),
        properties: Some(Properties {
            user_property: vec![calls::user_property("trace", "t-1")],
            message_expiry_interval: Some(30),
            content_type: Some("application/cbor".into()),
            payload_format_indicator: PayloadFormat::Utf8.into(),
            will_delay_interval: Some(5),
            ..Properties::default()
        }),
        ..PublishModifiers::default()
    };
    assert_eq!(publish_modifiers(&verdict), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_publish_m5_maps_ok_next_and_error_answers() {
    let rig = Rig::start(Hook::AuthOnPublishM5, Reply::ok()).await;
    assert_chain_answers(&rig, calls::auth_on_publish_m5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_publish_notifies_with_the_base64_payload() {
    let expected = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": "pub-1",
        "qos": 0,
        "topic": "a/b",
        "payload": b64(PAYLOAD),
        "retain": true,
    });
    assert_notification(Hook::OnPublish, calls::on_publish("pub-1"), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_publish_still_sends_the_payload_when_no_payload_is_set() {
    let rig = Rig::start_with(Hook::OnPublish, Reply::ok(), |w| w.no_payload = true).await;
    crate::harness::assert_ack(&rig.broker.call(calls::on_publish("pub-1")).await);
    rig.webhook.wait_for_hits(1).await;
    assert_eq!(rig.webhook.last_request().body["payload"], json!(b64(PAYLOAD)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_publish_m5_notifies_with_properties() {
    let expected = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": "pub-5",
        "qos": 0,
        "topic": "a/b",
        "payload": b64(PAYLOAD),
        "retain": true,
        "properties": {"p_payload_format_indicator": "undefined", "p_message_expiry_interval": 10},
    });
    assert_notification(Hook::OnPublishM5, calls::on_publish_m5("pub-5"), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_offline_message_notifies_without_a_username() {
    let expected = json!({
        "mountpoint": "",
        "client_id": "sleeper",
        "qos": 1,
        "topic": "a/b",
        "payload": b64(PAYLOAD),
        "retain": false,
    });
    assert_notification(
        Hook::OnOfflineMessage,
        calls::on_offline_message("sleeper"),
        expected,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_deliver_posts_the_message_with_empty_properties() {
    let rig = Rig::start(Hook::OnDeliver, Reply::ok()).await;
    rig.broker.call(calls::on_deliver("sub-1")).await;
    let expected = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": "sub-1",
        "qos": 1,
        "topic": "a/b",
        "payload": b64(PAYLOAD),
        "retain": false,
        "properties": {},
    });
    rig.webhook
        .last_request()
        .assert_hook_call("on_deliver", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_deliver_returns_topic_and_decoded_payload_modifiers() {
    let modifiers = json!({"topic": "redacted/a/b", "payload": b64("***")});
    let rig = Rig::start(Hook::OnDeliver, Reply::ok_with(modifiers)).await;
    let verdict = rig.broker.call(calls::on_deliver("sub-1")).await;
    let mut got = deliver_modifiers(&verdict);
    got.properties = no_empty_properties(got.properties);
    let expected = DeliverModifiers {
        topic: Some("redacted/a/b".into()),
        payload: Some(b"***".to_vec()),
        properties: None,
    };
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_deliver_maps_ok_next_and_error_answers() {
    let rig = Rig::start(Hook::OnDeliver, Reply::ok()).await;
    assert_chain_answers(&rig, calls::on_deliver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_deliver_m5_posts_properties_with_the_response_topic_flattened() {
    let rig = Rig::start(Hook::OnDeliverM5, Reply::ok()).await;
    rig.broker.call(calls::on_deliver_m5("sub-5")).await;
    let expected = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": "sub-5",
        "qos": 1,
        "topic": "a/b",
        "payload": b64(PAYLOAD),
        "retain": false,
        "properties": {"p_content_type": "application/json", "p_response_topic": "replytome"},
    });
    rig.webhook
        .last_request()
        .assert_hook_call("on_deliver_m5", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_deliver_m5_returns_deliver_modifiers_with_properties() {
    let modifiers = json!({
        "payload": b64("{}"),
        "properties": {"p_content_type": "text/plain", "p_user_property": [calls::user_property_json("a", "b")]},
    });
    let rig = Rig::start(Hook::OnDeliverM5, Reply::ok_with(modifiers)).await;
    let verdict = rig.broker.call(calls::on_deliver_m5("sub-5")).await;
    let expected = DeliverModifiers {
        topic: None,
        payload: Some(b"{}".to_vec()),
        properties: Some(Properties {
            content_type: Some("text/plain".into()),
            user_property: vec![calls::user_property("a", "b")],
            ..Properties::default()
        }),
    };
    assert_eq!(deliver_modifiers(&verdict), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_deliver_m5_maps_ok_next_and_error_answers() {
    let rig = Rig::start(Hook::OnDeliverM5, Reply::ok()).await;
    assert_chain_answers(&rig, calls::on_deliver_m5).await;
}
