//! The processes a run measures: the stub and the echo (this binary, started
//! again with another subcommand), hookd instances and Mosquitto brokers, each
//! its own process so that its CPU time can be read from `/proc`. Every child
//! is killed when its handle is dropped.
//!
//! Children are started through `sh -c 'ulimit -n <hard>; exec …'`, so each
//! runs with its open-files soft limit raised to the hard limit (10,000 calls
//! in flight are 10,000 sockets in hookd and in the stub) while keeping the
//! process id `/proc` is read by; `open_files_limit` reads the result.

use std::{
    fmt::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The shell prologue that raises the soft open-files limit to the hard one
/// and then replaces the shell with the real program (`"$0" "$@"`).
const RAISE_NOFILE: &str = r#"ulimit -n "$(ulimit -H -n)" 2>/dev/null; exec "$0" "$@""#;

/// A command running `program` with the open-files soft limit raised to the
/// hard limit (see [`RAISE_NOFILE`]); arguments are added by the caller.
fn raised(program: &Path) -> Command {
    let mut command = Command::new("sh");
    command.arg("-c").arg(RAISE_NOFILE).arg(program);
    command
}

/// A running child process and the address it serves on.
pub struct Proc {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where a hookd started with [`Tuning::metrics`] serves `/metrics`.
    pub metrics: Option<SocketAddr>,
    child: Child,
}

/// One webhook registration of a hookd instance.
pub struct Webhook {
    /// The hook's vmq_webhooks name.
    pub hook: &'static str,
    /// The endpoint URL.
    pub endpoint: String,
    /// Whether payloads are sent base64-encoded (vmq's default).
    pub base64_payload: bool,
}

/// Settings beyond the harness defaults for one hookd instance; `None`
/// leaves hookd's own default.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    /// `server.max_in_flight_per_stream` (hookd's default: 4096).
    pub max_in_flight_per_stream: Option<usize>,
    /// `response_timeout` of every webhook, in ms (hookd's default: 5000).
    pub response_timeout_ms: Option<u64>,
    /// `http.pool_max_connections` (the harness's default: 16384).
    pub pool_max_connections: Option<usize>,
    /// `http.stall_timeout_ms` (hookd's default: 1000).
    pub stall_timeout_ms: Option<u64>,
    /// Serve `/metrics` on a free loopback port ([`Proc::metrics`]).
    pub metrics: bool,
    /// `[server.tls]` with this certificate and key file (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Proc {
    /// Waits (10 s at most) until the child accepts connections on its
    /// address; fails with its log (`log_path`) if it exits first.
    async fn listening(mut self, what: &str, log_path: &Path) -> anyhow::Result<Self> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(self);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                bail!("{what} exited with {status}:\n{log}");
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{what} did not listen on {} within 10 s", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts this binary with `args` (a `stub` or `echo` subcommand) and reads
/// the address it prints as its first line.
pub async fn spawn_self(name: &str, args: &[String]) -> anyhow::Result<Proc> {
    let exe = std::env::current_exe().context("locating hookd-bench itself")?;
    let mut child = raised(&exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the {name}"))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .with_context(|| format!("the {name} printed no address within 10 s"))??;
    let addr = line
        .trim()
        .parse()
        .with_context(|| format!("the {name} printed {line:?}, not an address"))?;
    Ok(Proc {
        addr,
        metrics: None,
        child,
    })
}

/// Starts `hookd` with a TOML configuration written to `dir`: gRPC on a free
/// loopback port, `worker_threads` workers, the given webhooks; logs go to
/// `dir/NAME.log`. Returns once its port accepts connections.
pub async fn spawn_hookd(
    hookd: &Path,
    dir: &Path,
    name: &str,
    worker_threads: usize,
    webhooks: &[Webhook],
) -> anyhow::Result<Proc> {
    spawn_hookd_with(hookd, dir, name, worker_threads, webhooks, Tuning::default()).await
}

/// [`spawn_hookd`] with the settings in `tuning` written into its TOML too.
pub async fn spawn_hookd_with(
    hookd: &Path,
    dir: &Path,
    name: &str,
    worker_threads: usize,
    webhooks: &[Webhook],
    tuning: Tuning,
) -> anyhow::Result<Proc> {
    let addr = free_port().await?;
    // As many connections per endpoint as the direct driver may open (its
    // pool is unbounded): hookd's default (100, as vmq's pool) would make
    // calls past 100 in flight wait for a connection, which is configuration,
    // not cost. Scenarios about that default ask for it in `tuning`.
    let mut toml = format!("[server]\nlisten = \"{addr}\"\nworker_threads = {worker_threads}\n");
    if let Some(limit) = tuning.max_in_flight_per_stream {
        let _ = writeln!(toml, "max_in_flight_per_stream = {limit}");
    }
    if let Some((cert, key)) = &tuning.tls {
        let _ = write!(
            toml,
            "\n[server.tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        );
    }
    let pool = tuning.pool_max_connections.unwrap_or(16_384);
    let _ = write!(toml, "\n[http]\npool_max_connections = {pool}\n");
    if let Some(ms) = tuning.stall_timeout_ms {
        let _ = writeln!(toml, "stall_timeout_ms = {ms}");
    }
    // Each hookd its own outbox store in the run's directory, and no admin
    // listener (two hookds of one run would contend for its port).
    let store = dir.join(format!("{name}-outbox.db"));
    let _ = write!(
        toml,
        "\n[outbox]\npath = \"{}\"\n\n[admin]\nenabled = false\n",
        store.display()
    );
    for webhook in webhooks {
        let _ = write!(
            toml,
            "\n[[webhooks]]\nhook = \"{}\"\nendpoint = \"{}\"\nbase64_payload = {}\n",
            webhook.hook, webhook.endpoint, webhook.base64_payload
        );
        if let Some(ms) = tuning.response_timeout_ms {
            let _ = writeln!(toml, "response_timeout = {ms}");
        }
    }
    let metrics = if tuning.metrics {
        let metrics = free_port().await?;
        let _ = write!(toml, "\n[metrics]\nlisten = \"{metrics}\"\n");
        Some(metrics)
    } else {
        None
    };
    let (config, log) = write_config(dir, &format!("{name}.toml"), &toml)?;
    let mut command = raised(hookd);
    command
        .arg("--config")
        .arg(&config)
        // Not HOOKD_LOG: hookd's configuration would read it as an unknown
        // key `log` and refuse to start. The default level (info) logs
        // nothing per call.
        .env_remove("HOOKD_LOG")
        .env_remove("HOOKD_CONFIG")
        .env("NO_COLOR", "1");
    let child = spawn_logged(command, &log, "hookd")?;
    Proc { addr, metrics, child }
        .listening(&format!("hookd ({name})"), &log)
        .await
}

/// Starts `mosquitto` (the binary at that path) with `-c dir/NAME.conf`, listening on a free loopback port,
/// the configuration being that `listener` line plus `conf` (whole lines);
/// its log goes to `dir/NAME.log`. Returns once the port accepts
/// connections. Run as root, Mosquitto drops to its own user before it
/// loads plugins, so any plugin must be readable by that user.
pub async fn spawn_mosquitto(mosquitto: &Path, dir: &Path, name: &str, conf: &str) -> anyhow::Result<Proc> {
    let addr = free_port().await?;
    let text = format!("listener {} {}\n{conf}", addr.port(), addr.ip());
    let (config, log) = write_config(dir, &format!("{name}.conf"), &text)?;
    let mut command = raised(mosquitto);
    command.arg("-c").arg(&config);
    let child = spawn_logged(command, &log, "mosquitto")?;
    let proc = Proc {
        addr,
        metrics: None,
        child,
    };
    proc.listening(&format!("mosquitto ({name})"), &log).await
}

/// Writes `text` to `dir/file` and returns its path with the path of the
/// log beside it (the same name, `.log`).
fn write_config(dir: &Path, file: &str, text: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let config = dir.join(file);
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    Ok((config.clone(), config.with_extension("log")))
}

/// Starts `command` with no stdin and stdout and stderr into `log`, killed
/// when dropped.
fn spawn_logged(mut command: Command, log: &Path, what: &str) -> anyhow::Result<Child> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {what}"))
}

/// A loopback port free right now (bound, read, released).
async fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?)
}

/// `program` as found on `PATH` (an executable file), if anywhere.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| {
            std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The Mosquitto plugin `hookd-mosquitto` (`libhookd_mosquitto.so`) beside
/// this executable; when started by cargo it is built first (`cargo build
/// --release -p hookd-mosquitto`, as [`locate_hookd`] builds hookd). Errors
/// say why there is none.
pub fn locate_mosquitto_plugin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating hookd-bench itself")?;
    let plugin = exe.with_file_name("libhookd_mosquitto.so");
    build_with_cargo(&["-p", "hookd-mosquitto"], "the Mosquitto plugin")?;
    if !plugin.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p hookd-mosquitto`",
            plugin.display()
        );
    }
    Ok(plugin)
}

/// The hookd binary to measure: `explicit` if given; else, when started by
/// cargo, `cargo build --release -p hookd` is run first so the binary is
/// fresh; else `hookd` beside this executable. Errors with the command to
/// run when there is none.
pub fn locate_hookd(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--hookd {}: no such file", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("locating hookd-bench itself")?;
    let beside = exe.with_file_name("hookd");
    build_with_cargo(&["--bin", "hookd", "-p", "hookd"], "hookd")?;
    if !beside.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p hookd`, or pass --hookd PATH",
            beside.display()
        );
    }
    Ok(beside)
}

/// When started by cargo, runs `cargo build ARGS` (with `--release` in a
/// release build) in the workspace, so what is measured is fresh.
fn build_with_cargo(args: &[&str], what: &str) -> anyhow::Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(());
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?;
    let mut build = std::process::Command::new(cargo);
    build.current_dir(workspace).arg("build").args(args);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    eprintln!("building {what}: {build:?}");
    let status = build
        .status()
        .with_context(|| format!("running cargo build for {what}"))?;
    if !status.success() {
        bail!("building {what} failed ({status})");
    }
    Ok(())
}
