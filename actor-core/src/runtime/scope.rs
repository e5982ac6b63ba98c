//! Which actor and which call a task belongs to: the current actor of a task (also of tasks
//! spawned with `tokio::spawn`, through the runtime's actor), and the nurseries a served call
//! opened, to close gracefully when the call is cancelled.

use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::core::{ActorCore, GracefulTeardown};
use crate::base::{WeakList, lock};

/// The nurseries a running call opened (in its own task, not in tasks it spawned): when the call
/// is cancelled they are torn down gracefully before its future is dropped, so their children
/// stop, unregister and clean up instead of being killed.
#[derive(Default)]
pub(crate) struct CallNurseries(WeakList<dyn GracefulTeardown>);

impl CallNurseries {
    /// A call's list, starting with the nurseries it opened while served inline.
    pub(crate) fn with(opened: Vec<Weak<dyn GracefulTeardown>>) -> Self {
        let list = WeakList::default();
        for nursery in opened {
            list.add(nursery);
        }
        Self(list)
    }

    /// Tears down every nursery of the call still open, together.
    pub(crate) async fn teardown(&self) {
        let open = self.0.live();
        futures::future::join_all(open.iter().map(|n| n.teardown())).await;
    }
}

tokio::task_local! {
    /// The nurseries of the call this task serves.
    static CALL_NURSERIES: Arc<CallNurseries>;
}

thread_local! {
    /// The nurseries opened by a call being served inline (polled once by its connection's
    /// reader), while it is polled.
    static INLINE_NURSERIES: std::cell::RefCell<Option<Vec<Weak<dyn GracefulTeardown>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `fut`, a served call, with `nurseries` as where the nurseries it opens are listed.
pub(crate) async fn with_call_nurseries<F: std::future::Future>(
    nurseries: Arc<CallNurseries>,
    fut: F,
) -> F::Output {
    CALL_NURSERIES.scope(nurseries, fut).await
}

/// Runs `poll`, one inline poll of a served call, collecting the nurseries it opens.
pub(crate) fn collect_inline_nurseries<R>(
    poll: impl FnOnce() -> R,
) -> (R, Vec<Weak<dyn GracefulTeardown>>) {
    /// Puts the thread's previous list back, also when `poll` panics.
    struct Restore(Option<Option<Vec<Weak<dyn GracefulTeardown>>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(outer) = self.0.take() {
                INLINE_NURSERIES.with(|n| *n.borrow_mut() = outer);
            }
        }
    }
    let mut restore = Restore(Some(INLINE_NURSERIES.with(|n| n.replace(Some(Vec::new())))));
    let out = poll();
    let outer = restore.0.take().unwrap_or_default();
    let opened = INLINE_NURSERIES.with(|n| n.replace(outer));
    (out, opened.unwrap_or_default())
}

/// The actor serving the call this task runs, if it runs one (or the root's `main`): unlike
/// [`current`], not the runtime's actor seen from any task.
pub(crate) fn serving_actor() -> Option<Arc<ActorCore>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Lists `nursery` as owned by the call the current task serves, if it serves one.
pub(crate) fn own_nursery(nursery: Weak<dyn GracefulTeardown>) {
    let listed = CALL_NURSERIES.try_with(|call| call.0.add(nursery.clone()));
    if listed.is_err() {
        INLINE_NURSERIES.with(|inline| {
            if let Some(opened) = inline.borrow_mut().as_mut() {
                opened.push(nursery);
            }
        });
    }
}

/// The actor of one tokio runtime: the first actor started in it. Shared by every thread of
/// the runtime, so tasks spawned with `tokio::spawn` (which do not inherit [`CURRENT`]) still
/// find the actor they run in.
#[derive(Default)]
pub(crate) struct RuntimeActor(Mutex<Option<Weak<ActorCore>>>);

impl RuntimeActor {
    /// The runtime's actor, while it runs (a stopped one is no one's actor any more, even if
    /// something still holds it).
    fn get(&self) -> Option<Arc<ActorCore>> {
        lock(&self.0)
            .as_ref()
            .and_then(Weak::upgrade)
            .filter(|core| !core.cancel.is_cancelled())
    }

    /// Makes `core` the runtime's actor, unless another one still runs.
    fn claim(&self, core: &Arc<ActorCore>) {
        let mut slot = lock(&self.0);
        let taken = slot
            .as_ref()
            .and_then(Weak::upgrade)
            .is_some_and(|running| !running.cancel.is_cancelled());
        if !taken {
            *slot = Some(Arc::downgrade(core));
        }
    }
}

thread_local! {
    /// The [`RuntimeActor`] of the runtime this thread belongs to, when known.
    static THREAD_RUNTIME: std::cell::RefCell<Option<Arc<RuntimeActor>>> =
        const { std::cell::RefCell::new(None) };
}

/// Every actor serving in this process, for the last resort of [`current`].
static SERVING: OnceLock<WeakList<ActorCore>> = OnceLock::new();

/// Marks this thread as one of the runtime whose actor `slot` holds (runtime threads call it
/// as they start; the thread running `block_on` for the duration of the call).
pub(crate) fn enter_runtime(slot: Arc<RuntimeActor>) -> RuntimeGuard {
    let previous = THREAD_RUNTIME.with(|t| t.replace(Some(slot)));
    RuntimeGuard { previous }
}

/// Marks this thread, for good, as one of the runtime whose actor `slot` holds (a runtime's
/// worker and blocking threads, as they start).
pub(crate) fn join_runtime(slot: Arc<RuntimeActor>) {
    THREAD_RUNTIME.with(|t| *t.borrow_mut() = Some(slot));
}

/// Restores the thread's previous runtime slot when dropped.
pub(crate) struct RuntimeGuard {
    previous: Option<Arc<RuntimeActor>>,
}

impl Drop for RuntimeGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        THREAD_RUNTIME.with(|t| *t.borrow_mut() = previous);
    }
}

/// Records that `core` serves: it becomes the actor of the runtime it was started in (the
/// first one there), and is listed as serving in this process. A thread that belongs to no
/// runtime of ours (a runtime built by the program itself) gets a slot of its own: all the
/// tasks of a current-thread runtime run on it.
pub(crate) fn announce(core: &Arc<ActorCore>) {
    THREAD_RUNTIME.with(|t| {
        let mut slot = t.borrow_mut();
        slot.get_or_insert_with(Arc::default).claim(core);
    });
    SERVING
        .get_or_init(WeakList::default)
        .add(Arc::downgrade(core));
}

/// Makes `core` the actor of the runtime this thread works for, if the thread belongs to a
/// runtime of ours (an actor started from `block_on` on a multi-thread runtime claims the
/// worker threads' slot from a task running on one of them).
pub(crate) fn claim_runtime(core: &Arc<ActorCore>) {
    THREAD_RUNTIME.with(|t| {
        if let Some(slot) = t.borrow().as_ref() {
            slot.claim(core);
        }
    });
}

/// Runs `fut` with `core` as the current actor (what `Actor::current` sees).
pub(crate) async fn with_current<F: std::future::Future>(
    core: Arc<ActorCore>,
    fut: F,
) -> F::Output {
    CURRENT.scope(core, fut).await
}

/// Runs `f` with `core` as the current actor, synchronously (one poll of a call served inline).
pub(crate) fn with_current_sync<R>(core: Arc<ActorCore>, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(core, f)
}

/// The actor the current task runs in, if any: the one serving the current call (or running
/// the root's `main`); else the actor of this runtime, which every task spawned in it sees;
/// else the process's actor when exactly one serves here (a process is one actor; only tests
/// run several side by side, each in its own runtime).
pub(crate) fn current() -> Option<Arc<ActorCore>> {
    if let Ok(core) = CURRENT.try_with(Arc::clone) {
        return Some(core);
    }
    let of_runtime = THREAD_RUNTIME.with(|t| t.borrow().as_ref().and_then(|slot| slot.get()));
    if of_runtime.is_some() {
        return of_runtime;
    }
    let serving = SERVING.get()?.live();
    let alive: Vec<_> = serving
        .into_iter()
        .filter(|core| !core.cancel.is_cancelled())
        .collect();
    match <[_; 1]>::try_from(alive) {
        Ok([only]) => Some(only),
        Err(_) => None,
    }
}

tokio::task_local! {
    static CURRENT: Arc<ActorCore>;
}
