//! hookd's configuration: one typed struct, loaded from an optional TOML file
//! and `HOOKD_…` environment variables, validated once at start.
//!
//! Every field has a default, so hookd starts with no file at all (gRPC on
//! 127.0.0.1:50051, no webhooks). `examples/hookd.toml` documents each key.
//! Environment variables override the file: `HOOKD_SERVER__LISTEN=0.0.0.0:50051`
//! sets `server.listen` (a single `_` after the prefix, `__` between levels).
//! Durations are whole milliseconds, like vmq_webhooks' own options.

use std::{collections::HashMap, net::SocketAddr, path::Path, time::Duration};

use serde::Deserialize;

use hookd_proto::Hook;

/// The whole configuration of one hookd process.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The gRPC front door: listen address and per-stream limits.
    pub server: ServerConfig,
    /// The HTTP client that calls webhooks: pools and body limits.
    pub http: HttpConfig,
    /// The verdict cache fed by `cache-control: max-age` answers.
    pub cache: CacheConfig,
    /// The notification path (hooks whose answer the broker never waits for).
    pub notifications: NotificationConfig,
    /// The Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
    /// The registered webhooks, in registration (= chain) order.
    pub webhooks: Vec<WebhookConfig>,
}

/// Settings of the gRPC listener and the broker sessions on it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The address the gRPC server binds. Default `127.0.0.1:50051`.
    pub listen: SocketAddr,
    /// How many calls one broker stream may have in flight; hookd stops
    /// reading that stream's frames until one finishes. Default 4096.
    pub max_in_flight_per_stream: usize,
    /// Deadline of a call whose broker set none, in ms. Default 10000.
    pub call_timeout: u64,
    /// Shards serving brokers: threads with a single-threaded runtime and
    /// webhook connection pools each; a broker connection is served wholly
    /// by the shard that accepted it (see [`crate::shard`]). 0 means one
    /// per CPU core. Default 0.
    pub worker_threads: usize,
    /// The largest encoded call hookd runs, in bytes; told to brokers in
    /// `Welcome`. A larger call is answered `invalid_call` and costs no other
    /// call; a frame over 4 times the limit ends its stream
    /// (RESOURCE_EXHAUSTED). Default 16777216 (16 MiB).
    pub max_call_bytes: usize,
}

/// Settings of the outbound HTTP client, shared by all endpoints.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Connections per endpoint URL and shard, open at most (as vmq_webhooks'
    /// `pool_max_connections`): requests beyond it wait for a free one,
    /// within their deadline, so a burst can never open (and then churn)
    /// more. All are kept alive while idle. `pool_max_idle` is accepted as
    /// an older name. Default 100.
    #[serde(alias = "pool_max_idle")]
    pub pool_max_connections: usize,
    /// How long an idle keep-alive connection is kept, in ms. Default 60000.
    pub pool_idle_timeout: u64,
    /// Largest response body accepted, in bytes; a larger one is an invalid
    /// response. Default 1048576 (1 MiB).
    pub max_response_bytes: usize,
}

/// Settings of the verdict cache.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Most verdicts kept at once; the least useful are evicted. 0 turns the
    /// cache off. Default 100000.
    pub max_entries: u64,
}

/// Settings of the notification path.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationConfig {
    /// Most notification deliveries (one per endpoint) in flight at once;
    /// past it new notifications are dropped and counted rather than
    /// letting memory grow. Default 10000.
    pub max_in_flight: usize,
}

/// Settings of the metrics endpoint.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served (Prometheus text format); not served
    /// when absent. Default: absent.
    pub listen: Option<SocketAddr>,
}

/// One registered webhook: a hook and the endpoint that answers it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The hook, a name of the hook table, e.g. `auth_on_register`.
    pub hook: Hook,
    /// The endpoint URL, `http://`, called exactly as written.
    pub endpoint: String,
    /// Send payloads base64-encoded and decode payload modifiers. Default true.
    #[serde(default = "default_true")]
    pub base64_payload: bool,
    /// Leave out the payload of `auth_on_publish*` calls. Default false.
    #[serde(default)]
    pub no_payload: bool,
    /// Deadline of one request to this endpoint, including its whole body,
    /// in ms. Default 5000.
    #[serde(default = "default_response_timeout")]
    pub response_timeout: u64,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read or parsed into [`Config`].
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value parsed but breaks a rule; `key` names it.
    #[error("configuration key `{key}`: {message}")]
    Invalid {
        /// The dotted path of the offending key, e.g. `webhooks[2].endpoint`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_in_flight_per_stream: 4096,
            call_timeout: 10_000,
            worker_threads: 0,
            max_call_bytes: 16 << 20,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            pool_max_connections: 100,
            pool_idle_timeout: 60_000,
            max_response_bytes: 1 << 20,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { max_entries: 100_000 }
    }
}

impl Default for NotificationConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 10_000,
        }
    }
}

impl WebhookConfig {
    /// A webhook with vmq_webhooks' defaults: base64 payloads, payload sent,
    /// 5 s response timeout.
    pub fn new(hook: Hook, endpoint: impl Into<String>) -> Self {
        Self {
            hook,
            endpoint: endpoint.into(),
            base64_payload: true,
            no_payload: false,
            response_timeout: default_response_timeout(),
        }
    }

    /// The per-request deadline as a [`Duration`].
    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout)
    }
}

impl ServerConfig {
    /// The default call deadline as a [`Duration`].
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout)
    }
}

impl Config {
    /// Loads the configuration: defaults, then the TOML file at `path` (if
    /// any), then `HOOKD_…` variables from `env` (the process environment
    /// when `None`), then [`Config::validate`].
    pub fn load(path: Option<&Path>, env: Option<HashMap<String, String>>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let env = env
            .unwrap_or_else(|| std::env::vars().collect())
            .into_iter()
            .filter(|(key, _)| is_config_key(key))
            .collect();
        let environment = config::Environment::with_prefix("HOOKD")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(env));
        let config: Config = builder.add_source(environment).build()?.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// Loads the configuration from TOML text (and no environment); handy
    /// for tests and embedded defaults.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules a single field's type cannot express: URLs parse,
    /// limits and timeouts are positive, no (hook, endpoint) pair twice.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: String, message: &str| ConfigError::Invalid {
            key,
            message: message.to_owned(),
        };
        if self.server.max_in_flight_per_stream == 0 {
            return Err(invalid(
                "server.max_in_flight_per_stream".into(),
                "must be at least 1",
            ));
        }
        if self.server.max_call_bytes < 1024 || self.server.max_call_bytes > 1 << 30 {
            return Err(invalid(
                "server.max_call_bytes".into(),
                "must be from 1024 to 1073741824 (1 GiB)",
            ));
        }
        if self.server.call_timeout == 0 {
            return Err(invalid("server.call_timeout".into(), "must be at least 1 ms"));
        }
        if self.http.pool_max_connections == 0 {
            return Err(invalid("http.pool_max_connections".into(), "must be at least 1"));
        }
        if self.http.max_response_bytes == 0 {
            return Err(invalid("http.max_response_bytes".into(), "must be at least 1"));
        }
        if self.notifications.max_in_flight == 0 {
            return Err(invalid(
                "notifications.max_in_flight".into(),
                "must be at least 1",
            ));
        }
        for (i, webhook) in self.webhooks.iter().enumerate() {
            match url::Url::parse(&webhook.endpoint) {
                Ok(url) if url.scheme() == "http" && url.host().is_some() => {}
                // HTTPS needs a TLS client, which comes with signed webhooks;
                // refusing it here beats failing every call at run time.
                Ok(url) if url.scheme() == "https" => {
                    return Err(invalid(
                        format!("webhooks[{i}].endpoint"),
                        "https:// endpoints are not supported yet; use http:// (e.g. via a local TLS tunnel)",
                    ));
                }
                Ok(_) => {
                    return Err(invalid(
                        format!("webhooks[{i}].endpoint"),
                        "must be an http:// URL with a host",
                    ));
                }
                Err(e) => {
                    return Err(invalid(
                        format!("webhooks[{i}].endpoint"),
                        &format!("not a URL: {e}"),
                    ));
                }
            }
            if webhook.response_timeout == 0 {
                return Err(invalid(
                    format!("webhooks[{i}].response_timeout"),
                    "must be at least 1 ms",
                ));
            }
            let repeated = self.webhooks[..i]
                .iter()
                .any(|w| w.hook == webhook.hook && w.endpoint == webhook.endpoint);
            if repeated {
                return Err(invalid(
                    format!("webhooks[{i}]"),
                    &format!(
                        "{} is already registered for {}",
                        crate::redact::Redacted(&webhook.endpoint),
                        webhook.hook
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether an environment variable may be configuration: `HOOKD_LOG` and
/// `HOOKD_CONFIG` belong to the binary and `HOOKD_SIDECAR_…` to the sidecar,
/// which may share an environment with hookd.
fn is_config_key(key: &str) -> bool {
    !matches!(key, "HOOKD_LOG" | "HOOKD_CONFIG") && !key.starts_with("HOOKD_SIDECAR_")
}

fn default_true() -> bool {
    true
}

fn default_response_timeout() -> u64 {
    5_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_embedded_defaults() {
        let config = Config::from_toml("").expect("empty config loads");
        assert_eq!(config, Config::default());
        assert_eq!(config.server.listen, "127.0.0.1:50051".parse().expect("addr"));
        assert!(config.webhooks.is_empty());
    }

    #[test]
    fn webhook_tables_keep_their_order_and_defaults() {
        let config = Config::from_toml(
            r#"
            [[webhooks]]
            hook = "auth_on_register"
            endpoint = "http://127.0.0.1:8080/a"
            [[webhooks]]
            hook = "auth_on_register"
            endpoint = "http://127.0.0.1:8080/b"
            base64_payload = false
            response_timeout = 250
            "#,
        )
        .expect("loads");
        assert_eq!(config.webhooks.len(), 2);
        assert_eq!(
            config.webhooks[0],
            WebhookConfig::new(Hook::AuthOnRegister, "http://127.0.0.1:8080/a")
        );
        assert!(!config.webhooks[1].base64_payload);
        assert_eq!(config.webhooks[1].response_timeout(), Duration::from_millis(250));
    }

    #[test]
    fn unknown_hook_is_rejected_naming_the_key() {
        let err = Config::from_toml("[[webhooks]]\nhook = \"auth_on_lunch\"\nendpoint = \"http://x\"\n")
            .expect_err("unknown hook");
        let text = err.to_string();
        assert!(text.contains("auth_on_lunch"), "{text}");
        assert!(text.contains("webhooks"), "{text}");
    }

    #[test]
    fn bad_endpoint_is_rejected_naming_the_key() {
        let err = Config::from_toml("[[webhooks]]\nhook = \"on_publish\"\nendpoint = \"ftp://x/y\"\n")
            .expect_err("bad scheme");
        assert!(err.to_string().contains("webhooks[0].endpoint"), "{err}");
    }

    #[test]
    fn duplicate_registration_is_rejected() {
        let err = Config::from_toml(
            "[[webhooks]]\nhook = \"on_publish\"\nendpoint = \"http://h/\"\n\
             [[webhooks]]\nhook = \"on_publish\"\nendpoint = \"http://h/\"\n",
        )
        .expect_err("duplicate");
        assert!(err.to_string().contains("webhooks[1]"), "{err}");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = Config::from_toml("[server]\nlisten_on = \"1.2.3.4:5\"\n").expect_err("typo");
        assert!(err.to_string().contains("listen_on"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = HashMap::from([
            ("HOOKD_SERVER__LISTEN".to_owned(), "127.0.0.1:6000".to_owned()),
            ("HOOKD_HTTP__POOL_MAX_CONNECTIONS".to_owned(), "7".to_owned()),
        ]);
        let config = Config::load(None, Some(env)).expect("loads");
        assert_eq!(config.server.listen, "127.0.0.1:6000".parse().expect("addr"));
        assert_eq!(config.http.pool_max_connections, 7);
    }

    #[test]
    fn pool_max_idle_is_the_older_name_of_pool_max_connections() {
        let config = Config::from_toml("[http]\npool_max_idle = 9\n").expect("loads");
        assert_eq!(config.http.pool_max_connections, 9);
    }

    #[test]
    fn a_pool_of_no_connections_is_rejected() {
        let err = Config::from_toml("[http]\npool_max_connections = 0\n").expect_err("zero");
        assert!(err.to_string().contains("http.pool_max_connections"), "{err}");
    }

    #[test]
    fn the_binarys_own_variables_are_not_configuration() {
        let env = HashMap::from([
            ("HOOKD_LOG".to_owned(), "debug".to_owned()),
            ("HOOKD_CONFIG".to_owned(), "/etc/hookd.toml".to_owned()),
            ("HOOKD_SIDECAR_LISTEN".to_owned(), "127.0.0.1:8888".to_owned()),
        ]);
        assert_eq!(Config::load(None, Some(env)).expect("loads"), Config::default());
    }

    #[test]
    fn wrongly_typed_environment_value_names_the_key() {
        let env = HashMap::from([("HOOKD_SERVER__CALL_TIMEOUT".to_owned(), "soon".to_owned())]);
        let err = Config::load(None, Some(env)).expect_err("bad type");
        assert!(err.to_string().contains("call_timeout"), "{err}");
    }
}
