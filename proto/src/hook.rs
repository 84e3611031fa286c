//! The hook table: one row per hook, and everything about hooks generated
//! from it.
//!
//! [`for_each_hook!`](crate::for_each_hook) holds the table. A row names the
//! hook (its `Hook` variant, which is also the name of its protobuf message
//! and `oneof` arm, and its vmq_webhooks name), the argument shape with the
//! fields its message has beyond the shape's core, whether the broker waits
//! for a decision (`Chain`) or only tells (`Notify`), and whether `ok`
//! answers may be cached. From it come the [`Hook`] enum, [`Hook::ALL`],
//! [`Hook::COUNT`], name parsing, classification, metric indexes, the
//! protobuf enum and call conversions ([`crate::convert`]) and the broker
//! client's typed methods (`hookd-bridge`). Nothing else lists hooks.
//!
//! The shapes and their options (see [`crate::call`] for the types):
//! - `Register { clean: <field>, properties: yes|no }`: `clean` names the
//!   message's clean-session field (`clean_session` or `clean_start`);
//! - `Registered { properties: yes|no }`;
//! - `Publish { username: yes|no, properties: yes|no }`;
//! - `Subscribe { properties: yes|no }`, `Unsubscribe { properties: yes|no }`;
//! - `Auth {}` (always has properties), `Session {}` (a client id only);
//! - `Connect { connack: yes|no }`: a CONNECT's facts, and with `connack`
//!   the CONNACK's reason code and session-present flag;
//! - `Delivery { reason: yes|no }`: a message with its receiver and
//!   publisher, and with `reason` why it was dropped (the receiver may then
//!   be absent).
//!
//! `properties: yes` on an `_m5` hook means the message carries MQTT 5
//! properties; an absent `properties` on the wire means "none". The hooks
//! after the first 22 are hookd's own (vmq_webhooks has no such hooks): they
//! serve every MQTT version, so `properties: yes` there means "present for
//! MQTT 5 clients".

use std::{fmt, str::FromStr};

/// The hook table, handed to `$callback!` as one row per hook:
/// `$(#[doc])* Variant snake_name: Shape { options }, Chain|Notify, cacheable;`.
///
/// This crate generates [`Hook`] and the protobuf conversions from it; other
/// crates pass their own `macro_rules!` to generate what they need (the
/// bridge's typed client methods). See the module docs for the columns.
#[macro_export]
macro_rules! for_each_hook {
    ($callback:ident) => {
        $callback! {
            /// A client connects (MQTT 3.1.1).
            AuthOnRegister auth_on_register: Register { clean: clean_session, properties: no }, Chain, true;
            /// A client connects (MQTT 5).
            AuthOnRegisterM5 auth_on_register_m5: Register { clean: clean_start, properties: yes }, Chain, true;
            /// A client publishes (MQTT 3.1.1).
            AuthOnPublish auth_on_publish: Publish { username: yes, properties: no }, Chain, true;
            /// A client publishes (MQTT 5).
            AuthOnPublishM5 auth_on_publish_m5: Publish { username: yes, properties: yes }, Chain, true;
            /// A client subscribes (MQTT 3.1.1).
            AuthOnSubscribe auth_on_subscribe: Subscribe { properties: no }, Chain, true;
            /// A client subscribes (MQTT 5).
            AuthOnSubscribeM5 auth_on_subscribe_m5: Subscribe { properties: yes }, Chain, true;
            /// A client was registered (MQTT 3.1.1).
            OnRegister on_register: Registered { properties: no }, Notify, false;
            /// A client was registered (MQTT 5).
            OnRegisterM5 on_register_m5: Registered { properties: yes }, Notify, false;
            /// A message was published (MQTT 3.1.1).
            OnPublish on_publish: Publish { username: yes, properties: no }, Notify, false;
            /// A message was published (MQTT 5).
            OnPublishM5 on_publish_m5: Publish { username: yes, properties: yes }, Notify, false;
            /// A subscription was made (MQTT 3.1.1).
            OnSubscribe on_subscribe: Subscribe { properties: no }, Notify, false;
            /// A subscription was made (MQTT 5).
            OnSubscribeM5 on_subscribe_m5: Subscribe { properties: yes }, Notify, false;
            /// A client unsubscribes (MQTT 3.1.1); may rewrite the filters.
            OnUnsubscribe on_unsubscribe: Unsubscribe { properties: no }, Chain, false;
            /// A client unsubscribes (MQTT 5); may rewrite the filters.
            OnUnsubscribeM5 on_unsubscribe_m5: Unsubscribe { properties: yes }, Chain, false;
            /// A message is about to be delivered (MQTT 3.1.1).
            OnDeliver on_deliver: Publish { username: yes, properties: yes }, Chain, false;
            /// A message is about to be delivered (MQTT 5).
            OnDeliverM5 on_deliver_m5: Publish { username: yes, properties: yes }, Chain, false;
            /// An MQTT 5 AUTH packet arrived (enhanced authentication).
            OnAuthM5 on_auth_m5: Auth {}, Chain, false;
            /// A message was queued for an offline client.
            OnOfflineMessage on_offline_message: Publish { username: no, properties: no }, Notify, false;
            /// A client with a persistent session came back.
            OnClientWakeup on_client_wakeup: Session {}, Notify, false;
            /// A client with a persistent session went offline.
            OnClientOffline on_client_offline: Session {}, Notify, false;
            /// A client with a clean session went away.
            OnClientGone on_client_gone: Session {}, Notify, false;
            /// An offline session expired.
            OnSessionExpired on_session_expired: Session {}, Notify, false;
            /// A CONNECT arrived, before authentication (RMQTT's `client_connect`).
            OnClientConnect on_client_connect: Connect { connack: no }, Notify, false;
            /// A CONNACK is sent, with its result (RMQTT's `client_connack`, NanoMQ's `on_client_connack`).
            OnClientConnack on_client_connack: Connect { connack: yes }, Notify, false;
            /// A session was created (RMQTT's `session_created`).
            OnSessionCreated on_session_created: Registered { properties: no }, Notify, false;
            /// A receiver acknowledged a message (RMQTT's `message_acked`).
            OnMessageAcked on_message_acked: Delivery { reason: no }, Notify, false;
            /// A message was dropped, with a reason (RMQTT's `message_dropped`).
            OnMessageDropped on_message_dropped: Delivery { reason: yes }, Notify, false;
            /// A SUBSCRIBE arrived, before authorisation (RMQTT's `client_subscribe`).
            OnClientSubscribe on_client_subscribe: Subscribe { properties: yes }, Notify, false;
            /// An UNSUBSCRIBE arrived (RMQTT's `client_unsubscribe`).
            OnClientUnsubscribe on_client_unsubscribe: Unsubscribe { properties: yes }, Notify, false;
        }
    };
}

/// How a hook's endpoints are called and their answers combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookStyle {
    /// vmq's `all_till_ok`: endpoints in order, first `ok` wins, `next`
    /// passes on, an error stops the chain.
    Chain,
    /// vmq's `all`: every endpoint is told, answers are ignored, and the
    /// broker never waits.
    Notify,
}

/// The argument shape of a hook: which [`crate::call::HookArgs`] variant its
/// calls carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// [`crate::call::Register`].
    Register,
    /// [`crate::call::Registered`].
    Registered,
    /// [`crate::call::Publish`].
    Publish,
    /// [`crate::call::Subscribe`].
    Subscribe,
    /// [`crate::call::Unsubscribe`].
    Unsubscribe,
    /// [`crate::call::Auth`].
    Auth,
    /// [`crate::call::SubscriberId`].
    Session,
    /// [`crate::call::Connect`].
    Connect,
    /// [`crate::call::Delivery`].
    Delivery,
}

/// A hook name that is not in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a hook; the hooks are: {}", Hook::names())]
pub struct UnknownHook {
    /// The name as given.
    pub name: String,
}

macro_rules! define_hooks {
    ($( $(#[doc = $doc:literal])* $variant:ident $snake:ident : $shape:ident { $($option:tt)* }, $style:ident, $cache:literal; )*) => {
        /// One of the hooks of the table, named as in vmq_webhooks
        /// (`vernemq-hook` header), or in its style for hookd's own.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Hook {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Hook {
            /// Every hook, in table order (vmq_webhooks' documentation order).
            pub const ALL: [Hook; Hook::COUNT] = [$(Hook::$variant),*];

            /// How many hooks there are.
            pub const COUNT: usize = [$(stringify!($variant)),*].len();

            /// The vmq_webhooks name, as sent in the `vernemq-hook` header.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Hook::$variant => stringify!($snake), )*
                }
            }

            /// Whether the broker waits for a decision (chain) or only tells (notify).
            pub const fn style(self) -> HookStyle {
                match self {
                    $( Hook::$variant => HookStyle::$style, )*
                }
            }

            /// Whether `cache-control: max-age` answers to this hook are
            /// cached (the three auth hooks and their `_m5` variants, as in
            /// vmq_webhooks).
            pub const fn is_cacheable(self) -> bool {
                match self {
                    $( Hook::$variant => $cache, )*
                }
            }

            /// The shape of this hook's arguments.
            pub const fn shape(self) -> Shape {
                match self {
                    $( Hook::$variant => Shape::$shape, )*
                }
            }

            /// The hook a vmq_webhooks name stands for.
            pub fn from_name(name: &str) -> Result<Hook, UnknownHook> {
                match name {
                    $( stringify!($snake) => Ok(Hook::$variant), )*
                    _ => Err(UnknownHook { name: name.to_owned() }),
                }
            }

            /// The protobuf enum value of this hook.
            pub const fn to_proto(self) -> $crate::v1::Hook {
                match self {
                    $( Hook::$variant => $crate::v1::Hook::$variant, )*
                }
            }

            /// The hook of a protobuf enum value; `None` for `HOOK_UNSPECIFIED`
            /// and values this build does not know (fail closed).
            pub fn from_proto(value: i32) -> Option<Hook> {
                match $crate::v1::Hook::try_from(value) {
                    $( Ok($crate::v1::Hook::$variant) => Some(Hook::$variant), )*
                    _ => None,
                }
            }

            /// The hook a call's protobuf arguments are for.
            pub const fn of_proto_args(args: &$crate::v1::hook_call::Hook) -> Hook {
                match args {
                    $( $crate::v1::hook_call::Hook::$variant(_) => Hook::$variant, )*
                }
            }
        }
    };
}

for_each_hook!(define_hooks);

impl Hook {
    /// A dense index `0..Hook::COUNT`, for per-hook arrays (metrics).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether this is an MQTT 5 (`_m5`) hook.
    pub fn is_m5(self) -> bool {
        self.name().ends_with("_m5")
    }

    /// Every hook's name, comma-separated, for error messages.
    pub fn names() -> String {
        Hook::ALL.map(Hook::name).join(", ")
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Hook {
    type Err = UnknownHook;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Hook::from_name(name)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Hook {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Hook::from_name(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::v1 as pb;

    /// vmq_webhooks' hooks as its documentation classifies them: chain
    /// (`all_till_ok`) or notification (`all`), and whether `max-age`
    /// answers are cached. An oracle independent of the table.
    const VMQ_WEBHOOKS: [(&str, HookStyle, bool); 22] = [
        ("auth_on_register", HookStyle::Chain, true),
        ("auth_on_register_m5", HookStyle::Chain, true),
        ("auth_on_publish", HookStyle::Chain, true),
        ("auth_on_publish_m5", HookStyle::Chain, true),
        ("auth_on_subscribe", HookStyle::Chain, true),
        ("auth_on_subscribe_m5", HookStyle::Chain, true),
        ("on_register", HookStyle::Notify, false),
        ("on_register_m5", HookStyle::Notify, false),
        ("on_publish", HookStyle::Notify, false),
        ("on_publish_m5", HookStyle::Notify, false),
        ("on_subscribe", HookStyle::Notify, false),
        ("on_subscribe_m5", HookStyle::Notify, false),
        ("on_unsubscribe", HookStyle::Chain, false),
        ("on_unsubscribe_m5", HookStyle::Chain, false),
        ("on_deliver", HookStyle::Chain, false),
        ("on_deliver_m5", HookStyle::Chain, false),
        ("on_auth_m5", HookStyle::Chain, false),
        ("on_offline_message", HookStyle::Notify, false),
        ("on_client_wakeup", HookStyle::Notify, false),
        ("on_client_offline", HookStyle::Notify, false),
        ("on_client_gone", HookStyle::Notify, false),
        ("on_session_expired", HookStyle::Notify, false),
    ];

    #[test]
    fn every_vmq_webhooks_hook_is_in_the_table_as_vmq_classifies_it() {
        for (name, style, cacheable) in VMQ_WEBHOOKS {
            let hook = Hook::from_name(name).expect("a vmq_webhooks hook is in the table");
            assert_eq!((hook.style(), hook.is_cacheable()), (style, cacheable), "{name}");
        }
    }

    /// The notifications hookd has beyond vmq_webhooks' 22, for RMQTT's and
    /// NanoMQ's events: never chains, never cached, no `_m5` twin.
    #[test]
    fn hookd_own_hooks_are_plain_notifications() {
        let own: Vec<_> = Hook::ALL
            .into_iter()
            .filter(|h| !VMQ_WEBHOOKS.iter().any(|(name, ..)| *name == h.name()))
            .map(Hook::name)
            .collect();
        assert_eq!(
            own,
            [
                "on_client_connect",
                "on_client_connack",
                "on_session_created",
                "on_message_acked",
                "on_message_dropped",
                "on_client_subscribe",
                "on_client_unsubscribe",
            ]
        );
        for name in own {
            let hook = Hook::from_name(name).expect("in the table");
            assert_eq!(
                (hook.style(), hook.is_cacheable(), hook.is_m5()),
                (HookStyle::Notify, false, false)
            );
        }
    }

    #[test]
    fn names_are_distinct_and_only_chains_are_cacheable() {
        let names: HashSet<_> = Hook::ALL.iter().map(|h| h.name()).collect();
        assert_eq!(names.len(), Hook::COUNT);
        assert!(
            Hook::ALL
                .iter()
                .all(|h| !h.is_cacheable() || h.style() == HookStyle::Chain)
        );
    }

    #[test]
    fn indexes_are_dense_and_in_table_order() {
        for (i, hook) in Hook::ALL.iter().enumerate() {
            assert_eq!(hook.index(), i);
        }
    }

    #[test]
    fn names_parse_back_and_unknown_names_list_the_hooks() {
        for hook in Hook::ALL {
            assert_eq!(hook.name().parse::<Hook>(), Ok(hook));
        }
        for bad in [
            "",
            "AUTH_ON_REGISTER",
            "auth_on_register ",
            "hook_auth_on_register",
        ] {
            let error = bad.parse::<Hook>().expect_err("not a hook");
            assert!(
                error.to_string().contains("auth_on_register_m5, auth_on_publish"),
                "{error}"
            );
        }
    }

    #[test]
    fn every_proto_enum_value_is_a_hook_of_the_table_and_back() {
        let mut seen = HashSet::new();
        for value in 0..=i32::from(u8::MAX) {
            let Ok(proto) = pb::Hook::try_from(value) else {
                continue;
            };
            match Hook::from_proto(value) {
                Some(hook) => {
                    assert_eq!(hook.to_proto(), proto);
                    assert_eq!(
                        proto.as_str_name().to_ascii_lowercase(),
                        format!("hook_{}", hook.name())
                    );
                    seen.insert(hook);
                }
                None => assert_eq!(
                    proto,
                    pb::Hook::Unspecified,
                    "{proto:?} is missing from the table"
                ),
            }
        }
        assert_eq!(seen.len(), Hook::COUNT);
    }
}
