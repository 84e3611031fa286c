//! The `hookd` binary: parses the command line, loads the configuration,
//! starts tracing and the runtime, and runs hookd until Ctrl-C or SIGTERM.

use std::path::PathBuf;

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
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("HOOKD_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let config = Config::load(cli.config.as_deref(), None).context("loading the configuration")?;
    runtime(config.server.worker_threads)
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(config.server.listen)
                .await
                .with_context(|| format!("binding {}", config.server.listen))?;
            hookd::run(config, listener, shutdown_signal())
                .await
                .context("serving")
        })
}

/// The runtime for `worker_threads` (see `server.worker_threads`). One
/// thread gets the `current_thread` scheduler rather than a pool of one: a
/// broker stream, its calls and their webhook connections then share one
/// event loop, and no wake-up ever crosses threads.
fn runtime(worker_threads: usize) -> tokio::runtime::Builder {
    match worker_threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
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
