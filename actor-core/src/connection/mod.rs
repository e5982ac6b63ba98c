//! Floor 3: one connection to a peer, used both ways, as tractor uses a channel: the calls the
//! peer started here (tasks, tracked by cid) and the calls this side made (routes to their
//! bounded inboxes), over one writer.
//!
//! This floor holds the connection's state and its verbs; the task that reads the connection
//! and serves the peer's calls is the serving floor's (`serving/reader.rs`). The rules it
//! follows are the engine's: the in-flight tables, the reply sequences, the credit rule.
//!
//! - `mod.rs`: the connection, its lifetime and its errors;
//! - `routing.rs`: replies and credit to the calls they belong to;
//! - `calling.rs`: calling out (call ids, inboxes, `cmd`s, cancellation of our calls);
//! - `answering.rs`: answering the peer's calls (`return`, `error`);
//! - `flow.rs`: negotiating credit-based flow control (`docs/protocol-notes.md`);
//! - `heartbeat.rs`: negotiating and running heartbeats, shutting a silent peer's connection;
//! - `inbox.rs`: the receiving end of one call, and the lease that keeps a connection open.
//!
//! On the sentinel, on EOF and on a broken stream, every task the peer started is cancelled
//! (a caller that vanished cannot receive results) and every call waiting on the peer fails.

mod answering;
mod calling;
mod flow;
mod heartbeat;
mod inbox;
mod routing;

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering},
};

use actor_ipc::{ChannelSender, ErrorInfo, Uid};
use futures::{FutureExt, future::BoxFuture};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::debug;

pub use self::flow::MAX_STREAM_CREDIT;
pub(crate) use self::{
    flow::{EXTENSION_NS, FLOW_CONTROL_CALL},
    heartbeat::HEARTBEAT_CALL,
    inbox::{INBOX_SLACK, Inbox, Lease},
};
use crate::{
    base::{
        error::{CONTEXT_CANCELLED, Error, RemoteActorError},
        lock,
        mailbox::MailboxSender,
    },
    engine::inflight::{Entry, InFlight},
    runtime::{ActorCore, core::LiveConnection, router::ConnectionScope},
};

/// How many calls one connection may have running at once. A call beyond it is refused at once
/// with [`TOO_MANY_CALLS`](crate::error::TOO_MANY_CALLS): the reader never waits for a slot, so
/// cancels, the sentinel and EOF are always read, and a peer flooding calls cannot grow memory
/// without bound.
pub const MAX_CALLS_PER_CONNECTION: usize = 1024;

/// A call of ours, waiting for replies.
pub(crate) struct Route {
    pub(crate) tx: MailboxSender,
    /// What kind of call this is.
    pub(crate) kind: actor_ipc::CallKind,
    /// Credits for items this side sends on the call (a context we opened).
    pub(crate) credits: Option<Arc<Semaphore>>,
    /// Counts a stream or context call as open while its route is in the table.
    pub(crate) _open_stream: Option<OpenStream>,
}

/// One open call of ours that is not request/response, counted in
/// [`Connection::open_streams`] until dropped (with its route).
pub(crate) struct OpenStream(Arc<AtomicUsize>);

impl OpenStream {
    pub(crate) fn count(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::AcqRel);
        Self(open.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Entry for Route {
    fn cancel(&self) {
        // Our own calls are cancelled by `_cancel_task` to the peer, not here.
    }

    fn close(&self) {
        // A sender waiting for credit learns the call is over; dropping `tx` wakes the caller.
        if let Some(credits) = &self.credits {
            credits.close();
        }
    }
}

/// Who cancelled a call running here.
#[derive(Debug, Clone)]
pub(crate) struct CancelledBy {
    /// The canceller.
    pub(crate) uid: Uid,
    /// Through another connection than the call's own (`cancel_call`): its caller did not ask,
    /// so it is told.
    pub(crate) elsewhere: bool,
}

/// A call the peer made, running here.
pub(crate) struct TaskEntry {
    pub(crate) cancel: CancellationToken,
    /// Cancelled once the task has ended (its last message queued).
    pub(crate) done: CancellationToken,
    /// Who cancelled it, for the `ContextCancelled` error it sends.
    pub(crate) canceller: Arc<Mutex<Option<CancelledBy>>>,
    /// Messages from the caller (a context's stream items).
    pub(crate) inbox: Option<MailboxSender>,
    /// Credits for items this side sends on the call.
    pub(crate) credits: Option<Arc<Semaphore>>,
    /// The function, for introspection.
    pub(crate) ns: &'static str,
    pub(crate) func: &'static str,
    /// When it started.
    pub(crate) started: std::time::Instant,
}

impl Entry for TaskEntry {
    fn cancel(&self) {
        self.cancel.cancel();
    }

    fn close(&self) {
        self.cancel.cancel();
        if let Some(credits) = &self.credits {
            credits.close();
        }
    }
}

/// A connection to one peer.
pub(crate) struct Connection {
    pub(crate) core: Arc<ActorCore>,
    pub(crate) sender: ChannelSender,
    pub(crate) peer: Uid,
    /// The calls this side made, waiting for replies.
    pub(crate) calls: InFlight<Route>,
    /// The calls the peer made, running here.
    pub(crate) tasks: InFlight<TaskEntry>,
    /// Parent of every task the peer started here.
    pub(crate) tasks_cancel: CancellationToken,
    /// Cancelled when the reader stops.
    closed: CancellationToken,
    /// Whether `closed` was cancelled, readable without its lock (checked on every call).
    is_shut: AtomicBool,
    close_reason: Mutex<Option<String>>,
    next_cid: AtomicU64,
    /// This side's open calls that are not request/response: while there are none, the
    /// reader skips `functype asyncfunc` answers undecoded (see
    /// `ChannelReader::skip_confirmations_while`).
    pub(crate) open_streams: Arc<AtomicUsize>,
    /// Every call id of this side starts with it: 8 random hex digits and `-`.
    cid_prefix: actor_ipc::Cid,
    flow: AtomicU8,
    /// The agreed stream window while flow control is on (the smaller of both sides').
    window: AtomicUsize,
    flow_requested: AtomicBool,
    /// The call id of our `flow_control` request, whose answer the reader handles itself so
    /// the state is settled before any stream item is routed.
    flow_cid: Mutex<Option<actor_ipc::Cid>>,
    /// Whether our `flow_control` request awaits its answer (spares a lock per message).
    flow_pending: AtomicBool,
    /// One permit per running call of the peer's.
    pub(crate) task_slots: Arc<Semaphore>,
    /// A cid-less error the peer sent (e.g. a child that could not start).
    runtime_error: Mutex<Option<ErrorInfo>>,
    /// Set by the reader on every message; taken by the heartbeat task.
    pub(crate) heard: AtomicBool,
    /// Set by the reader on every message but heartbeats; taken by the idle watch.
    pub(crate) active: AtomicBool,
    /// Whether the reader is serving a call inline (and so not reading).
    pub(crate) dispatching: AtomicBool,
    /// Whether heartbeats run on this connection.
    heartbeats_on: AtomicBool,
    /// Whether the peer fell silent (the connection was shut for it).
    heartbeat_lost: AtomicBool,
    /// Tells the reader to stop: the actor stops, or the connection was given up on.
    pub(crate) stop_reading: CancellationToken,
}

impl Connection {
    /// A connection over `sender` to `peer`, recorded with its actor for teardown. Its reader
    /// is started by the serving floor.
    pub(crate) fn new(core: Arc<ActorCore>, sender: ChannelSender, peer: Uid) -> Arc<Self> {
        let core_window = core.stream_window;
        let conn = Arc::new(Self {
            tasks_cancel: core.cancel.child_token(),
            stop_reading: core.cancel.child_token(),
            cid_prefix: actor_ipc::Cid::from(format!("{}-", &Uid::new("").uuid[..8])),
            core,
            sender,
            peer,
            calls: InFlight::default(),
            tasks: InFlight::default(),
            closed: CancellationToken::new(),
            is_shut: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            next_cid: AtomicU64::new(1),
            open_streams: Arc::new(AtomicUsize::new(0)),
            flow: AtomicU8::new(flow::FLOW_UNKNOWN),
            window: AtomicUsize::new(core_window),
            flow_requested: AtomicBool::new(false),
            flow_cid: Mutex::new(None),
            flow_pending: AtomicBool::new(false),
            task_slots: Arc::new(Semaphore::new(MAX_CALLS_PER_CONNECTION)),
            runtime_error: Mutex::new(None),
            heard: AtomicBool::new(false),
            active: AtomicBool::new(false),
            dispatching: AtomicBool::new(false),
            heartbeats_on: AtomicBool::new(false),
            heartbeat_lost: AtomicBool::new(false),
        });
        let live: Arc<dyn LiveConnection> = conn.clone();
        conn.core.connections.add(Arc::downgrade(&live));
        conn
    }

    /// Records a cid-less error the peer sent (the first one is kept).
    pub(crate) fn set_runtime_error(&self, error: ErrorInfo) {
        lock(&self.runtime_error).get_or_insert(error);
    }

    /// The cid-less error the peer sent, if any (a child that could not start says why so).
    pub(crate) fn runtime_error(&self) -> Option<ErrorInfo> {
        lock(&self.runtime_error).clone()
    }

    /// Records why the connection ends (the first reason given wins).
    pub(crate) fn set_reason(&self, reason: &str) {
        lock(&self.close_reason).get_or_insert_with(|| reason.to_owned());
    }

    /// Ends the connection's life: cancels what the peer started, fails what we wait for.
    pub(crate) fn shut(&self, reason: String) {
        debug!(peer = %self.peer, %reason, "connection ended");
        self.set_reason(&reason);
        self.tasks_cancel.cancel();
        self.is_shut.store(true, Ordering::Release);
        self.closed.cancel();
        // Senders waiting for credit learn the connection is gone; dropping the routes'
        // senders wakes every waiting call with "disconnected".
        self.tasks.close();
        self.calls.close();
        // The socket closes now, not when the last portal on it is dropped.
        self.sender.shutdown_soon();
    }

    /// Flushes and closes the connection (teardown): the sentinel, then FIN.
    pub(crate) async fn close(&self) {
        let flushed =
            tokio::time::timeout(std::time::Duration::from_secs(1), self.sender.close()).await;
        if flushed.is_err() {
            debug!(peer = %self.peer, "closing: writer did not flush in time");
        }
        self.shut("closed by this side".into());
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.is_shut.load(Ordering::Acquire)
    }

    /// Completes when the connection has ended.
    pub(crate) async fn closed(&self) {
        self.closed.cancelled().await
    }

    /// The error a call sees when the connection is gone: why the peer could not go on, if it
    /// said so (a cid-less error, e.g. a child that could not start), else the lost connection.
    pub(crate) fn disconnected(&self) -> Error {
        if let Some(info) = self.runtime_error() {
            return Error::Remote(RemoteActorError::from_info(info, &self.peer));
        }
        let detail = lock(&self.close_reason)
            .clone()
            .unwrap_or_else(|| "connection closed".into());
        Error::Disconnected {
            peer: self.peer.clone(),
            detail,
        }
    }

    /// The error for a failed send on this connection.
    pub(crate) fn send_error(&self, e: actor_ipc::SendError) -> Error {
        match e {
            actor_ipc::SendError::Closed => self.disconnected(),
            actor_ipc::SendError::Encode(e) => Error::Encode(e),
            actor_ipc::SendError::TooLarge { len, limit } => Error::TooLarge { len, limit },
        }
    }

    /// Builds the local error for a received `error` map.
    pub(crate) fn remote_error(&self, error: ErrorInfo) -> Error {
        if error.type_str == CONTEXT_CANCELLED {
            let canceller = error.extra("canceller").and_then(Uid::from_value);
            return Error::ContextCancelled {
                canceller,
                detail: error.tb_str,
            };
        }
        Error::Remote(RemoteActorError::from_info(error, &self.peer))
    }

    /// A protocol violation by the peer.
    pub(crate) fn protocol(&self, detail: String) -> Error {
        Error::Protocol {
            peer: self.peer.to_string(),
            detail,
        }
    }
}

impl LiveConnection for Connection {
    fn close(&self) -> BoxFuture<'_, ()> {
        Connection::close(self).boxed()
    }

    fn peer(&self) -> Uid {
        self.peer.clone()
    }

    fn running_calls(&self) -> Vec<crate::runtime::introspect::RunningCall> {
        self.tasks
            .snapshot(|cid, task| crate::runtime::introspect::RunningCall {
                ns: task.ns,
                func: task.func,
                cid: cid.to_owned(),
                started: task.started,
            })
    }

    fn cancel_call(&self, cid: &str, by: &Uid) -> bool {
        self.cancel_running(cid, by, true).is_some()
    }
}

impl ConnectionScope for Connection {
    fn cancel_task(&self, cid: &str, by: &Uid) -> Option<CancellationToken> {
        self.cancel_running(cid, by, false)
    }

    fn ending(&self) -> CancellationToken {
        self.tasks_cancel.clone()
    }
}

impl Connection {
    /// Cancels the running call `cid` on behalf of `by` (the first canceller is the one
    /// named); the token of its end, if it runs.
    fn cancel_running(&self, cid: &str, by: &Uid, elsewhere: bool) -> Option<CancellationToken> {
        let done = {
            let task = self.tasks.get(cid)?;
            lock(&task.canceller).get_or_insert_with(|| CancelledBy {
                uid: by.clone(),
                elsewhere,
            });
            task.done.clone()
        };
        self.tasks.cancel(cid);
        Some(done)
    }
}

/// Shuts a connection when dropped (its reader's safety net).
pub(crate) struct ShutOnDrop(pub(crate) Arc<Connection>);

impl Drop for ShutOnDrop {
    fn drop(&mut self) {
        if !self.0.is_closed() {
            self.0.shut("the connection's reader stopped".into());
        }
    }
}
