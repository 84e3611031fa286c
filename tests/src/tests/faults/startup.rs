//! Starting the real `hookd` binary: what stops it (a bad configuration, a
//! port in use) is said once, naming the key, variable or listener, and
//! what must not stop it (a Kubernetes Service's variables) does not.

use tokio::net::TcpListener;

use crate::harness::{WAIT, eventually, process::HookdProcess};

/// What Kubernetes puts in every pod's environment for a Service named
/// `hookd` with a port named `grpc`.
const KUBERNETES_SERVICE_HOOKD: [(&str, &str); 8] = [
    ("HOOKD_SERVICE_HOST", "10.0.0.1"),
    ("HOOKD_SERVICE_PORT", "50051"),
    ("HOOKD_SERVICE_PORT_GRPC", "50051"),
    ("HOOKD_PORT", "tcp://10.0.0.1:50051"),
    ("HOOKD_PORT_50051_TCP", "tcp://10.0.0.1:50051"),
    ("HOOKD_PORT_50051_TCP_PROTO", "tcp"),
    ("HOOKD_PORT_50051_TCP_PORT", "50051"),
    ("HOOKD_PORT_50051_TCP_ADDR", "10.0.0.1"),
];

/// Asserts hookd exited with status 1 and said `message` exactly once.
async fn assert_fails_once_saying(hookd: HookdProcess, message: &str) {
    let (status, log) = hookd.exited().await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert_eq!(log.matches(message).count(), 1, "{message:?} once in:\n{log}");
}

/// A loopback address something else is listening on.
async fn taken_address() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound").to_string();
    (listener, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hookd_starts_in_a_pod_beside_a_kubernetes_service_named_hookd() {
    let mut launch = HookdProcess::launch();
    for (name, value) in KUBERNETES_SERVICE_HOOKD {
        launch = launch.env(name, value);
    }
    let hookd = launch.start().await;
    let serving = eventually(|| hookd.is_serving(), WAIT).await;
    assert!(serving.is_ok(), "{}", hookd.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_file_is_reported_once_naming_the_key_and_the_range() {
    let hookd = HookdProcess::launch()
        .env("RUST_BACKTRACE", "1")
        .config("[server]\ncall_timeout = 9223372036854775807\n")
        .spawn()
        .await;
    assert_fails_once_saying(
        hookd,
        "configuration key `server.call_timeout`: must be between 1 and 86400000 ms",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_environment_variable_is_reported_once_naming_the_variable() {
    let hookd = HookdProcess::launch()
        .env("RUST_BACKTRACE", "1")
        .env("HOOKD_SERVER__LISTEN", "nope")
        .spawn()
        .await;
    assert_fails_once_saying(
        hookd,
        "HOOKD_SERVER__LISTEN: `nope` is not an IP address and port",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_clash_on_server_listen_names_the_listener_and_the_address() {
    let (_taken, addr) = taken_address().await;
    let hookd = HookdProcess::launch()
        .env("HOOKD_SERVER__LISTEN", &addr)
        .spawn()
        .await;
    let message = format!("cannot bind server.listen {addr}: Address already in use");
    assert_fails_once_saying(hookd, &message).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_clash_on_metrics_listen_names_the_listener_and_the_address() {
    let (_taken, addr) = taken_address().await;
    let hookd = HookdProcess::launch()
        .env("HOOKD_METRICS__LISTEN", &addr)
        .spawn()
        .await;
    let message = format!("cannot bind metrics.listen {addr}: Address already in use");
    assert_fails_once_saying(hookd, &message).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typoed_hook_name_in_the_config_file_is_refused_listing_the_hooks() {
    let hookd = HookdProcess::launch()
        .config("[[webhooks]]\nhook = \"auth_on_regster\"\nendpoint = \"http://127.0.0.1:8080/\"\n")
        .spawn()
        .await;
    let (status, log) = hookd.exited().await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("`auth_on_regster` is not a hook"), "{log}");
    assert!(
        log.contains("auth_on_register, auth_on_register_m5"),
        "lists the hooks:\n{log}"
    );
    assert!(
        !log.contains("enum Hook") && !log.contains("variant"),
        "no Rust type names:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_as_listen_address_is_refused_saying_what_is_valid() {
    let hookd = HookdProcess::launch()
        .env_remove("HOOKD_SERVER__LISTEN")
        .config("[server]\nlisten = \"localhost:50061\"\n")
        .spawn()
        .await;
    let (status, log) = hookd.exited().await;
    assert_eq!(status.code(), Some(1), "{log}");
    for says in [
        "server.listen",
        "`localhost:50061`",
        "not a host name",
        "`127.0.0.1:50061`",
    ] {
        assert!(log.contains(says), "{says} in:\n{log}");
    }
}
