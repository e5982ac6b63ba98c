//! The team's one owner of state: a task in the parent that hands tasks to free members,
//! assesses each attempt's end, retries what can be retried, replaces members that die, and
//! reports exactly one outcome per task. Everything reaches it as a message (a command, an
//! attempt's end, a recruit's end, a member's exit), so no two of them race.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use actor_ipc::Payload;
use futures::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use tokio::{
    sync::{broadcast, mpsc, oneshot},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{
    outcome::{Attempt, MemberState, Outcome, Task, TaskId, TaskState, TeamEvent, TeamStatus},
    policy::{Failure, RetryPolicy, random},
};
use crate::{
    base::error::{Error, Result},
    tree::{
        nursery::{ChildEnded, ChildSlot, OnExit, Recruiter},
        spawn::{ChildRequest, Program},
    },
};

/// How many recruitments in a row may fail before the team gives up on replacing members.
const MAX_RECRUIT_FAILURES: u32 = 5;

/// What the team's handles ask of the dispatcher.
pub(crate) enum Command {
    /// Run `task` (numbered `id`) and report its outcome to `sink`.
    Submit { id: TaskId, task: Task, sink: Sink },
    /// Forget these tasks: their outcomes are no longer wanted.
    Cancel(Vec<TaskId>),
    /// Report the team's state.
    Status(oneshot::Sender<TeamStatus>),
    /// Finish the tasks (cancel those left after `grace`), then stop every member.
    Dismiss {
        grace: Duration,
        done: oneshot::Sender<TeamStatus>,
    },
}

/// Where a task's outcome goes.
pub(crate) enum Sink {
    /// One task's waiter.
    One(oneshot::Sender<RawOutcome>),
    /// A stream of outcomes.
    Many(mpsc::UnboundedSender<RawOutcome>),
}

/// A task's outcome, its result still encoded.
pub(crate) type RawOutcome = Outcome<Payload>;

/// How members are recruited.
pub(crate) struct MemberSpec {
    pub(crate) prefix: String,
    pub(crate) enable: Vec<String>,
    pub(crate) program: Program,
    pub(crate) slots: usize,
}

impl MemberSpec {
    pub(crate) fn request(&self, name: &str) -> ChildRequest {
        ChildRequest {
            name: name.to_owned(),
            enable: self.enable.clone(),
            program: self.program.clone(),
            log: None,
        }
    }
}

/// One member, as the dispatcher keeps it.
struct Member {
    name: String,
    state: MemberState,
    slot: Option<Arc<ChildSlot>>,
    /// Attempts running on it.
    running: usize,
    /// Killed by the team for hanging past a task's deadline.
    killed: bool,
}

/// A task not yet ended.
struct TaskRun {
    task: Task,
    attempts: Vec<Attempt>,
    sink: Option<Sink>,
    /// A retry waits until then.
    not_before: Option<Instant>,
    /// The attempt in flight, if one is.
    running: Option<Running>,
}

struct Running {
    attempt: u32,
    stop: CancellationToken,
}

/// An attempt's end: `None` when it was cancelled.
struct AttemptDone {
    task: TaskId,
    attempt: u32,
    member: usize,
    result: Option<Result<Payload>>,
}

/// A recruit's end: the member's index and its started process.
type Recruited = (usize, Result<Arc<ChildSlot>>);

pub(crate) struct Dispatcher {
    spec: MemberSpec,
    policy: RetryPolicy,
    recruiter: Recruiter,
    members: Vec<Member>,
    tasks: HashMap<TaskId, TaskRun>,
    queue: VecDeque<TaskId>,
    attempts: FuturesUnordered<BoxFuture<'static, AttemptDone>>,
    recruits: FuturesUnordered<BoxFuture<'static, Recruited>>,
    exits: mpsc::UnboundedSender<ChildEnded>,
    events: broadcast::Sender<TeamEvent>,
    status: TeamStatus,
    /// The number of the next member recruited.
    next_member: usize,
    recruit_failures: u32,
    /// Set once dismissal began: until then, the deadline for the tasks left.
    dismissing: Option<(Instant, Vec<oneshot::Sender<TeamStatus>>)>,
    /// Set once the team has no member and can recruit none (why): tasks fail from then on.
    no_members: Option<String>,
}

impl Dispatcher {
    /// A dispatcher over members already started (`started`, numbered from 1).
    pub(crate) fn new(
        spec: MemberSpec,
        policy: RetryPolicy,
        recruiter: Recruiter,
        started: Vec<Arc<ChildSlot>>,
        exits: mpsc::UnboundedSender<ChildEnded>,
        events: broadcast::Sender<TeamEvent>,
    ) -> Self {
        let members: Vec<Member> = started
            .into_iter()
            .map(|slot| Member {
                name: slot.uid.name.clone(),
                state: MemberState::Ready,
                slot: Some(slot),
                running: 0,
                killed: false,
            })
            .collect();
        let next_member = members.len() + 1;
        Self {
            spec,
            policy,
            recruiter,
            members,
            tasks: HashMap::new(),
            queue: VecDeque::new(),
            attempts: FuturesUnordered::new(),
            recruits: FuturesUnordered::new(),
            exits,
            events,
            status: TeamStatus::default(),
            next_member,
            recruit_failures: 0,
            dismissing: None,
            no_members: None,
        }
    }

    /// Runs until the team is dismissed, dropped, or every handle is gone.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut exits: mpsc::UnboundedReceiver<ChildEnded>,
        dropped: CancellationToken,
    ) {
        for member in &self.members {
            self.emit(TeamEvent::Member {
                member: member.name.clone(),
                state: MemberState::Ready,
            });
        }
        loop {
            self.dispatch();
            if self.dismissal_due() {
                self.finish_dismissal().await;
                break;
            }
            let wake_at = self.next_wake();
            tokio::select! {
                biased;
                () = dropped.cancelled() => {
                    self.abort();
                    break;
                }
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => {
                        self.abort();
                        break;
                    }
                },
                Some(done) = self.attempts.next(), if !self.attempts.is_empty() => {
                    self.attempt_done(done);
                }
                Some((member, started)) = self.recruits.next(), if !self.recruits.is_empty() => {
                    self.recruited(member, started);
                }
                Some(ended) = exits.recv() => self.member_ended(ended),
                () = sleep_until(wake_at) => {}
            }
        }
        self.drain(&mut commands);
    }

    fn emit(&self, event: TeamEvent) {
        // Nobody following is fine.
        let _ = self.events.send(event);
    }

    fn set_member(&mut self, index: usize, state: MemberState) {
        if let Some(member) = self.members.get_mut(index)
            && member.state != state
        {
            member.state = state.clone();
            let name = member.name.clone();
            self.emit(TeamEvent::Member {
                member: name,
                state,
            });
        }
    }

    fn set_task(&self, task: TaskId, state: TaskState) {
        self.emit(TeamEvent::Task { task, state });
    }

    /// When the loop must wake on its own: the earliest retry, or the dismissal's deadline.
    fn next_wake(&self) -> Option<Instant> {
        // Only retries still waiting: a due one waiting for a member is woken by the member
        // (an attempt's end, a recruit, an exit), not by the clock.
        let now = Instant::now();
        let retry = self
            .queue
            .iter()
            .filter_map(|id| self.tasks.get(id).and_then(|run| run.not_before))
            .filter(|at| *at > now)
            .min();
        let dismissal = self.dismissing.as_ref().map(|(deadline, _)| *deadline);
        match (retry, dismissal) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Submit { id, task, sink } => {
                if let Some(why) = self.refusing() {
                    debug!(task = id, name = %task.name(), "task refused");
                    return self.refuse(id, sink, why);
                }
                self.tasks.insert(
                    id,
                    TaskRun {
                        task,
                        attempts: Vec::new(),
                        sink: Some(sink),
                        not_before: None,
                        running: None,
                    },
                );
                self.queue.push_back(id);
                self.set_task(id, TaskState::Pending);
            }
            Command::Cancel(ids) => {
                for id in ids {
                    self.cancel_task(id);
                }
            }
            Command::Status(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::Dismiss { grace, done } => match &mut self.dismissing {
                Some((_, waiters)) => waiters.push(done),
                None => {
                    // A grace too long to add is no deadline at all: a year will do.
                    let deadline = Instant::now()
                        .checked_add(grace)
                        .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 86_400));
                    self.dismissing = Some((deadline, vec![done]));
                }
            },
        }
    }

    /// Why no task is accepted now, if none is: the team is being dismissed, or it has no
    /// member left and can recruit none.
    fn refusing(&self) -> Option<Refusal> {
        if self.dismissing.is_some() {
            return Some(Refusal::Dismissing);
        }
        self.no_members.clone().map(Refusal::NoMembers)
    }

    /// Ends task `id` at once: cancelled by a dismissal, or failed for want of members.
    fn refuse(&mut self, id: TaskId, sink: Sink, why: Refusal) {
        let (result, state) = match why {
            Refusal::Dismissing => {
                self.status.cancelled += 1;
                (Err(Error::Cancelled), TaskState::Cancelled)
            }
            Refusal::NoMembers(why) => {
                self.status.failed += 1;
                (
                    Err(Error::Usage(format!("the team has no member left: {why}"))),
                    TaskState::Failed,
                )
            }
        };
        let outcome = RawOutcome {
            task: id,
            attempts: Vec::new(),
            result,
        };
        deliver(Some(sink), outcome);
        self.set_task(id, state);
    }

    fn snapshot(&self) -> TeamStatus {
        let mut status = self.status.clone();
        status.members = self
            .members
            .iter()
            .map(|m| (m.name.clone(), m.state.clone()))
            .collect();
        let mut tasks: Vec<(TaskId, TaskState)> = self
            .tasks
            .iter()
            .map(|(id, run)| {
                let state = match &run.running {
                    Some(running) => TaskState::Running {
                        member: run
                            .attempts_member(running.attempt)
                            .unwrap_or_default()
                            .to_owned(),
                        attempt: running.attempt,
                    },
                    None if run.attempts.is_empty() => TaskState::Pending,
                    None => TaskState::Retrying {
                        next: run.attempts.len() as u32 + 1,
                        after: run
                            .not_before
                            .map(|at| at.saturating_duration_since(Instant::now()))
                            .unwrap_or_default(),
                        error: run
                            .attempts
                            .last()
                            .and_then(|a| a.failure.clone())
                            .unwrap_or_default(),
                    },
                };
                (*id, state)
            })
            .collect();
        tasks.sort_by_key(|(id, _)| *id);
        status.tasks = tasks;
        status
    }

    /// A member with a free slot for a task that ran on `tried` before, the least busy first.
    /// A retry goes to a member it did not run on: it waits for one while one lives (busy or
    /// starting); only when none is left does it run again where it ran before.
    fn pick_member(&self, tried: &[Attempt]) -> Option<usize> {
        let ran_on = |m: &Member| tried.iter().any(|a| a.member == m.name);
        let untried_alive = self.members.iter().any(|m| {
            !ran_on(m)
                && matches!(
                    m.state,
                    MemberState::Ready | MemberState::Busy | MemberState::Starting
                )
        });
        self.members
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                matches!(m.state, MemberState::Ready | MemberState::Busy)
                    && m.slot.as_ref().is_some_and(|slot| !slot.portal.is_closed())
                    && m.running < self.spec.slots
                    && !(untried_alive && ran_on(m))
            })
            .min_by_key(|(index, m)| (m.running, *index))
            .map(|(index, _)| index)
    }

    /// Hands due tasks, in order, to free members.
    fn dispatch(&mut self) {
        if let Some(why) = self.no_members.clone() {
            let waiting: Vec<TaskId> = self.queue.drain(..).collect();
            for id in waiting {
                let error = Error::Usage(format!("the team has no member left: {why}"));
                self.finish(id, Err(error));
            }
            return;
        }
        let now = Instant::now();
        let mut waiting = VecDeque::with_capacity(self.queue.len());
        while let Some(id) = self.queue.pop_front() {
            let Some(run) = self.tasks.get(&id) else {
                continue;
            };
            if run.running.is_some() {
                continue;
            }
            if run.not_before.is_some_and(|at| at > now) {
                waiting.push_back(id);
                continue;
            }
            match self.pick_member(&run.attempts) {
                Some(member) => self.start_attempt(id, member),
                None if run.attempts.is_empty() => {
                    // No member is free for a first attempt: none is for those behind it.
                    waiting.push_back(id);
                    waiting.extend(self.queue.drain(..));
                }
                // A retry may wait for a member it has not run on while others go ahead.
                None => waiting.push_back(id),
            }
        }
        self.queue = waiting;
    }

    fn start_attempt(&mut self, id: TaskId, index: usize) {
        let Some(member) = self.members.get_mut(index) else {
            return;
        };
        let Some(slot) = member.slot.clone() else {
            return;
        };
        let Some(run) = self.tasks.get_mut(&id) else {
            return;
        };
        let attempt = run.attempts.len() as u32 + 1;
        let stop = CancellationToken::new();
        run.running = Some(Running {
            attempt,
            stop: stop.clone(),
        });
        run.not_before = None;
        // Recorded now, so the attempt's member is known while it runs; its end fills it in.
        run.attempts.push(Attempt {
            member: member.name.clone(),
            failure: None,
        });
        member.running += 1;
        if attempt > 1 {
            self.status.retries += 1;
        }
        let name = member.name.clone();
        let full = member.running >= self.spec.slots;
        let (ns, func, kwargs) = (
            run.task.ns.clone(),
            run.task.func.clone(),
            run.task.kwargs.clone(),
        );
        let deadline = self.policy.deadline;
        let what = format!("task {id} (`{ns}.{func}`) on member `{name}` did not finish");
        self.attempts.push(
            async move {
                let call = slot.portal.run_payload(&ns, &func, kwargs);
                let call = async {
                    match deadline {
                        Some(after) => match tokio::time::timeout(after, call).await {
                            Ok(result) => result,
                            Err(_) => Err(Error::Timeout { what, after }),
                        },
                        None => call.await,
                    }
                };
                let result = tokio::select! {
                    biased;
                    () = stop.cancelled() => None,
                    result = call => Some(result),
                };
                AttemptDone {
                    task: id,
                    attempt,
                    member: index,
                    result,
                }
            }
            .boxed(),
        );
        if full {
            self.set_member(index, MemberState::Busy);
        }
        self.set_task(
            id,
            TaskState::Running {
                member: name,
                attempt,
            },
        );
    }

    fn attempt_done(&mut self, done: AttemptDone) {
        if let Some(member) = self.members.get_mut(done.member) {
            member.running = member.running.saturating_sub(1);
            if member.state == MemberState::Busy && member.running < self.spec.slots {
                self.set_member(done.member, MemberState::Ready);
            }
        }
        let Some(result) = done.result else {
            return;
        };
        let current = self
            .tasks
            .get(&done.task)
            .and_then(|run| run.running.as_ref())
            .is_some_and(|running| running.attempt == done.attempt);
        if !current {
            // A late reply from an attempt already given up on: the task has moved on.
            debug!(
                task = done.task,
                attempt = done.attempt,
                "late reply discarded"
            );
            return;
        }
        let Some(run) = self.tasks.get_mut(&done.task) else {
            return;
        };
        run.running = None;
        let error = match result {
            Ok(value) => return self.finish(done.task, Ok(value)),
            Err(error) => error,
        };
        if let Some(last) = run.attempts.last_mut() {
            last.failure = Some(error.to_string());
        }
        let attempts = run.attempts.len() as u32;
        let retry = self.policy.classify(&error) == Failure::Recoverable
            && attempts < self.policy.max_attempts;
        let next = attempts + 1;
        let after = self.policy.backoff_before(next, random());
        if retry {
            run.not_before = Instant::now().checked_add(after);
        }
        match &error {
            // Hung past the deadline: it may never answer again.
            Error::Timeout { .. } => self.kill_member(done.member, "a task passed its deadline"),
            // Its connection is gone: it can take no task; its exit (or the kill) replaces it.
            Error::Disconnected { .. } | Error::Connect(_) => {
                self.kill_member(done.member, "its connection was lost");
            }
            _ => {}
        }
        if !retry {
            return self.finish(done.task, Err(error));
        }
        self.queue.push_back(done.task);
        self.set_task(
            done.task,
            TaskState::Retrying {
                next,
                after,
                error: error.to_string(),
            },
        );
    }

    /// Ends a task with its one outcome.
    fn finish(&mut self, id: TaskId, result: Result<Payload>) {
        let Some(run) = self.tasks.remove(&id) else {
            return;
        };
        let state = if result.is_ok() {
            self.status.succeeded += 1;
            TaskState::Succeeded
        } else {
            self.status.failed += 1;
            TaskState::Failed
        };
        deliver(
            run.sink,
            RawOutcome {
                task: id,
                attempts: run.attempts,
                result,
            },
        );
        self.set_task(id, state);
    }

    fn cancel_task(&mut self, id: TaskId) {
        let Some(run) = self.tasks.remove(&id) else {
            return;
        };
        let mut attempts = run.attempts;
        if let Some(running) = &run.running {
            // Its attempt's call is dropped: the member is asked to cancel it.
            running.stop.cancel();
            if let Some(last) = attempts.last_mut() {
                last.failure = Some("cancelled".into());
            }
        }
        self.status.cancelled += 1;
        deliver(
            run.sink,
            RawOutcome {
                task: id,
                attempts,
                result: Err(Error::Cancelled),
            },
        );
        self.set_task(id, TaskState::Cancelled);
    }

    /// Kills member `index` (for `why`) and takes it out of service; its exit replaces it.
    fn kill_member(&mut self, index: usize, why: &str) {
        if let Some(member) = self.members.get_mut(index) {
            if member.killed || member.slot.is_none() {
                return;
            }
            member.killed = true;
            if let Some(slot) = &member.slot {
                warn!(member = %member.name, "{why}: killing the member");
                slot.kill();
            }
        }
        // No new task goes there meanwhile.
        self.set_member(index, MemberState::Dead);
    }

    fn member_ended(&mut self, ended: ChildEnded) {
        let Some(index) = self
            .members
            .iter()
            .position(|m| m.slot.as_ref().is_some_and(|s| s.uid == ended.uid))
        else {
            return;
        };
        let state = if self.members[index].killed {
            MemberState::Dead
        } else if ended.asked {
            // Stopped by this side: a dismissal, or its nursery closing under the team.
            MemberState::Dismissed
        } else if ended.clean {
            MemberState::Resigned
        } else {
            MemberState::Dead
        };
        debug!(member = %self.members[index].name, ?state, error = ?ended.error, "member ended");
        self.members[index].slot = None;
        // Emitted even if it was already marked dead when it was killed: it is gone now.
        self.members[index].state = MemberState::Starting;
        self.set_member(index, state.clone());
        if matches!(state, MemberState::Dead | MemberState::Resigned)
            && self.replace(index, Duration::ZERO)
        {
            self.status.replaced += 1;
        }
        self.check_members("every member ended and none can be recruited");
    }

    /// Recruits a member in place of member `index`, after `delay`; false if none is (the team
    /// is being dismissed, or its nursery is closing).
    fn replace(&mut self, index: usize, delay: Duration) -> bool {
        if self.dismissing.is_some() {
            return false;
        }
        if self.recruiter.tearing_down() {
            return false;
        }
        let name = format!("{}-{}", self.spec.prefix, self.next_member);
        self.next_member += 1;
        self.set_member(index, MemberState::Replaced { by: name.clone() });
        let new = self.members.len();
        self.members.push(Member {
            name: name.clone(),
            state: MemberState::Starting,
            slot: None,
            running: 0,
            killed: false,
        });
        self.emit(TeamEvent::Member {
            member: name.clone(),
            state: MemberState::Starting,
        });
        let recruiter = self.recruiter.clone();
        let request = self.spec.request(&name);
        let on_exit = OnExit::Report(self.exits.clone());
        self.recruits.push(
            async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                (new, recruiter.start(request, false, on_exit).await)
            }
            .boxed(),
        );
        true
    }

    fn recruited(&mut self, index: usize, started: Result<Arc<ChildSlot>>) {
        match started {
            Ok(slot) => {
                // Even during a dismissal: it serves until the dismissal stops it with the rest.
                self.recruit_failures = 0;
                if let Some(member) = self.members.get_mut(index) {
                    member.slot = Some(slot);
                }
                self.set_member(index, MemberState::Ready);
            }
            Err(error) => {
                warn!(%error, "recruiting a member failed");
                self.set_member(index, MemberState::Dead);
                self.recruit_failures += 1;
                if self.recruit_failures <= MAX_RECRUIT_FAILURES {
                    let delay = self
                        .policy
                        .backoff_before(self.recruit_failures + 1, random());
                    self.replace(index, delay);
                }
                self.check_members(&format!("recruiting failed: {error}"));
            }
        }
    }

    /// When no member runs or is on its way, and none will be: the team can run nothing more,
    /// so every task waiting (and every task submitted from now on) fails, saying `why`.
    fn check_members(&mut self, why: &str) {
        let alive = self.members.iter().any(|m| {
            matches!(
                m.state,
                MemberState::Ready | MemberState::Busy | MemberState::Starting
            )
        });
        if alive || !self.recruits.is_empty() || self.no_members.is_some() {
            return;
        }
        self.no_members = Some(why.to_owned());
    }

    /// Whether dismissal may finish: every task ended, or its deadline passed.
    fn dismissal_due(&self) -> bool {
        match &self.dismissing {
            Some((deadline, _)) => self.tasks.is_empty() || Instant::now() >= *deadline,
            None => false,
        }
    }

    /// Cancels what is left, stops every member gracefully, waits until each is reaped.
    async fn finish_dismissal(&mut self) {
        let left: Vec<TaskId> = self.tasks.keys().copied().collect();
        for id in left {
            self.cancel_task(id);
        }
        // Recruits that already started are stopped with the rest; those still on their way
        // are dropped (a process being spawned is killed with its handle).
        while let Some(Some((index, started))) = self.recruits.next().now_or_never() {
            self.recruited(index, started);
        }
        self.recruits = FuturesUnordered::new();
        let slots: Vec<(usize, Arc<ChildSlot>)> = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.killed)
            .filter_map(|(index, m)| m.slot.clone().map(|slot| (index, slot)))
            .collect();
        futures::future::join_all(slots.iter().map(|(_, slot)| slot.stop())).await;
        for (index, _) in &slots {
            if let Some(member) = self.members.get_mut(*index) {
                member.slot = None;
            }
            self.set_member(*index, MemberState::Dismissed);
        }
        let status = self.snapshot();
        if let Some((_, waiters)) = self.dismissing.take() {
            for waiter in waiters {
                let _ = waiter.send(status.clone());
            }
        }
    }

    /// The team was dropped: every task is cancelled and every member killed now.
    fn abort(&mut self) {
        let left: Vec<TaskId> = self.tasks.keys().copied().collect();
        for id in left {
            self.cancel_task(id);
        }
        self.kill_all();
        // Recruits on their way are dropped: a process being spawned dies with its handle.
        self.recruits = FuturesUnordered::new();
    }

    /// Kills every member still running.
    fn kill_all(&mut self) {
        for member in &mut self.members {
            if let Some(slot) = member.slot.take() {
                slot.kill();
            }
        }
    }

    /// After the loop: what is still in the command channel gets its answer (a task submitted
    /// meanwhile is cancelled), and nothing more can be sent.
    fn drain(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) {
        commands.close();
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Submit { id, sink, .. } => self.refuse(id, sink, Refusal::Dismissing),
                Command::Cancel(_) => {}
                Command::Status(reply) => {
                    let _ = reply.send(self.snapshot());
                }
                Command::Dismiss { done, .. } => {
                    let _ = done.send(self.snapshot());
                }
            }
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        // However the dispatcher ends (a panic included), no member outlives it.
        self.kill_all();
    }
}

/// Why the team takes no task now.
#[derive(Debug)]
enum Refusal {
    /// It is being dismissed (or gone): the task is cancelled.
    Dismissing,
    /// It has no member left (why): the task fails.
    NoMembers(String),
}

impl TaskRun {
    /// The member of attempt `attempt` (from 1).
    fn attempts_member(&self, attempt: u32) -> Option<&str> {
        self.attempts
            .get(attempt.saturating_sub(1) as usize)
            .map(|a| a.member.as_str())
    }
}

fn deliver(sink: Option<Sink>, outcome: RawOutcome) {
    match sink {
        Some(Sink::One(to)) => {
            let _ = to.send(outcome);
        }
        Some(Sink::Many(to)) => {
            let _ = to.send(outcome);
        }
        None => {}
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
