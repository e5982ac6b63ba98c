//! Which function answers a `cmd`: runtime calls go to the router, the flow-control extension
//! to the connection, everything else to the function registered under `(ns, func)` if its
//! namespace is enabled. A request/response call is served inline while it does not wait;
//! any other call runs as a task tracked by the actor and entered in the connection's
//! in-flight table (a duplicate cid is refused there, on the wire).

use std::{
    sync::{Arc, Mutex, Weak, atomic::AtomicU64},
    task::Poll,
};

use actor_ipc::{CallKind, Cmd, ErrorInfo, Payload};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{
    replies::{RunningCall, panic_error},
    runtime_calls,
};
use crate::{
    base::{
        error::{FUNCTION_NOT_FOUND, MODULE_NOT_EXPOSED, Result, TOO_MANY_CALLS},
        mailbox::mailbox,
    },
    calls::registry::{self, CallFuture, Handler, Registration},
    connection::{
        Connection, EXTENSION_NS, FLOW_CONTROL_CALL, HEARTBEAT_CALL, INBOX_SLACK, Inbox,
        MAX_CALLS_PER_CONNECTION, TaskEntry,
    },
    engine::{inflight::InsertError, sequence::ReplySequence},
    runtime::{
        CallNurseries, collect_inline_nurseries,
        core::{GracefulTeardown, RunningGuard},
        with_call_nurseries, with_current, with_current_sync,
    },
};

/// The function a connection's last `cmd` resolved to, kept by its reader: a peer mostly
/// calls the same function again, and then neither the enabled namespaces, nor the registry,
/// nor the running counts are looked up (three hashes of the names: about 350 instructions
/// of a call that takes 4,000).
#[derive(Default)]
pub(super) struct LastResolved(Option<Resolved>);

/// A function `cmd`s resolve to, with its namespace's running count.
struct Resolved {
    ns: actor_ipc::Cid,
    func: actor_ipc::Cid,
    registration: &'static Registration,
    running: Option<Arc<AtomicU64>>,
}

impl LastResolved {
    /// What `ns.func` resolves to, if it is the function last resolved.
    fn get(&self, ns: &str, func: &str) -> Option<&Resolved> {
        self.0
            .as_ref()
            .filter(|last| last.func == func && last.ns == ns)
    }
}

/// Serves one `cmd` the peer sent; `last` is its reader's [`LastResolved`].
pub(super) async fn dispatch(conn: &Arc<Connection>, mut cmd: Box<Cmd>, last: &mut LastResolved) {
    if cmd.ns == EXTENSION_NS && cmd.func == FLOW_CONTROL_CALL {
        return conn.enable_flow_control(cmd).await;
    }
    if cmd.ns == EXTENSION_NS && cmd.func == HEARTBEAT_CALL {
        return conn.enable_heartbeats(cmd).await;
    }
    if runtime_calls::is_runtime_ns(&cmd.ns) {
        return runtime_calls::serve(conn, cmd).await;
    }
    // The program's calls only: the runtime's own (an `actor top` asking for reports, say)
    // would make an idle actor look busy.
    conn.core
        .calls_served
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (registration, running) = match last.get(&cmd.ns, &cmd.func) {
        Some(known) => (known.registration, known.running.clone()),
        None => {
            if !conn.core.enabled.contains(cmd.ns.as_str()) {
                let error = ErrorInfo::new(MODULE_NOT_EXPOSED, not_enabled(&conn.core, &cmd.ns));
                return conn.reply_error(&cmd.cid, error).await;
            }
            let Some(registration) = registry::lookup(&cmd.ns, &cmd.func) else {
                let error = ErrorInfo::new(
                    FUNCTION_NOT_FOUND,
                    no_such_function(&conn.core, &cmd.ns, &cmd.func),
                );
                return conn.reply_error(&cmd.cid, error).await;
            };
            let running = conn.core.running_counter(registration.ns);
            last.0 = Some(Resolved {
                ns: cmd.ns.clone(),
                func: cmd.func.clone(),
                registration,
                running: running.clone(),
            });
            (registration, running)
        }
    };
    if conn.tasks.contains(&cmd.cid) {
        // Refused before it runs: the call in flight under that id goes on untouched.
        return refuse_duplicate(conn, &cmd.cid).await;
    }
    // The call's span: `actor.call`, child of the caller's span when the cmd carries it.
    let span = crate::base::trace::serving_span(
        &conn.core.uid,
        &cmd.ns,
        &cmd.func,
        &cmd.cid,
        cmd.trace.as_deref(),
    );
    let begun = match registration.handler {
        Handler::Func(start) => {
            match serve_inline(conn, &mut cmd, running.as_ref(), start, &span).await {
                Some(begun) => Some(begun),
                None => return,
            }
        }
        _ => None,
    };
    // Never wait for a slot here: the reader would stop reading (cancels, the sentinel, EOF).
    let Ok(slot) = conn.task_slots.clone().try_acquire_owned() else {
        // A call already started inline is dropped (cancelled) with `begun`.
        let error = ErrorInfo::new(
            TOO_MANY_CALLS,
            format!(
                "{TOO_MANY_CALLS}: this connection already runs {MAX_CALLS_PER_CONNECTION} calls; \
                 {}.{} was refused",
                cmd.ns, cmd.func
            ),
        );
        return conn.reply_error(&cmd.cid, error).await;
    };
    if let Err(duplicate) = start_task(conn, cmd, registration, running, slot, begun, span) {
        refuse_duplicate(conn, &duplicate).await;
    }
}

/// Why a call to namespace `ns` was refused, and how to fix it.
fn not_enabled(core: &crate::runtime::ActorCore, ns: &str) -> String {
    let mut enabled: Vec<&str> = core.enabled.iter().map(String::as_str).collect();
    enabled.sort_unstable();
    format!(
        "{MODULE_NOT_EXPOSED}: namespace `{ns}` is not enabled on actor `{}` (enabled: {}); \
         enable it with `.enable(\"{ns}\")` where the actor is started",
        core.uid.name,
        listed(&enabled)
    )
}

/// Why a call to `ns.func` found no function, and what exists instead.
fn no_such_function(core: &crate::runtime::ActorCore, ns: &str, func: &str) -> String {
    format!(
        "actor `{}` has no function `{ns}.{func}` (functions in `{ns}`: {}); is it marked \
         #[actor::remote(ns = \"{ns}\")] in the program that actor runs?",
        core.uid.name,
        listed(&registry::functions_in(ns))
    )
}

/// Names for an error text: `a, b`, or `none`.
fn listed(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The error answering a `cmd` whose call id is already in flight.
async fn refuse_duplicate(conn: &Connection, cid: &str) {
    // tractor has no name for this; `RuntimeError` is what a Python peer would raise.
    let error = ErrorInfo::new(
        "RuntimeError",
        format!("call id {cid:?} is already running"),
    );
    conn.reply_error(cid, error).await;
}

/// Serves a function call in the reader as far as it goes without waiting: a call that
/// finishes at once (most do) costs no task, no cancellation scope and no table entry, and
/// its `functype` and `return` go out in one write. Returns the started future of a call
/// that must wait, with the nurseries it opened so far, to go on as a task; `None` once the
/// call was answered.
///
/// Nothing can cancel the call meanwhile: cancellation arrives as a message, which this
/// same reader reads only afterwards.
async fn serve_inline(
    conn: &Arc<Connection>,
    cmd: &mut Cmd,
    running: Option<&Arc<AtomicU64>>,
    start: fn(Payload) -> Result<CallFuture>,
    span: &tracing::Span,
) -> Option<Begun> {
    // Counted while it runs, like a call served as a task.
    let running = RunningGuard::count(running);
    let mut kwargs = Some(std::mem::replace(&mut cmd.kwargs, Payload::nil()));
    let polled = std::future::poll_fn(|cx| {
        let _in_span = span.enter();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_current_sync(conn.core.clone(), || {
                let mut fut = start(kwargs.take().unwrap_or_else(Payload::nil))?;
                let (polled, nurseries) = collect_inline_nurseries(|| fut.as_mut().poll(cx));
                Ok(match polled {
                    Poll::Ready(outcome) => Err(outcome),
                    Poll::Pending => Ok(Begun { fut, nurseries }),
                })
            })
        }));
        Poll::Ready(outcome)
    })
    .await;
    let outcome = match polled {
        // The task counts itself from here on.
        Ok(Ok(Ok(pending))) => return Some(pending),
        Ok(Ok(Err(finished))) => finished,
        Ok(Err(not_started)) => Err(not_started),
        Err(panic) => Err(panic_error(&cmd.func, &panic)),
    };
    drop(running);
    match outcome {
        Ok(value) => {
            if let Some(value) = conn.try_reply_value(&cmd.cid, value) {
                conn.reply_value(&cmd.cid, value).await;
            }
        }
        Err(e) => {
            let reply = conn.reply_error(&cmd.cid, e.to_error_info());
            tracing::Instrument::instrument(reply, span.clone()).await;
        }
    }
    None
}

/// A call served inline that must wait: its future, and the nurseries it opened so far.
struct Begun {
    fut: CallFuture,
    nurseries: Vec<Weak<dyn GracefulTeardown>>,
}

/// Runs a call as a task of the actor, entered in the connection's in-flight table until it
/// has sent its last message; `Err(cid)` when a call under that id is already in flight (the
/// caller refuses it).
///
/// Not async, and never inlined: the task's future is large (every call kind's state), and
/// built inside `dispatch`'s future it gave every message's dispatch a stack frame of about
/// 47 KB, probed page by page. Here that frame exists only for calls that become tasks.
#[inline(never)]
fn start_task(
    conn: &Arc<Connection>,
    cmd: Box<Cmd>,
    registration: &'static Registration,
    running: Option<Arc<AtomicU64>>,
    slot: OwnedSemaphorePermit,
    begun: Option<Begun>,
    span: tracing::Span,
) -> std::result::Result<(), String> {
    let handler = registration.handler;
    let window = conn.core.stream_window;
    let cancel = conn.tasks_cancel.child_token();
    let done = CancellationToken::new();
    let canceller = Arc::new(Mutex::new(None));
    let credits = conn
        .flow_on()
        .then(|| Arc::new(Semaphore::new(conn.window())));
    let (inbox_tx, inbox) = match handler {
        Handler::Context(_) => {
            let (tx, rx) = mailbox(window + INBOX_SLACK);
            (Some(tx), Some(rx))
        }
        _ => (None, None),
    };
    let entry = TaskEntry {
        cancel: cancel.clone(),
        done: done.clone(),
        canceller: canceller.clone(),
        inbox: inbox_tx,
        credits: credits.clone(),
        ns: registration.ns,
        func: registration.name,
        started: std::time::Instant::now(),
    };
    match conn.tasks.insert(&cmd.cid, entry) {
        Ok(()) => {}
        Err(InsertError::Duplicate(cid)) => return Err(cid),
        // The connection closed: nobody is left to answer.
        Err(InsertError::Closed) => return Ok(()),
    }
    let (begun, opened) = match begun {
        Some(Begun { fut, nurseries }) => (Some(fut), nurseries),
        None => (None, Vec::new()),
    };
    let nurseries = Arc::new(CallNurseries::with(opened));
    let call_nurseries = nurseries.clone();
    let task_conn = conn.clone();
    let core = conn.core.clone();
    let task = async move {
        let conn = task_conn;
        // Dropped last: the task counts as finished only after its final message is queued,
        // its entry removed and its running count released.
        let _done = done.drop_guard();
        let _slot = slot;
        let _running = RunningGuard::count(running.as_ref());
        let run = RunningCall {
            conn: conn.clone(),
            cid: cmd.cid.clone(),
            func: cmd.func.clone(),
            cancel,
            canceller,
            credits,
            nurseries: call_nurseries,
        };
        match handler {
            Handler::Func(start) => match begun {
                Some(fut) => run.func(Ok(fut)).await,
                None => run.func(start(cmd.kwargs)).await,
            },
            Handler::Stream(start) => run.stream(start(cmd.kwargs)).await,
            Handler::Context(start) => {
                let rx = inbox.unwrap_or_else(|| mailbox(1).1);
                let sequence = ReplySequence::running(CallKind::Context);
                let inbox = Inbox::new(conn.clone(), cmd.cid.clone(), rx, false, sequence);
                run.context(start, inbox, cmd.kwargs).await
            }
        }
        conn.tasks.complete(&cmd.cid);
    };
    conn.core.tasks.spawn(with_current(
        core,
        with_call_nurseries(nurseries, tracing::Instrument::instrument(task, span)),
    ));
    Ok(())
}
