//! The shared state of one actor (or of a client-only process, which serves nothing), the
//! current actor of a task, and the runtime calls the core owns (`cancel`, `_cancel_task`).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use actor_ipc::{Addr, Channel, ChannelConfig, ErrorInfo, Payload, Uid};
use futures::{FutureExt, future::BoxFuture};
use serde::Deserialize;
use tokio::sync::oneshot;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::debug;

use super::{
    router::{self, ConnectionScope, RuntimeReply},
    services::Services,
    thread_runner::ThreadRunner,
};
use crate::base::{FastHash, WeakList, error::TYPE_ERROR, lock, secret::process_secret};
use crate::engine::heartbeat::HeartbeatConfig;

/// The `self` runtime calls of an actor, each given a [`RuntimeRequest`].
pub(crate) type RuntimeCalls = router::RuntimeCalls<RuntimeRequest>;
/// One handler of [`RuntimeCalls`].
pub(crate) type RuntimeCall = router::RuntimeCall<RuntimeRequest>;

/// One runtime call, as the connection hands it over.
pub(crate) struct RuntimeRequest {
    /// The actor serving the call.
    pub(crate) core: Arc<ActorCore>,
    /// Who made the call.
    pub(crate) caller: Arc<Uid>,
    /// Its arguments.
    pub(crate) kwargs: Payload,
    /// The connection it arrived on.
    pub(crate) scope: Arc<dyn ConnectionScope>,
}

/// The bound on threads for blocking work (`tokio::task::spawn_blocking`) in an actor's
/// runtime: enough for blocking I/O and CPU work beside the event loop, small enough that a
/// burst of blocking calls queues instead of exhausting the process's threads.
pub const MAX_BLOCKING_THREADS: usize = 64;

/// The default stream window: how many items a receiver buffers from a peer without flow
/// control (a tractor 0.1.0a5 producer), and with flow control how many a producer may send
/// ahead of its consumer at first. With flow control the consumer then adapts what it allows
/// in flight to the items' size (8 MiB worth, at most 16384 items; `docs/protocol-notes.md`),
/// so only the first window is bounded by `window × item size` (1024 one-MiB blobs: 1 GiB):
/// actors streaming large items should lower it with
/// `ActorBuilder::stream_window`.
pub const DEFAULT_STREAM_WINDOW: usize = 1024;

/// A connection, as the actor's teardown sees it: something to flush and close.
pub(crate) trait LiveConnection: Send + Sync {
    /// Flushes what is queued and closes the connection.
    fn close(&self) -> BoxFuture<'_, ()>;
    /// Who is at the other end.
    fn peer(&self) -> Uid;
    /// The calls the peer started here that run as tasks now.
    fn running_calls(&self) -> Vec<super::introspect::RunningCall>;
    /// Cancels the running call `cid`, as asked by `by`; whether there was one.
    fn cancel_call(&self, cid: &str, by: &Uid) -> bool;
}

/// A nursery, as the actor's interrupt handling sees it: something to tear down gracefully.
pub(crate) trait GracefulTeardown: Send + Sync {
    /// Cancels the nursery's children gracefully and waits for them.
    fn teardown(&self) -> BoxFuture<'_, ()>;
    /// The children it supervises now.
    fn children(&self) -> Vec<super::introspect::ChildReport>;
}

/// The shared state of one actor.
pub(crate) struct ActorCore {
    pub(crate) uid: Uid,
    pub(crate) enabled: HashSet<String, FastHash>,
    pub(crate) config: ChannelConfig,
    /// Items a stream receiver buffers; with flow control, the credit window.
    pub(crate) stream_window: usize,
    /// Cancelled when the actor is told to stop; parent of every call's token.
    pub(crate) cancel: CancellationToken,
    /// Every call task, so teardown can wait for them.
    pub(crate) tasks: TaskTracker,
    /// Every other task the runtime starts (connection readers, runtime calls that wait,
    /// closers): teardown waits for them after closing the connections.
    pub(crate) io_tasks: TaskTracker,
    /// Calls running per enabled namespace: fixed at creation (calls run only in enabled
    /// namespaces), so counting takes no lock, only an atomic add.
    running: HashMap<String, Arc<AtomicU64>, FastHash>,
    /// Who asked the whole actor to stop (the `cancel` runtime call's caller).
    pub(crate) canceller: Mutex<Option<Uid>>,
    /// The connections open, for teardown to close.
    pub(crate) connections: WeakList<dyn LiveConnection>,
    /// The `self` runtime calls this actor answers.
    pub(crate) runtime_calls: RuntimeCalls,
    /// The introspection calls it answers, in namespace [`INTROSPECTION_NS`].
    pub(crate) introspection: RuntimeCalls,
    /// Children being spawned, by uuid: their connect-back channel goes to the spawner.
    pub(crate) pending_children: Mutex<HashMap<String, oneshot::Sender<Channel>>>,
    /// Where this actor listens (set once it serves): its children connect back here.
    pub(crate) addrs: OnceLock<Vec<Addr>>,
    /// The registrar this actor uses, if any: its children get it in their init map.
    pub(crate) registrar_addr: OnceLock<Addr>,
    /// How this program re-launches itself as a child of this actor.
    pub(crate) launch_args: OnceLock<Vec<String>>,
    /// The nurseries opened in this actor, for a graceful teardown on SIGINT.
    pub(crate) nurseries: WeakList<dyn GracefulTeardown>,
    /// Cleanups registered with `ActorInfo::on_teardown`, run once when the actor stops.
    pub(crate) teardown_hooks: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    /// Where blocking invocations run (`#[actor::remote(blocking)]`).
    pub(crate) thread_runner: Arc<ThreadRunner>,
    /// The actor's services and adopted tasks.
    pub(crate) services: Services,
    /// Tells the services to stop: with the actor, or first, before a root's nurseries are
    /// torn down on an interrupt (so a service talking to them does not fail meanwhile).
    pub(crate) services_stop: CancellationToken,
    /// The error that stopped the actor, if a service's end did.
    pub(crate) fatal: Mutex<Option<ErrorInfo>>,
    /// Cancelled when a fatal error stopped the actor (a root then stops its `main`).
    pub(crate) fatal_token: CancellationToken,
    /// How this actor tells its parent about a fatal error before it exits (a child's).
    pub(crate) fatal_report: Mutex<Option<FatalReport>>,
    /// The runtime it serves on (for work handed in from other threads).
    pub(crate) runtime: OnceLock<tokio::runtime::Handle>,
    /// Heartbeats on this actor's connections (`None`: off).
    pub(crate) heartbeat: Option<HeartbeatConfig>,
    /// The tree this actor belongs to: its root's uuid (lookups prefer actors of the same).
    pub(crate) tree: OnceLock<String>,
    /// Listeners opened for children on other hosts, by the local address facing them.
    pub(crate) facing_listeners: tokio::sync::Mutex<HashMap<std::net::IpAddr, Addr>>,
    /// When it started (its uptime in reports).
    pub(crate) started: std::time::Instant,
    /// Calls served since it started, for reports (one relaxed add per call).
    pub(crate) calls_served: AtomicU64,
    /// Connections accepted and handshaken since it started, for reports.
    pub(crate) connections_accepted: AtomicU64,
}

/// Sends a fatal error to whoever must hear it (a child's parent), once.
pub(crate) type FatalReport = Box<dyn FnOnce(ErrorInfo) -> BoxFuture<'static, ()> + Send>;

impl ActorCore {
    /// A core answering the standard runtime calls and those of `extra` (e.g. a registrar's),
    /// and the introspection calls and those of `extra_extensions` in [`INTROSPECTION_NS`].
    pub(crate) fn new(
        uid: Uid,
        enabled: HashSet<String, FastHash>,
        config: ChannelConfig,
        stream_window: usize,
        (extra, extra_extensions): (RuntimeCalls, RuntimeCalls),
        thread_slots: Option<usize>,
        heartbeat: Option<HeartbeatConfig>,
    ) -> Arc<Self> {
        let mut runtime_calls = standard_runtime_calls();
        runtime_calls.extend(extra);
        let mut introspection = introspection_calls();
        introspection.extend(extra_extensions);
        let cancel = CancellationToken::new();
        let running = enabled
            .iter()
            .map(|ns| (ns.clone(), Arc::new(AtomicU64::new(0))))
            .collect();
        Arc::new(Self {
            introspection,
            thread_runner: ThreadRunner::new(thread_slots, cancel.clone()),
            services: Services::default(),
            services_stop: cancel.child_token(),
            fatal: Mutex::new(None),
            fatal_token: CancellationToken::new(),
            fatal_report: Mutex::new(None),
            runtime: OnceLock::new(),
            heartbeat,
            tree: OnceLock::new(),
            facing_listeners: tokio::sync::Mutex::new(HashMap::new()),
            started: std::time::Instant::now(),
            calls_served: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            runtime_calls,
            pending_children: Mutex::new(HashMap::new()),
            addrs: OnceLock::new(),
            registrar_addr: OnceLock::new(),
            teardown_hooks: Mutex::new(Vec::new()),
            launch_args: OnceLock::new(),
            nurseries: WeakList::default(),
            uid,
            enabled,
            config,
            stream_window,
            cancel,
            tasks: TaskTracker::new(),
            io_tasks: TaskTracker::new(),
            running,
            canceller: Mutex::new(None),
            connections: WeakList::default(),
        })
    }

    /// A core for a process that only calls others.
    pub(crate) fn client(name: &str) -> Arc<Self> {
        let secret = process_secret().unwrap_or_else(|e| {
            // Connections to actors that require a secret fail with a clear error then.
            tracing::error!("no secret for this client: {e}");
            None
        });
        Self::new(
            Uid::new(name),
            HashSet::default(),
            ChannelConfig {
                secret,
                spin: low_latency_spin(),
                ..ChannelConfig::default()
            },
            DEFAULT_STREAM_WINDOW,
            (RuntimeCalls::default(), RuntimeCalls::default()),
            Some(1),
            // A client may not run its runtime between calls (`block_on` now and then): it
            // neither asks for heartbeats nor agrees to them.
            None,
        )
    }

    /// The running count of `ns` (`None` if it is not enabled), to count calls with
    /// [`RunningGuard::count`] without looking it up each time.
    pub(crate) fn running_counter(&self, ns: &str) -> Option<Arc<AtomicU64>> {
        self.running.get(ns).cloned()
    }

    /// How many calls into `ns` are running now.
    pub(crate) fn running(&self, ns: &str) -> u64 {
        self.running
            .get(ns)
            .map_or(0, |count| count.load(Ordering::Relaxed))
    }

    /// Records who asked the actor to stop (the first one wins).
    pub(crate) fn set_canceller(&self, by: &Uid) {
        lock(&self.canceller).get_or_insert_with(|| by.clone());
    }
}

/// Decrements the running count of a namespace when dropped.
pub(crate) struct RunningGuard {
    /// The namespace's count (none for a namespace that is not enabled: nothing runs there).
    count: Option<Arc<AtomicU64>>,
}

impl RunningGuard {
    /// Counts one running call on `counter` (from [`ActorCore::running_counter`]).
    pub(crate) fn count(counter: Option<&Arc<AtomicU64>>) -> Self {
        if let Some(count) = counter {
            count.fetch_add(1, Ordering::Relaxed);
        }
        Self {
            count: counter.cloned(),
        }
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if let Some(count) = &self.count {
            count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The namespace of the runtime's introspection calls (a tractor 0.1.0a5 peer never calls it):
/// `services` (each service's name, flavour, state and error) and `thread_runner` (slots and
/// each blocking invocation's status).
pub const INTROSPECTION_NS: &str = "actor.runtime";

/// The introspection calls every actor answers.
fn introspection_calls() -> RuntimeCalls {
    let mut calls = RuntimeCalls::default();
    let services: RuntimeCall = Arc::new(|request: RuntimeRequest| {
        let list = request.core.services.list();
        futures::future::ready(RuntimeReply::answer(encode(&list))).boxed()
    });
    calls.register("services", services);
    let threads: RuntimeCall = Arc::new(|request: RuntimeRequest| {
        let status = request.core.thread_runner.status();
        futures::future::ready(RuntimeReply::answer(encode(&status))).boxed()
    });
    calls.register("thread_runner", threads);
    super::introspect::register(&mut calls);
    calls
}

/// Low-latency mode for every actor (and client) of a process, and of the children it
/// starts (they inherit the variable): the microseconds a connection's reader spins before
/// parking (`ChannelConfig::spin`). Unset or `0`: off.
pub const LOW_LATENCY_ENV: &str = "ACTOR_LOW_LATENCY_SPIN_US";

/// The spin [`LOW_LATENCY_ENV`] asks for, read as every actor and client of this process reads
/// it (`None`: the mode is off), so that a tool reporting on the mode sees what the runtime
/// does.
pub fn low_latency_spin() -> Option<std::time::Duration> {
    std::env::var(LOW_LATENCY_ENV)
        .ok()
        .and_then(|us| us.trim().parse::<u64>().ok())
        .filter(|us| *us > 0)
        .map(std::time::Duration::from_micros)
}

/// A runtime call's value, encoded (an encoding failure is the call's error).
pub(super) fn encode<T: serde::Serialize>(value: &T) -> Result<Payload, ErrorInfo> {
    Payload::encode(value).map_err(|e| ErrorInfo::new("EncodeError", e.to_string()))
}

/// The runtime calls every actor answers: `cancel` (the whole actor) and `_cancel_task` (one
/// task of the connection the call arrived on).
fn standard_runtime_calls() -> RuntimeCalls {
    let mut calls = RuntimeCalls::default();
    let cancel: RuntimeCall = Arc::new(|request: RuntimeRequest| {
        debug!(by = %request.caller, "actor cancel requested");
        request.core.set_canceller(&request.caller);
        let core = request.core.clone();
        let reply = RuntimeReply::Answer {
            result: Ok(Payload::encode(&true).unwrap_or_else(|_| Payload::nil())),
            // Answered first, then the actor stops.
            then: Some(Box::new(move || core.cancel.cancel())),
        };
        futures::future::ready(reply).boxed()
    });
    calls.register("cancel", cancel);
    let cancel_task: RuntimeCall = Arc::new(|request: RuntimeRequest| {
        #[derive(Deserialize)]
        struct Args {
            cid: String,
        }
        // Cancelled now, inside the reader: before the next message is read.
        let done = match request.kwargs.decode::<Args>() {
            Ok(args) => Ok(request.scope.cancel_task(&args.cid, &request.caller)),
            Err(e) => Err(ErrorInfo::new(TYPE_ERROR, format!("_cancel_task(): {e}"))),
        };
        async move {
            match done {
                // Acknowledged only once the target has really ended.
                Ok(done) => {
                    if let Some(done) = done {
                        done.cancelled().await;
                    }
                    RuntimeReply::answer(Ok(Payload::nil()))
                }
                Err(error) => RuntimeReply::answer(Err(error)),
            }
        }
        .boxed()
    });
    calls.register("_cancel_task", cancel_task);
    calls
}
