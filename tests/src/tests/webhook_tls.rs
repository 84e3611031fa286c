//! HTTPS webhooks: VerneMQ's five TLS cases (vmq_webhooks' test suite), each
//! against a real HTTPS webhook on loopback with a PKI made in the test.
//! A handshake that fails is an `unavailable` verdict whose reason says what
//! failed, and the webhook never sees a request.

use std::sync::Arc;

use hookd::config::WebhookConfig;
use hookd_proto::v1::ErrorKind;

use crate::harness::{
    Hook, Scratch, assert_error, assert_ok, calls,
    pki::{Ca, Validity},
    service::{self, Hookd},
    webhook::Webhook,
};

/// The webhooks' certificates name the address hookd calls them on.
const HOST: &str = "127.0.0.1";

/// Starts hookd with `registration` for `auth_on_register` and makes one call.
async fn call_through(registration: WebhookConfig) -> hookd_proto::v1::Verdict {
    let hookd = Hookd::start(service::config([registration])).await;
    let broker = hookd.broker().await;
    broker.call(calls::auth_on_register("tls-client")).await
}

fn registration(webhook: &Webhook, ca: &Ca) -> WebhookConfig {
    let mut registration = WebhookConfig::new(Hook::AuthOnRegister, webhook.url());
    registration.ca_file = Some(ca.cert_file.clone());
    registration
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_whose_certificate_the_configured_ca_issued_is_called() {
    let ca = Ca::new("right");
    let server = ca.server("webhook", &[HOST], Validity::Current);
    let webhook = Webhook::builder().tls(server.server_config(None)).start().await;
    assert!(webhook.url().starts_with("https://"), "{}", webhook.url());

    let verdict = call_through(registration(&webhook, &ca)).await;
    assert_ok(&verdict);
    webhook
        .last_request()
        .assert_hook_call("auth_on_register", &calls::auth_on_register_json("tls-client"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_unrelated_ca_fails_before_any_request_is_sent() {
    let dir = Arc::new(Scratch::new());
    let theirs = Ca::in_dir("theirs", dir.clone());
    let ours = Ca::in_dir("ours", dir);
    let server = theirs.server("webhook", &[HOST], Validity::Current);
    let webhook = Webhook::builder().tls(server.server_config(None)).start().await;

    let verdict = call_through(registration(&webhook, &ours)).await;
    let reason = assert_error(&verdict, ErrorKind::Unavailable);
    assert!(
        reason.contains("TLS") && reason.contains("UnknownIssuer"),
        "{reason}"
    );
    assert_eq!(webhook.hits(), 0, "no request was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_requires_a_client_certificate_gets_the_configured_one() {
    let ca = Ca::new("mtls");
    let server = ca.server("webhook", &[HOST], Validity::Current);
    let client = ca.client("hookd", "hookd");
    let webhook = Webhook::builder()
        .tls(server.server_config(Some(&ca)))
        .start()
        .await;

    let mut with_cert = registration(&webhook, &ca);
    with_cert.client_cert_file = Some(client.cert_file.clone());
    with_cert.client_key_file = Some(client.key_file.clone());
    assert_ok(&call_through(with_cert).await);
    assert_eq!(webhook.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_requires_a_client_certificate_refuses_hookd_without_one() {
    let ca = Ca::new("mtls-none");
    let server = ca.server("webhook", &[HOST], Validity::Current);
    let webhook = Webhook::builder()
        .tls(server.server_config_tls12(Some(&ca)))
        .start()
        .await;

    let verdict = call_through(registration(&webhook, &ca)).await;
    let reason = assert_error(&verdict, ErrorKind::Unavailable);
    assert!(reason.contains("CertificateRequired"), "{reason}");
    assert_eq!(webhook.hits(), 0, "the webhook never saw a request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_webhook_certificate_fails() {
    let ca = Ca::new("expired");
    let server = ca.server("webhook", &[HOST], Validity::Expired);
    let webhook = Webhook::builder().tls(server.server_config(None)).start().await;

    let verdict = call_through(registration(&webhook, &ca)).await;
    let reason = assert_error(&verdict, ErrorKind::Unavailable);
    assert!(
        reason.contains("TLS") && reason.contains("certificate expired"),
        "{reason}"
    );
    assert_eq!(webhook.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_name_fails() {
    let ca = Ca::new("other-name");
    let server = ca.server("webhook", &["hooks.other.example"], Validity::Current);
    let webhook = Webhook::builder().tls(server.server_config(None)).start().await;

    let verdict = call_through(registration(&webhook, &ca)).await;
    let reason = assert_error(&verdict, ErrorKind::Unavailable);
    assert!(
        reason.contains("TLS") && reason.contains("not valid for name"),
        "{reason}"
    );
    assert_eq!(webhook.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_peer_false_calls_a_webhook_whatever_its_certificate() {
    let ca = Ca::new("unverified");
    let server = ca.server("webhook", &["hooks.other.example"], Validity::Expired);
    let webhook = Webhook::builder().tls(server.server_config(None)).start().await;

    let mut unverified = WebhookConfig::new(Hook::AuthOnRegister, webhook.url());
    unverified.verify_peer = false;
    assert_ok(&call_through(unverified).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_ca_file_stops_hookd_at_start_naming_the_key_and_file() {
    let mut registration = WebhookConfig::new(Hook::AuthOnRegister, "https://127.0.0.1:1/hook");
    registration.ca_file = Some("/nonexistent/ca.pem".into());
    let mut config = service::config([registration]);
    let _scratch = service::isolate(&mut config);
    let err = hookd::Hookd::new(config).err().expect("refused at start");
    let text = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(
        text.contains("ca_file") && text.contains("/nonexistent/ca.pem"),
        "{text}"
    );
}
