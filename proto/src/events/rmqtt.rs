//! RMQTT `rmqtt-web-hook` event bodies: what RMQTT POSTs (or appends to a
//! `file://` target) for each event, field for field.
//!
//! Every body has `action` (the event name, or the webhook's `action`),
//! `time` ([`super::format_time`]) and the client's `node`, `ipaddress`
//! (`"ip:port"`), `clientid` and `username` (`"undefined"` when the client
//! sent none); message events name the publisher in `from_*` fields. The
//! receiver's fields of a dropped message appear only when it had one.
//! Payloads are base64 in RMQTT; here they follow the webhook's encoding.

use serde_json::{Map, Value, json};

use super::{EventError, EventOptions, Moment, format_time, to_vec, wanted};
use crate::{
    call::{HookArgs, HookCall, Peer, Properties, RetainHandling},
    hook::Hook,
};

/// RMQTT's node id of a single node: hookd does not learn brokers' node ids.
const NODE: u64 = 1;

/// The RMQTT event for `hook`, if RMQTT has one.
pub fn event(hook: Hook) -> Option<&'static str> {
    Some(match hook {
        Hook::OnClientConnect => "client_connect",
        Hook::OnClientConnack => "client_connack",
        Hook::OnRegister | Hook::OnRegisterM5 => "client_connected",
        Hook::OnClientOffline | Hook::OnClientGone => "client_disconnected",
        Hook::OnSessionCreated => "session_created",
        Hook::OnSessionExpired => "session_terminated",
        Hook::OnClientSubscribe => "client_subscribe",
        Hook::OnSubscribe | Hook::OnSubscribeM5 => "session_subscribed",
        Hook::OnClientUnsubscribe => "client_unsubscribe",
        Hook::OnPublish | Hook::OnPublishM5 => "message_publish",
        Hook::OnMessageAcked => "message_acked",
        Hook::OnMessageDropped => "message_dropped",
        Hook::OnOfflineMessage => "offline_message",
        _ => return None,
    })
}

/// The bodies RMQTT would send for `call`: one, or one per (un)subscribed
/// topic that passes the webhook's `topics`; none if nothing passes.
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
    // The event of a message without a receiver: no client fields.
    let headless = || {
        let mut body = head("", Value::Null, Value::Null);
        for key in ["node", "ipaddress", "clientid", "username"] {
            body.remove(key);
        }
        body
    };
    let bodies = match call.args() {
        HookArgs::Registered(r) if hook == Hook::OnSessionCreated => {
            let mut body = head(
                &r.subscriber.client_id,
                ipaddress(&r.peer),
                username(r.username.as_deref()),
            );
            body.insert("created_at".into(), json!(at.accepted_ms));
            vec![body]
        }
        HookArgs::Registered(r) => {
            let mut body = head(
                &r.subscriber.client_id,
                ipaddress(&r.peer),
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
        HookArgs::Connect(c) => {
            let mut body = head(
                &c.subscriber.client_id,
                ipaddress(&c.peer),
                username(c.username.as_deref()),
            );
            let v5 = c.connection.proto_ver == 5;
            body.insert("keepalive".into(), json!(c.connection.keepalive));
            body.insert("proto_ver".into(), json!(c.connection.proto_ver));
            body.insert(
                (if v5 { "clean_start" } else { "clean_session" }).into(),
                json!(c.connection.clean),
            );
            if let Some(connack) = c.connack {
                body.insert("conn_ack".into(), json!(conn_ack(v5, connack.reason_code)));
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
                publisher(&mut body, Value::Null, Value::Null, Value::Null);
                body.insert("pts".into(), json!(at.accepted_ms));
                body
            } else {
                // The publisher's event: RMQTT's `message_publish` has
                // only `from_*` fields for the client.
                let mut body = headless();
                publisher(
                    &mut body,
                    json!(p.subscriber.client_id),
                    username(p.username.as_deref()),
                    Value::Null,
                );
                body
            };
            let fields = MessageFields {
                dup: false,
                retain: p.retain,
                qos: p.qos,
                topic: &p.topic,
                packet_id: None,
                payload: &p.payload,
            };
            fields.write(&mut body, options)?;
            body.insert("ts".into(), json!(at.accepted_ms));
            vec![body]
        }
        HookArgs::Delivery(d) => {
            if !wanted(options, &d.topic) {
                return Ok(Vec::new());
            }
            let mut body = match &d.receiver {
                Some(r) => head(
                    &r.subscriber.client_id,
                    r.peer.as_ref().map_or(Value::Null, ipaddress),
                    username(r.username.as_deref()),
                ),
                // RMQTT writes the receiver's fields only when there was one.
                None => headless(),
            };
            let from = &d.publisher;
            publisher(
                &mut body,
                json!(from.subscriber.client_id),
                username(from.username.as_deref()),
                from.peer.as_ref().map_or(Value::Null, ipaddress),
            );
            let fields = MessageFields {
                dup: d.dup,
                retain: d.retain,
                qos: d.qos,
                topic: &d.topic,
                packet_id: d.packet_id,
                payload: &d.payload,
            };
            fields.write(&mut body, options)?;
            if let Some(reason) = &d.reason {
                body.insert("reason".into(), json!(reason));
            }
            body.insert("pts".into(), json!(d.published_at_ms.unwrap_or(at.accepted_ms)));
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
                // hookd's own `on_client_subscribe` serves every version:
                // an MQTT 5 subscription is the one that carries options.
                let v5 = m5
                    || t.no_local.is_some()
                    || t.retain_as_published.is_some()
                    || t.retain_handling.is_some();
                if v5 {
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
        HookArgs::Unsubscribe(u) => u
            .topics
            .iter()
            .filter(|t| wanted(options, t))
            .map(|t| {
                let mut body = head(
                    &u.subscriber.client_id,
                    Value::Null,
                    username(u.username.as_deref()),
                );
                body.insert("topic".into(), json!(t));
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
        HookArgs::Register(_) | HookArgs::Auth(_) => {
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

/// RMQTT's `ipaddress`: the socket address as Rust formats it, `ip:port`
/// (`[ip]:port` for IPv6).
fn ipaddress(peer: &Peer) -> Value {
    if peer.addr.contains(':') {
        json!(format!("[{}]:{}", peer.addr, peer.port))
    } else {
        json!(format!("{}:{}", peer.addr, peer.port))
    }
}

/// The publisher's `from_*` fields: its client id, username and address
/// (`null` where hookd does not know them), RMQTT's single node, and
/// `from_type` `custom` (a client's message: hookd is told of no others).
fn publisher(body: &mut Map<String, Value>, clientid: Value, username: Value, ipaddress: Value) {
    body.insert("from_node".into(), json!(NODE));
    body.insert("from_ipaddress".into(), ipaddress);
    body.insert("from_clientid".into(), clientid);
    body.insert("from_username".into(), username);
    body.insert("from_type".into(), json!("custom"));
}

/// The message fields every message event has.
struct MessageFields<'a> {
    dup: bool,
    retain: bool,
    qos: u8,
    topic: &'a str,
    packet_id: Option<u16>,
    payload: &'a [u8],
}

impl MessageFields<'_> {
    fn write(&self, body: &mut Map<String, Value>, options: &EventOptions) -> Result<(), EventError> {
        body.insert("dup".into(), json!(self.dup));
        body.insert("retain".into(), json!(self.retain));
        body.insert("qos".into(), json!(self.qos));
        body.insert("topic".into(), json!(self.topic));
        body.insert("packet_id".into(), json!(self.packet_id));
        body.insert("payload".into(), json!(options.encoding.encode(self.payload)?));
        Ok(())
    }
}

/// RMQTT's `conn_ack`: "Connection Accepted", or why the client was
/// refused. MQTT 3 return codes get the texts of RMQTT's MQTT codec
/// (ntex-mqtt's `ConnectAckReason`); MQTT 5 reason codes their names in the
/// MQTT 5 specification (3.2.2.2).
fn conn_ack(v5: bool, code: u8) -> String {
    let text = match (v5, code) {
        (_, 0) => "Connection Accepted",
        (false, 1) => "Connection Refused, unacceptable protocol version",
        (false, 2) => "Connection Refused, identifier rejected",
        (false, 3) => "Connection Refused, Server unavailable",
        (false, 4) => "Connection Refused, bad user name or password",
        (false, 5) => "Connection Refused, not authorized",
        (true, 0x80) => "Unspecified error",
        (true, 0x81) => "Malformed Packet",
        (true, 0x82) => "Protocol Error",
        (true, 0x83) => "Implementation specific error",
        (true, 0x84) => "Unsupported Protocol Version",
        (true, 0x85) => "Client Identifier not valid",
        (true, 0x86) => "Bad User Name or Password",
        (true, 0x87) => "Not authorized",
        (true, 0x88) => "Server unavailable",
        (true, 0x89) => "Server busy",
        (true, 0x8A) => "Banned",
        (true, 0x8C) => "Bad authentication method",
        (true, 0x90) => "Topic Name invalid",
        (true, 0x95) => "Packet too large",
        (true, 0x97) => "Quota exceeded",
        (true, 0x99) => "Payload format invalid",
        (true, 0x9A) => "Retain not supported",
        (true, 0x9B) => "QoS not supported",
        (true, 0x9C) => "Use another server",
        (true, 0x9D) => "Server moved",
        (true, 0x9F) => "Connection rate exceeded",
        _ => return format!("Connection Refused, reason code {code}"),
    };
    text.to_owned()
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

    use super::*;
    use crate::{
        call::{
            Connack, Connect, Connection, Delivery, MessageClient, Publish, Registered, Subscribe,
            Subscription, Unsubscribe, UserProperty,
        },
        events::fixtures::{self, AT, client},
        payload::Encoding,
        topic::TopicFilter,
    };

    const TIME: &str = "2024-01-31 12:22:05.001";

    fn bodies(hook: Hook, args: HookArgs, options: &EventOptions) -> Vec<Value> {
        fixtures::bodies(encode, hook, args, options)
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

    fn connect(connack: Option<Connack>, proto_ver: u8) -> HookArgs {
        HookArgs::Connect(Connect {
            peer: Peer {
                addr: "127.0.0.1".into(),
                port: 50120,
            },
            subscriber: client("c1"),
            username: Some("alice".into()),
            connection: Connection {
                proto_ver,
                keepalive: 60,
                clean: true,
            },
            connack,
        })
    }

    /// The `client_connect` table: node, ipaddress, clientid, username,
    /// keepalive, proto_ver, clean_session (v3) / clean_start (v5), time.
    #[test]
    fn on_client_connect_is_client_connect() {
        let options = EventOptions::default();
        let expected = json!({
            "action": "client_connect", "node": 1, "ipaddress": "127.0.0.1:50120",
            "clientid": "c1", "username": "alice", "keepalive": 60, "proto_ver": 4,
            "clean_session": true, "time": TIME
        });
        assert_eq!(
            bodies(Hook::OnClientConnect, connect(None, 4), &options),
            [expected]
        );
        let v5 = &bodies(Hook::OnClientConnect, connect(None, 5), &options)[0];
        assert_eq!(
            (v5["clean_start"].clone(), v5.get("clean_session")),
            (json!(true), None)
        );
    }

    /// The `client_connack` table: client_connect's fields plus `conn_ack`,
    /// "Connection Accepted" or the reason for the refusal.
    #[test]
    fn on_client_connack_is_client_connack_with_its_reason() {
        let options = EventOptions::default();
        let accepted = Connack {
            reason_code: 0,
            session_present: Some(false),
        };
        let expected = json!({
            "action": "client_connack", "node": 1, "ipaddress": "127.0.0.1:50120",
            "clientid": "c1", "username": "alice", "keepalive": 60, "proto_ver": 4,
            "clean_session": true, "conn_ack": "Connection Accepted", "time": TIME
        });
        assert_eq!(
            bodies(Hook::OnClientConnack, connect(Some(accepted), 4), &options),
            [expected]
        );
        let refused = |code, proto_ver| {
            let connack = Connack {
                reason_code: code,
                session_present: None,
            };
            bodies(Hook::OnClientConnack, connect(Some(connack), proto_ver), &options)[0]["conn_ack"].clone()
        };
        assert_eq!(refused(5, 4), "Connection Refused, not authorized");
        assert_eq!(refused(0x87, 5), "Not authorized");
    }

    /// The `session_created` table: node, ipaddress, clientid, username,
    /// created_at, time.
    #[test]
    fn on_session_created_is_session_created() {
        let args = HookArgs::Registered(Registered {
            peer: Peer {
                addr: "::1".into(),
                port: 1883,
            },
            subscriber: client("c1"),
            username: None,
            properties: None,
        });
        let expected = json!({
            "action": "session_created", "node": 1, "ipaddress": "[::1]:1883", "clientid": "c1",
            "username": "undefined", "created_at": 1_706_703_724_960_u64, "time": TIME
        });
        assert_eq!(
            bodies(Hook::OnSessionCreated, args, &EventOptions::default()),
            [expected]
        );
    }

    fn delivery(receiver: Option<&str>, reason: Option<&str>) -> HookArgs {
        HookArgs::Delivery(Delivery {
            receiver: receiver.map(|id| MessageClient {
                peer: Some(Peer {
                    addr: "10.0.0.2".into(),
                    port: 40000,
                }),
                subscriber: client(id),
                username: None,
            }),
            publisher: MessageClient {
                peer: Some(Peer {
                    addr: "10.0.0.1".into(),
                    port: 50000,
                }),
                subscriber: client("pub-1"),
                username: Some("alice".into()),
            },
            qos: 1,
            topic: "foo/bar".into(),
            payload: Bytes::from_static(b"hello"),
            retain: false,
            dup: true,
            packet_id: Some(7),
            published_at_ms: Some(1_706_703_724_000),
            reason: reason.map(Into::into),
        })
    }

    /// The `message_acked` table: from_node, from_ipaddress, from_clientid,
    /// from_username, node, ipaddress, clientid, username, dup, retain, qos,
    /// topic, packet_id, payload, pts, ts, time; plus `from_type`.
    #[test]
    fn on_message_acked_is_message_acked() {
        let expected = json!({
            "action": "message_acked", "from_node": 1, "from_ipaddress": "10.0.0.1:50000",
            "from_clientid": "pub-1", "from_username": "alice", "from_type": "custom",
            "node": 1, "ipaddress": "10.0.0.2:40000", "clientid": "sub-1",
            "username": "undefined", "dup": true, "retain": false, "qos": 1,
            "topic": "foo/bar", "packet_id": 7, "payload": "aGVsbG8=",
            "pts": 1_706_703_724_000_u64, "ts": 1_706_703_724_960_u64, "time": TIME
        });
        assert_eq!(
            bodies(
                Hook::OnMessageAcked,
                delivery(Some("sub-1"), None),
                &EventOptions::default()
            ),
            [expected]
        );
    }

    /// The `message_dropped` table: message_delivered's fields plus
    /// `reason`; the receiver's fields only when there was a target.
    #[test]
    fn on_message_dropped_is_message_dropped_with_or_without_a_receiver() {
        let options = EventOptions::default();
        let expected = json!({
            "action": "message_dropped", "from_node": 1, "from_ipaddress": "10.0.0.1:50000",
            "from_clientid": "pub-1", "from_username": "alice", "from_type": "custom",
            "dup": true, "retain": false, "qos": 1, "topic": "foo/bar", "packet_id": 7,
            "payload": "aGVsbG8=", "reason": "no_subscribers",
            "pts": 1_706_703_724_000_u64, "ts": 1_706_703_724_960_u64, "time": TIME
        });
        assert_eq!(
            bodies(
                Hook::OnMessageDropped,
                delivery(None, Some("no_subscribers")),
                &options
            ),
            [expected]
        );
        let targeted = &bodies(
            Hook::OnMessageDropped,
            delivery(Some("sub-1"), Some("queue_full")),
            &options,
        )[0];
        assert_eq!(
            (targeted["clientid"].clone(), targeted["reason"].clone()),
            (json!("sub-1"), json!("queue_full"))
        );
    }

    /// `client_subscribe`: one body per requested topic, MQTT 5 options for
    /// subscriptions that carry them; `client_unsubscribe`: node, ipaddress,
    /// clientid, username, topic per filter; both matched per topic.
    #[test]
    fn client_subscribe_and_unsubscribe_are_one_body_per_topic() {
        let args = HookArgs::Subscribe(Subscribe {
            subscriber: client("sub-1"),
            username: None,
            topics: vec![
                Subscription {
                    topic: "foo/a".into(),
                    qos: 2,
                    ..Default::default()
                },
                Subscription {
                    topic: "foo/b".into(),
                    qos: 1,
                    no_local: Some(true),
                    retain_as_published: Some(false),
                    retain_handling: Some(RetainHandling::DontSend),
                },
                Subscription {
                    topic: "bar".into(),
                    qos: 0,
                    ..Default::default()
                },
            ],
            properties: None,
        });
        let options = EventOptions {
            topics: vec![TopicFilter::new("foo/#").expect("valid")],
            ..Default::default()
        };
        let subscribe = |topic: &str, opts: Value| {
            json!({
                "action": "client_subscribe", "node": 1, "ipaddress": null, "clientid": "sub-1",
                "username": "undefined", "topic": topic, "opts": opts, "time": TIME
            })
        };
        assert_eq!(
            bodies(Hook::OnClientSubscribe, args, &options),
            [
                subscribe("foo/a", json!({"qos": 2})),
                subscribe(
                    "foo/b",
                    json!({"qos": 1, "no_local": true, "retain_as_published": false, "retain_handling": 2})
                )
            ]
        );
        let args = HookArgs::Unsubscribe(Unsubscribe {
            subscriber: client("sub-1"),
            username: Some("bob".into()),
            topics: vec!["foo/a".into(), "bar".into()],
            properties: None,
        });
        let expected = json!({
            "action": "client_unsubscribe", "node": 1, "ipaddress": null, "clientid": "sub-1",
            "username": "bob", "topic": "foo/a", "time": TIME
        });
        assert_eq!(bodies(Hook::OnClientUnsubscribe, args, &options), [expected]);
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
