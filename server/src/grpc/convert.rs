//! Conversions between the `hookd.v1` protobuf types and hookd's domain
//! types, done once at the edge.
//!
//! Incoming calls are checked on the way in: a missing hook, a missing peer
//! where one is required, a port or QoS out of range or an unknown enum value
//! is an [`InvalidCall`], never a panic.

use std::time::Duration;

use hookd_proto::v1 as pb;

use crate::{
    hook::{
        Auth, Hook, HookArgs, HookCall, InvalidCall, Listener, PayloadFormat, Peer, Properties, Publish,
        Register, Registered, RetainHandling, Subscribe, SubscriberId, Subscription, Unsubscribe,
        UserProperty,
    },
    verdict::{
        AuthModifiers, DeliverModifiers, ErrorKind, Modifiers, PublishModifiers, RegisterModifiers,
        SubscriptionGrant, Verdict,
    },
};

/// Converts the hook and arguments of a `Call` into a checked [`HookCall`].
pub fn call_from_proto(hook: Option<pb::hook_call::Hook>) -> Result<HookCall, InvalidCall> {
    use pb::hook_call::Hook as H;
    let hook = hook.ok_or(InvalidCall::NoHook)?;
    let (kind, args) = match hook {
        H::AuthOnRegister(a) => (
            Hook::AuthOnRegister,
            register(
                Hook::AuthOnRegister,
                a.peer,
                a.mountpoint,
                a.client_id,
                a.username,
                a.password,
                a.clean_session,
                a.listener,
                None,
            )?,
        ),
        H::AuthOnRegisterM5(a) => (
            Hook::AuthOnRegisterM5,
            register(
                Hook::AuthOnRegisterM5,
                a.peer,
                a.mountpoint,
                a.client_id,
                a.username,
                a.password,
                a.clean_start,
                a.listener,
                a.properties,
            )?,
        ),
        H::AuthOnPublish(a) => {
            let h = Hook::AuthOnPublish;
            (
                h,
                publish(
                    h,
                    a.username,
                    a.mountpoint,
                    a.client_id,
                    a.qos,
                    a.topic,
                    a.payload,
                    a.retain,
                    None,
                )?,
            )
        }
        H::AuthOnPublishM5(a) => {
            let h = Hook::AuthOnPublishM5;
            (
                h,
                publish(
                    h,
                    a.username,
                    a.mountpoint,
                    a.client_id,
                    a.qos,
                    a.topic,
                    a.payload,
                    a.retain,
                    a.properties,
                )?,
            )
        }
        H::OnPublish(a) => {
            let h = Hook::OnPublish;
            (
                h,
                publish(
                    h,
                    a.username,
                    a.mountpoint,
                    a.client_id,
                    a.qos,
                    a.topic,
                    a.payload,
                    a.retain,
                    None,
                )?,
            )
        }
        H::OnPublishM5(a) => {
            let h = Hook::OnPublishM5;
            (
                h,
                publish(
                    h,
                    a.username,
                    a.mountpoint,
                    a.client_id,
                    a.qos,
                    a.topic,
                    a.payload,
                    a.retain,
                    a.properties,
                )?,
            )
        }
        H::OnDeliver(a) => {
            let h = Hook::OnDeliver;
            (
                h,
                publish(
                    h,
                    a.username,
                    a.mountpoint,
                    a.client_id,
                    a.qos,
                    a.topic,
                    a.payload,
                    a.retain,
                    a.properties,
                )?,
            )
        }
        H::OnDeliverM5(a) => {
            let h = Hook::OnDeliverM5;
            (
                h,
                publish(
                    h,
                    a.username,
                    a.mountpoint,
                    a.client_id,
                    a.qos,
                    a.topic,
                    a.payload,
                    a.retain,
                    a.properties,
                )?,
            )
        }
        H::OnOfflineMessage(a) => {
            let h = Hook::OnOfflineMessage;
            (
                h,
                publish(
                    h,
                    None,
                    a.mountpoint,
                    a.client_id,
                    a.qos,
                    a.topic,
                    a.payload,
                    a.retain,
                    None,
                )?,
            )
        }
        H::AuthOnSubscribe(a) => {
            let h = Hook::AuthOnSubscribe;
            (
                h,
                subscribe(h, a.username, a.mountpoint, a.client_id, a.topics, None)?,
            )
        }
        H::AuthOnSubscribeM5(a) => {
            let h = Hook::AuthOnSubscribeM5;
            (
                h,
                subscribe(h, a.username, a.mountpoint, a.client_id, a.topics, a.properties)?,
            )
        }
        H::OnSubscribe(a) => {
            let h = Hook::OnSubscribe;
            (
                h,
                subscribe(h, a.username, a.mountpoint, a.client_id, a.topics, None)?,
            )
        }
        H::OnSubscribeM5(a) => {
            let h = Hook::OnSubscribeM5;
            (
                h,
                subscribe(h, a.username, a.mountpoint, a.client_id, a.topics, a.properties)?,
            )
        }
        H::OnRegister(a) => {
            let h = Hook::OnRegister;
            (
                h,
                registered(h, a.peer, a.mountpoint, a.client_id, a.username, None)?,
            )
        }
        H::OnRegisterM5(a) => {
            let h = Hook::OnRegisterM5;
            (
                h,
                registered(h, a.peer, a.mountpoint, a.client_id, a.username, a.properties)?,
            )
        }
        H::OnUnsubscribe(a) => {
            let h = Hook::OnUnsubscribe;
            (
                h,
                unsubscribe(h, a.username, a.mountpoint, a.client_id, a.topics, None)?,
            )
        }
        H::OnUnsubscribeM5(a) => {
            let h = Hook::OnUnsubscribeM5;
            (
                h,
                unsubscribe(h, a.username, a.mountpoint, a.client_id, a.topics, a.properties)?,
            )
        }
        H::OnAuthM5(a) => {
            let h = Hook::OnAuthM5;
            let properties = properties(h, a.properties)?.unwrap_or_default();
            let args = HookArgs::Auth(Auth {
                subscriber: subscriber(a.mountpoint, a.client_id),
                username: a.username,
                properties,
            });
            (h, args)
        }
        H::OnClientWakeup(a) => (Hook::OnClientWakeup, session(a.mountpoint, a.client_id)),
        H::OnClientOffline(a) => (Hook::OnClientOffline, session(a.mountpoint, a.client_id)),
        H::OnClientGone(a) => (Hook::OnClientGone, session(a.mountpoint, a.client_id)),
        H::OnSessionExpired(a) => (Hook::OnSessionExpired, session(a.mountpoint, a.client_id)),
    };
    HookCall::new(kind, args)
}

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
                kind: error_kind_to_proto(e.kind) as i32,
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

/// The protobuf enum value of a hook.
pub fn hook_to_proto(hook: Hook) -> pb::Hook {
    match hook {
        Hook::AuthOnRegister => pb::Hook::AuthOnRegister,
        Hook::AuthOnRegisterM5 => pb::Hook::AuthOnRegisterM5,
        Hook::AuthOnPublish => pb::Hook::AuthOnPublish,
        Hook::AuthOnPublishM5 => pb::Hook::AuthOnPublishM5,
        Hook::AuthOnSubscribe => pb::Hook::AuthOnSubscribe,
        Hook::AuthOnSubscribeM5 => pb::Hook::AuthOnSubscribeM5,
        Hook::OnRegister => pb::Hook::OnRegister,
        Hook::OnRegisterM5 => pb::Hook::OnRegisterM5,
        Hook::OnPublish => pb::Hook::OnPublish,
        Hook::OnPublishM5 => pb::Hook::OnPublishM5,
        Hook::OnSubscribe => pb::Hook::OnSubscribe,
        Hook::OnSubscribeM5 => pb::Hook::OnSubscribeM5,
        Hook::OnUnsubscribe => pb::Hook::OnUnsubscribe,
        Hook::OnUnsubscribeM5 => pb::Hook::OnUnsubscribeM5,
        Hook::OnDeliver => pb::Hook::OnDeliver,
        Hook::OnDeliverM5 => pb::Hook::OnDeliverM5,
        Hook::OnAuthM5 => pb::Hook::OnAuthM5,
        Hook::OnOfflineMessage => pb::Hook::OnOfflineMessage,
        Hook::OnClientWakeup => pb::Hook::OnClientWakeup,
        Hook::OnClientOffline => pb::Hook::OnClientOffline,
        Hook::OnClientGone => pb::Hook::OnClientGone,
        Hook::OnSessionExpired => pb::Hook::OnSessionExpired,
    }
}

/// The hooks as protobuf enum values, for `Welcome` and `HooksChanged`.
pub fn hooks_to_proto(hooks: &[Hook]) -> Vec<i32> {
    hooks.iter().map(|&h| hook_to_proto(h) as i32).collect()
}

fn whole_seconds_up(d: Duration) -> u32 {
    u32::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u32::MAX)
}

fn error_kind_to_proto(kind: ErrorKind) -> pb::ErrorKind {
    match kind {
        ErrorKind::Denied => pb::ErrorKind::Denied,
        ErrorKind::Unavailable => pb::ErrorKind::Unavailable,
        ErrorKind::Timeout => pb::ErrorKind::Timeout,
        ErrorKind::InvalidResponse => pb::ErrorKind::InvalidResponse,
        ErrorKind::InvalidCall => pb::ErrorKind::InvalidCall,
        ErrorKind::Overloaded => pb::ErrorKind::Overloaded,
    }
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

fn session(mountpoint: String, client_id: String) -> HookArgs {
    HookArgs::Session(subscriber(mountpoint, client_id))
}

fn peer(hook: Hook, peer: Option<pb::Peer>) -> Result<Peer, InvalidCall> {
    let peer = peer.ok_or_else(|| invalid(hook, "peer is missing"))?;
    let port = u16::try_from(peer.port).map_err(|_| invalid(hook, "peer port is out of range"))?;
    Ok(Peer {
        addr: peer.addr,
        port,
    })
}

fn qos(hook: Hook, qos: u32) -> Result<u8, InvalidCall> {
    u8::try_from(qos).map_err(|_| invalid(hook, "qos is out of range"))
}

#[allow(clippy::too_many_arguments)]
fn register(
    hook: Hook,
    p: Option<pb::Peer>,
    mountpoint: String,
    client_id: String,
    username: Option<String>,
    password: Option<Vec<u8>>,
    clean: bool,
    listener: Option<pb::Listener>,
    props: Option<pb::Properties>,
) -> Result<HookArgs, InvalidCall> {
    let listener = match listener {
        Some(l) => Some(Listener {
            addr: l.addr,
            port: l
                .port
                .map(u16::try_from)
                .transpose()
                .map_err(|_| invalid(hook, "listener port is out of range"))?,
            kind: l.r#type,
            client_cert: l.client_cert.map(Into::into),
        }),
        None => None,
    };
    Ok(HookArgs::Register(Register {
        peer: peer(hook, p)?,
        subscriber: subscriber(mountpoint, client_id),
        username,
        password: password.map(Into::into),
        clean,
        listener,
        properties: properties(hook, props)?,
    }))
}

fn registered(
    hook: Hook,
    p: Option<pb::Peer>,
    mountpoint: String,
    client_id: String,
    username: Option<String>,
    props: Option<pb::Properties>,
) -> Result<HookArgs, InvalidCall> {
    Ok(HookArgs::Registered(Registered {
        peer: peer(hook, p)?,
        subscriber: subscriber(mountpoint, client_id),
        username,
        properties: properties(hook, props)?,
    }))
}

#[allow(clippy::too_many_arguments)]
fn publish(
    hook: Hook,
    username: Option<String>,
    mountpoint: String,
    client_id: String,
    q: u32,
    topic: String,
    payload: Vec<u8>,
    retain: bool,
    props: Option<pb::Properties>,
) -> Result<HookArgs, InvalidCall> {
    Ok(HookArgs::Publish(Publish {
        subscriber: subscriber(mountpoint, client_id),
        username,
        qos: qos(hook, q)?,
        topic,
        payload: payload.into(),
        retain,
        properties: properties(hook, props)?,
    }))
}

fn subscribe(
    hook: Hook,
    username: Option<String>,
    mountpoint: String,
    client_id: String,
    topics: Vec<pb::Subscription>,
    props: Option<pb::Properties>,
) -> Result<HookArgs, InvalidCall> {
    let topics = topics
        .into_iter()
        .map(|t| {
            Ok(Subscription {
                qos: qos(hook, t.qos)?,
                topic: t.topic,
                no_local: t.no_local,
                retain_as_published: t.retain_as_published,
                retain_handling: t.retain_handling.map(|r| retain_handling(hook, r)).transpose()?,
            })
        })
        .collect::<Result<_, InvalidCall>>()?;
    Ok(HookArgs::Subscribe(Subscribe {
        subscriber: subscriber(mountpoint, client_id),
        username,
        topics,
        properties: properties(hook, props)?,
    }))
}

fn unsubscribe(
    hook: Hook,
    username: Option<String>,
    mountpoint: String,
    client_id: String,
    topics: Vec<String>,
    props: Option<pb::Properties>,
) -> Result<HookArgs, InvalidCall> {
    Ok(HookArgs::Unsubscribe(Unsubscribe {
        subscriber: subscriber(mountpoint, client_id),
        username,
        topics,
        properties: properties(hook, props)?,
    }))
}

fn retain_handling(hook: Hook, value: i32) -> Result<RetainHandling, InvalidCall> {
    match pb::RetainHandling::try_from(value) {
        Ok(pb::RetainHandling::SendRetain) => Ok(RetainHandling::SendRetain),
        Ok(pb::RetainHandling::SendIfNewSub) => Ok(RetainHandling::SendIfNewSub),
        Ok(pb::RetainHandling::DontSend) => Ok(RetainHandling::DontSend),
        Err(_) => Err(invalid(hook, "unknown retain_handling")),
    }
}

fn properties(hook: Hook, props: Option<pb::Properties>) -> Result<Option<Properties>, InvalidCall> {
    let Some(p) = props else { return Ok(None) };
    let payload_format_indicator = match pb::PayloadFormat::try_from(p.payload_format_indicator) {
        Ok(pb::PayloadFormat::Unspecified) => None,
        Ok(pb::PayloadFormat::Undefined) => Some(PayloadFormat::Undefined),
        Ok(pb::PayloadFormat::Utf8) => Some(PayloadFormat::Utf8),
        Err(_) => return Err(invalid(hook, "unknown payload_format_indicator")),
    };
    Ok(Some(Properties {
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
        payload_format_indicator,
        content_type: p.content_type,
        subscription_id: p.subscription_id,
        message_expiry_interval: p.message_expiry_interval,
        authentication_method: p.authentication_method,
        authentication_data: p.authentication_data.map(Into::into),
        will_delay_interval: p.will_delay_interval,
        maximum_packet_size: p.maximum_packet_size,
    }))
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

fn retain_handling_to_proto(r: RetainHandling) -> i32 {
    let value = match r {
        RetainHandling::SendRetain => pb::RetainHandling::SendRetain,
        RetainHandling::SendIfNewSub => pb::RetainHandling::SendIfNewSub,
        RetainHandling::DontSend => pb::RetainHandling::DontSend,
    };
    value as i32
}

fn modifiers_to_proto(m: Modifiers) -> pb::ok::Modifiers {
    use pb::ok::Modifiers as M;
    match m {
        Modifiers::Register(r) => M::Register(register_modifiers_to_proto(r)),
        Modifiers::Publish(p) => M::Publish(publish_modifiers_to_proto(p)),
        Modifiers::Subscribe(grants) => M::Subscribe(pb::SubscribeModifiers {
            topics: grants.into_iter().map(grant_to_proto).collect(),
        }),
        Modifiers::Unsubscribe(topics) => M::Unsubscribe(pb::UnsubscribeModifiers { topics }),
        Modifiers::Deliver(d) => M::Deliver(deliver_modifiers_to_proto(d)),
        Modifiers::Auth(a) => M::Auth(auth_modifiers_to_proto(a)),
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

fn publish_modifiers_to_proto(p: PublishModifiers) -> pb::PublishModifiers {
    pb::PublishModifiers {
        topic: p.topic,
        payload: p.payload.map(|b| b.to_vec()),
        qos: p.qos.map(u32::from),
        retain: p.retain,
        mountpoint: p.mountpoint,
        throttle: p.throttle,
        properties: p.properties.map(properties_to_proto),
    }
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

fn deliver_modifiers_to_proto(d: DeliverModifiers) -> pb::DeliverModifiers {
    pb::DeliverModifiers {
        topic: d.topic,
        payload: d.payload.map(|b| b.to_vec()),
        properties: d.properties.map(properties_to_proto),
    }
}

fn auth_modifiers_to_proto(a: AuthModifiers) -> pb::AuthModifiers {
    pb::AuthModifiers {
        authentication_method: a.authentication_method,
        authentication_data: a.authentication_data.map(|b| b.to_vec()),
        reason_code: a.reason_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_hook_maps_to_a_distinct_proto_hook() {
        let values: std::collections::HashSet<i32> =
            Hook::ALL.iter().map(|&h| hook_to_proto(h) as i32).collect();
        assert_eq!(values.len(), 22);
        assert!(!values.contains(&(pb::Hook::Unspecified as i32)));
        for hook in Hook::ALL {
            assert_eq!(
                hook_to_proto(hook).as_str_name().to_ascii_lowercase(),
                format!("hook_{}", hook.name())
            );
        }
    }

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
}
