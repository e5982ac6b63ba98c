//! The reply producers of a call the peer made, running here: a request/response result, a
//! one-way stream (items batched into frames, paced by credit) and a context (its `started`,
//! its stream's `stop` in order, its result or `ContextCancelled`). Each honours cancellation
//! and turns a panic into an error reply.

use std::{
    any::Any,
    sync::{Arc, Mutex, atomic::Ordering},
    task::Poll,
};

use actor_ipc::{CallKind, Cid, ErrorInfo, Msg, Payload};
use compact_str::CompactString;
use futures::{FutureExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::{
    base::{
        error::{CONTEXT_CANCELLED, Error, PANIC_TYPE, Result},
        lock, panic_message,
    },
    calls::{
        context::{CANCEL_CLEANUP_GRACE, Context, StreamFlags},
        registry::{CallFuture, ItemStream, LARGE_ITEM, StreamItem},
    },
    connection::{Connection, Inbox},
    runtime::CallNurseries,
};

/// The buffer a stream producer cuts its frames from.
const FRAME_BUFFER: usize = 64 * 1024;
/// How many bytes of ready stream items a producer gathers before handing them to the writer:
/// large enough to spare a queue hop per item, small enough that the consumer starts on the
/// first items (and grants more credit) while the producer goes on.
const FLUSH_BYTES: usize = 16 * 1024;
/// A `yield` frame's bytes beyond its payload and cid (header, map, keys).
const FRAME_OVERHEAD: usize = 32;

/// A call the peer made, running here: sends its replies and honours cancellation.
pub(super) struct RunningCall {
    pub(super) conn: Arc<Connection>,
    pub(super) cid: Cid,
    pub(super) func: CompactString,
    pub(super) cancel: CancellationToken,
    pub(super) canceller: Arc<Mutex<Option<crate::connection::CancelledBy>>>,
    pub(super) credits: Option<Arc<Semaphore>>,
    /// The nurseries the call opened: closed gracefully when it is cancelled.
    pub(super) nurseries: Arc<CallNurseries>,
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
pub(super) fn panic_error(func: &str, panic: &Box<dyn Any + Send>) -> Error {
    Error::raise(
        PANIC_TYPE,
        format!("{func} panicked: {}", panic_message(panic.as_ref())),
    )
}

impl RunningCall {
    async fn send(&self, msg: &Msg) {
        if let Err(e) = self.conn.sender.send(msg).await {
            debug!(cid = %self.cid, error = %e, "reply not sent: connection closed");
        }
    }

    /// Sends a call's final frame; one too large for the peer becomes an error reply.
    async fn send_final(&self, frame: bytes::Bytes) {
        match self.conn.sender.send_frame(frame).await {
            Ok(()) => {}
            Err(e @ actor_ipc::SendError::TooLarge { .. }) => {
                self.send_error(&self.conn.send_error(e)).await;
            }
            Err(e) => debug!(cid = %self.cid, error = %e, "reply not sent: connection closed"),
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

    pub(super) async fn func(self, started: Result<CallFuture>) {
        let fut = match started {
            Ok(fut) => fut,
            Err(e) => return self.send_error(&e).await,
        };
        let mut fut = std::panic::AssertUnwindSafe(fut).catch_unwind();
        // A function that finishes at once gets `functype` and `return` in one write; one
        // that waits announces `functype` now, and later sends `return` alone (a second
        // `functype` is a protocol error to a tractor 0.1.0a5 caller).
        let mut announced = false;
        let outcome = match futures::poll!(&mut fut) {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => {
                self.send(&self.functype(CallKind::AsyncFunc)).await;
                announced = true;
                tokio::select! {
                    // The function first: one that answers as its actor stops (a blocking
                    // invocation answering `Rerouted`) is answered.
                    biased;
                    outcome = &mut fut => outcome,
                    // An asyncfunc cancelled by its caller (or with its actor) sends nothing,
                    // as in tractor; one cancelled by a third party (`cancel_call`, the
                    // `actor cancel` command) tells its caller who did it.
                    () = self.cancel.cancelled() => {
                        self.cancelled(fut).await;
                        if let Some(error) = self.cancelled_elsewhere() {
                            self.conn.reply_error(&self.cid, error).await;
                        }
                        return;
                    }
                }
            }
        };
        match outcome {
            Ok(Ok(value)) if announced => match Msg::return_frame(&self.cid, &value) {
                Ok(frame) => self.send_final(frame).await,
                Err(e) => self.send_error(&Error::Encode(e)).await,
            },
            Ok(Ok(value)) => self.conn.reply_value(&self.cid, value).await,
            Ok(Err(e)) => self.send_error(&e).await,
            Err(panic) => self.send_error(&self.panic_error(&panic)).await,
        }
    }

    /// The error to tell a call's caller when someone else cancelled it (`cancel_call`, the
    /// `actor cancel` command); `None` when its caller did (tractor's silence) or nobody did
    /// (the connection or the actor ended).
    fn cancelled_elsewhere(&self) -> Option<ErrorInfo> {
        let elsewhere = lock(&self.canceller)
            .as_ref()
            .is_some_and(|by| by.elsewhere);
        elsewhere.then(|| self.cancelled_error())
    }

    /// The `ContextCancelled` error of a cancelled call, naming who cancelled it: the one who
    /// asked, else whoever stopped the actor, else the actor itself.
    fn cancelled_error(&self) -> ErrorInfo {
        let canceller = lock(&self.canceller)
            .as_ref()
            .map(|by| by.uid.clone())
            .or_else(|| lock(&self.conn.core.canceller).clone())
            .unwrap_or_else(|| self.conn.core.uid.clone());
        let mut error = ErrorInfo::new(
            CONTEXT_CANCELLED,
            format!("{} was remotely cancelled by {canceller}", self.func),
        );
        error.extra.push(("canceller".into(), canceller.to_value()));
        error
    }

    /// The call was cancelled: its nurseries close gracefully (their children stop and clean
    /// up), then its future (`call`, not polled meanwhile) is dropped.
    async fn cancelled<F>(&self, call: F) {
        self.nurseries.teardown().await;
        drop(call);
    }

    pub(super) async fn stream(self, started: Result<ItemStream>) {
        let mut stream = match started {
            Ok(stream) => stream,
            Err(e) => return self.send_error(&e).await,
        };
        self.send(&self.functype(CallKind::AsyncGen)).await;
        self.pump(&mut stream).await;
        // However it ended, a cancelled stream (by its caller, its connection's end, or the
        // actor stopping) closes its nurseries gracefully before it is dropped.
        if self.cancel.is_cancelled() {
            self.cancelled(stream).await;
        }
    }

    /// Sends a stream's items, paced by credit, until it ends, fails or is cancelled.
    async fn pump(&self, stream: &mut ItemStream) {
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
                return self.end_cancelled_stream(&mut frames, &stop).await;
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
                            biased;
                            () = self.cancel.cancelled() => {
                                return self.end_cancelled_stream(&mut frames, &stop).await;
                            }
                            permit = credits.acquire() => match permit {
                                Ok(permit) => permit.forget(),
                                Err(_) => return,
                            },
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
                    let next = tokio::select! {
                        biased;
                        () = self.cancel.cancelled() => None,
                        next = next => Some(next),
                    };
                    match next {
                        Some(next) => next,
                        None => return self.end_cancelled_stream(&mut frames, &stop).await,
                    }
                }
            };
            match next {
                Ok(Some(Ok(StreamItem::Value(item)))) if item.as_bytes().len() < LARGE_ITEM => {
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
                // A large item (a large `Blob`'s bytes, or a large encoded value).
                Ok(Some(Ok(item))) => {
                    credit = credit.saturating_sub(1);
                    // Written from where it is: no copy, no fresh buffer as large as the item.
                    if !self.flush(&mut frames).await {
                        return;
                    }
                    let parts = match &item {
                        StreamItem::Value(value) => Msg::yield_frame_parts(&self.cid, value),
                        StreamItem::Bin(bin) => Msg::yield_bin_frame_parts(&self.cid, bin),
                    };
                    let parts = match parts {
                        Ok(parts) => parts,
                        Err(e) => return self.send_error(&Error::Encode(e)).await,
                    };
                    match self.conn.sender.send_frame_parts(parts.into()).await {
                        Ok(()) => {}
                        // An item too large for a frame ends the stream with that error.
                        Err(e @ actor_ipc::SendError::TooLarge { .. }) => {
                            return self.send_error(&self.conn.send_error(e)).await;
                        }
                        Err(_) => return,
                    }
                    // Let the writer start on it before the next one is made: otherwise a
                    // ready stream of large items queues many (memory, cache misses, fresh
                    // pages) while the writer waits its turn on this thread.
                    tokio::task::yield_now().await;
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

    /// Ends a cancelled stream: the buffered items, then `stop`, or the `ContextCancelled`
    /// error when someone other than its caller cancelled it (its caller must not take the
    /// cut-off stream for a finished one).
    async fn end_cancelled_stream(&self, frames: &mut bytes::BytesMut, stop: &Msg) {
        match self.cancelled_elsewhere() {
            None => self.finish_stream(frames.split(), stop).await,
            Some(error) => {
                self.flush(frames).await;
                self.conn.reply_error(&self.cid, error).await;
            }
        }
    }

    /// Ends a stream: the buffered items and `stop`, in one write.
    async fn finish_stream(&self, mut frames: bytes::BytesMut, stop: &Msg) {
        if let Err(e) = stop.write_frame(&mut frames) {
            debug!(cid = %self.cid, error = %e, "could not encode stop");
        }
        self.flush(&mut frames).await;
    }

    pub(super) async fn context(
        self,
        start: fn(Context, Payload) -> Result<CallFuture>,
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
        let mut fut = std::panic::AssertUnwindSafe(fut).catch_unwind();
        let outcome = tokio::select! {
            outcome = &mut fut => Some(outcome),
            () = self.cancel.cancelled() => None,
        };
        if outcome.is_none() {
            // A function waiting on `Context::cancelled` gets to clean up first (bounded).
            if flags.observes_cancel.load(Ordering::Acquire) {
                let _ = tokio::time::timeout(CANCEL_CLEANUP_GRACE, &mut fut).await;
            }
            self.cancelled(fut).await;
        } else {
            drop(fut);
        }
        // From here the runtime ends the call: a stream the function moved elsewhere sends no
        // more (no item or `stop` after the final message).
        flags.call_over.store(true, Ordering::Release);
        if let Some(credits) = &self.credits {
            credits.close();
        }
        // The stream's `stop` goes out before the call's final message, in order.
        if flags.opened.load(Ordering::Acquire) && !flags.stop_sent.swap(true, Ordering::AcqRel) {
            self.send(&Msg::Stop {
                cid: self.cid.clone(),
            })
            .await;
        }
        match outcome {
            None => {
                self.conn
                    .reply_error(&self.cid, self.cancelled_error())
                    .await
            }
            Some(Ok(Ok(value))) => match Msg::return_frame(&self.cid, &value) {
                Ok(frame) => self.send_final(frame).await,
                Err(e) => self.send_error(&Error::Encode(e)).await,
            },
            Some(Ok(Err(e))) => self.send_error(&e).await,
            Some(Err(panic)) => self.send_error(&self.panic_error(&panic)).await,
        }
    }
}
