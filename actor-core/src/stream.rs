//! Streams of typed items: [`RemoteStream`], the caller's end of a one-way stream
//! (`asyncgen`), and [`MsgStream`], either end of a context's bidirectional stream.
//!
//! Both decode each item once, straight from its frame into `T`. Both have a bounded receive
//! buffer; between peers of this runtime the producer only sends what the consumer granted
//! (credit-based flow control), with other peers a consumer that falls a whole buffer behind
//! gets [`Error::Overrun`] and the stream is cancelled.

use std::{
    marker::PhantomData,
    pin::Pin,
    sync::atomic::Ordering,
    task::{Context as TaskContext, Poll, ready},
};

use actor_ipc::{ErrorInfo, FrameSink, Msg, Payload, Uid};
use futures::{Sink, Stream};
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::sync::PollSemaphore;

use crate::{
    connection::Inbox,
    context::Context,
    error::{Error, Result},
};

/// The caller's end of a one-way stream. Dropping it before the end cancels the remote
/// producer.
pub struct RemoteStream<T> {
    inbox: Inbox,
    ended: bool,
    _item: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for RemoteStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStream")
            .field("cid", &self.inbox.cid)
            .field("ended", &self.ended)
            .finish()
    }
}

impl<T> RemoteStream<T> {
    pub(crate) fn new(inbox: Inbox) -> Self {
        Self {
            inbox,
            ended: false,
            _item: PhantomData,
        }
    }

    /// The call id.
    pub fn cid(&self) -> &str {
        &self.inbox.cid
    }

    /// Cancels the remote producer and waits until it has ended.
    pub async fn cancel(mut self) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        self.inbox.finished = true;
        let conn = self.inbox.conn.clone();
        conn.cancel_and_wait(&self.inbox.cid).await
    }
}

impl<T: DeserializeOwned> Stream for RemoteStream<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<T>>> {
        let this = self.get_mut();
        while !this.ended {
            let msg = match ready!(this.inbox.poll_recv(cx)) {
                Ok(msg) => msg,
                Err(e) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
            };
            match msg {
                Msg::Yield { value, .. } => {
                    this.inbox.consumed_item(value.as_bytes().len());
                    return Poll::Ready(Some(value.decode().map_err(Error::from)));
                }
                Msg::Stop { .. } | Msg::Return { .. } => {
                    this.ended = true;
                    this.inbox.finished = true;
                }
                Msg::Error { error, .. } => {
                    this.ended = true;
                    this.inbox.finished = true;
                    return Poll::Ready(Some(Err(this.inbox.conn.remote_error(*error))));
                }
                other => {
                    tracing::debug!(cid = %this.inbox.cid, ?other, "ignoring an unexpected stream message");
                }
            }
        }
        Poll::Ready(None)
    }
}

impl<T: DeserializeOwned + Clone + Send + 'static> RemoteStream<T> {
    /// Shares this stream among many local subscribers: each receives every item, in order.
    /// Each subscriber has a buffer of `capacity` items; one that falls further behind gets
    /// [`Error::Lagged`] (saying how many items it missed) and continues from the oldest item
    /// still buffered. Subscribe, then [`FanOut::start`].
    pub fn fan_out(self, capacity: usize) -> FanOut<T> {
        let (tx, _) = tokio::sync::broadcast::channel(capacity.max(1));
        FanOut { stream: self, tx }
    }
}

/// A stream shared among local subscribers (see [`RemoteStream::fan_out`]).
pub struct FanOut<T> {
    stream: RemoteStream<T>,
    tx: tokio::sync::broadcast::Sender<std::result::Result<T, SharedError>>,
}

/// A stream error shared by every subscriber.
#[derive(Debug, Clone)]
enum SharedError {
    Remote(crate::RemoteActorError),
    Other(String),
}

impl<T> std::fmt::Debug for FanOut<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOut")
            .field("cid", &self.stream.cid())
            .field("subscribers", &self.tx.receiver_count())
            .finish()
    }
}

impl<T: DeserializeOwned + Clone + Send + 'static> FanOut<T> {
    /// A new subscriber, receiving every item from the start.
    pub fn subscribe(&self) -> Subscription<T> {
        Subscription {
            rx: self.tx.subscribe(),
        }
    }

    /// Starts forwarding items to the subscribers, in a task that ends with the stream, or
    /// when every subscriber is gone (which cancels the remote producer).
    pub fn start(self) {
        let Self { mut stream, tx } = self;
        tokio::spawn(async move {
            use futures::StreamExt;
            while let Some(item) = stream.next().await {
                let item = item.map_err(|e| match e {
                    Error::Remote(remote) => SharedError::Remote(remote),
                    other => SharedError::Other(other.to_string()),
                });
                if tx.send(item).is_err() {
                    // No subscriber left: dropping the stream cancels the producer.
                    return;
                }
            }
        });
    }
}

/// One subscriber of a [`FanOut`].
#[derive(Debug)]
pub struct Subscription<T> {
    rx: tokio::sync::broadcast::Receiver<std::result::Result<T, SharedError>>,
}

impl<T: Clone> Subscription<T> {
    /// The next item; `None` once the stream has ended. After [`Error::Lagged`] the next call
    /// goes on with the oldest item still buffered.
    pub async fn recv(&mut self) -> Option<Result<T>> {
        use tokio::sync::broadcast::error::RecvError;
        match self.rx.recv().await {
            Ok(Ok(item)) => Some(Ok(item)),
            Ok(Err(SharedError::Remote(remote))) => Some(Err(Error::Remote(remote))),
            Ok(Err(SharedError::Other(detail))) => Some(Err(Error::Usage(format!(
                "the shared stream failed: {detail}"
            )))),
            Err(RecvError::Lagged(skipped)) => Some(Err(Error::Lagged { skipped })),
            Err(RecvError::Closed) => None,
        }
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
            let msg = match ready!(inbox.poll_recv(cx)) {
                Ok(msg) => msg,
                Err(e) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
            };
            match msg {
                Msg::Yield { value, .. } => {
                    inbox.consumed_item(value.as_bytes().len());
                    return Poll::Ready(Some(value.decode().map_err(Error::from)));
                }
                Msg::Stop { .. } => this.ended = true,
                Msg::Return { .. } => {
                    // The callee finished: the stream is over; keep the result for `result()`.
                    this.ended = true;
                    if let Ok(mut outcome) = this.ctx.outcome.lock() {
                        *outcome = Some(msg);
                    }
                }
                Msg::Error { ref error, .. } => {
                    this.ended = true;
                    let err = inbox.conn.remote_error(ErrorInfo::clone(error));
                    if let Ok(mut outcome) = this.ctx.outcome.lock() {
                        *outcome = Some(msg);
                    }
                    return Poll::Ready(Some(Err(err)));
                }
                other => {
                    tracing::debug!(cid = %inbox.cid, ?other, "ignoring an unexpected context message");
                }
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
