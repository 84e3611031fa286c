//! Conversions between the `hookd.v1` protobuf types and the domain types,
//! one per direction, used by every front door and client.
//!
//! - calls: [`call_from_proto`] (hookd reads a broker's call) and
//!   [`call_to_proto`] (the sidecar forwards a call it decoded from JSON);
//! - verdicts: [`verdict_to_proto`] (hookd answers) and
//!   [`modifiers_from_proto`] / [`ErrorKind::from_proto`] (a client reads it).
//!
//! The per-hook conversions are generated from the hook table: each shape
//! has one conversion, and a row's options say which fields its message has
//! beyond the shape's core. Incoming values are checked: a missing hook or
//! peer, a port or QoS out of range or an unknown enum value is an
//! [`InvalidCall`] (or [`InvalidModifiers`]), never a panic or a truncation.

use std::time::Duration;

use crate::{
    call::{
        Auth, Connack, Connect, Connection, Delivery, HookArgs, HookCall, InvalidCall, Listener,
        MessageClient, PayloadFormat, Peer, Properties, Publish, Register, Registered, RetainHandling,
        Subscribe, SubscriberId, Subscription, Unsubscribe, UserProperty,
    },
    for_each_hook,
    hook::Hook,
    v1 as pb,
    verdict::{
        AuthModifiers, DeliverModifiers, ErrorKind, Modifiers, PublishModifiers, RegisterModifiers,
        SubscriptionGrant, Verdict,
    },
};

/// Modifiers in a protobuf verdict that no domain verdict can hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid modifiers from hookd: {0}")]
pub struct InvalidModifiers(pub String);

/// A protobuf hook message: converts to and from its hook's argument shape.
trait ArgsMessage: Sized {
    /// The shape's arguments; `hook` names the call in errors.
    fn into_args(self, hook: Hook) -> Result<HookArgs, InvalidCall>;
    /// The message for arguments of this message's shape, `None` for another shape.
    fn from_args(args: HookArgs) -> Option<Self>;
}

/// The value of an optional message field: the field when the row has it
/// (`yes`), else `None`.
macro_rules! field {
    (yes, $value:expr) => {
        $value
    };
    (no, $value:expr) => {
        None
    };
}

/// Sets an optional message field when the row has it (`yes`).
macro_rules! set_field {
    (yes, $slot:expr, $value:expr) => {
        $slot = $value
    };
    (no, $slot:expr, $value:expr) => {};
}

/// One `ArgsMessage` implementation per message, by shape.
macro_rules! args_message {
    ($variant:ident Register { clean: $clean:ident, properties: $props:ident }) => {
        impl ArgsMessage for pb::$variant {
            fn into_args(self, hook: Hook) -> Result<HookArgs, InvalidCall> {
                Ok(HookArgs::Register(Register {
                    peer: peer(hook, self.peer)?,
                    subscriber: subscriber(self.mountpoint, self.client_id),
                    username: self.username,
                    password: self.password.map(Into::into),
                    clean: self.$clean,
                    listener: self.listener.map(|l| listener(hook, l)).transpose()?,
                    properties: properties(hook, field!($props, self.properties))?,
                }))
            }

            #[allow(unused_mut, clippy::needless_update)]
            fn from_args(args: HookArgs) -> Option<Self> {
                let HookArgs::Register(a) = args else {
                    return None;
                };
                let mut message = pb::$variant {
                    peer: Some(peer_to_proto(a.peer)),
                    mountpoint: a.subscriber.mountpoint,
                    client_id: a.subscriber.client_id,
                    username: a.username,
                    password: a.password.map(|p| p.to_vec()),
                    $clean: a.clean,
                    listener: a.listener.map(listener_to_proto),
                    ..Default::default()
                };
                set_field!(
                    $props,
                    message.properties,
                    a.properties.map(properties_to_proto)
                );
                Some(message)
            }
        }
    };
    ($variant:ident Registered { properties: $props:ident }) => {
        impl ArgsMessage for pb::$variant {
            fn into_args(self, hook: Hook) -> Result<HookArgs, InvalidCall> {
                Ok(HookArgs::Registered(Registered {
                    peer: peer(hook, self.peer)?,
                    subscriber: subscriber(self.mountpoint, self.client_id),
                    username: self.username,
                    properties: properties(hook, field!($props, self.properties))?,
                }))
            }

            #[allow(unused_mut, clippy::needless_update)]
            fn from_args(args: HookArgs) -> Option<Self> {
                let HookArgs::Registered(a) = args else {
                    return None;
                };
                let mut message = pb::$variant {
                    peer: Some(peer_to_proto(a.peer)),
                    mountpoint: a.subscriber.mountpoint,
                    client_id: a.subscriber.client_id,
                    username: a.username,
                    ..Default::default()
                };
                set_field!(
                    $props,
                    message.properties,
                    a.properties.map(properties_to_proto)
                );
                Some(message)
            }
        }
    };
    ($variant:ident Publish { username: $user:ident, properties: $props:ident }) => {
        impl ArgsMessage for pb::$variant {
            fn into_args(self, hook: Hook) -> Result<HookArgs, InvalidCall> {
                Ok(HookArgs::Publish(Publish {
                    subscriber: subscriber(self.mountpoint, self.client_id),
                    username: field!($user, self.username),
                    qos: qos(hook, self.qos)?,
                    topic: self.topic,
                    payload: self.payload.into(),
                    retain: self.retain,
                    properties: properties(hook, field!($props, self.properties))?,
                }))
            }

            #[allow(unused_mut, clippy::needless_update)]
            fn from_args(args: HookArgs) -> Option<Self> {
                let HookArgs::Publish(a) = args else {
                    return None;
                };
                let mut message = pb::$variant {
                    mountpoint: a.subscriber.mountpoint,
                    client_id: a.subscriber.client_id,
                    qos: u32::from(a.qos),
                    topic: a.topic,
                    payload: a.payload.to_vec(),
                    retain: a.retain,
                    ..Default::default()
                };
                set_field!($user, message.username, a.username);
                set_field!(
                    $props,
                    message.properties,
                    a.properties.map(properties_to_proto)
                );
                Some(message)
            }
        }
    };
    ($variant:ident Subscribe { properties: $props:ident }) => {
        impl ArgsMessage for pb::$variant {
            fn into_args(self, hook: Hook) -> Result<HookArgs, InvalidCall> {
                Ok(HookArgs::Subscribe(Subscribe {
                    subscriber: subscriber(self.mountpoint, self.client_id),
                    username: self.username,
                    topics: self
                        .topics
                        .into_iter()
                        .map(|t| subscription(hook, t))
                        .collect::<Result<_, _>>()?,
                    properties: properties(hook, field!($props, self.properties))?,
                }))
            }

            #[allow(unused_mut, clippy::needless_update)]
            fn from_args(args: HookArgs) -> Option<Self> {
                let HookArgs::Subscribe(a) = args else {
                    return None;
                };
                let mut message = pb::$variant {
                    mountpoint: a.subscriber.mountpoint,
                    client_id: a.subscriber.client_id,
                    username: a.username,
                    topics: a.topics.into_iter().map(subscription_to_proto).collect(),
                    ..Default::default()
                };
                set_field!(
                    $props,
                    message.properties,
                    a.properties.map(properties_to_proto)
                );
                Some(message)
            }
        }
    };
    ($variant:ident Unsubscribe { properties: $props:ident }) => {
        impl ArgsMessage for pb::$variant {
            fn into_args(self, hook: Hook) -> Result<HookArgs, InvalidCall> {
                Ok(HookArgs::Unsubscribe(Unsubscribe {
                    subscriber: subscriber(self.mountpoint, self.client_id),
                    username: self.username,
                    topics: self.topics,
                    properties: properties(hook, field!($props, self.properties))?,
                }))
            }

            #[allow(unused_mut, clippy::needless_update)]
            fn from_args(args: HookArgs) -> Option<Self> {
                let HookArgs::Unsubscribe(a) = args else {
                    return None;
                };
                let mut message = pb::$variant {
                    mountpoint: a.subscriber.mountpoint,
                    client_id: a.subscriber.client_id,
                    username: a.username,
                    topics: a.topics,
                    ..Default::default()
                };
                set_field!(
                    $props,
                    message.properties,
                    a.properties.map(properties_to_proto)
                );
                Some(message)
            }
        }
    };
    ($variant:ident Auth {}) => {
        impl ArgsMessage for pb::$variant {
            fn into_args(self, hook: Hook) -> Result<HookArgs, InvalidCall> {
                Ok(HookArgs::Auth(Auth {
                    subscriber: subscriber(self.mountpoint, self.client_id),
                    username: self.username,
                    properties: properties(hook, self.properties)?.unwrap_or_default(),
                }))
            }

            fn from_args(args: HookArgs) -> Option<Self> {
                let HookArgs::Auth(a) = args else { return None };
                Some(pb::$variant {
                    mountpoint: a.subscriber.mountpoint,
                    client_id: a.subscriber.client_id,
                    username: a.username,
                    properties: Some(properties_to_proto(a.properties)),
                })
            }
        }
    };
    ($variant:ident Connect { connack: $connack:ident }) => {
        impl ArgsMessage for pb::$variant {
            fn into_args(self, hook: Hook) -> Result<HookArgs, InvalidCall> {
                let connection = self
                    .connection
                    .ok_or_else(|| invalid(hook, "connection is missing"))?;
                Ok(HookArgs::Connect(Connect {
                    peer: peer(hook, self.peer)?,
                    subscriber: subscriber(self.mountpoint, self.client_id),
                    username: self.username,
                    connection: Connection {
                        proto_ver: u8::try_from(connection.proto_ver)
                            .map_err(|_| invalid(hook, "proto_ver is out of range"))?,
                        keepalive: u16::try_from(connection.keepalive)
                            .map_err(|_| invalid(hook, "keepalive is out of range"))?,
                        clean: connection.clean,
                    },
                    connack: field!(
                        $connack,
                        Some(Connack {
                            reason_code: u8::try_from(self.reason_code)
                                .map_err(|_| invalid(hook, "reason_code is out of range"))?,
                            session_present: self.session_present,
                        })
                    ),
                }))
            }

            #[allow(unused_mut, unused_variables, clippy::needless_update)]
            fn from_args(args: HookArgs) -> Option<Self> {
                let HookArgs::Connect(a) = args else {
                    return None;
                };
                let mut message = pb::$variant {
                    peer: Some(peer_to_proto(a.peer)),
                    mountpoint: a.subscriber.mountpoint,
                    client_id: a.subscriber.client_id,
                    username: a.username,
                    connection: Some(pb::Connection {
                        proto_ver: u32::from(a.connection.proto_ver),
                        keepalive: u32::from(a.connection.keepalive),
                        clean: a.connection.clean,
                    }),
                    ..Default::default()
                };
                let connack = a.connack.unwrap_or_default();
                set_field!(
                    $connack,
                    message.reason_code,
                    u32::from(connack.reason_code)
                );
                set_field!($connack, message.session_present, connack.session_present);
                Some(message)
            }
        }
    };
    ($variant:ident Delivery { reason: $reason:ident }) => {
        impl ArgsMessage for pb::$variant {
            fn into_args(self, hook: Hook) -> Result<HookArgs, InvalidCall> {
                Ok(HookArgs::Delivery(Delivery {
                    receiver: self.receiver.map(|c| message_client(hook, c)).transpose()?,
                    publisher: message_client(
                        hook,
                        self.publisher
                            .ok_or_else(|| invalid(hook, "publisher is missing"))?,
                    )?,
                    qos: qos(hook, self.qos)?,
                    topic: self.topic,
                    payload: self.payload.into(),
                    retain: self.retain,
                    dup: self.dup,
                    packet_id: self
                        .packet_id
                        .map(u16::try_from)
                        .transpose()
                        .map_err(|_| invalid(hook, "packet_id is out of range"))?,
                    published_at_ms: self.published_at_ms,
                    reason: field!($reason, Some(self.reason)),
                }))
            }

            #[allow(unused_mut, clippy::needless_update)]
            fn from_args(args: HookArgs) -> Option<Self> {
                let HookArgs::Delivery(a) = args else {
                    return None;
                };
                let mut message = pb::$variant {
                    receiver: a.receiver.map(message_client_to_proto),
                    publisher: Some(message_client_to_proto(a.publisher)),
                    qos: u32::from(a.qos),
                    topic: a.topic,
                    payload: a.payload.to_vec(),
                    retain: a.retain,
                    dup: a.dup,
                    packet_id: a.packet_id.map(u32::from),
                    published_at_ms: a.published_at_ms,
                    ..Default::default()
                };
                set_field!($reason, message.reason, a.reason.unwrap_or_default());
                Some(message)
            }
        }
    };
    ($variant:ident Session {}) => {
        impl ArgsMessage for pb::$variant {
            fn into_args(self, _hook: Hook) -> Result<HookArgs, InvalidCall> {
                Ok(HookArgs::Session(subscriber(
                    self.mountpoint,
                    self.client_id,
                )))
            }

            fn from_args(args: HookArgs) -> Option<Self> {
                let HookArgs::Session(a) = args else {
                    return None;
                };
                Some(pb::$variant {
                    mountpoint: a.mountpoint,
                    client_id: a.client_id,
                })
            }
        }
    };
}

/// Swaps the fields the cache identity of a shape leaves out (the peer port
/// of a register, the payload of a publish) with `$port` / `$payload`; done
/// twice, it puts them back. Mirrors [`HookCall::cache_identity`].
macro_rules! identity_free {
    (Register, $message:ident, $port:ident, $payload:ident) => {
        if let Some(peer) = &mut $message.peer {
            std::mem::swap(&mut peer.port, &mut $port)
        }
    };
    (Publish, $message:ident, $port:ident, $payload:ident) => {
        std::mem::swap(&mut $message.payload, &mut $payload)
    };
    ($shape:ident, $message:ident, $port:ident, $payload:ident) => {{
        let _ = &$message;
    }};
}

macro_rules! call_conversions {
    ($( $(#[doc = $doc:literal])* $variant:ident $snake:ident : $shape:ident { $($option:tt)* }, $style:ident, $cache:literal; )*) => {
        $( args_message!($variant $shape { $($option)* }); )*

        /// Converts the hook and arguments of a protobuf call into a checked
        /// [`HookCall`].
        pub fn call_from_proto(args: Option<pb::hook_call::Hook>) -> Result<HookCall, InvalidCall> {
            let args = args.ok_or(InvalidCall::NoHook)?;
            let hook = Hook::of_proto_args(&args);
            let args = match args {
                $( pb::hook_call::Hook::$variant(message) => message.into_args(hook)?, )*
            };
            HookCall::new(hook, args)
        }

        /// Runs `f` on protobuf arguments as the verdict cache sees them (see
        /// [`HookCall::cache_identity`]): without the fields it ignores, which
        /// are taken out for the call and put back after it, so nothing is
        /// cloned. The broker-side cache keys on this.
        pub fn with_cache_identity<R>(args: &mut pb::hook_call::Hook, f: impl FnOnce(&pb::hook_call::Hook) -> R) -> R {
            let (mut port, mut payload) = (0, Vec::new());
            let mut swap = |args: &mut pb::hook_call::Hook| match args {
                $( pb::hook_call::Hook::$variant(message) => identity_free!($shape, message, port, payload), )*
            };
            swap(args);
            let result = f(args);
            swap(args);
            result
        }

        /// Converts a call into its protobuf hook and arguments.
        pub fn call_to_proto(call: HookCall) -> pb::hook_call::Hook {
            let (hook, args) = call.into_parts();
            let message = match hook {
                $( Hook::$variant => pb::$variant::from_args(args).map(pb::hook_call::Hook::$variant), )*
            };
            // `HookCall::new` admits only arguments of the hook's shape.
            message.unwrap_or_else(|| unreachable!("a HookCall's arguments fit its hook"))
        }
    };
}

for_each_hook!(call_conversions);

/// Converts a verdict for call `id` into its protobuf form.
pub fn verdict_to_proto(id: u64, verdict: Verdict) -> pb::Verdict {
    use pb::verdict::Outcome;
    let (outcome, cached, cache_ttl_secs) = match verdict {
        Verdict::Ok(allow) => {
            let (cached, ttl) = match allow.cache {
                Some(info) => (info.hit, Some(whole_seconds_up(info.ttl))),
                None => (false, None),
            };
            let ok = pb::Ok {
                modifiers: allow.modifiers.map(modifiers_to_proto),
            };
            (Outcome::Ok(ok), cached, ttl)
        }
        Verdict::Next => (Outcome::Next(pb::Next {}), false, None),
        Verdict::Ack => (Outcome::Ack(pb::Ack {}), false, None),
        Verdict::Error(e) => {
            let error = pb::Error {
                kind: e.kind.to_proto() as i32,
                reason: e.reason,
            };
            (Outcome::Error(error), false, None)
        }
    };
    pb::Verdict {
        id,
        outcome: Some(outcome),
        cached,
        cache_ttl_secs,
    }
}

/// The hooks as protobuf enum values, for `Welcome` and `HooksChanged`.
pub fn hooks_to_proto(hooks: &[Hook]) -> Vec<i32> {
    hooks.iter().map(|&h| h.to_proto() as i32).collect()
}

/// The hooks of protobuf enum values; values this build does not know are
/// left out.
pub fn hooks_from_proto(values: &[i32]) -> Vec<Hook> {
    values.iter().filter_map(|&v| Hook::from_proto(v)).collect()
}

/// Converts protobuf modifiers into domain ones, checking their ranges.
pub fn modifiers_from_proto(m: pb::ok::Modifiers) -> Result<Modifiers, InvalidModifiers> {
    use pb::ok::Modifiers as M;
    Ok(match m {
        M::Register(r) => Modifiers::Register(register_modifiers(r)?),
        M::Publish(p) => Modifiers::Publish(PublishModifiers {
            topic: p.topic,
            payload: p.payload.map(Into::into),
            qos: p.qos.map(modifier_qos).transpose()?,
            retain: p.retain,
            mountpoint: p.mountpoint,
            throttle: p.throttle,
            properties: p.properties.map(modifier_properties).transpose()?,
        }),
        M::Subscribe(s) => Modifiers::Subscribe(s.topics.into_iter().map(grant).collect::<Result<_, _>>()?),
        M::Unsubscribe(u) => Modifiers::Unsubscribe(u.topics),
        M::Deliver(d) => Modifiers::Deliver(DeliverModifiers {
            topic: d.topic,
            payload: d.payload.map(Into::into),
            properties: d.properties.map(modifier_properties).transpose()?,
        }),
        M::Auth(a) => Modifiers::Auth(AuthModifiers {
            authentication_method: a.authentication_method,
            authentication_data: a.authentication_data.map(Into::into),
            reason_code: a.reason_code,
        }),
    })
}

impl ErrorKind {
    /// The protobuf enum value of this kind.
    pub const fn to_proto(self) -> pb::ErrorKind {
        match self {
            ErrorKind::Denied => pb::ErrorKind::Denied,
            ErrorKind::Unavailable => pb::ErrorKind::Unavailable,
            ErrorKind::Timeout => pb::ErrorKind::Timeout,
            ErrorKind::InvalidResponse => pb::ErrorKind::InvalidResponse,
            ErrorKind::InvalidCall => pb::ErrorKind::InvalidCall,
            ErrorKind::Overloaded => pb::ErrorKind::Overloaded,
        }
    }

    /// The kind of a protobuf enum value. An unknown kind (from a newer
    /// hookd) or `UNSPECIFIED` is still a rejection: `InvalidResponse`.
    pub fn from_proto(kind: i32) -> Self {
        match pb::ErrorKind::try_from(kind) {
            Ok(pb::ErrorKind::Denied) => ErrorKind::Denied,
            Ok(pb::ErrorKind::Unavailable) => ErrorKind::Unavailable,
            Ok(pb::ErrorKind::Timeout) => ErrorKind::Timeout,
            Ok(pb::ErrorKind::InvalidCall) => ErrorKind::InvalidCall,
            Ok(pb::ErrorKind::Overloaded) => ErrorKind::Overloaded,
            Ok(pb::ErrorKind::InvalidResponse | pb::ErrorKind::Unspecified) | Err(_) => {
                ErrorKind::InvalidResponse
            }
        }
    }
}

fn whole_seconds_up(d: Duration) -> u32 {
    u32::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u32::MAX)
}

fn invalid(hook: Hook, message: &str) -> InvalidCall {
    InvalidCall::Argument {
        hook,
        message: message.to_owned(),
    }
}

fn subscriber(mountpoint: String, client_id: String) -> SubscriberId {
    SubscriberId {
        mountpoint,
        client_id,
    }
}

fn peer(hook: Hook, peer: Option<pb::Peer>) -> Result<Peer, InvalidCall> {
    let peer = peer.ok_or_else(|| invalid(hook, "peer is missing"))?;
    let port = u16::try_from(peer.port).map_err(|_| invalid(hook, "peer port is out of range"))?;
    Ok(Peer {
        addr: peer.addr,
        port,
    })
}

fn peer_to_proto(peer: Peer) -> pb::Peer {
    pb::Peer {
        addr: peer.addr,
        port: u32::from(peer.port),
    }
}

fn listener(hook: Hook, l: pb::Listener) -> Result<Listener, InvalidCall> {
    Ok(Listener {
        addr: l.addr,
        port: l
            .port
            .map(u16::try_from)
            .transpose()
            .map_err(|_| invalid(hook, "listener port is out of range"))?,
        kind: l.r#type,
        client_cert: l.client_cert.map(Into::into),
    })
}

fn message_client(hook: Hook, c: pb::MessageClient) -> Result<MessageClient, InvalidCall> {
    Ok(MessageClient {
        peer: c.peer.map(|p| peer(hook, Some(p))).transpose()?,
        subscriber: subscriber(c.mountpoint, c.client_id),
        username: c.username,
    })
}

fn message_client_to_proto(c: MessageClient) -> pb::MessageClient {
    pb::MessageClient {
        peer: c.peer.map(peer_to_proto),
        mountpoint: c.subscriber.mountpoint,
        client_id: c.subscriber.client_id,
        username: c.username,
    }
}

fn listener_to_proto(l: Listener) -> pb::Listener {
    pb::Listener {
        addr: l.addr,
        port: l.port.map(u32::from),
        r#type: l.kind,
        client_cert: l.client_cert.map(|c| c.to_vec()),
    }
}

fn qos(hook: Hook, qos: u32) -> Result<u8, InvalidCall> {
    u8::try_from(qos).map_err(|_| invalid(hook, "qos is out of range"))
}

fn subscription(hook: Hook, t: pb::Subscription) -> Result<Subscription, InvalidCall> {
    Ok(Subscription {
        qos: qos(hook, t.qos)?,
        topic: t.topic,
        no_local: t.no_local,
        retain_as_published: t.retain_as_published,
        retain_handling: t
            .retain_handling
            .map(|r| retain_handling(r).ok_or_else(|| invalid(hook, "unknown retain_handling")))
            .transpose()?,
    })
}

fn subscription_to_proto(s: Subscription) -> pb::Subscription {
    pb::Subscription {
        topic: s.topic,
        qos: u32::from(s.qos),
        no_local: s.no_local,
        retain_as_published: s.retain_as_published,
        retain_handling: s.retain_handling.map(retain_handling_to_proto),
    }
}

fn retain_handling(value: i32) -> Option<RetainHandling> {
    match pb::RetainHandling::try_from(value) {
        Ok(pb::RetainHandling::SendRetain) => Some(RetainHandling::SendRetain),
        Ok(pb::RetainHandling::SendIfNewSub) => Some(RetainHandling::SendIfNewSub),
        Ok(pb::RetainHandling::DontSend) => Some(RetainHandling::DontSend),
        Err(_) => None,
    }
}

fn retain_handling_to_proto(r: RetainHandling) -> i32 {
    let value = match r {
        RetainHandling::SendRetain => pb::RetainHandling::SendRetain,
        RetainHandling::SendIfNewSub => pb::RetainHandling::SendIfNewSub,
        RetainHandling::DontSend => pb::RetainHandling::DontSend,
    };
    value as i32
}

fn payload_format(value: i32) -> Result<Option<PayloadFormat>, ()> {
    match pb::PayloadFormat::try_from(value) {
        Ok(pb::PayloadFormat::Unspecified) => Ok(None),
        Ok(pb::PayloadFormat::Undefined) => Ok(Some(PayloadFormat::Undefined)),
        Ok(pb::PayloadFormat::Utf8) => Ok(Some(PayloadFormat::Utf8)),
        Err(_) => Err(()),
    }
}

fn properties(hook: Hook, props: Option<pb::Properties>) -> Result<Option<Properties>, InvalidCall> {
    props
        .map(|p| properties_from_proto(p).map_err(|()| invalid(hook, "unknown payload_format_indicator")))
        .transpose()
}

fn properties_from_proto(p: pb::Properties) -> Result<Properties, ()> {
    Ok(Properties {
        session_expiry_interval: p.session_expiry_interval,
        receive_max: p.receive_max,
        topic_alias_max: p.topic_alias_max,
        request_response_info: p.request_response_info,
        request_problem_info: p.request_problem_info,
        user_property: p
            .user_property
            .into_iter()
            .map(|u| UserProperty {
                key: u.key,
                value: u.value,
            })
            .collect(),
        correlation_data: p.correlation_data.map(Into::into),
        response_topic: p.response_topic,
        payload_format_indicator: payload_format(p.payload_format_indicator)?,
        content_type: p.content_type,
        subscription_id: p.subscription_id,
        message_expiry_interval: p.message_expiry_interval,
        authentication_method: p.authentication_method,
        authentication_data: p.authentication_data.map(Into::into),
        will_delay_interval: p.will_delay_interval,
        maximum_packet_size: p.maximum_packet_size,
    })
}

fn properties_to_proto(p: Properties) -> pb::Properties {
    pb::Properties {
        session_expiry_interval: p.session_expiry_interval,
        receive_max: p.receive_max,
        topic_alias_max: p.topic_alias_max,
        request_response_info: p.request_response_info,
        request_problem_info: p.request_problem_info,
        user_property: user_properties_to_proto(p.user_property),
        correlation_data: p.correlation_data.map(|b| b.to_vec()),
        response_topic: p.response_topic,
        payload_format_indicator: match p.payload_format_indicator {
            None => pb::PayloadFormat::Unspecified,
            Some(PayloadFormat::Undefined) => pb::PayloadFormat::Undefined,
            Some(PayloadFormat::Utf8) => pb::PayloadFormat::Utf8,
        } as i32,
        content_type: p.content_type,
        subscription_id: p.subscription_id,
        message_expiry_interval: p.message_expiry_interval,
        authentication_method: p.authentication_method,
        authentication_data: p.authentication_data.map(|b| b.to_vec()),
        will_delay_interval: p.will_delay_interval,
        maximum_packet_size: p.maximum_packet_size,
    }
}

fn user_properties_to_proto(props: Vec<UserProperty>) -> Vec<pb::UserProperty> {
    props
        .into_iter()
        .map(|u| pb::UserProperty {
            key: u.key,
            value: u.value,
        })
        .collect()
}

fn modifiers_to_proto(m: Modifiers) -> pb::ok::Modifiers {
    use pb::ok::Modifiers as M;
    match m {
        Modifiers::Register(r) => M::Register(register_modifiers_to_proto(r)),
        Modifiers::Publish(p) => M::Publish(pb::PublishModifiers {
            topic: p.topic,
            payload: p.payload.map(|b| b.to_vec()),
            qos: p.qos.map(u32::from),
            retain: p.retain,
            mountpoint: p.mountpoint,
            throttle: p.throttle,
            properties: p.properties.map(properties_to_proto),
        }),
        Modifiers::Subscribe(grants) => M::Subscribe(pb::SubscribeModifiers {
            topics: grants.into_iter().map(grant_to_proto).collect(),
        }),
        Modifiers::Unsubscribe(topics) => M::Unsubscribe(pb::UnsubscribeModifiers { topics }),
        Modifiers::Deliver(d) => M::Deliver(pb::DeliverModifiers {
            topic: d.topic,
            payload: d.payload.map(|b| b.to_vec()),
            properties: d.properties.map(properties_to_proto),
        }),
        Modifiers::Auth(a) => M::Auth(pb::AuthModifiers {
            authentication_method: a.authentication_method,
            authentication_data: a.authentication_data.map(|b| b.to_vec()),
            reason_code: a.reason_code,
        }),
    }
}

fn register_modifiers_to_proto(r: RegisterModifiers) -> pb::RegisterModifiers {
    let (mountpoint, client_id) = r.subscriber_id.map_or((None, None), |(m, c)| (Some(m), Some(c)));
    pb::RegisterModifiers {
        allow_register: r.allow_register,
        allow_publish: r.allow_publish,
        allow_subscribe: r.allow_subscribe,
        allow_unsubscribe: r.allow_unsubscribe,
        max_message_size: r.max_message_size,
        max_connection_lifetime: r.max_connection_lifetime,
        max_message_rate: r.max_message_rate,
        max_inflight_messages: r.max_inflight_messages,
        retry_interval: r.retry_interval,
        max_online_messages: r.max_online_messages,
        max_offline_messages: r.max_offline_messages,
        max_drain_time: r.max_drain_time,
        max_msgs_per_drain_step: r.max_msgs_per_drain_step,
        username: r.username,
        clean_session: r.clean_session,
        upgrade_qos: r.upgrade_qos,
        shared_subscription_policy: r.shared_subscription_policy,
        queue_type: r.queue_type,
        mountpoint,
        client_id,
        user_property: user_properties_to_proto(r.user_property),
        session_expiry_interval: r.session_expiry_interval,
    }
}

fn register_modifiers(r: pb::RegisterModifiers) -> Result<RegisterModifiers, InvalidModifiers> {
    let subscriber_id = match (r.mountpoint, r.client_id) {
        (Some(m), Some(c)) => Some((m, c)),
        (None, None) => None,
        _ => {
            return Err(InvalidModifiers(
                "half a subscriber id (mountpoint and client_id go together)".into(),
            ));
        }
    };
    Ok(RegisterModifiers {
        allow_register: r.allow_register,
        allow_publish: r.allow_publish,
        allow_subscribe: r.allow_subscribe,
        allow_unsubscribe: r.allow_unsubscribe,
        max_message_size: r.max_message_size,
        max_connection_lifetime: r.max_connection_lifetime,
        max_message_rate: r.max_message_rate,
        max_inflight_messages: r.max_inflight_messages,
        retry_interval: r.retry_interval,
        max_online_messages: r.max_online_messages,
        max_offline_messages: r.max_offline_messages,
        max_drain_time: r.max_drain_time,
        max_msgs_per_drain_step: r.max_msgs_per_drain_step,
        username: r.username,
        clean_session: r.clean_session,
        upgrade_qos: r.upgrade_qos,
        shared_subscription_policy: r.shared_subscription_policy,
        queue_type: r.queue_type,
        subscriber_id,
        user_property: r
            .user_property
            .into_iter()
            .map(|u| UserProperty {
                key: u.key,
                value: u.value,
            })
            .collect(),
        session_expiry_interval: r.session_expiry_interval,
    })
}

fn modifier_qos(qos: u32) -> Result<u8, InvalidModifiers> {
    u8::try_from(qos)
        .ok()
        .filter(|q| *q <= 2)
        .ok_or_else(|| InvalidModifiers(format!("qos {qos} is not 0, 1 or 2")))
}

fn modifier_properties(p: pb::Properties) -> Result<Properties, InvalidModifiers> {
    properties_from_proto(p).map_err(|()| InvalidModifiers("unknown payload_format_indicator".into()))
}

fn grant(g: pb::SubscriptionGrant) -> Result<SubscriptionGrant, InvalidModifiers> {
    Ok(SubscriptionGrant {
        qos: u8::try_from(g.qos)
            .map_err(|_| InvalidModifiers(format!("granted qos {} is out of range", g.qos)))?,
        topic: g.topic,
        no_local: g.no_local,
        retain_as_published: g.retain_as_published,
        retain_handling: g
            .retain_handling
            .map(|r| retain_handling(r).ok_or_else(|| InvalidModifiers("unknown retain_handling".into())))
            .transpose()?,
    })
}

fn grant_to_proto(g: SubscriptionGrant) -> pb::SubscriptionGrant {
    pb::SubscriptionGrant {
        topic: g.topic,
        qos: u32::from(g.qos),
        no_local: g.no_local,
        retain_as_published: g.retain_as_published,
        retain_handling: g.retain_handling.map(retain_handling_to_proto),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_without_hook_or_peer_is_invalid() {
        assert_eq!(call_from_proto(None), Err(InvalidCall::NoHook));
        let no_peer = pb::hook_call::Hook::AuthOnRegister(pb::AuthOnRegister {
            client_id: "c".into(),
            ..Default::default()
        });
        assert!(call_from_proto(Some(no_peer)).is_err());
    }

    #[test]
    fn out_of_range_values_are_invalid_not_truncated() {
        let publish = |qos| {
            pb::hook_call::Hook::AuthOnPublish(pb::AuthOnPublish {
                client_id: "c".into(),
                topic: "t".into(),
                qos,
                ..Default::default()
            })
        };
        assert!(call_from_proto(Some(publish(258))).is_err());
        assert!(call_from_proto(Some(publish(1))).is_ok());
        let bad_peer = pb::hook_call::Hook::OnRegister(pb::OnRegister {
            client_id: "c".into(),
            peer: Some(pb::Peer {
                addr: "::1".into(),
                port: 70_000,
            }),
            ..Default::default()
        });
        assert!(call_from_proto(Some(bad_peer)).is_err());
    }

    #[test]
    fn an_m5_call_without_properties_has_empty_ones() {
        let call = pb::hook_call::Hook::OnAuthM5(pb::OnAuthM5 {
            client_id: "c".into(),
            ..Default::default()
        });
        let back = call_to_proto(call_from_proto(Some(call)).expect("valid"));
        let pb::hook_call::Hook::OnAuthM5(auth) = back else {
            panic!("on_auth_m5")
        };
        assert_eq!(auth.properties, Some(pb::Properties::default()));
        let call = pb::hook_call::Hook::AuthOnPublishM5(pb::AuthOnPublishM5 {
            client_id: "c".into(),
            topic: "t".into(),
            ..Default::default()
        });
        let back = call_to_proto(call_from_proto(Some(call)).expect("valid"));
        let pb::hook_call::Hook::AuthOnPublishM5(publish) = back else {
            panic!("auth_on_publish_m5")
        };
        assert_eq!(publish.properties, Some(pb::Properties::default()));
    }

    #[test]
    fn the_proto_cache_identity_leaves_out_what_the_domain_one_does() {
        let register = |port, password: &[u8]| {
            pb::hook_call::Hook::AuthOnRegister(pb::AuthOnRegister {
                peer: Some(pb::Peer {
                    addr: "10.0.0.1".into(),
                    port,
                }),
                client_id: "c".into(),
                password: Some(password.to_vec()),
                ..Default::default()
            })
        };
        let publish = |payload: &[u8], qos| {
            pb::hook_call::Hook::AuthOnPublishM5(pb::AuthOnPublishM5 {
                client_id: "c".into(),
                topic: "t".into(),
                payload: payload.to_vec(),
                qos,
                ..Default::default()
            })
        };
        let pairs = [
            (register(1, b"pw"), register(2, b"pw"), true),
            (register(1, b"pw"), register(1, b"other"), false),
            (publish(b"one", 0), publish(b"two", 0), true),
            (publish(b"one", 0), publish(b"one", 1), false),
        ];
        for (mut a, mut b, same) in pairs {
            let (original_a, original_b) = (a.clone(), b.clone());
            let proto_same = with_cache_identity(&mut a, |x| with_cache_identity(&mut b, |y| x == y));
            assert_eq!(
                (a.clone(), b.clone()),
                (original_a, original_b),
                "the fields are put back"
            );
            let domain_a = call_from_proto(Some(a)).expect("valid");
            let domain_b = call_from_proto(Some(b)).expect("valid");
            assert_eq!(proto_same, same);
            assert_eq!(domain_a.cache_identity() == domain_b.cache_identity(), same);
        }
    }

    #[test]
    fn hookd_own_hooks_need_their_required_parts_in_range() {
        let connack = |connection, reason_code| {
            pb::hook_call::Hook::OnClientConnack(pb::OnClientConnack {
                peer: Some(pb::Peer::default()),
                client_id: "c".into(),
                connection,
                reason_code,
                ..Default::default()
            })
        };
        let v4 = Some(pb::Connection {
            proto_ver: 4,
            keepalive: 60,
            clean: true,
        });
        assert!(call_from_proto(Some(connack(v4, 0x87))).is_ok());
        assert!(call_from_proto(Some(connack(None, 0))).is_err(), "no connection");
        assert!(call_from_proto(Some(connack(v4, 256))).is_err(), "reason code");
        let bad_version = Some(pb::Connection {
            proto_ver: 6,
            ..Default::default()
        });
        assert!(call_from_proto(Some(connack(bad_version, 0))).is_err());
        let client = |id: &str| pb::MessageClient {
            client_id: id.into(),
            ..Default::default()
        };
        let acked = |receiver, packet_id| {
            pb::hook_call::Hook::OnMessageAcked(pb::OnMessageAcked {
                receiver,
                publisher: Some(client("p")),
                topic: "t".into(),
                packet_id,
                ..Default::default()
            })
        };
        assert!(call_from_proto(Some(acked(Some(client("r")), Some(1)))).is_ok());
        assert!(
            call_from_proto(Some(acked(None, Some(1)))).is_err(),
            "no receiver"
        );
        assert!(call_from_proto(Some(acked(Some(client("r")), Some(0)))).is_err());
        assert!(call_from_proto(Some(acked(Some(client("r")), Some(65_536)))).is_err());
        let dropped = |reason: &str| {
            pb::hook_call::Hook::OnMessageDropped(pb::OnMessageDropped {
                publisher: Some(client("p")),
                topic: "t".into(),
                reason: reason.into(),
                ..Default::default()
            })
        };
        let call = call_from_proto(Some(dropped("queue_full"))).expect("a drop without a receiver");
        assert_eq!(call.args().subscriber().client_id, "p", "about its publisher");
        assert!(
            call_from_proto(Some(dropped(""))).is_err(),
            "a drop needs a reason"
        );
    }

    #[test]
    fn half_a_subscriber_id_is_refused() {
        let m = pb::ok::Modifiers::Register(pb::RegisterModifiers {
            mountpoint: Some(String::new()),
            ..Default::default()
        });
        assert!(modifiers_from_proto(m).is_err());
    }

    #[test]
    fn unknown_error_kinds_are_still_rejections() {
        assert_eq!(ErrorKind::from_proto(99), ErrorKind::InvalidResponse);
        assert_eq!(ErrorKind::from_proto(0), ErrorKind::InvalidResponse);
        for kind in [ErrorKind::Denied, ErrorKind::Timeout, ErrorKind::Overloaded] {
            assert_eq!(ErrorKind::from_proto(kind.to_proto() as i32), kind);
        }
    }
}
