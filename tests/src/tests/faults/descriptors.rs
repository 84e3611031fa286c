//! File descriptors, with the real `hookd` binary under a lowered
//! `RLIMIT_NOFILE`: hookd raises its soft limit to the hard one at start,
//! and when it runs out anyway it neither spins nor stops serving. It logs
//! and counts the accept errors, waits them out, and serves hook calls again
//! once connections close. A webhook call that cannot open a connection for
//! lack of descriptors says that hookd, not the endpoint, is the cause.

use std::time::Duration;

use hookd_proto::v1::ErrorKind;
use tokio::{net::TcpStream, time::Instant};

use crate::harness::{
    Hook, WAIT, assert_error, assert_ok,
    broker::Broker,
    calls::{self, IntoCall},
    eventually,
    process::HookdProcess,
    webhook::{Reply, Webhook},
    within,
};

/// The hard open-file limit hookd runs under: room for its own ~25
/// descriptors and a few dozen connections, so a test runs it out quickly.
const HARD_LIMIT: u64 = 64;

/// What hookd logs when an accept fails.
const ACCEPT_ERROR: &str = "cannot accept connections";

/// Most idle connections a test opens to run hookd out of descriptors.
const MAX_CONNECTIONS: usize = 4 * HARD_LIMIT as usize;

/// How long a connection attempt may take before the test concludes that
/// hookd's accept queue is full (hookd accepts nothing any more).
const CONNECT_PATIENCE: Duration = Duration::from_millis(500);

/// How long hookd's CPU use is measured while it is out of descriptors.
const MEASURE_CPU_OVER: Duration = Duration::from_secs(1);

/// The most of one core hookd may use while out of descriptors: an accept
/// loop that spins uses a whole core per shard; one that waits, almost none.
const MAX_CPU_SHARE: f64 = 0.25;

/// A configuration file registering `webhook` for `hook`.
fn registration(hook: Hook, webhook: &Webhook) -> String {
    format!(
        "[[webhooks]]\nhook = \"{}\"\nendpoint = \"{}\"\n",
        hook.name(),
        webhook.url()
    )
}

/// Opens idle connections to hookd until it logs that it cannot accept
/// (or stops completing connections at all), and returns them open.
async fn use_up_descriptors(hookd: &HookdProcess) -> Vec<TcpStream> {
    let mut idle = Vec::new();
    while idle.len() < MAX_CONNECTIONS && hookd.log_line(ACCEPT_ERROR).is_none() {
        match tokio::time::timeout(CONNECT_PATIENCE, TcpStream::connect(hookd.addr())).await {
            Ok(Ok(stream)) => idle.push(stream),
            // hookd's accept queue is full: it accepts nothing any more.
            _ => break,
        }
    }
    idle
}

/// The share of one core hookd uses over [`MEASURE_CPU_OVER`]. (The sleep
/// is the measuring window, not a wait for something to happen.)
async fn cpu_share(hookd: &HookdProcess) -> f64 {
    let (used, start) = (hookd.cpu_time(), Instant::now());
    tokio::time::sleep(MEASURE_CPU_OVER).await;
    (hookd.cpu_time() - used).as_secs_f64() / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hookd_raises_its_soft_open_file_limit_to_the_hard_limit_and_logs_both() {
    let hookd = HookdProcess::launch()
        .open_files_limit(HARD_LIMIT / 2, HARD_LIMIT)
        .start()
        .await;
    let line = hookd.wait_for_log("open file limit").await;
    for field in ["soft=64", "hard=64", "was=32"] {
        assert!(line.contains(field), "{field} missing from {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_hookd_waits_without_spinning_and_serves_again_once_connections_close() {
    let webhook = Webhook::start(Reply::ok()).await;
    let hookd = HookdProcess::launch()
        .open_files_limit(HARD_LIMIT, HARD_LIMIT)
        .env("HOOKD_METRICS__LISTEN", "127.0.0.1:0")
        .config(&registration(Hook::AuthOnRegister, &webhook))
        .start()
        .await;
    hookd.wait_for_log("metrics listening").await;

    let idle = use_up_descriptors(&hookd).await;
    let line = hookd.wait_for_log(ACCEPT_ERROR).await;
    assert!(line.contains("Too many open files"), "{line}");
    let share = cpu_share(&hookd).await;
    assert!(
        share < MAX_CPU_SHARE,
        "hookd used {share:.2} of a core while out of descriptors ({} connections open)",
        idle.len()
    );

    drop(idle);
    let serving = eventually(|| hookd.is_serving(), WAIT).await;
    assert!(
        serving.is_ok(),
        "hookd does not serve again; its log:\n{}",
        hookd.log()
    );
    let mut client = hookd.client().await;
    let verdict = within(
        "a verdict",
        client.call(calls::auth_on_register("c1").into_call(1)),
    )
    .await
    .expect("hookd answers the call")
    .into_inner();
    assert_ok(&verdict);
    assert_eq!(webhook.hits(), 1, "the webhook is reached again");
    assert!(hookd.metric("hookd_accept_errors_total").await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_a_call_needing_a_new_webhook_connection_says_so() {
    let webhook = Webhook::start(Reply::ok()).await;
    let hookd = HookdProcess::launch()
        .open_files_limit(HARD_LIMIT, HARD_LIMIT)
        .config(&registration(Hook::AuthOnRegister, &webhook))
        .start()
        .await;
    let broker = Broker::connect(hookd.client().await).await;

    let _idle = use_up_descriptors(&hookd).await;
    hookd.wait_for_log(ACCEPT_ERROR).await;
    let verdict = broker.call(calls::auth_on_register("c1")).await;

    let reason = assert_error(&verdict, ErrorKind::Unavailable);
    assert!(reason.contains("out of file descriptors"), "{reason}");
    assert!(reason.contains("RLIMIT_NOFILE"), "{reason}");
    assert_eq!(webhook.hits(), 0);
}
