//! Nurseries: structured concurrency across processes.
//!
//! A [`Nursery`] starts child actors, each in its own process: daemons
//! ([`Nursery::start_actor`], serving until cancelled) and one-shots ([`Nursery::run_in_actor`],
//! running one function whose result stays readable). The children live and die together:
//! - an error in any child cancels every child, and [`Nursery::close`] reports every error that
//!   happened (an [`Error::Group`] when several), the causing error first and never masked by the
//!   cancellations it triggered;
//! - teardown escalates: the `cancel` runtime call with a bounded wait, then SIGTERM, then
//!   SIGKILL; every process is reaped;
//! - a child that cannot start fails its own `start_actor`/`run_in_actor` call with its error
//!   (e.g. a namespace it does not have), and only that call;
//! - a nursery opened by a remote function closes gracefully when that call is cancelled;
//! - a nursery dropped without being closed kills its children at once.

use std::{
    future::{Future, IntoFuture},
    marker::PhantomData,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use actor_ipc::{Payload, Uid};
use serde::de::DeserializeOwned;
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{
    base::error::{ACTOR_CANCELLED, CONTEXT_CANCELLED, Error, RemoteActorError, Result},
    base::lock,
    base::platform,
    calls::registry::RemoteFn,
    portal::Portal,
    runtime::{self, ActorCore, core::GracefulTeardown},
    tree::spawn::{ChildRequest, Program, spawn_child},
};

/// After a failure, how long one-shot children may go on finishing their function.
const ONE_SHOT_GRACE: Duration = Duration::from_millis(1000);

/// How long each teardown step waits before escalating to the next.
const TEARDOWN_STEP: Duration = Duration::from_millis(1000);

/// Opens a nursery in the current actor (see [`crate::Actor::current`]: the root under
/// `#[actor::main]` or [`crate::run_root`], the actor serving the current call, also from tasks
/// started with `tokio::spawn`).
///
/// A nursery opened by a remote function belongs to that call: when the call is cancelled,
/// the nursery is closed gracefully (its children are cancelled, unregister and clean up)
/// before the function's future is dropped.
pub async fn open_nursery() -> Result<Nursery> {
    let core = runtime::current().ok_or_else(|| {
        Error::Usage(
            "open_nursery: no actor runs in this process (start one with #[actor::main], \
             actor::run_root or Actor::builder(..).start())"
                .into(),
        )
    })?;
    let state = Arc::new(State {
        tracker: core.io_tasks.clone(),
        ..State::default()
    });
    let teardown: Arc<dyn GracefulTeardown> = state.clone();
    core.nurseries.add(Arc::downgrade(&teardown));
    runtime::own_nursery(Arc::downgrade(&teardown));
    Ok(Nursery { core, state })
}

/// The shared state of a nursery and its supervisors.
#[derive(Default)]
pub(crate) struct State {
    children: Mutex<Vec<Arc<ChildSlot>>>,
    errors: Mutex<Vec<Error>>,
    /// Set once teardown started: errors after it are consequences, not causes.
    tearing_down: AtomicBool,
    /// Cancelled at the first failure.
    failed: CancellationToken,
    changed: Notify,
    /// One-shot children still running their function.
    one_shots: AtomicUsize,
    /// The actor's tracker of runtime tasks: the nursery's own tasks are awaited at teardown.
    tracker: tokio_util::task::TaskTracker,
}

impl State {
    /// Records a failure; the first one starts tearing every child down.
    fn fail(self: &Arc<Self>, error: Error) {
        let after_failure = self.failed.is_cancelled() || self.tearing_down.load(Ordering::Acquire);
        if after_failure && is_consequence(&error) {
            debug!(%error, "ignoring an error caused by the teardown");
            return;
        }
        lock(&self.errors).push(error);
        if !self.failed.is_cancelled() {
            self.failed.cancel();
            let state = self.clone();
            let tracker = self.tracker.clone();
            tracker.spawn(async move { state.teardown_after_failure().await });
        }
        self.changed.notify_waiters();
    }

    fn snapshot(&self) -> Vec<Arc<ChildSlot>> {
        lock(&self.children).clone()
    }

    /// After the first failure: daemons are cancelled at once; one-shots get a short grace to
    /// finish the function they run (their errors, too, are reported), then are cancelled.
    async fn teardown_after_failure(self: &Arc<Self>) {
        let daemons: Vec<_> = self
            .snapshot()
            .into_iter()
            .filter(|c| !c.one_shot)
            .collect();
        futures::future::join_all(daemons.iter().map(|c| c.stop())).await;
        let one_shots_done = async {
            loop {
                let changed = self.changed.notified();
                if self.one_shots.load(Ordering::Acquire) == 0 {
                    return;
                }
                changed.await;
            }
        };
        let _ = tokio::time::timeout(ONE_SHOT_GRACE, one_shots_done).await;
        self.teardown().await;
    }

    /// Cancels every child, escalating, and waits until every process is reaped.
    pub(crate) async fn teardown(&self) {
        self.tearing_down.store(true, Ordering::Release);
        let children = self.snapshot();
        futures::future::join_all(children.iter().map(|c| c.stop())).await;
    }
}

/// Whether an error is what cancelling a child looks like (not a cause worth reporting).
fn is_consequence(error: &Error) -> bool {
    match error {
        Error::Cancelled | Error::ContextCancelled { .. } | Error::Disconnected { .. } => true,
        Error::Remote(e) => e.type_str == ACTOR_CANCELLED || e.type_str == CONTEXT_CANCELLED,
        _ => false,
    }
}

/// Where a child's end is reported: to its nursery (an unexpected end is the nursery's
/// failure), or to whoever supervises it instead (a team replaces a member that died).
#[derive(Clone)]
pub(crate) enum OnExit {
    /// An unexpected end fails the nursery (its other children are cancelled).
    FailNursery,
    /// Every end is sent here, expected or not; the nursery is not failed.
    Report(tokio::sync::mpsc::UnboundedSender<ChildEnded>),
}

/// How a supervised child ended (for [`OnExit::Report`]).
#[derive(Debug)]
pub(crate) struct ChildEnded {
    /// The child.
    pub(crate) uid: Uid,
    /// Whether this side asked it to end (teardown, a kill, a dismissal).
    pub(crate) asked: bool,
    /// It exited with status 0 on its own, or was asked to: it was not a crash.
    pub(crate) clean: bool,
    /// What went wrong, when something did: the error it said it failed with, or its exit.
    pub(crate) error: Option<Error>,
}

/// One child process.
pub(crate) struct ChildSlot {
    pub(crate) uid: Uid,
    pub(crate) portal: Portal,
    pub(crate) pid: Option<u32>,
    /// Cancelled once the process has exited, been reaped, and its exit judged.
    exited: CancellationToken,
    /// Set as soon as the process is reaped: its pid may be reused from then on, so no signal
    /// may be sent to it any more.
    reaped: AtomicBool,
    /// This side sent the process a signal (so dying by a signal is no crash).
    signalled: AtomicBool,
    /// The exit was asked for (teardown, or a one-shot that returned).
    expected: AtomicBool,
    /// Started by `run_in_actor`.
    one_shot: bool,
    /// Where it was placed (`local`, `ssh://...`, `slurm`), for reports.
    placement: String,
    /// Where its end is reported.
    on_exit: OnExit,
}

impl ChildSlot {
    /// Kills the child now (SIGKILL), as asked: for a child that no longer answers.
    pub(crate) fn kill(&self) {
        self.expected.store(true, Ordering::Release);
        self.signal(platform::kill_now);
    }

    /// Stops the child: the cancel call, then SIGTERM, then SIGKILL, each with a bounded wait.
    pub(crate) async fn stop(&self) {
        self.expected.store(true, Ordering::Release);
        if self.exited.is_cancelled() {
            return;
        }
        let graceful = async {
            let _ = self.portal.cancel_actor().await;
            self.exited.cancelled().await;
        };
        if tokio::time::timeout(TEARDOWN_STEP, graceful).await.is_ok() {
            return;
        }
        debug!(child = %self.uid, "no exit after the cancel call; SIGTERM");
        self.signal(platform::terminate);
        if tokio::time::timeout(TEARDOWN_STEP, self.exited.cancelled())
            .await
            .is_ok()
        {
            return;
        }
        warn!(child = %self.uid, "no exit after SIGTERM; SIGKILL");
        self.signal(platform::kill_now);
        self.exited.cancelled().await;
    }

    /// Signals the process, unless it was already reaped (its pid may belong to another
    /// process by now).
    fn signal(&self, send: fn(u32)) {
        if let (Some(pid), false) = (self.pid, self.reaped.load(Ordering::Acquire)) {
            self.signalled.store(true, Ordering::Release);
            send(pid);
        }
    }
}

/// Starts children into a nursery, from wherever the nursery itself is not at hand.
#[derive(Clone)]
pub(crate) struct Recruiter {
    core: Arc<ActorCore>,
    state: Arc<State>,
}

impl Recruiter {
    /// Whether the nursery is tearing its children down or failed (no daemon started now
    /// would stay).
    pub(crate) fn tearing_down(&self) -> bool {
        self.state.tearing_down.load(Ordering::Acquire) || self.state.failed.is_cancelled()
    }

    /// Starts a child (a daemon unless `one_shot`) whose end is reported to `on_exit`.
    pub(crate) async fn start(
        &self,
        request: ChildRequest,
        one_shot: bool,
        on_exit: OnExit,
    ) -> Result<Arc<ChildSlot>> {
        let name = request.name.clone();
        let placement = request.program.placement().to_string();
        // A child that cannot start fails this call with its own error, and only this call:
        // the caller decides what it means for the nursery (`?` closes it with the error).
        let started = spawn_child(&self.core, request)
            .await
            .map_err(|cause| match cause {
                spawn @ Error::Spawn { .. } => spawn,
                cause => Error::Spawn {
                    actor: name.clone(),
                    cause: Box::new(cause),
                },
            })?;
        let slot = Arc::new(ChildSlot {
            uid: started.uid,
            portal: started.portal,
            pid: started.process.id(),
            exited: CancellationToken::new(),
            reaped: AtomicBool::new(false),
            signalled: AtomicBool::new(false),
            expected: AtomicBool::new(false),
            one_shot,
            on_exit,
            placement,
        });
        {
            let mut children = lock(&self.state.children);
            children.push(slot.clone());
        }
        self.core.io_tasks.spawn(supervise(
            slot.clone(),
            started.process,
            started.lifeline,
            self.state.clone(),
        ));
        let torn_down = self.state.tearing_down.load(Ordering::Acquire);
        if torn_down || (self.state.failed.is_cancelled() && !one_shot) {
            // Teardown began (or a failure cancels daemons): this child goes down too.
            slot.stop().await;
            let cause = lock(&self.state.errors)
                .first()
                .map(|first| format!(" after: {first}"))
                .unwrap_or_default();
            return Err(Error::Usage(format!(
                "child {name} was stopped at once: the nursery is being torn down{cause}"
            )));
        }
        Ok(slot)
    }
}

/// Counts a running one-shot until dropped.
struct OneShotCount(Arc<State>);

impl Drop for OneShotCount {
    fn drop(&mut self) {
        self.0.one_shots.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

/// A set of child actors that live and die together.
pub struct Nursery {
    core: Arc<ActorCore>,
    state: Arc<State>,
}

impl std::fmt::Debug for Nursery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nursery")
            .field("children", &self.state.snapshot().len())
            .finish()
    }
}

/// A daemon child being started; `.enable(ns)` the namespaces it serves, then `.await` it.
#[must_use = "a child starts when awaited"]
pub struct StartActor<'a> {
    nursery: &'a Nursery,
    request: ChildRequest,
}

impl StartActor<'_> {
    /// Lets the child serve namespace `ns`.
    pub fn enable(mut self, ns: impl Into<String>) -> Self {
        self.request.enable.push(ns.into());
        self
    }

    /// Runs another program as the child (default: this program, re-launched).
    pub fn program(mut self, program: Program) -> Self {
        self.request.program = program;
        self
    }

    /// How many blocking invocations the child runs at once (default: its CPUs).
    pub fn thread_slots(mut self, slots: usize) -> Self {
        let program = std::mem::take(&mut self.request.program);
        self.request.program = program.env(
            crate::tree::actor::THREAD_SLOTS_ENV,
            slots.max(1).to_string(),
        );
        self
    }

    /// The child's log filter (default: this process's).
    pub fn log(mut self, filter: impl Into<String>) -> Self {
        self.request.log = Some(filter.into());
        self
    }

    /// Runs the child on `host` (see [`Program::host`]; a later [`StartActor::program`]
    /// brings its own placement).
    pub fn host(mut self, host: crate::tree::hosts::Host) -> Self {
        let program = std::mem::take(&mut self.request.program);
        self.request.program = program.host(host);
        self
    }
}

impl<'a> IntoFuture for StartActor<'a> {
    type Output = Result<Portal>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Portal>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            self.nursery
                .start(self.request, false)
                .await
                .map(|c| c.portal.clone())
        })
    }
}

/// A one-shot child's result, readable after the nursery closed.
pub struct OneShot<T> {
    task: JoinHandle<Result<Payload>>,
    _output: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for OneShot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneShot")
    }
}

impl<T: DeserializeOwned> OneShot<T> {
    /// The function's result (or its error, which the nursery also reports).
    pub async fn result(self) -> Result<T> {
        match self.task.await {
            Ok(outcome) => Ok(outcome?.decode()?),
            Err(_) => Err(Error::Cancelled),
        }
    }
}

impl Nursery {
    /// Starts a daemon child called `name`; configure it, then `.await` the portal.
    pub fn start_actor(&self, name: impl Into<String>) -> StartActor<'_> {
        StartActor {
            nursery: self,
            request: ChildRequest {
                name: name.into(),
                enable: Vec::new(),
                program: Program::default(),
                log: None,
            },
        }
    }

    /// Starts a one-shot child called `name` that runs `call` and exits; its namespace is
    /// enabled automatically.
    pub async fn run_in_actor<F: RemoteFn>(
        &self,
        name: impl Into<String>,
        call: F,
    ) -> Result<OneShot<F::Output>> {
        let kwargs = Payload::encode(&call)?;
        // Counted from before its spawn: a failure elsewhere meanwhile gives it the one-shots'
        // grace instead of tearing the nursery down under its start.
        self.state.one_shots.fetch_add(1, Ordering::AcqRel);
        let counted = OneShotCount(self.state.clone());
        let child = self
            .start(
                ChildRequest {
                    name: name.into(),
                    enable: vec![F::NS.to_owned()],
                    program: Program::default(),
                    log: None,
                },
                true,
            )
            .await?;
        let state = self.state.clone();
        let task = self.core.io_tasks.spawn(async move {
            // However this task ends (even aborted), `close` stops waiting for it.
            let _counted = counted;
            let outcome = child.portal.run_payload(F::NS, F::NAME, kwargs).await;
            match &outcome {
                // A lost connection is what a crash looks like from here: the supervisor
                // reports it with the exit status.
                Err(e) if is_consequence(e) => child.exited.cancelled().await,
                Err(e) => state.fail(e.duplicate()),
                Ok(_) => {}
            }
            // Done: the child exits.
            child.expected.store(true, Ordering::Release);
            child.stop().await;
            outcome
        });
        Ok(OneShot {
            task,
            _output: PhantomData,
        })
    }

    /// The actor this nursery belongs to.
    pub(crate) fn core(&self) -> &Arc<ActorCore> {
        &self.core
    }

    /// What starts children for this nursery from elsewhere (a team recruiting members).
    pub(crate) fn recruiter(&self) -> Recruiter {
        Recruiter {
            core: self.core.clone(),
            state: self.state.clone(),
        }
    }

    async fn start(&self, request: ChildRequest, one_shot: bool) -> Result<Arc<ChildSlot>> {
        self.recruiter()
            .start(request, one_shot, OnExit::FailNursery)
            .await
    }

    /// Completes at the nursery's first failure (to stop waiting on other work).
    pub async fn failed(&self) {
        self.state.failed.cancelled().await
    }

    /// Cancels every child now (escalating) and waits until all are reaped.
    pub async fn cancel(&self) {
        self.state.teardown().await;
    }

    /// Waits for every one-shot child to finish (or the first failure), cancels the daemons,
    /// reaps everything, and reports every error that happened.
    pub async fn close(self) -> Result<()> {
        // One-shots finish their function (after a failure, within the grace the failure's
        // teardown gives them, after which it cancels them).
        loop {
            let changed = self.state.changed.notified();
            if self.state.one_shots.load(Ordering::Acquire) == 0 {
                break;
            }
            changed.await;
        }
        self.state.teardown().await;
        let mut errors = std::mem::take(&mut *lock(&self.state.errors));
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Group(errors)),
        }
    }
}

impl Drop for Nursery {
    fn drop(&mut self) {
        // Dropped without close, or while closing (a timeout around `close`): no graceful path
        // is possible here; kill every child still running, now.
        self.state.tearing_down.store(true, Ordering::Release);
        for child in self.state.snapshot() {
            if !child.exited.is_cancelled() {
                child.expected.store(true, Ordering::Release);
                child.signal(platform::kill_now);
            }
        }
    }
}

/// Waits for a child's process to exit, reaps it, and reports a failure: a child that said why
/// it could not start, a non-zero exit status, death by a signal this side did not send, or any
/// exit nobody asked for. Failures are reported even during teardown: they are causes.
///
/// A child that falls silent (missed heartbeats: stopped, hung) while its process lives is
/// killed and reported as lost: it can no longer be supervised.
async fn supervise(
    slot: Arc<ChildSlot>,
    mut process: tokio::process::Child,
    lifeline: Option<tokio::process::ChildStdin>,
    state: Arc<State>,
) {
    let mut lost = None;
    let status = tokio::select! {
        status = process.wait() => status,
        () = until_silent(&slot.portal) => {
            lost = slot.portal.disconnected_detail();
            if let Some(pid) = slot.pid {
                warn!(child = %slot.uid, pid, "the child fell silent; killing it");
                platform::kill_now(pid);
            }
            process.wait().await
        }
    };
    // The launcher is gone: the session it carried is too.
    drop(lifeline);
    slot.reaped.store(true, Ordering::Release);
    // Let the connection's reader take in what the child sent before exiting (a startup error
    // arrives just before the end of the stream).
    let _ = tokio::time::timeout(Duration::from_millis(500), slot.portal.closed()).await;
    let asked = slot.expected.load(Ordering::Acquire) || state.tearing_down.load(Ordering::Acquire);
    let crashed = match &status {
        Ok(status) => match (status.code(), slot.signalled.load(Ordering::Acquire)) {
            (Some(0), _) => !asked,
            (Some(_), _) => true,
            (None, signalled) => !signalled,
        },
        Err(_) => true,
    };
    let error = match slot.portal.runtime_error() {
        _ if lost.is_some() => Some(Error::ChildUnresponsive {
            actor: slot.uid.name.clone(),
            pid: slot.pid,
            detail: lost.unwrap_or_default(),
        }),
        Some(info) => Some(Error::Remote(RemoteActorError::from_info(info, &slot.uid))),
        None if crashed => Some(Error::ChildExited {
            actor: slot.uid.name.clone(),
            pid: slot.pid,
            exit: platform::child_exit(&status),
        }),
        None => None,
    };
    match &slot.on_exit {
        OnExit::FailNursery => {
            if let Some(error) = error {
                state.fail(error);
            }
        }
        OnExit::Report(to) => {
            let clean = matches!(&status, Ok(s) if s.code() == Some(0)) || (asked && !crashed);
            let _ = to.send(ChildEnded {
                uid: slot.uid.clone(),
                asked,
                clean,
                error,
            });
        }
    }
    // Only now: teardown waits for this, and must find the error recorded.
    slot.exited.cancel();
    // Gone: no teardown needs it any more (a team's churn of members does not pile up).
    lock(&state.children).retain(|child| !Arc::ptr_eq(child, &slot));
    state.changed.notify_waiters();
}

/// Completes once the child's connection was shut for missed heartbeats; never otherwise.
async fn until_silent(portal: &Portal) {
    portal.closed().await;
    if !portal.heartbeat_lost() {
        std::future::pending::<()>().await;
    }
}

impl GracefulTeardown for State {
    fn teardown(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(State::teardown(self))
    }

    fn children(&self) -> Vec<crate::runtime::ChildReport> {
        self.snapshot()
            .iter()
            .filter(|child| !child.exited.is_cancelled())
            .map(|child| crate::runtime::ChildReport {
                name: child.uid.name.clone(),
                uuid: child.uid.uuid.clone(),
                pid: child.pid,
                placement: child.placement.clone(),
            })
            .collect()
    }
}
