//! The real `hookd-sidecar` binary as a child process, configured the way an
//! operator configures it: flags and `HOOKD_SIDECAR_…` variables.
//!
//! [`SidecarProcess::start`] builds the binary (`cargo build -p hookd-bridge
//! --bin hookd-sidecar`, once per test run), starts it on `127.0.0.1:0` in a
//! clean environment, collects its log line by line and waits until it says
//! it is listening, reading the address from that line. [`SidecarProcess::post`]
//! then POSTs what VerneMQ's `vmq_webhooks` would. The child is killed when
//! the handle is dropped.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex, PoisonError},
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, Command},
    sync::OnceCell,
};

use super::{WAIT, cargo_build, eventually, install_crypto_provider, within};

static BINARY: OnceCell<PathBuf> = OnceCell::const_new();

/// A running `hookd-sidecar` and the log it has written.
pub struct SidecarProcess {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    addr: SocketAddr,
    http: reqwest::Client,
}

/// The `hookd-sidecar` binary, built on first use.
async fn binary() -> PathBuf {
    BINARY
        .get_or_init(|| cargo_build(&["-p", "hookd-bridge", "--bin", "hookd-sidecar"], "hookd-sidecar"))
        .await
        .clone()
}

/// Copies `from`'s lines into `log` until it closes.
fn collect(from: impl AsyncRead + Unpin + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(from).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            log.lock().unwrap_or_else(PoisonError::into_inner).push(line);
        }
    });
}

/// Starts the sidecar with `args` (plus `--listen 127.0.0.1:0`) and `env`
/// (plus `PATH`), its output collected into the returned log.
async fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut command = Command::new(binary().await);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOOKD_LOG", "debug")
        .envs(env.iter().copied())
        .arg("--listen")
        .arg("127.0.0.1:0")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("hookd-sidecar starts");
    let log = Arc::new(Mutex::new(Vec::new()));
    if let Some(stdout) = child.stdout.take() {
        collect(stdout, log.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        collect(stderr, log.clone());
    }
    (child, log)
}

fn joined(log: &Mutex<Vec<String>>) -> String {
    log.lock().unwrap_or_else(PoisonError::into_inner).join("\n")
}

impl SidecarProcess {
    /// Starts the sidecar with these flags and variables and waits (bounded)
    /// until it listens.
    pub async fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let (child, log) = spawn(args, env).await;
        let line = || {
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|line| line.contains("hookd-sidecar listening"))
                .cloned()
        };
        if eventually(|| async { line().is_some() }, WAIT).await.is_err() {
            panic!("hookd-sidecar never listened; its log:\n{}", joined(&log));
        }
        let line = line().unwrap_or_default();
        let addr = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("listen="))
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(WAIT)
            .build()
            .expect("a plain HTTP client builds");
        Self {
            child,
            log,
            addr,
            http,
        }
    }

    /// Runs the sidecar with these flags and variables, expecting it to stop
    /// by itself (bounded); its exit status and log.
    pub async fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String) {
        let (mut child, log) = spawn(args, env).await;
        let status = within("hookd-sidecar to exit", child.wait())
            .await
            .expect("waiting for hookd-sidecar");
        // The readers finish once the pipes close with the process.
        let _ = eventually(|| async { !joined(&log).is_empty() }, WAIT).await;
        (status, joined(&log))
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        joined(&self.log)
    }

    /// POSTs `body` for `hook` as vmq_webhooks does; the status and JSON answer.
    pub async fn post(&self, hook: &str, body: &str) -> (u16, Value) {
        let response = within(
            "the sidecar's answer",
            self.http
                .post(format!("http://{}/", self.addr))
                .header("content-type", "application/json")
                .header("vernemq-hook", hook)
                .body(body.to_owned())
                .send(),
        )
        .await
        .unwrap_or_else(|e| panic!("the sidecar answers HTTP: {e}\n{}", self.log()));
        let status = response.status().as_u16();
        let text = within("the sidecar's answer body", response.text())
            .await
            .expect("the body arrives");
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"));
        (status, body)
    }
}

impl Drop for SidecarProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
