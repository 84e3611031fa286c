//! The session hooks: `on_auth_m5` (a chain, enhanced authentication) and the
//! lifecycle notifications `on_client_wakeup`, `on_client_offline`,
//! `on_client_gone`, `on_session_expired`.

use hookd_proto::v1::AuthModifiers;
use serde_json::json;

use crate::harness::{
    Hook, Rig, assert_chain_answers, assert_notification, auth_modifiers, b64,
    calls::{self, USERNAME},
    webhook::Reply,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_auth_m5_posts_the_authentication_properties() {
    let rig = Rig::start(Hook::OnAuthM5, Reply::ok()).await;
    rig.broker.call(calls::on_auth_m5("scram-1")).await;
    let expected = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": "scram-1",
        "properties": {
            "p_authentication_method": "SCRAM-SHA-256",
            "p_authentication_data": b64("client-first"),
        },
    });
    rig.webhook
        .last_request()
        .assert_hook_call("on_auth_m5", &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_auth_m5_returns_method_decoded_data_and_reason_code() {
    let modifiers = json!({
        "properties": {"p_authentication_method": "m", "p_authentication_data": b64("server-first")},
        "reason_code": 24,
    });
    let rig = Rig::start(Hook::OnAuthM5, Reply::ok_with(modifiers)).await;
    let verdict = rig.broker.call(calls::on_auth_m5("scram-1")).await;
    let expected = AuthModifiers {
        authentication_method: Some("m".into()),
        authentication_data: Some(b"server-first".to_vec()),
        reason_code: Some(24),
    };
    assert_eq!(auth_modifiers(&verdict), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_auth_m5_maps_ok_next_and_error_answers() {
    let rig = Rig::start(Hook::OnAuthM5, Reply::ok()).await;
    assert_chain_answers(&rig, calls::on_auth_m5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_client_wakeup_notifies_mountpoint_and_client_id() {
    let expected = json!({"mountpoint": "tenant-a", "client_id": "c-wake"});
    assert_notification(Hook::OnClientWakeup, calls::on_client_wakeup("c-wake"), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_client_offline_notifies_mountpoint_and_client_id() {
    let expected = json!({"mountpoint": "tenant-a", "client_id": "c-off"});
    assert_notification(Hook::OnClientOffline, calls::on_client_offline("c-off"), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_client_gone_notifies_mountpoint_and_client_id() {
    let expected = json!({"mountpoint": "tenant-a", "client_id": "c-gone"});
    assert_notification(Hook::OnClientGone, calls::on_client_gone("c-gone"), expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_session_expired_notifies_mountpoint_and_client_id() {
    let expected = json!({"mountpoint": "tenant-a", "client_id": "c-exp"});
    assert_notification(
        Hook::OnSessionExpired,
        calls::on_session_expired("c-exp"),
        expected,
    )
    .await;
}
