//! Accepting broker connections when file descriptors run out.
//!
//! A listener whose process has used up its open-file limit (`EMFILE`), or
//! the system's (`ENFILE`), keeps reporting the pending connection as ready
//! while every `accept` fails at once. tonic's own `TcpIncoming` hands such
//! an error to the server, which logs it at trace level and polls again: a
//! loop at 100% of a core per shard, silent at the default log level, that
//! starves the very connections whose closing would free descriptors.
//!
//! [`Acceptor`] is the incoming-connection stream hookd serves instead. An
//! accept error is counted in `hookd_accept_errors_total`, logged (at most
//! once a second per listener, with how many errors there were since the
//! last line), and followed by a pause that starts at 10 ms and doubles up
//! to 1 s while errors go on; the first connection accepted resets it. An
//! error that concerns one connection only (reset or aborted before it was
//! accepted) costs no pause: the next accept is another connection.
//!
//! [`raise_open_files_limit`] is the other half: at start the binary raises
//! its soft `RLIMIT_NOFILE` to the hard limit, so it runs out much later
//! (systemd's default soft limit is 1024, its hard limit 524288).

use std::{convert::Infallible, io, time::Duration};

use futures::Stream;
use prometheus_client::metrics::counter::Counter;
use tokio::{
    net::{TcpListener, TcpStream},
    time::Instant,
};
use tracing::{debug, info, warn};

use crate::shard;

/// The first pause after an accept error.
const FIRST_PAUSE: Duration = Duration::from_millis(10);

/// The longest pause between two accept attempts while they keep failing:
/// short enough that hookd serves again within a second of descriptors
/// being freed, long enough that trying costs nothing.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// At most one log line about accept errors per listener this often.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// The open-file limits of the process, as [`raise_open_files_limit`] left them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFilesLimit {
    /// The soft limit before it was raised.
    pub was: u64,
    /// The soft limit now: the most descriptors hookd may hold.
    pub soft: u64,
    /// The hard limit, the ceiling of the soft one.
    pub hard: u64,
}

/// A listener that never yields an error: it accepts broker connections,
/// sets `TCP_NODELAY` on each, and pauses with a growing backoff while
/// accepting fails (see the module documentation).
pub struct Acceptor {
    listener: TcpListener,
    errors: Counter,
    backoff: Backoff,
    reports: Reports,
    /// Accept errors since the last connection accepted.
    streak: u64,
}

/// The pause between failing accept attempts: [`FIRST_PAUSE`], doubling up
/// to [`MAX_PAUSE`].
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

/// Rate limit of the log lines about accept errors (and TLS handshake
/// failures, [`crate::tls`]), and the count of errors not yet reported in one.
#[derive(Debug, Default)]
pub(crate) struct Reports {
    last_line: Option<Instant>,
    unreported: u64,
}

impl Acceptor {
    /// Accepts from `listener`, counting every accept error in `errors`.
    pub fn new(listener: TcpListener, errors: Counter) -> Self {
        Self {
            listener,
            errors,
            backoff: Backoff::new(),
            reports: Reports::default(),
            streak: 0,
        }
    }

    /// The next connection. Errors are logged, counted and waited out, never
    /// returned: a listener stays usable through them.
    pub async fn accept(&mut self) -> TcpStream {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    self.recovered();
                    // Without it a small verdict may wait for the broker's
                    // delayed ACK (Nagle), up to 40 ms.
                    if let Err(e) = stream.set_nodelay(true) {
                        debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
                    }
                    return stream;
                }
                Err(e) if concerns_one_connection(&e) => {
                    self.errors.inc();
                    debug!(error = %e, "a connection went away before it was accepted");
                }
                Err(e) => {
                    self.errors.inc();
                    self.streak += 1;
                    let pause = self.backoff.pause();
                    if let Some(errors) = self.reports.error(Instant::now()) {
                        warn!(
                            error = %e,
                            errors,
                            pause_ms = pause.as_millis() as u64,
                            shard = shard::current(),
                            "cannot accept connections; pausing before trying again"
                        );
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// This acceptor as the incoming-connection stream tonic serves; its
    /// error type says that no error ever reaches tonic.
    pub fn into_incoming(self) -> impl Stream<Item = Result<TcpStream, Infallible>> + Send {
        futures::stream::unfold(self, |mut acceptor| async move {
            let stream = acceptor.accept().await;
            Some((Ok(stream), acceptor))
        })
    }

    /// Ends a streak of errors: the pause starts small again, and the
    /// recovery is logged (within the rate limit).
    fn recovered(&mut self) {
        if self.streak == 0 {
            return;
        }
        self.streak = 0;
        self.backoff.reset();
        if let Some(errors) = self.reports.due(Instant::now()) {
            info!(errors, shard = shard::current(), "accepting connections again");
        }
    }
}

impl Backoff {
    fn new() -> Self {
        Self { next: FIRST_PAUSE }
    }

    /// The pause to take now; the next one is twice as long, up to [`MAX_PAUSE`].
    fn pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (pause * 2).min(MAX_PAUSE);
        pause
    }

    fn reset(&mut self) {
        self.next = FIRST_PAUSE;
    }
}

impl Reports {
    /// Counts one error; if a line is due at `now`, returns how many errors
    /// it reports (this one and those suppressed since the last line).
    pub(crate) fn error(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        self.due(now)
    }

    /// If a line is due at `now` (none in the last [`REPORT_EVERY`]), takes
    /// it and returns the errors not yet reported.
    fn due(&mut self, now: Instant) -> Option<u64> {
        if self
            .last_line
            .is_some_and(|last| now.duration_since(last) < REPORT_EVERY)
        {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (on macOS, to what the
/// kernel allows a process), returning the limits before and after. Each
/// broker connection, webhook connection and listener holds a descriptor,
/// and a soft limit of 1024 is a few hundred brokers' worth.
pub fn raise_open_files_limit() -> io::Result<OpenFilesLimit> {
    #[cfg(unix)]
    {
        let (was, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
        let soft = rlimit::increase_nofile_limit(u64::MAX)?;
        Ok(OpenFilesLimit { was, soft, hard })
    }
    #[cfg(not(unix))]
    {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Whether an accept error is about one pending connection (its peer reset
/// or aborted it first) rather than the listener or the process: then the
/// next accept can succeed at once.
fn concerns_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_from_10_ms_to_1_s_and_starts_over_after_a_success() {
        let mut backoff = Backoff::new();
        let pauses: Vec<u64> = (0..9).map(|_| backoff.pause().as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.pause(), FIRST_PAUSE);
    }

    #[test]
    fn errors_are_reported_at_most_once_a_second_with_their_count() {
        let start = Instant::now();
        let mut reports = Reports::default();
        assert_eq!(
            reports.error(start),
            Some(1),
            "the first error is reported at once"
        );
        for ms in [1, 10, 500, 999] {
            assert_eq!(reports.error(start + Duration::from_millis(ms)), None);
        }
        assert_eq!(
            reports.error(start + Duration::from_millis(1000)),
            Some(5),
            "a second later, one line covers the four suppressed errors and this one"
        );
        assert_eq!(reports.due(start + Duration::from_millis(1500)), None);
        assert_eq!(reports.due(start + Duration::from_millis(2000)), Some(0));
    }

    #[test]
    fn only_errors_about_one_connection_skip_the_pause() {
        let kinds = [io::ErrorKind::ConnectionAborted, io::ErrorKind::ConnectionReset];
        for kind in kinds {
            assert!(concerns_one_connection(&io::Error::from(kind)), "{kind:?}");
        }
        // EMFILE and ENFILE, as the kernel reports them on Linux.
        for errno in [24, 23] {
            assert!(!concerns_one_connection(&io::Error::from_raw_os_error(errno)));
        }
    }

    #[test]
    fn the_soft_open_files_limit_ends_at_the_hard_limit() {
        let limit = raise_open_files_limit().expect("getrlimit and setrlimit work here");
        assert!(limit.was <= limit.soft && limit.soft <= limit.hard, "{limit:?}");
    }

    #[tokio::test]
    async fn accepted_connections_have_nodelay_set() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("bound");
        let errors = Counter::default();
        let mut acceptor = Acceptor::new(listener, errors.clone());
        let _client = TcpStream::connect(addr).await.expect("connect");
        let accepted = tokio::time::timeout(Duration::from_secs(10), acceptor.accept())
            .await
            .expect("accepted in time");
        assert!(accepted.nodelay().expect("readable option"));
        assert_eq!(errors.get(), 0);
    }
}
