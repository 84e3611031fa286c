//! The notification path: tells every endpoint of a notification hook,
//! without ever making the broker wait.
//!
//! Each delivery is its own task, bounded by a semaphore
//! (`notifications.max_in_flight`): when it is exhausted the notification is
//! dropped, logged and counted, so a dead endpoint costs bounded memory
//! rather than growing a backlog. A durable outbox with retries will replace
//! [`Notifier::notify`]'s body, behind the same call. On shutdown hookd
//! waits for deliveries in flight ([`Notifier::idle`]) within its grace
//! period.

use std::sync::Arc;

use tokio::sync::{Notify, Semaphore};
use tracing::{Instrument, debug, debug_span, warn};

use hookd_proto::HookCall;

use crate::{metrics::Metrics, registry::Endpoints};

/// Delivers notifications to their endpoints in the background.
#[derive(Clone)]
pub struct Notifier {
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    /// Notified as each delivery ends, for [`Notifier::idle`].
    delivered: Arc<Notify>,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// A notifier allowing `max_in_flight` deliveries at once.
    pub fn new(max_in_flight: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            delivered: Arc::new(Notify::new()),
            metrics,
        }
    }

    /// Deliveries in flight now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight
            .saturating_sub(self.permits.available_permits())
    }

    /// Completes once no delivery is in flight.
    pub async fn idle(&self) {
        loop {
            let delivered = self.delivered.notified();
            tokio::pin!(delivered);
            // Enabled before the count is read, so a delivery ending after
            // the read still wakes this waiter.
            delivered.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            delivered.await;
        }
    }

    /// Starts delivering `call` to every one of `endpoints`, concurrently,
    /// and returns at once.
    pub fn notify(&self, call: HookCall, endpoints: Endpoints) {
        let hook = call.hook();
        let call = Arc::new(call);
        for endpoint in endpoints.iter() {
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                warn!(%hook, endpoint = %endpoint.name(), "notification dropped: too many in flight");
                self.metrics.notifications_dropped.count(hook, "full");
                continue;
            };
            let (endpoint, call, metrics) = (endpoint.clone(), call.clone(), self.metrics.clone());
            let delivered = self.delivered.clone();
            // A debug span: an enabled one costs an allocation and the
            // formatting of its fields per delivery.
            let span = debug_span!("notify", %hook, endpoint = %endpoint.name());
            tokio::spawn(
                async move {
                    // Counted as chain requests are: a usable answer is `ok`.
                    let outcome = match endpoint.call(&call, None).await {
                        Ok(_) => "ok",
                        Err(e) => {
                            warn!(%hook, endpoint = %endpoint.name(), error = %e, "notification failed");
                            e.kind().label()
                        }
                    };
                    debug!(outcome, "notification delivered");
                    metrics.webhook_requests.count(hook, outcome);
                    drop(permit);
                    delivered.notify_waiters();
                }
                .instrument(span),
            );
        }
    }
}
