//! Reads the JSON body vmq_webhooks POSTs into the typed `hookd.v1` call.
//!
//! This is the inverse of hookd's own `webhook::request` (which builds these
//! bodies for endpoints), field for field and quirk for quirk
//! (`shared/reference/vmq-webhooks-protocol.md` §1.2–1.3):
//!
//! - `username` / `password` are strings or `null` (absent);
//! - `peer_addr` + `peer_port` make the [`pb::Peer`]; vmq writes `"undefined"`
//!   for both when it cannot format the address, which becomes port 0;
//! - `auth_on_register*` may carry listener metadata (`listener_addr`,
//!   `listener_port`, `listener_type`, `client_cert`);
//! - `payload` and `client_cert` are base64 unless the sidecar is configured
//!   for raw payloads; `auth_on_publish*` may lack `payload` (vmq's
//!   `no_payload`);
//! - MQTT 5 `properties` use the `p_*` names: `p_user_property` key/val and
//!   `p_authentication_data` are always base64, `p_payload_format_indicator`
//!   is `"utf8"`/`"undefined"`, `p_correlation_data` is raw text and
//!   `p_response_topic` is kept exactly as sent (vmq sends it without
//!   separators; hookd sends it on unchanged);
//! - subscriptions carry `no_local`, `rap` and `retain_handling` in MQTT 5.
//!
//! A missing required field or a value of the wrong type is a
//! [`RequestError`], never a panic and never a guess. Members this reader does
//! not know (vmq passes extra listener keys through, newer brokers may send
//! more properties) are ignored and logged at debug level: hookd's contract
//! has no place for them.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use serde_json::{Map, Value};
use tracing::debug;

use super::RequestError;
use crate::pb::{self, Hook, hook_call::Hook as Args};

/// The hook a `vernemq-hook` header names (one of vmq_webhooks' 22 names,
/// e.g. `auth_on_register_m5`), or `None` for anything else.
pub fn hook_from_name(name: &str) -> Option<Hook> {
    let well_formed = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'5');
    if !well_formed {
        return None;
    }
    match Hook::from_str_name(&format!("HOOK_{}", name.to_ascii_uppercase())) {
        Some(Hook::Unspecified) | None => None,
        Some(hook) => Some(hook),
    }
}

/// vmq_webhooks' name of `hook`, e.g. `auth_on_register_m5`.
pub fn hook_name(hook: Hook) -> String {
    let name = hook.as_str_name();
    name.strip_prefix("HOOK_").unwrap_or(name).to_ascii_lowercase()
}

/// Parses the body vmq_webhooks sent for `hook`. `base64_payload` says
/// whether `payload` and `client_cert` are base64 (vmq's default) or raw text.
pub fn parse(hook: Hook, body: &[u8], base64_payload: bool) -> Result<Args, RequestError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| RequestError::NotJson(e.to_string()))?;
    let mut o = Object::new(value, String::new())?;
    let r = Reader { base64_payload };
    let args = match hook {
        Hook::AuthOnRegister => Args::AuthOnRegister(pb::AuthOnRegister {
            peer: Some(r.peer(&mut o)?),
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            username: o.nullable_string("username")?,
            password: o.nullable_string("password")?.map(String::into_bytes),
            clean_session: o.boolean("clean_session")?,
            listener: r.listener(&mut o)?,
        }),
        Hook::AuthOnRegisterM5 => Args::AuthOnRegisterM5(pb::AuthOnRegisterM5 {
            peer: Some(r.peer(&mut o)?),
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            username: o.nullable_string("username")?,
            password: o.nullable_string("password")?.map(String::into_bytes),
            clean_start: o.boolean("clean_start")?,
            properties: r.properties(&mut o)?,
            listener: r.listener(&mut o)?,
        }),
        Hook::AuthOnPublish => Args::AuthOnPublish(pb::AuthOnPublish {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            qos: o.qos("qos")?,
            topic: o.string("topic")?,
            payload: r.payload(&mut o, true)?,
            retain: o.boolean("retain")?,
        }),
        Hook::AuthOnPublishM5 => Args::AuthOnPublishM5(pb::AuthOnPublishM5 {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            qos: o.qos("qos")?,
            topic: o.string("topic")?,
            payload: r.payload(&mut o, true)?,
            retain: o.boolean("retain")?,
            properties: r.properties(&mut o)?,
        }),
        Hook::AuthOnSubscribe => Args::AuthOnSubscribe(pb::AuthOnSubscribe {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            topics: r.subscriptions(&mut o)?,
        }),
        Hook::AuthOnSubscribeM5 => Args::AuthOnSubscribeM5(pb::AuthOnSubscribeM5 {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            topics: r.subscriptions(&mut o)?,
            properties: r.properties(&mut o)?,
        }),
        Hook::OnRegister => Args::OnRegister(pb::OnRegister {
            peer: Some(r.peer(&mut o)?),
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            username: o.nullable_string("username")?,
        }),
        Hook::OnRegisterM5 => Args::OnRegisterM5(pb::OnRegisterM5 {
            peer: Some(r.peer(&mut o)?),
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            username: o.nullable_string("username")?,
            properties: r.properties(&mut o)?,
        }),
        Hook::OnPublish => Args::OnPublish(pb::OnPublish {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            qos: o.qos("qos")?,
            topic: o.string("topic")?,
            payload: r.payload(&mut o, false)?,
            retain: o.boolean("retain")?,
        }),
        Hook::OnPublishM5 => Args::OnPublishM5(pb::OnPublishM5 {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            qos: o.qos("qos")?,
            topic: o.string("topic")?,
            payload: r.payload(&mut o, false)?,
            retain: o.boolean("retain")?,
            properties: r.properties(&mut o)?,
        }),
        Hook::OnSubscribe => Args::OnSubscribe(pb::OnSubscribe {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            topics: r.subscriptions(&mut o)?,
        }),
        Hook::OnSubscribeM5 => Args::OnSubscribeM5(pb::OnSubscribeM5 {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            topics: r.subscriptions(&mut o)?,
            properties: r.properties(&mut o)?,
        }),
        Hook::OnUnsubscribe => Args::OnUnsubscribe(pb::OnUnsubscribe {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            topics: r.filters(&mut o)?,
        }),
        Hook::OnUnsubscribeM5 => Args::OnUnsubscribeM5(pb::OnUnsubscribeM5 {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            topics: r.filters(&mut o)?,
            properties: r.properties(&mut o)?,
        }),
        Hook::OnDeliver => Args::OnDeliver(pb::OnDeliver {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            qos: o.qos("qos")?,
            topic: o.string("topic")?,
            payload: r.payload(&mut o, false)?,
            retain: o.boolean("retain")?,
            properties: r.properties(&mut o)?,
        }),
        Hook::OnDeliverM5 => Args::OnDeliverM5(pb::OnDeliverM5 {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            qos: o.qos("qos")?,
            topic: o.string("topic")?,
            payload: r.payload(&mut o, false)?,
            retain: o.boolean("retain")?,
            properties: r.properties(&mut o)?,
        }),
        Hook::OnAuthM5 => Args::OnAuthM5(pb::OnAuthM5 {
            username: o.nullable_string("username")?,
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            properties: r.properties(&mut o)?,
        }),
        Hook::OnOfflineMessage => Args::OnOfflineMessage(pb::OnOfflineMessage {
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
            qos: o.qos("qos")?,
            topic: o.string("topic")?,
            payload: r.payload(&mut o, false)?,
            retain: o.boolean("retain")?,
        }),
        Hook::OnClientWakeup => Args::OnClientWakeup(pb::OnClientWakeup {
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
        }),
        Hook::OnClientOffline => Args::OnClientOffline(pb::OnClientOffline {
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
        }),
        Hook::OnClientGone => Args::OnClientGone(pb::OnClientGone {
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
        }),
        Hook::OnSessionExpired => Args::OnSessionExpired(pb::OnSessionExpired {
            mountpoint: o.string("mountpoint")?,
            client_id: o.string("client_id")?,
        }),
        Hook::Unspecified => return Err(RequestError::UnknownHook(hook_name(hook))),
    };
    o.finish();
    Ok(args)
}

/// Reads the parts whose encoding depends on the sidecar's options.
struct Reader {
    base64_payload: bool,
}

impl Reader {
    /// `peer_addr` + `peer_port`. vmq sends `"undefined"` for both when it
    /// cannot format the peer; the port then becomes 0.
    fn peer(&self, o: &mut Object) -> Result<pb::Peer, RequestError> {
        let addr = o.string("peer_addr")?;
        let port = match o.required("peer_port")? {
            Value::String(s) if s == "undefined" => 0,
            Value::Null => 0,
            value => o.uint_value("peer_port", &value, u64::from(u16::MAX))?,
        };
        Ok(pb::Peer { addr, port })
    }

    /// The listener metadata of `auth_on_register*`, when vmq sent any.
    fn listener(&self, o: &mut Object) -> Result<Option<pb::Listener>, RequestError> {
        let keys = ["listener_addr", "listener_port", "listener_type", "client_cert"];
        if !keys.iter().any(|k| o.map.contains_key(*k)) {
            return Ok(None);
        }
        let port = match o.take("listener_port") {
            None | Some(Value::Null) => None,
            Some(value) => Some(o.uint_value("listener_port", &value, u64::from(u16::MAX))?),
        };
        Ok(Some(pb::Listener {
            addr: o.nullable_string("listener_addr")?,
            port,
            r#type: o.nullable_string("listener_type")?,
            client_cert: match o.nullable_string("client_cert")? {
                Some(text) => Some(self.decode_payload(&o.name("client_cert"), text)?),
                None => None,
            },
        }))
    }

    /// `payload`, base64 unless configured raw. `auth_on_publish*` may lack
    /// it when vmq's endpoint has `no_payload` on (`may_be_absent`).
    fn payload(&self, o: &mut Object, may_be_absent: bool) -> Result<Vec<u8>, RequestError> {
        if may_be_absent && !o.map.contains_key("payload") {
            return Ok(Vec::new());
        }
        let text = o.string("payload")?;
        self.decode_payload(&o.name("payload"), text)
    }

    fn decode_payload(&self, field: &str, text: String) -> Result<Vec<u8>, RequestError> {
        if self.base64_payload {
            BASE64
                .decode(text.as_bytes())
                .map_err(|_| invalid(field, "base64 text (the sidecar runs with --base64-payload=true)"))
        } else {
            Ok(text.into_bytes())
        }
    }

    /// The `topics` of a subscribe hook: `[{topic, qos, no_local?, rap?, retain_handling?}]`.
    fn subscriptions(&self, o: &mut Object) -> Result<Vec<pb::Subscription>, RequestError> {
        let items = o.array("topics")?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let mut t = Object::new(item, format!("topics[{i}]."))?;
                let subscription = pb::Subscription {
                    topic: t.string("topic")?,
                    // 0..2, or a rejecting reason code (128 in on_subscribe*).
                    qos: t.uint("qos", u64::from(u8::MAX))?,
                    no_local: t.optional_bool("no_local")?,
                    retain_as_published: t.optional_bool("rap")?,
                    retain_handling: match t.nullable_string("retain_handling")?.as_deref() {
                        None => None,
                        Some("send_retain") => Some(pb::RetainHandling::SendRetain as i32),
                        Some("send_if_new_sub") => Some(pb::RetainHandling::SendIfNewSub as i32),
                        Some("dont_send") => Some(pb::RetainHandling::DontSend as i32),
                        Some(_) => {
                            return Err(invalid(
                                &t.name("retain_handling"),
                                "\"send_retain\", \"send_if_new_sub\" or \"dont_send\"",
                            ));
                        }
                    },
                };
                t.finish();
                Ok(subscription)
            })
            .collect()
    }

    /// The `topics` of an unsubscribe hook: an array of filter strings.
    fn filters(&self, o: &mut Object) -> Result<Vec<String>, RequestError> {
        o.array("topics")?
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                _ => Err(invalid(&format!("topics[{i}]"), "a string")),
            })
            .collect()
    }

    /// MQTT 5 `properties` (`p_*` keys), `None` when the body has none.
    fn properties(&self, o: &mut Object) -> Result<Option<pb::Properties>, RequestError> {
        let value = match o.take("properties") {
            None | Some(Value::Null) => return Ok(None),
            Some(value) => value,
        };
        let mut p = Object::new(value, "properties.".to_owned())?;
        let properties = pb::Properties {
            session_expiry_interval: p.optional_u32("p_session_expiry_interval")?,
            receive_max: p.optional_u32("p_receive_max")?,
            topic_alias_max: p.optional_u32("p_topic_alias_max")?,
            request_response_info: p.optional_bool("p_request_response_info")?,
            request_problem_info: p.optional_bool("p_request_problem_info")?,
            user_property: user_properties(&mut p)?,
            correlation_data: p.nullable_string("p_correlation_data")?.map(String::into_bytes),
            response_topic: p.nullable_string("p_response_topic")?,
            payload_format_indicator: match p.nullable_string("p_payload_format_indicator")?.as_deref() {
                None => pb::PayloadFormat::Unspecified as i32,
                Some("utf8") => pb::PayloadFormat::Utf8 as i32,
                Some("undefined") => pb::PayloadFormat::Undefined as i32,
                Some(_) => {
                    return Err(invalid(
                        &p.name("p_payload_format_indicator"),
                        "\"utf8\" or \"undefined\"",
                    ));
                }
            },
            content_type: p.nullable_string("p_content_type")?,
            subscription_id: subscription_ids(&mut p)?,
            message_expiry_interval: p.optional_u32("p_message_expiry_interval")?,
            authentication_method: p.nullable_string("p_authentication_method")?,
            authentication_data: match p.nullable_string("p_authentication_data")? {
                Some(text) => Some(
                    BASE64
                        .decode(text.as_bytes())
                        .map_err(|_| invalid(&p.name("p_authentication_data"), "base64 text"))?,
                ),
                None => None,
            },
            will_delay_interval: p.optional_u32("p_will_delay_interval")?,
            maximum_packet_size: p.optional_u32("p_max_packet_size")?,
        };
        p.finish();
        Ok(Some(properties))
    }
}

/// `p_user_property`: `[{"key": base64, "val": base64}]`.
fn user_properties(p: &mut Object) -> Result<Vec<pb::UserProperty>, RequestError> {
    let items = match p.take("p_user_property") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(invalid(
                &p.name("p_user_property"),
                "an array of {\"key\", \"val\"} objects",
            ));
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let mut u = Object::new(item, format!("properties.p_user_property[{i}]."))?;
            let mut decode = |key: &str| -> Result<String, RequestError> {
                let text = u.string(key)?;
                let bytes = BASE64
                    .decode(text.as_bytes())
                    .map_err(|_| invalid(&u.name(key), "base64 text"))?;
                String::from_utf8(bytes).map_err(|_| invalid(&u.name(key), "base64 of UTF-8 text"))
            };
            let property = pb::UserProperty {
                key: decode("key")?,
                value: decode("val")?,
            };
            u.finish();
            Ok(property)
        })
        .collect()
}

/// `p_subscription_id`: an array of integers (a lone integer is accepted too).
fn subscription_ids(p: &mut Object) -> Result<Vec<u32>, RequestError> {
    let field = p.name("p_subscription_id");
    let items = match p.take("p_subscription_id") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(single) => vec![single],
    };
    items
        .iter()
        .map(|item| {
            item.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| invalid(&field, "an array of integers 0..=4294967295"))
        })
        .collect()
}

fn invalid(field: &str, expected: &str) -> RequestError {
    RequestError::Invalid {
        field: field.to_owned(),
        expected: expected.to_owned(),
    }
}

/// A JSON object being taken apart, member by member; `path` prefixes the
/// field names in errors (e.g. `topics[1].`).
struct Object {
    map: Map<String, Value>,
    path: String,
}

impl Object {
    fn new(value: Value, path: String) -> Result<Self, RequestError> {
        match value {
            Value::Object(map) => Ok(Self { map, path }),
            _ if path.is_empty() => Err(RequestError::NotObject),
            _ => Err(invalid(path.trim_end_matches('.'), "an object")),
        }
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.path)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    fn required(&mut self, key: &str) -> Result<Value, RequestError> {
        self.take(key).ok_or_else(|| RequestError::Missing {
            field: self.name(key),
        })
    }

    fn string(&mut self, key: &str) -> Result<String, RequestError> {
        match self.required(key)? {
            Value::String(s) => Ok(s),
            _ => Err(invalid(&self.name(key), "a string")),
        }
    }

    /// A string, or `null` / absent for none.
    fn nullable_string(&mut self, key: &str) -> Result<Option<String>, RequestError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(&self.name(key), "a string or null")),
        }
    }

    fn boolean(&mut self, key: &str) -> Result<bool, RequestError> {
        match self.required(key)? {
            Value::Bool(b) => Ok(b),
            _ => Err(invalid(&self.name(key), "a boolean")),
        }
    }

    fn optional_bool(&mut self, key: &str) -> Result<Option<bool>, RequestError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(invalid(&self.name(key), "a boolean")),
        }
    }

    fn uint_value(&self, key: &str, value: &Value, max: u64) -> Result<u32, RequestError> {
        value
            .as_u64()
            .filter(|&n| n <= max)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| invalid(&self.name(key), &format!("an integer 0..={max}")))
    }

    fn uint(&mut self, key: &str, max: u64) -> Result<u32, RequestError> {
        let value = self.required(key)?;
        self.uint_value(key, &value, max)
    }

    fn optional_u32(&mut self, key: &str) -> Result<Option<u32>, RequestError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => self.uint_value(key, &value, u64::from(u32::MAX)).map(Some),
        }
    }

    /// The QoS of a message: 0, 1 or 2.
    fn qos(&mut self, key: &str) -> Result<u32, RequestError> {
        self.uint(key, 2)
    }

    fn array(&mut self, key: &str) -> Result<Vec<Value>, RequestError> {
        match self.required(key)? {
            Value::Array(items) => Ok(items),
            _ => Err(invalid(&self.name(key), "an array")),
        }
    }

    /// Done: whatever is left is not part of hookd's contract.
    fn finish(self) {
        if !self.map.is_empty() {
            let ignored: Vec<String> = self.map.keys().map(|k| format!("{}{k}", self.path)).collect();
            debug!(?ignored, "members hookd has no field for were ignored");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse_json(hook: Hook, body: Value) -> Result<Args, RequestError> {
        parse(hook, body.to_string().as_bytes(), true)
    }

    #[test]
    fn every_vmq_hook_name_maps_to_its_hook_and_back() {
        let mut seen = 0;
        for value in 1..=22 {
            let hook = Hook::try_from(value).expect("22 hooks");
            let name = hook_name(hook);
            assert_eq!(hook_from_name(&name), Some(hook), "{name}");
            seen += 1;
        }
        assert_eq!(seen, 22);
        assert_eq!(hook_name(Hook::AuthOnRegisterM5), "auth_on_register_m5");
        for bad in [
            "",
            "unspecified",
            "AUTH_ON_REGISTER",
            "auth_on_register ",
            "hook_auth_on_register",
        ] {
            assert_eq!(hook_from_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn register_with_null_credentials_and_listener_metadata() {
        let body = json!({"peer_addr":"127.0.0.1","peer_port":5000,"mountpoint":"","client_id":"c",
            "username":null,"password":null,"clean_session":true,
            "listener_addr":"0.0.0.0","listener_port":1883,"listener_type":"mqtt","client_cert":"Y2VydA=="});
        let Ok(Args::AuthOnRegister(a)) = parse_json(Hook::AuthOnRegister, body) else {
            panic!("auth_on_register")
        };
        assert_eq!(
            a.peer,
            Some(pb::Peer {
                addr: "127.0.0.1".into(),
                port: 5000
            })
        );
        assert_eq!((a.username, a.password), (None, None));
        assert!(a.clean_session);
        let listener = a.listener.expect("listener metadata");
        assert_eq!(listener.port, Some(1883));
        assert_eq!(listener.client_cert.as_deref(), Some(&b"cert"[..]));
    }

    #[test]
    fn properties_use_vmq_encodings() {
        let body = json!({"username":"u","mountpoint":"","client_id":"c","qos":1,"topic":"t",
            "payload":"aGk=","retain":false,"properties":{
                "p_user_property":[{"key":"azE=","val":"djE="}],"p_response_topic":"responsetopic",
                "p_payload_format_indicator":"utf8","p_correlation_data":"corr","p_subscription_id":[1,2],
                "p_authentication_data":"AAE=","p_max_packet_size":1024}});
        let Ok(Args::OnDeliverM5(d)) = parse_json(Hook::OnDeliverM5, body) else {
            panic!("on_deliver_m5")
        };
        assert_eq!(d.payload, b"hi");
        let p = d.properties.expect("properties");
        assert_eq!(
            p.user_property,
            vec![pb::UserProperty {
                key: "k1".into(),
                value: "v1".into()
            }]
        );
        assert_eq!(p.response_topic.as_deref(), Some("responsetopic"));
        assert_eq!(p.payload_format_indicator, pb::PayloadFormat::Utf8 as i32);
        assert_eq!(p.correlation_data.as_deref(), Some(&b"corr"[..]));
        assert_eq!(p.subscription_id, vec![1, 2]);
        assert_eq!(p.authentication_data.as_deref(), Some(&[0u8, 1][..]));
        assert_eq!(p.maximum_packet_size, Some(1024));
    }

    #[test]
    fn raw_payloads_are_taken_as_text() {
        let body =
            json!({"mountpoint":"","client_id":"c","qos":0,"topic":"t","payload":"hello","retain":true});
        let Ok(Args::OnOfflineMessage(m)) = parse(Hook::OnOfflineMessage, body.to_string().as_bytes(), false)
        else {
            panic!("on_offline_message")
        };
        assert_eq!(m.payload, b"hello");
    }

    #[test]
    fn subscription_options_are_read() {
        let body = json!({"username":"u","mountpoint":"","client_id":"c","properties":{},
            "topics":[{"topic":"a/#","qos":1,"no_local":true,"rap":false,"retain_handling":"dont_send"},
                      {"topic":"b","qos":128}]});
        let Ok(Args::OnSubscribeM5(s)) = parse_json(Hook::OnSubscribeM5, body) else {
            panic!("on_subscribe_m5")
        };
        assert_eq!(s.topics[0].no_local, Some(true));
        assert_eq!(s.topics[0].retain_as_published, Some(false));
        assert_eq!(
            s.topics[0].retain_handling,
            Some(pb::RetainHandling::DontSend as i32)
        );
        assert_eq!(s.topics[1].qos, 128);
        assert_eq!(s.properties, Some(pb::Properties::default()));
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases = [
            (Hook::AuthOnRegister, json!([1]), "not a JSON object"),
            (
                Hook::OnClientGone,
                json!({"client_id":"c"}),
                "`mountpoint` is missing",
            ),
            (
                Hook::OnClientGone,
                json!({"mountpoint":1,"client_id":"c"}),
                "`mountpoint` must be a string",
            ),
            (
                Hook::AuthOnPublish,
                json!({"username":null,"mountpoint":"","client_id":"c","qos":3,"topic":"t","payload":"","retain":false}),
                "`qos` must be an integer 0..=2",
            ),
            (
                Hook::AuthOnPublish,
                json!({"username":null,"mountpoint":"","client_id":"c","qos":1,"topic":"t","payload":"!!","retain":false}),
                "`payload` must be base64",
            ),
            (
                Hook::AuthOnSubscribe,
                json!({"username":null,"mountpoint":"","client_id":"c","topics":[{"topic":"a"}]}),
                "`topics[0].qos` is missing",
            ),
            (
                Hook::OnAuthM5,
                json!({"username":null,"mountpoint":"","client_id":"c","properties":{"p_authentication_data":"%"}}),
                "`properties.p_authentication_data` must be base64",
            ),
        ];
        for (hook, body, expected) in cases {
            let error = parse_json(hook, body)
                .expect_err("bad input is rejected")
                .to_string();
            assert!(error.contains(expected), "{error:?} should contain {expected:?}");
        }
        assert!(matches!(
            parse(Hook::OnClientGone, b"{", true),
            Err(RequestError::NotJson(_))
        ));
    }
}
