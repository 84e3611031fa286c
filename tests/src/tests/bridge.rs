//! `hookd-bridge`, the broker-side client, against a real hookd and real
//! webhooks: many calls multiplexed on one stream, failure policies when
//! hookd is unreachable or late, the in-flight limit, hooks answered locally
//! (no endpoints, local cache), and the blocking façade.
//!
//! hookd failing under the client (killed, restarted, several instances) is
//! in `bridge_failover.rs`.

use std::{future::Future, net::SocketAddr, pin::Pin, time::Duration};

use futures::future::join_all;
use hookd::config::WebhookConfig;
use hookd_bridge::{
    BlockingClient, Client, ErrorKind, FailurePolicy, HookStyle, NodeIdentity, Options, Outcome, Overload,
    Source, Verdict, connect,
    pb::{self, hook_call::Hook as Args, ok::Modifiers},
};
use serde_json::json;
use tokio::{net::TcpListener, task::JoinHandle, time::Instant};

use crate::harness::{
    Hook, WAIT, calls, eventually,
    service::{Hookd, config},
    webhook::{Recorded, Reply, Webhook, refused_url},
    within,
};

/// The client's reconnect backoff in tests: short, so reconnects are quick.
const MIN_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// The broker node the test clients introduce themselves as.
pub(super) fn identity() -> NodeIdentity {
    NodeIdentity {
        node_id: "bridge-test@127.0.0.1".into(),
        broker_kind: "hookd-tests".into(),
        broker_version: "0.0.0".into(),
    }
}

/// Client options for these hookd addresses, with a short backoff.
pub(super) fn options(addresses: impl IntoIterator<Item = SocketAddr>) -> Options {
    let mut options = Options::new(addresses.into_iter().map(|a| a.to_string()), identity());
    options.min_backoff = MIN_BACKOFF;
    options.max_backoff = MAX_BACKOFF;
    options.connect_timeout = Duration::from_secs(1);
    options
}

/// A client with `options` whose first stream is open.
pub(super) async fn connected(options: Options) -> Client {
    let client = connect(options).expect("valid client options");
    assert!(client.wait_connected(WAIT).await, "the client connects to hookd");
    client
}

/// hookd's verdict `Ok` without modifiers, computed by a webhook.
pub(super) fn fresh_ok() -> Verdict {
    Verdict {
        outcome: Outcome::Ok(None),
        source: Source::Hookd { cached: false },
        cache_ttl: None,
    }
}

/// `verdict` without its cache TTL, which counts down and so is checked on its own.
pub(super) fn decided(verdict: Verdict) -> Verdict {
    Verdict {
        cache_ttl: None,
        ..verdict
    }
}

/// Asserts `verdict` is the failure policy's answer for the reason `kind`.
#[track_caller]
pub(super) fn assert_policy(verdict: &Verdict, kind: ErrorKind, outcome: &Outcome) {
    assert_eq!(verdict.source, Source::Policy(kind), "verdict {verdict:?}");
    match (outcome, &verdict.outcome) {
        (
            Outcome::Error { kind: expected, .. },
            Outcome::Error {
                kind: actual,
                reason: _,
            },
        ) => assert_eq!(expected, actual, "verdict {verdict:?}"),
        (expected, actual) => assert_eq!(expected, actual, "verdict {verdict:?}"),
    }
}

/// What the `Deny` policy answers for `kind` (the reason is not compared).
pub(super) fn denied(kind: ErrorKind) -> Outcome {
    Outcome::Error {
        kind,
        reason: String::new(),
    }
}

/// A loopback address that refuses connections.
async fn refused_addr() -> SocketAddr {
    let url = refused_url().await;
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches("/hook")
        .to_owned();
    authority.parse().expect("refused_url is http://<addr>/hook")
}

/// Calls `auth_on_register` for `<prefix>-<n>`, n in `0..count`, all at once in
/// their own tasks, each with `timeout`; each task returns how long its call
/// took and its verdict.
pub(super) fn spawn_registers(
    client: &Client,
    prefix: &str,
    count: usize,
    timeout: Duration,
) -> Vec<JoinHandle<(Duration, Verdict)>> {
    (0..count)
        .map(|n| {
            let client = client.clone();
            let args = Args::AuthOnRegister(calls::auth_on_register(&format!("{prefix}-{n}")));
            tokio::spawn(async move {
                let started = Instant::now();
                let verdict = client.call_with_timeout(args, timeout).await;
                (started.elapsed(), verdict)
            })
        })
        .collect()
}

/// Waits (bounded) for every spawned call.
pub(super) async fn join_calls(calls: Vec<JoinHandle<(Duration, Verdict)>>) -> Vec<(Duration, Verdict)> {
    within("every call to return a verdict", join_all(calls))
        .await
        .into_iter()
        .map(|joined| joined.expect("a call task does not panic"))
        .collect()
}

/// Allows a publish to `numbers/<n>` for even n (rewriting the topic to
/// `even/<n>`) and denies it for odd n with reason `odd-<n>`.
fn allow_even_topics(request: &Recorded) -> Reply {
    let topic = request.body["topic"].as_str().unwrap_or_default();
    let number: u64 = topic.rsplit('/').next().and_then(|n| n.parse().ok()).unwrap_or(1);
    if number.is_multiple_of(2) {
        Reply::ok_with(json!({"topic": format!("even/{number}")}))
    } else {
        Reply::error(&format!("odd-{number}"))
    }
}

fn publish_to(topic: String) -> pb::AuthOnPublish {
    pb::AuthOnPublish {
        topic,
        ..calls::auth_on_publish("publisher")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_concurrent_calls_from_one_client_each_get_their_own_verdict() {
    const CALLS: u64 = 5_000;
    let webhook = Webhook::builder().respond_with(allow_even_topics).start().await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnPublish, webhook.url())]).await;
    let mut options = options([hookd.addr()]);
    options.default_timeout = Duration::from_secs(60);
    let client = connected(options).await;

    let tasks: Vec<_> = (0..CALLS)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move { client.auth_on_publish(publish_to(format!("numbers/{n}"))).await })
        })
        .collect();
    let verdicts = tokio::time::timeout(Duration::from_secs(90), join_all(tasks))
        .await
        .expect("5000 calls are answered within 90 s");
    for (n, verdict) in (0..CALLS).zip(verdicts) {
        let verdict = verdict.expect("a call task does not panic");
        assert_eq!(verdict.source, Source::Hookd { cached: false }, "call {n}");
        if n.is_multiple_of(2) {
            match verdict.outcome {
                Outcome::Ok(Some(Modifiers::Publish(modifiers))) => {
                    assert_eq!(modifiers.topic, Some(format!("even/{n}")), "call {n}")
                }
                other => panic!("call {n}: expected ok with a topic rewrite, got {other:?}"),
            }
        } else {
            assert_eq!(
                verdict.outcome,
                Outcome::Error {
                    kind: ErrorKind::Denied,
                    reason: format!("odd-{n}")
                },
                "call {n}"
            );
        }
    }
    assert_eq!(webhook.hits(), 5_000, "every call reached the endpoint once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hookd_down_at_start_a_call_gets_its_policy_at_once_as_unavailable() {
    let addr = refused_addr().await;
    let deny = denied(ErrorKind::Unavailable);
    let cases = [
        (None, Hook::AuthOnRegister, deny.clone()),
        (Some(FailurePolicy::Deny), Hook::AuthOnRegister, deny.clone()),
        (
            Some(FailurePolicy::Allow),
            Hook::AuthOnRegister,
            Outcome::Ok(None),
        ),
        (Some(FailurePolicy::Next), Hook::AuthOnRegister, Outcome::Next),
        (None, Hook::OnPublish, Outcome::Ack),
        (Some(FailurePolicy::Allow), Hook::OnPublish, Outcome::Ack),
        (Some(FailurePolicy::Deny), Hook::OnPublish, deny.clone()),
        (Some(FailurePolicy::Next), Hook::OnPublish, Outcome::Next),
    ];
    for (policy, hook, expected) in cases {
        let mut options = options([addr]);
        // Far longer than the test allows: the answer must not wait for it.
        options.default_timeout = Duration::from_secs(60);
        if let Some(policy) = policy {
            options = options.policy(hook, policy);
        }
        let client = connect(options).expect("valid client options");
        let args = match hook {
            Hook::OnPublish => Args::OnPublish(calls::on_publish("c1")),
            _ => Args::AuthOnRegister(calls::auth_on_register("c1")),
        };
        let verdict = within("the policy verdict", client.call(args)).await;
        assert_policy(&verdict, ErrorKind::Unavailable, &expected);
        assert!(!client.is_connected());
        assert_eq!(client.active_hooks(), None, "no Welcome was ever received");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_gets_its_policy_as_timeout() {
    let webhook = Webhook::builder().held().start().await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]).await;
    let cases = [
        (FailurePolicy::Deny, denied(ErrorKind::Timeout)),
        (FailurePolicy::Allow, Outcome::Ok(None)),
        (FailurePolicy::Next, Outcome::Next),
    ];
    // Twenty calls per policy, so a race between the client's deadline and
    // hookd's shows up in most runs rather than now and then. A deadline is
    // rarely a whole number of milliseconds (it is what remains of the
    // broker's budget), hence the 900 µs.
    let deadline = Duration::from_micros(200_900);
    let mut verdicts = Vec::new();
    for (policy, expected) in cases {
        let client = connected(options([hookd.addr()]).policy(Hook::AuthOnRegister, policy)).await;
        let prefix = format!("late-{policy:?}");
        for (_, verdict) in join_calls(spawn_registers(&client, &prefix, 20, deadline)).await {
            verdicts.push((policy, expected.clone(), verdict));
        }
    }
    let wrong: Vec<_> = verdicts
        .iter()
        .filter(|(_, _, verdict)| verdict.source != Source::Policy(ErrorKind::Timeout))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of 60 calls past their deadline were not answered by their policy: {wrong:#?}",
        wrong.len()
    );
    for (_, expected, verdict) in &verdicts {
        assert_policy(verdict, ErrorKind::Timeout, expected);
    }
    assert_eq!(webhook.hits(), 60, "each call reached the held endpoint");
    webhook.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hookd_that_accepts_connections_but_never_answers_costs_a_call_only_its_deadline() {
    // A TCP listener that accepts and then says nothing: no HTTP/2, no Welcome.
    let silent = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = silent.local_addr().expect("a bound listener has an address");
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let mut options = options([addr]);
    options.connect_timeout = Duration::from_secs(30);
    let client = connect(options).expect("valid client options");
    let args = Args::AuthOnRegister(calls::auth_on_register("c1"));
    let verdict = within(
        "the timeout verdict",
        client.call_with_timeout(args, Duration::from_millis(300)),
    )
    .await;
    assert_policy(&verdict, ErrorKind::Timeout, &denied(ErrorKind::Timeout));
    accepting.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_without_endpoints_are_answered_next_locally_until_an_endpoint_is_registered() {
    let register = Webhook::start(Reply::ok()).await;
    let publish = Webhook::start(Reply::ok()).await;
    let hookd =
        Hookd::start_with_registry(config([WebhookConfig::new(Hook::AuthOnRegister, register.url())])).await;
    let client = connected(options([hookd.addr()])).await;
    assert_eq!(client.active_hooks(), Some(vec![Hook::AuthOnRegister]));

    let skipped = Verdict {
        outcome: Outcome::Next,
        source: Source::NoEndpoints,
        cache_ttl: None,
    };
    assert_eq!(client.on_publish(calls::on_publish("c1")).await, skipped);
    assert_eq!(
        client.auth_on_publish(calls::auth_on_publish("c1")).await,
        skipped
    );
    assert_eq!(
        client.auth_on_register(calls::auth_on_register("c1")).await,
        fresh_ok()
    );
    assert_eq!(register.hits(), 1, "only the registered hook reached hookd");
    assert_eq!(publish.hits(), 0);

    hookd
        .registry()
        .register(&WebhookConfig::new(Hook::AuthOnPublish, publish.url()))
        .expect("a new registration");
    eventually(
        || async {
            client.auth_on_publish(calls::auth_on_publish("c2")).await.source
                == Source::Hookd { cached: false }
        },
        WAIT,
    )
    .await
    .expect("after HooksChanged the client sends auth_on_publish to hookd");
    assert_eq!(
        publish.hits(),
        1,
        "the first call hookd got reached the new endpoint"
    );
    let mut active = client.active_hooks().expect("hookd reported its hooks");
    active.sort_by_key(|hook| *hook as i32);
    assert_eq!(active, vec![Hook::AuthOnRegister, Hook::AuthOnPublish]);
    assert_eq!(
        client.on_publish(calls::on_publish("c2")).await,
        skipped,
        "on_publish still has no endpoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cacheable_verdict_is_reused_locally_without_asking_hookd() {
    let webhook = Webhook::start(Reply::ok().max_age(60)).await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]).await;
    let client = connected(options([hookd.addr()])).await;

    let first = client.auth_on_register(calls::auth_on_register("c1")).await;
    assert_eq!(
        first.cache_ttl,
        Some(Duration::from_secs(60)),
        "hookd passes the endpoint's max-age on"
    );
    assert_eq!(decided(first), fresh_ok());
    let local = Verdict {
        outcome: Outcome::Ok(None),
        source: Source::LocalCache,
        cache_ttl: None,
    };
    let repeat = client.auth_on_register(calls::auth_on_register("c1")).await;
    let left = repeat
        .cache_ttl
        .expect("a local hit says how long it stays valid");
    assert!(
        left > Duration::ZERO && left <= Duration::from_secs(60),
        "{left:?}"
    );
    assert_eq!(decided(repeat), local);
    let other_port = pb::AuthOnRegister {
        peer: Some(pb::Peer {
            addr: "10.0.0.7".into(),
            port: 60000,
        }),
        ..calls::auth_on_register("c1")
    };
    assert_eq!(
        decided(client.auth_on_register(other_port).await),
        local,
        "the peer port is not part of the identity"
    );
    assert_eq!(webhook.hits(), 1, "repeats never reached the endpoint");

    assert_eq!(
        decided(client.auth_on_register(calls::auth_on_register("c2")).await),
        fresh_ok()
    );
    assert_eq!(webhook.hits(), 2, "another client id is another call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_local_cache_a_repeat_is_answered_by_hookds_cache() {
    let webhook = Webhook::start(Reply::ok().max_age(60)).await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]).await;
    let mut options = options([hookd.addr()]);
    options.local_cache = false;
    let client = connected(options).await;

    assert_eq!(
        decided(client.auth_on_register(calls::auth_on_register("c1")).await),
        fresh_ok()
    );
    assert_eq!(
        decided(client.auth_on_register(calls::auth_on_register("c1")).await),
        Verdict {
            outcome: Outcome::Ok(None),
            source: Source::Hookd { cached: true },
            cache_ttl: None,
        }
    );
    assert_eq!(webhook.hits(), 1, "hookd's cache answered the repeat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locally_cached_publish_verdict_keeps_its_modifiers_but_not_the_payload_rewrite() {
    let modifiers = json!({"topic": "x/y", "payload": crate::harness::b64("rewritten")});
    let webhook = Webhook::start(Reply::ok_with(modifiers).max_age(60)).await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnPublish, webhook.url())]).await;
    let client = connected(options([hookd.addr()])).await;

    let fresh = client.auth_on_publish(calls::auth_on_publish("c1")).await;
    let Outcome::Ok(Some(Modifiers::Publish(fresh))) = fresh.outcome else {
        panic!("expected publish modifiers, got {fresh:?}");
    };
    assert_eq!(fresh.payload.as_deref(), Some(&b"rewritten"[..]));
    let cached = client.auth_on_publish(calls::auth_on_publish("c1")).await;
    assert_eq!(cached.source, Source::LocalCache);
    let Outcome::Ok(Some(Modifiers::Publish(cached))) = cached.outcome else {
        panic!("expected publish modifiers, got {cached:?}");
    };
    assert_eq!(cached.topic.as_deref(), Some("x/y"));
    assert_eq!(cached.payload, None, "a payload rewrite belongs to one message");
    assert_eq!(webhook.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_limit_fail_fast_answers_overloaded_at_once() {
    let webhook = Webhook::builder().held().start().await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]).await;
    let mut options = options([hookd.addr()]);
    options.max_in_flight = 2;
    options.overload = Overload::FailFast;
    options.default_timeout = Duration::from_secs(60);
    let client = connected(options).await;

    let held = spawn_registers(&client, "held", 2, Duration::from_secs(60));
    webhook.wait_for_hits(2).await;
    let third = within(
        "the overloaded verdict",
        client.auth_on_register(calls::auth_on_register("third")),
    )
    .await;
    assert_policy(&third, ErrorKind::Overloaded, &denied(ErrorKind::Overloaded));
    assert_eq!(webhook.hits(), 2, "the third call never left the client");

    webhook.release();
    for (_, verdict) in join_calls(held).await {
        assert_eq!(verdict, fresh_ok());
    }
    assert_eq!(
        client.auth_on_register(calls::auth_on_register("after")).await,
        fresh_ok(),
        "slots are given back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_limit_wait_holds_the_call_until_a_slot_frees() {
    let webhook = Webhook::builder().held().start().await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]).await;
    let mut options = options([hookd.addr()]);
    options.max_in_flight = 2;
    options.overload = Overload::Wait;
    let client = connected(options).await;

    let held = spawn_registers(&client, "held", 2, Duration::from_secs(60));
    webhook.wait_for_hits(2).await;
    // A short deadline: it passes while waiting for a slot.
    let late = within(
        "the timeout verdict",
        client.call_with_timeout(
            Args::AuthOnRegister(calls::auth_on_register("late")),
            Duration::from_millis(200),
        ),
    )
    .await;
    assert_policy(&late, ErrorKind::Timeout, &denied(ErrorKind::Timeout));
    // A long one: it gets a slot once the endpoint answers.
    let waiting = spawn_registers(&client, "waiting", 1, Duration::from_secs(60));
    webhook.release();
    for (_, verdict) in join_calls(held)
        .await
        .into_iter()
        .chain(join_calls(waiting).await)
    {
        assert_eq!(verdict, fresh_ok());
    }
    assert_eq!(webhook.hits(), 3, "the late call never left the client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_client_on_a_plain_thread_gets_the_same_verdict_as_the_async_client() {
    let webhook = Webhook::start(Reply::ok_with(json!({"username": "renamed"}))).await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]).await;
    let mut options = options([hookd.addr()]);
    options.local_cache = false;
    let client = connected(options.clone()).await;
    let expected = client.auth_on_register(calls::auth_on_register("c1")).await;
    match &expected.outcome {
        Outcome::Ok(Some(Modifiers::Register(m))) => assert_eq!(m.username.as_deref(), Some("renamed")),
        other => panic!("expected register modifiers, got {other:?}"),
    }

    let thread = std::thread::spawn(move || {
        let client = BlockingClient::connect(options).expect("valid client options");
        assert!(client.wait_connected(WAIT), "the blocking client connects");
        let verdict = client.call(Args::AuthOnRegister(calls::auth_on_register("c1")));
        let with_timeout = client.call_with_timeout(
            Args::AuthOnRegister(calls::auth_on_register("c2")),
            Duration::from_secs(5),
        );
        (verdict, with_timeout)
    });
    let (verdict, with_timeout) = within(
        "the blocking thread",
        tokio::task::spawn_blocking(move || thread.join()),
    )
    .await
    .expect("spawn_blocking does not panic")
    .expect("the blocking thread does not panic");
    assert_eq!(verdict, expected);
    assert_eq!(with_timeout, expected);
    assert_eq!(webhook.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_client_with_hookd_down_gets_the_policy_verdict() {
    let addr = refused_addr().await;
    let options = options([addr]).policy(Hook::AuthOnRegister, FailurePolicy::Next);
    let verdict = within(
        "the blocking thread",
        tokio::task::spawn_blocking(move || {
            let client = BlockingClient::connect(options).expect("valid client options");
            client.call(Args::AuthOnRegister(calls::auth_on_register("c1")))
        }),
    )
    .await
    .expect("the blocking call does not panic");
    assert_policy(&verdict, ErrorKind::Unavailable, &Outcome::Next);
}

/// A call through a typed method, boxed so calls of every hook fit in one list.
type TypedCall<'a> = Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>;

/// One call through each typed method, with the hook it is for.
fn every_typed_call<'a>(client: &'a Client, id: &str) -> Vec<(Hook, TypedCall<'a>)> {
    macro_rules! typed_calls {
        ($( $(#[doc = $doc:literal])* $variant:ident $snake:ident : $shape:ident { $($option:tt)* }, $style:ident, $cache:literal; )*) => {
            vec![$(
                (Hook::$variant, {
                    let Args::$variant(args) = calls::fixture(Hook::$variant, id) else {
                        panic!("the fixture of {} is its own message", Hook::$variant)
                    };
                    Box::pin(client.$snake(args)) as TypedCall<'a>
                }),
            )*]
        };
    }
    hookd_proto::for_each_hook!(typed_calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_typed_method_calls_its_own_hook() {
    let webhook = Webhook::start(Reply::ok()).await;
    let hookd = Hookd::with_webhooks(Hook::ALL.map(|hook| WebhookConfig::new(hook, webhook.url()))).await;
    let client = connected(options([hookd.addr()])).await;
    for (n, (hook, call)) in every_typed_call(&client, "c1").into_iter().enumerate() {
        let verdict = within(hook.name(), call).await;
        assert_eq!(verdict.source, Source::Hookd { cached: false }, "{}", hook.name());
        if hook.style() == HookStyle::Notify {
            assert_eq!(verdict.outcome, Outcome::Ack, "{}", hook.name());
        } else {
            assert!(
                matches!(verdict.outcome, Outcome::Ok(_)),
                "{}: {verdict:?}",
                hook.name()
            );
        }
        webhook.wait_for_hits(n + 1).await;
        assert_eq!(webhook.last_request().hook(), Some(hook.name()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_auth_and_chain_hooks_deny_and_notifications_ack_when_hookd_is_away() {
    let client = connect(options([refused_addr().await])).expect("valid client options");
    for (hook, call) in every_typed_call(&client, "c1") {
        let verdict = within(hook.name(), call).await;
        let expected = if hook.style() == HookStyle::Notify {
            Outcome::Ack
        } else {
            denied(ErrorKind::Unavailable)
        };
        assert_policy(&verdict, ErrorKind::Unavailable, &expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_for_all_hooks_applies_to_every_hook() {
    let options = options([refused_addr().await]).policy_for_all(FailurePolicy::Next);
    let client = connect(options).expect("valid client options");
    for (hook, call) in every_typed_call(&client, "c1") {
        let verdict = within(hook.name(), call).await;
        assert_eq!(
            verdict,
            Verdict {
                outcome: Outcome::Next,
                source: Source::Policy(ErrorKind::Unavailable),
                cache_ttl: None,
            },
            "{}",
            hook.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_a_practical_deadline_is_answered_by_hookd() {
    // "No deadline" spelled as the longest Duration, e.g. from a broker whose
    // hook has no timeout configured.
    let webhook = Webhook::start(Reply::ok()).await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]).await;
    let mut options = options([hookd.addr()]);
    options.default_timeout = Duration::MAX;
    let client = connected(options).await;
    let args = Args::AuthOnRegister(calls::auth_on_register("c1"));
    let calls = tokio::spawn({
        let client = client.clone();
        async move {
            (
                client.call_with_timeout(args, Duration::MAX).await,
                client.auth_on_register(calls::auth_on_register("c2")).await,
            )
        }
    });
    let (explicit, default) = within("the verdicts", calls)
        .await
        .unwrap_or_else(|e| panic!("a call with Duration::MAX as its deadline panicked: {e}"));
    assert_eq!(explicit, fresh_ok());
    assert_eq!(default, fresh_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_client_closes_its_streams() {
    let webhook = Webhook::start(Reply::ok()).await;
    let hookd =
        Hookd::start_with_registry(config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())])).await;
    let open_streams = || {
        hookd
            .metrics()
            .encode()
            .lines()
            .find_map(|line| line.strip_prefix("hookd_streams ").map(str::to_owned))
    };
    let client = connected(options([hookd.addr()])).await;
    let clone = client.clone();
    assert_eq!(
        client.auth_on_register(calls::auth_on_register("c1")).await,
        fresh_ok()
    );
    assert_eq!(open_streams().as_deref(), Some("1"));
    drop(client);
    assert_eq!(
        clone.auth_on_register(calls::auth_on_register("c2")).await,
        fresh_ok(),
        "a clone keeps the streams"
    );
    drop(clone);
    eventually(|| async { open_streams().as_deref() == Some("0") }, WAIT)
        .await
        .unwrap_or_else(|e| panic!("hookd still counts {:?} open streams: {e}", open_streams()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_may_be_given_as_an_http_uri() {
    let webhook = Webhook::start(Reply::ok()).await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]).await;
    let mut options = options([]);
    options.addresses = vec![format!("http://{}", hookd.addr())];
    let client = connected(options).await;
    assert_eq!(
        client.auth_on_register(calls::auth_on_register("c1")).await,
        fresh_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_addresses_or_capacity_is_refused_and_a_bad_address_is_unavailable() {
    assert!(matches!(
        connect(options([])),
        Err(hookd_bridge::BridgeError::NoAddress)
    ));
    let mut no_capacity = options([refused_addr().await]);
    no_capacity.max_in_flight = 0;
    assert!(matches!(
        connect(no_capacity),
        Err(hookd_bridge::BridgeError::NoCapacity)
    ));

    let mut bad = options([]);
    bad.addresses = vec!["not an address".into()];
    let client = connect(bad).expect("an address is only parsed when connecting");
    let verdict = within(
        "the policy verdict",
        client.auth_on_register(calls::auth_on_register("c1")),
    )
    .await;
    assert_policy(&verdict, ErrorKind::Unavailable, &denied(ErrorKind::Unavailable));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_client_sends_a_notification_in_the_background() {
    let webhook = Webhook::builder().held().start().await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::OnPublish, webhook.url())]).await;
    let options = options([hookd.addr()]);
    let sent = within(
        "the blocking thread",
        tokio::task::spawn_blocking(move || {
            let client = BlockingClient::connect(options).expect("valid client options");
            assert!(client.wait_connected(WAIT), "the blocking client connects");
            // Returns at once, though the endpoint holds every request.
            let sent = client.notify(Args::OnPublish(calls::on_publish("c1")));
            (sent, client)
        }),
    )
    .await
    .expect("the blocking thread does not panic");
    assert!(sent.0, "the notification was accepted");
    webhook.wait_for_hits(1).await;
    assert_eq!(webhook.last_request().hook(), Some("on_publish"));
    webhook.release();
    drop(sent);
}
