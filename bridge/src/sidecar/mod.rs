//! A vmq_webhooks-compatible sidecar: VerneMQ's own `vmq_webhooks` plugin
//! POSTs its hook calls to this small HTTP server on localhost, which sends
//! each one over the stream to hookd (through a [`Client`]) and answers in
//! vmq_webhooks' response format. A VerneMQ cluster points its webhooks at
//! the sidecar on each node, and all nodes share one hookd.
//!
//! - Any `POST` path; the hook comes from the `vernemq-hook` header (every
//!   name of the hook table). The JSON is the shared vmq_webhooks codec's
//!   (`hookd_proto::vmq`): it decodes the body into the typed call and
//!   encodes the verdict as the endpoint's answer; this module is the HTTP
//!   glue, adding `cache-control: max-age` when hookd marked the verdict
//!   cacheable.
//! - Bad input (no or unknown `vernemq-hook`, a body that is not JSON, a
//!   missing field or one of the wrong type) is answered 400 with
//!   `{"error": "<what is wrong>"}`; VerneMQ logs any non-200 as an error,
//!   and for auth hooks rejects the action. Other methods get 405. A call
//!   that decodes but is out of range (an empty client id, QoS 3) is answered
//!   as hookd would answer it: `{"result":{"error":"invalid_call: …"}}`.
//! - Notification hooks get `{}` (vmq ignores the body but wants JSON); only
//!   an error there (a `deny` failure policy) becomes a 503, so that VerneMQ
//!   logs and counts it.
//! - When hookd cannot answer in time, the client's failure policy decides,
//!   and the answer says why (`{"result":{"error":"unavailable: …"}}`).
//!
//! ```no_run
//! use hookd_bridge::{connect, NodeIdentity, Options, sidecar::{self, SidecarOptions}};
//!
//! # async fn example() -> anyhow::Result<()> {
//! let identity = NodeIdentity { node_id: "vernemq@10.0.0.7".into(), broker_kind: "vernemq".into(), broker_version: "sidecar".into() };
//! let client = connect(Options::new(["10.0.0.2:50051"], identity))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8888").await?;
//! sidecar::serve(listener, client, SidecarOptions::default(), async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

use std::{future::Future, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
pub use hookd_proto::vmq::RequestError;
use hookd_proto::{
    Hook, HookCall, HookStyle,
    convert::{call_to_proto, modifiers_from_proto},
    verdict::{self as domain, Allow},
    vmq::{self, HOOK_HEADER, PayloadEncoding},
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::{Client, ErrorKind, Outcome, Source, Verdict};

/// How the sidecar reads calls and answers them.
#[derive(Debug, Clone)]
pub struct SidecarOptions {
    /// Payloads (and `client_cert`) arrive base64-encoded and `payload`
    /// modifiers are answered base64-encoded: vmq_webhooks' default
    /// (`base64encode = on`). Must match the webhooks' setting in VerneMQ.
    pub base64_payload: bool,
    /// The deadline of each call to hookd. Keep it below the webhooks'
    /// `response_timeout` in VerneMQ (5000 ms by default), so that the
    /// failure policy answers before VerneMQ gives up. Default 4 s.
    pub timeout: Duration,
    /// The largest request body accepted, in bytes; a larger one is
    /// answered 413. Default 64 MiB (a base64 payload is a third larger than
    /// the message).
    pub max_body_bytes: usize,
}

impl SidecarOptions {
    /// How payloads in calls and answers are encoded.
    pub fn encoding(&self) -> PayloadEncoding {
        PayloadEncoding {
            base64: self.base64_payload,
            omit_for_auth_on_publish: false,
        }
    }
}

impl Default for SidecarOptions {
    fn default() -> Self {
        Self {
            base64_payload: true,
            timeout: Duration::from_secs(4),
            max_body_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why the sidecar stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// The HTTP server failed (accepting on the listener).
    #[error("HTTP server: {0}")]
    Serve(#[from] std::io::Error),
}

struct Shared {
    client: Client,
    options: SidecarOptions,
}

/// The sidecar's HTTP routes: every path, `POST` only.
pub fn router(client: Client, options: SidecarOptions) -> Router {
    let limit = options.max_body_bytes;
    Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Arc::new(Shared { client, options }))
}

/// Serves the sidecar on `listener` until `shutdown` completes, then lets
/// the calls in progress finish.
pub async fn serve(
    listener: TcpListener,
    client: Client,
    options: SidecarOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SidecarError> {
    axum::serve(listener, router(client, options))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            axum::Json(json!({"error": "vmq_webhooks calls are POST requests"})),
        )
            .into_response();
    }
    let hook = match headers.get(HOOK_HEADER) {
        None => return bad_request(RequestError::MissingHook),
        Some(value) => {
            let name = String::from_utf8_lossy(value.as_bytes());
            match Hook::from_name(name.trim()) {
                Ok(hook) => hook,
                Err(_) => return bad_request(RequestError::UnknownHook(name.into_owned())),
            }
        }
    };
    let encoding = shared.options.encoding();
    let args = match vmq::decode_request(hook, &body, encoding) {
        Ok(args) => args,
        Err(e) => {
            warn!(%hook, error = %e, "bad call from VerneMQ");
            return bad_request(e);
        }
    };
    let call = match HookCall::new(hook, args) {
        Ok(call) => call,
        Err(invalid) => {
            // Answered here as hookd would answer it: no round trip.
            warn!(%hook, error = %invalid, "invalid call from VerneMQ");
            let refused = domain::Verdict::error(ErrorKind::InvalidCall, invalid.to_string());
            return respond(answer_for(hook, &refused, None, encoding));
        }
    };
    let verdict = shared
        .client
        .call_with_timeout(call_to_proto(call), shared.options.timeout)
        .await;
    if let Source::Policy(kind) = verdict.source {
        warn!(%hook, ?kind, outcome = ?verdict.outcome, "hookd could not answer; failure policy applied");
    } else {
        debug!(%hook, source = ?verdict.source, "verdict");
    }
    respond(answer(hook, &verdict, encoding))
}

fn respond(answer: Answer) -> Response {
    let mut response = (answer.status, axum::Json(answer.body)).into_response();
    if let Some(value) = answer.cache_control.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// The HTTP answer to one vmq_webhooks call.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// 200, or 503 for a notification the failure policy rejected.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Value,
    /// `cache-control`, when VerneMQ may cache the answer.
    pub cache_control: Option<String>,
}

/// The answer for `verdict` on `hook`: the codec's body, the status, and
/// `cache-control: max-age` for an `ok` of a cacheable hook that hookd
/// marked cacheable, so VerneMQ's own webhook cache keeps it too.
pub fn answer(hook: Hook, verdict: &Verdict, encoding: PayloadEncoding) -> Answer {
    let domain = match &verdict.outcome {
        Outcome::Ok(modifiers) => match modifiers.clone().map(modifiers_from_proto).transpose() {
            Ok(modifiers) => domain::Verdict::Ok(Allow {
                modifiers,
                cache: None,
            }),
            // Never pass on something VerneMQ would misapply.
            Err(invalid) => domain::Verdict::error(ErrorKind::InvalidResponse, invalid.to_string()),
        },
        Outcome::Next => domain::Verdict::Next,
        Outcome::Ack => domain::Verdict::Ack,
        Outcome::Error { kind, reason } => domain::Verdict::error(*kind, reason.clone()),
    };
    answer_for(hook, &domain, verdict.cache_ttl, encoding)
}

/// The answer for a domain verdict that may be reused for `cache_ttl`.
fn answer_for(
    hook: Hook,
    verdict: &domain::Verdict,
    cache_ttl: Option<Duration>,
    encoding: PayloadEncoding,
) -> Answer {
    let failed_notification =
        hook.style() == HookStyle::Notify && matches!(verdict, domain::Verdict::Error(_));
    let cacheable = hook.is_cacheable() && matches!(verdict, domain::Verdict::Ok(_));
    Answer {
        status: if failed_notification {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        },
        body: vmq::encode_answer(hook, verdict, encoding),
        cache_control: cache_ttl.filter(|_| cacheable).and_then(vmq::cache_control),
    }
}

fn bad_request(error: RequestError) -> Response {
    if matches!(error, RequestError::MissingHook | RequestError::UnknownHook(_)) {
        warn!(error = %error, "bad call from VerneMQ");
    }
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": error.to_string()})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hookd_proto::v1::{self as pb, ok::Modifiers};

    use super::*;

    const B64: PayloadEncoding = PayloadEncoding::VMQ_DEFAULT;
    const RAW: PayloadEncoding = PayloadEncoding {
        base64: false,
        omit_for_auth_on_publish: false,
    };

    fn hookd(outcome: Outcome, ttl: Option<u64>) -> Verdict {
        Verdict {
            outcome,
            source: Source::Hookd { cached: false },
            cache_ttl: ttl.map(Duration::from_secs),
        }
    }

    fn body(hook: Hook, modifiers: Modifiers) -> Value {
        answer(hook, &hookd(Outcome::Ok(Some(modifiers)), None), B64).body
    }

    #[test]
    fn plain_results() {
        let ok = answer(Hook::AuthOnRegister, &hookd(Outcome::Ok(None), None), B64);
        assert_eq!((ok.status, ok.body), (StatusCode::OK, json!({"result":"ok"})));
        let next = answer(Hook::AuthOnPublish, &hookd(Outcome::Next, None), B64);
        assert_eq!(next.body, json!({"result":"next"}));
        let denied = Outcome::Error {
            kind: ErrorKind::Denied,
            reason: "not_allowed".into(),
        };
        assert_eq!(
            answer(Hook::AuthOnRegister, &hookd(denied, None), B64).body,
            json!({"result":{"error":"not_allowed"}})
        );
        let down = Verdict {
            outcome: Outcome::Error {
                kind: ErrorKind::Unavailable,
                reason: "hookd could not answer".into(),
            },
            source: Source::Policy(ErrorKind::Unavailable),
            cache_ttl: None,
        };
        assert_eq!(
            answer(Hook::AuthOnRegister, &down, B64).body,
            json!({"result":{"error":"unavailable: hookd could not answer"}})
        );
        let notified = answer(Hook::OnPublish, &hookd(Outcome::Ack, None), B64);
        assert_eq!((notified.status, notified.body), (StatusCode::OK, json!({})));
        assert_eq!(
            answer(Hook::OnPublish, &down, B64).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn max_age_only_for_cacheable_ok_answers() {
        let ok = hookd(Outcome::Ok(None), Some(30));
        assert_eq!(
            answer(Hook::AuthOnSubscribeM5, &ok, B64).cache_control.as_deref(),
            Some("max-age=30")
        );
        assert_eq!(answer(Hook::OnDeliver, &ok, B64).cache_control, None);
        assert_eq!(
            answer(Hook::AuthOnRegister, &hookd(Outcome::Next, Some(30)), B64).cache_control,
            None
        );
        assert_eq!(
            answer(Hook::AuthOnRegister, &hookd(Outcome::Ok(None), Some(0)), B64).cache_control,
            None
        );
    }

    #[test]
    fn v3_topics_go_top_level_and_m5_topics_into_modifiers() {
        let grants = pb::SubscribeModifiers {
            topics: vec![pb::SubscriptionGrant {
                topic: "a/b".into(),
                qos: 128,
                ..Default::default()
            }],
        };
        assert_eq!(
            body(Hook::AuthOnSubscribe, Modifiers::Subscribe(grants.clone())),
            json!({"result":"ok","topics":[{"topic":"a/b","qos":128}]})
        );
        assert_eq!(
            body(Hook::AuthOnSubscribeM5, Modifiers::Subscribe(grants)),
            json!({"result":"ok","modifiers":{"topics":[{"topic":"a/b","qos":128}]}})
        );
        let filters = pb::UnsubscribeModifiers {
            topics: vec!["x/#".into()],
        };
        assert_eq!(
            body(Hook::OnUnsubscribe, Modifiers::Unsubscribe(filters.clone())),
            json!({"result":"ok","topics":["x/#"]})
        );
        assert_eq!(
            body(Hook::OnUnsubscribeM5, Modifiers::Unsubscribe(filters)),
            json!({"result":"ok","modifiers":{"topics":["x/#"]}})
        );
    }

    #[test]
    fn register_publish_and_auth_modifiers_use_vmq_names() {
        let register = pb::RegisterModifiers {
            max_message_size: Some(1024),
            mountpoint: Some("m".into()),
            client_id: Some("c".into()),
            user_property: vec![pb::UserProperty {
                key: "k1".into(),
                value: "v1".into(),
            }],
            ..Default::default()
        };
        assert_eq!(
            body(Hook::AuthOnRegisterM5, Modifiers::Register(register.clone())),
            json!({"result":"ok","modifiers":{"max_message_size":1024,"mountpoint":"m","client_id":"c",
                "properties":{"p_user_property":[{"key":"azE=","val":"djE="}]}}})
        );
        let half = pb::RegisterModifiers {
            client_id: None,
            ..register
        };
        let answer_half = body(Hook::AuthOnRegister, Modifiers::Register(half));
        assert!(
            answer_half["result"]["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("invalid_response"))
        );

        let publish = pb::PublishModifiers {
            topic: Some("t".into()),
            payload: Some(b"hi".to_vec()),
            properties: Some(pb::Properties {
                payload_format_indicator: pb::PayloadFormat::Utf8 as i32,
                correlation_data: Some(b"corr".to_vec()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            body(Hook::AuthOnPublishM5, Modifiers::Publish(publish.clone())),
            json!({"result":"ok","modifiers":{"topic":"t","payload":"aGk=","properties":{
                "p_payload_format_indicator":"utf8","p_correlation_data":"corr"}}})
        );
        let raw = answer(
            Hook::AuthOnPublish,
            &hookd(Outcome::Ok(Some(Modifiers::Publish(publish))), None),
            RAW,
        );
        assert_eq!(
            raw.body,
            json!({"result":"ok","modifiers":{"topic":"t","payload":"hi"}})
        );

        let auth = pb::AuthModifiers {
            authentication_method: Some("SCRAM".into()),
            authentication_data: Some(vec![0, 1]),
            reason_code: Some(24),
        };
        assert_eq!(
            body(Hook::OnAuthM5, Modifiers::Auth(auth)),
            json!({"result":"ok","modifiers":{"properties":{"p_authentication_method":"SCRAM",
                "p_authentication_data":"AAE="},"reason_code":24}})
        );
    }

    #[test]
    fn modifiers_of_the_wrong_kind_are_not_passed_on() {
        let wrong = body(Hook::AuthOnPublish, Modifiers::Auth(pb::AuthModifiers::default()));
        assert!(
            wrong["result"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("wrong kind"))
        );
    }
}
