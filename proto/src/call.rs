//! The domain vocabulary of a hook call: which hook, and its typed arguments.
//!
//! These are plain Rust types, free of protobuf, JSON and HTTP: a front door
//! converts its wire format into a [`HookCall`] once ([`crate::convert`],
//! [`crate::vmq`]), and a back door turns a [`HookCall`] into whatever its
//! endpoints speak. Which shape of arguments a hook takes is a column of the
//! hook table ([`crate::hook`]); [`HookCall::new`] checks it.

use std::{
    fmt,
    hash::{Hash, Hasher},
};

use bytes::Bytes;

use crate::hook::{Hook, Shape};

/// A hook call: the hook and its arguments, whose shape matches the hook.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HookCall {
    hook: Hook,
    args: HookArgs,
}

/// A call compared and hashed as the verdict cache keys it: without its
/// payload and peer port. See [`HookCall::cache_identity`].
#[derive(Debug, Clone, Copy)]
pub struct CacheIdentity<'a>(&'a HookCall);

/// The arguments of a hook call, one variant per argument shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HookArgs {
    /// `auth_on_register`, `auth_on_register_m5`.
    Register(Register),
    /// `on_register`, `on_register_m5`, `on_session_created`.
    Registered(Registered),
    /// `auth_on_publish*`, `on_publish*`, `on_deliver*`, `on_offline_message`.
    Publish(Publish),
    /// `auth_on_subscribe*`, `on_subscribe*`, `on_client_subscribe`.
    Subscribe(Subscribe),
    /// `on_unsubscribe*`, `on_client_unsubscribe`.
    Unsubscribe(Unsubscribe),
    /// `on_auth_m5`.
    Auth(Auth),
    /// `on_client_wakeup`, `on_client_offline`, `on_client_gone`,
    /// `on_session_expired`.
    Session(SubscriberId),
    /// `on_client_connect`, `on_client_connack`.
    Connect(Connect),
    /// `on_message_acked`, `on_message_dropped`.
    Delivery(Delivery),
}

/// VerneMQ's subscriber id: a mountpoint (`""` by default) and a client id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SubscriberId {
    /// The mountpoint; empty for the default one.
    pub mountpoint: String,
    /// The MQTT client identifier.
    pub client_id: String,
}

/// The network peer of a client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The textual IP address.
    pub addr: String,
    /// The TCP port.
    pub port: u16,
}

/// The broker listener a client came in through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Listener {
    /// The listener's address as text (`"local"` for a unix socket).
    pub addr: Option<String>,
    /// The listener's port.
    pub port: Option<u16>,
    /// The listener type, e.g. `mqtt`.
    pub kind: Option<String>,
    /// The client's certificate, when it presented one.
    pub client_cert: Option<Bytes>,
}

/// Arguments of `auth_on_register` and `auth_on_register_m5`. Its `Debug`
/// output hides the password, so a logged call never leaks it.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Register {
    /// Where the client connects from.
    pub peer: Peer,
    /// Who the client is.
    pub subscriber: SubscriberId,
    /// The CONNECT username; `None` when absent (not the same as empty).
    pub username: Option<String>,
    /// The CONNECT password; `None` when absent. Never logged.
    pub password: Option<Bytes>,
    /// `clean_session` (v3) or `clean_start` (MQTT 5).
    pub clean: bool,
    /// The listener, when the broker reports it.
    pub listener: Option<Listener>,
    /// MQTT 5 CONNECT properties; `None` for v3.
    pub properties: Option<Properties>,
}

/// Arguments of `on_register` and `on_register_m5`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Registered {
    /// Where the client connected from.
    pub peer: Peer,
    /// Who the client is.
    pub subscriber: SubscriberId,
    /// The username, if any.
    pub username: Option<String>,
    /// MQTT 5 CONNECT properties; `None` for v3.
    pub properties: Option<Properties>,
}

/// What a CONNECT asked for: the facts RMQTT's and NanoMQ's connection
/// events report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Connection {
    /// The MQTT protocol level: 3 (3.1), 4 (3.1.1) or 5.
    pub proto_ver: u8,
    /// The keep-alive the client asked for, in seconds (0: none).
    pub keepalive: u16,
    /// `clean_session` (3.1, 3.1.1) or `clean_start` (5).
    pub clean: bool,
}

/// What a CONNACK tells the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Connack {
    /// The return code (3.1.1: 0..=5) or reason code (5); 0 accepts.
    pub reason_code: u8,
    /// The session-present flag; `None` when the broker does not tell.
    pub session_present: Option<bool>,
}

/// Arguments of `on_client_connect` and `on_client_connack`: no password,
/// since these are notifications stored and sent to any endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Connect {
    /// Where the client connects from.
    pub peer: Peer,
    /// Who the client is.
    pub subscriber: SubscriberId,
    /// The CONNECT username; `None` when absent (not the same as empty).
    pub username: Option<String>,
    /// What the CONNECT asked for.
    pub connection: Connection,
    /// The CONNACK's result: `Some` exactly for `on_client_connack`.
    pub connack: Option<Connack>,
}

/// A client named in a message event: the receiver or the publisher.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MessageClient {
    /// Where it is connected from, when the broker knows.
    pub peer: Option<Peer>,
    /// Who it is.
    pub subscriber: SubscriberId,
    /// Its username, if any.
    pub username: Option<String>,
}

/// Arguments of `on_message_acked` and `on_message_dropped`: a message on
/// its way from a publisher to a receiver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Delivery {
    /// The receiver; `None` only for a dropped message that had none.
    pub receiver: Option<MessageClient>,
    /// The publisher.
    pub publisher: MessageClient,
    /// QoS 0..=2.
    pub qos: u8,
    /// The topic name.
    pub topic: String,
    /// The message payload.
    pub payload: Bytes,
    /// The retain flag.
    pub retain: bool,
    /// The DUP flag.
    pub dup: bool,
    /// The packet id (1..=65535), when the message has one.
    pub packet_id: Option<u16>,
    /// When the broker received the PUBLISH, ms since the Unix epoch.
    pub published_at_ms: Option<u64>,
    /// Why the message was dropped: `Some` exactly for `on_message_dropped`.
    pub reason: Option<String>,
}

/// Arguments of the message hooks: publish, deliver, offline message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Publish {
    /// The publisher (or, for `on_deliver`, the receiver).
    pub subscriber: SubscriberId,
    /// The username, if any (not sent for `on_offline_message`).
    pub username: Option<String>,
    /// QoS 0..=2.
    pub qos: u8,
    /// The topic name.
    pub topic: String,
    /// The message payload.
    pub payload: Bytes,
    /// The retain flag.
    pub retain: bool,
    /// MQTT 5 PUBLISH properties; `None` for v3.
    pub properties: Option<Properties>,
}

/// Arguments of the subscribe hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Subscribe {
    /// The subscriber.
    pub subscriber: SubscriberId,
    /// The username, if any.
    pub username: Option<String>,
    /// The requested topic filters.
    pub topics: Vec<Subscription>,
    /// MQTT 5 SUBSCRIBE properties; `None` for v3.
    pub properties: Option<Properties>,
}

/// Arguments of the unsubscribe hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Unsubscribe {
    /// The subscriber.
    pub subscriber: SubscriberId,
    /// The username, if any.
    pub username: Option<String>,
    /// The topic filters to unsubscribe from.
    pub topics: Vec<String>,
    /// MQTT 5 UNSUBSCRIBE properties; `None` for v3.
    pub properties: Option<Properties>,
}

/// Arguments of `on_auth_m5`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Auth {
    /// The client.
    pub subscriber: SubscriberId,
    /// The username, if any.
    pub username: Option<String>,
    /// The AUTH packet's properties.
    pub properties: Properties,
}

/// One topic filter of a SUBSCRIBE with its options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Subscription {
    /// The topic filter.
    pub topic: String,
    /// Requested QoS 0..=2, or 128 for a topic already rejected.
    pub qos: u8,
    /// MQTT 5 no-local option.
    pub no_local: Option<bool>,
    /// MQTT 5 retain-as-published option (`rap` in vmq's JSON).
    pub retain_as_published: Option<bool>,
    /// MQTT 5 retain handling.
    pub retain_handling: Option<RetainHandling>,
}

/// MQTT 5 retain handling of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetainHandling {
    /// Send retained messages on subscribe.
    SendRetain,
    /// Send retained messages only if the subscription is new.
    SendIfNewSub,
    /// Do not send retained messages.
    DontSend,
}

/// The MQTT 5 payload format indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// Unspecified bytes.
    Undefined,
    /// UTF-8 text.
    Utf8,
}

/// An MQTT 5 user property.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserProperty {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// MQTT 5 properties; `None` means the packet did not carry that property.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub struct Properties {
    pub session_expiry_interval: Option<u32>,
    pub receive_max: Option<u32>,
    pub topic_alias_max: Option<u32>,
    pub request_response_info: Option<bool>,
    pub request_problem_info: Option<bool>,
    pub user_property: Vec<UserProperty>,
    pub correlation_data: Option<Bytes>,
    pub response_topic: Option<String>,
    pub payload_format_indicator: Option<PayloadFormat>,
    pub content_type: Option<String>,
    pub subscription_id: Vec<u32>,
    pub message_expiry_interval: Option<u32>,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Bytes>,
    pub will_delay_interval: Option<u32>,
    pub maximum_packet_size: Option<u32>,
}

/// Why a call was refused before any endpoint saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCall {
    /// The call named no hook.
    #[error("the call names no hook")]
    NoHook,
    /// An argument is missing or out of range.
    #[error("{hook}: {message}")]
    Argument {
        /// The hook the call was for.
        hook: Hook,
        /// What is wrong.
        message: String,
    },
}

impl RetainHandling {
    /// vmq_webhooks' JSON name of the option.
    pub fn name(self) -> &'static str {
        match self {
            RetainHandling::SendRetain => "send_retain",
            RetainHandling::SendIfNewSub => "send_if_new_sub",
            RetainHandling::DontSend => "dont_send",
        }
    }
}

impl PayloadFormat {
    /// vmq_webhooks' JSON name of the indicator.
    pub fn name(self) -> &'static str {
        match self {
            PayloadFormat::Undefined => "undefined",
            PayloadFormat::Utf8 => "utf8",
        }
    }
}

impl fmt::Debug for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Register")
            .field("peer", &self.peer)
            .field("subscriber", &self.subscriber)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("clean", &self.clean)
            .field("listener", &self.listener)
            .field("properties", &self.properties)
            .finish()
    }
}

impl HookCall {
    /// Builds a call after checking that `args` has the shape `hook` takes
    /// (the table's shape column) and that the arguments are in range: a
    /// client id is present, QoS is 0..=2, topics are not empty, a protocol
    /// version is 3..=5, a packet id is not 0, and only `on_client_connack`
    /// and `on_message_dropped` carry (and must carry) a CONNACK result and a
    /// drop reason. An MQTT 5
    /// hook without properties gets empty ones: absent means "none".
    pub fn new(hook: Hook, mut args: HookArgs) -> Result<Self, InvalidCall> {
        let bad = |message: &str| InvalidCall::Argument {
            hook,
            message: message.to_owned(),
        };
        if args.shape() != hook.shape() {
            return Err(bad("arguments do not fit this hook"));
        }
        if args.subscriber().client_id.is_empty() {
            return Err(bad("client_id is missing"));
        }
        match &args {
            HookArgs::Publish(p) => {
                if p.qos > 2 {
                    return Err(bad("qos must be 0, 1 or 2"));
                }
                if p.topic.is_empty() {
                    return Err(bad("topic is missing"));
                }
            }
            HookArgs::Subscribe(s) => {
                if s.topics.is_empty() {
                    return Err(bad("topics is empty"));
                }
                if s.topics.iter().any(|t| t.topic.is_empty()) {
                    return Err(bad("a topic filter is empty"));
                }
                let rejected_ok = matches!(hook, Hook::OnSubscribe | Hook::OnSubscribeM5);
                if s.topics
                    .iter()
                    .any(|t| t.qos > 2 && !(rejected_ok && t.qos == 128))
                {
                    return Err(bad("a topic's qos must be 0, 1 or 2"));
                }
            }
            HookArgs::Unsubscribe(u) if u.topics.is_empty() || u.topics.iter().any(String::is_empty) => {
                return Err(bad("topics is empty or holds an empty filter"));
            }
            HookArgs::Connect(c) => {
                if !(3..=5).contains(&c.connection.proto_ver) {
                    return Err(bad("proto_ver must be 3, 4 or 5"));
                }
                if c.connack.is_some() != (hook == Hook::OnClientConnack) {
                    return Err(bad("only on_client_connack has, and must have, a CONNACK result"));
                }
            }
            HookArgs::Delivery(d) => {
                let dropped = hook == Hook::OnMessageDropped;
                if d.qos > 2 {
                    return Err(bad("qos must be 0, 1 or 2"));
                }
                if d.topic.is_empty() {
                    return Err(bad("topic is missing"));
                }
                if d.packet_id == Some(0) {
                    return Err(bad("packet_id must be 1..65535"));
                }
                if d.publisher.subscriber.client_id.is_empty() {
                    return Err(bad("the publisher's client_id is missing"));
                }
                if d.receiver.is_none() && !dropped {
                    return Err(bad("the receiver is missing"));
                }
                if d.reason.as_ref().is_some_and(String::is_empty) || d.reason.is_some() != dropped {
                    return Err(bad("only on_message_dropped has, and must have, a reason"));
                }
            }
            _ => {}
        }
        if hook.is_m5()
            && let Some(properties) = args.properties_mut()
        {
            properties.get_or_insert_default();
        }
        Ok(Self { hook, args })
    }

    /// The hook this call is for.
    pub fn hook(&self) -> Hook {
        self.hook
    }

    /// The call's arguments.
    pub fn args(&self) -> &HookArgs {
        &self.args
    }

    /// The hook and the arguments, taken apart.
    pub fn into_parts(self) -> (Hook, HookArgs) {
        (self.hook, self.args)
    }

    /// The topics a webhook's `topics` rules are matched against: the
    /// topic of a published, acked or dropped message, or each
    /// (un)subscribed filter taken as text, as RMQTT matches them; `None`
    /// for hooks about no topic, whose rules do not apply.
    pub fn topics(&self) -> Option<Vec<&str>> {
        match &self.args {
            HookArgs::Publish(p) => Some(vec![p.topic.as_str()]),
            HookArgs::Delivery(d) => Some(vec![d.topic.as_str()]),
            HookArgs::Subscribe(s) => Some(s.topics.iter().map(|t| t.topic.as_str()).collect()),
            HookArgs::Unsubscribe(u) => Some(u.topics.iter().map(String::as_str).collect()),
            _ => None,
        }
    }

    /// The call narrowed to the topics `keep` accepts: a subscribe or
    /// unsubscribe keeps only those filters, other calls stay whole; `None`
    /// when no topic is kept. Hooks about no topic are always kept.
    pub fn with_topics(&self, keep: impl Fn(&str) -> bool) -> Option<HookCall> {
        let mut call = self.clone();
        match &mut call.args {
            HookArgs::Publish(p) => keep(&p.topic).then_some(()),
            HookArgs::Delivery(d) => keep(&d.topic).then_some(()),
            HookArgs::Subscribe(s) => {
                s.topics.retain(|t| keep(&t.topic));
                (!s.topics.is_empty()).then_some(())
            }
            HookArgs::Unsubscribe(u) => {
                u.topics.retain(|t| keep(t));
                (!u.topics.is_empty()).then_some(())
            }
            _ => Some(()),
        }
        .map(|()| call)
    }

    /// The call as the verdict cache sees it: everything but the payload and
    /// the peer port, as in vmq_webhooks (the password included). Borrowed,
    /// so a cache lookup clones nothing.
    pub fn cache_identity(&self) -> CacheIdentity<'_> {
        CacheIdentity(self)
    }

    /// A copy of the call without what [`HookCall::cache_identity`] ignores,
    /// to keep in a cache entry.
    pub fn cache_copy(&self) -> HookCall {
        let mut call = self.clone();
        match &mut call.args {
            HookArgs::Register(r) => r.peer.port = 0,
            HookArgs::Registered(r) => r.peer.port = 0,
            HookArgs::Publish(p) => p.payload = Bytes::new(),
            _ => {}
        }
        call
    }
}

impl Hash for CacheIdentity<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hook.hash(state);
        // Destructured in full, so a new argument cannot be left out by mistake.
        match &self.0.args {
            HookArgs::Register(Register {
                peer: Peer { addr, port: _ },
                subscriber,
                username,
                password,
                clean,
                listener,
                properties,
            }) => (addr, subscriber, username, password, clean, listener, properties).hash(state),
            HookArgs::Registered(Registered {
                peer: Peer { addr, port: _ },
                subscriber,
                username,
                properties,
            }) => (addr, subscriber, username, properties).hash(state),
            HookArgs::Publish(Publish {
                subscriber,
                username,
                qos,
                topic,
                payload: _,
                retain,
                properties,
            }) => (subscriber, username, qos, topic, retain, properties).hash(state),
            other => other.hash(state),
        }
    }
}

impl PartialEq for CacheIdentity<'_> {
    fn eq(&self, other: &Self) -> bool {
        if self.0.hook != other.0.hook {
            return false;
        }
        match (&self.0.args, &other.0.args) {
            (HookArgs::Register(a), HookArgs::Register(b)) => {
                let Register {
                    peer: Peer { addr, port: _ },
                    subscriber,
                    username,
                    password,
                    clean,
                    listener,
                    properties,
                } = a;
                (addr, subscriber, username, password, clean, listener, properties)
                    == (
                        &b.peer.addr,
                        &b.subscriber,
                        &b.username,
                        &b.password,
                        &b.clean,
                        &b.listener,
                        &b.properties,
                    )
            }
            (HookArgs::Registered(a), HookArgs::Registered(b)) => {
                let Registered {
                    peer: Peer { addr, port: _ },
                    subscriber,
                    username,
                    properties,
                } = a;
                (addr, subscriber, username, properties)
                    == (&b.peer.addr, &b.subscriber, &b.username, &b.properties)
            }
            (HookArgs::Publish(a), HookArgs::Publish(b)) => {
                let Publish {
                    subscriber,
                    username,
                    qos,
                    topic,
                    payload: _,
                    retain,
                    properties,
                } = a;
                (subscriber, username, qos, topic, retain, properties)
                    == (
                        &b.subscriber,
                        &b.username,
                        &b.qos,
                        &b.topic,
                        &b.retain,
                        &b.properties,
                    )
            }
            (a, b) => a == b,
        }
    }
}

impl Eq for CacheIdentity<'_> {}

impl HookArgs {
    /// The client the call is about.
    pub fn subscriber(&self) -> &SubscriberId {
        match self {
            HookArgs::Register(a) => &a.subscriber,
            HookArgs::Registered(a) => &a.subscriber,
            HookArgs::Publish(a) => &a.subscriber,
            HookArgs::Subscribe(a) => &a.subscriber,
            HookArgs::Unsubscribe(a) => &a.subscriber,
            HookArgs::Auth(a) => &a.subscriber,
            HookArgs::Session(a) => a,
            HookArgs::Connect(a) => &a.subscriber,
            // A dropped message without a receiver is about its publisher.
            HookArgs::Delivery(a) => &a.receiver.as_ref().unwrap_or(&a.publisher).subscriber,
        }
    }

    /// The shape of these arguments, to check against [`Hook::shape`].
    pub fn shape(&self) -> Shape {
        match self {
            HookArgs::Register(_) => Shape::Register,
            HookArgs::Registered(_) => Shape::Registered,
            HookArgs::Publish(_) => Shape::Publish,
            HookArgs::Subscribe(_) => Shape::Subscribe,
            HookArgs::Unsubscribe(_) => Shape::Unsubscribe,
            HookArgs::Auth(_) => Shape::Auth,
            HookArgs::Session(_) => Shape::Session,
            HookArgs::Connect(_) => Shape::Connect,
            HookArgs::Delivery(_) => Shape::Delivery,
        }
    }

    /// The MQTT 5 properties of the shapes whose properties may be absent.
    fn properties_mut(&mut self) -> Option<&mut Option<Properties>> {
        match self {
            HookArgs::Register(a) => Some(&mut a.properties),
            HookArgs::Registered(a) => Some(&mut a.properties),
            HookArgs::Publish(a) => Some(&mut a.properties),
            HookArgs::Subscribe(a) => Some(&mut a.properties),
            HookArgs::Unsubscribe(a) => Some(&mut a.properties),
            HookArgs::Auth(_) | HookArgs::Session(_) | HookArgs::Connect(_) | HookArgs::Delivery(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(qos: u8) -> HookArgs {
        HookArgs::Publish(Publish {
            subscriber: SubscriberId {
                mountpoint: String::new(),
                client_id: "c".into(),
            },
            qos,
            topic: "a/b".into(),
            ..Default::default()
        })
    }

    #[test]
    fn arguments_of_another_shape_are_refused() {
        let err = HookCall::new(Hook::AuthOnRegister, publish(0)).expect_err("wrong shape");
        assert!(err.to_string().contains("auth_on_register"));
    }

    #[test]
    fn qos_above_two_is_refused() {
        assert!(HookCall::new(Hook::AuthOnPublish, publish(3)).is_err());
        assert!(HookCall::new(Hook::AuthOnPublish, publish(2)).is_ok());
    }

    #[test]
    fn m5_hooks_without_properties_get_empty_ones() {
        let call = HookCall::new(Hook::AuthOnPublishM5, publish(1)).expect("valid");
        let HookArgs::Publish(p) = call.args() else {
            panic!("a publish")
        };
        assert_eq!(p.properties, Some(Properties::default()));
        let call = HookCall::new(Hook::AuthOnPublish, publish(1)).expect("valid");
        let HookArgs::Publish(p) = call.args() else {
            panic!("a publish")
        };
        assert_eq!(p.properties, None, "v3 hooks keep theirs absent");
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let register = Register {
            password: Some(Bytes::from_static(b"hunter2")),
            ..Default::default()
        };
        let text = format!("{register:?}");
        assert!(!text.contains("hunter2") && text.contains("redacted"), "{text}");
    }

    #[test]
    fn cache_identity_ignores_the_peer_port_but_not_the_password() {
        let register = |port, password: &'static [u8]| {
            let args = HookArgs::Register(Register {
                peer: Peer {
                    addr: "10.0.0.1".into(),
                    port,
                },
                subscriber: SubscriberId {
                    mountpoint: String::new(),
                    client_id: "c".into(),
                },
                password: Some(Bytes::from_static(password)),
                ..Default::default()
            });
            HookCall::new(Hook::AuthOnRegister, args).expect("valid")
        };
        assert_eq!(
            register(1, b"pw").cache_identity(),
            register(2, b"pw").cache_identity()
        );
        assert_ne!(
            register(1, b"pw").cache_identity(),
            register(1, b"other").cache_identity()
        );
        let state = std::hash::RandomState::new();
        let hash = |call: &HookCall| std::hash::BuildHasher::hash_one(&state, call.cache_identity());
        assert_eq!(hash(&register(1, b"pw")), hash(&register(2, b"pw")));
    }

    #[test]
    fn cache_identity_ignores_payload_only() {
        let mut a = Publish {
            subscriber: SubscriberId {
                mountpoint: String::new(),
                client_id: "c".into(),
            },
            topic: "t".into(),
            payload: Bytes::from_static(b"one"),
            ..Default::default()
        };
        let first = HookCall::new(Hook::AuthOnPublish, HookArgs::Publish(a.clone())).expect("valid");
        a.payload = Bytes::from_static(b"two");
        let second = HookCall::new(Hook::AuthOnPublish, HookArgs::Publish(a.clone())).expect("valid");
        assert_eq!(first.cache_identity(), second.cache_identity());
        assert_eq!(first.cache_copy().cache_identity(), first.cache_identity());
        a.qos = 1;
        let third = HookCall::new(Hook::AuthOnPublish, HookArgs::Publish(a)).expect("valid");
        assert_ne!(first.cache_identity(), third.cache_identity());
    }
}
