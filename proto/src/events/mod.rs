//! The event-body dialects a notification webhook can speak besides
//! vmq_webhooks': RMQTT's `rmqtt-web-hook` ([`rmqtt`]) and NanoMQ's
//! `webhook` ([`nanomq`]). Encode only: these systems send events and ignore
//! the answer.
//!
//! A [`Dialect`] maps each hook to the event its system sends for it
//! ([`Dialect::event`]); a hook with no event there cannot take the
//! dialect (configuration refuses it). One hook call becomes one body, or
//! one per topic where the system sends one per topic (RMQTT's
//! `session_subscribed`). What hookd does not know about a call (a broker's
//! node id, a publisher's address, a packet id) is written as the systems
//! write an unknown value, `null`, except `node`, which is always `1`
//! (RMQTT's single-node id); README's dialect table lists each.

pub mod nanomq;
pub mod rmqtt;

use crate::{hook::Hook, payload::Encoding, topic::TopicFilter};

/// The JSON body a webhook receives: `dialect` in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// vmq_webhooks' request bodies ([`crate::vmq`]), for every hook.
    #[default]
    Vernemq,
    /// RMQTT `rmqtt-web-hook` event bodies, notification hooks only.
    Rmqtt,
    /// NanoMQ `webhook` event bodies, notification hooks only.
    Nanomq,
}

/// How one webhook wants its events written.
#[derive(Debug, Clone, Default)]
pub struct EventOptions {
    /// How payloads are written.
    pub encoding: Encoding,
    /// The `action` to write instead of the event name (RMQTT's rule
    /// `action`).
    pub action: Option<String>,
    /// Only topics matching one of these are sent (per topic where a call
    /// has several); empty sends every topic.
    pub topics: Vec<TopicFilter>,
}

/// When an event happened, in ms since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    /// When hookd accepted the call (the event's own time: `connected_at`,
    /// `ts`, …).
    pub accepted_ms: u64,
    /// When the body is written (RMQTT's `time`).
    pub now_ms: u64,
}

/// Why a call cannot be written as an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The dialect has no event for the hook.
    #[error("the {dialect} dialect has no event for {hook}")]
    NoEvent {
        /// The dialect's name.
        dialect: &'static str,
        /// The hook.
        hook: Hook,
    },
    /// The payload cannot be written in the webhook's encoding.
    #[error(transparent)]
    Payload(#[from] crate::payload::NotUtf8),
}

/// A dialect name that is not one of the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a dialect; valid values are `{}`, `{}`, `{}`", Dialect::Vernemq.name(), Dialect::Rmqtt.name(), Dialect::Nanomq.name())]
pub struct UnknownDialect {
    /// The name as given.
    pub given: String,
}

impl std::str::FromStr for Dialect {
    type Err = UnknownDialect;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Dialect::ALL
            .into_iter()
            .find(|value| value.name() == text)
            .ok_or_else(|| UnknownDialect {
                given: text.to_owned(),
            })
    }
}

/// From its name, with an error listing the valid names (serde's derived
/// enum errors do not list them).
impl<'de> serde::Deserialize<'de> for Dialect {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 3] = [Dialect::Vernemq, Dialect::Rmqtt, Dialect::Nanomq];

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Vernemq => "vernemq",
            Dialect::Rmqtt => "rmqtt",
            Dialect::Nanomq => "nanomq",
        }
    }

    /// The event (the body's `action`) this dialect sends for `hook`, or
    /// `None` if it has none; vmq's is the hook itself.
    pub fn event(self, hook: Hook) -> Option<&'static str> {
        match self {
            Dialect::Vernemq => Some(hook.name()),
            Dialect::Rmqtt => rmqtt::event(hook),
            Dialect::Nanomq => nanomq::event(hook),
        }
    }
}

/// `ms` since the Unix epoch as RMQTT's `time`, `%Y-%m-%d %H:%M:%S%.3f`, in
/// UTC (RMQTT writes its host's local time; hookd's hosts and containers run
/// in UTC, and a fixed zone keeps bodies comparable across replicas).
pub fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        ms % 1000
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `topic` passes the webhook's `topics` rules.
fn wanted(options: &EventOptions, topic: &str) -> bool {
    options.topics.is_empty() || options.topics.iter().any(|f| f.matches(topic))
}

/// Serialises one body; a `Value` always serialises.
fn to_vec(body: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}

/// What the dialects' golden tests share: the moment their bodies are
/// stamped with, a client, and a call's bodies as JSON.
#[cfg(test)]
pub(crate) mod fixtures {
    use serde_json::{Value, from_slice};

    use super::{EventError, EventOptions, Moment};
    use crate::{Hook, HookArgs, HookCall, call::SubscriberId};

    /// When the golden bodies' events were accepted, and are written.
    pub const AT: Moment = Moment {
        accepted_ms: 1_706_703_724_960,
        now_ms: 1_706_703_725_001,
    };

    /// A client without a mountpoint.
    pub fn client(id: &str) -> SubscriberId {
        SubscriberId {
            mountpoint: String::new(),
            client_id: id.into(),
        }
    }

    /// A dialect's encoder.
    pub type Encode = fn(&HookCall, &EventOptions, Moment) -> Result<Vec<Vec<u8>>, EventError>;

    /// The bodies `encode` writes for a `hook` call with `args`, as JSON.
    pub fn bodies(encode: Encode, hook: Hook, args: HookArgs, options: &EventOptions) -> Vec<Value> {
        let call = HookCall::new(hook, args).expect("a valid call");
        encode(&call, options, AT)
            .expect("encodes")
            .iter()
            .map(|b| from_slice(b).expect("JSON"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_is_written_as_rmqtt_formats_it() {
        // 1706703724960 ms is 2024-01-31 12:22:04.960 UTC (NanoMQ's tutorial
        // sample `ts`); the others are checked with `date -u -d @secs`.
        assert_eq!(format_time(1_706_703_724_960), "2024-01-31 12:22:04.960");
        assert_eq!(format_time(0), "1970-01-01 00:00:00.000");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00.000");
        assert_eq!(format_time(4_102_444_799_999), "2099-12-31 23:59:59.999");
    }

    #[test]
    fn vernemq_has_an_event_for_every_hook() {
        for hook in Hook::ALL {
            assert_eq!(Dialect::Vernemq.event(hook), Some(hook.name()));
        }
    }
}
