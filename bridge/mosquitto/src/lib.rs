//! `hookd-mosquitto`: a Mosquitto 2.0 plugin (plugin interface v5) that
//! makes Mosquitto a hookd broker: its connects, publishes, subscriptions and
//! deliveries are decided by hookd's webhooks, and its CONNECTs and CONNACKs,
//! (un)subscribe requests, messages and disconnects are reported to them.
//!
//! Build it with `cargo build --release -p hookd-mosquitto` and load
//! `target/release/libhookd_mosquitto.so` from `mosquitto.conf`:
//!
//! ```text
//! plugin /path/to/libhookd_mosquitto.so
//! plugin_opt_hookd_addresses 127.0.0.1:50051
//! plugin_opt_timeout_ms 500
//! plugin_opt_policy deny
//! ```
//!
//! Layout: [`plugin`] holds the logic in safe Rust (event → hook → decision,
//! options); `ffi` is the one module with `unsafe`, converting Mosquitto's C
//! structs and callbacks, with its invariants written at its top. In unit
//! tests, where no broker provides Mosquitto's functions, `ffi` calls
//! stand-ins instead, so its layouts, constants and panic guards are tested
//! too.

#![deny(unsafe_code)]

mod ffi;
pub mod plugin;

/// Sends the plugin's logs to stderr, beside Mosquitto's own, once; the
/// level comes from `HOOKD_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOOKD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}
