//! Teams: crews of worker actors that execute tasks, retry what can be retried, and lose
//! nothing (the model of pyre's `Crew`).
//!
//! A team is recruited from a nursery ([`crate::Nursery::team`]): each member is a worker actor
//! in its own process, started like a daemon child, and supervised by the team in the parent.
//! Tasks are request/response calls (any `#[actor::remote]` function, or a Python worker's by
//! name). The team hands each task to a free member, and every task ends in exactly one
//! [`Outcome`]:
//! - a *recoverable* failure (the member died or its connection broke, the task's deadline
//!   passed, or the error's type is [`RECOVERABLE`] or in the team's retry list) is retried on
//!   another member, up to a limit, after a backoff with jitter;
//! - any other error is reported at once, with its remote trace;
//! - a late reply from an attempt already given up on is discarded;
//! - a member that dies is replaced by a newly recruited one; one that hangs past a task's
//!   deadline is killed and replaced.
//!
//! ```no_run
//! use futures::StreamExt;
//!
//! #[actor::remote(ns = "primes")]
//! async fn count_primes(from: u64, to: u64) -> u64 {
//!     (from..to).filter(|n| *n > 1 && (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0)).count() as u64
//! }
//!
//! # async fn demo() -> actor::Result<()> {
//! let nursery = actor::open_nursery().await?;
//! let team = nursery.team("worker").enable("primes").members(4).recruit().await?;
//! // One task:
//! assert_eq!(team.execute(count_primes { from: 0, to: 100 }).await?, 25);
//! // Many, at most 64 in flight, outcomes in completion order:
//! let ranges = (0..100).map(|i| count_primes { from: i * 1000, to: (i + 1) * 1000 });
//! let mut outcomes = team.map(ranges);
//! let mut total = 0;
//! while let Some(outcome) = outcomes.next().await {
//!     total += outcome.result?;
//! }
//! assert_eq!(total, 9592);
//! team.dismiss(std::time::Duration::from_secs(5)).await;
//! nursery.close().await?;
//! # Ok(()) }
//! ```

mod dispatcher;
mod outcome;
mod policy;

use std::{
    collections::HashSet,
    marker::PhantomData,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context as TaskContext, Poll},
    time::Duration,
};

use actor_ipc::{Payload, Value};
use futures::Stream;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use self::dispatcher::{Command, Dispatcher, MemberSpec, RawOutcome, Sink};
pub use self::{
    outcome::{Attempt, MemberState, Outcome, Task, TaskId, TaskState, TeamEvent, TeamStatus},
    policy::{RECOVERABLE, RetryPolicy},
};
use crate::{
    base::error::{Error, Result},
    base::lock,
    calls::registry::RemoteFn,
    tree::{
        nursery::{ChildSlot, Nursery, OnExit},
        spawn::Program,
    },
};

/// How many events a follower may fall behind before it misses some.
const EVENT_BUFFER: usize = 4096;

/// A team being described: `nursery.team("worker").enable("ns").members(4).recruit().await`.
#[must_use = "a team is recruited when `recruit` is awaited"]
pub struct TeamBuilder<'a> {
    nursery: &'a Nursery,
    prefix: String,
    members: usize,
    slots: usize,
    enable: Vec<String>,
    program: Program,
    policy: RetryPolicy,
    max_in_flight: usize,
}

impl std::fmt::Debug for TeamBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamBuilder")
            .field("prefix", &self.prefix)
            .field("members", &self.members)
            .finish()
    }
}

impl Nursery {
    /// Starts describing a team of worker actors in this nursery, named `prefix-1`,
    /// `prefix-2`, ... (replacements continue the numbering).
    pub fn team(&self, prefix: impl Into<String>) -> TeamBuilder<'_> {
        TeamBuilder {
            nursery: self,
            prefix: prefix.into(),
            members: 2,
            slots: 1,
            enable: Vec::new(),
            program: Program::default(),
            policy: RetryPolicy::default(),
            max_in_flight: 64,
        }
    }
}

impl TeamBuilder<'_> {
    /// How many members (default 2).
    pub fn members(mut self, members: usize) -> Self {
        self.members = members.max(1);
        self
    }

    /// How many tasks each member runs at once (default 1).
    pub fn slots(mut self, slots: usize) -> Self {
        self.slots = slots.max(1);
        self
    }

    /// A namespace the members serve (their tasks' functions are in it).
    pub fn enable(mut self, ns: impl Into<String>) -> Self {
        self.enable.push(ns.into());
        self
    }

    /// The program members run (default: this one; `Program::tractor` for Python workers).
    pub fn program(mut self, program: Program) -> Self {
        self.program = program;
        self
    }

    /// Retries remote errors of this type (`type_str`: a Python exception's class name, or the
    /// type a Rust function raises with [`Error::raise`]), besides [`RECOVERABLE`].
    pub fn retry_on(mut self, type_str: impl Into<String>) -> Self {
        self.policy.retry_on.insert(type_str.into());
        self
    }

    /// Attempts a task gets in all, the first included (default 3).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.policy.max_attempts = attempts.max(1);
        self
    }

    /// The wait before the first retry (doubled for each further one, with ±50% jitter) and
    /// the longest wait (defaults 50 ms and 5 s).
    pub fn backoff(mut self, first: Duration, longest: Duration) -> Self {
        self.policy.backoff = first;
        self.policy.max_backoff = longest.max(first);
        self
    }

    /// How long one attempt may run: past it, the attempt fails (recoverably) and its member,
    /// presumed hung, is killed and replaced (default: no deadline).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.policy.deadline = Some(deadline);
        self
    }

    /// How many tasks of one [`Team::map`] are submitted and not yet ended at once (default 64).
    pub fn max_in_flight(mut self, tasks: usize) -> Self {
        self.max_in_flight = tasks.max(1);
        self
    }

    /// Starts every member and returns once all have checked in (started and serving). If one
    /// cannot start, the others are stopped and its error is returned.
    pub async fn recruit(self) -> Result<Team> {
        let recruiter = self.nursery.recruiter();
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        let spec = MemberSpec {
            prefix: self.prefix,
            enable: self.enable,
            program: self.program,
            slots: self.slots,
        };
        // Members started so far are killed if this future is dropped before the team exists.
        let guard = KillUnlessKept::default();
        let starts = (1..=self.members).map(|n| {
            let request = spec.request(&format!("{}-{n}", spec.prefix));
            let started = recruiter.start(request, false, OnExit::Report(exits_tx.clone()));
            let guard = &guard;
            async move {
                let slot = started.await?;
                lock(&guard.0).push(slot.clone());
                Ok::<_, Error>(slot)
            }
        });
        let started = futures::future::join_all(starts).await;
        let mut members = Vec::with_capacity(started.len());
        let mut failure = None;
        for member in started {
            match member {
                Ok(slot) => members.push(slot),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if let Some(error) = failure {
            futures::future::join_all(members.iter().map(|slot| slot.stop())).await;
            return Err(error);
        }
        lock(&guard.0).clear();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let dropped = CancellationToken::new();
        let dispatcher = Dispatcher::new(
            spec,
            self.policy,
            recruiter,
            members,
            exits_tx,
            events.clone(),
        );
        self.nursery
            .core()
            .io_tasks
            .spawn(dispatcher.run(commands_rx, exits_rx, dropped.clone()));
        Ok(Team {
            commands,
            events,
            next_task: Arc::new(AtomicU64::new(1)),
            max_in_flight: self.max_in_flight,
            _dropped: dropped.drop_guard(),
        })
    }
}

/// Members started by a `recruit` not yet finished: killed if it is dropped midway.
#[derive(Default)]
struct KillUnlessKept(std::sync::Mutex<Vec<Arc<ChildSlot>>>);

impl Drop for KillUnlessKept {
    fn drop(&mut self) {
        for slot in lock(&self.0).drain(..) {
            slot.kill();
        }
    }
}

/// A team of worker actors (see the [module documentation](self)). Dropping it cancels every
/// task and kills every member; [`Team::dismiss`] ends it gracefully.
pub struct Team {
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<TeamEvent>,
    next_task: Arc<AtomicU64>,
    max_in_flight: usize,
    _dropped: DropGuard,
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Team")
            .field("tasks", &(self.next_task.load(Ordering::Relaxed) - 1))
            .finish()
    }
}

impl Team {
    fn submit(&self, task: Task, sink: Sink) -> TaskId {
        let id = self.next_task.fetch_add(1, Ordering::Relaxed);
        let _ = self.commands.send(Command::Submit { id, task, sink });
        id
    }

    /// Runs one task and returns its result. If the task fails, the error is an
    /// [`Error::TaskFailed`] naming the task and the members its attempts ran on; arguments
    /// that cannot be encoded fail with their encoding error before any task is made.
    pub async fn execute<F: RemoteFn>(&self, call: F) -> Result<F::Output> {
        let outcome = self.run(Task::call(&call)?).await;
        decode(outcome).into_result()
    }

    /// Runs one task given by name ([`Task::from_ns`]) and returns its outcome, with the result
    /// as a dynamic value.
    pub async fn run(&self, task: Task) -> Outcome<Payload> {
        let (to, outcome) = oneshot::channel();
        let id = self.submit(task, Sink::One(to));
        let cancel_on_drop = CancelOnDrop {
            commands: self.commands.clone(),
            task: Some(id),
        };
        let outcome = match outcome.await {
            Ok(outcome) => outcome,
            Err(_) => Outcome {
                task: id,
                attempts: Vec::new(),
                result: Err(Error::Cancelled),
            },
        };
        cancel_on_drop.disarm();
        outcome
    }

    /// Runs many calls, at most `max_in_flight` at once, and streams their outcomes in the
    /// order they end. Like any stream it works when polled: tasks are submitted as it is read
    /// (up to `max_in_flight` ahead). Dropping it cancels the tasks it has not reported.
    pub fn map<F, I>(&self, calls: I) -> Outcomes<F::Output>
    where
        F: RemoteFn + 'static,
        I: IntoIterator<Item = F>,
        I::IntoIter: Send + 'static,
    {
        self.outcomes(Box::new(calls.into_iter().map(|call| Task::call(&call))))
    }

    /// [`Team::map`] for tasks given by name: results as dynamic values.
    pub fn map_tasks<I>(&self, tasks: I) -> Outcomes<Value>
    where
        I: IntoIterator<Item = Task>,
        I::IntoIter: Send + 'static,
    {
        self.outcomes(Box::new(tasks.into_iter().map(Ok)))
    }

    fn outcomes<T>(&self, tasks: Box<dyn Iterator<Item = Result<Task>> + Send>) -> Outcomes<T> {
        let (to, from) = mpsc::unbounded_channel();
        Outcomes {
            commands: self.commands.clone(),
            next_task: self.next_task.clone(),
            tasks: Some(tasks),
            in_flight: HashSet::new(),
            max_in_flight: self.max_in_flight,
            to: Some(to),
            from,
            _output: PhantomData,
        }
    }

    /// Every change of a task or a member from now on, as it happens (a follower that falls
    /// more than 4096 events behind gets [`TeamEvent::Lagged`] and goes on).
    pub fn events(&self) -> impl Stream<Item = TeamEvent> + Send + 'static {
        let receiver = self.events.subscribe();
        futures::stream::unfold(receiver, |mut receiver| async move {
            match receiver.recv().await {
                Ok(event) => Some((event, receiver)),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Some((TeamEvent::Lagged { missed }, receiver))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
    }

    /// The team's state now: its members, its tasks not yet ended, its counts.
    pub async fn status(&self) -> TeamStatus {
        let (to, status) = oneshot::channel();
        let _ = self.commands.send(Command::Status(to));
        status.await.unwrap_or_default()
    }

    /// Ends the team gracefully: tasks submitted go on for up to `grace`, those left are
    /// cancelled, then every member is stopped (the cancel call, SIGTERM, SIGKILL) and reaped.
    /// Returns the team's final state.
    pub async fn dismiss(self, grace: Duration) -> TeamStatus {
        let (to, done) = oneshot::channel();
        let _ = self.commands.send(Command::Dismiss { grace, done: to });
        done.await.unwrap_or_default()
    }
}

/// Cancels a task when a waiter for it is dropped before its outcome.
struct CancelOnDrop {
    commands: mpsc::UnboundedSender<Command>,
    task: Option<TaskId>,
}

impl CancelOnDrop {
    fn disarm(mut self) {
        self.task = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            let _ = self.commands.send(Command::Cancel(vec![task]));
        }
    }
}

/// The outcome of task `id` that never ran.
fn unstarted(id: TaskId, error: Error) -> Outcome<Payload> {
    Outcome {
        task: id,
        attempts: Vec::new(),
        result: Err(error),
    }
}

/// Decodes an outcome's result into `T`.
fn decode<T: DeserializeOwned>(outcome: Outcome<Payload>) -> Outcome<T> {
    Outcome {
        task: outcome.task,
        attempts: outcome.attempts,
        result: outcome
            .result
            .and_then(|payload| payload.decode().map_err(Error::from)),
    }
}

/// The outcomes of a [`Team::map`], in the order the tasks end. Dropping it cancels the tasks
/// it has not reported.
pub struct Outcomes<T> {
    commands: mpsc::UnboundedSender<Command>,
    next_task: Arc<AtomicU64>,
    tasks: Option<Box<dyn Iterator<Item = Result<Task>> + Send>>,
    in_flight: HashSet<TaskId>,
    max_in_flight: usize,
    /// Held while tasks remain to submit; then only the tasks' sinks (in the dispatcher) hold
    /// the channel, so it ends once every one of them has answered or is gone.
    to: Option<mpsc::UnboundedSender<RawOutcome>>,
    from: mpsc::UnboundedReceiver<RawOutcome>,
    _output: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Outcomes<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcomes")
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl<T> Outcomes<T> {
    /// Submits tasks until `max_in_flight` are in flight or there are none left; a task that
    /// cannot even be encoded ends at once with its error.
    fn top_up(&mut self) -> Option<Outcome<Payload>> {
        while self.in_flight.len() < self.max_in_flight {
            let (Some(tasks), Some(to)) = (&mut self.tasks, &self.to) else {
                return None;
            };
            let Some(next) = tasks.next() else {
                self.tasks = None;
                self.to = None;
                return None;
            };
            let id = self.next_task.fetch_add(1, Ordering::Relaxed);
            let task = match next {
                Ok(task) => task,
                Err(error) => return Some(unstarted(id, error)),
            };
            let sink = Sink::Many(to.clone());
            if self
                .commands
                .send(Command::Submit { id, task, sink })
                .is_err()
            {
                // The team is gone: nothing more is submitted.
                self.tasks = None;
                self.to = None;
                return Some(unstarted(id, Error::Cancelled));
            }
            self.in_flight.insert(id);
        }
        None
    }
}

impl<T: DeserializeOwned> Stream for Outcomes<T> {
    type Item = Outcome<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Outcome<T>>> {
        let this = self.get_mut();
        if let Some(unencodable) = this.top_up() {
            return Poll::Ready(Some(decode(unencodable)));
        }
        if this.in_flight.is_empty() {
            return Poll::Ready(None);
        }
        match this.from.poll_recv(cx) {
            Poll::Ready(Some(outcome)) => {
                this.in_flight.remove(&outcome.task);
                Poll::Ready(Some(decode(outcome)))
            }
            // Every sink is gone without an answer (the team ended): the rest are cancelled.
            Poll::Ready(None) => match this.in_flight.iter().next().copied() {
                Some(id) => {
                    this.in_flight.remove(&id);
                    Poll::Ready(Some(decode(unstarted(id, Error::Cancelled))))
                }
                None => Poll::Ready(None),
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Drop for Outcomes<T> {
    fn drop(&mut self) {
        if !self.in_flight.is_empty() {
            let ids = self.in_flight.drain().collect();
            let _ = self.commands.send(Command::Cancel(ids));
        }
    }
}
