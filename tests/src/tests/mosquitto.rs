//! Mosquitto with the hookd plugin, driven by real MQTT clients: connects,
//! publishes and subscriptions are decided by a real webhook behind a real
//! hookd, rewrites reach subscribers, notifications reach the endpoint, and
//! the failure policy holds while hookd is away.

use serde_json::json;

use crate::harness::{
    Hook, WAIT, b64, eventually,
    mosquitto::{HookdAt, Mosquitto},
    service::config,
    webhook::{Recorded, Reply, Webhook},
};
use hookd::config::WebhookConfig;

/// The endpoint behind hookd: joe/secret may connect; `forbidden/…` may not
/// be published to, `secret/…` not subscribed to; a publish to
/// `rewrite/in` is rewritten to `rewrite/out` with payload `changed`.
fn decide(request: &Recorded) -> Reply {
    let body = &request.body;
    match request.hook() {
        Some("auth_on_register") if body["username"] == "joe" && body["password"] == "secret" => Reply::ok(),
        Some("auth_on_register") => Reply::error("not_allowed"),
        Some("auth_on_publish") => match body["topic"].as_str().unwrap_or_default() {
            t if t.starts_with("forbidden/") => Reply::error("not_allowed"),
            "rewrite/in" => Reply::ok_with(json!({"topic": "rewrite/out", "payload": b64("changed")})),
            _ => Reply::ok(),
        },
        Some("auth_on_subscribe")
            if body["topics"][0]["topic"]
                .as_str()
                .unwrap_or_default()
                .starts_with("secret/") =>
        {
            Reply::error("not_allowed")
        }
        Some("auth_on_subscribe") => Reply::ok(),
        _ => Reply::json(json!({})),
    }
}

/// A webhook that decides as above, hookd with it registered for every hook
/// the plugin uses, and Mosquitto with the plugin.
async fn broker() -> (Webhook, HookdAt, Mosquitto) {
    let webhook = Webhook::builder().respond_with(decide).start().await;
    let hooks = [
        Hook::AuthOnRegister,
        Hook::AuthOnPublish,
        Hook::AuthOnSubscribe,
        Hook::OnPublish,
        Hook::OnClientOffline,
    ];
    let hookd = HookdAt::start(config(hooks.map(|hook| WebhookConfig::new(hook, webhook.url())))).await;
    let mosquitto = Mosquitto::start(hookd.addr(), &[("timeout_ms", "1000")]).await;
    (webhook, hookd, mosquitto)
}

#[tokio::test]
async fn an_allowed_user_connects_and_a_wrong_password_gets_not_authorised() {
    let (webhook, _hookd, mosquitto) = broker().await;
    let allowed = mosquitto.publish("c1", "joe", "secret", "a/b", "hi").await;
    assert!(
        allowed.success,
        "joe/secret was refused: {allowed:?}\n{}",
        mosquitto.log()
    );
    let refused = mosquitto.publish("c2", "joe", "wrong", "a/b", "hi").await;
    assert!(!refused.success);
    assert!(refused.output.contains("not authorised"), "{refused:?}");
    let registers = webhook
        .requests()
        .into_iter()
        .filter(|r| r.hook() == Some("auth_on_register"))
        .count();
    assert_eq!(registers, 2, "both connects were decided by the endpoint");
}

#[tokio::test]
async fn a_forbidden_publish_is_not_delivered_and_an_allowed_one_is() {
    let (_webhook, _hookd, mosquitto) = broker().await;
    let mut subscriber = mosquitto.subscribe("watcher", "joe", "secret", "#");
    assert_eq!(subscriber.suback().await, Some(1));
    let forbidden = mosquitto
        .publish("p1", "joe", "secret", "forbidden/x", "must not arrive")
        .await;
    assert!(
        forbidden.success,
        "a QoS 1 publish refused by ACL still completes: {forbidden:?}"
    );
    let allowed = mosquitto
        .publish("p1", "joe", "secret", "allowed/x", "welcome")
        .await;
    assert!(allowed.success, "{allowed:?}");
    // The subscriber sees messages in order: the first one must be the allowed one.
    let first = subscriber.message().await;
    assert_eq!(first, Some(("allowed/x".to_owned(), "welcome".to_owned())));
    subscriber.stop().await;
}

#[tokio::test]
async fn a_forbidden_subscription_is_refused() {
    let (_webhook, _hookd, mosquitto) = broker().await;
    let mut refused = mosquitto.subscribe("s1", "joe", "secret", "secret/plans");
    assert_eq!(refused.suback().await, Some(128), "{}", mosquitto.log());
    let mut allowed = mosquitto.subscribe("s2", "joe", "secret", "public/news");
    assert_eq!(allowed.suback().await, Some(1));
    refused.stop().await;
    allowed.stop().await;
}

#[tokio::test]
async fn the_subscriber_receives_the_topic_and_payload_the_endpoint_rewrote() {
    let (_webhook, _hookd, mosquitto) = broker().await;
    let mut subscriber = mosquitto.subscribe("reader", "joe", "secret", "rewrite/#");
    assert_eq!(subscriber.suback().await, Some(1));
    let published = mosquitto
        .publish("writer", "joe", "secret", "rewrite/in", "original")
        .await;
    assert!(published.success, "{published:?}");
    assert_eq!(
        subscriber.message().await,
        Some(("rewrite/out".to_owned(), "changed".to_owned()))
    );
    subscriber.stop().await;
}

#[tokio::test]
async fn the_endpoint_is_told_of_publishes_and_of_clients_going_offline() {
    let (webhook, _hookd, mosquitto) = broker().await;
    let published = mosquitto
        .publish("teller", "joe", "secret", "news/today", "sunny")
        .await;
    assert!(published.success, "{published:?}");
    let told = eventually(
        || {
            let requests = webhook.requests();
            async move {
                let on_publish = requests.iter().any(|r| {
                    r.hook() == Some("on_publish")
                        && r.body["client_id"] == "teller"
                        && r.body["topic"] == "news/today"
                        && r.body["payload"] == b64("sunny")
                });
                let offline = requests
                    .iter()
                    .any(|r| r.hook() == Some("on_client_offline") && r.body["client_id"] == "teller");
                on_publish && offline
            }
        },
        WAIT,
    )
    .await;
    assert!(
        told.is_ok(),
        "requests: {:?}",
        webhook.requests().iter().map(|r| &r.body).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn with_hookd_stopped_new_connects_are_refused_and_work_again_when_it_returns() {
    let (webhook, hookd, mosquitto) = broker().await;
    let mut connected = mosquitto.subscribe("steady", "joe", "secret", "steady/#");
    assert_eq!(connected.suback().await, Some(1));
    let addr = hookd.addr();
    hookd.stop().await;

    let refused = mosquitto.publish("newcomer", "joe", "secret", "a/b", "hi").await;
    assert!(
        !refused.success,
        "the deny policy refuses while hookd is away: {refused:?}"
    );
    assert!(refused.output.contains("not authorised"), "{refused:?}");
    // The broker keeps serving the clients it has: the subscriber's pings are answered.
    assert!(
        connected.line_where(|l| l.contains("PINGRESP")).await.is_some(),
        "{}",
        mosquitto.log()
    );

    let hooks = [Hook::AuthOnRegister, Hook::AuthOnPublish, Hook::AuthOnSubscribe];
    let _hookd = HookdAt::start_at(
        config(hooks.map(|hook| WebhookConfig::new(hook, webhook.url()))),
        addr,
    )
    .await;
    let back = eventually(
        || async {
            mosquitto
                .publish("returner", "joe", "secret", "a/b", "hi")
                .await
                .success
        },
        WAIT,
    )
    .await;
    assert!(
        back.is_ok(),
        "connects did not work again after hookd returned:\n{}",
        mosquitto.log()
    );
    connected.stop().await;
}

/// README's `mosquitto.conf` block, exactly as written there, with the
/// listener, the plugin's path and hookd's address a test can use.
fn readme_mosquitto_conf(hookd: std::net::SocketAddr) -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("```\n# mosquitto.conf\n")
        .expect("README has a mosquitto.conf block");
    let block = &readme[start + "```\n".len()..];
    let block = &block[..block.find("```").expect("the block ends")];
    let mut swapped = (false, false, false);
    let conf: Vec<String> = block
        .lines()
        .map(|line| match line.split_whitespace().next() {
            Some("listener") => {
                swapped.0 = true;
                "listener {port} 127.0.0.1".to_owned()
            }
            Some("plugin") => {
                swapped.1 = true;
                "plugin {plugin}".to_owned()
            }
            Some("plugin_opt_hookd_addresses") => {
                swapped.2 = true;
                line.replace("127.0.0.1:50051", &hookd.to_string())
            }
            _ => line.to_owned(),
        })
        .collect();
    assert_eq!(
        swapped,
        (true, true, true),
        "README's block has listener, plugin and addresses:\n{block}"
    );
    conf.join("\n") + "\n"
}

#[tokio::test]
async fn readmes_mosquitto_conf_works_as_pasted() {
    let webhook = Webhook::builder().respond_with(decide).start().await;
    let hooks = [Hook::AuthOnRegister, Hook::AuthOnPublish];
    let hookd = HookdAt::start(config(hooks.map(|hook| WebhookConfig::new(hook, webhook.url())))).await;
    let mosquitto = Mosquitto::start_with_conf(&readme_mosquitto_conf(hookd.addr())).await;
    let allowed = mosquitto.publish("c1", "joe", "secret", "a/b", "hi").await;
    assert!(
        allowed.success,
        "joe/secret publishes:\n{}\n{}",
        allowed.output,
        mosquitto.log()
    );
    let refused = mosquitto.publish("c2", "joe", "wrong", "a/b", "hi").await;
    assert!(
        !refused.success,
        "a wrong password is refused:\n{}",
        refused.output
    );
}

#[tokio::test]
async fn an_address_with_a_trailing_comment_stops_mosquitto_saying_why() {
    let conf = "listener {port} 127.0.0.1\nallow_anonymous false\nplugin {plugin}\n\
                plugin_opt_hookd_addresses 127.0.0.1:50051     # comma-separated\n";
    let mosquitto = Mosquitto::start_refused(conf).await;
    assert!(
        mosquitto.contains("plugin_opt_hookd_addresses")
            && mosquitto.contains("comments on lines of their own"),
        "{mosquitto}"
    );
}

#[tokio::test]
async fn an_rmqtt_receiver_gets_connect_connack_connected_publish_and_disconnected_for_a_mosquitto_pub_session()
 {
    let authoriser = Webhook::builder().respond_with(decide).start().await;
    let receiver = Webhook::start(Reply::raw("")).await;
    let rmqtt = |hook| WebhookConfig {
        dialect: hookd_proto::events::Dialect::Rmqtt,
        ..WebhookConfig::new(hook, receiver.url())
    };
    let hookd = HookdAt::start(config([
        WebhookConfig::new(Hook::AuthOnRegister, authoriser.url()),
        WebhookConfig::new(Hook::AuthOnPublish, authoriser.url()),
        rmqtt(Hook::OnClientConnect),
        rmqtt(Hook::OnClientConnack),
        rmqtt(Hook::OnRegister),
        rmqtt(Hook::OnPublish),
        rmqtt(Hook::OnClientOffline),
    ]))
    .await;
    let mosquitto = Mosquitto::start(hookd.addr(), &[("timeout_ms", "1000")]).await;
    let published = mosquitto
        .publish("rmqtt-dev", "joe", "secret", "news/today", "sunny")
        .await;
    assert!(published.success, "{published:?}");
    // One client: the outbox delivers its events in order.
    receiver.wait_for_hits(5).await;
    let mut bodies: Vec<serde_json::Value> = receiver.requests().iter().map(|r| r.body.clone()).collect();
    let actions: Vec<&str> = bodies
        .iter()
        .map(|b| b["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        actions,
        [
            "client_connect",
            "client_connack",
            "client_connected",
            "message_publish",
            "client_disconnected"
        ]
    );
    // What the CONNECT asked for (mosquitto_pub: MQTT 3.1.1, keepalive 60,
    // clean session), and its CONNACK; Mosquitto 2.0 tells no client port.
    for body in &mut bodies[..2] {
        if let Some(body) = body.as_object_mut() {
            body.remove("time");
        }
    }
    let connect = serde_json::json!({
        "action": "client_connect", "node": 1, "ipaddress": "127.0.0.1:0", "clientid": "rmqtt-dev",
        "username": "joe", "keepalive": 60, "proto_ver": 4, "clean_session": true
    });
    assert_eq!(bodies[0], connect);
    let mut connack = connect;
    connack["action"] = "client_connack".into();
    connack["conn_ack"] = "Connection Accepted".into();
    assert_eq!(bodies[1], connack);
    let bodies = bodies.split_off(2);
    assert_eq!(bodies[0]["clientid"], "rmqtt-dev");
    assert_eq!(bodies[0]["username"], "joe");
    assert_eq!(bodies[0]["proto_ver"], 4);
    assert!(
        bodies[0]["ipaddress"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{}",
        bodies[0]
    );
    assert_eq!(bodies[1]["from_clientid"], "rmqtt-dev");
    assert_eq!(bodies[1]["from_username"], "joe");
    assert_eq!(bodies[1]["topic"], "news/today");
    assert_eq!(bodies[1]["qos"], 1);
    assert_eq!(bodies[1]["payload"], b64("sunny"));
    assert_eq!(bodies[2]["clientid"], "rmqtt-dev");
}
