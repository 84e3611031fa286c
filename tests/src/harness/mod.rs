//! The test rig: real webhooks, real hookd, a real broker stream, and the small
//! helpers tests share (bounded waits, verdict assertions, base64).
//!
//! [`Rig`] wires the common case: one webhook for one hook, hookd configured with
//! it, and a broker session that has already said Hello.

pub mod broker;
pub mod calls;
pub mod killable;
pub mod mosquitto;
pub mod peer;
pub mod pki;
pub mod process;
pub mod service;
pub mod sidecar;
pub mod webhook;

use std::{future::Future, future::IntoFuture, path::Path, path::PathBuf, time::Duration};

use base64::Engine;
use hookd::{Config, config::WebhookConfig};
pub use hookd_proto::Hook;
use hookd_proto::v1 as pb;
use pb::{ErrorKind, Verdict, ok, verdict::Outcome};

use self::{broker::Broker, service::Hookd, webhook::Reply, webhook::Webhook};

/// How long any single await in a test may take before the test fails. Longer
/// than every deadline a test configures, shorter than a hung CI job.
pub const WAIT: Duration = Duration::from_secs(10);

/// How often [`eventually`] re-checks its condition.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(10);

/// One webhook registered for one hook, hookd configured with it, and a broker
/// session on hookd that has already received its Welcome.
///
/// Fields drop in order: the broker stream closes first, then hookd stops,
/// then the webhook goes away.
pub struct Rig {
    /// The broker session.
    pub broker: Broker,
    /// The running hookd.
    pub hookd: Hookd,
    /// The one webhook.
    pub webhook: Webhook,
}

/// A condition that did not become true within its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotYet(pub Duration);

impl Rig {
    /// A webhook answering `reply` to every request, registered for `hook` with
    /// vmq_webhooks' defaults.
    pub async fn start(hook: Hook, reply: Reply) -> Self {
        Self::start_with(hook, reply, |_| {}).await
    }

    /// Like [`Rig::start`], with the webhook's registration adjusted by `tweak`
    /// (e.g. `base64_payload = false`, a short `response_timeout`).
    pub async fn start_with(hook: Hook, reply: Reply, tweak: impl FnOnce(&mut WebhookConfig)) -> Self {
        Self::start_configured(hook, reply, tweak, |_| {}).await
    }

    /// Like [`Rig::start_with`], with hookd's whole configuration adjusted by
    /// `configure` after the webhook is registered (e.g. `http.max_response_bytes`).
    pub async fn start_configured(
        hook: Hook,
        reply: Reply,
        tweak: impl FnOnce(&mut WebhookConfig),
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let webhook = Webhook::start(reply).await;
        let mut registration = WebhookConfig::new(hook, webhook.url());
        tweak(&mut registration);
        let mut config = service::config([registration]);
        configure(&mut config);
        let hookd = Hookd::start(config).await;
        let broker = hookd.broker().await;
        Self {
            broker,
            hookd,
            webhook,
        }
    }
}

impl std::fmt::Display for NotYet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "condition still false after {:?}", self.0)
    }
}

impl std::error::Error for NotYet {}

/// Polls `check` every few milliseconds until it returns true, for at most
/// `limit`. Use it to wait for something that happens in the background (a
/// notification reaching its endpoint, a cache entry expiring) instead of sleeping.
pub async fn eventually<F, Fut>(mut check: F, limit: Duration) -> Result<(), NotYet>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(NotYet(limit));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// A connected gRPC channel to `addr` (`what` is there, for the panic).
pub async fn channel_to(addr: std::net::SocketAddr, what: &str) -> tonic::transport::Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("a socket address makes a valid URI")
        .connect_timeout(WAIT);
    within(&format!("a gRPC connection to {what}"), endpoint.connect())
        .await
        .unwrap_or_else(|e| panic!("{what} accepts gRPC connections: {e}"))
}

/// Awaits `fut` for at most [`WAIT`]; panics naming `what` if it takes longer.
pub async fn within<F: IntoFuture>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Runs `cargo build --locked` with `args` in the workspace (the test run's
/// cargo, profile `debug`, target directory) and returns the path of
/// `artifact` in the target directory. Tests that need a binary or a plugin
/// build it this way, once per run, so it is never stale.
pub async fn cargo_build(args: &[&str], artifact: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = tokio::process::Command::new(cargo)
        .arg("build")
        .arg("--locked")
        .args(args)
        .current_dir(&workspace)
        .status()
        .await
        .expect("cargo runs");
    assert!(status.success(), "cargo build {args:?} failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace.join("target"));
    let path = target.join("debug").join(artifact);
    assert!(path.exists(), "no {artifact} at {}", path.display());
    path
}

/// A fresh directory under the system's temp dir, removed (with what is in
/// it) when dropped: where a test's hookd keeps its outbox store.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates a new, empty scratch directory.
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hookd-tests-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory in the temp dir");
        Self(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The outbox store file in it.
    pub fn store(&self) -> PathBuf {
        self.0.join("outbox.db")
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Standard base64 with padding, as vmq_webhooks encodes payloads.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Asserts the verdict is `Ok` and returns its modifiers (if any).
#[track_caller]
pub fn assert_ok(verdict: &Verdict) -> Option<ok::Modifiers> {
    match &verdict.outcome {
        Some(Outcome::Ok(ok)) => ok.modifiers.clone(),
        other => panic!("expected Ok for call {}, got {other:?}", verdict.id),
    }
}

/// Asserts the verdict is `Next`.
#[track_caller]
pub fn assert_next(verdict: &Verdict) {
    assert!(
        matches!(verdict.outcome, Some(Outcome::Next(_))),
        "expected Next for call {}, got {:?}",
        verdict.id,
        verdict.outcome
    );
}

/// Asserts the verdict is `Ack`.
#[track_caller]
pub fn assert_ack(verdict: &Verdict) {
    assert!(
        matches!(verdict.outcome, Some(Outcome::Ack(_))),
        "expected Ack for call {}, got {:?}",
        verdict.id,
        verdict.outcome
    );
}

/// Asserts the verdict is an `Error` of `kind`, and returns its reason.
#[track_caller]
pub fn assert_error(verdict: &Verdict, kind: ErrorKind) -> String {
    match &verdict.outcome {
        Some(Outcome::Error(error)) => {
            assert_eq!(
                ErrorKind::try_from(error.kind),
                Ok(kind),
                "call {} failed with the wrong kind (reason: {:?})",
                verdict.id,
                error.reason
            );
            error.reason.clone()
        }
        other => panic!("expected Error {kind:?} for call {}, got {other:?}", verdict.id),
    }
}

/// Asserts the verdict is `Ok` with register modifiers, and returns them.
#[track_caller]
pub fn register_modifiers(verdict: &Verdict) -> pb::RegisterModifiers {
    match assert_ok(verdict) {
        Some(ok::Modifiers::Register(m)) => m,
        other => panic!("expected register modifiers, got {other:?}"),
    }
}

/// Asserts the verdict is `Ok` with publish modifiers, and returns them.
#[track_caller]
pub fn publish_modifiers(verdict: &Verdict) -> pb::PublishModifiers {
    match assert_ok(verdict) {
        Some(ok::Modifiers::Publish(m)) => m,
        other => panic!("expected publish modifiers, got {other:?}"),
    }
}

/// Asserts the verdict is `Ok` with subscribe modifiers, and returns them.
#[track_caller]
pub fn subscribe_modifiers(verdict: &Verdict) -> pb::SubscribeModifiers {
    match assert_ok(verdict) {
        Some(ok::Modifiers::Subscribe(m)) => m,
        other => panic!("expected subscribe modifiers, got {other:?}"),
    }
}

/// Asserts the verdict is `Ok` with unsubscribe modifiers, and returns them.
#[track_caller]
pub fn unsubscribe_modifiers(verdict: &Verdict) -> pb::UnsubscribeModifiers {
    match assert_ok(verdict) {
        Some(ok::Modifiers::Unsubscribe(m)) => m,
        other => panic!("expected unsubscribe modifiers, got {other:?}"),
    }
}

/// Asserts the verdict is `Ok` with deliver modifiers, and returns them.
#[track_caller]
pub fn deliver_modifiers(verdict: &Verdict) -> pb::DeliverModifiers {
    match assert_ok(verdict) {
        Some(ok::Modifiers::Deliver(m)) => m,
        other => panic!("expected deliver modifiers, got {other:?}"),
    }
}

/// Asserts the verdict is `Ok` with auth modifiers, and returns them.
#[track_caller]
pub fn auth_modifiers(verdict: &Verdict) -> pb::AuthModifiers {
    match assert_ok(verdict) {
        Some(ok::Modifiers::Auth(m)) => m,
        other => panic!("expected auth modifiers, got {other:?}"),
    }
}

/// Treats an empty `Properties` message like an absent one, so a modifier
/// comparison does not hinge on how hookd spells "no properties".
pub fn no_empty_properties(properties: Option<pb::Properties>) -> Option<pb::Properties> {
    properties.filter(|p| *p != pb::Properties::default())
}

/// Asserts how a chain hook maps its one endpoint's plain answers, sending a
/// fresh call built by `args` (given a distinct client id) for each: `ok` →
/// Ok without modifiers, `next` → Next, `{"error": "not_allowed"}` → DENIED
/// "not_allowed", `{"result": {}}` → DENIED "unknown_error".
pub async fn assert_chain_answers<A: calls::IntoCall>(rig: &Rig, args: impl Fn(&str) -> A) {
    rig.webhook.set_reply(Reply::ok());
    let verdict = rig.broker.call(args("answer-ok")).await;
    assert_eq!(assert_ok(&verdict), None, "a bare ok carries no modifiers");
    assert!(!verdict.cached);
    assert_eq!(verdict.cache_ttl_secs, None, "no cache-control, no ttl");

    rig.webhook.set_reply(Reply::next());
    assert_next(&rig.broker.call(args("answer-next")).await);

    rig.webhook.set_reply(Reply::error("not_allowed"));
    let verdict = rig.broker.call(args("answer-error")).await;
    assert_eq!(assert_error(&verdict, ErrorKind::Denied), "not_allowed");

    rig.webhook
        .set_reply(Reply::json(serde_json::json!({"result": {}})));
    let verdict = rig.broker.call(args("answer-empty-error")).await;
    assert_eq!(assert_error(&verdict, ErrorKind::Denied), "unknown_error");
    assert_eq!(rig.webhook.hits(), 4, "each call reached the endpoint once");
}

/// Registers one webhook for the notification `hook` that answers with an
/// error (answers to notifications are ignored), sends `args`, and asserts the
/// broker gets Ack and the webhook gets exactly `expected` as `hook`'s JSON.
pub async fn assert_notification(hook: Hook, args: impl calls::IntoCall, expected: serde_json::Value) {
    let rig = Rig::start(hook, Reply::error("ignored")).await;
    assert_ack(&rig.broker.call(args).await);
    rig.webhook.wait_for_hits(1).await;
    rig.webhook
        .last_request()
        .assert_hook_call(hook.name(), &expected);
    assert_eq!(rig.webhook.hits(), 1, "one notification, one request");
}

/// reqwest is built with TLS but no provider of its own (hookd configures
/// its clients itself, on `ring`): a test's plain client needs the process
/// default. Installing it twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
