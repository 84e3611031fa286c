//! The broker sessions open now: which broker nodes hold a stream to this
//! hookd, from where, since when, and how many of their calls wait for
//! webhooks. The status page lists them; an operator asking "is node 2
//! connected?" should not have to read logs.
//!
//! A session is entered once its broker has said Hello and leaves when its
//! stream is dropped, however it ends ([`Session`] is a guard). Nothing here
//! runs per call but one relaxed store when a call starts or finishes
//! waiting.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::SystemTime,
};

/// The open broker sessions; cheap to clone (the clones share them).
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Broker>>>,
}

/// One broker's session, as its Hello introduced it.
#[derive(Debug)]
pub struct Broker {
    /// The broker's node id (`Hello.node_id`).
    pub node_id: String,
    /// What broker it is, e.g. `mosquitto` (`Hello.broker_kind`).
    pub kind: String,
    /// The broker's version (`Hello.broker_version`).
    pub version: String,
    /// Where its connection comes from, if the socket knew.
    pub peer: Option<SocketAddr>,
    /// When it said Hello.
    pub since: SystemTime,
    in_flight: AtomicUsize,
}

impl Broker {
    /// Its calls waiting for webhooks now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// An open session's place in [`Sessions`]: leaves it when dropped.
pub struct Session {
    id: u64,
    broker: Arc<Broker>,
    sessions: Sessions,
}

impl Session {
    /// Records how many of its calls wait for webhooks now.
    pub fn set_in_flight(&self, calls: usize) {
        self.broker.in_flight.store(calls, Ordering::Relaxed);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.id);
    }
}

impl Sessions {
    /// Enters the session of a broker that said Hello.
    pub fn open(&self, node_id: &str, kind: &str, version: &str, peer: Option<SocketAddr>) -> Session {
        let broker = Arc::new(Broker {
            node_id: node_id.to_owned(),
            kind: kind.to_owned(),
            version: version.to_owned(),
            peer,
            since: SystemTime::now(),
            in_flight: AtomicUsize::new(0),
        });
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, Arc::clone(&broker));
        Session {
            id,
            broker,
            sessions: self.clone(),
        }
    }

    /// The open sessions, oldest first.
    pub fn list(&self) -> Vec<Arc<Broker>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Broker>>> {
        self.inner.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_listed_until_it_is_dropped() {
        let sessions = Sessions::default();
        let first = sessions.open("node-1", "mosquitto", "2.0", None);
        let second = sessions.open("node-2", "vernemq", "2.1", None);
        second.set_in_flight(3);
        let listed: Vec<_> = sessions
            .list()
            .iter()
            .map(|b| (b.node_id.clone(), b.in_flight()))
            .collect();
        assert_eq!(listed, [("node-1".to_owned(), 0), ("node-2".to_owned(), 3)]);
        drop(first);
        assert_eq!(sessions.list().len(), 1);
        drop(second);
        assert!(sessions.list().is_empty());
    }
}
