//! Delivery: one task per endpoint sends its pending rows, in order per
//! client, with retries by outcome.
//!
//! An endpoint's task reads its rows from the store in pages of [`PAGE`]
//! after a cursor (its last row read), so the backlog stays on disk: memory
//! holds at most `outbox.window` deliveries in flight, one page read ahead,
//! and [`HELD`] rows waiting behind a client's earlier one. A client with a
//! delivery in flight (or backing off) gets its next row only once that one
//! is done, so one client's events arrive in order; other clients' rows go
//! out beside it, up to the window. A client with [`CLIENT_HELD`] rows held
//! has its further rows passed over while reading and read again (by client)
//! once those are sent: a backlog of up to [`PASSED`] behind one retried
//! notification holds up only its own client.
//!
//! Each delivery retries by outcome ([`classify`]): connection errors,
//! timeouts, 408, 429 and 5xx are retried with exponential backoff and jitter
//! (backon; a `Retry-After` from the endpoint wins) until the webhook's
//! `retry_budget_ms`, counted from the event's acceptance, runs out; then,
//! and at once for any other 4xx, the row becomes a dead letter. A 410 Gone
//! stops the whole webhook until an operator enables it (logged at ERROR).
//! An endpoint going down and recovering is logged once each, not per event.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use hookd_proto::{ErrorKind, HookCall, convert, v1 as pb};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{Delivery, EndpointState, Outbox, now_ms};
use crate::{
    registry::Registry,
    webhook::{DeliveryAnswer, Endpoint, WebhookError},
};

/// Rows read from the store at a time.
pub const PAGE: usize = 256;

/// Rows held in memory behind an earlier row of their client, at most, per
/// endpoint; past it the task reads no further until some are sent. (Past
/// [`CLIENT_HELD`] for one client, its rows are passed over instead.)
pub const HELD: usize = 1024;

/// What one attempt's outcome means for its row.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The endpoint took it (2xx): delete the row.
    Delivered,
    /// Worth trying again (connection error, timeout, 408, 429, 5xx), after
    /// `after` if the endpoint said when.
    Retry {
        /// What went wrong, for the log and the dead letter.
        why: String,
        /// The endpoint's `Retry-After`.
        after: Option<Duration>,
    },
    /// Refused for good (any other 4xx, a 3xx): a dead letter.
    Final(String),
    /// 410 Gone: stop the webhook until an operator enables it.
    Gone,
}

/// How a delivery ended.
enum Done {
    Delivered,
    Dead(String),
    Gone(String),
}

/// Classifies one attempt (see the module docs); `now_ms` dates an HTTP-date
/// `Retry-After`.
pub fn classify(result: Result<DeliveryAnswer, WebhookError>, now_ms: u64) -> Attempt {
    let answer = match result {
        Ok(answer) => answer,
        Err(e @ WebhookError::Unencodable(_)) => return Attempt::Final(e.to_string()),
        Err(e) => {
            return Attempt::Retry {
                why: e.to_string(),
                after: None,
            };
        }
    };
    match answer.status {
        200..=299 => Attempt::Delivered,
        410 => Attempt::Gone,
        408 | 429 | 500..=599 => Attempt::Retry {
            why: format!("HTTP {}", answer.status),
            after: answer.retry_after.as_deref().and_then(|v| retry_after(v, now_ms)),
        },
        status => Attempt::Final(format!("HTTP {status}")),
    }
}

/// Parses `Retry-After`: delay-seconds, or an HTTP date (the delay until
/// then, zero if past); `None` if it is neither.
pub fn retry_after(value: &str, now_ms: u64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Some(Duration::from_millis(at_ms.saturating_sub(now_ms)))
}

/// Runs delivery until `stop`: a task for every endpoint the outbox knows of
/// and for each one it learns of, and the outbox gauges once a second.
pub async fn run(outbox: Outbox, registry: Arc<Registry>, stop: CancellationToken) {
    let Some(mut new_endpoints) = outbox.take_new_endpoints() else {
        return;
    };
    let mut gauges = tokio::time::interval(Duration::from_secs(1));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(state) = new_endpoints.recv() => {
                tasks.spawn(deliver_endpoint(outbox.clone(), registry.clone(), state, stop.clone()));
            }
            _ = gauges.tick() => outbox.update_gauges().await,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
}

/// The deliveries of one endpoint, until `stop`.
async fn deliver_endpoint(
    outbox: Outbox,
    registry: Arc<Registry>,
    state: Arc<EndpointState>,
    stop: CancellationToken,
) {
    let window = outbox.config().window;
    let mut queue = Queue::default();
    let mut in_flight = FuturesUnordered::new();
    loop {
        if state.is_stopped() {
            // Everything in memory is dropped: the rows are in the store,
            // and are read again from the start once enabled.
            in_flight.clear();
            queue = Queue::default();
            tokio::select! {
                () = stop.cancelled() => return,
                () = state.wake.notified() => continue,
            }
        }
        while in_flight.len() < window && queue.held < HELD && queue.passed_rows < PASSED {
            let Some(row) = queue.ready.pop_front() else {
                if queue.caught_up {
                    break;
                }
                let page = outbox
                    .read_store({
                        let (id, cursor) = (state.id.clone(), queue.cursor);
                        move |store| store.pending(&id, cursor, PAGE)
                    })
                    .await;
                match page {
                    Ok(page) => queue.read(page),
                    Err(e) => {
                        error!(endpoint = %state.name, error = %e, "cannot read pending notifications");
                        break;
                    }
                }
                continue;
            };
            if let Some(row) = queue.place(row) {
                in_flight.push(deliver_row(&outbox, &registry, &state, row));
            }
        }
        let done = tokio::select! {
            () = stop.cancelled() => {
                // Deliveries that have finished are recorded, so a clean
                // stop repeats none of them after the restart; the rest
                // stay pending.
                while let Some(Some((row, outcome))) = in_flight.next().now_or_never() {
                    settle(&outbox, &state, &row, outcome);
                }
                return;
            }
            () = state.wake.notified() => {
                queue.caught_up = false;
                continue;
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => done,
        };
        let (row, outcome) = done;
        if let Some(reason) = settle(&outbox, &state, &row, outcome) {
            outbox.stop(&state, reason.clone()).await;
            error!(
                endpoint = %state.name,
                %reason,
                "webhook answered 410 Gone: deliveries to it are stopped until an operator runs `hookd outbox enable`"
            );
            continue;
        }
        if let Some(next) = queue.next_of(&row.client_id) {
            in_flight.push(deliver_row(&outbox, &registry, &state, next));
            continue;
        }
        // The client's rows in memory are done; those passed over are
        // read again, in order, from where it left off.
        let Some((after, through)) = queue.passed_over(&row.client_id) else {
            continue;
        };
        let limit = CLIENT_HELD.min(HELD.saturating_sub(queue.held)).max(1);
        let rows = loop {
            let rows = outbox
                .read_store({
                    let (id, client) = (state.id.clone(), row.client_id.clone());
                    move |store| store.pending_of_client(&id, &client, after, through, limit)
                })
                .await;
            match rows {
                Ok(rows) => break rows,
                // Nothing else would ever read this client's rows again:
                // retried until the store answers or hookd stops.
                Err(e) => {
                    error!(endpoint = %state.name, error = %e, "cannot read pending notifications");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        if let Some(next) = queue.refill(&row.client_id, rows, limit) {
            in_flight.push(deliver_row(&outbox, &registry, &state, next));
        }
    }
}

/// Records how `row`'s delivery ended: delivered or dead. Returns the
/// reason when its webhook is gone (410), which the caller stops.
fn settle(outbox: &Outbox, state: &EndpointState, row: &Delivery, outcome: Done) -> Option<String> {
    let metrics = outbox.metrics();
    match outcome {
        Done::Delivered => {
            metrics.outbox_delivered(&state.name).inc();
            outbox.delivered(state, row.seq, row.bytes);
            None
        }
        Done::Dead(reason) => {
            metrics.outbox_dead_lettered(&state.name).inc();
            warn!(endpoint = %state.name, event = row.event_id, client_id = %row.client_id, %reason, "notification moved to the dead letters");
            outbox.bury(state, row.seq, row.bytes, reason);
            None
        }
        Done::Gone(reason) => Some(reason),
    }
}

/// Rows held in memory for one client at most: past it, the client's
/// further rows are passed over while reading (and read again once those
/// held are sent), so one client with a long backlog behind a retried
/// notification neither fills memory nor holds up the endpoint's others.
pub const CLIENT_HELD: usize = 256;

/// Rows passed over (and not yet read again) at most, per endpoint; past
/// it the task reads no further until some are. It bounds the reading
/// wasted on rows passed over, and is how far a stuck client's backlog
/// reaches before it holds up the endpoint's other clients too.
pub const PASSED: usize = 65_536;

/// An endpoint's rows between the store and its deliveries: read ahead in
/// pages after a cursor, held behind their client's row in flight, or
/// passed over (for a client with enough held) and read again later.
#[derive(Default)]
struct Queue {
    /// The last row read by page.
    cursor: u64,
    /// The last page read came back short: nothing more until woken.
    caught_up: bool,
    /// Rows read but not yet placed (at most a page).
    ready: VecDeque<Delivery>,
    /// Clients with a delivery in flight, and their rows waiting behind it.
    busy: HashMap<String, VecDeque<Delivery>>,
    /// Rows in `busy`'s queues.
    held: usize,
    /// Clients some of whose rows were passed over, with their last row
    /// in memory: their rows are dropped as pages bring them, and read
    /// again (after it) once those in memory are done.
    passed: HashMap<String, u64>,
    /// Rows passed over and not yet read again.
    passed_rows: usize,
}

impl Queue {
    /// Takes a page read after the cursor.
    fn read(&mut self, page: Vec<Delivery>) {
        self.caught_up = page.len() < PAGE;
        if let Some(last) = page.last() {
            self.cursor = last.seq;
        }
        self.ready.extend(page);
    }

    /// Places a row read by page: returns it if it may go now (its client
    /// has nothing in flight); otherwise holds it behind its client's, or
    /// passes it over.
    fn place(&mut self, row: Delivery) -> Option<Delivery> {
        if self.passed.contains_key(&row.client_id) {
            self.passed_rows += 1;
            return None;
        }
        let Some(waiting) = self.busy.get_mut(&row.client_id) else {
            self.busy.insert(row.client_id.clone(), VecDeque::new());
            return Some(row);
        };
        if waiting.len() >= CLIENT_HELD {
            let last = waiting.back().map_or(row.seq.saturating_sub(1), |r| r.seq);
            self.passed.insert(row.client_id, last);
            self.passed_rows += 1;
            return None;
        }
        waiting.push_back(row);
        self.held += 1;
        None
    }

    /// The client's next held row, now that its row in flight is done.
    fn next_of(&mut self, client: &str) -> Option<Delivery> {
        let next = self.busy.get_mut(client).and_then(VecDeque::pop_front)?;
        self.held -= 1;
        Some(next)
    }

    /// A client whose rows in memory are all done: if rows of it were
    /// passed over, the range to read them from (after its last row in
    /// memory, through the rows read by page so far, not those still in
    /// `ready`); otherwise it is idle.
    fn passed_over(&mut self, client: &str) -> Option<(u64, u64)> {
        let Some(&after) = self.passed.get(client) else {
            self.busy.remove(client);
            return None;
        };
        let through = self.ready.front().map_or(self.cursor, |r| r.seq - 1);
        Some((after, through))
    }

    /// Takes the rows read again for a passed-over client (asked for
    /// `limit`): the first goes now, the rest are held. Fewer than asked
    /// means every row of it read by page is in memory again, and its next
    /// ones come by page.
    fn refill(&mut self, client: &str, rows: Vec<Delivery>, limit: usize) -> Option<Delivery> {
        if rows.len() < limit {
            self.passed.remove(client);
        } else if let Some(last) = rows.last() {
            self.passed.insert(client.to_owned(), last.seq);
        }
        self.passed_rows = self.passed_rows.saturating_sub(rows.len());
        let mut rows = VecDeque::from(rows);
        let Some(first) = rows.pop_front() else {
            self.busy.remove(client);
            return None;
        };
        self.held += rows.len();
        self.busy.insert(client.to_owned(), rows);
        Some(first)
    }
}

/// Delivers one row until it is delivered, dead, or its webhook is gone.
/// Returns the row and how it ended.
fn deliver_row(
    outbox: &Outbox,
    registry: &Registry,
    state: &Arc<EndpointState>,
    row: Delivery,
) -> impl Future<Output = (Delivery, Done)> + use<> {
    let endpoint = registered(registry, &row);
    let (outbox, state) = (outbox.clone(), state.clone());
    async move {
        let (endpoint, call) = match endpoint.and_then(|e| decode(&row).map(|c| (e, c))) {
            Ok(found) => found,
            Err(reason) => return (row, Done::Dead(reason)),
        };
        let webhook_id = outbox.webhook_id(row.event_id);
        let config = outbox.config();
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(config.retry_initial_delay_ms))
            .with_max_delay(Duration::from_millis(config.retry_max_delay_ms))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        let give_up_ms = endpoint.retry_budget().map(|budget| {
            row.created_ms
                .saturating_add(u64::try_from(budget.as_millis()).unwrap_or(u64::MAX))
        });
        loop {
            let started = std::time::Instant::now();
            let result = endpoint.deliver(&call, &webhook_id, row.created_ms).await;
            // Counted as chain requests are: a 2xx is `ok`, any other
            // status an invalid response, a failure by its kind.
            let outcome = match &result {
                Ok(answer) if (200..300).contains(&answer.status) => Ok(()),
                Ok(_) => Err(ErrorKind::InvalidResponse),
                Err(e) => Err(e.kind()),
            };
            endpoint.metrics().request(outcome, started.elapsed());
            let now = now_ms();
            let (why, after) = match classify(result, now) {
                Attempt::Delivered => {
                    state.answered();
                    return (row, Done::Delivered);
                }
                Attempt::Final(why) => {
                    state.answered();
                    return (row, Done::Dead(why));
                }
                Attempt::Gone => return (row, Done::Gone("HTTP 410 Gone".into())),
                Attempt::Retry { why, after } => (why, after),
            };
            state.failed(&why);
            let delay = after
                .or_else(|| backoff.next())
                .unwrap_or(Duration::from_millis(config.retry_max_delay_ms));
            let retry_at = now.saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
            if give_up_ms.is_some_and(|give_up| retry_at > give_up) {
                return (row, Done::Dead(format!("retry budget exhausted; last: {why}")));
            }
            outbox.metrics().outbox_retried(&state.name).inc();
            // A window full of retries waiting out long delays would leave
            // a recovered endpoint idle: the first of them to get through
            // wakes the rest.
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = state.recovered.notified() => {}
            }
        }
    }
}

impl EndpointState {
    /// An attempt failed in a way worth retrying: logged once as the
    /// endpoint goes down, not per notification.
    fn failed(&self, why: &str) {
        if !self.down.swap(true, std::sync::atomic::Ordering::AcqRel) {
            warn!(endpoint = %self.name, error = why, "webhook down: notifications to it are retried");
        }
    }

    /// The endpoint answered (2xx or a final refusal): logged once as it
    /// recovers.
    fn answered(&self) {
        if self.down.swap(false, std::sync::atomic::Ordering::AcqRel) {
            info!(endpoint = %self.name, "webhook recovered: delivering again");
            self.recovered.notify_waiters();
        }
    }
}

/// The registration the row was accepted for, if it is still registered.
fn registered(registry: &Registry, row: &Delivery) -> Result<Arc<Endpoint>, String> {
    let hook = row
        .hook
        .parse::<hookd_proto::Hook>()
        .map_err(|_| format!("unknown hook {:?}", row.hook))?;
    registry
        .endpoints(hook)
        .iter()
        .find(|e| **e.id() == *row.endpoint)
        .cloned()
        .ok_or_else(|| format!("the webhook is no longer registered for {hook}"))
}

/// The call a row carries.
fn decode(row: &Delivery) -> Result<HookCall, String> {
    let call = pb::HookCall::decode(row.call.as_slice()).map_err(|e| format!("undecodable row: {e}"))?;
    convert::call_from_proto(call.hook).map_err(|e| format!("invalid stored call: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Result<DeliveryAnswer, WebhookError> {
        Ok(DeliveryAnswer {
            status,
            retry_after: retry_after.map(str::to_owned),
        })
    }

    #[test]
    fn outcomes_are_classified_as_the_issue_says() {
        assert_eq!(classify(answer(200, None), 0), Attempt::Delivered);
        assert_eq!(classify(answer(204, None), 0), Attempt::Delivered);
        assert_eq!(classify(answer(410, None), 0), Attempt::Gone);
        for status in [400, 401, 403, 404, 422, 301] {
            assert_eq!(
                classify(answer(status, None), 0),
                Attempt::Final(format!("HTTP {status}"))
            );
        }
        for status in [408, 429, 500, 502, 503] {
            assert!(matches!(
                classify(answer(status, None), 0),
                Attempt::Retry { after: None, .. }
            ));
        }
        let refused = Err(WebhookError::Unavailable("connection refused".into()));
        assert!(matches!(classify(refused, 0), Attempt::Retry { .. }));
        let timeout = Err(WebhookError::Timeout(Duration::from_secs(5)));
        assert!(matches!(classify(timeout, 0), Attempt::Retry { .. }));
        let binary = Err(WebhookError::Unencodable("not UTF-8".into()));
        assert!(matches!(classify(binary, 0), Attempt::Final(_)));
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        assert_eq!(
            classify(answer(429, Some("3")), 0),
            Attempt::Retry {
                why: "HTTP 429".into(),
                after: Some(Duration::from_secs(3))
            }
        );
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777 s after the epoch.
        let now = 784_111_770_000;
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + 60_000),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
