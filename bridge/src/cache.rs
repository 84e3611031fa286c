//! The client's local verdict cache: repeats of a call that hookd marked
//! cacheable (`cache_ttl_secs`) are answered without a round trip until the
//! TTL hookd reported runs out.

use std::time::{Duration, Instant};

use hookd_proto::{
    cache_ttl::{Expiring, PerEntryTtl},
    convert::with_cache_identity,
    v1::{hook_call::Hook as Args, ok::Modifiers},
};
use moka::sync::Cache;

use crate::verdict::Outcome;

/// Outcomes by encoded call identity, each with its own TTL. moka's sync
/// flavour with foldhash: a lookup is a plain function call, so a broker's
/// callback thread can be answered without entering a runtime.
pub struct LocalCache {
    entries: Cache<Vec<u8>, Entry, foldhash::fast::RandomState>,
}

#[derive(Clone)]
struct Entry {
    outcome: Outcome,
    ttl: Duration,
    expires: Instant,
}

impl Expiring for Entry {
    fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl LocalCache {
    /// A cache of at most `max_entries` outcomes.
    pub fn new(max_entries: u64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build_with_hasher(foldhash::fast::RandomState::default()),
        }
    }

    /// The cached outcome for a call like `args`, with the time it has left.
    pub fn get(&self, args: &mut Args) -> Option<(Outcome, Duration)> {
        self.entries.get(&key(args)).map(|entry| {
            (
                entry.outcome,
                entry.expires.saturating_duration_since(Instant::now()),
            )
        })
    }

    /// Keeps `outcome` for calls like `args` for `ttl`, without a payload
    /// rewrite: like hookd's cache, a payload change belongs to one message.
    pub fn insert(&self, args: &mut Args, mut outcome: Outcome, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        match &mut outcome {
            Outcome::Ok(Some(Modifiers::Publish(p))) => p.payload = None,
            Outcome::Ok(Some(Modifiers::Deliver(d))) => d.payload = None,
            _ => {}
        }
        let expires = Instant::now() + ttl;
        self.entries.insert(
            key(args),
            Entry {
                outcome,
                ttl,
                expires,
            },
        );
    }
}

fn key(args: &mut Args) -> Vec<u8> {
    with_cache_identity(args, |identity| {
        let mut bytes = Vec::with_capacity(identity.encoded_len());
        identity.encode(&mut bytes);
        bytes
    })
}
