//! Each way an endpoint can fail maps to one error kind, within its deadline,
//! and the same broker stream goes on answering the next call correctly.

use std::time::{Duration, Instant};

use hookd::config::WebhookConfig;
use hookd_proto::v1::{ErrorKind, HookCall};
use serde_json::json;

use crate::harness::{
    Hook, Rig, assert_error, assert_ok,
    calls::{self, IntoCall},
    service::Hookd,
    webhook::{Reply, Webhook, refused_url},
};

/// A `response_timeout` short enough to keep timeout tests quick.
const SHORT_TIMEOUT_MS: u64 = 300;

/// Sends an `auth_on_register` call to `rig` and asserts it fails with `kind`;
/// then makes the endpoint answer `ok` and asserts the same stream gets Ok.
async fn fails_then_recovers(rig: &Rig, kind: ErrorKind) -> String {
    let verdict = rig.broker.call(calls::auth_on_register("victim")).await;
    let reason = assert_error(&verdict, kind);
    rig.webhook.set_reply(Reply::ok());
    assert_ok(&rig.broker.call(calls::auth_on_register("next-one")).await);
    reason
}

/// [`fails_then_recovers`] on a fresh rig whose endpoint answers `reply`.
async fn answer_fails_with(reply: Reply, kind: ErrorKind) -> String {
    let rig = Rig::start(Hook::AuthOnRegister, reply).await;
    fails_then_recovers(&rig, kind).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_other_than_200_is_an_invalid_response() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok()).await;
    for status in [201, 404, 500, 503] {
        rig.webhook.set_reply(Reply::ok().status(status));
        let verdict = rig.broker.call(calls::auth_on_register("victim")).await;
        assert_error(&verdict, ErrorKind::InvalidResponse);
    }
    rig.webhook.set_reply(Reply::ok().status(502));
    fails_then_recovers(&rig, ErrorKind::InvalidResponse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_an_invalid_response_and_is_not_followed() {
    // vmq_webhooks (hackney) does not follow redirects: a 3xx is an answer
    // other than 200. Following it would send the call, credentials
    // included, to whatever the Location names.
    let elsewhere = Webhook::start(Reply::ok()).await;
    let rig = Rig::start(
        Hook::AuthOnRegister,
        Reply::ok().status(302).header("location", &elsewhere.url()),
    )
    .await;
    let verdict = rig.broker.call(calls::auth_on_register("victim")).await;
    let reason = assert_error(&verdict, ErrorKind::InvalidResponse);
    assert!(reason.contains("302"), "{reason}");
    assert_eq!(elsewhere.hits(), 0, "the redirect was followed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_is_an_invalid_response() {
    answer_fails_with(Reply::raw("<html>oops</html>"), ErrorKind::InvalidResponse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_result_is_an_invalid_response() {
    answer_fails_with(Reply::json(json!({"modifiers": {}})), ErrorKind::InvalidResponse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_of_the_wrong_type_or_an_unknown_word_is_an_invalid_response() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok()).await;
    for result in [
        json!(42),
        json!("error"),
        json!("OK"),
        json!(true),
        json!(["ok"]),
        json!(null),
    ] {
        rig.webhook.set_reply(Reply::json(json!({"result": result})));
        let verdict = rig.broker.call(calls::auth_on_register("victim")).await;
        assert_error(&verdict, ErrorKind::InvalidResponse);
    }
    rig.webhook.set_reply(Reply::json(json!({"result": "error"})));
    fails_then_recovers(&rig, ErrorKind::InvalidResponse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_modifier_is_an_invalid_response() {
    let reply = Reply::ok_with(json!({"flux_capacitor": 88}));
    answer_fails_with(reply, ErrorKind::InvalidResponse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modifier_of_the_wrong_type_is_an_invalid_response() {
    let rig = Rig::start(Hook::AuthOnRegister, Reply::ok()).await;
    for modifiers in [
        json!({"max_message_size": "big"}),
        json!({"allow_publish": "yes"}),
    ] {
        rig.webhook.set_reply(Reply::ok_with(modifiers));
        let verdict = rig.broker.call(calls::auth_on_register("victim")).await;
        assert_error(&verdict, ErrorKind::InvalidResponse);
    }
    rig.webhook.set_reply(Reply::ok_with(json!({"username": 7})));
    fails_then_recovers(&rig, ErrorKind::InvalidResponse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mountpoint_modifier_without_client_id_is_an_invalid_response() {
    answer_fails_with(
        Reply::ok_with(json!({"mountpoint": "m"})),
        ErrorKind::InvalidResponse,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_modifier_outside_auth_on_publish_m5_allow_list_is_an_invalid_response() {
    let modifiers = json!({"properties": {"p_session_expiry_interval": 60}});
    let rig = Rig::start(Hook::AuthOnPublishM5, Reply::ok_with(modifiers)).await;
    let verdict = rig.broker.call(calls::auth_on_publish_m5("pub-5")).await;
    assert_error(&verdict, ErrorKind::InvalidResponse);
    rig.webhook.set_reply(Reply::ok());
    assert_ok(&rig.broker.call(calls::auth_on_publish_m5("pub-6")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_on_register_denied_when_endpoint_times_out() {
    let slow = Reply::ok().after(Duration::from_secs(5));
    let rig = Rig::start_with(Hook::AuthOnRegister, slow, |w| {
        w.response_timeout = SHORT_TIMEOUT_MS
    })
    .await;
    let started = Instant::now();
    fails_then_recovers(&rig, ErrorKind::Timeout).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_dribbling_past_the_response_timeout_is_a_timeout() {
    // Headers arrive at once; the 15-byte body would take 3 s to arrive.
    let dribbling = Reply::ok().dribbled(Duration::from_millis(200));
    let rig = Rig::start_with(Hook::AuthOnRegister, dribbling, |w| {
        w.response_timeout = SHORT_TIMEOUT_MS
    })
    .await;
    let started = Instant::now();
    let verdict = rig.broker.call(calls::auth_on_register("victim")).await;
    let took = started.elapsed();
    assert_error(&verdict, ErrorKind::Timeout);
    assert!(
        took < Duration::from_millis(2000),
        "the whole body is bounded, took {took:?}"
    );
    rig.webhook.set_reply(Reply::ok());
    assert_ok(&rig.broker.call(calls::auth_on_register("next-one")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_deadline_cuts_a_slow_endpoint_short() {
    // The endpoint's own timeout is the default 5 s; the broker only waits 300 ms.
    let slow = Reply::ok().after(Duration::from_secs(8));
    let rig = Rig::start(Hook::AuthOnRegister, slow).await;
    let call = HookCall {
        timeout_ms: Some(300),
        ..calls::auth_on_register("in-a-hurry").into_call(900)
    };
    let started = Instant::now();
    let verdict = rig.broker.send(call).await.verdict().await;
    assert_eq!(verdict.id, 900);
    assert_error(&verdict, ErrorKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    rig.webhook.set_reply(Reply::ok());
    assert_ok(&rig.broker.call(calls::auth_on_register("next-one")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_unavailable_and_the_stream_goes_on() {
    let working = Webhook::start(Reply::ok()).await;
    let hookd = Hookd::with_webhooks([
        WebhookConfig::new(Hook::AuthOnRegister, refused_url().await),
        WebhookConfig::new(Hook::AuthOnPublish, working.url()),
    ])
    .await;
    let broker = hookd.broker().await;
    let verdict = broker.call(calls::auth_on_register("victim")).await;
    assert_error(&verdict, ErrorKind::Unavailable);
    assert_ok(&broker.call(calls::auth_on_publish("next-one")).await);
    assert_error(
        &broker.call(calls::auth_on_register("again")).await,
        ErrorKind::Unavailable,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_size_cap_is_an_invalid_response() {
    let rig = capped_at_1024(ok_padded_by(4096)).await;
    fails_then_recovers(&rig, ErrorKind::InvalidResponse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_just_under_the_size_cap_is_accepted() {
    let rig = capped_at_1024(ok_padded_by(900)).await;
    assert_ok(&rig.broker.call(calls::auth_on_register("c1")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_size_cap_is_an_invalid_response() {
    // No content-length to check up front: the cap must hold while reading.
    let padded = format!("{{\"result\":\"ok\"}}{}", " ".repeat(4096));
    let reply = Reply::raw(padded)
        .header("content-type", "application/json")
        .streamed(256, Duration::ZERO);
    let rig = Rig::start_configured(
        Hook::AuthOnRegister,
        reply,
        |_| {},
        |c| c.http.max_response_bytes = 1024,
    )
    .await;
    fails_then_recovers(&rig, ErrorKind::InvalidResponse).await;
}

/// Valid JSON (an ok padded with `spaces` of whitespace): only its size can be wrong.
fn ok_padded_by(spaces: usize) -> Reply {
    let padded = format!("{{\"result\":\"ok\"}}{}", " ".repeat(spaces));
    Reply::raw(padded).header("content-type", "application/json")
}

/// An `auth_on_register` rig whose hookd accepts response bodies of at most 1 KiB.
async fn capped_at_1024(reply: Reply) -> Rig {
    Rig::start_configured(
        Hook::AuthOnRegister,
        reply,
        |_| {},
        |c| c.http.max_response_bytes = 1024,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_s_credentials_never_reach_the_broker_in_a_verdict_reason() {
    let down = refused_url()
        .await
        .replace("http://", "http://hookuser:s3cret-pass@")
        + "?token=s3cret-token";
    let webhook = Webhook::start(Reply::ok().status(500)).await;
    let failing =
        format!("{}?token=s3cret-token", webhook.url()).replace("http://", "http://hookuser:s3cret-pass@");
    for (endpoint, kind) in [
        (down, ErrorKind::Unavailable),
        (failing, ErrorKind::InvalidResponse),
    ] {
        let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, endpoint)]).await;
        let verdict = hookd.broker().await.call(calls::auth_on_register("c1")).await;
        let reason = assert_error(&verdict, kind);
        assert!(
            !reason.contains("s3cret") && !reason.contains("hookuser"),
            "the reason shows the endpoint without its secrets: {reason}"
        );
        assert!(
            reason.contains("***@127.0.0.1:"),
            "the endpoint is still recognisable: {reason}"
        );
    }
    assert_eq!(webhook.hits(), 1, "the endpoint was called, with its credentials");
}
