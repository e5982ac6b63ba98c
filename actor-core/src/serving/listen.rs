//! Accepting connections for an actor: every accepted, handshaken connection is served, except
//! a child connecting back, which goes to the nursery spawning it.

use std::sync::Arc;

use actor_ipc::Listener;
use tracing::debug;

use crate::{base::lock, runtime::ActorCore};

/// Accepts on `listener` for `core` until the actor stops.
pub(crate) async fn accept_loop(core: Arc<ActorCore>, listener: Listener) {
    let stop = core.cancel.clone();
    let uid = core.uid.clone();
    let config = core.config.clone();
    let accept = listener.serve(uid, config, move |accepted| {
        let core = core.clone();
        async move {
            match accepted {
                Ok(channel) => {
                    core.connections_accepted
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // A child connecting back goes to the nursery that spawns it.
                    let spawner = lock(&core.pending_children).remove(&channel.peer().uuid);
                    match spawner {
                        Some(spawner) => {
                            let _ = spawner.send(channel);
                        }
                        None => super::serve(core, channel).await,
                    }
                }
                Err(e) => debug!(error = %e, "connection dropped before serving"),
            }
        }
    });
    tokio::select! {
        () = accept => {}
        () = stop.cancelled() => {}
    }
}
