//! Calling out: fresh call ids, an inbox per call, `cmd` frames, and cancelling our calls
//! (`_cancel_task` to the peer), with or without waiting for the acknowledgement.

use std::{collections::HashMap, sync::Arc, sync::atomic::Ordering};

use actor_ipc::{CallKind, Cid, CmdRef, Msg, Payload};
use tokio::sync::Semaphore;
use tracing::debug;

use super::{Connection, INBOX_SLACK, Inbox, Route};
use crate::{
    base::{
        error::{Error, Result},
        mailbox::mailbox,
    },
    engine::{
        inflight::InsertError,
        sequence::{ReplySequence, Step},
    },
};

impl Connection {
    /// A fresh call id, unique among this side's calls on this connection.
    pub(crate) fn new_cid(&self) -> Cid {
        call_id(
            &self.cid_prefix,
            self.next_cid.fetch_add(1, Ordering::Relaxed),
        )
    }

    /// Registers a call and returns the inbox its replies arrive in, and for a context the
    /// credits for the items this side will send.
    pub(crate) fn open_call(
        self: &Arc<Self>,
        cid: &str,
        kind: CallKind,
    ) -> Result<(Inbox, Option<Arc<Semaphore>>)> {
        let capacity = match kind {
            CallKind::AsyncFunc => INBOX_SLACK,
            _ => self.core.stream_window + INBOX_SLACK,
        };
        let (tx, rx) = mailbox(capacity);
        // A context's send credits start empty: its stream adds the agreed window when it
        // opens, by which time the flow-control answer has arrived.
        let credits = (kind == CallKind::Context).then(|| Arc::new(Semaphore::new(0)));
        let route = Route {
            tx,
            kind,
            credits: credits.clone(),
            // Counted before its `cmd` goes out: its `functype` is then delivered.
            _open_stream: (kind != CallKind::AsyncFunc)
                .then(|| super::OpenStream::count(&self.open_streams)),
        };
        match self.calls.insert(cid, route) {
            Ok(()) => {}
            Err(InsertError::Closed) => return Err(self.disconnected()),
            Err(InsertError::Duplicate(cid)) => {
                return Err(Error::Usage(format!(
                    "call id {cid:?} is already in flight on this connection"
                )));
            }
        }
        let inbox = Inbox::new(
            self.clone(),
            Cid::from(cid),
            rx,
            true,
            ReplySequence::new(kind),
        );
        Ok((inbox, credits))
    }

    /// Sends a `cmd`.
    pub(crate) async fn send_cmd(
        &self,
        ns: &str,
        func: &str,
        kwargs: Payload,
        cid: &str,
    ) -> Result<()> {
        let trace = crate::base::trace::current_traceparent();
        let cmd = CmdRef {
            ns,
            func,
            kwargs: &kwargs,
            caller: &self.core.uid,
            cid,
            trace: trace.as_deref(),
        };
        // Queued at once when there is room (no future, no scheduling budget spent); else
        // waits for room.
        let write = |buf: &mut bytes::BytesMut| Msg::put_cmd_frame(buf, cmd);
        let sent = match self.sender.try_send_written(cmd.frame_size(), write) {
            Some(sent) => sent,
            None => self.sender.send_written(cmd.frame_size(), write).await,
        };
        sent.map_err(|e| self.send_error(e))
    }

    /// Asks the peer to cancel our call `cid`, without waiting (a dropped call).
    pub(crate) fn cancel_remote(self: &Arc<Self>, cid: Cid) {
        if self.is_closed() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let conn = self.clone();
        let cancel = async move {
            let kwargs = match Payload::encode(&HashMap::from([("cid", cid.as_str())])) {
                Ok(kwargs) => kwargs,
                Err(_) => return,
            };
            let ack = conn.new_cid();
            if let Err(e) = conn.send_cmd("self", "_cancel_task", kwargs, &ack).await {
                debug!(%cid, error = %e, "could not send _cancel_task");
            }
        };
        handle.spawn(self.core.io_tasks.track_future(cancel));
    }

    /// Sends `_cancel_task` for our call `cid` and waits for the acknowledgement, which comes
    /// once the remote task has ended.
    pub(crate) async fn cancel_and_wait(self: &Arc<Self>, cid: &str) -> Result<()> {
        let kwargs = Payload::encode(&HashMap::from([("cid", cid)]))?;
        self.run_raw("self", "_cancel_task", kwargs).await.map(drop)
    }

    /// Calls a request/response function by name and returns its encoded result.
    pub(crate) async fn run_raw(
        self: &Arc<Self>,
        ns: &str,
        func: &str,
        kwargs: Payload,
    ) -> Result<Payload> {
        let cid = self.new_cid();
        let (mut inbox, _) = self.open_call(&cid, CallKind::AsyncFunc)?;
        self.send_cmd(ns, func, kwargs, &cid).await?;
        loop {
            match inbox.next_step().await? {
                Step::Returned(value) => return Ok(value),
                Step::Failed(error) => return Err(self.remote_error(*error)),
                Step::Violation(what) => return Err(self.protocol(what)),
                _ => continue,
            }
        }
    }
}

/// `prefix` (which ends in `-`) then `n` in decimal. compact_str writes the number without
/// the formatting machinery, and neither part needs a UTF-8 check: the former hand-written
/// digits cost a validation and three pushes per call (about 370 instructions).
fn call_id(prefix: &Cid, n: u64) -> Cid {
    use compact_str::ToCompactString;
    let mut cid = prefix.clone();
    cid.push_str(&n.to_compact_string());
    cid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_the_prefix_and_the_number_in_decimal() {
        for n in [0, 7, 10, 99, 1_234_567, u64::MAX] {
            assert_eq!(call_id(&Cid::from("3f2a9c1e-"), n), format!("3f2a9c1e-{n}"));
        }
    }
}
