//! Signed webhook requests (Standard Webhooks): a receiver that knows the
//! webhook's secret can tell hookd's requests from forgeries. Every signature
//! here is checked by a second implementation written from the specification
//! in Python's standard library (hmac, hashlib, base64), in its own process,
//! so a mistake in hookd's signing cannot hide behind the same mistake in the
//! check.

use std::process::Stdio;

use hookd::config::WebhookConfig;
use hookd::webhook::sign::Secrets;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::harness::{
    Hook, Rig, assert_ack, assert_ok, b64, calls,
    service::{self, Hookd},
    webhook::{Recorded, Reply, Webhook},
    within,
};

/// The receiver's check, from standardwebhooks.com: the signed content is
/// `{id}.{timestamp}.{body}`; each space-separated `v1,<base64>` is compared
/// with HMAC-SHA256 under each key (the base64 after `whsec_`), in constant
/// time. Prints the indexes of the secrets that verified.
const VERIFIER: &str = r#"
import base64, hashlib, hmac, json, sys
request = json.load(sys.stdin)
body = base64.b64decode(request["body"])
signed = request["id"].encode() + b"." + request["timestamp"].encode() + b"." + body
given = [s.split(",", 1)[1] for s in request["signature"].split(" ") if s.startswith("v1,")]
matched = []
for index, secret in enumerate(request["secrets"]):
    key = base64.b64decode(secret[len("whsec_"):])
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    if any(hmac.compare_digest(expected, g) for g in given):
        matched.append(index)
print(json.dumps(matched))
"#;

const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW: &str = "whsec_dGhlIG5ldyBrZXkgb2YgdGhlIHJvdGF0aW9uISE=";

/// Which of `secrets` verify `request`'s signature, by the Python verifier.
async fn verified_by(request: &Recorded, secrets: &[&str]) -> Vec<usize> {
    let input = json!({
        "secrets": secrets,
        "id": request.header("webhook-id").expect("a webhook-id header"),
        "timestamp": request.header("webhook-timestamp").expect("a webhook-timestamp header"),
        "signature": request.header("webhook-signature").expect("a webhook-signature header"),
        "body": b64(&request.raw),
    });
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", VERIFIER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs (CI installs it)");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(input.to_string().as_bytes())
        .await
        .expect("write the request");
    drop(stdin);
    let output = within("the Python verifier", child.wait_with_output())
        .await
        .expect("the verifier ran");
    assert!(output.status.success(), "the verifier failed");
    serde_json::from_slice(&output.stdout).expect("the verifier prints a JSON list")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_notification_is_signed_with_its_stable_id() {
    let rig = Rig::start_with(Hook::OnPublish, Reply::json(json!({})), |webhook| {
        webhook.secret = Secrets::new([OLD]);
    })
    .await;
    assert_ack(&rig.broker.call(calls::on_publish("signed")).await);
    rig.webhook.wait_for_hits(1).await;
    let request = rig.webhook.last_request();
    assert_eq!(verified_by(&request, &[OLD]).await, [0]);
    assert!(
        request.header("webhook-id").is_some_and(|id| !id.is_empty()),
        "the event's id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_either_secret_verifies_and_an_unknown_one_does_not() {
    let rig = Rig::start_with(Hook::OnPublish, Reply::json(json!({})), |webhook| {
        webhook.secret = Secrets::new([OLD, NEW]);
    })
    .await;
    assert_ack(&rig.broker.call(calls::on_publish("rotating")).await);
    rig.webhook.wait_for_hits(1).await;
    let request = rig.webhook.last_request();
    let signature = request.header("webhook-signature").unwrap_or_default();
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    let stranger = "whsec_c29tZWJvZHkgZWxzZSdzIHNlY3JldCBrZXkh";
    assert_eq!(verified_by(&request, &[OLD, NEW, stranger]).await, [0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_call_is_signed_with_a_fresh_id_each_time() {
    let rig = Rig::start_with(Hook::AuthOnRegister, Reply::ok(), |webhook| {
        webhook.secret = Secrets::new([NEW]);
    })
    .await;
    assert_ok(&rig.broker.call(calls::auth_on_register("first")).await);
    assert_ok(&rig.broker.call(calls::auth_on_register("second")).await);
    let requests = rig.webhook.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(verified_by(request, &[NEW]).await, [0]);
    }
    assert_ne!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id"),
        "each call has its own id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_body_does_not_verify() {
    let rig = Rig::start_with(Hook::AuthOnRegister, Reply::ok(), |webhook| {
        webhook.secret = Secrets::new([OLD]);
    })
    .await;
    assert_ok(&rig.broker.call(calls::auth_on_register("tampered")).await);
    let mut request = rig.webhook.last_request();
    request.raw = bytes::Bytes::from_static(br#"{"client_id":"mallory"}"#);
    assert_eq!(verified_by(&request, &[OLD]).await, Vec::<usize>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_without_a_secret_gets_no_signature() {
    let webhook = Webhook::start(Reply::ok()).await;
    let hookd = Hookd::start(service::config([WebhookConfig::new(
        Hook::AuthOnRegister,
        webhook.url(),
    )]))
    .await;
    assert_ok(&hookd.broker().await.call(calls::auth_on_register("plain")).await);
    assert_eq!(webhook.last_request().header("webhook-signature"), None);
}

#[test]
fn a_secret_without_its_prefix_stops_hookd_at_start_naming_the_key_not_the_secret() {
    let err = hookd::Config::from_toml(
        "[[webhooks]]\nhook = \"on_publish\"\nendpoint = \"http://h/\"\nsecret = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", \"hunter2hunter2hunter2hunter2\"]\n",
    )
    .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("webhooks[0].secret") && text.contains("whsec_"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}
