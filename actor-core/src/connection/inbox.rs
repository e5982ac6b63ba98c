//! The receiving end of one call, on either side (replies to a call we made, or a context's
//! stream items from the peer that called us), and the lease that keeps a connection open
//! while anything uses it.

use std::{
    sync::Arc,
    task::{Context as TaskContext, Poll, ready},
};

use actor_ipc::{Cid, Msg, Payload};

use super::Connection;
use crate::{
    base::{
        error::{Error, Result},
        mailbox::MailboxReceiver,
    },
    engine::{
        credit::CreditWindow,
        sequence::{ReplySequence, Step},
    },
};

/// Room an inbox keeps beyond the stream window for the messages that end a call.
pub(crate) const INBOX_SLACK: usize = 8;

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
            let close = async move { conn.close().await };
            handle.spawn(self.conn.core.io_tasks.track_future(close));
        }
    }
}

/// The receiving end of one call's messages.
///
/// Dropped before `finished` on the calling side, it asks the peer to cancel the call: Rust's
/// drop is the cancel scope, across processes.
pub(crate) struct Inbox {
    pub(crate) conn: Arc<Connection>,
    pub(crate) cid: Cid,
    rx: MailboxReceiver,
    /// Whether this is a call we made (else a task the peer started).
    ours: bool,
    /// Which reply may come next.
    sequence: ReplySequence,
    /// Set once the call reached its end; a drop then cancels nothing.
    pub(crate) finished: bool,
    /// The reader took this call's route out of the table (it does so with a call's last
    /// message, `return` or `error`): a drop then has nothing to remove.
    route_gone: bool,
    /// The credit this consumer grants its producer.
    credit: CreditWindow,
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
    pub(crate) fn new(
        conn: Arc<Connection>,
        cid: Cid,
        rx: MailboxReceiver,
        ours: bool,
        sequence: ReplySequence,
    ) -> Self {
        Self {
            conn,
            cid,
            rx,
            ours,
            sequence,
            finished: false,
            route_gone: false,
            credit: CreditWindow::default(),
            yield_for_grant: false,
            lease: None,
        }
    }

    /// The next step of the call.
    pub(crate) async fn next_step(&mut self) -> Result<Step> {
        std::future::poll_fn(|cx| self.poll_step(cx)).await
    }

    /// Polls for the next step of the call: `Err` once the connection is gone or the call
    /// overran. A step that ends the call marks the inbox finished.
    pub(crate) fn poll_step(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Step>> {
        let msg = ready!(self.poll_recv(cx))?;
        if matches!(msg, Msg::Return { .. } | Msg::Error { .. }) {
            self.route_gone = true;
        }
        let step = self.sequence.on(msg);
        if self.sequence.is_over() {
            self.finished = true;
        }
        Poll::Ready(Ok(step))
    }

    fn poll_recv(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Msg>> {
        if std::mem::take(&mut self.yield_for_grant) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(msg)) => Poll::Ready(Ok(msg)),
            Poll::Ready(None) if self.rx.overran() => {
                self.finished = true;
                Poll::Ready(Err(Error::Overrun {
                    cid: self.cid.to_string(),
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

    /// Takes one stream item: counts it as consumed (granting credit when due) and decodes it.
    pub(crate) fn take_item<T: serde::de::DeserializeOwned>(
        &mut self,
        value: Payload,
    ) -> Result<T> {
        self.consumed_item(value.as_bytes().len());
        Ok(value.decode_owned()?)
    }

    /// Records one stream item of `size` payload bytes consumed; with flow control on, grants
    /// the producer more credit when the engine's credit rule says so.
    pub(crate) fn consumed_item(&mut self, size: usize) {
        if !self.conn.flow_on() {
            return;
        }
        let Some(grant) = self.credit.consumed(size, self.conn.window()) else {
            return;
        };
        // The mailbox must hold whatever the producer may now send.
        self.rx.raise_capacity(grant.in_flight + INBOX_SLACK);
        let credit = Msg::Credit {
            cid: self.cid.clone(),
            credit: grant.credit as u64,
        };
        if let Ok(frame) = credit.to_frame() {
            self.conn.send_frame_soon(frame);
            self.yield_for_grant = true;
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        if self.ours {
            if !self.route_gone {
                self.conn.calls.complete(&self.cid);
            }
            if !self.finished {
                self.conn.cancel_remote(self.cid.clone());
            }
        }
    }
}
