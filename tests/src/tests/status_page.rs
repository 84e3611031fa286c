//! An operator watches a running hookd over HTTP, on `metrics.listen`:
//! `/healthz` says it is alive, `/readyz` that it takes brokers (and stops
//! saying so the moment shutdown begins), `/metrics` has every series from
//! the start and shows them move, and the status page at `/` shows, in a
//! real browser, the brokers connected, each webhook with its rate, errors
//! and latency, and the cache and outbox. The browser's screenshot is kept
//! as a CI artefact: `target/artifacts/status.png`.

use std::{net::SocketAddr, path::PathBuf, process::Stdio, time::Duration};

use hookd_proto::v1::{Hello, HookCall};
use tokio::process::Command;

use crate::harness::{
    WAIT, assert_error, assert_ok,
    broker::Broker,
    calls::{self, IntoCall},
    eventually,
    process::HookdProcess,
    webhook::{Reply, Webhook},
    within,
};

/// Where the status page's screenshot is written, for CI to keep.
fn screenshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts/status.png")
}

/// hookd (the real binary) with its HTTP side on a port of its own and
/// `allow` answering `auth_on_register`, `deny` answering `auth_on_publish`;
/// and the HTTP side's address.
async fn hookd_with(allow: &Webhook, deny: &Webhook) -> (HookdProcess, SocketAddr) {
    let config = format!(
        r#"
[metrics]
listen = "127.0.0.1:0"

[[webhooks]]
hook = "auth_on_register"
endpoint = "{allow}"

[[webhooks]]
hook = "auth_on_publish"
endpoint = "{deny}"
"#,
        allow = allow.url(),
        deny = deny.url(),
    );
    let hookd = HookdProcess::launch().config(&config).start().await;
    hookd.wait_for_log("metrics listening").await;
    let http = hookd.listening("metrics listening");
    (hookd, http)
}

/// `GET http://{addr}{path}`: the status and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    crate::harness::install_crypto_provider();
    let url = format!("http://{addr}{path}");
    within(&format!("GET {path}"), async {
        let response = reqwest::get(&url).await.expect("hookd's HTTP side answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a text body"))
    })
    .await
}

/// A broker session introducing itself as `node_id`, a Mosquitto node.
async fn broker(hookd: &HookdProcess, node_id: &str) -> Broker {
    let hello = Hello {
        node_id: node_id.into(),
        broker_kind: "mosquitto".into(),
        broker_version: "2.0.11".into(),
    };
    Broker::connect_with(hookd.client().await, hello).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_says_alive_and_readyz_ready_until_shutdown_begins() {
    let slow = Webhook::builder().held().start().await;
    let deny = Webhook::start(Reply::error("not_allowed")).await;
    let (hookd, http) = hookd_with(&slow, &deny).await;
    assert_eq!(get(http, "/healthz").await, (200, "alive\n".to_owned()));
    assert_eq!(get(http, "/readyz").await, (200, "ready\n".to_owned()));

    // A call held by its webhook keeps hookd in its grace period.
    let broker = broker(&hookd, "node-1").await;
    let held = broker.send_args(calls::auth_on_register("c1")).await;
    slow.wait_for_hits(1).await;
    hookd.signal("TERM").await;
    let unready = eventually(
        || async { get(http, "/readyz").await == (503, "shutting down\n".to_owned()) },
        WAIT,
    )
    .await;
    assert!(unready.is_ok(), "readyz answers 503 once shutdown begins");
    assert_eq!(get(http, "/healthz").await.0, 200, "still alive while draining");
    slow.release();
    assert_ok(&held.verdict().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_have_every_series_from_the_start_and_show_calls_moving() {
    let allow = Webhook::start(Reply::ok()).await;
    let deny = Webhook::start(Reply::error("not_allowed")).await;
    let (hookd, http) = hookd_with(&allow, &deny).await;
    let (allow_url, deny_url) = (allow.url(), deny.url());
    let series = |name: &str, labels: &str| format!("{name}{{{labels}}}");
    let registers_ok = series(
        "hookd_webhook_requests_total",
        &format!(r#"hook="auth_on_register",endpoint="{allow_url}",outcome="ok""#),
    );
    let publishes_denied = series(
        "hookd_webhook_requests_total",
        &format!(r#"hook="auth_on_publish",endpoint="{deny_url}",outcome="denied""#),
    );
    let publish_latency = series(
        "hookd_webhook_request_duration_seconds_count",
        &format!(r#"hook="auth_on_publish",endpoint="{deny_url}""#),
    );
    let invalid = series(
        "hookd_calls_total",
        r#"hook="auth_on_register",outcome="invalid_call""#,
    );
    let register_calls = series("hookd_call_duration_seconds_count", r#"hook="auth_on_register""#);

    let (_, text) = get(http, "/metrics").await;
    assert!(text.contains("hookd_build_info{version=\""), "{text}");
    for name in [
        &registers_ok,
        &publishes_denied,
        &publish_latency,
        &invalid,
        &register_calls,
    ] {
        assert_eq!(
            hookd.metric(name).await,
            0,
            "{name} is there at zero before any call"
        );
    }

    let broker = broker(&hookd, "node-1").await;
    assert_ok(&broker.call(calls::auth_on_register("c1")).await);
    assert_error(
        &broker.call(calls::auth_on_publish("c1")).await,
        hookd_proto::v1::ErrorKind::Denied,
    );
    // An invalid unary call is refused with INVALID_ARGUMENT, and counted.
    let invalid_call: HookCall = calls::auth_on_register("").into_call(1);
    let refused = within("a unary call", hookd.client().await.call(invalid_call)).await;
    assert_eq!(refused.expect_err("refused").code(), tonic::Code::InvalidArgument);

    for (name, expected) in [
        (&registers_ok, 1),
        (&publishes_denied, 1),
        (&publish_latency, 1),
        (&invalid, 1),
        (&register_calls, 1),
    ] {
        assert_eq!(hookd.metric(name).await, expected, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_brokers_webhooks_and_their_figures_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        return;
    };
    let allow = Webhook::start(Reply::ok()).await;
    let deny = Webhook::start(Reply::error("not_allowed")).await;
    let (hookd, http) = hookd_with(&allow, &deny).await;
    let node_a = broker(&hookd, "broker-node-a").await;
    let _node_b = broker(&hookd, "broker-node-b").await;
    for i in 0..20 {
        assert_ok(&node_a.call(calls::auth_on_register(&format!("c{i}"))).await);
    }
    for i in 0..3 {
        assert_error(
            &node_a.call(calls::auth_on_publish(&format!("c{i}"))).await,
            hookd_proto::v1::ErrorKind::Denied,
        );
    }

    let dom = browse(&chromium, http, &[]).await;
    for shown in [
        "Brokers connected: 2",
        "broker-node-a",
        "broker-node-b",
        "mosquitto",
        &allow.url(),
        &deny.url(),
        "denied 3",
        "ok 20",
        "Verdict cache",
        "Outbox",
        r#"http-equiv="refresh""#,
        ">ready<",
    ] {
        assert!(dom.contains(shown), "the page shows {shown:?}:\n{dom}");
    }

    let screenshot = screenshot_path();
    std::fs::create_dir_all(screenshot.parent().expect("a parent")).expect("the artefacts directory");
    let _ = std::fs::remove_file(&screenshot);
    browse(
        &chromium,
        http,
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,1100".into(),
        ],
    )
    .await;
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    assert!(png.len() > 10_000, "the screenshot shows a page, not a blank");
}

/// Debian's chromium, if installed; in CI (`CI` set) it must be, elsewhere a
/// test that needs it says why it skips.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing in CI: .ci/run installs Debian's `chromium`"
        );
        eprintln!(
            "SKIPPED: chromium is not installed (apt-get install -y chromium); the status page is not browsed"
        );
    }
    found
}

/// Loads the status page in headless chromium (with `extra` switches) and
/// returns the DOM it rendered.
async fn browse(chromium: &PathBuf, http: SocketAddr, extra: &[String]) -> String {
    let profile = crate::harness::Scratch::new();
    let mut command = Command::new(chromium);
    command
        .args([
            "--headless",
            // CI runs as root, where chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("http://{http}/"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("chromium renders the page within a minute")
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
