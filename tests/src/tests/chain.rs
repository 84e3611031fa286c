//! Several endpoints on one chain hook, called in registration order: the
//! first `ok` wins, `next` passes on, any failure stops the chain, and all
//! `next` is Next. Endpoints after the deciding one are never called.

use hookd::config::WebhookConfig;
use hookd_proto::v1::ErrorKind;
use serde_json::json;

use crate::harness::{
    Hook, assert_error, assert_next, calls, register_modifiers,
    service::Hookd,
    webhook::{Reply, Webhook, refused_url},
};

/// Three webhooks registered for `auth_on_register` in this order, and hookd.
struct Chain {
    hookd: Hookd,
    endpoints: [Webhook; 3],
}

impl Chain {
    async fn of(replies: [Reply; 3]) -> Self {
        let [a, b, c] = replies;
        let endpoints = [
            Webhook::start(a).await,
            Webhook::start(b).await,
            Webhook::start(c).await,
        ];
        let registrations = endpoints
            .iter()
            .map(|w| WebhookConfig::new(Hook::AuthOnRegister, w.url()));
        let hookd = Hookd::with_webhooks(registrations).await;
        Self { hookd, endpoints }
    }

    fn hits(&self) -> [usize; 3] {
        self.endpoints.each_ref().map(Webhook::hits)
    }
}

/// An ok answer that names which endpoint gave it.
fn ok_from(name: &str) -> Reply {
    Reply::ok_with(json!({"username": name}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_ok_wins_and_later_endpoints_are_not_called() {
    let chain = Chain::of([ok_from("first"), ok_from("second"), ok_from("third")]).await;
    let broker = chain.hookd.broker().await;
    let verdict = broker.call(calls::auth_on_register("c1")).await;
    assert_eq!(register_modifiers(&verdict).username.as_deref(), Some("first"));
    assert_eq!(chain.hits(), [1, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_passes_the_call_to_the_next_endpoint() {
    let chain = Chain::of([Reply::next(), ok_from("second"), ok_from("third")]).await;
    let broker = chain.hookd.broker().await;
    let verdict = broker.call(calls::auth_on_register("c1")).await;
    assert_eq!(register_modifiers(&verdict).username.as_deref(), Some("second"));
    assert_eq!(chain.hits(), [1, 1, 0]);
    let bodies: Vec<_> = chain.endpoints[..2]
        .iter()
        .map(|w| w.last_request().body)
        .collect();
    assert_eq!(
        bodies[0], bodies[1],
        "every endpoint in the chain gets the same call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_answer_stops_the_chain_and_later_endpoints_are_not_called() {
    let chain = Chain::of([Reply::next(), Reply::error("banned"), ok_from("third")]).await;
    let broker = chain.hookd.broker().await;
    let verdict = broker.call(calls::auth_on_register("c1")).await;
    assert_eq!(assert_error(&verdict, ErrorKind::Denied), "banned");
    assert_eq!(chain.hits(), [1, 1, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_answer_stops_the_chain_instead_of_falling_through() {
    let chain = Chain::of([Reply::ok().status(500), ok_from("second"), ok_from("third")]).await;
    let broker = chain.hookd.broker().await;
    let verdict = broker.call(calls::auth_on_register("c1")).await;
    assert_error(&verdict, ErrorKind::InvalidResponse);
    assert_eq!(chain.hits(), [1, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_stops_the_chain_instead_of_falling_through() {
    let fallback = Webhook::start(ok_from("fallback")).await;
    let registrations = [
        WebhookConfig::new(Hook::AuthOnRegister, refused_url().await),
        WebhookConfig::new(Hook::AuthOnRegister, fallback.url()),
    ];
    let hookd = Hookd::with_webhooks(registrations).await;
    let verdict = hookd.broker().await.call(calls::auth_on_register("c1")).await;
    assert_error(&verdict, ErrorKind::Unavailable);
    assert_eq!(fallback.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_next_answers_give_next() {
    let chain = Chain::of([Reply::next(), Reply::next(), Reply::next()]).await;
    let broker = chain.hookd.broker().await;
    assert_next(&broker.call(calls::auth_on_register("c1")).await);
    assert_eq!(chain.hits(), [1, 1, 1]);
}
