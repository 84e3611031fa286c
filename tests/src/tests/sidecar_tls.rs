//! The real `hookd-sidecar` binary on a secured broker link: an operator
//! points it at a hookd that requires TLS, a client certificate and a bearer
//! token, using only its flags and `HOOKD_SIDECAR_…` variables. With the
//! right CA, certificate and token VerneMQ's calls reach the webhook; with a
//! wrong token they are answered by the failure policy and no webhook sees
//! them; a TLS file that cannot be read stops the sidecar at start. The
//! token is never in its log.

use crate::harness::{
    Scratch,
    pki::{Ca, Validity},
    sidecar::SidecarProcess,
};

use super::broker_tls::{TOKEN, secured, tokens_file};

/// What vmq_webhooks POSTs for a CONNECT.
const AUTH_ON_REGISTER: &str = r#"{"peer_addr":"127.0.0.1","peer_port":52341,"mountpoint":"","client_id":"sensor-17","username":"joe","password":"secret","clean_session":true}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_reaches_a_hookd_that_requires_mtls_and_a_token() {
    let ca = Ca::new("sidecar-link");
    let server = ca.server("hookd", &["hookd.internal"], Validity::Current);
    let client = ca.client("vernemq", "vernemq-1");
    let dir = Scratch::new();
    let tokens = tokens_file(&dir);
    let token_file = dir.path().join("sidecar-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write the token file");
    let (webhook, hookd) = secured(&server, Some(&ca), Some(&tokens)).await;

    // The certificate names hookd.internal, not the address dialled: the
    // server name says which name to check.
    let hookd_addr = hookd.addr().to_string();
    let sidecar = SidecarProcess::start(
        &["--hookd", &hookd_addr, "--server-name", "hookd.internal"],
        &[
            ("HOOKD_SIDECAR_CA_FILE", &ca.cert_file.display().to_string()),
            (
                "HOOKD_SIDECAR_CLIENT_CERT_FILE",
                &client.cert_file.display().to_string(),
            ),
            (
                "HOOKD_SIDECAR_CLIENT_KEY_FILE",
                &client.key_file.display().to_string(),
            ),
            ("HOOKD_SIDECAR_TOKEN_FILE", &token_file.display().to_string()),
        ],
    )
    .await;

    let (status, answer) = sidecar.post("auth_on_register", AUTH_ON_REGISTER).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, serde_json::json!({"result": "ok"}), "{}", sidecar.log());
    assert_eq!(webhook.hits(), 1, "the call reached the webhook behind hookd");
    assert_eq!(hookd.metrics().unauthenticated.get(), 0);
    assert!(!sidecar.log().contains(TOKEN), "the token is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_wrong_token_the_sidecar_answers_by_its_failure_policy() {
    let ca = Ca::new("sidecar-token");
    let server = ca.server("hookd", &["127.0.0.1"], Validity::Current);
    let dir = Scratch::new();
    let tokens = tokens_file(&dir);
    let (webhook, hookd) = secured(&server, None, Some(&tokens)).await;

    let hookd_addr = hookd.addr().to_string();
    let wrong = "not-the-token-of-this-sidecar";
    let sidecar = SidecarProcess::start(
        &[
            "--hookd",
            &hookd_addr,
            "--ca-file",
            &ca.cert_file.display().to_string(),
            "--timeout-ms",
            "300",
        ],
        &[("HOOKD_SIDECAR_TOKEN", wrong)],
    )
    .await;

    let (status, answer) = sidecar.post("auth_on_register", AUTH_ON_REGISTER).await;
    assert_eq!(status, 200, "{answer}");
    let error = answer["result"]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("unavailable"), "{answer}");
    assert_eq!(webhook.hits(), 0, "no webhook saw an unauthenticated call");
    assert!(hookd.metrics().unauthenticated.get() > 0);
    assert!(!sidecar.log().contains(wrong), "the token is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_file_that_cannot_be_read_stops_the_sidecar_at_start() {
    let dir = Scratch::new();
    let missing = dir.path().join("no-such-ca.pem");
    let (status, log) = SidecarProcess::run_to_exit(
        &[
            "--hookd",
            "127.0.0.1:1",
            "--ca-file",
            &missing.display().to_string(),
        ],
        &[],
    )
    .await;
    assert!(!status.success());
    assert!(log.contains("no-such-ca.pem"), "{log}");

    // A client certificate without its key is refused before anything runs.
    let (status, log) = SidecarProcess::run_to_exit(
        &["--hookd", "127.0.0.1:1", "--client-cert-file", "/dev/null"],
        &[],
    )
    .await;
    assert!(!status.success());
    assert!(log.contains("--client-key-file"), "{log}");
}
