//! The real `hookd` binary as a child process, for what only a process
//! has: signals, its exit, and its port once it is gone.
//!
//! [`HookdProcess::start`] builds the binary once per test process (`cargo
//! build -p hookd`, as `mosquitto.rs` builds the plugin), starts it on a
//! free loopback port with a TOML configuration of the test's, and waits
//! (bounded) until it answers gRPC health checks. Its stderr (hookd logs
//! at `info`) is collected line by line. The child is killed, and its
//! configuration file removed, when the handle is dropped.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::OnceCell,
    task::JoinHandle,
    time::Instant,
};
use tonic::transport::Endpoint;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{WAIT, eventually, within};

/// A running `hookd` process.
pub struct HookdProcess {
    addr: SocketAddr,
    /// Holds its configuration file; removed on drop.
    dir: PathBuf,
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
}

/// How a stopped `hookd` process ended.
#[derive(Debug)]
pub struct Exited {
    /// Its exit status.
    pub status: ExitStatus,
    /// From the first stop signal to its exit.
    pub after: Duration,
}

static BINARY: OnceCell<PathBuf> = OnceCell::const_new();
static INSTANCE: AtomicUsize = AtomicUsize::new(0);

/// The `hookd` binary, built on first use.
async fn binary() -> PathBuf {
    BINARY
        .get_or_init(|| async {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = Command::new(cargo)
                .args(["build", "--locked", "-p", "hookd", "--bin", "hookd"])
                .current_dir(&workspace)
                .status()
                .await
                .expect("cargo runs");
            assert!(status.success(), "building the hookd binary failed");
            let target = std::env::var("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|_| workspace.join("target"));
            let binary = target.join("debug").join("hookd");
            assert!(binary.exists(), "no hookd binary at {}", binary.display());
            binary
        })
        .await
        .clone()
}

/// A loopback address nothing listens on right now.
pub async fn free_addr() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    listener.local_addr().expect("bound")
}

impl HookdProcess {
    /// Starts `hookd` with `config` (TOML, without `server.listen`) on a
    /// free loopback port, and waits until it serves.
    pub async fn start(config: &str) -> Self {
        Self::start_on(free_addr().await, config).await
    }

    /// Starts `hookd` with `config` on `addr`, and waits until it serves.
    pub async fn start_on(addr: SocketAddr, config: &str) -> Self {
        let binary = binary().await;
        let dir = std::env::temp_dir().join(format!(
            "hookd-process-{}-{}",
            std::process::id(),
            INSTANCE.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        let file = dir.join("hookd.toml");
        std::fs::write(&file, config).expect("write the configuration");
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&file)
            .env("HOOKD_SERVER__LISTEN", addr.to_string())
            .env("HOOKD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("hookd starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = child.stderr.take().expect("stderr is piped");
        let reader = tokio::spawn({
            let stderr = Arc::clone(&stderr);
            async move {
                let mut lines = BufReader::new(lines).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    stderr.lock().unwrap_or_else(PoisonError::into_inner).push(line);
                }
            }
        });
        let process = Self {
            addr,
            dir,
            child,
            stderr,
            reader,
        };
        eventually(|| process.serving(), WAIT)
            .await
            .unwrap_or_else(|_| panic!("hookd did not serve on {addr}: {:?}", process.stderr()));
        process
    }

    /// The address hookd serves gRPC on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether hookd answers a gRPC health check now.
    pub async fn serving(&self) -> bool {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("a socket address makes a valid URI")
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_millis(500));
        let Ok(channel) = endpoint.connect().await else {
            return false;
        };
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .is_ok()
    }

    /// Sends the process `signal` (`"TERM"`, `"INT"`, ...) with `kill(1)`.
    pub async fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("hookd is still running");
        let status = within(
            "kill(1)",
            Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status(),
        )
        .await
        .expect("kill(1) runs");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// Sends SIGTERM and waits (bounded by [`WAIT`]) for hookd to exit.
    pub async fn terminate(&mut self) -> Exited {
        let sent = Instant::now();
        self.signal("TERM").await;
        self.exited(sent).await
    }

    /// Waits (bounded by [`WAIT`]) for hookd to exit, timed from `since`.
    pub async fn exited(&mut self, since: Instant) -> Exited {
        let status = within("hookd to exit", self.child.wait())
            .await
            .expect("waiting for hookd works");
        let after = since.elapsed();
        // The rest of its output, which ends with the process.
        let _ = within("hookd's last log lines", &mut self.reader).await;
        Exited { status, after }
    }

    /// Every line hookd has logged so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The first logged line containing `text`, if any.
    pub fn logged(&self, text: &str) -> Option<String> {
        self.stderr().into_iter().find(|line| line.contains(text))
    }
}

impl Drop for HookdProcess {
    fn drop(&mut self) {
        self.reader.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
