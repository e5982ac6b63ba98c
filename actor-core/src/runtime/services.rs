//! The services of an actor, as its state keeps them: each one's name, flavour and state, and
//! the handles to wait for at stop (starting them and judging their end: `tree/services.rs`).
//!
//! On a graceful stop, async work is cancelled through its [`Service`] handle and given a grace
//! to clean up, then dropped; blocking work (a thread) cannot be interrupted: it is told, waited
//! for as long, then abandoned and reported as such.

use std::{sync::Mutex, time::Duration};

use serde::Serialize;
use tokio::{sync::oneshot, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::base::lock;

/// What a service or adopted task is given: its name, and its actor's stop.
#[derive(Debug, Clone)]
pub struct Service {
    name: String,
    stop: CancellationToken,
}

impl Service {
    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Completes when the actor stops: the service's cue to clean up and return (a return
    /// after it is no failure).
    pub async fn cancelled(&self) {
        self.stop.cancelled().await
    }

    /// Whether the actor is stopping (for blocking services, checked between steps of work).
    pub fn is_cancelled(&self) -> bool {
        self.stop.is_cancelled()
    }
}

/// How a service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceFlavour {
    /// A tokio task of the actor.
    Async,
    /// A thread of its own.
    Blocking,
}

/// Where a service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Running.
    Running,
    /// Ended because its actor stopped.
    Stopped,
    /// Ended on its own while its actor ran: fatal.
    Failed,
    /// Still running after its actor stopped and the grace passed: left behind (a thread).
    Abandoned,
}

/// A service, as the `actor.runtime` `services` call lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceInfo {
    /// Its name.
    pub name: String,
    /// How it runs.
    pub flavour: ServiceFlavour,
    /// Where it is.
    pub state: ServiceState,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// How a service's work ended: `Ok` if it returned, `Err(trace)` if it failed.
pub type ServiceEnd = Result<(), String>;

/// A running service's handle, to wait for it at stop.
pub(crate) enum Running {
    Async(JoinHandle<()>),
    Blocking(oneshot::Receiver<()>),
}

/// The services of one actor.
#[derive(Default)]
pub(crate) struct Services {
    entries: Mutex<Vec<ServiceInfo>>,
    running: Mutex<Vec<(usize, Running)>>,
}

impl Service {
    /// The handle of service `name`, told to stop by `stop`.
    pub(crate) fn new(name: &str, stop: CancellationToken) -> Self {
        Self {
            name: name.to_owned(),
            stop,
        }
    }
}

impl Services {
    /// Keeps a started service's handle, to wait for it at stop.
    pub(crate) fn track(&self, index: usize, running: Running) {
        lock(&self.running).push((index, running));
    }

    /// Service `index` ended because its actor stopped (with `error` if it failed meanwhile);
    /// one already reported abandoned stays so.
    pub(crate) fn stopped(&self, index: usize, error: Option<String>) {
        if let Some(entry) = lock(&self.entries).get_mut(index)
            && entry.state != ServiceState::Abandoned
        {
            entry.state = ServiceState::Stopped;
            entry.error = error;
        }
    }

    /// Every service, with its state.
    pub(crate) fn list(&self) -> Vec<ServiceInfo> {
        lock(&self.entries).clone()
    }

    /// Lists a new service, running; returns its index.
    pub(crate) fn add(&self, name: &str, flavour: ServiceFlavour) -> usize {
        let mut entries = lock(&self.entries);
        entries.push(ServiceInfo {
            name: name.to_owned(),
            flavour,
            state: ServiceState::Running,
            error: None,
        });
        entries.len() - 1
    }

    /// Sets service `index`'s state.
    pub(crate) fn set(&self, index: usize, state: ServiceState, error: Option<String>) {
        if let Some(entry) = lock(&self.entries).get_mut(index) {
            entry.state = state;
            entry.error = error;
        }
    }

    /// Waits for every service to end (at most `grace`): async ones left are dropped, threads
    /// left are abandoned.
    pub(crate) async fn stop(&self, grace: Duration) {
        let running = std::mem::take(&mut *lock(&self.running));
        let deadline = tokio::time::Instant::now() + grace;
        for (index, handle) in running {
            match handle {
                Running::Async(task) => {
                    let abort = task.abort_handle();
                    if tokio::time::timeout_at(deadline, task).await.is_err() {
                        abort.abort();
                        self.set(index, ServiceState::Stopped, None);
                    }
                }
                Running::Blocking(done) => {
                    if tokio::time::timeout_at(deadline, done).await.is_err() {
                        let name = lock(&self.entries)
                            .get(index)
                            .map(|e| e.name.clone())
                            .unwrap_or_default();
                        warn!(service = %name, "blocking service still running after the stop grace: abandoned");
                        self.set(index, ServiceState::Abandoned, None);
                    }
                }
            }
        }
    }
}

/// What a service's return value means: every return ends it (fatal while its actor runs);
/// an `Err` says why.
pub trait ServiceOutcome {
    /// `Ok` for a plain return, `Err(trace)` for a failure.
    fn into_end(self) -> ServiceEnd;
}

impl ServiceOutcome for () {
    fn into_end(self) -> ServiceEnd {
        Ok(())
    }
}

impl<T, E> ServiceOutcome for Result<T, E>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    fn into_end(self) -> ServiceEnd {
        match self {
            Ok(_) => Ok(()),
            Err(e) => Err(crate::base::error::Error::from_any(e)
                .to_error_info()
                .tb_str),
        }
    }
}

/// Boxes an async service's run, its outcome turned into a [`ServiceEnd`].
pub fn async_service<F>(fut: F) -> futures::future::BoxFuture<'static, ServiceEnd>
where
    F: Future + Send + 'static,
    F::Output: ServiceOutcome,
{
    Box::pin(async move { fut.await.into_end() })
}
