//! The `hookd` binary: parses the command line, loads the configuration,
//! starts tracing, and serves hookd on its shards until Ctrl-C or SIGTERM.
//!
//! A failure to start is logged once, as one line with its causes
//! (`invalid configuration: HOOKD_SERVER__LISTEN: invalid socket address …`),
//! and hookd exits with status 1.

use std::{io::IsTerminal, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::Parser;
use hookd::Config;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

/// A central hook service for MQTT brokers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file; without it hookd runs on its embedded
    /// defaults (gRPC on 127.0.0.1:50051, no webhooks). `HOOKD_<SECTION>__<KEY>`
    /// environment variables override either.
    #[arg(long, short, env = "HOOKD_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr, coloured only on a terminal (not in `docker logs`).
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("HOOKD_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Returning the error from `main` would print it as `Debug`: with a
    // backtrace when RUST_BACKTRACE is set, and each cause on its own line.
    // One line, with every cause once, is what an operator needs.
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration, binds `server.listen` and serves until a signal.
fn run(cli: Cli) -> anyhow::Result<()> {
    raise_open_files_limit();
    warn_about_lookalike_variables();
    let config = Config::load(cli.config.as_deref(), None).context("invalid configuration")?;
    let listener = std::net::TcpListener::bind(config.server.listen)
        .with_context(|| format!("cannot bind server.listen {}", config.server.listen))?;
    let shards = hookd::shard::count(config.server.worker_threads);
    hookd::Hookd::new(config)
        .context("configuring")?
        .serve_sharded(listener, shards, shutdown_signal())
        .context("serving")
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

/// Completes on Ctrl-C or SIGTERM (what `docker stop` sends).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
