//! The client's local verdict cache: repeats of a call that hookd marked
//! cacheable (`cache_ttl_secs`) are answered without a round trip until the
//! TTL hookd reported runs out.

use std::time::{Duration, Instant};

use hookd_proto::v1::{hook_call::Hook as Args, ok::Modifiers};
use moka::{Expiry, future::Cache};

use crate::{hooks, verdict::Outcome};

/// Outcomes by encoded call identity, each with its own TTL.
pub struct LocalCache {
    entries: Cache<Vec<u8>, Entry>,
}

#[derive(Clone)]
struct Entry {
    outcome: Outcome,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<Vec<u8>, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &Vec<u8>, entry: &Entry, _now: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &Vec<u8>,
        entry: &Entry,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl LocalCache {
    /// A cache of at most `max_entries` outcomes.
    pub fn new(max_entries: u64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }

    /// The cached outcome for a call like `args`.
    pub async fn get(&self, args: &Args) -> Option<Outcome> {
        self.entries.get(&key(args)).await.map(|entry| entry.outcome)
    }

    /// Keeps `outcome` for calls like `args` for `ttl`, without a payload
    /// rewrite: like hookd's cache, a payload change belongs to one message.
    pub async fn insert(&self, args: &Args, mut outcome: Outcome, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        match &mut outcome {
            Outcome::Ok(Some(Modifiers::Publish(p))) => p.payload = None,
            Outcome::Ok(Some(Modifiers::Deliver(d))) => d.payload = None,
            _ => {}
        }
        self.entries.insert(key(args), Entry { outcome, ttl }).await;
    }
}

fn key(args: &Args) -> Vec<u8> {
    let mut bytes = Vec::new();
    hooks::cache_identity(args).encode(&mut bytes);
    bytes
}
