//! RMQTT `rmqtt-web-hook` event bodies: what RMQTT POSTs (or appends to a
//! `file://` target) for each event, field for field.
//!
//! Every body has `action` (the event name, or the webhook's `action`),
//! `time` ([`super::format_time`]) and the client's `node`, `ipaddress`
//! (`"ip:port"`), `clientid` and `username` (`"undefined"` when the client
//! sent none); message events name the publisher in `from_*` fields.
//! Payloads are base64 in RMQTT; here they follow the webhook's encoding.

use serde_json::{Map, Value, json};

use super::{EventError, EventOptions, Moment, format_time, to_vec, wanted};
use crate::{
    call::{HookArgs, HookCall, Properties, Publish, RetainHandling},
    hook::Hook,
};

/// RMQTT's node id of a single node: hookd does not learn brokers' node ids.
const NODE: u64 = 1;

/// The RMQTT event for `hook`, if RMQTT has one.
pub fn event(hook: Hook) -> Option<&'static str> {
    Some(match hook {
        Hook::OnRegister | Hook::OnRegisterM5 => "client_connected",
        Hook::OnPublish | Hook::OnPublishM5 => "message_publish",
        Hook::OnSubscribe | Hook::OnSubscribeM5 => "session_subscribed",
        Hook::OnClientOffline | Hook::OnClientGone => "client_disconnected",
        Hook::OnSessionExpired => "session_terminated",
        Hook::OnOfflineMessage => "offline_message",
        _ => return None,
    })
}

/// The bodies RMQTT would send for `call`: one, or one per subscribed topic
/// that passes the webhook's `topics`; none if nothing passes.
pub fn encode(call: &HookCall, options: &EventOptions, at: Moment) -> Result<Vec<Vec<u8>>, EventError> {
    let hook = call.hook();
    let Some(name) = event(hook) else {
        return Err(EventError::NoEvent {
            dialect: "rmqtt",
            hook,
        });
    };
    let m5 = hook.is_m5();
    let head = |client_id: &str, ipaddress: Value, username: Value| {
        let mut body = Map::new();
        body.insert("action".into(), json!(options.action.as_deref().unwrap_or(name)));
        body.insert("node".into(), json!(NODE));
        body.insert("ipaddress".into(), ipaddress);
        body.insert("clientid".into(), json!(client_id));
        body.insert("username".into(), username);
        body.insert("time".into(), json!(format_time(at.now_ms)));
        body
    };
    let bodies = match call.args() {
        HookArgs::Registered(r) => {
            let mut body = head(
                &r.subscriber.client_id,
                json!(format!("{}:{}", r.peer.addr, r.peer.port)),
                username(r.username.as_deref()),
            );
            body.insert("keepalive".into(), Value::Null);
            body.insert("proto_ver".into(), json!(if m5 { 5 } else { 4 }));
            body.insert(
                (if m5 { "clean_start" } else { "clean_session" }).into(),
                Value::Null,
            );
            body.insert("connected_at".into(), json!(at.accepted_ms));
            body.insert("session_present".into(), Value::Null);
            if let Some(properties) = r.properties.as_ref().filter(|p| !p.user_property.is_empty()) {
                body.insert("user_properties".into(), user_properties(properties));
            }
            vec![body]
        }
        HookArgs::Publish(p) => {
            if !wanted(options, &p.topic) {
                return Ok(Vec::new());
            }
            let mut body = if hook == Hook::OnOfflineMessage {
                // The receiver's event: `client_id` is the offline subscriber;
                // the publisher is unknown.
                let mut body = head(&p.subscriber.client_id, Value::Null, Value::Null);
                publisher(&mut body, None);
                body.insert("pts".into(), json!(at.accepted_ms));
                body
            } else {
                // The publisher's event: RMQTT's `message_publish` has
                // only `from_*` fields for the client.
                let mut body = head("", Value::Null, Value::Null);
                for key in ["node", "ipaddress", "clientid", "username"] {
                    body.remove(key);
                }
                publisher(&mut body, Some(p));
                body
            };
            message(&mut body, p, options)?;
            body.insert("ts".into(), json!(at.accepted_ms));
            vec![body]
        }
        HookArgs::Subscribe(s) => s
            .topics
            .iter()
            // 128: a topic the broker refused, which RMQTT never reports.
            .filter(|t| t.qos <= 2 && wanted(options, &t.topic))
            .map(|t| {
                let mut body = head(
                    &s.subscriber.client_id,
                    Value::Null,
                    username(s.username.as_deref()),
                );
                let mut opts = Map::new();
                opts.insert("qos".into(), json!(t.qos));
                if m5 {
                    opts.insert("no_local".into(), json!(t.no_local.unwrap_or(false)));
                    opts.insert(
                        "retain_as_published".into(),
                        json!(t.retain_as_published.unwrap_or(false)),
                    );
                    opts.insert(
                        "retain_handling".into(),
                        json!(match t.retain_handling {
                            None | Some(RetainHandling::SendRetain) => 0,
                            Some(RetainHandling::SendIfNewSub) => 1,
                            Some(RetainHandling::DontSend) => 2,
                        }),
                    );
                }
                body.insert("topic".into(), json!(t.topic));
                body.insert("opts".into(), Value::Object(opts));
                body
            })
            .collect(),
        HookArgs::Session(s) => {
            let mut body = head(&s.client_id, Value::Null, Value::Null);
            if hook == Hook::OnSessionExpired {
                body.insert("reason".into(), json!("session expired"));
            } else {
                body.insert("disconnected_at".into(), json!(at.accepted_ms));
                body.insert("reason".into(), Value::Null);
            }
            vec![body]
        }
        // `event` has no RMQTT event for the other shapes' hooks.
        HookArgs::Register(_) | HookArgs::Unsubscribe(_) | HookArgs::Auth(_) => {
            return Err(EventError::NoEvent {
                dialect: "rmqtt",
                hook,
            });
        }
    };
    Ok(bodies.into_iter().map(|b| to_vec(&Value::Object(b))).collect())
}

/// RMQTT's `username`: the name, or `"undefined"` when the client sent none.
fn username(name: Option<&str>) -> Value {
    json!(name.unwrap_or("undefined"))
}

/// The publisher's `from_*` fields; all but the client id and username are
/// unknown to hookd, and so is the publisher of an offline message.
fn publisher(body: &mut Map<String, Value>, publish: Option<&Publish>) {
    body.insert("from_node".into(), json!(NODE));
    body.insert("from_ipaddress".into(), Value::Null);
    body.insert(
        "from_clientid".into(),
        publish.map_or(Value::Null, |p| json!(p.subscriber.client_id)),
    );
    body.insert(
        "from_username".into(),
        publish.map_or(Value::Null, |p| username(p.username.as_deref())),
    );
    body.insert("from_type".into(), json!("custom"));
}

/// The message fields every message event has.
fn message(body: &mut Map<String, Value>, p: &Publish, options: &EventOptions) -> Result<(), EventError> {
    body.insert("dup".into(), json!(false));
    body.insert("retain".into(), json!(p.retain));
    body.insert("qos".into(), json!(p.qos));
    body.insert("topic".into(), json!(p.topic));
    body.insert("packet_id".into(), Value::Null);
    body.insert("payload".into(), json!(options.encoding.encode(&p.payload)?));
    Ok(())
}

/// RMQTT's `user_properties`: name → value, or → an array of the values
/// when a name repeats.
fn user_properties(properties: &Properties) -> Value {
    let mut map = Map::new();
    for property in &properties.user_property {
        match map.get_mut(&property.key) {
            None => {
                map.insert(property.key.clone(), json!(property.value));
            }
            Some(Value::Array(values)) => values.push(json!(property.value)),
            Some(first) => *first = json!([first.take(), property.value]),
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::from_slice;

    use super::*;
    use crate::{
        call::{Peer, Registered, Subscribe, SubscriberId, Subscription, UserProperty},
        payload::Encoding,
        topic::TopicFilter,
    };

    const AT: Moment = Moment {
        accepted_ms: 1_706_703_724_960,
        now_ms: 1_706_703_725_001,
    };
    const TIME: &str = "2024-01-31 12:22:05.001";

    fn client(id: &str) -> SubscriberId {
        SubscriberId {
            mountpoint: String::new(),
            client_id: id.into(),
        }
    }

    fn bodies(hook: Hook, args: HookArgs, options: &EventOptions) -> Vec<Value> {
        let call = HookCall::new(hook, args).expect("a valid call");
        encode(&call, options, AT)
            .expect("encodes")
            .iter()
            .map(|b| from_slice(b).expect("JSON"))
            .collect()
    }

    fn publish(payload: &'static [u8], username: Option<&str>) -> HookArgs {
        HookArgs::Publish(Publish {
            subscriber: client("pub-1"),
            username: username.map(Into::into),
            qos: 1,
            topic: "foo/bar".into(),
            payload: Bytes::from_static(payload),
            retain: true,
            properties: None,
        })
    }

    /// The `client_connected` table of the RMQTT web-hook document: node,
    /// ipaddress, clientid, username, keepalive, proto_ver, clean_session
    /// (v3) / clean_start (v5), connected_at, session_present, time.
    #[test]
    fn on_register_is_client_connected() {
        let registered = |properties| {
            HookArgs::Registered(Registered {
                peer: Peer {
                    addr: "127.0.0.1".into(),
                    port: 50120,
                },
                subscriber: client("c1"),
                username: None,
                properties,
            })
        };
        let expected = json!({
            "action": "client_connected", "node": 1, "ipaddress": "127.0.0.1:50120",
            "clientid": "c1", "username": "undefined", "keepalive": null, "proto_ver": 4,
            "clean_session": null, "connected_at": 1_706_703_724_960_u64,
            "session_present": null, "time": TIME
        });
        let options = EventOptions::default();
        assert_eq!(bodies(Hook::OnRegister, registered(None), &options), [expected]);
        let v5 = registered(Some(Properties {
            user_property: vec![
                UserProperty {
                    key: "k".into(),
                    value: "1".into(),
                },
                UserProperty {
                    key: "k".into(),
                    value: "2".into(),
                },
                UserProperty {
                    key: "z".into(),
                    value: "3".into(),
                },
            ],
            ..Default::default()
        }));
        let expected = json!({
            "action": "client_connected", "node": 1, "ipaddress": "127.0.0.1:50120",
            "clientid": "c1", "username": "undefined", "keepalive": null, "proto_ver": 5,
            "clean_start": null, "connected_at": 1_706_703_724_960_u64,
            "session_present": null, "time": TIME,
            "user_properties": {"k": ["1", "2"], "z": "3"}
        });
        assert_eq!(bodies(Hook::OnRegisterM5, v5, &options), [expected]);
    }

    /// The `message_publish` table: from_node, from_ipaddress, from_clientid,
    /// from_username, dup, retain, qos, topic, packet_id, payload (base64),
    /// ts, time; plus `from_type` of RMQTT's code.
    #[test]
    fn on_publish_is_message_publish_with_a_base64_payload() {
        let expected = json!({
            "action": "message_publish", "from_node": 1, "from_ipaddress": null,
            "from_clientid": "pub-1", "from_username": "alice", "from_type": "custom",
            "dup": false, "retain": true, "qos": 1, "topic": "foo/bar", "packet_id": null,
            "payload": "aGVsbG8=", "ts": 1_706_703_724_960_u64, "time": TIME
        });
        let options = EventOptions::default();
        assert_eq!(
            bodies(Hook::OnPublish, publish(b"hello", Some("alice")), &options),
            [expected]
        );
    }

    #[test]
    fn action_is_renamed_and_topics_filter_publishes() {
        let options = EventOptions {
            action: Some("message_publish_2".into()),
            topics: vec![TopicFilter::new("foo/#").expect("valid")],
            encoding: Encoding::Plain,
        };
        let sent = bodies(Hook::OnPublishM5, publish(b"hi", None), &options);
        assert_eq!(sent[0]["action"], "message_publish_2");
        assert_eq!(sent[0]["payload"], "hi");
        assert_eq!(sent[0]["from_username"], "undefined");
        let options = EventOptions {
            topics: vec![TopicFilter::new("a/b/c").expect("valid")],
            ..Default::default()
        };
        assert!(bodies(Hook::OnPublish, publish(b"hi", None), &options).is_empty());
    }

    /// One `session_subscribed` per topic (topic, opts.qos; v5 adds no_local,
    /// retain_as_published, retain_handling), each matched on its own.
    #[test]
    fn on_subscribe_is_one_session_subscribed_per_matching_topic() {
        let subscription = |topic: &str, qos| Subscription {
            topic: topic.into(),
            qos,
            ..Default::default()
        };
        let args = HookArgs::Subscribe(Subscribe {
            subscriber: client("sub-1"),
            username: Some("bob".into()),
            topics: vec![
                subscription("x/y/z", 1),
                subscription("other", 0),
                subscription("foo/+", 2),
                subscription("foo/refused", 128),
            ],
            properties: None,
        });
        let options = EventOptions {
            topics: ["x/y/z", "foo/#"]
                .map(|f| TopicFilter::new(f).expect("valid"))
                .to_vec(),
            ..Default::default()
        };
        let expected = |topic: &str, qos: u8| {
            json!({
                "action": "session_subscribed", "node": 1, "ipaddress": null,
                "clientid": "sub-1", "username": "bob", "topic": topic,
                "opts": {"qos": qos}, "time": TIME
            })
        };
        assert_eq!(
            bodies(Hook::OnSubscribe, args.clone(), &options),
            [expected("x/y/z", 1), expected("foo/+", 2)]
        );
        let v5 = bodies(Hook::OnSubscribeM5, args, &EventOptions::default());
        assert_eq!(v5.len(), 3);
        assert_eq!(
            v5[0]["opts"],
            json!({"qos": 1, "no_local": false, "retain_as_published": false, "retain_handling": 0})
        );
    }

    /// `client_disconnected` (disconnected_at, reason) and
    /// `session_terminated` (reason).
    #[test]
    fn session_ends_are_client_disconnected_and_session_terminated() {
        let options = EventOptions::default();
        let session = || HookArgs::Session(client("c1"));
        let expected = json!({
            "action": "client_disconnected", "node": 1, "ipaddress": null, "clientid": "c1",
            "username": null, "disconnected_at": 1_706_703_724_960_u64, "reason": null,
            "time": TIME
        });
        assert_eq!(
            bodies(Hook::OnClientOffline, session(), &options),
            std::slice::from_ref(&expected)
        );
        assert_eq!(bodies(Hook::OnClientGone, session(), &options), [expected]);
        let expected = json!({
            "action": "session_terminated", "node": 1, "ipaddress": null, "clientid": "c1",
            "username": null, "reason": "session expired", "time": TIME
        });
        assert_eq!(bodies(Hook::OnSessionExpired, session(), &options), [expected]);
    }

    /// `offline_message`, the receiver's event (as message_delivered: pts,
    /// ts, the receiver's fields and the publisher's from_*).
    #[test]
    fn on_offline_message_is_offline_message() {
        let args = HookArgs::Publish(Publish {
            subscriber: client("away"),
            qos: 2,
            topic: "t".into(),
            payload: Bytes::from_static(&[0, 255]),
            ..Default::default()
        });
        let expected = json!({
            "action": "offline_message", "node": 1, "ipaddress": null, "clientid": "away",
            "username": null, "from_node": 1, "from_ipaddress": null, "from_clientid": null,
            "from_username": null, "from_type": "custom", "dup": false, "retain": false,
            "qos": 2, "topic": "t", "packet_id": null, "payload": "AP8=",
            "pts": 1_706_703_724_960_u64, "ts": 1_706_703_724_960_u64, "time": TIME
        });
        assert_eq!(
            bodies(Hook::OnOfflineMessage, args, &EventOptions::default()),
            [expected]
        );
    }

    #[test]
    fn hooks_without_an_rmqtt_event_are_refused() {
        let call = HookCall::new(Hook::OnClientWakeup, HookArgs::Session(client("c"))).expect("valid");
        assert!(matches!(
            encode(&call, &EventOptions::default(), AT),
            Err(EventError::NoEvent { .. })
        ));
        assert_eq!(event(Hook::AuthOnRegister), None);
    }
}
