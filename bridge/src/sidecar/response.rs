//! Writes a [`Verdict`] as the answer a vmq_webhooks endpoint would give.
//!
//! This is the inverse of hookd's own `webhook::response` (which reads these
//! answers from endpoints), so VerneMQ applies exactly what hookd's endpoint
//! decided (`shared/reference/vmq-webhooks-protocol.md` §1.4–1.5):
//!
//! - `{"result":"ok"}`, or `{"result":"ok","modifiers":{…}}` with the
//!   modifiers under vmq's JSON names (`mountpoint` + `client_id` for a new
//!   subscriber id, `p_*` properties, base64 `payload` unless raw);
//! - the v3 `auth_on_subscribe` and `on_unsubscribe` put their rewritten
//!   `topics` at the top level, next to `result`;
//! - `{"result":"next"}`;
//! - `{"result":{"error":"<reason>"}}`: a webhook's own error value for a
//!   denial, `"<kind>: <reason>"` (e.g. `unavailable: …`) when hookd or a
//!   webhook behind it failed, or the failure policy answered;
//! - notification hooks get `{}` (vmq ignores the body but wants JSON); only
//!   an error there (a `deny` failure policy) becomes a 503, so that VerneMQ
//!   logs and counts it;
//! - an `ok` of the cacheable hooks that hookd marked cacheable carries its
//!   remaining TTL as `cache-control: max-age=<secs>`, so VerneMQ's own
//!   webhook cache keeps it too.

use axum::http::StatusCode;
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use serde_json::{Map, Value, json};

use crate::{
    hooks::{is_cacheable, is_notification},
    pb::{self, Hook, ok::Modifiers},
    verdict::{ErrorKind, Outcome, Verdict},
};

/// The HTTP answer to one vmq_webhooks call.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// 200, or 503 for a notification the failure policy rejected.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Value,
    /// `cache-control: max-age` in whole seconds, when VerneMQ may cache it.
    pub max_age: Option<u64>,
}

/// The answer for `verdict` on `hook`; `base64_payload` says whether a
/// `payload` modifier is written as base64 (vmq's default) or raw text.
pub fn answer(hook: Hook, verdict: &Verdict, base64_payload: bool) -> Answer {
    if is_notification(hook) {
        return match &verdict.outcome {
            Outcome::Error { kind, reason } => Answer {
                status: StatusCode::SERVICE_UNAVAILABLE,
                body: error_body(*kind, reason),
                max_age: None,
            },
            _ => plain(json!({})),
        };
    }
    match &verdict.outcome {
        Outcome::Ok(modifiers) => {
            let body = match modifiers
                .as_ref()
                .map(|m| modifiers_json(hook, m, base64_payload))
            {
                None | Some(Ok(Placement::Nothing)) => json!({"result": "ok"}),
                Some(Ok(Placement::Modifiers(m))) => json!({"result": "ok", "modifiers": m}),
                Some(Ok(Placement::TopLevelTopics(topics))) => json!({"result": "ok", "topics": topics}),
                Some(Err(message)) => {
                    // Never pass on something VerneMQ would misapply.
                    return plain(error_body(ErrorKind::InvalidResponse, &message));
                }
            };
            Answer {
                status: StatusCode::OK,
                body,
                max_age: if is_cacheable(hook) {
                    verdict
                        .cache_ttl
                        .map(|ttl| ttl.as_secs())
                        .filter(|&secs| secs > 0)
                } else {
                    None
                },
            }
        }
        // A chain hook is never acknowledged; should hookd do it, allow.
        Outcome::Ack => plain(json!({"result": "ok"})),
        Outcome::Next => plain(json!({"result": "next"})),
        Outcome::Error { kind, reason } => plain(error_body(*kind, reason)),
    }
}

fn plain(body: Value) -> Answer {
    Answer {
        status: StatusCode::OK,
        body,
        max_age: None,
    }
}

/// `{"result":{"error":…}}`: a denial carries the webhook's own reason, any
/// other failure says what kind it was.
fn error_body(kind: ErrorKind, reason: &str) -> Value {
    let reason = match kind {
        ErrorKind::Denied => reason.to_owned(),
        other => format!("{}: {reason}", other.label()),
    };
    json!({"result": {"error": reason}})
}

/// Where the modifiers go in the answer.
enum Placement {
    /// None set: a plain `ok`.
    Nothing,
    /// In `modifiers`.
    Modifiers(Map<String, Value>),
    /// In a top-level `topics` (v3 `auth_on_subscribe` and `on_unsubscribe`).
    TopLevelTopics(Value),
}

/// The modifiers in vmq's JSON, or why they cannot belong to `hook`.
fn modifiers_json(hook: Hook, modifiers: &Modifiers, base64_payload: bool) -> Result<Placement, String> {
    let m5 = hook.as_str_name().ends_with("_M5");
    let mut out = Map::new();
    match (hook, modifiers) {
        (Hook::AuthOnRegister | Hook::AuthOnRegisterM5, Modifiers::Register(r)) => register(&mut out, r, m5)?,
        (Hook::AuthOnPublish | Hook::AuthOnPublishM5, Modifiers::Publish(p)) => {
            put(&mut out, "topic", p.topic.clone());
            put(
                &mut out,
                "payload",
                p.payload.as_deref().map(|b| payload(b, base64_payload)),
            );
            put(&mut out, "qos", p.qos);
            put(&mut out, "retain", p.retain);
            put(&mut out, "mountpoint", p.mountpoint.clone());
            put(&mut out, "throttle", p.throttle);
            if m5 {
                put(&mut out, "properties", p.properties.as_ref().map(properties));
            }
        }
        (Hook::AuthOnSubscribe, Modifiers::Subscribe(s)) => {
            return Ok(Placement::TopLevelTopics(Value::Array(
                s.topics.iter().map(grant).collect(),
            )));
        }
        (Hook::AuthOnSubscribeM5, Modifiers::Subscribe(s)) => {
            out.insert(
                "topics".into(),
                Value::Array(s.topics.iter().map(grant).collect()),
            );
        }
        (Hook::OnUnsubscribe, Modifiers::Unsubscribe(u)) => {
            return Ok(Placement::TopLevelTopics(json!(u.topics)));
        }
        (Hook::OnUnsubscribeM5, Modifiers::Unsubscribe(u)) => {
            out.insert("topics".into(), json!(u.topics));
        }
        (Hook::OnDeliver | Hook::OnDeliverM5, Modifiers::Deliver(d)) => {
            put(&mut out, "topic", d.topic.clone());
            put(
                &mut out,
                "payload",
                d.payload.as_deref().map(|b| payload(b, base64_payload)),
            );
            if m5 {
                put(&mut out, "properties", d.properties.as_ref().map(properties));
            }
        }
        (Hook::OnAuthM5, Modifiers::Auth(a)) => {
            let mut p = Map::new();
            put(&mut p, "p_authentication_method", a.authentication_method.clone());
            put(
                &mut p,
                "p_authentication_data",
                a.authentication_data.as_deref().map(|d| BASE64.encode(d)),
            );
            if !p.is_empty() {
                out.insert("properties".into(), Value::Object(p));
            }
            put(&mut out, "reason_code", a.reason_code);
        }
        _ => {
            return Err(format!(
                "hookd sent modifiers of the wrong kind for {}",
                super::request::hook_name(hook)
            ));
        }
    }
    Ok(if out.is_empty() {
        Placement::Nothing
    } else {
        Placement::Modifiers(out)
    })
}

fn register(out: &mut Map<String, Value>, r: &pb::RegisterModifiers, m5: bool) -> Result<(), String> {
    put(out, "allow_register", r.allow_register);
    put(out, "allow_publish", r.allow_publish);
    put(out, "allow_subscribe", r.allow_subscribe);
    put(out, "allow_unsubscribe", r.allow_unsubscribe);
    put(out, "max_message_size", r.max_message_size);
    put(out, "max_connection_lifetime", r.max_connection_lifetime);
    put(out, "max_message_rate", r.max_message_rate);
    put(out, "max_inflight_messages", r.max_inflight_messages);
    put(out, "retry_interval", r.retry_interval);
    put(out, "max_online_messages", r.max_online_messages);
    put(out, "max_offline_messages", r.max_offline_messages);
    put(out, "max_drain_time", r.max_drain_time);
    put(out, "max_msgs_per_drain_step", r.max_msgs_per_drain_step);
    put(out, "username", r.username.clone());
    put(out, "clean_session", r.clean_session);
    put(out, "upgrade_qos", r.upgrade_qos);
    put(
        out,
        "shared_subscription_policy",
        r.shared_subscription_policy.clone(),
    );
    put(out, "queue_type", r.queue_type.clone());
    // vmq takes a new subscriber id only as both halves.
    match (&r.mountpoint, &r.client_id) {
        (Some(mountpoint), Some(client_id)) => {
            put(out, "mountpoint", Some(mountpoint.clone()));
            put(out, "client_id", Some(client_id.clone()));
        }
        (None, None) => {}
        _ => return Err("hookd sent half a subscriber id (mountpoint and client_id go together)".into()),
    }
    if m5 {
        let mut p = Map::new();
        if !r.user_property.is_empty() {
            p.insert("p_user_property".into(), user_properties(&r.user_property));
        }
        put(&mut p, "p_session_expiry_interval", r.session_expiry_interval);
        if !p.is_empty() {
            out.insert("properties".into(), Value::Object(p));
        }
    }
    Ok(())
}

fn grant(g: &pb::SubscriptionGrant) -> Value {
    let mut t = Map::new();
    t.insert("topic".into(), json!(g.topic));
    t.insert("qos".into(), json!(g.qos));
    put(&mut t, "no_local", g.no_local);
    put(&mut t, "rap", g.retain_as_published);
    put(
        &mut t,
        "retain_handling",
        g.retain_handling.map(|r| match pb::RetainHandling::try_from(r) {
            Ok(pb::RetainHandling::SendIfNewSub) => "send_if_new_sub",
            Ok(pb::RetainHandling::DontSend) => "dont_send",
            Ok(pb::RetainHandling::SendRetain) | Err(_) => "send_retain",
        }),
    );
    Value::Object(t)
}

fn payload(bytes: &[u8], base64: bool) -> String {
    if base64 {
        BASE64.encode(bytes)
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Properties in vmq's `p_*` JSON, with its encodings.
fn properties(p: &pb::Properties) -> Value {
    let mut out = Map::new();
    put(&mut out, "p_session_expiry_interval", p.session_expiry_interval);
    put(&mut out, "p_receive_max", p.receive_max);
    put(&mut out, "p_topic_alias_max", p.topic_alias_max);
    put(&mut out, "p_request_response_info", p.request_response_info);
    put(&mut out, "p_request_problem_info", p.request_problem_info);
    if !p.user_property.is_empty() {
        out.insert("p_user_property".into(), user_properties(&p.user_property));
    }
    put(
        &mut out,
        "p_correlation_data",
        p.correlation_data
            .as_deref()
            .map(|d| String::from_utf8_lossy(d).into_owned()),
    );
    put(&mut out, "p_response_topic", p.response_topic.clone());
    put(
        &mut out,
        "p_payload_format_indicator",
        match pb::PayloadFormat::try_from(p.payload_format_indicator) {
            Ok(pb::PayloadFormat::Utf8) => Some("utf8"),
            Ok(pb::PayloadFormat::Undefined) => Some("undefined"),
            Ok(pb::PayloadFormat::Unspecified) | Err(_) => None,
        },
    );
    put(&mut out, "p_content_type", p.content_type.clone());
    if !p.subscription_id.is_empty() {
        out.insert("p_subscription_id".into(), json!(p.subscription_id));
    }
    put(&mut out, "p_message_expiry_interval", p.message_expiry_interval);
    put(
        &mut out,
        "p_authentication_method",
        p.authentication_method.clone(),
    );
    put(
        &mut out,
        "p_authentication_data",
        p.authentication_data.as_deref().map(|d| BASE64.encode(d)),
    );
    put(&mut out, "p_will_delay_interval", p.will_delay_interval);
    put(&mut out, "p_max_packet_size", p.maximum_packet_size);
    Value::Object(out)
}

/// `p_user_property`: key and val always base64, as vmq does.
fn user_properties(props: &[pb::UserProperty]) -> Value {
    Value::Array(
        props
            .iter()
            .map(|u| json!({"key": BASE64.encode(&u.key), "val": BASE64.encode(&u.value)}))
            .collect(),
    )
}

/// Inserts `key` when `value` is set.
fn put<T: Into<Value>>(out: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(value) = value {
        out.insert(key.to_owned(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::verdict::Source;

    fn hookd(outcome: Outcome, ttl: Option<u64>) -> Verdict {
        Verdict {
            outcome,
            source: Source::Hookd { cached: false },
            cache_ttl: ttl.map(Duration::from_secs),
        }
    }

    fn body(hook: Hook, modifiers: Modifiers) -> Value {
        answer(hook, &hookd(Outcome::Ok(Some(modifiers)), None), true).body
    }

    #[test]
    fn plain_results() {
        let ok = answer(Hook::AuthOnRegister, &hookd(Outcome::Ok(None), None), true);
        assert_eq!((ok.status, ok.body), (StatusCode::OK, json!({"result":"ok"})));
        let next = answer(Hook::AuthOnPublish, &hookd(Outcome::Next, None), true);
        assert_eq!(next.body, json!({"result":"next"}));
        let denied = Outcome::Error {
            kind: ErrorKind::Denied,
            reason: "not_allowed".into(),
        };
        assert_eq!(
            answer(Hook::AuthOnRegister, &hookd(denied, None), true).body,
            json!({"result":{"error":"not_allowed"}})
        );
        let down = Verdict {
            outcome: Outcome::Error {
                kind: ErrorKind::Unavailable,
                reason: "hookd could not answer".into(),
            },
            source: Source::Policy(ErrorKind::Unavailable),
            cache_ttl: None,
        };
        assert_eq!(
            answer(Hook::AuthOnRegister, &down, true).body,
            json!({"result":{"error":"unavailable: hookd could not answer"}})
        );
        let notified = answer(Hook::OnPublish, &hookd(Outcome::Ack, None), true);
        assert_eq!((notified.status, notified.body), (StatusCode::OK, json!({})));
        assert_eq!(
            answer(Hook::OnPublish, &down, true).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn max_age_only_for_cacheable_ok_answers() {
        let ok = hookd(Outcome::Ok(None), Some(30));
        assert_eq!(answer(Hook::AuthOnSubscribeM5, &ok, true).max_age, Some(30));
        assert_eq!(answer(Hook::OnDeliver, &ok, true).max_age, None);
        assert_eq!(
            answer(Hook::AuthOnRegister, &hookd(Outcome::Next, Some(30)), true).max_age,
            None
        );
        assert_eq!(
            answer(Hook::AuthOnRegister, &hookd(Outcome::Ok(None), Some(0)), true).max_age,
            None
        );
    }

    #[test]
    fn v3_topics_go_top_level_and_m5_topics_into_modifiers() {
        let grants = pb::SubscribeModifiers {
            topics: vec![pb::SubscriptionGrant {
                topic: "a/b".into(),
                qos: 128,
                ..Default::default()
            }],
        };
        assert_eq!(
            body(Hook::AuthOnSubscribe, Modifiers::Subscribe(grants.clone())),
            json!({"result":"ok","topics":[{"topic":"a/b","qos":128}]})
        );
        assert_eq!(
            body(Hook::AuthOnSubscribeM5, Modifiers::Subscribe(grants)),
            json!({"result":"ok","modifiers":{"topics":[{"topic":"a/b","qos":128}]}})
        );
        let filters = pb::UnsubscribeModifiers {
            topics: vec!["x/#".into()],
        };
        assert_eq!(
            body(Hook::OnUnsubscribe, Modifiers::Unsubscribe(filters.clone())),
            json!({"result":"ok","topics":["x/#"]})
        );
        assert_eq!(
            body(Hook::OnUnsubscribeM5, Modifiers::Unsubscribe(filters)),
            json!({"result":"ok","modifiers":{"topics":["x/#"]}})
        );
    }

    #[test]
    fn register_publish_and_auth_modifiers_use_vmq_names() {
        let register = pb::RegisterModifiers {
            max_message_size: Some(1024),
            mountpoint: Some("m".into()),
            client_id: Some("c".into()),
            user_property: vec![pb::UserProperty {
                key: "k1".into(),
                value: "v1".into(),
            }],
            ..Default::default()
        };
        assert_eq!(
            body(Hook::AuthOnRegisterM5, Modifiers::Register(register.clone())),
            json!({"result":"ok","modifiers":{"max_message_size":1024,"mountpoint":"m","client_id":"c",
                "properties":{"p_user_property":[{"key":"azE=","val":"djE="}]}}})
        );
        let half = pb::RegisterModifiers {
            client_id: None,
            ..register
        };
        let answer_half = body(Hook::AuthOnRegister, Modifiers::Register(half));
        assert!(
            answer_half["result"]["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("invalid_response"))
        );

        let publish = pb::PublishModifiers {
            topic: Some("t".into()),
            payload: Some(b"hi".to_vec()),
            properties: Some(pb::Properties {
                payload_format_indicator: pb::PayloadFormat::Utf8 as i32,
                correlation_data: Some(b"corr".to_vec()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            body(Hook::AuthOnPublishM5, Modifiers::Publish(publish.clone())),
            json!({"result":"ok","modifiers":{"topic":"t","payload":"aGk=","properties":{
                "p_payload_format_indicator":"utf8","p_correlation_data":"corr"}}})
        );
        let raw = answer(
            Hook::AuthOnPublish,
            &hookd(Outcome::Ok(Some(Modifiers::Publish(publish))), None),
            false,
        );
        assert_eq!(
            raw.body,
            json!({"result":"ok","modifiers":{"topic":"t","payload":"hi"}})
        );

        let auth = pb::AuthModifiers {
            authentication_method: Some("SCRAM".into()),
            authentication_data: Some(vec![0, 1]),
            reason_code: Some(24),
        };
        assert_eq!(
            body(Hook::OnAuthM5, Modifiers::Auth(auth)),
            json!({"result":"ok","modifiers":{"properties":{"p_authentication_method":"SCRAM",
                "p_authentication_data":"AAE="},"reason_code":24}})
        );
    }

    #[test]
    fn modifiers_of_the_wrong_kind_are_not_passed_on() {
        let wrong = body(Hook::AuthOnPublish, Modifiers::Auth(pb::AuthModifiers::default()));
        assert!(
            wrong["result"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("wrong kind"))
        );
    }
}
