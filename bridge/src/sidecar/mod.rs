//! A vmq_webhooks-compatible sidecar: VerneMQ's own `vmq_webhooks` plugin
//! POSTs its hook calls to this small HTTP server on localhost, which sends
//! each one over the stream to hookd (through a [`Client`]) and answers in
//! vmq_webhooks' response format. A VerneMQ cluster points its webhooks at
//! the sidecar on each node, and all nodes share one hookd.
//!
//! - Any `POST` path; the hook comes from the `vernemq-hook` header (all 22
//!   names). [`request`] reads the JSON body into the typed call,
//!   [`response`] writes the verdict as the endpoint's answer, with
//!   `cache-control: max-age` when hookd marked it cacheable.
//! - Bad input (no or unknown `vernemq-hook`, a body that is not JSON, a
//!   missing field or one of the wrong type) is answered 400 with
//!   `{"error": "<what is wrong>"}`; VerneMQ logs any non-200 as an error,
//!   and for auth hooks rejects the action. Other methods get 405.
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

pub mod request;
pub mod response;

use std::{future::Future, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::{Client, Source};

/// The header vmq_webhooks names the hook in.
pub const HOOK_HEADER: &str = "vernemq-hook";

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

impl Default for SidecarOptions {
    fn default() -> Self {
        Self {
            base64_payload: true,
            timeout: Duration::from_secs(4),
            max_body_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why a call from VerneMQ was not understood (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The `vernemq-hook` header is absent.
    #[error("the `vernemq-hook` header is missing")]
    MissingHook,
    /// The `vernemq-hook` header names no hook vmq_webhooks knows.
    #[error("`vernemq-hook: {0}` is not one of vmq_webhooks' 22 hooks")]
    UnknownHook(String),
    /// The body is not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("the body is not a JSON object")]
    NotObject,
    /// A required member is absent.
    #[error("`{field}` is missing")]
    Missing {
        /// The member, e.g. `client_id` or `topics[1].qos`.
        field: String,
    },
    /// A member has the wrong type or value.
    #[error("`{field}` must be {expected}")]
    Invalid {
        /// The member, e.g. `qos` or `properties.p_user_property`.
        field: String,
        /// What it must be.
        expected: String,
    },
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
            match request::hook_from_name(name.trim()) {
                Some(hook) => hook,
                None => return bad_request(RequestError::UnknownHook(name.into_owned())),
            }
        }
    };
    let name = request::hook_name(hook);
    let args = match request::parse(hook, &body, shared.options.base64_payload) {
        Ok(args) => args,
        Err(e) => {
            warn!(hook = %name, error = %e, "bad call from VerneMQ");
            return bad_request(e);
        }
    };
    let verdict = shared
        .client
        .call_with_timeout(args, shared.options.timeout)
        .await;
    if let Source::Policy(kind) = verdict.source {
        warn!(hook = %name, ?kind, outcome = ?verdict.outcome, "hookd could not answer; failure policy applied");
    } else {
        debug!(hook = %name, source = ?verdict.source, "verdict");
    }
    let answer = response::answer(hook, &verdict, shared.options.base64_payload);
    let mut response = (answer.status, axum::Json(answer.body)).into_response();
    if let Some(secs) = answer.max_age
        && let Ok(value) = HeaderValue::from_str(&format!("max-age={secs}"))
    {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
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
