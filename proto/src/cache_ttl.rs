//! The expiry policy both verdict caches share (hookd's and the broker
//! client's): every entry lives for its own TTL, and overwriting an entry
//! restarts its clock with the new entry's TTL (moka's default for an update
//! would keep the old deadline).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use moka::Expiry;

/// A cache entry that knows how long it may be kept.
pub trait Expiring {
    /// How long the entry is valid from when it is stored.
    fn ttl(&self) -> Duration;
}

/// moka's [`Expiry`] for entries that carry their own TTL.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerEntryTtl;

impl<T: Expiring> Expiring for Arc<T> {
    fn ttl(&self) -> Duration {
        T::ttl(self)
    }
}

impl<K, V: Expiring> Expiry<K, V> for PerEntryTtl {
    fn expire_after_create(&self, _key: &K, entry: &V, _now: Instant) -> Option<Duration> {
        Some(entry.ttl())
    }

    fn expire_after_update(
        &self,
        _key: &K,
        entry: &V,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl())
    }
}
