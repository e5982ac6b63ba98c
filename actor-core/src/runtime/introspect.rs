//! What an actor says about itself when asked: the `info` call of namespace `actor.runtime`
//! ([`ActorReport`]: process facts, children, running calls, peers, services, thread slots),
//! and `cancel_call`, which cancels a running call by id whichever connection started it.
//! The `actor` command-line tool is built on these; a tractor 0.1.0a5 peer never calls them.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use actor_ipc::{ErrorInfo, Uid};
use futures::FutureExt;
use serde::{Deserialize, Serialize};

use super::{
    core::{ActorCore, RuntimeCall, RuntimeCalls, RuntimeRequest, encode},
    router::RuntimeReply,
};

/// An actor's account of itself: the answer to `actor.runtime` `info`
/// (see [`crate::Portal::report`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorReport {
    /// The actor's name.
    pub name: String,
    /// Its uuid (the second half of its uid).
    pub uuid: String,
    /// Its process.
    pub pid: u32,
    /// The host it runs on: the label its parent placed it with (`node7`, `slurm:node7`), else
    /// the machine's host name.
    pub host: String,
    /// Where it listens.
    pub addrs: Vec<String>,
    /// The registrar it uses, if any.
    pub registrar: Option<String>,
    /// Its tree's id (the root's uuid).
    pub tree: Option<String>,
    /// Seconds since it started.
    pub uptime_secs: f64,
    /// Its process's resident memory, in KiB.
    pub rss_kib: u64,
    /// The namespaces it serves.
    pub enabled: Vec<String>,
    /// Calls of the program's functions it has received since it started (all connections;
    /// the runtime's own calls, such as these reports, are not counted).
    pub calls_served: u64,
    /// Connections it has accepted and handshaken since it started (callers, children
    /// connecting back, registrations): a count that climbs with steady traffic means peers
    /// connecting per call instead of keeping a portal. Absent from older reports (zero).
    #[serde(default)]
    pub connections_accepted: u64,
    /// The children its nurseries supervise now.
    pub children: Vec<ChildReport>,
    /// Calls running now as tasks (calls answered at once never show here).
    pub calls: Vec<CallReport>,
    /// The peers connected to it now.
    pub peers: Vec<PeerReport>,
    /// Its services.
    pub services: Vec<ServiceReport>,
    /// Its thread runner: slots, running and waiting blocking invocations.
    pub thread_slots: usize,
    /// Blocking invocations running now.
    pub thread_running: usize,
    /// Blocking invocations waiting for a slot.
    pub thread_pending: usize,
}

/// A child, as its parent reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildReport {
    /// Its name.
    pub name: String,
    /// Its uuid.
    pub uuid: String,
    /// The local process supervising it: the child itself, or its launcher (`ssh`, `srun`).
    pub pid: Option<u32>,
    /// Where it was placed (`local`, `ssh://node7`, `slurm`).
    pub placement: String,
}

/// A call running in an actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    /// The function's namespace.
    pub ns: String,
    /// The function.
    pub func: String,
    /// The call's id (unique among its caller's calls).
    pub cid: String,
    /// Seconds since it started.
    pub age_secs: f64,
    /// Who called, `name[uuid]`.
    pub caller: String,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerReport {
    /// Its name.
    pub name: String,
    /// Its uuid.
    pub uuid: String,
}

/// A service, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceReport {
    /// Its name.
    pub name: String,
    /// `Async`, `Blocking` or `Adopted...`.
    pub flavour: String,
    /// `Running`, `Stopped`, `Failed`...
    pub state: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A call running on one connection, as the connection reports it.
pub(crate) struct RunningCall {
    pub(crate) ns: &'static str,
    pub(crate) func: &'static str,
    pub(crate) cid: String,
    pub(crate) started: Instant,
}

/// This process's resident memory in KiB (`VmRSS` of `/proc/self/status`; 0 if unreadable).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

impl ActorCore {
    /// This actor's account of itself, now.
    pub(crate) fn report(&self) -> ActorReport {
        let now = Instant::now();
        let mut calls = Vec::new();
        let mut peers = Vec::new();
        for conn in self.connections.live() {
            let peer = conn.peer();
            for call in conn.running_calls() {
                calls.push(CallReport {
                    ns: call.ns.to_owned(),
                    func: call.func.to_owned(),
                    cid: call.cid,
                    age_secs: now.duration_since(call.started).as_secs_f64(),
                    caller: peer.to_string(),
                });
            }
            peers.push(PeerReport {
                name: peer.name,
                uuid: peer.uuid,
            });
        }
        calls.sort_by(|a, b| b.age_secs.total_cmp(&a.age_secs));
        let children = self
            .nurseries
            .live()
            .iter()
            .flat_map(|nursery| nursery.children())
            .collect();
        let threads = self.thread_runner.status();
        let mut enabled: Vec<String> = self.enabled.iter().cloned().collect();
        enabled.sort();
        ActorReport {
            name: self.uid.name.clone(),
            uuid: self.uid.uuid.clone(),
            pid: std::process::id(),
            host: crate::base::platform::host_label(),
            addrs: self
                .addrs
                .get()
                .map(|addrs| addrs.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            registrar: self.registrar_addr.get().map(ToString::to_string),
            tree: self.tree.get().cloned(),
            uptime_secs: now.duration_since(self.started).as_secs_f64(),
            rss_kib: rss_kib(),
            enabled,
            calls_served: self.calls_served.load(Ordering::Relaxed),
            connections_accepted: self.connections_accepted.load(Ordering::Relaxed),
            children,
            calls,
            peers,
            services: self
                .services
                .list()
                .into_iter()
                .map(|s| ServiceReport {
                    name: s.name,
                    flavour: format!("{:?}", s.flavour),
                    state: format!("{:?}", s.state),
                    error: s.error,
                })
                .collect(),
            thread_slots: threads.slots,
            thread_running: threads.running,
            thread_pending: threads.pending,
        }
    }

    /// Cancels every running call with id `cid`, on any connection; how many there were.
    pub(crate) fn cancel_call(&self, cid: &str, by: &Uid) -> usize {
        self.connections
            .live()
            .iter()
            .filter(|conn| conn.cancel_call(cid, by))
            .count()
    }
}

/// `info` and `cancel_call`, for [`super::core::introspection_calls`].
pub(crate) fn register(calls: &mut RuntimeCalls) {
    let info: RuntimeCall = Arc::new(|request: RuntimeRequest| {
        let report = request.core.report();
        futures::future::ready(RuntimeReply::answer(encode(&report))).boxed()
    });
    calls.register("info", info);
    let cancel: RuntimeCall = Arc::new(|request: RuntimeRequest| {
        #[derive(Deserialize)]
        struct Args {
            cid: String,
        }
        let outcome = match request.kwargs.decode::<Args>() {
            Ok(args) => encode(&request.core.cancel_call(&args.cid, &request.caller)),
            Err(e) => Err(ErrorInfo::new(
                "TypeError",
                format!("cancel_call takes cid (a string): {e}"),
            )),
        };
        futures::future::ready(RuntimeReply::answer(outcome)).boxed()
    });
    calls.register("cancel_call", cancel);
}
