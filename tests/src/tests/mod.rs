//! The end-to-end tests, one module per part of hookd's contract.

mod bridge;
mod bridge_failover;
mod broker_tls;
mod cache;
mod chain;
mod concurrency;
mod dialects;
mod discovery;
mod failures;
mod faults;
mod lifecycle;
mod malformed;
mod mosquitto;
mod mosquitto_tls;
mod notifications;
mod outbox;
mod publish;
mod redaction;
mod register;
mod session;
mod shards;
mod sidecar;
mod sidecar_tls;
mod signatures;
mod subscribe;
mod webhook_tls;
