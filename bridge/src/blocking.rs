//! A blocking façade for brokers whose hook callbacks are synchronous
//! (Mosquitto runs every callback on its one main thread).
//!
//! All blocking clients share one small tokio runtime, started on first use,
//! whose threads own the streams; a blocking call parks the calling thread
//! until the verdict arrives or its deadline passes.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use hookd_proto::v1::hook_call::Hook as Args;
use tokio::{
    runtime::{Builder, Runtime},
    sync::Semaphore,
};

use crate::{BridgeError, Client, Hook, Options, Verdict, connect};

/// The runtime every blocking client shares.
static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

fn runtime() -> Result<&'static Runtime, BridgeError> {
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("hookd-bridge")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| BridgeError::Runtime(e.clone()))
}

/// A [`Client`] for synchronous code. Must not be used from inside an
/// async task (blocking there would stall that runtime).
#[derive(Clone)]
pub struct BlockingClient {
    client: Client,
    runtime: &'static Runtime,
    // Bounds notifications sent in the background, so a hookd that is away
    // costs bounded memory rather than a growing backlog.
    background: Arc<Semaphore>,
}

/// Notifications a [`BlockingClient`] keeps in flight in the background.
const MAX_BACKGROUND_NOTIFICATIONS: usize = 10_000;

impl BlockingClient {
    /// Connects as [`connect`] does, on the shared runtime.
    pub fn connect(options: Options) -> Result<Self, BridgeError> {
        let runtime = runtime()?;
        let client = {
            let _entered = runtime.enter();
            connect(options)?
        };
        Ok(Self {
            client,
            runtime,
            background: Arc::new(Semaphore::new(MAX_BACKGROUND_NOTIFICATIONS)),
        })
    }

    /// Sends a notification in the background and returns at once; false
    /// (and nothing sent) when too many are already in flight. One for a
    /// hook hookd reports as having no endpoints is not sent at all (hookd
    /// would only acknowledge it): no task, no wake-up of the runtime.
    pub fn notify(&self, args: Args) -> bool {
        if self.client.has_no_endpoints(Hook::of_proto_args(&args)) {
            return true;
        }
        let Ok(permit) = self.background.clone().try_acquire_owned() else {
            return false;
        };
        let client = self.client.clone();
        self.runtime.spawn(async move {
            client.call(args).await;
            drop(permit);
        });
        true
    }

    /// Calls a hook with the default deadline, blocking until the verdict.
    pub fn call(&self, args: Args) -> Verdict {
        self.call_with_timeout(args, self.client.default_timeout())
    }

    /// Calls a hook with `timeout`, blocking until the verdict. A verdict
    /// that needs no round trip ([`Client::answer_locally`]) is returned
    /// without entering the runtime at all.
    pub fn call_with_timeout(&self, mut args: Args, timeout: Duration) -> Verdict {
        if let Some(verdict) = self.client.answer_locally(&mut args) {
            return verdict;
        }
        // A miss was just looked up: hookd is asked without a second lookup.
        self.runtime.block_on(self.client.ask_hookd(args, timeout))
    }

    /// Waits until a stream to hookd is open, up to `timeout`; true if so.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        self.runtime.block_on(self.client.wait_connected(timeout))
    }

    /// The async client behind this façade.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
