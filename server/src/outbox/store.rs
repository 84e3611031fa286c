//! Where the outbox keeps its rows: the [`Store`] trait, and [`SqliteStore`],
//! the embedded default on local disk.
//!
//! One row per (event, endpoint) in `deliveries`, in `seq` order; an event's
//! rows share its `event_id` (the `webhook-id` receivers de-duplicate by). A
//! row leaves `deliveries` when its endpoint took it, or moves to
//! `dead_letters` when it is past its retry budget or was refused for good;
//! a replayed dead letter comes back with a new `seq` and its old
//! `event_id`. Endpoints that answered 410 Gone are kept in
//! `stopped_endpoints` until an operator enables them again. Webhooks
//! registered at run time are kept in `registrations` ([`StoredRegistration`],
//! a block of its own at the end of the trait and the file).
//!
//! The schema is plain SQL (integers, text, blobs; no SQLite-only types), so
//! a shared backend (PostgreSQL, with `BIGINT`/`BYTEA`) carries it over as
//! is. Every method is called from one thread at a time (the outbox's writer
//! thread, or the CLI on a stopped hookd), so the trait needs `Send` only.
//!
//! **Checkpoints.** A commit appends to SQLite's write-ahead log; copying the
//! log into the database file (a checkpoint, with an fsync of its own) runs
//! on a thread and connection of its own, so an appender's commit never
//! waits behind one. Only if the log grows past [`MAX_LOG_FRAMES`] (writes
//! without a pause never let a background checkpoint rewind it) does the
//! writer checkpoint and truncate it itself.

use std::{
    collections::HashMap,
    fs::File,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use rusqlite::{Connection, OptionalExtension, params};
use tracing::warn;

/// What a store failure says, naming the store's own error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store file could not be opened (`outbox.path`).
    #[error("cannot open the outbox store {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// The store's lock file (`outbox.path` + `.lock`) could not be opened
    /// or locked.
    #[error("cannot lock the outbox store {path}: {source}")]
    Lock {
        /// The lock file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Another process holds the store: a running hookd (or a `hookd outbox
    /// --store` command) has it open.
    #[error(
        "the outbox store {0} is in use by another process (a running hookd? use its admin service instead of --store)"
    )]
    InUse(String),
    /// The embedded SQLite store failed (I/O, a full disk, a corrupt file).
    #[error("outbox store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store file holds data hookd cannot read.
    #[error("outbox store: {0}")]
    Corrupt(String),
}

/// One event to append: its rows are one per endpoint, all in one commit.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The hook's name.
    pub hook: &'static str,
    /// The client id, whose events reach each endpoint in order.
    pub client_id: String,
    /// When hookd accepted it, ms since the Unix epoch.
    pub created_ms: u64,
    /// The encoded `hookd.v1.HookCall`.
    pub call: Vec<u8>,
    /// The endpoints (URLs as configured) it goes to.
    pub endpoints: Vec<std::sync::Arc<str>>,
}

/// One pending delivery, as read back for its endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Its place in the delivery order.
    pub seq: u64,
    /// The event's id, shared by its rows for every endpoint.
    pub event_id: u64,
    /// The endpoint URL as configured.
    pub endpoint: String,
    /// The hook's name.
    pub hook: String,
    /// The client id.
    pub client_id: String,
    /// When the event was accepted, ms since the Unix epoch.
    pub created_ms: u64,
    /// The encoded `hookd.v1.HookCall`.
    pub call: Vec<u8>,
    /// What the row counts against `outbox.max_bytes`.
    pub bytes: u64,
}

/// A delivery given up on, with why and when.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The row as it was pending.
    pub delivery: Delivery,
    /// Why it was given up on.
    pub reason: String,
    /// When, ms since the Unix epoch.
    pub dead_ms: u64,
}

/// Which dead letters an operator means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The one with this `seq`.
    Id(u64),
    /// All of them.
    All,
}

/// What one commit writes: appends, and rows leaving `deliveries`.
#[derive(Debug, Default)]
pub struct Batch {
    /// Events to append.
    pub appends: Vec<NewEvent>,
    /// Rows delivered (deleted).
    pub delivered: Vec<u64>,
    /// Rows moved to the dead letters, with the reason and the time.
    pub dead: Vec<(u64, String, u64)>,
}

/// Pending rows of one endpoint: how many and how large.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Rows pending.
    pub depth: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The outbox's storage. Everything the outbox needs, so a shared backend
/// can replace the embedded one; see the module docs.
pub trait Store: Send {
    /// Writes `batch` in one durable transaction: all of it or none.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError>;
    /// Up to `limit` pending rows of `endpoint` with `seq > after`, in order.
    fn pending(&mut self, endpoint: &str, after: u64, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    /// Up to `limit` pending rows of `endpoint` for `client_id` with
    /// `after < seq <= through`, in order (a client's rows the endpoint's
    /// task passed over while it had enough of that client's in memory).
    fn pending_of_client(
        &mut self,
        endpoint: &str,
        client_id: &str,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// The pending rows per endpoint.
    fn backlog(&mut self) -> Result<HashMap<String, Backlog>, StoreError>;
    /// When the oldest pending event was accepted (ms since the epoch).
    fn oldest_ms(&mut self) -> Result<Option<u64>, StoreError>;
    /// Up to `limit` dead letters with `seq > after`, in order.
    fn dead_letters(&mut self, after: u64, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;
    /// Moves the selected dead letters back to `deliveries` (new `seq`, same
    /// `event_id`); returns the rows moved.
    fn replay(&mut self, which: Selection) -> Result<Vec<Delivery>, StoreError>;
    /// Deletes the selected dead letters; returns how many.
    fn drop_dead(&mut self, which: Selection) -> Result<u64, StoreError>;
    /// Marks `endpoint` stopped (it answered 410 Gone).
    fn stop_endpoint(&mut self, endpoint: &str, reason: &str, since_ms: u64) -> Result<(), StoreError>;
    /// Clears the stop of `endpoint`; whether it was stopped.
    fn enable_endpoint(&mut self, endpoint: &str) -> Result<bool, StoreError>;
    /// The stopped endpoints.
    fn stopped_endpoints(&mut self) -> Result<Vec<String>, StoreError>;
    /// A number identifying this store, part of every `webhook-id`, so ids
    /// from two stores never collide.
    fn store_id(&self) -> u32;

    // Webhooks registered at run time (`hookd webhooks register`), kept here
    // so they survive a restart; see [`StoredRegistration`].

    /// Every stored registration, in the order they were registered.
    fn registrations(&mut self) -> Result<Vec<StoredRegistration>, StoreError>;
    /// Stores `registration`: a new one last, one of the same hook and
    /// endpoint updated in place.
    fn save_registration(&mut self, registration: &StoredRegistration) -> Result<(), StoreError>;
    /// Deletes the registration of `endpoint` for `hook`; whether there was one.
    fn delete_registration(&mut self, hook: &str, endpoint: &str) -> Result<bool, StoreError>;
}

/// The embedded store: one SQLite file in WAL mode with `synchronous=FULL`,
/// so a commit is on disk (the WAL fsynced) when it returns.
pub struct SqliteStore {
    // Declared first so it is dropped first: the checkpointer and the lock
    // outlive the writer's connection.
    conn: Connection,
    /// The next `seq` (and `event_id`) to hand out; never reused, even after
    /// every row is deleted, so an endpoint's cursor only moves forward and
    /// a `webhook-id` never names two events.
    next_seq: u64,
    /// The `seq`s below this are reserved (recorded in `meta` as
    /// `next_seq`): a commit writes `meta` only when it passes the mark, one
    /// in [`SEQ_BLOCK`], and a restart goes on from the mark.
    reserved_until: u64,
    store_id: u32,
    checkpointer: Checkpointer,
    /// Held (an exclusive `flock`) for as long as the store is open; the
    /// kernel lets go of it when the process dies, however it dies.
    _lock: File,
}

/// The background checkpointer: its thread, the channel that asks it to
/// run, and what it last saw of the log.
struct Checkpointer {
    /// Asks for a checkpoint (capacity one: asking again while one is
    /// pending is a no-op). Dropped to end the thread.
    kick: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Frames in the log at the last checkpoint.
    log_frames: Arc<AtomicU64>,
    /// When the writer last asked for one.
    kicked: Instant,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    hook TEXT NOT NULL,
    client_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    call BLOB NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    hook TEXT NOT NULL,
    client_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    call BLOB NOT NULL,
    bytes INTEGER NOT NULL,
    reason TEXT NOT NULL,
    dead_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stopped_endpoints (
    endpoint TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since_ms INTEGER NOT NULL
);
";

/// `seq`s reserved at a time; see `SqliteStore::reserved_until`.
const SEQ_BLOCK: u64 = 1 << 16;

/// How often the writer asks for a background checkpoint while it commits.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// Log frames (pages of 4 KiB: 64 MiB) past which the writer checkpoints
/// and truncates the log itself, appends waiting meanwhile.
pub const MAX_LOG_FRAMES: u64 = 16_384;

/// The columns of a delivery row, in [`delivery`]'s order (a macro, so the
/// statements on the hot path are string constants).
macro_rules! columns {
    () => {
        "seq, event_id, endpoint, hook, client_id, created_ms, call, bytes"
    };
}

const COLUMNS: &str = columns!();
const INSERT: &str =
    "INSERT INTO deliveries (seq, event_id, endpoint, hook, client_id, created_ms, call, bytes)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const BURY: &str = concat!(
    "INSERT INTO dead_letters (",
    columns!(),
    ", reason, dead_ms) SELECT ",
    columns!(),
    ", ?2, ?3 FROM deliveries WHERE seq = ?1"
);
const DELETE: &str = "DELETE FROM deliveries WHERE seq = ?1";
const PENDING: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM deliveries WHERE endpoint = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
);
// A range of the primary key, so no index beyond it is written on append.
const PENDING_OF_CLIENT: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM deliveries WHERE endpoint = ?1 AND seq > ?2 AND seq <= ?3 AND client_id = ?4 ORDER BY seq LIMIT ?5"
);

/// What a row costs against `outbox.max_bytes` beyond its variable parts:
/// the integers, the index entry and SQLite's page overhead, roughly.
pub const ROW_OVERHEAD_BYTES: u64 = 64;

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, holding it for this
    /// process alone until it is dropped.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let opened = |source| StoreError::Open {
            path: shown.clone(),
            source,
        };
        // The store's state (the next seq, the endpoints' cursors) lives in
        // this process's memory too, so a second writer (another hookd on
        // the same file, or a command run on a live store) must fail rather
        // than interleave: a lock file says who has it. (SQLite's exclusive
        // locking mode would do the same, but would shut out the
        // checkpointer's connection.)
        let lock = lock_file(path)?;
        let conn = Connection::open(path).map_err(opened)?;
        conn.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(opened)?;
        // WAL: a commit appends to the log; FULL: the log is fsynced at every
        // commit, so a commit that returned survives a crash or power loss.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(opened)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(opened)?;
        // A log rewound after a checkpoint is written over in place, not
        // grown again; this caps what it keeps after a burst.
        conn.pragma_update(None, "journal_size_limit", MAX_LOG_FRAMES * 4096)
            .map_err(opened)?;
        conn.execute_batch(SCHEMA).map_err(opened)?;
        conn.execute_batch(registrations::SCHEMA).map_err(opened)?;
        let meta = |conn: &Connection, key: &str| -> Result<Option<i64>, rusqlite::Error> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        };
        let stored = meta(&conn, "next_seq")?.unwrap_or(1);
        let max_live: i64 = conn.query_row(
            "SELECT max(coalesce((SELECT max(seq) FROM deliveries), 0), coalesce((SELECT max(seq) FROM dead_letters), 0))",
            [],
            |r| r.get(0),
        )?;
        let next_seq = to_u64(stored.max(max_live + 1))?;
        // Checkpoints run on the checkpointer's thread, not in the middle of
        // a commit an appender waits for.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Checkpointer::start(path)?;
        let store_id = match meta(&conn, "store_id")? {
            Some(id) => u32::try_from(id).map_err(|_| StoreError::Corrupt(format!("store_id {id}")))?,
            None => {
                let id = new_store_id();
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('store_id', ?1)",
                    [i64::from(id)],
                )?;
                id
            }
        };
        Ok(Self {
            conn,
            next_seq,
            reserved_until: next_seq,
            store_id,
            checkpointer,
            _lock: lock,
        })
    }

    /// Copies the log into the database file, so it does not grow.
    /// After the commit of a transaction that numbered rows up to `next`.
    fn committed_up_to(&mut self, next: u64) {
        if next > self.reserved_until {
            self.reserved_until = next + SEQ_BLOCK;
        }
        self.next_seq = next;
    }

    /// After a commit: asks for a background checkpoint now and then, and
    /// checkpoints here if the log has outgrown [`MAX_LOG_FRAMES`].
    fn after_commit(&mut self) -> Result<(), StoreError> {
        if self.checkpointer.log_frames.load(Ordering::Relaxed) > MAX_LOG_FRAMES {
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            self.checkpointer.log_frames.store(0, Ordering::Relaxed);
        }
        self.checkpointer.kick();
        Ok(())
    }

    /// Writes `batch` in one transaction.
    fn commit_transaction(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let mut next = self.next_seq;
        {
            // Cached: a lone notification's commit would otherwise spend
            // more on parsing SQL than on writing its row.
            let mut insert = tx.prepare_cached(INSERT)?;
            for event in &batch.appends {
                let event_id = next;
                for endpoint in &event.endpoints {
                    let bytes = row_bytes(event, endpoint);
                    insert.execute(params![
                        to_i64(next)?,
                        to_i64(event_id)?,
                        &**endpoint,
                        event.hook,
                        event.client_id,
                        to_i64(event.created_ms)?,
                        event.call,
                        to_i64(bytes)?,
                    ])?;
                    next += 1;
                }
            }
            let mut bury = tx.prepare_cached(BURY)?;
            for (seq, reason, dead_ms) in &batch.dead {
                bury.execute(params![to_i64(*seq)?, reason, to_i64(*dead_ms)?])?;
            }
            let mut delete = tx.prepare_cached(DELETE)?;
            for seq in batch
                .delivered
                .iter()
                .chain(batch.dead.iter().map(|(seq, _, _)| seq))
            {
                delete.execute([to_i64(*seq)?])?;
            }
            reserve_for(&tx, self.reserved_until, next)?;
        }
        tx.commit()?;
        self.committed_up_to(next);
        self.after_commit()
    }
}

impl Store for SqliteStore {
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        // Only appends must be on disk when this returns (their brokers are
        // acknowledged then); a commit of removals alone skips the fsync (a
        // removal lost to a crash is a delivery repeated), and the next FULL
        // commit makes it durable with the rest of the log.
        let durable = !batch.appends.is_empty();
        if !durable {
            self.conn
                .prepare_cached("PRAGMA synchronous = NORMAL")?
                .execute([])?;
        }
        let committed = self.commit_transaction(batch);
        if !durable {
            self.conn
                .prepare_cached("PRAGMA synchronous = FULL")?
                .execute([])?;
        }
        committed
    }

    fn pending(&mut self, endpoint: &str, after: u64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut statement = self.conn.prepare_cached(PENDING)?;
        let rows = statement.query_map(
            params![endpoint, to_i64(after)?, i64::try_from(limit).unwrap_or(i64::MAX)],
            delivery,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn pending_of_client(
        &mut self,
        endpoint: &str,
        client_id: &str,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut statement = self.conn.prepare_cached(PENDING_OF_CLIENT)?;
        let rows = statement.query_map(
            params![
                endpoint,
                to_i64(after)?,
                to_i64(through)?,
                client_id,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            delivery,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn backlog(&mut self) -> Result<HashMap<String, Backlog>, StoreError> {
        let mut statement = self.conn.prepare(
            "SELECT endpoint, count(*), coalesce(sum(bytes), 0) FROM deliveries GROUP BY endpoint",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Backlog {
                    depth: r.get::<_, i64>(1)?.unsigned_abs(),
                    bytes: r.get::<_, i64>(2)?.unsigned_abs(),
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn oldest_ms(&mut self) -> Result<Option<u64>, StoreError> {
        // The row first in order is (but for replayed dead letters) the
        // oldest, and found through the primary key, not a scan.
        let oldest: Option<i64> = self
            .conn
            .query_row(
                "SELECT created_ms FROM deliveries ORDER BY seq LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        oldest.map(to_u64).transpose()
    }

    fn dead_letters(&mut self, after: u64, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT {COLUMNS}, reason, dead_ms FROM dead_letters WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = statement.query_map(
            params![to_i64(after)?, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok(DeadLetter {
                    delivery: delivery(r)?,
                    reason: r.get(8)?,
                    dead_ms: r.get::<_, i64>(9)?.unsigned_abs(),
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn replay(&mut self, which: Selection) -> Result<Vec<Delivery>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut next = self.next_seq;
        let mut replayed = Vec::new();
        {
            let (filter, arg) = selection(which)?;
            let mut select = tx.prepare(&format!(
                "SELECT {COLUMNS} FROM dead_letters WHERE {filter} ORDER BY seq"
            ))?;
            let rows: Vec<Delivery> = select.query_map([arg], delivery)?.collect::<Result<_, _>>()?;
            let mut insert = tx.prepare(&format!(
                "INSERT INTO deliveries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))?;
            let mut delete = tx.prepare("DELETE FROM dead_letters WHERE seq = ?1")?;
            for mut row in rows {
                delete.execute([to_i64(row.seq)?])?;
                row.seq = next;
                next += 1;
                insert.execute(params![
                    to_i64(row.seq)?,
                    to_i64(row.event_id)?,
                    row.endpoint,
                    row.hook,
                    row.client_id,
                    to_i64(row.created_ms)?,
                    row.call,
                    to_i64(row.bytes)?,
                ])?;
                replayed.push(row);
            }
            reserve_for(&tx, self.reserved_until, next)?;
        }
        tx.commit()?;
        self.committed_up_to(next);
        Ok(replayed)
    }

    fn drop_dead(&mut self, which: Selection) -> Result<u64, StoreError> {
        let (filter, arg) = selection(which)?;
        let n = self
            .conn
            .execute(&format!("DELETE FROM dead_letters WHERE {filter}"), [arg])?;
        Ok(n as u64)
    }

    fn stop_endpoint(&mut self, endpoint: &str, reason: &str, since_ms: u64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO stopped_endpoints (endpoint, reason, since_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (endpoint) DO UPDATE SET reason = excluded.reason, since_ms = excluded.since_ms",
            params![endpoint, reason, to_i64(since_ms)?],
        )?;
        Ok(())
    }

    fn enable_endpoint(&mut self, endpoint: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM stopped_endpoints WHERE endpoint = ?1", [endpoint])?;
        Ok(n > 0)
    }

    fn stopped_endpoints(&mut self) -> Result<Vec<String>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT endpoint FROM stopped_endpoints ORDER BY endpoint")?;
        let rows = statement.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn store_id(&self) -> u32 {
        self.store_id
    }

    fn registrations(&mut self) -> Result<Vec<StoredRegistration>, StoreError> {
        registrations::list(&self.conn)
    }

    fn save_registration(&mut self, registration: &StoredRegistration) -> Result<(), StoreError> {
        registrations::save(&self.conn, registration)
    }

    fn delete_registration(&mut self, hook: &str, endpoint: &str) -> Result<bool, StoreError> {
        registrations::delete(&self.conn, hook, endpoint)
    }
}

impl Checkpointer {
    /// Opens a second connection to the store at `path` and starts the
    /// thread that checkpoints through it when asked.
    fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(2))?;
        let (kick, kicks) = mpsc::sync_channel(1);
        let log_frames = Arc::new(AtomicU64::new(0));
        let seen = log_frames.clone();
        let thread = std::thread::Builder::new()
            .name("hookd-checkpoint".into())
            .spawn(move || {
                while kicks.recv().is_ok() {
                    // PASSIVE: copies what it can without waiting for (or
                    // holding up) the writer.
                    let checkpoint =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
                    match checkpoint {
                        Ok(frames) => seen.store(frames.unsigned_abs(), Ordering::Relaxed),
                        Err(e) => warn!(error = %e, "outbox checkpoint failed (retried on the next commits)"),
                    }
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the outbox checkpoint thread: {e}")))?;
        Ok(Self {
            kick: Some(kick),
            thread: Some(thread),
            log_frames,
            kicked: Instant::now(),
        })
    }

    /// Asks for a checkpoint if none was asked for within
    /// [`CHECKPOINT_INTERVAL`].
    fn kick(&mut self) {
        if self.kicked.elapsed() >= CHECKPOINT_INTERVAL {
            self.kicked = Instant::now();
            if let Some(kick) = &self.kick {
                let _ = kick.try_send(());
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.kick.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Opens and locks `path` + `.lock`, or says the store is in use.
fn lock_file(path: &Path) -> Result<File, StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let shown = Path::new(&name).display().to_string();
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .map_err(|source| StoreError::Lock {
            path: shown.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse(path.display().to_string())),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Lock { path: shown, source }),
    }
}

/// Within a transaction that numbers rows up to `next`: when `next` passes
/// the block reserved so far (`reserved_until`), records that `seq`s below
/// `next + SEQ_BLOCK` may have been handed out.
fn reserve_for(tx: &rusqlite::Transaction<'_>, reserved_until: u64, next: u64) -> Result<(), StoreError> {
    if next > reserved_until {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('next_seq', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [to_i64(next + SEQ_BLOCK)?],
        )?;
    }
    Ok(())
}

/// What a row of `event` for `endpoint` counts against `outbox.max_bytes`.
pub fn row_bytes(event: &NewEvent, endpoint: &str) -> u64 {
    (event.call.len() + event.client_id.len() + endpoint.len() + event.hook.len()) as u64 + ROW_OVERHEAD_BYTES
}

fn delivery(r: &rusqlite::Row<'_>) -> Result<Delivery, rusqlite::Error> {
    Ok(Delivery {
        seq: r.get::<_, i64>(0)?.unsigned_abs(),
        event_id: r.get::<_, i64>(1)?.unsigned_abs(),
        endpoint: r.get(2)?,
        hook: r.get(3)?,
        client_id: r.get(4)?,
        created_ms: r.get::<_, i64>(5)?.unsigned_abs(),
        call: r.get(6)?,
        bytes: r.get::<_, i64>(7)?.unsigned_abs(),
    })
}

/// The `WHERE` clause of a [`Selection`] and its one parameter.
fn selection(which: Selection) -> Result<(&'static str, i64), StoreError> {
    Ok(match which {
        Selection::Id(seq) => ("seq = ?1", to_i64(seq)?),
        Selection::All => ("?1 = ?1", 0),
    })
}

fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{n} is out of SQLite's integer range")))
}

fn to_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative value {n}")))
}

/// A store id unlikely to repeat: the clock's nanoseconds mixed with the
/// process id (no randomness crate is needed for an id that only has to
/// differ between the stores one receiver hears from).
fn new_store_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ ((nanos >> 64) as u64);
    // Fold, then a multiplicative hash spreads nearby clocks apart.
    let folded = (mixed ^ (mixed >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (folded >> 32) as u32
}

/// A webhook registered at run time, as stored: the keys `hookd webhooks
/// register` sets (the others keep their defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRegistration {
    /// The hook's name.
    pub hook: String,
    /// The endpoint URL as given.
    pub endpoint: String,
    /// `base64_payload`.
    pub base64_payload: bool,
    /// `no_payload`.
    pub no_payload: bool,
    /// `response_timeout`, in ms.
    pub response_timeout_ms: u64,
}

/// The `registrations` table: run-time webhook registrations, in `position`
/// order. Separate from the outbox's tables; the writer thread runs these
/// like any other store access, off the append path.
mod registrations {
    use rusqlite::{Connection, params};

    use super::{StoreError, StoredRegistration, to_i64, to_u64};

    pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS registrations (
    hook TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    position INTEGER NOT NULL,
    base64_payload INTEGER NOT NULL,
    no_payload INTEGER NOT NULL,
    response_timeout_ms INTEGER NOT NULL,
    PRIMARY KEY (hook, endpoint)
);
";

    pub fn list(conn: &Connection) -> Result<Vec<StoredRegistration>, StoreError> {
        let mut statement = conn.prepare(
            "SELECT hook, endpoint, base64_payload, no_payload, response_timeout_ms
             FROM registrations ORDER BY position",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (hook, endpoint, base64_payload, no_payload, timeout) = row?;
            Ok(StoredRegistration {
                hook,
                endpoint,
                base64_payload: base64_payload != 0,
                no_payload: no_payload != 0,
                response_timeout_ms: to_u64(timeout)?,
            })
        })
        .collect()
    }

    pub fn save(conn: &Connection, registration: &StoredRegistration) -> Result<(), StoreError> {
        conn.execute(
            "INSERT INTO registrations (hook, endpoint, position, base64_payload, no_payload, response_timeout_ms)
             VALUES (?1, ?2, (SELECT coalesce(max(position), 0) + 1 FROM registrations), ?3, ?4, ?5)
             ON CONFLICT (hook, endpoint) DO UPDATE SET
                 base64_payload = excluded.base64_payload,
                 no_payload = excluded.no_payload,
                 response_timeout_ms = excluded.response_timeout_ms",
            params![
                registration.hook,
                registration.endpoint,
                i64::from(registration.base64_payload),
                i64::from(registration.no_payload),
                to_i64(registration.response_timeout_ms)?,
            ],
        )?;
        Ok(())
    }

    pub fn delete(conn: &Connection, hook: &str, endpoint: &str) -> Result<bool, StoreError> {
        let n = conn.execute(
            "DELETE FROM registrations WHERE hook = ?1 AND endpoint = ?2",
            [hook, endpoint],
        )?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Instant};

    use super::*;

    fn event(client: &str, endpoints: &[&str]) -> NewEvent {
        NewEvent {
            hook: "on_publish",
            client_id: client.to_owned(),
            created_ms: 1_000,
            call: vec![7; 200],
            endpoints: endpoints.iter().map(|e| Arc::from(*e)).collect(),
        }
    }

    fn temp_store(name: &str) -> (SqliteStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("hookd-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let path = dir.join("outbox.db");
        (SqliteStore::open(&path).expect("opens"), path)
    }

    #[test]
    fn appended_rows_come_back_in_order_per_endpoint_and_survive_a_reopen() {
        let (mut store, path) = temp_store("reopen");
        let batch = Batch {
            appends: vec![
                event("a", &["http://x/", "http://y/"]),
                event("b", &["http://x/"]),
            ],
            ..Batch::default()
        };
        store.commit(&batch).expect("commits");
        let x = store.pending("http://x/", 0, 10).expect("reads");
        assert_eq!(
            x.iter().map(|d| d.client_id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let y = store.pending("http://y/", 0, 10).expect("reads");
        assert_eq!(
            y[0].event_id, x[0].event_id,
            "one event, one id for every endpoint"
        );
        assert_ne!(x[0].event_id, x[1].event_id);
        let id = store.store_id();
        drop(store);
        let mut store = SqliteStore::open(&path).expect("reopens");
        assert_eq!(store.store_id(), id);
        assert_eq!(store.pending("http://x/", 0, 10).expect("reads"), x);
        store
            .commit(&Batch {
                delivered: x.iter().map(|d| d.seq).collect(),
                dead: vec![(y[0].seq, "gone".into(), 2_000)],
                ..Batch::default()
            })
            .expect("commits");
        assert!(store.backlog().expect("backlog").is_empty());
        store
            .commit(&Batch {
                appends: vec![event("c", &["http://x/"])],
                ..Batch::default()
            })
            .expect("commits");
        let next = store.pending("http://x/", 0, 10).expect("reads");
        assert!(next[0].seq > x[1].seq, "a seq is never reused");
    }

    #[test]
    fn a_replayed_dead_letter_keeps_its_event_id_and_goes_last() {
        let (mut store, _) = temp_store("replay");
        store
            .commit(&Batch {
                appends: vec![event("a", &["http://x/"]), event("a", &["http://x/"])],
                ..Batch::default()
            })
            .expect("commits");
        let rows = store.pending("http://x/", 0, 10).expect("reads");
        store
            .commit(&Batch {
                dead: vec![(rows[0].seq, "HTTP 400".into(), 5)],
                ..Batch::default()
            })
            .expect("commits");
        let dead = store.dead_letters(0, 10).expect("lists");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].reason, "HTTP 400");
        let replayed = store.replay(Selection::All).expect("replays");
        assert_eq!(replayed[0].event_id, rows[0].event_id);
        assert!(replayed[0].seq > rows[1].seq);
        assert!(store.dead_letters(0, 10).expect("lists").is_empty());
        assert_eq!(store.drop_dead(Selection::Id(1)).expect("drops"), 0);
    }

    #[test]
    fn a_store_held_by_one_process_is_refused_to_another_opener() {
        let (store, path) = temp_store("exclusive");
        let Err(err) = SqliteStore::open(&path) else {
            panic!("a second opener gets the store");
        };
        assert!(matches!(err, StoreError::InUse(_)), "{err}");
        drop(store);
        SqliteStore::open(&path).expect("free again once closed");
    }

    #[test]
    fn registrations_are_kept_in_order_across_a_reopen_until_deleted() {
        let (mut store, path) = temp_store("registrations");
        let registration = |hook: &str, endpoint: &str| StoredRegistration {
            hook: hook.into(),
            endpoint: endpoint.into(),
            base64_payload: true,
            no_payload: false,
            response_timeout_ms: 5000,
        };
        store
            .save_registration(&registration("on_publish", "http://b/"))
            .expect("save");
        store
            .save_registration(&registration("on_publish", "http://a/"))
            .expect("save");
        let mut changed = registration("on_publish", "http://b/");
        changed.no_payload = true;
        store.save_registration(&changed).expect("update");
        drop(store);
        let mut store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(
            store.registrations().expect("list"),
            [changed.clone(), registration("on_publish", "http://a/")]
        );
        assert!(
            store
                .delete_registration("on_publish", "http://b/")
                .expect("delete")
        );
        assert!(
            !store
                .delete_registration("on_publish", "http://b/")
                .expect("gone")
        );
        assert_eq!(store.registrations().expect("list").len(), 1);
    }

    #[test]
    fn stopped_endpoints_are_remembered_until_enabled() {
        let (mut store, _) = temp_store("stopped");
        store.stop_endpoint("http://x/", "410", 1).expect("stops");
        assert_eq!(store.stopped_endpoints().expect("lists"), ["http://x/"]);
        assert!(store.enable_endpoint("http://x/").expect("enables"));
        assert!(!store.enable_endpoint("http://x/").expect("enables"));
        assert!(store.stopped_endpoints().expect("lists").is_empty());
    }

    /// Measures group commit on this machine's disk: appends per second at
    /// several batch sizes, and the latency of a one-event commit. Run with
    /// `cargo test -p hookd --release -- --ignored --nocapture outbox_append_rate`.
    #[test]
    #[ignore = "a measurement, not a test"]
    fn outbox_append_rate() {
        let (mut store, _) = temp_store("rate");
        for batch_size in [1, 50, 500, 1000, 4096] {
            let commits = (20_000 / batch_size).clamp(20, 400);
            let started = Instant::now();
            let mut latencies = Vec::new();
            for _ in 0..commits {
                let batch = Batch {
                    appends: (0..batch_size)
                        .map(|i| event(&format!("c{i}"), &["http://x/"]))
                        .collect(),
                    ..Batch::default()
                };
                let one = Instant::now();
                store.commit(&batch).expect("commits");
                latencies.push(one.elapsed());
            }
            let elapsed = started.elapsed();
            latencies.sort();
            println!(
                "batch {batch_size:>5}: {:>9.0} appends/s, commit p50 {:?} p99 {:?}",
                (commits * batch_size) as f64 / elapsed.as_secs_f64(),
                latencies[latencies.len() / 2],
                latencies[latencies.len() * 99 / 100],
            );
        }
    }
}
