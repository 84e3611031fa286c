//! A broker session's life and hookd's own: Welcome lists the active hooks,
//! hooks without webhooks answer locally, the unary RPC mirrors the stream,
//! endpoints are called at their exact URL, and shutdown ends open streams
//! (`shutdown.rs` tells the rest of the shutdown story).

use std::{collections::BTreeSet, time::Duration};

use hookd::config::WebhookConfig;
use hookd_proto::v1::{self as pb, ErrorKind, HookCall};
use serde_json::json;

use crate::harness::{
    Hook, Rig, assert_ack, assert_error, assert_next, assert_ok,
    broker::StreamEnd,
    calls::{self, IntoCall, proto_hook},
    register_modifiers,
    service::Hookd,
    webhook::{Reply, Webhook},
    within,
};

/// The hooks a Welcome names, as a set.
fn active(hooks: &[i32]) -> BTreeSet<i32> {
    hooks.iter().copied().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_lists_exactly_the_hooks_that_have_webhooks() {
    let (a, b) = (
        Webhook::start(Reply::ok()).await,
        Webhook::start(Reply::ok()).await,
    );
    let hookd = Hookd::with_webhooks([
        WebhookConfig::new(Hook::AuthOnRegister, a.url()),
        WebhookConfig::new(Hook::AuthOnRegister, b.url()),
        WebhookConfig::new(Hook::OnClientGone, a.url()),
    ])
    .await;
    let broker = hookd.broker().await;
    let expected = active(&[
        proto_hook(Hook::AuthOnRegister).into(),
        proto_hook(Hook::OnClientGone).into(),
    ]);
    assert_eq!(active(&broker.welcome().active_hooks), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_without_webhooks_answer_next_for_chains_and_ack_for_notifications() {
    let rig = Rig::start(Hook::AuthOnPublish, Reply::error("not me")).await;
    assert!(rig.broker.welcome().active_hooks == vec![i32::from(pb::Hook::AuthOnPublish)]);
    assert_next(&rig.broker.call(calls::auth_on_register("c1")).await);
    assert_next(&rig.broker.call(calls::on_deliver("c1")).await);
    assert_ack(&rig.broker.call(calls::on_client_gone("c1")).await);
    assert_eq!(rig.webhook.hits(), 0, "another hook's webhook is never called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unary_call_returns_the_verdict_with_its_id() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok_with(json!({"username": "u2"}))).await;
    let mut client = rig.hookd.client().await;
    let response = within(
        "a unary verdict",
        client.call(calls::auth_on_register("c1").into_call(42)),
    )
    .await;
    let verdict = response.expect("a valid unary call succeeds").into_inner();
    assert_eq!(verdict.id, 42);
    assert_eq!(register_modifiers(&verdict).username.as_deref(), Some("u2"));
    rig.webhook
        .last_request()
        .assert_hook_call("auth_on_register", &calls::auth_on_register_json("c1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unary_call_honours_the_calls_own_deadline() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok().after(Duration::from_secs(8))).await;
    let mut client = rig.hookd.client().await;
    let call = HookCall {
        timeout_ms: Some(300),
        ..calls::auth_on_register("c1").into_call(5)
    };
    let verdict = within("a unary verdict", client.call(call))
        .await
        .expect("a timed-out call is still a verdict")
        .into_inner();
    assert_error(&verdict, ErrorKind::Timeout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unary_call_answers_timeout_before_the_grpc_deadline_expires() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok().after(Duration::from_secs(8))).await;
    let mut client = rig.hookd.client().await;
    let mut request = tonic::Request::new(calls::auth_on_register("c1").into_call(6));
    request.set_timeout(Duration::from_millis(400));
    let verdict = within("a unary verdict", client.call(request))
        .await
        .expect("hookd answers with a verdict before the client's deadline, not a bare status")
        .into_inner();
    let reason = assert_error(&verdict, ErrorKind::Timeout);
    assert!(reason.contains("deadline"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_is_called_at_its_exact_url_query_included() {
    let webhook = Webhook::builder().path("/hooks/auth?tenant=a&v=2").start().await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]).await;
    assert_ok(&hookd.broker().await.call(calls::auth_on_register("c1")).await);
    let request = webhook.last_request();
    let target = request.uri.path_and_query().map(|p| p.as_str());
    assert_eq!(target, Some("/hooks/auth?tenant=a&v=2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_hookd_ends_open_broker_streams_and_run_returns() {
    let Rig {
        broker,
        hookd,
        webhook,
    } = Rig::start(Hook::AuthOnRegister, Reply::ok()).await;
    assert_ok(&broker.call(calls::auth_on_register("c1")).await);
    within("hookd to stop", hookd.stop())
        .await
        .expect("hookd::run returns Ok on shutdown");
    let end = broker.closed().await;
    assert!(
        !matches!(&end, StreamEnd::Failed(s) if s.code() == tonic::Code::Internal),
        "the stream ends cleanly or with a shutdown status, got {end:?}"
    );
    drop(webhook);
}

/// The proto values of `hooks`, as a set.
fn proto_set(hooks: &[Hook]) -> BTreeSet<i32> {
    hooks.iter().map(|h| i32::from(proto_hook(*h))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_and_deregistering_at_run_time_tells_open_streams_hooks_changed() {
    let auth = Webhook::start(Reply::ok()).await;
    let config = crate::harness::service::config([WebhookConfig::new(Hook::AuthOnRegister, auth.url())]);
    let hookd = Hookd::start_with_registry(config).await;
    let broker = hookd.broker().await;

    let events = Webhook::start(Reply::ok()).await;
    let registration = WebhookConfig::new(Hook::OnPublish, events.url());
    hookd
        .registry()
        .register(&registration)
        .expect("a new registration");
    let changed = broker.next_hooks_changed().await;
    assert_eq!(
        active(&changed.active_hooks),
        proto_set(&[Hook::AuthOnRegister, Hook::OnPublish])
    );
    assert_ack(&broker.call(calls::on_publish("c1")).await);
    events.wait_for_hits(1).await;

    hookd
        .registry()
        .deregister(Hook::AuthOnRegister, &auth.url())
        .expect("it was registered");
    let changed = broker.next_hooks_changed().await;
    assert_eq!(active(&changed.active_hooks), proto_set(&[Hook::OnPublish]));
    assert_next(&broker.call(calls::auth_on_register("c1")).await);
    assert_eq!(auth.hits(), 0, "a deregistered endpoint is not called");

    let latecomer = hookd.broker().await;
    assert_eq!(
        active(&latecomer.welcome().active_hooks),
        proto_set(&[Hook::OnPublish])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_registered_at_run_time_joins_the_end_of_the_chain() {
    let first = Webhook::start(Reply::next()).await;
    let config = crate::harness::service::config([WebhookConfig::new(Hook::AuthOnRegister, first.url())]);
    let hookd = Hookd::start_with_registry(config).await;
    let broker = hookd.broker().await;
    assert_next(&broker.call(calls::auth_on_register("c1")).await);

    let second = Webhook::start(Reply::ok_with(json!({"username": "second"}))).await;
    let registration = WebhookConfig::new(Hook::AuthOnRegister, second.url());
    hookd
        .registry()
        .register(&registration)
        .expect("a new registration");
    let verdict = broker.call(calls::auth_on_register("c2")).await;
    assert_eq!(register_modifiers(&verdict).username.as_deref(), Some("second"));
    assert_eq!((first.hits(), second.hits()), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_hookd_answers_calls_still_in_flight_when_its_grace_period_ends_as_overloaded() {
    let webhook = Webhook::builder().held().start().await;
    let mut config =
        crate::harness::service::config([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]);
    config.server.shutdown_grace_ms = 200;
    let hookd = Hookd::start(config).await;
    let broker = hookd.broker().await;
    let pending = broker.send(calls::auth_on_register("c1").into_call(11)).await;
    webhook.wait_for_hits(1).await;
    within("hookd to stop", hookd.stop())
        .await
        .expect("hookd::run returns Ok on shutdown");
    let verdict = pending.verdict().await;
    assert_eq!(verdict.id, 11);
    assert_error(&verdict, ErrorKind::Overloaded);
    broker.closed().await;
}
