//! The broker streams open now, for `hookd brokers` and the status page:
//! who each broker said it is in its Hello, where its connection comes from,
//! since when, and how many of its calls wait for a verdict. An operator
//! asking "is node 2 connected?" should not have to read logs.
//!
//! A session enters itself once its Hello is read and leaves when its stream
//! is dropped (however it ends); the map's lock is taken only then and when
//! an operator lists the brokers. The calls in flight are one atomic per
//! session, stored as the session's own count changes.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

/// The open broker sessions, cheap to clone.
#[derive(Clone, Default)]
pub struct Brokers {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<BrokerSession>>>,
}

/// One open broker stream.
#[derive(Debug)]
pub struct BrokerSession {
    /// From the broker's Hello.
    pub node_id: String,
    /// The broker's kind (`mosquitto`, `vernemq`, …), from its Hello.
    pub kind: String,
    /// The broker's version, from its Hello.
    pub version: String,
    /// The peer address of its connection, if known.
    pub address: Option<SocketAddr>,
    /// When the stream said Hello, ms since the epoch.
    pub since_ms: u64,
    in_flight: AtomicU64,
}

impl BrokerSession {
    /// Its calls waiting for a verdict now.
    pub fn calls_in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Records how many of its calls wait for a verdict.
    pub fn set_in_flight(&self, calls: usize) {
        self.in_flight.store(calls as u64, Ordering::Relaxed);
    }
}

/// A session's place in [`Brokers`], left when dropped.
pub struct Entered {
    brokers: Brokers,
    key: u64,
    session: Arc<BrokerSession>,
}

impl Entered {
    /// The session.
    pub fn session(&self) -> &BrokerSession {
        &self.session
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.brokers
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl Brokers {
    /// Enters a broker that said Hello.
    pub fn enter(&self, node_id: &str, kind: &str, version: &str, address: Option<SocketAddr>) -> Entered {
        let session = Arc::new(BrokerSession {
            node_id: node_id.to_owned(),
            kind: kind.to_owned(),
            version: version.to_owned(),
            address,
            since_ms: crate::outbox::now_ms(),
            in_flight: AtomicU64::new(0),
        });
        let key = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, session.clone());
        Entered {
            brokers: self.clone(),
            key,
            session,
        }
    }

    /// The open sessions, oldest first.
    pub fn list(&self) -> Vec<Arc<BrokerSession>> {
        self.inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_listed_until_dropped() {
        let brokers = Brokers::default();
        let a = brokers.enter("a", "mosquitto", "2.0", None);
        let b = brokers.enter("b", "vernemq", "2.0", None);
        b.session().set_in_flight(3);
        let listed: Vec<_> = brokers
            .list()
            .iter()
            .map(|s| (s.node_id.clone(), s.calls_in_flight()))
            .collect();
        assert_eq!(listed, [("a".to_owned(), 0), ("b".to_owned(), 3)]);
        drop(a);
        assert_eq!(brokers.list().len(), 1);
        drop(b);
        assert!(brokers.list().is_empty());
    }
}
