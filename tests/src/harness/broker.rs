//! A broker session on `HookService.Stream`, as a broker node would hold one.
//!
//! [`Broker::connect`] sends Hello and waits for Welcome. After that, tests send
//! calls ([`Broker::send`], [`Broker::call`]) as many at a time as they like; a
//! background task reads every server frame and hands each verdict to the
//! [`Pending`] waiting for its id (several verdicts for one id are handed out in
//! arrival order), queues `HooksChanged` frames, and keeps verdicts nobody waited
//! for so tests can assert there were none.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use hookd_proto::v1::{
    BrokerFrame, Hello, HookCall, HooksChanged, ServerFrame, Verdict, Welcome, broker_frame,
    hook_service_client::HookServiceClient, server_frame,
};
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming, transport::Channel};

use super::{WAIT, calls::IntoCall, within};

/// How many frames may wait to be sent before `send` waits.
const OUTBOUND_FRAMES: usize = 1024;

/// How a broker stream ended.
#[derive(Debug, Clone)]
pub enum StreamEnd {
    /// hookd closed the stream with status OK.
    Finished,
    /// hookd (or the transport) ended the stream with this status.
    Failed(Status),
}

/// An open broker session.
pub struct Broker {
    frames: mpsc::Sender<BrokerFrame>,
    routes: Arc<Mutex<Routes>>,
    welcome: Welcome,
    hooks_changed: tokio::sync::Mutex<mpsc::UnboundedReceiver<HooksChanged>>,
    end: watch::Receiver<Option<StreamEnd>>,
    next_id: AtomicU64,
    reader: JoinHandle<()>,
}

/// A call that was sent and whose verdict has not been taken yet.
pub struct Pending {
    id: u64,
    verdict: oneshot::Receiver<Verdict>,
    routes: Arc<Mutex<Routes>>,
}

/// An open stream before (or instead of) the Hello/Welcome handshake.
pub struct RawStream {
    /// Frames sent here go to hookd in order; dropping it half-closes the stream.
    pub frames: mpsc::Sender<BrokerFrame>,
    /// What hookd sends back.
    pub inbound: Streaming<ServerFrame>,
}

#[derive(Default)]
struct Routes {
    waiting: HashMap<u64, VecDeque<oneshot::Sender<Verdict>>>,
    unexpected: Vec<Verdict>,
    ended: Option<StreamEnd>,
}

/// The Hello a test broker introduces itself with.
pub fn hello() -> Hello {
    Hello {
        node_id: "test-broker@127.0.0.1".into(),
        broker_kind: "hookd-tests".into(),
        broker_version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// A frame carrying `hello`.
pub fn hello_frame(hello: Hello) -> BrokerFrame {
    BrokerFrame {
        frame: Some(broker_frame::Frame::Hello(hello)),
    }
}

/// A frame carrying `call`.
pub fn call_frame(call: HookCall) -> BrokerFrame {
    BrokerFrame {
        frame: Some(broker_frame::Frame::Call(call)),
    }
}

impl RawStream {
    /// Opens `Stream` and sends `first` as its first frame, without waiting for
    /// any answer. Fails if hookd refuses the stream outright.
    pub async fn open(mut client: HookServiceClient<Channel>, first: BrokerFrame) -> Result<Self, Status> {
        let (frames, outbound) = mpsc::channel(OUTBOUND_FRAMES);
        frames.send(first).await.expect("the outbound queue is open");
        let response = within(
            "hookd to accept the stream",
            client.stream(ReceiverStream::new(outbound)),
        )
        .await?;
        Ok(Self {
            frames,
            inbound: response.into_inner(),
        })
    }

    /// The next frame from hookd: `Ok(None)` when the stream ended cleanly,
    /// `Err` with the status it ended with.
    pub async fn next_frame(&mut self) -> Result<Option<ServerFrame>, Status> {
        within("a frame from hookd", self.inbound.message()).await
    }
}

impl Broker {
    /// Opens a stream, says Hello, and waits for Welcome.
    pub async fn connect(client: HookServiceClient<Channel>) -> Self {
        Self::connect_with(client, hello()).await
    }

    /// Like [`Broker::connect`] with a specific Hello.
    pub async fn connect_with(client: HookServiceClient<Channel>, hello: Hello) -> Self {
        let mut raw = RawStream::open(client, hello_frame(hello))
            .await
            .expect("hookd accepts a stream that starts with Hello");
        let welcome = match raw.next_frame().await {
            Ok(Some(ServerFrame {
                frame: Some(server_frame::Frame::Welcome(welcome)),
            })) => welcome,
            other => panic!("hookd must answer Hello with Welcome first, got {other:?}"),
        };
        let routes = Arc::new(Mutex::new(Routes::default()));
        let (hooks_tx, hooks_rx) = mpsc::unbounded_channel();
        let (end_tx, end_rx) = watch::channel(None);
        let reader = tokio::spawn(read_frames(raw.inbound, Arc::clone(&routes), hooks_tx, end_tx));
        Self {
            frames: raw.frames,
            routes,
            welcome,
            hooks_changed: tokio::sync::Mutex::new(hooks_rx),
            end: end_rx,
            next_id: AtomicU64::new(1),
            reader,
        }
    }

    /// The Welcome hookd answered Hello with.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// A fresh call id, never handed out before on this session (ids count up
    /// from 1; tests that choose their own ids use other ranges).
    pub fn fresh_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends `call` as is (its own id) and returns the handle for its verdict.
    pub async fn send(&self, call: HookCall) -> Pending {
        let id = call.id;
        let (tx, rx) = oneshot::channel();
        {
            let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
            // After the stream ended the sender is dropped at once, so the
            // waiter learns it immediately instead of timing out.
            if routes.ended.is_none() {
                routes.waiting.entry(id).or_default().push_back(tx);
            }
        }
        within("room in the outbound stream", self.frames.send(call_frame(call)))
            .await
            .unwrap_or_else(|_| panic!("the stream to hookd closed before call {id} was sent"));
        Pending {
            id,
            verdict: rx,
            routes: Arc::clone(&self.routes),
        }
    }

    /// Sends a call for `args` with a fresh id.
    pub async fn send_args(&self, args: impl IntoCall) -> Pending {
        self.send(args.into_call(self.fresh_id())).await
    }

    /// Sends a call for `args` with a fresh id and waits (bounded) for its verdict.
    pub async fn call(&self, args: impl IntoCall) -> Verdict {
        self.send_args(args).await.verdict().await
    }

    /// Sends any frame as is (e.g. a second Hello).
    pub async fn send_frame(&self, frame: BrokerFrame) {
        within("room in the outbound stream", self.frames.send(frame))
            .await
            .expect("the stream to hookd is open");
    }

    /// The next `HooksChanged` frame (bounded wait).
    pub async fn next_hooks_changed(&self) -> HooksChanged {
        let mut frames = self.hooks_changed.lock().await;
        within("a HooksChanged frame", frames.recv())
            .await
            .expect("the stream is open while waiting for HooksChanged")
    }

    /// Verdicts whose id no call was waiting for.
    pub fn unexpected_verdicts(&self) -> Vec<Verdict> {
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unexpected
            .clone()
    }

    /// How the stream ended, if it has.
    pub fn ended(&self) -> Option<StreamEnd> {
        self.end.borrow().clone()
    }

    /// Waits (bounded) for the stream to end and says how.
    pub async fn closed(&self) -> StreamEnd {
        let mut end = self.end.clone();
        let ended = within("the stream to end", end.wait_for(Option::is_some))
            .await
            .expect("the reader task records how the stream ended")
            .clone();
        ended.expect("wait_for returned a recorded end")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Pending {
    /// The id of the call.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Waits (bounded) for the verdict; panics if the stream ends first.
    pub async fn verdict(self) -> Verdict {
        let id = self.id;
        match tokio::time::timeout(WAIT, self.verdict).await {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(_)) => {
                let end = self
                    .routes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .ended
                    .clone();
                panic!("the stream ended before the verdict for call {id}: {end:?}")
            }
            Err(_) => panic!("no verdict for call {id} within {WAIT:?}"),
        }
    }
}

async fn read_frames(
    mut inbound: Streaming<ServerFrame>,
    routes: Arc<Mutex<Routes>>,
    hooks_changed: mpsc::UnboundedSender<HooksChanged>,
    end: watch::Sender<Option<StreamEnd>>,
) {
    let ended = loop {
        match inbound.message().await {
            Ok(Some(frame)) => match frame.frame {
                Some(server_frame::Frame::Verdict(verdict)) => deliver(&routes, verdict),
                Some(server_frame::Frame::HooksChanged(changed)) => {
                    let _ = hooks_changed.send(changed);
                }
                other => {
                    break StreamEnd::Failed(Status::internal(format!(
                        "test broker got an unexpected frame after Welcome: {other:?}"
                    )));
                }
            },
            Ok(None) => break StreamEnd::Finished,
            Err(status) => break StreamEnd::Failed(status),
        }
    };
    {
        let mut routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.ended = Some(ended.clone());
        routes.waiting.clear();
    }
    end.send_replace(Some(ended));
}

fn deliver(routes: &Mutex<Routes>, verdict: Verdict) {
    let mut routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
    let waiter = routes.waiting.get_mut(&verdict.id).and_then(VecDeque::pop_front);
    if routes.waiting.get(&verdict.id).is_some_and(VecDeque::is_empty) {
        routes.waiting.remove(&verdict.id);
    }
    match waiter {
        Some(waiter) => {
            if let Err(verdict) = waiter.send(verdict) {
                // The test stopped waiting for it; still worth seeing in a failure.
                routes.unexpected.push(verdict);
            }
        }
        None => routes.unexpected.push(verdict),
    }
}
