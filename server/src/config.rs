//! hookd's configuration: one typed struct, loaded from an optional TOML file
//! and `HOOKD_<SECTION>__<KEY>` environment variables, validated once at start.
//!
//! Every field has a default, so hookd starts with no file at all (gRPC on
//! 127.0.0.1:50051, no webhooks). `examples/hookd.toml` documents each key.
//! Environment variables override the file: `HOOKD_SERVER__LISTEN=0.0.0.0:50051`
//! sets `server.listen` (a single `_` after the prefix, `__` between section
//! and key). Only variables of exactly that form, naming one of
//! [`ENV_SECTIONS`], are configuration: orchestrators set other `HOOKD_*`
//! variables (Kubernetes adds `HOOKD_PORT=tcp://…`, `HOOKD_SERVICE_HOST` and
//! more for a Service named `hookd`), and those must not stop hookd. An error
//! caused by a variable names the variable.
//!
//! Durations are whole milliseconds, like vmq_webhooks' own options, and are
//! bounded at load (1 ms to [`MAX_DURATION_MS`]), so a typo of many digits
//! cannot turn a deadline into "never".

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use hookd_proto::{Hook, HookStyle, Shape, events::Dialect, payload::Encoding, topic::TopicFilter};

use crate::webhook::sign::Secrets;

/// The sections of [`Config`] that environment variables can set, in
/// `HOOKD_<SECTION>__<KEY>` (upper case). `webhooks` is a list and is set in
/// the file only.
pub const ENV_SECTIONS: [&str; 7] = ["server", "http", "cache", "outbox", "admin", "metrics", "log"];

/// The longest duration any configuration key accepts, in ms: one day. A
/// deadline longer than that is a mistake (an endpoint that hangs would
/// never be timed out), not a setting.
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;

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
    /// The durable notification outbox: store, quota, delivery and retries.
    pub outbox: OutboxConfig,
    /// The admin gRPC service (`hookd.v1.Admin`) the `hookd outbox` commands use.
    pub admin: AdminConfig,
    /// The Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
    /// How hookd writes its log (what it logs is `HOOKD_LOG`'s).
    pub log: LogConfig,
    /// The registered webhooks, in registration (= chain) order.
    pub webhooks: Vec<WebhookConfig>,
}

/// Settings of the gRPC listener and the broker sessions on it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The address the gRPC server binds: an IP address and port (not a
    /// host name). Default `127.0.0.1:50051`.
    #[serde(deserialize_with = "listen_address")]
    pub listen: SocketAddr,
    /// How many calls one broker stream may have in flight; hookd stops
    /// reading that stream's frames until one finishes. Default 4096.
    pub max_in_flight_per_stream: usize,
    /// Deadline of a call whose broker set none, in ms: 1 to
    /// [`MAX_DURATION_MS`]. Default 10000.
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
    /// On SIGTERM or SIGINT, how long calls in flight may still finish, in
    /// ms (0 to [`MAX_DURATION_MS`]); those still running then are answered
    /// `overloaded` and every connection is closed. 0 answers them at once.
    /// Default 5000.
    pub shutdown_grace_ms: u64,
    /// After this long without a frame from a peer hookd sends it an HTTP/2
    /// PING, in ms. Default 10000.
    pub http2_keepalive_interval_ms: u64,
    /// How long a PING may go unanswered before the connection is closed
    /// and its streams end, in ms. Default 10000.
    pub http2_keepalive_timeout_ms: u64,
    /// How long a new connection has to send the HTTP/2 connection preface
    /// (the magic and its SETTINGS frame) before it is closed, in ms.
    /// Default 10000.
    pub handshake_timeout_ms: u64,
    /// How long a connection may stay open without any stream (RPC) on it
    /// before it is closed, in ms. Default 60000.
    pub idle_timeout_ms: u64,
    /// Broker streams open at once, over all connections; one more is
    /// refused with RESOURCE_EXHAUSTED and counted. Default 10000.
    pub max_streams: usize,
    /// Broker streams open at once on one connection; one more is refused
    /// with RESOURCE_EXHAUSTED and counted. Default 1000.
    pub max_streams_per_connection: usize,
    /// gRPC connections open at once; a connection accepted past it is
    /// closed at once (before any HTTP/2) and counted. Default 10000.
    pub max_connections: usize,
    /// Serve gRPC reflection (v1 and v1alpha), for grpcurl and other tools.
    /// Default true.
    pub reflection: bool,
    /// How often the files of `[server.tls]` and `[server.auth]` are checked
    /// for changes (and reloaded), in ms: 1 to [`MAX_DURATION_MS`].
    /// Default 10000.
    pub reload_interval_ms: u64,
    /// TLS on the listener ([`crate::tls`]); plaintext when absent.
    pub tls: Option<ServerTlsConfig>,
    /// Bearer tokens brokers must present ([`crate::auth`]); none asked
    /// for when absent.
    pub auth: Option<AuthConfig>,
}

/// `[server.tls]`: the listener's certificate and, for mTLS, the CA of
/// broker certificates. PEM files, reloaded when they change.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// The certificate chain hookd presents.
    pub cert_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
    /// When set, every broker must present a certificate this CA issued.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

/// `[server.auth]`: the brokers' bearer tokens.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// One `<name> <token>` per line ([`crate::auth`]), reloaded when it changes.
    pub tokens_file: PathBuf,
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
    /// How long an idle keep-alive connection is kept, in ms: 1 to
    /// [`MAX_DURATION_MS`] (0 would close every connection after one request,
    /// defeating the pools). Default 60000.
    pub pool_idle_timeout: u64,
    /// Largest response body accepted, in bytes; a larger one is an invalid
    /// response. Default 1048576 (1 MiB).
    pub max_response_bytes: usize,
    /// How long, in ms, all of an endpoint's connections (per shard) may be
    /// busy with none of them finishing a request before further requests to
    /// it fail at once as `overloaded` (a bulkhead): a hung endpoint then
    /// stops taking up a broker's stream window after this long, while a
    /// busy one that keeps answering is waited for. 1 to [`MAX_DURATION_MS`].
    /// Default 1000.
    pub stall_timeout_ms: u64,
}

/// Settings of the verdict cache.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Most verdicts kept at once; the least useful are evicted. 0 turns the
    /// cache off. Default 100000.
    pub max_entries: u64,
}

/// Settings of the durable notification outbox ([`crate::outbox`]).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// The store file (SQLite, with `-wal` and `-shm` files beside it); a
    /// relative path is relative to hookd's working directory. Default
    /// `hookd-outbox.db`.
    pub path: PathBuf,
    /// The most bytes of notifications pending at once; past it new ones are
    /// answered `overloaded` (never acknowledged and dropped). At least 1.
    /// Default 1073741824 (1 GiB).
    pub max_bytes: u64,
    /// The most notifications written in one commit (one disk flush); at
    /// least 1. Default 1024.
    pub max_batch: usize,
    /// Deliveries in flight per webhook (retries backing off included); at
    /// least 1. Default 128.
    pub window: usize,
    /// The first retry's delay, in ms (1 to [`MAX_DURATION_MS`]); each next
    /// one doubles, with jitter. Default 1000.
    pub retry_initial_delay_ms: u64,
    /// The longest delay between retries, in ms (1 to [`MAX_DURATION_MS`]).
    /// Default 60000.
    pub retry_max_delay_ms: u64,
}

/// Settings of the admin service.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve `hookd.v1.Admin` (gRPC) at all. Default true.
    pub enabled: bool,
    /// Where it is served: keep it on loopback (it can register webhooks,
    /// replay and drop notifications). An address that is not loopback
    /// needs `token_file`. Default `127.0.0.1:50062`.
    #[serde(deserialize_with = "listen_address")]
    pub listen: SocketAddr,
    /// A file holding the admin token (one line, at least 16 characters,
    /// e.g. `openssl rand -hex 32`): every admin call must then carry
    /// `authorization: Bearer <token>` (the `hookd` commands read the same
    /// file). Required when `listen` is not a loopback address. Read at
    /// start; never logged. Default: none.
    pub token_file: Option<PathBuf>,
    /// Hosts webhooks registered at run time may point at: host names, IP
    /// addresses or CIDR networks ([`crate::allowlist`]). Empty allows every
    /// host except link-local and cloud metadata addresses, which are refused
    /// unless listed. Default empty.
    pub allowed_webhook_hosts: Vec<String>,
}

/// Settings of the metrics endpoint.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where hookd's HTTP side is served ([`crate::metrics_server`]:
    /// `/metrics`, `/healthz`, `/readyz`, the status page at `/`); not
    /// served when absent. Default: absent.
    #[serde(deserialize_with = "optional_listen_address")]
    pub listen: Option<SocketAddr>,
}

/// A listener's address, with an error that says what a valid one is: serde's
/// own is only "invalid socket address syntax", and `localhost:50051` is the
/// first thing people write.
fn listen_address<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    text.trim().parse().map_err(|_| {
        let port = text.rsplit_once(':').map_or("50051", |(_, port)| port);
        let port = if port.parse::<u16>().is_ok() {
            port
        } else {
            "50051"
        };
        serde::de::Error::custom(format!(
            "`{text}` is not an IP address and port (invalid socket address): hookd binds an address, \
             not a host name; e.g. `127.0.0.1:{port}` (this host only), `0.0.0.0:{port}` (every IPv4 \
             interface) or `[::]:{port}` (every interface)"
        ))
    })
}

/// [`listen_address`], for a listener that may be absent.
fn optional_listen_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    listen_address(deserializer).map(Some)
}

/// How hookd writes its log lines to stderr.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (for people) or `json` (one object per line, for log
    /// shippers). Default `text`.
    pub format: LogFormat,
}

/// The shape of a log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, the
    /// event's fields (`message` among them) and its span.
    Json,
}

// By hand: the `config` crate's own enum errors name the Rust type
// ("enum LogFormat does not have variant constructor xml").
impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        match &*name {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(serde::de::Error::custom(format!(
                "`{other}` is not a log format; the formats are: text, json"
            ))),
        }
    }
}

/// One registered webhook: a hook and the endpoint that answers it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The hook, a name of the hook table, e.g. `auth_on_register`.
    pub hook: Hook,
    /// The endpoint URL, `http://` or `https://`, called exactly as written;
    /// or, for a notification hook, `file:///absolute/path`, a file that gets
    /// one JSON body per line (RMQTT's file target).
    pub endpoint: String,
    /// The JSON body the endpoint receives: `vernemq` (vmq_webhooks, every
    /// hook), or `rmqtt` / `nanomq` (those systems' event bodies,
    /// notification hooks only). Default `vernemq`.
    #[serde(default)]
    pub dialect: Dialect,
    /// How payloads are written: `plain`, `base64` or `base62` (not with
    /// `vernemq`). Default: `base64`, or `plain` when `base64_payload` is
    /// false.
    #[serde(default)]
    pub payload_encoding: Option<Encoding>,
    /// vmq_webhooks' name for `payload_encoding`: true is `base64`, false
    /// `plain`. Default true.
    #[serde(default = "default_true")]
    pub base64_payload: bool,
    /// Extra request headers, name → value (NanoMQ's `headers.*`). Default
    /// none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// MQTT topic filters (RMQTT's rule `topics`): a message or
    /// subscription whose topic matches none of them is not sent to this
    /// webhook (per topic when a call has several); a decision hook's
    /// webhook is skipped as if it answered `next`. Default none: every
    /// topic.
    #[serde(default)]
    pub topics: Vec<String>,
    /// The body's `action` instead of the event name (RMQTT's rule
    /// `action`); `rmqtt` dialect only. Default: the event name.
    #[serde(default)]
    pub action: Option<String>,
    /// Leave out the payload of `auth_on_publish*` calls. Default false.
    #[serde(default)]
    pub no_payload: bool,
    /// Deadline of one request to this endpoint, including its whole body,
    /// in ms: 1 to [`MAX_DURATION_MS`]. Default 5000.
    #[serde(default = "default_response_timeout")]
    pub response_timeout: u64,
    /// For notifications: how long after hookd accepted one it is still
    /// retried, in ms (1 to [`MAX_DURATION_MS`]); past it, a dead letter.
    /// 0 retries forever. Default 3600000 (1 hour).
    #[serde(default = "default_retry_budget")]
    pub retry_budget_ms: u64,
    /// Signing secrets (Standard Webhooks, [`crate::webhook::sign`]): one
    /// `whsec_<base64>` key, or a list while a key is rotated (every
    /// request then carries one signature per key). Default: none, requests
    /// are not signed.
    #[serde(default)]
    pub secret: Secrets,
    /// For `https://`: PEM CA certificates the endpoint's chain must end in.
    /// Default: the system's CA certificates.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// For `https://`: a PEM certificate chain offered when the endpoint
    /// asks for a client certificate; with `client_key_file`. Default: none.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// For `https://`: the PEM private key of `client_cert_file`. Default: none.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// For `https://`: verify the endpoint's certificate chain and host
    /// name. `false` accepts any certificate (tests only). Default true.
    #[serde(default = "default_true")]
    pub verify_peer: bool,
}

/// Why a configuration could not be loaded. Each variant's message is
/// complete on its own and none has a `source()`, so a chain printer shows
/// it once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed into [`Config`]; the message
    /// names the key or the line.
    #[error("{message}")]
    Load {
        /// What the file reader or the deserializer reported.
        message: String,
    },
    /// An environment variable could not be used: its value does not parse,
    /// it names no key of its section, or its value breaks a rule.
    #[error("{variable}: {message}")]
    Environment {
        /// The variable, e.g. `HOOKD_SERVER__LISTEN`.
        variable: String,
        /// What is wrong with it, naming the key it sets.
        message: String,
    },
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
            shutdown_grace_ms: 5_000,
            http2_keepalive_interval_ms: 10_000,
            http2_keepalive_timeout_ms: 10_000,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_streams: 10_000,
            max_streams_per_connection: 1_000,
            max_connections: 10_000,
            reflection: true,
            reload_interval_ms: 10_000,
            tls: None,
            auth: None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            pool_max_connections: 100,
            pool_idle_timeout: 60_000,
            max_response_bytes: 1 << 20,
            stall_timeout_ms: 1000,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { max_entries: 100_000 }
    }
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("hookd-outbox.db"),
            max_bytes: 1 << 30,
            max_batch: 1024,
            window: 128,
            retry_initial_delay_ms: 1000,
            retry_max_delay_ms: 60_000,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 50062)),
            token_file: None,
            allowed_webhook_hosts: Vec::new(),
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
            dialect: Dialect::Vernemq,
            payload_encoding: None,
            base64_payload: true,
            headers: BTreeMap::new(),
            topics: Vec::new(),
            action: None,
            no_payload: false,
            response_timeout: default_response_timeout(),
            retry_budget_ms: default_retry_budget(),
            secret: Secrets::default(),
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            verify_peer: true,
        }
    }

    /// The retry budget of its notifications; `None` is forever.
    pub fn retry_budget(&self) -> Option<Duration> {
        (self.retry_budget_ms > 0).then(|| Duration::from_millis(self.retry_budget_ms))
    }

    /// The per-request deadline as a [`Duration`].
    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout)
    }

    /// The payload encoding in effect: `payload_encoding`, else
    /// `base64_payload`'s.
    pub fn encoding(&self) -> Encoding {
        self.payload_encoding.unwrap_or(if self.base64_payload {
            Encoding::Base64
        } else {
            Encoding::Plain
        })
    }

    /// The `topics` rules, checked ([`WebhookConfig::check`] refuses a
    /// webhook whose filters do not parse, so none is dropped here).
    pub fn topic_filters(&self) -> Vec<TopicFilter> {
        self.topics
            .iter()
            .filter_map(|t| TopicFilter::new(t).ok())
            .collect()
    }

    /// The file a `file://` endpoint appends to; `None` for HTTP endpoints.
    pub fn file_path(&self) -> Option<PathBuf> {
        let url = url::Url::parse(&self.endpoint).ok()?;
        (url.scheme() == "file")
            .then(|| url.to_file_path().ok())
            .flatten()
    }

    /// The rules of one webhook, `key` being its `webhooks[i]`.
    fn check(&self, key: &str) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            key: format!("{key}.{field}"),
            message,
        };
        let notification = self.hook.style() == HookStyle::Notify;
        match url::Url::parse(&self.endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            Ok(url) if url.scheme() == "file" => {
                // RMQTT drops a host silently (`file://target/x.log` writes
                // `/x.log`); a path that is not what it says is refused.
                if url.host().is_some() || !self.endpoint.starts_with("file:///") {
                    return Err(invalid(
                        "endpoint",
                        format!(
                            "`{}` names a host or a relative path; a file sink is file:///absolute/path",
                            self.endpoint
                        ),
                    ));
                }
                if url.query().is_some() || url.fragment().is_some() || url.path().ends_with('/') {
                    return Err(invalid(
                        "endpoint",
                        "a file sink is file:///absolute/path to a file, without a query or fragment".into(),
                    ));
                }
                if !notification {
                    return Err(invalid(
                        "endpoint",
                        format!(
                            "a file:// sink only takes notification hooks; {} is a decision hook",
                            self.hook
                        ),
                    ));
                }
            }
            Ok(_) => {
                return Err(invalid(
                    "endpoint",
                    "must be an http:// or https:// URL with a host, or file:///absolute/path".into(),
                ));
            }
            Err(e) => return Err(invalid("endpoint", format!("not a URL: {e}"))),
        }
        let dialect = self.dialect.name();
        if self.dialect != Dialect::Vernemq {
            if !notification {
                return Err(invalid(
                    "dialect",
                    format!(
                        "`{dialect}` applies to notification hooks only; {} is a decision hook, which takes `vernemq`",
                        self.hook
                    ),
                ));
            }
            if self.dialect.event(self.hook).is_none() {
                let hooks: Vec<&str> = Hook::ALL
                    .into_iter()
                    .filter(|h| self.dialect.event(*h).is_some())
                    .map(Hook::name)
                    .collect();
                return Err(invalid(
                    "dialect",
                    format!(
                        "`{dialect}` has no event for {}; its hooks are: {}",
                        self.hook,
                        hooks.join(", ")
                    ),
                ));
            }
        }
        if let Some(encoding) = self.payload_encoding {
            if self.dialect == Dialect::Vernemq && encoding == Encoding::Base62 {
                return Err(invalid(
                    "payload_encoding",
                    "`base62` is NanoMQ's: the vernemq dialect takes `plain` or `base64`".into(),
                ));
            }
            if !self.base64_payload && encoding != Encoding::Plain {
                return Err(invalid(
                    "payload_encoding",
                    format!(
                        "`{}` contradicts `base64_payload = false` (its synonym for `plain`); set one of them",
                        encoding.name()
                    ),
                ));
            }
        }
        for (name, value) in &self.headers {
            let key = format!("headers.{name}");
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(invalid(&key, "is not a valid HTTP header name".into()));
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(invalid(
                    &key,
                    format!(
                        "is set by hookd itself; the reserved headers are: {}",
                        RESERVED_HEADERS.join(", ")
                    ),
                ));
            }
            if value.contains(['\r', '\n', '\0']) || http::HeaderValue::from_str(value).is_err() {
                return Err(invalid(
                    &key,
                    "the value must not contain CR, LF, NUL or other control characters".into(),
                ));
            }
        }
        if !self.topics.is_empty()
            && !matches!(
                self.hook.shape(),
                Shape::Publish | Shape::Delivery | Shape::Subscribe | Shape::Unsubscribe
            )
        {
            return Err(invalid(
                "topics",
                format!(
                    "{} is about no topic, so topic rules cannot apply to it",
                    self.hook
                ),
            ));
        }
        for (i, topic) in self.topics.iter().enumerate() {
            TopicFilter::new(topic).map_err(|e| invalid(&format!("topics[{i}]"), e.to_string()))?;
        }
        if let Some(action) = &self.action {
            if self.dialect != Dialect::Rmqtt {
                return Err(invalid(
                    "action",
                    format!("renames RMQTT's events: it needs `dialect = \"rmqtt\"`, not `{dialect}`"),
                ));
            }
            if action.is_empty() {
                return Err(invalid("action", "must not be empty".into()));
            }
        }
        Ok(())
    }
}

impl ServerConfig {
    /// The default call deadline as a [`Duration`].
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout)
    }

    /// `shutdown_grace_ms` as a [`Duration`].
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// The bounds every gRPC connection lives under, from the `*_ms` keys.
    pub fn liveness(&self) -> crate::liveness::Bounds {
        crate::liveness::Bounds {
            keepalive_interval: Duration::from_millis(self.http2_keepalive_interval_ms),
            keepalive_timeout: Duration::from_millis(self.http2_keepalive_timeout_ms),
            handshake_timeout: Duration::from_millis(self.handshake_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            max_connections: self.max_connections,
        }
    }
}

impl Config {
    /// Loads the configuration: defaults, then the TOML file at `path` (if
    /// any), then the `HOOKD_<SECTION>__<KEY>` variables of `env` (the
    /// process environment when `None`; every other variable is ignored),
    /// then [`Config::validate`].
    pub fn load(path: Option<&Path>, env: Option<HashMap<String, String>>) -> Result<Self, ConfigError> {
        let variables = match env {
            Some(env) => env
                .into_iter()
                .filter(|(name, _)| is_config_variable(name))
                .collect(),
            None => process_variables()?,
        };
        // Each variable is tried alone first, so an error it causes is
        // reported under its own name rather than as a key of the merged
        // configuration; in name order, so the same environment always
        // reports the same error first.
        let mut sorted: Vec<(&String, &String)> = variables.iter().collect();
        sorted.sort();
        for (name, value) in sorted {
            let alone = HashMap::from([(name.clone(), value.clone())]);
            config::Config::builder()
                .add_source(environment(alone))
                .build()
                .and_then(config::Config::try_deserialize::<Config>)
                .map_err(|e| ConfigError::Environment {
                    variable: name.clone(),
                    message: e.to_string(),
                })?;
        }
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let config: Config = builder
            .add_source(environment(variables.clone()))
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(load_error)?;
        config.validate().map_err(|e| e.blamed_on(&variables))?;
        Ok(config)
    }

    /// Loads the configuration from TOML text (and no environment); handy
    /// for tests and embedded defaults.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(load_error)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules a single field's type cannot express: URLs parse,
    /// limits are positive, durations lie within 1 ms and
    /// [`MAX_DURATION_MS`], no (hook, endpoint) pair twice.
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
        check_duration("server.call_timeout", self.server.call_timeout)?;
        // 0 is a grace period too: calls in flight are answered at once.
        if self.server.shutdown_grace_ms > 0 {
            check_duration("server.shutdown_grace_ms", self.server.shutdown_grace_ms)?;
        }
        check_duration(
            "server.http2_keepalive_interval_ms",
            self.server.http2_keepalive_interval_ms,
        )?;
        check_duration(
            "server.http2_keepalive_timeout_ms",
            self.server.http2_keepalive_timeout_ms,
        )?;
        check_duration("server.handshake_timeout_ms", self.server.handshake_timeout_ms)?;
        check_duration("server.idle_timeout_ms", self.server.idle_timeout_ms)?;
        check_duration("server.reload_interval_ms", self.server.reload_interval_ms)?;
        for (key, value) in [
            ("server.max_streams", self.server.max_streams),
            (
                "server.max_streams_per_connection",
                self.server.max_streams_per_connection,
            ),
            ("server.max_connections", self.server.max_connections),
        ] {
            if value == 0 {
                return Err(invalid(key.into(), "must be at least 1"));
            }
        }
        if self.http.pool_max_connections == 0 {
            return Err(invalid("http.pool_max_connections".into(), "must be at least 1"));
        }
        check_duration("http.stall_timeout_ms", self.http.stall_timeout_ms)?;
        check_duration("http.pool_idle_timeout", self.http.pool_idle_timeout)?;
        if self.http.max_response_bytes == 0 {
            return Err(invalid("http.max_response_bytes".into(), "must be at least 1"));
        }
        for (key, value) in [
            ("outbox.max_bytes", self.outbox.max_bytes),
            ("outbox.max_batch", self.outbox.max_batch as u64),
            ("outbox.window", self.outbox.window as u64),
        ] {
            if value == 0 {
                return Err(invalid(key.into(), "must be at least 1"));
            }
        }
        if self.outbox.path.as_os_str().is_empty() {
            return Err(invalid("outbox.path".into(), "must name a file"));
        }
        check_duration(
            "outbox.retry_initial_delay_ms",
            self.outbox.retry_initial_delay_ms,
        )?;
        check_duration("outbox.retry_max_delay_ms", self.outbox.retry_max_delay_ms)?;
        if self.admin.enabled && !self.admin.listen.ip().is_loopback() && self.admin.token_file.is_none() {
            return Err(invalid(
                "admin.token_file".into(),
                &format!(
                    "must be set when admin.listen ({}) is not a loopback address: the admin service can register webhooks",
                    self.admin.listen
                ),
            ));
        }
        if let Err(message) = crate::allowlist::AllowedHosts::parse(&self.admin.allowed_webhook_hosts) {
            return Err(invalid("admin.allowed_webhook_hosts".into(), &message));
        }
        for (i, webhook) in self.webhooks.iter().enumerate() {
            webhook.check(&format!("webhooks[{i}]"))?;
            check_duration(
                &format!("webhooks[{i}].response_timeout"),
                webhook.response_timeout,
            )?;
            if webhook.retry_budget_ms > 0 {
                check_duration(&format!("webhooks[{i}].retry_budget_ms"), webhook.retry_budget_ms)?;
            }
            if let Err(e) = webhook.secret.signer() {
                return Err(invalid(format!("webhooks[{i}].secret"), &e.to_string()));
            }
            if webhook.client_cert_file.is_some() != webhook.client_key_file.is_some() {
                return Err(invalid(
                    format!("webhooks[{i}].client_cert_file"),
                    "client_cert_file and client_key_file must be set together",
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

impl ConfigError {
    /// Names the variable behind a rule broken by a value that came from the
    /// environment: `variables` are the ones loaded, and an [`Invalid`] key
    /// one of them set becomes an [`Environment`] error naming it.
    ///
    /// [`Invalid`]: ConfigError::Invalid
    /// [`Environment`]: ConfigError::Environment
    fn blamed_on(self, variables: &HashMap<String, String>) -> Self {
        let Self::Invalid { key, message } = self else {
            return self;
        };
        match variables
            .keys()
            .find(|name| variable_key(name).as_deref() == Some(key.as_str()))
        {
            Some(variable) => Self::Environment {
                variable: variable.clone(),
                message: format!("`{key}` {message}"),
            },
            None => Self::Invalid { key, message },
        }
    }
}

/// Headers hookd sets on every request (or the HTTP client does), which a
/// webhook's `headers` cannot replace. `content-type` can be: NanoMQ
/// configurations set it.
const RESERVED_HEADERS: [&str; 8] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "vernemq-hook",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Rejects a duration (in ms) of 0 or above [`MAX_DURATION_MS`], naming `key`
/// and the range.
fn check_duration(key: &str, ms: u64) -> Result<(), ConfigError> {
    if (1..=MAX_DURATION_MS).contains(&ms) {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        key: key.to_owned(),
        message: format!("must be between 1 and {MAX_DURATION_MS} ms (1 day), got {ms}"),
    })
}

/// The one way environment variables are read, whether from the process or
/// a test's map.
fn environment(variables: HashMap<String, String>) -> config::Environment {
    config::Environment::with_prefix("HOOKD")
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true)
        .source(Some(variables))
}

/// Flattens the `config` crate's error into its message: its `Display`
/// already includes its cause, which a chain printer would repeat.
fn load_error(error: config::ConfigError) -> ConfigError {
    ConfigError::Load {
        message: error.to_string(),
    }
}

/// The process environment's configuration variables. Other variables are
/// skipped unread, even ones that are not UTF-8; a configuration variable
/// that is not UTF-8 is an error naming it.
fn process_variables() -> Result<HashMap<String, String>, ConfigError> {
    std::env::vars_os()
        .filter_map(|(name, value)| name.into_string().ok().map(|name| (name, value)))
        .filter(|(name, _)| is_config_variable(name))
        .map(|(name, value)| match value.into_string() {
            Ok(value) => Ok((name, value)),
            Err(_) => Err(ConfigError::Environment {
                variable: name,
                message: "the value is not valid UTF-8".to_owned(),
            }),
        })
        .collect()
}

/// Whether `name` is configuration: `HOOKD_<SECTION>__<KEY>` with a section
/// of [`ENV_SECTIONS`]. Everything else is someone else's variable: the
/// binary's own `HOOKD_LOG` and `HOOKD_CONFIG`, the sidecar's
/// `HOOKD_SIDECAR_…`, and what orchestrators derive from a service's name
/// (`HOOKD_PORT`, `HOOKD_SERVICE_HOST`, `HOOKD_PORT_50051_TCP_ADDR`, …).
pub fn is_config_variable(name: &str) -> bool {
    variable_key(name).is_some()
}

/// The dotted key a configuration variable sets (`HOOKD_SERVER__LISTEN` →
/// `server.listen`), or `None` if `name` is not configuration.
fn variable_key(name: &str) -> Option<String> {
    let (section, key) = name.strip_prefix("HOOKD_")?.split_once("__")?;
    let section = section.to_ascii_lowercase();
    ENV_SECTIONS
        .contains(&section.as_str())
        .then(|| format!("{section}.{}", key.to_ascii_lowercase()))
}

fn default_true() -> bool {
    true
}

fn default_response_timeout() -> u64 {
    5_000
}

fn default_retry_budget() -> u64 {
    3_600_000
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

    /// The error `webhook` (TOML lines of one `[[webhooks]]` table) loads to.
    fn webhook_error(webhook: &str) -> String {
        Config::from_toml(&format!("[[webhooks]]\n{webhook}\n"))
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn dialects_encodings_headers_topics_and_action_load() {
        let config = Config::from_toml(
            r#"
            [[webhooks]]
            hook = "on_subscribe"
            endpoint = "http://127.0.0.1:8080/r"
            dialect = "rmqtt"
            payload_encoding = "plain"
            headers = { authorization = "Bearer t", content-type = "application/json" }
            topics = ["a/+/c", "foo/#", "$SYS/#"]
            action = "session_subscribed_2"
            [[webhooks]]
            hook = "on_publish"
            endpoint = "file:///var/log/hookd/events.jsonl"
            dialect = "nanomq"
            payload_encoding = "base62"
            "#,
        )
        .expect("loads");
        let rmqtt = &config.webhooks[0];
        assert_eq!(
            (rmqtt.dialect, rmqtt.encoding()),
            (Dialect::Rmqtt, Encoding::Plain)
        );
        assert_eq!(rmqtt.headers["authorization"], "Bearer t");
        assert_eq!(rmqtt.topic_filters().len(), 3);
        assert_eq!(rmqtt.action.as_deref(), Some("session_subscribed_2"));
        let file = &config.webhooks[1];
        assert_eq!(
            file.file_path(),
            Some(PathBuf::from("/var/log/hookd/events.jsonl"))
        );
        assert_eq!(file.encoding(), Encoding::Base62);
        let vmq = WebhookConfig::new(Hook::OnPublish, "http://x/");
        assert_eq!(
            (vmq.dialect, vmq.encoding(), vmq.file_path()),
            (Dialect::Vernemq, Encoding::Base64, None)
        );
        let raw = WebhookConfig {
            base64_payload: false,
            ..vmq
        };
        assert_eq!(raw.encoding(), Encoding::Plain, "base64_payload = false is plain");
    }

    #[test]
    fn a_dialect_on_a_decision_hook_or_without_an_event_is_refused() {
        let text = webhook_error("hook = \"auth_on_publish\"\nendpoint = \"http://x/\"\ndialect = \"rmqtt\"");
        assert!(
            text.contains("webhooks[0].dialect") && text.contains("decision hook"),
            "{text}"
        );
        let text =
            webhook_error("hook = \"on_client_wakeup\"\nendpoint = \"http://x/\"\ndialect = \"nanomq\"");
        assert!(
            text.contains("no event for on_client_wakeup") && text.contains("on_publish"),
            "{text}"
        );
        let text = webhook_error("hook = \"on_publish\"\nendpoint = \"http://x/\"\ndialect = \"emqx\"");
        assert!(
            text.contains("vernemq") && text.contains("rmqtt") && text.contains("nanomq"),
            "{text}"
        );
    }

    #[test]
    fn bad_encodings_headers_topics_and_actions_are_refused_naming_the_key() {
        let cases = [
            ("payload_encoding = \"base32\"", "base62"),
            ("payload_encoding = \"base62\"", "webhooks[0].payload_encoding"),
            (
                "payload_encoding = \"base64\"\nbase64_payload = false",
                "contradicts",
            ),
            (
                "headers = { x-a = \"one\\r\\nx-b: two\" }",
                "webhooks[0].headers.x-a",
            ),
            ("headers = { x-a = \"nul\\u0000\" }", "webhooks[0].headers.x-a"),
            (
                "headers = { \"bad name\" = \"v\" }",
                "webhooks[0].headers.bad name",
            ),
            ("headers = { webhook-id = \"v\" }", "set by hookd"),
            ("topics = [\"a/#/b\"]", "webhooks[0].topics[0]"),
            ("topics = [\"\"]", "webhooks[0].topics[0]"),
            ("action = \"x\"", "needs `dialect = \"rmqtt\"`"),
        ];
        for (lines, expected) in cases {
            let text = webhook_error(&format!(
                "hook = \"on_publish\"\nendpoint = \"http://x/\"\n{lines}"
            ));
            assert!(text.contains(expected), "{lines}: {text}");
        }
        let text = webhook_error("hook = \"on_register\"\nendpoint = \"http://x/\"\ntopics = [\"a\"]");
        assert!(
            text.contains("webhooks[0].topics") && text.contains("no topic"),
            "{text}"
        );
    }

    #[test]
    fn a_file_sink_must_be_absolute_without_a_host_and_for_notifications() {
        for endpoint in [
            "file://target/x.log",
            "file:x.log",
            "file:///var/log/",
            "file:///a?b",
        ] {
            let text = webhook_error(&format!("hook = \"on_publish\"\nendpoint = \"{endpoint}\""));
            assert!(
                text.contains("webhooks[0].endpoint") && text.contains("file:///"),
                "{endpoint}: {text}"
            );
        }
        let text = webhook_error("hook = \"auth_on_publish\"\nendpoint = \"file:///tmp/x\"");
        assert!(text.contains("decision hook"), "{text}");
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

    /// Loads defaults plus these environment variables (no file).
    fn load_env(variables: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = variables
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Config::load(None, Some(env))
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = load_env(&[
            ("HOOKD_SERVER__LISTEN", "127.0.0.1:6000"),
            ("HOOKD_HTTP__POOL_MAX_CONNECTIONS", "7"),
        ])
        .expect("loads");
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
    fn the_dialects_example_loads() {
        let example = Config::from_toml(include_str!("../../examples/dialects.toml"))
            .expect("the dialects example loads");
        assert_eq!(example.webhooks.len(), 3);
    }

    #[test]
    fn the_example_file_registers_each_hook_beside_its_mqtt5_twin() {
        let example =
            Config::from_toml(include_str!("../../examples/hookd.toml")).expect("the example loads");
        let hooks: Vec<Hook> = example.webhooks.iter().map(|w| w.hook).collect();
        for hook in &hooks {
            let twin = if hook.is_m5() {
                hook.name().trim_end_matches("_m5").to_owned()
            } else {
                format!("{}_m5", hook.name())
            };
            if let Ok(twin) = Hook::from_name(&twin) {
                assert!(hooks.contains(&twin), "{hook} is registered without {twin}");
            }
        }
        assert!(
            hooks.contains(&Hook::AuthOnRegisterM5),
            "MQTT 5 clients may connect"
        );
    }

    #[test]
    fn the_log_format_is_text_json_or_refused_naming_both() {
        assert_eq!(Config::default().log.format, LogFormat::Text);
        let json = Config::from_toml("[log]\nformat = \"json\"\n").expect("json");
        assert_eq!(json.log.format, LogFormat::Json);
        let env = load_env(&[("HOOKD_LOG__FORMAT", "json")]).expect("from the environment");
        assert_eq!(env.log.format, LogFormat::Json);
        let err = Config::from_toml("[log]\nformat = \"xml\"\n").expect_err("xml");
        let message = err.to_string();
        assert!(
            message.contains("log.format") && message.contains("text") && message.contains("json"),
            "{message}"
        );
    }

    #[test]
    fn the_binarys_own_variables_are_not_configuration() {
        let config = load_env(&[
            ("HOOKD_LOG", "debug"),
            ("HOOKD_CONFIG", "/etc/hookd.toml"),
            ("HOOKD_SIDECAR_LISTEN", "127.0.0.1:8888"),
        ]);
        assert_eq!(config.expect("loads"), Config::default());
    }

    /// What Kubernetes puts in every pod's environment for a Service named
    /// `hookd` with a port named `grpc`.
    const KUBERNETES_SERVICE_HOOKD: [(&str, &str); 8] = [
        ("HOOKD_SERVICE_HOST", "10.0.0.1"),
        ("HOOKD_SERVICE_PORT", "50051"),
        ("HOOKD_SERVICE_PORT_GRPC", "50051"),
        ("HOOKD_PORT", "tcp://10.0.0.1:50051"),
        ("HOOKD_PORT_50051_TCP", "tcp://10.0.0.1:50051"),
        ("HOOKD_PORT_50051_TCP_PROTO", "tcp"),
        ("HOOKD_PORT_50051_TCP_PORT", "50051"),
        ("HOOKD_PORT_50051_TCP_ADDR", "10.0.0.1"),
    ];

    #[test]
    fn a_kubernetes_service_named_hookd_does_not_stop_hookd() {
        let config = load_env(&KUBERNETES_SERVICE_HOOKD).expect("a pod's environment loads");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn connection_bounds_have_documented_defaults_and_load_from_the_file() {
        let defaults = ServerConfig::default();
        assert_eq!(defaults.shutdown_grace(), Duration::from_secs(5));
        let config = Config::from_toml(
            "[server]\nshutdown_grace_ms = 0\nhttp2_keepalive_interval_ms = 250\n\
             http2_keepalive_timeout_ms = 500\nhandshake_timeout_ms = 750\nidle_timeout_ms = 1000\n",
        )
        .expect("loads");
        assert_eq!(config.server.shutdown_grace(), Duration::ZERO);
        let bounds = config.server.liveness();
        assert_eq!(bounds.keepalive_interval, Duration::from_millis(250));
        assert_eq!(bounds.keepalive_timeout, Duration::from_millis(500));
        assert_eq!(bounds.handshake_timeout, Duration::from_millis(750));
        assert_eq!(bounds.idle_timeout, Duration::from_millis(1000));
    }

    #[test]
    fn a_zero_or_endless_connection_bound_is_rejected_naming_the_key() {
        let err = Config::from_toml("[server]\nidle_timeout_ms = 0\n").expect_err("zero");
        assert!(err.to_string().contains("server.idle_timeout_ms"), "{err}");
        let err =
            Config::from_toml("[server]\nshutdown_grace_ms = 9223372036854775807\n").expect_err("endless");
        assert!(err.to_string().contains("server.shutdown_grace_ms"), "{err}");
    }

    #[test]
    fn configuration_variables_still_apply_beside_a_kubernetes_service() {
        let mut variables = KUBERNETES_SERVICE_HOOKD.to_vec();
        variables.push(("HOOKD_SERVER__LISTEN", "0.0.0.0:50051"));
        let config = load_env(&variables).expect("loads");
        assert_eq!(config.server.listen, "0.0.0.0:50051".parse().expect("addr"));
    }

    #[test]
    fn a_variable_naming_no_section_is_not_configuration() {
        for name in [
            "HOOKD_SERVR__LISTEN",
            "HOOKD_WEBHOOKS__0__HOOK",
            "HOOKD__LISTEN",
            "HOOKD_SERVER_LISTEN",
        ] {
            assert!(!is_config_variable(name), "{name}");
            assert_eq!(
                load_env(&[(name, "x")]).expect("ignored"),
                Config::default(),
                "{name}"
            );
        }
    }

    #[test]
    fn a_host_name_as_listen_address_says_what_is_wrong_and_what_is_valid() {
        for (toml, key) in [
            ("[server]\nlisten = \"localhost:50061\"\n", "server.listen"),
            ("[admin]\nlisten = \"localhost:50061\"\n", "admin.listen"),
            ("[metrics]\nlisten = \"localhost:50061\"\n", "metrics.listen"),
        ] {
            let text = Config::from_toml(toml).expect_err("a host name").to_string();
            for says in [
                key,
                "`localhost:50061`",
                "not a host name",
                "`127.0.0.1:50061`",
                "`0.0.0.0:50061`",
            ] {
                assert!(text.contains(says), "{says} in: {text}");
            }
        }
        let metrics = Config::from_toml("[metrics]\nlisten = \"127.0.0.1:9191\"\n").expect("an address");
        assert_eq!(
            metrics.metrics.listen,
            Some("127.0.0.1:9191".parse().expect("addr"))
        );
    }

    #[test]
    fn a_bad_value_is_reported_under_its_variables_name() {
        let err = load_env(&[("HOOKD_SERVER__LISTEN", "nope")]).expect_err("not an address");
        let text = err.to_string();
        assert!(text.starts_with("HOOKD_SERVER__LISTEN: "), "{text}");
        assert!(text.contains("invalid socket address"), "{text}");
    }

    #[test]
    fn wrongly_typed_environment_value_names_the_variable_and_the_key() {
        let err = load_env(&[("HOOKD_SERVER__CALL_TIMEOUT", "soon")]).expect_err("bad type");
        let text = err.to_string();
        assert!(text.starts_with("HOOKD_SERVER__CALL_TIMEOUT: "), "{text}");
        assert!(text.contains("call_timeout"), "{text}");
    }

    #[test]
    fn an_unknown_key_is_reported_with_the_keys_its_section_has() {
        let err = load_env(&[("HOOKD_SERVER__LISTEN_ON", "0.0.0.0:1")]).expect_err("typo");
        let text = err.to_string();
        assert!(text.starts_with("HOOKD_SERVER__LISTEN_ON: "), "{text}");
        for key in [
            "listen",
            "max_in_flight_per_stream",
            "call_timeout",
            "worker_threads",
        ] {
            assert!(text.contains(&format!("`{key}`")), "{key} missing from: {text}");
        }
    }

    #[test]
    fn a_rule_broken_by_a_variable_names_the_variable() {
        let err = load_env(&[("HOOKD_HTTP__POOL_MAX_CONNECTIONS", "0")]).expect_err("zero");
        let text = err.to_string();
        assert!(text.starts_with("HOOKD_HTTP__POOL_MAX_CONNECTIONS: "), "{text}");
        assert!(text.contains("http.pool_max_connections"), "{text}");
    }

    #[test]
    fn every_environment_section_is_a_section_of_the_configuration() {
        // An unknown key is an error only in a section that exists.
        for section in ENV_SECTIONS {
            let name = format!("HOOKD_{}__NO_SUCH_KEY", section.to_ascii_uppercase());
            let err = load_env(&[(&name, "1")]).expect_err("no such key");
            assert!(err.to_string().starts_with(&name), "{err}");
        }
        // And the file's sections are exactly these plus the webhook list.
        let err = Config::from_toml("no_such_section = 1").expect_err("unknown");
        let mut expected = ENV_SECTIONS.map(|s| format!("`{s}`")).join(", ");
        expected.push_str(", `webhooks`");
        assert!(err.to_string().contains(&expected), "{err}");
    }

    #[test]
    fn durations_of_a_day_at_most_are_accepted() {
        let config = Config::from_toml(&format!(
            "[server]\ncall_timeout = {MAX_DURATION_MS}\n[http]\npool_idle_timeout = 1\n"
        ))
        .expect("a day and a millisecond are in range");
        assert_eq!(config.server.call_timeout(), Duration::from_secs(86_400));
    }

    #[test]
    fn a_duration_of_i64_max_ms_is_refused_naming_the_key_and_the_range() {
        let cases = [
            (
                "[server]\ncall_timeout = 9223372036854775807\n",
                "server.call_timeout",
            ),
            (
                "[http]\npool_idle_timeout = 9223372036854775807\n",
                "http.pool_idle_timeout",
            ),
            (
                "[[webhooks]]\nhook = \"on_publish\"\nendpoint = \"http://h/\"\nresponse_timeout = 9223372036854775807\n",
                "webhooks[0].response_timeout",
            ),
        ];
        for (toml, key) in cases {
            let text = Config::from_toml(toml).expect_err("too long").to_string();
            assert!(text.contains(key), "{text}");
            assert!(text.contains("between 1 and 86400000 ms"), "{text}");
        }
    }

    #[test]
    fn a_duration_of_u64_max_ms_from_the_environment_is_refused() {
        let err = load_env(&[("HOOKD_SERVER__CALL_TIMEOUT", "18446744073709551615")]).expect_err("too long");
        assert!(
            err.to_string().starts_with("HOOKD_SERVER__CALL_TIMEOUT: "),
            "{err}"
        );
    }

    #[test]
    fn a_zero_duration_is_refused_where_it_means_nothing() {
        for toml in [
            "[server]\ncall_timeout = 0\n",
            "[http]\npool_idle_timeout = 0\n",
            "[[webhooks]]\nhook = \"on_publish\"\nendpoint = \"http://h/\"\nresponse_timeout = 0\n",
        ] {
            let text = Config::from_toml(toml).expect_err("zero").to_string();
            assert!(text.contains("between 1 and"), "{text}");
        }
    }

    /// The keys serde knows for `section`, read from its unknown-key error
    /// ("expected `a`" or "expected one of `a`, `b`"), so the list cannot
    /// drift from the struct.
    fn keys_of(section: &str) -> Vec<String> {
        let text = Config::from_toml(&format!("[{section}]\nno_such_key = 1\n"))
            .expect_err("an unknown key")
            .to_string();
        let expected = text.split(", expected ").nth(1).unwrap_or_default();
        let expected = expected.split(" for key").next().unwrap_or_default();
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .filter(|key| key != "pool_max_idle")
            .collect()
    }

    #[test]
    fn the_example_file_documents_every_key_with_its_default() {
        let text = include_str!("../../examples/hookd.toml");
        let example = Config::from_toml(text).expect("the example loads");
        let defaults = Config {
            webhooks: example.webhooks.clone(),
            ..Config::default()
        };
        assert_eq!(example, defaults, "the example sets every section to its default");
        for section in ENV_SECTIONS {
            let keys = keys_of(section);
            assert!(!keys.is_empty(), "{section} has keys");
            for key in keys {
                // A key that is a table of its own is shown as its header.
                let documented = text.lines().any(|line| {
                    let line = line.trim_start_matches("# ");
                    line.starts_with(&format!("{key} = ")) || line == format!("[{section}.{key}]")
                });
                assert!(documented, "examples/hookd.toml does not show {section}.{key}");
            }
        }
    }

    #[test]
    fn outbox_limits_of_zero_are_refused_naming_the_key() {
        for key in ["max_bytes", "max_batch", "window"] {
            let err = Config::from_toml(&format!("[outbox]\n{key} = 0\n")).expect_err("zero");
            assert!(err.to_string().contains(&format!("outbox.{key}")), "{err}");
        }
        let err = Config::from_toml("[outbox]\nretry_max_delay_ms = 0\n").expect_err("zero");
        assert!(err.to_string().contains("outbox.retry_max_delay_ms"), "{err}");
    }

    #[test]
    fn a_retry_budget_of_zero_means_forever_and_a_longer_one_is_kept() {
        let config = Config::from_toml(
            "[[webhooks]]\nhook = \"on_publish\"\nendpoint = \"http://h/a\"\nretry_budget_ms = 0\n\
             [[webhooks]]\nhook = \"on_publish\"\nendpoint = \"http://h/b\"\nretry_budget_ms = 250\n",
        )
        .expect("loads");
        assert_eq!(config.webhooks[0].retry_budget(), None);
        assert_eq!(
            config.webhooks[1].retry_budget(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            WebhookConfig::new(Hook::OnPublish, "http://h/").retry_budget(),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn the_outbox_and_admin_sections_load_from_the_environment() {
        let config = load_env(&[
            ("HOOKD_OUTBOX__PATH", "/var/lib/hookd/outbox.db"),
            ("HOOKD_ADMIN__LISTEN", "127.0.0.1:6062"),
        ])
        .expect("loads");
        assert_eq!(config.outbox.path, PathBuf::from("/var/lib/hookd/outbox.db"));
        assert_eq!(config.admin.listen, "127.0.0.1:6062".parse().expect("addr"));
    }

    #[test]
    fn an_error_says_everything_in_its_own_message_and_has_no_source() {
        // A chain printer (anyhow's `{:#}`) shows each source again: a
        // source here would print the same text twice.
        let errors = [
            Config::from_toml("x = [").expect_err("syntax"),
            Config::from_toml("[server]\nlisten = \"nope\"\n").expect_err("type"),
            Config::from_toml("[server]\ncall_timeout = 0\n").expect_err("rule"),
            load_env(&[("HOOKD_SERVER__LISTEN", "nope")]).expect_err("variable"),
        ];
        for err in errors {
            assert!(std::error::Error::source(&err).is_none(), "{err:?}");
        }
    }
}
