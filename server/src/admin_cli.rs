//! The `hookd` commands that talk to a running hookd's admin service
//! (`hookd.v1.Admin` at `--admin`, or `admin.listen` of the configuration),
//! named as `vmq-admin webhooks` has them:
//!
//! ```text
//! hookd webhooks register hook=auth_on_register endpoint=http://127.0.0.1:8080/auth [--base64payload true] [--no_payload false] [--response_timeout 5000]
//! hookd webhooks deregister hook=auth_on_register endpoint=http://127.0.0.1:8080/auth
//! hookd webhooks show
//! hookd cache show [--reset]
//! hookd cache clear
//! hookd brokers
//! hookd reload
//! ```
//!
//! With `admin.token_file` in the configuration (or `--token-file`), the
//! token is sent as `authorization: Bearer <token>`. Tables go to stdout;
//! a refusal is the error hookd gave, and the exit status 1.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use clap::{ArgAction, Args, Subcommand};
use hookd::{Config, admin::read_token};

use hookd_proto::v1::{self as pb, admin_client::AdminClient};
use tonic::{
    Request,
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// Where the running hookd's admin service is, and its token.
#[derive(Debug, Args)]
pub struct Target {
    /// The admin address of a running hookd; default `admin.listen` of the
    /// configuration (127.0.0.1:50062).
    #[arg(long, global = true)]
    pub admin: Option<SocketAddr>,
    /// A file with the admin token; default `admin.token_file` of the
    /// configuration.
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
}

/// `hookd webhooks`.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Register a webhook at run time (kept across restarts):
    /// `hook=NAME endpoint=URL`.
    Register {
        /// `hook=NAME` and `endpoint=URL`, as vmq-admin takes them.
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
        /// Send payloads base64-encoded (default true).
        #[arg(long = "base64payload", alias = "base64_payload", value_name = "true|false", action = ArgAction::Set)]
        base64payload: Option<bool>,
        /// Leave the payload out of `auth_on_publish*` calls (default false).
        #[arg(long = "no_payload", alias = "no-payload", value_name = "true|false", action = ArgAction::Set)]
        no_payload: Option<bool>,
        /// Deadline of one request to the endpoint, in ms (default 5000).
        #[arg(long = "response_timeout", alias = "response-timeout", value_name = "MS")]
        response_timeout: Option<u64>,
    },
    /// Deregister a webhook registered at run time: `hook=NAME endpoint=URL`.
    Deregister {
        /// `hook=NAME` and `endpoint=URL`.
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// Every registered webhook, configured and run-time, as a table.
    Show,
}

/// `hookd cache`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// The verdict cache's entries, and hits, misses and stores per hook.
    Show {
        /// Set the counters back to zero after showing them.
        #[arg(long)]
        reset: bool,
    },
    /// Drop every cached verdict.
    Clear,
}

/// A command for the admin service.
#[derive(Debug)]
pub enum Command {
    /// `hookd webhooks …`.
    Webhooks(WebhooksCommand),
    /// `hookd cache …`.
    Cache(CacheCommand),
    /// `hookd brokers`.
    Brokers,
    /// `hookd reload`.
    Reload,
}

/// Sends the admin token with every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type Client = AdminClient<InterceptedService<Channel, Bearer>>;

/// Runs `command` against the hookd `target` and the configuration at
/// `config` name, printing its result on stdout.
pub fn run(config: Option<&Path>, target: &Target, command: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut admin = connect(config, target).await?;
        match command {
            Command::Webhooks(command) => webhooks(&mut admin, command).await,
            Command::Cache(command) => cache(&mut admin, command).await,
            Command::Brokers => brokers(&mut admin).await,
            Command::Reload => reload(&mut admin).await,
        }
    })
}

/// A client of the admin service `target` names (or the configuration's).
pub async fn connect(config: Option<&Path>, target: &Target) -> anyhow::Result<Client> {
    let (listen, configured_token) = if target.admin.is_none() || target.token_file.is_none() {
        admin_section(config)?
    } else {
        (None, None)
    };
    let addr = target
        .admin
        .or(listen)
        .unwrap_or_else(|| hookd::config::AdminConfig::default().listen);
    let token_file = target.token_file.clone().or(configured_token);
    let bearer = match token_file {
        Some(path) => {
            let token = read_token(&path)?;
            Some(
                format!("Bearer {token}")
                    .parse()
                    .context("the admin token must be printable ASCII")?,
            )
        }
        None => None,
    };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| {
            format!("cannot reach hookd's admin service at {addr} (is hookd running? for a stopped one, `hookd outbox` takes --store)")
        })?;
    Ok(AdminClient::with_interceptor(channel, Bearer(bearer)))
}

/// `admin.listen` and `admin.token_file` of the configuration. A file the
/// running hookd would refuse (which `hookd reload` must still be able to
/// send it, to hear why) is read for these two keys alone.
fn admin_section(path: Option<&Path>) -> anyhow::Result<(Option<SocketAddr>, Option<PathBuf>)> {
    let invalid = match Config::load(path, None) {
        Ok(config) => return Ok((Some(config.admin.listen), config.admin.token_file)),
        Err(e) => e,
    };
    let variable = |name: &str| std::env::var(name).ok();
    let mut builder = config::Config::builder();
    if let Some(path) = path {
        builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
    }
    let lenient = builder
        .build()
        .with_context(|| format!("invalid configuration: {invalid}"))?;
    let listen = match variable("HOOKD_ADMIN__LISTEN").or_else(|| lenient.get_string("admin.listen").ok()) {
        Some(listen) => Some(listen.parse().with_context(|| {
            format!("invalid configuration: {invalid} (and admin.listen {listen:?} is no address)")
        })?),
        None => None,
    };
    let token_file = variable("HOOKD_ADMIN__TOKEN_FILE")
        .or_else(|| lenient.get_string("admin.token_file").ok())
        .map(PathBuf::from);
    Ok((listen, token_file))
}

/// `hook` and `endpoint` from `key=value` pairs.
fn hook_and_endpoint(pairs: &[String]) -> anyhow::Result<(String, String)> {
    let (mut hook, mut endpoint) = (None, None);
    for pair in pairs {
        match pair.split_once('=') {
            Some(("hook", value)) => hook = Some(value.to_owned()),
            Some(("endpoint", value)) => endpoint = Some(value.trim_matches('"').to_owned()),
            _ => bail!("expected hook=NAME and endpoint=URL, got {pair:?}"),
        }
    }
    match (hook, endpoint) {
        (Some(hook), Some(endpoint)) => Ok((hook, endpoint)),
        _ => bail!("both hook=NAME and endpoint=URL are needed"),
    }
}

fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", status.message())
}

async fn webhooks(admin: &mut Client, command: WebhooksCommand) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::Register {
            pairs,
            base64payload,
            no_payload,
            response_timeout,
        } => {
            let (hook, endpoint) = hook_and_endpoint(&pairs)?;
            let registered = admin
                .register_webhook(pb::RegisterWebhookRequest {
                    webhook: Some(pb::WebhookRegistration {
                        hook: hook.clone(),
                        endpoint,
                        base64_payload: base64payload,
                        no_payload,
                        response_timeout_ms: response_timeout,
                    }),
                })
                .await
                .map_err(refused)?
                .into_inner();
            println!("registered {hook} {}", registered.endpoint);
        }
        WebhooksCommand::Deregister { pairs } => {
            let (hook, endpoint) = hook_and_endpoint(&pairs)?;
            let deregistered = admin
                .deregister_webhook(pb::DeregisterWebhookRequest {
                    hook: hook.clone(),
                    endpoint,
                })
                .await
                .map_err(refused)?
                .into_inner();
            println!("deregistered {hook} {}", deregistered.endpoint);
        }
        WebhooksCommand::Show => {
            let list = admin
                .list_webhooks(pb::ListWebhooksRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            let rows = list
                .webhooks
                .iter()
                .map(|w| {
                    vec![
                        w.hook.clone(),
                        w.endpoint.clone(),
                        w.base64_payload.to_string(),
                        w.no_payload.to_string(),
                        w.response_timeout_ms.to_string(),
                        w.source.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "hook",
                        "endpoint",
                        "base64payload",
                        "no_payload",
                        "response_timeout",
                        "source"
                    ],
                    rows
                )
            );
        }
    }
    Ok(())
}

async fn cache(admin: &mut Client, command: CacheCommand) -> anyhow::Result<()> {
    match command {
        CacheCommand::Show { reset } => {
            let stats = admin
                .cache_stats(pb::CacheStatsRequest { reset })
                .await
                .map_err(refused)?
                .into_inner();
            println!(
                "entries {} of max_entries {} (counters since {})",
                stats.entries,
                stats.max_entries,
                time(stats.since_ms)
            );
            let rows = stats
                .hooks
                .iter()
                .map(|h| {
                    vec![
                        h.hook.clone(),
                        h.hits.to_string(),
                        h.misses.to_string(),
                        h.inserts.to_string(),
                    ]
                })
                .collect();
            print!("{}", table(&["hook", "hits", "misses", "inserts"], rows));
            if reset {
                println!("counters reset");
            }
        }
        CacheCommand::Clear => {
            let cleared = admin
                .clear_cache(pb::ClearCacheRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            println!("cleared {} entries", cleared.entries);
        }
    }
    Ok(())
}

async fn brokers(admin: &mut Client) -> anyhow::Result<()> {
    let list = admin
        .list_brokers(pb::ListBrokersRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    let rows = list
        .brokers
        .iter()
        .map(|b| {
            let kind = if b.version.is_empty() {
                b.kind.clone()
            } else {
                format!("{} {}", b.kind, b.version)
            };
            vec![
                b.node_id.clone(),
                kind,
                b.address.clone(),
                time(b.since_ms),
                b.calls_in_flight.to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["node_id", "kind", "address", "since", "calls_in_flight"], rows)
    );
    Ok(())
}

async fn reload(admin: &mut Client) -> anyhow::Result<()> {
    let reloaded = admin
        .reload(pb::ReloadRequest {})
        .await
        .map_err(|status| anyhow::anyhow!("reload refused: {}", status.message()))?
        .into_inner();
    println!("reloaded");
    for added in &reloaded.added {
        println!("added {added}");
    }
    for removed in &reloaded.removed {
        println!("removed {removed}");
    }
    if !reloaded.restart_needed.is_empty() {
        println!(
            "restart needed for changes to: {}",
            reloaded.restart_needed.join(", ")
        );
    }
    Ok(())
}

/// `ms` since the epoch as UTC `YYYY-MM-DDTHH:MM:SSZ`.
fn time(ms: u64) -> String {
    civil(UNIX_EPOCH + Duration::from_millis(ms))
}

fn civil(at: std::time::SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// A table as vmq-admin prints one: a border, the header, a border, the
/// rows, a border.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let border = {
        let mut line = String::from("+");
        for width in &widths {
            line.push_str(&"-".repeat(width + 2));
            line.push('+');
        }
        line.push('\n');
        line
    };
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut line = String::from("|");
        for (width, cell) in widths.iter().zip(cells) {
            let pad = width - cell.chars().count();
            line.push_str(&format!(" {cell}{} |", " ".repeat(pad)));
        }
        line.push('\n');
        line
    };
    let mut out = border.clone();
    out.push_str(&line(&mut header.iter().copied()));
    out.push_str(&border);
    for row in &rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out.push_str(&border);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_aligned_and_bordered() {
        let text = table(&["a", "bb"], vec![vec!["xyz".into(), "1".into()]]);
        assert_eq!(
            text,
            "+-----+----+\n| a   | bb |\n+-----+----+\n| xyz | 1  |\n+-----+----+\n"
        );
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(1_700_000_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn pairs_name_the_hook_and_the_endpoint() {
        let pairs = ["hook=on_publish".to_owned(), "endpoint=\"http://h/\"".to_owned()];
        assert_eq!(
            hook_and_endpoint(&pairs).expect("both"),
            ("on_publish".to_owned(), "http://h/".to_owned())
        );
        assert!(hook_and_endpoint(&pairs[..1]).is_err());
        assert!(hook_and_endpoint(&["hooks=x".to_owned()]).is_err());
    }
}
