//! The domain answer to a hook call: allow (with typed modifiers), no
//! opinion, reject (with a kind that tells *why*), or acknowledged.
//!
//! Like [`crate::call`], these types know nothing of the wire: the webhook
//! back door produces them from JSON answers, the chain combines them, and a
//! front door converts the final one for the broker.

use std::{fmt, time::Duration};

use bytes::Bytes;

use crate::call::{Properties, RetainHandling, UserProperty};

/// The outcome of a hook call.
// Boxing `Allow` would cost an allocation on every `ok`; a verdict is built
// once per call and moved a handful of times, so its size is not a concern.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Allowed; modifiers, if any, must be applied by the broker.
    Ok(Allow),
    /// No opinion: the broker goes on to its other plugins or its default.
    Next,
    /// Rejected.
    Error(HookError),
    /// A notification was accepted; its delivery never delays the broker.
    Ack,
}

/// An `ok` answer with what came with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allow {
    /// The changes the endpoint asked for; `None` when it sent none.
    pub modifiers: Option<Modifiers>,
    /// Set when the answer may be reused (cache-control max-age).
    pub cache: Option<CacheInfo>,
}

/// Whether and for how long an `ok` verdict may be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheInfo {
    /// True when this verdict came from the cache, no endpoint was called.
    pub hit: bool,
    /// How much longer the verdict stays valid.
    pub ttl: Duration,
}

/// A rejection and its cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {reason}")]
pub struct HookError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The endpoint's `error` value for [`ErrorKind::Denied`], else a description.
    pub reason: String,
}

/// Why a call was rejected; lets a broker tell "bad credentials" from
/// "auth service unavailable".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// An endpoint answered `{"result": {"error": …}}`.
    Denied,
    /// An endpoint could not be reached.
    Unavailable,
    /// An endpoint, or the call as a whole, ran past its deadline.
    Timeout,
    /// An endpoint's answer is not a valid vmq_webhooks response.
    InvalidResponse,
    /// The call itself was malformed.
    InvalidCall,
    /// hookd did not run the call (shutting down or over a limit).
    Overloaded,
}

/// The typed modifiers of an `ok`, one variant per hook family.
#[derive(Debug, Clone, PartialEq)]
pub enum Modifiers {
    /// `auth_on_register*`.
    Register(RegisterModifiers),
    /// `auth_on_publish*`.
    Publish(PublishModifiers),
    /// `auth_on_subscribe*`: the subscriptions that replace the requested ones.
    Subscribe(Vec<SubscriptionGrant>),
    /// `on_unsubscribe*`: the filters that replace the requested ones.
    Unsubscribe(Vec<String>),
    /// `on_deliver*`.
    Deliver(DeliverModifiers),
    /// `on_auth_m5`.
    Auth(AuthModifiers),
}

/// Modifiers of `auth_on_register*`; `None` leaves a setting unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct RegisterModifiers {
    pub allow_register: Option<bool>,
    pub allow_publish: Option<bool>,
    pub allow_subscribe: Option<bool>,
    pub allow_unsubscribe: Option<bool>,
    pub max_message_size: Option<i64>,
    pub max_connection_lifetime: Option<i64>,
    pub max_message_rate: Option<i64>,
    pub max_inflight_messages: Option<i64>,
    /// In milliseconds.
    pub retry_interval: Option<i64>,
    pub max_online_messages: Option<i64>,
    pub max_offline_messages: Option<i64>,
    pub max_drain_time: Option<i64>,
    pub max_msgs_per_drain_step: Option<i64>,
    pub username: Option<String>,
    pub clean_session: Option<bool>,
    pub upgrade_qos: Option<bool>,
    pub shared_subscription_policy: Option<String>,
    pub queue_type: Option<String>,
    /// A new (mountpoint, client id); the endpoint sends both or neither.
    pub subscriber_id: Option<(String, String)>,
    /// MQTT 5 only.
    pub user_property: Vec<UserProperty>,
    /// MQTT 5 only.
    pub session_expiry_interval: Option<u32>,
}

/// Modifiers of `auth_on_publish*`.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct PublishModifiers {
    pub topic: Option<String>,
    /// Already base64-decoded when the endpoint uses base64 payloads.
    pub payload: Option<Bytes>,
    pub qos: Option<u8>,
    pub retain: Option<bool>,
    pub mountpoint: Option<String>,
    pub throttle: Option<i64>,
    /// MQTT 5 only, limited to the properties a publish may change.
    pub properties: Option<Properties>,
}

/// One subscription as an endpoint rewrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionGrant {
    /// The topic filter.
    pub topic: String,
    /// 0..=2 grants that QoS; 128 and above is a reason code rejecting the topic.
    pub qos: u8,
    /// MQTT 5 no-local option.
    pub no_local: Option<bool>,
    /// MQTT 5 retain-as-published option.
    pub retain_as_published: Option<bool>,
    /// MQTT 5 retain handling.
    pub retain_handling: Option<RetainHandling>,
}

/// Modifiers of `on_deliver*`.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct DeliverModifiers {
    pub topic: Option<String>,
    pub payload: Option<Bytes>,
    /// MQTT 5 only, limited to the properties a delivery may change.
    pub properties: Option<Properties>,
}

/// Modifiers of `on_auth_m5`.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct AuthModifiers {
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Bytes>,
    pub reason_code: Option<u32>,
}

impl Verdict {
    /// A rejection of `kind` with a reason.
    pub fn error(kind: ErrorKind, reason: impl Into<String>) -> Self {
        Verdict::Error(HookError {
            kind,
            reason: reason.into(),
        })
    }

    /// A plain `ok` without modifiers.
    pub fn ok() -> Self {
        Verdict::Ok(Allow::default())
    }

    /// A short label for logs and metrics: `ok`, `next`, `ack` or the error kind.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Ok(_) => "ok",
            Verdict::Next => "next",
            Verdict::Ack => "ack",
            Verdict::Error(e) => e.kind.label(),
        }
    }
}

impl ErrorKind {
    /// The kind as a short snake_case label.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Denied => "denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::InvalidCall => "invalid_call",
            ErrorKind::Overloaded => "overloaded",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Modifiers {
    /// The modifiers without a payload change: what the cache may store,
    /// since a payload rewrite belongs to one message (as in vmq_webhooks).
    pub fn without_payload(mut self) -> Self {
        match &mut self {
            Modifiers::Publish(p) => p.payload = None,
            Modifiers::Deliver(d) => d.payload = None,
            _ => {}
        }
        self
    }
}
