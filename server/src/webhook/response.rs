//! Turns a webhook's 200 answer into a [`Verdict`], as strictly as
//! vmq_webhooks validates it, but without ever crashing.
//!
//! For chain hooks `result` must be `"ok"`, `"next"` or `{"error": …}`;
//! anything else is an invalid response (vmq crashes there). Modifiers are
//! checked against the hook's allow-list with type checks, and one unknown
//! key or bad value rejects the whole answer (vmq_plugin_util:check_modifiers).
//! The v3 `auth_on_subscribe` and `on_unsubscribe` read their rewritten topics
//! from a top-level `topics` member. Notification answers only need to be JSON.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::WebhookError;
use crate::{
    hook::{Hook, HookStyle, PayloadFormat, Properties, RetainHandling, UserProperty},
    verdict::{
        Allow, AuthModifiers, DeliverModifiers, ErrorKind, Modifiers, PublishModifiers, RegisterModifiers,
        SubscriptionGrant, Verdict,
    },
};

/// Parses a 200 response body of `hook` from an endpoint that does (or does
/// not) use base64 payloads. Returns `Verdict::Ack` for notification hooks.
pub fn parse(hook: Hook, body: &[u8], base64_payload: bool) -> Result<Verdict, WebhookError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    if hook.style() == HookStyle::Notify {
        return Ok(Verdict::Ack);
    }
    let Value::Object(mut object) = value else {
        return Err(invalid("the answer is not a JSON object"));
    };
    match object.get("result") {
        Some(Value::String(s)) if s == "ok" => {}
        Some(Value::String(s)) if s == "next" => return Ok(Verdict::Next),
        Some(Value::Object(error)) => {
            let reason = match error.get("error") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "unknown_error".to_owned(),
            };
            return Ok(Verdict::error(ErrorKind::Denied, reason));
        }
        Some(other) => {
            return Err(invalid(&format!(
                "`result` is {other}, not \"ok\", \"next\" or {{\"error\": …}}"
            )));
        }
        None => return Err(invalid("`result` is missing")),
    }
    let decoder = Decoder { base64_payload };
    let modifiers = match hook {
        // The two v3 hooks whose topics vmq reads from the top level.
        Hook::AuthOnSubscribe | Hook::OnUnsubscribe => match object.remove("topics") {
            None | Some(Value::Null) => None,
            Some(topics) => Some(decoder.topics(hook, topics)?),
        },
        _ => match object.remove("modifiers") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) if m.is_empty() => None,
            Some(Value::Object(m)) => Some(decoder.modifiers(hook, m)?),
            Some(other) => return Err(invalid(&format!("`modifiers` is {other}, not an object"))),
        },
    };
    Ok(Verdict::Ok(Allow {
        modifiers,
        cache: None,
    }))
}

/// Reads `max-age` from a `cache-control` value. Tolerant of other
/// directives (`max-age=300, private`); `no-cache`, `no-store`, `max-age=0`
/// or a malformed number mean *do not cache*.
pub fn max_age(cache_control: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return None;
        }
        if let Some(value) = lower.strip_prefix("max-age=") {
            max_age = value.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age.filter(|&secs| secs > 0).map(Duration::from_secs)
}

fn invalid(message: &str) -> WebhookError {
    WebhookError::InvalidResponse(message.to_owned())
}

/// Decodes modifier values; knows whether payloads are base64.
struct Decoder {
    base64_payload: bool,
}

impl Decoder {
    fn modifiers(&self, hook: Hook, m: Map<String, Value>) -> Result<Modifiers, WebhookError> {
        match hook {
            Hook::AuthOnRegister | Hook::AuthOnRegisterM5 => self.register(hook, m).map(Modifiers::Register),
            Hook::AuthOnPublish | Hook::AuthOnPublishM5 => self.publish(hook, m).map(Modifiers::Publish),
            Hook::AuthOnSubscribeM5 | Hook::OnUnsubscribeM5 => {
                let mut topics = None;
                for (key, value) in m {
                    match key.as_str() {
                        "topics" => topics = Some(value),
                        _ => return Err(unknown(hook, &key)),
                    }
                }
                match topics {
                    Some(topics) => self.topics(hook, topics),
                    None => Err(invalid("`modifiers` of this hook may only hold `topics`")),
                }
            }
            Hook::OnDeliver | Hook::OnDeliverM5 => self.deliver(hook, m).map(Modifiers::Deliver),
            Hook::OnAuthM5 => self.auth(hook, m).map(Modifiers::Auth),
            _ => Err(invalid(&format!("{hook} takes no modifiers"))),
        }
    }

    fn register(&self, hook: Hook, m: Map<String, Value>) -> Result<RegisterModifiers, WebhookError> {
        let mut r = RegisterModifiers::default();
        let (mut mountpoint, mut client_id) = (None, None);
        for (key, value) in m {
            match key.as_str() {
                "allow_register" => r.allow_register = Some(boolean(&key, &value)?),
                "allow_publish" => r.allow_publish = Some(boolean(&key, &value)?),
                "allow_subscribe" => r.allow_subscribe = Some(boolean(&key, &value)?),
                "allow_unsubscribe" => r.allow_unsubscribe = Some(boolean(&key, &value)?),
                "max_message_size" => r.max_message_size = Some(integer(&key, &value)?),
                "max_connection_lifetime" => r.max_connection_lifetime = Some(integer(&key, &value)?),
                "max_message_rate" => r.max_message_rate = Some(integer(&key, &value)?),
                "max_inflight_messages" => r.max_inflight_messages = Some(integer(&key, &value)?),
                "retry_interval" => r.retry_interval = Some(integer(&key, &value)?),
                "max_online_messages" => r.max_online_messages = Some(integer(&key, &value)?),
                "max_offline_messages" => r.max_offline_messages = Some(integer(&key, &value)?),
                "max_drain_time" => r.max_drain_time = Some(integer(&key, &value)?),
                "max_msgs_per_drain_step" => r.max_msgs_per_drain_step = Some(integer(&key, &value)?),
                "username" => r.username = Some(string(&key, value)?),
                "clean_session" => r.clean_session = Some(boolean(&key, &value)?),
                "upgrade_qos" => r.upgrade_qos = Some(boolean(&key, &value)?),
                "shared_subscription_policy" => r.shared_subscription_policy = Some(string(&key, value)?),
                "queue_type" => r.queue_type = Some(string(&key, value)?),
                "mountpoint" => mountpoint = Some(string(&key, value)?),
                "client_id" => client_id = Some(string(&key, value)?),
                "properties" if hook == Hook::AuthOnRegisterM5 => {
                    let p =
                        self.properties(hook, value, &["p_user_property", "p_session_expiry_interval"])?;
                    r.user_property = p.user_property;
                    r.session_expiry_interval = p.session_expiry_interval;
                }
                _ => return Err(unknown(hook, &key)),
            }
        }
        // vmq merges a new subscriber id only from both halves; a lone
        // half is an unknown modifier there, so it is invalid here.
        r.subscriber_id = match (mountpoint, client_id) {
            (Some(m), Some(c)) => Some((m, c)),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "`mountpoint` and `client_id` modifiers must come together",
                ));
            }
        };
        Ok(r)
    }

    fn publish(&self, hook: Hook, m: Map<String, Value>) -> Result<PublishModifiers, WebhookError> {
        let mut p = PublishModifiers::default();
        for (key, value) in m {
            match key.as_str() {
                "topic" => p.topic = Some(publish_topic(&key, value)?),
                "payload" => p.payload = Some(self.payload(&key, value)?),
                "qos" => p.qos = Some(qos(&key, &value)?),
                "retain" => p.retain = Some(boolean(&key, &value)?),
                "mountpoint" => p.mountpoint = Some(string(&key, value)?),
                "throttle" => p.throttle = Some(integer(&key, &value)?),
                "properties" if hook == Hook::AuthOnPublishM5 => {
                    p.properties = Some(self.properties(
                        hook,
                        value,
                        &[
                            "p_user_property",
                            "p_message_expiry_interval",
                            "p_content_type",
                            "p_payload_format_indicator",
                            "p_response_topic",
                            "p_correlation_data",
                            "p_will_delay_interval",
                        ],
                    )?)
                }
                _ => return Err(unknown(hook, &key)),
            }
        }
        Ok(p)
    }

    fn deliver(&self, hook: Hook, m: Map<String, Value>) -> Result<DeliverModifiers, WebhookError> {
        let mut d = DeliverModifiers::default();
        for (key, value) in m {
            match key.as_str() {
                "topic" => d.topic = Some(publish_topic(&key, value)?),
                "payload" => d.payload = Some(self.payload(&key, value)?),
                "properties" if hook == Hook::OnDeliverM5 => {
                    d.properties = Some(self.properties(
                        hook,
                        value,
                        &[
                            "p_content_type",
                            "p_payload_format_indicator",
                            "p_user_property",
                            "p_response_topic",
                            "p_correlation_data",
                        ],
                    )?)
                }
                _ => return Err(unknown(hook, &key)),
            }
        }
        Ok(d)
    }

    fn auth(&self, hook: Hook, m: Map<String, Value>) -> Result<AuthModifiers, WebhookError> {
        let mut a = AuthModifiers::default();
        for (key, value) in m {
            match key.as_str() {
                "properties" => {
                    let p =
                        self.properties(hook, value, &["p_authentication_method", "p_authentication_data"])?;
                    a.authentication_method = p.authentication_method;
                    a.authentication_data = p.authentication_data;
                }
                "reason_code" => {
                    let code = u8::try_from(integer(&key, &value)?)
                        .map_err(|_| bad_value(&key, "a reason code 0..=255"))?;
                    a.reason_code = Some(u32::from(code));
                }
                _ => return Err(unknown(hook, &key)),
            }
        }
        Ok(a)
    }

    /// Topics of the subscribe (grants) or unsubscribe (filters) hooks.
    fn topics(&self, hook: Hook, value: Value) -> Result<Modifiers, WebhookError> {
        let Value::Array(items) = value else {
            return Err(bad_value("topics", "an array"));
        };
        if matches!(hook, Hook::OnUnsubscribe | Hook::OnUnsubscribeM5) {
            let filters = items
                .into_iter()
                .map(|t| filter("topics", t))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Modifiers::Unsubscribe(filters));
        }
        let grants = items
            .into_iter()
            .map(|item| grant(hook, item))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Modifiers::Subscribe(grants))
    }

    fn payload(&self, key: &str, value: Value) -> Result<Bytes, WebhookError> {
        let text = string(key, value)?;
        if self.base64_payload {
            BASE64
                .decode(text.as_bytes())
                .map(Bytes::from)
                .map_err(|_| bad_value(key, "base64 text"))
        } else {
            Ok(Bytes::from(text))
        }
    }

    /// Reads a `properties` modifier, allowing only the `allowed` keys.
    fn properties(&self, hook: Hook, value: Value, allowed: &[&str]) -> Result<Properties, WebhookError> {
        let Value::Object(m) = value else {
            return Err(bad_value("properties", "an object"));
        };
        let mut p = Properties::default();
        for (key, value) in m {
            if !allowed.contains(&key.as_str()) {
                return Err(unknown(hook, &format!("properties.{key}")));
            }
            match key.as_str() {
                "p_user_property" => p.user_property = user_properties(&key, value)?,
                "p_session_expiry_interval" => p.session_expiry_interval = Some(uint32(&key, &value)?),
                "p_message_expiry_interval" => p.message_expiry_interval = Some(uint32(&key, &value)?),
                "p_will_delay_interval" => p.will_delay_interval = Some(uint32(&key, &value)?),
                "p_content_type" => p.content_type = Some(string(&key, value)?),
                "p_payload_format_indicator" => {
                    p.payload_format_indicator = Some(match value.as_str() {
                        Some("utf8") => PayloadFormat::Utf8,
                        Some("undefined") => PayloadFormat::Undefined,
                        _ => return Err(bad_value(&key, "\"utf8\" or \"undefined\"")),
                    })
                }
                "p_response_topic" => p.response_topic = Some(publish_topic(&key, value)?),
                "p_correlation_data" => p.correlation_data = Some(Bytes::from(string(&key, value)?)),
                "p_authentication_method" => p.authentication_method = Some(string(&key, value)?),
                "p_authentication_data" => {
                    let text = string(&key, value)?;
                    p.authentication_data = Some(
                        BASE64
                            .decode(text.as_bytes())
                            .map(Bytes::from)
                            .map_err(|_| bad_value(&key, "base64 text"))?,
                    );
                }
                _ => return Err(unknown(hook, &format!("properties.{key}"))),
            }
        }
        Ok(p)
    }
}

fn grant(hook: Hook, item: Value) -> Result<SubscriptionGrant, WebhookError> {
    let Value::Object(m) = item else {
        return Err(bad_value("topics", "an array of {\"topic\", \"qos\"} objects"));
    };
    let m5 = hook == Hook::AuthOnSubscribeM5;
    let (mut topic, mut qos_value) = (None, None);
    let mut g = SubscriptionGrant {
        topic: String::new(),
        qos: 0,
        no_local: None,
        retain_as_published: None,
        retain_handling: None,
    };
    for (key, value) in m {
        match key.as_str() {
            "topic" => topic = Some(filter("topic", value)?),
            "qos" => {
                let n = integer("qos", &value)?;
                // 0..=2 grants; v3 knows only 128 as "rejected", MQTT 5
                // passes any reason code (e.g. 135 not authorised) on.
                let ok = (0..=2).contains(&n) || n == 128 || (m5 && (128..=255).contains(&n));
                if !ok {
                    return Err(bad_value("qos", "0, 1, 2 or a rejecting reason code"));
                }
                qos_value = Some(n as u8);
            }
            "no_local" if m5 => g.no_local = Some(boolean(&key, &value)?),
            "rap" if m5 => g.retain_as_published = Some(boolean(&key, &value)?),
            "retain_handling" if m5 => {
                g.retain_handling = Some(match value.as_str() {
                    Some("send_retain") => RetainHandling::SendRetain,
                    Some("send_if_new_sub") => RetainHandling::SendIfNewSub,
                    Some("dont_send") => RetainHandling::DontSend,
                    _ => return Err(bad_value(&key, "send_retain, send_if_new_sub or dont_send")),
                })
            }
            _ => return Err(unknown(hook, &format!("topics.{key}"))),
        }
    }
    match (topic, qos_value) {
        (Some(topic), Some(qos)) => {
            g.topic = topic;
            g.qos = qos;
            Ok(g)
        }
        _ => Err(invalid("each topic needs `topic` and `qos`")),
    }
}

fn unknown(hook: Hook, key: &str) -> WebhookError {
    invalid(&format!("unknown modifier `{key}` for {hook}"))
}

fn bad_value(key: &str, expected: &str) -> WebhookError {
    invalid(&format!("modifier `{key}` must be {expected}"))
}

fn boolean(key: &str, value: &Value) -> Result<bool, WebhookError> {
    value.as_bool().ok_or_else(|| bad_value(key, "a boolean"))
}

/// An integer; floats are rounded, as vmq does.
fn integer(key: &str, value: &Value) -> Result<i64, WebhookError> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                    .map(|f| f.round() as i64)
            })
            .ok_or_else(|| bad_value(key, "an integer")),
        _ => Err(bad_value(key, "an integer")),
    }
}

fn uint32(key: &str, value: &Value) -> Result<u32, WebhookError> {
    u32::try_from(integer(key, value)?).map_err(|_| bad_value(key, "an integer 0..=4294967295"))
}

fn qos(key: &str, value: &Value) -> Result<u8, WebhookError> {
    match integer(key, value)? {
        n @ 0..=2 => Ok(n as u8),
        _ => Err(bad_value(key, "0, 1 or 2")),
    }
}

fn string(key: &str, value: Value) -> Result<String, WebhookError> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(bad_value(key, "a string")),
    }
}

/// A topic a message may be published to: not empty, no wildcards.
fn publish_topic(key: &str, value: Value) -> Result<String, WebhookError> {
    let topic = string(key, value)?;
    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
        return Err(bad_value(key, "a topic name without wildcards"));
    }
    Ok(topic)
}

/// A topic filter: not empty, `#` only as the last level, `+` only as a whole level.
fn filter(key: &str, value: Value) -> Result<String, WebhookError> {
    let topic = string(key, value)?;
    let levels: Vec<&str> = topic.split('/').collect();
    let valid = !topic.is_empty()
        && !topic.contains('\0')
        && levels.iter().enumerate().all(|(i, level)| {
            (*level == "#" && i == levels.len() - 1)
                || *level == "+"
                || !(level.contains('#') || level.contains('+'))
        });
    if !valid {
        return Err(bad_value(key, "a valid topic filter"));
    }
    Ok(topic)
}

fn user_properties(key: &str, value: Value) -> Result<Vec<UserProperty>, WebhookError> {
    let Value::Array(items) = value else {
        return Err(bad_value(key, "an array of {\"key\", \"val\"} objects"));
    };
    let decode = |v: Option<&Value>| -> Result<String, WebhookError> {
        let text = v
            .and_then(Value::as_str)
            .ok_or_else(|| bad_value(key, "key/val strings"))?;
        let bytes = BASE64
            .decode(text.as_bytes())
            .map_err(|_| bad_value(key, "base64 key/val"))?;
        String::from_utf8(bytes).map_err(|_| bad_value(key, "UTF-8 key/val"))
    };
    items
        .iter()
        .map(|item| {
            Ok(UserProperty {
                key: decode(item.get("key"))?,
                value: decode(item.get("val"))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_modifiers(hook: Hook, body: &str) -> Option<Modifiers> {
        match parse(hook, body.as_bytes(), true) {
            Ok(Verdict::Ok(allow)) => allow.modifiers,
            other => panic!("expected ok, got {other:?}"),
        }
    }

    fn rejects(hook: Hook, body: &str) -> bool {
        matches!(
            parse(hook, body.as_bytes(), true),
            Err(WebhookError::InvalidResponse(_) | WebhookError::NotJson(_))
        )
    }

    #[test]
    fn result_values_map_to_verdicts() {
        assert_eq!(
            parse(Hook::AuthOnRegister, br#"{"result":"next"}"#, true).ok(),
            Some(Verdict::Next)
        );
        assert_eq!(
            parse(
                Hook::AuthOnRegister,
                br#"{"result":{"error":"not_allowed"}}"#,
                true
            )
            .ok(),
            Some(Verdict::error(ErrorKind::Denied, "not_allowed"))
        );
        assert_eq!(
            parse(Hook::AuthOnRegister, br#"{"result":{}}"#, true).ok(),
            Some(Verdict::error(ErrorKind::Denied, "unknown_error"))
        );
        assert_eq!(
            ok_modifiers(Hook::AuthOnRegister, r#"{"result":"ok","modifiers":{}}"#),
            None
        );
        assert!(rejects(Hook::AuthOnRegister, r#"{"result":"error"}"#));
        assert!(rejects(Hook::AuthOnRegister, r#"{"result":42}"#));
        assert!(rejects(Hook::AuthOnRegister, r#"{"modifiers":{}}"#));
        assert!(rejects(Hook::AuthOnRegister, r#"[1,2]"#));
        assert!(rejects(Hook::AuthOnRegister, "not json"));
    }

    #[test]
    fn notification_answers_only_need_to_be_json() {
        assert_eq!(parse(Hook::OnPublish, b"{}", true).ok(), Some(Verdict::Ack));
        assert!(rejects(Hook::OnPublish, ""));
    }

    #[test]
    fn register_modifiers_are_typed_and_floats_rounded() {
        let m = ok_modifiers(
            Hook::AuthOnRegister,
            r#"{"result":"ok","modifiers":{"max_message_size":1023.6,"mountpoint":"m","client_id":"c","upgrade_qos":true}}"#,
        );
        let Some(Modifiers::Register(r)) = m else {
            panic!("register modifiers")
        };
        assert_eq!(r.max_message_size, Some(1024));
        assert_eq!(r.subscriber_id, Some(("m".into(), "c".into())));
        assert_eq!(r.upgrade_qos, Some(true));
    }

    #[test]
    fn one_bad_modifier_rejects_the_whole_answer() {
        assert!(rejects(
            Hook::AuthOnRegister,
            r#"{"result":"ok","modifiers":{"reg_view":"x"}}"#
        ));
        assert!(rejects(
            Hook::AuthOnRegister,
            r#"{"result":"ok","modifiers":{"upgrade_qos":"yes"}}"#
        ));
        assert!(rejects(
            Hook::AuthOnRegister,
            r#"{"result":"ok","modifiers":{"client_id":"lone"}}"#
        ));
        assert!(rejects(
            Hook::AuthOnPublish,
            r#"{"result":"ok","modifiers":{"topic":"a/#"}}"#
        ));
        assert!(rejects(
            Hook::AuthOnPublish,
            r#"{"result":"ok","modifiers":{"qos":3}}"#
        ));
        assert!(rejects(
            Hook::AuthOnPublish,
            r#"{"result":"ok","modifiers":{"properties":{}}}"#
        ));
        assert!(rejects(
            Hook::AuthOnPublishM5,
            r#"{"result":"ok","modifiers":{"properties":{"p_session_expiry_interval":5}}}"#
        ));
    }

    #[test]
    fn publish_payload_modifier_is_base64_decoded_unless_raw() {
        let body = br#"{"result":"ok","modifiers":{"payload":"aGk="}}"#;
        let Ok(Verdict::Ok(Allow {
            modifiers: Some(Modifiers::Publish(p)),
            ..
        })) = parse(Hook::AuthOnPublish, body, true)
        else {
            panic!("publish modifiers")
        };
        assert_eq!(p.payload.as_deref(), Some(&b"hi"[..]));
        let Ok(Verdict::Ok(Allow {
            modifiers: Some(Modifiers::Publish(p)),
            ..
        })) = parse(Hook::AuthOnPublish, body, false)
        else {
            panic!("publish modifiers")
        };
        assert_eq!(p.payload.as_deref(), Some(&b"aGk="[..]));
    }

    #[test]
    fn v3_subscribe_reads_top_level_topics_and_128_rejects() {
        let m = ok_modifiers(
            Hook::AuthOnSubscribe,
            r#"{"result":"ok","topics":[{"topic":"a/b","qos":1},{"topic":"c","qos":128}]}"#,
        );
        let Some(Modifiers::Subscribe(grants)) = m else {
            panic!("grants")
        };
        assert_eq!(grants.iter().map(|g| g.qos).collect::<Vec<_>>(), vec![1, 128]);
        assert!(rejects(
            Hook::AuthOnSubscribe,
            r#"{"result":"ok","topics":[{"topic":"c","qos":135}]}"#
        ));
        let m5 = ok_modifiers(
            Hook::AuthOnSubscribeM5,
            r#"{"result":"ok","modifiers":{"topics":[{"topic":"c","qos":135,"retain_handling":"dont_send"}]}}"#,
        );
        let Some(Modifiers::Subscribe(grants)) = m5 else {
            panic!("grants")
        };
        assert_eq!(grants[0].qos, 135);
        assert_eq!(grants[0].retain_handling, Some(RetainHandling::DontSend));
    }

    #[test]
    fn unsubscribe_topics_are_validated_filters() {
        let m = ok_modifiers(Hook::OnUnsubscribe, r#"{"result":"ok","topics":["a/+/c","d/#"]}"#);
        assert_eq!(
            m,
            Some(Modifiers::Unsubscribe(vec!["a/+/c".into(), "d/#".into()]))
        );
        assert!(rejects(
            Hook::OnUnsubscribe,
            r#"{"result":"ok","topics":["a/#/c"]}"#
        ));
    }

    #[test]
    fn auth_m5_decodes_authentication_data() {
        let m = ok_modifiers(
            Hook::OnAuthM5,
            r#"{"result":"ok","modifiers":{"properties":{"p_authentication_method":"SCRAM","p_authentication_data":"AAE="},"reason_code":24}}"#,
        );
        let Some(Modifiers::Auth(a)) = m else {
            panic!("auth")
        };
        assert_eq!(a.authentication_data.as_deref(), Some(&[0u8, 1][..]));
        assert_eq!(a.reason_code, Some(24));
    }

    #[test]
    fn cache_control_is_parsed_tolerantly() {
        assert_eq!(max_age("max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age("max-age=45, private"), Some(Duration::from_secs(45)));
        assert_eq!(max_age("private, Max-Age=5"), Some(Duration::from_secs(5)));
        assert_eq!(max_age("max-age=0"), None);
        assert_eq!(max_age("max-age=60, no-cache"), None);
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("max-age="), None);
        assert_eq!(max_age("max-age=abc"), None);
    }
}
