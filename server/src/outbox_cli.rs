//! `hookd outbox …`: the operator commands on the notification outbox.
//!
//! Against a running hookd they call its `hookd.v1.Admin` service (at
//! `--admin`, or `admin.listen` of the configuration), so the running
//! outbox's delivery sees every change at once. With `--store PATH` they open
//! the store file itself, for a hookd that is stopped: replayed dead letters
//! and enabled webhooks are then delivered on its next start.

use std::{net::SocketAddr, path::Path, path::PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hookd::{
    admin::dead_letter_to_proto,
    outbox::{Selection, SqliteStore, Store},
    redact,
};
use hookd_proto::v1 as pb;

/// `hookd outbox`.
#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// The admin address of a running hookd; default `admin.listen` of the
    /// configuration (127.0.0.1:50062).
    #[arg(long, global = true, conflicts_with = "store")]
    admin: Option<SocketAddr>,
    /// A file with the admin token; default `admin.token_file` of the
    /// configuration.
    #[arg(long, global = true, conflicts_with = "store")]
    token_file: Option<PathBuf>,
    /// Work on this store file directly, while hookd is stopped.
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: OutboxCommand,
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// Dead letters: notifications given up on.
    Dead {
        #[command(subcommand)]
        command: DeadCommand,
    },
    /// Resume deliveries to a webhook stopped by a 410 Gone answer, named by
    /// its URL as configured or as hookd shows it.
    Enable {
        /// The endpoint.
        endpoint: String,
    },
    /// Pending notifications per webhook.
    Status,
}

#[derive(Debug, Subcommand)]
enum DeadCommand {
    /// List them, oldest first: id, webhook-id, endpoint, hook, client id, reason.
    List {
        /// Only those with a larger id.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Deliver them again (same webhook-id).
    Replay(Which),
    /// Delete them for good.
    Drop(Which),
}

/// One dead letter or all of them.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct Which {
    /// The dead letter with this id.
    #[arg(long)]
    id: Option<u64>,
    /// All of them.
    #[arg(long)]
    all: bool,
}

impl Which {
    fn selection(&self) -> Selection {
        match self.id {
            Some(id) => Selection::Id(id),
            None => Selection::All,
        }
    }

    fn to_proto(&self) -> pb::DeadLetterSelection {
        use pb::dead_letter_selection::Which as W;
        pb::DeadLetterSelection {
            which: Some(match self.id {
                Some(id) => W::Id(id),
                None => W::All(true),
            }),
        }
    }
}

/// Runs one `hookd outbox` command, printing its result on stdout.
pub fn run(config: Option<&Path>, args: OutboxArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match &args.store {
        Some(path) => offline(path, &args.command),
        None => {
            let target = crate::admin_cli::Target {
                admin: args.admin,
                token_file: args.token_file.clone(),
            };
            runtime.block_on(async {
                let admin = crate::admin_cli::connect(config, &target).await?;
                online(admin, &args.command).await
            })
        }
    }
}

async fn online(mut admin: crate::admin_cli::Client, command: &OutboxCommand) -> anyhow::Result<()> {
    match command {
        OutboxCommand::Dead { command } => match command {
            DeadCommand::List { after, limit } => {
                let list = admin
                    .list_dead_letters(pb::ListDeadLettersRequest {
                        after_id: *after,
                        limit: *limit,
                    })
                    .await?
                    .into_inner();
                for dead in &list.dead_letters {
                    print_dead(dead);
                }
            }
            DeadCommand::Replay(which) => {
                let changed = admin.replay_dead_letters(which.to_proto()).await?.into_inner();
                println!("replayed {}", changed.count);
            }
            DeadCommand::Drop(which) => {
                let changed = admin.drop_dead_letters(which.to_proto()).await?.into_inner();
                println!("dropped {}", changed.count);
            }
        },
        OutboxCommand::Enable { endpoint } => {
            let enabled = admin
                .enable_webhook(pb::EnableWebhookRequest {
                    endpoint: endpoint.clone(),
                })
                .await?
                .into_inner();
            if enabled.endpoint.is_empty() {
                bail!("no stopped webhook is named {}", redact::Redacted(endpoint));
            }
            println!("enabled {}", enabled.endpoint);
        }
        OutboxCommand::Status => {
            let status = admin
                .outbox_status(pb::OutboxStatusRequest {})
                .await?
                .into_inner();
            println!(
                "pending_bytes\t{}\tmax_bytes\t{}",
                status.pending_bytes, status.max_bytes
            );
            for webhook in status.webhooks {
                let stopped = if webhook.stopped { "\tstopped" } else { "" };
                println!("{}\t{}{stopped}", webhook.endpoint, webhook.pending);
            }
        }
    }
    Ok(())
}

fn offline(path: &Path, command: &OutboxCommand) -> anyhow::Result<()> {
    if !path.exists() {
        bail!("no outbox store at {}", path.display());
    }
    let mut store = SqliteStore::open(path).with_context(|| format!("opening {}", path.display()))?;
    match command {
        OutboxCommand::Dead { command } => match command {
            DeadCommand::List { after, limit } => {
                for dead in store.dead_letters(*after, *limit as usize)? {
                    print_dead(&dead_letter_to_proto(store.store_id(), &dead));
                }
            }
            DeadCommand::Replay(which) => {
                let replayed = store.replay(which.selection())?;
                println!("replayed {} (delivered when hookd starts)", replayed.len());
            }
            DeadCommand::Drop(which) => {
                println!("dropped {}", store.drop_dead(which.selection())?);
            }
        },
        OutboxCommand::Enable { endpoint } => {
            let stopped = store.stopped_endpoints()?;
            let Some(found) = stopped
                .iter()
                .find(|id| *id == endpoint || redact::shown(id) == *endpoint)
            else {
                bail!("no stopped webhook is named {}", redact::Redacted(endpoint));
            };
            store.enable_endpoint(found)?;
            println!(
                "enabled {} (delivered to when hookd starts)",
                redact::shown(found)
            );
        }
        OutboxCommand::Status => {
            let mut backlog: Vec<_> = store.backlog()?.into_iter().collect();
            backlog.sort_by(|a, b| a.0.cmp(&b.0));
            let stopped = store.stopped_endpoints()?;
            for (endpoint, pending) in backlog {
                let mark = if stopped.contains(&endpoint) {
                    "\tstopped"
                } else {
                    ""
                };
                println!("{}\t{}{mark}", redact::shown(&endpoint), pending.depth);
            }
        }
    }
    Ok(())
}

fn print_dead(dead: &pb::DeadLetter) {
    println!(
        "{}\t{}\t{}\t{}\t{}\t{}",
        dead.id, dead.webhook_id, dead.endpoint, dead.hook, dead.client_id, dead.reason
    );
}
