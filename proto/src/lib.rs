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
//!   compiled by protox in `build.rs`, so no system `protoc` is needed), and
//!   [`FILE_DESCRIPTOR_SET`] for server reflection.
//! - [`convert`]: protobuf ⇄ domain, one conversion per direction.
//! - `cache_ttl` (feature `cache`): the expiry policy of the verdict caches.
//! - `vmq` (feature `vmq`): the vmq_webhooks JSON codec in both directions,
//!   for requests and answers. The Mosquitto plugin builds without it.
//!
//! # Adding a hook
//! A notification hook whose arguments fit an existing shape takes four places:
//! 1. a row in the table in `src/hook.rs` (`for_each_hook!`);
//! 2. its message in `hookd/v1/hookd.proto`;
//! 3. its arm in `HookCall.hook` and its value in `enum Hook` of the proto (the
//!    compiler refuses a row without message, arm or value; a test refuses an
//!    enum value without a row);
//! 4. a fixture named after the hook in the end-to-end harness,
//!    `tests/src/harness/calls.rs` (the harness builds per-hook fixtures from
//!    the table, so a row without one does not compile).
//!
//! Everything else follows: the enum, `Hook::ALL`, parsing, the conversions,
//! the metric slots, the client's typed method and the vmq codec (which goes
//! by shape). A new shape adds its struct to [`call`], an arm to the
//! `args_message!` macro in [`convert`] and its JSON to the `vmq` codec; a
//! decision hook with modifiers adds a [`verdict::Modifiers`] variant, its
//! protobuf message and conversions, and its JSON in `vmq::answer`.

#[cfg(feature = "cache")]
pub mod cache_ttl;
pub mod call;
pub mod convert;
pub mod hook;
pub mod verdict;
#[cfg(feature = "vmq")]
pub mod vmq;

pub use call::{HookArgs, HookCall, InvalidCall};
pub use hook::{Hook, HookStyle, Shape, UnknownHook};
pub use verdict::{ErrorKind, Verdict};

/// The `hookd.v1` package: messages, `hook_service_client`, `hook_service_server`.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("hookd.v1");
}

/// The encoded `FileDescriptorSet` of `hookd.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hookd_descriptor.bin"));
