//! Shards: hookd's serving threads, each one single-threaded event loop.
//!
//! A broker stream's session, the webhook requests of its calls and the
//! HTTP connections they travel on are all driven by one task's worth of
//! work; spread over a work-stealing pool, every verdict costs wake-ups
//! that cross threads (measured: about 1.5× the CPU per call of one
//! thread). So hookd runs `server.worker_threads` shards instead, each a
//! tokio `current_thread` runtime on its own thread with its own webhook
//! connection pools, all accepting from the one listening socket: a broker
//! connection lives on the shard that accepted it, and everything it
//! causes stays on that thread. The registry, cache, outbox and metrics
//! are shared.

use std::cell::Cell;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The shard the calling thread serves (0 outside a shard, e.g. when hookd
/// is served on a runtime of the caller's).
pub fn current() -> usize {
    CURRENT.with(Cell::get)
}

/// Marks the calling thread as shard `index`, for [`current`].
pub(crate) fn enter(index: usize) {
    CURRENT.with(|current| current.set(index));
}

/// How many shards `worker_threads` asks for: 0 means one per CPU core.
pub fn count(worker_threads: usize) -> usize {
    match worker_threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
}
