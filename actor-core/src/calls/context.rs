//! Contexts: bidirectional calls (`functype` `context`).
//!
//! The callee receives a [`Context`] as its function's first argument: it sends one
//! `started` value, may open a [`MsgStream`] to exchange items with the caller both ways, and
//! its return value is the context's result. The caller gets a [`Context`] from
//! `Portal::open_context` with the `started` value, opens the
//! stream on its side, then reads the [`Context::result`] or [`Context::cancel`]s it.
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

use actor_ipc::{ErrorInfo, FrameSink, Msg, Payload, Uid};
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
}

/// Which end of a context this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Caller,
    Callee,
}

/// One end of a bidirectional call.
pub struct Context {
    role: Role,
    cid: String,
    peer: Uid,
    func: String,
    /// The call's messages; lent to the stream while one is open.
    pub(crate) inbox: Mutex<Option<Inbox>>,
    /// Credits for the items this end sends (with flow control on).
    pub(crate) credits: Option<Arc<Semaphore>>,
    started: AtomicBool,
    stream: AtomicU8,
    /// Shared with the runtime: whether a stream was opened and whether its `stop` went out.
    pub(crate) flags: Arc<StreamFlags>,
    /// Callee: cancelled when the call is (the runtime then sends the stream's `stop`).
    pub(crate) cancel: Option<CancellationToken>,
    /// Caller: the call's end (its result or its error), if the stream saw it first.
    pub(crate) outcome: Mutex<Option<std::result::Result<Payload, Box<ErrorInfo>>>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("role", &self.role)
            .field("func", &self.func)
            .field("cid", &self.cid)
            .field("peer", &self.peer)
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
        let mut ctx = Self::new(Role::Callee, inbox, credits, flags, func);
        ctx.cancel = Some(cancel);
        ctx
    }

    pub(crate) fn caller(inbox: Inbox, credits: Option<Arc<Semaphore>>, func: &str) -> Self {
        let ctx = Self::new(Role::Caller, inbox, credits, Arc::default(), func);
        ctx.started.store(true, Ordering::Release);
        ctx
    }

    fn new(
        role: Role,
        inbox: Inbox,
        credits: Option<Arc<Semaphore>>,
        flags: Arc<StreamFlags>,
        func: &str,
    ) -> Self {
        Self {
            role,
            cid: inbox.cid.clone(),
            peer: inbox.conn.peer.clone(),
            func: func.to_owned(),
            inbox: Mutex::new(Some(inbox)),
            credits,
            started: AtomicBool::new(false),
            stream: AtomicU8::new(STREAM_NOT_OPENED),
            flags,
            cancel: None,
            outcome: Mutex::new(None),
        }
    }

    /// The call id.
    pub fn cid(&self) -> &str {
        &self.cid
    }

    /// The actor at the other end.
    pub fn peer(&self) -> &Uid {
        &self.peer
    }

    /// Whether this is the callee's end and its call was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
    }

    /// Whether this is the caller's end.
    pub fn is_caller(&self) -> bool {
        self.role == Role::Caller
    }

    fn take_inbox(&self) -> Result<Inbox> {
        lock(&self.inbox).take().ok_or_else(|| {
            Error::Usage(format!("{}: the context's stream is still open", self.func))
        })
    }

    /// Callee: sends the context's first value to the caller. Exactly once, before any stream.
    pub async fn started<T: Serialize>(&self, value: T) -> Result<()> {
        if self.role != Role::Callee {
            return Err(Error::Usage("only the callee sends `started`".into()));
        }
        if self.started.swap(true, Ordering::AcqRel) {
            return Err(Error::Usage(format!(
                "{}: `started` was already sent",
                self.func
            )));
        }
        let msg = Msg::Started {
            cid: self.cid.clone(),
            value: Payload::encode(&value)?,
        };
        let conn = self.connection()?;
        conn.sender.send(&msg).await.map_err(|e| conn.send_error(e))
    }

    fn connection(&self) -> Result<Arc<Connection>> {
        lock(&self.inbox)
            .as_ref()
            .map(|i| i.conn.clone())
            .ok_or_else(|| Error::Usage(format!("{}: the context's stream is open", self.func)))
    }

    /// Opens the context's bidirectional stream of `T` items (one per context). The callee
    /// must have sent `started` first.
    pub async fn open_stream<T>(&self) -> Result<MsgStream<'_, T>>
    where
        T: Serialize + DeserializeOwned,
    {
        if !self.started.load(Ordering::Acquire) {
            return Err(Error::Usage(format!(
                "{}: open the stream after `started`",
                self.func
            )));
        }
        match self.stream.compare_exchange(
            STREAM_NOT_OPENED,
            STREAM_OPEN,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {}
            Err(STREAM_OPEN) => {
                return Err(Error::Usage(format!(
                    "{}: the stream is already open",
                    self.func
                )));
            }
            Err(_) => {
                return Err(Error::Usage(format!(
                    "{}: the context's stream was already closed",
                    self.func
                )));
            }
        }
        let inbox = self.take_inbox()?;
        self.flags.opened.store(true, Ordering::Release);
        if self.role == Role::Caller && inbox.conn.flow_on() {
            // The caller's send credits start once the window is agreed (by now it is).
            if let Some(credits) = &self.credits {
                credits.add_permits(inbox.conn.window());
            }
        }
        Ok(MsgStream::new(self, inbox))
    }

    /// Called by the stream when it ends or is dropped.
    pub(crate) fn stream_closed(&self, inbox: Inbox) {
        self.stream.store(STREAM_CLOSED, Ordering::Release);
        *lock(&self.inbox) = Some(inbox);
    }

    /// Caller: waits for the context's final result (late stream items are discarded).
    pub async fn result<R: DeserializeOwned>(self) -> Result<R> {
        if self.role != Role::Caller {
            return Err(Error::Usage(
                "only the caller reads a context's result".into(),
            ));
        }
        let mut inbox = self.take_inbox()?;
        if let Some(outcome) = lock(&self.outcome).take() {
            inbox.finished = true;
            return match outcome {
                Ok(value) => Ok(value.decode()?),
                Err(error) => Err(inbox.conn.remote_error(*error)),
            };
        }
        loop {
            match inbox.next_step().await? {
                Step::Returned(value) => return Ok(value.decode()?),
                Step::Failed(error) => return Err(inbox.conn.remote_error(*error)),
                // Items the caller did not read (still credited, so the callee can finish).
                Step::Item(value) => inbox.consumed_item(value.as_bytes().len()),
                // tractor's duplicate stops, and the end of a stream nobody read.
                Step::StreamEnded | Step::Ignored | Step::Opened | Step::Started(_) => {}
                Step::Violation(what) => {
                    return Err(inbox.conn.protocol(format!(
                        "unexpected message in context {}: {what}",
                        self.func
                    )));
                }
            }
        }
    }

    /// Caller: cancels the remote context and waits until it has ended. Your own cancel is not
    /// reported as an error.
    pub async fn cancel(self) -> Result<()> {
        if self.role != Role::Caller {
            return Err(Error::Usage("only the caller cancels a context".into()));
        }
        let mut inbox = self.take_inbox()?;
        inbox.finished = true;
        let conn = inbox.conn.clone();
        conn.cancel_and_wait(&self.cid).await
    }
}

/// One end of a context's bidirectional stream: a [`Stream`] of received items and a [`Sink`]
/// (and [`MsgStream::send`]) for items to the other end. Dropping it (or [`MsgStream::close`])
/// tells the other end the stream is over.
pub struct MsgStream<'a, T> {
    ctx: &'a Context,
    inbox: Option<Inbox>,
    ended: bool,
    stopped: bool,
    sink: FrameSink,
    credits: Option<PollSemaphore>,
    holding_credit: bool,
    _item: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for MsgStream<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgStream")
            .field("cid", &self.ctx.cid())
            .field("ended", &self.ended)
            .finish()
    }
}

impl<'a, T> MsgStream<'a, T> {
    pub(crate) fn new(ctx: &'a Context, inbox: Inbox) -> Self {
        let flow = inbox.conn.flow_on();
        Self {
            sink: inbox.conn.sender.frame_sink(),
            credits: ctx.credits.clone().filter(|_| flow).map(PollSemaphore::new),
            holding_credit: false,
            ctx,
            inbox: Some(inbox),
            ended: false,
            stopped: false,
            _item: PhantomData,
        }
    }

    /// The actor at the other end.
    pub fn peer(&self) -> &Uid {
        self.ctx.peer()
    }

    /// Ends this side's half of the stream: the other end sees the stream end.
    pub async fn close(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let stop = Msg::Stop {
            cid: self.ctx.cid().to_owned(),
        };
        let Some(inbox) = &self.inbox else {
            return Ok(());
        };
        self.ctx.flags.stop_sent.store(true, Ordering::Release);
        let conn = inbox.conn.clone();
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
                None => {
                    return Poll::Ready(Err(Error::Usage(
                        "the context has ended: nothing more can be sent".into(),
                    )));
                }
            }
        }
        self.holding_credit = true;
        Poll::Ready(Ok(()))
    }
}

impl<T: Serialize> MsgStream<'_, T> {
    /// Sends one item to the other end (waiting for flow-control credit if needed).
    pub async fn send(&mut self, item: T) -> Result<()> {
        futures::SinkExt::send(self, item).await
    }
}

impl<T: DeserializeOwned> Stream for MsgStream<'_, T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<T>>> {
        let this = self.get_mut();
        while !this.ended {
            let Some(inbox) = this.inbox.as_mut() else {
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
                    *lock(&this.ctx.outcome) = Some(Ok(value));
                }
                Step::Failed(error) => {
                    this.ended = true;
                    let err = inbox.conn.remote_error(ErrorInfo::clone(&error));
                    *lock(&this.ctx.outcome) = Some(Err(error));
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

impl<T: Serialize> Sink<T> for MsgStream<'_, T> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if this.stopped {
            return Poll::Ready(Err(Error::Usage(
                "the stream was closed by this side".into(),
            )));
        }
        ready!(this.poll_credit(cx))?;
        let sent = ready!(Pin::new(&mut this.sink).poll_ready(cx));
        Poll::Ready(sent.map_err(|e| this.send_error(e)))
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<()> {
        let this = self.get_mut();
        // Encode first: a value that cannot be encoded keeps its credit.
        let frame = Msg::yield_frame(this.ctx.cid(), &Payload::encode(&item)?)?;
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

impl<T> MsgStream<'_, T> {
    fn send_error(&self, e: actor_ipc::SendError) -> Error {
        match &self.inbox {
            Some(inbox) => inbox.conn.send_error(e),
            None => Error::Usage("the stream is closed".into()),
        }
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
        let Some(inbox) = &self.inbox else { return };
        let Ok(frame) = (Msg::Stop {
            cid: self.ctx.cid().to_owned(),
        })
        .to_frame() else {
            return;
        };
        if self.ctx.is_caller() {
            self.ctx.flags.stop_sent.store(true, Ordering::Release);
            inbox.conn.send_frame_soon(frame);
        } else if !self.ctx.is_cancelled() && inbox.conn.sender.try_send_frame(frame).is_ok() {
            self.ctx.flags.stop_sent.store(true, Ordering::Release);
        }
    }
}

impl<T> Drop for MsgStream<'_, T> {
    fn drop(&mut self) {
        self.send_stop_soon();
        if let Some(inbox) = self.inbox.take() {
            self.ctx.stream_closed(inbox);
        }
    }
}
