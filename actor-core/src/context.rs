//! Contexts: bidirectional calls (`functype` `context`).
//!
//! The callee receives a [`Context`] as its function's first argument: it sends one
//! `started` value, may open a [`MsgStream`] to exchange items with the caller both ways, and
//! its return value is the context's result. The caller gets a [`Context`] from
//! [`Portal::open_context`](crate::Portal::open_context) with the `started` value, opens the
//! stream on its side, then reads the [`Context::result`] or [`Context::cancel`]s it.
//!
//! Misuse is an error, not a hang: `started` twice, a stream before `started`, a second stream,
//! `result` on the callee side.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicU8, Ordering},
};

use tokio_util::sync::CancellationToken;

use actor_ipc::{Msg, Payload, Uid};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::Semaphore;

use crate::{
    connection::Inbox,
    error::{Error, Result},
    stream::MsgStream,
};

const STREAM_NOT_OPENED: u8 = 0;
const STREAM_OPEN: u8 = 1;
const STREAM_CLOSED: u8 = 2;

/// What the runtime must know of a callee's stream to end it in order.
#[derive(Debug, Default)]
pub(crate) struct StreamFlags {
    /// A stream was opened on the context.
    pub(crate) opened: AtomicBool,
    /// Its `stop` was queued.
    pub(crate) stop_sent: AtomicBool,
}

/// Which end of a context this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Caller,
    Callee,
}

/// One end of a bidirectional call.
pub struct Context {
    role: Role,
    cid: String,
    peer: Uid,
    func: String,
    /// The call's messages; lent to the stream while one is open.
    pub(crate) inbox: Mutex<Option<Inbox>>,
    /// Credits for the items this end sends (with flow control on).
    pub(crate) credits: Option<Arc<Semaphore>>,
    started: AtomicBool,
    stream: AtomicU8,
    /// Shared with the runtime: whether a stream was opened and whether its `stop` went out.
    pub(crate) flags: Arc<StreamFlags>,
    /// Callee: cancelled when the call is (the runtime then sends the stream's `stop`).
    pub(crate) cancel: Option<CancellationToken>,
    /// Caller: the final message, if the stream saw it first.
    pub(crate) outcome: Mutex<Option<Msg>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("role", &self.role)
            .field("func", &self.func)
            .field("cid", &self.cid)
            .field("peer", &self.peer)
            .finish()
    }
}

impl Context {
    pub(crate) fn callee(
        inbox: Inbox,
        credits: Option<Arc<Semaphore>>,
        flags: Arc<StreamFlags>,
        cancel: CancellationToken,
        func: &str,
    ) -> Self {
        let mut ctx = Self::new(Role::Callee, inbox, credits, flags, func);
        ctx.cancel = Some(cancel);
        ctx
    }

    pub(crate) fn caller(inbox: Inbox, credits: Option<Arc<Semaphore>>, func: &str) -> Self {
        let ctx = Self::new(Role::Caller, inbox, credits, Arc::default(), func);
        ctx.started.store(true, Ordering::Release);
        ctx
    }

    fn new(
        role: Role,
        inbox: Inbox,
        credits: Option<Arc<Semaphore>>,
        flags: Arc<StreamFlags>,
        func: &str,
    ) -> Self {
        Self {
            role,
            cid: inbox.cid.clone(),
            peer: inbox.conn.peer.clone(),
            func: func.to_owned(),
            inbox: Mutex::new(Some(inbox)),
            credits,
            started: AtomicBool::new(false),
            stream: AtomicU8::new(STREAM_NOT_OPENED),
            flags,
            cancel: None,
            outcome: Mutex::new(None),
        }
    }

    /// The call id.
    pub fn cid(&self) -> &str {
        &self.cid
    }

    /// The actor at the other end.
    pub fn peer(&self) -> &Uid {
        &self.peer
    }

    /// Whether this is the callee's end and its call was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
    }

    /// Whether this is the caller's end.
    pub fn is_caller(&self) -> bool {
        self.role == Role::Caller
    }

    fn take_inbox(&self) -> Result<Inbox> {
        self.inbox
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .ok_or_else(|| {
                Error::Usage(format!("{}: the context's stream is still open", self.func))
            })
    }

    /// Callee: sends the context's first value to the caller. Exactly once, before any stream.
    pub async fn started<T: Serialize>(&self, value: T) -> Result<()> {
        if self.role != Role::Callee {
            return Err(Error::Usage("only the callee sends `started`".into()));
        }
        if self.started.swap(true, Ordering::AcqRel) {
            return Err(Error::Usage(format!(
                "{}: `started` was already sent",
                self.func
            )));
        }
        let msg = Msg::Started {
            cid: self.cid.clone(),
            value: Payload::encode(&value)?,
        };
        let conn = self.connection()?;
        conn.sender.send(&msg).await.map_err(|e| conn.send_error(e))
    }

    fn connection(&self) -> Result<Arc<crate::connection::Connection>> {
        self.inbox
            .lock()
            .ok()
            .and_then(|slot| slot.as_ref().map(|i| i.conn.clone()))
            .ok_or_else(|| Error::Usage(format!("{}: the context's stream is open", self.func)))
    }

    /// Opens the context's bidirectional stream of `T` items (one per context). The callee
    /// must have sent `started` first.
    pub async fn open_stream<T>(&self) -> Result<MsgStream<'_, T>>
    where
        T: Serialize + DeserializeOwned,
    {
        if !self.started.load(Ordering::Acquire) {
            return Err(Error::Usage(format!(
                "{}: open the stream after `started`",
                self.func
            )));
        }
        match self.stream.compare_exchange(
            STREAM_NOT_OPENED,
            STREAM_OPEN,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {}
            Err(STREAM_OPEN) => {
                return Err(Error::Usage(format!(
                    "{}: the stream is already open",
                    self.func
                )));
            }
            Err(_) => {
                return Err(Error::Usage(format!(
                    "{}: the context's stream was already closed",
                    self.func
                )));
            }
        }
        let inbox = self.take_inbox()?;
        self.flags.opened.store(true, Ordering::Release);
        if self.role == Role::Caller && inbox.conn.flow_on() {
            // The caller's send credits start once the window is agreed (by now it is).
            if let Some(credits) = &self.credits {
                credits.add_permits(inbox.conn.window());
            }
        }
        Ok(MsgStream::new(self, inbox))
    }

    /// Called by the stream when it ends or is dropped.
    pub(crate) fn stream_closed(&self, inbox: Inbox) {
        self.stream.store(STREAM_CLOSED, Ordering::Release);
        if let Ok(mut slot) = self.inbox.lock() {
            *slot = Some(inbox);
        }
    }

    /// Caller: waits for the context's final result (late stream items are discarded).
    pub async fn result<R: DeserializeOwned>(self) -> Result<R> {
        if self.role != Role::Caller {
            return Err(Error::Usage(
                "only the caller reads a context's result".into(),
            ));
        }
        let mut inbox = self.take_inbox()?;
        let stashed = self.outcome.lock().ok().and_then(|mut o| o.take());
        let mut next = stashed;
        loop {
            let msg = match next.take() {
                Some(msg) => msg,
                None => inbox.recv().await?,
            };
            match msg {
                Msg::Return { value, .. } => {
                    inbox.finished = true;
                    return Ok(value.decode()?);
                }
                Msg::Error { error, .. } => {
                    inbox.finished = true;
                    return Err(inbox.conn.remote_error(*error));
                }
                // Items the caller did not read (still credited, so the callee can finish),
                // and tractor's duplicate stops.
                Msg::Yield { value, .. } => inbox.consumed_item(value.as_bytes().len()),
                Msg::Stop { .. } => continue,
                other => {
                    return Err(inbox.conn.protocol(format!(
                        "unexpected message in context {}: {other:?}",
                        self.func
                    )));
                }
            }
        }
    }

    /// Caller: cancels the remote context and waits until it has ended. Your own cancel is not
    /// reported as an error.
    pub async fn cancel(self) -> Result<()> {
        if self.role != Role::Caller {
            return Err(Error::Usage("only the caller cancels a context".into()));
        }
        let mut inbox = self.take_inbox()?;
        inbox.finished = true;
        let conn = inbox.conn.clone();
        conn.cancel_and_wait(&self.cid).await
    }
}
