//! Services and adopted work (the model of cobald's daemon): background work that lives as long
//! as its actor. Its end is fatal unless the actor asked for it: a service or adopted task that
//! returns, fails or panics stops the actor, and the error (naming the service, with its trace)
//! is what the actor reports (to its parent's nursery, or as a root's exit).

use std::{future::Future, sync::Arc};

use actor_ipc::ErrorInfo;
use futures::FutureExt;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::{
    base::{
        error::{Error, Result, SERVICE_FAILED_TYPE},
        lock, panic_message,
    },
    runtime::{
        ActorCore,
        services::{Running, Service, ServiceEnd, ServiceFlavour, ServiceState},
        with_current, with_current_sync,
    },
};

/// Records a service's end: after the actor was asked to stop, a normal stop; before, fatal.
fn ended(
    core: &Arc<ActorCore>,
    index: usize,
    name: &str,
    stop: &CancellationToken,
    end: ServiceEnd,
) {
    if stop.is_cancelled() {
        // Its actor stops: not a failure. An abandoned thread stays reported abandoned.
        if let Err(trace) = &end {
            tracing::warn!(service = %name, "service failed while stopping: {trace}");
        }
        return core.services.stopped(index, end.err());
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
/// It runs on the actor's runtime, from whatever thread it is started (a blocking thread too).
pub(crate) fn start_async<F, Fut>(core: &Arc<ActorCore>, name: &str, work: F) -> Result<()>
where
    F: FnOnce(Service) -> Fut,
    Fut: Future<Output = ServiceEnd> + Send + 'static,
{
    let Some(runtime) = core
        .runtime
        .get()
        .cloned()
        .or_else(|| tokio::runtime::Handle::try_current().ok())
    else {
        return Err(Error::Usage(format!(
            "service {name}: the actor does not serve yet (no runtime to run it on)"
        )));
    };
    let index = core.services.add(name, ServiceFlavour::Async);
    let stop = core.services_stop.child_token();
    let fut = work(Service::new(name, stop.clone()));
    let owner = core.clone();
    let name = name.to_owned();
    let task = runtime.spawn(with_current(core.clone(), async move {
        let end = match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
            Ok(end) => end,
            Err(panic) => Err(format!("panicked: {}", panic_message(panic.as_ref()))),
        };
        ended(&owner, index, &name, &stop, end);
    }));
    core.services.track(index, Running::Async(task));
    Ok(())
}

/// Runs blocking work as a service of `core`, on a thread of its own.
pub(crate) fn start_blocking<F>(core: &Arc<ActorCore>, name: &str, work: F)
where
    F: FnOnce(Service) -> ServiceEnd + Send + 'static,
{
    let index = core.services.add(name, ServiceFlavour::Blocking);
    let stop = core.services_stop.child_token();
    let service = Service::new(name, stop.clone());
    let owner = core.clone();
    let thread_name = name.to_owned();
    let (done_tx, done) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("actor-service-{}", name.replace('\0', "")))
        .spawn(move || {
            // The thread sees its actor as the current one (`Actor::current`, `execute`).
            let run = || with_current_sync(owner.clone(), || work(service));
            let end = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
                Ok(end) => end,
                Err(panic) => Err(format!("panicked: {}", panic_message(panic.as_ref()))),
            };
            ended(&owner, index, &thread_name, &stop, end);
            let _ = done_tx.send(());
        });
    match spawned {
        Ok(_) => core.services.track(index, Running::Blocking(done)),
        Err(e) => {
            let detail = format!("service {name} could not start a thread: {e}");
            core.services
                .set(index, ServiceState::Failed, Some(detail.clone()));
            fatal(core, ErrorInfo::new(SERVICE_FAILED_TYPE, detail));
        }
    }
}
