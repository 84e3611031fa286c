//! One broker stream: hello, then calls in and verdicts out, many in flight.
//!
//! tonic bounds neither a bidirectional stream's life nor its concurrency,
//! so this handler does: at most `max_in_flight` calls run at once (past it,
//! hookd stops reading the stream until one finishes, which pushes back on
//! the broker through HTTP/2 flow control); each call has a deadline; and on
//! shutdown ([`crate::shutdown`]) the stream stops taking calls that need a
//! webhook, lets those in flight finish within the grace period, answers the
//! ones still running then `overloaded`, and ends with `UNAVAILABLE`, so
//! graceful shutdown never waits on an open stream for longer than that.
//!
//! The session *is* the response stream: it is polled by the HTTP/2 stream
//! that sends its frames, and its calls run as futures inside it (a
//! `FuturesUnordered`), with no task or channel of its own; a call that needs
//! no webhook request (a cache hit) is answered as its frame is read, without
//! becoming a future at all, and a notification is a small future waiting
//! for its outbox commit (other calls on the stream go on meanwhile; during
//! shutdown notifications are still taken). A verdict thus
//! goes out without a hand-off between tasks; when the broker stops reading,
//! flow control stops the polling (backpressure), and when the broker goes
//! away the stream is dropped with every call in it.

use std::{
    collections::HashSet,
    future::{Future, poll_fn},
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::{Stream, StreamExt, stream::FuturesUnordered};
use hookd_proto::{
    ErrorKind, Hook, Verdict, convert,
    frame::{self, RawBrokerFrame, RawFrame as In},
    v1::{self as pb, server_frame::Frame as Out},
};
use tonic::{Status, Streaming};
use tracing::{debug, info, warn};

use crate::{
    dispatch::{Dispatcher, Pending},
    metrics::Metrics,
    shutdown::Shutdown,
};

/// What bounds a session.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Calls in flight at once on one stream.
    pub max_in_flight: usize,
    /// Deadline of a call that sets none.
    pub default_timeout: Duration,
    /// The largest encoded call run; told to the broker in `Welcome`.
    pub max_call_bytes: usize,
    /// Broker streams open at once, in all.
    pub max_streams: usize,
    /// Broker streams open at once on one connection.
    pub max_streams_per_connection: usize,
}

impl Limits {
    /// The largest frame read at all: 4 times the call limit, so an
    /// oversized call can be answered for its id rather than end the stream.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_call_bytes.saturating_mul(4)
    }
}

/// What woke the session up.
// Built and matched at once, never stored: boxing the verdict would cost an
// allocation per answer for nothing.
#[allow(clippy::large_enum_variant)]
enum Event {
    /// hookd began shutting down: no new webhook calls.
    Draining,
    /// The grace period is over: answer the rest and end.
    GraceOver,
    Answered(u64, Verdict),
    HooksChanged,
    Frame(Result<Option<RawBrokerFrame>, Status>),
}

/// An open broker stream's bookkeeping: counted in `hookd_streams` for as
/// long as it lives, with the ids of its calls in flight. Dropped with ids
/// left (the broker's connection closed under the stream, or the stream
/// failed), it logs and counts those calls: they will never be answered, and
/// an operator must be able to see that they were lost and why.
struct OpenStream {
    // Call ids are the broker's counters: foldhash, not SipHash.
    ids: HashSet<u64, foldhash::fast::RandomState>,
    node_id: String,
    metrics: Arc<Metrics>,
    /// Its entry in `hookd brokers`, left as the stream is dropped.
    broker: crate::brokers::Entered,
}

impl OpenStream {
    fn new(node_id: String, metrics: Arc<Metrics>, broker: crate::brokers::Entered) -> Self {
        metrics.streams.inc();
        Self {
            ids: HashSet::with_hasher(foldhash::fast::RandomState::default()),
            node_id,
            metrics,
            broker,
        }
    }

    /// Tells `hookd brokers` how many calls are in flight.
    fn counted(&self) {
        self.broker.session().set_in_flight(self.ids.len());
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.metrics.streams.dec();
        if !self.ids.is_empty() {
            warn!(
                node_id = %self.node_id,
                calls = self.ids.len(),
                "broker stream ended with calls in flight: they get no verdict (the connection closed or the stream failed)"
            );
            self.metrics.calls_unanswered.inc_by(self.ids.len() as u64);
        }
    }
}

/// Serves one broker stream from `peer`: the frames to send it, until the
/// broker closes its side and every call is answered, a protocol error, or
/// `shutdown` (see the module docs). From its Hello on it is listed among
/// the dispatcher's brokers ([`crate::brokers`]).
pub fn serve(
    mut inbound: Streaming<RawBrokerFrame>,
    peer: Option<std::net::SocketAddr>,
    dispatcher: Arc<Dispatcher>,
    limits: Limits,
    shutdown: Shutdown,
) -> impl Stream<Item = Result<pb::ServerFrame, Status>> + Send + 'static {
    // Counted from now until the stream is dropped: shutdown waits for it.
    let active = shutdown.enter();
    async_stream::stream! {
        let _active = active;
        let hello = tokio::select! {
            _ = shutdown.draining() => {
                yield Err(shutting_down());
                return;
            }
            first = inbound.message() => match first {
                Ok(Some(RawBrokerFrame { frame: Some(In::Hello(hello)) })) => hello,
                Ok(Some(_)) => {
                    yield Err(Status::invalid_argument("the first frame must be Hello"));
                    return;
                }
                Ok(None) => return,
                Err(status) => {
                    warn!(%status, "broker stream failed before Hello");
                    yield Err(status);
                    return;
                }
            },
        };
        info!(node_id = %hello.node_id, broker = %hello.broker_kind, version = %hello.broker_version, "broker connected");
        // Only the node id is logged again; the rest of Hello is not kept
        // for the stream's life (an idle stream's memory is a target).
        let broker = dispatcher.brokers().enter(&hello.node_id, &hello.broker_kind, &hello.broker_version, peer);
        let mut calls = OpenStream::new(hello.node_id, dispatcher.metrics().clone(), broker);
        let mut active = dispatcher.registry().active_hooks();
        let welcome = pb::Welcome {
            active_hooks: convert::hooks_to_proto(&active.borrow_and_update()),
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
            max_call_bytes: limits.max_call_bytes as u64,
        };
        yield Ok(frame(Out::Welcome(welcome)));

        let dispatcher = &*dispatcher;
        // Made once, not per event: each registers a waiter (behind a lock)
        // when first polled, and only one of them is polled at a time (the
        // second once the first has fired). Hook changes are waited for
        // afresh each time, but only between bursts (below), and need no
        // allocation per stream.
        let draining_signal = shutdown.draining();
        let grace_over = shutdown.grace_over();
        tokio::pin!(draining_signal, grace_over);
        let mut draining = false;
        let mut in_flight = FuturesUnordered::new();
        let mut reading = true;
        let mut burst = 0;
        loop {
            if !reading && in_flight.is_empty() {
                info!(node_id = %calls.node_id, "broker closed its stream");
                break;
            }
            if draining && in_flight.is_empty() {
                info!(node_id = %calls.node_id, "broker stream ended: hookd is shutting down, no call in flight");
                shutdown.stream_ended();
                yield Err(shutting_down());
                break;
            }
            let can_read = reading && in_flight.len() < limits.max_in_flight;
            // Under load most events are ready at once: take them a burst at
            // a time without polling the shutdown and hook-change waiters
            // (each poll of those takes a lock), which are checked between
            // bursts and whenever nothing is ready.
            let ready = if burst < BURST {
                poll_fn(|cx| Poll::Ready(ready_event(cx, &mut in_flight, &mut inbound, can_read))).await
            } else {
                None
            };
            let event = match ready {
                Some(event) => {
                    burst += 1;
                    event
                }
                None => {
                    burst = 0;
                    tokio::select! {
                        biased;
                        _ = &mut grace_over, if draining => Event::GraceOver,
                        _ = &mut draining_signal, if !draining => Event::Draining,
                        // Before the hook-change waiter: a wake-up is most
                        // often an answer or a frame, and then that waiter
                        // (and its lock) is not polled at all.
                        event = poll_fn(|cx| match ready_event(cx, &mut in_flight, &mut inbound, can_read) {
                            Some(event) => Poll::Ready(event),
                            None => Poll::Pending,
                        }) => event,
                        Ok(()) = active.changed() => Event::HooksChanged,
                    }
                }
            };
            match event {
                Event::Draining => {
                    draining = true;
                    if !in_flight.is_empty() {
                        info!(node_id = %calls.node_id, calls = in_flight.len(), "hookd is shutting down: letting calls in flight finish");
                    }
                }
                Event::GraceOver => {
                    let overloaded = calls.ids.len();
                    shutdown.calls_overloaded(overloaded);
                    shutdown.stream_ended();
                    for id in calls.ids.drain() {
                        yield Ok(verdict_frame(id, shutdown_verdict()));
                    }
                    info!(node_id = %calls.node_id, overloaded, "broker stream ended: shutdown grace period over");
                    yield Err(shutting_down());
                    break;
                }
                Event::Answered(id, verdict) => {
                    calls.ids.remove(&id);
                    calls.counted();
                    if draining {
                        shutdown.call_finished();
                    }
                    yield Ok(verdict_frame(id, verdict));
                }
                Event::HooksChanged => {
                    let hooks = convert::hooks_to_proto(&active.borrow_and_update());
                    yield Ok(frame(Out::HooksChanged(pb::HooksChanged { active_hooks: hooks })));
                }
                Event::Frame(Ok(Some(RawBrokerFrame { frame: Some(In::Call(call)) }))) => {
                    // Decided outside the stream's state machine, so neither
                    // the call nor its conversion is kept across a yield:
                    // only the frame that goes out is.
                    let answer = match admit(call, dispatcher, &calls.ids, limits) {
                        Admitted::Answer(frame) => frame,
                        Admitted::Dropped => continue,
                        // The flag is read too: a frame read in a burst
                        // may come before the draining event is seen.
                        Admitted::Run { id, ref pending, .. }
                            if pending.needs_webhook() && (draining || shutdown.is_draining()) =>
                        {
                            shutdown.call_refused();
                            verdict_frame(id, shutdown_verdict())
                        }
                        Admitted::Run { id, pending, deadline } => {
                            calls.ids.insert(id);
                            calls.counted();
                            in_flight.push(async move { (id, dispatcher.finish(pending, deadline).await) });
                            continue;
                        }
                    };
                    yield Ok(answer);
                }
                Event::Frame(Ok(Some(_))) => {
                    warn!(node_id = %calls.node_id, "broker sent a frame other than Call after Hello");
                    yield Err(Status::invalid_argument("only Call frames may follow Hello"));
                    break;
                }
                Event::Frame(Ok(None)) => reading = false,
                Event::Frame(Err(status)) => {
                    // Ends with the status, never OK: the broker must see
                    // that its stream failed (its calls are not answered).
                    warn!(node_id = %calls.node_id, %status, "broker stream failed");
                    yield Err(status);
                    break;
                }
            }
        }
    }
}

/// What becomes of a call frame.
enum Admitted {
    /// Answered at once: a cache hit, a hook without endpoints, a
    /// notification the outbox refused, or an invalid call.
    Answer(pb::ServerFrame),
    /// Not answered: a call whose id cannot be read, or whose id is already
    /// in flight (the call in flight gets the one verdict for that id).
    Dropped,
    /// Its webhooks are to be asked (or, a notification, its outbox commit
    /// waited for), within `deadline`.
    Run {
        id: u64,
        pending: Pending,
        deadline: Duration,
    },
}

/// Decides what becomes of the encoded `call`: invalid (it does not decode,
/// is over the size limit, or its arguments do not convert), dropped (its id
/// is unreadable or already among `in_flight`), answered at once, or to be run.
fn admit(
    call: bytes::Bytes,
    dispatcher: &Dispatcher,
    in_flight: &HashSet<u64, foldhash::fast::RandomState>,
    limits: Limits,
) -> Admitted {
    let call = match frame::decode_call(call, limits.max_call_bytes) {
        Ok(call) => call,
        Err(bad) => {
            dispatcher.metrics().bad_calls.inc();
            return match bad.id {
                Some(id) if !in_flight.contains(&id) => {
                    warn!(id, error = %bad, "a call that cannot be run");
                    Admitted::Answer(verdict_frame(
                        id,
                        Verdict::error(ErrorKind::InvalidCall, bad.reason),
                    ))
                }
                id => {
                    warn!(?id, error = %bad, "a call that cannot be answered: its id is unreadable or in flight");
                    Admitted::Dropped
                }
            };
        }
    };
    let id = call.id;
    if in_flight.contains(&id) {
        // A verdict for it could not be told from the original's: the call
        // in flight keeps the one verdict of its id.
        dispatcher.metrics().bad_calls.inc();
        warn!(id, "a call reuses the id of a call in flight; not answered");
        return Admitted::Dropped;
    }
    let hook = call.hook.as_ref().map(Hook::of_proto_args);
    let hook_call = match convert::call_from_proto(call.hook) {
        Ok(hook_call) => hook_call,
        Err(invalid) => {
            debug!(id, error = %invalid, "invalid call");
            dispatcher.invalid(hook);
            return Admitted::Answer(verdict_frame(
                id,
                Verdict::error(ErrorKind::InvalidCall, invalid.to_string()),
            ));
        }
    };
    match dispatcher.start(hook_call) {
        Ok(verdict) => Admitted::Answer(verdict_frame(id, verdict)),
        Err(pending) => Admitted::Run {
            id,
            pending,
            deadline: deadline(call.timeout_ms, limits.default_timeout),
        },
    }
}

/// Events taken in one burst before shutdown and hook changes are checked.
const BURST: usize = 64;

/// An answered call or a broker frame, if one is ready now; polled with the
/// session's own waker, so a `None` leaves both registered for wake-up.
fn ready_event<F>(
    cx: &mut Context<'_>,
    in_flight: &mut FuturesUnordered<F>,
    inbound: &mut Streaming<RawBrokerFrame>,
    can_read: bool,
) -> Option<Event>
where
    F: Future<Output = (u64, Verdict)>,
{
    if !in_flight.is_empty()
        && let Poll::Ready(Some((id, verdict))) = in_flight.poll_next_unpin(cx)
    {
        return Some(Event::Answered(id, verdict));
    }
    if !can_read {
        return None;
    }
    match inbound.poll_next_unpin(cx) {
        Poll::Ready(Some(frame)) => Some(Event::Frame(frame.map(Some))),
        Poll::Ready(None) => Some(Event::Frame(Ok(None))),
        Poll::Pending => None,
    }
}

/// The deadline a call asked for (0 or absent: the default).
pub fn deadline(timeout_ms: Option<u32>, default: Duration) -> Duration {
    match timeout_ms {
        Some(ms) if ms > 0 => Duration::from_millis(u64::from(ms)),
        _ => default,
    }
}

/// The verdict of a call hookd will not finish because it is shutting down.
pub fn shutdown_verdict() -> Verdict {
    Verdict::error(ErrorKind::Overloaded, "hookd is shutting down")
}

/// The status a stream ends with when hookd shuts down: the broker should
/// reconnect, to another hookd or to this one's successor.
fn shutting_down() -> Status {
    Status::unavailable("hookd is shutting down")
}

fn verdict_frame(id: u64, verdict: Verdict) -> pb::ServerFrame {
    frame(Out::Verdict(convert::verdict_to_proto(id, verdict)))
}

fn frame(frame: Out) -> pb::ServerFrame {
    pb::ServerFrame { frame: Some(frame) }
}
