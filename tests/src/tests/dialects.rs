//! RMQTT's and NanoMQ's webhook receivers work unchanged: a webhook with
//! `dialect = "rmqtt"` or `"nanomq"` gets exactly the bodies those brokers
//! send (the golden bodies below are written from their documents, not from
//! hookd's output), only for the topics its rules name, with its payload
//! encoding and its own headers; a `file://` sink gets the same bodies as
//! lines, kept across a restart; a topic-scoped authoriser sits in a chain.

use hookd::{Config, config::WebhookConfig};
use hookd_proto::{events::Dialect, payload::Encoding};
use serde_json::{Value, json};

use crate::harness::{
    Hook, Scratch, WAIT, assert_ack,
    calls::{self, IntoCall},
    eventually,
    service::{self, Hookd},
    webhook::{Recorded, Reply, Webhook},
};

/// A registration of `webhook` for `hook` in `dialect`.
fn registration(hook: Hook, url: String, dialect: Dialect) -> WebhookConfig {
    WebhookConfig {
        dialect,
        ..WebhookConfig::new(hook, url)
    }
}

/// The body a receiver got, with RMQTT's `time` checked for its format
/// (`%Y-%m-%d %H:%M:%S%.3f`) and taken out, since it is the sending time.
fn without_time(request: &Recorded) -> Value {
    let mut body = request.body.clone();
    if let Some(time) = body.as_object_mut().and_then(|b| b.remove("time")) {
        let time = time.as_str().unwrap_or_default().to_owned();
        let shape: String = time
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999-99-99 99:99:99.999", "time {time:?}");
    }
    body
}

/// The event time fields are hookd's acceptance time: recent ms.
fn assert_recent_ms(body: &Value, key: &str) -> Value {
    let ms = body[key].as_u64().unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    assert!(now.abs_diff(ms) < 60_000, "{key} = {ms} is not now ({now})");
    let mut body = body.clone();
    body[key] = json!("<now>");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rmqtt_receiver_gets_rmqtts_bodies_for_connect_publish_subscribe_and_disconnect() {
    let receiver = Webhook::start(Reply::raw("")).await;
    let hooks = [
        Hook::OnRegister,
        Hook::OnPublish,
        Hook::OnSubscribe,
        Hook::OnClientOffline,
    ];
    let hookd = Hookd::with_webhooks(hooks.map(|hook| WebhookConfig {
        headers: [("authorization".to_owned(), "Bearer s3cret".to_owned())].into(),
        ..registration(hook, receiver.url(), Dialect::Rmqtt)
    }))
    .await;
    let broker = hookd.broker().await;
    // One client, so the outbox delivers its events in order.
    assert_ack(&broker.call(calls::on_register("dev-1")).await);
    receiver.wait_for_hits(1).await;
    assert_ack(&broker.call(calls::on_publish("dev-1")).await);
    receiver.wait_for_hits(2).await;
    assert_ack(&broker.call(calls::on_subscribe("dev-1")).await);
    receiver.wait_for_hits(3).await;
    assert_ack(&broker.call(calls::on_client_offline("dev-1")).await);
    receiver.wait_for_hits(4).await;
    let requests = receiver.requests();
    for request in &requests {
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("authorization"), Some("Bearer s3cret"));
    }
    let bodies: Vec<Value> = requests.iter().map(without_time).collect();
    assert_eq!(
        assert_recent_ms(&bodies[0], "connected_at"),
        json!({
            "action": "client_connected", "node": 1, "ipaddress": "10.0.0.7:51234",
            "clientid": "dev-1", "username": "alice", "keepalive": null, "proto_ver": 4,
            "clean_session": null, "connected_at": "<now>", "session_present": null
        })
    );
    assert_eq!(
        assert_recent_ms(&bodies[1], "ts"),
        json!({
            "action": "message_publish", "from_node": 1, "from_ipaddress": null,
            "from_clientid": "dev-1", "from_username": "alice", "from_type": "custom",
            "dup": false, "retain": true, "qos": 0, "topic": "a/b", "packet_id": null,
            "payload": "aGVsbG8gd29ybGQ=", "ts": "<now>"
        })
    );
    // on_subscribe's refused topic (QoS 128) is not a subscription RMQTT reports.
    assert_eq!(
        bodies[2],
        json!({
            "action": "session_subscribed", "node": 1, "ipaddress": null, "clientid": "dev-1",
            "username": "alice", "topic": "a/b", "opts": {"qos": 1}
        })
    );
    assert_eq!(
        assert_recent_ms(&bodies[3], "disconnected_at"),
        json!({
            "action": "client_disconnected", "node": 1, "ipaddress": null, "clientid": "dev-1",
            "username": null, "disconnected_at": "<now>", "reason": null
        })
    );
}

/// hookd's own notification hooks (the events vmq has no hook for) reach an
/// RMQTT receiver as RMQTT's `client_connect`, `client_connack`,
/// `session_created`, `client_subscribe`, `message_acked`, `message_dropped`
/// and `client_unsubscribe`, field for field as its web-hook document lists
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rmqtt_receiver_gets_the_events_vmq_has_no_hook_for() {
    let receiver = Webhook::start(Reply::raw("")).await;
    let hooks = [
        Hook::OnClientConnect,
        Hook::OnClientConnack,
        Hook::OnSessionCreated,
        Hook::OnClientSubscribe,
        Hook::OnMessageAcked,
        Hook::OnMessageDropped,
        Hook::OnClientUnsubscribe,
    ];
    let hookd =
        Hookd::with_webhooks(hooks.map(|hook| registration(hook, receiver.url(), Dialect::Rmqtt))).await;
    let broker = hookd.broker().await;
    let calls = [
        calls::on_client_connect("dev-9").into_hook(),
        calls::on_client_connack("dev-9", 0).into_hook(),
        calls::on_session_created("dev-9").into_hook(),
        calls::on_client_subscribe("dev-9").into_hook(),
        calls::on_message_acked("dev-9").into_hook(),
        calls::on_message_dropped().into_hook(),
        calls::on_client_unsubscribe("dev-9").into_hook(),
    ];
    let mut expected_hits = 0;
    for (call, bodies) in calls.into_iter().zip([1, 1, 1, 2, 1, 1, 1]) {
        assert_ack(&broker.call(call).await);
        expected_hits += bodies;
        receiver.wait_for_hits(expected_hits).await;
    }
    let bodies: Vec<Value> = receiver.requests().iter().map(without_time).collect();
    let connect = json!({
        "action": "client_connect", "node": 1, "ipaddress": "10.0.0.7:51234", "clientid": "dev-9",
        "username": "alice", "keepalive": 60, "proto_ver": 4, "clean_session": true
    });
    assert_eq!(bodies[0], connect);
    let mut connack = connect;
    connack["action"] = json!("client_connack");
    connack["conn_ack"] = json!("Connection Accepted");
    assert_eq!(bodies[1], connack);
    assert_eq!(
        assert_recent_ms(&bodies[2], "created_at"),
        json!({
            "action": "session_created", "node": 1, "ipaddress": "10.0.0.7:51234",
            "clientid": "dev-9", "username": "alice", "created_at": "<now>"
        })
    );
    let subscribe = |topic: &str, qos: u8| {
        json!({
            "action": "client_subscribe", "node": 1, "ipaddress": null, "clientid": "dev-9",
            "username": "alice", "topic": topic, "opts": {"qos": qos}
        })
    };
    assert_eq!(bodies[3..5], [subscribe("a/b", 1), subscribe("c/#", 0)]);
    assert_eq!(
        assert_recent_ms(&bodies[5], "ts"),
        json!({
            "action": "message_acked", "node": 1, "ipaddress": "10.0.0.7:51234",
            "clientid": "dev-9", "username": "alice", "from_node": 1,
            "from_ipaddress": "10.0.0.8:40000", "from_clientid": "pub-1", "from_username": "bob",
            "from_type": "custom", "dup": false, "retain": false, "qos": 1, "topic": "a/b",
            "packet_id": 7, "payload": "aGVsbG8gd29ybGQ=", "pts": 1_706_703_724_000_u64,
            "ts": "<now>"
        })
    );
    // No receiver: RMQTT leaves the receiver's fields out.
    assert_eq!(
        assert_recent_ms(&bodies[6], "ts"),
        json!({
            "action": "message_dropped", "from_node": 1, "from_ipaddress": "10.0.0.8:40000",
            "from_clientid": "pub-1", "from_username": "bob", "from_type": "custom",
            "dup": false, "retain": false, "qos": 0, "topic": "a/b", "packet_id": null,
            "payload": "aGVsbG8gd29ybGQ=", "reason": "no_subscribers",
            "pts": 1_706_703_724_000_u64, "ts": "<now>"
        })
    );
    assert_eq!(
        bodies[7],
        json!({
            "action": "client_unsubscribe", "node": 1, "ipaddress": null, "clientid": "dev-9",
            "username": "alice", "topic": "a/b"
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_rules_send_only_matching_subscriptions_one_body_each_and_rename_the_action() {
    let receiver = Webhook::start(Reply::raw("")).await;
    let hookd = Hookd::with_webhooks([WebhookConfig {
        topics: vec!["a/+".into(), "$SYS/#".into()],
        action: Some("subscribed_2".into()),
        ..registration(Hook::OnSubscribeM5, receiver.url(), Dialect::Rmqtt)
    }])
    .await;
    let broker = hookd.broker().await;
    let mut subscribe = calls::on_subscribe_m5("dev-2");
    subscribe.topics = vec![
        calls::subscription("a/b", 1),
        calls::subscription("x/y", 0),
        calls::subscription("$SYS/broker/load", 0),
        calls::subscription("a/c", 2),
    ];
    assert_ack(&broker.call(subscribe).await);
    receiver.wait_for_hits(3).await;
    let topics: Vec<Value> = receiver
        .requests()
        .iter()
        .map(|r| r.body["topic"].clone())
        .collect();
    assert_eq!(topics, [json!("a/b"), json!("$SYS/broker/load"), json!("a/c")]);
    let first = without_time(&receiver.requests()[0]);
    assert_eq!(first["action"], "subscribed_2");
    assert_eq!(
        first["opts"],
        json!({"qos": 1, "no_local": false, "retain_as_published": false, "retain_handling": 0})
    );
    // A subscription no rule matches is not sent at all.
    let mut unmatched = calls::on_subscribe_m5("dev-2");
    unmatched.topics = vec![calls::subscription("x/y", 0)];
    assert_ack(&broker.call(unmatched).await);
    let mut marker = calls::on_subscribe_m5("dev-2");
    marker.topics = vec![calls::subscription("a/z", 0)];
    assert_ack(&broker.call(marker).await);
    receiver.wait_for_hits(4).await;
    assert_eq!(receiver.last_request().body["topic"], "a/z");
    assert_eq!(receiver.hits(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nanomq_receiver_gets_nanomqs_bodies_with_base62_payloads_for_its_topic_only() {
    let receiver = Webhook::start(Reply::raw("")).await;
    let hookd = Hookd::with_webhooks([
        WebhookConfig {
            topics: vec!["a/#".into()],
            payload_encoding: Some(Encoding::Base62),
            headers: [("content-type".to_owned(), "application/json".to_owned())].into(),
            ..registration(Hook::OnPublish, receiver.url(), Dialect::Nanomq)
        },
        registration(Hook::OnRegisterM5, receiver.url(), Dialect::Nanomq),
    ])
    .await;
    let broker = hookd.broker().await;
    assert_ack(&broker.call(calls::on_register_m5("nano-1")).await);
    receiver.wait_for_hits(1).await;
    assert_eq!(
        receiver.last_request().body,
        json!({
            "proto_ver": 5, "keepalive": null, "conn_ack": "success", "username": "alice",
            "clientid": "nano-1", "action": "client_connack"
        })
    );
    let mut elsewhere = calls::on_publish("nano-1");
    elsewhere.topic = "b/c".into();
    assert_ack(&broker.call(elsewhere).await);
    let mut publish = calls::on_publish("nano-1");
    publish.payload = b"Hello".to_vec();
    assert_ack(&broker.call(publish).await);
    receiver.wait_for_hits(2).await;
    let request = receiver.last_request();
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        assert_recent_ms(&request.body, "ts"),
        json!({
            "ts": "<now>", "topic": "a/b", "retain": true, "qos": 0,
            "action": "message_publish", "from_username": "alice",
            "from_client_id": "nano-1", "payload": "5TP3P3v"
        })
    );
    assert_eq!(receiver.hits(), 2, "the publish to b/c was not sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_payloads_go_whole_and_binary_ones_become_a_dead_letter_not_mangled_text() {
    let receiver = Webhook::start(Reply::raw("")).await;
    let hookd = Hookd::with_webhooks([WebhookConfig {
        payload_encoding: Some(Encoding::Plain),
        ..registration(Hook::OnPublish, receiver.url(), Dialect::Nanomq)
    }])
    .await;
    let broker = hookd.broker().await;
    let mut binary = calls::on_publish("bin-1");
    binary.payload = vec![b'o', b'k', 0xff, 0xfe];
    assert_ack(&broker.call(binary).await);
    let mut text = calls::on_publish("bin-1");
    text.payload = b"nul\0inside".to_vec();
    assert_ack(&broker.call(text).await);
    receiver.wait_for_hits(1).await;
    assert_eq!(receiver.last_request().body["payload"], "nul\u{0}inside");
    // One client's notifications go in order: the binary one was settled
    // (a dead letter) before the text one went out, and never sent.
    assert_eq!(receiver.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_scoped_authoriser_in_a_chain_is_skipped_for_other_topics() {
    let scoped = Webhook::start(Reply::error("not_allowed")).await;
    let general = Webhook::start(Reply::ok()).await;
    let hookd = Hookd::with_webhooks([
        WebhookConfig {
            topics: vec!["secret/#".into()],
            ..WebhookConfig::new(Hook::AuthOnPublish, scoped.url())
        },
        WebhookConfig::new(Hook::AuthOnPublish, general.url()),
    ])
    .await;
    let broker = hookd.broker().await;
    let verdict = broker.call(calls::auth_on_publish("c1")).await;
    assert!(
        matches!(verdict.outcome, Some(hookd_proto::v1::verdict::Outcome::Ok(_))),
        "{verdict:?}"
    );
    assert_eq!((scoped.hits(), general.hits()), (0, 1));
    let mut secret = calls::auth_on_publish("c1");
    secret.topic = "secret/plans".into();
    let verdict = broker.call(secret).await;
    assert!(
        matches!(verdict.outcome, Some(hookd_proto::v1::verdict::Outcome::Error(_))),
        "{verdict:?}"
    );
    assert_eq!((scoped.hits(), general.hits()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sink_appends_rmqtt_lines_through_the_outbox_across_a_restart() {
    let scratch = Scratch::new();
    let file = scratch.path().join("logs/nested/events.jsonl");
    let endpoint = format!("file://{}", file.display());
    let config = Config {
        outbox: hookd::config::OutboxConfig {
            path: scratch.store(),
            ..Default::default()
        },
        ..service::config([registration(Hook::OnClientGone, endpoint.clone(), Dialect::Rmqtt)])
    };
    let lines = || {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).expect("each line is one JSON object"))
            .collect::<Vec<_>>()
    };
    let hookd = Hookd::start_with_registry(config.clone()).await;
    assert_ack(&hookd.broker().await.call(calls::on_client_gone("first")).await);
    eventually(|| async { lines().len() == 1 }, WAIT)
        .await
        .expect("the first line is written");
    // Written is not yet recorded as delivered (the line is flushed to disk
    // first); a stop before that would rightly write it again (at least once).
    let delivered = hookd.metrics().outbox_delivered(&hookd::redact::shown(&endpoint));
    eventually(|| async { delivered.get() == 1 }, WAIT)
        .await
        .expect("the first line is recorded as delivered");
    hookd.stop().await.expect("hookd stops cleanly");
    let hookd = Hookd::start(config).await;
    assert_ack(&hookd.broker().await.call(calls::on_client_gone("second")).await);
    eventually(|| async { lines().len() == 2 }, WAIT)
        .await
        .expect("the second line is appended");
    let clients: Vec<Value> = lines().iter().map(|l| l["clientid"].clone()).collect();
    assert_eq!(clients, [json!("first"), json!("second")]);
    assert_eq!(lines()[0]["action"], "client_disconnected");
}

#[test]
fn configuration_mistakes_are_refused_with_the_key_and_the_valid_values() {
    let refused = |webhook: &str| {
        Config::from_toml(&format!("[[webhooks]]\n{webhook}\n"))
            .expect_err("refused")
            .to_string()
    };
    let text =
        refused("hook = \"auth_on_register\"\nendpoint = \"http://127.0.0.1:1/\"\ndialect = \"nanomq\"");
    assert!(
        text.contains("webhooks[0].dialect") && text.contains("decision hook"),
        "{text}"
    );
    let text =
        refused("hook = \"on_publish\"\nendpoint = \"http://127.0.0.1:1/\"\npayload_encoding = \"hex\"");
    assert!(
        text.contains("plain") && text.contains("base64") && text.contains("base62"),
        "{text}"
    );
    let text = refused("hook = \"on_publish\"\nendpoint = \"file://target/x.log\"");
    assert!(
        text.contains("webhooks[0].endpoint") && text.contains("host"),
        "{text}"
    );
    let text =
        refused("hook = \"on_publish\"\nendpoint = \"http://127.0.0.1:1/\"\nheaders = { x-id = \"a\\nb\" }");
    assert!(text.contains("webhooks[0].headers.x-id"), "{text}");
}
