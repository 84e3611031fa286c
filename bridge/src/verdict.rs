//! What a broker gets back from a call: the outcome, and where it came from.

use std::time::Duration;

pub use hookd_proto::ErrorKind;
use hookd_proto::v1::{self as pb, ok::Modifiers};

/// A verdict as the broker should apply it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What to do.
    pub outcome: Outcome,
    /// Who decided.
    pub source: Source,
    /// How much longer this verdict may be reused for identical calls: the
    /// TTL hookd reported (`cache_ttl_secs`), or what is left of it for a
    /// local cache hit. `None` when the verdict must not be reused (local
    /// and policy verdicts, or hookd did not mark it cacheable).
    pub cache_ttl: Option<Duration>,
}

/// What the broker should do.
// Boxing the modifiers would cost an allocation per `ok` on the hot path;
// an outcome is built once per call and moved a few times.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Allow, applying the modifiers if any.
    Ok(Option<Modifiers>),
    /// No opinion.
    Next,
    /// Reject; the kind tells "denied" from "hookd unavailable".
    Error {
        /// Why.
        kind: ErrorKind,
        /// A human-readable reason.
        reason: String,
    },
    /// A notification was accepted.
    Ack,
}

/// Who produced a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// hookd answered (possibly from its own cache: `cached`).
    Hookd {
        /// hookd answered from its cache without calling a webhook.
        cached: bool,
    },
    /// The local cache answered, from an earlier verdict of hookd.
    LocalCache,
    /// hookd reported no endpoints for the hook, so the client answered `next`.
    NoEndpoints,
    /// hookd could not answer; the failure policy decided. The kind says why
    /// (unavailable, timeout or overloaded).
    Policy(ErrorKind),
}

impl Verdict {
    /// Converts hookd's protobuf verdict.
    pub(crate) fn from_proto(verdict: pb::Verdict) -> Self {
        let outcome = match verdict.outcome {
            Some(pb::verdict::Outcome::Ok(ok)) => Outcome::Ok(ok.modifiers),
            Some(pb::verdict::Outcome::Next(_)) => Outcome::Next,
            Some(pb::verdict::Outcome::Ack(_)) => Outcome::Ack,
            Some(pb::verdict::Outcome::Error(e)) => Outcome::Error {
                kind: ErrorKind::from_proto(e.kind),
                reason: e.reason,
            },
            None => Outcome::Error {
                kind: ErrorKind::InvalidResponse,
                reason: "hookd sent a verdict without an outcome".to_owned(),
            },
        };
        Verdict {
            outcome,
            source: Source::Hookd {
                cached: verdict.cached,
            },
            cache_ttl: verdict
                .cache_ttl_secs
                .map(|secs| Duration::from_secs(u64::from(secs))),
        }
    }
}
