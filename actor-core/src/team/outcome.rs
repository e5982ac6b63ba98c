//! What a team reports: tasks and their outcomes, the states of tasks and members, and the
//! events a UI follows.

use std::time::Duration;

use actor_ipc::Payload;
use serde::Serialize;

use crate::{
    base::error::{Error, Result},
    calls::registry::RemoteFn,
};

/// A task's number in its team, in order of submission (from 1).
pub type TaskId = u64;

/// A unit of work for a team: one request/response call, by namespace and function name, with
/// its arguments encoded once (a retry sends the same bytes).
#[derive(Debug, Clone)]
pub struct Task {
    pub(crate) ns: String,
    pub(crate) func: String,
    pub(crate) kwargs: Payload,
}

impl Task {
    /// The task of a typed call: `Task::call(count_primes { from: 0, to: 1000 })`.
    pub fn call<F: RemoteFn>(call: &F) -> Result<Self> {
        Ok(Self {
            ns: F::NS.to_owned(),
            func: F::NAME.to_owned(),
            kwargs: Payload::encode(call)?,
        })
    }

    /// A task by name, with its arguments as a map (for functions without Rust types, such as a
    /// Python worker's).
    pub fn from_ns(ns: &str, func: &str, kwargs: &impl Serialize) -> Result<Self> {
        Ok(Self {
            ns: ns.to_owned(),
            func: func.to_owned(),
            kwargs: Payload::encode(kwargs)?,
        })
    }

    /// `ns.func`, for messages.
    pub(crate) fn name(&self) -> String {
        format!("{}.{}", self.ns, self.func)
    }
}

/// One attempt at a task: on which member, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The member that ran it.
    pub member: String,
    /// `None` if it succeeded; else why it failed.
    pub failure: Option<String>,
}

/// A task's end: exactly one per task submitted.
#[derive(Debug)]
pub struct Outcome<T> {
    /// The task.
    pub task: TaskId,
    /// Every attempt made, in order (empty if it was cancelled before its first).
    pub attempts: Vec<Attempt>,
    /// Its result, or the error of its last attempt (or why it never ran).
    pub result: Result<T>,
}

impl<T> Outcome<T> {
    /// The members that ran the task's attempts, in order.
    pub fn members(&self) -> Vec<&str> {
        self.attempts.iter().map(|a| a.member.as_str()).collect()
    }

    /// Whether it took more than one attempt.
    pub fn was_retried(&self) -> bool {
        self.attempts.len() > 1
    }

    /// The result, or an [`Error::TaskFailed`] naming the task and every attempt.
    pub fn into_result(self) -> Result<T> {
        match self.result {
            Ok(value) => Ok(value),
            Err(cause) => Err(Error::TaskFailed {
                task: self.task,
                members: self.attempts.into_iter().map(|a| a.member).collect(),
                cause: Box::new(cause),
            }),
        }
    }
}

/// Where a task is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskState {
    /// Waiting for a free member.
    Pending,
    /// Running on `member`, attempt `attempt` (from 1).
    Running {
        /// The member running it.
        member: String,
        /// Which attempt this is.
        attempt: u32,
    },
    /// Its last attempt failed recoverably; attempt `next` starts after `after`.
    Retrying {
        /// The attempt to come.
        next: u32,
        /// The wait before it.
        after: Duration,
        /// Why the last one failed.
        error: String,
    },
    /// Done, with a result.
    Succeeded,
    /// Done, with an error (unrecoverable, or out of attempts).
    Failed,
    /// Cancelled before it ended (its outcome stream was dropped, or the team dismissed).
    Cancelled,
}

/// Where a member is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberState {
    /// Its process is starting; not yet checked in.
    Starting,
    /// Checked in, with a free slot.
    Ready,
    /// Every slot is running a task.
    Busy,
    /// Sent away by the team (dismissal); its process has ended.
    Dismissed,
    /// It ended on its own, cleanly.
    Resigned,
    /// It died (crashed, killed, lost, or hung past a task's deadline and killed).
    Dead,
    /// It is gone and `by` took its place.
    Replaced {
        /// The member recruited in its place.
        by: String,
    },
}

/// A change in a team, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TeamEvent {
    /// A task changed state.
    Task {
        /// The task.
        task: TaskId,
        /// Its new state.
        state: TaskState,
    },
    /// A member changed state.
    Member {
        /// The member's name.
        member: String,
        /// Its new state.
        state: MemberState,
    },
    /// This follower fell behind and missed `missed` events (the stream goes on after them).
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// A team at one moment.
#[derive(Debug, Clone, Default)]
pub struct TeamStatus {
    /// Every member so far, in order of recruitment, with its state.
    pub members: Vec<(String, MemberState)>,
    /// The tasks not yet ended, with their states.
    pub tasks: Vec<(TaskId, TaskState)>,
    /// Tasks ended with a result.
    pub succeeded: u64,
    /// Tasks ended with an error.
    pub failed: u64,
    /// Tasks cancelled.
    pub cancelled: u64,
    /// Attempts beyond each task's first (retries made).
    pub retries: u64,
    /// Members replaced after they died or resigned.
    pub replaced: u64,
}
