//! Representative arguments for each hook of the table ([`fixture`], from the
//! hook's shape, and a builder per hook for the tests that pin one hook), and
//! [`IntoCall`] to wrap any hook's argument message into a `HookCall`.
//!
//! Each builder returns the proto message with realistic values; tests change
//! what they care about with struct update syntax, e.g.
//! `AuthOnRegister { username: None, ..calls::auth_on_register("c1") }`.

use bytes::Bytes;
use hookd_proto::v1::{
    self as pb, AuthOnPublish, AuthOnPublishM5, AuthOnRegister, AuthOnRegisterM5, AuthOnSubscribe,
    AuthOnSubscribeM5, HookCall, Listener, OnAuthM5, OnClientGone, OnClientOffline, OnClientWakeup,
    OnDeliver, OnDeliverM5, OnOfflineMessage, OnPublish, OnPublishM5, OnRegister, OnRegisterM5,
    OnSessionExpired, OnSubscribe, OnSubscribeM5, OnUnsubscribe, OnUnsubscribeM5, PayloadFormat, Peer,
    Properties, RetainHandling, Subscription, UserProperty, hook_call::Hook,
};
use hookd_proto::{
    HookArgs, HookCall as DomainCall, Shape,
    call::{self as domain, SubscriberId},
    convert::call_to_proto,
};
use serde_json::{Value, json};

use super::b64;

/// The username every builder uses.
pub const USERNAME: &str = "alice";
/// The payload every publish-like builder uses.
pub const PAYLOAD: &[u8] = b"hello world";

/// A hook's argument message that can be sent as a call.
pub trait IntoCall {
    /// The `HookCall.hook` oneof for these arguments.
    fn into_hook(self) -> Hook;

    /// A call with this id, no deadline of its own, and these arguments.
    fn into_call(self, id: u64) -> HookCall
    where
        Self: Sized,
    {
        HookCall {
            id,
            timeout_ms: None,
            hook: Some(self.into_hook()),
        }
    }
}

/// `IntoCall` for every hook's message, one per row of the hook table.
macro_rules! into_call {
    ($( $(#[doc = $doc:literal])* $variant:ident $snake:ident : $shape:ident { $($option:tt)* }, $style:ident, $cache:literal; )*) => {
        $(impl IntoCall for pb::$variant {
            fn into_hook(self) -> Hook {
                Hook::$variant(self)
            }
        })*
    };
}

hookd_proto::for_each_hook!(into_call);

/// Representative arguments of any hook of the table for client
/// `client_id`, built from the hook's argument shape, so a new hook of an
/// existing shape needs no fixture of its own. The per-hook builders below
/// are for the tests that pin one hook's wire format.
pub fn fixture(hook: super::Hook, client_id: &str) -> Hook {
    let subscriber = SubscriberId {
        mountpoint: "tenant-a".into(),
        client_id: client_id.into(),
    };
    let peer = domain::Peer {
        addr: "10.0.0.7".into(),
        port: 51234,
    };
    let username = Some(USERNAME.to_owned());
    let args = match hook.shape() {
        Shape::Register => HookArgs::Register(domain::Register {
            peer,
            subscriber,
            username,
            password: Some(Bytes::from_static(b"secret")),
            clean: true,
            listener: None,
            properties: None,
        }),
        Shape::Registered => HookArgs::Registered(domain::Registered {
            peer,
            subscriber,
            username,
            properties: None,
        }),
        Shape::Publish => HookArgs::Publish(domain::Publish {
            subscriber,
            username,
            qos: 1,
            topic: "sensors/17/temp".into(),
            payload: Bytes::from_static(PAYLOAD),
            retain: false,
            properties: None,
        }),
        Shape::Subscribe => HookArgs::Subscribe(domain::Subscribe {
            subscriber,
            username,
            topics: vec![domain::Subscription {
                topic: "sensors/+/temp".into(),
                qos: 1,
                ..Default::default()
            }],
            properties: None,
        }),
        Shape::Unsubscribe => HookArgs::Unsubscribe(domain::Unsubscribe {
            subscriber,
            username,
            topics: vec!["sensors/+/temp".into()],
            properties: None,
        }),
        Shape::Auth => HookArgs::Auth(domain::Auth {
            subscriber,
            username,
            properties: domain::Properties {
                authentication_method: Some("SCRAM-SHA-1".into()),
                ..Default::default()
            },
        }),
        Shape::Session => HookArgs::Session(subscriber),
        Shape::Connect => HookArgs::Connect(domain::Connect {
            peer,
            subscriber,
            username,
            connection: domain::Connection {
                proto_ver: 4,
                keepalive: 60,
                clean: true,
            },
            connack: (hook == super::Hook::OnClientConnack).then_some(domain::Connack {
                reason_code: 0,
                session_present: Some(false),
            }),
        }),
        Shape::Delivery => HookArgs::Delivery(domain::Delivery {
            receiver: Some(domain::MessageClient {
                peer: Some(peer),
                subscriber,
                username,
            }),
            publisher: domain::MessageClient {
                peer: None,
                subscriber: SubscriberId {
                    mountpoint: "tenant-a".into(),
                    client_id: "publisher-1".into(),
                },
                username: Some("bob".into()),
            },
            qos: 1,
            topic: "sensors/17/temp".into(),
            payload: Bytes::from_static(PAYLOAD),
            retain: false,
            dup: false,
            packet_id: Some(7),
            published_at_ms: Some(1_706_703_724_960),
            reason: (hook == super::Hook::OnMessageDropped).then(|| "queue_full".to_owned()),
        }),
    };
    let call = DomainCall::new(hook, args).unwrap_or_else(|e| panic!("the fixture of {hook} is valid: {e}"));
    call_to_proto(call)
}

impl IntoCall for Hook {
    fn into_hook(self) -> Hook {
        self
    }
}

/// The MQTT client's address: 10.0.0.7:51234.
pub fn peer() -> Option<Peer> {
    Some(Peer {
        addr: "10.0.0.7".into(),
        port: 51234,
    })
}

/// A user property.
pub fn user_property(key: &str, value: &str) -> UserProperty {
    UserProperty {
        key: key.into(),
        value: value.into(),
    }
}

/// vmq's JSON for a user property: key and value base64-encoded.
pub fn user_property_json(key: &str, value: &str) -> Value {
    json!({"key": b64(key), "val": b64(value)})
}

/// Present, empty MQTT 5 properties.
pub fn no_properties() -> Option<Properties> {
    Some(Properties::default())
}

/// Every MQTT 5 property set once, each exercising its special encoding.
pub fn every_property() -> Properties {
    Properties {
        session_expiry_interval: Some(60),
        receive_max: Some(10),
        topic_alias_max: Some(5),
        request_response_info: Some(true),
        request_problem_info: Some(false),
        user_property: vec![user_property("k1", "v1"), user_property("k2", "v2")],
        correlation_data: Some(b"corr-42".to_vec()),
        response_topic: Some("response/topic".into()),
        payload_format_indicator: PayloadFormat::Utf8.into(),
        content_type: Some("text/plain".into()),
        subscription_id: vec![1, 7],
        message_expiry_interval: Some(3600),
        authentication_method: Some("SCRAM-SHA-256".into()),
        authentication_data: Some(vec![0, 1, 2, 255]),
        will_delay_interval: Some(30),
        maximum_packet_size: Some(65536),
    }
}

/// The `properties` object vmq_webhooks sends for [`every_property`].
pub fn every_property_json() -> Value {
    json!({
        "p_session_expiry_interval": 60,
        "p_receive_max": 10,
        "p_topic_alias_max": 5,
        "p_request_response_info": true,
        "p_request_problem_info": false,
        "p_user_property": [user_property_json("k1", "v1"), user_property_json("k2", "v2")],
        "p_correlation_data": "corr-42",
        "p_response_topic": "responsetopic",
        "p_payload_format_indicator": "utf8",
        "p_content_type": "text/plain",
        "p_subscription_id": [1, 7],
        "p_message_expiry_interval": 3600,
        "p_authentication_method": "SCRAM-SHA-256",
        "p_authentication_data": b64([0u8, 1, 2, 255]),
        "p_will_delay_interval": 30,
        "p_max_packet_size": 65536,
    })
}

/// The CONNECT-like properties the register builders use.
pub fn connect_properties() -> Properties {
    Properties {
        session_expiry_interval: Some(120),
        receive_max: Some(20),
        user_property: vec![user_property("region", "eu")],
        ..Properties::default()
    }
}

/// The `properties` object for [`connect_properties`].
pub fn connect_properties_json() -> Value {
    json!({
        "p_session_expiry_interval": 120,
        "p_receive_max": 20,
        "p_user_property": [user_property_json("region", "eu")],
    })
}

/// `auth_on_register`: alice/s3cret from 10.0.0.7:51234, clean session, no listener.
pub fn auth_on_register(client_id: &str) -> AuthOnRegister {
    AuthOnRegister {
        peer: peer(),
        mountpoint: String::new(),
        client_id: client_id.into(),
        username: Some(USERNAME.into()),
        password: Some(b"s3cret".to_vec()),
        clean_session: true,
        listener: None,
    }
}

/// The JSON hookd must POST for [`auth_on_register`].
pub fn auth_on_register_json(client_id: &str) -> Value {
    json!({
        "peer_addr": "10.0.0.7",
        "peer_port": 51234,
        "mountpoint": "",
        "client_id": client_id,
        "username": USERNAME,
        "password": "s3cret",
        "clean_session": true,
    })
}

/// A listener with every field set and a client certificate.
pub fn listener() -> Option<Listener> {
    Some(Listener {
        addr: Some("192.0.2.1".into()),
        port: Some(8883),
        r#type: Some("mqtts".into()),
        client_cert: Some(b"-----CERT-----".to_vec()),
    })
}

/// `auth_on_register_m5`: like [`auth_on_register`] with clean start and CONNECT properties.
pub fn auth_on_register_m5(client_id: &str) -> AuthOnRegisterM5 {
    AuthOnRegisterM5 {
        peer: peer(),
        mountpoint: "tenant-a".into(),
        client_id: client_id.into(),
        username: Some(USERNAME.into()),
        password: Some(b"s3cret".to_vec()),
        clean_start: false,
        properties: Some(connect_properties()),
        listener: None,
    }
}

/// `auth_on_publish`: alice publishes [`PAYLOAD`] to `a/b` at QoS 1.
pub fn auth_on_publish(client_id: &str) -> AuthOnPublish {
    AuthOnPublish {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        qos: 1,
        topic: "a/b".into(),
        payload: PAYLOAD.to_vec(),
        retain: false,
    }
}

/// The JSON hookd must POST for [`auth_on_publish`], with `payload` as given
/// (`None`: the key is absent).
pub fn auth_on_publish_json(client_id: &str, payload: Option<Value>) -> Value {
    let mut body = json!({
        "username": USERNAME,
        "mountpoint": "",
        "client_id": client_id,
        "qos": 1,
        "topic": "a/b",
        "retain": false,
    });
    if let (Some(payload), Some(map)) = (payload, body.as_object_mut()) {
        map.insert("payload".into(), payload);
    }
    body
}

/// `auth_on_publish_m5`: [`auth_on_publish`] with [`every_property`], retained.
pub fn auth_on_publish_m5(client_id: &str) -> AuthOnPublishM5 {
    AuthOnPublishM5 {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        qos: 2,
        topic: "a/b".into(),
        payload: PAYLOAD.to_vec(),
        retain: true,
        properties: Some(every_property()),
    }
}

/// A v3 subscription (no MQTT 5 options).
pub fn subscription(topic: &str, qos: u32) -> Subscription {
    Subscription {
        topic: topic.into(),
        qos,
        no_local: None,
        retain_as_published: None,
        retain_handling: None,
    }
}

/// A subscription with every MQTT 5 option set.
pub fn subscription_m5(topic: &str, qos: u32, retain_handling: RetainHandling) -> Subscription {
    Subscription {
        no_local: Some(true),
        retain_as_published: Some(false),
        retain_handling: Some(retain_handling.into()),
        ..subscription(topic, qos)
    }
}

/// `auth_on_subscribe`: alice subscribes to `a/b` (QoS 1) and `c/#` (QoS 0).
pub fn auth_on_subscribe(client_id: &str) -> AuthOnSubscribe {
    AuthOnSubscribe {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        topics: vec![subscription("a/b", 1), subscription("c/#", 0)],
    }
}

/// `auth_on_subscribe_m5`: one topic per retain handling plus a plain one.
pub fn auth_on_subscribe_m5(client_id: &str) -> AuthOnSubscribeM5 {
    AuthOnSubscribeM5 {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        topics: vec![
            subscription_m5("a/b", 1, RetainHandling::SendRetain),
            subscription_m5("c/+", 2, RetainHandling::SendIfNewSub),
            subscription_m5("d", 0, RetainHandling::DontSend),
            subscription("e/#", 0),
        ],
        properties: Some(Properties {
            subscription_id: vec![9],
            user_property: vec![user_property("k", "v")],
            ..Properties::default()
        }),
    }
}

/// `on_register`: alice was registered from 10.0.0.7:51234.
pub fn on_register(client_id: &str) -> OnRegister {
    OnRegister {
        peer: peer(),
        mountpoint: String::new(),
        client_id: client_id.into(),
        username: Some(USERNAME.into()),
    }
}

/// `on_register_m5`: [`on_register`] with CONNECT properties.
pub fn on_register_m5(client_id: &str) -> OnRegisterM5 {
    OnRegisterM5 {
        peer: peer(),
        mountpoint: String::new(),
        client_id: client_id.into(),
        username: Some(USERNAME.into()),
        properties: Some(connect_properties()),
    }
}

/// `on_publish`: alice published [`PAYLOAD`] to `a/b`, retained, QoS 0.
pub fn on_publish(client_id: &str) -> OnPublish {
    OnPublish {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        qos: 0,
        topic: "a/b".into(),
        payload: PAYLOAD.to_vec(),
        retain: true,
    }
}

/// `on_publish_m5`: [`on_publish`] with an undefined payload format.
pub fn on_publish_m5(client_id: &str) -> OnPublishM5 {
    OnPublishM5 {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        qos: 0,
        topic: "a/b".into(),
        payload: PAYLOAD.to_vec(),
        retain: true,
        properties: Some(Properties {
            payload_format_indicator: PayloadFormat::Undefined.into(),
            message_expiry_interval: Some(10),
            ..Properties::default()
        }),
    }
}

/// `on_subscribe`: alice subscribed to `a/b` (granted QoS 1) and `secret/#` (rejected, 128).
pub fn on_subscribe(client_id: &str) -> OnSubscribe {
    OnSubscribe {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        topics: vec![subscription("a/b", 1), subscription("secret/#", 128)],
    }
}

/// `on_subscribe_m5`: an optioned subscription and a rejected one.
pub fn on_subscribe_m5(client_id: &str) -> OnSubscribeM5 {
    OnSubscribeM5 {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        topics: vec![
            subscription_m5("a/b", 1, RetainHandling::DontSend),
            subscription("secret/#", 128),
        ],
        properties: no_properties(),
    }
}

/// `on_unsubscribe`: alice unsubscribes from `a/b` and `c/#`.
pub fn on_unsubscribe(client_id: &str) -> OnUnsubscribe {
    OnUnsubscribe {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        topics: vec!["a/b".into(), "c/#".into()],
    }
}

/// `on_unsubscribe_m5`: [`on_unsubscribe`] with a user property.
pub fn on_unsubscribe_m5(client_id: &str) -> OnUnsubscribeM5 {
    OnUnsubscribeM5 {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        topics: vec!["a/b".into(), "c/#".into()],
        properties: Some(Properties {
            user_property: vec![user_property("why", "done")],
            ..Properties::default()
        }),
    }
}

/// `on_deliver`: [`PAYLOAD`] on `a/b` is about to reach alice; no properties.
pub fn on_deliver(client_id: &str) -> OnDeliver {
    OnDeliver {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        qos: 1,
        topic: "a/b".into(),
        payload: PAYLOAD.to_vec(),
        retain: false,
        properties: None,
    }
}

/// `on_deliver_m5`: [`on_deliver`] with content type and response topic.
pub fn on_deliver_m5(client_id: &str) -> OnDeliverM5 {
    OnDeliverM5 {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        qos: 1,
        topic: "a/b".into(),
        payload: PAYLOAD.to_vec(),
        retain: false,
        properties: Some(Properties {
            content_type: Some("application/json".into()),
            response_topic: Some("reply/to/me".into()),
            ..Properties::default()
        }),
    }
}

/// `on_auth_m5`: an AUTH packet continuing SCRAM.
pub fn on_auth_m5(client_id: &str) -> OnAuthM5 {
    OnAuthM5 {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        properties: Some(Properties {
            authentication_method: Some("SCRAM-SHA-256".into()),
            authentication_data: Some(b"client-first".to_vec()),
            ..Properties::default()
        }),
    }
}

/// `on_offline_message`: [`PAYLOAD`] on `a/b` queued for offline `client_id`.
pub fn on_offline_message(client_id: &str) -> OnOfflineMessage {
    OnOfflineMessage {
        mountpoint: String::new(),
        client_id: client_id.into(),
        qos: 1,
        topic: "a/b".into(),
        payload: PAYLOAD.to_vec(),
        retain: false,
    }
}

/// `on_client_wakeup` for `client_id` on mountpoint `tenant-a`.
pub fn on_client_wakeup(client_id: &str) -> OnClientWakeup {
    OnClientWakeup {
        mountpoint: "tenant-a".into(),
        client_id: client_id.into(),
    }
}

/// `on_client_offline` for `client_id` on mountpoint `tenant-a`.
pub fn on_client_offline(client_id: &str) -> OnClientOffline {
    OnClientOffline {
        mountpoint: "tenant-a".into(),
        client_id: client_id.into(),
    }
}

/// `on_client_gone` for `client_id` on mountpoint `tenant-a`.
pub fn on_client_gone(client_id: &str) -> OnClientGone {
    OnClientGone {
        mountpoint: "tenant-a".into(),
        client_id: client_id.into(),
    }
}

/// `on_session_expired` for `client_id` on mountpoint `tenant-a`.
pub fn on_session_expired(client_id: &str) -> OnSessionExpired {
    OnSessionExpired {
        mountpoint: "tenant-a".into(),
        client_id: client_id.into(),
    }
}

/// What an MQTT 3.1.1 CONNECT with keepalive 60 and a clean session asked for.
pub fn connection() -> Option<pb::Connection> {
    Some(pb::Connection {
        proto_ver: 4,
        keepalive: 60,
        clean: true,
    })
}

/// `on_client_connect`: alice's CONNECT from 10.0.0.7:51234 ([`connection`]).
pub fn on_client_connect(client_id: &str) -> pb::OnClientConnect {
    pb::OnClientConnect {
        peer: peer(),
        mountpoint: String::new(),
        client_id: client_id.into(),
        username: Some(USERNAME.into()),
        connection: connection(),
    }
}

/// `on_client_connack`: [`on_client_connect`] answered with `reason_code`.
pub fn on_client_connack(client_id: &str, reason_code: u32) -> pb::OnClientConnack {
    pb::OnClientConnack {
        peer: peer(),
        mountpoint: String::new(),
        client_id: client_id.into(),
        username: Some(USERNAME.into()),
        connection: connection(),
        reason_code,
        session_present: Some(false),
    }
}

/// `on_session_created` for alice's `client_id` from 10.0.0.7:51234.
pub fn on_session_created(client_id: &str) -> pb::OnSessionCreated {
    pb::OnSessionCreated {
        peer: peer(),
        mountpoint: String::new(),
        client_id: client_id.into(),
        username: Some(USERNAME.into()),
    }
}

/// The publisher of the message events: `pub-1` (user bob) from 10.0.0.8:40000.
pub fn publisher() -> Option<pb::MessageClient> {
    Some(pb::MessageClient {
        peer: Some(Peer {
            addr: "10.0.0.8".into(),
            port: 40000,
        }),
        mountpoint: String::new(),
        client_id: "pub-1".into(),
        username: Some("bob".into()),
    })
}

/// `on_message_acked`: alice (`client_id`) acked packet 7, [`PAYLOAD`] on
/// `a/b` at QoS 1 from [`publisher`], published at 1706703724000 ms.
pub fn on_message_acked(client_id: &str) -> pb::OnMessageAcked {
    pb::OnMessageAcked {
        receiver: Some(pb::MessageClient {
            peer: peer(),
            mountpoint: String::new(),
            client_id: client_id.into(),
            username: Some(USERNAME.into()),
        }),
        publisher: publisher(),
        qos: 1,
        topic: "a/b".into(),
        payload: PAYLOAD.to_vec(),
        retain: false,
        dup: false,
        packet_id: Some(7),
        published_at_ms: Some(1_706_703_724_000),
    }
}

/// `on_message_dropped`: [`publisher`]'s QoS 0 [`PAYLOAD`] on `a/b` had no
/// subscriber.
pub fn on_message_dropped() -> pb::OnMessageDropped {
    pb::OnMessageDropped {
        receiver: None,
        publisher: publisher(),
        qos: 0,
        topic: "a/b".into(),
        payload: PAYLOAD.to_vec(),
        retain: false,
        dup: false,
        packet_id: None,
        published_at_ms: Some(1_706_703_724_000),
        reason: "no_subscribers".into(),
    }
}

/// `on_client_subscribe`: alice asks for `a/b` (QoS 1) and `c/#` (QoS 0), MQTT 3.
pub fn on_client_subscribe(client_id: &str) -> pb::OnClientSubscribe {
    pb::OnClientSubscribe {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        topics: vec![subscription("a/b", 1), subscription("c/#", 0)],
        properties: None,
    }
}

/// `on_client_unsubscribe`: alice unsubscribes from `a/b`, MQTT 3.
pub fn on_client_unsubscribe(client_id: &str) -> pb::OnClientUnsubscribe {
    pb::OnClientUnsubscribe {
        username: Some(USERNAME.into()),
        mountpoint: String::new(),
        client_id: client_id.into(),
        topics: vec!["a/b".into()],
        properties: None,
    }
}

/// The proto `Hook` enum value for a config hook, as Welcome lists it.
pub fn proto_hook(hook: super::Hook) -> pb::Hook {
    hook.to_proto()
}
