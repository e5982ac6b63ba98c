//! `self` runtime calls, answered through the actor's router (`runtime/router.rs`): the
//! handler runs inside the reader until it first waits, then as a tracked task of its own.

use std::{sync::Arc, task::Poll};

use actor_ipc::Cmd;

use crate::{
    base::error::FUNCTION_NOT_FOUND,
    connection::Connection,
    runtime::{
        INTROSPECTION_NS,
        core::RuntimeRequest,
        router::{ConnectionScope, RuntimeReply},
    },
};

/// Whether `ns` is a namespace of runtime calls (`self`, or the introspection calls').
pub(super) fn is_runtime_ns(ns: &str) -> bool {
    ns == "self" || ns == INTROSPECTION_NS
}

/// Answers the runtime call `cmd` (namespace `self` or [`INTROSPECTION_NS`]).
pub(super) async fn serve(conn: &Arc<Connection>, cmd: Box<Cmd>) {
    let table = if cmd.ns == INTROSPECTION_NS {
        &conn.core.introspection
    } else {
        &conn.core.runtime_calls
    };
    let Some(handler) = table.get(&cmd.func) else {
        let error = actor_ipc::ErrorInfo::new(
            FUNCTION_NOT_FOUND,
            format!(
                "{}.{} is not a runtime call this actor allows",
                cmd.ns, cmd.func
            ),
        );
        return conn.reply_error(&cmd.cid, error).await;
    };
    let Cmd {
        kwargs,
        caller,
        cid,
        ..
    } = *cmd;
    let scope: Arc<dyn ConnectionScope> = conn.clone();
    let mut reply = handler(RuntimeRequest {
        core: conn.core.clone(),
        caller,
        kwargs,
        scope,
    });
    // What the handler does before it first waits happens before the next message is read
    // (a `_cancel_task` cancels its target in order).
    match futures::poll!(&mut reply) {
        Poll::Ready(reply) => answer(conn, &cid, reply).await,
        Poll::Pending => {
            let conn = conn.clone();
            let tracker = conn.core.io_tasks.clone();
            tokio::spawn(tracker.track_future(async move {
                let reply = reply.await;
                answer(&conn, &cid, reply).await;
            }));
        }
    }
}

async fn answer(conn: &Connection, cid: &str, reply: RuntimeReply) {
    let RuntimeReply::Answer { result, then } = reply else {
        return;
    };
    match result {
        Ok(value) => conn.reply_value(cid, value).await,
        Err(error) => conn.reply_error(cid, error).await,
    }
    if let Some(then) = then {
        then();
    }
}
