//! Floor 2: the actor's own state, below its connections: who it is, what it serves, its
//! cancellation and task bookkeeping, the current actor of a task, and the router of its `self`
//! runtime calls. Connections (floor 3) read it; nothing here knows a connection's type.

pub(crate) mod core;
pub(crate) mod introspect;
pub(crate) mod router;
pub(crate) mod scope;
pub(crate) mod services;
pub(crate) mod thread_runner;

pub(crate) use self::core::ActorCore;
pub use self::core::{
    DEFAULT_STREAM_WINDOW, INTROSPECTION_NS, LOW_LATENCY_ENV, MAX_BLOCKING_THREADS,
    low_latency_spin,
};
pub use self::introspect::{ActorReport, CallReport, ChildReport, PeerReport, ServiceReport};
pub(crate) use self::scope::{
    CallNurseries, RuntimeActor, announce, claim_runtime, collect_inline_nurseries, current,
    enter_runtime, join_runtime, own_nursery, serving_actor, with_call_nurseries, with_current,
    with_current_sync,
};
pub use self::services::{Service, ServiceFlavour, ServiceInfo, ServiceState};
pub use self::thread_runner::{InvocationInfo, InvocationStatus, ThreadRunnerStatus};
