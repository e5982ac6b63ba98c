//! Services and adopted work (the model of cobald's daemon): background work that lives as long
//! as its actor. Its end is fatal unless the actor asked for it: a service or adopted task that
//! returns, fails or panics stops the actor, and the error (naming the service, with its trace)
//! is what the actor reports (to its parent's nursery, or as a root's exit).
//!
//! On a graceful stop, async work is cancelled through its [`Service`] handle and given a grace
//! to clean up, then dropped; blocking work (a thread) cannot be interrupted: it is told, waited
//! for as long, then abandoned and reported as such.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use actor_ipc::ErrorInfo;
use futures::FutureExt;
use serde::Serialize;
use tokio::{sync::oneshot, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::{core::ActorCore, scope::with_current};
use crate::base::{error::SERVICE_FAILED_TYPE, lock};

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
enum Running {
    Async(JoinHandle<()>),
    Blocking(oneshot::Receiver<()>),
}

/// The services of one actor.
#[derive(Default)]
pub(crate) struct Services {
    entries: Mutex<Vec<ServiceInfo>>,
    running: Mutex<Vec<(usize, Running)>>,
}

impl Services {
    /// Every service, with its state.
    pub(crate) fn list(&self) -> Vec<ServiceInfo> {
        lock(&self.entries).clone()
    }

    fn add(&self, name: &str, flavour: ServiceFlavour) -> usize {
        let mut entries = lock(&self.entries);
        entries.push(ServiceInfo {
            name: name.to_owned(),
            flavour,
            state: ServiceState::Running,
            error: None,
        });
        entries.len() - 1
    }

    fn set(&self, index: usize, state: ServiceState, error: Option<String>) {
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

/// Records a service's end: after the actor was asked to stop, a normal stop; before, fatal.
fn ended(
    core: &Arc<ActorCore>,
    index: usize,
    name: &str,
    stop: &CancellationToken,
    end: ServiceEnd,
) {
    if stop.is_cancelled() {
        return core.services.set(index, ServiceState::Stopped, None);
    }
    let detail = match end {
        Ok(()) => format!("service {name} returned, but a service must run as long as its actor"),
        Err(trace) => format!("service {name} failed: {trace}"),
    };
    core.services
        .set(index, ServiceState::Failed, Some(detail.clone()));
    error!(service = %name, "{detail}; stopping the actor");
    fatal(core, ErrorInfo::new(SERVICE_FAILED_TYPE, detail));
}

/// Stops the actor for `error` (the first fatal error is kept and reported).
pub(crate) fn fatal(core: &ActorCore, error: ErrorInfo) {
    lock(&core.fatal).get_or_insert(error);
    core.fatal_token.cancel();
    core.cancel.cancel();
}

/// Runs async work as a service of `core` (started with the actor, or adopted later).
pub(crate) fn start_async<F, Fut>(core: &Arc<ActorCore>, name: &str, work: F)
where
    F: FnOnce(Service) -> Fut,
    Fut: Future<Output = ServiceEnd> + Send + 'static,
{
    let index = core.services.add(name, ServiceFlavour::Async);
    let stop = core.cancel.child_token();
    let fut = work(Service {
        name: name.to_owned(),
        stop: stop.clone(),
    });
    let owner = core.clone();
    let name = name.to_owned();
    let task = tokio::spawn(with_current(core.clone(), async move {
        let end = match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
            Ok(end) => end,
            Err(panic) => Err(format!("panicked: {}", panic_text(&panic))),
        };
        ended(&owner, index, &name, &stop, end);
    }));
    lock(&core.services.running).push((index, Running::Async(task)));
}

/// Runs blocking work as a service of `core`, on a thread of its own.
pub(crate) fn start_blocking<F>(core: &Arc<ActorCore>, name: &str, work: F)
where
    F: FnOnce(Service) -> ServiceEnd + Send + 'static,
{
    let index = core.services.add(name, ServiceFlavour::Blocking);
    let stop = core.cancel.child_token();
    let service = Service {
        name: name.to_owned(),
        stop: stop.clone(),
    };
    let owner = core.clone();
    let thread_name = name.to_owned();
    let (done_tx, done) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("actor-service-{name}"))
        .spawn(move || {
            let end = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(service)))
            {
                Ok(end) => end,
                Err(panic) => Err(format!("panicked: {}", panic_text(&panic))),
            };
            ended(&owner, index, &thread_name, &stop, end);
            let _ = done_tx.send(());
        });
    match spawned {
        Ok(_) => lock(&core.services.running).push((index, Running::Blocking(done))),
        Err(e) => {
            let detail = format!("service {name} could not start a thread: {e}");
            core.services
                .set(index, ServiceState::Failed, Some(detail.clone()));
            fatal(core, ErrorInfo::new(SERVICE_FAILED_TYPE, detail));
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".into())
}
