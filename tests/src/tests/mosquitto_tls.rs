//! Mosquitto's plugin on a secured broker link: hookd requires TLS, a client
//! certificate and a bearer token, and the plugin is given them through its
//! `plugin_opt_hookd_*` lines. A real MQTT client then connects through a
//! real Mosquitto whose decision came over that link; with a wrong token the
//! deny policy refuses it and no webhook is asked. The token never appears in
//! Mosquitto's log.

use hookd::config::{AuthConfig, ServerTlsConfig, WebhookConfig};

use crate::harness::{
    Hook, Scratch, WAIT, eventually,
    mosquitto::{HookdAt, Mosquitto},
    pki::{Ca, Issued, Validity},
    service::config,
    webhook::{Recorded, Reply, Webhook},
};

use super::broker_tls::{TOKEN, tokens_file};

/// joe/secret may connect; anyone else may not.
fn decide(request: &Recorded) -> Reply {
    match request.hook() {
        Some("auth_on_register")
            if request.body["username"] == "joe" && request.body["password"] == "secret" =>
        {
            Reply::ok()
        }
        Some("auth_on_register") => Reply::error("not_allowed"),
        _ => Reply::ok(),
    }
}

/// A webhook deciding as above and hookd on TLS with `server`'s certificate,
/// requiring client certificates from `clients` and a token from `tokens`.
async fn secured_hookd(server: &Issued, clients: &Ca, tokens: &Scratch) -> (Webhook, HookdAt) {
    let webhook = Webhook::builder().respond_with(decide).start().await;
    let mut config = config(
        [Hook::AuthOnRegister, Hook::AuthOnPublish].map(|hook| WebhookConfig::new(hook, webhook.url())),
    );
    config.server.tls = Some(ServerTlsConfig {
        cert_file: server.cert_file.clone(),
        key_file: server.key_file.clone(),
        client_ca_file: Some(clients.cert_file.clone()),
    });
    config.server.auth = Some(AuthConfig {
        tokens_file: tokens_file(tokens),
    });
    (webhook, HookdAt::start(config).await)
}

#[tokio::test]
async fn the_plugin_reaches_hookd_over_mtls_with_a_token_and_a_client_connects() {
    let ca = Ca::new("mosquitto-link");
    let server = ca.server("hookd", &["hookd.internal"], Validity::Current);
    let broker_cert = ca.client("mosquitto", "mosquitto-1");
    let dir = Scratch::new();
    let token_file = dir.path().join("mosquitto-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write the token file");
    let (webhook, hookd) = secured_hookd(&server, &ca, &dir).await;

    let (ca_file, cert_file, key_file, token_path) = (
        ca.cert_file.display().to_string(),
        broker_cert.cert_file.display().to_string(),
        broker_cert.key_file.display().to_string(),
        token_file.display().to_string(),
    );
    let mosquitto = Mosquitto::start(
        hookd.addr(),
        &[
            ("timeout_ms", "1000"),
            ("hookd_ca_file", &ca_file),
            ("hookd_client_cert_file", &cert_file),
            ("hookd_client_key_file", &key_file),
            ("hookd_server_name", "hookd.internal"),
            ("hookd_token_file", &token_path),
        ],
    )
    .await;

    // The plugin connects in the background: the first CONNECTs may meet
    // the deny policy, so wait (bounded) for the link to decide one.
    let allowed = eventually(
        || async {
            mosquitto
                .publish("c1", "joe", "secret", "a/b", "hi")
                .await
                .success
        },
        WAIT,
    )
    .await;
    assert!(allowed.is_ok(), "joe never got in:\n{}", mosquitto.log());
    let refused = mosquitto.publish("c2", "joe", "wrong", "a/b", "hi").await;
    assert!(refused.output.contains("not authorised"), "{refused:?}");
    assert!(
        webhook
            .requests()
            .iter()
            .any(|r| r.hook() == Some("auth_on_register") && r.body["password"] == "wrong"),
        "the refusal came from the webhook, over the secured link"
    );
    assert!(
        !mosquitto.log().contains(TOKEN),
        "the token is in Mosquitto's log"
    );
}

#[tokio::test]
async fn with_a_wrong_token_the_plugin_denies_connects_and_no_webhook_is_asked() {
    let ca = Ca::new("mosquitto-token");
    let server = ca.server("hookd", &["127.0.0.1"], Validity::Current);
    let broker_cert = ca.client("mosquitto", "mosquitto-1");
    let dir = Scratch::new();
    let (webhook, hookd) = secured_hookd(&server, &ca, &dir).await;

    let wrong = "a-token-hookd-never-issued";
    let (ca_file, cert_file, key_file) = (
        ca.cert_file.display().to_string(),
        broker_cert.cert_file.display().to_string(),
        broker_cert.key_file.display().to_string(),
    );
    let mosquitto = Mosquitto::start(
        hookd.addr(),
        &[
            ("timeout_ms", "300"),
            ("hookd_ca_file", &ca_file),
            ("hookd_client_cert_file", &cert_file),
            ("hookd_client_key_file", &key_file),
            ("hookd_token", wrong),
        ],
    )
    .await;

    let refused = mosquitto.publish("c1", "joe", "secret", "a/b", "hi").await;
    assert!(!refused.success, "{refused:?}");
    assert!(refused.output.contains("not authorised"), "{refused:?}");
    assert_eq!(webhook.hits(), 0, "no call got past hookd's token check");
    assert!(
        !mosquitto.log().contains(wrong),
        "the token is in Mosquitto's log"
    );
}
