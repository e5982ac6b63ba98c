//! [`WakeGated`]: a rarely ready future that costs almost nothing to poll between its wake-ups.
//!
//! A hot loop that selects on a message source and on a stop signal (a cancellation token, a
//! `Notify`) polls the signal's future each time the source runs dry: once per message on a
//! connection carrying one message at a time. A cancellation future's poll takes a lock to
//! refresh its waker, about 100 instructions, and a connection's reader polls two of them, a
//! few percent of a whole round trip. Gated, the signal's future is polled again only after it
//! woke the task: in between, a poll is an atomic swap.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use futures::task::AtomicWaker;

/// Polls `F` only when it has woken the task since its last poll (and on the first poll).
pub(crate) struct WakeGated<F> {
    inner: Pin<Box<F>>,
    gate: Arc<Gate>,
    /// The waker `inner` is polled with: wakes the task through the gate.
    gate_waker: Waker,
}

/// What `inner`'s wake-ups go through: a flag, then the task.
struct Gate {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> WakeGated<F> {
    /// Gates `inner`.
    pub(crate) fn new(inner: F) -> Self {
        let gate = Arc::new(Gate {
            // Set: the first poll polls `inner`.
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Self {
            inner: Box::pin(inner),
            gate_waker: Waker::from(gate.clone()),
            gate,
        }
    }
}

impl<F: Future> Future for WakeGated<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Registered on every poll (cheap when the waker is unchanged): a gate's wake takes
        // the task's waker out, and the task may have moved.
        this.gate.task.register(cx.waker());
        if !this.gate.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let mut gated = Context::from_waker(&this.gate_waker);
        this.inner.as_mut().poll(&mut gated)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio_util::sync::CancellationToken;

    use super::*;

    /// A future that counts its polls and is ready once `ready` is set; it wakes through the
    /// waker it was last polled with when `wake` is called.
    struct Counted {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<std::sync::Mutex<Option<Waker>>>,
    }

    impl Future for Counted {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn the_inner_future_is_polled_again_only_after_it_woke_the_task() {
        let polls = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let inner_waker = Arc::new(std::sync::Mutex::new(None::<Waker>));
        let mut gated = WakeGated::new(Counted {
            polls: polls.clone(),
            ready: ready.clone(),
            waker: inner_waker.clone(),
        });
        let task_wakes = Arc::new(CountWakes::default());
        let task = Waker::from(task_wakes.clone());
        let mut cx = Context::from_waker(&task);
        for _ in 0..5 {
            assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1, "polled through the gate");
        // The inner future wakes: the task is woken, and the next poll reaches it.
        ready.store(true, Ordering::SeqCst);
        let woke = inner_waker.lock().unwrap_or_else(|e| e.into_inner()).take();
        woke.expect("the inner future kept a waker").wake();
        assert_eq!(task_wakes.0.load(Ordering::SeqCst), 1);
        assert!(Pin::new(&mut gated).poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[derive(Default)]
    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_gated_cancellation_still_ends_a_select_loop() {
        let token = CancellationToken::new();
        let stop = WakeGated::new(token.clone().cancelled_owned());
        tokio::pin!(stop);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let canceller = token.clone();
        let feeder = tokio::spawn(async move {
            for n in 0..100 {
                if tx.send(n).is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
            canceller.cancel();
            // Keep the channel open: only the cancellation can end the loop.
            std::future::pending::<()>().await;
        });
        let mut received = 0;
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                tokio::select! {
                    biased;
                    Some(_) = rx.recv() => received += 1,
                    () = &mut stop => break,
                }
            }
        })
        .await;
        feeder.abort();
        assert!(ended.is_ok(), "the cancellation never ended the loop");
        assert_eq!(received, 100);
    }
}
