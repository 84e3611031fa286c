//! NanoMQ `webhook` event bodies: its three events, with its own key names.
//!
//! - `client_connack`: `proto_ver`, `keepalive`, `conn_ack` (`"success"` or
//!   `"fail"`, from the reason code), `username` (`"undefined"` if absent),
//!   `clientid`;
//! - `client_disconnected`: `reason` (`"normal"` or `"abnormal"`),
//!   `username`, `clientid`;
//! - `message_publish`: `ts` (ms), `topic`, `retain`, `qos`,
//!   `from_username` (`"undefined"` if absent), `from_client_id`, `payload`.
//!
//! Each has `action` = the event name. NanoMQ's base64 writes `null` for an
//! empty payload, and so does this codec.

use serde_json::{Value, json};

use super::{EventError, EventOptions, Moment, to_vec, wanted};
use crate::{
    call::{HookArgs, HookCall},
    hook::Hook,
    payload::Encoding,
};

/// The NanoMQ event for `hook`, if NanoMQ has one. `on_client_connack` is
/// NanoMQ's own event; a registered client is a successful CONNACK too
/// (`on_register` fires only for accepted clients), for brokers that do not
/// send `on_client_connack`.
pub fn event(hook: Hook) -> Option<&'static str> {
    Some(match hook {
        Hook::OnClientConnack | Hook::OnRegister | Hook::OnRegisterM5 => "client_connack",
        Hook::OnPublish | Hook::OnPublishM5 => "message_publish",
        Hook::OnClientOffline | Hook::OnClientGone => "client_disconnected",
        _ => return None,
    })
}

/// The body NanoMQ would send for `call`; none if its topic does not pass
/// the webhook's `topics`.
pub fn encode(call: &HookCall, options: &EventOptions, at: Moment) -> Result<Vec<Vec<u8>>, EventError> {
    let hook = call.hook();
    let body = match (event(hook), call.args()) {
        (Some(action), HookArgs::Registered(r)) => json!({
            "action": action,
            "proto_ver": if hook.is_m5() { 5 } else { 4 },
            "keepalive": null,
            "conn_ack": "success",
            "username": r.username.as_deref().unwrap_or("undefined"),
            "clientid": r.subscriber.client_id,
        }),
        (Some(action), HookArgs::Connect(c)) => json!({
            "action": action,
            "proto_ver": c.connection.proto_ver,
            "keepalive": c.connection.keepalive,
            "conn_ack": if c.connack.is_some_and(|a| a.reason_code == 0) { "success" } else { "fail" },
            "username": c.username.as_deref().unwrap_or("undefined"),
            "clientid": c.subscriber.client_id,
        }),
        (Some(action), HookArgs::Publish(p)) => {
            if !wanted(options, &p.topic) {
                return Ok(Vec::new());
            }
            let payload = match options.encoding {
                Encoding::Base64 if p.payload.is_empty() => Value::Null,
                encoding => json!(encoding.encode(&p.payload)?),
            };
            json!({
                "action": action,
                "ts": at.accepted_ms,
                "topic": p.topic,
                "retain": p.retain,
                "qos": p.qos,
                "from_username": p.username.as_deref().unwrap_or("undefined"),
                "from_client_id": p.subscriber.client_id,
                "payload": payload,
            })
        }
        (Some(action), HookArgs::Session(s)) => json!({
            "action": action,
            "reason": null,
            "username": null,
            "clientid": s.client_id,
        }),
        _ => {
            return Err(EventError::NoEvent {
                dialect: "nanomq",
                hook,
            });
        }
    };
    Ok(vec![to_vec(&body)])
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{
        call::{Connack, Connect, Connection, Peer, Publish, Registered},
        events::fixtures::{self, AT, client},
        topic::TopicFilter,
    };

    fn bodies(hook: Hook, args: HookArgs, options: &EventOptions) -> Vec<Value> {
        fixtures::bodies(encode, hook, args, options)
    }

    fn publish(payload: &'static [u8]) -> HookArgs {
        HookArgs::Publish(Publish {
            subscriber: client("nanomq-pub"),
            username: None,
            qos: 0,
            topic: "nmq/t".into(),
            payload: Bytes::from_static(payload),
            retain: false,
            properties: None,
        })
    }

    /// The NanoMQ document's publish body: ts (the tutorial's sample ts),
    /// topic, retain, qos, action, from_username, from_client_id, payload.
    #[test]
    fn on_publish_is_message_publish_in_each_encoding() {
        let expected = |payload: Value| {
            json!({
                "ts": 1_706_703_724_960_u64, "topic": "nmq/t", "retain": false, "qos": 0,
                "action": "message_publish", "from_username": "undefined",
                "from_client_id": "nanomq-pub", "payload": payload
            })
        };
        let with = |encoding| EventOptions {
            encoding,
            ..Default::default()
        };
        assert_eq!(
            bodies(Hook::OnPublish, publish(b"Hello"), &with(Encoding::Plain)),
            [expected(json!("Hello"))]
        );
        assert_eq!(
            bodies(Hook::OnPublish, publish(b"Hello"), &with(Encoding::Base62)),
            [expected(json!("5TP3P3v"))]
        );
        assert_eq!(
            bodies(Hook::OnPublishM5, publish(b"Hello"), &with(Encoding::Base64)),
            [expected(json!("SGVsbG8="))]
        );
        assert_eq!(
            bodies(Hook::OnPublish, publish(b""), &with(Encoding::Base64)),
            [expected(Value::Null)]
        );
        assert_eq!(
            bodies(Hook::OnPublish, publish(b""), &with(Encoding::Base62)),
            [expected(json!(""))]
        );
    }

    #[test]
    fn a_topic_rule_filters_publishes() {
        let options = EventOptions {
            topics: vec![TopicFilter::new("a/b/c").expect("valid")],
            ..Default::default()
        };
        assert!(bodies(Hook::OnPublish, publish(b"x"), &options).is_empty());
    }

    /// The connack body: proto_ver, keepalive, conn_ack, username, clientid,
    /// action.
    #[test]
    fn on_register_is_a_successful_client_connack() {
        let args = HookArgs::Registered(Registered {
            peer: Peer {
                addr: "10.0.0.1".into(),
                port: 1,
            },
            subscriber: client("c1"),
            username: Some("u".into()),
            properties: None,
        });
        let expected = json!({
            "proto_ver": 5, "keepalive": null, "conn_ack": "success", "username": "u",
            "clientid": "c1", "action": "client_connack"
        });
        assert_eq!(
            bodies(Hook::OnRegisterM5, args, &EventOptions::default()),
            [expected]
        );
    }

    /// NanoMQ's own `on_client_connack`: the CONNECT's proto_ver and
    /// keepalive, `conn_ack` "success" for reason code 0 and "fail" for any
    /// other.
    #[test]
    fn on_client_connack_is_client_connack_success_or_fail() {
        let connack = |reason_code| {
            HookArgs::Connect(Connect {
                peer: Peer {
                    addr: "10.0.0.1".into(),
                    port: 1,
                },
                subscriber: client("c1"),
                username: None,
                connection: Connection {
                    proto_ver: 4,
                    keepalive: 60,
                    clean: true,
                },
                connack: Some(Connack {
                    reason_code,
                    session_present: None,
                }),
            })
        };
        let expected = |conn_ack| {
            json!({
                "proto_ver": 4, "keepalive": 60, "conn_ack": conn_ack, "username": "undefined",
                "clientid": "c1", "action": "client_connack"
            })
        };
        let options = EventOptions::default();
        assert_eq!(
            bodies(Hook::OnClientConnack, connack(0), &options),
            [expected("success")]
        );
        assert_eq!(
            bodies(Hook::OnClientConnack, connack(5), &options),
            [expected("fail")]
        );
    }

    /// The disconnected body: reason, username, clientid, action.
    #[test]
    fn on_client_offline_is_client_disconnected() {
        let expected = json!({
            "reason": null, "username": null, "clientid": "c1", "action": "client_disconnected"
        });
        assert_eq!(
            bodies(
                Hook::OnClientOffline,
                HookArgs::Session(client("c1")),
                &EventOptions::default()
            ),
            [expected]
        );
    }

    #[test]
    fn hooks_without_a_nanomq_event_are_refused() {
        assert_eq!(event(Hook::OnSubscribe), None);
        let call = HookCall::new(Hook::OnSessionExpired, HookArgs::Session(client("c"))).expect("valid");
        assert!(encode(&call, &EventOptions::default(), AT).is_err());
    }
}
