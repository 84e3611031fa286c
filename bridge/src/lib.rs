//! `hookd-bridge`: where MQTT brokers meet hookd.
//!
//! A broker's hooks run on its hot path (every CONNECT, every PUBLISH), so
//! this client is built to be fast, never to hang, and to behave predictably
//! when hookd is away:
//!
//! - [`connect`] returns a [`Client`] that keeps **one bidirectional stream per
//!   hookd address** and multiplexes every call over it, many in flight.
//! - Every call has a deadline (the default from [`Options`], or per call);
//!   past it, or when hookd is unreachable, the hook's [`FailurePolicy`]
//!   answers (`Deny` for auth hooks by default), and the [`Verdict`] says
//!   [`Source::Policy`] with *unavailable*, *timeout* or *overloaded*, so a
//!   broker can say "server unavailable" rather than "bad credentials".
//! - A bounded in-flight limit: callers wait for a slot, or fail fast
//!   ([`Overload`]).
//! - Broken streams reconnect by themselves with exponential backoff and
//!   jitter; calls that were in flight are sent again on the next stream if
//!   their deadline allows.
//! - Several addresses: calls are spread over the open streams; when one
//!   hookd dies the others take every call, and it rejoins when it returns.
//! - Hooks hookd reports as having no endpoints are answered `next` locally;
//!   verdicts hookd marks cacheable are reused locally for their TTL.
//! - [`BlockingClient`] wraps it all for synchronous callers.
//!
//! ```no_run
//! use std::time::Duration;
//! use hookd_bridge::{connect, NodeIdentity, Options, Outcome, pb};
//!
//! # async fn example() -> Result<(), hookd_bridge::BridgeError> {
//! let identity = NodeIdentity { node_id: "broker-1".into(), broker_kind: "mybroker".into(), broker_version: "1.0".into() };
//! let mut options = Options::new(["127.0.0.1:50051"], identity);
//! options.default_timeout = Duration::from_millis(500);
//! let client = connect(options)?;
//!
//! let verdict = client
//!     .auth_on_register(pb::AuthOnRegister {
//!         peer: Some(pb::Peer { addr: "10.0.0.5".into(), port: 53211 }),
//!         client_id: "sensor-17".into(),
//!         username: Some("joe".into()),
//!         password: Some(b"secret".to_vec()),
//!         ..Default::default()
//!     })
//!     .await;
//! match verdict.outcome {
//!     Outcome::Ok(modifiers) => println!("welcome ({modifiers:?}), decided by {:?}", verdict.source),
//!     Outcome::Next => println!("no opinion: use the broker's default"),
//!     Outcome::Error { kind, reason } => println!("refused: {kind:?} {reason}"),
//!     Outcome::Ack => unreachable!("auth hooks are never acknowledged"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Layout: [`options`] (configuration and policies), [`client`] (the call
//! path), `connection` (one address: stream, reconnect, multiplexing),
//! `cache` (local verdict cache), [`verdict`] (what a call returns),
//! [`blocking`] (the synchronous façade),
//! `sidecar` (feature `sidecar`, on by default: a vmq_webhooks-compatible
//! HTTP front for VerneMQ, and the `hookd-sidecar` binary).

#![forbid(unsafe_code)]

pub mod blocking;
mod cache;
pub mod client;
mod connection;
pub mod options;
#[cfg(feature = "sidecar")]
pub mod sidecar;
pub mod verdict;

/// The `hookd.v1` messages: the typed arguments of every hook and the modifiers.
pub use hookd_proto::v1 as pb;

pub use blocking::BlockingClient;
pub use client::{BridgeError, Client, connect};
pub use hookd_proto::{Hook, HookStyle};
pub use options::{FailurePolicy, NodeIdentity, Options, Overload, TlsOptions};
pub use verdict::{ErrorKind, Outcome, Source, Verdict};
