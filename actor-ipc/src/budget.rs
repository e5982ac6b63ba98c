//! Byte budgets for queued outgoing data.
//!
//! A peer that stops reading makes our frames pile up in its connection's writer queue. The
//! queue's bound in frames does not bound memory (1,024 frames of 16 MiB are 16 GiB), so each
//! connection also has a budget in bytes, and an actor shares one across all its connections.
//! A sender waits while a budget it draws on is spent: backpressure reaches the code that
//! produces (our own streams slow down) instead of memory growing.
//!
//! The limit is soft by at most one frame per sender: a sender waits until the budget has room,
//! then charges its whole frame, so a frame larger than the budget can still be sent alone.
//!
//! Frames under [`UNCHARGED_BELOW`] bytes are not charged: heartbeats, credit, cancels, stops
//! and small replies must never wait behind bulk data (a heartbeat held back by other
//! connections' backlog would get a healthy actor declared dead). The writer queue's bound in
//! frames bounds them instead (1,024 of them are at most 4 MiB).

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::Notify;

/// Frames shorter than this are not charged to any budget (see the module docs).
pub const UNCHARGED_BELOW: usize = 4096;

/// The bytes a frame (or a group of frames written together) of `len` bytes is charged.
pub(crate) fn chargeable(len: usize) -> usize {
    if len < UNCHARGED_BELOW { 0 } else { len }
}

/// A budget of bytes queued for writing, shared by the senders it is given to.
#[derive(Clone)]
pub struct SendBudget {
    inner: Arc<Inner>,
}

struct Inner {
    limit: usize,
    used: AtomicUsize,
    /// Senders waiting for room (spares a notification when nobody waits).
    waiting: AtomicUsize,
    freed: Notify,
}

impl std::fmt::Debug for SendBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SendBudget({} of {} bytes)", self.used(), self.limit())
    }
}

impl SendBudget {
    /// A budget of `limit` bytes (at least 1).
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit: limit.max(1),
                used: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                freed: Notify::new(),
            }),
        }
    }

    /// The bytes charged and not yet written.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Acquire)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Whether a sender may charge a frame now.
    pub(crate) fn has_room(&self) -> bool {
        self.inner.used.load(Ordering::SeqCst) < self.inner.limit
    }

    pub(crate) fn charge(&self, bytes: usize) {
        self.inner.used.fetch_add(bytes, Ordering::AcqRel);
    }

    pub(crate) fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        // SeqCst with the waiter's increment-then-check, so a release and a new waiter cannot
        // miss each other.
        self.inner.used.fetch_sub(bytes, Ordering::SeqCst);
        if self.inner.waiting.load(Ordering::SeqCst) > 0 {
            self.inner.freed.notify_waiters();
        }
    }

    /// Waits until the budget has room.
    pub(crate) async fn until_room(&self) {
        if self.has_room() {
            return;
        }
        self.inner.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.inner);
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release between the two is not missed.
            freed.as_mut().enable();
            if self.has_room() {
                return;
            }
            freed.await;
        }
    }
}

/// Counts a waiting sender while it waits (also when its future is dropped).
struct Waiting<'a>(&'a Inner);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Bytes charged to budgets, released when dropped unless handed to the writer.
pub(crate) struct Charge<'a> {
    budgets: &'a Budgets,
    bytes: usize,
}

impl Charge<'_> {
    /// The writer owns the bytes now: it releases them once written.
    pub(crate) fn commit(mut self) {
        self.bytes = 0;
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        self.budgets.release(self.bytes);
    }
}

/// The budgets one connection's senders draw on: its own, and its actor's if any.
#[derive(Clone, Debug)]
pub(crate) struct Budgets {
    connection: SendBudget,
    actor: Option<SendBudget>,
}

impl Budgets {
    pub(crate) fn new(connection: SendBudget, actor: Option<SendBudget>) -> Self {
        Self { connection, actor }
    }

    fn all(&self) -> impl Iterator<Item = &SendBudget> {
        std::iter::once(&self.connection).chain(self.actor.iter())
    }

    /// Waits for room in every budget, then charges `bytes` to each.
    pub(crate) async fn charge(&self, bytes: usize) -> Charge<'_> {
        if chargeable(bytes) > 0 {
            self.until_room().await;
        }
        self.charge_now(bytes)
    }

    /// Charges `bytes` if every budget has room now.
    pub(crate) fn try_charge(&self, bytes: usize) -> Option<Charge<'_>> {
        (chargeable(bytes) == 0 || self.has_room()).then(|| self.charge_now(bytes))
    }

    pub(crate) fn charge_now(&self, bytes: usize) -> Charge<'_> {
        let bytes = chargeable(bytes);
        // Small frames touch no shared counter (the hot path of small messages).
        if bytes > 0 {
            for budget in self.all() {
                budget.charge(bytes);
            }
        }
        Charge {
            budgets: self,
            bytes,
        }
    }

    /// The bytes charged to the connection's own budget.
    pub(crate) fn connection_used(&self) -> usize {
        self.connection.used()
    }

    /// Whether every budget has room now.
    pub(crate) fn has_room(&self) -> bool {
        self.all().all(SendBudget::has_room)
    }

    /// Waits until every budget has room.
    pub(crate) async fn until_room(&self) {
        while !self.has_room() {
            for budget in self.all() {
                budget.until_room().await;
            }
        }
    }

    /// Releases what frames of these lengths were charged, once written (or dropped).
    pub(crate) fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        for budget in self.all() {
            budget.release(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_sender_waits_while_any_budget_is_spent_and_resumes_when_written() {
        let actor = SendBudget::new(100_000);
        let one = Budgets::new(SendBudget::new(1_000_000), Some(actor.clone()));
        let two = Budgets::new(SendBudget::new(1_000_000), Some(actor.clone()));
        // A frame larger than the budget still goes out alone.
        one.charge(150_000).await.commit();
        assert_eq!(actor.used(), 150_000);
        // The actor's budget is spent: the other connection waits too.
        assert!(two.try_charge(10_000).is_none());
        // Small frames (heartbeats, credit, cancels) never wait.
        two.try_charge(100)
            .expect("a small frame goes through")
            .commit();
        let waiting = tokio::spawn(async move {
            two.charge(10_000).await.commit();
            two
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        one.release(150_000);
        let two = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(actor.used(), 10_000);
        two.release(10_000);
        assert_eq!(actor.used(), 0);
    }

    #[tokio::test]
    async fn a_charge_not_handed_to_the_writer_is_released() {
        let budgets = Budgets::new(SendBudget::new(100_000), None);
        drop(budgets.charge(50_000).await);
        assert_eq!(budgets.connection_used(), 0);
        budgets.try_charge(20_000).unwrap().commit();
        assert_eq!(budgets.connection_used(), 20_000);
    }
}
