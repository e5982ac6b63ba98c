//! The per-process actor: its identity, what it serves, and its lifetime.
//!
//! An [`Actor`] listens on one or more addresses and serves every connection (see
//! `serving/`): each call runs as its own task, tracked by (connection, cid). The actor
//! stops when cancelled (by [`ActorHandle::cancel`], the `cancel` runtime call, or a signal the
//! program maps to it): it stops accepting, cancels every running call, waits for them to end
//! (bounded), flushes and closes its connections.

use std::{sync::Arc, time::Duration};

use actor_ipc::{Addr, ChannelConfig, Listener, Secret, SendBudget, Uid};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{
    base::{
        error::{Error, Result},
        lock, platform,
        secret::process_secret,
    },
    calls::registry,
    engine::heartbeat::HeartbeatConfig,
    runtime::{
        self, ActorCore, DEFAULT_STREAM_WINDOW, MAX_BLOCKING_THREADS, ServiceInfo,
        ThreadRunnerStatus,
    },
    serving,
    tree::{
        discovery::Registry,
        registrar::{RegistrarTable, registrar_calls, tree_calls},
        registration::{keep_registered, register_once},
        services,
    },
};

/// The environment variable giving an actor's thread slots when its builder does not (how a
/// parent sets a child's: `StartActor::thread_slots`).
pub const THREAD_SLOTS_ENV: &str = "ACTOR_THREAD_SLOTS";

/// How long teardown waits for cancelled calls to finish before closing connections anyway.
const TEARDOWN_GRACE: Duration = Duration::from_secs(2);

/// Which tokio runtime an actor process runs on.
///
/// An actor is already a process, so most of its work is one event loop: the current-thread
/// runtime avoids a cross-CPU wake-up per message, which on a 2-core machine halves call
/// latency (see `BENCHMARKS.md` once measured). Blocking work goes to tokio's bounded blocking
/// pool either way (`tokio::task::spawn_blocking`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeFlavor {
    /// One thread runs every task of the actor.
    #[default]
    CurrentThread,
    /// A work-stealing pool of one thread per core.
    MultiThread,
}

impl RuntimeFlavor {
    /// Builds a runtime of this flavour, with I/O and timers enabled and at most
    /// [`MAX_BLOCKING_THREADS`] threads for blocking work.
    ///
    /// Every task of the runtime, including those started with `tokio::spawn`, sees the first
    /// actor started in it (and still running) as the current actor ([`Actor::current`],
    /// [`crate::open_nursery`]).
    pub fn build(self) -> std::io::Result<tokio::runtime::Runtime> {
        self.build_for_actor().map(|(runtime, _)| runtime)
    }

    /// [`RuntimeFlavor::build`], with the slot of the runtime's actor, for the thread that will
    /// run `block_on` to enter (`runtime::enter_runtime`).
    pub(crate) fn build_for_actor(
        self,
    ) -> std::io::Result<(tokio::runtime::Runtime, Arc<runtime::RuntimeActor>)> {
        let slot = Arc::new(runtime::RuntimeActor::default());
        let for_threads = slot.clone();
        let mut builder = match self {
            Self::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            Self::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        };
        builder
            .enable_all()
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .on_thread_start(move || runtime::join_runtime(for_threads.clone()))
            .build()
            .map(|runtime| (runtime, slot))
    }
}

/// The bytes an actor lets wait for writing across all its connections, unless its channel
/// config sets `shared_send_budget`: past it, its senders wait (backpressure), so peers that
/// read slowly cannot together pin more memory than this.
pub const ACTOR_SEND_BUDGET: usize = 256 * 1024 * 1024;

/// Descriptors an actor keeps out of its connection limit for everything else it opens.
const OTHER_DESCRIPTORS: u64 = 128;

/// How long starting an actor waits for its first registration before serving anyway (and
/// registering in the background): a registrar that hangs must not hold trees up.
const REGISTER_AT_START_TIMEOUT: Duration = Duration::from_secs(1);

/// Entry point for serving: `Actor::builder(name)`.
#[derive(Debug)]
pub struct Actor;

impl Actor {
    /// Starts describing an actor called `name`.
    pub fn builder(name: impl Into<String>) -> ActorBuilder {
        ActorBuilder {
            name: name.into(),
            listen: Vec::new(),
            enable: Vec::new(),
            config: ChannelConfig::default(),
            stream_window: DEFAULT_STREAM_WINDOW,
            register_with: None,
            serve_registrar: false,
            uid: None,
            launch_args: Vec::new(),
            thread_slots: None,
            heartbeat: None,
            take_over_registrar: false,
            tree: None,
            registers_at_start: true,
        }
    }

    /// The actor this code runs in, if any: the one serving the current remote call, else the
    /// actor of this runtime (under `#[actor::main]`, `#[actor::test]`, [`crate::run_root`], in
    /// a child, or the first one started in the runtime), also from tasks started with
    /// `tokio::spawn`, else the process's only actor.
    pub fn current() -> Option<ActorInfo> {
        runtime::current().map(|core| ActorInfo { core })
    }
}

/// A view of the actor running the current remote call.
#[derive(Clone)]
pub struct ActorInfo {
    core: Arc<ActorCore>,
}

impl ActorInfo {
    /// The actor's uid.
    pub fn uid(&self) -> &Uid {
        &self.core.uid
    }

    /// How many calls into namespace `ns` are running in this actor right now (the caller of
    /// this included, if it is one).
    pub fn running_calls(&self, ns: &str) -> u64 {
        self.core.running(ns)
    }

    /// Asks the actor to stop, as the `cancel` runtime call does.
    pub fn cancel(&self) {
        self.core.cancel.cancel();
    }

    /// The addresses this actor listens on.
    pub fn addrs(&self) -> Vec<Addr> {
        self.core.addrs.get().cloned().unwrap_or_default()
    }

    /// The registrar this actor uses (or serves), if any.
    pub fn registrar(&self) -> Option<Addr> {
        self.core.registrar_addr.get().cloned()
    }

    /// Runs `work` in the background as a service of this actor, named `name`: fire and
    /// forget. As with a declared service, its end while the actor runs (a return, an `Err`, a
    /// panic) is fatal: the actor stops and reports the error, naming it. `work` gets the
    /// [`crate::Service`] handle whose `cancelled()` says when the actor stops.
    ///
    /// It runs on the actor's runtime, also when adopted from a blocking thread; it fails
    /// only if the actor does not serve yet.
    pub fn adopt<F, Fut, R>(&self, name: &str, work: F) -> Result<()>
    where
        F: FnOnce(runtime::Service) -> Fut,
        Fut: std::future::Future<Output = R> + Send + 'static,
        R: crate::runtime::services::ServiceOutcome,
    {
        services::start_async(&self.core, name, |svc| {
            crate::runtime::services::async_service(work(svc))
        })
    }

    /// [`ActorInfo::adopt`] for blocking work: it runs on a thread of its own.
    pub fn adopt_blocking<F, R>(&self, name: &str, work: F)
    where
        F: FnOnce(runtime::Service) -> R + Send + 'static,
        R: crate::runtime::services::ServiceOutcome,
    {
        services::start_blocking(&self.core, name, move |svc| {
            crate::runtime::services::ServiceOutcome::into_end(work(svc))
        });
    }

    /// Runs `work` on this actor's runtime to completion and returns its value or its error,
    /// waiting for it: from blocking code outside the runtime (a blocking service or function,
    /// a thread of your own), the way into the actor's async world. Refused on the runtime's
    /// own threads (async code, and `tokio::task::spawn_blocking`), where waiting could hold
    /// up the tasks `work` needs (there, `.await` it). A panic in `work` is its error; if the
    /// actor stops first, `work` is dropped and the error is `Cancelled`.
    pub fn execute<Fut, T>(&self, work: Fut) -> Result<T>
    where
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Usage(
                "execute waits for its work: call it from blocking code; in async code, .await \
                 the work instead"
                    .into(),
            ));
        }
        let Some(runtime) = self.core.runtime.get() else {
            return Err(Error::Usage("execute: the actor does not serve yet".into()));
        };
        let (to, from) = std::sync::mpsc::sync_channel(1);
        let stop = self.core.cancel.clone();
        runtime.spawn(runtime::with_current(self.core.clone(), async move {
            use futures::FutureExt;
            let outcome = tokio::select! {
                outcome = std::panic::AssertUnwindSafe(work).catch_unwind() => outcome
                    .unwrap_or_else(|_| Err(Error::raise(
                        crate::base::error::PANIC_TYPE,
                        "the work given to execute panicked",
                    ))),
                () = stop.cancelled() => Err(Error::Cancelled),
            };
            let _ = to.send(outcome);
        }));
        from.recv().unwrap_or_else(|_| Err(Error::Cancelled))
    }

    /// This actor's services and adopted tasks, with their states.
    pub fn services(&self) -> Vec<ServiceInfo> {
        self.core.services.list()
    }

    /// This actor's thread runner: its slots and its blocking invocations' statuses.
    pub fn thread_runner(&self) -> ThreadRunnerStatus {
        self.core.thread_runner.status()
    }

    /// Registers a cleanup to run when this actor stops, whatever the reason (cancelled by
    /// its parent, after a one-shot's error, on a signal): after its calls have ended, before
    /// its connections close. Hooks run in reverse order of registration.
    pub fn on_teardown(&self, hook: impl FnOnce() + Send + 'static) {
        lock(&self.core.teardown_hooks).push(Box::new(hook));
    }
}

impl std::fmt::Debug for ActorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorInfo")
            .field("uid", &self.core.uid)
            .finish()
    }
}

/// What an actor listens on and serves.
#[derive(Debug)]
pub struct ActorBuilder {
    name: String,
    listen: Vec<Addr>,
    enable: Vec<String>,
    config: ChannelConfig,
    stream_window: usize,
    register_with: Option<Addr>,
    serve_registrar: bool,
    uid: Option<Uid>,
    launch_args: Vec<String>,
    thread_slots: Option<usize>,
    heartbeat: Option<Option<HeartbeatConfig>>,
    take_over_registrar: bool,
    tree: Option<String>,
    /// Whether `start` registers with the registrar itself (else its caller does, on a
    /// connection it already has).
    registers_at_start: bool,
}

impl ActorBuilder {
    /// Leaves the first registration to the caller: a child whose parent is its registrar
    /// registers over the connection it has to its parent once that connection is served,
    /// instead of opening another. The actor still knows its registrar (for lookups) and
    /// unregisters when it stops.
    pub(crate) fn registers_through_parent(mut self) -> Self {
        self.registers_at_start = false;
        self
    }

    /// How this program re-launches itself as a child of this actor.
    pub(crate) fn launch_args(mut self, args: Vec<String>) -> Self {
        self.launch_args = args;
        self
    }

    /// Serves the registrar itself, at its address, if the one it registers with goes away
    /// (a root using a shared registrar).
    pub(crate) fn take_over_registrar(mut self) -> Self {
        self.take_over_registrar = true;
        self
    }

    /// The tree this actor belongs to (a child's is its parent's; a root's is its own uuid).
    pub(crate) fn tree(mut self, tree: String) -> Self {
        self.tree = Some(tree);
        self
    }

    /// Uses this exact uid (a spawned child gets its uid from its parent).
    pub(crate) fn uid(mut self, uid: Uid) -> Self {
        self.uid = Some(uid);
        self
    }

    /// Registers the actor (under its first address) with the registrar at `addr` once it
    /// serves, and unregisters it when it stops.
    pub fn registrar(mut self, addr: Addr) -> Self {
        self.register_with = Some(addr);
        self
    }

    /// Makes this actor a registrar: it serves the registrar runtime calls, and lists itself.
    pub fn serve_registrar(mut self) -> Self {
        self.serve_registrar = true;
        self
    }

    /// Adds an address to listen on (`tcp://HOST:PORT`, port 0 for any; `unix:///PATH`).
    pub fn listen(mut self, addr: Addr) -> Self {
        self.listen.push(addr);
        self
    }

    /// Allows calls into namespace `ns`. Only enabled namespaces are callable.
    pub fn enable(mut self, ns: impl Into<String>) -> Self {
        self.enable.push(ns.into());
        self
    }

    /// Sets the channel limits (frame size, timeouts, writer queue).
    pub fn channel_config(mut self, config: ChannelConfig) -> Self {
        self.config = config;
        self
    }

    /// Requires every peer to prove `secret` before anything else (see [`actor_ipc::auth`]),
    /// and proves it to the actors this one connects to. Without this, the actor uses the
    /// process's secret (its parent's, or the file named by `ACTOR_AUTH_FILE`), if any.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.config.secret = Some(secret);
        self
    }

    /// How many blocking invocations (`#[actor::remote(blocking)]`) run at once, each on its
    /// own thread (default: `ACTOR_THREAD_SLOTS`, else the number of CPUs). More wait in
    /// arrival order.
    pub fn thread_slots(mut self, slots: usize) -> Self {
        self.thread_slots = Some(slots.max(1));
        self
    }

    /// Heartbeats on this actor's connections to peers of this runtime: a peer silent for
    /// `config.timeout` is declared gone, its connection shut and its calls failed; `None`
    /// turns them off. Default: [`HEARTBEAT_TIMEOUT_ENV`](crate::HEARTBEAT_TIMEOUT_ENV), else
    /// a 5 s timeout. Tractor 0.1.0a5 peers never have heartbeats.
    pub fn heartbeat(mut self, config: Option<HeartbeatConfig>) -> Self {
        self.heartbeat = Some(config);
        self
    }

    /// Low-latency mode: each connection's reader spins for up to `spin` before parking,
    /// while frames keep arriving within that time (so an idle actor costs no CPU). It saves
    /// a parked thread's wake-up per message; use it on dedicated cores. Default: off, or
    /// [`LOW_LATENCY_ENV`](crate::LOW_LATENCY_ENV) (which a tree's children inherit).
    pub fn low_latency(mut self, spin: Duration) -> Self {
        self.config.spin = Some(spin).filter(|s| !s.is_zero());
        self
    }

    /// Sets the stream window (default [`DEFAULT_STREAM_WINDOW`]).
    pub fn stream_window(mut self, items: usize) -> Self {
        self.stream_window = items.max(2);
        self
    }

    /// Binds every address and starts serving. Fails if an address cannot be bound or an
    /// enabled namespace has no registered function.
    pub async fn start(mut self) -> Result<ActorHandle> {
        for ns in &self.enable {
            if !registry::has_namespace(ns) {
                return Err(Error::Usage(format!(
                    "actor `{}` cannot enable namespace `{ns}`: no #[actor::remote(ns = \"{ns}\")] \
                     function is linked into this program (is the crate that defines it a \
                     dependency, and its name spelled the same?)",
                    self.name
                )));
            }
        }
        if self.listen.is_empty() {
            return Err(Error::Usage(format!(
                "actor `{}` has no address to listen on: add one with \
                 .listen(\"tcp://127.0.0.1:0\".parse()?)",
                self.name
            )));
        }
        if self.config.secret.is_none() {
            self.config.secret = process_secret()?;
        }
        // Room for the other descriptors (files, pipes, outgoing connections) within the limit.
        let descriptors = platform::open_files_limit().saturating_sub(OTHER_DESCRIPTORS);
        let per_listener =
            usize::try_from(descriptors / self.listen.len().max(1) as u64).unwrap_or(usize::MAX);
        self.config.max_connections = self.config.max_connections.min(per_listener.max(1));
        if self.config.spin.is_none() {
            self.config.spin = runtime::low_latency_spin();
        }
        if self.config.shared_send_budget.is_none() {
            self.config.shared_send_budget = Some(SendBudget::new(ACTOR_SEND_BUDGET));
        }
        if self.config.secret.is_none() {
            for addr in &self.listen {
                if let Addr::Tcp { host, .. } = addr
                    && !is_loopback(host)
                {
                    warn!(
                        %addr,
                        "listening beyond loopback without a secret: anyone who can reach this \
                         address can call and stop this actor (give it one with \
                         ACTOR_AUTH_FILE or ActorBuilder::secret)"
                    );
                }
            }
        }
        let mut listeners = Vec::new();
        for addr in &self.listen {
            let listener = Listener::bind(addr).await.map_err(|e| {
                // The kind is kept: callers tell an address in use from other failures.
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "actor `{}` cannot listen on {addr}: {e}{}",
                        self.name,
                        match e.kind() {
                            std::io::ErrorKind::AddrInUse =>
                                "; another program (or actor) has it: pick another port, or port 0 for a free one",
                            std::io::ErrorKind::AddrNotAvailable =>
                                "; that address is not one of this host's",
                            std::io::ErrorKind::PermissionDenied =>
                                "; ports below 1024 need privileges, and a socket's directory must be writable",
                            _ => "",
                        }
                    ),
                )
            })?;
            listeners.push(listener);
        }
        let table = (self.serve_registrar || self.take_over_registrar)
            .then(|| Arc::new(RegistrarTable::default()));
        let runtime_calls = table
            .as_ref()
            .map(|table| (registrar_calls(table), tree_calls(table)))
            .unwrap_or_default();
        let uid = self.uid.unwrap_or_else(|| Uid::new(self.name));
        let tree = self.tree.unwrap_or_else(|| uid.uuid.clone());
        let core = ActorCore::new(
            uid,
            self.enable.into_iter().collect(),
            self.config,
            self.stream_window,
            runtime_calls,
            // Unset: one per CPU, counted by the runner when first needed.
            self.thread_slots.or_else(|| {
                std::env::var(THREAD_SLOTS_ENV)
                    .ok()
                    .and_then(|n| n.parse().ok())
            }),
            self.heartbeat.unwrap_or_else(HeartbeatConfig::from_env),
        );
        let _ = core.tree.set(tree);
        let addrs: Vec<Addr> = listeners.iter().map(|l| l.local_addr().clone()).collect();
        let _ = core.addrs.set(addrs.clone());
        let _ = core.launch_args.set(self.launch_args);
        if let Some(registrar) = self
            .register_with
            .clone()
            .or_else(|| table.as_ref().and(addrs.first().cloned()))
        {
            let _ = core.registrar_addr.set(registrar);
        }
        if let (Some(table), Some(first), true) = (&table, addrs.first(), self.serve_registrar) {
            table.register(core.uid.clone(), first.to_wire());
        }
        let mut serving = JoinSet::new();
        for listener in listeners {
            serving.spawn(serving::accept_loop(core.clone(), listener));
        }
        // Registration never stops an actor from starting: the first attempt is made here (so
        // the actor is findable once started, normally), and it is kept up in the background.
        let registered = match (&self.register_with, addrs.first()) {
            // Registered by the caller (`registers_through_parent`).
            (Some(registrar), Some(_)) if !self.registers_at_start => Some(registrar.clone()),
            (Some(registrar), Some(first)) => {
                let attempt = tokio::time::timeout(
                    REGISTER_AT_START_TIMEOUT,
                    register_once(&core, registrar, first),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(Error::Timeout {
                        what: format!(
                            "actor `{}` did not register with the registrar at {registrar}",
                            core.uid.name
                        ),
                        after: REGISTER_AT_START_TIMEOUT,
                    })
                });
                let current = match attempt {
                    Ok(registry) => Some(registry),
                    Err(e) => {
                        warn!(
                            uid = %core.uid,
                            %registrar,
                            error = %e,
                            "cannot register yet; serving anyway and retrying in the background"
                        );
                        None
                    }
                };
                let takeover = table.clone().filter(|_| self.take_over_registrar);
                keep_registered(
                    core.clone(),
                    registrar.clone(),
                    first.clone(),
                    current,
                    takeover,
                );
                Some(registrar.clone())
            }
            _ => None,
        };
        runtime::announce(&core);
        let _ = core.runtime.set(tokio::runtime::Handle::current());
        // The services of every namespace this actor enables start with it.
        let mut namespaces: Vec<&String> = core.enabled.iter().collect();
        namespaces.sort();
        for ns in namespaces {
            for service in registry::services(ns) {
                match service.start {
                    registry::ServiceStart::Async(start) => {
                        // The runtime is set just above: this cannot fail.
                        if let Err(e) = services::start_async(&core, service.name, start) {
                            warn!(service = service.name, error = %e, "service not started");
                        }
                    }
                    registry::ServiceStart::Blocking(start) => {
                        services::start_blocking(&core, service.name, start);
                    }
                }
            }
        }
        // On a multi-thread runtime of ours, started from `block_on`: claim the workers' slot.
        if tokio::runtime::Handle::try_current().is_ok_and(|handle| {
            handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        }) {
            let claimer = core.clone();
            let _ = tokio::spawn(async move { runtime::claim_runtime(&claimer) }).await;
        }
        info!(uid = %core.uid, "actor serving");
        Ok(ActorHandle {
            core,
            addrs,
            serving,
            registered: registered.map(RegisteredWith::Address),
        })
    }
}

/// A running actor.
pub struct ActorHandle {
    core: Arc<ActorCore>,
    addrs: Vec<Addr>,
    serving: JoinSet<()>,
    /// The registrar this actor registered with, to unregister from when it stops.
    registered: Option<RegisteredWith>,
}

/// How an actor reaches the registrar it registered with, to unregister when it stops.
enum RegisteredWith {
    /// At this address, over a connection opened for the unregistration.
    Address(Addr),
    /// Over a connection the actor keeps to the end (a child's to its parent, which serves
    /// the registrar): one connection, handshake and accept less per stop.
    Through(Registry),
}

impl std::fmt::Debug for ActorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorHandle")
            .field("uid", &self.core.uid)
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl ActorHandle {
    /// The actor's uid.
    pub fn uid(&self) -> &Uid {
        &self.core.uid
    }

    /// The addresses it listens on (with the real port where 0 was asked).
    pub fn addrs(&self) -> &[Addr] {
        &self.addrs
    }

    /// How many calls into `ns` are running now.
    pub fn running_calls(&self, ns: &str) -> u64 {
        self.core.running(ns)
    }

    pub(crate) fn core(&self) -> &Arc<ActorCore> {
        &self.core
    }

    /// Unregisters, when it stops, through `registry` (the registrar it registered with,
    /// reached over a connection it keeps to the end) rather than over a connection of its own.
    pub(crate) fn unregister_through(&mut self, registry: Registry) {
        self.registered = Some(RegisteredWith::Through(registry));
    }

    /// Asks the actor to stop; [`ActorHandle::wait`] completes the teardown.
    pub fn cancel(&self) {
        self.core.cancel.cancel();
    }

    /// A token cancelled when the actor is asked to stop (for wiring signals to it).
    pub fn cancellation_token(&self) -> CancellationToken {
        self.core.cancel.clone()
    }

    /// Serves until the actor is cancelled, then tears it down: stops accepting, cancels every
    /// running call, waits for them (at most a grace period), and closes its connections after
    /// their queued replies are written.
    pub async fn wait(mut self) {
        self.core.cancel.cancelled().await;
        while self.serving.join_next().await.is_some() {}
        self.core.tasks.close();
        if tokio::time::timeout(TEARDOWN_GRACE, self.core.tasks.wait())
            .await
            .is_err()
        {
            warn!(uid = %self.core.uid, "calls still running after the teardown grace period");
        }
        // Services were told (their stop is the actor's); they get the same grace.
        self.core.services.stop(TEARDOWN_GRACE).await;
        let hooks = std::mem::take(&mut *lock(&self.core.teardown_hooks));
        for hook in hooks.into_iter().rev() {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook)).is_err() {
                warn!(uid = %self.core.uid, "a teardown hook panicked");
            }
        }
        // A service's end stopped this actor: whoever must hear it does, before the
        // connections close.
        let fatal = lock(&self.core.fatal).clone();
        let report = lock(&self.core.fatal_report).take();
        if let (Some(error), Some(report)) = (fatal, report)
            && tokio::time::timeout(TEARDOWN_GRACE, report(error))
                .await
                .is_err()
        {
            warn!(uid = %self.core.uid, "could not report the fatal error in time");
        }
        // Kept to the end of the teardown: a registry reached through a connection holds a
        // lease on it, whose drop would close that connection before the others.
        if let Some(registered) = &self.registered {
            let through = matches!(registered, RegisteredWith::Through(_));
            let unregister = async {
                match registered {
                    RegisteredWith::Through(registry) => registry.unregister(&self.core.uid).await,
                    RegisteredWith::Address(registrar) => {
                        Registry::connect_as_actor(self.core.clone(), registrar)
                            .await?
                            .unregister(&self.core.uid)
                            .await
                    }
                }
            };
            match tokio::time::timeout(TEARDOWN_GRACE, unregister).await {
                Ok(Ok(())) => {}
                // The connection it registered over ended first: the registrar forgot this
                // actor with it.
                Ok(Err(Error::Disconnected { .. })) if through => {
                    debug!(uid = %self.core.uid, "the registrar's connection ended before the unregistration");
                }
                // The registrar is gone: nothing to unregister from.
                Ok(Err(Error::Connect(e))) => {
                    debug!(uid = %self.core.uid, error = %e, "no registrar to unregister from");
                }
                // Forgotten already: its registration's connection ended first.
                Ok(Err(Error::Remote(e))) if e.type_str == "KeyError" => {
                    debug!(uid = %self.core.uid, "the registrar had forgotten this actor already");
                }
                Ok(Err(e)) => warn!(uid = %self.core.uid, error = %e, "could not unregister"),
                Err(_) => warn!(uid = %self.core.uid, "unregistering timed out"),
            }
        }
        // All at once: each close may wait (bounded) for its queued frames to go out.
        futures::future::join_all(self.core.connections.live().iter().map(|conn| conn.close()))
            .await;
        // Readers, acknowledgements and closers end with their connections: wait for them
        // (bounded), so nothing the runtime started outlives the actor unseen.
        self.core.io_tasks.close();
        if tokio::time::timeout(TEARDOWN_GRACE, self.core.io_tasks.wait())
            .await
            .is_err()
        {
            warn!(uid = %self.core.uid, "connection tasks still running after teardown");
        }
        info!(uid = %self.core.uid, "actor stopped");
    }
}

/// Whether a TCP host only reaches this machine.
pub(crate) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
