//! The real `hookd` binary as a child process, for what only a process shows:
//! its exit status and log, its environment, its limits, and how it answers
//! signals ([`HookdProcess::signal`]).
//!
//! [`HookdProcess::launch`] starts a [`Launch`]: the binary (built with
//! `cargo build -p hookd` once per test run) in a clean environment plus the
//! variables a test sets, with an optional configuration file and an
//! optional `RLIMIT_NOFILE` (set through util-linux's `prlimit`, which then
//! execs hookd, so the child's pid is hookd's and no `unsafe` `pre_exec` is
//! needed). gRPC and metrics listen on port 0; their addresses are read from
//! hookd's log, which is collected line by line from its stderr. The child is
//! killed when the handle is dropped.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    process::{ExitStatus, Stdio},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hookd_proto::v1::hook_service_client::HookServiceClient;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::OnceCell,
    task::JoinHandle,
};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::{POLL_EVERY, Scratch, WAIT, cargo_build, eventually, within};

/// How long one connection attempt to the child may take; a health probe
/// that fails is simply tried again (within [`WAIT`]).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The kernel's unit of `utime` and `stime` in `/proc/PID/stat` (`USER_HZ`),
/// 100 on every Linux architecture hookd runs on.
const TICKS_PER_SECOND: u64 = 100;

static BINARY: OnceCell<PathBuf> = OnceCell::const_new();
static INSTANCE: AtomicUsize = AtomicUsize::new(0);

/// How to start a hookd process; see [`HookdProcess::launch`].
#[derive(Debug, Clone)]
pub struct Launch {
    env: BTreeMap<String, String>,
    /// The default outbox store's directory, handed to the process.
    scratch: Option<Arc<Scratch>>,
    config: Option<String>,
    config_file: Option<PathBuf>,
    open_files: Option<(u64, u64)>,
}

/// A running (or exited) `hookd` child process and the log it has written.
pub struct HookdProcess {
    child: Child,
    _scratch: Option<Arc<Scratch>>,
    pid: u32,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

/// The `hookd` binary, built on first use (also for its operator commands).
pub async fn binary() -> PathBuf {
    BINARY
        .get_or_init(|| cargo_build(&["-p", "hookd", "--bin", "hookd"], "hookd"))
        .await
        .clone()
}

impl Launch {
    /// Sets the environment variable `name` of the child (its environment is
    /// otherwise empty but for `PATH`, `HOOKD_LOG=info`, gRPC and admin on
    /// `127.0.0.1:0`, two shards, and an outbox store in a scratch directory
    /// kept as long as the process handle).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Leaves the variable `name` out of the child's environment (one of
    /// the defaults), so the configuration file's value is used.
    pub fn env_remove(mut self, name: &str) -> Self {
        self.env.remove(name);
        self
    }

    /// Passes a configuration file with this TOML text (`--config`).
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }

    /// Passes this existing configuration file (`--config`), which the test
    /// may rewrite while hookd runs (a reload reads it again).
    pub fn config_file(mut self, path: &std::path::Path) -> Self {
        self.config_file = Some(path.to_owned());
        self
    }

    /// Runs hookd with `RLIMIT_NOFILE` lowered to these soft and hard limits.
    pub fn open_files_limit(mut self, soft: u64, hard: u64) -> Self {
        self.open_files = Some((soft, hard));
        self
    }

    /// Starts hookd and returns at once, whether it will serve or fail.
    pub async fn spawn(self) -> HookdProcess {
        let binary = binary().await;
        let mut command = match self.open_files {
            Some((soft, hard)) => {
                let mut command = Command::new("prlimit");
                command.arg(format!("--nofile={soft}:{hard}")).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        if let Some(toml) = &self.config {
            let path = std::env::temp_dir().join(format!(
                "hookd-process-{}-{}.toml",
                std::process::id(),
                INSTANCE.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, toml).expect("write the configuration file");
            command.arg("--config").arg(path);
        }
        if let Some(path) = &self.config_file {
            command.arg("--config").arg(path);
        }
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let mut child = command
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("hookd starts (and prlimit, from util-linux, is installed)");
        let pid = child.id().expect("a child that was just spawned has a pid");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        let reader = tokio::spawn(async move {
            let mut stderr = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = stderr.next_line().await {
                lines.lock().unwrap_or_else(PoisonError::into_inner).push(line);
            }
        });
        HookdProcess {
            child,
            _scratch: self.scratch.clone(),
            pid,
            log,
            reader: Some(reader),
        }
    }

    /// Starts hookd and waits (bounded) until it says it is listening.
    pub async fn start(self) -> HookdProcess {
        let hookd = self.spawn().await;
        hookd.wait_for_log("hookd listening").await;
        hookd
    }
}

impl HookdProcess {
    /// A launch with the defaults [`Launch::env`] describes.
    pub fn launch() -> Launch {
        let scratch = Arc::new(Scratch::new());
        let store = scratch.store().display().to_string();
        let env = [
            ("HOOKD_LOG", "info"),
            ("HOOKD_SERVER__LISTEN", "127.0.0.1:0"),
            ("HOOKD_SERVER__WORKER_THREADS", "2"),
            ("HOOKD_ADMIN__LISTEN", "127.0.0.1:0"),
            ("HOOKD_OUTBOX__PATH", store.as_str()),
        ];
        Launch {
            scratch: Some(scratch),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            config: None,
            config_file: None,
            open_files: None,
        }
    }

    /// The log so far, one string.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).join("\n")
    }

    /// The first log line containing `needle`, if any yet.
    pub fn log_line(&self, needle: &str) -> Option<String> {
        let lines = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().find(|line| line.contains(needle)).cloned()
    }

    /// Waits (bounded by [`WAIT`]) for a log line containing `needle`.
    pub async fn wait_for_log(&self, needle: &str) -> String {
        let seen = eventually(|| async { self.log_line(needle).is_some() }, WAIT).await;
        match (seen, self.log_line(needle)) {
            (Ok(()), Some(line)) => line,
            _ => panic!("hookd never logged {needle:?}; its log:\n{}", self.log()),
        }
    }

    /// The address of the listener whose start line contains `what`
    /// (`"hookd listening"` or `"metrics listening"`), read from its `addr=`.
    #[track_caller]
    pub fn listening(&self, what: &str) -> SocketAddr {
        let line = self
            .log_line(what)
            .unwrap_or_else(|| panic!("no {what:?} line in:\n{}", self.log()));
        line.split_whitespace()
            .find_map(|field| field.strip_prefix("addr="))
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// The gRPC address.
    pub fn addr(&self) -> SocketAddr {
        self.listening("hookd listening")
    }

    /// A gRPC channel on a fresh connection, or `None` if hookd does not
    /// take one within `CONNECT_TIMEOUT`.
    pub async fn try_channel(&self) -> Option<Channel> {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.addr()))
            .expect("a socket address makes a valid URI")
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CONNECT_TIMEOUT);
        endpoint.connect().await.ok()
    }

    /// A `HookService` client on a fresh connection.
    pub async fn client(&self) -> HookServiceClient<Channel> {
        let channel = within("a connection to hookd", async {
            loop {
                if let Some(channel) = self.try_channel().await {
                    return channel;
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
        })
        .await;
        HookServiceClient::new(channel)
    }

    /// Whether hookd answers a health check SERVING right now, on a fresh connection.
    pub async fn is_serving(&self) -> bool {
        let Some(channel) = self.try_channel().await else {
            return false;
        };
        let mut health = HealthClient::new(channel);
        let check = health.check(HealthCheckRequest::default());
        matches!(
            tokio::time::timeout(CONNECT_TIMEOUT, check).await,
            Ok(Ok(response)) if response.get_ref().status() == ServingStatus::Serving
        )
    }

    /// The CPU time (user and system, all threads) hookd has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).expect("hookd's /proc stat");
        // The command name may contain spaces; the fields after it may not.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // After the name: state is field 3 of proc(5), utime 14 and stime 15.
        let ticks = |index: usize| -> u64 {
            fields
                .get(index - 3)
                .and_then(|field| field.parse().ok())
                .unwrap_or_else(|| panic!("field {index} of {stat:?}"))
        };
        Duration::from_millis((ticks(14) + ticks(15)) * 1000 / TICKS_PER_SECOND)
    }

    /// The value of the unlabelled metric `name` on hookd's metrics listener
    /// (which the launch must have enabled).
    pub async fn metric(&self, name: &str) -> u64 {
        let url = format!("http://{}/metrics", self.listening("metrics listening"));
        super::install_crypto_provider();
        let text = within("GET /metrics", async { reqwest::get(&url).await?.text().await })
            .await
            .expect("hookd serves its metrics");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    }

    /// hookd's resident set size now, in bytes (`VmRSS` of `/proc/PID/status`).
    pub fn rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("hookd's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .unwrap_or_else(|| panic!("no VmRSS in {status:?}"))
    }

    /// How many file descriptors hookd has open now.
    pub fn open_descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .expect("hookd's /proc fd directory")
            .count()
    }

    /// Sends the process `signal` (`"TERM"`, `"INT"`, …) with `kill(1)`.
    pub async fn signal(&self, signal: &str) {
        let status = within(
            "kill(1)",
            Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(self.pid.to_string())
                .status(),
        )
        .await
        .expect("kill(1) runs");
        assert!(status.success(), "kill -{signal} {} failed", self.pid);
    }

    /// Waits (bounded) for hookd to exit on its own; returns its status and
    /// its whole log.
    pub async fn exited(mut self) -> (ExitStatus, String) {
        let status = within("hookd to exit", self.child.wait())
            .await
            .expect("waiting for hookd works");
        if let Some(reader) = self.reader.take() {
            let _ = within("hookd's log to end", reader).await;
        }
        (status, self.log())
    }
}

/// Runs the `hookd` binary with `args` (an operator command) in a clean
/// environment (but for `PATH`); returns its output.
pub async fn command(args: &[&str]) -> std::process::Output {
    let binary = binary().await;
    let mut command = Command::new(binary);
    command.args(args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    within(&format!("hookd {args:?}"), command.output())
        .await
        .expect("the hookd binary runs")
}

impl Drop for HookdProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
    }
}
