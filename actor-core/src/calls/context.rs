//! Contexts: bidirectional calls (`functype` `context`).
//!
//! The callee receives a [`Context`] as its function's first argument: it sends one
//! `started` value, may open a [`MsgStream`] to exchange items with the caller both ways, and
//! its return value is the context's result. It can see its call cancelled
//! ([`Context::cancelled`]). The caller gets a [`Context`] from `Portal::open_context` with the
//! `started` value, opens the stream on its side, then reads the [`Context::result`] (which
//! ends its half of the stream) or [`Context::cancel`]s it.
//!
//! A stream owns what it needs: it does not borrow its context, so `ctx.result()` can be
//! called while the stream is still in scope.
//!
//! ```no_run
//! use futures::StreamExt;
//!
//! #[actor::remote(ns = "demo", started = i64)]
//! async fn echo(ctx: actor::Context, first: i64) -> actor::Result<u32> {
//!     ctx.started(first).await?;
//!     let mut stream = ctx.open_stream::<String>().await?;
//!     let mut echoed = 0;
//!     while let Some(line) = stream.next().await {
//!         stream.send(line?).await?;
//!         echoed += 1;
//!     }
//!     Ok(echoed)
//! }
//!
//! # async fn caller(portal: actor::Portal) -> actor::Result<()> {
//! let (ctx, first) = portal.open_context(echo { first: 7 }).await?;
//! assert_eq!(first, 7);
//! let mut stream = ctx.open_stream::<String>().await?;
//! stream.send("hello".to_owned()).await?;
//! assert_eq!(stream.next().await.transpose()?, Some("hello".to_owned()));
//! let echoed: u32 = ctx.result().await?; // ends this side's stream, waits for the result
//! assert_eq!(echoed, 1);
//! # Ok(()) }
//! ```
//!
//! Misuse is an error, not a hang: `started` twice, a stream before `started`, a second stream,
//! `result` on the callee side.

use std::{
    marker::PhantomData,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    task::{Context as TaskContext, Poll, ready},
};

use actor_ipc::{Cid, ErrorInfo, FrameSink, Msg, Payload, Uid};
use futures::{Sink, Stream};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::Semaphore;
use tokio_util::sync::{CancellationToken, PollSemaphore};

use crate::{
    base::{
        error::{Error, Result},
        lock,
    },
    connection::{Connection, Inbox},
    engine::sequence::Step,
};

/// How long a cancelled context function that waits on [`Context::cancelled`] may go on to
/// clean up before it is dropped.
pub const CANCEL_CLEANUP_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

const STREAM_NOT_OPENED: u8 = 0;
const STREAM_OPEN: u8 = 1;
const STREAM_CLOSED: u8 = 2;

/// What the runtime must know of a callee's stream to end it in order.
#[derive(Debug, Default)]
pub(crate) struct StreamFlags {
    /// A stream was opened on the context.
    pub(crate) opened: AtomicBool,
    /// Its `stop` was queued.
    pub(crate) stop_sent: AtomicBool,
    /// The callee waits for its cancellation ([`Context::cancelled`]): once cancelled, the
    /// runtime lets it finish its cleanup (bounded) before dropping it.
    pub(crate) observes_cancel: AtomicBool,
    /// Callee: the runtime ended the call (its function is gone; the stream's `stop` and the
    /// final message are the runtime's to send). A stream moved out of the function (into a
    /// spawned task) sends nothing after this.
    pub(crate) call_over: AtomicBool,
}

/// Which end of a context this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Caller,
    Callee,
}

/// One end of a bidirectional call.
///
/// The context and its stream share the call's state: the stream does not borrow the context.
pub struct Context {
    shared: Arc<Shared>,
}

/// The state of one end of a context, shared by the context and its stream.
struct Shared {
    role: Role,
    cid: Cid,
    peer: Uid,
    func: String,
    conn: Arc<Connection>,
    /// The call's messages: read by the stream while one is open, then by `result`.
    inbox: Mutex<Option<Inbox>>,
    /// Credits for the items this end sends (with flow control on).
    credits: Option<Arc<Semaphore>>,
    started: AtomicBool,
    stream: AtomicU8,
    /// Caller: `result` or `cancel` ended the call; the stream sends no more.
    ended: AtomicBool,
    /// The task reading the stream, woken when `result` or `cancel` takes the call's messages
    /// away from it (the call's mailbox wakes only its latest reader).
    reader: futures::task::AtomicWaker,
    /// Shared with the runtime: whether a stream was opened and whether its `stop` went out.
    flags: Arc<StreamFlags>,
    /// Callee: cancelled when the call is (the runtime then sends the stream's `stop`).
    cancel: Option<CancellationToken>,
    /// Caller: the call's end (its result or its error), if the stream saw it first.
    outcome: Mutex<Option<std::result::Result<Payload, Box<ErrorInfo>>>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("role", &self.shared.role)
            .field("func", &self.shared.func)
            .field("cid", &self.shared.cid)
            .field("peer", &self.shared.peer)
            .finish()
    }
}

impl Context {
    pub(crate) fn callee(
        inbox: Inbox,
        credits: Option<Arc<Semaphore>>,
        flags: Arc<StreamFlags>,
        cancel: CancellationToken,
        func: &str,
    ) -> Self {
        Self::new(Role::Callee, inbox, credits, flags, Some(cancel), func)
    }

    pub(crate) fn caller(inbox: Inbox, credits: Option<Arc<Semaphore>>, func: &str) -> Self {
        let ctx = Self::new(Role::Caller, inbox, credits, Arc::default(), None, func);
        ctx.shared.started.store(true, Ordering::Release);
        ctx
    }

    fn new(
        role: Role,
        inbox: Inbox,
        credits: Option<Arc<Semaphore>>,
        flags: Arc<StreamFlags>,
        cancel: Option<CancellationToken>,
        func: &str,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                role,
                cid: inbox.cid.clone(),
                peer: inbox.conn.peer.clone(),
                func: func.to_owned(),
                conn: inbox.conn.clone(),
                inbox: Mutex::new(Some(inbox)),
                credits,
                started: AtomicBool::new(false),
                stream: AtomicU8::new(STREAM_NOT_OPENED),
                ended: AtomicBool::new(false),
                reader: futures::task::AtomicWaker::new(),
                flags,
                cancel,
                outcome: Mutex::new(None),
            }),
        }
    }

    /// The call id.
    pub fn cid(&self) -> &str {
        &self.shared.cid
    }

    /// The actor at the other end.
    pub fn peer(&self) -> &Uid {
        &self.shared.peer
    }

    /// Callee: whether the call was cancelled (by the caller, or by this actor stopping). Once
    /// it is, the function runs on only if it waits on [`Context::cancelled`] (for its cleanup):
    /// check this between steps of work that does not wait. Always false on the caller's end,
    /// which cancels by [`Context::cancel`] or by dropping.
    pub fn is_cancelled(&self) -> bool {
        self.shared.is_cancelled()
    }

    /// Callee: completes once the call is cancelled, like
    /// `tokio_util::sync::CancellationToken::cancelled`, so a function can stop its work and
    /// clean up (`tokio::select!` on it beside that work). A function that waits on it is given
    /// [`CANCEL_CLEANUP_GRACE`] after the cancel to finish; then the runtime closes the nurseries
    /// it opened (gracefully: their children stop and unregister) and drops it. A function that
    /// does not is dropped at once, after its nurseries are closed. Never completes on the
    /// caller's end.
    ///
    /// ```no_run
    /// #[actor::remote(ns = "demo", started = ())]
    /// async fn watch(ctx: actor::Context) -> actor::Result<()> {
    ///     ctx.started(()).await?;
    ///     tokio::select! {
    ///         () = ctx.cancelled() => { /* release what this call holds */ }
    ///         () = std::future::pending::<()>() => {}
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub async fn cancelled(&self) {
        match &self.shared.cancel {
            Some(token) => {
                self.shared
                    .flags
                    .observes_cancel
                    .store(true, Ordering::Release);
                token.cancelled().await
            }
            None => std::future::pending().await,
        }
    }

    /// Whether this is the caller's end.
    pub fn is_caller(&self) -> bool {
        self.shared.role == Role::Caller
    }

    /// Callee: sends the context's first value to the caller. Exactly once, before any stream.
    pub async fn started<T: Serialize>(&self, value: T) -> Result<()> {
        let shared = &self.shared;
        if shared.role != Role::Callee {
            return Err(Error::Usage(format!(
                "{}: only the callee sends `started` (this side called it, on actor {})",
                shared.func, shared.peer
            )));
        }
        if shared.started.swap(true, Ordering::AcqRel) {
            return Err(Error::Usage(format!(
                "{}: `started` was already sent",
                shared.func
            )));
        }
        let msg = Msg::Started {
            cid: shared.cid.clone(),
            value: Payload::encode(&value)?,
        };
        let conn = &shared.conn;
        conn.sender.send(&msg).await.map_err(|e| conn.send_error(e))
    }

    /// Opens the context's bidirectional stream of `T` items (one per context). The callee
    /// must have sent `started` first. The stream holds what it needs (not a borrow of the
    /// context).
    pub async fn open_stream<T>(&self) -> Result<MsgStream<T>>
    where
        T: Serialize + DeserializeOwned,
    {
        let shared = &self.shared;
        if !shared.started.load(Ordering::Acquire) {
            return Err(Error::Usage(format!(
                "{}: open the stream after `started`",
                shared.func
            )));
        }
        match shared.stream.compare_exchange(
            STREAM_NOT_OPENED,
            STREAM_OPEN,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {}
            Err(STREAM_OPEN) => {
                return Err(Error::Usage(format!(
                    "{}: the stream is already open",
                    shared.func
                )));
            }
            Err(_) => {
                return Err(Error::Usage(format!(
                    "{}: the context's stream was already closed",
                    shared.func
                )));
            }
        }
        shared.flags.opened.store(true, Ordering::Release);
        if shared.role == Role::Caller && shared.conn.flow_on() {
            // The caller's send credits start once the window is agreed (by now it is).
            if let Some(credits) = &shared.credits {
                credits.add_permits(shared.conn.window());
            }
        }
        Ok(MsgStream::new(shared.clone()))
    }

    /// Caller: waits for the context's final result. Ends this side's half of the stream first
    /// if it is still open (the callee may be waiting for it); items not read are discarded.
    pub async fn result<R: DeserializeOwned>(self) -> Result<R> {
        let shared = &self.shared;
        if shared.role != Role::Caller {
            return Err(Error::Usage(format!(
                "{}: only the caller reads a context's result (this side serves it; the \
                 function's return value is the result)",
                shared.func
            )));
        }
        let mut inbox = shared.take_inbox()?;
        if let Some(outcome) = lock(&shared.outcome).take() {
            inbox.finished = true;
            return match outcome {
                Ok(value) => Ok(value.decode_owned()?),
                Err(error) => Err(inbox.conn.remote_error(*error)),
            };
        }
        // A peer that already returned may have gone too: its result is still in the inbox.
        if let Err(e) = shared.send_stop_once().await {
            tracing::debug!(cid = %shared.cid, error = %e, "could not end our side of the stream");
        }
        loop {
            match inbox.next_step().await? {
                Step::Returned(value) => return Ok(value.decode_owned()?),
                Step::Failed(error) => return Err(inbox.conn.remote_error(*error)),
                // Items the caller did not read (still credited, so the callee can finish).
                Step::Item(value) => inbox.consumed_item(value.as_bytes().len()),
                // tractor's duplicate stops, and the end of a stream nobody read.
                Step::StreamEnded | Step::Ignored | Step::Opened | Step::Started(_) => {}
                Step::Violation(what) => {
                    return Err(inbox.conn.protocol(format!(
                        "unexpected message in context {}: {what}",
                        shared.func
                    )));
                }
            }
        }
    }

    /// Caller: cancels the remote context and waits until it has ended. Your own cancel is not
    /// reported as an error.
    pub async fn cancel(self) -> Result<()> {
        let shared = &self.shared;
        if shared.role != Role::Caller {
            return Err(Error::Usage(format!(
                "{}: only the caller cancels a context (this side serves it: return, or \
                 return an error, to end it)",
                shared.func
            )));
        }
        let mut inbox = shared.take_inbox()?;
        inbox.finished = true;
        let conn = inbox.conn.clone();
        conn.cancel_and_wait(&shared.cid).await
    }
}

impl Shared {
    fn is_cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
    }

    fn take_inbox(&self) -> Result<Inbox> {
        self.ended.store(true, Ordering::Release);
        let taken = lock(&self.inbox).take();
        // A stream read in another task now ends: wake it to see so.
        self.reader.wake();
        taken.ok_or_else(|| Error::Usage(format!("{}: the context has already ended", self.func)))
    }

    /// Whether this end may send no more: the caller's call was ended by `result`/`cancel`,
    /// or the callee's call is over.
    fn sending_over(&self) -> bool {
        self.ended.load(Ordering::Acquire) || self.flags.call_over.load(Ordering::Acquire)
    }

    /// Caller: queues this side's `stop` if a stream is open and it was not sent yet.
    async fn send_stop_once(&self) -> Result<()> {
        if !self.flags.opened.load(Ordering::Acquire)
            || self.flags.stop_sent.swap(true, Ordering::AcqRel)
        {
            return Ok(());
        }
        let stop = Msg::Stop {
            cid: self.cid.clone(),
        };
        let conn = &self.conn;
        conn.sender
            .send(&stop)
            .await
            .map_err(|e| conn.send_error(e))
    }
}

/// One end of a context's bidirectional stream: a [`Stream`] of received items and a [`Sink`]
/// (and [`MsgStream::send`]) for items to the other end. Dropping it (or [`MsgStream::close`])
/// tells the other end the stream is over. It shares the call's state with its [`Context`]
/// rather than borrowing it.
pub struct MsgStream<T> {
    shared: Arc<Shared>,
    ended: bool,
    stopped: bool,
    sink: FrameSink,
    credits: Option<PollSemaphore>,
    holding_credit: bool,
    _item: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for MsgStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgStream")
            .field("cid", &self.shared.cid)
            .field("ended", &self.ended)
            .finish()
    }
}

impl<T> MsgStream<T> {
    /// Why nothing more can be sent: the context is over.
    fn ended(&self) -> Error {
        Error::Usage(format!(
            "{}: the context with {} has ended (its result was taken, it was cancelled, or \
             the callee returned): nothing more can be sent",
            self.shared.func, self.shared.peer
        ))
    }

    fn new(shared: Arc<Shared>) -> Self {
        let flow = shared.conn.flow_on();
        Self {
            sink: shared.conn.sender.frame_sink(),
            credits: shared
                .credits
                .clone()
                .filter(|_| flow)
                .map(PollSemaphore::new),
            holding_credit: false,
            shared,
            ended: false,
            stopped: false,
            _item: PhantomData,
        }
    }

    /// The actor at the other end.
    pub fn peer(&self) -> &Uid {
        &self.shared.peer
    }

    /// Ends this side's half of the stream: the other end sees the stream end.
    pub async fn close(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        if self.shared.flags.stop_sent.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let stop = Msg::Stop {
            cid: self.shared.cid.clone(),
        };
        let conn = &self.shared.conn;
        conn.sender
            .send(&stop)
            .await
            .map_err(|e| conn.send_error(e))
    }

    fn poll_credit(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        if self.holding_credit {
            return Poll::Ready(Ok(()));
        }
        if let Some(credits) = &mut self.credits {
            match ready!(credits.poll_acquire(cx)) {
                Some(permit) => permit.forget(),
                // The runtime closes the semaphore when the call ends.
                None => return Poll::Ready(Err(self.ended())),
            }
        }
        self.holding_credit = true;
        Poll::Ready(Ok(()))
    }
}

impl<T: Serialize> MsgStream<T> {
    /// Sends one item to the other end (waiting for flow-control credit if needed).
    pub async fn send(&mut self, item: T) -> Result<()> {
        futures::SinkExt::send(self, item).await
    }
}

impl<T: DeserializeOwned> Stream for MsgStream<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<T>>> {
        let this = self.get_mut();
        let shared = this.shared.clone();
        shared.reader.register(cx.waker());
        // Read through the shared slot: `result` takes the inbox once it is called, which
        // ends this stream.
        let mut slot = lock(&shared.inbox);
        while !this.ended {
            let Some(inbox) = slot.as_mut() else {
                return Poll::Ready(None);
            };
            let step = match ready!(inbox.poll_step(cx)) {
                Ok(step) => step,
                Err(e) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
            };
            match step {
                Step::Item(value) => return Poll::Ready(Some(inbox.take_item(value))),
                Step::StreamEnded => this.ended = true,
                Step::Returned(value) => {
                    // The callee finished: the stream is over; keep the result for `result()`.
                    this.ended = true;
                    *lock(&shared.outcome) = Some(Ok(value));
                }
                Step::Failed(error) => {
                    this.ended = true;
                    let err = inbox.conn.remote_error(ErrorInfo::clone(&error));
                    *lock(&shared.outcome) = Some(Err(error));
                    return Poll::Ready(Some(Err(err)));
                }
                Step::Violation(what) => {
                    tracing::debug!(cid = %inbox.cid, %what, "ignoring an unexpected context message");
                }
                Step::Opened | Step::Started(_) | Step::Ignored => {}
            }
        }
        Poll::Ready(None)
    }
}

impl<T: Serialize> Sink<T> for MsgStream<T> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if this.stopped {
            return Poll::Ready(Err(Error::Usage(format!(
                "{}: the stream was closed by this side: nothing more can be sent",
                this.shared.func
            ))));
        }
        if this.shared.sending_over() {
            return Poll::Ready(Err(this.ended()));
        }
        ready!(this.poll_credit(cx))?;
        let sent = ready!(Pin::new(&mut this.sink).poll_ready(cx));
        Poll::Ready(sent.map_err(|e| this.send_error(e)))
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<()> {
        let this = self.get_mut();
        if this.shared.sending_over() {
            return Err(this.ended());
        }
        // Encode first: a value that cannot be encoded keeps its credit.
        let frame = Msg::yield_frame_of(&this.shared.cid, &item)?;
        this.holding_credit = false;
        let sent = Pin::new(&mut this.sink).start_send(frame);
        sent.map_err(|e| this.send_error(e))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        this.send_stop_soon();
        Poll::Ready(Ok(()))
    }
}

impl<T> MsgStream<T> {
    fn send_error(&self, e: actor_ipc::SendError) -> Error {
        self.shared.conn.send_error(e)
    }

    /// Ends this side's half of the stream without waiting. The caller's end queues `stop` now
    /// (or from a task when the writer queue is full). The callee's end leaves it to the
    /// runtime when it cannot queue it at once or when the call was cancelled, so the runtime
    /// sends it in order, before the call's final message.
    fn send_stop_soon(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let shared = &self.shared;
        if shared.flags.stop_sent.load(Ordering::Acquire) || shared.sending_over() {
            return;
        }
        let Ok(frame) = (Msg::Stop {
            cid: shared.cid.clone(),
        })
        .to_frame() else {
            return;
        };
        if shared.role == Role::Caller {
            if !shared.flags.stop_sent.swap(true, Ordering::AcqRel) {
                shared.conn.send_frame_soon(frame);
            }
        } else if !shared.is_cancelled()
            && shared
                .flags
                .stop_sent
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            && shared.conn.sender.try_send_frame(frame).is_err()
        {
            // Not queued: the runtime sends it, in order, when the call ends.
            shared.flags.stop_sent.store(false, Ordering::Release);
        }
    }
}

impl<T> Drop for MsgStream<T> {
    fn drop(&mut self) {
        self.send_stop_soon();
        self.shared.stream.store(STREAM_CLOSED, Ordering::Release);
    }
}
