//! Secrets stay secret at the most verbose log level: a broker's password, a
//! bearer token (right and wrong), a webhook's signing secret and the
//! credentials in its URL appear in no log line (hookd's and its libraries',
//! at TRACE) and no verdict reason, while hookd logs and refuses as usual.

use std::{
    io::Write,
    sync::{Arc, Mutex, PoisonError},
};

use hookd::{
    config::{AuthConfig, WebhookConfig},
    webhook::sign::Secrets,
};
use hookd_proto::v1::{AuthOnRegister, ErrorKind, hook_call::Hook as Args};

use crate::harness::{
    Hook, Scratch, assert_error, calls,
    service::{self, Hookd},
    webhook::refused_url,
    within,
};

const PASSWORD: &str = "correct-horse-battery-staple";
const TOKEN: &str = "tok-5e1f0c2a9b8d7e6f5a4b3c2d1e0f";
const WRONG_TOKEN: &str = "tok-guessed-guessed-guessed";
const SECRET_KEY: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const URL_PASSWORD: &str = "url-pass-7734";
const URL_TOKEN: &str = "query-token-9921";

/// Everything logged, at every level, by every thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_line_or_a_verdict_reason_at_trace_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    // nextest runs each test in its own process: this is its only subscriber.
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber of this process");

    let dir = Scratch::new();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("broker-1 {TOKEN}\n")).expect("write the tokens file");
    let refused = refused_url().await;
    let endpoint = refused.replacen("http://", &format!("http://user:{URL_PASSWORD}@"), 1)
        + &format!("?token={URL_TOKEN}");
    let mut webhook = WebhookConfig::new(Hook::AuthOnRegister, endpoint);
    webhook.secret = Secrets::new([format!("whsec_{SECRET_KEY}")]);
    let mut config = service::config([webhook]);
    config.server.auth = Some(AuthConfig { tokens_file: tokens });
    let hookd = Hookd::start(config).await;

    for token in [WRONG_TOKEN, TOKEN] {
        let mut request = tonic::Request::new(hookd_proto::v1::HookCall {
            id: 1,
            timeout_ms: Some(5_000),
            hook: Some(Args::AuthOnRegister(AuthOnRegister {
                password: Some(PASSWORD.as_bytes().to_vec()),
                ..calls::auth_on_register("redacted")
            })),
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().expect("ASCII"));
        let answer = within("a unary call", hookd.client().await.call(request)).await;
        match (token, answer) {
            (WRONG_TOKEN, Err(status)) => {
                assert_eq!(status.code(), tonic::Code::Unauthenticated);
                assert!(!status.message().contains(WRONG_TOKEN), "{status:?}");
            }
            (TOKEN, Ok(verdict)) => {
                let reason = assert_error(&verdict.into_inner(), ErrorKind::Unavailable);
                for secret in [URL_PASSWORD, URL_TOKEN, PASSWORD, SECRET_KEY] {
                    assert!(
                        !reason.contains(secret),
                        "the verdict reason shows a secret: {reason}"
                    );
                }
            }
            (token, answer) => panic!("unexpected answer with {token}: {answer:?}"),
        }
    }
    drop(hookd);

    let logs =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned();
    assert!(
        logs.contains("unauthenticated request refused"),
        "hookd logged the refusal"
    );
    assert!(logs.contains("TRACE"), "the most verbose level was on");
    for secret in [PASSWORD, TOKEN, WRONG_TOKEN, SECRET_KEY, URL_PASSWORD, URL_TOKEN] {
        let line = logs.lines().find(|line| line.contains(secret));
        assert!(line.is_none(), "a log line shows a secret: {line:?}");
    }
}
