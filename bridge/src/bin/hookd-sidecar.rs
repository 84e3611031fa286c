//! `hookd-sidecar`: runs next to a VerneMQ node, takes the calls of VerneMQ's
//! own `vmq_webhooks` plugin on localhost, forwards them to a central hookd
//! over one gRPC stream, and answers in vmq_webhooks' format.
//!
//! Every option has an environment variable (`HOOKD_SIDECAR_…`). It logs as
//! hookd does: to stderr, coloured only on a terminal (never into a file or
//! `docker logs`), as text or JSON (`--log-format`), filtered by `HOOKD_LOG`
//! (default `info`): a plain level is for hookd's own crates, others
//! staying at `warn`; an invalid filter stops it at start, saying why.
//! Ctrl-C or SIGTERM stops it after the calls in progress are answered. The
//! link to hookd can use TLS (a CA, a client certificate for mTLS, a server
//! name) and a bearer token; the token is never logged.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use hookd_bridge::{
    FailurePolicy, Hook, HookStyle, NodeIdentity, Options, TlsOptions,
    sidecar::{self, SidecarOptions},
};
use tracing::info;
use tracing_subscriber::{EnvFilter, filter::LevelFilter};

/// A vmq_webhooks-compatible sidecar for hookd.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "A vmq_webhooks-compatible sidecar for hookd: point VerneMQ's webhooks at it, \
             and it forwards every call to hookd over one gRPC stream."
)]
struct Cli {
    /// Where VerneMQ's webhooks POST to (keep it on localhost).
    #[arg(long, env = "HOOKD_SIDECAR_LISTEN", default_value = "127.0.0.1:8888")]
    listen: SocketAddr,
    /// hookd address(es), `host:port`; repeat the flag or separate with commas.
    #[arg(
        long,
        env = "HOOKD_SIDECAR_HOOKD",
        value_delimiter = ',',
        num_args = 1..,
        default_value = "127.0.0.1:50051"
    )]
    hookd: Vec<String>,
    /// This node's name in hookd's logs and metrics (default: the host name,
    /// else "vernemq").
    #[arg(long, env = "HOOKD_SIDECAR_NODE_ID")]
    node_id: Option<String>,
    /// Deadline of each call to hookd, in ms. Keep it below the webhooks'
    /// `response_timeout` in VerneMQ (5000 by default).
    #[arg(long, env = "HOOKD_SIDECAR_TIMEOUT_MS", default_value_t = 4000)]
    timeout_ms: u64,
    /// Payloads arrive (and payload modifiers are answered) base64-encoded,
    /// as with vmq_webhooks' default `base64encode = on`.
    #[arg(
        long,
        env = "HOOKD_SIDECAR_BASE64_PAYLOAD",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    base64_payload: bool,
    /// What auth and other chain hooks answer when hookd cannot answer in
    /// time. Notification hooks are always accepted.
    #[arg(long, env = "HOOKD_SIDECAR_FAILURE_POLICY", value_enum, default_value_t = Policy::Deny)]
    failure_policy: Policy,
    /// The largest request body accepted, in bytes.
    #[arg(long, env = "HOOKD_SIDECAR_MAX_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Speak TLS to hookd (its `[server.tls]`), trusting the system's CAs
    /// unless `--ca-file` is given. Implied by every other TLS option.
    #[arg(long, env = "HOOKD_SIDECAR_TLS", action = clap::ArgAction::SetTrue)]
    tls: bool,
    /// PEM CA certificate(s) hookd's certificate must chain to.
    #[arg(long, env = "HOOKD_SIDECAR_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// PEM certificate chain to present to hookd (mTLS: hookd's
    /// `client_ca_file`); needs `--client-key-file`.
    #[arg(long, env = "HOOKD_SIDECAR_CLIENT_CERT_FILE", requires = "client_key_file")]
    client_cert_file: Option<PathBuf>,
    /// PEM private key of `--client-cert-file`.
    #[arg(long, env = "HOOKD_SIDECAR_CLIENT_KEY_FILE", requires = "client_cert_file")]
    client_key_file: Option<PathBuf>,
    /// The name hookd's certificate must be valid for (default: the host of
    /// each `--hookd` address).
    #[arg(long, env = "HOOKD_SIDECAR_SERVER_NAME")]
    server_name: Option<String>,
    /// A file holding the bearer token sent to hookd (its `[server.auth]
    /// tokens_file`); surrounding whitespace is ignored. Read at start.
    #[arg(long, env = "HOOKD_SIDECAR_TOKEN_FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// The bearer token itself. Prefer the variable or `--token-file`: a
    /// command line is visible to every user of the machine.
    #[arg(long, env = "HOOKD_SIDECAR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How log lines are written to stderr: `text`, or `json` (one object
    /// per line, for log shippers).
    #[arg(long, env = "HOOKD_SIDECAR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line.
    Json,
}

/// `--failure-policy` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Policy {
    /// Reject (`{"result":{"error":"unavailable: …"}}`).
    Deny,
    /// Allow (`{"result":"ok"}`).
    Allow,
    /// No opinion (`{"result":"next"}`): VerneMQ's other plugins decide.
    Next,
}

/// The crates whose logs a plain level in `HOOKD_LOG` is for.
const OWN_CRATES: [&str; 3] = ["hookd_sidecar", "hookd_bridge", "hookd_proto"];

/// The filter `HOOKD_LOG` asks for, as hookd reads it: empty is `info`; a
/// plain level is for [`OWN_CRATES`], others staying at `warn`; anything
/// else must parse as tracing directives.
fn log_filter(spec: &str) -> anyhow::Result<EnvFilter> {
    let spec = spec.trim();
    let level = if spec.is_empty() {
        Some("info")
    } else {
        spec.parse::<LevelFilter>().ok().map(|_| spec)
    };
    let directives = match level {
        Some(level) => std::iter::once("warn".to_owned())
            .chain(OWN_CRATES.iter().map(|krate| format!("{krate}={level}")))
            .collect::<Vec<_>>()
            .join(","),
        None => {
            if let Some(word) = spec
                .split(',')
                .map(str::trim)
                .find(|d| !d.is_empty() && !d.contains('=') && d.parse::<LevelFilter>().is_err())
            {
                anyhow::bail!(
                    "HOOKD_LOG={spec:?}: `{word}` is not a level; use a level (off, error, warn, info, debug, trace) \
                     or directives such as `info,h2=debug`"
                );
            }
            spec.to_owned()
        }
    };
    EnvFilter::builder()
        .parse(&directives)
        .with_context(|| format!("HOOKD_LOG={spec:?} is not a log filter"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let spec = match std::env::var("HOOKD_LOG") {
        Ok(spec) => spec,
        Err(std::env::VarError::NotPresent) => String::new(),
        Err(e) => anyhow::bail!("HOOKD_LOG: {e}"),
    };
    let filter = log_filter(&spec)?;
    let logging = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logging
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logging.json().flatten_event(true).init(),
    }

    let identity = NodeIdentity {
        node_id: cli.node_id.clone().unwrap_or_else(default_node_id),
        broker_kind: "vernemq".to_owned(),
        broker_version: format!("vmq_webhooks via hookd-sidecar {}", env!("CARGO_PKG_VERSION")),
    };
    let timeout = Duration::from_millis(cli.timeout_ms);
    let mut options = Options::new(cli.hookd.clone(), identity);
    options.default_timeout = timeout;
    let policy = match cli.failure_policy {
        Policy::Deny => FailurePolicy::Deny,
        Policy::Allow => FailurePolicy::Allow,
        Policy::Next => FailurePolicy::Next,
    };
    for hook in Hook::ALL.into_iter().filter(|h| h.style() == HookStyle::Chain) {
        options.policies.insert(hook, policy);
    }
    options.tls = cli.tls_options();
    options.token = cli.token()?;
    let (options_tls, options_token) = (options.tls.is_some(), options.token.is_some());
    let client = hookd_bridge::connect(options).context("starting the hookd client")?;

    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    info!(
        listen = %listener.local_addr().context("reading the bound address")?,
        hookd = ?cli.hookd,
        base64_payload = cli.base64_payload,
        timeout_ms = cli.timeout_ms,
        tls = options_tls,
        token = options_token,
        "hookd-sidecar listening"
    );
    let sidecar_options = SidecarOptions {
        base64_payload: cli.base64_payload,
        timeout,
        max_body_bytes: cli.max_body_bytes,
    };
    sidecar::serve(listener, client, sidecar_options, shutdown_signal())
        .await
        .context("serving")?;
    info!("hookd-sidecar stopped");
    Ok(())
}

impl Cli {
    /// The TLS options, when any TLS flag is given.
    fn tls_options(&self) -> Option<TlsOptions> {
        let wanted = self.tls
            || self.ca_file.is_some()
            || self.client_cert_file.is_some()
            || self.server_name.is_some();
        wanted.then(|| TlsOptions {
            ca_file: self.ca_file.clone(),
            client_cert_file: self.client_cert_file.clone(),
            client_key_file: self.client_key_file.clone(),
            domain: self.server_name.clone(),
        })
    }

    /// The token, from `--token` or read from `--token-file`.
    fn token(&self) -> anyhow::Result<Option<String>> {
        let token = match (&self.token, &self.token_file) {
            (Some(token), _) => token.trim().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the token file {}", path.display()))?
                .trim()
                .to_owned(),
            (None, None) => return Ok(None),
        };
        anyhow::ensure!(!token.is_empty(), "the token is empty");
        Ok(Some(token))
    }
}

/// The host name, else "vernemq".
fn default_node_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "vernemq".to_owned())
}

/// Completes on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No Ctrl-C handler: wait for SIGTERM alone.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("Ctrl-C: shutting down"),
        () = terminate => info!("SIGTERM: shutting down"),
    }
}
