//! The broker link secured: TLS on hookd's gRPC listener, client
//! certificates (mTLS) and bearer tokens, through the real bridge client and
//! raw gRPC clients, with a PKI made in the test. A broker that cannot prove
//! itself gets no verdict and no webhook sees its call.

use std::{path::Path, sync::Arc, time::Duration};

use hookd::config::{AuthConfig, ServerTlsConfig, WebhookConfig};
use hookd_bridge::{Outcome, TlsOptions, connect};
use hookd_proto::v1::hook_service_client::HookServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::bridge::{connected, options};
use crate::harness::{
    Hook, Scratch, WAIT, calls, eventually,
    pki::{Ca, Issued, Validity},
    process::HookdProcess,
    service::{self, Hookd},
    webhook::{Reply, Webhook},
    within,
};

/// A token of the tokens file, and the broker it names.
pub(super) const TOKEN: &str = "9f2c1d7e5a3b48c6a1e0f4d2b7c9e813";

/// A webhook for `auth_on_register` and hookd serving TLS with `server`'s
/// certificate, asking for client certificates of `clients` and tokens from
/// `tokens_file` when given.
pub(super) async fn secured(
    server: &Issued,
    clients: Option<&Ca>,
    tokens_file: Option<&Path>,
) -> (Webhook, Hookd) {
    let webhook = Webhook::start(Reply::ok()).await;
    let mut config = service::config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]);
    config.server.tls = Some(ServerTlsConfig {
        cert_file: server.cert_file.clone(),
        key_file: server.key_file.clone(),
        client_ca_file: clients.map(|ca| ca.cert_file.clone()),
    });
    config.server.auth = tokens_file.map(|path| AuthConfig {
        tokens_file: path.to_owned(),
    });
    config.server.reload_interval_ms = 20;
    let hookd = Hookd::start_with_registry(config).await;
    (webhook, hookd)
}

/// A gRPC channel to `hookd` over TLS trusting `ca`, presenting `identity`.
async fn tls_channel(hookd: &Hookd, ca: &Ca, identity: Option<&Issued>) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(
        std::fs::read(&ca.cert_file).expect("the CA file"),
    ));
    if let Some(identity) = identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(&identity.cert_file).expect("the certificate"),
            std::fs::read(&identity.key_file).expect("the key"),
        ));
    }
    let endpoint = Endpoint::from_shared(format!("https://{}", hookd.addr()))
        .expect("a valid URI")
        .tls_config(tls)
        .expect("a valid TLS configuration");
    within("a TLS connection", endpoint.connect())
        .await
        .map_err(|e| chain(&e))
}

/// One unary `auth_on_register` on `channel`, with `token` if given.
async fn unary(channel: Channel, token: Option<&str>) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(hookd_proto::v1::HookCall {
        id: 1,
        timeout_ms: Some(5_000),
        hook: Some(hookd_proto::v1::hook_call::Hook::AuthOnRegister(
            calls::auth_on_register("unary"),
        )),
    });
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().expect("ASCII"));
    }
    within("a unary call", HookServiceClient::new(channel).call(request))
        .await
        .map(drop)
}

/// The error `e` and its causes, one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text = format!("{text}: {cause}");
        next = cause.source();
    }
    text
}

/// A tokens file in `dir` naming `broker-1` with [`TOKEN`].
pub(super) fn tokens_file(dir: &Scratch) -> std::path::PathBuf {
    let path = dir.path().join("tokens");
    std::fs::write(&path, format!("# brokers\nbroker-1 {TOKEN}\n")).expect("write the tokens file");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_calls_hookd_over_tls_with_a_client_certificate_and_a_token() {
    let ca = Ca::new("link");
    let server = ca.server("hookd", &["127.0.0.1"], Validity::Current);
    let client = ca.client("broker", "broker-1");
    let dir = Scratch::new();
    let tokens = tokens_file(&dir);
    let (webhook, hookd) = secured(&server, Some(&ca), Some(&tokens)).await;

    let mut options = options([hookd.addr()]);
    options.tls = Some(TlsOptions {
        ca_file: Some(ca.cert_file.clone()),
        client_cert_file: Some(client.cert_file.clone()),
        client_key_file: Some(client.key_file.clone()),
        domain: None,
    });
    options.token = Some(TOKEN.to_owned());
    let bridge = connected(options).await;
    let verdict = within(
        "a verdict",
        bridge.auth_on_register(calls::auth_on_register("over-tls")),
    )
    .await;
    assert_eq!(verdict.outcome, Outcome::Ok(None), "{verdict:?}");
    assert_eq!(webhook.hits(), 1);
    assert_eq!(hookd.metrics().unauthenticated.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_client_certificate_hookd_refuses_the_broker_under_mtls() {
    let ca = Ca::new("mtls");
    let server = ca.server("hookd", &["127.0.0.1"], Validity::Current);
    let (webhook, hookd) = secured(&server, Some(&ca), None).await;

    // TLS 1.3 finishes the client's side of the handshake before hookd
    // checks its certificate: the refusal arrives with the first call.
    let refused = match tls_channel(&hookd, &ca, None).await {
        Err(e) => e,
        Ok(channel) => unary(channel, None).await.expect_err("refused").to_string(),
    };
    assert!(
        refused.contains("CertificateRequired")
            || refused.contains("certificate required")
            || refused.contains("transport"),
        "{refused}"
    );
    assert_eq!(webhook.hits(), 0);

    let client = ca.client("broker", "broker-1");
    let channel = tls_channel(&hookd, &ca, Some(&client))
        .await
        .expect("connects with a certificate");
    unary(channel, None).await.expect("a verdict");
    assert_eq!(webhook.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_trusting_another_ca_does_not_connect() {
    let dir = Arc::new(Scratch::new());
    let real = Ca::in_dir("real", dir.clone());
    let other = Ca::in_dir("other", dir);
    let server = real.server("hookd", &["127.0.0.1"], Validity::Current);
    let (_webhook, hookd) = secured(&server, None, None).await;

    let refused = tls_channel(&hookd, &other, None).await.expect_err("not trusted");
    assert!(refused.contains("UnknownIssuer"), "{refused}");
    // A plaintext client gets no gRPC either.
    let plain = Endpoint::from_shared(format!("http://{}", hookd.addr()))
        .expect("a URI")
        .connect_timeout(WAIT)
        .connect()
        .await;
    if let Ok(channel) = plain {
        assert!(unary(channel, None).await.is_err(), "plaintext is refused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_unknown_token_is_refused_unauthenticated_and_counted() {
    let ca = Ca::new("tokens");
    let server = ca.server("hookd", &["127.0.0.1"], Validity::Current);
    let dir = Scratch::new();
    let tokens = tokens_file(&dir);
    let (webhook, hookd) = secured(&server, None, Some(&tokens)).await;

    for token in [None, Some("not-the-token-of-anybody"), Some("")] {
        let channel = tls_channel(&hookd, &ca, None).await.expect("TLS connects");
        let status = unary(channel, token).await.expect_err("refused");
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{token:?}: {status:?}"
        );
    }
    assert_eq!(hookd.metrics().unauthenticated.get(), 3);
    assert_eq!(webhook.hits(), 0, "no call reached a webhook");

    let channel = tls_channel(&hookd, &ca, None).await.expect("TLS connects");
    unary(channel, Some(TOKEN))
        .await
        .expect("the right token gets a verdict");

    // The bridge with a wrong token never comes up.
    let mut options = options([hookd.addr()]);
    options.tls = Some(TlsOptions {
        ca_file: Some(ca.cert_file.clone()),
        ..TlsOptions::default()
    });
    options.token = Some("wrong-token-wrong-token".to_owned());
    let bridge = connect(options).expect("valid options");
    assert!(!bridge.wait_connected(Duration::from_millis(300)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_to_new_connections_without_a_restart() {
    let dir = Arc::new(Scratch::new());
    let old_ca = Ca::in_dir("old", dir.clone());
    let new_ca = Ca::in_dir("new", dir);
    let served = old_ca.server("hookd", &["127.0.0.1"], Validity::Current);
    let (_webhook, hookd) = secured(&served, None, None).await;
    tls_channel(&hookd, &old_ca, None)
        .await
        .expect("the old certificate");

    // The operator writes the new pair over the old files.
    let next = new_ca.server("hookd-next", &["127.0.0.1"], Validity::Current);
    std::fs::copy(&next.key_file, &served.key_file).expect("replace the key");
    std::fs::copy(&next.cert_file, &served.cert_file).expect("replace the certificate");

    eventually(
        || async { tls_channel(&hookd, &new_ca, None).await.is_ok() },
        WAIT,
    )
    .await
    .expect("hookd serves the new certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_can_be_turned_off() {
    let mut config = service::config([]);
    config.server.reflection = false;
    let hookd = Hookd::start(config).await;
    let mut client = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
        hookd.channel().await,
    );
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let status = within(
        "a reflection call",
        client.server_reflection_info(futures::stream::iter([request])),
    )
    .await
    .expect_err("no reflection");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_are_counted_and_logged_at_most_once_a_second_with_peer_and_reason() {
    let dir = Arc::new(Scratch::new());
    let ca = Ca::in_dir("handshakes", dir.clone());
    let other = Ca::in_dir("stranger", dir);
    let server = ca.server("hookd", &["127.0.0.1"], Validity::Current);
    let toml = format!(
        "[server.tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\n",
        server.cert_file, server.key_file, ca.cert_file
    );
    let hookd = HookdProcess::launch()
        .env("HOOKD_METRICS__LISTEN", "127.0.0.1:0")
        .config(&toml)
        .start()
        .await;
    hookd.wait_for_log("metrics listening").await;
    let addr = hookd.addr();
    let started = std::time::Instant::now();

    // A broker trusting another CA, one without a client certificate, and
    // plaintext gRPC: each fails its handshake, over and over.
    for _ in 0..3 {
        let endpoint = |ca: &Ca, identity: Option<&Issued>| {
            let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(
                std::fs::read(&ca.cert_file).expect("the CA file"),
            ));
            if let Some(identity) = identity {
                tls = tls.identity(Identity::from_pem(
                    std::fs::read(&identity.cert_file).expect("the certificate"),
                    std::fs::read(&identity.key_file).expect("the key"),
                ));
            }
            Endpoint::from_shared(format!("https://{addr}"))
                .expect("a valid URI")
                .tls_config(tls)
                .expect("a valid TLS configuration")
        };
        assert!(
            within("a TLS connection", endpoint(&other, None).connect())
                .await
                .is_err()
        );
        if let Ok(channel) = within("a TLS connection", endpoint(&ca, None).connect()).await {
            assert!(unary(channel, None).await.is_err(), "no certificate, no verdict");
        }
        let mut plain = tokio::net::TcpStream::connect(addr).await.expect("TCP connects");
        tokio::io::AsyncWriteExt::write_all(&mut plain, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .expect("the preface is written");
    }

    eventually(
        || async { hookd.metric("hookd_tls_handshake_failures_total").await >= 9 },
        WAIT,
    )
    .await
    .unwrap_or_else(|_| panic!("9 failed handshakes were not counted:\n{}", hookd.log()));
    let elapsed = started.elapsed();
    let log = hookd.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("TLS handshake with a broker failed"))
        .collect();
    assert!(!lines.is_empty(), "no warning:\n{log}");
    assert!(
        lines.len() as u64 <= elapsed.as_secs() + 1,
        "{} lines in {elapsed:?}:\n{log}",
        lines.len()
    );
    let first = lines[0];
    assert!(first.contains("WARN"), "{first}");
    assert!(first.contains("peer=Some(127.0.0.1:"), "{first}");
    assert!(first.contains("reason="), "{first}");
}
