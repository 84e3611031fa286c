//! The answer of a vmq_webhooks endpoint, both ways: hookd decodes its
//! endpoints' answers into a [`Verdict`] ([`decode_answer`]), the sidecar
//! encodes hookd's verdict as such an answer for VerneMQ ([`encode_answer`]).
//!
//! Decoding is as strict as vmq_webhooks, without ever crashing. For chain
//! hooks `result` must be `"ok"`, `"next"` or `{"error": …}`; anything else
//! is an invalid answer (vmq crashes there). Modifiers are checked against the
//! hook's allow-list with type checks, and one unknown key or bad value
//! rejects the whole answer (vmq_plugin_util:check_modifiers). The v3
//! `auth_on_subscribe` and `on_unsubscribe` carry their rewritten topics in a
//! top-level `topics` member. Notification answers only need to be JSON.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{AnswerError, PayloadEncoding};
use crate::{
    call::{PayloadFormat, Properties, RetainHandling, UserProperty},
    hook::{Hook, HookStyle},
    verdict::{
        Allow, AuthModifiers, DeliverModifiers, ErrorKind, Modifiers, PublishModifiers, RegisterModifiers,
        SubscriptionGrant, Verdict,
    },
};

/// Decodes a 200 answer of an endpoint to `hook`, whose payloads are
/// encoded as `encoding` says. Returns `Verdict::Ack` for notification hooks.
pub fn decode_answer(hook: Hook, body: &[u8], encoding: PayloadEncoding) -> Result<Verdict, AnswerError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| AnswerError::NotJson(e.to_string()))?;
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
    let decoder = Decoder {
        base64_payload: encoding.base64,
    };
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

fn invalid(message: &str) -> AnswerError {
    AnswerError::Invalid(message.to_owned())
}

/// Decodes modifier values; knows whether payloads are base64.
struct Decoder {
    base64_payload: bool,
}

impl Decoder {
    fn modifiers(&self, hook: Hook, m: Map<String, Value>) -> Result<Modifiers, AnswerError> {
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

    fn register(&self, hook: Hook, m: Map<String, Value>) -> Result<RegisterModifiers, AnswerError> {
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

    fn publish(&self, hook: Hook, m: Map<String, Value>) -> Result<PublishModifiers, AnswerError> {
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

    fn deliver(&self, hook: Hook, m: Map<String, Value>) -> Result<DeliverModifiers, AnswerError> {
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

    fn auth(&self, hook: Hook, m: Map<String, Value>) -> Result<AuthModifiers, AnswerError> {
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
    fn topics(&self, hook: Hook, value: Value) -> Result<Modifiers, AnswerError> {
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

    fn payload(&self, key: &str, value: Value) -> Result<Bytes, AnswerError> {
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
    fn properties(&self, hook: Hook, value: Value, allowed: &[&str]) -> Result<Properties, AnswerError> {
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

fn grant(hook: Hook, item: Value) -> Result<SubscriptionGrant, AnswerError> {
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

fn unknown(hook: Hook, key: &str) -> AnswerError {
    invalid(&format!("unknown modifier `{key}` for {hook}"))
}

fn bad_value(key: &str, expected: &str) -> AnswerError {
    invalid(&format!("modifier `{key}` must be {expected}"))
}

fn boolean(key: &str, value: &Value) -> Result<bool, AnswerError> {
    value.as_bool().ok_or_else(|| bad_value(key, "a boolean"))
}

/// An integer; floats are rounded, as vmq does.
fn integer(key: &str, value: &Value) -> Result<i64, AnswerError> {
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

fn uint32(key: &str, value: &Value) -> Result<u32, AnswerError> {
    u32::try_from(integer(key, value)?).map_err(|_| bad_value(key, "an integer 0..=4294967295"))
}

fn qos(key: &str, value: &Value) -> Result<u8, AnswerError> {
    match integer(key, value)? {
        n @ 0..=2 => Ok(n as u8),
        _ => Err(bad_value(key, "0, 1 or 2")),
    }
}

fn string(key: &str, value: Value) -> Result<String, AnswerError> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(bad_value(key, "a string")),
    }
}

/// A topic a message may be published to: not empty, no wildcards.
fn publish_topic(key: &str, value: Value) -> Result<String, AnswerError> {
    let topic = string(key, value)?;
    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
        return Err(bad_value(key, "a topic name without wildcards"));
    }
    Ok(topic)
}

/// A topic filter: not empty, `#` only as the last level, `+` only as a whole level.
fn filter(key: &str, value: Value) -> Result<String, AnswerError> {
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

fn user_properties(key: &str, value: Value) -> Result<Vec<UserProperty>, AnswerError> {
    let Value::Array(items) = value else {
        return Err(bad_value(key, "an array of {\"key\", \"val\"} objects"));
    };
    let decode = |v: Option<&Value>| -> Result<String, AnswerError> {
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

/// Encodes `verdict` as the answer a vmq_webhooks endpoint to `hook` would
/// give, with payloads encoded as `encoding` says:
///
/// - `{"result":"ok"}`, or with `"modifiers":{…}` under vmq's JSON names; the
///   v3 `auth_on_subscribe` and `on_unsubscribe` put their `topics` at the
///   top level instead;
/// - `{"result":"next"}`;
/// - `{"result":{"error":"<reason>"}}`: the endpoint's own value for a
///   denial, `"<kind>: <reason>"` (e.g. `unavailable: …`) for other failures;
/// - notification hooks get `{}` unless the verdict is an error.
///
/// Modifiers that cannot belong to `hook` are never passed on: the answer is
/// then an `invalid_response` error.
pub fn encode_answer(hook: Hook, verdict: &Verdict, encoding: PayloadEncoding) -> Value {
    if hook.style() == HookStyle::Notify {
        return match verdict {
            Verdict::Error(e) => error_body(e.kind, &e.reason),
            _ => json!({}),
        };
    }
    match verdict {
        Verdict::Ok(allow) => match allow
            .modifiers
            .as_ref()
            .map(|m| modifiers_json(hook, m, encoding))
        {
            None | Some(Ok(Placement::Nothing)) => json!({"result": "ok"}),
            Some(Ok(Placement::Modifiers(m))) => json!({"result": "ok", "modifiers": m}),
            Some(Ok(Placement::TopLevelTopics(topics))) => json!({"result": "ok", "topics": topics}),
            Some(Err(message)) => error_body(ErrorKind::InvalidResponse, &message),
        },
        // A chain hook is never acknowledged; should it be, allow.
        Verdict::Ack => json!({"result": "ok"}),
        Verdict::Next => json!({"result": "next"}),
        Verdict::Error(e) => error_body(e.kind, &e.reason),
    }
}

/// `{"result":{"error":…}}`: a denial carries the endpoint's own reason, any
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
fn modifiers_json(hook: Hook, modifiers: &Modifiers, encoding: PayloadEncoding) -> Result<Placement, String> {
    let m5 = hook.is_m5();
    let mut out = Map::new();
    match (hook, modifiers) {
        (Hook::AuthOnRegister | Hook::AuthOnRegisterM5, Modifiers::Register(r)) => register(&mut out, r, m5),
        (Hook::AuthOnPublish | Hook::AuthOnPublishM5, Modifiers::Publish(p)) => {
            put(&mut out, "topic", p.topic.clone());
            put(
                &mut out,
                "payload",
                p.payload.as_deref().map(|b| payload_text(b, encoding)),
            );
            put(&mut out, "qos", p.qos);
            put(&mut out, "retain", p.retain);
            put(&mut out, "mountpoint", p.mountpoint.clone());
            put(&mut out, "throttle", p.throttle);
            if m5 {
                put(&mut out, "properties", p.properties.as_ref().map(properties_json));
            }
        }
        (Hook::AuthOnSubscribe, Modifiers::Subscribe(grants)) => {
            return Ok(Placement::TopLevelTopics(Value::Array(
                grants.iter().map(grant_json).collect(),
            )));
        }
        (Hook::AuthOnSubscribeM5, Modifiers::Subscribe(grants)) => {
            out.insert(
                "topics".into(),
                Value::Array(grants.iter().map(grant_json).collect()),
            );
        }
        (Hook::OnUnsubscribe, Modifiers::Unsubscribe(topics)) => {
            return Ok(Placement::TopLevelTopics(json!(topics)));
        }
        (Hook::OnUnsubscribeM5, Modifiers::Unsubscribe(topics)) => {
            out.insert("topics".into(), json!(topics));
        }
        (Hook::OnDeliver | Hook::OnDeliverM5, Modifiers::Deliver(d)) => {
            put(&mut out, "topic", d.topic.clone());
            put(
                &mut out,
                "payload",
                d.payload.as_deref().map(|b| payload_text(b, encoding)),
            );
            if m5 {
                put(&mut out, "properties", d.properties.as_ref().map(properties_json));
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
        _ => return Err(format!("hookd sent modifiers of the wrong kind for {hook}")),
    }
    Ok(if out.is_empty() {
        Placement::Nothing
    } else {
        Placement::Modifiers(out)
    })
}

fn register(out: &mut Map<String, Value>, r: &RegisterModifiers, m5: bool) {
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
    if let Some((mountpoint, client_id)) = &r.subscriber_id {
        put(out, "mountpoint", Some(mountpoint.clone()));
        put(out, "client_id", Some(client_id.clone()));
    }
    if m5 {
        let mut p = Map::new();
        if !r.user_property.is_empty() {
            p.insert("p_user_property".into(), user_properties_json(&r.user_property));
        }
        put(&mut p, "p_session_expiry_interval", r.session_expiry_interval);
        if !p.is_empty() {
            out.insert("properties".into(), Value::Object(p));
        }
    }
}

fn grant_json(g: &SubscriptionGrant) -> Value {
    let mut t = Map::new();
    t.insert("topic".into(), json!(g.topic));
    t.insert("qos".into(), json!(g.qos));
    put(&mut t, "no_local", g.no_local);
    put(&mut t, "rap", g.retain_as_published);
    put(
        &mut t,
        "retain_handling",
        g.retain_handling.map(RetainHandling::name),
    );
    Value::Object(t)
}

fn payload_text(bytes: &[u8], encoding: PayloadEncoding) -> String {
    if encoding.base64 {
        BASE64.encode(bytes)
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Properties in vmq's `p_*` JSON, with its encodings.
fn properties_json(p: &Properties) -> Value {
    let mut out = Map::new();
    put(&mut out, "p_session_expiry_interval", p.session_expiry_interval);
    put(&mut out, "p_receive_max", p.receive_max);
    put(&mut out, "p_topic_alias_max", p.topic_alias_max);
    put(&mut out, "p_request_response_info", p.request_response_info);
    put(&mut out, "p_request_problem_info", p.request_problem_info);
    if !p.user_property.is_empty() {
        out.insert("p_user_property".into(), user_properties_json(&p.user_property));
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
        p.payload_format_indicator.map(PayloadFormat::name),
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
fn user_properties_json(props: &[UserProperty]) -> Value {
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
    use proptest::{collection::vec, option, prelude::*};

    use super::*;
    use crate::vmq::strategies::{
        binary, check, payload, payload_format, retain_handling, text, text_without, user_properties,
        utf8_bytes,
    };

    fn encoding(base64: bool) -> PayloadEncoding {
        PayloadEncoding {
            base64,
            omit_for_auth_on_publish: false,
        }
    }

    fn parse(hook: Hook, body: &[u8], base64: bool) -> Result<Verdict, AnswerError> {
        decode_answer(hook, body, encoding(base64))
    }

    fn ok_modifiers(hook: Hook, body: &str) -> Option<Modifiers> {
        match parse(hook, body.as_bytes(), true) {
            Ok(Verdict::Ok(allow)) => allow.modifiers,
            other => panic!("expected ok, got {other:?}"),
        }
    }

    fn rejects(hook: Hook, body: &str) -> bool {
        matches!(
            parse(hook, body.as_bytes(), true),
            Err(AnswerError::Invalid(_) | AnswerError::NotJson(_))
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
    fn notification_hooks_answer_ack_as_an_empty_object() {
        for hook in Hook::ALL.into_iter().filter(|h| h.style() == HookStyle::Notify) {
            for base64 in [true, false] {
                let answer = encode_answer(hook, &Verdict::Ack, encoding(base64));
                assert_eq!(answer, json!({}), "{hook}");
                let body = serde_json::to_vec(&answer).expect("JSON");
                assert_eq!(parse(hook, &body, base64), Ok(Verdict::Ack), "{hook}");
            }
        }
    }

    // Round trip: for every chain hook, a verdict the vmq answer format can
    // express survives encode_answer → decode_answer. The generator keeps to
    // what vmq accepts for the hook (decode_answer's allow-lists): only
    // `Denied` errors (other kinds are sent as "<kind>: <reason>" denials),
    // `ok` without cache info (that travels in a header), modifiers of the
    // hook's family with v3 hooks lacking the MQTT 5 ones (properties,
    // subscription options, register user properties and session expiry),
    // properties limited to the keys vmq lets the hook change, publish
    // topics without wildcards, valid filters, grants 0..=2 or 128 (MQTT 5:
    // 128..=255), reason codes 0..=255, payloads UTF-8 unless base64 and
    // correlation data UTF-8 (sent as text).

    /// Cases per chain hook.
    const CASES_PER_HOOK: u32 = 256;

    fn chain_hooks() -> impl Iterator<Item = Hook> {
        Hook::ALL.into_iter().filter(|h| h.style() == HookStyle::Chain)
    }

    /// A topic a message may be published to: not empty, no wildcards, no NUL.
    fn publish_topic() -> impl Strategy<Value = String> + Clone {
        text_without(&['+', '#', '\0'], 1, 8)
    }

    /// A valid filter: levels of text or `+`, maybe ending in `#`.
    fn topic_filter() -> impl Strategy<Value = String> + Clone {
        let level = prop_oneof![
            1 => Just("+".to_owned()),
            3 => text_without(&['+', '#', '/', '\0'], 0, 4),
        ];
        (vec(level, 1..4), any::<bool>()).prop_map(|(mut levels, multi)| {
            if multi {
                levels.push("#".to_owned());
            }
            let filter = levels.join("/");
            // All levels empty: "" is no filter, "#" is.
            if filter.is_empty() { "#".to_owned() } else { filter }
        })
    }

    fn register_modifiers(m5: bool) -> impl Strategy<Value = RegisterModifiers> {
        let flags = (
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
        );
        let limits = (
            option::of(any::<i64>()),
            option::of(any::<i64>()),
            option::of(any::<i64>()),
            option::of(any::<i64>()),
            option::of(any::<i64>()),
            option::of(any::<i64>()),
            option::of(any::<i64>()),
            option::of(any::<i64>()),
            option::of(any::<i64>()),
        );
        let texts = (
            option::of(text(6)),
            option::of(text(6)),
            option::of(text(6)),
            option::of((text(6), text(6))),
        );
        let m5_only = if m5 {
            (user_properties(), option::of(any::<u32>())).boxed()
        } else {
            Just((Vec::new(), None)).boxed()
        };
        (flags, limits, texts, m5_only).prop_map(
            |(
                (
                    allow_register,
                    allow_publish,
                    allow_subscribe,
                    allow_unsubscribe,
                    clean_session,
                    upgrade_qos,
                ),
                (
                    max_message_size,
                    max_connection_lifetime,
                    max_message_rate,
                    max_inflight_messages,
                    retry_interval,
                    max_online_messages,
                    max_offline_messages,
                    max_drain_time,
                    max_msgs_per_drain_step,
                ),
                (username, shared_subscription_policy, queue_type, subscriber_id),
                (user_property, session_expiry_interval),
            )| RegisterModifiers {
                allow_register,
                allow_publish,
                allow_subscribe,
                allow_unsubscribe,
                max_message_size,
                max_connection_lifetime,
                max_message_rate,
                max_inflight_messages,
                retry_interval,
                max_online_messages,
                max_offline_messages,
                max_drain_time,
                max_msgs_per_drain_step,
                username,
                clean_session,
                upgrade_qos,
                shared_subscription_policy,
                queue_type,
                subscriber_id,
                user_property,
                session_expiry_interval,
            },
        )
    }

    /// The properties an `auth_on_publish_m5` answer may change.
    fn publish_properties() -> impl Strategy<Value = Properties> {
        (
            user_properties(),
            option::of(any::<u32>()),
            option::of(text(6)),
            option::of(payload_format()),
            option::of(publish_topic()),
            option::of(utf8_bytes(6)),
            option::of(any::<u32>()),
        )
            .prop_map(
                |(
                    user_property,
                    message_expiry_interval,
                    content_type,
                    payload_format_indicator,
                    response_topic,
                    correlation_data,
                    will_delay_interval,
                )| Properties {
                    user_property,
                    message_expiry_interval,
                    content_type,
                    payload_format_indicator,
                    response_topic,
                    correlation_data,
                    will_delay_interval,
                    ..Properties::default()
                },
            )
    }

    /// The properties an `on_deliver_m5` answer may change.
    fn deliver_properties() -> impl Strategy<Value = Properties> {
        (
            option::of(text(6)),
            option::of(payload_format()),
            user_properties(),
            option::of(publish_topic()),
            option::of(utf8_bytes(6)),
        )
            .prop_map(
                |(
                    content_type,
                    payload_format_indicator,
                    user_property,
                    response_topic,
                    correlation_data,
                )| {
                    Properties {
                        content_type,
                        payload_format_indicator,
                        user_property,
                        response_topic,
                        correlation_data,
                        ..Properties::default()
                    }
                },
            )
    }

    /// MQTT 5 properties where the hook is `_m5`, none for v3.
    fn m5_properties<S: Strategy<Value = Properties> + 'static>(
        m5: bool,
        properties: S,
    ) -> BoxedStrategy<Option<Properties>> {
        if m5 {
            option::of(properties).boxed()
        } else {
            Just(None).boxed()
        }
    }

    fn publish_modifiers(m5: bool, base64: bool) -> impl Strategy<Value = PublishModifiers> {
        (
            option::of(publish_topic()),
            option::of(payload(base64)),
            option::of(0..=2u8),
            option::of(any::<bool>()),
            option::of(text(6)),
            option::of(any::<i64>()),
            m5_properties(m5, publish_properties()),
        )
            .prop_map(
                |(topic, payload, qos, retain, mountpoint, throttle, properties)| PublishModifiers {
                    topic,
                    payload,
                    qos,
                    retain,
                    mountpoint,
                    throttle,
                    properties,
                },
            )
    }

    fn deliver_modifiers(m5: bool, base64: bool) -> impl Strategy<Value = DeliverModifiers> {
        (
            option::of(publish_topic()),
            option::of(payload(base64)),
            m5_properties(m5, deliver_properties()),
        )
            .prop_map(|(topic, payload, properties)| DeliverModifiers {
                topic,
                payload,
                properties,
            })
    }

    fn grant(m5: bool) -> impl Strategy<Value = SubscriptionGrant> {
        let (qos, options) = if m5 {
            (
                prop_oneof![0..=2u8, 128..=255u8].boxed(),
                (
                    option::of(any::<bool>()),
                    option::of(any::<bool>()),
                    option::of(retain_handling()),
                )
                    .boxed(),
            )
        } else {
            (
                prop_oneof![0..=2u8, Just(128u8)].boxed(),
                Just((None, None, None)).boxed(),
            )
        };
        (topic_filter(), qos, options).prop_map(
            |(topic, qos, (no_local, retain_as_published, retain_handling))| SubscriptionGrant {
                topic,
                qos,
                no_local,
                retain_as_published,
                retain_handling,
            },
        )
    }

    fn auth_modifiers() -> impl Strategy<Value = AuthModifiers> {
        (option::of(text(6)), option::of(binary(8)), option::of(0..=255u32)).prop_map(
            |(authentication_method, authentication_data, reason_code)| AuthModifiers {
                authentication_method,
                authentication_data,
                reason_code,
            },
        )
    }

    /// Modifiers of `hook`'s family that vmq accepts for it.
    fn modifiers(hook: Hook, base64: bool) -> BoxedStrategy<Modifiers> {
        let m5 = hook.is_m5();
        match hook {
            Hook::AuthOnRegister | Hook::AuthOnRegisterM5 => {
                register_modifiers(m5).prop_map(Modifiers::Register).boxed()
            }
            Hook::AuthOnPublish | Hook::AuthOnPublishM5 => {
                publish_modifiers(m5, base64).prop_map(Modifiers::Publish).boxed()
            }
            Hook::AuthOnSubscribe | Hook::AuthOnSubscribeM5 => {
                vec(grant(m5), 0..4).prop_map(Modifiers::Subscribe).boxed()
            }
            Hook::OnUnsubscribe | Hook::OnUnsubscribeM5 => {
                vec(topic_filter(), 0..4).prop_map(Modifiers::Unsubscribe).boxed()
            }
            Hook::OnDeliver | Hook::OnDeliverM5 => {
                deliver_modifiers(m5, base64).prop_map(Modifiers::Deliver).boxed()
            }
            Hook::OnAuthM5 => auth_modifiers().prop_map(Modifiers::Auth).boxed(),
            _ => panic!("{hook}: a chain hook without modifiers in this generator"),
        }
    }

    /// A verdict vmq can express for `hook`, and the encoding it is sent with.
    fn verdict_and_encoding(hook: Hook) -> impl Strategy<Value = (Verdict, PayloadEncoding)> {
        any::<bool>().prop_flat_map(move |base64| {
            let verdict = prop_oneof![
                1 => Just(Verdict::Next),
                1 => text(12).prop_map(|reason| Verdict::error(ErrorKind::Denied, reason)),
                4 => option::of(modifiers(hook, base64))
                    .prop_map(|modifiers| Verdict::Ok(Allow { modifiers, cache: None })),
            ];
            (verdict, Just(encoding(base64)))
        })
    }

    /// What an answer decodes back to: the verdict itself, except that an
    /// `ok` whose register, publish, deliver or auth modifiers set nothing is
    /// sent as a plain `{"result":"ok"}` (vmq reads an empty `modifiers`
    /// object as none, so nothing else could be sent), which comes back with
    /// `modifiers: None`. Subscribe and unsubscribe modifiers always carry
    /// their `topics` array, even an empty one, so they come back as they
    /// were.
    fn as_decoded(verdict: Verdict) -> Verdict {
        match verdict {
            Verdict::Ok(Allow {
                modifiers: Some(m),
                cache,
            }) => {
                let empty = match &m {
                    Modifiers::Register(r) => *r == RegisterModifiers::default(),
                    Modifiers::Publish(p) => *p == PublishModifiers::default(),
                    Modifiers::Deliver(d) => *d == DeliverModifiers::default(),
                    Modifiers::Auth(a) => *a == AuthModifiers::default(),
                    Modifiers::Subscribe(_) | Modifiers::Unsubscribe(_) => false,
                };
                Verdict::Ok(Allow {
                    modifiers: (!empty).then_some(m),
                    cache,
                })
            }
            other => other,
        }
    }

    #[test]
    fn every_chain_hook_answer_round_trips() {
        for hook in chain_hooks() {
            check(
                hook,
                CASES_PER_HOOK,
                verdict_and_encoding(hook),
                |(verdict, encoding)| {
                    let answer = encode_answer(hook, &verdict, encoding);
                    let body = serde_json::to_vec(&answer).expect("JSON");
                    prop_assert_eq!(
                        decode_answer(hook, &body, encoding),
                        Ok(as_decoded(verdict)),
                        "answer: {}",
                        answer
                    );
                    Ok(())
                },
            );
        }
    }
}
