//! The verdict cache: `ok` answers that carried `cache-control: max-age`.
//!
//! Keyed like vmq_webhooks: (endpoint URL, the call without payload and peer
//! port), the hook being part of the call. Unlike vmq, entries expire
//! actively at their own deadline (moka's per-entry expiry) and the cache has
//! a size bound, so memory cannot grow without limit; `max-age=0` is never
//! stored. Stored modifiers never include a payload rewrite.
//!
//! The key is the endpoint and a hash of the call's cache identity; the entry
//! keeps the identity itself, and a hit must match it, so a lookup clones
//! nothing and a hash collision can only cost a miss, never a wrong verdict.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use std::hash::BuildHasher;

use moka::sync::Cache;

use hookd_proto::{
    Hook, HookCall,
    cache_ttl::{Expiring, PerEntryTtl},
    verdict::{Allow, CacheInfo, Modifiers, Verdict},
};

/// Cached `ok` verdicts per (endpoint, call).
#[derive(Clone)]
pub struct VerdictCache {
    // `None` when the configured capacity is 0: caching is off. The sync
    // flavour: a lookup never waits, so a hit costs no future machinery; keys
    // are hashed with foldhash, as SipHash over a whole call was measurable.
    entries: Option<Cache<Key, Arc<Entry>, foldhash::fast::RandomState>>,
    identities: foldhash::fast::RandomState,
    /// What `hookd cache show` reports.
    stats: Arc<Stats>,
}

/// The cache's counters per hook, since hookd started or an operator reset
/// them (`hookd cache show --reset`).
struct Stats {
    hooks: [HookStats; Hook::COUNT],
    since_ms: AtomicU64,
}

#[derive(Default)]
struct HookStats {
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
}

/// One hook's cache counters, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookCacheStats {
    /// The hook.
    pub hook: Hook,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that were not.
    pub misses: u64,
    /// Verdicts stored.
    pub inserts: u64,
}

type Key = (Arc<str>, u64);

struct Entry {
    /// The call this verdict answers, without payload and peer port.
    call: HookCall,
    modifiers: Option<Modifiers>,
    ttl: Duration,
    expires_at: Instant,
}

impl Expiring for Entry {
    fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl VerdictCache {
    /// A cache holding at most `max_entries` verdicts (0 disables it).
    pub fn new(max_entries: u64) -> Self {
        let entries = (max_entries > 0).then(|| {
            Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build_with_hasher(foldhash::fast::RandomState::default())
        });
        Self {
            entries,
            identities: foldhash::fast::RandomState::default(),
            stats: Arc::new(Stats {
                hooks: std::array::from_fn(|_| HookStats::default()),
                since_ms: AtomicU64::new(crate::outbox::now_ms()),
            }),
        }
    }

    /// The cached verdict of `endpoint` for `call`, marked as a hit with the
    /// time it has left.
    pub fn get(&self, endpoint: &Arc<str>, call: &HookCall) -> Option<Verdict> {
        let entries = self.entries.as_ref()?;
        let verdict = self.lookup(entries, endpoint, call);
        let stats = &self.stats.hooks[call.hook().index()];
        match verdict {
            Some(_) => stats.hits.fetch_add(1, Ordering::Relaxed),
            None => stats.misses.fetch_add(1, Ordering::Relaxed),
        };
        verdict
    }

    fn lookup(
        &self,
        entries: &Cache<Key, Arc<Entry>, foldhash::fast::RandomState>,
        endpoint: &Arc<str>,
        call: &HookCall,
    ) -> Option<Verdict> {
        let identity = call.cache_identity();
        let entry = entries.get(&(endpoint.clone(), self.identities.hash_one(identity)))?;
        if entry.call.cache_identity() != identity {
            return None;
        }
        let ttl = entry.expires_at.checked_duration_since(Instant::now())?;
        Some(Verdict::Ok(Allow {
            modifiers: entry.modifiers.clone(),
            cache: Some(CacheInfo { hit: true, ttl }),
        }))
    }

    /// Stores an `ok` answer of `endpoint` to `call` for `ttl`, without any
    /// payload modifier.
    pub fn insert(&self, endpoint: &Arc<str>, call: &HookCall, modifiers: Option<Modifiers>, ttl: Duration) {
        let Some(entries) = &self.entries else { return };
        let entry = Arc::new(Entry {
            call: call.cache_copy(),
            modifiers: modifiers.map(Modifiers::without_payload),
            ttl,
            expires_at: Instant::now() + ttl,
        });
        let key = (endpoint.clone(), self.identities.hash_one(call.cache_identity()));
        entries.insert(key, entry);
        self.stats.hooks[call.hook().index()]
            .inserts
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Verdicts held now (expired ones that are not yet evicted excluded).
    pub fn entries(&self) -> u64 {
        self.entries.as_ref().map_or(0, |entries| {
            entries.run_pending_tasks();
            entries.entry_count()
        })
    }

    /// The counters of every hook looked up or stored since `since_ms`
    /// (the second value), and when `reset`, zeroes them.
    pub fn stats(&self, reset: bool) -> (Vec<HookCacheStats>, u64) {
        let take = |counter: &AtomicU64| {
            if reset {
                counter.swap(0, Ordering::Relaxed)
            } else {
                counter.load(Ordering::Relaxed)
            }
        };
        let since_ms = if reset {
            self.stats
                .since_ms
                .swap(crate::outbox::now_ms(), Ordering::Relaxed)
        } else {
            self.stats.since_ms.load(Ordering::Relaxed)
        };
        let hooks = Hook::ALL
            .iter()
            .map(|&hook| {
                let stats = &self.stats.hooks[hook.index()];
                HookCacheStats {
                    hook,
                    hits: take(&stats.hits),
                    misses: take(&stats.misses),
                    inserts: take(&stats.inserts),
                }
            })
            .filter(|s| s.hits + s.misses + s.inserts > 0)
            .collect();
        (hooks, since_ms)
    }

    /// Drops every cached verdict; returns how many there were.
    pub fn clear(&self) -> u64 {
        let Some(entries) = &self.entries else { return 0 };
        let held = self.entries();
        entries.invalidate_all();
        entries.run_pending_tasks();
        held
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use hookd_proto::{
        Hook, HookArgs,
        call::{Publish, SubscriberId},
        verdict::PublishModifiers,
    };

    fn publish(payload: &'static [u8]) -> HookCall {
        let args = HookArgs::Publish(Publish {
            subscriber: SubscriberId {
                mountpoint: String::new(),
                client_id: "c".into(),
            },
            topic: "t".into(),
            payload: Bytes::from_static(payload),
            ..Default::default()
        });
        HookCall::new(Hook::AuthOnPublish, args).expect("valid")
    }

    #[test]
    fn hit_ignores_payload_and_strips_payload_modifier() {
        let cache = VerdictCache::new(10);
        let endpoint: Arc<str> = Arc::from("http://e");
        let modifiers = Modifiers::Publish(PublishModifiers {
            topic: Some("new".into()),
            payload: Some(Bytes::from_static(b"rewritten")),
            ..Default::default()
        });
        cache.insert(
            &endpoint,
            &publish(b"a"),
            Some(modifiers),
            Duration::from_secs(60),
        );
        let Some(Verdict::Ok(allow)) = cache.get(&endpoint, &publish(b"b")) else {
            panic!("expected a hit")
        };
        let Some(CacheInfo { hit: true, ttl }) = allow.cache else {
            panic!("marked as hit")
        };
        assert!(ttl <= Duration::from_secs(60));
        let Some(Modifiers::Publish(p)) = allow.modifiers else {
            panic!("publish modifiers")
        };
        assert_eq!(p.topic.as_deref(), Some("new"));
        assert_eq!(p.payload, None);
        assert!(cache.get(&Arc::from("http://other"), &publish(b"a")).is_none());
    }

    #[test]
    fn zero_capacity_disables_the_cache() {
        let cache = VerdictCache::new(0);
        let endpoint: Arc<str> = Arc::from("http://e");
        cache.insert(&endpoint, &publish(b"a"), None, Duration::from_secs(60));
        assert!(cache.get(&endpoint, &publish(b"a")).is_none());
    }
}
