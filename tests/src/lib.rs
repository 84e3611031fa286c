//! `hookd-tests`: end-to-end tests of hookd over real gRPC and real HTTP on loopback.
//!
//! Every test starts the real `hookd::run` on `127.0.0.1:0`, real axum webhooks on
//! `127.0.0.1:0`, and talks to hookd the way a broker node does: one
//! `HookService.Stream` (or the unary `Call`). Nothing is mocked. Every await in a
//! test is bounded, and nothing sleeps to wait for something to happen: tests poll
//! with [`harness::eventually`] instead.
//!
//! Layout:
//! - [`harness`]: the test rig.
//!   - `harness/webhook.rs`: [`harness::webhook::Webhook`], an axum server whose
//!     replies a test scripts (ok, next, error, raw body, status, cache-control,
//!     delay, dribbled body, held until released, fail n times) and which records
//!     every request it gets.
//!   - `harness/service.rs`: [`harness::service::Hookd`], hookd itself on port 0,
//!     stopped on drop or explicitly.
//!   - `harness/killable.rs`: [`harness::killable::KillableHookd`], hookd on a
//!     runtime of its own, killed abruptly (`shutdown_background`) or stopped,
//!     and started again on the same port.
//!   - `harness/process.rs`: [`harness::process::HookdProcess`], the real `hookd`
//!     binary as a child process (environment, configuration file, lowered
//!     `RLIMIT_NOFILE`), its log read line by line, its CPU time from `/proc`,
//!     and signals sent to it.
//!   - `harness/broker.rs`: [`harness::broker::Broker`], a broker session on
//!     `Stream` that sends many calls at once and hands each verdict to its caller
//!     by id.
//!   - `harness/peer.rs`: peers that misbehave below gRPC: [`harness::peer::RawPeer`]
//!     (a TCP connection that says part of HTTP/2, or nothing) and
//!     [`harness::peer::FreezableRelay`] (a relay that freezes like a SIGSTOPped broker).
//!   - `harness/calls.rs`: representative arguments for each hook of the table, so
//!     tests read like a story.
//!   - `harness/mod.rs`: [`harness::Rig`] (one webhook + hookd + broker), bounded
//!     waits, and verdict assertions.
//! - `tests/` (compiled only under `cfg(test)`, so everything links into one binary):
//!   - `register.rs`, `publish.rs`, `subscribe.rs`, `session.rs`: the JSON each hook
//!     POSTs and the verdicts its answers give, every hook.
//!   - `chain.rs`: several endpoints on one chain hook.
//!   - `failures.rs`: each way an endpoint can fail, and that the stream goes on.
//!   - `cache.rs`: `cache-control: max-age` answers.
//!   - `concurrency.rs`: many calls in flight on one stream, several streams.
//!   - `malformed.rs`: bad calls and bad frames never break the stream.
//!   - `notifications.rs`: the broker never waits for notification endpoints.
//!   - `discovery.rs`: gRPC health and reflection.
//!   - `sidecar.rs`: the vmq_webhooks sidecar (`hookd_bridge::sidecar`): VerneMQ's
//!     exact JSON through the sidecar, a real client, hookd and a webhook, and back.
//!   - `lifecycle.rs`: Welcome and `HooksChanged`, hooks without webhooks, the unary
//!     RPC, exact endpoint URLs, webhooks registered at run time, shutdown.
//!   - `shutdown.rs`: the bounded graceful shutdown (grace period, idle, half-open
//!     and frozen peers, the port, a second signal) and the connection bounds
//!     (keepalive, handshake and idle timeouts).
//!   - `bridge.rs`: the `hookd-bridge` client: thousands of calls on one stream,
//!     failure policies (unavailable, timeout, overloaded), hooks answered
//!     locally (no endpoints, local cache), every typed method, the blocking façade.
//!   - `bridge_failover.rs`: the client while hookd is killed, restarted on the
//!     same port, stopped, or one of two instances dies.
//!   - `startup.rs`: the binary's start: configuration errors said once, naming
//!     the key or variable; port clashes naming the listener; a Kubernetes
//!     Service's variables ignored.
//!   - `descriptors.rs`: the binary under a lowered `RLIMIT_NOFILE`: the limit
//!     raised and logged, and out of descriptors no spinning, a log line, a
//!     counter, and service again once connections close.

#![forbid(unsafe_code)]

pub mod harness;

#[cfg(test)]
mod tests;
