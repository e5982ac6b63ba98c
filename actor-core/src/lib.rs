//! `actor`: a multi-process actor runtime.
//!
//! Every actor is an OS process with its own tokio runtime. Actors call each other's functions
//! over TCP or Unix sockets, speaking the wire protocol of Python's tractor 0.1.0a5 byte for byte
//! (the [`actor_ipc`] crate), so Rust and Python actors interoperate.
//!
//! - [`remote`] registers an `async fn` (request/response), a function returning a `Stream`
//!   (one-way stream) or an `async fn` taking a [`Context`] (bidirectional) under
//!   `(namespace, name)`, and generates a struct of the same name for typed calls.
//! - [`Actor`] serves registered functions on one or more addresses.
//! - [`Portal`] calls another actor: [`Portal::run`], [`Portal::open_stream_from`],
//!   [`Portal::open_context`], [`Portal::run_from_ns`] for untyped calls. Dropping a pending
//!   call, a stream or a context cancels the remote task.
//!
//! How a call runs: a request/response function starts inside the task that reads its
//! connection and, if it finishes without waiting (most do), is answered from there, with no
//! task of its own; a call that waits goes on as its own task, and streams and contexts always
//! do. So a function must not block its thread before its first `.await`: CPU-heavy or
//! blocking work belongs in `tokio::task::spawn_blocking` (bounded per actor by
//! [`MAX_BLOCKING_THREADS`]), or it holds up every call on that connection meanwhile.
//!
//! A whole round trip, run as a doctest: an actor serving `math` on a Unix socket, and a portal
//! calling it (in one process here; normally the actor is another process, started by a
//! nursery or on its own).
//!
//! ```
//! use futures::{Stream, TryStreamExt};
//!
//! #[actor::remote(ns = "math")]
//! async fn add(a: i64, b: i64) -> i64 {
//!     a + b
//! }
//!
//! #[actor::remote(ns = "math")]
//! fn count(n: u64) -> impl Stream<Item = u64> {
//!     futures::stream::iter(0..n)
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> actor::Result<()> {
//!     let socket = std::env::temp_dir().join(format!("actor-doc-{}.sock", std::process::id()));
//!     let server = actor::Actor::builder("math")
//!         .listen(actor::Addr::unix(&socket))
//!         .enable("math")
//!         .start()
//!         .await?;
//!     let portal = actor::connect(&server.addrs()[0]).await?;
//!     assert_eq!(portal.run(add { a: 1, b: 2 }).await?, 3);
//!     let items: Vec<u64> = portal.open_stream_from(count { n: 3 }).await?.try_collect().await?;
//!     assert_eq!(items, [0, 1, 2]);
//!     // What the actor says of itself (what `actor tree` shows).
//!     let report = portal.report().await?;
//!     assert_eq!((report.name.as_str(), report.pid), ("math", std::process::id()));
//!     server.cancel();
//!     server.wait().await;
//!     Ok(())
//! }
//! ```
//!
//! # The model, in one page
//!
//! - **Actors** are processes. A program marks its `main` with [`main`]; the same binary runs
//!   as a child actor when a parent starts it, serving the namespaces the parent enables.
//! - **Portals** ([`Portal`]) call an actor: a function ([`Portal::run`]), a stream
//!   ([`Portal::open_stream_from`]) or a context ([`Portal::open_context`], both ways).
//!   Remote errors arrive as [`Error::Remote`] with the remote trace.
//! - **Nurseries** ([`open_nursery`]) start children and supervise them: a child that fails
//!   fails the nursery, closing a nursery stops its children, and no child outlives its
//!   parent (parent-death signal, the parent connection's end, heartbeats).
//! - **Cancellation** crosses processes: dropping a call, a stream or a context cancels the
//!   remote task (tractor's `_cancel_task`); [`Portal::cancel_actor`] stops a whole actor.
//! - **Discovery**: every tree has a registrar (the root serves one unless one answers at
//!   [`DEFAULT_REGISTRAR`]); actors register by name and [`find_actor`] finds them.
//! - **Teams** ([`Team`], `docs/teams.md`) run tasks on worker processes with retries and
//!   replacement; **services** ([`service`], `docs/services.md`) are an actor's long-running
//!   work, whose unexpected end is fatal; blocking functions run on bounded thread slots.
//! - **Hosts** ([`Host`], `docs/hosts.md`): a child can run on another machine over SSH or as a
//!   Slurm job step.
//! - **Inspection**: [`Portal::report`] (and the `actor` command built on it) shows an actor's
//!   children, running calls, peers and services.
//!
//! The crate is laid in floors, each using only the ones below it (`docs/ARCHITECTURE.md`):
//! `base` → `engine` (the protocol's rules, no I/O) → `runtime` (the actor's state) →
//! `connection` → `calls` → `serving` → `portal` → `tree` → the entry points.

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod base;
mod calls;
mod connection;
mod engine;
mod entry;
mod portal;
mod root_program;
mod runtime;
mod serving;
pub mod team;
mod tree;

pub use actor_ipc::{self as ipc, Addr, Blob, Payload, Secret, Uid, Value};
/// Makes `async fn main` a root actor; the same binary also runs as a child actor.
pub use actor_macros::main;
/// Registers a function as remotely callable. See the crate documentation.
pub use actor_macros::remote;
/// Declares a service: background work started by every actor that enables its namespace,
/// whose end is fatal while the actor runs (see `docs/services.md`).
pub use actor_macros::service;
/// Makes an `async fn` test a root actor able to spawn children from the test binary.
pub use actor_macros::test;
pub use base::error::{self, ChildExit, Error, RemoteActorError, Result};
pub use base::secret::{AUTH_FILE_ENV, set_process_secret};
pub use base::trace::{OTLP_ENDPOINT_ENV, TRACE_DIR_ENV};
pub use calls::{
    context::{self, Context, MsgStream},
    registry::{self, RemoteContextFn, RemoteFn, RemoteStreamFn},
    stream::{self, FanOut, RemoteStream, Subscription},
};
pub use connection::{MAX_CALLS_PER_CONNECTION, MAX_STREAM_CREDIT};
pub use engine::heartbeat::{DEFAULT_HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_ENV, HeartbeatConfig};
pub use entry::{INTERRUPTED_EXIT, RootOptions, TRANSPORT_ENV, run_root};
pub use portal::{CallHandle, Portal, connect, connect_as};
pub use runtime::{
    ActorReport, CallReport, ChildReport, DEFAULT_STREAM_WINDOW, INTROSPECTION_NS, InvocationInfo,
    InvocationStatus, LOW_LATENCY_ENV, MAX_BLOCKING_THREADS, PeerReport, Service, ServiceFlavour,
    ServiceInfo, ServiceReport, ServiceState, ThreadRunnerStatus, low_latency_spin,
};
pub use team::{Team, TeamBuilder};
pub use tree::{
    actor::{
        ACTOR_SEND_BUDGET, Actor, ActorBuilder, ActorHandle, ActorInfo, RuntimeFlavor,
        THREAD_SLOTS_ENV,
    },
    discovery::{
        self, DEFAULT_REGISTRAR, Registry, find_actor, get_registry, query_actor, registry,
        wait_for_actor,
    },
    hosts::{Host, SRUN_PROGRAM_ENV, SSH_CONFIG_ENV, SSH_PROGRAM_ENV, SlurmJob, SshHost},
    nursery::{self, Nursery, OneShot, StartActor, open_nursery},
    spawn::{LOG_ENV, Program},
};

/// The README's examples, compiled (and run where they need no peer) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

/// The examples of `docs/first-actor-tree.md`, compiled as doctests (the program itself is also
/// built from its `Cargo.toml` lines and run by `examples/tests/doc_programs.rs`).
#[cfg(doctest)]
#[doc = include_str!("../../docs/first-actor-tree.md")]
pub struct FirstActorTree;

/// The examples of `docs/teams.md`, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/teams.md")]
pub struct TeamsGuide;

/// The examples of `docs/services.md`, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/services.md")]
pub struct ServicesGuide;

/// The examples of `docs/hosts.md`, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/hosts.md")]
pub struct HostsGuide;
