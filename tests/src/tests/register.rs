//! The connect hooks: `auth_on_register`, `auth_on_register_m5` (chains) and
//! `on_register`, `on_register_m5` (notifications): the JSON each posts and the
//! verdicts their answers give.

use hookd_proto::v1::{AuthOnRegister, AuthOnRegisterM5, Listener, RegisterModifiers};
use serde_json::json;

use crate::harness::{
    Hook, Rig, assert_chain_answers, assert_notification, b64,
    calls::{self, USERNAME},
    register_modifiers,
    webhook::Reply,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_register_posts_peer_credentials_and_clean_session() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok()).await;
    rig.broker.call(calls::auth_on_register("client-1")).await;
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_register", &calls::auth_on_register_json("client-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_register_sends_null_for_absent_credentials_and_empty_strings_for_empty_ones() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok()).await;
    let absent = AuthOnRegister {
        username: None,
        password: None,
        ..calls::auth_on_register("anonymous")
    };
    rig.broker.call(absent).await;
    let mut expected = calls::auth_on_register_json("anonymous");
    expected["username"] = json!(null);
    expected["password"] = json!(null);
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_register", &expected);

    let empty = AuthOnRegister {
        username: Some(String::new()),
        password: Some(Vec::new()),
        ..calls::auth_on_register("empty")
    };
    rig.broker.call(empty).await;
    let mut expected = calls::auth_on_register_json("empty");
    expected["username"] = json!("");
    expected["password"] = json!("");
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_register", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_register_sends_listener_metadata_with_a_base64_client_cert() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok()).await;
    let with_cert = AuthOnRegister {
        listener: calls::listener(),
        ..calls::auth_on_register("tls-client")
    };
    rig.broker.call(with_cert).await;
    let mut expected = calls::auth_on_register_json("tls-client");
    let extra = json!({
        "listener_addr": "192.0.2.1",
        "listener_port": 8883,
        "listener_type": "mqtts",
        "client_cert": b64("-----CERT-----"),
    });
    merge(&mut expected, extra);
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_register", &expected);

    let unknown_listener = AuthOnRegister {
        listener: Some(Listener::default()),
        ..calls::auth_on_register("socket-client")
    };
    rig.broker.call(unknown_listener).await;
    let mut expected = calls::auth_on_register_json("socket-client");
    let nulls = json!({"listener_addr": null, "listener_port": null, "listener_type": null});
    merge(&mut expected, nulls);
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_register", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_register_sends_the_client_cert_raw_when_base64_payload_is_off() {
    let rig = Rig::start_with(Hook::AuthOnRegister, Reply::ok(), |w| w.base64_payload = false).await;
    let with_cert = AuthOnRegister {
        listener: calls::listener(),
        ..calls::auth_on_register("tls-client")
    };
    rig.broker.call(with_cert).await;
    let body = rig.webhook.last_request().body;
    assert_eq!(body["client_cert"], json!("-----CERT-----"));
    assert_eq!(body["password"], json!("s3cret"), "the password is never base64");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_register_maps_ok_next_and_error_answers() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok()).await;
    assert_chain_answers(&rig, calls::auth_on_register).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_register_returns_typed_register_modifiers() {
    let modifiers = json!({
        "max_message_size": 1024,
        "mountpoint": "m",
        "client_id": "c2",
        "username": "u2",
        "allow_publish": false,
        "retry_interval": 2000,
        "upgrade_qos": true,
    });
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok_with(modifiers)).await;
    let verdict = rig.broker.call(calls::auth_on_register("client-1")).await;
    let expected = RegisterModifiers {
        max_message_size: Some(1024),
        mountpoint: Some("m".into()),
        client_id: Some("c2".into()),
        username: Some("u2".into()),
        allow_publish: Some(false),
        retry_interval: Some(2000),
        upgrade_qos: Some(true),
        ..RegisterModifiers::default()
    };
    assert_eq!(register_modifiers(&verdict), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_register_m5_posts_clean_start_properties_and_listener() {
    let rig = Rig::start(Hook::AuthOnRegisterM5, Reply::ok()).await;
    let call = AuthOnRegisterM5 {
        listener: calls::listener(),
        ..calls::auth_on_register_m5("client-5")
    };
    rig.broker.call(call).await;
    let expected = json!({
        "peer_addr": "10.0.0.7",
        "peer_port": 51234,
        "mountpoint": "tenant-a",
        "client_id": "client-5",
        "username": USERNAME,
        "password": "s3cret",
        "clean_start": false,
        "properties": calls::connect_properties_json(),
        "listener_addr": "192.0.2.1",
        "listener_port": 8883,
        "listener_type": "mqtts",
        "client_cert": b64("-----CERT-----"),
    });
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_register_m5", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_register_m5_returns_session_expiry_and_user_properties() {
    let modifiers = json!({
        "max_inflight_messages": 5,
        "properties": {
            "p_session_expiry_interval": 60,
            "p_user_property": [calls::user_property_json("tier", "gold")],
        },
    });
    let rig = Rig::start(Hook::AuthOnRegisterM5, Reply::ok_with(modifiers)).await;
    let verdict = rig.broker.call(calls::auth_on_register_m5("client-5")).await;
    let expected = RegisterModifiers {
        max_inflight_messages: Some(5),
        session_expiry_interval: Some(60),
        user_property: vec![calls::user_property("tier", "gold")],
        ..RegisterModifiers::default()
    };
    assert_eq!(register_modifiers(&verdict), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_register_m5_maps_ok_next_and_error_answers() {
    let rig = Rig::start(Hook::AuthOnRegisterM5, Reply::ok()).await;
    assert_chain_answers(&rig, calls::auth_on_register_m5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_register_notifies_peer_and_username_and_acks_at_once() {
    let expected = json!({
        "peer_addr": "10.0.0.7",
        "peer_port": 51234,
        "mountpoint": "",
        "client_id": "client-1",
        "username": USERNAME,
    });
    assert_notification(Hook::OnRegister, calls::on_register("client-1"), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_register_m5_notifies_with_connect_properties() {
    let expected = json!({
        "peer_addr": "10.0.0.7",
        "peer_port": 51234,
        "mountpoint": "",
        "client_id": "client-5",
        "username": USERNAME,
        "properties": calls::connect_properties_json(),
    });
    assert_notification(Hook::OnRegisterM5, calls::on_register_m5("client-5"), expected).await;
}

/// Adds every key of the object `extra` to the object `into`.
fn merge(into: &mut serde_json::Value, extra: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}
