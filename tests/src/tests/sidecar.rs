//! The vmq_webhooks sidecar (`hookd_bridge::sidecar`), end to end: a plain
//! HTTP client POSTs byte for byte what VerneMQ's `vmq_webhooks` sends to
//! the sidecar on `127.0.0.1:0`, which forwards it through a real
//! `hookd_bridge::Client` to a real hookd, which calls a real webhook.
//!
//! The sidecar is invisible when it works: the webhook behind hookd gets the
//! JSON VerneMQ sent, and VerneMQ gets the JSON the webhook answered (v3
//! top-level `topics` included), plus `cache-control: max-age` when the
//! webhook sent one. Bad input is a 400 that never stops the sidecar, and with
//! hookd away the failure policy answers, saying *unavailable*.

use std::{net::SocketAddr, time::Duration};

use hookd::config::WebhookConfig;
use hookd_bridge::{
    FailurePolicy, NodeIdentity, Options,
    sidecar::{self, SidecarError, SidecarOptions},
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::harness::{
    Hook, WAIT, eventually,
    service::Hookd,
    webhook::{Reply, Webhook},
    within,
};

/// A sidecar serving on loopback with its own hookd client.
struct Sidecar {
    addr: SocketAddr,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), SidecarError>>>,
}

/// What the sidecar answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    cache_control: Option<String>,
    body: Value,
}

impl Sidecar {
    /// Serves a sidecar on `127.0.0.1:0` whose client talks to `hookd` (an
    /// address), with `options` adjusted by `client` first.
    async fn start(hookd: String, options: SidecarOptions, client: impl FnOnce(&mut Options)) -> Self {
        let identity = NodeIdentity {
            node_id: "vernemq@test".into(),
            broker_kind: "vernemq".into(),
            broker_version: "sidecar-test".into(),
        };
        let mut client_options = Options::new([hookd], identity);
        client(&mut client_options);
        let client = hookd_bridge::connect(client_options).expect("the client options are valid");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the sidecar");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sidecar::serve(listener, client, options, async {
            let _ = stopped.await;
        }));
        crate::harness::install_crypto_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(WAIT)
            .build()
            .expect("a plain HTTP client builds");
        Self {
            addr,
            http,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// POSTs `body` exactly as given, the way vmq_webhooks does, with
    /// `vernemq-hook: hook` (no header when `None`).
    async fn post_raw(&self, hook: Option<&str>, body: &str) -> Answer {
        let mut request = self
            .http
            .post(format!("http://{}/vmq", self.addr))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(hook) = hook {
            request = request.header("vernemq-hook", hook);
        }
        let response = within("the sidecar's answer", request.send())
            .await
            .expect("the sidecar answers HTTP");
        let status = response.status().as_u16();
        let cache_control = response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = within("the sidecar's answer body", response.text())
            .await
            .expect("the body arrives");
        let body =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("the answer {text:?} is not JSON: {e}"));
        Answer {
            status,
            cache_control,
            body,
        }
    }

    /// POSTs a vmq_webhooks call for `hook`.
    async fn post(&self, hook: Hook, body: &str) -> Answer {
        self.post_raw(Some(hook.name()), body).await
    }

    /// Stops serving and waits (bounded) for `serve` to return.
    async fn stop(mut self) -> Result<(), SidecarError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("stopped once");
        within("the sidecar to stop", task)
            .await
            .expect("the sidecar does not panic")
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A webhook registered in hookd for every hook, and a sidecar in front.
struct Rig {
    sidecar: Sidecar,
    _hookd: Hookd,
    webhook: Webhook,
}

impl Rig {
    /// vmq_webhooks' defaults: base64 payloads everywhere.
    async fn start(reply: Reply) -> Self {
        Self::start_with(reply, true).await
    }

    /// The webhook (in hookd) and the sidecar (for VerneMQ) agree on
    /// `base64_payload`, as one vmq_webhooks registration would.
    async fn start_with(reply: Reply, base64_payload: bool) -> Self {
        let webhook = Webhook::start(reply).await;
        let registrations = Hook::ALL.map(|hook| WebhookConfig {
            base64_payload,
            ..WebhookConfig::new(hook, webhook.url())
        });
        let hookd = Hookd::with_webhooks(registrations).await;
        let options = SidecarOptions {
            base64_payload,
            ..SidecarOptions::default()
        };
        let sidecar = Sidecar::start(hookd.addr().to_string(), options, |_| {}).await;
        Self {
            sidecar,
            _hookd: hookd,
            webhook,
        }
    }

    /// Sends `body` for `hook` with the webhook answering `reply`; asserts
    /// the webhook got the same JSON and VerneMQ gets the webhook's answer.
    async fn round_trip(&self, hook: Hook, body: &str, reply: Value) -> Answer {
        self.webhook.set_reply(Reply::json(reply.clone()));
        let hits = self.webhook.hits();
        let answer = self.sidecar.post(hook, body).await;
        assert_eq!(answer.status, 200, "{hook} answered {answer:?}");
        assert_eq!(
            answer.body, reply,
            "VerneMQ gets the webhook's own answer to {hook}"
        );
        assert_eq!(self.webhook.hits(), hits + 1, "{hook} reached the webhook once");
        self.assert_forwarded(hook, body);
        answer
    }

    /// Asserts the webhook's latest request is `hook` with `body`'s JSON.
    #[track_caller]
    fn assert_forwarded(&self, hook: Hook, body: &str) {
        let sent: Value = serde_json::from_str(body).expect("the test body is JSON");
        self.webhook.last_request().assert_hook_call(hook.name(), &sent);
    }
}

// Bodies as vmq_webhooks encodes them (jsx: compact, fields in the order
// vmq builds them), taken from the reference's field tables.

const AUTH_ON_REGISTER: &str = r#"{"peer_addr":"127.0.0.1","peer_port":52341,"mountpoint":"","client_id":"sensor-17","username":"joe","password":"secret","clean_session":true,"listener_addr":"0.0.0.0","listener_port":1883,"listener_type":"mqtt"}"#;

const AUTH_ON_REGISTER_M5: &str = r#"{"peer_addr":"::1","peer_port":40000,"mountpoint":"","client_id":"m5-client","username":null,"password":null,"clean_start":false,"properties":{"p_session_expiry_interval":3600,"p_receive_max":20,"p_topic_alias_max":10,"p_request_response_info":true,"p_request_problem_info":false,"p_max_packet_size":1048576,"p_user_property":[{"key":"azE=","val":"djE="}]},"listener_addr":"127.0.0.1","listener_port":8883,"listener_type":"mqtts","client_cert":"MIIBszCCAVmgAwIBAgIU"}"#;

const AUTH_ON_PUBLISH: &str = r#"{"username":"joe","mountpoint":"","client_id":"sensor-17","qos":1,"topic":"sensors/17/temp","payload":"MjEuNQ==","retain":false}"#;

const AUTH_ON_PUBLISH_M5: &str = r#"{"username":"joe","mountpoint":"","client_id":"m5-client","qos":2,"topic":"cmd/lamp","payload":"b24=","retain":true,"properties":{"p_payload_format_indicator":"utf8","p_response_topic":"replylamp","p_correlation_data":"req-42","p_content_type":"text/plain","p_message_expiry_interval":30,"p_user_property":[{"key":"azE=","val":"djE="}]}}"#;

const AUTH_ON_SUBSCRIBE: &str = r#"{"username":"joe","mountpoint":"","client_id":"sensor-17","topics":[{"topic":"sensors/+/temp","qos":1},{"topic":"admin/#","qos":2}]}"#;

const AUTH_ON_SUBSCRIBE_M5: &str = r#"{"username":"joe","mountpoint":"","client_id":"m5-client","topics":[{"topic":"cmd/#","qos":1,"no_local":true,"rap":false,"retain_handling":"send_if_new_sub"},{"topic":"secret/#","qos":0,"no_local":false,"rap":true,"retain_handling":"dont_send"}],"properties":{"p_subscription_id":[7],"p_user_property":[{"key":"azE=","val":"djE="}]}}"#;

const ON_UNSUBSCRIBE: &str =
    r#"{"username":"joe","mountpoint":"","client_id":"sensor-17","topics":["sensors/+/temp","admin/#"]}"#;

const ON_UNSUBSCRIBE_M5: &str = r#"{"username":"joe","mountpoint":"","client_id":"m5-client","topics":["cmd/#"],"properties":{"p_user_property":[{"key":"azE=","val":"djE="}]}}"#;

const ON_DELIVER: &str = r#"{"username":"joe","mountpoint":"","client_id":"sensor-17","qos":1,"topic":"sensors/17/temp","payload":"MjEuNQ==","retain":false,"properties":{}}"#;

const ON_DELIVER_M5: &str = r#"{"username":"joe","mountpoint":"","client_id":"m5-client","qos":0,"topic":"cmd/lamp","payload":"b24=","retain":false,"properties":{"p_subscription_id":[1,2],"p_payload_format_indicator":"undefined","p_correlation_data":"req-42","p_response_topic":"replylamp"}}"#;

const ON_AUTH_M5: &str = r#"{"username":"joe","mountpoint":"","client_id":"m5-client","properties":{"p_authentication_method":"SCRAM-SHA-1","p_authentication_data":"biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM"}}"#;

/// The 11 notification hooks and what vmq_webhooks sends for each.
const NOTIFICATIONS: [(Hook, &str); 11] = [
    (
        Hook::OnRegister,
        r#"{"peer_addr":"127.0.0.1","peer_port":52341,"mountpoint":"","client_id":"sensor-17","username":"joe"}"#,
    ),
    (
        Hook::OnRegisterM5,
        r#"{"peer_addr":"127.0.0.1","peer_port":52342,"mountpoint":"","client_id":"m5-client","username":null,"properties":{"p_session_expiry_interval":0}}"#,
    ),
    (
        Hook::OnPublish,
        r#"{"username":"joe","mountpoint":"","client_id":"sensor-17","qos":1,"topic":"sensors/17/temp","payload":"MjEuNQ==","retain":false}"#,
    ),
    (
        Hook::OnPublishM5,
        r#"{"username":"joe","mountpoint":"","client_id":"m5-client","qos":0,"topic":"cmd/lamp","payload":"","retain":true,"properties":{"p_content_type":"text/plain"}}"#,
    ),
    (
        Hook::OnSubscribe,
        r#"{"username":"joe","mountpoint":"","client_id":"sensor-17","topics":[{"topic":"sensors/+/temp","qos":1},{"topic":"admin/#","qos":128}]}"#,
    ),
    (
        Hook::OnSubscribeM5,
        r#"{"username":"joe","mountpoint":"","client_id":"m5-client","topics":[{"topic":"cmd/#","qos":1,"no_local":true,"rap":true,"retain_handling":"send_retain"},{"topic":"secret/#","qos":128}],"properties":{}}"#,
    ),
    (
        Hook::OnOfflineMessage,
        r#"{"mountpoint":"","client_id":"sensor-17","qos":1,"topic":"sensors/17/temp","payload":"aGk=","retain":false}"#,
    ),
    (
        Hook::OnClientWakeup,
        r#"{"mountpoint":"","client_id":"sensor-17"}"#,
    ),
    (
        Hook::OnClientOffline,
        r#"{"mountpoint":"","client_id":"sensor-17"}"#,
    ),
    (
        Hook::OnClientGone,
        r#"{"mountpoint":"tenant-a","client_id":"sensor-17"}"#,
    ),
    (
        Hook::OnSessionExpired,
        r#"{"mountpoint":"","client_id":"sensor-17"}"#,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vernemq_connect_reaches_the_webhook_unchanged_and_every_register_modifier_comes_back() {
    let rig = Rig::start(Reply::ok()).await;
    let reply = json!({"result": "ok", "modifiers": {
        "allow_register": true, "allow_publish": true, "allow_subscribe": false, "allow_unsubscribe": true,
        "max_message_size": 65536, "max_connection_lifetime": 3600, "max_message_rate": 100,
        "max_inflight_messages": 10, "retry_interval": 20000, "max_online_messages": 1000,
        "max_offline_messages": 500, "max_drain_time": 100, "max_msgs_per_drain_step": 10,
        "username": "joe@tenant-a", "clean_session": false, "upgrade_qos": true,
        "shared_subscription_policy": "prefer_local", "queue_type": "fifo",
        "mountpoint": "tenant-a", "client_id": "tenant-a-sensor-17"
    }});
    rig.round_trip(Hook::AuthOnRegister, AUTH_ON_REGISTER, reply)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt5_connect_without_credentials_keeps_its_properties_and_listener_certificate() {
    let rig = Rig::start(Reply::ok()).await;
    let reply = json!({"result": "ok", "modifiers": {
        "max_message_size": 1024,
        "properties": {"p_user_property": [{"key": "cm9sZQ==", "val": "YWRtaW4="}], "p_session_expiry_interval": 60}
    }});
    rig.round_trip(Hook::AuthOnRegisterM5, AUTH_ON_REGISTER_M5, reply)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_with_a_base64_payload_is_rewritten_as_the_webhook_says() {
    let rig = Rig::start(Reply::ok()).await;
    let reply = json!({"result": "ok", "modifiers": {
        "topic": "tenant-a/sensors/17/temp", "payload": "MjEuNcKwQw==", "qos": 0, "retain": true,
        "mountpoint": "tenant-a", "throttle": 100
    }});
    rig.round_trip(Hook::AuthOnPublish, AUTH_ON_PUBLISH, reply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt5_publish_keeps_vmq_property_quirks_both_ways() {
    let rig = Rig::start(Reply::ok()).await;
    let reply = json!({"result": "ok", "modifiers": {
        "payload": "b2Zm",
        "properties": {
            "p_user_property": [{"key": "azI=", "val": "djI="}], "p_message_expiry_interval": 10,
            "p_content_type": "application/json", "p_payload_format_indicator": "undefined",
            "p_response_topic": "reply/lamp", "p_correlation_data": "req-43", "p_will_delay_interval": 5
        }
    }});
    rig.round_trip(Hook::AuthOnPublishM5, AUTH_ON_PUBLISH_M5, reply)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_subscribe_rewrite_comes_back_as_top_level_topics_with_128_rejections() {
    let rig = Rig::start(Reply::ok()).await;
    let reply = json!({"result": "ok", "topics": [
        {"topic": "sensors/+/temp", "qos": 0}, {"topic": "admin/#", "qos": 128}
    ]});
    rig.round_trip(Hook::AuthOnSubscribe, AUTH_ON_SUBSCRIBE, reply)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt5_subscribe_passes_its_options_and_gets_its_rewrite_inside_modifiers() {
    let rig = Rig::start(Reply::ok()).await;
    let reply = json!({"result": "ok", "modifiers": {"topics": [
        {"topic": "cmd/#", "qos": 1, "no_local": true, "rap": true, "retain_handling": "send_retain"},
        {"topic": "secret/#", "qos": 135}
    ]}});
    rig.round_trip(Hook::AuthOnSubscribeM5, AUTH_ON_SUBSCRIBE_M5, reply)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_rewrites_are_top_level_for_v3_and_inside_modifiers_for_mqtt5() {
    let rig = Rig::start(Reply::ok()).await;
    let v3 = json!({"result": "ok", "topics": ["sensors/17/temp"]});
    rig.round_trip(Hook::OnUnsubscribe, ON_UNSUBSCRIBE, v3).await;
    let m5 = json!({"result": "ok", "modifiers": {"topics": ["cmd/lamp", "cmd/fan"]}});
    rig.round_trip(Hook::OnUnsubscribeM5, ON_UNSUBSCRIBE_M5, m5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_and_mqtt5_auth_exchanges_get_their_modifiers_back() {
    let rig = Rig::start(Reply::ok()).await;
    let v3 = json!({"result": "ok", "modifiers": {"topic": "sensors/17/celsius", "payload": "MjE="}});
    rig.round_trip(Hook::OnDeliver, ON_DELIVER, v3).await;
    let m5 = json!({"result": "ok", "modifiers": {"payload": "b2Zm", "properties": {
        "p_content_type": "text/plain", "p_payload_format_indicator": "utf8",
        "p_user_property": [{"key": "azE=", "val": "djE="}], "p_response_topic": "reply/lamp",
        "p_correlation_data": "req-44"
    }}});
    rig.round_trip(Hook::OnDeliverM5, ON_DELIVER_M5, m5).await;
    let auth = json!({"result": "ok", "modifiers": {
        "properties": {"p_authentication_method": "SCRAM-SHA-1", "p_authentication_data": "cj1meWtvK2QybGJi"},
        "reason_code": 24
    }});
    rig.round_trip(Hook::OnAuthM5, ON_AUTH_M5, auth).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_errors_and_bare_oks_come_back_as_the_webhook_gave_them() {
    let rig = Rig::start(Reply::ok()).await;
    let chain_calls = [
        (Hook::AuthOnRegister, AUTH_ON_REGISTER),
        (Hook::AuthOnRegisterM5, AUTH_ON_REGISTER_M5),
        (Hook::AuthOnPublish, AUTH_ON_PUBLISH),
        (Hook::AuthOnPublishM5, AUTH_ON_PUBLISH_M5),
        (Hook::AuthOnSubscribe, AUTH_ON_SUBSCRIBE),
        (Hook::AuthOnSubscribeM5, AUTH_ON_SUBSCRIBE_M5),
        (Hook::OnUnsubscribe, ON_UNSUBSCRIBE),
        (Hook::OnUnsubscribeM5, ON_UNSUBSCRIBE_M5),
        (Hook::OnDeliver, ON_DELIVER),
        (Hook::OnDeliverM5, ON_DELIVER_M5),
        (Hook::OnAuthM5, ON_AUTH_M5),
    ];
    for (hook, body) in chain_calls {
        rig.round_trip(hook, body, json!({"result": "next"})).await;
        rig.round_trip(hook, body, json!({"result": {"error": "not_allowed"}}))
            .await;
        rig.round_trip(hook, body, json!({"result": "ok"})).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_the_webhook_unchanged_and_vernemq_gets_an_empty_json_answer() {
    // The webhook's answer to a notification is ignored: hookd acks at once.
    let rig = Rig::start(Reply::error("ignored")).await;
    for (i, (hook, body)) in NOTIFICATIONS.into_iter().enumerate() {
        let answer = rig.sidecar.post(hook, body).await;
        assert_eq!((answer.status, &answer.body), (200, &json!({})), "{hook}");
        rig.webhook.wait_for_hits(i + 1).await;
        rig.assert_forwarded(hook, body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_max_age_reaches_vernemq_as_cache_control_and_repeats_skip_the_webhook() {
    let rig = Rig::start(Reply::ok()).await;
    let reply = json!({"result": "ok", "modifiers": {"max_message_size": 2048}});
    rig.webhook.set_reply(Reply::json(reply.clone()).max_age(60));
    let first = rig.sidecar.post(Hook::AuthOnRegister, AUTH_ON_REGISTER).await;
    assert_eq!(first.body, reply);
    assert_eq!(first.cache_control.as_deref(), Some("max-age=60"));
    rig.assert_forwarded(Hook::AuthOnRegister, AUTH_ON_REGISTER);

    let again = rig.sidecar.post(Hook::AuthOnRegister, AUTH_ON_REGISTER).await;
    assert_eq!(again.body, reply, "a repeat gets the same answer");
    let max_age: u64 = again
        .cache_control
        .as_deref()
        .and_then(|v| v.strip_prefix("max-age="))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "a cached answer still carries max-age, got {:?}",
                again.cache_control
            )
        });
    assert!((1..=60).contains(&max_age), "what is left of 60 s, got {max_age}");
    assert_eq!(rig.webhook.hits(), 1, "the repeat never reached the webhook");

    // No max-age from the webhook: none to VerneMQ, and nothing cached.
    rig.webhook.set_reply(Reply::ok());
    let plain = rig.sidecar.post(Hook::AuthOnPublish, AUTH_ON_PUBLISH).await;
    assert_eq!((plain.body, plain.cache_control), (json!({"result": "ok"}), None));
    // Non-ok answers are never cacheable, whatever the header says.
    rig.webhook.set_reply(Reply::next().max_age(60));
    let next = rig.sidecar.post(Hook::AuthOnSubscribe, AUTH_ON_SUBSCRIBE).await;
    assert_eq!((next.body, next.cache_control), (json!({"result": "next"}), None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_payloads_pass_both_ways_when_base64_is_off() {
    let rig = Rig::start_with(Reply::ok(), false).await;
    let body = r#"{"username":"joe","mountpoint":"","client_id":"sensor-17","qos":0,"topic":"t","payload":"21.5 °C","retain":false}"#;
    let reply = json!({"result": "ok", "modifiers": {"payload": "70.7 °F"}});
    rig.round_trip(Hook::AuthOnPublish, body, reply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_calls_get_a_400_that_says_why_and_the_sidecar_keeps_serving() {
    let rig = Rig::start(Reply::ok()).await;
    let cases: [(Option<&str>, &str, &str); 9] = [
        (None, AUTH_ON_REGISTER, "vernemq-hook"),
        (Some("auth_on_connect"), AUTH_ON_REGISTER, "auth_on_connect"),
        (Some("AUTH_ON_REGISTER"), AUTH_ON_REGISTER, "AUTH_ON_REGISTER"),
        (Some("auth_on_register"), "{\"peer_addr\":", "not JSON"),
        (Some("auth_on_register"), "[]", "not a JSON object"),
        (
            Some("auth_on_register"),
            r#"{"peer_addr":"127.0.0.1","peer_port":"52341","mountpoint":"","client_id":"c","username":null,"password":null,"clean_session":true}"#,
            "peer_port",
        ),
        (
            Some("auth_on_publish"),
            r#"{"username":"joe","mountpoint":"","client_id":"c","qos":1,"payload":"aGk=","retain":false}"#,
            "`topic` is missing",
        ),
        (
            Some("auth_on_publish"),
            r#"{"username":"joe","mountpoint":"","client_id":"c","qos":1,"topic":"t","payload":"not base64!","retain":false}"#,
            "payload",
        ),
        (
            Some("auth_on_subscribe_m5"),
            r#"{"username":"joe","mountpoint":"","client_id":"c","topics":[{"topic":"a","qos":1,"retain_handling":"sometimes"}],"properties":{}}"#,
            "topics[0].retain_handling",
        ),
    ];
    for (hook, body, says) in cases {
        let answer = rig.sidecar.post_raw(hook, body).await;
        assert_eq!(answer.status, 400, "{hook:?} {body} answered {answer:?}");
        let error = answer.body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(says),
            "the error {error:?} should mention {says:?}"
        );
    }
    assert_eq!(rig.webhook.hits(), 0, "nothing bad was passed on");

    rig.round_trip(Hook::AuthOnRegister, AUTH_ON_REGISTER, json!({"result": "ok"}))
        .await;
    rig.sidecar.stop().await.expect("the sidecar stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_range_call_is_refused_as_hookd_would_without_reaching_the_webhook() {
    let rig = Rig::start(Reply::ok()).await;
    let no_client_id = AUTH_ON_REGISTER.replace(r#""client_id":"sensor-17""#, r#""client_id":"""#);
    let answer = rig.sidecar.post(Hook::AuthOnRegister, &no_client_id).await;
    assert_eq!(
        answer.status, 200,
        "an invalid call is a verdict, not a bad request"
    );
    let error = answer.body["result"]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("invalid_call: auth_on_register: client_id"),
        "the answer says why: {error:?}"
    );
    let gone = rig
        .sidecar
        .post(Hook::OnClientGone, r#"{"mountpoint":"","client_id":""}"#)
        .await;
    assert_eq!(
        gone.status, 503,
        "a refused notification is an error VerneMQ counts"
    );
    assert_eq!(rig.webhook.hits(), 0, "neither reached the webhook");
}

/// A loopback address where nothing listens: bound, then released.
async fn nothing_listens() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port to release");
    let addr = listener.local_addr().expect("a bound listener has an address");
    drop(listener);
    addr.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hookd_down_auth_hooks_are_denied_as_unavailable_and_notifications_accepted() {
    let sidecar = Sidecar::start(nothing_listens().await, SidecarOptions::default(), |_| {}).await;
    let answer = sidecar.post(Hook::AuthOnRegister, AUTH_ON_REGISTER).await;
    assert_eq!(answer.status, 200);
    let error = answer.body["result"]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("a denial, got {}", answer.body));
    assert!(error.starts_with("unavailable"), "the reason says why: {error:?}");
    assert_eq!(
        answer.cache_control, None,
        "a policy answer is never cached by VerneMQ"
    );

    let (hook, body) = NOTIFICATIONS[0];
    let notified = sidecar.post(hook, body).await;
    assert_eq!((notified.status, notified.body), (200, json!({})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hookd_down_a_next_policy_lets_vernemq_decide() {
    let sidecar = Sidecar::start(nothing_listens().await, SidecarOptions::default(), |options| {
        *options = options.clone().policy_for_all(FailurePolicy::Next);
    })
    .await;
    let answer = sidecar.post(Hook::AuthOnPublish, AUTH_ON_PUBLISH).await;
    assert_eq!((answer.status, answer.body), (200, json!({"result": "next"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_started_before_hookd_serves_once_hookd_is_up() {
    // The sidecar may start first on a node; calls then wait for hookd
    // within their deadline, or get the policy answer, never a hang.
    let webhook = Webhook::start(Reply::ok_with(json!({"max_message_size": 1}))).await;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port for hookd");
    let addr = listener.local_addr().expect("a bound listener has an address");
    drop(listener);
    let options = SidecarOptions {
        timeout: Duration::from_millis(500),
        ..SidecarOptions::default()
    };
    let sidecar = Sidecar::start(addr.to_string(), options, |o| {
        o.max_backoff = Duration::from_millis(100);
    })
    .await;
    let early = sidecar.post(Hook::AuthOnRegister, AUTH_ON_REGISTER).await;
    assert!(
        early.body["result"]["error"].is_string(),
        "no hookd yet: {}",
        early.body
    );

    let mut config =
        crate::harness::service::config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]);
    config.server.listen = addr;
    let _scratch = crate::harness::service::isolate(&mut config);
    let listener = TcpListener::bind(addr).await.expect("rebind hookd's port");
    let (_stop, stopped) = oneshot::channel::<()>();
    let hookd = tokio::spawn(hookd::run(config, listener, async {
        let _ = stopped.await;
    }));
    let sidecar = &sidecar;
    let served = eventually(
        || async move {
            sidecar.post(Hook::AuthOnRegister, AUTH_ON_REGISTER).await.body
                == json!({"result": "ok", "modifiers": {"max_message_size": 1}})
        },
        WAIT,
    )
    .await;
    hookd.abort();
    served.expect("the sidecar reaches hookd once it is up");
}
