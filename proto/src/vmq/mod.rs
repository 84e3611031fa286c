//! The vmq_webhooks JSON codec, in both directions: one encoder and one
//! decoder for each of the request body and the answer, shared by hookd (which
//! encodes requests and decodes answers for its endpoints) and the sidecar
//! (which decodes VerneMQ's requests and encodes hookd's verdicts as answers).
//!
//! The format, in short (the full field list per hook and every quirk is in
//! `docs/vmq-webhooks.md` of this repository):
//! - a `POST` with `content-type: application/json` and the hook's name in the
//!   [`HOOK_HEADER`] (`vernemq-hook`);
//! - the body is a flat JSON object: `mountpoint` + `client_id`, `username` /
//!   `password` as strings or `null`, payloads base64 unless the endpoint
//!   opted out ([`PayloadEncoding`]), MQTT 5 properties as a `properties`
//!   object of `p_*` keys;
//! - only a 200 answer counts; for chain hooks its `result` is `"ok"` (with
//!   `modifiers`), `"next"` or `{"error": …}`; notification answers only need
//!   to be JSON;
//! - `cache-control: max-age=<secs>` on an `ok` of the auth hooks makes it
//!   reusable ([`max_age`], [`cache_control`]).
//!
//! Layout: [`request`] (the body of a call), [`answer`] (the answer).

pub mod answer;
pub mod request;

use std::time::Duration;

pub use answer::{decode_answer, encode_answer};
pub use request::{decode_request, encode_request};

/// The header vmq_webhooks names the hook in.
pub const HOOK_HEADER: &str = "vernemq-hook";

/// How one endpoint wants payloads encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadEncoding {
    /// Base64-encode payloads and `client_cert` (vmq's default) instead of
    /// sending raw text; also how `payload` modifiers are read and written.
    pub base64: bool,
    /// Leave the payload out of `auth_on_publish*` bodies (vmq's `no_payload`).
    pub omit_for_auth_on_publish: bool,
}

/// Why a request body is not a valid vmq_webhooks call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The `vernemq-hook` header is absent.
    #[error("the `vernemq-hook` header is missing")]
    MissingHook,
    /// The `vernemq-hook` header names no hook of the table.
    #[error("`vernemq-hook: {0}` is not one of vmq_webhooks' hooks")]
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

/// Why a 200 answer is not a valid vmq_webhooks answer for its hook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The body is not JSON.
    #[error("response is not JSON: {0}")]
    NotJson(String),
    /// The JSON is not a valid answer for the hook.
    #[error("invalid response: {0}")]
    Invalid(String),
}

impl PayloadEncoding {
    /// vmq_webhooks' defaults: base64 payloads, sent with every hook.
    pub const VMQ_DEFAULT: PayloadEncoding = PayloadEncoding {
        base64: true,
        omit_for_auth_on_publish: false,
    };
}

/// Reads `max-age` from a `cache-control` value. Tolerant of other
/// directives (`max-age=300, private`); `no-cache`, `no-store`, `max-age=0`
/// or a malformed number mean *do not cache*.
pub fn max_age(cache_control: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return None;
        }
        if let Some(value) = lower.strip_prefix("max-age=") {
            max_age = value.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age.filter(|&secs| secs > 0).map(Duration::from_secs)
}

/// The `cache-control` value that lets VerneMQ reuse an answer for `ttl`, in
/// whole seconds; `None` when less than a second is left.
pub fn cache_control(ttl: Duration) -> Option<String> {
    let secs = ttl.as_secs();
    (secs > 0).then(|| format!("max-age={secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_is_parsed_tolerantly() {
        assert_eq!(max_age("max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age("max-age=45, private"), Some(Duration::from_secs(45)));
        assert_eq!(max_age("private, Max-Age=5"), Some(Duration::from_secs(5)));
        assert_eq!(max_age("max-age=0"), None);
        assert_eq!(max_age("max-age=60, no-cache"), None);
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("max-age="), None);
        assert_eq!(max_age("max-age=abc"), None);
    }
}

/// Strategies and a runner shared by the property tests of [`request`] and
/// [`answer`].
#[cfg(test)]
pub(crate) mod strategies {
    use bytes::Bytes;
    use proptest::{
        collection::vec,
        prelude::*,
        test_runner::{Config, TestCaseResult, TestRunner},
    };

    use crate::{
        call::{PayloadFormat, RetainHandling, UserProperty},
        hook::Hook,
    };

    /// Runs the property `test` on `cases` values of `strategy` for `hook`,
    /// panicking with the hook and the (shrunk) failing value. One runner per
    /// hook, so that every hook gets its cases; failures are not persisted
    /// to a regressions file.
    pub(crate) fn check<S: Strategy>(
        hook: Hook,
        cases: u32,
        strategy: S,
        test: impl Fn(S::Value) -> TestCaseResult,
    ) {
        let mut runner = TestRunner::new(Config {
            failure_persistence: None,
            ..Config::with_cases(cases)
        });
        if let Err(failure) = runner.run(&strategy, test) {
            panic!("{hook}: {failure}");
        }
    }

    /// Any text of up to `max` characters, control characters and NUL
    /// included.
    pub(crate) fn text(max: usize) -> impl Strategy<Value = String> + Clone {
        vec(any::<char>(), 0..=max).prop_map(String::from_iter)
    }

    /// Text of `min..=max` characters, none of them in `forbidden` (each is
    /// replaced by `_`, so nothing is rejected).
    pub(crate) fn text_without(
        forbidden: &'static [char],
        min: usize,
        max: usize,
    ) -> impl Strategy<Value = String> + Clone {
        vec(any::<char>(), min..=max).prop_map(move |chars| {
            chars
                .into_iter()
                .map(|c| if forbidden.contains(&c) { '_' } else { c })
                .collect()
        })
    }

    /// Text of at least one character.
    pub(crate) fn non_empty_text(max: usize) -> impl Strategy<Value = String> + Clone {
        text_without(&[], 1, max)
    }

    /// Any bytes, up to `max`.
    pub(crate) fn binary(max: usize) -> impl Strategy<Value = Bytes> + Clone {
        vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
    }

    /// Bytes that vmq can carry as JSON text: UTF-8.
    pub(crate) fn utf8_bytes(max: usize) -> impl Strategy<Value = Bytes> + Clone {
        text(max).prop_map(Bytes::from)
    }

    /// A payload (or `client_cert`) for an endpoint with `base64` on: any
    /// bytes with base64, only UTF-8 raw, since raw payloads are sent as JSON
    /// text (the vmq format cannot carry other bytes raw).
    pub(crate) fn payload(base64: bool) -> BoxedStrategy<Bytes> {
        if base64 {
            binary(24).boxed()
        } else {
            utf8_bytes(24).boxed()
        }
    }

    pub(crate) fn user_properties() -> impl Strategy<Value = Vec<UserProperty>> + Clone {
        vec(
            (text(6), text(6)).prop_map(|(key, value)| UserProperty { key, value }),
            0..3,
        )
    }

    pub(crate) fn payload_format() -> impl Strategy<Value = PayloadFormat> + Clone {
        prop_oneof![Just(PayloadFormat::Undefined), Just(PayloadFormat::Utf8)]
    }

    pub(crate) fn retain_handling() -> impl Strategy<Value = RetainHandling> + Clone {
        prop_oneof![
            Just(RetainHandling::SendRetain),
            Just(RetainHandling::SendIfNewSub),
            Just(RetainHandling::DontSend),
        ]
    }
}
