//! The router of `self` runtime calls. Each module that owns a runtime call registers it here
//! (the actor core its `cancel` and `_cancel_task`, discovery the registrar's calls), and the
//! connection answers every `self` call through this one table, knowing none of them.

use std::{collections::HashMap, sync::Arc};

use actor_ipc::{ErrorInfo, Payload, Uid};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

/// What a runtime call may ask of the connection it arrived on.
pub(crate) trait ConnectionScope: Send + Sync {
    /// Cancels the task the peer started on this connection as `cid`, recording `by` as its
    /// canceller; the token completes once that task has ended. `None` if no such task runs.
    fn cancel_task(&self, cid: &str, by: &Uid) -> Option<CancellationToken>;
    /// Cancelled when the connection ends or the actor stops: a runtime call that blocks
    /// (`wait_for_actor`) gives up then.
    fn ending(&self) -> CancellationToken;
}

/// How a runtime call ends.
pub(crate) enum RuntimeReply {
    /// Answer with this result, then run `then` (if any) once the answer is queued.
    Answer {
        result: Result<Payload, ErrorInfo>,
        then: Option<Box<dyn FnOnce() + Send>>,
    },
    /// No answer: the call was given up (its connection or actor is ending).
    Abandoned,
}

impl RuntimeReply {
    /// Answers with `result`, nothing after.
    pub(crate) fn answer(result: Result<Payload, ErrorInfo>) -> Self {
        Self::Answer { result, then: None }
    }
}

/// A runtime call's handler. The future runs first inside the connection's reader (so what it
/// does before its first wait happens before the next message is read) and, if it waits, on
/// as a task of its own.
///
/// `Req` is what the handler is given (the actor core's `RuntimeRequest`): the router is
/// generic so that it needs nothing from the core that holds it.
pub(crate) type RuntimeCall<Req> =
    Arc<dyn Fn(Req) -> BoxFuture<'static, RuntimeReply> + Send + Sync>;

/// The `self` runtime calls an actor answers.
pub(crate) struct RuntimeCalls<Req> {
    table: HashMap<&'static str, RuntimeCall<Req>>,
}

impl<Req> Default for RuntimeCalls<Req> {
    fn default() -> Self {
        Self {
            table: HashMap::new(),
        }
    }
}

impl<Req> RuntimeCalls<Req> {
    /// Adds (or replaces) the runtime call `name`.
    pub(crate) fn register(&mut self, name: &'static str, call: RuntimeCall<Req>) {
        self.table.insert(name, call);
    }

    /// Adds every call of `other`.
    pub(crate) fn extend(&mut self, other: RuntimeCalls<Req>) {
        self.table.extend(other.table);
    }

    /// The handler of `name`, if this actor answers it.
    pub(crate) fn get(&self, name: &str) -> Option<&RuntimeCall<Req>> {
        self.table.get(name)
    }
}

impl<Req> std::fmt::Debug for RuntimeCalls<Req> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.table.keys().collect();
        names.sort();
        f.debug_list().entries(names).finish()
    }
}
