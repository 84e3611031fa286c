//! The durable outbox: an acknowledged notification is never lost. It is
//! delivered once its endpoint is back, after a crash or a restart, in order
//! per client; it is retried by outcome, dead-lettered past its budget or on
//! a final refusal (and replayed by an operator), and a 410 Gone stops its
//! webhook until an operator enables it again. Real webhooks, real store
//! files, real processes where a crash is the point.

use std::{
    collections::{HashMap, HashSet},
    process::Output,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU16, Ordering},
    },
    time::Duration,
};

use hookd::config::WebhookConfig;
use hookd_proto::v1::verdict::Outcome;
use tokio::time::Instant;

use crate::harness::{
    Hook, Scratch, WAIT, assert_ack,
    broker::Broker,
    calls, eventually,
    process::{self, HookdProcess},
    service::{self, Hookd},
    webhook::{Reply, Webhook},
    within,
};

/// A webhook whose answer a test switches (`answer`): 200 delivers, anything
/// else refuses. It records the notifications it took: their `webhook-id`,
/// client and topic, in the order it took them.
struct Receiver {
    webhook: Webhook,
    status: Arc<AtomicU16>,
    /// A client whose notifications get 503 whatever `status` says.
    refused_client: Arc<Mutex<Option<String>>>,
    taken: Arc<Mutex<Vec<Taken>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Taken {
    webhook_id: String,
    client_id: String,
    topic: String,
}

impl Receiver {
    /// A receiver answering `status` until told otherwise.
    async fn start(status: u16) -> Self {
        Self::start_with(status, Vec::new()).await
    }

    /// Like [`Receiver::start`], sending `headers` with every refusal.
    async fn start_with(status: u16, headers: Vec<(&'static str, &'static str)>) -> Self {
        let answer = Arc::new(AtomicU16::new(status));
        let taken = Arc::new(Mutex::new(Vec::new()));
        let refused_client = Arc::new(Mutex::new(None::<String>));
        let (now, log, refused) = (answer.clone(), taken.clone(), refused_client.clone());
        let webhook = Webhook::builder()
            .respond_with(move |request| {
                let client = request.body["client_id"].as_str().unwrap_or_default();
                let refused =
                    refused.lock().unwrap_or_else(PoisonError::into_inner).as_deref() == Some(client);
                let status = if refused { 503 } else { now.load(Ordering::SeqCst) };
                if status != 200 {
                    return headers
                        .iter()
                        .fold(Reply::raw("refused").status(status), |reply, (name, value)| {
                            reply.header(name, value)
                        });
                }
                log.lock().unwrap_or_else(PoisonError::into_inner).push(Taken {
                    webhook_id: request.header("webhook-id").unwrap_or_default().to_owned(),
                    client_id: request.body["client_id"].as_str().unwrap_or_default().to_owned(),
                    topic: request.body["topic"].as_str().unwrap_or_default().to_owned(),
                });
                Reply::json(serde_json::json!({}))
            })
            .start()
            .await;
        Self {
            webhook,
            status: answer,
            refused_client,
            taken,
        }
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Refuses `client`'s notifications (503), or nobody's.
    fn refuse_client(&self, client: Option<&str>) {
        *self.refused_client.lock().unwrap_or_else(PoisonError::into_inner) = client.map(str::to_owned);
    }

    fn taken(&self) -> Vec<Taken> {
        self.taken.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn distinct(&self) -> usize {
        self.taken()
            .into_iter()
            .map(|t| t.webhook_id)
            .collect::<HashSet<_>>()
            .len()
    }

    /// Waits (bounded by `limit`) until `n` distinct notifications were taken.
    async fn wait_for_distinct(&self, n: usize, limit: Duration) {
        eventually(|| async { self.distinct() >= n }, limit)
            .await
            .unwrap_or_else(|e| panic!("{} of {n} notifications delivered: {e}", self.distinct()));
    }

    /// Asserts each client's notifications were first taken in the order
    /// they were sent (topics `seq/0`, `seq/1`, …).
    #[track_caller]
    fn assert_in_order_per_client(&self) {
        let mut seen = HashSet::new();
        let mut last: HashMap<String, u64> = HashMap::new();
        for taken in self.taken() {
            if !seen.insert(taken.webhook_id.clone()) {
                continue;
            }
            let seq: u64 = taken
                .topic
                .strip_prefix("seq/")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("a sequenced topic: {taken:?}"));
            if let Some(previous) = last.insert(taken.client_id.clone(), seq) {
                assert!(
                    previous < seq,
                    "{} got seq {seq} after {previous}",
                    taken.client_id
                );
            }
        }
    }
}

/// An `on_publish` of `client` with topic `seq/N`.
fn numbered(client: &str, n: u64) -> hookd_proto::v1::OnPublish {
    hookd_proto::v1::OnPublish {
        topic: format!("seq/{n}"),
        ..calls::on_publish(client)
    }
}

/// Sends `count` numbered notifications spread over `clients`, all in flight
/// at once (so they share commits), and asserts every one is acknowledged.
async fn send_acked(broker: &Broker, clients: u64, count: u64) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(2000) {
        let mut pending = Vec::new();
        for &n in chunk {
            pending.push(
                broker
                    .send_args(numbered(&format!("client-{}", n % clients), n))
                    .await,
            );
        }
        for pending in pending {
            assert_ack(&pending.verdict().await);
        }
    }
}

/// Fast retries, so tests take milliseconds, not minutes.
fn fast_retries(config: &mut hookd::Config) {
    config.outbox.retry_initial_delay_ms = 10;
    config.outbox.retry_max_delay_ms = 50;
}

/// A `hookd` process with `config` and its outbox in the store file `store`
/// (started again on the same file, it delivers what the last one left).
async fn hookd_on(store: &str, config: &str) -> HookdProcess {
    HookdProcess::launch()
        .env("HOOKD_OUTBOX__PATH", store)
        .config(config)
        .start()
        .await
}

/// The TOML of a hookd process with `url` registered for `on_publish`, fast
/// retries, a `retry_budget_ms` of `budget_ms`, and a short grace period.
fn process_config(url: &str, budget_ms: u64) -> String {
    format!(
        "[server]\nshutdown_grace_ms = 1000\n\
         [outbox]\nretry_initial_delay_ms = 10\nretry_max_delay_ms = 50\n\
         [[webhooks]]\nhook = \"on_publish\"\nendpoint = \"{url}\"\nretry_budget_ms = {budget_ms}\n"
    )
}

/// Runs `hookd outbox ARGS…`; returns its output.
async fn outbox_command(args: &[&str]) -> Output {
    let binary = process::binary().await;
    within(
        "hookd outbox",
        tokio::process::Command::new(binary)
            .arg("outbox")
            .args(args)
            .env_clear()
            .output(),
    )
    .await
    .expect("the hookd binary runs")
}

/// Runs `hookd outbox ARGS…`, asserts it succeeded, and returns its stdout.
async fn outbox_ok(args: &[&str]) -> String {
    let output = outbox_command(args).await;
    assert!(
        output.status.success(),
        "hookd outbox {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_down_for_a_while_gets_every_notification_once_back_in_order_per_client() {
    let receiver = Receiver::start(503).await;
    let mut config = service::config([WebhookConfig::new(Hook::OnPublish, receiver.webhook.url())]);
    fast_retries(&mut config);
    let hookd = Hookd::start(config).await;
    let broker = hookd.broker().await;
    send_acked(&broker, 8, 400).await;
    // Down: every client's first notification is being retried.
    receiver.webhook.wait_for_hits(16).await;
    assert_eq!(receiver.distinct(), 0);
    receiver.answer(200);
    receiver.wait_for_distinct(400, WAIT).await;
    assert_eq!(receiver.taken().len(), 400, "each delivered exactly once");
    receiver.assert_in_order_per_client();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_waiting_out_a_long_retry_delay_goes_as_soon_as_its_endpoint_answers_again() {
    let receiver = Receiver::start(503).await;
    let mut config = service::config([WebhookConfig::new(Hook::OnPublish, receiver.webhook.url())]);
    // A minute between attempts: far longer than this test waits.
    config.outbox.retry_initial_delay_ms = 60_000;
    config.outbox.retry_max_delay_ms = 60_000;
    let hookd = Hookd::start(config).await;
    let broker = hookd.broker().await;
    send_acked(&broker, 1, 1).await;
    receiver.webhook.wait_for_hits(1).await;
    receiver.answer(200);
    // Another client's notification is the first to find the endpoint back.
    assert_ack(&broker.call(numbered("other", 1)).await);
    receiver.wait_for_distinct(2, WAIT).await;
    assert!(receiver.taken().iter().any(|t| t.client_id == "client-0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stuck_behind_a_retried_notification_holds_up_only_itself() {
    let receiver = Receiver::start(200).await;
    receiver.refuse_client(Some("client-0"));
    let mut config = service::config([WebhookConfig::new(Hook::OnPublish, receiver.webhook.url())]);
    fast_retries(&mut config);
    let hookd = Hookd::start(config).await;
    let broker = hookd.broker().await;
    // More of the stuck client's than the endpoint holds in memory, then
    // another client's.
    send_acked(&broker, 1, 1_500).await;
    for n in 0..50 {
        assert_ack(&broker.call(numbered("other", 1_500 + n)).await);
    }
    receiver.wait_for_distinct(50, WAIT).await;
    assert!(receiver.taken().iter().all(|t| t.client_id == "other"));
    receiver.refuse_client(None);
    receiver.wait_for_distinct(1_550, WAIT).await;
    assert_eq!(receiver.taken().len(), 1_550, "each delivered exactly once");
    receiver.assert_in_order_per_client();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_is_measured_per_webhook_with_the_endpoint_redacted() {
    let receiver = Receiver::start(503).await;
    // The same endpoint, with credentials and a token hookd must never show.
    let url = receiver
        .webhook
        .url()
        .replace("http://", "http://user:s3cret@")
        .replace("/hook", "/hook?token=t0ken");
    let mut config = service::config([WebhookConfig::new(Hook::OnPublish, url)]);
    fast_retries(&mut config);
    let hookd = Hookd::start_with_registry(config).await;
    let broker = hookd.broker().await;
    send_acked(&broker, 2, 10).await;
    receiver.webhook.wait_for_hits(4).await;
    let shown = format!(
        "http://***@{}/hook?***",
        receiver.webhook.url().split('/').nth(2).unwrap_or_default()
    );
    let depth = format!(r#"hookd_outbox_depth{{endpoint="{shown}"}} 10"#);
    eventually(
        || async { hookd.metrics().encode().lines().any(|l| l == depth) },
        WAIT,
    )
    .await
    .unwrap_or_else(|_| panic!("{depth} in:\n{}", hookd.metrics().encode()));
    receiver.answer(200);
    receiver.wait_for_distinct(10, WAIT).await;
    let delivered = format!(r#"hookd_outbox_delivered_total{{endpoint="{shown}"}} 10"#);
    eventually(
        || async { hookd.metrics().encode().lines().any(|l| l == delivered) },
        WAIT,
    )
    .await
    .unwrap_or_else(|_| panic!("{delivered} in:\n{}", hookd.metrics().encode()));
    let metrics = hookd.metrics().encode();
    assert!(metrics.contains(&format!(r#"hookd_outbox_retried_total{{endpoint="{shown}"}}"#)));
    assert!(
        !metrics.contains("s3cret") && !metrics.contains("t0ken"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_carries_the_same_webhook_id_and_waits_as_long_as_retry_after_says() {
    let receiver = Receiver::start_with(429, vec![("retry-after", "1")]).await;
    let hookd = Hookd::start(service::config([WebhookConfig::new(
        Hook::OnPublish,
        receiver.webhook.url(),
    )]))
    .await;
    assert_ack(&hookd.broker().await.call(numbered("c", 0)).await);
    receiver.webhook.wait_for_hits(1).await;
    let refused_at = Instant::now();
    receiver.answer(500);
    receiver.webhook.wait_for_hits(2).await;
    assert!(
        refused_at.elapsed() >= Duration::from_millis(900),
        "the retry waited for Retry-After: 1 (it came after {:?})",
        refused_at.elapsed()
    );
    receiver.answer(200);
    receiver.wait_for_distinct(1, WAIT).await;
    let requests = receiver.webhook.requests();
    let ids: HashSet<_> = requests.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "one webhook-id across all attempts: {ids:?}");
    let timestamp: u64 = requests[0]
        .header("webhook-timestamp")
        .and_then(|t| t.parse().ok())
        .expect("a webhook-timestamp in seconds");
    assert!(timestamp > 1_700_000_000, "{timestamp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_not_retried_but_becomes_a_dead_letter_which_replay_delivers() {
    let receiver = Receiver::start(400).await;
    let webhook = receiver.webhook.url();
    let hookd = HookdProcess::launch()
        .config(&process_config(&webhook, 3_600_000))
        .start()
        .await;
    hookd.wait_for_log("admin listening").await;
    let admin = hookd.listening("admin listening").to_string();
    let broker = Broker::connect(hookd.client().await).await;
    assert_ack(&broker.call(numbered("c", 0)).await);
    let listed = async {
        loop {
            let list = outbox_ok(&["--admin", &admin, "dead", "list"]).await;
            if !list.is_empty() {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let list = within("the dead letter", listed).await;
    assert_eq!(receiver.webhook.hits(), 1, "a 400 is final: not retried");
    assert!(list.contains("HTTP 400"), "{list}");
    assert!(list.contains("on_publish"), "{list}");
    let id = list.split('\t').next().expect("an id first");
    receiver.answer(200);
    let replayed = outbox_ok(&["--admin", &admin, "dead", "replay", "--id", id]).await;
    assert_eq!(replayed.trim(), "replayed 1");
    receiver.wait_for_distinct(1, WAIT).await;
    assert!(outbox_ok(&["--admin", &admin, "dead", "list"]).await.is_empty());
    assert!(hookd.log().contains("moved to the dead letters"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_past_its_retry_budget_is_a_dead_letter_kept_across_a_restart_and_replayed() {
    let scratch = Scratch::new();
    let store = scratch.store().display().to_string();
    let receiver = Receiver::start(503).await;
    let config = process_config(&receiver.webhook.url(), 200);
    let hookd = hookd_on(&store, &config).await;
    let broker = Broker::connect(hookd.client().await).await;
    assert_ack(&broker.call(numbered("c", 0)).await);
    hookd.wait_for_log("retry budget exhausted").await;
    let hits = receiver.webhook.hits();
    assert!(hits >= 2, "retried before giving up ({hits} attempts)");
    // A running hookd holds its store: the file is not touched behind its back.
    let refused = outbox_command(&["--store", &store, "dead", "list"]).await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
    drop(broker);
    hookd.signal("TERM").await;
    let (status, _) = hookd.exited().await;
    assert!(status.success(), "{status}");
    // hookd is stopped: the store file itself is listed and replayed.
    let list = outbox_ok(&["--store", &store, "dead", "list"]).await;
    assert!(list.contains("retry budget exhausted; last: HTTP 503"), "{list}");
    assert!(
        outbox_ok(&["--store", &store, "dead", "replay", "--all"])
            .await
            .starts_with("replayed 1")
    );
    receiver.answer(200);
    let _restarted = hookd_on(&store, &config).await;
    receiver.wait_for_distinct(1, WAIT).await;
    assert_eq!(receiver.webhook.hits(), hits + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_stops_the_webhook_loudly_until_an_operator_enables_it() {
    let receiver = Receiver::start(410).await;
    let url = receiver.webhook.url();
    let hookd = HookdProcess::launch()
        .config(&process_config(&url, 3_600_000))
        .start()
        .await;
    hookd.wait_for_log("admin listening").await;
    let admin = hookd.listening("admin listening").to_string();
    let broker = Broker::connect(hookd.client().await).await;
    assert_ack(&broker.call(numbered("a", 0)).await);
    let line = hookd.wait_for_log("410 Gone").await;
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        outbox_ok(&["--admin", &admin, "status"])
            .await
            .contains("stopped")
    );
    assert_ack(&broker.call(numbered("b", 0)).await);
    assert_ack(&broker.call(numbered("a", 1)).await);
    // Stopped: the new notifications wait in the store, nothing is sent.
    assert!(
        outbox_ok(&["--admin", &admin, "status"])
            .await
            .contains("\t3\tstopped")
    );
    assert_eq!(receiver.webhook.hits(), 1);
    receiver.answer(200);
    let enabled = outbox_ok(&["--admin", &admin, "enable", &url]).await;
    assert!(enabled.starts_with("enabled"), "{enabled}");
    receiver.wait_for_distinct(3, WAIT).await;
    receiver.assert_in_order_per_client();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_survive_sigkill_and_are_delivered_after_restart() {
    const EVENTS: u64 = 10_000;
    let scratch = Scratch::new();
    let store = scratch.store().display().to_string();
    let receiver = Receiver::start(503).await;
    let config = process_config(&receiver.webhook.url(), 0);
    let hookd = hookd_on(&store, &config).await;
    let broker = Broker::connect(hookd.client().await).await;
    send_acked(&broker, 100, EVENTS).await;
    hookd.signal("KILL").await;
    let (status, _) = hookd.exited().await;
    assert!(!status.success(), "killed: {status}");
    receiver.answer(200);
    let restarted = hookd_on(&store, &config).await;
    receiver
        .wait_for_distinct(EVENTS as usize, Duration::from_secs(60))
        .await;
    receiver.assert_in_order_per_client();
    assert!(
        restarted
            .log()
            .contains("delivering notifications accepted before the restart")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_backlog_exits_within_the_grace_loses_nothing_and_resumes_after_restart() {
    const EVENTS: u64 = 500;
    let scratch = Scratch::new();
    let store = scratch.store().display().to_string();
    let receiver = Receiver::start(503).await;
    let config = process_config(&receiver.webhook.url(), 0);
    let hookd = hookd_on(&store, &config).await;
    let broker = Broker::connect(hookd.client().await).await;
    send_acked(&broker, 10, EVENTS).await;
    let signalled = Instant::now();
    hookd.signal("TERM").await;
    let (status, log) = hookd.exited().await;
    assert!(status.success(), "{status}\n{log}");
    // The grace is 1 s; with the broker's stream open hookd waits it out.
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "{:?}",
        signalled.elapsed()
    );
    assert!(log.contains(&format!("notifications_pending={EVENTS}")), "{log}");
    let down = log.lines().filter(|l| l.contains("webhook down")).count();
    assert_eq!(
        down, 1,
        "one line for the endpoint going down, not one per event:\n{log}"
    );
    drop(broker);
    receiver.answer(200);
    let _restarted = hookd_on(&store, &config).await;
    receiver.wait_for_distinct(EVENTS as usize, WAIT).await;
    receiver.assert_in_order_per_client();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_answers_overloaded_and_takes_notifications_again_once_delivered() {
    let receiver = Receiver::start(503).await;
    let mut config = service::config([WebhookConfig::new(Hook::OnPublish, receiver.webhook.url())]);
    fast_retries(&mut config);
    config.outbox.max_bytes = 2000;
    let hookd = Hookd::start(config).await;
    let broker = hookd.broker().await;
    let mut acked = 0;
    let mut overloaded = false;
    for n in 0..40 {
        match broker.call(numbered("c", n)).await.outcome {
            Some(Outcome::Ack(_)) => {
                assert!(!overloaded, "nothing was delivered, so the outbox stays full");
                acked += 1;
            }
            _ => overloaded = true,
        }
    }
    assert!(overloaded && acked > 0, "{acked} acknowledged");
    receiver.answer(200);
    receiver.wait_for_distinct(acked, WAIT).await;
    let again = async {
        loop {
            if matches!(
                broker.call(numbered("c", 100)).await.outcome,
                Some(Outcome::Ack(_))
            ) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    within("room in the outbox again", again).await;
}
