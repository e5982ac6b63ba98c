//! A call's queue of incoming messages, filled by the connection's reader and drained by the
//! call's owner.
//!
//! The reader must never wait on a consumer, so the queue is bounded by a count it checks
//! itself: a message that would exceed the capacity is refused, and the reader declares the
//! call overrun. The count is one atomic on each side; tokio's bounded channel would instead
//! take a lock on every receive to hand the slot back, which showed in stream profiles.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use actor_ipc::Msg;
use tokio::sync::mpsc;

/// What the sending and the receiving end share.
#[derive(Debug)]
struct Shared {
    /// Messages sent and not yet received.
    queued: AtomicUsize,
    capacity: usize,
    /// Set by the reader when it refused a message for lack of room.
    overrun: AtomicBool,
}

/// A new mailbox holding at most `capacity` messages.
pub(crate) fn mailbox(capacity: usize) -> (MailboxSender, MailboxReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        queued: AtomicUsize::new(0),
        capacity,
        overrun: AtomicBool::new(false),
    });
    (
        MailboxSender {
            tx,
            shared: shared.clone(),
        },
        MailboxReceiver { rx, shared },
    )
}

/// Why a message was not delivered; the message comes back.
pub(crate) enum Refused {
    /// The mailbox holds its capacity already.
    Full(Msg),
    /// The receiving end is gone.
    Closed(Msg),
}

/// The reader's end.
#[derive(Debug)]
pub(crate) struct MailboxSender {
    tx: mpsc::UnboundedSender<Msg>,
    shared: Arc<Shared>,
}

impl MailboxSender {
    /// Delivers `msg` unless the mailbox is full or its receiver gone; never waits.
    pub(crate) fn try_send(&self, msg: Msg) -> Result<(), Refused> {
        if self.shared.queued.fetch_add(1, Ordering::AcqRel) >= self.shared.capacity {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full(msg));
        }
        self.tx.send(msg).map_err(|refused| {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            Refused::Closed(refused.0)
        })
    }

    /// Marks the call overrun: once drained, its receiver reports an overrun rather than a
    /// lost connection.
    pub(crate) fn set_overrun(&self) {
        self.shared.overrun.store(true, Ordering::Release);
    }
}

/// The call owner's end.
#[derive(Debug)]
pub(crate) struct MailboxReceiver {
    rx: mpsc::UnboundedReceiver<Msg>,
    shared: Arc<Shared>,
}

impl MailboxReceiver {
    /// The next message; `None` once every sender is gone and the queue is empty.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Msg>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(_)) = &polled {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        }
        polled
    }

    /// Whether the reader gave up on this call because it fell behind.
    pub(crate) fn overran(&self) -> bool {
        self.shared.overrun.load(Ordering::Acquire)
    }

    /// How many messages the mailbox holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.shared.capacity
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn stop(n: u64) -> Msg {
        Msg::Stop { cid: n.to_string() }
    }

    fn recv(rx: &mut MailboxReceiver) -> Option<Msg> {
        let waker = futures::task::noop_waker();
        match rx.poll_recv(&mut Context::from_waker(&waker)) {
            Poll::Ready(msg) => msg,
            Poll::Pending => panic!("nothing queued"),
        }
    }

    #[test]
    fn refuses_beyond_its_capacity_and_takes_again_once_drained() {
        let (tx, mut rx) = mailbox(2);
        assert!(tx.try_send(stop(1)).is_ok());
        assert!(tx.try_send(stop(2)).is_ok());
        assert!(matches!(tx.try_send(stop(3)), Err(Refused::Full(_))));
        assert_eq!(
            recv(&mut rx).and_then(|m| m.cid().map(str::to_owned)),
            Some("1".into())
        );
        assert!(tx.try_send(stop(4)).is_ok());
        assert!(matches!(tx.try_send(stop(5)), Err(Refused::Full(_))));
    }

    #[test]
    fn reports_a_gone_receiver_and_an_overrun() {
        let (tx, rx) = mailbox(4);
        assert!(!rx.overran());
        tx.set_overrun();
        assert!(rx.overran());
        drop(rx);
        assert!(matches!(tx.try_send(stop(1)), Err(Refused::Closed(_))));
    }

    #[test]
    fn ends_once_the_sender_is_gone() {
        let (tx, mut rx) = mailbox(4);
        assert!(tx.try_send(stop(1)).is_ok());
        drop(tx);
        assert!(recv(&mut rx).is_some());
        assert!(recv(&mut rx).is_none());
    }
}
