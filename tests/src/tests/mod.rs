//! The end-to-end tests, one module per part of hookd's contract.

mod bridge;
mod bridge_failover;
mod broker_tls;
mod cache;
mod chain;
mod concurrency;
mod discovery;
mod failures;
mod faults;
mod lifecycle;
mod logging;
mod malformed;
mod mosquitto;
mod notifications;
mod outbox;
mod publish;
mod redaction;
mod register;
mod session;
mod shards;
mod sidecar;
mod signatures;
mod status_page;
mod subscribe;
mod webhook_tls;
