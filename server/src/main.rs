//! The `hookd` binary: parses the command line, loads the configuration,
//! starts tracing, and serves hookd on its shards until Ctrl-C or SIGTERM
//! (a second one exits at once).

use std::{io::IsTerminal, path::PathBuf};

use anyhow::Context;
use clap::Parser;
use hookd::Config;
use tracing::{info, warn};
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
