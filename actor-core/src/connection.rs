//! One connection to a peer, used both ways, as tractor uses a channel: it serves the calls the
//! peer makes (each `cmd` runs as its own task, tracked by cid) and routes replies to the calls
//! this side made (each waiting on its own bounded inbox).
//!
//! One task reads the connection; nothing else does. It never waits on a slow consumer: a
//! message for a call whose inbox is full is an overrun of that one call (which is cancelled),
//! never a stall of the connection. Between peers of this runtime, streams use credit-based
//! flow control (`docs/protocol-notes.md`), so a slow consumer slows its producer instead.
//!
//! On the sentinel, on EOF and on a broken stream, every task the peer started is cancelled
//! (a caller that vanished cannot receive results) and every call waiting on the peer fails.

use std::{
    any::Any,
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context as TaskContext, Poll},
};

use actor_ipc::{
    CallKind, Channel, ChannelReader, ChannelSender, Cmd, CmdRef, ErrorInfo, Msg, Payload,
    TrySendError, Uid,
};
use dashmap::DashMap;
use futures::{FutureExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{
    FastHash,
    actor::{ActorCore, with_current, with_current_sync},
    context::{Context, StreamFlags},
    discovery::REGISTRAR_CALLS,
    error::{
        CONTEXT_CANCELLED, Error, FUNCTION_NOT_FOUND, MODULE_NOT_EXPOSED, PANIC_TYPE,
        RemoteActorError, Result, TYPE_ERROR,
    },
    mailbox::{MailboxReceiver, MailboxSender, Refused, mailbox},
    registry::{self, Handler},
};

/// Flow-control state of a connection.
const FLOW_UNKNOWN: u8 = 0;
const FLOW_ON: u8 = 1;
const FLOW_OFF: u8 = 2;

/// The namespace of this runtime's protocol extensions. It is not `self` on purpose: tractor
/// 0.1.0a5 looks `self` functions up outside its error handling (an unknown one kills that
/// actor), while a call into a namespace it did not enable is answered with a clean
/// `ModuleNotExposed` error.
pub(crate) const EXTENSION_NS: &str = "actor.runtime";

/// The extension call a caller of this runtime makes (once per connection, before its first
/// stream) to turn credit-based flow control on. A tractor 0.1.0a5 peer refuses it, which
/// leaves flow control off for that connection.
pub(crate) const FLOW_CONTROL_CALL: &str = "flow_control";

/// How many calls one connection may have running at once; further calls wait (the reader
/// stops reading that connection) until one ends, so a peer flooding calls cannot grow memory
/// without bound.
const MAX_TASKS_PER_CONNECTION: usize = 1024;

/// The buffer a stream producer cuts its frames from.
const FRAME_BUFFER: usize = 64 * 1024;
/// How many bytes of ready stream items a producer gathers before handing them to the writer:
/// large enough to spare a queue hop per item, small enough that the consumer starts on the
/// first items (and grants more credit) while the producer goes on.
/// How many calls the reader serves before it lets the connection's other tasks run: the
/// writer then sends the answers so far while the reader goes on, so caller and callee work at
/// once instead of in turns (one portal, 64 callers: about 1.5x the calls per second).
const YIELD_EVERY: usize = 16;
/// How many replies the reader routes before it lets the calls it fed run (they consume, and
/// grant credit, sooner; and one busy connection cannot hold the thread).
const ROUTE_YIELD_EVERY: usize = 256;
const FLUSH_BYTES: usize = 16 * 1024;
/// Stream items this large go to the writer as they are, not copied into a frame buffer.
const LARGE_ITEM: usize = 16 * 1024;
/// A `yield` frame's bytes beyond its payload and cid (header, map, keys).
const FRAME_OVERHEAD: usize = 32;

/// The most stream items a consumer lets its producer have in flight (credit granted and not
/// yet used), however small the items; credit a peer grants beyond it is ignored.
pub const MAX_STREAM_CREDIT: usize = 16 * 1024;

/// The bytes of stream items a consumer lets its producer have in flight, at the items'
/// average size so far: small items get up to [`MAX_STREAM_CREDIT`] in flight (a deep pipeline),
/// large ones only a few (bounded memory).
const STREAM_BYTES_IN_FLIGHT: usize = 8 * 1024 * 1024;

/// What a queued item costs beyond its payload (its message).
const ITEM_OVERHEAD: usize = 64;

/// Room an inbox keeps beyond the stream window for the messages that end a call.
const INBOX_SLACK: usize = 8;

/// A call of ours, waiting for replies.
struct Route {
    tx: MailboxSender,
    /// What kind of call this is.
    kind: CallKind,
    /// Credits for items this side sends on the call (a context we opened).
    credits: Option<Arc<Semaphore>>,
}

/// A call the peer made, running here.
struct TaskEntry {
    cancel: CancellationToken,
    done: CancellationToken,
    canceller: Arc<Mutex<Option<Uid>>>,
    /// Messages from the caller (a context's stream items).
    inbox: Option<MailboxSender>,
    /// Credits for items this side sends on the call.
    credits: Option<Arc<Semaphore>>,
}

/// A connection to one peer.
pub(crate) struct Connection {
    pub(crate) core: Arc<ActorCore>,
    pub(crate) sender: ChannelSender,
    pub(crate) peer: Uid,
    calls: DashMap<String, Route, FastHash>,
    tasks: DashMap<String, TaskEntry, FastHash>,
    /// Parent of every task the peer started here.
    tasks_cancel: CancellationToken,
    /// Cancelled when the reader stops.
    closed: CancellationToken,
    /// Whether `closed` was cancelled, readable without its lock (checked on every call).
    is_shut: AtomicBool,
    close_reason: Mutex<Option<String>>,
    next_cid: AtomicU64,
    cid_prefix: String,
    flow: AtomicU8,
    /// The agreed stream window while flow control is on (the smaller of both sides').
    window: AtomicUsize,
    flow_requested: AtomicBool,
    /// The call id of our `_flow_control` request, whose answer the reader handles itself so
    /// the state is settled before any stream item is routed.
    flow_cid: Mutex<Option<String>>,
    /// Whether our `flow_control` request awaits its answer (spares a lock per message).
    flow_pending: AtomicBool,
    /// One permit per running call of the peer's.
    task_slots: Arc<Semaphore>,
    /// A cid-less error the peer sent (e.g. a child that could not start).
    pub(crate) runtime_error: Mutex<Option<ErrorInfo>>,
}

impl Connection {
    /// Wraps a handshaken channel and starts reading it in its own task.
    pub(crate) fn start(core: Arc<ActorCore>, channel: Channel) -> Arc<Self> {
        let (conn, reader) = Self::new(core, channel);
        tokio::spawn(conn.clone().read_loop(reader));
        conn
    }

    /// Serves a channel until it ends (the accept loop's per-connection task).
    pub(crate) async fn serve(core: Arc<ActorCore>, channel: Channel) {
        let (conn, reader) = Self::new(core, channel);
        conn.read_loop(reader).await;
    }

    /// Serves a connection whose halves were already used (a child's connection to its parent,
    /// after the init map), reading it in its own task.
    pub(crate) fn adopt(
        core: Arc<ActorCore>,
        sender: ChannelSender,
        reader: ChannelReader,
        peer: Uid,
    ) -> Arc<Self> {
        let conn = Self::from_parts(core, sender, peer);
        tokio::spawn(conn.clone().read_loop(reader));
        conn
    }

    fn new(core: Arc<ActorCore>, channel: Channel) -> (Arc<Self>, ChannelReader) {
        let peer = channel.peer().clone();
        let (sender, reader) = channel.into_split();
        (Self::from_parts(core, sender, peer), reader)
    }

    fn from_parts(core: Arc<ActorCore>, sender: ChannelSender, peer: Uid) -> Arc<Self> {
        let core_window = core.stream_window;
        let conn = Arc::new(Self {
            tasks_cancel: core.cancel.child_token(),
            cid_prefix: Uid::new("").uuid[..8].to_owned(),
            core,
            sender,
            peer,
            calls: DashMap::default(),
            tasks: DashMap::default(),
            closed: CancellationToken::new(),
            is_shut: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            next_cid: AtomicU64::new(1),
            flow: AtomicU8::new(FLOW_UNKNOWN),
            window: AtomicUsize::new(core_window),
            flow_requested: AtomicBool::new(false),
            flow_cid: Mutex::new(None),
            flow_pending: AtomicBool::new(false),
            task_slots: Arc::new(Semaphore::new(MAX_TASKS_PER_CONNECTION)),
            runtime_error: Mutex::new(None),
        });
        conn.core.add_connection(&conn);
        conn
    }

    async fn read_loop(self: Arc<Self>, mut reader: ChannelReader) {
        // However the reader ends (even by a panic or an abort), the connection is shut.
        let _shut = ShutOnDrop(self.clone());
        // Made once: a fresh cancellation future per message showed in stream profiles.
        let stopping = self.core.cancel.clone();
        let stopping = stopping.cancelled();
        tokio::pin!(stopping);
        let mut served = 0_usize;
        let mut routed = 0_usize;
        let reason = loop {
            let msg = tokio::select! {
                // The reader first: `stopping` is polled only when no message is ready.
                biased;
                msg = reader.recv() => msg,
                () = &mut stopping => {
                    // The actor is stopping: keep reading until its teardown closes us, so
                    // cancel acknowledgements and final replies still flow.
                    self.drain_until_closed(&mut reader).await;
                    break "the actor stopped".to_owned();
                }
            };
            match msg {
                Ok(Some(Msg::Cmd(cmd))) => {
                    self.dispatch(cmd).await;
                    served += 1;
                    if served % YIELD_EVERY == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                Ok(Some(Msg::Sentinel)) => {
                    debug!(peer = %self.peer, "sentinel received");
                    self.tasks_cancel.cancel();
                    self.set_reason("the peer sent the sentinel");
                    // Answer with our own sentinel and close.
                    self.close().await;
                    break "the peer sent the sentinel".to_owned();
                }
                Ok(Some(Msg::Error { cid: None, error })) => {
                    warn!(peer = %self.peer, type_str = %error.type_str, "runtime error from peer: {}", error.tb_str);
                    if let Ok(mut slot) = self.runtime_error.lock() {
                        slot.get_or_insert(*error);
                    }
                }
                Ok(Some(msg)) => {
                    self.route(msg);
                    routed += 1;
                    if routed % ROUTE_YIELD_EVERY == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                Ok(None) => break "the peer closed the connection".to_owned(),
                Err(actor_ipc::RecvError::Frame(actor_ipc::FrameError::Io(e))) => {
                    // A reset or a broken pipe: the peer went away, nothing malformed.
                    debug!(peer = %self.peer, error = %e, "connection lost");
                    break format!("connection lost: {e}");
                }
                Err(actor_ipc::RecvError::Frame(
                    e @ (actor_ipc::FrameError::TruncatedHeader { .. }
                    | actor_ipc::FrameError::TruncatedBody { .. }),
                )) => {
                    // The connection ended inside a frame: the peer went away mid-write (it
                    // exited, or was killed). Closed all the same, but not a peer's bad input.
                    debug!(peer = %self.peer, error = %e, "connection lost inside a frame");
                    break format!("connection lost: {e}");
                }
                Err(e) => {
                    warn!(peer = %self.peer, error = %e, "closing a connection after bad input");
                    break format!("bad input: {e}");
                }
            }
        };
        self.shut(reason);
    }

    /// After the actor was cancelled: route replies and acks until the connection closes.
    async fn drain_until_closed(self: &Arc<Self>, reader: &mut ChannelReader) {
        loop {
            tokio::select! {
                msg = reader.recv() => match msg {
                    // Runtime calls (cancel acknowledgements, registrar calls) still work.
                    Ok(Some(Msg::Cmd(cmd))) if cmd.ns == "self" => self.runtime_call(cmd).await,
                    Ok(Some(Msg::Cmd(cmd))) => {
                        let error = ErrorInfo::new("ActorCancelled", format!("{} is stopping", self.core.uid));
                        self.reply_error(&cmd.cid, error).await;
                    }
                    Ok(Some(Msg::Sentinel)) => {
                        // Answer with ours once what is queued is written: the process may
                        // exit right after, and must not leave a frame half sent.
                        self.close().await;
                        return;
                    }
                    Ok(None) | Err(_) => return,
                    Ok(Some(msg)) => self.route(msg),
                },
                () = self.closed.cancelled() => return,
            }
        }
    }

    /// Records why the connection ends (the first reason given wins).
    fn set_reason(&self, reason: &str) {
        if let Ok(mut slot) = self.close_reason.lock() {
            slot.get_or_insert_with(|| reason.to_owned());
        }
    }

    /// Ends the connection's life: cancels what the peer started, fails what we wait for.
    fn shut(&self, reason: String) {
        debug!(peer = %self.peer, %reason, "connection ended");
        self.set_reason(&reason);
        self.tasks_cancel.cancel();
        self.is_shut.store(true, Ordering::Release);
        self.closed.cancel();
        // Senders waiting for credit learn the connection is gone.
        for task in self.tasks.iter() {
            if let Some(sem) = &task.credits {
                sem.close();
            }
        }
        for call in self.calls.iter() {
            if let Some(sem) = &call.credits {
                sem.close();
            }
        }
        // Dropping the routes' senders wakes every waiting call with "disconnected".
        self.calls.clear();
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
        if let Some(info) = self.runtime_error.lock().ok().and_then(|e| e.clone()) {
            return Error::Remote(RemoteActorError::from_info(info, &self.peer));
        }
        let detail = self
            .close_reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "connection closed".into());
        Error::Disconnected {
            peer: self.peer.to_string(),
            detail,
        }
    }

    // ---- serving the peer's calls ----

    async fn dispatch(self: &Arc<Self>, mut cmd: Box<Cmd>) {
        if cmd.ns == "self" {
            return self.runtime_call(cmd).await;
        }
        if cmd.ns == EXTENSION_NS && cmd.func == FLOW_CONTROL_CALL {
            return self.enable_flow_control(cmd).await;
        }
        if !self.core.enabled.contains(&cmd.ns) {
            let error = ErrorInfo::new(
                MODULE_NOT_EXPOSED,
                format!("{MODULE_NOT_EXPOSED}: {} is not enabled", cmd.ns),
            );
            return self.reply_error(&cmd.cid, error).await;
        }
        let Some(registration) = registry::lookup(&cmd.ns, &cmd.func) else {
            let error = ErrorInfo::new(
                FUNCTION_NOT_FOUND,
                format!("{} has no function {:?}", cmd.ns, cmd.func),
            );
            return self.reply_error(&cmd.cid, error).await;
        };
        if self.tasks.contains_key(&cmd.cid) {
            let error = ErrorInfo::new(
                "RuntimeError",
                format!("call id {:?} is already running", cmd.cid),
            );
            return self.reply_error(&cmd.cid, error).await;
        }
        let begun = match registration.handler {
            Handler::Func(start) => match self.serve_inline(&mut cmd, registration.ns, start).await
            {
                Some(fut) => Some(fut),
                None => return,
            },
            _ => None,
        };
        let Ok(slot) = self.task_slots.clone().acquire_owned().await else {
            return;
        };
        self.start_task(cmd, registration, slot, begun);
    }

    /// Serves a function call in the reader as far as it goes without waiting: a call that
    /// finishes at once (most do) costs no task, no cancellation scope and no table entry, and
    /// its `functype` and `return` go out in one write. Returns the started future of a call
    /// that must wait, to go on as a task; `None` once the call was answered.
    ///
    /// Nothing can cancel the call meanwhile: cancellation arrives as a message, which this
    /// same reader reads only afterwards.
    async fn serve_inline(
        self: &Arc<Self>,
        cmd: &mut Cmd,
        ns: &'static str,
        start: fn(Payload) -> Result<registry::CallFuture>,
    ) -> Option<registry::CallFuture> {
        // Counted while it runs, like a call served as a task.
        let running = self.core.count_running(ns);
        let mut kwargs = Some(std::mem::replace(&mut cmd.kwargs, Payload::nil()));
        let polled = std::future::poll_fn(|cx| {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                with_current_sync(self.core.clone(), || {
                    let mut fut = start(kwargs.take().unwrap_or_else(Payload::nil))?;
                    Ok(match fut.as_mut().poll(cx) {
                        Poll::Ready(outcome) => Err(outcome),
                        Poll::Pending => Ok(fut),
                    })
                })
            }));
            Poll::Ready(outcome)
        })
        .await;
        let outcome = match polled {
            // The task counts itself from here on.
            Ok(Ok(Ok(pending))) => return Some(pending),
            Ok(Ok(Err(finished))) => finished,
            Ok(Err(not_started)) => Err(not_started),
            Err(panic) => Err(panic_error(&cmd.func, &panic)),
        };
        drop(running);
        match outcome {
            Ok(value) => self.reply_value(&cmd.cid, value).await,
            Err(e) => self.reply_error(&cmd.cid, e.to_error_info()).await,
        }
        None
    }

    fn start_task(
        self: &Arc<Self>,
        cmd: Box<Cmd>,
        registration: &'static registry::Registration,
        slot: OwnedSemaphorePermit,
        begun: Option<registry::CallFuture>,
    ) {
        let handler = registration.handler;
        let window = self.core.stream_window;
        let flow = self.flow_on();
        let agreed = self.window();
        let cancel = self.tasks_cancel.child_token();
        let done = CancellationToken::new();
        let canceller = Arc::new(Mutex::new(None));
        let credits = flow.then(|| Arc::new(Semaphore::new(agreed)));
        let (inbox_tx, inbox) = match handler {
            Handler::Context(_) => {
                let (tx, rx) = mailbox(window + INBOX_SLACK);
                (Some(tx), Some(rx))
            }
            _ => (None, None),
        };
        self.tasks.insert(
            cmd.cid.clone(),
            TaskEntry {
                cancel: cancel.clone(),
                done: done.clone(),
                canceller: canceller.clone(),
                inbox: inbox_tx,
                credits: credits.clone(),
            },
        );
        let conn = self.clone();
        let core = self.core.clone();
        let task = async move {
            // Dropped last: the task counts as finished only after its final message is queued,
            // its entry removed and its running count released.
            let _done = done.drop_guard();
            let _slot = slot;
            let _running = conn.core.count_running(registration.ns);
            let run = RunningCall {
                conn: conn.clone(),
                cid: cmd.cid.clone(),
                func: cmd.func.clone(),
                cancel,
                canceller,
                credits,
            };
            match handler {
                Handler::Func(start) => match begun {
                    Some(fut) => run.func(Ok(fut)).await,
                    None => run.func(start(cmd.kwargs)).await,
                },
                Handler::Stream(start) => run.stream(start(cmd.kwargs)).await,
                Handler::Context(start) => {
                    let rx = inbox.unwrap_or_else(|| mailbox(1).1);
                    let inbox = Inbox::new(conn.clone(), cmd.cid.clone(), rx, false);
                    run.context(start, inbox, cmd.kwargs).await
                }
            }
            conn.tasks.remove(&cmd.cid);
        };
        self.core.tasks.spawn(with_current(core, task));
    }

    async fn runtime_call(self: &Arc<Self>, cmd: Box<Cmd>) {
        match cmd.func.as_str() {
            "_cancel_task" => {
                #[derive(Deserialize)]
                struct Args {
                    cid: String,
                }
                let target = match cmd.kwargs.decode::<Args>() {
                    Ok(args) => args.cid,
                    Err(e) => {
                        let error = ErrorInfo::new(TYPE_ERROR, format!("_cancel_task(): {e}"));
                        return self.reply_error(&cmd.cid, error).await;
                    }
                };
                let done = self.tasks.get(&target).map(|task| {
                    if let Ok(mut who) = task.canceller.lock() {
                        who.get_or_insert(cmd.caller.clone());
                    }
                    task.cancel.cancel();
                    task.done.clone()
                });
                let conn = self.clone();
                // Acknowledge only once the target has really ended; wait off the read loop.
                tokio::spawn(async move {
                    if let Some(done) = done {
                        done.cancelled().await;
                    }
                    conn.reply_value(&cmd.cid, Payload::nil()).await;
                });
            }
            "cancel" => {
                debug!(by = %cmd.caller, "actor cancel requested");
                if let Ok(mut who) = self.core.canceller.lock() {
                    who.get_or_insert(cmd.caller.clone());
                }
                self.reply_value(
                    &cmd.cid,
                    Payload::encode(&true).unwrap_or_else(|_| Payload::nil()),
                )
                .await;
                self.core.cancel.cancel();
            }
            func if REGISTRAR_CALLS.contains(&func) && self.core.registrar_table.is_some() => {
                let Some(table) = self.core.registrar_table.clone() else {
                    return;
                };
                let conn = self.clone();
                let cancel = self.tasks_cancel.clone();
                // `wait_for_actor` blocks: serve off the read loop, until the connection ends.
                tokio::spawn(async move {
                    let outcome = tokio::select! {
                        outcome = table.serve(&cmd.func, &cmd.kwargs) => outcome,
                        () = cancel.cancelled() => return,
                    };
                    match outcome.map(|v| Payload::from_value(&v)) {
                        Ok(value) => conn.reply_value(&cmd.cid, value).await,
                        Err(error) => conn.reply_error(&cmd.cid, error).await,
                    }
                });
            }
            other => {
                let error = ErrorInfo::new(
                    FUNCTION_NOT_FOUND,
                    format!("self.{other} is not a runtime call this actor allows"),
                );
                self.reply_error(&cmd.cid, error).await;
            }
        }
    }

    /// The peer asked for flow control: agree on the smaller of the two windows.
    async fn enable_flow_control(self: &Arc<Self>, cmd: Box<Cmd>) {
        #[derive(Deserialize)]
        struct Args {
            window: u64,
        }
        let asked = match cmd.kwargs.decode::<Args>() {
            Ok(args) => usize::try_from(args.window).unwrap_or(usize::MAX),
            Err(e) => {
                let error = ErrorInfo::new(TYPE_ERROR, format!("{FLOW_CONTROL_CALL}(): {e}"));
                return self.reply_error(&cmd.cid, error).await;
            }
        };
        let window = asked.clamp(2, self.core.stream_window);
        self.window.store(window, Ordering::Release);
        self.flow.store(FLOW_ON, Ordering::Release);
        let reply = Payload::encode(&HashMap::from([("window", window as u64)]))
            .unwrap_or_else(|_| Payload::nil());
        self.reply_value(&cmd.cid, reply).await;
    }

    /// `functype asyncfunc` and `return value`, written together.
    async fn reply_value(&self, cid: &str, value: Payload) {
        let mut frames = bytes::BytesMut::new();
        let sent = match Msg::put_answer_frames(&mut frames, cid, &value) {
            Ok(()) => self
                .sender
                .send_frame(frames.freeze())
                .await
                .map_err(|e| self.send_error(e)),
            Err(e) => Err(Error::Encode(e)),
        };
        if let Err(e) = sent {
            debug!(peer = %self.peer, error = %e, "could not reply");
        }
    }

    async fn reply_error(&self, cid: &str, mut error: ErrorInfo) {
        if error.extra("src_uid").is_none() {
            error
                .extra
                .push(("src_uid".into(), self.core.uid.to_value()));
        }
        let msg = Msg::Error {
            cid: Some(cid.to_owned()),
            error: Box::new(error),
        };
        if let Err(e) = self.sender.send(&msg).await {
            debug!(peer = %self.peer, error = %e, "could not send an error reply");
        }
    }

    // ---- routing replies to our calls ----

    fn route(self: &Arc<Self>, msg: Msg) {
        if let Msg::Credit { cid, credit } = &msg {
            let credits = self
                .tasks
                .get(cid)
                .and_then(|t| t.credits.clone())
                .or_else(|| self.calls.get(cid).and_then(|r| r.credits.clone()));
            match credits {
                Some(sem) => {
                    // Never more than the most credit outstanding, whatever a peer claims.
                    let room = MAX_STREAM_CREDIT.saturating_sub(sem.available_permits());
                    let granted = usize::try_from(*credit).unwrap_or(usize::MAX).min(room);
                    sem.add_permits(granted);
                }
                None => debug!(%cid, "credit for a finished stream"),
            }
            return;
        }
        // The hot path: borrow the cid from the message; no allocation per message.
        let Some(cid) = msg.cid() else {
            debug!(peer = %self.peer, ?msg, "ignoring a message without a call id");
            return;
        };
        if self.flow_pending.load(Ordering::Acquire) && self.flow_answer(cid, &msg) {
            return;
        }
        let over = matches!(msg, Msg::Return { .. } | Msg::Error { .. });
        // Delivered under the table's read guard: no clone of the route per message.
        if let Some(route) = self.calls.get(cid) {
            if let Msg::FuncType { kind, .. } = &msg
                && *kind == CallKind::AsyncFunc
                && route.kind == CallKind::AsyncFunc
            {
                // Confirms what the caller expects: nothing for it to learn, no wake-up.
                return;
            }
            if over {
                // The call is over: nothing more may be sent on it.
                if let Some(sem) = &route.credits {
                    sem.close();
                }
            }
            let sent = route.tx.try_send(msg);
            drop(route);
            match sent {
                Ok(()) => {}
                Err(Refused::Full(msg)) => {
                    let cid = msg.cid().unwrap_or_default().to_owned();
                    self.calls.remove(&cid);
                    warn!(peer = %self.peer, %cid, "stream overrun: its consumer fell behind; cancelling it");
                    self.cancel_remote(cid);
                }
                Err(Refused::Closed(msg)) => {
                    self.calls.remove(msg.cid().unwrap_or_default());
                }
            }
            return;
        }
        if let Some(task) = self.tasks.get(cid)
            && let Some(inbox) = &task.inbox
        {
            let sent = inbox.try_send(msg);
            drop(task);
            if let Err(Refused::Full(msg)) = sent {
                let cid = msg.cid().unwrap_or_default();
                if let Some(mut task) = self.tasks.get_mut(cid) {
                    task.inbox = None;
                }
                warn!(peer = %self.peer, %cid, "context stream overrun: the callee fell behind");
            }
            return;
        }
        // tractor sends `stop` twice and may send stream messages after a result: harmless.
        debug!(peer = %self.peer, %cid, "late message for a finished call");
    }

    // ---- making calls ----

    /// A fresh call id, unique among this side's calls on this connection.
    pub(crate) fn new_cid(&self) -> String {
        use std::fmt::Write;
        let n = self.next_cid.fetch_add(1, Ordering::Relaxed);
        let mut cid = String::with_capacity(self.cid_prefix.len() + 21);
        cid.push_str(&self.cid_prefix);
        cid.push('-');
        // Writing an integer into a String cannot fail.
        let _ = write!(cid, "{n}");
        cid
    }

    /// Registers a call and returns the inbox its replies arrive in.
    pub(crate) fn open_call(
        self: &Arc<Self>,
        cid: &str,
        kind: CallKind,
    ) -> Result<(Inbox, Option<Arc<Semaphore>>)> {
        if self.is_closed() {
            return Err(self.disconnected());
        }
        let capacity = match kind {
            CallKind::AsyncFunc => INBOX_SLACK,
            _ => self.core.stream_window + INBOX_SLACK,
        };
        let (tx, rx) = mailbox(capacity);
        // A context's send credits start empty: its stream adds the agreed window when it
        // opens, by which time the flow-control answer has arrived.
        let credits = (kind == CallKind::Context).then(|| Arc::new(Semaphore::new(0)));
        self.calls.insert(
            cid.to_owned(),
            Route {
                tx,
                kind,
                credits: credits.clone(),
            },
        );
        let inbox = Inbox::new(self.clone(), cid.to_owned(), rx, true);
        // The connection may have shut between the check above and the insert; the inbox's
        // drop removes the route again.
        if self.is_closed() {
            return Err(self.disconnected());
        }
        Ok((inbox, credits))
    }

    /// Sends a `cmd`.
    pub(crate) async fn send_cmd(
        &self,
        ns: &str,
        func: &str,
        kwargs: Payload,
        cid: &str,
    ) -> Result<()> {
        let frame = Msg::cmd_frame(CmdRef {
            ns,
            func,
            kwargs: &kwargs,
            caller: &self.core.uid,
            cid,
        })?;
        self.sender
            .send_frame(frame)
            .await
            .map_err(|e| self.send_error(e))
    }

    /// Before the first stream on this connection: ask the peer for flow control (without
    /// waiting; the answer arrives before any item of a stream opened after it).
    pub(crate) async fn request_flow_control(self: &Arc<Self>) {
        if self.flow_requested.swap(true, Ordering::AcqRel) {
            return;
        }
        let cid = self.new_cid();
        if let Ok(mut slot) = self.flow_cid.lock() {
            *slot = Some(cid.clone());
        }
        self.flow_pending.store(true, Ordering::Release);
        let kwargs = Payload::encode(&HashMap::from([("window", self.core.stream_window as u64)]))
            .unwrap_or_else(|_| Payload::empty_map());
        if self
            .send_cmd(EXTENSION_NS, FLOW_CONTROL_CALL, kwargs, &cid)
            .await
            .is_err()
        {
            self.flow.store(FLOW_OFF, Ordering::Release);
        }
    }

    /// Handles the answer to our `_flow_control` request; false if `msg` is not one.
    fn flow_answer(&self, cid: &str, msg: &Msg) -> bool {
        let ours = self
            .flow_cid
            .lock()
            .map(|slot| slot.as_deref() == Some(cid))
            .unwrap_or(false);
        if !ours {
            return false;
        }
        #[derive(Deserialize)]
        struct Agreed {
            window: u64,
        }
        if !matches!(msg, Msg::FuncType { .. }) {
            self.flow_pending.store(false, Ordering::Release);
        }
        match msg {
            Msg::FuncType { .. } => {}
            Msg::Return { value, .. } => match value.decode::<Agreed>() {
                Ok(agreed) if agreed.window >= 2 => {
                    let window = usize::try_from(agreed.window)
                        .unwrap_or(usize::MAX)
                        .min(self.core.stream_window);
                    self.window.store(window, Ordering::Release);
                    self.flow.store(FLOW_ON, Ordering::Release);
                }
                _ => {
                    debug!(peer = %self.peer, "flow control answer without a usable window");
                    self.flow.store(FLOW_OFF, Ordering::Release);
                }
            },
            _ => {
                debug!(peer = %self.peer, "peer declined flow control; overruns end streams");
                self.flow.store(FLOW_OFF, Ordering::Release);
            }
        }
        true
    }

    pub(crate) fn flow_on(&self) -> bool {
        self.flow.load(Ordering::Acquire) == FLOW_ON
    }

    /// The agreed stream window (meaningful while flow control is on).
    pub(crate) fn window(&self) -> usize {
        self.window.load(Ordering::Acquire)
    }

    /// Asks the peer to cancel our call `cid`, without waiting (a dropped call).
    pub(crate) fn cancel_remote(self: &Arc<Self>, cid: String) {
        if self.is_closed() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let conn = self.clone();
        handle.spawn(async move {
            let kwargs = match Payload::encode(&HashMap::from([("cid", cid.as_str())])) {
                Ok(kwargs) => kwargs,
                Err(_) => return,
            };
            let ack = conn.new_cid();
            if let Err(e) = conn.send_cmd("self", "_cancel_task", kwargs, &ack).await {
                debug!(%cid, error = %e, "could not send _cancel_task");
            }
        });
    }

    /// Sends `_cancel_task` for our call `cid` and waits for the acknowledgement, which comes
    /// once the remote task has ended.
    pub(crate) async fn cancel_and_wait(self: &Arc<Self>, cid: &str) -> Result<()> {
        let kwargs = Payload::encode(&HashMap::from([("cid", cid)]))?;
        self.run_raw("self", "_cancel_task", kwargs).await.map(drop)
    }

    /// Calls a request/response function by name and returns its encoded result.
    pub(crate) async fn run_raw(
        self: &Arc<Self>,
        ns: &str,
        func: &str,
        kwargs: Payload,
    ) -> Result<Payload> {
        let cid = self.new_cid();
        let (mut inbox, _) = self.open_call(&cid, CallKind::AsyncFunc)?;
        self.send_cmd(ns, func, kwargs, &cid).await?;
        loop {
            match inbox.recv().await? {
                Msg::FuncType { .. } => continue,
                Msg::Return { value, .. } => {
                    inbox.finished = true;
                    return Ok(value);
                }
                Msg::Error { error, .. } => {
                    inbox.finished = true;
                    return Err(self.remote_error(*error));
                }
                other => return Err(self.protocol(format!("unexpected reply {other:?}"))),
            }
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

    pub(crate) fn protocol(&self, detail: String) -> Error {
        Error::Protocol {
            peer: self.peer.to_string(),
            detail,
        }
    }

    /// Queues a frame without waiting if possible, else from a spawned task (for `Drop`s and
    /// `poll` functions, which cannot wait).
    pub(crate) fn send_frame_soon(&self, frame: bytes::Bytes) {
        match self.sender.try_send_frame(frame) {
            Ok(()) | Err(TrySendError::Closed) => {}
            Err(TrySendError::Full(frame)) => {
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    let sender = self.sender.clone();
                    handle.spawn(async move {
                        let _ = sender.send_frame(frame).await;
                    });
                }
            }
        }
    }
}

impl Connection {
    /// The error for a failed send on this connection.
    pub(crate) fn send_error(&self, e: actor_ipc::SendError) -> Error {
        match e {
            actor_ipc::SendError::Closed => self.disconnected(),
            actor_ipc::SendError::Encode(e) => Error::Encode(e),
        }
    }
}

/// Shuts a connection when dropped (its reader's safety net).
struct ShutOnDrop(Arc<Connection>);

impl Drop for ShutOnDrop {
    fn drop(&mut self) {
        if !self.0.is_closed() {
            self.0.shut("the connection's reader stopped".into());
        }
    }
}

/// Keeps a connection this side opened alive while anything uses it (portals, streams,
/// contexts, call handles); when the last lease drops, the connection is closed with the
/// sentinel, so dropped portals leave no connection (or remote task) behind.
pub(crate) struct Lease {
    pub(crate) conn: Arc<Connection>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.conn.is_closed() {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let conn = self.conn.clone();
            handle.spawn(async move { conn.close().await });
        }
    }
}

/// The receiving end of one call's messages, on either side: replies to a call we made, or a
/// context's stream items from the peer that called us.
///
/// Dropped before `finished` on the calling side, it asks the peer to cancel the call: Rust's
/// drop is the cancel scope, across processes.
pub(crate) struct Inbox {
    pub(crate) conn: Arc<Connection>,
    pub(crate) cid: String,
    rx: MailboxReceiver,
    /// Whether this is a call we made (else a task the peer started).
    ours: bool,
    /// Set once the call reached its end; a drop then cancels nothing.
    pub(crate) finished: bool,
    /// Stream items the producer may send in all: the window, plus every credit granted.
    allowed: usize,
    /// Stream items consumed, and their size in memory (for the average).
    consumed: usize,
    consumed_bytes: usize,
    /// A credit grant was just queued: the next poll yields once, so the connection's writer
    /// sends it now rather than after this consumer has drained everything in hand (which
    /// would leave the producer waiting, and then this side idle).
    yield_for_grant: bool,
    /// Keeps the connection open while this call is alive (calls made through a portal).
    pub(crate) lease: Option<Arc<Lease>>,
}

impl Inbox {
    /// An inbox for call `cid`: `ours` when this side made the call (its drop then cancels
    /// the call if unfinished), else a task the peer started.
    fn new(conn: Arc<Connection>, cid: String, rx: MailboxReceiver, ours: bool) -> Self {
        Self {
            conn,
            cid,
            rx,
            ours,
            finished: false,
            allowed: 0,
            consumed: 0,
            consumed_bytes: 0,
            yield_for_grant: false,
            lease: None,
        }
    }

    /// The next message of the call.
    pub(crate) async fn recv(&mut self) -> Result<Msg> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next message: `Err` once the connection is gone or the call overran.
    pub(crate) fn poll_recv(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Msg>> {
        if std::mem::take(&mut self.yield_for_grant) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(msg)) => Poll::Ready(Ok(msg)),
            Poll::Ready(None) if self.rx.overran() => {
                self.finished = true;
                Poll::Ready(Err(Error::Overrun {
                    cid: self.cid.clone(),
                    capacity: self.rx.capacity().saturating_sub(INBOX_SLACK),
                }))
            }
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(Err(self.conn.disconnected()))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Records one stream item of `size` payload bytes consumed; with flow control on, grants
    /// the producer more credit once half of what it may have in flight was consumed.
    ///
    /// What it may have in flight starts at the agreed window and adapts to the items: as many
    /// as [`STREAM_BYTES_IN_FLIGHT`] holds at their average size, at most
    /// [`MAX_STREAM_CREDIT`]. Small items get a deep pipeline (a producer that waits for credit
    /// leaves both sides idle), large ones bounded memory.
    pub(crate) fn consumed_item(&mut self, size: usize) {
        if !self.conn.flow_on() {
            return;
        }
        if self.allowed == 0 {
            self.allowed = self.conn.window();
        }
        self.consumed += 1;
        self.consumed_bytes = self.consumed_bytes.saturating_add(size + ITEM_OVERHEAD);
        let average = (self.consumed_bytes / self.consumed).max(1);
        let target = (STREAM_BYTES_IN_FLIGHT / average).clamp(2, MAX_STREAM_CREDIT);
        let in_flight = self.allowed.saturating_sub(self.consumed);
        if in_flight * 2 > target {
            return;
        }
        let grant = target - in_flight;
        // The mailbox must hold whatever the producer may now send.
        self.rx.raise_capacity(target + INBOX_SLACK);
        let credit = Msg::Credit {
            cid: self.cid.clone(),
            credit: grant as u64,
        };
        if let Ok(frame) = credit.to_frame() {
            self.allowed += grant;
            self.conn.send_frame_soon(frame);
            self.yield_for_grant = true;
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        if self.ours {
            self.conn.calls.remove(&self.cid);
            if !self.finished {
                self.conn.cancel_remote(self.cid.clone());
            }
        }
    }
}

/// A call the peer made, running here: sends its replies and honours cancellation.
struct RunningCall {
    conn: Arc<Connection>,
    cid: String,
    func: String,
    cancel: CancellationToken,
    canceller: Arc<Mutex<Option<Uid>>>,
    credits: Option<Arc<Semaphore>>,
}

/// Takes every credit available right now: `None` once the call is over (the semaphore closed).
fn take_credits(credits: &Semaphore) -> Option<usize> {
    let available = credits.available_permits();
    if available == 0 {
        return if credits.is_closed() { None } else { Some(0) };
    }
    let count = u32::try_from(available).unwrap_or(u32::MAX);
    match credits.try_acquire_many(count) {
        Ok(permit) => {
            permit.forget();
            Some(count as usize)
        }
        Err(tokio::sync::TryAcquireError::Closed) => None,
        Err(tokio::sync::TryAcquireError::NoPermits) => Some(0),
    }
}

/// The error reply for function `func` that panicked.
fn panic_error(func: &str, panic: &Box<dyn Any + Send>) -> Error {
    Error::raise(
        PANIC_TYPE,
        format!("{func} panicked: {}", panic_message(panic)),
    )
}

/// A panic's message, for the error reply.
fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".into())
}

impl RunningCall {
    async fn send(&self, msg: &Msg) {
        if let Err(e) = self.conn.sender.send(msg).await {
            debug!(cid = %self.cid, error = %e, "reply not sent: connection closed");
        }
    }

    async fn send_error(&self, error: &Error) {
        self.conn
            .reply_error(&self.cid, error.to_error_info())
            .await;
    }

    fn panic_error(&self, panic: &Box<dyn Any + Send>) -> Error {
        panic_error(&self.func, panic)
    }

    fn functype(&self, kind: CallKind) -> Msg {
        Msg::FuncType {
            cid: self.cid.clone(),
            kind,
        }
    }

    async fn func(self, started: Result<registry::CallFuture>) {
        let fut = match started {
            Ok(fut) => fut,
            Err(e) => return self.send_error(&e).await,
        };
        let mut fut = std::panic::AssertUnwindSafe(fut).catch_unwind();
        // A function that finishes at once gets `functype` and `return` in one write.
        let outcome = match futures::poll!(&mut fut) {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => {
                self.send(&self.functype(CallKind::AsyncFunc)).await;
                tokio::select! {
                    outcome = &mut fut => outcome,
                    // An asyncfunc sends nothing when cancelled.
                    () = self.cancel.cancelled() => return,
                }
            }
        };
        match outcome {
            Ok(Ok(value)) => {
                self.conn.reply_value(&self.cid, value).await;
            }
            Ok(Err(e)) => self.send_error(&e).await,
            Err(panic) => self.send_error(&self.panic_error(&panic)).await,
        }
    }

    async fn stream(self, started: Result<registry::ItemStream>) {
        let mut stream = match started {
            Ok(stream) => stream,
            Err(e) => return self.send_error(&e).await,
        };
        self.send(&self.functype(CallKind::AsyncGen)).await;
        let stop = Msg::Stop {
            cid: self.cid.clone(),
        };
        // Frames of items ready one after another are cut from one buffer and queued for the
        // writer together: no allocation and no queue hop per item.
        let mut frames = bytes::BytesMut::with_capacity(FRAME_BUFFER);
        // Credits taken from the semaphore but not yet spent (taken in bulk, spent per item).
        let mut credit = 0_usize;
        loop {
            // Checked once per buffer handed to the writer (reading the token takes its lock),
            // not per item: a cancel waits at most one buffer of ready items.
            if frames.is_empty() && self.cancel.is_cancelled() {
                return self.finish_stream(frames, &stop).await;
            }
            if let Some(credits) = &self.credits
                && credit == 0
            {
                credit = match take_credits(credits) {
                    Some(0) => {
                        // Out of credit: what is buffered must reach the consumer first, or
                        // it never grants more.
                        if !self.flush(&mut frames).await {
                            return;
                        }
                        tokio::select! {
                            permit = credits.acquire() => match permit {
                                Ok(permit) => permit.forget(),
                                Err(_) => return,
                            },
                            () = self.cancel.cancelled() => return self.send(&stop).await,
                        }
                        1 + take_credits(credits).unwrap_or(0)
                    }
                    Some(taken) => taken,
                    // The call is over: the consumer went away.
                    None => return,
                };
            }
            let mut next = std::panic::AssertUnwindSafe(stream.next()).catch_unwind();
            let next = match futures::poll!(&mut next) {
                Poll::Ready(next) => next,
                Poll::Pending => {
                    // Nothing ready: send what is buffered while the stream works.
                    if !self.flush(&mut frames).await {
                        return;
                    }
                    tokio::select! {
                        biased;
                        () = self.cancel.cancelled() => return self.send(&stop).await,
                        next = next => next,
                    }
                }
            };
            match next {
                Ok(Some(Ok(item))) if item.as_bytes().len() >= LARGE_ITEM => {
                    credit = credit.saturating_sub(1);
                    // Written from where it is: no copy, no fresh buffer as large as the item.
                    if !self.flush(&mut frames).await {
                        return;
                    }
                    let parts = match Msg::yield_frame_parts(&self.cid, &item) {
                        Ok(parts) => parts,
                        Err(e) => return self.send_error(&Error::Encode(e)).await,
                    };
                    if self
                        .conn
                        .sender
                        .send_frame_parts(parts.into())
                        .await
                        .is_err()
                    {
                        return;
                    }
                    // Let the writer start on it before the next one is made: otherwise a
                    // ready stream of large items queues many (memory, cache misses, fresh
                    // pages) while the writer waits its turn on this thread.
                    tokio::task::yield_now().await;
                }
                Ok(Some(Ok(item))) => {
                    credit = credit.saturating_sub(1);
                    // Room for the whole frame at once: an item is copied exactly once.
                    let needed = item.as_bytes().len() + self.cid.len() + FRAME_OVERHEAD;
                    if frames.capacity() - frames.len() < needed {
                        if !self.flush(&mut frames).await {
                            return;
                        }
                        frames.reserve(needed.max(FRAME_BUFFER));
                    }
                    if let Err(e) = Msg::put_yield_frame(&mut frames, &self.cid, &item) {
                        self.flush(&mut frames).await;
                        return self.send_error(&Error::Encode(e)).await;
                    }
                    if frames.len() >= FLUSH_BYTES && !self.flush(&mut frames).await {
                        return;
                    }
                }
                Ok(Some(Err(e))) => {
                    self.flush(&mut frames).await;
                    return self.send_error(&e).await;
                }
                Ok(None) => return self.finish_stream(frames, &stop).await,
                Err(panic) => {
                    self.flush(&mut frames).await;
                    return self.send_error(&self.panic_error(&panic)).await;
                }
            }
        }
    }

    /// Queues the buffered item frames for the writer; false if the connection is gone.
    async fn flush(&self, frames: &mut bytes::BytesMut) -> bool {
        if frames.is_empty() {
            return true;
        }
        self.conn
            .sender
            .send_frame(frames.split().freeze())
            .await
            .is_ok()
    }

    /// Ends a stream: the buffered items and `stop`, in one write.
    async fn finish_stream(&self, mut frames: bytes::BytesMut, stop: &Msg) {
        if let Err(e) = stop.write_frame(&mut frames) {
            debug!(cid = %self.cid, error = %e, "could not encode stop");
        }
        self.flush(&mut frames).await;
    }

    async fn context(
        self,
        start: fn(Context, Payload) -> Result<registry::CallFuture>,
        inbox: Inbox,
        kwargs: Payload,
    ) {
        let flags = Arc::new(StreamFlags::default());
        let ctx = Context::callee(
            inbox,
            self.credits.clone(),
            flags.clone(),
            self.cancel.clone(),
            &self.func,
        );
        let fut = match start(ctx, kwargs) {
            Ok(fut) => fut,
            Err(e) => return self.send_error(&e).await,
        };
        self.send(&self.functype(CallKind::Context)).await;
        let outcome = tokio::select! {
            outcome = std::panic::AssertUnwindSafe(fut).catch_unwind() => Some(outcome),
            () = self.cancel.cancelled() => None,
        };
        // The stream's `stop` goes out before the call's final message, in order.
        if flags.opened.load(Ordering::Acquire) && !flags.stop_sent.swap(true, Ordering::AcqRel) {
            self.send(&Msg::Stop {
                cid: self.cid.clone(),
            })
            .await;
        }
        match outcome {
            None => {
                let canceller = self
                    .canceller
                    .lock()
                    .ok()
                    .and_then(|c| c.clone())
                    .or_else(|| self.conn.core.canceller.lock().ok().and_then(|c| c.clone()))
                    .unwrap_or_else(|| self.conn.core.uid.clone());
                let mut error = ErrorInfo::new(
                    CONTEXT_CANCELLED,
                    format!("{} was remotely cancelled by {canceller}", self.func),
                );
                error.extra.push(("canceller".into(), canceller.to_value()));
                self.conn.reply_error(&self.cid, error).await;
            }
            Some(Ok(Ok(value))) => match Msg::return_frame(&self.cid, &value) {
                Ok(frame) => {
                    let _ = self.conn.sender.send_frame(frame).await;
                }
                Err(e) => self.send_error(&Error::Encode(e)).await,
            },
            Some(Ok(Err(e))) => self.send_error(&e).await,
            Some(Err(panic)) => self.send_error(&self.panic_error(&panic)).await,
        }
    }
}
