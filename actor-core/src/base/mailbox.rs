//! A call's queue of incoming messages, filled by the connection's reader and drained by the
//! call's owner.
//!
//! The reader must never wait on a consumer, so the queue is bounded by a count it checks
//! itself: a message that would exceed the capacity is refused, and the reader declares the
//! call overrun. The queue is a plain deque under a lock that both sides hold only to push or
//! to take everything queued: the owner drains the whole deque in one go and then works through
//! its own copy without touching shared state, so a stream costs one uncontended lock per item
//! on the reader's side and one per batch on the owner's. (tokio's channels, measured first,
//! cost several atomic operations per item on each side, and the bounded one also a lock per
//! receive.)

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

use actor_ipc::Msg;

/// The state both ends share.
#[derive(Debug, Default)]
struct State {
    /// The oldest message, kept out of `queue`: a call answered by one message (most are)
    /// then needs no deque allocation.
    first: Option<Msg>,
    /// The messages after `first`.
    queue: VecDeque<Msg>,
    /// The owner, waiting for a message.
    waker: Option<Waker>,
    /// The sending end is gone: once drained, the mailbox ends.
    sender_gone: bool,
    /// The receiving end is gone: messages are refused.
    receiver_gone: bool,
    /// Set when a message was refused for lack of room.
    overrun: bool,
    /// How many messages may wait for the owner.
    capacity: usize,
}

impl State {
    /// How many messages wait for the owner.
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.queue.len()
    }
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    /// The state; a panic while holding the lock cannot leave it inconsistent (every update
    /// is a single step), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A new mailbox for `capacity` messages: the reader refuses a message when that many wait
/// that the owner has not taken yet (the owner's batch in hand holds at most as many more).
pub(crate) fn mailbox(capacity: usize) -> (MailboxSender, MailboxReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            capacity,
            ..State::default()
        }),
    });
    (
        MailboxSender {
            shared: shared.clone(),
        },
        MailboxReceiver {
            shared,
            batch: VecDeque::new(),
        },
    )
}

/// Why a message was not delivered; the message comes back.
pub(crate) enum Refused {
    /// The mailbox holds its capacity already.
    Full(Msg),
    /// The receiving end is gone.
    Closed(Msg),
}

/// The reader's end (one per mailbox).
#[derive(Debug)]
pub(crate) struct MailboxSender {
    shared: Arc<Shared>,
}

impl MailboxSender {
    /// Delivers `msg` unless the mailbox is full or its receiver gone; never waits. A message
    /// refused for lack of room marks the call overrun: once drained, its receiver reports an
    /// overrun rather than a lost connection.
    pub(crate) fn try_send(&self, msg: Msg) -> Result<(), Refused> {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return Err(Refused::Closed(msg));
        }
        if state.len() >= state.capacity {
            state.overrun = true;
            return Err(Refused::Full(msg));
        }
        if state.first.is_none() && state.queue.is_empty() {
            state.first = Some(msg);
        } else {
            state.queue.push_back(msg);
        }
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl Drop for MailboxSender {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.sender_gone = true;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The call owner's end.
#[derive(Debug)]
pub(crate) struct MailboxReceiver {
    shared: Arc<Shared>,
    /// Messages taken from the shared deque, not yet handed out.
    batch: VecDeque<Msg>,
}

impl MailboxReceiver {
    /// The next message; `None` once the sender is gone and every message was received.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Msg>> {
        if let Some(msg) = self.batch.pop_front() {
            return Poll::Ready(Some(msg));
        }
        let mut state = self.shared.lock();
        if let Some(first) = state.first.take() {
            // What came after it, in order, for the next receives.
            std::mem::swap(&mut state.queue, &mut self.batch);
            return Poll::Ready(Some(first));
        }
        if state.queue.is_empty() {
            if state.sender_gone {
                return Poll::Ready(None);
            }
            match &mut state.waker {
                Some(waker) => waker.clone_from(cx.waker()),
                None => state.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        // Take everything queued (the emptied deque of the last batch goes back, so neither
        // side allocates in the steady state).
        std::mem::swap(&mut state.queue, &mut self.batch);
        drop(state);
        Poll::Ready(self.batch.pop_front())
    }

    /// Whether the reader gave up on this call because it fell behind.
    pub(crate) fn overran(&self) -> bool {
        self.shared.lock().overrun
    }

    /// How many messages the mailbox holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.shared.lock().capacity
    }

    /// Lets the mailbox hold at least `capacity` messages (the owner allowed its producer that
    /// many in flight).
    pub(crate) fn raise_capacity(&self, capacity: usize) {
        let mut state = self.shared.lock();
        state.capacity = state.capacity.max(capacity);
    }
}

impl Drop for MailboxReceiver {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        // What was queued will never be read: drop it now rather than with the sender.
        state.first = None;
        state.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn stop(n: u64) -> Msg {
        Msg::Stop {
            cid: n.to_string().into(),
        }
    }

    fn recv(rx: &mut MailboxReceiver) -> Option<Msg> {
        let waker = futures::task::noop_waker();
        match rx.poll_recv(&mut Context::from_waker(&waker)) {
            Poll::Ready(msg) => msg,
            Poll::Pending => panic!("nothing queued"),
        }
    }

    #[test]
    fn refuses_beyond_its_capacity_and_takes_again_once_the_owner_took_a_batch() {
        let (tx, mut rx) = mailbox(2);
        assert!(tx.try_send(stop(1)).is_ok());
        assert!(tx.try_send(stop(2)).is_ok());
        assert!(matches!(tx.try_send(stop(3)), Err(Refused::Full(_))));
        // The owner takes both at once, handing out the first.
        let cid = |msg: Option<Msg>| msg.and_then(|m| m.cid().map(str::to_owned));
        assert_eq!(cid(recv(&mut rx)), Some("1".into()));
        assert!(tx.try_send(stop(4)).is_ok());
        assert!(tx.try_send(stop(5)).is_ok());
        assert!(matches!(tx.try_send(stop(6)), Err(Refused::Full(_))));
        // In order, nothing lost.
        for expected in ["2", "4", "5"] {
            assert_eq!(cid(recv(&mut rx)), Some(expected.into()));
        }
    }

    #[test]
    fn reports_a_gone_receiver_and_an_overrun() {
        let (tx, rx) = mailbox(1);
        assert!(tx.try_send(stop(1)).is_ok());
        assert!(!rx.overran());
        assert!(matches!(tx.try_send(stop(2)), Err(Refused::Full(_))));
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
