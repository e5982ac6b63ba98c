//! Replies and credit, routed to the call they belong to: a reply to one of our calls goes to
//! its inbox, a context stream item from the peer to the task it started, credit to whichever
//! side produces on that call. The reader never waits here: a call whose inbox is full has
//! overrun (it is cancelled), never a stall of the connection.

use std::sync::Arc;

use actor_ipc::{CallKind, Msg};
use tracing::{debug, warn};

use super::Connection;
use crate::{base::mailbox::Refused, engine::credit::accepted_credit};

impl Connection {
    /// A call of ours whose consumer fell behind `msg`: forgotten here, cancelled at the peer.
    fn overran(self: &Arc<Self>, msg: &Msg) {
        let cid = actor_ipc::Cid::from(msg.cid().unwrap_or_default());
        self.calls.complete(&cid);
        warn!(peer = %self.peer, %cid, "stream overrun: its consumer fell behind; cancelling it");
        self.cancel_remote(cid);
    }

    /// Delivers one message that is not a `cmd` (the reader's job for replies).
    pub(crate) fn route(self: &Arc<Self>, msg: Msg) {
        if let Msg::Credit { cid, credit } = &msg {
            let credits = self
                .tasks
                .get(cid)
                .and_then(|t| t.credits.clone())
                .or_else(|| self.calls.get(cid).and_then(|r| r.credits.clone()));
            match credits {
                Some(sem) => sem.add_permits(accepted_credit(sem.available_permits(), *credit)),
                None => debug!(%cid, "credit for a finished stream"),
            }
            return;
        }
        // The hot path: borrow the cid from the message; no allocation per message.
        let Some(cid) = msg.cid() else {
            debug!(peer = %self.peer, ?msg, "ignoring a message without a call id");
            return;
        };
        if self.flow_answer_pending() && self.flow_answer(cid, &msg) {
            return;
        }
        let over = matches!(msg, Msg::Return { .. } | Msg::Error { .. });
        if over && let Some(route) = self.calls.complete(cid) {
            // The call is over: its route leaves the table with its last message (its inbox
            // then has nothing to remove), and nothing more may be sent on it.
            if let Some(sem) = &route.credits {
                sem.close();
            }
            if let Err(Refused::Full(msg)) = route.tx.try_send(msg) {
                self.overran(&msg);
            }
            return;
        }
        // Delivered under the table's read guard: no clone of the route per message.
        if let Some(route) = self.calls.get(cid) {
            if let Msg::FuncType { kind, .. } = &msg
                && *kind == CallKind::AsyncFunc
                && route.kind == CallKind::AsyncFunc
            {
                // Confirms what the caller expects: nothing for it to learn, no wake-up.
                return;
            }
            let sent = route.tx.try_send(msg);
            drop(route);
            match sent {
                Ok(()) => {}
                Err(Refused::Full(msg)) => self.overran(&msg),
                Err(Refused::Closed(msg)) => {
                    self.calls.complete(msg.cid().unwrap_or_default());
                }
            }
            return;
        }
        if let Some(task) = self.tasks.get(cid)
            && let Some(inbox) = &task.inbox
        {
            let sent = inbox.try_send(msg);
            drop(task);
            if let Err(Refused::Full(msg)) = sent {
                let cid = msg.cid().unwrap_or_default();
                self.tasks.update(cid, |task| task.inbox = None);
                warn!(peer = %self.peer, %cid, "context stream overrun: the callee fell behind");
            }
            return;
        }
        // tractor sends `stop` twice and may send stream messages after a result: harmless.
        debug!(peer = %self.peer, %cid, "late message for a finished call");
    }
}
