//! `hookd-proto`: the `hookd.v1` gRPC contract between broker nodes and hookd.
//!
//! The source of truth is `hookd/v1/hookd.proto` in this crate; `build.rs`
//! compiles it with protox, so no system `protoc` is needed. This crate holds
//! only generated code plus the encoded descriptor set that the server uses for
//! gRPC reflection; conversions to hookd's domain types live with their users.
//!
//! Layout:
//! - [`v1`]: the generated messages, the `HookService` client and server.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded `FileDescriptorSet` of the contract.

/// The `hookd.v1` package: messages, `hook_service_client`, `hook_service_server`.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("hookd.v1");
}

/// The encoded `FileDescriptorSet` of `hookd.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hookd_descriptor.bin"));
