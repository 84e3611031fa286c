//! The plugin's logic in safe Rust: Mosquitto events in, hookd calls out,
//! decisions back.
//!
//! | Mosquitto 2.0 event | hookd hook (`_m5` for MQTT 5 clients) | decision |
//! |---|---|---|
//! | `BASIC_AUTH` | `on_client_connect` first; `auth_on_register`; then `on_client_connack` with the result, and `on_register` once allowed | `ok` → allow; `next` or error → refuse |
//! | `ACL_CHECK` write | `auth_on_publish` | `ok` → allow; error → deny; `next` → defer |
//! | `ACL_CHECK` subscribe | `on_client_subscribe` first; `auth_on_subscribe` | same |
//! | `ACL_CHECK` unsubscribe | `on_client_unsubscribe` | allow |
//! | `ACL_CHECK` read | `on_deliver` | error → deny; otherwise allow |
//! | `MESSAGE` | applies the `auth_on_publish` topic/payload/retain modifiers; sends `on_publish` | — |
//! | `DISCONNECT` | `on_client_offline` (notification) | — |
//!
//! A hook hookd reports as having no endpoints is no reason to block an ACL
//! check: it is allowed (auth still needs an `ok`). Every callback runs on
//! Mosquitto's one main thread, so each call has a short deadline and the
//! client's failure policy answers when hookd is away; notifications never
//! wait.

use std::{borrow::Cow, collections::HashMap, fmt, path::PathBuf, sync::Mutex, time::Duration};

use hookd_bridge::{
    BlockingClient, FailurePolicy, Hook, NodeIdentity, Options, Outcome, Source, TlsOptions, Verdict,
    pb::{self, hook_call::Hook as Args, ok::Modifiers},
};
use tracing::warn;

/// The notifications this plugin sends: never waited for, so their failure
/// policy is to let the client through.
const NOTIFICATIONS: [Hook; 9] = [
    Hook::OnRegister,
    Hook::OnRegisterM5,
    Hook::OnPublish,
    Hook::OnPublishM5,
    Hook::OnClientOffline,
    Hook::OnClientConnect,
    Hook::OnClientConnack,
    Hook::OnClientSubscribe,
    Hook::OnClientUnsubscribe,
];

/// What Mosquitto should do with an auth or ACL check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Refuse it.
    Deny,
    /// No opinion: let other plugins or Mosquitto's defaults decide.
    Defer,
}

/// The kind of access an ACL check asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A message is about to be delivered to the client.
    Read,
    /// The client publishes.
    Write,
    /// The client subscribes.
    Subscribe,
    /// The client unsubscribes: told, always allowed.
    Unsubscribe,
    /// Anything else, always allowed.
    Other,
}

/// The client an event is about, its texts borrowed from Mosquitto for the
/// event's duration (copied only into the hook calls that need them).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo<'a> {
    /// Its client id.
    pub id: Cow<'a, str>,
    /// Its IP address as text (filled for basic auth only).
    pub address: Cow<'a, str>,
    /// Its username, if any.
    pub username: Option<Cow<'a, str>>,
    /// 3, 4 (3.1.1) or 5.
    pub protocol_version: i32,
    /// Its clean-session / clean-start flag.
    pub clean_session: bool,
    /// The keep-alive its CONNECT asked for, in seconds.
    pub keepalive: u16,
}

impl ClientInfo<'_> {
    /// Its client id, copied for a hook call.
    fn owned_id(&self) -> String {
        self.id.as_ref().to_owned()
    }

    /// Its username, copied for a hook call.
    fn owned_username(&self) -> Option<String> {
        self.username.as_deref().map(str::to_owned)
    }

    /// What its CONNECT asked for; a protocol version Mosquitto reports out
    /// of range (never, in practice) is sent as is, for hookd to refuse.
    fn connection(&self) -> pb::Connection {
        pb::Connection {
            proto_ver: u32::try_from(self.protocol_version).unwrap_or(0),
            keepalive: u32::from(self.keepalive),
            clean: self.clean_session,
        }
    }
}

/// A message as Mosquitto handles it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The payload.
    pub payload: &'a [u8],
    /// QoS 0..=2.
    pub qos: u8,
    /// The retain flag.
    pub retain: bool,
}

/// Changes to apply to a message before Mosquitto routes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// A new topic.
    pub topic: Option<String>,
    /// A new payload.
    pub payload: Option<Vec<u8>>,
    /// A new retain flag.
    pub retain: Option<bool>,
}

/// The plugin's settings, from `plugin_opt_*` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `plugin_opt_hookd_addresses`: comma-separated `host:port` list.
    /// Default `127.0.0.1:50051`.
    pub addresses: Vec<String>,
    /// `plugin_opt_node_id`: this broker's name in hookd. Default `mosquitto`.
    pub node_id: String,
    /// `plugin_opt_timeout_ms`: deadline of one auth/ACL call. Default 500 ms,
    /// short because every client waits while one callback runs.
    pub timeout: Duration,
    /// `plugin_opt_policy`: `deny`, `allow` or `next` for auth and ACL
    /// checks when hookd cannot answer in time. Default `deny`.
    pub policy: FailurePolicy,
    /// `plugin_opt_local_cache`: `true` or `false`. Default `true`.
    pub local_cache: bool,
    /// TLS to hookd (`plugin_opt_hookd_tls`, `_ca_file`, `_client_cert_file`,
    /// `_client_key_file`, `_server_name`); plaintext when `None`.
    pub tls: Option<TlsOptions>,
    /// `plugin_opt_hookd_token`, or the contents of
    /// `plugin_opt_hookd_token_file`: the bearer token sent to hookd.
    pub token: Option<Token>,
}

/// A bearer token: shown as `<redacted>` by `Debug`, so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token from `text` with surrounding whitespace removed; an empty one
    /// is an error naming `key`.
    fn new(key: &str, text: &str) -> Result<Self, String> {
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("plugin_opt_{key}: the token is empty"));
        }
        Ok(Self(token.to_owned()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One loaded plugin instance.
pub struct Plugin {
    client: BlockingClient,
    timeout: Duration,
    // The auth_on_publish modifiers of the last publish each client had
    // checked, waiting for that message's MESSAGE event (Mosquitto 2.0
    // checks a publish's ACL just before handing the message to plugins).
    rewrites: Mutex<HashMap<String, (String, Rewrite)>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            addresses: vec!["127.0.0.1:50051".to_owned()],
            node_id: "mosquitto".to_owned(),
            timeout: Duration::from_millis(500),
            policy: FailurePolicy::Deny,
            local_cache: true,
            tls: None,
            token: None,
        }
    }
}

impl Settings {
    /// Reads the settings from `plugin_opt_*` (key, value) pairs, with the
    /// prefix already stripped as Mosquitto does. Unknown keys and bad
    /// values are errors, so a typo stops the broker at start.
    pub fn parse<'a>(options: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut settings = Settings::default();
        for (key, value) in options {
            let value = value.trim();
            match key {
                "hookd_addresses" | "hookd_address" => {
                    settings.addresses = value
                        .split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if settings.addresses.is_empty() {
                        return Err(format!("plugin_opt_{key}: no address given"));
                    }
                    for address in &settings.addresses {
                        check_address(key, value, address)?;
                    }
                }
                "node_id" => settings.node_id = value.to_owned(),
                "timeout_ms" => {
                    let ms: u64 = value.parse().ok().filter(|&ms| ms > 0).ok_or_else(|| {
                        format!("plugin_opt_timeout_ms: `{value}` is not a positive number")
                    })?;
                    settings.timeout = Duration::from_millis(ms);
                }
                "policy" => {
                    settings.policy = match value {
                        "deny" => FailurePolicy::Deny,
                        "allow" => FailurePolicy::Allow,
                        "next" => FailurePolicy::Next,
                        _ => return Err(format!("plugin_opt_policy: `{value}` is not deny, allow or next")),
                    }
                }
                "local_cache" => settings.local_cache = parse_bool(key, value)?,
                "hookd_tls" => {
                    if parse_bool(key, value)? {
                        settings.tls.get_or_insert_with(TlsOptions::default);
                    }
                }
                "hookd_ca_file" => settings.tls_mut().ca_file = Some(path(key, value)?),
                "hookd_client_cert_file" => settings.tls_mut().client_cert_file = Some(path(key, value)?),
                "hookd_client_key_file" => settings.tls_mut().client_key_file = Some(path(key, value)?),
                "hookd_server_name" => settings.tls_mut().domain = Some(value.to_owned()),
                "hookd_token" => settings.set_token(Token::new(key, value)?)?,
                "hookd_token_file" => {
                    // Read here, so a wrong path stops Mosquitto at start
                    // naming the option; the error never shows the contents.
                    let text = std::fs::read_to_string(value)
                        .map_err(|e| format!("plugin_opt_{key}: cannot read {value}: {e}"))?;
                    settings.set_token(Token::new(key, &text)?)?;
                }
                _ => return Err(format!("unknown option plugin_opt_{key}")),
            }
        }
        if let Some(tls) = &settings.tls
            && tls.client_cert_file.is_some() != tls.client_key_file.is_some()
        {
            return Err(
                "plugin_opt_hookd_client_cert_file and plugin_opt_hookd_client_key_file go together"
                    .to_owned(),
            );
        }
        Ok(settings)
    }

    /// The TLS options, created (TLS on) by the first TLS setting.
    fn tls_mut(&mut self) -> &mut TlsOptions {
        self.tls.get_or_insert_with(TlsOptions::default)
    }

    /// Sets the token once: `hookd_token` and `hookd_token_file` exclude each other.
    fn set_token(&mut self, token: Token) -> Result<(), String> {
        if self.token.replace(token).is_some() {
            return Err("plugin_opt_hookd_token and plugin_opt_hookd_token_file: give one token".to_owned());
        }
        Ok(())
    }
}

/// `true`/`on`/`1` or `false`/`off`/`0`, else an error naming `key`.
fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" | "on" | "1" => Ok(true),
        "false" | "off" | "0" => Ok(false),
        _ => Err(format!("plugin_opt_{key}: `{value}` is not true or false")),
    }
}

/// A non-empty path, else an error naming `key`.
fn path(key: &str, value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err(format!("plugin_opt_{key}: no path given"));
    }
    Ok(PathBuf::from(value))
}

/// Refuses an address of `plugin_opt_{key}` that is not `host:port`. Mosquitto
/// hands a plugin the whole rest of the line, so a trailing `# comment`
/// arrives as part of the value: said plainly, since it is the usual cause.
fn check_address(key: &str, value: &str, address: &str) -> Result<(), String> {
    let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        !host.is_empty()
            && !host.contains(char::is_whitespace)
            && !host.contains('#')
            && port.parse::<u16>().is_ok_and(|port| port > 0)
    });
    if valid {
        return Ok(());
    }
    let hint = if value.contains('#') {
        " (Mosquitto passes the rest of the line, a `# comment` too, as the value: put comments on lines of their own)"
    } else {
        ""
    };
    Err(format!(
        "plugin_opt_{key}: `{address}` is not host:port, e.g. 127.0.0.1:50051; separate addresses with commas{hint}"
    ))
}

/// The arguments of a message hook (`auth_on_publish`, `on_publish`,
/// `on_deliver`) for `client` and `message`: the v3 message, or the `_m5`
/// one with empty properties for an MQTT 5 client.
macro_rules! message_args {
    ($m5:expr, $v3:ident, $v5:ident, $client:expr, $message:expr) => {{
        let (client, message): (&ClientInfo<'_>, Message<'_>) = ($client, $message);
        if $m5 {
            Args::$v5(pb::$v5 {
                username: client.owned_username(),
                client_id: client.owned_id(),
                qos: u32::from(message.qos),
                topic: message.topic.to_owned(),
                payload: message.payload.to_vec(),
                retain: message.retain,
                properties: Some(pb::Properties::default()),
                ..Default::default()
            })
        } else {
            Args::$v3(pb::$v3 {
                username: client.owned_username(),
                client_id: client.owned_id(),
                qos: u32::from(message.qos),
                topic: message.topic.to_owned(),
                payload: message.payload.to_vec(),
                retain: message.retain,
                ..Default::default()
            })
        }
    }};
}

impl Plugin {
    /// Connects to hookd (in the background: Mosquitto starts at once, and
    /// calls made before the stream is up follow the failure policy).
    pub fn start(settings: &Settings) -> Result<Self, String> {
        let identity = NodeIdentity {
            node_id: settings.node_id.clone(),
            broker_kind: "mosquitto".to_owned(),
            broker_version: "2.0".to_owned(),
        };
        let mut options = Options::new(settings.addresses.clone(), identity).policy_for_all(settings.policy);
        for notification in NOTIFICATIONS {
            options = options.policy(notification, FailurePolicy::Allow);
        }
        options.default_timeout = settings.timeout;
        options.connect_timeout = settings.timeout.max(Duration::from_millis(200));
        options.max_backoff = Duration::from_secs(2);
        options.local_cache = settings.local_cache;
        options.tls = settings.tls.clone();
        options.token = settings.token.as_ref().map(|token| token.0.clone());
        let client = BlockingClient::connect(options).map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            timeout: settings.timeout,
            rewrites: Mutex::new(HashMap::new()),
        })
    }

    /// `MOSQ_EVT_BASIC_AUTH`: may this client connect?
    pub fn basic_auth(
        &self,
        client: &ClientInfo<'_>,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Decision {
        let peer = Some(pb::Peer {
            addr: client.address.as_ref().to_owned(),
            // Mosquitto 2.0 does not tell plugins the client's port.
            port: 0,
        });
        let (username, password) = (username.map(str::to_owned), password.map(<[u8]>::to_vec));
        self.tell(Hook::OnClientConnect, &client.id, || {
            Args::OnClientConnect(pb::OnClientConnect {
                peer: peer.clone(),
                mountpoint: String::new(),
                client_id: client.owned_id(),
                username: username.clone(),
                connection: Some(client.connection()),
            })
        });
        // Mosquitto 2.0 has no "connected" event: an allowed CONNECT is
        // this plugin's last word on it, so `on_register` is sent then.
        let registered = (peer.clone(), username.clone());
        let connack = (peer.clone(), username.clone());
        let args = if client.protocol_version == 5 {
            Args::AuthOnRegisterM5(pb::AuthOnRegisterM5 {
                peer,
                client_id: client.owned_id(),
                username,
                password,
                clean_start: client.clean_session,
                properties: Some(pb::Properties::default()),
                ..Default::default()
            })
        } else {
            Args::AuthOnRegister(pb::AuthOnRegister {
                peer,
                client_id: client.owned_id(),
                username,
                password,
                clean_session: client.clean_session,
                ..Default::default()
            })
        };
        let verdict = self.ask(args);
        let allowed = matches!(verdict.outcome, Outcome::Ok(_));
        // Password files run before plugins and every other plugin after
        // this one is skipped once it answers, so this answer is the
        // CONNACK: accepted, or "not authorized" (MQTT 3: 5, MQTT 5: 0x87).
        let reason_code = match (allowed, client.protocol_version) {
            (true, _) => 0,
            (false, 5) => 0x87,
            (false, _) => 5,
        };
        self.tell(Hook::OnClientConnack, &client.id, || {
            Args::OnClientConnack(pb::OnClientConnack {
                peer: connack.0,
                mountpoint: String::new(),
                client_id: client.owned_id(),
                username: connack.1,
                connection: Some(client.connection()),
                reason_code,
                // Mosquitto 2.0 does not tell plugins whether a session was present.
                session_present: None,
            })
        });
        if allowed {
            self.registered(client, registered);
            Decision::Allow
        } else {
            log_refusal("connect", &client.id, &verdict);
            Decision::Deny
        }
    }

    /// Sends the notification `args()` builds for `hook`, unless no webhook
    /// is registered for it (then nothing is copied). Never waits.
    fn tell(&self, hook: Hook, client_id: &str, args: impl FnOnce() -> Args) {
        if self.client.client().has_no_endpoints(hook) {
            return;
        }
        if !self.client.notify(args()) {
            warn!(client_id, %hook, "notification dropped: too many notifications in flight");
        }
    }

    /// `on_register(_m5)` for a client `basic_auth` allowed, unless no
    /// webhook is registered for it.
    fn registered(&self, client: &ClientInfo<'_>, (peer, username): (Option<pb::Peer>, Option<String>)) {
        let m5 = client.protocol_version == 5;
        let hook = if m5 { Hook::OnRegisterM5 } else { Hook::OnRegister };
        if self.client.client().has_no_endpoints(hook) {
            return;
        }
        let (mountpoint, client_id) = (String::new(), client.owned_id());
        let args = if m5 {
            Args::OnRegisterM5(pb::OnRegisterM5 {
                peer,
                mountpoint,
                client_id,
                username,
                properties: Some(pb::Properties::default()),
            })
        } else {
            Args::OnRegister(pb::OnRegister {
                peer,
                mountpoint,
                client_id,
                username,
            })
        };
        if !self.client.notify(args) {
            warn!(client_id = %client.id, "on_register dropped: too many notifications in flight");
        }
    }

    /// `MOSQ_EVT_ACL_CHECK`: may this client publish, subscribe or receive?
    pub fn acl_check(&self, client: &ClientInfo<'_>, access: Access, message: Message<'_>) -> Decision {
        let m5 = client.protocol_version == 5;
        let args = match access {
            Access::Other => return Decision::Allow,
            Access::Unsubscribe => {
                self.tell(Hook::OnClientUnsubscribe, &client.id, || {
                    Args::OnClientUnsubscribe(pb::OnClientUnsubscribe {
                        username: client.owned_username(),
                        mountpoint: String::new(),
                        client_id: client.owned_id(),
                        topics: vec![message.topic.to_owned()],
                        properties: m5.then(pb::Properties::default),
                    })
                });
                return Decision::Allow;
            }
            Access::Write => message_args!(m5, AuthOnPublish, AuthOnPublishM5, client, message),
            Access::Read => message_args!(m5, OnDeliver, OnDeliverM5, client, message),
            Access::Subscribe => {
                let (username, client_id) = (client.owned_username(), client.owned_id());
                let topics = vec![pb::Subscription {
                    topic: message.topic.to_owned(),
                    qos: u32::from(message.qos),
                    ..Default::default()
                }];
                // Mosquitto 2.0 checks each filter of a SUBSCRIBE before
                // granting it: the request, one filter at a time.
                self.tell(Hook::OnClientSubscribe, &client.id, || {
                    Args::OnClientSubscribe(pb::OnClientSubscribe {
                        username: username.clone(),
                        mountpoint: String::new(),
                        client_id: client_id.clone(),
                        topics: topics.clone(),
                        properties: m5.then(pb::Properties::default),
                    })
                });
                if m5 {
                    Args::AuthOnSubscribeM5(pb::AuthOnSubscribeM5 {
                        username,
                        client_id,
                        topics,
                        properties: Some(pb::Properties::default()),
                        ..Default::default()
                    })
                } else {
                    Args::AuthOnSubscribe(pb::AuthOnSubscribe {
                        username,
                        client_id,
                        topics,
                        ..Default::default()
                    })
                }
            }
        };
        let verdict = self.ask(args);
        let decision = match (&verdict.outcome, verdict.source) {
            (Outcome::Ok(modifiers), _) => {
                if access == Access::Write {
                    self.stash_rewrite(&client.id, message.topic, modifiers.as_ref());
                }
                Decision::Allow
            }
            (Outcome::Error { .. }, _) => Decision::Deny,
            (_, _) if access == Access::Read => Decision::Allow,
            (Outcome::Next, Source::NoEndpoints) => Decision::Allow,
            (Outcome::Next | Outcome::Ack, _) => Decision::Defer,
        };
        if decision != Decision::Allow {
            log_refusal("acl", &client.id, &verdict);
        }
        decision
    }

    /// `MOSQ_EVT_MESSAGE`: the rewrite the endpoint asked for when it allowed
    /// this publish, if any; and an `on_publish` notification of the message
    /// as it will be routed.
    pub fn message(&self, client: &ClientInfo<'_>, message: Message<'_>) -> Rewrite {
        let rewrite = self
            .lock()
            .remove(&*client.id)
            .filter(|(topic, _)| topic == message.topic)
            .map(|(_, rewrite)| rewrite)
            .unwrap_or_default();
        let m5 = client.protocol_version == 5;
        let hook = if m5 { Hook::OnPublishM5 } else { Hook::OnPublish };
        // Most deployments register no on_publish webhook: then the message
        // is not copied into a notification that would not be sent.
        if self.client.client().has_no_endpoints(hook) {
            return rewrite;
        }
        let topic = rewrite.topic.clone().unwrap_or_else(|| message.topic.to_owned());
        let payload = rewrite
            .payload
            .clone()
            .unwrap_or_else(|| message.payload.to_vec());
        let routed = Message {
            topic: &topic,
            payload: &payload,
            qos: message.qos,
            retain: rewrite.retain.unwrap_or(message.retain),
        };
        let args = message_args!(m5, OnPublish, OnPublishM5, client, routed);
        if !self.client.notify(args) {
            warn!(client_id = %client.id, "on_publish dropped: too many notifications in flight");
        }
        rewrite
    }

    /// `MOSQ_EVT_DISCONNECT`: tells hookd the client went offline.
    pub fn disconnect(&self, client: &ClientInfo<'_>) {
        self.lock().remove(&*client.id);
        let args = Args::OnClientOffline(pb::OnClientOffline {
            mountpoint: String::new(),
            client_id: client.owned_id(),
        });
        if !self.client.notify(args) {
            warn!(client_id = %client.id, "on_client_offline dropped: too many notifications in flight");
        }
    }

    fn ask(&self, args: Args) -> Verdict {
        self.client.call_with_timeout(args, self.timeout)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Rewrite)>> {
        self.rewrites
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stash_rewrite(&self, client_id: &str, topic: &str, modifiers: Option<&Modifiers>) {
        let Some(Modifiers::Publish(p)) = modifiers else {
            self.lock().remove(client_id);
            return;
        };
        // Mosquitto 2.0 cannot apply qos, mountpoint or throttle changes.
        let rewrite = Rewrite {
            topic: p.topic.clone(),
            payload: p.payload.clone(),
            retain: p.retain,
        };
        if rewrite == Rewrite::default() {
            self.lock().remove(client_id);
        } else {
            self.lock()
                .insert(client_id.to_owned(), (topic.to_owned(), rewrite));
        }
    }
}

fn log_refusal(what: &str, client_id: &str, verdict: &Verdict) {
    match (&verdict.outcome, verdict.source) {
        (Outcome::Error { reason, .. }, Source::Policy(kind)) => {
            warn!(
                what,
                client_id,
                ?kind,
                reason,
                "hookd could not answer; policy applied"
            )
        }
        (_, Source::Policy(kind)) => warn!(what, client_id, ?kind, "hookd could not answer; policy applied"),
        (Outcome::Error { kind, reason }, _) => tracing::info!(what, client_id, ?kind, reason, "refused"),
        _ => tracing::info!(what, client_id, "no endpoint allowed it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_with_defaults() {
        let settings = Settings::parse([
            ("hookd_addresses", "127.0.0.1:1, 127.0.0.1:2"),
            ("timeout_ms", "250"),
            ("policy", "allow"),
            ("local_cache", "off"),
        ])
        .expect("valid options");
        assert_eq!(settings.addresses, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(settings.timeout, Duration::from_millis(250));
        assert_eq!(settings.policy, FailurePolicy::Allow);
        assert!(!settings.local_cache);
        assert_eq!(settings.node_id, "mosquitto");
    }

    #[test]
    fn unknown_options_and_bad_values_are_errors() {
        assert!(
            Settings::parse([("hookd_adress", "x")])
                .expect_err("typo")
                .contains("hookd_adress")
        );
        assert!(Settings::parse([("timeout_ms", "0")]).is_err());
        assert!(Settings::parse([("policy", "maybe")]).is_err());
        assert!(Settings::parse([("hookd_addresses", " , ")]).is_err());
        let pasted = Settings::parse([(
            "hookd_addresses",
            "127.0.0.1:50051     # comma-separated; calls spread over healthy ones",
        )])
        .expect_err("a trailing comment");
        assert!(
            pasted.contains("is not host:port") && pasted.contains("comments on lines of their own"),
            "{pasted}"
        );
        for bad in ["localhost", "hookd:port", ":50051", "hookd:0"] {
            assert!(Settings::parse([("hookd_addresses", bad)]).is_err(), "{bad}");
        }
        for good in ["hookd:50051", "[::1]:50051", "10.0.0.2:50051,10.0.0.3:50051"] {
            assert!(Settings::parse([("hookd_addresses", good)]).is_ok(), "{good}");
        }
    }

    #[test]
    fn tls_and_token_options_turn_tls_on_and_hide_the_token() {
        let settings = Settings::parse([
            ("hookd_ca_file", "/etc/hookd/ca.pem"),
            ("hookd_client_cert_file", "/etc/hookd/broker.pem"),
            ("hookd_client_key_file", "/etc/hookd/broker-key.pem"),
            ("hookd_server_name", "hookd.internal"),
            ("hookd_token", " s3cr3t-t0ken "),
        ])
        .expect("valid options");
        let tls = settings.tls.clone().expect("TLS is on");
        assert_eq!(tls.ca_file, Some(PathBuf::from("/etc/hookd/ca.pem")));
        assert_eq!(tls.domain.as_deref(), Some("hookd.internal"));
        assert_eq!(settings.token, Some(Token("s3cr3t-t0ken".to_owned())));
        assert!(!format!("{settings:?}").contains("s3cr3t"));

        let system_roots = Settings::parse([("hookd_tls", "on")]).expect("valid");
        assert_eq!(system_roots.tls, Some(TlsOptions::default()));
        assert_eq!(Settings::parse([("hookd_tls", "off")]).expect("valid").tls, None);
    }

    #[test]
    fn bad_tls_and_token_options_are_errors_that_never_show_the_token() {
        let half = Settings::parse([("hookd_client_cert_file", "/etc/hookd/broker.pem")]);
        assert!(half.expect_err("no key").contains("client_key_file"));
        let missing = Settings::parse([("hookd_token_file", "/nonexistent/hookd-token")]);
        assert!(
            missing
                .expect_err("no file")
                .contains("plugin_opt_hookd_token_file")
        );
        assert!(Settings::parse([("hookd_token", "  ")]).is_err());
        let twice = Settings::parse([("hookd_token", "first-s3cr3t"), ("hookd_token", "second-s3cr3t")])
            .expect_err("one token");
        assert!(!twice.contains("s3cr3t"), "{twice}");
    }
}
