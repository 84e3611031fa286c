//! The end-to-end tests, one module per part of hookd's contract.

mod bridge;
mod bridge_failover;
mod cache;
mod chain;
mod concurrency;
mod descriptors;
mod discovery;
mod failures;
mod frames;
mod lifecycle;
mod limits;
mod malformed;
mod mosquitto;
mod notifications;
mod outbox;
mod publish;
mod register;
mod session;
mod shards;
mod shutdown;
mod sidecar;
mod startup;
mod subscribe;
