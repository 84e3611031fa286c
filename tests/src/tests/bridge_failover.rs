//! `hookd-bridge` when hookd fails under it: killed mid-stream and restarted
//! on the same port, stopped gracefully, or one of two instances dying. No
//! call hangs, none waits past its deadline, and the client reconnects by
//! itself.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use hookd::config::WebhookConfig;
use hookd_bridge::{ErrorKind, Outcome, Source, Verdict, pb::hook_call::Hook as Args};

use super::bridge::{assert_policy, connected, denied, fresh_ok, join_calls, options, spawn_registers};
use crate::harness::{
    Hook, WAIT, calls, eventually,
    killable::KillableHookd,
    service::config,
    webhook::{Reply, Webhook},
    within,
};

/// How far past its deadline a call may come back (scheduling on a busy
/// 2-core machine), for the "never waits past its deadline" checks.
const SLACK: Duration = Duration::from_millis(500);

#[track_caller]
fn assert_within_deadline(elapsed: Duration, deadline: Duration, verdict: &Verdict) {
    assert!(
        elapsed <= deadline + SLACK,
        "a call with a {deadline:?} deadline took {elapsed:?} ({verdict:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_when_hookd_is_killed_are_sent_again_once_it_is_back_on_the_same_port() {
    let webhook = Webhook::builder().held().start().await;
    let config = config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]);
    let hookd = KillableHookd::start(config.clone()).await;
    let client = connected(options([hookd.addr()])).await;

    let deadline = Duration::from_secs(5);
    let in_flight = spawn_registers(&client, "in-flight", 20, deadline);
    webhook.wait_for_hits(20).await;
    let addr = hookd.kill();
    // The new hookd's requests are answered at once (the dead hookd's
    // requests are answered too, to nobody).
    webhook.release();
    let hookd = KillableHookd::start_on(addr, config).await;

    for (elapsed, verdict) in join_calls(in_flight).await {
        assert_within_deadline(elapsed, deadline, &verdict);
        assert_eq!(verdict, fresh_ok(), "the call was re-sent to the new hookd");
    }
    assert_eq!(webhook.hits(), 40, "each call reached the endpoint twice");
    assert!(client.wait_connected(WAIT).await);
    assert_eq!(
        client.auth_on_register(calls::auth_on_register("after")).await,
        fresh_ok()
    );
    drop(hookd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_when_hookd_dies_for_good_get_their_policy_at_their_deadline() {
    let webhook = Webhook::builder().held().start().await;
    let config = config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]);
    let hookd = KillableHookd::start(config.clone()).await;
    let client = connected(options([hookd.addr()])).await;

    let deadline = Duration::from_millis(1500);
    let in_flight = spawn_registers(&client, "in-flight", 20, deadline);
    webhook.wait_for_hits(20).await;
    let addr = hookd.kill();
    for (elapsed, verdict) in join_calls(in_flight).await {
        assert_within_deadline(elapsed, deadline, &verdict);
        assert_policy(&verdict, ErrorKind::Timeout, &denied(ErrorKind::Timeout));
    }

    // While hookd is away, a new call does not wait for it.
    eventually(|| async { !client.is_connected() }, WAIT)
        .await
        .expect("the client notices the stream is gone");
    let started = tokio::time::Instant::now();
    let verdict = client
        .call_with_timeout(
            Args::AuthOnRegister(calls::auth_on_register("while-down")),
            Duration::from_secs(60),
        )
        .await;
    assert_policy(&verdict, ErrorKind::Unavailable, &denied(ErrorKind::Unavailable));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an unavailable verdict took {:?}",
        started.elapsed()
    );

    webhook.release();
    let _hookd = KillableHookd::start_on(addr, config).await;
    assert!(
        client.wait_connected(WAIT).await,
        "the client reconnects by itself"
    );
    assert_eq!(
        client.auth_on_register(calls::auth_on_register("after")).await,
        fresh_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_when_hookd_stops_gracefully_get_a_verdict_within_their_deadline() {
    let webhook = Webhook::builder().held().start().await;
    let mut config = config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]);
    // A grace period shorter than the calls' deadline: they are still
    // running when it ends.
    config.server.shutdown_grace_ms = 300;
    let hookd = KillableHookd::start(config.clone()).await;
    let client = connected(options([hookd.addr()])).await;

    let deadline = Duration::from_secs(3);
    let in_flight = spawn_registers(&client, "in-flight", 20, deadline);
    webhook.wait_for_hits(20).await;
    let addr = hookd.stop().await;
    for (elapsed, verdict) in join_calls(in_flight).await {
        assert_within_deadline(elapsed, deadline, &verdict);
        // hookd answers calls still in flight when its grace period ends
        // `overloaded`; the client hands that verdict on.
        assert_eq!(
            (&verdict.outcome, verdict.source),
            (
                &Outcome::Error {
                    kind: ErrorKind::Overloaded,
                    reason: "hookd is shutting down".into()
                },
                Source::Hookd { cached: false }
            ),
            "{verdict:?}"
        );
    }

    webhook.release();
    let _hookd = KillableHookd::start_on(addr, config).await;
    assert!(
        client.wait_connected(WAIT).await,
        "the client reconnects by itself"
    );
    eventually(
        || async { client.auth_on_register(calls::auth_on_register("after")).await == fresh_ok() },
        WAIT,
    )
    .await
    .expect("calls succeed on the new hookd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_spread_over_two_hookds_and_the_survivor_takes_them_all_when_one_dies() {
    let (webhook_a, webhook_b) = (
        Webhook::start(Reply::ok()).await,
        Webhook::start(Reply::ok()).await,
    );
    let config_a = config([WebhookConfig::new(Hook::AuthOnRegister, webhook_a.url())]);
    let hookd_a = KillableHookd::start(config_a.clone()).await;
    let hookd_b = KillableHookd::start(config([WebhookConfig::new(
        Hook::AuthOnRegister,
        webhook_b.url(),
    )]))
    .await;
    let client = connected(options([hookd_a.addr(), hookd_b.addr()])).await;

    // Until both streams are open, calls go to whichever is.
    eventually(
        || async {
            let verdict = client.auth_on_register(calls::auth_on_register("warm-up")).await;
            assert_eq!(verdict, fresh_ok());
            webhook_a.hits() > 0 && webhook_b.hits() > 0
        },
        WAIT,
    )
    .await
    .expect("both hookds get calls");
    let (a_before, b_before) = (webhook_a.hits(), webhook_b.hits());
    for (_, verdict) in join_calls(spawn_registers(&client, "spread", 100, WAIT)).await {
        assert_eq!(verdict, fresh_ok());
    }
    let (a_share, b_share) = (webhook_a.hits() - a_before, webhook_b.hits() - b_before);
    assert_eq!(a_share + b_share, 100);
    assert!(
        a_share > 0 && b_share > 0,
        "both hookds get calls: {a_share} and {b_share}"
    );

    let addr_a = hookd_a.kill();
    let (a_dead, b_before) = (webhook_a.hits(), webhook_b.hits());
    for (_, verdict) in join_calls(spawn_registers(&client, "after-kill", 100, WAIT)).await {
        assert_eq!(verdict, fresh_ok(), "the survivor answers");
    }
    for n in 0..50 {
        let verdict = client
            .auth_on_register(calls::auth_on_register(&format!("one-by-one-{n}")))
            .await;
        assert_eq!(verdict, fresh_ok(), "the survivor answers");
    }
    assert_eq!(webhook_a.hits(), a_dead, "nothing reaches the dead hookd");
    assert_eq!(webhook_b.hits() - b_before, 150);

    // The dead one rejoins when it comes back.
    let _hookd_a = KillableHookd::start_on(addr_a, config_a).await;
    eventually(
        || async {
            let verdict = client.auth_on_register(calls::auth_on_register("rejoin")).await;
            assert_eq!(verdict, fresh_ok());
            webhook_a.hits() > a_dead
        },
        WAIT,
    )
    .await
    .expect("calls reach the restarted hookd again");
    drop(hookd_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_racing_with_a_kill_and_restart_all_return_within_their_deadline() {
    let webhook = Webhook::start(Reply::ok()).await;
    let config = config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]);
    let hookd = KillableHookd::start(config.clone()).await;
    let client = connected(options([hookd.addr()])).await;

    let deadline = Duration::from_secs(3);
    let racing = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for round in 0..40 {
                tasks.extend(spawn_registers(&client, &format!("race-{round}"), 25, deadline));
                tokio::task::yield_now().await;
            }
            tasks
        })
    };
    webhook.wait_for_hits(100).await;
    let addr = hookd.kill();
    let hookd = KillableHookd::start_on(addr, config).await;
    let tasks = within("the racing calls to start", racing)
        .await
        .expect("the spawning task does not panic");
    let mut by_hookd = 0;
    for (elapsed, verdict) in join_calls(tasks).await {
        assert_within_deadline(elapsed, deadline, &verdict);
        if verdict == fresh_ok() {
            by_hookd += 1;
        } else {
            assert!(
                matches!(verdict.source, Source::Policy(_)),
                "a call that hookd did not answer gets its policy: {verdict:?}"
            );
        }
    }
    assert!(by_hookd >= 100, "{by_hookd} of 1000 calls answered by hookd");
    assert!(client.wait_connected(WAIT).await);
    assert_eq!(
        client.auth_on_register(calls::auth_on_register("after")).await,
        fresh_ok()
    );
    drop(hookd);
}

/// What the client thread of
/// [`a_client_on_a_single_threaded_runtime_keeps_answering_while_hookd_is_killed`] reports.
struct Report {
    calls: usize,
    late: Vec<(Duration, Verdict)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_a_single_threaded_runtime_keeps_answering_while_hookd_is_killed() {
    // Brokers embed the client in whatever runtime they have, often a
    // current-thread one: there, a call that never yields would starve the
    // task that notices the broken stream, and hang the broker. The client
    // runs on its own thread, so the test can notice a hang.
    const CALLERS: usize = 32;
    let deadline = Duration::from_secs(2);
    let webhook = Webhook::start(Reply::ok()).await;
    let hookd = KillableHookd::start(config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())])).await;
    let addr = hookd.addr();
    let (running, running_rx) = tokio::sync::oneshot::channel::<()>();
    let (killed, killed_rx) = tokio::sync::oneshot::channel::<()>();
    let (done, done_rx) = tokio::sync::oneshot::channel::<Report>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
        let report = runtime.block_on(async move {
            let client = connected(options([addr])).await;
            let stop = Arc::new(AtomicBool::new(false));
            let answered = Arc::new(AtomicUsize::new(0));
            let callers: Vec<_> = (0..CALLERS)
                .map(|i| {
                    let (client, stop, answered) = (client.clone(), stop.clone(), answered.clone());
                    tokio::spawn(async move {
                        let mut late = Vec::new();
                        let mut calls = 0;
                        while !stop.load(Ordering::SeqCst) {
                            let args =
                                Args::AuthOnRegister(calls::auth_on_register(&format!("c{i}-{calls}")));
                            let started = tokio::time::Instant::now();
                            let verdict = client.call_with_timeout(args, deadline).await;
                            if started.elapsed() > deadline + SLACK {
                                late.push((started.elapsed(), verdict));
                            }
                            calls += 1;
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        (calls, late)
                    })
                })
                .collect();
            eventually(|| async { answered.load(Ordering::SeqCst) >= 200 }, WAIT)
                .await
                .expect("calls flow before the kill");
            let _ = running.send(());
            let _ = killed_rx.await;
            eventually(|| async { !client.is_connected() }, WAIT)
                .await
                .expect("the client notices the stream is gone");
            let after_kill = answered.load(Ordering::SeqCst);
            eventually(
                || async { answered.load(Ordering::SeqCst) >= after_kill + 200 },
                WAIT,
            )
            .await
            .expect("calls are answered (by policy) while hookd is away");
            stop.store(true, Ordering::SeqCst);
            let mut report = Report {
                calls: 0,
                late: Vec::new(),
            };
            for caller in callers {
                let (calls, late) = caller.await.expect("a caller does not panic");
                report.calls += calls;
                report.late.extend(late);
            }
            report
        });
        let _ = done.send(report);
    });
    within("the client's calls to flow", running_rx)
        .await
        .expect("the client thread is running");
    hookd.kill();
    let _ = killed.send(());
    let report = match tokio::time::timeout(WAIT * 2, done_rx).await {
        Ok(report) => report.expect("the client thread reports (it panicked otherwise)"),
        Err(_) => panic!(
            "the client's runtime hung after hookd was killed: a call spins without yielding, \
             starving the task that would mark the stream down"
        ),
    };
    assert!(report.calls >= 400);
    assert!(
        report.late.is_empty(),
        "calls past their deadline: {:?}",
        report.late
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_on_a_hookd_that_dies_are_sent_again_to_the_other_one_at_once() {
    let held = Webhook::builder().held().start().await;
    let answering = Webhook::start(Reply::ok()).await;
    let hookd_a = KillableHookd::start(config([WebhookConfig::new(Hook::AuthOnRegister, held.url())])).await;
    let hookd_b = KillableHookd::start(config([WebhookConfig::new(
        Hook::AuthOnRegister,
        answering.url(),
    )]))
    .await;
    let client = connected(options([hookd_a.addr(), hookd_b.addr()])).await;
    // Both streams open: calls reach both endpoints (those to A time out).
    eventually(
        || async {
            let args = Args::AuthOnRegister(calls::auth_on_register("warm-up"));
            client.call_with_timeout(args, Duration::from_millis(50)).await;
            held.hits() > 0 && answering.hits() > 0
        },
        WAIT,
    )
    .await
    .expect("both hookds get calls");

    let (held_before, answering_before) = (held.hits(), answering.hits());
    let deadline = Duration::from_secs(8);
    let in_flight = spawn_registers(&client, "in-flight", 20, deadline);
    eventually(
        || async { held.hits() - held_before + answering.hits() - answering_before == 20 },
        WAIT,
    )
    .await
    .expect("every call reached an endpoint");
    let stuck_on_a = held.hits() - held_before;
    assert!(stuck_on_a > 0, "some calls went to hookd A");
    hookd_a.kill();
    for (elapsed, verdict) in join_calls(in_flight).await {
        assert_eq!(verdict, fresh_ok(), "the call was answered through hookd B");
        assert!(
            elapsed < deadline / 2,
            "a re-sent call took {elapsed:?}, as if it waited for hookd A to come back"
        );
    }
    assert_eq!(
        answering.hits() - answering_before,
        20,
        "B answered A's calls too"
    );
    drop(hookd_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hookd_restarted_with_more_hooks_is_asked_for_them_after_the_reconnect() {
    let register = Webhook::start(Reply::ok()).await;
    let publish = Webhook::start(Reply::ok()).await;
    let hookd =
        KillableHookd::start(config([WebhookConfig::new(Hook::AuthOnRegister, register.url())])).await;
    let client = connected(options([hookd.addr()])).await;
    assert_eq!(
        client.auth_on_publish(calls::auth_on_publish("c1")).await.source,
        Source::NoEndpoints
    );

    let addr = hookd.kill();
    eventually(|| async { !client.is_connected() }, WAIT)
        .await
        .expect("the client notices the stream is gone");
    let _hookd = KillableHookd::start_on(
        addr,
        config([
            WebhookConfig::new(Hook::AuthOnRegister, register.url()),
            WebhookConfig::new(Hook::AuthOnPublish, publish.url()),
        ]),
    )
    .await;
    assert!(client.wait_connected(WAIT).await);
    assert_eq!(
        client.auth_on_publish(calls::auth_on_publish("c1")).await,
        fresh_ok(),
        "the new Welcome lists auth_on_publish"
    );
    assert_eq!(publish.hits(), 1);
}
