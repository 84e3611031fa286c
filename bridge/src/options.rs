//! How a broker configures its hookd client: where hookd is, who the broker
//! is, deadlines, limits and what to do when hookd cannot answer.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use hookd_proto::{Hook, HookStyle};

/// Who this broker node is; sent in the stream's `Hello`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeIdentity {
    /// A name unique to this broker node.
    pub node_id: String,
    /// The broker software, e.g. `vernemq`, `mosquitto`.
    pub broker_kind: String,
    /// The broker software's version.
    pub broker_version: String,
}

/// What a call is answered with when hookd cannot give a verdict in time
/// (unreachable, deadline passed, or the client is overloaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Reject, with the error kind saying *unavailable*, *timeout* or
    /// *overloaded* rather than *denied*. The default for auth hooks.
    Deny,
    /// Allow (`ok` without modifiers; `ack` for notifications). The default
    /// for notification hooks.
    Allow,
    /// No opinion: let the broker's other plugins or defaults decide.
    Next,
}

/// What a call does when the in-flight limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overload {
    /// Wait for a free slot, up to the call's deadline.
    Wait,
    /// Answer at once by the failure policy, with kind *overloaded*.
    FailFast,
}

/// Client options; [`Options::new`] gives sensible defaults. Its `Debug`
/// shows whether a token is set, never the token.
#[derive(Clone)]
pub struct Options {
    /// hookd addresses (`host:port` or `http://host:port`); calls are spread
    /// over the healthy ones.
    pub addresses: Vec<String>,
    /// This broker node.
    pub identity: NodeIdentity,
    /// Deadline of a call that sets none. Default 5 s.
    pub default_timeout: Duration,
    /// Calls in flight at once over all streams. Default 10 000.
    pub max_in_flight: usize,
    /// Behaviour at the in-flight limit. Default [`Overload::Wait`].
    pub overload: Overload,
    /// Policy per hook when hookd cannot answer; hooks not listed use
    /// [`FailurePolicy::Deny`] for auth hooks and [`FailurePolicy::Allow`]
    /// for notifications.
    pub policies: HashMap<Hook, FailurePolicy>,
    /// Time allowed to open a stream (TCP connect + Hello/Welcome). Default 2 s.
    pub connect_timeout: Duration,
    /// First reconnect delay; doubles up to `max_backoff`, with jitter. Default 50 ms.
    pub min_backoff: Duration,
    /// Longest reconnect delay. Default 5 s.
    pub max_backoff: Duration,
    /// Keep verdicts hookd marks cacheable for their TTL and answer repeats
    /// locally. Default on.
    pub local_cache: bool,
    /// Most verdicts kept in the local cache. Default 10 000.
    pub local_cache_entries: u64,
    /// TLS to hookd (`[server.tls]` on hookd's side); plaintext when `None`.
    /// Default `None`.
    pub tls: Option<TlsOptions>,
    /// The bearer token sent on every stream (`[server.auth]` on hookd's
    /// side). Default `None`.
    pub token: Option<String>,
}

/// How the client speaks TLS to hookd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM CA certificates hookd's certificate must chain to; the system's
    /// when `None`.
    pub ca_file: Option<PathBuf>,
    /// A PEM certificate chain to present (hookd's `client_ca_file`), with
    /// `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    /// The PEM private key of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
    /// The name hookd's certificate must be valid for; the address's host
    /// when `None`.
    pub domain: Option<String>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("addresses", &self.addresses)
            .field("identity", &self.identity)
            .field("default_timeout", &self.default_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("overload", &self.overload)
            .field("policies", &self.policies)
            .field("connect_timeout", &self.connect_timeout)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("local_cache", &self.local_cache)
            .field("local_cache_entries", &self.local_cache_entries)
            .field("tls", &self.tls)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Options {
    /// Options for one or more hookd `addresses`, with defaults for the rest.
    pub fn new(addresses: impl IntoIterator<Item = impl Into<String>>, identity: NodeIdentity) -> Self {
        Self {
            addresses: addresses.into_iter().map(Into::into).collect(),
            identity,
            default_timeout: Duration::from_secs(5),
            max_in_flight: 10_000,
            overload: Overload::Wait,
            policies: HashMap::new(),
            connect_timeout: Duration::from_secs(2),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            local_cache: true,
            local_cache_entries: 10_000,
            tls: None,
            token: None,
        }
    }

    /// Sets the failure policy of `hook`.
    pub fn policy(mut self, hook: Hook, policy: FailurePolicy) -> Self {
        self.policies.insert(hook, policy);
        self
    }

    /// Sets the failure policy of every hook.
    pub fn policy_for_all(mut self, policy: FailurePolicy) -> Self {
        self.policies.extend(Hook::ALL.map(|hook| (hook, policy)));
        self
    }

    /// The failure policy that applies to `hook`.
    pub fn policy_of(&self, hook: Hook) -> FailurePolicy {
        self.policies
            .get(&hook)
            .copied()
            .unwrap_or(if hook.style() == HookStyle::Notify {
                FailurePolicy::Allow
            } else {
                FailurePolicy::Deny
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_does_not_show_the_token() {
        let mut options = Options::new(["127.0.0.1:1"], NodeIdentity::default());
        options.token = Some("s3cr3t-t0ken".to_owned());
        let shown = format!("{options:?}");
        assert!(!shown.contains("s3cr3t-t0ken"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
