//! A real Mosquitto broker with the hookd plugin, and real MQTT clients
//! (`mosquitto_pub` / `mosquitto_sub` from Debian's `mosquitto-clients`).
//!
//! [`Mosquitto::start`] builds the plugin (`cargo build -p hookd-mosquitto`,
//! once per test run), writes a `mosquitto.conf` with a free loopback port and
//! the given `plugin_opt_*` lines, starts `mosquitto` and waits until it
//! accepts connections. [`Subscriber`] runs `mosquitto_sub -d` and reads its
//! output line by line, so a test waits for the SUBACK or a message instead of
//! sleeping. [`HookdAt`] runs hookd on a fixed address so it can be stopped and
//! started again where the plugin expects it.

use std::{
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    process::Stdio,
    sync::atomic::{AtomicUsize, Ordering},
};

use hookd::{Config, RunError};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    net::TcpListener,
    process::{Child, ChildStdout, Command},
    sync::{OnceCell, oneshot},
    task::JoinHandle,
};

use super::{WAIT, cargo_build, eventually, within};

/// A running `mosquitto` with the hookd plugin; killed when dropped.
pub struct Mosquitto {
    port: u16,
    child: Child,
    log: PathBuf,
}

/// The result of one `mosquitto_pub` run.
#[derive(Debug)]
pub struct Published {
    /// Whether it exited 0 (connected and published).
    pub success: bool,
    /// What it printed, stdout and stderr.
    pub output: String,
}

/// A running `mosquitto_sub -d` whose output is read line by line.
pub struct Subscriber {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

/// hookd served on a fixed address, stoppable and restartable there.
pub struct HookdAt {
    addr: SocketAddr,
    /// Its outbox store's directory (see [`super::service::isolate`]).
    _scratch: Option<super::Scratch>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RunError>>>,
}

static PLUGIN: OnceCell<PathBuf> = OnceCell::const_new();
static INSTANCE: AtomicUsize = AtomicUsize::new(0);

/// The plugin's shared object, built on first use.
async fn plugin() -> PathBuf {
    PLUGIN
        .get_or_init(|| cargo_build(&["-p", "hookd-mosquitto"], "libhookd_mosquitto.so"))
        .await
        .clone()
}

/// A loopback port nothing listens on right now.
async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    listener.local_addr().expect("bound").port()
}

impl Mosquitto {
    /// Starts Mosquitto with the plugin pointed at `hookd` and these extra
    /// `plugin_opt_*` settings (key without the prefix, value).
    pub async fn start(hookd: SocketAddr, options: &[(&str, &str)]) -> Self {
        let mut conf = format!(
            "listener {{port}} 127.0.0.1\nallow_anonymous false\nplugin {{plugin}}\nplugin_opt_hookd_addresses {hookd}\n"
        );
        for (key, value) in options {
            conf.push_str(&format!("plugin_opt_{key} {value}\n"));
        }
        Self::start_with_conf(&conf).await
    }

    /// Starts Mosquitto with `conf` (as [`Mosquitto::start_with_conf`]),
    /// which it must refuse: waits for it to exit with an error and returns
    /// what it said.
    pub async fn start_refused(conf: &str) -> String {
        let (mut child, log, _) = Self::launch(conf).await;
        let status = within("mosquitto to exit", child.wait())
            .await
            .expect("waiting for mosquitto works");
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(!status.success(), "mosquitto refuses to start:\n{said}");
        said
    }

    /// Starts Mosquitto with `conf`, a whole `mosquitto.conf` in which
    /// `{port}` is replaced by a free loopback port and `{plugin}` by the
    /// plugin's path.
    pub async fn start_with_conf(conf: &str) -> Self {
        let (child, log, port) = Self::launch(conf).await;
        let broker = Self { port, child, log };
        let ready = eventually(
            || async move { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() },
            WAIT,
        )
        .await;
        assert!(ready.is_ok(), "mosquitto did not start:\n{}", broker.log());
        broker
    }

    /// Writes `conf` (placeholders filled) beside a readable copy of the
    /// plugin and starts Mosquitto on it: the process, its log file and its port.
    async fn launch(conf: &str) -> (Child, PathBuf, u16) {
        let plugin = plugin().await;
        let port = free_port().await;
        let dir = std::env::temp_dir().join(format!(
            "hookd-mosquitto-{}-{}",
            std::process::id(),
            INSTANCE.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        // Started as root, Mosquitto drops to its own user before loading
        // plugins, so the plugin must sit where that user can read it (a
        // checkout under a private temp dir is not).
        let readable = dir.join("libhookd_mosquitto.so");
        std::fs::copy(&plugin, &readable).expect("copy the plugin");
        for path in [&dir, &readable] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("make it readable");
        }
        let conf = conf
            .replace("{port}", &port.to_string())
            .replace("{plugin}", &readable.display().to_string());
        let conf_path = dir.join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("write mosquitto.conf");
        let log = dir.join("mosquitto.log");
        let log_file = std::fs::File::create(&log).expect("create the log");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf_path)
            .arg("-v")
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto is installed (apt-get install mosquitto mosquitto-clients)");
        (child, log, port)
    }

    /// The broker's MQTT port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Mosquitto's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Connects as `client_id` with `username`/`password` and publishes one
    /// QoS 1 message.
    pub async fn publish(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
        topic: &str,
        payload: &str,
    ) -> Published {
        let output = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q", "1"])
            .args([
                "-i", client_id, "-u", username, "-P", password, "-t", topic, "-m", payload,
            ])
            .output();
        let output = within("mosquitto_pub to finish", output)
            .await
            .expect("mosquitto_pub runs");
        Published {
            success: output.status.success(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }

    /// Starts `mosquitto_sub -d -v` on `topic`, with a 5 s keepalive (the clients' minimum) so its
    /// output shows the broker answering pings.
    pub fn subscribe(&self, client_id: &str, username: &str, password: &str, topic: &str) -> Subscriber {
        // mosquitto_sub block-buffers a pipe; stdbuf makes it flush each line.
        let mut child = Command::new("stdbuf")
            .args([
                "-oL",
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-d",
                "-v",
                "-k",
                "5",
                "-q",
                "1",
            ])
            .args(["-i", client_id, "-u", username, "-P", password, "-t", topic])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto_sub is installed");
        let stdout = child.stdout.take().expect("stdout is piped");
        Subscriber {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Subscriber {
    /// Reads output lines until one satisfies `wanted`, and returns it;
    /// `None` if the subscriber exits first. Bounded by [`WAIT`].
    pub async fn line_where(&mut self, wanted: impl Fn(&str) -> bool) -> Option<String> {
        within("mosquitto_sub output", async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                if wanted(&line) {
                    return Some(line);
                }
            }
            None
        })
        .await
    }

    /// Waits for the SUBACK and returns the granted QoS (128 = refused).
    pub async fn suback(&mut self) -> Option<u8> {
        let line = self.line_where(|l| l.contains("Subscribed (mid:")).await?;
        line.rsplit(':').next()?.trim().parse().ok()
    }

    /// Waits for the next application message: `(topic, payload)`.
    pub async fn message(&mut self) -> Option<(String, String)> {
        let line = self
            .line_where(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed"))
            .await?;
        let (topic, payload) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        Some((topic.to_owned(), payload.to_owned()))
    }

    /// Stops the subscriber.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

impl HookdAt {
    /// Starts hookd with `config` on a free loopback address.
    pub async fn start(config: Config) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port().await));
        Self::start_at(config, addr).await
    }

    /// Starts hookd with `config` on `addr`.
    pub async fn start_at(mut config: Config, addr: SocketAddr) -> Self {
        let listener = eventually(|| async move { TcpListener::bind(addr).await.is_ok() }, WAIT).await;
        assert!(listener.is_ok(), "{addr} stays busy");
        let listener = TcpListener::bind(addr).await.expect("bind hookd's address");
        config.server.listen = addr;
        let scratch = super::service::isolate(&mut config);
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(hookd::run(config, listener, async move {
            let _ = stop.await;
        }));
        Self {
            addr,
            _scratch: scratch,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Where hookd listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shuts hookd down and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let result = within("hookd to stop", task).await;
            assert!(matches!(result, Ok(Ok(()))), "hookd stopped with {result:?}");
        }
    }
}

impl Drop for HookdAt {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
