//! The `hookd` binary: parses the command line, loads the configuration,
//! starts tracing, and serves hookd on its shards until Ctrl-C or SIGTERM
//! (a second one exits at once; SIGHUP reloads the configuration file); or
//! runs one operator command: `hookd outbox …` ([`outbox_cli`]), `hookd
//! webhooks …`, `cache …`, `brokers`, `reload` against a running hookd
//! ([`admin_cli`]), or `hookd check` on a configuration file, offline.
//!
//! A failure to start is logged once, as one line with its causes
//! (`invalid configuration: HOOKD_SERVER__LISTEN: invalid socket address …`),
//! and hookd exits with status 1; so does an invalid `HOOKD_LOG`, before
//! anything else, since a filter that cannot be used would silently hide
//! every line after it.
//!
//! `HOOKD_LOG` is scoped to hookd's own crates ([`log_filter`]): `debug`
//! shows a line per call and per webhook request, not h2's frame dumps.

mod admin_cli;
mod outbox_cli;

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use hookd::{Config, config::LogFormat};
use tracing::{error, info, warn};
use tracing_subscriber::{EnvFilter, filter::LevelFilter};

/// The allocator. glibc's malloc keeps what a burst of broker streams used:
/// 10,000 streams opened and closed three times left hookd at 254 MB
/// resident against a 14 MB start (its per-thread arenas fragment, and only
/// the top of each heap is ever returned), and each round peaked higher.
/// mimalloc kept as much (it purges only on a thread's next allocation, and
/// hookd's shards are idle then). jemalloc, with its background thread
/// (`background_threads`), returns dirty pages over about ten seconds
/// whether or not hookd is busy: the same churn peaks at 178 MB each round
/// and falls back to about 20 MB. The `faults::memory` test holds it to that.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A central hook service for MQTT brokers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file; without it hookd runs on its embedded
    /// defaults (gRPC on 127.0.0.1:50051, no webhooks). `HOOKD_<SECTION>__<KEY>`
    /// environment variables override either.
    #[arg(long, short, env = "HOOKD_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Without a command hookd serves.
    #[command(subcommand)]
    command: Option<Command>,
}

/// The operator commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// The notification outbox: dead letters, stopped webhooks, backlog.
    Outbox(outbox_cli::OutboxArgs),
    /// Webhooks of a running hookd: register and deregister at run time
    /// (kept across restarts), show them all.
    Webhooks {
        #[command(flatten)]
        target: admin_cli::Target,
        #[command(subcommand)]
        command: admin_cli::WebhooksCommand,
    },
    /// The verdict cache of a running hookd.
    Cache {
        #[command(flatten)]
        target: admin_cli::Target,
        #[command(subcommand)]
        command: admin_cli::CacheCommand,
    },
    /// The brokers connected to a running hookd: node id, kind, address,
    /// since when, calls in flight.
    Brokers {
        #[command(flatten)]
        target: admin_cli::Target,
    },
    /// Make a running hookd re-read its configuration file (as SIGHUP
    /// does): webhook changes apply at once; an invalid file is refused
    /// with its error and the running configuration stays.
    Reload {
        #[command(flatten)]
        target: admin_cli::Target,
    },
    /// Check a configuration (`--config FILE` and the environment) offline,
    /// as hookd would start with it: exits 0 if valid, else 1 with the error.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match std::env::var("HOOKD_LOG") {
        Ok(spec) => log_filter(&spec),
        Err(std::env::VarError::NotPresent) => log_filter(""),
        Err(std::env::VarError::NotUnicode(_)) => Err("HOOKD_LOG is not valid UTF-8".to_owned()),
    };
    let filter = match filter {
        Ok(filter) => filter,
        Err(e) => {
            // No log yet to say it in.
            eprintln!("hookd: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Returning the error from `main` would print it as `Debug`: with a
    // backtrace when RUST_BACKTRACE is set, and each cause on its own line.
    // One line, with every cause once, is what an operator needs.
    let result = match cli.command {
        Some(command) => {
            init_logging(filter, LogFormat::Text);
            operator_command(cli.config.as_deref(), command)
        }
        None => {
            // The configuration says how to log, so it is read first; if it
            // cannot be, that is said in plain text.
            let config = Config::load(cli.config.as_deref(), None);
            init_logging(
                filter,
                config
                    .as_ref()
                    .map_or(LogFormat::Text, |config| config.log.format),
            );
            warn_about_lookalike_variables();
            config
                .context("invalid configuration")
                .and_then(|config| run(config, cli.config))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one operator command with the configuration file at `config`.
fn operator_command(config: Option<&Path>, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Outbox(args) => outbox_cli::run(config, args),
        Command::Webhooks { target, command } => {
            admin_cli::run(config, &target, admin_cli::Command::Webhooks(command))
        }
        Command::Cache { target, command } => {
            admin_cli::run(config, &target, admin_cli::Command::Cache(command))
        }
        Command::Brokers { target } => admin_cli::run(config, &target, admin_cli::Command::Brokers),
        Command::Reload { target } => admin_cli::run(config, &target, admin_cli::Command::Reload),
        Command::Check => check(config),
    }
}

/// hookd's own crates: a plain level in `HOOKD_LOG` is theirs.
const OWN_CRATES: [&str; 3] = ["hookd", "hookd_proto", "hookd_bridge"];

/// The log levels, for the error message.
const LEVELS: &str = "off, error, warn, info, debug, trace";

/// The filter `HOOKD_LOG` asks for. Empty is `info`. A plain level applies
/// to hookd's own crates, every other crate (h2, hyper, tonic) staying at
/// `warn`, so `debug` is a line per call, not h2's frames; anything else is
/// taken as tracing directives (`info,h2=debug`), where each directive
/// without `=` must be a level (a bare word would be read as a target name
/// and quietly hide hookd's logs). Whatever does not parse is refused.
fn log_filter(spec: &str) -> Result<EnvFilter, String> {
    let spec = spec.trim();
    let directives = match spec.parse::<LevelFilter>() {
        _ if spec.is_empty() => scoped("info"),
        Ok(_) => scoped(spec),
        Err(_) => {
            if let Some(word) = spec
                .split(',')
                .map(str::trim)
                .find(|d| !d.is_empty() && !d.contains('=') && d.parse::<LevelFilter>().is_err())
            {
                return Err(format!(
                    "HOOKD_LOG={spec:?}: `{word}` is not a level; use a level ({LEVELS}) for hookd's own logs, \
                     or directives such as `info,h2=debug`"
                ));
            }
            spec.to_owned()
        }
    };
    EnvFilter::builder().parse(&directives).map_err(|e| {
        format!(
            "HOOKD_LOG={spec:?} is not a log filter ({e}); use a level ({LEVELS}) for hookd's own logs, \
             or directives such as `info,h2=debug`"
        )
    })
}

/// `level` for hookd's own crates, `warn` for the rest.
fn scoped(level: &str) -> String {
    std::iter::once("warn".to_owned())
        .chain(OWN_CRATES.iter().map(|krate| format!("{krate}={level}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// Logs to stderr with `filter`: as text, coloured only on a terminal (not
/// in `docker logs` or a file), or as one JSON object per line.
fn init_logging(filter: EnvFilter, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Binds `server.listen` and serves `config` (loaded from `path`, which
/// SIGHUP and `hookd reload` re-read) until a signal.
fn run(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    raise_open_files_limit();
    let listener = std::net::TcpListener::bind(config.server.listen)
        .with_context(|| format!("cannot bind server.listen {}", config.server.listen))?;
    let shards = hookd::shard::count(config.server.worker_threads);
    hookd::Hookd::from_file(config, path)
        .context("configuring")?
        .reload_on_sighup()
        .serve_sharded(listener, shards, shutdown_signal())
        .context("serving")
}

/// `hookd check`: loads and checks the configuration, printing what it has.
fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(path, None).context("invalid configuration")?;
    hookd::check(&config).context("invalid configuration")?;
    let shown = path.map_or_else(|| "the defaults".to_owned(), |p| p.display().to_string());
    println!(
        "{shown}: ok ({} webhooks; gRPC on {}, admin on {})",
        config.webhooks.len(),
        config.server.listen,
        config.admin.listen
    );
    Ok(())
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, logging both: every
/// broker and webhook connection holds a descriptor.
fn raise_open_files_limit() {
    match hookd::accept::raise_open_files_limit() {
        Ok(limit) => info!(
            soft = limit.soft,
            hard = limit.hard,
            was = limit.was,
            "open file limit (RLIMIT_NOFILE)"
        ),
        Err(e) => warn!(error = %e, "cannot raise the open file limit (RLIMIT_NOFILE)"),
    }
}

/// Warns about `HOOKD_X__Y` variables whose `X` is no section: they are
/// ignored like any other variable that is not configuration, but unlike
/// the ones orchestrators set (which never contain `__`) they are most
/// likely a typo of a real one.
fn warn_about_lookalike_variables() {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("HOOKD_") && name.contains("__") && !hookd::config::is_config_variable(name) {
            warn!(
                variable = name,
                sections = ?hookd::config::ENV_SECTIONS,
                "ignoring an environment variable that names no configuration section"
            );
        }
    }
}

/// Completes on the first Ctrl-C or SIGTERM (what `docker stop` sends),
/// which starts the graceful shutdown; a second one exits the process at
/// once, with calls in flight unanswered.
async fn shutdown_signal() {
    let mut signals = Signals::new();
    let first = signals.next().await;
    info!(
        signal = first.name,
        "shutdown requested; a second signal exits at once"
    );
    // Runs on the runtime that waits for the shutdown, which lives until
    // hookd has stopped.
    tokio::spawn(async move {
        let second = signals.next().await;
        warn!(signal = second.name, "second signal: exiting at once");
        std::process::exit(second.exit_code);
    });
}

/// A signal that stops hookd.
#[derive(Debug, Clone, Copy)]
struct Stop {
    name: &'static str,
    /// 128 + the signal number, as a shell reports a death by signal.
    exit_code: i32,
}

/// The stop signals, listened to from hookd's start so that none is missed
/// (once listened to, a signal no longer kills the process by itself).
struct Signals {
    #[cfg(unix)]
    unix: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let unix = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                (Ok(interrupt), Ok(terminate)) => Some((interrupt, terminate)),
                (Err(e), _) | (_, Err(e)) => {
                    warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops hookd");
                    None
                }
            };
            Self { unix }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next stop signal.
    async fn next(&mut self) -> Stop {
        const INTERRUPT: Stop = Stop {
            name: "SIGINT",
            exit_code: 130,
        };
        #[cfg(unix)]
        if let Some((interrupt, terminate)) = &mut self.unix {
            return tokio::select! {
                _ = interrupt.recv() => INTERRUPT,
                _ = terminate.recv() => Stop { name: "SIGTERM", exit_code: 143 },
            };
        }
        if tokio::signal::ctrl_c().await.is_err() {
            // No way to be told to stop: serve until killed.
            std::future::pending::<()>().await;
        }
        INTERRUPT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_level_is_scoped_to_hookds_own_crates() {
        assert_eq!(
            scoped("debug"),
            "warn,hookd=debug,hookd_proto=debug,hookd_bridge=debug"
        );
        assert_eq!(
            log_filter("debug").expect("a level").to_string(),
            log_filter(" debug ").expect("trimmed").to_string()
        );
        let default = log_filter("").expect("the default").to_string();
        assert!(
            default.contains("hookd=info") && default.contains("warn"),
            "{default}"
        );
    }

    #[test]
    fn directives_are_taken_as_written() {
        let filter = log_filter("info,h2=debug").expect("directives").to_string();
        assert!(filter.contains("h2=debug"), "{filter}");
    }

    #[test]
    fn an_invalid_filter_is_refused_saying_what_is_valid() {
        for spec in ["verbose", "hookd=loud", "info,noisy", "[{"] {
            let e = log_filter(spec).expect_err(spec);
            assert!(e.contains("HOOKD_LOG") && e.contains("debug"), "{spec}: {e}");
        }
    }
}
