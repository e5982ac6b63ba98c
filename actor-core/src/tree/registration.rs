//! Staying registered. Registration must never stop a tree from working: an actor that cannot
//! reach its registrar starts and serves all the same, and keeps trying in the background; an
//! actor whose registrar went away registers again once one answers at that address; and a
//! root whose shared registrar disappeared takes over serving it there (the first to bind the
//! address wins; the others register with it).

use std::{sync::Arc, time::Duration};

use actor_ipc::{Addr, Listener};
use tracing::{debug, info, warn};

use crate::{
    base::error::Result,
    runtime::ActorCore,
    serving,
    tree::{discovery::Registry, registrar::SharedTable},
};

/// The first pause before registering again; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// The longest pause between attempts to register.
const MAX_RETRY: Duration = Duration::from_secs(2);

/// One attempt: connects to the registrar as the actor, registers it at `addr`, and says which
/// tree it belongs to. The registrar connection stays open while the returned client lives.
pub(crate) async fn register_once(
    core: &Arc<ActorCore>,
    registrar: &Addr,
    addr: &Addr,
) -> Result<Registry> {
    let registry = Registry::connect_as_actor(core.clone(), registrar).await?;
    register(core, &registry, addr).await?;
    Ok(registry)
}

/// Registers `core` at `addr` through `registry`, and says which tree it belongs to. Both
/// calls go out when this is first polled, in that order: on a connection that also carries
/// other traffic, the registrar has them before anything this actor sends later.
pub(crate) async fn register(
    core: &Arc<ActorCore>,
    registry: &Registry,
    addr: &Addr,
) -> Result<()> {
    // Both calls go out at once (one round trip): the registrar serves them in order.
    let tree = async {
        match core.tree.get() {
            Some(tree) => registry.register_tree(&core.uid, tree).await,
            None => Ok(()),
        }
    };
    let (registered, tree) = futures::join!(registry.register(&core.uid, addr), tree);
    registered?;
    if let Err(e) = tree {
        debug!(uid = %core.uid, error = %e, "the registrar did not take our tree");
    }
    Ok(())
}

/// Keeps `core` registered at `registrar` under `addr` until the actor stops, starting from
/// `current` (the registration made at start, if it worked). With `takeover`, this actor
/// serves the registrar itself, from that table, when nothing answers at its address any more.
pub(crate) fn keep_registered(
    core: Arc<ActorCore>,
    registrar: Addr,
    addr: Addr,
    mut current: Option<Registry>,
    takeover: Option<SharedTable>,
) {
    let stop = core.cancel.clone();
    let tracker = core.io_tasks.clone();
    let task = async move {
        let mut retry = FIRST_RETRY;
        loop {
            match current.take() {
                Some(registry) => {
                    retry = FIRST_RETRY;
                    tokio::select! {
                        () = registry.portal().closed() => {}
                        () = stop.cancelled() => return,
                    }
                    debug!(uid = %core.uid, %registrar, "the registrar connection ended");
                }
                None => {
                    tokio::select! {
                        () = tokio::time::sleep(retry) => {}
                        () = stop.cancelled() => return,
                    }
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
            if let Some(table) = &takeover
                && take_over(&core, table, &registrar, &addr).await
            {
                return;
            }
            let attempt = tokio::select! {
                attempt = register_once(&core, &registrar, &addr) => attempt,
                () = stop.cancelled() => return,
            };
            match attempt {
                Ok(registry) => {
                    info!(uid = %core.uid, %registrar, "registered (again)");
                    current = Some(registry);
                }
                Err(e) => debug!(uid = %core.uid, %registrar, error = %e, "cannot register yet"),
            }
        }
    };
    tokio::spawn(tracker.track_future(task));
}

/// Serves the registrar at `registrar` from `table` if nothing else does (binding its address
/// succeeds), listing this actor first. True if this actor now serves it.
async fn take_over(
    core: &Arc<ActorCore>,
    table: &SharedTable,
    registrar: &Addr,
    addr: &Addr,
) -> bool {
    let listener = match Listener::bind(registrar).await {
        Ok(listener) => listener,
        Err(e) => {
            debug!(%registrar, error = %e, "not taking the registrar over: its address is taken");
            return false;
        }
    };
    table.register(core.uid.clone(), addr.to_wire());
    warn!(uid = %core.uid, %registrar, "the registrar went away; this actor serves it now");
    let tracker = core.io_tasks.clone();
    tokio::spawn(tracker.track_future(serving::accept_loop(core.clone(), listener)));
    true
}
