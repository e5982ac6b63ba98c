//! The actor's thread runner: blocking invocations (`#[actor::remote(blocking)]`) run on
//! threads of their own, at most `slots` at once, never on the async executor. Invocations
//! beyond the slots wait in arrival order; a finished thread gives its slot back at once.
//!
//! Each invocation has a status. Cancelling a pending one removes it; cancelling a running one
//! marks it killed and discards its result (a thread cannot be interrupted: its slot returns
//! when it finishes). When the actor stops gracefully, every invocation not finished is
//! *rerouted*: its caller gets the `Rerouted` error at once (teams retry it elsewhere), and what
//! its thread produces later is discarded.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Instant,
};

use serde::Serialize;
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::base::{
    error::{Error, Result},
    lock,
};

/// How many ended invocations the status keeps.
const HISTORY: usize = 256;

/// Where an invocation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InvocationStatus {
    /// Waiting for a free slot.
    Pending,
    /// Running on a thread.
    Running,
    /// Finished with a value.
    Succeeded,
    /// Finished with an error (or a panic).
    Failed,
    /// Its call was cancelled while it ran: its result was discarded.
    Killed,
    /// The actor stopped before it finished: its caller was told to run it elsewhere.
    Rerouted,
}

/// One invocation, as the status reports it.
#[derive(Debug, Clone, Serialize)]
pub struct InvocationInfo {
    /// Its number in this actor, in order of arrival.
    pub id: u64,
    /// The function.
    pub func: &'static str,
    /// Where it is.
    pub status: InvocationStatus,
    /// Seconds since it arrived.
    pub age_secs: f64,
}

/// The thread runner as the status reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadRunnerStatus {
    /// Parallel slots.
    pub slots: usize,
    /// Invocations running now.
    pub running: usize,
    /// Invocations waiting for a slot.
    pub pending: usize,
    /// Invocations not ended, then the last ended ones (newest last).
    pub invocations: Vec<InvocationInfo>,
}

struct Entry {
    func: &'static str,
    status: InvocationStatus,
    since: Instant,
}

/// A job waiting for a slot.
struct Job {
    id: u64,
    func: &'static str,
    run: Box<dyn FnOnce() + Send>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    running: usize,
    queue: VecDeque<Job>,
    live: HashMap<u64, Entry>,
    ended: VecDeque<(u64, Entry)>,
}

impl State {
    /// Moves invocation `id` to `status`; an ended one leaves the live table for the history.
    /// Only a live invocation changes: the first end wins.
    fn set(&mut self, id: u64, status: InvocationStatus) -> bool {
        let Some(entry) = self.live.get_mut(&id) else {
            return false;
        };
        entry.status = status;
        if !matches!(
            status,
            InvocationStatus::Pending | InvocationStatus::Running
        ) && let Some(entry) = self.live.remove(&id)
        {
            self.ended.push_back((id, entry));
            if self.ended.len() > HISTORY {
                self.ended.pop_front();
            }
        }
        true
    }
}

/// An actor's bounded runner of blocking invocations.
pub(crate) struct ThreadRunner {
    /// `None`: one per CPU, counted when first needed (reading the CPU count parses cgroup
    /// files: not worth it in the start of an actor that runs no blocking work).
    slots: Option<usize>,
    state: Mutex<State>,
    /// Cancelled when the actor stops: every unfinished invocation is rerouted.
    stopping: CancellationToken,
}

impl ThreadRunner {
    /// A runner of `slots` parallel threads (at least one; by default one per CPU), rerouting
    /// when `stopping` fires.
    pub(crate) fn new(slots: Option<usize>, stopping: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            slots: slots.map(|slots| slots.max(1)),
            state: Mutex::new(State::default()),
            stopping,
        })
    }

    /// How many invocations run at once.
    fn slots(&self) -> usize {
        self.slots.unwrap_or_else(crate::base::platform::cpus)
    }

    /// Runs `work` (function `func`) on a thread when a slot is free; the future completes
    /// with its result, or `Rerouted` if the actor stops first. Dropping the future cancels the
    /// invocation (removed if pending, marked killed if running).
    pub(crate) fn submit<T, W>(self: &Arc<Self>, func: &'static str, work: W) -> Invocation<T>
    where
        T: Send + 'static,
        W: FnOnce() -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let runner = self.clone();
        let mut state = lock(&self.state);
        let id = state.next_id;
        state.next_id += 1;
        state.live.insert(
            id,
            Entry {
                func,
                status: InvocationStatus::Pending,
                since: Instant::now(),
            },
        );
        let run = Box::new(move || {
            let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
                Ok(outcome) => outcome,
                Err(panic) => Err(panic_text(func, &panic)),
            };
            let status = match &outcome {
                Ok(_) => InvocationStatus::Succeeded,
                Err(_) => InvocationStatus::Failed,
            };
            // Only a running invocation ends this way (a killed or rerouted one keeps its
            // status, and its result goes nowhere); the result is handed over under the same
            // lock, so no reroute can come between the two.
            let mut state = lock(&runner.state);
            if state.set(id, status) {
                let _ = tx.send(outcome);
            }
        });
        if self.stopping.is_cancelled() {
            // The actor stops: nothing more starts here (its invocation answers `Rerouted`).
            state.set(id, InvocationStatus::Rerouted);
        } else {
            state.queue.push_back(Job { id, func, run });
        }
        drop(state);
        self.start_ready();
        Invocation {
            id,
            func,
            runner: self.clone(),
            result: rx,
            stopping: Box::pin(self.stopping.clone().cancelled_owned()),
            done: false,
        }
    }

    /// Starts queued jobs while slots are free; once the actor stops, reroutes them instead.
    fn start_ready(self: &Arc<Self>) {
        loop {
            let job = {
                let mut state = lock(&self.state);
                if self.stopping.is_cancelled() {
                    let queued: Vec<u64> = state.queue.drain(..).map(|job| job.id).collect();
                    for id in queued {
                        state.set(id, InvocationStatus::Rerouted);
                    }
                    return;
                }
                if state.running >= self.slots() {
                    return;
                }
                let Some(job) = state.queue.pop_front() else {
                    return;
                };
                state.running += 1;
                state.set(job.id, InvocationStatus::Running);
                job
            };
            let id = job.id;
            let slot = SlotBack(self.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("actor-blocking-{}", job.func.replace('\0', "")))
                .spawn(move || {
                    // However the job ends, its slot goes back at once for the next.
                    let _slot = slot;
                    (job.run)();
                });
            if let Err(e) = spawned {
                // The job (and its result channel) is gone with the closure: its caller hears
                // that it ended without a result; the next jobs still get their turn.
                tracing::error!(error = %e, "cannot start a thread for a blocking invocation");
                lock(&self.state).set(id, InvocationStatus::Failed);
            }
        }
    }

    /// Cancels invocation `id`: a pending one leaves the queue, a running one is killed.
    fn cancel(&self, id: u64) {
        let mut state = lock(&self.state);
        let pending = state.queue.iter().position(|job| job.id == id);
        match pending {
            Some(index) => {
                state.queue.remove(index);
                state.live.remove(&id);
            }
            None => {
                state.set(id, InvocationStatus::Killed);
            }
        }
    }

    /// Marks invocation `id` rerouted (a pending one leaves the queue): true, unless it had
    /// already ended, in which case its result is already on its way.
    fn reroute(&self, id: u64) -> bool {
        let mut state = lock(&self.state);
        if let Some(index) = state.queue.iter().position(|job| job.id == id) {
            state.queue.remove(index);
        }
        if state.set(id, InvocationStatus::Rerouted) {
            return true;
        }
        // Rerouted already (when the stop found it queued) counts as rerouted.
        state
            .ended
            .iter()
            .any(|(ended, entry)| *ended == id && entry.status == InvocationStatus::Rerouted)
    }

    /// The runner's state now.
    pub(crate) fn status(&self) -> ThreadRunnerStatus {
        let state = lock(&self.state);
        let now = Instant::now();
        let info = |id: u64, entry: &Entry| InvocationInfo {
            id,
            func: entry.func,
            status: entry.status,
            age_secs: now.saturating_duration_since(entry.since).as_secs_f64(),
        };
        let mut live: Vec<InvocationInfo> = state.live.iter().map(|(id, e)| info(*id, e)).collect();
        live.sort_by_key(|i| i.id);
        live.extend(state.ended.iter().map(|(id, e)| info(*id, e)));
        ThreadRunnerStatus {
            slots: self.slots(),
            running: state.running,
            pending: state.queue.len(),
            invocations: live,
        }
    }
}

/// Gives a running job's slot back when dropped (however the job's thread ends), and starts
/// the next job.
struct SlotBack(Arc<ThreadRunner>);

impl Drop for SlotBack {
    fn drop(&mut self) {
        {
            let mut state = lock(&self.0.state);
            state.running = state.running.saturating_sub(1);
        }
        self.0.start_ready();
    }
}

/// The error of an invocation whose thread ended without handing over a result (it could not
/// be started).
fn no_result(func: &str) -> Error {
    Error::raise(
        crate::base::error::PANIC_TYPE,
        format!("{func}: its thread could not be started or ended without a result"),
    )
}

fn panic_text(func: &str, panic: &Box<dyn std::any::Any + Send>) -> Error {
    let text = crate::base::panic_message(panic.as_ref());
    Error::raise(
        crate::base::error::PANIC_TYPE,
        format!("{func} panicked: {text}"),
    )
}

/// A blocking invocation's result, to await.
pub(crate) struct Invocation<R> {
    id: u64,
    func: &'static str,
    runner: Arc<ThreadRunner>,
    result: oneshot::Receiver<Result<R>>,
    stopping: Pin<Box<WaitForCancellationFutureOwned>>,
    done: bool,
}

impl<R> Future for Invocation<R> {
    type Output = Result<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R>> {
        let this = self.get_mut();
        if let Poll::Ready(result) = Pin::new(&mut this.result).poll(cx) {
            this.done = true;
            return Poll::Ready(match result {
                Ok(result) => result,
                // Dropped unrun: the stopping actor gave it up (also when it arrived after
                // the stop began), so the caller may run it elsewhere.
                Err(_) if this.runner.reroute(this.id) => Err(Error::Rerouted {
                    func: this.func.to_owned(),
                }),
                Err(_) => Err(no_result(this.func)),
            });
        }
        if this.stopping.as_mut().poll(cx).is_ready() {
            this.done = true;
            if this.runner.reroute(this.id) {
                return Poll::Ready(Err(Error::Rerouted {
                    func: this.func.to_owned(),
                }));
            }
            // It ended just before the stop: its result was sent under the lock, so it is
            // there now.
            return match this.result.try_recv() {
                Ok(result) => Poll::Ready(result),
                Err(_) => Poll::Ready(Err(no_result(this.func))),
            };
        }
        Poll::Pending
    }
}

impl<R> Drop for Invocation<R> {
    fn drop(&mut self) {
        if !self.done {
            self.runner.cancel(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An invocation submitted once the actor has begun to stop never runs; its caller gets
    /// `Rerouted` (to run it elsewhere), not an error that looks like a panic.
    #[test]
    fn an_invocation_submitted_after_the_stop_is_rerouted() {
        let stopping = CancellationToken::new();
        let runner = ThreadRunner::new(Some(1), stopping.clone());
        stopping.cancel();
        let invocation = runner.submit("late", || Ok(1_u8));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| unreachable!("a runtime: {e}"));
        match runtime.block_on(invocation) {
            Err(Error::Rerouted { func }) => assert_eq!(func, "late"),
            other => unreachable!("expected Rerouted, got {other:?}"),
        }
    }

    /// Unset, the slots are one per CPU (counted when first asked for); set, at least one.
    #[test]
    fn the_default_slots_are_one_per_cpu_and_a_set_count_at_least_one() {
        let stopping = CancellationToken::new();
        let default = ThreadRunner::new(None, stopping.clone());
        assert_eq!(default.status().slots, crate::base::platform::cpus());
        assert_eq!(
            ThreadRunner::new(Some(0), stopping.clone()).status().slots,
            1
        );
        assert_eq!(ThreadRunner::new(Some(3), stopping).status().slots, 3);
    }
}
