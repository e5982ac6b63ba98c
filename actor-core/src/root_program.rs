//! How a root actor's program runs: as a task of its own when it can be one, else as the
//! future the runtime's `block_on` drives.
//!
//! The difference is latency. tokio's current-thread scheduler polls a woken `block_on`
//! future only after its run queue is empty and it has polled its I/O driver once more (an
//! `epoll_wait` per wake-up), where a woken task runs at once: an answer to a call made from
//! `main` reached the caller 0.7 µs later than one made from a task (low-latency mode, W2 on
//! a 2-CPU VM). A task must be `Send + 'static` with a `Send` output: `#[actor::main]` and
//! `#[actor::test]` choose at compile time ([`Tag`]), and a program that cannot be a task
//! (one holding an `Rc` across an `.await`, or returning `Box<dyn Error>`) runs in place as
//! before.

use std::{
    future::Future,
    marker::PhantomData,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use tokio::task::JoinHandle;

use crate::runtime::{ActorCore, with_current};

/// A root program's future, and where it runs.
pub struct Program<'a, T>(Placed<'a, T>);

enum Placed<'a, T> {
    /// To be spawned as a task of the root's runtime, with the root as its current actor.
    Task(Box<dyn FnOnce(Arc<ActorCore>) -> Running<'a, T> + 'a>),
    /// To be polled by the runtime's `block_on` itself.
    InPlace(Pin<Box<dyn Future<Output = T> + 'a>>),
}

impl<'a, T: 'a> Program<'a, T> {
    /// `future`, polled by the runtime's `block_on`: [`crate::run_root`]'s programs, which
    /// need not be `Send`.
    pub(crate) fn in_place(future: impl Future<Output = T> + 'a) -> Self {
        Self(Placed::InPlace(Box::pin(future)))
    }

    /// Starts the program with `core` as its current actor: spawns its task, or readies it
    /// to be polled in place.
    pub(crate) fn start(self, core: Arc<ActorCore>) -> Running<'a, T> {
        match self.0 {
            Placed::Task(spawn) => spawn(core),
            Placed::InPlace(future) => Running::InPlace(Box::pin(with_current(core, future))),
        }
    }
}

/// The type of a program's future, for choosing where it runs by the autoref rule of method
/// calls: `(&Tag::of(&future)).how()` resolves to [`AsTask::how`] when the future can be a
/// task, and to [`InPlace::how`] otherwise. The choice needs the future's concrete type, so it
/// is made where the macros expand, on a future returned by a separate `async fn` (an `async`
/// block's `Send`ness is not known yet inside the function that holds it).
pub struct Tag<Fut>(PhantomData<fn() -> Fut>);

impl<Fut> Tag<Fut> {
    /// The tag of `future`'s type.
    pub fn of(_future: &Fut) -> Self {
        Self(PhantomData)
    }
}

/// The placement of a program that can be a task. Method lookup tries it first: its method
/// takes the tag by reference, as the call site passes it.
pub trait AsTask<Fut: Future> {
    /// Makes `Fut` a program spawned as a task.
    fn how(&self) -> fn(Fut) -> Program<'static, Fut::Output>;
}

impl<Fut> AsTask<Fut> for Tag<Fut>
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn how(&self) -> fn(Fut) -> Program<'static, Fut::Output> {
        |future| {
            Program(Placed::Task(Box::new(move |core| {
                let frozen = Arc::new(AtomicBool::new(false));
                let handle = tokio::spawn(Freezable {
                    future: Box::pin(with_current(core, future)),
                    frozen: frozen.clone(),
                });
                Running::Task { handle, frozen }
            })))
        }
    }
}

/// The placement of any other program. Method lookup reaches it only when [`AsTask`] does
/// not apply: its method takes a reference to the reference, one auto-borrow further.
pub trait InPlace<Fut: Future> {
    /// Makes `Fut` a program polled in place.
    fn how(&self) -> fn(Fut) -> Program<'static, Fut::Output>;
}

impl<Fut: Future + 'static> InPlace<Fut> for &Tag<Fut> {
    fn how(&self) -> fn(Fut) -> Program<'static, Fut::Output> {
        Program::in_place
    }
}

/// A program while it runs. Its output is `None` only if its task was cancelled from outside
/// (the runtime shutting down).
pub(crate) enum Running<'a, T> {
    InPlace(Pin<Box<dyn Future<Output = T> + 'a>>),
    Task {
        handle: JoinHandle<T>,
        frozen: Arc<AtomicBool>,
    },
    /// The task has ended and its output was taken.
    Ended,
}

impl<T> Running<'_, T> {
    /// Stops the program from running any further, without dropping it: what a program
    /// polled in place gets by not being polled, while its nurseries are torn down
    /// gracefully.
    pub(crate) fn freeze(&self) {
        if let Self::Task { frozen, .. } = self {
            frozen.store(true, Ordering::Release);
        }
    }

    /// Drops the program (its nurseries kill what is left of their children), and waits
    /// until it is dropped.
    pub(crate) async fn end(self) {
        match self {
            Self::InPlace(future) => drop(future),
            Self::Task { handle, .. } => {
                handle.abort();
                // Cancelled (or it had just finished): either way it is gone.
                let _ = handle.await;
            }
            Self::Ended => {}
        }
    }
}

impl<T> Future for Running<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let joined = match this {
            Self::InPlace(future) => return future.as_mut().poll(cx).map(Some),
            Self::Task { handle, .. } => std::task::ready!(Pin::new(handle).poll(cx)),
            // Polled again after its end: it has nothing more to give.
            Self::Ended => return Poll::Ready(None),
        };
        // A finished task's handle must not be polled again, nor awaited by `end`.
        *this = Self::Ended;
        match joined {
            Ok(out) => Poll::Ready(Some(out)),
            // The program's panic is the caller's, as it is when it runs in place.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Poll::Ready(None),
        }
    }
}

/// A task's future that stops being polled once frozen.
struct Freezable<F> {
    future: Pin<Box<F>>,
    frozen: Arc<AtomicBool>,
}

impl<F: Future> Future for Freezable<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if self.frozen.load(Ordering::Acquire) {
            // Never woken again for this: the task waits to be aborted.
            return Poll::Pending;
        }
        self.future.as_mut().poll(cx)
    }
}

/// Places a root program's future (an `async fn`'s call: see [`Tag`]) as a task when it can
/// be one, else in place: what `#[actor::main]` and `#[actor::test]` expand to, and what code
/// calling the hidden entry points directly must write to get the same placement.
#[doc(hidden)]
#[macro_export]
macro_rules! __place_program {
    ($future:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{AsTask as _, InPlace as _};
        let program = $future;
        // The borrow is the choice: `InPlace` is one auto-borrow further than `AsTask`.
        #[allow(clippy::needless_borrow)]
        (&$crate::__private::Tag::of(&program)).how()(program)
    }};
}
