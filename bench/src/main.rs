//! `hookd-bench`: hookd measured against the physical limit.
//!
//! Subcommands:
//! - `stub`: a fast vmq_webhooks endpoint ([`stub`]);
//! - `echo`: a bare gRPC `HookService` echo ([`echo`]);
//! - `run`: starts both and hookd as separate processes (and Mosquitto,
//!   with and without the hookd plugin), drives the scenarios from this
//!   process and prints a markdown table ([`run`]).
//!
//! Layout: [`run`] (orchestration and scenarios), [`procs`] (child
//! processes), [`load`] (closed-loop and fixed-rate load), [`workload`] (what
//! the simulated broker sends), [`mqtt`] (a minimal MQTT 3.1.1 publisher),
//! [`report`] (the table), [`procfs`] (CPU and memory from `/proc`).

#![forbid(unsafe_code)]

mod echo;
mod load;
mod mqtt;
mod procfs;
mod procs;
mod report;
mod run;
mod stub;
mod workload;

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use hookd_proto::server::hook_service_server::HookServiceServer;
use tonic::transport::{Server, server::TcpIncoming};

/// hookd's benchmark harness.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a webhook stub answering {"result":"ok"}; prints its address.
    Stub {
        /// Address to listen on (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Add `cache-control: max-age=N` to every answer.
        #[arg(long)]
        max_age: Option<u32>,
        /// Runtime threads (1: tokio's current_thread scheduler).
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Serve a bare hookd.v1 echo answering every call `ok`; prints its address.
    Echo {
        /// Address to listen on (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Runtime threads (1: tokio's current_thread scheduler).
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Run the benchmark and print the table.
    Run {
        /// About 1 s per point and one round: a smoke test (no timing assertions).
        #[arg(long)]
        quick: bool,
        /// Measured seconds per point.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Interleaved rounds; medians are quoted.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Runtime threads of the stub and the load generator (and of hookd
        /// and the echo unless --server-threads is given); 1 is tokio's
        /// current_thread scheduler everywhere, the fastest setting for
        /// both hookd and the direct driver on a 2-vCPU machine.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Tokio worker threads of hookd and the echo (default: --threads).
        #[arg(long)]
        server_threads: Option<usize>,
        /// The hookd binary (default: `cargo build --release -p hookd` when run
        /// by cargo, then `hookd` beside this executable).
        #[arg(long)]
        hookd: Option<PathBuf>,
        /// Scenario letters to run.
        #[arg(long, default_value = "abcdefghi")]
        only: String,
    },
}

/// The runtime of each harness process (stub, echo, load) for `threads`:
/// one thread is tokio's `current_thread` scheduler, more a work-stealing
/// pool. hookd itself runs `threads` shards, each a `current_thread`
/// runtime, so at one thread the direct driver runs on exactly the flavour
/// and thread count that serves hookd's one broker stream.
fn runtime(threads: usize) -> tokio::runtime::Builder {
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    }
}

fn main() -> anyhow::Result<()> {
    install_crypto_provider();
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Stub { threads, .. } | Command::Echo { threads, .. } | Command::Run { threads, .. } => {
            (*threads).max(1)
        }
    };
    let runtime = runtime(threads)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Stub { listen, max_age, .. } => {
                let listener = tokio::net::TcpListener::bind(listen).await?;
                println!("{}", listener.local_addr()?);
                stub::serve(listener, max_age).await?;
                Ok(())
            }
            Command::Echo { listen, .. } => {
                let listener = tokio::net::TcpListener::bind(listen).await?;
                println!("{}", listener.local_addr()?);
                Server::builder()
                    .add_service(HookServiceServer::new(echo::Echo))
                    .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
                    .await?;
                Ok(())
            }
            Command::Run {
                quick,
                seconds,
                rounds,
                threads,
                server_threads,
                hookd,
                only,
            } => {
                run::run(run::RunOptions {
                    quick,
                    seconds,
                    rounds,
                    threads,
                    server_threads,
                    hookd,
                    only,
                })
                .await
            }
        }
    })
}

/// reqwest is built with TLS but no provider of its own (hookd configures
/// its clients itself, on `ring`): the bench's plain clients need the process
/// default. Installing it twice is harmless.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
