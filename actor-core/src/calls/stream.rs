//! [`RemoteStream`], the caller's end of a one-way stream (`asyncgen`), and [`FanOut`], one
//! stream shared among local subscribers. (A context's bidirectional stream, `MsgStream`, is
//! with its `Context`.)
//!
//! Items decode once, straight from their frame into `T`. The receive buffer is bounded;
//! between peers of this runtime the producer only sends what the consumer granted
//! (credit-based flow control), with other peers a consumer that falls a whole buffer behind
//! gets [`Error::Overrun`] and the stream is cancelled.

use std::{
    marker::PhantomData,
    pin::Pin,
    task::{Context as TaskContext, Poll, ready},
};

use futures::Stream;
use serde::de::DeserializeOwned;

/// A context's bidirectional stream, kept here under its old path too.
pub use super::context::MsgStream;
use crate::{
    base::error::{Error, Result},
    connection::Inbox,
    engine::sequence::Step,
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
            let step = match ready!(this.inbox.poll_step(cx)) {
                Ok(step) => step,
                Err(e) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
            };
            match step {
                Step::Item(value) => return Poll::Ready(Some(this.inbox.take_item(value))),
                Step::StreamEnded | Step::Returned(_) => this.ended = true,
                Step::Failed(error) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(this.inbox.conn.remote_error(*error))));
                }
                Step::Violation(what) => {
                    tracing::debug!(cid = %this.inbox.cid, %what, "ignoring an unexpected stream message");
                }
                Step::Opened | Step::Started(_) | Step::Ignored => {}
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
    Remote(crate::base::error::RemoteActorError),
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
