//! The `hookd` binary: parses the command line, loads the configuration,
//! starts tracing, and serves hookd on its shards until Ctrl-C or SIGTERM.

use std::{io::IsTerminal, path::PathBuf};

use anyhow::Context;
use clap::Parser;
use hookd::Config;
use tracing_subscriber::EnvFilter;

/// A central hook service for MQTT brokers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file; without it hookd runs on its embedded
    /// defaults (gRPC on 127.0.0.1:50051, no webhooks). `HOOKD_…`
    /// environment variables override either.
    #[arg(long, short, env = "HOOKD_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Logs go to stderr, coloured only on a terminal (not in `docker logs`).
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("HOOKD_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = Config::load(cli.config.as_deref(), None).context("loading the configuration")?;
    let listener = std::net::TcpListener::bind(config.server.listen)
        .with_context(|| format!("binding {}", config.server.listen))?;
    let shards = hookd::shard::count(config.server.worker_threads);
    hookd::Hookd::new(config)
        .context("configuring")?
        .serve_sharded(listener, shards, shutdown_signal())
        .context("serving")
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
