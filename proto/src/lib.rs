//! `hookd-proto`: hookd's vocabulary, shared by the server, the broker-side
//! client, the vmq_webhooks sidecar and the Mosquitto plugin.
//!
//! Everything a component needs to know about hooks, calls and verdicts lives
//! here once, so that a hook is spelled in one table and a wire format has one
//! codec:
//!
//! - [`hook`]: the hook table ([`for_each_hook!`]) and the [`Hook`] enum
//!   generated from it: names, chain or notification, cacheable, argument
//!   shape, metric index.
//! - [`call`]: the domain types of a call ([`HookCall`], its argument shapes),
//!   checked on construction; [`verdict`]: the domain answer ([`Verdict`],
//!   typed modifiers, the one [`ErrorKind`]).
//! - [`v1`]: the generated `hookd.v1` gRPC contract (`hookd/v1/hookd.proto`,
//!   and the operators' `Admin` service in `hookd/v1/admin.proto`;
//!   compiled by protox in `build.rs`, so no system `protoc` is needed), and
//!   [`FILE_DESCRIPTOR_SET`] for server reflection.
//! - [`convert`]: protobuf ⇄ domain, one conversion per direction.
//! - [`frame`], [`server`]: the server's view of a stream, which decodes each
//!   call itself so one bad call costs only that call.
//! - `cache_ttl` (feature `cache`): the expiry policy of the verdict caches.
//! - `vmq` (feature `vmq`): the vmq_webhooks JSON codec in both directions,
//!   for requests and answers. The Mosquitto plugin builds without it.
//! - `events`, `payload` (feature `events`): RMQTT's and NanoMQ's event
//!   bodies (encode only) and the payload encodings (plain, base64, base62)
//!   of a webhook's `payload_encoding`.
//! - [`topic`]: MQTT topic filters and matching, for webhooks' `topics` rules.
//!
//! # Adding a hook
//! A notification hook whose arguments fit an existing shape takes four places,
//! and the compiler refuses each omission:
//! 1. a row in the table in `src/hook.rs` (`for_each_hook!`);
//! 2. its message in `hookd/v1/hookd.proto`;
//! 3. its arm in `HookCall.hook` of the proto;
//! 4. its value in `enum Hook` of the proto (a test also refuses an enum value
//!    without a row).
//!
//! Everything else follows from the row: the enum, `Hook::ALL`, parsing, the
//! conversions, the metric slots, the client's typed method, the vmq codec
//! (which goes by shape) and the end-to-end harness's fixture for it (built
//! from its shape, `tests/src/harness/calls.rs`); the tests that run every
//! hook run it too. A new shape adds its struct to [`call`], an arm to the
//! `args_message!` macro in [`convert`], its JSON to the `vmq` codec and its
//! fixture in the harness. A decision hook with modifiers of a new kind adds a
//! [`verdict::Modifiers`] variant, its protobuf message and `Ok` arm, their
//! conversions in [`convert`] (two matches the compiler checks), and its JSON in
//! `vmq::answer` (decode and encode).

#[cfg(feature = "cache")]
pub mod cache_ttl;
pub mod call;
pub mod convert;
#[cfg(feature = "events")]
pub mod events;
pub mod frame;
pub mod hook;
#[cfg(feature = "events")]
pub mod payload;
pub mod topic;
pub mod verdict;
#[cfg(feature = "vmq")]
pub mod vmq;

pub use call::{HookArgs, HookCall, InvalidCall};
pub use hook::{Hook, HookStyle, Shape, UnknownHook};
pub use verdict::{ErrorKind, Verdict};

/// The `hookd.v1` package: messages, `hook_service_client` and `admin_client`.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("hookd.v1");
}

/// The server side of `hookd.v1.HookService` (`hook_service_server`), whose
/// `Stream` reads [`frame::RawBrokerFrame`]s so that hookd decodes each call
/// itself, and of `hookd.v1.Admin` (`admin_server`); the messages are those
/// of [`v1`].
#[allow(missing_docs, clippy::all)]
pub mod server {
    include!(concat!(env!("OUT_DIR"), "/server/hookd.v1.rs"));
}

/// The encoded `FileDescriptorSet` of `hookd.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hookd_descriptor.bin"));
