//! Malformed input never breaks hookd: a bad call gets an INVALID_CALL verdict
//! (or INVALID_ARGUMENT on the unary RPC) without reaching any endpoint, and the
//! stream keeps serving; a stream that does not start with Hello is refused.

use hookd::config::WebhookConfig;
use hookd_proto::v1::{
    AuthOnPublish, AuthOnRegister, AuthOnRegisterM5, AuthOnSubscribe, BrokerFrame, ErrorKind, HookCall,
    OnClientGone, OnUnsubscribe, Verdict,
};
use tonic::Code;

use crate::harness::{
    Hook, assert_ack, assert_error, assert_ok,
    broker::{RawStream, StreamEnd, call_frame, hello, hello_frame},
    calls::{self, IntoCall},
    service::Hookd,
    webhook::Webhook,
    within,
};

/// Hooks the malformed calls below are for, all answered `ok` by one webhook.
const HOOKS: [Hook; 6] = [
    Hook::AuthOnRegister,
    Hook::AuthOnRegisterM5,
    Hook::AuthOnPublish,
    Hook::AuthOnSubscribe,
    Hook::OnUnsubscribe,
    Hook::OnClientGone,
];

/// hookd with one `ok` webhook registered for every hook in [`HOOKS`].
async fn hookd_accepting_everything() -> (Hookd, Webhook) {
    let webhook = Webhook::builder().start().await;
    let registrations = HOOKS.map(|hook| WebhookConfig::new(hook, webhook.url()));
    (Hookd::with_webhooks(registrations).await, webhook)
}

/// One call per way the contract says arguments can be invalid, with ids from 500.
fn invalid_calls() -> Vec<(&'static str, HookCall)> {
    let cases = [
        (
            "no hook",
            HookCall {
                id: 0,
                timeout_ms: None,
                hook: None,
            },
        ),
        ("empty client_id", calls::auth_on_register("").into_call(0)),
        (
            "qos 3",
            AuthOnPublish {
                qos: 3,
                ..calls::auth_on_publish("c")
            }
            .into_call(0),
        ),
        (
            "empty topic",
            AuthOnPublish {
                topic: String::new(),
                ..calls::auth_on_publish("c")
            }
            .into_call(0),
        ),
        (
            "no topics",
            AuthOnSubscribe {
                topics: vec![],
                ..calls::auth_on_subscribe("c")
            }
            .into_call(0),
        ),
        (
            "no unsubscribe topics",
            OnUnsubscribe {
                topics: vec![],
                ..calls::on_unsubscribe("c")
            }
            .into_call(0),
        ),
        (
            "notification with empty client_id",
            OnClientGone {
                client_id: String::new(),
                ..calls::on_client_gone("c")
            }
            .into_call(0),
        ),
    ];
    cases
        .into_iter()
        .zip(500..)
        .map(|((what, call), id)| (what, HookCall { id, ..call }))
        .collect()
}

#[track_caller]
fn assert_invalid_call(what: &str, id: u64, verdict: &Verdict) {
    assert_eq!(verdict.id, id, "{what}: the verdict answers the malformed call");
    let reason = assert_error(verdict, ErrorKind::InvalidCall);
    assert!(!reason.is_empty(), "{what}: the reason says what is wrong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_calls_get_invalid_call_verdicts_and_reach_no_endpoint() {
    let (hookd, webhook) = hookd_accepting_everything().await;
    let broker = hookd.broker().await;
    for (what, call) in invalid_calls() {
        let id = call.id;
        let verdict = broker.send(call).await.verdict().await;
        assert_invalid_call(what, id, &verdict);
    }
    assert_eq!(webhook.hits(), 0, "no malformed call reached an endpoint");
    assert_ok(&broker.call(calls::auth_on_register("fine")).await);
    assert_eq!(webhook.hits(), 1, "the stream still serves good calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt5_call_without_properties_is_a_call_with_none() {
    let (hookd, webhook) = hookd_accepting_everything().await;
    let broker = hookd.broker().await;
    let call = AuthOnRegisterM5 {
        properties: None,
        ..calls::auth_on_register_m5("c")
    };
    assert_ok(&broker.call(call).await);
    let request = webhook.last_request();
    assert_eq!(request.hook(), Some("auth_on_register_m5"));
    assert_eq!(
        request.body["properties"],
        serde_json::json!({}),
        "vmq sends `{{}}` for no properties"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_id_in_flight_gets_no_verdict_and_the_original_keeps_its_own() {
    let webhook = Webhook::builder().held().start().await;
    let hookd = Hookd::with_webhooks([WebhookConfig::new(Hook::AuthOnRegister, webhook.url())]).await;
    let broker = hookd.broker().await;
    let original = broker.send(calls::auth_on_register("first").into_call(7)).await;
    webhook.wait_for_hits(1).await;
    broker
        .send_frame(call_frame(calls::auth_on_register("second").into_call(7)))
        .await;
    // Frames are read in order: once this is answered, so is the duplicate.
    assert_ack(&broker.call(calls::on_client_gone("marker")).await);
    webhook.release();
    // Any verdict for the duplicate would have reached this waiter first.
    assert_ok(&original.verdict().await);
    assert!(broker.unexpected_verdicts().is_empty());
    assert_eq!(webhook.hits(), 1, "the duplicate never reached the endpoint");
    assert_eq!(webhook.last_request().body["client_id"], "first");
}

/// Opens a stream whose first frame is `first`, and returns the status it ends with.
async fn status_of_stream_starting_with(hookd: &Hookd, first: BrokerFrame) -> tonic::Status {
    let mut stream = match RawStream::open(hookd.client().await, first).await {
        Ok(stream) => stream,
        Err(status) => return status,
    };
    match stream.next_frame().await {
        Err(status) => status,
        Ok(frame) => panic!("hookd must refuse the stream, it sent {frame:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_starts_with_a_call_is_refused_with_invalid_argument() {
    let (hookd, webhook) = hookd_accepting_everything().await;
    let first = call_frame(calls::auth_on_register("eager").into_call(1));
    let status = status_of_stream_starting_with(&hookd, first).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(webhook.hits(), 0);
    assert_ok(&hookd.broker().await.call(calls::auth_on_register("polite")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_starts_with_an_empty_frame_is_refused_with_invalid_argument() {
    let (hookd, _webhook) = hookd_accepting_everything().await;
    let status = status_of_stream_starting_with(&hookd, BrokerFrame { frame: None }).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_with_invalid_arguments_fail_with_invalid_argument() {
    let (hookd, webhook) = hookd_accepting_everything().await;
    let mut client = hookd.client().await;
    for (what, call) in invalid_calls() {
        let result = within("a unary verdict", client.call(call)).await;
        let status = result.expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    }
    assert_eq!(webhook.hits(), 0);
    let good = AuthOnRegister {
        ..calls::auth_on_register("fine")
    }
    .into_call(3);
    let verdict = within("a unary verdict", client.call(good))
        .await
        .expect("a valid call succeeds");
    assert_ok(verdict.get_ref());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_hello_ends_the_stream_with_invalid_argument() {
    // Hello is "the first frame, and only the first": a repeat is a protocol
    // error, not a call, so hookd ends that stream (and only that stream).
    let (hookd, _webhook) = hookd_accepting_everything().await;
    let (confused, bystander) = (hookd.broker().await, hookd.broker().await);
    confused.send_frame(hello_frame(hello())).await;
    match confused.closed().await {
        StreamEnd::Failed(status) => assert_eq!(status.code(), Code::InvalidArgument, "{status:?}"),
        StreamEnd::Finished => panic!("the stream must end with INVALID_ARGUMENT"),
    }
    assert_ok(&bystander.call(calls::auth_on_register("fine")).await);
}
